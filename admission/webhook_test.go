package admission_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/palisade-dev/palisade/admission"
)

// covers reports whether a webhook's rules send a request to it.
func covers(w admissionregistrationv1.ValidatingWebhook, group, resource string, op admissionregistrationv1.OperationType) bool {
	for _, r := range w.Rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Operations, op) {
			return true
		}
	}
	return false
}

func TestWebhookConfigurationDefaults(t *testing.T) {
	cfg, err := admission.WebhookConfiguration(admission.WebhookOptions{
		Service:  &admissionregistrationv1.ServiceReference{Namespace: "palisade-system", Name: "palisade-admission"},
		CABundle: []byte("PEM"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "palisade" || cfg.Labels[admission.LabelPartOf] != "palisade" || cfg.Kind != "ValidatingWebhookConfiguration" ||
		cfg.APIVersion != "admissionregistration.k8s.io/v1" || len(cfg.Webhooks) != 1 {
		t.Fatalf("configuration: %+v", cfg.ObjectMeta)
	}
	w := cfg.Webhooks[0]
	if errs := validation.IsFullyQualifiedName(nil, w.Name); len(errs) > 0 || w.Name != "validate.palisade.dev" {
		t.Errorf("webhook name %q: %v", w.Name, errs)
	}
	if *w.FailurePolicy != admissionregistrationv1.Fail || *w.TimeoutSeconds != 5 || *w.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		*w.MatchPolicy != admissionregistrationv1.Equivalent || !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("failurePolicy %s, timeout %d, sideEffects %s, matchPolicy %s, versions %v",
			*w.FailurePolicy, *w.TimeoutSeconds, *w.SideEffects, *w.MatchPolicy, w.AdmissionReviewVersions)
	}
	if s := w.ClientConfig.Service; s == nil || *s.Path != admission.Path || s.Name != "palisade-admission" || string(w.ClientConfig.CABundle) != "PEM" {
		t.Errorf("client config: %+v", w.ClientConfig)
	}

	sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
	if err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]bool{"default": true, "payments": true, "palisade-system": false, "kube-system": false} {
		if got := sel.Matches(labels.Set{"kubernetes.io/metadata.name": ns}); got != want {
			t.Errorf("namespace %s selected = %v, want %v", ns, got, want)
		}
	}

	const (
		create  = admissionregistrationv1.Create
		update  = admissionregistrationv1.Update
		del     = admissionregistrationv1.Delete
		connect = admissionregistrationv1.Connect
	)
	for _, c := range []struct {
		group, resource string
		op              admissionregistrationv1.OperationType
		want            bool
	}{
		{"", "pods", create, true},
		{"", "pods", update, true},
		{"", "pods", del, false},
		{"", "pods/ephemeralcontainers", update, true},
		{"", "pods/exec", connect, true},
		{"", "pods/attach", connect, true},
		{"", "pods/portforward", connect, true},
		{"", "pods/exec", create, false},
		{"", "replicationcontrollers", create, true},
		{"apps", "deployments", create, true},
		{"apps", "deployments", update, true},
		{"apps", "replicasets", create, true},
		{"apps", "statefulsets", update, true},
		{"apps", "daemonsets", create, true},
		{"batch", "jobs", create, true},
		{"batch", "cronjobs", update, true},
		{"", "configmaps", create, false},
		{"", "secrets", create, false},
	} {
		if got := covers(w, c.group, c.resource, c.op); got != c.want {
			t.Errorf("%s %s/%s covered = %v, want %v", c.op, c.group, c.resource, got, c.want)
		}
	}
}

func TestWebhookConfigurationOptions(t *testing.T) {
	cfg, err := admission.WebhookConfiguration(admission.WebhookOptions{
		Name:            "palisade-dev",
		URL:             "https://127.0.0.1:8443/validate",
		FailurePolicy:   admissionregistrationv1.Ignore,
		Timeout:         10 * time.Second,
		SystemNamespace: "security",
		Labels:          map[string]string{"env": "dev"},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Webhooks[0]
	if cfg.Name != "palisade-dev" || cfg.Labels["env"] != "dev" || cfg.Labels[admission.LabelPartOf] != "palisade" ||
		*w.ClientConfig.URL != "https://127.0.0.1:8443/validate" || w.ClientConfig.Service != nil ||
		*w.FailurePolicy != admissionregistrationv1.Ignore || *w.TimeoutSeconds != 10 ||
		!slices.Equal(w.NamespaceSelector.MatchExpressions[0].Values, []string{"security", "kube-system"}) {
		t.Errorf("configuration: %+v", cfg)
	}

	for name, o := range map[string]admission.WebhookOptions{
		"neither service nor URL": {},
		"both service and URL":    {URL: "https://x", Service: &admissionregistrationv1.ServiceReference{}},
		"unknown failure policy":  {URL: "https://x", FailurePolicy: "Maybe"},
		"timeout under a second":  {URL: "https://x", Timeout: 500 * time.Millisecond},
		"timeout over 30 s":       {URL: "https://x", Timeout: 31 * time.Second},
		"fractional timeout":      {URL: "https://x", Timeout: 1500 * time.Millisecond},
	} {
		if _, err := admission.WebhookConfiguration(o); err == nil || !strings.HasPrefix(err.Error(), "webhook configuration: ") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}
