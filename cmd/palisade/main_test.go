package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidateReportsEveryMistakeWithPosition(t *testing.T) {
	code, _, stderr := runCLI(t, "validate", "../../policy/testdata/five-mistakes")
	if code != 1 {
		t.Fatalf("exit code = %d, want 1; stderr:\n%s", code, stderr)
	}
	want := []string{
		`clusters/prod.yaml:9:28: spec.clusterWide.deployment.privileged.action: action "terminate" is not valid in the deployment tab`,
		`clusters/prod.yaml:10:49: spec.clusterWide.deployment.blockedHostPaths.paths[0]: path "var/run" must be absolute`,
		`clusters/prod.yaml:11:44: spec.clusterWide.deployment.capabilities.deny[0]: unknown capability "SYS_ADMN" (did you mean "SYS_ADMIN"?)`,
		`clusters/prod.yaml:13:18: spec.clusterWide.runtime.rulesets[0]: RuntimeRuleset "missing_ruleset" not found`,
		`clusters/prod.yaml:18:9: spec.namespaced[0].deployment.hostNetwork: unknown rule "hostNetwork"`,
	}
	lines := regexp.MustCompile(`(?m)^.*\.yaml:\d+:\d+: .*$`).FindAllString(stderr, -1)
	if len(lines) != len(want) {
		t.Fatalf("got %d positioned errors, want %d:\n%s", len(lines), len(want), stderr)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("error %d:\n got %s\nwant …%s…", i, lines[i], w)
		}
	}
}

func TestValidateExampleIsValid(t *testing.T) {
	if code, out, stderr := runCLI(t, "validate", "../../policies-example"); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

func TestEvalExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	privileged := write("privileged.yaml", `apiVersion: v1
kind: Pod
metadata: {name: busybox}
spec:
  containers:
    - name: busybox-container
      image: busybox:1.36
      securityContext: {privileged: true}
`)
	harmless := write("harmless.yaml", `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ci}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: web
      image: ghcr.io/acme/web:1.0
      resources: {requests: {cpu: 10m}, limits: {memory: 64Mi}}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`)
	garbage := write("garbage.yaml", "kind: [\n")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"denied object exits 1", []string{"-f", privileged}, 1, `containerSecurityContext violates rule privileged \"true\" in container(s) \"busybox-container\" (block)`},
		{"allowed object exits 0", []string{"-f", harmless}, 0, `"allowed": true`},
		{"any denied object among several exits 1", []string{"-f", harmless, "-f", privileged}, 1, `"allowed": false`},
		{"malformed manifest exits 2", []string{"-f", garbage}, 2, ""},
		{"missing file exits 2", []string{"-f", filepath.Join(dir, "nope.yaml")}, 2, ""},
		{"unknown cluster exits 2", []string{"-f", harmless, "--cluster", "nope"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"eval", "../../policies-example", "--cluster", "prod", "-o", "json", "--now", "2026-11-23T00:00:00Z"}, tt.args...)
			code, out, stderr := runCLI(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:%s\nstderr:%s", code, tt.wantCode, out, stderr)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output lacks %s:\n%s", tt.wantOut, out)
			}
			if tt.wantCode != 2 {
				var results []evalResult
				if err := json.Unmarshal([]byte(out), &results); err != nil {
					t.Fatalf("output is not JSON: %v", err)
				}
			}
		})
	}
}

func TestCompileWritesLoadableBundle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "prod.tar.gz")
	code, _, stderr := runCLI(t, "compile", "../../policies-example", "--cluster", "prod", "-o", out, "--revision", "abc123")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("bundle not written: %v", err)
	}
}

func TestTestCommandRunsExamplePolicyTests(t *testing.T) {
	code, out, stderr := runCLI(t, "test", "../../policies-example")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "PASS") {
		t.Errorf("output lacks PASS:\n%s", out)
	}
}
