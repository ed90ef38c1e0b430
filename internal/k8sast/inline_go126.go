//go:build !go1.27

package k8sast

import "reflect"

// isInlinedFromTag mirrors apimachinery's fieldinfo_126.go: before Go 1.27 no tag inlines a field.
func isInlinedFromTag(reflect.StructField, string, []string) bool {
	return false
}
