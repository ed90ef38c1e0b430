package admission

import (
	"reflect"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// The field names of the objects a review carries are interned as OPA
// string terms (ast.InternStringTerm, which is for start-up only):
// internal/jsonast takes a review's object keys from ast.InternedTerm,
// which then shares one term per name instead of allocating "spec",
// "containers" or "securityContext" again for every review. It is an
// allocation saving only: a name not listed is decoded all the same.
func init() {
	seen := map[reflect.Type]bool{}
	var names []string
	for _, t := range []reflect.Type{
		reflect.TypeFor[admissionv1.AdmissionReview](),
		reflect.TypeFor[corev1.Pod](), reflect.TypeFor[corev1.PodTemplate](),
		reflect.TypeFor[corev1.PodExecOptions](), reflect.TypeFor[corev1.PodAttachOptions](),
		reflect.TypeFor[corev1.PodPortForwardOptions](), reflect.TypeFor[corev1.ReplicationController](),
		reflect.TypeFor[appsv1.Deployment](), reflect.TypeFor[appsv1.ReplicaSet](),
		reflect.TypeFor[appsv1.StatefulSet](), reflect.TypeFor[appsv1.DaemonSet](),
		reflect.TypeFor[batchv1.Job](), reflect.TypeFor[batchv1.CronJob](),
	} {
		names = jsonFieldNames(t, seen, names)
	}
	ast.InternStringTerm(names...)
}

// jsonFieldNames appends the JSON field names of a type and of the types
// it holds, each type once.
func jsonFieldNames(t reflect.Type, seen map[reflect.Type]bool, names []string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return names
	}
	seen[t] = true
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
		names = jsonFieldNames(f.Type, seen, names)
	}
	return names
}
