package irvm

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestEqualAgreesWithCompare: equal's shortcuts for strings and booleans
// decide every pair as ast.Compare does, across the types a plan's
// EqualStmt and NotEqualStmt meet.
func TestEqualAgreesWithCompare(t *testing.T) {
	values := []string{
		`"a"`, `"b"`, `""`, `"true"`, `"1"`,
		`true`, `false`, `null`,
		`1`, `1.0`, `2`,
		`[]`, `["a"]`, `[true]`,
		`{}`, `{"a": "b"}`, `{"a": true}`,
		`set()`, `{"a"}`,
	}
	terms := make([]*ast.Term, len(values))
	for i, v := range values {
		terms[i] = ast.MustParseTerm(v)
	}
	for _, a := range terms {
		if !equal(a, a) {
			t.Errorf("equal(%v, itself) = false", a)
		}
		for _, b := range terms {
			// A second term of the same value, so that the shortcut
			// for one term is not what decides.
			b2 := ast.MustParseTerm(b.String())
			want := ast.Compare(a.Value, b.Value) == 0
			if got := equal(a, b2); got != want {
				t.Errorf("equal(%v, %v) = %v, ast.Compare says %v", a, b2, got, want)
			}
		}
	}
}
