package imageverifytest

import "time"

// VulnPredicateType is cosign's vulnerability scan predicate type.
const VulnPredicateType = "https://cosign.sigstore.dev/attestation/vuln/v1"

// Finding is one vulnerability of a scan.
type Finding struct {
	ID       string `json:"id"`       // CVE-2024-1234, GHSA-...
	Severity string `json:"severity"` // CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN
}

// Vuln builds a cosign vuln predicate as `cosign attest --type vuln`
// carries it, with the findings where Palisade's rules read them,
// Trivy-like:
//
//	{
//	  "invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
//	  "scanner": {
//	    "uri": "pkg:github/aquasecurity/trivy@v0.58.0", "version": "0.58.0",
//	    "db": {"uri": "", "version": ""},
//	    "result": {"vulnerabilities": [{"id": "CVE-...", "severity": "HIGH"}]}
//	  },
//	  "metadata": {"scanStartedOn": "<finished - 1m>", "scanFinishedOn": "<finished>"}
//	}
//
// Times are RFC 3339 in UTC. No findings gives an empty list, never null.
func Vuln(scanFinished time.Time, findings ...Finding) map[string]any {
	vulns := make([]any, 0, len(findings))
	for _, f := range findings {
		vulns = append(vulns, map[string]any{"id": f.ID, "severity": f.Severity})
	}
	return map[string]any{
		"invocation": map[string]any{"parameters": nil, "uri": "", "event_id": "", "builder.id": ""},
		"scanner": map[string]any{
			"uri":     "pkg:github/aquasecurity/trivy@v0.58.0",
			"version": "0.58.0",
			"db":      map[string]any{"uri": "", "version": ""},
			"result":  map[string]any{"vulnerabilities": vulns},
		},
		"metadata": map[string]any{
			"scanStartedOn":  scanFinished.Add(-time.Minute).UTC().Format(time.RFC3339),
			"scanFinishedOn": scanFinished.UTC().Format(time.RFC3339),
		},
	}
}
