package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/imageverify/imageverifytest"
	"github.com/palisade-dev/palisade/test/cluster"
)

// Image signatures on the real API server: `palisade up` verifies the
// images of each pod against a real OCI registry on loopback (signatures
// in cosign's layout) before deciding, keyless signatures offline.
func TestImageVerificationOnRealAPIServer(t *testing.T) {
	c := cluster.Start(t)
	host := imageverifytest.StartRegistry(t)
	key := imageverifytest.NewKeySigner(t, imageverifytest.ECDSAP256)
	keyless := imageverifytest.NewKeyless(t)
	const issuer, subject = "https://token.actions.githubusercontent.com", "https://github.com/acme/app/.github/workflows/release.yaml@refs/tags/v1.0.0"

	signed, _ := imageverifytest.PushRandomImage(t, host, "acme/api", "1.0")
	imageverifytest.SignImage(t, signed, key)
	unsigned, _ := imageverifytest.PushRandomImage(t, host, "acme/tools", "2.0")
	keylessSigned, _ := imageverifytest.PushRandomImage(t, host, "acme/worker", "3.0")
	keyless.SignImageKeyless(t, keylessSigned, issuer, subject)
	wrongIdentity, _ := imageverifytest.PushRandomImage(t, host, "acme/fork", "1.0")
	keyless.SignImageKeyless(t, wrongIdentity, issuer, "https://github.com/mallory/app/.github/workflows/release.yaml@refs/tags/v1.0.0")
	outside, _ := imageverifytest.PushRandomImage(t, host, "other/thing", "1.0")

	dir := t.TempDir()
	files := map[string]string{
		"clusters/e2e.yaml": `apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: e2e}
spec:
  clusters: [e2e]
  clusterWide:
    deployment:
      imageSignature:
        - name: acme_signed
          action: block
          images: [{prefix: "` + host + `/acme/"}]
          attestors: [release, ci]
          match: any
`,
		"attestors/release.yaml": imageverifytest.AttestorYAML("release", key),
		"attestors/ci.yaml": `apiVersion: palisade.dev/v1alpha1
kind: Attestor
metadata: {name: ci}
spec:
  keyless:
    - issuer: ` + issuer + `
      subjectRegExp: "^https://github.com/acme/.+@refs/tags/v.*$"
      fulcioRoots: |
` + indent(keyless.FulcioRootPEM(), "        ") + `
      rekorPublicKey: |
` + indent(keyless.RekorPublicKeyPEM(), "        "),
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startUp(t, c, dir, "--insecure-registries")

	const denied = `admission webhook "validate.palisade.dev" denied the request: `
	for _, tt := range []struct {
		name, image string
		allowed     bool
		want        string
	}{
		{"key-signed image is admitted", signed, true, ""},
		{"keyless-signed image verifies offline and is admitted", keylessSigned, true, ""},
		{"image selected by no condition is left alone", outside, true, ""},
		{"unsigned image is denied naming the rule and the image", unsigned, false,
			denied + `image violates rule imageSignature.acme_signed "` + unsigned + ` is not signed by any of release, ci" in container(s) "app-container" (block)`},
		{"keyless signature of another identity is refused", wrongIdentity, false,
			denied + `image violates rule imageSignature.acme_signed "` + wrongIdentity + ` is not signed by any of release, ci"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := c.KubectlInput(pod("default", "app", tt.image, ""), "apply", "--dry-run=server", "-f", "-")
			if tt.allowed != (err == nil) {
				t.Fatalf("allowed = %t, want %t; kubectl said:\n%s", err == nil, tt.allowed, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("kubectl output lacks %q:\n%s", tt.want, stderr)
			}
		})
	}
}

// indent prefixes every line of a PEM block, for a YAML block scalar.
func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
