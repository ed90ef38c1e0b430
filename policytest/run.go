package policytest

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/imageverify"
	"github.com/palisade-dev/palisade/policy"
)

// DefaultRevision is the bundle revision of offline evaluations.
const DefaultRevision = "local"

// Engines builds and caches one engine per cluster of a repository.
type Engines struct {
	repo    *policy.Repo
	engines map[string]*bundles.Engine
}

// NewEngines returns engines over a loaded repository.
func NewEngines(repo *policy.Repo) *Engines {
	return &Engines{repo: repo, engines: map[string]*bundles.Engine{}}
}

// For returns the engine of a cluster, building its bundle on first use.
func (e *Engines) For(ctx context.Context, cluster string) (*bundles.Engine, error) {
	if eng, ok := e.engines[cluster]; ok {
		return eng, nil
	}
	b, err := bundles.Build(e.repo, cluster, DefaultRevision)
	if err != nil {
		return nil, err
	}
	eng, err := bundles.NewEngine(ctx, b)
	if err != nil {
		return nil, err
	}
	e.engines[cluster] = eng
	return eng, nil
}

// Result is the outcome of one test case.
type Result struct {
	Test     string
	Case     string
	Pos      policy.Pos
	Failures []string
	Decision *bundles.Decision
	Elapsed  time.Duration
}

// Passed reports whether the case met every expectation.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Run evaluates every case of every PolicyTest in the repository. The
// error is for cases that could not be evaluated at all (a bundle that
// does not build); failed expectations are in the results.
func Run(ctx context.Context, repo *policy.Repo) ([]Result, error) {
	engines := NewEngines(repo)
	var results []Result
	for _, t := range repo.Tests {
		eng, err := engines.For(ctx, t.Spec.Cluster)
		if err != nil {
			return results, fmt.Errorf("test %s: %w", t.Metadata.Name, err)
		}
		for i := range t.Spec.Cases {
			results = append(results, runCase(ctx, repo, eng, t, i))
		}
	}
	return results, nil
}

func runCase(ctx context.Context, repo *policy.Repo, eng *bundles.Engine, t *policy.PolicyTest, i int) Result {
	c := &t.Spec.Cases[i]
	field := fmt.Sprintf("spec.cases[%d]", i)
	res := Result{Test: t.Metadata.Name, Case: c.Name, Pos: t.Source.Pos(field)}
	fail := func(format string, args ...any) Result {
		res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
		return res
	}
	obj := c.Object
	if c.File != "" {
		name := path.Join(path.Dir(t.Source.File), c.File)
		f, err := repo.FS.Open(name)
		if err != nil {
			return fail("open %s: %v", name, err)
		}
		manifests, err := ReadManifests(f, name)
		f.Close()
		if err != nil {
			return fail("%v", err)
		}
		if len(manifests) != 1 {
			return fail("%s holds %d objects; a case needs exactly one", name, len(manifests))
		}
		obj = manifests[0].Object
	}
	now := time.Now()
	for _, s := range []string{t.Spec.Now, c.Now} {
		if s != "" {
			now, _ = time.Parse(time.RFC3339, s) // validated by policy.Load
		}
	}
	facts := bundles.Facts{Now: now, NamespaceLabels: c.NamespaceLabels, Verification: verificationFacts(c.Images)}
	start := time.Now()
	var d *bundles.Decision
	var err error
	if c.Point == "continuous" {
		d, err = eng.Continuous(ctx, withNamespace(obj, c.Namespace), facts)
		if d != nil {
			d.Allowed = !slices.ContainsFunc(d.Violations, func(v bundles.Violation) bool {
				return v.Action == policy.ActionIsolate || v.Action == policy.ActionTerminate
			})
		}
	} else {
		d, err = eng.Admission(ctx, Request(obj, RequestOptions{
			Namespace: c.Namespace, Operation: c.Operation, SubResource: c.SubResource, User: c.User, Groups: c.Groups,
		}), facts)
	}
	res.Elapsed = time.Since(start)
	if err != nil {
		return fail("%v", err)
	}
	res.Decision = d
	if *c.Expect.Allowed != d.Allowed {
		fail("allowed: want %t, got %t%s", *c.Expect.Allowed, d.Allowed, describeViolations(d))
	}
	if c.Expect.Violations != nil {
		want := slices.Clone(c.Expect.Violations)
		slices.Sort(want)
		want = slices.Compact(want)
		var got []string
		for _, v := range d.Violations {
			got = append(got, v.Rule)
		}
		slices.Sort(got)
		got = slices.Compact(got)
		if !slices.Equal(want, got) {
			fail("violations: want [%s], got [%s]%s", strings.Join(want, " "), strings.Join(got, " "), describeViolations(d))
		}
	}
	for _, m := range c.Expect.Messages {
		if !slices.ContainsFunc(d.Violations, func(v bundles.Violation) bool { return strings.Contains(v.Message, m) }) {
			fail("no violation message contains %q%s", m, describeViolations(d))
		}
	}
	return res
}

// withNamespace sets a pod's namespace for a continuous case.
func withNamespace(obj map[string]any, ns string) map[string]any {
	if ns == "" {
		return obj
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	meta := map[string]any{}
	if m, ok := obj["metadata"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	meta["namespace"] = ns
	out["metadata"] = meta
	return out
}

func describeViolations(d *bundles.Decision) string {
	if len(d.Violations) == 0 {
		return " (no violations)"
	}
	var b strings.Builder
	for _, v := range d.Violations {
		b.WriteString("\n\t\t" + v.Message)
	}
	return b.String()
}

// verificationFacts turns a case's images into the facts the image
// verifier hands Rego (input.facts.verification; imageverify.ImageFacts
// as JSON): signatures by attestor, scans as cosign vulnerability
// attestations.
func verificationFacts(images map[string]policy.TestImage) map[string]any {
	if len(images) == 0 {
		return nil
	}
	out := make(map[string]any, len(images))
	for ref, img := range images {
		if img.RegistryError != "" {
			out[ref] = map[string]any{"error": img.RegistryError}
			continue
		}
		signatures := map[string]any{}
		for _, a := range img.SignedBy {
			signatures[a] = map[string]any{"verified": true}
		}
		attestations := map[string][]any{}
		for _, scan := range img.Scans {
			vulns := make([]any, len(scan.Vulnerabilities))
			for i, v := range scan.Vulnerabilities {
				vulns[i] = map[string]any{"id": v.ID, "severity": v.Severity}
			}
			attestations[scan.Attestor] = append(attestations[scan.Attestor], map[string]any{
				"predicateType": imageverify.VulnPredicateType,
				"predicate":     map[string]any{"scanner": map[string]any{"result": map[string]any{"vulnerabilities": vulns}}},
				"timestamp":     scan.Finished,
			})
		}
		out[ref] = map[string]any{"signatures": signatures, "attestations": attestations}
	}
	return out
}
