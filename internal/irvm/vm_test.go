package irvm_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/palisade-dev/palisade/internal/irvm"
)

// A policy, its data and inputs: the entry point data.t.<rule> of each
// rule below must evaluate the same in irvm as in topdown (value, or
// undefined, or an error).
type differential struct {
	name   string
	module string // package t
	data   string // JSON, or ""
	rules  []string
	inputs []string // JSON
}

var cases = []differential{
	{
		name: "else chains and defaults",
		module: `
			default d := "none"
			d := "a" if input.x == 1
			e := "one" if { input.x == 1 } else := "two" if { input.x == 2 } else := "many"
			f := v if { v := input.y } else := 0
			g := x if { some x in input.list; x > 10 } else := -1
		`,
		rules:  []string{"d", "e", "f", "g"},
		inputs: []string{`{}`, `{"x": 1}`, `{"x": 2, "y": "why"}`, `{"x": 3, "list": [1, 12]}`, `{"list": [1, 2]}`},
	},
	{
		name: "negation, every and some",
		module: `
			no_x if not input.x
			all_small if every v in input.list { v < 5 }
			any_big if { some v in input.list; v >= 5 }
			keys contains k if some k, _ in input.obj
			pairs contains [k, v] if { some k, v in input.obj; not startswith(k, "_") }
			nested if { not inner }
			inner if { some v in input.list; not v }
		`,
		rules:  []string{"no_x", "all_small", "any_big", "keys", "pairs", "nested", "inner"},
		inputs: []string{`{}`, `{"x": false, "list": [1, 2], "obj": {"a": 1, "_b": 2}}`, `{"x": true, "list": [9, false], "obj": {}}`, `{"list": []}`},
	},
	{
		name: "comprehensions and iteration order",
		module: `
			arr := [x | some x in input.set_like]
			from_set := [x | some x in {y | some y in input.set_like}]
			obj := {k: count(v) | some k, v in input.obj}
			keys_in_order := [k | some k, _ in input.obj]
			set_of_objects := {{"k": k, "v": v} | some k, v in input.obj}
			sorted := sort([v | some v in input.set_like])
			nested := [[y | some y in x] | some x in input.nested]
			big := count([i | some i in numbers.range(1, 2000); i % 7 == 0])
		`,
		rules: []string{"arr", "from_set", "obj", "keys_in_order", "set_of_objects", "sorted", "nested", "big"},
		inputs: []string{
			`{"set_like": ["c", "a", "b", "a"], "obj": {"z": [1], "a": [1, 2], "m": []}, "nested": [[3, 1], [], [2]]}`,
			`{"set_like": [3, 1.0, 1, "1", null, true, {"a": 1}, [1]], "obj": {}, "nested": []}`,
		},
	},
	{
		name: "partial sets and objects, several bodies, conflicts",
		module: `
			s contains x if some x in input.a
			s contains x if some x in input.b
			o[k] := v if some k, v in input.o1
			o[k] := v if some k, v in input.o2
			complete := input.v if input.v
			complete := 1 if input.one
			r.a.b := 1 if input.deep
			r.a.c := 2
			r[k] := 3 if some k in input.keys
		`,
		rules: []string{"s", "o", "complete", "r"},
		inputs: []string{
			`{"a": [1, 2], "b": [2, 3], "o1": {"x": 1}, "o2": {"y": 2}}`,
			`{"o1": {"x": 1}, "o2": {"x": 2}}`,
			`{"v": 1, "one": true}`,
			`{"v": 2, "one": true}`,
			`{"deep": true, "keys": ["q"]}`,
		},
	},
	{
		name: "functions",
		module: `
			f(x) := "small" if x < 10
			f(x) := "big" if x >= 10
			g(x, y) := x + y
			h(x) if x.enabled
			first(xs) := xs[0]
			mk(k, v) := {k: v, "const": [1, "two", {"three": 3}]}
			uses := [f(1), f(100), g(2, 3)]
			calls := {x | some x in input.list; h(x)}
			ff := first(input.list)
			made := mk(input.k, input.v)
			conflict := f(input.n)
		`,
		rules: []string{"uses", "calls", "ff", "made", "conflict"},
		inputs: []string{
			`{"list": [{"enabled": true, "n": 1}, {"enabled": false}], "k": "key", "v": [1], "n": 3}`,
			`{"list": [], "k": 1, "v": null, "n": "x"}`,
		},
	},
	{
		name: "with",
		module: `
			base := input.a
			overridden := x if x := base with input.a as "replaced"
			deep := x if x := base2 with input.b.c as 42
			base2 := input.b
			data_with := x if x := data.t_data.v with data.t_data.v as "dv"
			memo := [base, overridden, base]
		`,
		data:   `{"t_data": {"v": "original"}}`,
		rules:  []string{"overridden", "deep", "data_with", "memo"},
		inputs: []string{`{"a": "orig", "b": {"c": 1, "d": 2}}`, `{}`},
	},
	{
		name: "built-ins and errors",
		module: `
			msg := sprintf("%s has %d items: %v", [input.name, count(input.items), input.items])
			num := to_number(input.n)
			globbed if glob.match("registry.k8s.io/*", ["/"], input.image)
			rx := regex.match("^a+b$", input.s)
			t := time.parse_rfc3339_ns(input.now)
			got := object.get(input, ["a", "b", "c"], "default")
			subset if object.subset(input.labels, {"app": "x"})
			arith := [1 + 2.5, 7 / 2, 7 % 3, -input.k, abs(-3)]
			eq := [1 == 1.0, "1" == 1, [1] == [1.0], {"a": 1} == {"a": 1.0}]
			strs := [upper(input.name), concat(",", input.items), trim_prefix(input.name, "ab"), split("a/b//c", "/")]
		`,
		rules: []string{"msg", "num", "globbed", "rx", "t", "got", "subset", "arith", "eq", "strs"},
		inputs: []string{
			`{"name": "abc", "items": ["x", "y"], "n": "12.5", "image": "registry.k8s.io/pause", "s": "aab", "now": "2026-01-02T03:04:05Z", "a": {"b": {"c": 3}}, "labels": {"app": "x", "tier": "y"}, "k": 4}`,
			`{"name": "abc", "items": ["x"], "n": "not a number", "image": "docker.io/x", "s": "b", "now": "yesterday", "labels": {}, "k": 0}`,
		},
	},
}

