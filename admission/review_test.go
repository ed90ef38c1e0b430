package admission

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func TestWarnings(t *testing.T) {
	long := strings.Repeat("é", 300)
	many := make([]string, 40)
	for i := range many {
		many[i] = strings.Repeat("w", 200)
	}
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "none", in: nil, want: nil},
		{name: "short warnings pass unchanged", in: []string{"a (log)", "b (log)"}, want: []string{"a (log)", "b (log)"}},
		{name: "control characters become spaces", in: []string{"a\nb\tc\x1b[31m"}, want: []string{"a b c [31m"}},
		{name: "invalid UTF-8 becomes a space", in: []string{"a\xffb"}, want: []string{"a b"}},
		{name: "DEL and C1 control characters become spaces", in: []string{"a\x7fb\u0085c"}, want: []string{"a b c"}},
		{name: "printable non-ASCII passes unchanged", in: []string{"~ é …"}, want: []string{"~ é …"}},
		{name: "a long warning is cut on a rune boundary with an ellipsis", in: []string{long}, want: []string{strings.Repeat("é", 255) + "…"}},
		{name: "empty warnings are dropped", in: []string{"", "x"}, want: []string{"x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := warnings(tc.in)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("warnings(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}

	t.Run("many warnings stay under the API server's total and say how many were left out", func(t *testing.T) {
		got := warnings(many)
		total := 0
		for _, w := range got {
			total += utf8.RuneCountInString(w)
		}
		if total > maxWarningTotalRunes {
			t.Errorf("%d runes of warnings, limit %d", total, maxWarningTotalRunes)
		}
		if last := got[len(got)-1]; last != "palisade: 20 more warning(s) not shown" {
			t.Errorf("last warning = %q", last)
		}
	})
}

// failingLister fails every lookup.
type failingLister struct{}

func (failingLister) Get(string) (*corev1.Namespace, error) { return nil, errors.New("cache broken") }

func TestNamespaceLabels(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := idx.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments", Labels: map[string]string{"team": "pay"}}}); err != nil {
		t.Fatal(err)
	}
	lister := corev1listers.NewNamespaceLister(idx)
	if _, err := lister.Get("missing"); !apierrors.IsNotFound(err) {
		t.Fatalf("client-go lister error for a missing namespace = %v, want NotFound", err)
	}
	tests := []struct {
		name      string
		lister    NamespaceLister
		namespace string
		want      map[string]string
	}{
		{name: "labels of a known namespace", lister: lister, namespace: "payments", want: map[string]string{"team": "pay"}},
		{name: "an unknown namespace has none", lister: lister, namespace: "missing"},
		{name: "a cluster-scoped request has none", lister: lister, namespace: ""},
		{name: "no lister, no labels", namespace: "payments"},
		{name: "a failing lister gives none", lister: failingLister{}, namespace: "payments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{opts: Options{Namespaces: tc.lister}, log: slog.New(slog.DiscardHandler)}
			got := h.namespaceLabels(tc.namespace)
			if len(got) != len(tc.want) || got["team"] != tc.want["team"] {
				t.Errorf("labels = %v, want %v", got, tc.want)
			}
		})
	}
}
