package k8sast

import (
	"reflect"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

var (
	converterType          = reflect.TypeFor[value.UnstructuredConverter]()
	converterWithErrorType = reflect.TypeFor[value.UnstructuredConverterWithError]()
	intOrStringType        = reflect.TypeFor[intstr.IntOrString]()
)

// customEncoder handles types with their own unstructured form (resource.Quantity, metav1.Time,
// intstr.IntOrString, ...). The reference delegates to value.TypeReflectEntryOf(t).ToUnstructured
// and so does this encoder, except for the fast path below; its result is converted with the
// same rules as ast.InterfaceToValue.
func customEncoder(t reflect.Type) encoder {
	entry := value.TypeReflectEntryOf(t)
	pt := reflect.PointerTo(t)
	withError, plain := pt.Implements(converterWithErrorType), pt.Implements(converterType)
	return func(st *state, v reflect.Value) (*ast.Term, error) {
		// For an addressable value the entry would call the first of these interfaces that *T
		// implements (T's methods are *T's methods too), but only after boxing a copy of the value.
		// Calling through the pointer gives the same result without that allocation.
		if v.CanAddr() {
			switch {
			case withError:
				return st.fromUnstructured(v.Addr().Interface().(value.UnstructuredConverterWithError).ToUnstructuredWithError())
			case plain:
				return st.fromUnstructured(v.Addr().Interface().(value.UnstructuredConverter).ToUnstructured(), nil)
			}
		}
		return st.fromUnstructured(entry.ToUnstructured(v))
	}
}

// fromUnstructured converts the result of a custom conversion.
func (st *state) fromUnstructured(u any, err error) (*ast.Term, error) {
	if err != nil {
		return nil, err
	}
	switch u := u.(type) {
	case nil:
		return ast.InternedNullTerm, nil
	case string:
		return st.str(u), nil
	}
	v, err := ast.InterfaceToValue(u)
	if err != nil {
		return nil, err
	}
	return st.term(v), nil
}

// intOrStringEncoder skips the JSON round trip through which the reference converts
// intstr.IntOrString, which has no direct unstructured form: an int comes back as that int and a
// valid UTF-8 string unchanged. Everything else (JSON replaces invalid UTF-8, an unknown Type
// fails) takes the reference's route.
func intOrStringEncoder() encoder {
	generic := customEncoder(intOrStringType)
	return func(st *state, v reflect.Value) (*ast.Term, error) {
		if v.CanAddr() {
			switch p := v.Addr().Interface().(*intstr.IntOrString); {
			case p.Type == intstr.Int:
				return st.int(int64(p.IntVal)), nil
			case p.Type == intstr.String && utf8.ValidString(p.StrVal):
				return st.str(p.StrVal), nil
			}
		}
		return generic(st, v)
	}
}

// addressInsensitive reports whether values of t convert the same whether addressable or not.
// Only custom conversion can tell the difference, because pointer receivers are used only on
// addressable values. Without custom conversion only structs pass their addressability on (to
// their fields); elements of slices and pointers are addressable anyway, and map and interface
// contents never are. With it, t is insensitive if value receivers provide the conversion the
// reference picks first.
func addressInsensitive(t reflect.Type) bool {
	if !value.TypeReflectEntryOf(t).CanConvertToUnstructured() {
		return t.Kind() != reflect.Struct
	}
	if t.Implements(converterWithErrorType) {
		return true
	}
	return t.Implements(converterType) && !reflect.PointerTo(t).Implements(converterWithErrorType)
}
