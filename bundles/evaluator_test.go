package bundles_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// A bundle that compiles but that irvm cannot run (here: an admission
// rule reading data through a variable, which the plan turns into a
// dynamic call) is decided by topdown in the default mode, and refused in
// check mode, where every decision must come from both.
func TestEvaluatorFallback(t *testing.T) {
	repo, err := policy.LoadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundles.Build(repo, "prod", "fallback")
	if err != nil {
		t.Fatal(err)
	}
	dyn := "package palisade.dyn\n\na.v := 1\n\nb.v := 2\n"
	parsed, err := ast.ParseModuleWithOpts("palisade/dyn.rego", dyn, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	b.Modules = append(b.Modules, bundle.ModuleFile{Path: "palisade/dyn.rego", URL: "palisade/dyn.rego", Raw: []byte(dyn), Parsed: parsed})
	for i, m := range b.Modules {
		if strings.HasSuffix(m.Path, "palisade/admission.rego") {
			src := string(m.Raw) + "\nfrom_data := data.palisade.dyn[input.request.name].v\n"
			src = strings.Replace(src, `"allowed": count(`, `"n": from_data, "allowed": count(`, 1)
			if parsed, err = ast.ParseModuleWithOpts(m.Path, src, ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
				t.Fatal(err)
			}
			b.Modules[i].Raw, b.Modules[i].Parsed = []byte(src), parsed
		}
	}

	t.Setenv(bundles.EvaluatorEnv, bundles.EvaluatorIR)
	eng, err := bundles.NewEngine(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if got := eng.Evaluator(); !strings.HasPrefix(got, "topdown (") || !strings.Contains(got, "dynamic call") {
		t.Errorf("evaluator %q, want topdown with the reason", got)
	}
	req := create(workload("Deployment", "default", "a"))
	if d, err := eng.Admission(context.Background(), req, bundles.Facts{Now: now}); err != nil || !d.Allowed {
		t.Errorf("decision by topdown: %+v, %v", d, err)
	}

	t.Setenv(bundles.EvaluatorEnv, bundles.EvaluatorCheck)
	if _, err := bundles.NewEngine(context.Background(), b); err == nil || !strings.Contains(err.Error(), "dynamic call") {
		t.Errorf("check mode with a bundle irvm cannot run: %v, want an error", err)
	}

	t.Setenv(bundles.EvaluatorEnv, "fast")
	if _, err := bundles.NewEngine(context.Background(), b); err == nil || !strings.Contains(err.Error(), "PALISADE_EVALUATOR") {
		t.Errorf("unknown evaluator: %v, want an error naming the variable", err)
	}
}

// One engine serves concurrent reviews: irvm's constants and pooled
// machines are shared. Under -race this also proves they are not
// written concurrently.
func TestConcurrentDecisions(t *testing.T) {
	t.Setenv(bundles.EvaluatorEnv, bundles.EvaluatorIR)
	eng := mustEngine(t, func() (*bundles.Engine, error) {
		repo, err := policy.LoadDir(examplesDir)
		if err != nil {
			return nil, err
		}
		return engineOf(repo)
	})
	reqs := []*bundles.Request{create(typicalPod()), create(busybox("default")), create(nodeExporter("monitoring")), connect("default", "exec", "", developer)}
	want := make([]*bundles.Decision, len(reqs))
	for i, r := range reqs {
		d, err := eng.Admission(context.Background(), r, bundles.Facts{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = d
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for n := range 40 {
				i := (g + n) % len(reqs)
				d, err := eng.Admission(context.Background(), reqs[i], bundles.Facts{Now: now})
				if err == nil && !reflect.DeepEqual(d, want[i]) {
					err = fmt.Errorf("request %d: decision %+v, want %+v", i, d, want[i])
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
