// Package k8sast converts typed Kubernetes API objects straight into OPA AST values.
//
// Rego policies see a Kubernetes object as its JSON form. The obvious way to build that input is
// runtime.DefaultUnstructuredConverter.ToUnstructured (reflection into a map[string]any) followed by
// ast.InterfaceToValue (a second walk over that map). The continuous scanner does this for every
// pod of the informer cache on every scan, and the double walk with its throw-away maps dominated
// the per-pod cost. FromObject walks the typed struct once, using per-type plans that are built
// on first use and cached, and produces the AST directly.
//
// Contract: for every object the reference path accepts,
//
//	m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
//	ref, _ := ast.InterfaceToValue(m)
//
// FromObject(obj) returns a value v with ast.Compare(v, ref) == 0, and it returns an error
// whenever the reference returns one. To stay equal it mirrors the converter's rules, including
// the ones that differ from encoding/json: json tags with omitempty/omitzero, anonymous fields
// without a tag name are inlined, custom conversion through value.UnstructuredConverter and
// json.Marshaler (resource.Quantity, metav1.Time, intstr.IntOrString, ...), which struct fields
// of scalar kinds skip, and unexported fields are not skipped. Where the reference panics instead
// (inlining a nil map, a scalar or a custom-converted value; a top-level value that is no object),
// FromObject returns an error, as it does for a top-level map with integer keys, which the
// reference turns into one-rune strings.
package k8sast

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"k8s.io/apimachinery/pkg/runtime"
)

// FromObject converts a typed Kubernetes API object (a pointer to a struct such as *corev1.Pod)
// into the OPA AST value that Rego sees for its JSON form.
func FromObject(obj any) (ast.Value, error) {
	// The reference converter hands out the content of unstructured objects as is.
	if u, ok := obj.(runtime.Unstructured); ok {
		return ast.InterfaceToValue(u.UnstructuredContent())
	}
	rv := reflect.ValueOf(obj)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, fmt.Errorf("k8sast: FromObject requires a non-nil pointer to an object, got %T", obj)
	}

	st := statePool.Get().(*state)
	defer st.release()

	// Elem of a pointer is addressable, as in the reference; that matters for converters with
	// pointer receivers.
	term, err := encoderFor(rv.Type().Elem())(st, rv.Elem())
	if err != nil {
		return nil, err
	}
	switch v := term.Value.(type) {
	case ast.Object:
		return v, nil
	case ast.Null:
		// The reference starts from an empty map and leaves it empty when there is nothing to store.
		return ast.NewObject(), nil
	default:
		return nil, fmt.Errorf("k8sast: %T does not convert to an object", obj)
	}
}

// state is the scratch space of one conversion, reused through a pool. Objects collect their
// key/value pairs on a shared stack, so building an object needs no slice of its own:
// ast.NewObject copies the pairs. Terms are carved out of slabs, which turns one allocation per
// term into one per slab.
type state struct {
	items [][2]*ast.Term
	slab  []ast.Term
}

// slabSize is the number of terms allocated at once: about 3 KiB, a fraction of a typical pod.
const slabSize = 128

var statePool = sync.Pool{New: func() any { return &state{items: make([][2]*ast.Term, 0, 64)} }}

// object turns the pairs pushed since start into an object and pops them.
func (st *state) object(start int, dedupe bool) *ast.Term {
	items := st.items[start:]
	if dedupe {
		items = dropShadowed(items)
	}
	obj := ast.NewObject(items...)
	st.pop(start)
	return st.term(obj)
}

// term returns a new term holding v. The rest of a slab may go to the next conversion: the terms
// are never written again once handed out, so results can share a slab.
func (st *state) term(v ast.Value) *ast.Term {
	if len(st.slab) == 0 {
		st.slab = make([]ast.Term, slabSize)
	}
	t := &st.slab[0]
	st.slab = st.slab[1:]
	t.Value = v
	return t
}

// str returns a term for s. Only the empty string is worth sharing: OPA interns few other
// strings, and looking them up costs more than the term.
func (st *state) str(s string) *ast.Term {
	if s == "" {
		return ast.InternedTerm(s)
	}
	return st.term(ast.String(s))
}

// int returns a term for i, shared if OPA interns i.
func (st *state) int(i int64) *ast.Term {
	if i >= math.MinInt && i <= math.MaxInt && ast.HasInternedIntNumberTerm(int(i)) {
		return ast.InternedTerm(i)
	}
	return st.term(ast.Number(strconv.FormatInt(i, 10)))
}

// pop truncates the stack to n, clearing the slots so the pool does not keep terms alive.
func (st *state) pop(n int) {
	clear(st.items[n:])
	st.items = st.items[:n]
}

func (st *state) release() {
	st.pop(0)
	statePool.Put(st)
}

// dropShadowed removes pairs whose key occurs again later. Inlined fields write into their
// parent's map in field order, so in the reference a later key overwrites an earlier one, while
// ast.NewObject would keep both.
func dropShadowed(items [][2]*ast.Term) [][2]*ast.Term {
	out := items[:0]
	for i, item := range items {
		if !containsKey(items[i+1:], item[0]) {
			out = append(out, item)
		}
	}
	return out
}

func containsKey(items [][2]*ast.Term, key *ast.Term) bool {
	for _, item := range items {
		if item[0].Value.Compare(key.Value) == 0 {
			return true
		}
	}
	return false
}
