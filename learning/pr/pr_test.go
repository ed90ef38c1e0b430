package pr_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/learning/forge"
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

func TestChangeValidated(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := forge.NewGitHub(forge.Options{Repo: "a/b", TokenFile: tok})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing is cloned: the URL does not exist, the change fails first.
	p, err := pr.New(pr.Options{URL: "file:///nonexistent", Forge: f})
	if err != nil {
		t.Fatal(err)
	}
	files := func(func(string) ([]byte, error)) (map[string][]byte, error) { return nil, nil }
	for name, c := range map[string]pr.Change{
		"no ruleset":        {Base: "main", Files: files},
		"no base":           {Ruleset: "x", Files: files},
		"no files":          {Ruleset: "x", Base: "main"},
		"branch is base":    {Ruleset: "x", Base: "main", Branch: "main", Files: files},
		"invalid branch":    {Ruleset: "x", Base: "main", Branch: "a..b", Files: files},
		"ruleset breaks it": {Ruleset: "x y", Base: "main", Files: files},
	} {
		if _, err := p.Publish(context.Background(), c); err == nil || !strings.HasPrefix(err.Error(), "pr: ") || strings.Contains(err.Error(), "clone") {
			t.Errorf("%s: want a validation error, got %v", name, err)
		}
	}
	if _, err := pr.New(pr.Options{URL: "file:///x"}); err == nil {
		t.Error("a publisher without a forge")
	}
}
