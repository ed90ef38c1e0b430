package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/learning"
	"github.com/palisade-dev/palisade/learning/pr"
	"github.com/palisade-dev/palisade/learning/service"
	"github.com/palisade-dev/palisade/policy"
)

// recorder stands in for learning/pr at the Publisher seam (the real
// publisher against a real Gitea is tested in learning/pr and test/e2e):
// it resolves the change's files against a directory, as the base branch.
type recorder struct {
	mu      sync.Mutex
	base    string
	changes []pr.Change
	files   []map[string][]byte
}

func (r *recorder) Publish(_ context.Context, c pr.Change) (*pr.Result, error) {
	files, err := c.Files(func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(r.base, p)) })
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
	r.files = append(r.files, files)
	return &pr.Result{Action: pr.Created, Number: len(r.changes), URL: "https://forge.example/pulls/1"}, nil
}

const cluster = `apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: prod}
spec:
  clusters: [prod]
  clusterWide:
    runtime: {rulesets: [shop_runtime, done_runtime]}
`

const shopRuleset = `# The shop's runtime rules: learning first.
apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: shop_runtime}
spec:
  mode: learning   # learn, then audit, then enforce
  process:
    selectors:
      - {name: any_exec, operation: [exec], kubernetesNamespace: [shop]}
    responses:
      - {match: [any_exec], actions: [alert, block]}
`

const doneRuleset = `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: done_runtime}
spec:
  mode: audit
  process:
    selectors:
      - {name: any_exec, operation: [exec]}
    responses:
      - {match: [any_exec], actions: [alert]}
`

type fixture struct {
	svc   *service.Service
	store *learning.Store
	pub   *recorder
	now   time.Time
}

