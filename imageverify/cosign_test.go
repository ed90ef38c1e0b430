package imageverify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
	"github.com/palisade-dev/palisade/policy"
)

// cosignVersion is the cosign CLI the interoperability test runs: the
// last v2 release, whose default is the bundle-in-annotations layout that
// imageverify reads (v3 writes the new sigstore bundle format by default).
const cosignVersion = "v2.6.5"

// cosignBinary is the cosign CLI built from the Go module proxy into
// Palisade's tool cache. It is a real dependency of the test: missing, the
// test fails and says how to build it.
func cosignBinary(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("PALISADE_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "palisade")
	}
	dir := filepath.Join(cache, "cosign-"+cosignVersion)
	bin := filepath.Join(dir, "cosign")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("cosign %s is not built (%v); build it once with `make cosign-bin` (hack/build-cosign.sh; about 8 minutes with cold Go caches)", cosignVersion, err)
	}
	return bin
}

type cosignCLI struct {
	bin string
	env []string
}

// newCosign runs cosign offline: it never reaches the public-good TUF
// repository. Giving it a Rekor key (one of our test log's; key-based
// verification ignores it with --insecure-ignore-tlog) keeps verify from
// fetching the trusted root, and the TUF mirror is a closed loopback port
// should any command still try.
func newCosign(t *testing.T) *cosignCLI {
	home := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	return &cosignCLI{bin: cosignBinary(t), env: []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"TUF_ROOT=" + filepath.Join(home, "tuf"),
		"TUF_MIRROR=http://" + closed,
		"SIGSTORE_REKOR_PUBLIC_KEY=" + writeFile(t, "rekor.pub", ivt.NewKeyless(t).RekorPublicKeyPEM()),
		"SIGSTORE_NO_CACHE=true",
		"COSIGN_PASSWORD=interop-test",
		"COSIGN_YES=true",
	}}
}

