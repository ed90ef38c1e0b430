package deploy_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/test/cluster"
)

// The chart's ServiceAccounts, as the API server names their users.
const (
	controllerSA = "palisade-controller"
	admissionSA  = "palisade-admission"
	scannerSA    = "palisade-scanner"
)

func saUser(sa string) string { return "system:serviceaccount:" + namespace + ":" + sa }

// saGroups are the groups the API server puts a ServiceAccount's token in.
var saGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}

// TestRBACIsNarrow: no wildcard and no privilege-granting verb in any
// role, every binding names one of the chart's own ServiceAccounts, and
// the controller is bound to nothing, but with learning to a role that
// creates tokenreviews and nothing else.
func TestRBACIsNarrow(t *testing.T) {
	forbiddenVerbs := []string{"escalate", "bind", "impersonate", "deletecollection"}
	for _, v := range variations {
		t.Run(v.name, func(t *testing.T) {
			objs := decodeObjects(t, render(t, v.set...))
			for _, u := range objectsOf(objs, "ClusterRole", "Role") {
				var role rbacv1.ClusterRole // a Role decodes the same
				decodeInto(t, u, &role)
				if role.AggregationRule != nil {
					t.Errorf("%s %s aggregates other roles", u.GetKind(), role.Name)
				}
				for _, r := range role.Rules {
					for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
						if slices.Contains(list, "*") {
							t.Errorf("%s %s: wildcard in %+v", u.GetKind(), role.Name, r)
						}
					}
					if len(r.NonResourceURLs) > 0 {
						t.Errorf("%s %s: non-resource URLs %v", u.GetKind(), role.Name, r.NonResourceURLs)
					}
					for _, verb := range forbiddenVerbs {
						if slices.Contains(r.Verbs, verb) {
							t.Errorf("%s %s grants %s", u.GetKind(), role.Name, verb)
						}
					}
					// Secrets only by name, but for reading the pull
					// secrets pods name, which is opt-in and get only.
					pullSecrets := v.pullSecrets && u.GetKind() == "ClusterRole" && slices.Equal(r.Verbs, []string{"get"})
					if slices.Contains(r.Resources, "secrets") && len(r.ResourceNames) == 0 && !pullSecrets {
						t.Errorf("%s %s: secrets without resourceNames: %+v", u.GetKind(), role.Name, r)
					}
				}
			}
			for _, u := range objectsOf(objs, "ClusterRoleBinding", "RoleBinding") {
				var b rbacv1.ClusterRoleBinding
				decodeInto(t, u, &b)
				for _, s := range b.Subjects {
					if s.Kind != rbacv1.ServiceAccountKind || s.Namespace != namespace ||
						len(find(objs, "ServiceAccount", s.Name)) != 1 {
						t.Errorf("%s %s binds %+v", u.GetKind(), b.Name, s)
					}
					if s.Name == controllerSA && !(v.learning && onlyTokenReviews(t, objs, b.RoleRef)) {
						t.Errorf("%s %s binds the controller to %s %s: it may only create tokenreviews, and only with learning", u.GetKind(), b.Name, b.RoleRef.Kind, b.RoleRef.Name)
					}
				}
				if len(find(objs, b.RoleRef.Kind, b.RoleRef.Name)) != 1 {
					t.Errorf("%s %s refers to %s %s, which the chart does not create", u.GetKind(), b.Name, b.RoleRef.Kind, b.RoleRef.Name)
				}
			}
		})
	}
}

// tokenReviewRule is the one rule the controller has, with learning.
var tokenReviewRule = rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}}

// onlyTokenReviews reports whether the role ref names a role of the chart
// whose only rule is tokenReviewRule.
func onlyTokenReviews(t *testing.T, objs []*unstructured.Unstructured, ref rbacv1.RoleRef) bool {
	t.Helper()
	roles := find(objs, ref.Kind, ref.Name)
	if len(roles) != 1 {
		return false
	}
	var role rbacv1.ClusterRole
	decodeInto(t, roles[0], &role)
	return len(role.Rules) == 1 && toJSON(t, role.Rules[0]) == toJSON(t, tokenReviewRule)
}

