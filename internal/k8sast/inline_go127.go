//go:build go1.27

package k8sast

import "reflect"

// isInlinedFromTag mirrors apimachinery's fieldinfo_127.go: from Go 1.27 on, a struct (or pointer
// to struct) field tagged `json:",embed"` is inlined like an anonymous field.
func isInlinedFromTag(field reflect.StructField, tagName string, tagDirectives []string) bool {
	fieldType := field.Type
	if fieldType.Kind() == reflect.Pointer && fieldType.Name() == "" {
		fieldType = fieldType.Elem()
	}
	return fieldType.Kind() == reflect.Struct && tagName == "" && len(tagDirectives) == 1 && tagDirectives[0] == "embed"
}
