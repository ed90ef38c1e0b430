package reconciler_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/palisade-dev/palisade/internal/metrics/metricstest"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/reconciler"
	"github.com/palisade-dev/palisade/reconciler/gogit"
	"github.com/palisade-dev/palisade/test/gitserver"
)

// publisher records what it is given: a fake at the Publisher seam (the
// real bundle server is exercised in test/e2e).
type publisher struct {
	mu    sync.Mutex
	sets  []map[string]*bundle.Bundle
	fail  error
	calls int
}

func (p *publisher) Publish(set map[string]*bundle.Bundle) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail != nil {
		return nil, p.fail
	}
	p.sets = append(p.sets, set)
	var changed []string
	for c := range set {
		changed = append(changed, c)
	}
	return changed, nil
}

func (p *publisher) Active(cluster string) (string, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sets) == 0 {
		return "", "", false
	}
	b, ok := p.sets[len(p.sets)-1][cluster]
	if !ok {
		return "", "", false
	}
	return b.Manifest.Revision, "etag-" + b.Manifest.Revision, true
}

func (p *publisher) last() map[string]*bundle.Bundle {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sets) == 0 {
		return nil
	}
	return p.sets[len(p.sets)-1]
}

func examplePolicy(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../policies-example/clusters/prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

type fixture struct {
	repo *gitserver.Repo
	pub  *publisher
	rec  *reconciler.Reconciler
	reg  *prometheus.Registry
}

func newFixture(t *testing.T, secret string) *fixture {
	t.Helper()
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	repo.CopyDir("example policy", "../policies-example")
	src, err := gogit.New(gogit.Options{URL: repo.URL, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pub := &publisher{}
	reg := prometheus.NewRegistry()
	rec, err := reconciler.New(reconciler.Options{
		Source: src, Publisher: pub, Ref: "refs/heads/main",
		WebhookSecret: []byte(secret), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{repo: repo, pub: pub, rec: rec, reg: reg}
}

func TestInvalidCommitKeepsLastGoodAndRecovers(t *testing.T) {
	f := newFixture(t, "s3cret")
	ctx := context.Background()
	good := f.repo.CopyDir("again", "../policies-example")
	if err := f.rec.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.pub.last()["prod"].Manifest.Revision; got != good {
		t.Fatalf("published revision %s, want %s", got, good)
	}

	broken := strings.Replace(examplePolicy(t), "privileged: {action: block}", "privileged: {action: blok}", 1)
	bad := f.repo.Commit("typo", map[string]string{"clusters/prod.yaml": broken})
	err := f.rec.Reconcile(ctx)
	var rerr *reconciler.Error
	if !errors.As(err, &rerr) || rerr.Stage != reconciler.StageValidate || rerr.Commit != bad || !rerr.Stalled() {
		t.Fatalf("err = %v, want a stalled validate error on %s", err, bad)
	}
	if f.pub.calls != 1 {
		t.Fatalf("invalid commit was published (%d calls)", f.pub.calls)
	}
	st := f.rec.Status()
	if st.LastError == nil || len(st.LastError.Errors) != 1 {
		t.Fatalf("status error = %+v", st.LastError)
	}
	if e := st.LastError.Errors[0]; e.Pos.File != "clusters/prod.yaml" || e.Pos.Line == 0 || e.Pos.Column == 0 || !strings.Contains(e.Msg, `"blok"`) {
		t.Errorf("status error lacks file:line:col: %+v", e)
	}
	if st.Clusters["prod"].Revision != good || st.LastFetch.Commit != bad {
		t.Errorf("status = %+v", st)
	}
	// The same bad commit again: nothing new, still no publish.
	_ = f.rec.Reconcile(ctx)
	if f.pub.calls != 1 {
		t.Fatalf("bad commit retried into a publish")
	}

	fixed := f.repo.Commit("fix", map[string]string{"clusters/prod.yaml": examplePolicy(t)})
	if err := f.rec.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	st = f.rec.Status()
	if st.LastError != nil || st.Clusters["prod"].Revision != fixed {
		t.Fatalf("did not recover: %+v", st)
	}
	if n := metricstest.Value(t, f.reg, "palisade_reconcile_errors_total", map[string]string{"stage": "validate"}); n != 1 {
		t.Errorf("validate errors counted %v, want 1", n)
	}
}

func TestFetchAndPublishFailuresAreRetried(t *testing.T) {
	f := newFixture(t, "s")
	f.pub.fail = errors.New("disk full")
	err := f.rec.Reconcile(context.Background())
	var rerr *reconciler.Error
	if !errors.As(err, &rerr) || rerr.Stage != reconciler.StagePublish || rerr.Stalled() {
		t.Fatalf("err = %v", err)
	}
	f.pub.fail = nil
	if err := f.rec.Reconcile(context.Background()); err != nil {
		t.Fatalf("same commit not retried after a publish failure: %v", err)
	}

	bad, _ := gogit.New(gogit.Options{URL: "http://127.0.0.1:1/nope.git", WorkDir: t.TempDir()})
	rec, _ := reconciler.New(reconciler.Options{Source: bad, Publisher: &publisher{}})
	if err := rec.Reconcile(context.Background()); !errors.As(err, &rerr) || rerr.Stage != reconciler.StageFetch {
		t.Fatalf("unreachable repo: %v", err)
	}
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func TestWebhookAuthentication(t *testing.T) {
	f := newFixture(t, "s3cret")
	noSecret, _ := reconciler.New(reconciler.Options{Source: fakeSource{}, Publisher: &publisher{}})
	push := []byte(`{"ref":"refs/heads/main","after":"abc"}`)
	other := []byte(`{"ref":"refs/heads/feature","after":"abc"}`)
	tests := []struct {
		name    string
		rec     *reconciler.Reconciler
		body    []byte
		headers map[string]string
		want    int
	}{
		{"GitHub signature", f.rec, push, map[string]string{"X-Hub-Signature-256": "sha256=" + sign("s3cret", push), "X-GitHub-Event": "push"}, 202},
		{"Gitea signature", f.rec, push, map[string]string{"X-Gitea-Signature": sign("s3cret", push), "X-Gitea-Event": "push"}, 202},
		{"GitLab token", f.rec, push, map[string]string{"X-Gitlab-Token": "s3cret", "X-Gitlab-Event": "Push Hook"}, 202},
		{"push to another ref is ignored", f.rec, other, map[string]string{"X-Hub-Signature-256": "sha256=" + sign("s3cret", other)}, 200},
		{"ping", f.rec, push, map[string]string{"X-Hub-Signature-256": "sha256=" + sign("s3cret", push), "X-GitHub-Event": "ping"}, 200},
		{"no signature", f.rec, push, nil, 401},
		{"wrong secret", f.rec, push, map[string]string{"X-Hub-Signature-256": "sha256=" + sign("guess", push)}, 401},
		{"signature of another body", f.rec, other, map[string]string{"X-Hub-Signature-256": "sha256=" + sign("s3cret", push)}, 401},
		{"wrong GitLab token", f.rec, push, map[string]string{"X-Gitlab-Token": "s3cre"}, 401},
		{"webhook without a configured secret refuses all", noSecret, push, map[string]string{"X-Gitlab-Token": ""}, 401},
		{"signed garbage", f.rec, []byte("{"), map[string]string{"X-Hub-Signature-256": "sha256=" + sign("s3cret", []byte("{"))}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/hooks/git", bytes.NewReader(tt.body))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rr := httptest.NewRecorder()
			tt.rec.WebhookHandler().ServeHTTP(rr, req)
			if rr.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rr.Code, tt.want, rr.Body)
			}
		})
	}
	rr := httptest.NewRecorder()
	f.rec.WebhookHandler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/hooks/git", nil))
	if rr.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rr.Code)
	}
	big := bytes.Repeat([]byte("x"), reconciler.MaxWebhookBody+10)
	rr = httptest.NewRecorder()
	f.rec.WebhookHandler().ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/hooks/git", bytes.NewReader(big)))
	if rr.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", rr.Code)
	}
}

