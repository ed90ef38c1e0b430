package policy

import "testing"

// The names CompileLearned gives are valid selector names (the name
// grammar allows '.'), and they are reserved.
func TestLearnedNamesAreValidSelectorNames(t *testing.T) {
	no := false
	l := &LearnedRules{Spec: LearnedRulesSpec{Workloads: []LearnedWorkload{{
		Namespace: "shop", Workload: "Deployment/web", Container: "app",
		Process: []LearnedProcess{{Executable: "/a"}, {Executable: "/b", Interactive: &no}},
		File:    []LearnedFile{{Operation: []string{"createFile"}, Path: "/tmp/**"}},
	}}}}
	rs := &RuntimeRuleset{Spec: RuntimeRulesetSpec{
		Process: &D4CSection{Responses: []Response{{Match: []string{"x"}}}},
		File:    &D4CSection{Responses: []Response{{Match: []string{"y"}}}},
	}}
	CompileLearned(rs, l)
	var names []string
	for _, s := range append(rs.Spec.Process.Selectors, rs.Spec.File.Selectors...) {
		names = append(names, s.Name)
	}
	if len(names) != 3 {
		t.Fatalf("compiled %v, want two process selectors and one file selector", names)
	}
	for _, n := range names {
		v := &validator{}
		v.name("name", n)
		if len(v.errs) != 0 {
			t.Errorf("generated name %q is invalid: %v", n, v.errs)
		}
	}
}