func (c *cosignCLI) run(t *testing.T, extraEnv []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(append([]string{}, c.env...), extraEnv...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cosign %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// refuses runs a cosign command that must fail with want in its output.
func (c *cosignCLI) refuses(t *testing.T, extraEnv []string, want string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(append([]string{}, c.env...), extraEnv...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("cosign %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("cosign %s failed without %q:\n%s", strings.Join(args, " "), want, out)
	}
}

var registryFlags = []string{"--allow-insecure-registry", "--allow-http-registry"}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCosignInterop(t *testing.T) {
	cosign := newCosign(t)
	host := ivt.StartRegistry(t)
	finished := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	vuln := ivt.Vuln(finished, ivt.Finding{ID: "CVE-2024-0001", Severity: "CRITICAL"})

	t.Run("cosign verifies our key signature and attestation", func(t *testing.T) {
		ref, digest := ivt.PushRandomImage(t, host, "interop/ours", "v1")
		key := ivt.NewKeySigner(t, ivt.ECDSAP256)
		ivt.SignImage(t, ref, key)
		ivt.Attest(t, ref, key, ivt.VulnPredicateType, vuln)
		pub := writeFile(t, "ours.pub", key.PublicKeyPEM())
		pinned := host + "/interop/ours@" + digest
		cosign.run(t, nil, append([]string{"verify", "--key", pub, "--insecure-ignore-tlog"}, append(registryFlags, pinned)...)...)
		cosign.run(t, nil, append([]string{"verify-attestation", "--key", pub, "--type", "vuln", "--insecure-ignore-tlog"}, append(registryFlags, pinned)...)...)
	})

	t.Run("cosign refuses our signature by another key", func(t *testing.T) {
		ref, digest := ivt.PushRandomImage(t, host, "interop/other", "v1")
		ivt.SignImage(t, ref, ivt.NewKeySigner(t, ivt.ECDSAP256))
		pub := writeFile(t, "other.pub", ivt.NewKeySigner(t, ivt.ECDSAP256).PublicKeyPEM())
		cosign.refuses(t, nil, "no matching signatures",
			append([]string{"verify", "--key", pub, "--insecure-ignore-tlog"}, append(registryFlags, host+"/interop/other@"+digest)...)...)
	})

	t.Run("we verify cosign's key signature and attestation", func(t *testing.T) {
		ref, digest := ivt.PushRandomImage(t, host, "interop/theirs", "v1")
		dir := t.TempDir()
		prefix := filepath.Join(dir, "cosign")
		cosign.run(t, nil, "generate-key-pair", "--output-key-prefix", prefix)
		pinned := host + "/interop/theirs@" + digest
		cosign.run(t, nil, append([]string{"sign", "--key", prefix + ".key", "--tlog-upload=false"}, append(registryFlags, pinned)...)...)
		predicate, err := json.Marshal(vuln)
		if err != nil {
			t.Fatal(err)
		}
		cosign.run(t, nil, append([]string{"attest", "--key", prefix + ".key", "--tlog-upload=false", "--type", "vuln", "--predicate", writeFile(t, "vuln.json", string(predicate))}, append(registryFlags, pinned)...)...)

		pub, err := os.ReadFile(prefix + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		a, err := imageverify.NewAttestor("cosign", policy.AttestorSpec{Keys: []policy.AttestorKey{{PublicKey: string(pub)}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The tag, as a pod writes it: resolved like admission does.
		f := newFixture(t).verify(t, ref, a)
		wantVerified(t, f, "cosign")
		atts := f.Attestations["cosign"]
		if len(atts) != 1 || atts[0].PredicateType != imageverify.VulnPredicateType {
			t.Fatalf("attestations %+v, want cosign's vuln attestation", atts)
		}
		if atts[0].Timestamp != "2026-11-30T08:00:00Z" {
			t.Errorf("timestamp %q, want the scan's finish time", atts[0].Timestamp)
		}
		vulns := atts[0].Predicate["scanner"].(map[string]any)["result"].(map[string]any)["vulnerabilities"].([]any)
		if len(vulns) != 1 || vulns[0].(map[string]any)["id"] != "CVE-2024-0001" {
			t.Errorf("vulnerabilities %v", vulns)
		}
	})

	// Our test Fulcio and Rekor stand in for the public-good ones: cosign
	// takes their roots from SIGSTORE_ROOT_FILE and
	// SIGSTORE_REKOR_PUBLIC_KEY, and checks the SET and the certificate
	// offline (our CA issues no SCTs).
	ca := ivt.NewKeyless(t)
	keylessEnv := []string{
		"SIGSTORE_ROOT_FILE=" + writeFile(t, "fulcio.pem", ca.FulcioRootPEM()),
		"SIGSTORE_REKOR_PUBLIC_KEY=" + writeFile(t, "rekor.pub", ca.RekorPublicKeyPEM()),
	}
	verifyKeyless := func(image string) []string {
		return append([]string{"verify",
			"--certificate-identity", workflow, "--certificate-oidc-issuer", githubIssuer,
			"--insecure-ignore-sct", "--offline"}, append(registryFlags, image)...)
	}

	t.Run("cosign verifies our keyless signature offline", func(t *testing.T) {
		ref, digest := ivt.PushRandomImage(t, host, "interop/keyless", "v1")
		ca.SignImageKeyless(t, ref, githubIssuer, workflow)
		cosign.run(t, keylessEnv, verifyKeyless(host+"/interop/keyless@"+digest)...)
	})

	// The same bad signatures imageverify refuses, cosign refuses for the
	// same reason: our test material is cosign's format, not ours.
	for _, tc := range []struct {
		name string
		opts []ivt.Option
		who  string
		want string
	}{
		{"corrupt SET", []ivt.Option{ivt.WithCorruptSET()}, workflow, "unable to verify SET"},
		{"replayed bundle", []ivt.Option{ivt.WithReplayedBundle()}, workflow, "signature in bundle does not match"},
		{"expired certificate", []ivt.Option{ivt.WithExpiredCertificate()}, workflow, "certificate expired before signatures were entered in log"},
		{"wrong identity", nil, "https://github.com/mallory/app/.github/workflows/x.yml@refs/heads/main", "none of the expected identities matched"},
	} {
		t.Run("cosign refuses our keyless signature with a "+tc.name, func(t *testing.T) {
			repo := "interop/keyless-" + strings.ToLower(strings.ReplaceAll(tc.name, " ", "-"))
			ref, digest := ivt.PushRandomImage(t, host, repo, "v1")
			ca.SignImageKeyless(t, ref, githubIssuer, tc.who, tc.opts...)
			cosign.refuses(t, keylessEnv, tc.want, verifyKeyless(host+"/"+repo+"@"+digest)...)
		})
	}
}
