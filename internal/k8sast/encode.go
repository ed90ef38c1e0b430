package k8sast

import (
	"encoding/base64"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// encoder converts one value of a fixed type.
type encoder func(st *state, v reflect.Value) (*ast.Term, error)

var encoders sync.Map // reflect.Type -> encoder

// encoderFor returns the cached encoder for t, building it on first use.
func encoderFor(t reflect.Type) encoder {
	return cached(&encoders, t, newEncoder, func(get func() encoder) encoder {
		return func(st *state, v reflect.Value) (*ast.Term, error) { return get()(st, v) }
	})
}

// cached returns the F stored for t in cache, building it on first use. Types may refer to
// themselves, so while t is being built its entry is a forwarder (made by forward) that waits for
// the finished F; encoding/json breaks cycles the same way.
func cached[F any](cache *sync.Map, t reflect.Type, build func(reflect.Type) F, forward func(get func() F) F) F {
	if f, ok := cache.Load(t); ok {
		return f.(F)
	}
	var (
		wg sync.WaitGroup
		f  F
	)
	wg.Add(1)
	if prev, loaded := cache.LoadOrStore(t, forward(func() F { wg.Wait(); return f })); loaded {
		return prev.(F)
	}
	f = build(t)
	wg.Done()
	cache.Store(t, f)
	return f
}

// newEncoder mirrors runtime's toUnstructured: custom conversion first, then by kind.
func newEncoder(t reflect.Type) encoder {
	if t == intOrStringType {
		return intOrStringEncoder()
	}
	// A pointer converts like what it points to (its method set adds nothing), and a nil pointer
	// is null either way, so custom conversion is decided on the element type.
	if t.Kind() != reflect.Pointer && value.TypeReflectEntryOf(t).CanConvertToUnstructured() {
		return customEncoder(t)
	}
	switch t.Kind() {
	case reflect.Map:
		return mapEncoder(t)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return encodeBytes
		}
		return sliceEncoder(t)
	case reflect.Pointer:
		return pointerEncoder(t)
	case reflect.Struct:
		return structEncoder(t)
	case reflect.Interface:
		return encodeInterface
	}
	if enc := scalarEncoder(t.Kind()); enc != nil {
		return enc
	}
	return failing(fmt.Errorf("unrecognized type: %v", t.Kind()))
}

// scalarEncoder returns the encoder for a scalar kind, or nil. Struct fields of these kinds are
// encoded with it directly, bypassing custom conversion, as the reference does.
func scalarEncoder(k reflect.Kind) encoder {
	switch k {
	case reflect.String:
		return encodeString
	case reflect.Bool:
		return encodeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return encodeInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return encodeUint
	case reflect.Float32, reflect.Float64:
		return encodeFloat
	}
	return nil
}

func failing(err error) encoder {
	return func(*state, reflect.Value) (*ast.Term, error) { return nil, err }
}

func encodeString(st *state, v reflect.Value) (*ast.Term, error) {
	return st.str(v.String()), nil
}

func encodeBool(_ *state, v reflect.Value) (*ast.Term, error) {
	return ast.InternedTerm(v.Bool()), nil
}

func encodeInt(st *state, v reflect.Value) (*ast.Term, error) {
	return st.int(v.Int()), nil
}

func encodeUint(st *state, v reflect.Value) (*ast.Term, error) {
	u := v.Uint()
	if u > math.MaxInt64 {
		return nil, fmt.Errorf("unsigned value %d does not fit into int64 (overflow)", u)
	}
	return st.int(int64(u)), nil
}

// encodeFloat formats like ast.InterfaceToValue does for the float64 the reference stores.
func encodeFloat(st *state, v reflect.Value) (*ast.Term, error) {
	return st.term(ast.Number(strconv.FormatFloat(v.Float(), 'g', -1, 64))), nil
}

// encodeBytes produces the base64 string that JSON uses for byte slices.
func encodeBytes(st *state, v reflect.Value) (*ast.Term, error) {
	if v.IsNil() {
		return ast.InternedNullTerm, nil
	}
	return st.str(base64.StdEncoding.EncodeToString(v.Bytes())), nil
}

func encodeInterface(st *state, v reflect.Value) (*ast.Term, error) {
	if v.IsNil() {
		return ast.InternedNullTerm, nil
	}
	e := v.Elem()
	return encoderFor(e.Type())(st, e)
}

func pointerEncoder(t reflect.Type) encoder {
	elem := encoderFor(t.Elem())
	return func(st *state, v reflect.Value) (*ast.Term, error) {
		if v.IsNil() {
			return ast.InternedNullTerm, nil
		}
		return elem(st, v.Elem())
	}
}

func sliceEncoder(t reflect.Type) encoder {
	elem := encoderFor(t.Elem())
	return func(st *state, v reflect.Value) (*ast.Term, error) {
		if v.IsNil() {
			return ast.InternedNullTerm, nil
		}
		// ast.NewArray keeps the slice, so each array needs its own.
		terms := make([]*ast.Term, v.Len())
		for i := range terms {
			term, err := elem(st, v.Index(i))
			if err != nil {
				return nil, err
			}
			terms[i] = term
		}
		return st.term(ast.NewArray(terms...)), nil
	}
}

func mapEncoder(t reflect.Type) encoder {
	if t.Key().Kind() != reflect.String {
		return failing(fmt.Errorf("cannot convert map with %v keys", t.Key()))
	}
	elem, reuse := encoderFor(t.Elem()), addressInsensitive(t.Elem())
	return func(st *state, v reflect.Value) (*ast.Term, error) {
		if v.IsNil() {
			return ast.InternedNullTerm, nil
		}
		start := len(st.items)
		if err := appendMapItems(st, v, elem, reuse); err != nil {
			return nil, err
		}
		return st.object(start, false), nil
	}
}

// appendMapItems pushes the entries of a map with string-kind keys. The reference reads map
// values with MapIndex, so they are not addressable, and a copy per entry (iter.Value) keeps
// that. When the element type converts the same either way (reuse), one addressable value is
// reused instead, which saves an allocation per entry; keys are plain strings and always reuse.
func appendMapItems(st *state, v reflect.Value, elem encoder, reuse bool) error {
	key := reflect.New(v.Type().Key()).Elem()
	var val reflect.Value
	if reuse {
		val = reflect.New(v.Type().Elem()).Elem()
	}
	iter := v.MapRange()
	for iter.Next() {
		if reuse {
			val.SetIterValue(iter)
		} else {
			val = iter.Value()
		}
		term, err := elem(st, val)
		if err != nil {
			return err
		}
		key.SetIterKey(iter)
		st.items = append(st.items, [2]*ast.Term{st.str(key.String()), term})
	}
	return nil
}
