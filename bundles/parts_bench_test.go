package bundles_test

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// BenchmarkDecisionParts breaks the cost of BenchmarkAdmissionDecision
// down: each sub-benchmark evaluates one part of the admission decision
// for the same request against the prod bundle, with the input converted
// once. A part includes the parts it depends on (every rule family reads
// the subject and the tab's rules), so the cost of a part alone is its
// time minus that of "subject+rules".
func BenchmarkDecisionParts(b *testing.B) {
	repo, err := policy.LoadDir(examplesDir)
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := bundles.Build(repo, "prod", "bench")
	if err != nil {
		b.Fatal(err)
	}
	eng, err := bundles.NewEngine(context.Background(), bundle)
	if err != nil {
		b.Fatal(err)
	}
	input, err := eng.AdmissionInput(create(typicalPod()), bundles.Facts{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	const (
		subject = "count(data.palisade.lib.subject.containers) + count(data.palisade.lib.subject.container_images)"
		rules   = "count(data.palisade.lib.decision.rules)"
	)
	for _, part := range []struct{ name, query string }{
		{"query", "true"},
		{"subject", subject},
		{"subject+rules", subject + " + " + rules},
		{"pod", "count(data.palisade.rules.pod.findings)"},
		{"pss", "count(data.palisade.lib.pss.violations(data.palisade.lib.subject.pod_spec, data.palisade.lib.subject.pod_metadata, data.palisade.lib.decision.rules.podSecurityStandards.level))"},
		{"container", "count(data.palisade.rules.container.findings)"},
		{"image", "count(data.palisade.rules.image.findings)"},
		{"kubectl", "count(data.palisade.rules.kubectl.findings)"},
		{"findings", "count(data.palisade.admission.findings)"},
		{"violations", "count(data.palisade.admission.violations)"},
		{"decision", bundles.AdmissionQuery},
	} {
		pq, err := rego.New(
			rego.Query(part.query),
			rego.ParsedBundle(bundles.Root, bundle),
			rego.StoreReadAST(true),
		).PrepareForEval(context.Background())
		if err != nil {
			b.Fatalf("%s: %v", part.name, err)
		}
		b.Run(part.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(input))
				if err != nil || len(rs) != 1 {
					b.Fatalf("%s: %v %v", part.name, rs, err)
				}
			}
		})
	}
}