func newFixture(t *testing.T, every time.Duration) *fixture {
	t.Helper()
	base := t.TempDir()
	policyDir := filepath.Join(base, "policy")
	for name, content := range map[string]string{
		"clusters/prod.yaml": cluster, "rulesets/shop.yaml": shopRuleset, "rulesets/done.yaml": doneRuleset,
	} {
		p := filepath.Join(policyDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := policy.LoadDir(policyDir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := learning.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, pub: &recorder{base: base}, now: time.Now().UTC()} // the store stamps LastNew with the real clock
	f.svc, err = service.New(service.Options{
		Store: store, Publisher: f.pub, PolicyDir: "policy", Quiet: time.Hour, Every: every,
		Now: func() time.Time { return f.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.SetPolicy("c0ffee", repo)
	return f
}

func (f *fixture) observe(t *testing.T, seq int, exe string, at time.Time) {
	t.Helper()
	b := &learning.Batch{ID: "node-1/boot-1/" + string(rune('0'+seq)), Node: "node-1", Sent: at, Observations: []learning.Observed{{
		Ruleset:  "shop_runtime",
		Workload: learning.WorkloadID{Namespace: "shop", Workload: "Deployment/web", Container: "app", Image: "registry.example/shop/web"},
		Key:      learning.Key{Kind: learning.KindProcess, Operation: "exec", Path: exe, ProcessName: filepath.Base(exe)},
		Evidence: learning.Evidence{Count: 3, FirstSeen: at, LastSeen: at, Pods: []string{"web-7f9c4d-abcde"}},
	}}}
	if _, err := f.store.Apply(b); err != nil {
		t.Fatal(err)
	}
}

// TestProposeWritesLearnedRulesAndNextMode: a proposal carries the
// learned file and the ruleset file with only its mode changed, on the
// ruleset's own branch.
func TestProposeWritesLearnedRulesAndNextMode(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	if _, err := f.svc.Propose(ctx, "shop_runtime"); !errors.Is(err, service.ErrNothingLearned) {
		t.Fatalf("empty profile: err = %v, want ErrNothingLearned", err)
	}
	if _, err := f.svc.Propose(ctx, "done_runtime"); !errors.Is(err, service.ErrNotLearning) {
		t.Fatalf("audit ruleset: err = %v, want ErrNotLearning", err)
	}
	if _, err := f.svc.Propose(ctx, "nope"); !errors.Is(err, service.ErrUnknownRuleset) {
		t.Fatalf("unknown ruleset: err = %v, want ErrUnknownRuleset", err)
	}
	f.observe(t, 1, "/usr/bin/nginx", f.now.Add(-2*time.Hour))
	// A file behaviour too, which the ruleset (process rules only) has
	// no section for: it is not proposed, or the policy would refuse it.
	if _, err := f.store.Apply(&learning.Batch{ID: "node-1/boot-1/9", Node: "node-1", Sent: f.now, Observations: []learning.Observed{{
		Ruleset:  "shop_runtime",
		Workload: learning.WorkloadID{Namespace: "shop", Workload: "Deployment/web", Container: "app"},
		Key:      learning.Key{Kind: learning.KindFile, Operation: "createFile", Path: "/var/cache/x"},
		Evidence: learning.Evidence{Count: 1, FirstSeen: f.now, LastSeen: f.now},
	}}}); err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.Propose(ctx, "shop_runtime")
	if err != nil {
		t.Fatal(err)
	}
	if out.Action != "created" || out.Rules != 1 || out.URL == "" {
		t.Fatalf("outcome = %+v", out)
	}
	c, files := f.pub.changes[0], f.pub.files[0]
	if c.Branch != "palisade/learn/shop_runtime" || c.Base != "main" || !strings.Contains(c.Body, "/usr/bin/nginx") {
		t.Fatalf("change = branch %q base %q body %q", c.Branch, c.Base, c.Body)
	}
	learned := string(files["policy/learned/shop_runtime.yaml"])
	if !strings.Contains(learned, "kind: LearnedRules") || !strings.Contains(learned, "executable: /usr/bin/nginx") {
		t.Fatalf("learned file:\n%s", learned)
	}
	want := strings.Replace(shopRuleset, "mode: learning", "mode: audit", 1)
	if got := string(files["policy/rulesets/shop.yaml"]); got != want {
		t.Fatalf("ruleset file:\n%s\nwant only the mode changed:\n%s", got, want)
	}
	if strings.Contains(learned, "/var/cache/x") {
		t.Errorf("learned file proposes file rules for a ruleset without a file section:\n%s", learned)
	}
	if len(files) != 2 {
		t.Errorf("change writes %d files, want the learned file and the ruleset", len(files))
	}
	// The proposed repository loads: the learned rules are valid policy.
	dir := t.TempDir()
	for name, content := range map[string]string{"clusters/prod.yaml": cluster, "rulesets/done.yaml": doneRuleset} {
		files["policy/"+name] = []byte(content)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := policy.LoadDir(filepath.Join(dir, "policy"))
	if err != nil {
		t.Fatalf("the proposed policy does not load: %v", err)
	}
	if repo.Rulesets["shop_runtime"].Spec.Mode != policy.ModeAudit {
		t.Errorf("proposed mode %q", repo.Rulesets["shop_runtime"].Spec.Mode)
	}
	st := f.svc.Status()
	if len(st) != 2 || st[1].Ruleset != "shop_runtime" || st[1].Workloads != 1 || st[1].Behaviours != 2 ||
		st[1].Proposal == nil || st[1].Proposal.URL != out.URL || st[1].Stable {
		t.Fatalf("status = %+v", st)
	}
}

// TestRunProposesOnlyStableProfiles: the schedule proposes a learning
// ruleset once nothing new arrived for the quiet period, not before.
func TestRunProposesOnlyStableProfiles(t *testing.T) {
	f := newFixture(t, 10*time.Millisecond)
	f.observe(t, 1, "/usr/bin/nginx", f.now.Add(-time.Minute)) // new a minute ago: not stable
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	f.pub.mu.Lock()
	n := len(f.pub.changes)
	f.pub.mu.Unlock()
	if n != 0 {
		cancel()
		t.Fatalf("an unstable profile was proposed %d times", n)
	}
	cancel()
	<-done
	f.now = f.now.Add(2 * time.Hour) // the quiet period passed
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- f.svc.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.pub.mu.Lock()
		n = len(f.pub.changes)
		f.pub.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n == 0 {
		t.Fatal("a stable profile was not proposed")
	}
	if !strings.Contains(f.pub.changes[0].Body, "no new behaviour for 1h") {
		t.Errorf("body does not say why: %s", f.pub.changes[0].Body)
	}
}

// TestHandlerNeedsAuthentication: the learning API refuses callers
// without the token and answers status and proposals to those with it.
func TestHandlerNeedsAuthentication(t *testing.T) {
	f := newFixture(t, 0)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.svc.Handler(&learning.TokenFileAuth{Path: tok}))
	defer srv.Close()
	do := func(method, path, token string) int {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := do("GET", "/learning/v1/rulesets", ""); c != http.StatusUnauthorized {
		t.Errorf("no token: %d", c)
	}
	if c := do("GET", "/learning/v1/rulesets", "wrong"); c != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", c)
	}
	if c := do("GET", "/learning/v1/rulesets", "s3cret"); c != http.StatusOK {
		t.Errorf("status: %d", c)
	}
	if c := do("POST", "/learning/v1/propose?ruleset=shop_runtime", "s3cret"); c != http.StatusConflict {
		t.Errorf("propose with nothing learned: %d, want 409", c)
	}
	if c := do("POST", "/learning/v1/propose?ruleset=nope", "s3cret"); c != http.StatusNotFound {
		t.Errorf("propose unknown: %d, want 404", c)
	}
	f.observe(t, 1, "/usr/bin/nginx", f.now.Add(-2*time.Hour))
	if c := do("POST", "/learning/v1/propose?ruleset=shop_runtime", "s3cret"); c != http.StatusOK {
		t.Errorf("propose: %d", c)
	}
}

// TestProfileEndpoint: an admin reads a ruleset's evidence.
func TestProfileEndpoint(t *testing.T) {
	f := newFixture(t, 0)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.svc.Handler(&learning.TokenFileAuth{Path: tok}))
	defer srv.Close()
	get := func(path string) (*http.Response, learning.Profile) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p learning.Profile
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp, p
	}
	if resp, _ := get("/learning/v1/profiles/shop_runtime"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no profile yet: %d", resp.StatusCode)
	}
	f.observe(t, 1, "/usr/bin/nginx", f.now)
	resp, p := get("/learning/v1/profiles/shop_runtime")
	if resp.StatusCode != http.StatusOK || len(p.Workloads) != 1 {
		t.Fatalf("profile: %d %+v", resp.StatusCode, p)
	}
	for _, w := range p.Workloads {
		if len(w.Behaviour) != 1 || w.Behaviour[0].Key.Path != "/usr/bin/nginx" || w.Behaviour[0].Evidence.Count != 3 {
			t.Errorf("behaviour = %+v", w.Behaviour)
		}
	}
}
