package imageverify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/policytest"
)

// gatherEngine is a bundle with the attestors release (signer's key) and
// filed (a key file, readable or not on the verifier's machine).
func gatherEngine(t *testing.T, release *ivt.KeySigner) *bundles.Engine {
	t.Helper()
	fsys := fstest.MapFS{
		"clusters/c.yaml": {Data: []byte(`apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: c}
spec:
  clusters: [c]
  clusterWide:
    deployment:
      imageSignature:
        - {name: signed, action: block, attestors: [release, filed], match: any}
`)},
		"attestors/release.yaml": {Data: []byte(ivt.AttestorYAML("release", release))},
		"attestors/filed.yaml": {Data: []byte(`apiVersion: palisade.dev/v1alpha1
kind: Attestor
metadata: {name: filed}
spec:
  keys: [{file: /etc/palisade/keys/filed.pub}]
`)},
	}
	repo, err := policy.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policytest.NewEngines(repo).For(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// signatures reads input.facts.verification[image].signatures[attestor]
// from what Gather returned.
func signature(t *testing.T, facts map[string]any, image, attestor string) map[string]any {
	t.Helper()
	v, ok := facts[image].(ast.Value)
	if !ok {
		t.Fatalf("facts of %s: %T, want an AST value", image, facts[image])
	}
	var out map[string]any
	if err := ast.As(v, &out); err != nil {
		t.Fatal(err)
	}
	sig, _ := out["signatures"].(map[string]any)[attestor].(map[string]any)
	return sig
}

func TestGathererUsesPullSecretsAndReportsBrokenAttestors(t *testing.T) {
	creds := ivt.WithBasicAuth("puller", "s3cret")
	host := ivt.StartRegistry(t, creds)
	ref, _ := ivt.PushRandomImage(t, host, "private/app", "v1", creds)
	release := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, release, creds)
	eng := gatherEngine(t, release)

	kube := fake.NewClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "regcred"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfigJSON(host, "puller", "s3cret")},
	})
	readFile := func(name string) ([]byte, error) {
		return nil, errors.New("open " + name + ": no such file or directory")
	}
	g := imageverify.NewGatherer(imageverify.New(imageverify.Options{Insecure: true}), imageverify.GathererOptions{
		Secrets: &imageverify.KubeSecrets{Client: kube}, ReadFile: readFile,
	})
	wanted := map[string][]string{ref: {"filed", "release"}}

	facts := g.Gather(context.Background(), eng, wanted, "team", []string{"regcred"})
	if sig := signature(t, facts, ref, "release"); sig["verified"] != true {
		t.Errorf("release with the pod's pull secret: %v, want verified", sig)
	}
	if sig := signature(t, facts, ref, "filed"); sig["verified"] == true || !strings.Contains(sig["reason"].(string), "attestor cannot be used") {
		t.Errorf("filed without its key file: %v, want a reason naming the attestor", sig)
	}

	// Without the secret (another namespace) and nothing cached, the
	// registry refuses: a fact, not an error. (With the facts cached, the
	// answer would be the same as above: whether a digest is signed does
	// not depend on who asks; whether the pod may pull it is the
	// kubelet's to enforce with the pod's own secrets.)
	g = imageverify.NewGatherer(imageverify.New(imageverify.Options{Insecure: true}), imageverify.GathererOptions{
		Secrets: &imageverify.KubeSecrets{Client: kube}, ReadFile: readFile,
	})
	facts = g.Gather(context.Background(), eng, wanted, "other", []string{"regcred"})
	if sig := signature(t, facts, ref, "release"); sig["verified"] == true {
		t.Errorf("release without credentials: %v, want not verified", sig)
	}
}

func TestGathererConvertsCachedFactsOnce(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, _ := ivt.PushRandomImage(t, host, "app", "v1")
	release := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, release)
	eng := gatherEngine(t, release)
	g := imageverify.NewGatherer(imageverify.New(imageverify.Options{Insecure: true}), imageverify.GathererOptions{
		ReadFile: func(string) ([]byte, error) { return []byte(release.PublicKeyPEM()), nil },
	})
	wanted := map[string][]string{ref: {"release"}}
	first := g.Gather(context.Background(), eng, wanted, "default", nil)
	second := g.Gather(context.Background(), eng, wanted, "default", nil)
	if first[ref] != second[ref] {
		t.Error("cached facts were converted again")
	}
	if sig := signature(t, second, ref, "release"); sig["verified"] != true {
		t.Errorf("release: %v, want verified", sig)
	}
}

// The example repository's attestors are usable as written.
func TestExampleAttestorsCompile(t *testing.T) {
	repo, err := policy.LoadDir("../policies-example")
	if err != nil {
		t.Fatal(err)
	}
	if len(repo.Attestors) == 0 {
		t.Fatal("policies-example has no attestors")
	}
	for name, a := range repo.Attestors {
		if _, err := imageverify.NewAttestor(name, a.Spec, nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