func TestEvaluatorsAgree(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			module := "package t\n" + tc.module
			var data map[string]any
			if tc.data != "" {
				if err := json.Unmarshal([]byte(tc.data), &data); err != nil {
					t.Fatal(err)
				}
			}
			b := testBundle(t, module, data)
			var entries []string
			for _, r := range tc.rules {
				entries = append(entries, "t/"+r)
			}
			prog := plan(t, b, entries...)
			dataTerm := ast.MustInterfaceToValue(orEmpty(data))
			var defined, undefined, failed int
			defer func() {
				t.Logf("%d values, %d undefined, %d errors", defined, undefined, failed)
				if defined == 0 {
					t.Error("no rule had a value: the case tests nothing")
				}
			}()
			for _, rule := range tc.rules {
				pq, err := rego.New(rego.Query("data.t."+rule), rego.ParsedBundle("t", b), rego.StrictBuiltinErrors(true),
					rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil })).PrepareForEval(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range tc.inputs {
					input := ast.MustParseTerm(in)
					want, werr := topdown(pq, input.Value)
					got, gerr := prog.Eval(context.Background(), "t/"+rule, input, ast.NewTerm(dataTerm))
					if (werr == nil) != (gerr == nil) {
						t.Errorf("%s with %s: topdown %v (error %v), irvm %v (error %v)", rule, in, want, werr, got, gerr)
						continue
					}
					switch {
					case werr != nil:
						failed++
						continue
					case want == nil:
						undefined++
					default:
						defined++
					}
					if (want == nil) != (got == nil) || (want != nil && !want.Equal(got)) {
						t.Errorf("%s with %s:\ntopdown: %v\nirvm:    %v", rule, in, want, got)
					}
				}
			}
		})
	}
}

// Constant literals are built once and shared by evaluations: an
// evaluation that builds a composite from them must not change them.
func TestConstantsStayConstant(t *testing.T) {
	b := testBundle(t, `package t
		base := ["a", "b"]
		grown := array.concat(base, [input.x])
		objs := {"k": ["a", "b"], "x": input.x}
	`, nil)
	prog := plan(t, b, "t/grown", "t/objs", "t/base")
	data := ast.NewTerm(ast.NewObject())
	for _, x := range []string{"1", "2", "3"} {
		in := ast.MustParseTerm(`{"x": ` + x + `}`)
		got, err := prog.Eval(context.Background(), "t/grown", in, data)
		if err != nil || !got.Equal(ast.MustParseTerm(`["a", "b", `+x+`]`)) {
			t.Fatalf("grown with x=%s: %v, %v", x, got, err)
		}
		if _, err := prog.Eval(context.Background(), "t/objs", in, data); err != nil {
			t.Fatal(err)
		}
	}
	got, err := prog.Eval(context.Background(), "t/base", ast.NewTerm(ast.NewObject()), data)
	if err != nil || !got.Equal(ast.MustParseTerm(`["a", "b"]`)) {
		t.Fatalf("base after evaluations: %v, %v", got, err)
	}
}

