package bundles

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/palisade-dev/palisade/internal/irvm"
)

// Evaluators. A decision is defined by the Rego library alone; these are
// two ways of running it.
//
//   - EvaluatorIR (the default): OPA's planner compiles the bundle's
//     admission, continuous and verification entry points to its
//     intermediate representation when the engine is created, and
//     internal/irvm runs that plan with topdown's own built-in
//     functions. It decides in about a sixth of topdown's time
//     (BenchmarkAdmissionDecision, BenchmarkEvaluators).
//   - EvaluatorTopdown: OPA's reference evaluator, as `opa eval` and
//     `opa run` use it. It is also what the engine falls back to when a
//     bundle's plan uses something irvm does not implement (Engine.
//     Evaluator says so), and it always answers the runtime entry point,
//     which the sensor's native matcher is proved against.
//   - EvaluatorCheck: both, for every decision; a difference is an error
//     that names the entry point and both results. The tests run in this
//     mode (make test sets it for every package), so every decision of
//     every test is a differential test of the two.
//
// PALISADE_EVALUATOR in the environment chooses one for the process: an
// operator who suspects the IR evaluator can switch to topdown without a
// new build.
const (
	EvaluatorIR      = "ir"
	EvaluatorTopdown = "topdown"
	EvaluatorCheck   = "check"
)

// EvaluatorEnv is the environment variable that chooses the evaluator.
const EvaluatorEnv = "PALISADE_EVALUATOR"

// entry is one entry point of the Rego library: its query for topdown
// and its plan for irvm.
type entry struct {
	query string
	plan  string // the planner's name: the path with slashes
	pq    rego.PreparedEvalQuery
}

func newEntry(query string) *entry {
	return &entry{query: query, plan: strings.ReplaceAll(strings.TrimPrefix(query, "data."), ".", "/")}
}

// planned is what the IR evaluator needs: the program and the bundle's
// data as one AST value.
type planned struct {
	prog *irvm.Program
	data *ast.Term
}

// evaluatorMode reads EvaluatorEnv.
func evaluatorMode() (string, error) {
	switch m := os.Getenv(EvaluatorEnv); m {
	case "", EvaluatorIR:
		return EvaluatorIR, nil
	case EvaluatorTopdown, EvaluatorCheck:
		return m, nil
	default:
		return "", fmt.Errorf("%s=%q: want %s, %s or %s", EvaluatorEnv, m, EvaluatorIR, EvaluatorTopdown, EvaluatorCheck)
	}
}

// plan compiles the entry points of a bundle to an irvm program. The
// bundle is not modified (the compiler writes its plan into the bundle
// it is given, and formats its module files in place: it gets a copy,
// which also lets NewEngine prepare the topdown queries meanwhile).
func plan(ctx context.Context, b *bundle.Bundle, entries []*entry) (*planned, error) {
	cp := &bundle.Bundle{Manifest: b.Manifest, Modules: slices.Clone(b.Modules), Data: b.Data}
	cp.SetRegoVersion(b.RegoVersion(ast.DefaultRegoVersion))
	c := compile.New().
		WithTarget(compile.TargetPlan).
		WithPruneUnused(true).
		WithBundle(cp)
	for _, e := range entries {
		c = c.WithEntrypoints(e.plan)
	}
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	var raw []byte
	for _, m := range c.Bundle().PlanModules {
		if m.Path == bundle.PlanFile {
			raw = m.Raw
		}
	}
	if raw == nil {
		return nil, errors.New("plan: the compiler wrote no plan")
	}
	prog, err := irvm.Compile(raw)
	if err != nil {
		return nil, err
	}
	data, err := ast.InterfaceToValue(b.Data)
	if err != nil {
		return nil, fmt.Errorf("plan: data: %w", err)
	}
	return &planned{prog: prog, data: ast.NewTerm(data)}, nil
}

// Evaluator says how the engine evaluates admission, continuous and
// verification decisions: EvaluatorIR, EvaluatorTopdown or
// EvaluatorCheck, and for topdown chosen because the bundle could not be
// planned, why.
func (e *Engine) Evaluator() string {
	if e.planErr != nil {
		return fmt.Sprintf("%s (%v)", EvaluatorTopdown, e.planErr)
	}
	return e.mode
}

// evaluate returns the value of an entry point for an input, nil when it
// is undefined.
func (e *Engine) evaluate(ctx context.Context, en *entry, input ast.Value) (*ast.Term, error) {
	if e.ir == nil {
		return e.topdown(ctx, en, input)
	}
	got, err := e.ir.prog.Eval(ctx, en.plan, ast.NewTerm(input), e.ir.data)
	if err != nil {
		err = fmt.Errorf("evaluate %s: %w", en.query, err)
	}
	if e.mode != EvaluatorCheck {
		return got, err
	}
	want, werr := e.topdown(ctx, en, input)
	switch {
	case (err == nil) != (werr == nil):
		return nil, fmt.Errorf("evaluators disagree on %s: ir: %v (error %v), topdown: %v (error %v)", en.query, got, err, want, werr)
	case err != nil:
		// Both failed (their messages differ in form): no decision
		// either way, and the caller fails closed.
		return nil, err
	case (got == nil) != (want == nil) || (got != nil && !got.Equal(want)):
		return nil, fmt.Errorf("evaluators disagree on %s:\nir:      %v\ntopdown: %v\ninput: %v", en.query, got, want, input)
	}
	return got, nil
}

func (e *Engine) topdown(ctx context.Context, en *entry, input ast.Value) (*ast.Term, error) {
	if e.queries != nil {
		e.prepareOnce.Do(func() {
			// NewEngine compiled this same bundle, so an error here is
			// not expected; it is kept, and every topdown call reports it.
			b, err := withSyntaxTrees(e.bundle)
			if err == nil {
				err = prepareTopdown(context.WithoutCancel(ctx), b, e.queries)
			}
			if err != nil {
				e.prepareErr = fmt.Errorf("compile bundle %s: %w", e.revision, err)
			}
		})
		if e.prepareErr != nil {
			return nil, e.prepareErr
		}
	}
	rs, err := en.pq.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", en.query, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, nil
	}
	t, _ := rs[0].Expressions[0].Value.(*ast.Term)
	if t == nil {
		return nil, fmt.Errorf("evaluate %s: result is not a term", en.query)
	}
	return t, nil
}
