package bundles_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/palisade-dev/palisade/bundles"
)

// TestPlainOPAConsumesService runs the real opa binary against the bundle
// service: token authentication, long polling (polling delays are 10-20 s,
// so only a long poll brings a new revision within 2 s), and signature
// verification with OPA's own keys configuration.
func TestPlainOPAConsumesService(t *testing.T) {
	priv, pub := keyPair(t, "RS256")
	signer, err := bundles.NewSigner(priv, "RS256", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	log, logs := newLogger(t)
	s, hs := newService(t, bundles.ServerOptions{Token: "opa-token", Signer: signer, Logger: log},
		map[string]*bundle.Bundle{"prod": prodBundle(t, "rev-1", "")})
	base, _ := startOPA(t, hs.URL, "opa-token", pub, s)
	revision := func() string { return opaRevision(base) }
	eventually(t, 30*time.Second, "opa activates rev-1", func() bool { return revision() == "rev-1" })
	resp, err := http.Get(base + "/health?bundles")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/health?bundles: %s", resp.Status)
	}

	input, _ := json.Marshal(map[string]any{"input": map[string]any{
		"request": map[string]any{
			"kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"}, "namespace": "default",
			"operation": "CREATE", "userInfo": map[string]any{"username": "alice"}, "object": privilegedPod.Object,
		},
		"facts": map[string]any{"now": time.Now().UTC().Format(time.RFC3339)},
	}})
	resp, err = http.Post(base+"/v1/data/palisade/admission/decision", "application/json", bytes.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	var decision struct {
		Result struct {
			Allowed    bool                `json:"allowed"`
			Violations []bundles.Violation `json:"violations"`
		} `json:"result"`
	}
	err = json.NewDecoder(resp.Body).Decode(&decision)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if decision.Result.Allowed || len(decision.Result.Violations) == 0 {
		t.Errorf("opa allowed the privileged pod: %+v", decision.Result)
	}

	time.Sleep(500 * time.Millisecond) // OPA is in a long poll now
	if _, err := s.Publish(map[string]*bundle.Bundle{"prod": prodBundle(t, "rev-2", "changed")}); err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	// Polling delays are 10-20 s: only a long poll gets it there in time.
	eventually(t, 2*time.Second, "opa activates rev-2", func() bool { return revision() == "rev-2" })
	t.Logf("opa had rev-2 %v after the publish", time.Since(published))
	if strings.Contains(logs.String(), "bundle request refused") {
		t.Error("the service refused one of OPA's requests")
	}
}

// TestPlainOPARefusesForeignSignature checks that OPA does verify the
// signature: a bundle signed with another key is not loaded.
func TestPlainOPARefusesForeignSignature(t *testing.T) {
	_, pub := keyPair(t, "RS256")
	s, hs := newService(t, bundles.ServerOptions{Token: "opa-token", Signer: mustSigner(t, "RS256")},
		map[string]*bundle.Bundle{"prod": prodBundle(t, "rev-1", "")})
	base, output := startOPA(t, hs.URL, "opa-token", pub, s)
	eventually(t, 30*time.Second, "opa reports a verification failure", func() bool {
		return strings.Contains(output.String(), "failed to verify JWT signature")
	})
	if rev := opaRevision(base); rev != "" {
		t.Errorf("opa loaded revision %q signed with another key", rev)
	}
}

// startOPA runs `opa run --server` with the bundle prod from the service,
// verified with the public key in pubFile, and returns its base URL and
// its output.
func startOPA(t *testing.T, serviceURL, token, pubFile string, s *bundles.Server) (string, *logBuffer) {
	t.Helper()
	pubPEM, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	config, _ := json.Marshal(map[string]any{
		"services": map[string]any{"palisade": map[string]any{
			"url":         serviceURL,
			"credentials": map[string]any{"bearer": map[string]any{"token": token}},
		}},
		"bundles": map[string]any{"prod": map[string]any{
			"service":  "palisade",
			"resource": "bundles/prod.tar.gz",
			"polling":  map[string]any{"min_delay_seconds": 10, "max_delay_seconds": 20, "long_polling_timeout_seconds": 10},
			"signing":  map[string]any{"keyid": "palisade"},
		}},
		"keys": map[string]any{"palisade": map[string]any{"algorithm": "RS256", "key": string(pubPEM)}},
	})
	configFile := writeFile(t, "opa.json", config)

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	output := &logBuffer{}
	cmd := exec.CommandContext(ctx, opaBinary(t), "run", "--server", "--addr", addr, "--log-level", "info",
		"--config-file", configFile)
	cmd.Stderr = output
	cmd.Stdout = output
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close() // end OPA's long poll before the server closes
		cancel()
		_ = cmd.Wait() // killed by cancel
		if t.Failed() {
			t.Logf("opa output:\n%s", output)
		}
	})
	return "http://" + addr, output
}

// opaRevision returns the revision of the bundle prod that OPA has
// activated, "" if none (or OPA is not up yet).
func opaRevision(base string) string {
	resp, err := http.Get(base + "/v1/data/system/bundles/prod/manifest/revision")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out struct {
		Result string `json:"result"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Result
}
