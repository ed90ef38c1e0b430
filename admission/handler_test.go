package admission_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/policy"
)

const (
	privilegedMsg = `containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (block)`
	pssMsg        = `pss.baseline violates rule podSecurityStandards "privileged: privileged=true" in container(s) "busybox-container" (block)`
)

func TestHandlerDecisions(t *testing.T) {
	logOnly := webContainer()
	delete(logOnly["securityContext"].(map[string]any), "readOnlyRootFilesystem")
	hostPort := func(port int) map[string]any {
		c := webContainer()
		c["ports"] = []any{map[string]any{"containerPort": port, "hostPort": port}}
		return c
	}
	execOptions := map[string]any{"apiVersion": "v1", "kind": "PodExecOptions", "container": "web", "command": []any{"sh"}, "stdin": true, "tty": true}

	tests := []struct {
		name    string
		mode    string // policy mode of the engine (enforce if empty)
		req     request
		allowed bool
		// denials are the messages status.message of a denial joins with
		// "; ", in any order.
		denials []string
		// warnings must all be among the response's warnings.
		warnings []string
		// rules are the rules of the audit annotation, sorted.
		rules []string
	}{
		{
			name:    "privileged busybox pod is denied with every blocking rule",
			req:     request{kind: "Pod", name: "busybox", object: privilegedBusybox()},
			denials: []string{privilegedMsg, pssMsg},
			warnings: []string{
				`containerSecurityContext violates rule runAsRoot "runAsNonRoot unset" in container(s) "busybox-container" (log)`,
				`image violates rule digestPinning "busybox:1.36" in container(s) "busybox-container" (log)`,
			},
			rules: []string{"allowPrivilegeEscalation", "automountServiceAccountToken", "digestPinning", "podSecurityStandards",
				"privileged", "readOnlyRootFilesystem", "resources", "resources", "runAsRoot"},
		},
		{
			name:    "compliant pod is allowed without warnings",
			req:     request{kind: "Pod", name: "web", object: pod("web", "default", podSpec(webContainer()))},
			allowed: true,
		},
		{
			name:     "log-only violation is allowed with a warning and an audit annotation",
			req:      request{kind: "Pod", name: "web", object: pod("web", "default", podSpec(logOnly))},
			allowed:  true,
			warnings: []string{`containerSecurityContext violates rule readOnlyRootFilesystem "readOnlyRootFilesystem=unset" in container(s) "web" (log)`},
			rules:    []string{"readOnlyRootFilesystem"},
		},
		{
			name:    "audit mode allows the privileged pod and warns",
			mode:    policy.ModeAudit,
			req:     request{kind: "Pod", name: "busybox", object: privilegedBusybox()},
			allowed: true,
			warnings: []string{
				`containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (log)`,
				`pss.baseline violates rule podSecurityStandards "privileged: privileged=true" in container(s) "busybox-container" (log)`,
			},
			rules: []string{"allowPrivilegeEscalation", "automountServiceAccountToken", "digestPinning", "podSecurityStandards",
				"privileged", "readOnlyRootFilesystem", "resources", "resources", "runAsRoot"},
		},
		{
			name: "Deployment with a privileged template is denied",
			req: request{kind: "Deployment", group: "apps", name: "busybox", object: map[string]any{
				"apiVersion": "apps/v1", "kind": "Deployment",
				"metadata": map[string]any{"name": "busybox", "namespace": "default"},
				"spec": map[string]any{
					"selector": map[string]any{"matchLabels": map[string]any{"app": "busybox"}},
					"template": map[string]any{
						"metadata": map[string]any{"labels": map[string]any{"app": "busybox"}},
						"spec":     privilegedBusybox()["spec"],
					},
				},
			}},
			denials: []string{privilegedMsg, pssMsg},
		},
		{
			name: "kubectl exec into a protected namespace is denied",
			req: request{kind: "PodExecOptions", namespace: "payments", name: "web", operation: admissionv1.Connect,
				subResource: "exec", groups: []string{"acme:developers"}, object: execOptions},
			denials: []string{`kubectl violates rule kubectlAccess "exec" in container(s) "web" (block)`},
			rules:   []string{"kubectlAccess"},
		},
		{
			name: "kubectl exec by acme:sre is allowed",
			req: request{kind: "PodExecOptions", namespace: "payments", name: "web", operation: admissionv1.Connect,
				subResource: "exec", user: "sre@acme.example", groups: []string{"acme:sre"}, object: execOptions},
			allowed: true,
		},
		{
			name: "namespaced definition blocks what cluster-wide logs",
			req: request{kind: "Pod", namespace: "payments", name: "web",
				object: pod("web", "payments", podSpec(logOnly))},
			denials: []string{
				`containerSecurityContext violates rule readOnlyRootFilesystem "readOnlyRootFilesystem=unset" in container(s) "web" (block)`,
				`image violates rule allowedRegistries "ghcr.io/acme/web:1.4.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" in container(s) "web" (block)`,
				`resources violates rule resources "limits.cpu missing" in container(s) "web" (block)`,
				`resources violates rule resources "requests.memory missing" in container(s) "web" (block)`,
			},
		},
		{
			name: "host port numbers stay exact: 9100 is not an allowed host port",
			req:  request{kind: "Pod", name: "web", object: pod("web", "default", podSpec(hostPort(9100)))},
			denials: []string{
				`containerPorts violates rule hostPorts "hostPort=9100" in container(s) "web" (block)`,
				`pss.baseline violates rule podSecurityStandards "hostPorts: hostPort=9100" in container(s) "web" (block)`,
			},
		},
		{
			name:    "host port numbers stay exact: 8443 is an allowed host port",
			req:     request{kind: "Pod", name: "web", object: pod("web", "default", podSpec(hostPort(8443)))},
			denials: []string{`pss.baseline violates rule podSecurityStandards "hostPorts: hostPort=8443" in container(s) "web" (block)`},
		},
		{
			name:    "DELETE of a privileged pod is allowed by the decision",
			req:     request{kind: "Pod", name: "busybox", operation: admissionv1.Delete, oldObject: privilegedBusybox()},
			allowed: true,
		},
		{
			name: "a kind the policy does not cover is allowed by the decision",
			req: request{kind: "ConfigMap", name: "settings", object: map[string]any{
				"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "settings"},
				"data": map[string]any{"privileged": "true"},
			}},
			allowed: true,
		},
		{
			name: "the system namespace is exempt",
			req: request{kind: "Pod", namespace: "palisade-system", name: "busybox",
				object: pod("busybox", "palisade-system", privilegedBusybox()["spec"].(map[string]any))},
			allowed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mode := tc.mode
			if mode == "" {
				mode = policy.ModeEnforce
			}
			h := newHandler(t, admission.Options{Engines: source{engine(t, mode)}})
			tc.req.uid = "uid-" + strings.ReplaceAll(tc.name, " ", "-")
			rec, out := post(t, h, reviewBody(t, tc.req))
			if out == nil {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			resp := out.Response
			if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
				t.Errorf("apiVersion, kind = %q, %q", out.APIVersion, out.Kind)
			}
			if string(resp.UID) != tc.req.uid {
				t.Errorf("uid = %q, want %q", resp.UID, tc.req.uid)
			}
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (status %+v)", resp.Allowed, tc.allowed, resp.Result)
			}
			switch {
			case tc.allowed && resp.Result != nil:
				t.Errorf("allowed with status %+v", resp.Result)
			case !tc.allowed:
				r := resp.Result
				if r == nil || r.Status != metav1.StatusFailure || r.Code != http.StatusForbidden || r.Reason != metav1.StatusReasonForbidden {
					t.Fatalf("status = %+v", r)
				}
				got := strings.Split(r.Message, "; ")
				slices.Sort(got)
				want := slices.Sorted(slices.Values(tc.denials))
				if !slices.Equal(got, want) {
					t.Errorf("status.message = %q\nwant the messages %q", r.Message, want)
				}
			}
			for _, w := range tc.warnings {
				if !slices.Contains(resp.Warnings, w) {
					t.Errorf("warning %q missing from %q", w, resp.Warnings)
				}
			}
			if tc.allowed && tc.warnings == nil && tc.rules == nil && len(resp.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", resp.Warnings)
			}
			if tc.rules != nil {
				// Each violation but its message, which the warnings
				// and the denial carry.
				var got []struct {
					Rule, Action, Field, Value string
					Containers                 []string
				}
				dec := json.NewDecoder(strings.NewReader(resp.AuditAnnotations[admission.AuditAnnotationViolations]))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("audit annotation: %v: %q", err, resp.AuditAnnotations)
				}
				var rules []string
				for _, v := range got {
					rules = append(rules, v.Rule)
					if v.Action == "" || v.Field == "" || v.Value == "" {
						t.Errorf("audit annotation: violation %+v lacks its action, field or value", v)
					}
					action := "block"
					if tc.mode == "audit" {
						action = "log"
					}
					if v.Rule == "privileged" && (v.Action != action || v.Field != "containerSecurityContext" || v.Value != "true" || !slices.Equal(v.Containers, []string{"busybox-container"})) {
						t.Errorf("audit annotation: %+v, want privileged (%s) for \"true\" in busybox-container", v, action)
					}
				}
				slices.Sort(rules)
				if !slices.Equal(rules, tc.rules) {
					t.Errorf("audit annotation rules = %q, want %q", rules, tc.rules)
				}
			}
		})
	}
}