func TestCancelled(t *testing.T) {
	b := testBundle(t, `package t
		n := count([x | some x in numbers.range(1, 100000); x % 2 == 0])
	`, nil)
	prog := plan(t, b, "t/n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := prog.Eval(ctx, "t/n", ast.NewTerm(ast.NewObject()), ast.NewTerm(ast.NewObject()))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("evaluation with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestUnknownEntryPoint(t *testing.T) {
	prog := plan(t, testBundle(t, "package t\na := 1", nil), "t/a")
	if _, err := prog.Eval(context.Background(), "t/b", ast.NullTerm(), ast.NullTerm()); err == nil || !strings.Contains(err.Error(), `no plan "t/b"`) {
		t.Fatalf("unknown entry point: %v", err)
	}
}

func TestBadPlans(t *testing.T) {
	for name, plan := range map[string]string{
		"not JSON":     `{`,
		"bad string":   `{"static": {"strings": []}, "plans": {"plans": [{"name": "p", "blocks": [{"stmts": [{"type": "DotStmt", "stmt": {"source": {"type": "local", "value": 0}, "key": {"type": "string_index", "value": 5}, "target": 2}}]}]}]}}`,
		"unknown func": `{"plans": {"plans": [{"name": "p", "blocks": [{"stmts": [{"type": "CallStmt", "stmt": {"func": "no.such.builtin", "args": [], "result": 2}}]}]}]}}`,
	} {
		if _, err := irvm.Compile([]byte(plan)); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
	_, err := irvm.Compile([]byte(`{"plans": {"plans": [{"name": "p", "blocks": [{"stmts": [{"type": "CallStmt", "stmt": {"func": "no.such.builtin", "args": [], "result": 2}}]}]}]}}`))
	if !errors.Is(err, irvm.ErrUnsupported) {
		t.Errorf("unknown built-in: %v, want ErrUnsupported", err)
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func testBundle(t *testing.T, module string, data map[string]any) *bundle.Bundle {
	t.Helper()
	parsed, err := ast.ParseModuleWithOpts("t.rego", module, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle.Bundle{
		Manifest: bundle.Manifest{Roots: &[]string{""}},
		Modules:  []bundle.ModuleFile{{Path: "t.rego", URL: "t.rego", Parsed: parsed, Raw: []byte(module)}},
		Data:     orEmpty(data),
	}
	b.SetRegoVersion(ast.RegoV1)
	return b
}

func plan(t *testing.T, b *bundle.Bundle, entrypoints ...string) *irvm.Program {
	t.Helper()
	cp := &bundle.Bundle{Manifest: b.Manifest, Modules: b.Modules, Data: b.Data}
	cp.SetRegoVersion(ast.RegoV1)
	c := compile.New().WithTarget(compile.TargetPlan).WithPruneUnused(true).WithEntrypoints(entrypoints...).WithBundle(cp)
	if err := c.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	mods := c.Bundle().PlanModules
	if len(mods) != 1 {
		t.Fatalf("%d plans", len(mods))
	}
	prog, err := irvm.Compile(mods[0].Raw)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func topdown(pq rego.PreparedEvalQuery, input ast.Value) (*ast.Term, error) {
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(input))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs[0].Expressions[0].Value.(*ast.Term), nil
}

// A reference into data with a variable where rules live is a dynamic
// call in the plan, which irvm does not run: Compile says so, and the
// caller keeps topdown.
func TestDynamicCallUnsupported(t *testing.T) {
	b := testBundle(t, "package t\nx := data.u[input.k].v\n", nil)
	u := testBundle(t, "package u\na.v := 1\nb.v := 2\n", nil).Modules[0]
	u.Path, u.URL = "u.rego", "u.rego"
	b.Modules = append(b.Modules, u)
	cp := &bundle.Bundle{Manifest: b.Manifest, Modules: b.Modules, Data: b.Data}
	cp.SetRegoVersion(ast.RegoV1)
	c := compile.New().WithTarget(compile.TargetPlan).WithPruneUnused(true).WithEntrypoints("t/x").WithBundle(cp)
	if err := c.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := irvm.Compile(c.Bundle().PlanModules[0].Raw)
	if !errors.Is(err, irvm.ErrUnsupported) || !strings.Contains(err.Error(), "dynamic call") {
		t.Fatalf("plan with a dynamic call: %v, want ErrUnsupported", err)
	}
}
