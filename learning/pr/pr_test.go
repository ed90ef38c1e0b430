package pr_test

import (
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/learning/pr"
)

func TestContentKey(t *testing.T) {
	a := map[string][]byte{"learned/x.yaml": []byte("a: 1\n"), "rulesets/x.yaml": []byte("mode: audit\n")}
	same := map[string][]byte{"rulesets/x.yaml": []byte("mode: audit\n"), "learned/x.yaml": []byte("a: 1\n")}
	if pr.ContentKey(a) != pr.ContentKey(same) {
		t.Error("the key depends on map order")
	}
	for name, other := range map[string]map[string][]byte{
		"other content":          {"learned/x.yaml": []byte("a: 2\n"), "rulesets/x.yaml": []byte("mode: audit\n")},
		"other path":             {"learned/y.yaml": []byte("a: 1\n"), "rulesets/x.yaml": []byte("mode: audit\n")},
		"content moved to path":  {"learned/x.yaml": []byte("a: 1\nmode: audit\n"), "rulesets/x.yaml": []byte("")},
		"deleted, not empty":     {"learned/x.yaml": []byte("a: 1\n"), "rulesets/x.yaml": nil},
		"one file fewer":         {"learned/x.yaml": []byte("a: 1\n")},
		"empty content vs empty": {"learned/x.yaml": []byte("a: 1\n"), "rulesets/x.yaml": []byte{}},
	} {
		if pr.ContentKey(other) == pr.ContentKey(a) {
			t.Errorf("%s: same key", name)
		}
	}
	if pr.ContentKey(map[string][]byte{"f": nil}) == pr.ContentKey(map[string][]byte{"f": {}}) {
		t.Error("a deletion and an empty file have the same key")
	}
}

func TestMarker(t *testing.T) {
	key := pr.ContentKey(map[string][]byte{"f": []byte("x")})
	for _, ruleset := range []string{"shop_runtime", `odd "name" -->`} {
		body := "A table\n\n" + pr.Marker("old", strings.Repeat("0", 64)) + "\nedited\n" + pr.Marker(ruleset, key) + "\n"
		rs, k, ok := pr.ParseMarker(body)
		if !ok || rs != ruleset || k != key {
			t.Errorf("ParseMarker(%q) = %q, %q, %v; want the last marker", body, rs, k, ok)
		}
	}
	if _, _, ok := pr.ParseMarker("no marker <!-- palisade-learn ruleset=x content=abc -->"); ok {
		t.Error("a malformed marker parsed")
	}
	if got := pr.BranchName("shop_runtime"); got != "palisade/learn/shop_runtime" {
		t.Errorf("BranchName = %q", got)
	}
}