func TestHandlerWithoutBundle(t *testing.T) {
	tests := []struct {
		name     string
		failOpen bool
		allowed  bool
	}{
		{name: "fails closed by default", allowed: false},
		{name: "fails open when configured", failOpen: true, allowed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := newHandler(t, admission.Options{Engines: source{}, FailOpen: tc.failOpen, Registerer: reg})
			if h.Ready() {
				t.Error("ready without a bundle")
			}
			_, out := post(t, h, reviewBody(t, request{kind: "Pod", name: "busybox", object: privilegedBusybox()}))
			if out == nil {
				t.Fatal("no review answered")
			}
			resp := out.Response
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v", resp.Allowed, tc.allowed)
			}
			const why = "no Palisade policy bundle is active yet"
			if tc.allowed {
				if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], why) {
					t.Errorf("warnings = %q, want one saying %q", resp.Warnings, why)
				}
			} else {
				if resp.Result == nil || resp.Result.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Result.Message, why+"; the request is denied") {
					t.Errorf("status = %+v", resp.Result)
				}
			}
			if n := metricValue(t, reg, admission.MetricDuration, map[string]string{admission.LabelOperation: "CREATE", admission.LabelDecision: admission.DecisionError}); n != 1 {
				t.Errorf("error decisions counted = %v, want 1", n)
			}
		})
	}
}

