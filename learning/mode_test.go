package learning

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSetMode(t *testing.T) {
	for _, tc := range []struct {
		name, in, ruleset, mode, want string
	}{{
		name:    "plain value with comments around it",
		ruleset: "shop_runtime",
		mode:    "audit",
		in: `# Shop's runtime rules.
apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata:
  name: shop_runtime   # keep
spec:
  # learning until the proposal is merged
  mode: learning   # trailing comment
  process:
    selectors:
      - {name: web, operation: [exec]}
`,
		want: `# Shop's runtime rules.
apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata:
  name: shop_runtime   # keep
spec:
  # learning until the proposal is merged
  mode: audit   # trailing comment
  process:
    selectors:
      - {name: web, operation: [exec]}
`,
	}, {
		name:    "second of several documents, the others untouched",
		ruleset: "b",
		mode:    "audit",
		in: `kind: RuntimeRuleset
metadata: {name: a}
spec:
  mode: learning
---
# b
kind: RuntimeRuleset
metadata:
  name: b
spec:
    mode: learning
    file: {}
---
kind: Policy
metadata: {name: b}
spec:
  mode: learning
`,
		want: `kind: RuntimeRuleset
metadata: {name: a}
spec:
  mode: learning
---
# b
kind: RuntimeRuleset
metadata:
  name: b
spec:
    mode: audit
    file: {}
---
kind: Policy
metadata: {name: b}
spec:
  mode: learning
`,
	}, {
		name:    "double-quoted value keeps its quotes",
		ruleset: "r",
		mode:    "audit",
		in:      "kind: RuntimeRuleset\nmetadata:\n  name: \"r\"\nspec:\n  mode: \"learning\"\n",
		want:    "kind: RuntimeRuleset\nmetadata:\n  name: \"r\"\nspec:\n  mode: \"audit\"\n",
	}, {
		name:    "single-quoted value keeps its quotes",
		ruleset: "r",
		mode:    "enforce",
		in:      "kind: RuntimeRuleset\nmetadata:\n  name: r\nspec:\n  mode: 'audit' # x\n",
		want:    "kind: RuntimeRuleset\nmetadata:\n  name: r\nspec:\n  mode: 'enforce' # x\n",
	}, {
		name:    "flow spec",
		ruleset: "r",
		mode:    "audit",
		in:      "kind: RuntimeRuleset\nmetadata: {name: r}\nspec: {file: {}, mode: learning, process: {}}\n",
		want:    "kind: RuntimeRuleset\nmetadata: {name: r}\nspec: {file: {}, mode: audit, process: {}}\n",
	}, {
		name:    "absent mode inserted first with spec's indentation",
		ruleset: "r",
		mode:    "audit",
		in:      "kind: RuntimeRuleset\nmetadata:\n  name: r\nspec:\n    # files\n    file:\n      selectors: []\n",
		want:    "kind: RuntimeRuleset\nmetadata:\n  name: r\nspec:\n    # files\n    mode: audit\n    file:\n      selectors: []\n",
	}, {
		name:    "absent mode in a flow spec",
		ruleset: "r",
		mode:    "audit",
		in:      "kind: RuntimeRuleset\nmetadata: {name: r}\nspec: {file: {}}\n",
		want:    "kind: RuntimeRuleset\nmetadata: {name: r}\nspec: {mode: audit, file: {}}\n",
	}, {
		name:    "non-ASCII before the value on its line",
		ruleset: "r",
		mode:    "audit",
		in:      "kind: RuntimeRuleset\nmetadata: {name: r, description: \"café ünïcode\"}\nspec: {description: é, mode: learning}\n",
		want:    "kind: RuntimeRuleset\nmetadata: {name: r, description: \"café ünïcode\"}\nspec: {description: é, mode: audit}\n",
	}, {
		name:    "CRLF line endings",
		ruleset: "r",
		mode:    "audit",
		in:      "kind: RuntimeRuleset\r\nmetadata:\r\n  name: r\r\nspec:\r\n  mode: learning\r\n  file: {}\r\n",
		want:    "kind: RuntimeRuleset\r\nmetadata:\r\n  name: r\r\nspec:\r\n  mode: audit\r\n  file: {}\r\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetMode([]byte(tc.in), tc.ruleset, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestSetModeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, ruleset, mode, want string
		notFound                      bool
	}{
		{name: "unknown ruleset is named", in: "kind: RuntimeRuleset\nmetadata: {name: a}\nspec: {mode: learning}\n", ruleset: "shop", mode: "audit", want: `"shop"`, notFound: true},
		{name: "a Policy of that name is not a ruleset", in: "kind: Policy\nmetadata: {name: shop}\nspec: {mode: learning}\n", ruleset: "shop", mode: "audit", want: "shop", notFound: true},
		{name: "duplicate ruleset", in: "kind: RuntimeRuleset\nmetadata: {name: a}\nspec: {mode: learning}\n---\nkind: RuntimeRuleset\nmetadata: {name: a}\nspec: {mode: learning}\n", ruleset: "a", mode: "audit", want: "2 RuntimeRuleset documents"},
		{name: "invalid YAML", in: "kind: [\n", ruleset: "a", mode: "audit", want: "parse"},
		{name: "mode that is not a word", in: "kind: RuntimeRuleset\nmetadata: {name: a}\nspec: {mode: learning}\n", ruleset: "a", mode: "audit\nx: y", want: "invalid mode"},
		{name: "block scalar", in: "kind: RuntimeRuleset\nmetadata: {name: a}\nspec:\n  mode: |\n    learning\n", ruleset: "a", mode: "audit", want: "block scalar"},
		{name: "escaped quoted value", in: "kind: RuntimeRuleset\nmetadata: {name: a}\nspec:\n  mode: \"learn\\x69ng\"\n", ruleset: "a", mode: "audit", want: "escaped"},
		{name: "spec missing", in: "kind: RuntimeRuleset\nmetadata: {name: a}\n", ruleset: "a", mode: "audit", want: "spec is not a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SetMode([]byte(tc.in), tc.ruleset, tc.mode)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if errors.Is(err, ErrRulesetNotFound) != tc.notFound {
				t.Errorf("errors.Is(err, ErrRulesetNotFound) = %v, want %v", !tc.notFound, tc.notFound)
			}
		})
	}
}

