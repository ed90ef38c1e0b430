package k8sast

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// appender pushes the key/value pairs a value contributes to the object being built.
type appender func(st *state, v reflect.Value) error

var appenders sync.Map // reflect.Type -> appender

// appenderFor returns the cached appender for a struct type or a type inlined into a struct.
func appenderFor(t reflect.Type) appender {
	return cached(&appenders, t, newAppender, func(get func() appender) appender {
		return func(st *state, v reflect.Value) error { return get()(st, v) }
	})
}

// newAppender mirrors what the reference does when it converts a value into its parent's map.
func newAppender(t reflect.Type) appender {
	if t.Kind() != reflect.Pointer && value.TypeReflectEntryOf(t).CanConvertToUnstructured() {
		// The reference would overwrite or panic here; no Kubernetes type inlines such a field.
		return failingAppender(fmt.Errorf("cannot inline custom-converted type %v", t))
	}
	switch {
	case t.Kind() == reflect.Struct:
		return fieldsAppender(planFields(t))
	case t.Kind() == reflect.Pointer:
		return pointerAppender(t)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		return mapAppender(t)
	}
	return failingAppender(fmt.Errorf("cannot inline %v", t))
}

func failingAppender(err error) appender {
	return func(*state, reflect.Value) error { return err }
}

func pointerAppender(t reflect.Type) appender {
	elem := appenderFor(t.Elem())
	return func(st *state, v reflect.Value) error {
		if v.IsNil() {
			return nil
		}
		return elem(st, v.Elem())
	}
}

func mapAppender(t reflect.Type) appender {
	elem := encoderFor(t.Elem())
	return func(st *state, v reflect.Value) error {
		if v.IsNil() {
			// The reference panics trying to store a nil map over its parent's map.
			return fmt.Errorf("cannot inline nil %v", t)
		}
		return appendMapItems(st, v, elem, false)
	}
}

// structEncoder builds an object from a struct's fields.
func structEncoder(t reflect.Type) encoder {
	fields := planFields(t)
	appendFields, dedupe := fieldsAppender(fields), hasInline(fields)
	return func(st *state, v reflect.Value) (*ast.Term, error) {
		start := len(st.items)
		if err := appendFields(st, v); err != nil {
			return nil, err
		}
		return st.object(start, dedupe), nil
	}
}

// field is the cached plan for one struct field: everything the tag says, parsed once.
type field struct {
	index     int
	key       *ast.Term
	omitEmpty bool
	omitZero  func(reflect.Value) bool
	encode    encoder  // named fields
	inline    appender // inlined fields
}

func fieldsAppender(fields []field) appender {
	return func(st *state, v reflect.Value) error {
		for i := range fields {
			if err := fields[i].appendTo(st, v.Field(fields[i].index)); err != nil {
				return err
			}
		}
		return nil
	}
}

func (f *field) appendTo(st *state, fv reflect.Value) error {
	if (f.omitEmpty && isEmpty(fv)) || (f.omitZero != nil && f.omitZero(fv)) {
		return nil
	}
	if f.inline != nil {
		return f.inline(st, fv)
	}
	term, err := f.encode(st, fv)
	if err != nil {
		return err
	}
	st.items = append(st.items, [2]*ast.Term{f.key, term})
	return nil
}

func hasInline(fields []field) bool {
	for i := range fields {
		if fields[i].inline != nil {
			return true
		}
	}
	return false
}

// planFields parses the json tags of t like runtime's fieldInfoFromField. Unlike encoding/json
// it keeps unexported fields, inlines only anonymous fields without a tag name, and skips a field
// only when its name is "-".
func planFields(t reflect.Type) []field {
	fields := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		name, options := fieldName(sf)
		if name == "-" {
			continue
		}
		f := field{index: i}
		for _, opt := range options {
			switch opt {
			case "omitempty":
				f.omitEmpty = true
			case "omitzero":
				f.omitZero = value.OmitZeroFunc(sf.Type)
			}
		}
		switch {
		case name == "":
			f.inline = appenderFor(sf.Type)
		case scalarEncoder(sf.Type.Kind()) != nil:
			f.key, f.encode = ast.InternedTerm(name), scalarEncoder(sf.Type.Kind())
		default:
			f.key, f.encode = ast.InternedTerm(name), encoderFor(sf.Type)
		}
		fields = append(fields, f)
	}
	return fields
}

// fieldName returns the JSON name of sf ("" means inlined) and its tag options.
func fieldName(sf reflect.StructField) (string, []string) {
	tag := sf.Tag.Get("json")
	if tag == "" {
		if sf.Anonymous {
			return "", nil
		}
		return sf.Name, nil
	}
	items := strings.Split(tag, ",")
	name, options := items[0], items[1:]
	switch {
	case isInlinedFromTag(sf, name, options):
		return "", options
	case name == "" && !sf.Anonymous:
		return sf.Name, options
	}
	return name, options
}

// isEmpty is the reference converter's notion of empty for omitempty; structs are never empty.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Map, reflect.Slice:
		return v.IsNil() || v.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return false
}