func TestHandlerRejectsWhatIsNotAReview(t *testing.T) {
	valid := string(reviewBody(t, request{kind: "Pod", name: "busybox", object: privilegedBusybox()}))
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		code        int
		message     string
	}{
		{name: "body over the limit", body: valid + strings.Repeat(" ", 4096), code: http.StatusRequestEntityTooLarge, message: "larger than"},
		{name: "malformed JSON", body: `{"apiVersion":`, code: http.StatusBadRequest, message: "malformed AdmissionReview"},
		{name: "not an object", body: `[1,2]`, code: http.StatusBadRequest, message: "malformed AdmissionReview"},
		{name: "empty body", body: ``, code: http.StatusBadRequest, message: "malformed AdmissionReview"},
		{name: "wrong kind", body: strings.Replace(valid, `"kind":"AdmissionReview"`, `"kind":"Pod"`, 1), code: http.StatusBadRequest, message: `kind "Pod"`},
		{name: "v1beta1 review", body: strings.Replace(valid, `admission.k8s.io/v1"`, `admission.k8s.io/v1beta1"`, 1), code: http.StatusBadRequest, message: `apiVersion "admission.k8s.io/v1beta1"`},
		{name: "no request", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, code: http.StatusBadRequest, message: "no request"},
		{name: "no uid", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}`, code: http.StatusBadRequest, message: "no uid"},
		{name: "object is not an object", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":[1]}}`, code: http.StatusBadRequest, message: "request.object is not a JSON object"},
		{name: "oldObject is not an object", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","oldObject":"x"}}`, code: http.StatusBadRequest, message: "request.oldObject is not a JSON object"},
		{name: "GET", method: http.MethodGet, code: http.StatusMethodNotAllowed},
		{name: "text/plain", contentType: "text/plain", body: valid, code: http.StatusUnsupportedMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			h := newHandler(t, admission.Options{
				Engines:         source{engine(t, policy.ModeEnforce)},
				MaxRequestBytes: int64(len(valid) + 1024),
				Logger:          slog.New(slog.NewJSONHandler(&logs, nil)),
				Registerer:      reg,
			})
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, admission.Path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.message) {
				t.Errorf("body = %q, want it to contain %q", rec.Body, tc.message)
			}
			if lines := strings.Count(logs.String(), "\n"); lines != 1 {
				t.Errorf("%d log lines, want 1:\n%s", lines, logs.String())
			}
			if n := metricValue(t, reg, admission.MetricRequests, map[string]string{admission.LabelCode: strconv.Itoa(tc.code)}); n != 1 {
				t.Errorf("requests with code %d = %v, want 1", tc.code, n)
			}
		})
	}
}