// TestSetModeExampleRuleset edits the example repository's learning
// ruleset: only the mode's bytes change.
func TestSetModeExampleRuleset(t *testing.T) {
	in, err := os.ReadFile("../policies-example/rulesets/payments_runtime.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := SetMode(in, "payments_runtime", "audit")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(in), "  mode: learning\n", "  mode: audit\n", 1)
	if string(got) != want || want == string(in) {
		t.Errorf("got:\n%s", got)
	}
}

// FuzzSetMode: whenever SetMode edits a file, the result decodes to the
// same documents as the input with only the ruleset's spec.mode set.
func FuzzSetMode(f *testing.F) {
	for _, seed := range []string{
		"kind: RuntimeRuleset\nmetadata: {name: r}\nspec:\n  mode: learning\n",
		"kind: RuntimeRuleset\nmetadata: {name: r}\nspec: {file: {}, mode: 'learning'}\n",
		"kind: RuntimeRuleset\nmetadata:\n  name: r\nspec:\n    # c\n    file: {}\n---\nkind: Policy\nmetadata: {name: r}\n",
		"kind: RuntimeRuleset\r\nmetadata: {name: r}\r\nspec:\r\n  mode: \"learning\" # x\r\n",
		"kind: RuntimeRuleset\nmetadata: {name: r, d: é}\nspec: {d: é, mode: learning}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := SetMode([]byte(in), "r", "audit")
		if err != nil {
			return
		}
		before, err := modeDecodeAll(in)
		if err != nil {
			return // valid YAML that Go values cannot hold (a mapping as a key)
		}
		after, err := modeDecodeAll(string(out))
		if err != nil {
			t.Fatalf("output does not decode: %v\n%s", err, out)
		}
		if len(before) != len(after) {
			t.Fatalf("%d documents became %d", len(before), len(after))
		}
		edited := 0
		for i := range before {
			b, _ := before[i].(map[string]any)
			if b != nil && b["kind"] == "RuntimeRuleset" {
				if md, _ := b["metadata"].(map[string]any); md != nil && md["name"] == "r" {
					switch spec := b["spec"].(type) {
					case map[string]any:
						spec["mode"] = "audit"
					case map[any]any:
						spec["mode"] = "audit"
					default:
						t.Fatalf("edited a ruleset without a spec mapping")
					}
					edited++
				}
			}
			if !reflect.DeepEqual(before[i], after[i]) {
				t.Fatalf("document %d: got %#v, want %#v\nin:\n%s\nout:\n%s", i, after[i], before[i], in, out)
			}
		}
		if edited != 1 {
			t.Fatalf("%d rulesets named r", edited)
		}
	})
}

func modeDecodeAll(s string) ([]any, error) {
	dec := yaml.NewDecoder(strings.NewReader(s))
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

func ExampleSetMode() {
	in := `apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata:
  name: shop_runtime
spec:
  mode: learning   # until the learned rules are merged
  process: {}
`
	out, err := SetMode([]byte(in), "shop_runtime", "audit")
	if err != nil {
		panic(err)
	}
	fmt.Print(string(out))
	// Output:
	// apiVersion: palisade.dev/v1alpha1
	// kind: RuntimeRuleset
	// metadata:
	//   name: shop_runtime
	// spec:
	//   mode: audit   # until the learned rules are merged
	//   process: {}
}
