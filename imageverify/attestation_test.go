package imageverify_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
)

func TestVulnAttestationIsVerifiedAndReturned(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, _ := ivt.PushRandomImage(t, host, "scanned/app", "v1")
	scanner := ivt.NewKeySigner(t, ivt.ECDSAP256)
	finished := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ivt.Attest(t, ref, scanner, ivt.VulnPredicateType, ivt.Vuln(finished,
		ivt.Finding{ID: "CVE-2024-0001", Severity: "HIGH"},
		ivt.Finding{ID: "CVE-2024-0002", Severity: "LOW"},
	))

	f := newFixture(t).verify(t, ref, keyAttestor(t, "trivy", scanner))
	atts := f.Attestations["trivy"]
	if len(atts) != 1 {
		t.Fatalf("attestations %+v, want one", f.Attestations)
	}
	a := atts[0]
	if a.PredicateType != imageverify.VulnPredicateType {
		t.Errorf("predicate type %q", a.PredicateType)
	}
	if a.Timestamp != "2026-11-30T12:00:00Z" {
		t.Errorf("timestamp %q, want the scan's finish time", a.Timestamp)
	}
	// The shape the scanResults rule reads.
	b, _ := json.Marshal(a.Predicate)
	var p struct {
		Scanner struct {
			Result struct {
				Vulnerabilities []struct{ ID, Severity string }
			}
		}
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if v := p.Scanner.Result.Vulnerabilities; len(v) != 2 || v[0].ID != "CVE-2024-0001" || v[0].Severity != "HIGH" {
		t.Errorf("vulnerabilities %+v", v)
	}
	// An attestation is not a signature.
	wantRefused(t, f, "trivy", imageverify.ReasonNoSignature)
}

func TestUnverifiedAttestationsAreDropped(t *testing.T) {
	host := ivt.StartRegistry(t)
	scanner := ivt.NewKeySigner(t, ivt.ECDSAP256)
	_, otherDigest := ivt.PushRandomImage(t, host, "dropped/other", "v1")
	now := time.Now()
	for _, tc := range []struct {
		name   string
		attest func(t *testing.T, ref string)
	}{
		{"attestation by another key", func(t *testing.T, ref string) {
			ivt.Attest(t, ref, ivt.NewKeySigner(t, ivt.ECDSAP256), ivt.VulnPredicateType, ivt.Vuln(now))
		}},
		{"tampered statement", func(t *testing.T, ref string) {
			ivt.Attest(t, ref, scanner, ivt.VulnPredicateType, ivt.Vuln(now), ivt.WithTamperedPayload())
		}},
		{"statement about another digest", func(t *testing.T, ref string) {
			ivt.Attest(t, ref, scanner, ivt.VulnPredicateType, ivt.Vuln(now), ivt.WithPayloadDigest(otherDigest))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, _ := ivt.PushRandomImage(t, host, "dropped/app", tc.name[:4])
			tc.attest(t, ref)
			f := newFixture(t).verify(t, ref, keyAttestor(t, "trivy", scanner))
			if f.Error != "" {
				t.Fatal(f.Error)
			}
			if atts, ok := f.Attestations["trivy"]; !ok || len(atts) != 0 {
				t.Fatalf("attestations %+v, want an empty list", f.Attestations)
			}
		})
	}
}

func TestOnlyVerifiedAttestationsAmongSeveral(t *testing.T) {
	host := ivt.StartRegistry(t)
	ref, _ := ivt.PushRandomImage(t, host, "mixed/app", "v1")
	scanner := ivt.NewKeySigner(t, ivt.Ed25519)
	ivt.Attest(t, ref, ivt.NewKeySigner(t, ivt.ECDSAP256), ivt.VulnPredicateType, ivt.Vuln(time.Now(), ivt.Finding{ID: "CVE-FORGED", Severity: "LOW"}))
	ivt.Attest(t, ref, scanner, "https://slsa.dev/provenance/v1", map[string]any{"buildDefinition": map[string]any{"buildType": "x"}})
	f := newFixture(t).verify(t, ref, keyAttestor(t, "trivy", scanner))
	atts := f.Attestations["trivy"]
	if len(atts) != 1 || atts[0].PredicateType != "https://slsa.dev/provenance/v1" {
		t.Fatalf("attestations %+v, want only the provenance", atts)
	}
	if atts[0].Timestamp != "" {
		t.Errorf("timestamp %q: a key-signed attestation without scan time has no trustworthy time", atts[0].Timestamp)
	}
}

func TestKeylessAttestation(t *testing.T) {
	host := ivt.StartRegistry(t)
	ca := ivt.NewKeyless(t)
	ref, _ := ivt.PushRandomImage(t, host, "keyless/scanned", "v1")
	signed := time.Now().Add(-time.Hour).Truncate(time.Second)
	ca.AttestKeyless(t, ref, githubIssuer, workflow, "https://example.com/custom/v1", map[string]any{"ok": true}, ivt.WithSigningTime(signed))
	ca.AttestKeyless(t, ref, githubIssuer, workflow, "https://example.com/custom/v1", map[string]any{"forged": true}, ivt.WithCorruptSET())
	ca.AttestKeyless(t, ref, githubIssuer, "https://github.com/mallory/x/.github/workflows/x.yml@refs/heads/main", "https://example.com/custom/v1", map[string]any{"forged": true})
	f := newFixture(t).verify(t, ref, keylessAttestor(t, "ci", ca, githubIssuer, workflow, ""))
	atts := f.Attestations["ci"]
	if len(atts) != 1 || atts[0].Predicate["ok"] != true {
		t.Fatalf("attestations %+v, want only the valid one", atts)
	}
	if want := signed.UTC().Format(time.RFC3339); atts[0].Timestamp != want {
		t.Errorf("timestamp %q, want the log's integrated time %s", atts[0].Timestamp, want)
	}
}