// access is one request a ServiceAccount makes, or must not be able to.
type access struct {
	verb, group, resource, namespace, name string
}

// checkAccess asks the API server's authorizer (SubjectAccessReview)
// about each request the components make, and about requests they must
// not be able to make, with the chart's RBAC installed; learning: the
// release has learning.enabled.
func checkAccess(t *testing.T, kube kubernetes.Interface, learning bool) {
	const all = "" // every namespace
	allowed := map[string][]access{
		admissionSA: {
			{"list", "", "namespaces", all, ""},
			{"watch", "", "namespaces", all, ""},
			{"get", "admissionregistration.k8s.io", "validatingwebhookconfigurations", all, admission.DefaultConfigurationName},
			{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", all, admission.DefaultConfigurationName},
			{"get", "", "secrets", namespace, admission.DefaultSecretName},
			{"update", "", "secrets", namespace, admission.DefaultSecretName},
		},
		// What scanner/ does: pods, namespaces and NetworkPolicies through
		// informers; the isolation label (patch); terminate (delete);
		// NetworkPolicies kept per namespace; Events through client-go's
		// recorder (create, patch); reports updated in place.
		scannerSA: {
			{"list", "", "pods", all, ""},
			{"watch", "", "pods", all, ""},
			{"patch", "", "pods", "default", "web"},
			{"delete", "", "pods", "default", "web"},
			{"list", "", "namespaces", all, ""},
			{"watch", "", "namespaces", all, ""},
			{"list", "networking.k8s.io", "networkpolicies", all, ""},
			{"watch", "networking.k8s.io", "networkpolicies", all, ""},
			{"get", "networking.k8s.io", "networkpolicies", "default", "palisade-isolate"},
			{"create", "networking.k8s.io", "networkpolicies", "default", ""},
			{"update", "networking.k8s.io", "networkpolicies", "default", "palisade-isolate"},
			{"delete", "networking.k8s.io", "networkpolicies", "default", "palisade-isolate"},
			{"create", "", "events", "default", ""},
			{"patch", "", "events", "default", "web.1"},
			{"create", "events.k8s.io", "events", "default", ""},
			{"list", "wgpolicyk8s.io", "policyreports", all, ""},
			{"get", "wgpolicyk8s.io", "policyreports", "default", "palisade"},
			{"create", "wgpolicyk8s.io", "policyreports", "default", ""},
			{"update", "wgpolicyk8s.io", "policyreports", "default", "palisade"},
			{"delete", "wgpolicyk8s.io", "policyreports", "default", "palisade"},
			{"get", "wgpolicyk8s.io", "clusterpolicyreports", all, "palisade"},
			{"list", "wgpolicyk8s.io", "clusterpolicyreports", all, ""},
			{"create", "wgpolicyk8s.io", "clusterpolicyreports", all, ""},
			{"update", "wgpolicyk8s.io", "clusterpolicyreports", all, "palisade"},
		},
	}
	denied := map[string][]access{
		controllerSA: {
			{"list", "", "pods", all, ""},
			{"list", "", "namespaces", all, ""},
			{"get", "", "secrets", namespace, admission.DefaultSecretName},
			{"get", "", "configmaps", namespace, "palisade"},
			// Not even with learning: it authenticates, never authorizes,
			// nor issues tokens, nor touches its own volume's claim.
			{"create", "authorization.k8s.io", "subjectaccessreviews", all, ""},
			{"create", "", "serviceaccounts/token", namespace, "palisade-sensor"},
			{"get", "", "persistentvolumeclaims", namespace, "palisade-learning"},
			{"delete", "", "persistentvolumeclaims", namespace, "palisade-learning"},
		},
		admissionSA: {
			{"list", "", "secrets", namespace, ""},
			{"create", "", "secrets", namespace, ""},
			{"get", "", "secrets", namespace, "palisade-scanner-token"},
			{"get", "", "secrets", "default", admission.DefaultSecretName},
			{"list", "admissionregistration.k8s.io", "validatingwebhookconfigurations", all, ""},
			{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", all, "another-webhook"},
			{"update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", all, admission.DefaultConfigurationName},
			{"update", "", "namespaces", all, "default"},
			{"list", "", "pods", all, ""},
		},
		scannerSA: {
			{"get", "", "secrets", "default", "any"},
			{"list", "", "secrets", all, ""},
			{"create", "", "pods", "default", ""},
			{"update", "apps", "deployments", "default", "web"},
			{"delete", "", "namespaces", all, "default"},
			{"create", "", "pods/exec", "default", "web"},
			{"update", "", "namespaces", all, "default"},
			{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", all, admission.DefaultConfigurationName},
		},
	}
	// TokenReview: the controller's one permission, with learning only.
	tokenReview := access{"create", "authentication.k8s.io", "tokenreviews", all, ""}
	if learning {
		allowed[controllerSA] = append(allowed[controllerSA], tokenReview)
	} else {
		denied[controllerSA] = append(denied[controllerSA], tokenReview)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	for want, table := range map[bool]map[string][]access{true: allowed, false: denied} {
		for sa, list := range table {
			for _, a := range list {
				if got := authorized(ctx, t, kube, sa, a); got != want {
					t.Errorf("%s may %s %+v: %v, want %v", sa, a.verb, a, got, want)
				}
			}
		}
	}

}

// authorized asks the API server whether sa may make request a.
func authorized(ctx context.Context, t *testing.T, kube kubernetes.Interface, sa string, a access) bool {
	t.Helper()
	resource, sub, _ := strings.Cut(a.resource, "/")
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   saUser(sa),
		Groups: saGroups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: resource, Subresource: sub, Namespace: a.namespace, Name: a.name,
		},
	}}
	got, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("subject access review: %v", err)
	}
	return got.Status.Allowed
}

