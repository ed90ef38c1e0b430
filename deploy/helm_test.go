package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Where the chart and the rendered manifests are, relative to this
// package, and how the manifests were rendered (render-manifests.sh).
const (
	chartDir      = "chart/palisade"
	manifestsFile = "manifests/palisade.yaml"
	renderScript  = "render-manifests.sh"
	releaseName   = "palisade"
	namespace     = "palisade-system"
)

// envHelm names a helm binary; it overrides the cache directory that
// hack/build-helm.sh --print-dir names.
const envHelm = "PALISADE_HELM"

// helmTimeout bounds one helm run: a render takes well under a second.
const helmTimeout = time.Minute

// errNoHelm says how to get the binary: the tests fail, never skip,
// without it, as test/cluster does for the Kubernetes binaries.
var errNoHelm = errors.New("helm not built: run `make helm-bin` (hack/build-helm.sh; about 2 minutes the first time)")

// helmBin finds helm: $PALISADE_HELM, or the cache that `make helm-bin`
// fills.
var helmBin = sync.OnceValues(func() (string, error) {
	if p := os.Getenv(envHelm); p != "" {
		return checkExecutable(p)
	}
	out, err := exec.Command("bash", "../hack/build-helm.sh", "--print-dir").Output()
	if err != nil {
		return "", fmt.Errorf("hack/build-helm.sh --print-dir: %w", err)
	}
	return checkExecutable(filepath.Join(strings.TrimSpace(string(out)), "helm"))
})

func checkExecutable(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s missing: %w", path, errNoHelm)
	}
	return path, nil
}

// runHelm runs helm with args and returns its standard output. Helm's
// own configuration and caches go to a temporary directory, so that the
// user's repositories and plugins play no part.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := helmBin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), helmTimeout)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}

// render runs helm template on the chart as render-manifests.sh does,
// with --set values.
// Renders are cached by their values: many tests check the same ones,
// and the chart does not change while they run.
func render(t *testing.T, set ...string) string {
	t.Helper()
	key := strings.Join(set, "\x00")
	if out, ok := renders.Load(key); ok {
		return out.(string)
	}
	out, err := runHelm(t, renderArgs(set)...)
	if err != nil {
		t.Fatal(err)
	}
	renders.Store(key, out)
	return out
}

var renders sync.Map // strings.Join(set, "\x00") -> helm template's output

func renderArgs(set []string) []string {
	args := []string{"template", releaseName, chartDir, "--namespace", namespace, "--include-crds"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

// decodeObjects splits a multi-document YAML stream into objects.
func decodeObjects(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return objs
		}
		if err != nil {
			t.Fatalf("read manifests: %v", err)
		}
		js, err := utilyaml.ToJSON(doc)
		if err != nil {
			t.Fatalf("manifest document: %v\n%s", err, doc)
		}
		if len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null" {
			continue // a document of comments only
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatalf("manifest document: %v\n%s", err, doc)
		}
		objs = append(objs, u)
	}
}

// decodeInto converts u into a typed API object, rejecting fields the
// type does not have: a misspelled field in a template would otherwise
// vanish without a trace.
func decodeInto(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	js, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// find returns the objects of kind (and name, if not empty).
func find(objs []*unstructured.Unstructured, kind, name string) []*unstructured.Unstructured {
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			found = append(found, o)
		}
	}
	return found
}

// one returns the single object of kind and name, or fails.
func one(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	found := find(objs, kind, name)
	if len(found) != 1 {
		t.Fatalf("%d objects %s %s in the render, want 1", len(found), kind, name)
	}
	return found[0]
}
