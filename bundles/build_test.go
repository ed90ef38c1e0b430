package bundles_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

func loadExample(t testing.TB) *policy.Repo {
	t.Helper()
	repo, err := policy.LoadDir("../policies-example")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func buildBytes(t testing.TB, repo *policy.Repo, revision string) []byte {
	t.Helper()
	b, err := bundles.Build(repo, "prod", revision)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bundles.Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func untar(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = data
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	first := buildBytes(t, loadExample(t), "abc")
	second := buildBytes(t, loadExample(t), "abc")
	if !bytes.Equal(first, second) {
		t.Fatal("two builds of the same repository and revision differ")
	}
	if bytes.Equal(first, buildBytes(t, loadExample(t), "def")) {
		t.Fatal("builds of different revisions are equal")
	}
}

func TestBuildLayout(t *testing.T) {
	files := untar(t, buildBytes(t, loadExample(t), "abc"))
	var manifest struct {
		Revision string   `json:"revision"`
		Roots    []string `json:"roots"`
	}
	if err := json.Unmarshal(files["/.manifest"], &manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if manifest.Revision != "abc" || !slices.Equal(manifest.Roots, []string{"palisade"}) {
		t.Errorf("manifest = %+v", manifest)
	}
	var data struct {
		Palisade struct {
			Policy bundles.ClusterData `json:"policy"`
		} `json:"palisade"`
	}
	if err := json.Unmarshal(files["/data.json"], &data); err != nil {
		t.Fatalf("data.json: %v", err)
	}
	if got := data.Palisade.Policy; got.Cluster != "prod" || got.Name != "prod" || len(got.Rulesets) != 2 {
		t.Errorf("data.palisade.policy: cluster %q, name %q, %d rulesets", got.Cluster, got.Name, len(got.Rulesets))
	}
	var modules []string
	for name := range files {
		if strings.HasSuffix(name, ".rego") {
			modules = append(modules, name)
			if strings.HasSuffix(name, "_test.rego") {
				t.Errorf("bundle holds test module %s", name)
			}
			if !strings.HasPrefix(name, "/palisade/") {
				t.Errorf("module %s outside the palisade root", name)
			}
		}
	}
	for _, want := range []string{"/palisade/admission.rego", "/palisade/continuous.rego", "/palisade/lib/decision.rego"} {
		if !slices.Contains(modules, want) {
			t.Errorf("bundle lacks %s (has %v)", want, modules)
		}
	}
}

func TestBuildUnknownCluster(t *testing.T) {
	if _, err := bundles.Build(loadExample(t), "staging", "x"); err == nil || !strings.Contains(err.Error(), `"staging"`) {
		t.Fatalf("err = %v", err)
	}
}

// opaBinary returns the path of the opa binary built from the module
// version in go.mod (a tool dependency), building it if needed.
func opaBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "tool", "-n", "opa").Output()
	if err != nil {
		t.Fatalf("go tool -n opa: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestPlainOPALoadsBundle starts the real opa server on the bundle and
// checks that it decides exactly as the Engine does.
func TestPlainOPALoadsBundle(t *testing.T) {
	repo := loadExample(t)
	path := filepath.Join(t.TempDir(), "prod.tar.gz")
	if err := os.WriteFile(path, buildBytes(t, repo, "rev-opa"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, opaBinary(t), "run", "--server", "--addr", addr, "--log-level", "error", "--bundle", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // killed by cancel
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/health?bundles")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("opa did not become healthy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "busybox", "namespace": "default"},
		"spec": map[string]any{"containers": []any{map[string]any{
			"name": "busybox-container", "image": "busybox:1.36",
			"securityContext": map[string]any{"privileged": true},
		}}},
	}
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	input := map[string]any{
		"request": map[string]any{
			"kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"}, "namespace": "default",
			"operation": "CREATE", "userInfo": map[string]any{"username": "alice"}, "object": pod,
		},
		"facts": map[string]any{"now": now.Format(time.RFC3339)},
	}
	body, _ := json.Marshal(map[string]any{"input": input})
	resp, err := http.Post(base+"/v1/data/palisade/admission/decision", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Result struct {
			Allowed    bool                `json:"allowed"`
			Violations []bundles.Violation `json:"violations"`
			Warnings   []string            `json:"warnings"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	b, _ := bundles.Build(repo, "prod", "rev-opa")
	eng, err := bundles.NewEngine(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	want, err := eng.Admission(context.Background(), &bundles.Request{
		Kind: bundles.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "default",
		Operation: "CREATE", UserInfo: bundles.UserInfo{Username: "alice"}, Object: pod,
	}, bundles.Facts{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got.Result.Allowed || len(got.Result.Violations) == 0 {
		t.Fatalf("opa allowed the privileged pod: %+v", got.Result)
	}
	if got.Result.Allowed != want.Allowed || !reflect.DeepEqual(got.Result.Violations, want.Violations) || !slices.Equal(got.Result.Warnings, want.Warnings) {
		t.Errorf("opa and Engine disagree:\nopa:    %+v\nengine: %+v", got.Result, want)
	}
	const msg = `containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (block)`
	if !slices.ContainsFunc(got.Result.Violations, func(v bundles.Violation) bool { return v.Message == msg }) {
		t.Errorf("opa's decision lacks %s", msg)
	}
}

// TestImageNormalisationMatchesGo checks the Rego normalisation of image
// references against github.com/distribution/reference (policy.ParseImage).
func TestImageNormalisationMatchesGo(t *testing.T) {
	refs := []string{
		"ubuntu", "ubuntu:focal", "library/ubuntu:focal", "docker.io/ubuntu", "docker.io/library/ubuntu:22.04",
		"index.docker.io/library/ubuntu", "nginxinc/nginx-unprivileged:1.25", "ghcr.io/acme/app:1.0",
		"ghcr.io/acme/team/app", "localhost/app:dev", "localhost:5000/app:dev", "registry.k8s.io/pause:3.9",
		"myregistry.io:443/a/b/c:v1",
		"busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"ghcr.io/acme/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"quay.io/prometheus/node-exporter:v1.8.0", "Registry.Example.COM/app:1",
	}
	pq, err := rego.New(rego.Query("x := {r: data.palisade.lib.images.parse(r) | some r in input}"),
		rego.Module("images.rego", mustRead(t, "../rego/palisade/lib/images.rego"))).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := pq.Eval(context.Background(), rego.EvalInput(refs))
	if err != nil || len(rs) != 1 {
		t.Fatalf("eval: %v %v", rs, err)
	}
	parsed := rs[0].Bindings["x"].(map[string]any)
	for _, ref := range refs {
		want, err := policy.ParseImage(ref)
		if err != nil {
			t.Errorf("%s: Go: %v", ref, err)
			continue
		}
		got := parsed[ref].(map[string]any)
		gotImg := policy.Image{
			Registry: got["registry"].(string), Repository: got["repository"].(string), Name: got["name"].(string),
			Tag: got["tag"].(string), Digest: got["digest"].(string), Reference: got["reference"].(string),
		}
		if gotImg != want {
			t.Errorf("%s:\n rego %+v\n   go %+v", ref, gotImg, want)
		}
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
