package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/scanner"
	"github.com/palisade-dev/palisade/test/cluster"
	"github.com/palisade-dev/palisade/test/gitserver"
)

// Edits of the example policy for the scanner tests.
const (
	// batchDefinition scans batch only when a revision activates (its
	// schedule never comes up during a test), so that one scan's
	// terminations can be counted.
	batchDefinition = `    - name: batch
      description: Batch jobs; re-checked when a new revision activates.
      namespaces: [batch]
      deployment: *clusterDeployment
      continuous:
        schedule: "@every 1h"
        rules:
          privileged: {action: log}
`
	// legacyNginxException excepts the shop's nginx from the registry rule.
	legacyNginxException = `      - name: legacy_nginx
        description: The shop's nginx until it moves to ghcr.io/acme.
        rules: [allowedRegistries]
        namespaces: [shop]
        images: [{prefix: "docker.io/library/nginx:"}]
        ticket: SEC-300
`
)

// TestScannerOnRealAPIServer runs `palisade scanner` against a real
// kube-apiserver, following a controller that follows a real Git server:
// each policy change is a commit, and its effect on running pods is
// observed through the API.
func TestScannerOnRealAPIServer(t *testing.T) {
	c := cluster.Start(t)
	installReportCRDs(t, c)
	k := newClients(t, c)
	for _, ns := range []string{"shop", "batch", "crowd"} {
		k.namespace(t, ns)
	}
	// Running pods (no webhook here: they were admitted before the
	// policies below).
	k.create(t, goldenPod("shop", "web"))
	k.create(t, plainPod("shop", "legacy", "docker.io/library/nginx:1.27"))
	for i := range 12 {
		k.create(t, withPrivileged(plainPod("batch", fmt.Sprintf("job-%02d", i), "ghcr.io/acme/batch:1.0"+e2eDigest)))
	}
	k.create(t, goldenPod("batch", "web"))
	for i := range 15 {
		k.create(t, plainPod("crowd", fmt.Sprintf("app-%02d", i), "ghcr.io/acme/app:latest"))
	}

	g := newGitOps(t)
	commit := func(msg, policy string) string {
		t.Helper()
		sha := g.repo.Commit(msg, map[string]string{"clusters/prod.yaml": policy})
		g.ctrl.push(t, webhookSecret, sha)
		return sha
	}
	policy := replaceOnce(t, readExample(t), `schedule: "@every 10m"`, `schedule: "@every 2s"`)
	policy = replaceOnce(t, policy, "    - name: ci\n", batchDefinition+"    - name: ci\n")
	v1 := commit("re-check every 2 seconds; batch on new revisions", policy)
	waitFor(t, 30*time.Second, "controller serves v1", func() bool { return g.ctrl.status(t).Clusters["prod"].Revision == v1 })

	const maxResults = 20
	sc := startScanner(t,
		"--bundle-url", g.ctrl.URL+"/bundles/prod.tar.gz", "--bundle-token-file", filepath.Join(g.dir, "token"),
		"--verify-key-file", g.signKey, "--verify-alg", "HS256", "--verify-key-id", "palisade",
		"--cache-dir", t.TempDir(), "--kubeconfig", c.Kubeconfig,
		"--terminate-budget", "10", "--max-report-results", fmt.Sprint(maxResults))

	t.Run("reports list every evaluated pod with its result", func(t *testing.T) {
		rep := k.waitReport(t, "shop", v1)
		want := map[string][]string{"web": {"all=pass"}, "legacy": {"runAsRoot=warn"}}
		if got := podResults(rep); !equalResults(got, want) {
			t.Errorf("shop results %v, want %v", got, want)
		}
		rep = k.waitReport(t, "batch", v1)
		got := podResults(rep)
		if len(got) != 13 || !slices.Equal(got["web"], []string{"all=pass"}) || !slices.Equal(got["job-07"], []string{"privileged=warn"}) {
			t.Errorf("batch results %v, want 12 logged privileged pods and a pass", got)
		}
	})

	t.Run("reports stay within their bound", func(t *testing.T) {
		rep := k.waitReport(t, "crowd", v1)
		results := reportResults(rep)
		if len(results) != maxResults {
			t.Errorf("crowd report has %d results, want %d", len(results), maxResults)
		}
		// 15 pods, each with latestTag and runAsRoot logged.
		if s := reportSummary(rep); s["warn"] != 30 || s["pass"]+s["fail"]+s["error"] != 0 {
			t.Errorf("crowd summary %v, want 30 warn", s)
		}
		if got := rep.GetAnnotations()[scanner.AnnotationOmitted]; got != "10" {
			t.Errorf("omitted annotation %q, want 10", got)
		}
	})

	t.Run("a terminate rule deletes the pod", func(t *testing.T) {
		k.create(t, withPrivileged(goldenPod("shop", "rogue")))
		waitFor(t, 15*time.Second, "privileged pod terminated", func() bool { return k.pod(t, "shop", "rogue") == nil })
		waitFor(t, 10*time.Second, "the termination's Event", func() bool {
			return slices.ContainsFunc(k.events(t, "shop", "rogue"), func(m string) bool {
				return strings.Contains(m, `violates rule privileged "true"`) && strings.HasSuffix(m, "(terminate)")
			})
		})
	})

	// The registry of the shop's nginx is no longer trusted: the running
	// pod now violates a rule that isolates.
	policy = replaceOnce(t, policy, "registries: [docker.io/library, ghcr.io/acme,", "registries: [ghcr.io/acme,")
	policy = replaceOnce(t, policy, "        latestTag: {action: log}\n", "        latestTag: {action: log}\n        allowedRegistries: {action: isolate}\n")
	v2 := commit("docker.io/library is no longer trusted; isolate what runs from it", policy)
	t.Run("a policy change isolates a running pod", func(t *testing.T) {
		start := time.Now()
		waitFor(t, 30*time.Second, "legacy isolated", func() bool {
			p := k.pod(t, "shop", "legacy")
			return p != nil && p.Labels[scanner.IsolatedLabel] == "allowedRegistries" && k.isolationPolicy(t, "shop")
		})
		t.Logf("commit → pod isolated in %v", time.Since(start))
		if p := k.pod(t, "shop", "web"); p == nil || p.Labels[scanner.IsolatedLabel] != "" {
			t.Errorf("compliant pod isolated: %+v", p)
		}
		np, err := k.kube.NetworkingV1().NetworkPolicies("shop").Get(k.ctx, scanner.NetworkPolicyName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sel := np.Spec.PodSelector
		if len(sel.MatchLabels) != 0 || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Key != scanner.IsolatedLabel ||
			sel.MatchExpressions[0].Operator != metav1.LabelSelectorOpExists {
			t.Errorf("NetworkPolicy selects %+v, want the isolation label", sel)
		}
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) ||
			len(np.Spec.Ingress)+len(np.Spec.Egress) != 0 || np.Labels[scanner.ManagedByLabel] != scanner.ManagedBy {
			t.Errorf("NetworkPolicy %+v does not deny all traffic or is not Palisade's", np)
		}
		rep := k.waitReport(t, "shop", v2)
		if got := podResults(rep)["legacy"]; !slices.Equal(got, []string{"allowedRegistries=fail", "runAsRoot=warn"}) {
			t.Errorf("legacy results %v, want allowedRegistries=fail and runAsRoot=warn", got)
		}
	})

	policy = replaceOnce(t, policy, "      - name: legacy_root\n", legacyNginxException+"      - name: legacy_root\n")
	v3 := commit("except the shop's nginx until it moves", policy)
	t.Run("an exception removes the isolation", func(t *testing.T) {
		waitFor(t, 30*time.Second, "isolation removed", func() bool {
			p := k.pod(t, "shop", "legacy")
			_, labelled := p.Labels[scanner.IsolatedLabel]
			return !labelled && !k.isolationPolicy(t, "shop")
		})
		rep := k.waitReport(t, "shop", v3)
		if got := podResults(rep)["legacy"]; !slices.Equal(got, []string{"runAsRoot=warn"}) {
			t.Errorf("legacy results %v, want only runAsRoot=warn", got)
		}
	})

	policy = replaceOnce(t, policy, "          privileged: {action: log}\n", "          privileged: {action: terminate}\n")
	v4 := commit("terminate privileged batch jobs", policy)
	t.Run("the terminate budget holds per scan", func(t *testing.T) {
		rep := k.waitReport(t, "batch", v4)
		if got, want := k.podNames(t, "batch"), []string{"job-10", "job-11", "web"}; !slices.Equal(got, want) {
			t.Errorf("pods left after the scan %v, want %v (10 of 12 terminated, by name)", got, want)
		}
		var failed, held []string
		for _, r := range reportResults(rep) {
			if r.rule == "privileged" && r.result == "fail" && r.action == "terminate" {
				failed = append(failed, r.pod)
			}
			if r.heldBack {
				held = append(held, r.pod)
			}
		}
		if len(failed) != 12 || !slices.Equal(held, []string{"job-10", "job-11"}) {
			t.Errorf("report: %d privileged failures, held back %v; want 12 and job-10, job-11", len(failed), held)
		}
		if got := sc.metric(t, scanner.MetricHeldBack); got != 2 {
			t.Errorf("%s = %v, want 2", scanner.MetricHeldBack, got)
		}
		if got := sc.metric(t, scanner.MetricTerminated); got != 11 { // rogue and ten jobs
			t.Errorf("%s = %v, want 11", scanner.MetricTerminated, got)
		}
	})

	policy = replaceOnce(t, policy, "\n  mode: enforce\n", "\n  mode: audit\n")
	v5 := commit("audit only", policy)
	t.Run("audit mode only logs", func(t *testing.T) {
		k.waitReport(t, "batch", v5) // the full scan of the new revision
		if got, want := k.podNames(t, "batch"), []string{"job-10", "job-11", "web"}; !slices.Equal(got, want) {
			t.Errorf("audit scan terminated pods: left %v, want %v", got, want)
		}
		k.namespace(t, "audited")
		k.create(t, withPrivileged(goldenPod("audited", "priv")))
		k.create(t, withHostNetwork(goldenPod("audited", "host")))
		var got map[string][]string
		waitFor(t, 30*time.Second, "audited pods reported", func() bool {
			rep, err := k.dyn.Resource(scanner.PolicyReportGVR).Namespace("audited").Get(k.ctx, scanner.ReportName, metav1.GetOptions{})
			if err != nil {
				return false
			}
			got = podResults(rep)
			return len(got) == 2
		})
		want := map[string][]string{"priv": {"privileged=warn"}, "host": {"hostNamespaces=warn"}}
		if !equalResults(got, want) {
			t.Errorf("audited results %v, want %v", got, want)
		}
		for _, name := range []string{"priv", "host"} {
			p := k.pod(t, "audited", name)
			if p == nil || p.DeletionTimestamp != nil || p.Labels[scanner.IsolatedLabel] != "" {
				t.Errorf("audit acted on pod %s: %+v", name, p)
			}
		}
		if k.isolationPolicy(t, "audited") {
			t.Error("audit created an isolation NetworkPolicy")
		}
		for name, rule := range map[string]string{"priv": "privileged", "host": "hostNamespaces"} {
			waitFor(t, 10*time.Second, "audit Event on "+name, func() bool {
				return slices.ContainsFunc(k.events(t, "audited", name), func(m string) bool {
					return strings.Contains(m, "violates rule "+rule) && strings.HasSuffix(m, "(log)")
				})
			})
		}
	})
}

