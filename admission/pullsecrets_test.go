package admission

import (
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestPullSecrets(t *testing.T) {
	secrets := []any{map[string]any{"name": "regcred"}, map[string]any{"name": ""}, map[string]any{"name": "mirror"}}
	spec := map[string]any{"imagePullSecrets": secrets}
	for _, tc := range []struct {
		name string
		obj  map[string]any
		want []string
	}{
		{"pod", map[string]any{"kind": "Pod", "spec": spec}, []string{"regcred", "mirror"}},
		{"deployment", map[string]any{"kind": "Deployment", "spec": map[string]any{"template": map[string]any{"spec": spec}}}, []string{"regcred", "mirror"}},
		{"cronjob", map[string]any{"kind": "CronJob", "spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": spec}}}}}, []string{"regcred", "mirror"}},
		{"pod template", map[string]any{"kind": "PodTemplate", "template": map[string]any{"spec": spec}}, []string{"regcred", "mirror"}},
		{"exec options", map[string]any{"kind": "PodExecOptions", "spec": spec}, nil},
		{"pod without secrets", map[string]any{"kind": "Pod", "spec": map[string]any{}}, nil},
		{"malformed", map[string]any{"kind": "Deployment", "spec": "x"}, nil},
	} {
		obj, err := ast.InterfaceToValue(tc.obj)
		if err != nil {
			t.Fatal(err)
		}
		if got := PullSecrets(obj); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