type fakeSource struct{}

func (fakeSource) Sync(context.Context) (*reconciler.Snapshot, error) {
	return nil, errors.New("unused")
}
func (fakeSource) URL() string { return "fake" }

func TestWebhookTriggersPassWhileRunning(t *testing.T) {
	f := newFixture(t, "s3cret")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.rec.Run(ctx) }()
	waitFor(t, func() bool { return f.rec.Status().Clusters["prod"].Revision != "" })

	next := f.repo.Commit("tighten", map[string]string{"clusters/prod.yaml": strings.Replace(examplePolicy(t), "digestPinning: {action: log}", "digestPinning: {action: block}", 1)})
	push, _ := json.Marshal(map[string]string{"ref": "refs/heads/main", "after": next})
	req := httptest.NewRequest(http.MethodPost, "/hooks/git", bytes.NewReader(push))
	req.Header.Set("X-Hub-Signature-256", "sha256="+sign("s3cret", push))
	rr := httptest.NewRecorder()
	start := time.Now()
	f.rec.WebhookHandler().ServeHTTP(rr, req)
	if rr.Code != http.StatusAccepted {
		t.Fatalf("webhook: %d", rr.Code)
	}
	waitFor(t, func() bool { return f.rec.Status().Clusters["prod"].Revision == next })
	t.Logf("push webhook to published revision: %v", time.Since(start))

	srv := httptest.NewServer(f.rec.StatusHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st reconciler.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Clusters["prod"].Revision != next || !strings.HasPrefix(st.Repository, "http://127.0.0.1") {
		t.Errorf("GET /status = %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStatusNeverShowsCredentials(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := gogit.New(gogit.Options{URL: "https://bob:hunter2@git.example.com/acme/policy.git", PasswordFile: pw, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := reconciler.New(reconciler.Options{Source: src, Publisher: &publisher{}})
	raw, _ := json.Marshal(rec.Status())
	if strings.Contains(string(raw), "hunter2") || strings.Contains(string(raw), "bob") {
		t.Fatalf("status leaks credentials: %s", raw)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// OnPolicy hears of every published commit with its validated policy, and
// of nothing that failed validation.
func TestOnPolicyHearsPublishedCommitsOnly(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	good := repo.CopyDir("example policy", "../policies-example")
	src, err := gogit.New(gogit.Options{URL: repo.URL, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var heard []string
	rulesets := 0
	rec, err := reconciler.New(reconciler.Options{
		Source: src, Publisher: &publisher{}, Ref: "refs/heads/main",
		OnPolicy: func(commit string, p *policy.Repo) {
			heard = append(heard, commit)
			rulesets = len(p.Rulesets)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rec.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(examplePolicy(t), "privileged: {action: block}", "privileged: {action: blok}", 1)
	repo.Commit("typo", map[string]string{"clusters/prod.yaml": broken})
	if err := rec.Reconcile(ctx); err == nil {
		t.Fatal("invalid commit reconciled")
	}
	if len(heard) != 1 || heard[0] != good {
		t.Fatalf("OnPolicy heard %v, want only %s", heard, good)
	}
	if rulesets != 2 {
		t.Errorf("OnPolicy saw %d rulesets, want the example's 2", rulesets)
	}
}