// TestScannerInPalisadeUp checks that `palisade up` runs the scanner: the
// first bundle is scanned at once, and every new revision again.
func TestScannerInPalisadeUp(t *testing.T) {
	c := cluster.Start(t)
	installReportCRDs(t, c)
	k := newClients(t, c)
	// Created before the webhook exists.
	k.create(t, goldenPod("default", "web"))
	k.create(t, withPrivileged(goldenPod("default", "priv")))
	latest := goldenPod("default", "latest")
	latest.Spec.Containers[0].Image = "ghcr.io/acme/web:latest"
	k.create(t, latest)
	k.create(t, withHostNetwork(goldenPod("default", "hostnet")))

	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	first := repo.CopyDir("example policy", "../../policies-example")
	u := startUp(t, c, repo.Work)
	if !strings.Contains(u.out.String(), "  scanner ") {
		t.Errorf("palisade up does not list the scanner:\n%s", u.out)
	}

	waitFor(t, 30*time.Second, "the first scan terminates the privileged pod", func() bool { return k.pod(t, "default", "priv") == nil })
	got := podResults(k.waitReport(t, "default", first))
	// A later scan of the same revision no longer sees the terminated pod.
	if p, ok := got["priv"]; ok && !slices.Equal(p, []string{"privileged=fail"}) {
		t.Errorf("priv results %v, want privileged=fail", p)
	}
	delete(got, "priv")
	if want := map[string][]string{"web": {"all=pass"}, "latest": {"latestTag=warn"}, "hostnet": {"hostNamespaces=fail"}}; !equalResults(got, want) {
		t.Errorf("default results %v, want %v", got, want)
	}
	// Isolation labels a pod that violates a block rule: Palisade's own
	// webhook lets the label through (an UPDATE that changes nothing that
	// runs is not checked).
	waitFor(t, 30*time.Second, "the host-network pod is isolated", func() bool {
		p := k.pod(t, "default", "hostnet")
		return p != nil && p.Labels["palisade.dev/isolated"] == "hostNamespaces" && k.isolationPolicy(t, "default")
	})

	// The example re-checks every 10 minutes: only the new revision's
	// scan can terminate the pod within the wait.
	policy := replaceOnce(t, readExample(t), "        latestTag: {action: log}\n", "        latestTag: {action: terminate}\n")
	rev := repo.Commit("terminate pods running latest", map[string]string{"clusters/prod.yaml": policy})
	waitFor(t, 30*time.Second, "the new revision's scan terminates the latest pod", func() bool { return k.pod(t, "default", "latest") == nil })
	if got := podResults(k.waitReport(t, "default", rev)); !slices.Equal(got["latest"], []string{"latestTag=fail"}) || !slices.Equal(got["web"], []string{"all=pass"}) {
		t.Errorf("results after the change %v", got)
	}
}

// equalResults compares podResults maps.
func equalResults(got, want map[string][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for pod, w := range want {
		if !slices.Equal(got[pod], w) {
			return false
		}
	}
	return true
}
