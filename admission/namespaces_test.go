package admission_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-dev/palisade/admission"
)

func TestNewNamespaceLister(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "payments", Labels: map[string]string{"pci": "true"},
	}})
	lister, err := admission.NewNamespaceLister(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := lister.Get("payments")
	if err != nil || ns.Labels["pci"] != "true" {
		t.Fatalf("Get(payments) = %v, %v", ns, err)
	}

	cancelled, stop := context.WithCancel(context.Background())
	stop()
	if _, err := admission.NewNamespaceLister(cancelled, fake.NewClientset()); err == nil {
		t.Error("no error when the context ends before the cache syncs")
	}
}
