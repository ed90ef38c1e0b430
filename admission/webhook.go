package admission

import (
	"errors"
	"fmt"
	"maps"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of Palisade's webhook registration.
const (
	// WebhookName is the webhook's name, which kubectl shows in a denial:
	// admission webhook "validate.palisade.dev" denied the request: ...
	WebhookName = "validate.palisade.dev"
	// DefaultConfigurationName names the ValidatingWebhookConfiguration.
	DefaultConfigurationName = "palisade"
	// DefaultSystemNamespace is where Palisade runs (policy's default
	// spec.systemNamespace).
	DefaultSystemNamespace = "palisade-system"
	// Path is where the Handler is served (see NewServer).
	Path = "/validate"
	// LabelPartOf marks Palisade's own webhook configurations, whose
	// caBundle the CertManager patches (DefaultWebhookSelector).
	LabelPartOf            = "app.kubernetes.io/part-of"
	DefaultWebhookSelector = LabelPartOf + "=palisade"
)

// DefaultTimeout is the webhook's timeout. Decisions take about a
// millisecond; 5 s leaves room for a GC pause or a CPU-throttled pod, and
// bounds how long every covered API request waits while the webhook is
// unreachable (the API server's default is 10 s, its maximum 30 s).
const DefaultTimeout = 5 * time.Second

// WebhookOptions describe Palisade's ValidatingWebhookConfiguration.
// Exactly one of Service and URL is set.
type WebhookOptions struct {
	// Name of the configuration (DefaultConfigurationName if empty).
	Name string
	// Service routes to the webhook inside the cluster; its Path defaults
	// to Path.
	Service *admissionregistrationv1.ServiceReference
	// URL reaches the webhook outside the cluster (palisade up), e.g.
	// https://127.0.0.1:8443/validate.
	URL string
	// CABundle is the PEM bundle that verifies the serving certificate.
	CABundle []byte
	// FailurePolicy applies when the API server cannot reach the webhook
	// or gets no valid answer: Fail (the default: a Palisade outage does
	// not admit what the policy blocks) or Ignore.
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// Timeout, between 1 and 30 s in whole seconds (DefaultTimeout if
	// zero).
	Timeout time.Duration
	// SystemNamespace is excluded with kube-system, so that a Palisade
	// outage cannot block the control plane or Palisade's own recovery
	// (DefaultSystemNamespace if empty).
	SystemNamespace string
	// Labels are added to the configuration's labels; LabelPartOf is
	// always "palisade".
	Labels map[string]string
}

// WebhookConfiguration returns the ValidatingWebhookConfiguration that
// registers Palisade's webhook: CREATE and UPDATE of pods and of every
// kind with a pod template, UPDATE of pods/ephemeralcontainers, and
// CONNECT of pods/exec, pods/attach and pods/portforward, in every
// namespace but the system namespace and kube-system. It returns an error
// for invalid options.
func WebhookConfiguration(o WebhookOptions) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	if o.Name == "" {
		o.Name = DefaultConfigurationName
	}
	if o.SystemNamespace == "" {
		o.SystemNamespace = DefaultSystemNamespace
	}
	if o.FailurePolicy == "" {
		o.FailurePolicy = admissionregistrationv1.Fail
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case (o.Service == nil) == (o.URL == ""):
		return nil, errors.New("webhook configuration: set exactly one of service and URL")
	case o.FailurePolicy != admissionregistrationv1.Fail && o.FailurePolicy != admissionregistrationv1.Ignore:
		return nil, fmt.Errorf("webhook configuration: failure policy %q is neither Fail nor Ignore", o.FailurePolicy)
	case o.Timeout < time.Second || o.Timeout > 30*time.Second || o.Timeout%time.Second != 0:
		return nil, fmt.Errorf("webhook configuration: timeout %s is not a whole number of seconds from 1 to 30", o.Timeout)
	}
	client := admissionregistrationv1.WebhookClientConfig{CABundle: o.CABundle}
	if o.Service != nil {
		svc := *o.Service
		if svc.Path == nil {
			svc.Path = ptr(Path)
		}
		client.Service = &svc
	} else {
		client.URL = ptr(o.URL)
	}
	labels := maps.Clone(o.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelPartOf] = "palisade"
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{
			APIVersion: admissionregistrationv1.SchemeGroupVersion.String(),
			Kind:       "ValidatingWebhookConfiguration",
		},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: labels},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:          WebhookName,
			ClientConfig:  client,
			Rules:         webhookRules(),
			FailurePolicy: ptr(o.FailurePolicy),
			// Equivalent: a request for another version of a covered
			// resource (apps/v1beta2) is converted and sent too.
			MatchPolicy: ptr(admissionregistrationv1.Equivalent),
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key:      "kubernetes.io/metadata.name",
				Operator: metav1.LabelSelectorOpNotIn,
				Values:   []string{o.SystemNamespace, "kube-system"},
			}}},
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr(int32(o.Timeout / time.Second)),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, nil
}

// webhookRules are the requests Rego decides on (see
// rego/palisade/admission.rego and lib/subject.rego's template kinds).
func webhookRules() []admissionregistrationv1.RuleWithOperations {
	const (
		create  = admissionregistrationv1.Create
		update  = admissionregistrationv1.Update
		connect = admissionregistrationv1.Connect
	)
	rule := func(group string, resources []string, ops ...admissionregistrationv1.OperationType) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: ops,
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{group},
				APIVersions: []string{"v1"},
				Resources:   resources,
				Scope:       ptr(admissionregistrationv1.NamespacedScope),
			},
		}
	}
	return []admissionregistrationv1.RuleWithOperations{
		rule("", []string{"pods", "replicationcontrollers"}, create, update),
		rule("", []string{"pods/ephemeralcontainers"}, update),
		rule("", []string{"pods/exec", "pods/attach", "pods/portforward"}, connect),
		rule("apps", []string{"deployments", "replicasets", "statefulsets", "daemonsets"}, create, update),
		rule("batch", []string{"jobs", "cronjobs"}, create, update),
	}
}

func ptr[T any](v T) *T { return &v }
