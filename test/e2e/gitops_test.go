package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/test/gitserver"
)

const (
	webhookSecret = "webhook-s3cret"
	bundleToken   = "bundle-t0ken"
	signingSecret = "signing-s3cret-at-least-32-bytes-long"
)

// gitops is a policy repository on a real Git server, a controller
// following it, and the settings a bundle client needs.
type gitops struct {
	repo    *gitserver.Repo
	ctrl    *controller
	dir     string
	args    []string
	signKey string
}

func newGitOps(t testing.TB) *gitops {
	t.Helper()
	srv := gitserver.Start(t)
	g := &gitops{repo: srv.NewRepo(t, "policy"), dir: t.TempDir()}
	g.repo.CopyDir("example policy", "../../policies-example")
	g.signKey = writeFile(t, g.dir, "sign.key", signingSecret)
	g.args = []string{
		"--repo", g.repo.URL,
		"--interval", "1h", // only the webhook triggers passes in these tests
		"--workdir", filepath.Join(g.dir, "work"),
		"--webhook-secret-file", writeFile(t, g.dir, "webhook", webhookSecret),
		"--token-file", writeFile(t, g.dir, "token", bundleToken),
		"--sign-key-file", g.signKey, "--sign-alg", "HS256", "--sign-key-id", "palisade",
	}
	g.ctrl = startController(t, g.args...)
	return g
}

// client starts a bundle client for the prod cluster that verifies
// signatures and caches in cacheDir.
func (g *gitops) client(t testing.TB, cacheDir string) (*bundles.Client, context.CancelFunc) {
	t.Helper()
	key, err := bundles.LoadVerificationKey(g.signKey, "HS256", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	c, err := bundles.NewClient(bundles.ClientOptions{
		URL: g.ctrl.URL + "/bundles/prod.tar.gz", Token: bundleToken, Verify: key,
		CacheDir: cacheDir, Interval: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, stop
}

func TestGitOpsEndToEnd(t *testing.T) {
	g := newGitOps(t)
	first := g.repo.Push()
	g.ctrl.push(t, webhookSecret, first)
	cacheDir := t.TempDir()
	client, stopClient := g.client(t, cacheDir)
	waitFor(t, 30*time.Second, "client holds the first revision", func() bool { return client.Revision() == first })

	// A policy change, announced by the push webhook, is served and
	// picked up by the client.
	stricter := replaceOnce(t, readExample(t), "digestPinning: {action: log}", "digestPinning: {action: block}")
	second := g.repo.Commit("block unpinned images", map[string]string{"clusters/prod.yaml": stricter})
	start := time.Now()
	g.ctrl.push(t, webhookSecret, second)
	served := waitFor(t, 2*time.Second, "new revision served", func() bool { return g.ctrl.status(t).Clusters["prod"].Revision == second })
	waitFor(t, 10*time.Second, "client holds the new revision", func() bool { return client.Revision() == second })
	t.Logf("push webhook → served in %v, → client in %v", served, time.Since(start))

	// An invalid commit: the old revision keeps serving, the status names
	// the file, line and column.
	etag := g.ctrl.bundleETag(t, bundleToken, "prod")
	broken := replaceOnce(t, stricter, "latestTag: {action: block}", "latestTag: {action: deny}")
	bad := g.repo.Commit("typo", map[string]string{"clusters/prod.yaml": broken})
	g.ctrl.push(t, webhookSecret, bad)
	waitFor(t, 5*time.Second, "status reports the bad commit", func() bool {
		st := g.ctrl.status(t)
		return st.LastError != nil && st.LastError.Commit == bad
	})
	st := g.ctrl.status(t)
	if len(st.LastError.Errors) == 0 {
		t.Fatalf("status error without policy errors: %+v", st.LastError)
	}
	e := st.LastError.Errors[0]
	if e.Pos.File != "clusters/prod.yaml" || e.Pos.Line == 0 || e.Pos.Column == 0 || !strings.Contains(e.Msg, `"deny"`) {
		t.Errorf("status error = %+v, want clusters/prod.yaml:line:col about \"deny\"", e)
	}
	if st.Clusters["prod"].Revision != second || g.ctrl.bundleETag(t, bundleToken, "prod") != etag || client.Revision() != second {
		t.Fatalf("invalid commit replaced the served bundle: status %+v", st.Clusters["prod"])
	}

	// A commit that does not change prod's policy keeps its revision and ETag.
	docs := g.repo.Commit("docs", map[string]string{"clusters/prod.yaml": stricter, "README.md": "# policy\n"})
	g.ctrl.push(t, webhookSecret, docs)
	waitFor(t, 5*time.Second, "status recovers", func() bool {
		st := g.ctrl.status(t)
		return st.LastError == nil && st.Clusters["prod"].Commit == docs
	})
	if rev := g.ctrl.status(t).Clusters["prod"].Revision; rev != second || g.ctrl.bundleETag(t, bundleToken, "prod") != etag {
		t.Errorf("unchanged policy produced a new revision %s (want %s)", rev, second)
	}

	// The next good change recovers fully.
	third := g.repo.Commit("log latest again", map[string]string{"clusters/prod.yaml": replaceOnce(t, stricter, "latestTag: {action: block}", "latestTag: {action: log}")})
	g.ctrl.push(t, webhookSecret, third)
	waitFor(t, 10*time.Second, "client holds the recovered revision", func() bool { return client.Revision() == third })

	// The controller goes away: the client keeps its bundle; the
	// controller comes back and the client follows it again.
	g.ctrl.Stop()
	time.Sleep(200 * time.Millisecond)
	if client.Revision() != third || client.Engine() == nil {
		t.Fatalf("client lost its bundle while the controller was down")
	}
	g.ctrl = startControllerAt(t, g.ctrl.Addr, g.args...)
	fourth := g.repo.Commit("block unpinned images again", map[string]string{"clusters/prod.yaml": stricter})
	g.ctrl.push(t, webhookSecret, fourth)
	waitFor(t, 30*time.Second, "client follows the restarted controller", func() bool { return client.Revision() == fourth })

	// The client restarts while the controller is down: it serves the
	// last good bundle from its cache.
	stopClient()
	g.ctrl.Stop()
	restarted, _ := g.client(t, cacheDir)
	waitFor(t, 5*time.Second, "restarted client serves from its cache", func() bool { return restarted.Ready() })
	if restarted.Revision() != fourth {
		t.Fatalf("restarted client has revision %q, want %s", restarted.Revision(), fourth)
	}
	d, err := restarted.Engine().Admission(context.Background(), privilegedPod(), bundles.Facts{Now: time.Now()})
	if err != nil || d.Allowed {
		t.Fatalf("cached bundle does not decide: %+v, %v", d, err)
	}
}

func privilegedPod() *bundles.Request {
	return &bundles.Request{
		Kind: bundles.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "default", Operation: "CREATE",
		Object: map[string]any{
			"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "busybox"},
			"spec": map[string]any{"containers": []any{map[string]any{
				"name": "busybox-container", "image": "busybox:1.36", "securityContext": map[string]any{"privileged": true},
			}}},
		},
	}
}
