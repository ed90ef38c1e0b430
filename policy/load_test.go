package policy_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/palisade-dev/palisade/policy"
)

const header = "apiVersion: palisade.dev/v1alpha1\n"

func load(t *testing.T, files map[string]string) (*policy.Repo, policy.ErrorList) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	repo, err := policy.Load(fsys)
	if err == nil {
		return repo, nil
	}
	var list policy.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Load returned %T (%v), want ErrorList", err, err)
	}
	return nil, list
}

func TestLoadExampleNormalises(t *testing.T) {
	repo, err := policy.LoadDir("../policies-example")
	if err != nil {
		t.Fatal(err)
	}
	p := repo.PolicyFor("prod")
	if p == nil {
		t.Fatal("no policy for prod")
	}
	if p.Spec.Mode != policy.ModeEnforce || p.Spec.SystemNamespace != policy.DefaultSystemNamespace || len(p.Spec.SystemImages) == 0 {
		t.Errorf("defaults not applied: mode %q, namespace %q, images %v", p.Spec.Mode, p.Spec.SystemNamespace, p.Spec.SystemImages)
	}
	payments := p.Spec.Namespaced[0]
	if payments.Name != "payments" {
		t.Fatalf("first namespaced definition is %q", payments.Name)
	}
	// Merge key: payments inherits privileged from the cluster-wide anchor
	// and overrides runAsRoot.
	if payments.Deployment.Privileged == nil || payments.Deployment.Privileged.Action != "block" {
		t.Errorf("payments did not inherit privileged through the merge key: %+v", payments.Deployment.Privileged)
	}
	if payments.Deployment.RunAsRoot.Action != "block" || p.Spec.ClusterWide.Deployment.RunAsRoot.Action != "log" {
		t.Errorf("merge key override leaked: payments %s, cluster-wide %s", payments.Deployment.RunAsRoot.Action, p.Spec.ClusterWide.Deployment.RunAsRoot.Action)
	}
	// A continuous rule inherits its parameters from the deployment rule.
	if got := p.Spec.ClusterWide.Continuous.Rules.BlockedHostPaths.Paths; len(got) == 0 {
		t.Error("continuous blockedHostPaths did not inherit paths")
	}
	for _, e := range p.Spec.ClusterWide.Exceptions {
		if e.Expires != "" && e.ExpiresNs == 0 {
			t.Errorf("exception %s: expires %q not normalised", e.Name, e.Expires)
		}
	}
	if len(repo.Rulesets) != 2 || len(repo.Attestors) != 2 {
		t.Errorf("got %d rulesets, %d attestors", len(repo.Rulesets), len(repo.Attestors))
	}
}

func TestLoadReportsErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the errors, in order
	}{
		{
			name: "unknown field suggests the closest",
			doc: header + `kind: Policy
metadata: {name: p}
spec:
  clusters: [c]
  clusterWyde: {}
`,
			want: []string{`f.yaml:6:3: spec.clusterWyde: unknown field "clusterWyde" (did you mean "clusterWide"?)`},
		},
		{
			name: "name outside the allowed characters",
			doc:  header + "kind: Policy\nmetadata: {name: my-policy}\nspec: {clusters: [c]}\n",
			want: []string{`f.yaml:3:18: metadata.name: invalid name "my-policy"`},
		},
		{
			name: "duplicate key",
			doc:  header + "kind: Policy\nmetadata: {name: p}\nspec:\n  clusters: [c]\n  clusters: [d]\n",
			want: []string{`f.yaml:6:3: spec.clusters: duplicate key "clusters"`},
		},
		{
			name: "wrong type",
			doc:  header + "kind: Policy\nmetadata: {name: p}\nspec:\n  clusters: c\n",
			want: []string{`f.yaml:5:13: spec.clusters: expected a list, got "c"`},
		},
		{
			name: "namespace in two namespaced definitions",
			doc: header + `kind: Policy
metadata: {name: p}
spec:
  clusters: [c]
  namespaced:
    - {name: a, namespaces: [x, y]}
    - {name: b, namespaces: [y]}
`,
			want: []string{`f.yaml:8:30: spec.namespaced[1].namespaces[0]: namespace "y" is already listed by namespaced definition "a"`},
		},
		{
			name: "continuous action pair outside the valid pairs",
			doc: header + `kind: Policy
metadata: {name: p}
spec:
  clusters: [c]
  clusterWide:
    deployment:
      privileged: {action: log}
    continuous:
      rules:
        privileged: {action: terminate}
        runAsRoot: {action: isolate}
        latestTag: {action: block}
        kubectlAccess: {action: log}
`,
			want: []string{
				`f.yaml:11:30: spec.clusterWide.continuous.rules.privileged.action: continuous action terminate needs deployment action block for rule privileged (deployment has log`,
				`f.yaml:12:29: spec.clusterWide.continuous.rules.runAsRoot.action: continuous action isolate needs deployment action block for rule runAsRoot (deployment has none`,
				`f.yaml:13:29: spec.clusterWide.continuous.rules.latestTag.action: action "block" is not valid in the continuous tab`,
				`f.yaml:14:24: spec.clusterWide.continuous.rules.kubectlAccess: rule kubectlAccess applies at admission only`,
			},
		},
		{
			name: "bad parameters",
			doc: header + `kind: Policy
metadata: {name: p}
spec:
  clusters: [c]
  clusterWide:
    deployment:
      hostPorts: {action: block, allowed: [0, 70000]}
      podSecurityStandards: {action: block, level: privileged}
      capabilities: {action: block, preset: everything}
      allowedRegistries: {action: block, registries: [myregistry, "https://x.io"]}
      imageName: {action: block, deny: [{glob: "docker.io/[a"}, {equals: a, prefix: b}]}
      resources: {action: log, require: [gpuLimits]}
    continuous:
      schedule: every five minutes
`,
			want: []string{
				`f.yaml:8:44: spec.clusterWide.deployment.hostPorts.allowed[0]: invalid port 0`,
				`f.yaml:8:47: spec.clusterWide.deployment.hostPorts.allowed[1]: invalid port 70000`,
				`f.yaml:9:52: spec.clusterWide.deployment.podSecurityStandards.level: invalid value "privileged"`,
				`f.yaml:10:45: spec.clusterWide.deployment.capabilities.preset: invalid value "everything"`,
				`f.yaml:11:55: spec.clusterWide.deployment.allowedRegistries.registries[0]: invalid registry "myregistry"`,
				`f.yaml:11:67: spec.clusterWide.deployment.allowedRegistries.registries[1]: invalid registry "https://x.io"`,
				`f.yaml:12:48: spec.clusterWide.deployment.imageName.deny[0].glob: invalid glob "docker.io/[a"`,
				`f.yaml:12:65: spec.clusterWide.deployment.imageName.deny[1]: set exactly one of equals, contains, prefix, glob`,
				`f.yaml:13:42: spec.clusterWide.deployment.resources.require[0]: invalid value "gpuLimits"`,
				`f.yaml:15:17: spec.clusterWide.continuous.schedule: invalid schedule "every five minutes"`,
			},
		},
		{
			name: "exceptions",
			doc: header + `kind: Policy
metadata: {name: p}
spec:
  clusters: [c]
  clusterWide:
    exceptions:
      - {name: all}
      - {name: e, namespaces: [Bad_NS], rules: [privilegd], expires: next week}
`,
			want: []string{
				`f.yaml:8:9: spec.clusterWide.exceptions[0]: an exception needs at least one condition`,
				`f.yaml:9:32: spec.clusterWide.exceptions[1].namespaces[0]: invalid namespace "Bad_NS"`,
				`f.yaml:9:49: spec.clusterWide.exceptions[1].rules[0]: unknown rule "privilegd" (did you mean "privileged"?)`,
				`f.yaml:9:70: spec.clusterWide.exceptions[1].expires: invalid expiry "next week"`,
			},
		},
		{
			name: "verification rules",
			doc: header + `kind: Policy
metadata: {name: p}
spec:
  clusters: [c]
  clusterWide:
    deployment:
      imageSignature:
        - {name: signed, action: block, attestors: [nobody], match: some}
        - {name: signed, action: terminate, attestors: [], registryUnavailable: allow}
      scanResults:
        - {name: scan, action: log, attestor: "", maxAgeDays: -1, severity: severe, allow: ["not an id"]}
        - {name: ok, action: block, attestor: nobody, exceptions: [{name: e, rules: [privileged], namespaces: [ci]}]}
    exceptions:
      - {name: e, namespaces: [ci], rules: [imageSignature.signed]}
`,
			want: []string{
				`f.yaml:9:53: spec.clusterWide.deployment.imageSignature[0].attestors[0]: Attestor "nobody" not found`,
				`f.yaml:9:69: spec.clusterWide.deployment.imageSignature[0].match: invalid value "some"`,
				`f.yaml:10:18: spec.clusterWide.deployment.imageSignature[1].name: duplicate imageSignature rule "signed" (first at f.yaml:9:18)`,
				`f.yaml:10:34: spec.clusterWide.deployment.imageSignature[1].action: action "terminate" is not valid here (want one of log, block)`,
				`f.yaml:10:56: spec.clusterWide.deployment.imageSignature[1].attestors: at least one attestor is required`,
				`f.yaml:10:81: spec.clusterWide.deployment.imageSignature[1].registryUnavailable: action "allow" is not valid here`,
				`f.yaml:12:47: spec.clusterWide.deployment.scanResults[0].attestor: attestor name is required`,
				`f.yaml:12:63: spec.clusterWide.deployment.scanResults[0].maxAgeDays: maxAgeDays must be positive, not -1`,
				`f.yaml:12:77: spec.clusterWide.deployment.scanResults[0].severity: invalid value "severe"`,
				`f.yaml:12:93: spec.clusterWide.deployment.scanResults[0].allow[0]: invalid vulnerability id "not an id"`,
				`f.yaml:13:47: spec.clusterWide.deployment.scanResults[1].attestor: Attestor "nobody" not found`,
				`f.yaml:13:85: spec.clusterWide.deployment.scanResults[1].exceptions[0].rules: an exception of a scanResults rule applies to that rule only`,
				`f.yaml:15:45: spec.clusterWide.exceptions[0].rules[0]: imageSignature.signed rules have their own exceptions`,
			},
		},
		{
			name: "unknown kind and version, syntax error",
			doc:  "apiVersion: palisade.dev/v2\nkind: Policy\n---\n" + header + "kind: Polizy\n---\nkey: [unclosed\n",
			want: []string{
				`f.yaml:1:13: apiVersion: unsupported apiVersion "palisade.dev/v2"`,
				`f.yaml:5:7: kind: unknown kind "Polizy"`,
				`f.yaml:6: invalid YAML`,
			},
		},
		{
			name: "runtime ruleset",
			doc: header + `kind: RuntimeRuleset
metadata: {name: r}
spec:
  mode: block
  file:
    selectors:
      - {name: s, operation: [exec], targetFilePath: [etc/**, "/x/[a"]}
      - {name: w, operation: [createExecutable, deleteFile]}
    responses:
      - {match: [s, t], actions: [block]}
`,
			want: []string{
				`f.yaml:5:9: spec.mode: invalid value "block"`,
				`f.yaml:8:31: spec.file.selectors[0].operation[0]: invalid value "exec"`,
				`f.yaml:8:55: spec.file.selectors[0].targetFilePath[0]: path "etc/**" must be absolute`,
				`f.yaml:8:63: spec.file.selectors[0].targetFilePath[1]: invalid path pattern "/x/[a"`,
				`spec.file.selectors[1].targetFilePath: targetFilePath is required for operation deleteFile`,
				`f.yaml:11:21: spec.file.responses[0].match[1]: selector "t" not found`,
				`f.yaml:11:34: spec.file.responses[0].actions: block requires alert`,
			},
		},
		{
			name: "attestor",
			doc: header + `kind: Attestor
metadata: {name: a}
spec:
  keys:
    - {publicKey: "not a key"}
    - {}
  keyless:
    - {subjectRegExp: "("}
`,
			want: []string{
				`f.yaml:6:19: spec.keys[0].publicKey: not a PEM-encoded public key`,
				`f.yaml:7:7: spec.keys[1]: set exactly one of publicKey, file`,
				`f.yaml:9:7: spec.keyless[0].fulcioRoots: fulcioRoots is required`,
				`f.yaml:9:7: spec.keyless[0].issuer: issuer is required`,
				`f.yaml:9:7: spec.keyless[0].rekorPublicKey: rekorPublicKey is required`,
				`f.yaml:9:23: spec.keyless[0].subjectRegExp: invalid regular expression`,
			},
		},
		{
			name: "policy test",
			doc: header + `kind: PolicyTest
metadata: {name: t}
spec:
  cluster: nowhere
  cases:
    - name: c
      file: ../../outside.yaml
      expect: {violations: [privilegd]}
`,
			want: []string{
				`f.yaml:5:12: spec.cluster: no Policy is assigned to cluster "nowhere"`,
				`f.yaml:8:13: spec.cases[0].file: file "../../outside.yaml" is outside the repository`,
				`f.yaml:9:15: spec.cases[0].expect.allowed: allowed is required`,
				`f.yaml:9:29: spec.cases[0].expect.violations[0]: unknown rule "privilegd"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := load(t, map[string]string{"f.yaml": tt.doc})
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), errs)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d:\n got %s\nwant …%s…", i, errs[i], w)
				}
			}
		})
	}
}

func TestDuplicateNamesAcrossFiles(t *testing.T) {
	ruleset := header + "kind: RuntimeRuleset\nmetadata: {name: r}\nspec:\n  process:\n    selectors: [{name: s}]\n    responses: [{match: [s], actions: [log]}]\n"
	_, errs := load(t, map[string]string{
		"a.yaml": header + "kind: Policy\nmetadata: {name: p}\nspec: {clusters: [c]}\n",
		"b.yaml": header + "kind: Policy\nmetadata: {name: p}\nspec: {clusters: [c]}\n---\n" + ruleset,
		"c.yml":  ruleset,
	})
	want := []string{
		`b.yaml:3:18: metadata.name: duplicate Policy name "p" (first defined at a.yaml:3:18)`,
		`b.yaml:4:19: spec.clusters[0]: cluster "c" is already assigned to Policy "p"`,
		`c.yml:3:18: metadata.name: duplicate RuntimeRuleset name "r" (first defined at b.yaml:8:18)`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("error %d:\n got %s\nwant …%s…", i, errs[i], w)
		}
	}
}

func TestNonPalisadeDocumentsAreLeftAlone(t *testing.T) {
	repo, errs := load(t, map[string]string{
		"clusters/p.yaml":  header + "kind: Policy\nmetadata: {name: p}\nspec: {clusters: [c]}\n",
		"tests/pod.yaml":   "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		".git/config.yaml": "not: [valid",
		"README.md":        "# not yaml",
	})
	if errs != nil {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if len(repo.Policies) != 1 {
		t.Errorf("got %d policies, want 1", len(repo.Policies))
	}
	_, errs = load(t, map[string]string{"tests/notes.yaml": "- just a list\n"})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "tests/notes.yaml:1:1: expected a mapping with apiVersion and kind") {
		t.Fatalf("a YAML document that is not an object: got %v", errs)
	}
}

func TestAliasBombIsRefused(t *testing.T) {
	// Ten levels of nine-fold aliases: 9^10 nodes if expanded naively.
	var b strings.Builder
	b.WriteString("x0: &x0 [a, a, a, a, a, a, a, a, a]\n")
	for i := 1; i <= 10; i++ {
		b.WriteString("x" + itoa(i) + ": &x" + itoa(i) + " [")
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*x" + itoa(i-1))
		}
		b.WriteString("]\n")
	}
	bomb := header + "kind: PolicyTest\nmetadata: {name: t}\n" + b.String() + "spec:\n  cluster: c\n  cases:\n    - name: x\n      object: {a: *x10}\n      expect: {allowed: true}\n"
	_, errs := load(t, map[string]string{"f.yaml": bomb})
	if len(errs) == 0 {
		t.Fatal("alias bomb loaded without error")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestImageMatchersAreNormalised(t *testing.T) {
	repo, errs := load(t, map[string]string{"f.yaml": header + `kind: Policy
metadata: {name: p}
spec:
  clusters: [c]
  clusterWide:
    deployment:
      imageName: {action: block, deny: [{equals: nginx}, {equals: "ghcr.io/acme/app:1"}]}
    exceptions:
      - {name: e, images: [{equals: "busybox:1.36"}, {prefix: busybox}]}
`})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `"ghcr.io/acme/app:1" has a tag or digest`) {
		t.Fatalf("errors: %v", errs)
	}
	_ = repo
	repo, errs = load(t, map[string]string{"f.yaml": header + `kind: Policy
metadata: {name: p}
spec:
  clusters: [c]
  clusterWide:
    deployment:
      imageName: {action: block, deny: [{equals: nginx}]}
    exceptions:
      - {name: e, images: [{equals: "busybox:1.36"}, {prefix: busybox}]}
`})
	if errs != nil {
		t.Fatal(errs)
	}
	def := repo.Policies[0].Spec.ClusterWide
	if got := def.Deployment.ImageName.Deny[0].Equals; got != "docker.io/library/nginx" {
		t.Errorf("imageName equals = %q", got)
	}
	if got := def.Exceptions[0].Images; got[0].Equals != "docker.io/library/busybox:1.36" || got[1].Prefix != "busybox" {
		t.Errorf("exception images = %+v", got)
	}
}

func ExampleLoad() {
	repo, err := policy.Load(fstest.MapFS{"clusters/dev.yaml": {Data: []byte(`
apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: dev}
spec:
  clusters: [dev]
  clusterWide:
    deployment:
      privileged: {action: blok}
      hostPorts: {action: log, allowed: [80, 0]}
`)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(repo.Clusters())
	// Output:
	// clusters/dev.yaml:9:28: spec.clusterWide.deployment.privileged.action: action "blok" is not valid in the deployment tab (want one of log, block) (did you mean "block"?)
	// clusters/dev.yaml:10:46: spec.clusterWide.deployment.hostPorts.allowed[1]: invalid port 0 (want 1-65535)
}