// runAdmissionAsItsAccount runs what `palisade admission
// --self-managed-certs` runs at start, with the chart's flags, as the
// admission ServiceAccount: the namespace informer, then the certificate
// manager, which fills the chart's Secret and patches the chart's webhook
// configuration. The RBAC is proven by the code itself, not by a list.
func runAdmissionAsItsAccount(t *testing.T, c *cluster.Cluster, admin kubernetes.Interface, objs []*unstructured.Unstructured) {
	t.Helper()
	var d appsv1.Deployment
	decodeInto(t, one(t, objs, "Deployment", "palisade-admission"), &d)
	args := flags(d.Spec.Template.Spec.Containers[0].Args)

	kube := impersonate(t, c, d.Spec.Template.Spec.ServiceAccountName)
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()

	if _, err := admission.NewNamespaceLister(ctx, kube); err != nil {
		t.Fatalf("namespace informer as %s: %v", admissionSA, err)
	}
	m, err := admission.NewCertManager(admission.CertManagerOptions{
		Client:                kube,
		Namespace:             args["--namespace"],
		SecretName:            args["--secret-name"],
		DNSNames:              admission.ServiceDNSNames(args["--service"], args["--namespace"]),
		WebhookConfigurations: []string{args["--webhook-configuration"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Twice: the first run issues and patches, the second finds all in
	// place (what every later check of Run does).
	for i := range 2 {
		if err := m.Reconcile(ctx); err != nil {
			t.Fatalf("certificate manager as %s, run %d: %v", admissionSA, i+1, err)
		}
	}
	cfgs, err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, args["--webhook-configuration"], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfgs.Webhooks[0].ClientConfig.CABundle; len(got) == 0 || !bytes.Equal(got, m.CABundle()) {
		t.Errorf("webhook caBundle not patched: %q", got)
	}
	sec, err := admin.CoreV1().Secrets(args["--namespace"]).Get(ctx, args["--secret-name"], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.Data[corev1.TLSCertKey]) == 0 || len(sec.Data[corev1.TLSPrivateKeyKey]) == 0 {
		t.Errorf("certificate Secret not filled: keys %v", keys(sec.Data))
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// impersonate returns a client that acts as the ServiceAccount sa, with
// the groups its token would carry.
func impersonate(t *testing.T, c *cluster.Cluster, sa string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: saUser(sa), Groups: saGroups}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube
}
