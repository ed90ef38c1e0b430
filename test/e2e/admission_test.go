package e2e

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/test/cluster"
	"github.com/palisade-dev/palisade/test/gitserver"
)

// up is a running `palisade up`.
type up struct {
	out  *syncBuffer
	done chan struct{}
}

// startUp runs `palisade up dir args...` against the cluster and waits
// until it says it is ready (bundle active, webhook registered).
func startUp(t *testing.T, c *cluster.Cluster, dir string, args ...string) *up {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, palisadeBin, append([]string{"up", dir, "--kubeconfig", c.Kubeconfig, "--interval", "300ms"}, args...)...)
	u := &up{out: &syncBuffer{}, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = u.out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = io.WriteString(u.out, sc.Text()+"\n")
			if strings.Contains(sc.Text(), "palisade up: ready") {
				close(ready)
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(u.done) }()
	t.Cleanup(func() {
		cancel()
		<-u.done
		if t.Failed() {
			t.Logf("palisade up output:\n%s", u.out)
		}
	})
	select {
	case <-ready:
	case <-u.done:
		t.Fatalf("palisade up exited:\n%s", u.out)
	case <-time.After(60 * time.Second):
		t.Fatalf("palisade up not ready within 60s:\n%s", u.out)
	}
	return u
}

func pod(ns, name, image string, extraContainerFields string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  containers:
    - name: ` + name + `-container
      image: ` + image + `
` + extraContainerFields
}

func TestAdmissionOnRealAPIServer(t *testing.T) {
	c := cluster.Start(t)
	for _, ns := range []string{"payments", "ci", "monitoring"} {
		if _, stderr, err := c.Kubectl("create", "namespace", ns); err != nil {
			t.Fatalf("create namespace %s: %v %s", ns, err, stderr)
		}
	}
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	repo.CopyDir("example policy", "../../policies-example")
	startUp(t, c, repo.Work)

	apply := func(t *testing.T, manifest string) (string, error) {
		t.Helper()
		_, stderr, err := c.KubectlInput(manifest, "apply", "-f", "-")
		return stderr, err
	}
	const denied = `admission webhook "validate.palisade.dev" denied the request: `
	tests := []struct {
		name     string
		manifest string
		allowed  bool
		want     []string // substrings of kubectl's stderr
	}{
		{
			name:     "privileged busybox pod is denied with the rule text",
			manifest: pod("default", "busybox", "busybox:1.36", "      securityContext: {privileged: true}\n"),
			want:     []string{denied + `containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (block)`},
		},
		{
			name: "deployment with a privileged template is denied",
			manifest: `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:1.0
          securityContext: {privileged: true}
`,
			want: []string{denied, `rule privileged "true" in container(s) "web" (block)`},
		},
		{
			name:     "log rules are allowed with kubectl-visible warnings",
			manifest: pod("default", "plain", "ghcr.io/acme/web:1.0", ""),
			allowed:  true,
			want:     []string{`Warning: image violates rule digestPinning "ghcr.io/acme/web:1.0" in container(s) "plain-container" (log)`},
		},
		{
			name:     "payments makes digest pinning a block",
			manifest: pod("payments", "plain", "ghcr.io/acme/payments/api:1.0", ""),
			want:     []string{denied, `rule digestPinning "ghcr.io/acme/payments/api:1.0"`},
		},
		{
			name:     "ci relaxes the latest tag to a warning",
			manifest: pod("ci", "builder", "ghcr.io/acme/builder:latest", ""),
			allowed:  true,
			want:     []string{`Warning: image violates rule latestTag "ghcr.io/acme/builder:latest" in container(s) "builder-container" (log)`},
		},
		{
			name:     "the latest tag is blocked cluster-wide",
			manifest: pod("default", "builder", "ghcr.io/acme/builder:latest", ""),
			want:     []string{denied, `rule latestTag "ghcr.io/acme/builder:latest"`},
		},
		{
			name:     "node-exporter's exception admits its host access in monitoring",
			manifest: mustReadFile(t, "../../policies-example/tests/manifests/node-exporter-daemonset.yaml"),
			allowed:  true,
		},
		{
			name:     "the compliant payments deployment is admitted",
			manifest: mustReadFile(t, "../../policies-example/tests/manifests/golden-deployment-payments.yaml"),
			allowed:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stderr, err := apply(t, tt.manifest)
			if tt.allowed != (err == nil) {
				t.Fatalf("allowed = %t, want %t; kubectl said:\n%s", err == nil, tt.allowed, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("kubectl output lacks %q:\n%s", w, stderr)
				}
			}
		})
	}

	t.Run("kubectl exec into a protected namespace is denied", func(t *testing.T) {
		if _, stderr, err := c.KubectlInput(mustReadFile(t, "../../policies-example/tests/manifests/golden-pod-default.yaml"), "apply", "-f", "-"); err != nil {
			t.Fatalf("golden pod: %v\n%s", err, stderr)
		}
		_, stderr, err := c.Kubectl("exec", "-n", "default", "web", "--", "true")
		if err == nil || !strings.Contains(stderr, denied+`kubectl violates rule kubectlAccess "exec"`) {
			t.Fatalf("exec: err %v, stderr:\n%s", err, stderr)
		}
	})

	t.Run("a committed policy change changes the outcome without a restart", func(t *testing.T) {
		manifest := pod("default", "unpinned", "ghcr.io/acme/web:2.0", "")
		if stderr, err := apply(t, manifest); err != nil {
			t.Fatalf("before the change: %v\n%s", err, stderr)
		}
		policyText := mustReadFile(t, "../../policies-example/clusters/prod.yaml")
		repo.Commit("block unpinned images", map[string]string{
			"clusters/prod.yaml": replaceOnce(t, policyText, "digestPinning: {action: log}", "digestPinning: {action: block}"),
		})
		// Server-side dry runs go through admission and store nothing, so
		// every attempt asks the webhook again.
		manifest = pod("default", "unpinned-2", "ghcr.io/acme/web:2.0", "")
		waitFor(t, 30*time.Second, "the new policy denies unpinned images", func() bool {
			_, stderr, err := c.KubectlInput(manifest, "apply", "--dry-run=server", "-f", "-")
			return err != nil && strings.Contains(stderr, `rule digestPinning "ghcr.io/acme/web:2.0"`)
		})
	})
}

func mustReadFile(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
