package bundles_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/palisade-dev/palisade/bundles"
)

// signedBytes signs a bundle (on a copy) and serialises it.
func signedBytes(t testing.TB, s *bundles.Signer, b *bundle.Bundle) []byte {
	t.Helper()
	c := *b
	if err := s.Sign(&c); err != nil {
		t.Fatal(err)
	}
	raw, err := bundles.Bytes(&c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// retar rewrites the files of an archive with edit, keeping the rest
// (including .signatures.json) byte for byte.
func retar(t testing.TB, raw []byte, edit func(name string, data []byte) []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		data := new(bytes.Buffer)
		if _, err := data.ReadFrom(tr); err != nil {
			t.Fatal(err)
		}
		d := edit(h.Name, data.Bytes())
		if d == nil {
			continue
		}
		h.Size = int64(len(d))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// tamper lets every privileged container in: it rewrites data.json of a
// signed archive and keeps the old .signatures.json.
func tamper(t testing.TB, raw []byte) []byte {
	t.Helper()
	return retar(t, raw, func(name string, data []byte) []byte {
		if name != "/data.json" {
			return data
		}
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		v[bundles.Root].(map[string]any)["policy"].(map[string]any)["clusterWide"] = map[string]any{}
		out, _ := json.Marshal(v)
		return out
	})
}

func TestSignedBundleVerification(t *testing.T) {
	rsaKey, rsaPub := keyPair(t, "RS256")
	ecKey, ecPub := keyPair(t, "ES256")
	secret := writeFile(t, "secret", []byte("a shared secret\n"))
	_, otherPub := keyPair(t, "RS256")
	b := prodBundle(t, "signed", "")
	unsigned, _ := bundles.Bytes(b)

	for _, tc := range []struct {
		alg           string
		signKey       string
		verifyKey     string
		wrongKey      string
		wrongKeyAlgID string
	}{
		{"RS256", rsaKey, rsaPub, otherPub, "RS256"},
		{"ES256", ecKey, ecPub, otherPub, "RS256"},
		{"HS256", secret, secret, writeFile(t, "other", []byte("another secret")), "HS256"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			signer, err := bundles.NewSigner(tc.signKey, tc.alg, "palisade")
			if err != nil {
				t.Fatal(err)
			}
			key, err := bundles.LoadVerificationKey(tc.verifyKey, tc.alg, "palisade")
			if err != nil {
				t.Fatal(err)
			}
			wrong, err := bundles.LoadVerificationKey(tc.wrongKey, tc.wrongKeyAlgID, "palisade")
			if err != nil {
				t.Fatal(err)
			}
			raw := signedBytes(t, signer, b)
			for _, rc := range []struct {
				name    string
				raw     []byte
				key     *bundles.VerificationKey
				wantErr error
			}{
				{"signed bundle verifies", raw, key, nil},
				{"signed bundle reads without a key", raw, nil, nil},
				{"tampered data is refused", tamper(t, raw), key, bundles.ErrSignature},
				{"wrong key is refused", raw, wrong, bundles.ErrSignature},
				{"unsigned bundle is refused", unsigned, key, bundles.ErrUnsigned},
				{"added file is refused", retar(t, raw, func(name string, data []byte) []byte {
					if name == "/palisade/admission.rego" {
						return append(data, []byte("\nextra := true\n")...)
					}
					return data
				}), key, bundles.ErrSignature},
				{"removed file is refused", retar(t, raw, func(name string, data []byte) []byte {
					if name == "/palisade/continuous.rego" {
						return nil
					}
					return data
				}), key, bundles.ErrSignature},
				{"changed revision is refused", retar(t, raw, func(name string, data []byte) []byte {
					if name == "/.manifest" {
						return bytes.Replace(data, []byte(`"signed"`), []byte(`"forged"`), 1)
					}
					return data
				}), key, bundles.ErrSignature},
			} {
				t.Run(rc.name, func(t *testing.T) {
					got, err := bundles.Read(rc.raw, rc.key, 0)
					if rc.wantErr == nil {
						if err != nil {
							t.Fatal(err)
						}
						if got.Manifest.Revision != "signed" || len(got.Modules) != len(b.Modules) {
							t.Errorf("read revision %q, %d modules", got.Manifest.Revision, len(got.Modules))
						}
						return
					}
					if !errors.Is(err, rc.wantErr) {
						t.Fatalf("err = %v, want %v", err, rc.wantErr)
					}
				})
			}
		})
	}
}

func TestNewSignerRefusesBadKeys(t *testing.T) {
	rsaKey, rsaPub := keyPair(t, "RS256")
	for _, tc := range []struct {
		name, file, alg, keyID, wantErr string
	}{
		{"no key id", rsaKey, "RS256", "", "key id"},
		{"unknown algorithm", rsaKey, "none", "k", "unsupported algorithm"},
		{"public key for signing", rsaPub, "RS256", "k", "unsupported key type"},
		{"missing file", rsaKey + ".missing", "RS256", "k", "no such file"},
		{"empty secret", writeFile(t, "empty", []byte("\n")), "HS256", "k", "empty secret"},
		{"not PEM", writeFile(t, "text", []byte("hello")), "RS256", "k", "PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bundles.NewSigner(tc.file, tc.alg, tc.keyID)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	for _, tc := range []struct {
		name, file, alg, keyID, wantErr string
	}{
		{"private key for verifying", rsaKey, "RS256", "k", "not a public key"},
		{"no key id", rsaPub, "RS256", "", "key id"},
		{"unknown algorithm", rsaPub, "XX256", "k", "unsupported algorithm"},
	} {
		t.Run("verification key/"+tc.name, func(t *testing.T) {
			_, err := bundles.LoadVerificationKey(tc.file, tc.alg, tc.keyID)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadRefusesOversizedBundles(t *testing.T) {
	raw, _ := bundles.Bytes(prodBundle(t, "r1", ""))
	// A gzip bomb: 32 MiB of zeros compress to about 32 KiB.
	var bomb bytes.Buffer
	gw := gzip.NewWriter(&bomb)
	tw := tar.NewWriter(gw)
	zeros := make([]byte, 32<<20)
	_ = tw.WriteHeader(&tar.Header{Name: "/data.json", Mode: 0o600, Typeflag: tar.TypeReg, Size: int64(len(zeros))})
	_, _ = tw.Write(zeros)
	_ = tw.Close()
	_ = gw.Close()
	for _, tc := range []struct {
		name     string
		raw      []byte
		maxBytes int64
		wantErr  error
	}{
		{"archive over the limit", raw, int64(len(raw)) - 1, bundles.ErrTooLarge},
		{"content over the limit", raw, int64(len(raw)) + 1, bundles.ErrTooLarge},
		{"gzip bomb", bomb.Bytes(), 1 << 20, bundles.ErrTooLarge},
		{"within the limit", raw, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bundles.Read(tc.raw, nil, tc.maxBytes)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := bundles.Read([]byte("not gzip"), nil, 0); err == nil {
		t.Error("read a non-gzip archive")
	}
}
