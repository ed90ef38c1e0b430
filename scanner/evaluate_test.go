package scanner

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/bundles"
)

func TestEvaluateChoosesTheStrongestAction(t *testing.T) {
	tests := []struct {
		name   string
		pod    *corev1.Pod
		action string   // the strongest action; "" when compliant
		rules  []string // the violated rules, sorted
		skip   bool     // not evaluated at all
	}{
		{name: "compliant pod has no violation", pod: compliantPod(defaultNS, "web")},
		{name: "latest tag only logs", pod: compliantPod(defaultNS, "web", latestTag), action: "log", rules: []string{"latestTag"}},
		{name: "host network isolates", pod: compliantPod(defaultNS, "web", hostNetwork), action: "isolate", rules: []string{"hostNamespaces"}},
		{
			name: "terminate wins over isolate and log", pod: compliantPod(defaultNS, "web", privileged, hostNetwork, latestTag),
			action: "terminate", rules: []string{"hostNamespaces", "latestTag", "privileged"},
		},
		{name: "payments terminates root pods", pod: compliantPod("payments", "api", func(p *corev1.Pod) {
			p.Spec.SecurityContext.RunAsNonRoot = nil
			p.Spec.SecurityContext.RunAsUser = nil
			p.Spec.Containers[0].Image = "ghcr.io/acme/payments/api:2.3.1" + digest
		}), action: "terminate", rules: []string{"runAsRoot"}},
		{name: "ci has no continuous rules", pod: compliantPod("ci", "build", privileged, hostNetwork)},
		{name: "system images are an implicit exception", pod: compliantPod(defaultNS, "palisade", systemImage, privileged)},
		{name: "system namespace is skipped", pod: compliantPod(systemNS, "controller", privileged), skip: true},
		{name: "kube-system is skipped, as at admission", pod: compliantPod("kube-system", "kube-proxy", privileged, hostNetwork), skip: true},
		{name: "terminating pod is skipped", pod: compliantPod(defaultNS, "web", privileged, terminating), skip: true},
		{name: "stopped pod is skipped", pod: compliantPod(defaultNS, "web", privileged, succeeded), skip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, mustEngine(t, prodEngine), Options{}, tt.pod)
			ev, err := h.s.evaluate(h.ctx, h.engines.Engine(), now, true, func(string) bool { return true })
			if err != nil {
				t.Fatal(err)
			}
			if tt.skip {
				if ev.evaluated != 0 {
					t.Fatalf("evaluated %d pods, want the pod skipped", ev.evaluated)
				}
				return
			}
			if ev.evaluated != 1 || len(ev.namespaces) != 1 {
				t.Fatalf("evaluated %d pods in %d namespaces, want 1 in 1", ev.evaluated, len(ev.namespaces))
			}
			r := ev.namespaces[0].pods[0]
			if r.err != nil {
				t.Fatal(r.err)
			}
			var rules []string
			for _, v := range r.violations {
				rules = append(rules, v.Rule)
			}
			if r.action != tt.action || !slices.Equal(rules, tt.rules) {
				t.Errorf("action %q rules %v, want %q %v (violations %+v)", r.action, rules, tt.action, tt.rules, r.violations)
			}
		})
	}
}

// The Rego reads obj.kind: a pod converted from the typed object without
// it would match no rule.
func TestPodObjectCarriesKind(t *testing.T) {
	obj, err := podObject(compliantPod(defaultNS, "web", privileged))
	if err != nil {
		t.Fatal(err)
	}
	kind, version := obj.Get(ast.InternedTerm("kind")), obj.Get(ast.InternedTerm("apiVersion"))
	if !kind.Equal(ast.StringTerm("Pod")) || !version.Equal(ast.StringTerm("v1")) {
		t.Fatalf("kind %v apiVersion %v, want Pod v1", kind, version)
	}
}

func TestEvaluateScopesNamespaces(t *testing.T) {
	h := newHarness(t, mustEngine(t, prodEngine), Options{},
		compliantPod("a", "one"), compliantPod("b", "two"), compliantPod("b", "three"))
	ev, err := h.s.evaluate(h.ctx, h.engines.Engine(), now, false, func(ns string) bool { return ns == "b" })
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.namespaces) != 1 || ev.namespaces[0].name != "b" || ev.evaluated != 2 {
		t.Fatalf("scope b: %d namespaces, %d pods", len(ev.namespaces), ev.evaluated)
	}
	if got := []string{ev.namespaces[0].pods[0].pod.Name, ev.namespaces[0].pods[1].pod.Name}; !slices.Equal(got, []string{"three", "two"}) {
		t.Errorf("pods in order %v, want sorted by name", got)
	}
}

// gatherer answers verification facts: signed when the image is in signed.
type gatherer struct {
	signed map[string]bool
	mu     sync.Mutex
	calls  []string // namespace/secrets of each call
}

func (g *gatherer) Gather(_ context.Context, _ *bundles.Engine, wanted map[string][]string, namespace string, pullSecrets []string) map[string]any {
	g.mu.Lock()
	g.calls = append(g.calls, namespace+"/"+strings.Join(pullSecrets, ","))
	g.mu.Unlock()
	out := map[string]any{}
	for ref, attestors := range wanted {
		sigs := map[string]any{}
		for _, a := range attestors {
			sig := map[string]any{"verified": g.signed[ref]}
			if !g.signed[ref] {
				sig["reason"] = "no signature"
			}
			sigs[a] = sig
		}
		out[ref] = map[string]any{"digest": "sha256:" + strings.Repeat("0", 64), "signatures": sigs, "attestations": map[string]any{}}
	}
	return out
}

// Continuous verification rules decide on the facts the gatherer finds,
// as admission's do.
func TestEvaluateGathersVerificationFacts(t *testing.T) {
	eng, err := editedEngine("rev-signed", "        latestTag: {action: log}\n", `        latestTag: {action: log}
        imageSignature:
          - name: release
            action: isolate
            images: [{prefix: "ghcr.io/acme/release/"}]
            attestors: [acme_release]
`)
	if err != nil {
		t.Fatalf("build engine: %v", err)
	}
	const signed, unsigned = "ghcr.io/acme/release/web:1.0" + digest, "ghcr.io/acme/release/api:1.0" + digest
	g := &gatherer{signed: map[string]bool{signed: true}}
	image := func(ref string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = ref
			p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		}
	}
	h := newHarness(t, eng, Options{Images: g},
		compliantPod(defaultNS, "signed", image(signed)), compliantPod(defaultNS, "unsigned", image(unsigned)), compliantPod(defaultNS, "other"))
	ev, err := h.s.evaluate(h.ctx, eng, now, true, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, r := range ev.namespaces[0].pods {
		if r.err != nil {
			t.Fatal(r.err)
		}
		actions[r.pod.Name] = r.action
	}
	if want := map[string]string{"signed": "", "unsigned": "isolate", "other": ""}; !maps.Equal(actions, want) {
		t.Errorf("actions %v, want %v", actions, want)
	}
	// Only pods a rule selects cost a registry call.
	if want := []string{"default/regcred", "default/regcred"}; !slices.Equal(g.calls, want) {
		t.Errorf("gather calls %v, want %v", g.calls, want)
	}
}