func TestHandlerDecisionLogAndMetrics(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	h := newHandler(t, admission.Options{
		Engines:    source{engine(t, policy.ModeEnforce)},
		Logger:     slog.New(slog.NewJSONHandler(&logs, nil)),
		Registerer: reg,
	})
	obj := privilegedBusybox()
	c := obj["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	c["env"] = []any{map[string]any{"name": "PASSWORD", "value": "s3cr3t-value"}}
	post(t, h, reviewBody(t, request{uid: "uid-1", kind: "Pod", name: "busybox", user: "dev@acme.example", object: obj}))

	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(logs.String(), "busybox:1.36") {
		t.Errorf("the decision log holds object data:\n%s", logs.String())
	}
	var line struct {
		Msg        string            `json:"msg"`
		UID        string            `json:"uid"`
		Namespace  string            `json:"namespace"`
		Kind       string            `json:"kind"`
		Name       string            `json:"name"`
		Operation  string            `json:"operation"`
		User       string            `json:"user"`
		Revision   string            `json:"revision"`
		Allowed    *bool             `json:"allowed"`
		Decision   string            `json:"decision"`
		Latency    float64           `json:"latencySeconds"`
		Violations []loggedViolation `json:"violations"`
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", n, logs.String())
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line.Msg != "admission decision" || line.UID != "uid-1" || line.Namespace != "default" || line.Kind != "v1/Pod" ||
		line.Name != "busybox" || line.Operation != "CREATE" || line.User != "dev@acme.example" ||
		line.Revision != "rev-enforce" || line.Allowed == nil || *line.Allowed || line.Decision != admission.DecisionDenied || line.Latency <= 0 {
		t.Errorf("decision log line: %s", logs.String())
	}
	i := slices.IndexFunc(line.Violations, func(v loggedViolation) bool { return v.Rule == "privileged" })
	if len(line.Violations) != 9 || i < 0 || line.Violations[i].Action != policy.ActionBlock ||
		!slices.Equal(line.Violations[i].Containers, []string{"busybox-container"}) || line.Violations[i].Message != "" {
		t.Errorf("logged violations: %+v", line.Violations)
	}

	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{admission.MetricDuration, map[string]string{admission.LabelOperation: "CREATE", admission.LabelDecision: admission.DecisionDenied}, 1},
		{admission.MetricViolations, map[string]string{admission.LabelRule: "privileged", admission.LabelAction: policy.ActionBlock}, 1},
		{admission.MetricViolations, map[string]string{admission.LabelRule: "runAsRoot", admission.LabelAction: policy.ActionLog}, 1},
		{admission.MetricRequests, map[string]string{admission.LabelCode: "200"}, 1},
	} {
		if got := metricValue(t, reg, m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

// loggedViolation is a violation in the decision log.
type loggedViolation struct {
	Rule       string   `json:"rule"`
	Action     string   `json:"action"`
	Containers []string `json:"containers"`
	Message    string   `json:"message"`
}
