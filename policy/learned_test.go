package policy_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/policy"
)

// shopRuleset has both sections, two responses in process and one in
// file, with exclusions of its own.
const shopRuleset = header + `kind: RuntimeRuleset
metadata: {name: shop_runtime}
spec:
  mode: audit
  process:
    selectors:
      - {name: execs, operation: [exec]}
      - {name: shells, processName: [sh, bash]}
      - {name: init, processExecutable: [/sbin/tini]}
    responses:
      - {match: [execs], exclude: [init], actions: [alert]}
      - {match: [shells], actions: [log]}
  file:
    selectors:
      - {name: writes, operation: [createFile, modifyFile], targetFilePath: [/**]}
    responses:
      - {match: [writes], actions: [alert]}
`

const shopLearned = `# Written by Palisade learning mode.
apiVersion: palisade.dev/v1alpha1
kind: LearnedRules
metadata:
  name: shop_runtime
spec:
  workloads:
    - namespace: shop
      workload: Deployment/web
      container: app
      image: registry.example/shop/web
      process:
        - executable: /usr/bin/nginx
          interactive: false
          evidence: {count: 1520, firstSeen: 2026-12-01T10:00:00Z, lastSeen: 2026-12-02T09:00:00Z, pods: [web-7f9c-abcde]}
        - executable: /bin/sh
          evidence: {count: 3, firstSeen: 2026-12-01T10:00:00Z, lastSeen: 2026-12-01T10:00:00Z}
        - executable: "/usr/lib/run[1]"
          interactive: false
          evidence: {count: 2, firstSeen: 2026-12-01T10:00:00Z, lastSeen: 2026-12-01T11:00:00Z}
      file:
        - operation: [createFile, modifyFile]
          path: /var/cache/nginx/**
          evidence: {count: 88, firstSeen: 2026-12-01T10:00:00Z, lastSeen: 2026-12-02T09:00:00Z, pods: [web-7f9c-abcde], distinct: 41}
    - namespace: shop
      workload: StatefulSet/db
      container: postgres
      process:
        - executable: /usr/bin/postgres
          evidence: {count: 9, firstSeen: 2026-12-01T10:00:00Z, lastSeen: 2026-12-02T09:00:00Z}
`

// The loader compiles learned rules into ordinary selectors of their
// ruleset, named learned.<w>.<section>.<i>, each scoped to its workload's
// container, and excluded by every response of their section.
func TestLearnedRulesCompileIntoTheRuleset(t *testing.T) {
	repo, errs := load(t, map[string]string{"rulesets/shop.yaml": shopRuleset, "learned/shop_runtime.yaml": shopLearned})
	if errs != nil {
		t.Fatal(errs)
	}
	if repo.Learned["shop_runtime"] == nil || len(repo.Learned["shop_runtime"].Spec.Workloads) != 2 {
		t.Fatalf("Learned = %+v, want the learned rules of shop_runtime", repo.Learned)
	}
	spec := repo.Rulesets["shop_runtime"].Spec
	no := false
	web := func(s policy.Selector) policy.Selector {
		s.KubernetesNamespace, s.KubernetesWorkload, s.ContainerName = []string{"shop"}, []string{"Deployment/web"}, []string{"app"}
		return s
	}
	wantProcess := []policy.Selector{
		{Name: "execs", Operation: []string{"exec"}},
		{Name: "shells", ProcessName: []string{"sh", "bash"}},
		{Name: "init", ProcessExecutable: []string{"/sbin/tini"}},
		// No operation: exec and fork of these executables alike.
		web(policy.Selector{Name: "learned.0.process.0", ProcessExecutable: []string{"/usr/bin/nginx", `/usr/lib/run\[1\]`}, SessionLeaderInteractive: &no}),
		web(policy.Selector{Name: "learned.0.process.1", ProcessExecutable: []string{"/bin/sh"}}),
		{Name: "learned.1.process.0", ProcessExecutable: []string{"/usr/bin/postgres"},
			KubernetesNamespace: []string{"shop"}, KubernetesWorkload: []string{"StatefulSet/db"}, ContainerName: []string{"postgres"}},
	}
	if !reflect.DeepEqual(spec.Process.Selectors, wantProcess) {
		t.Errorf("process selectors:\n got %s\nwant %s", js(spec.Process.Selectors), js(wantProcess))
	}
	wantResponses := []policy.Response{
		{Match: []string{"execs"}, Exclude: []string{"init", "learned.0.process.0", "learned.0.process.1", "learned.1.process.0"}, Actions: []string{"alert"}},
		{Match: []string{"shells"}, Exclude: []string{"learned.0.process.0", "learned.0.process.1", "learned.1.process.0"}, Actions: []string{"log"}},
	}
	if !reflect.DeepEqual(spec.Process.Responses, wantResponses) {
		t.Errorf("process responses:\n got %s\nwant %s", js(spec.Process.Responses), js(wantResponses))
	}
	wantFile := web(policy.Selector{Name: "learned.0.file.0", Operation: []string{"createFile", "modifyFile"}, TargetFilePath: []string{"/var/cache/nginx/**"}})
	if len(spec.File.Selectors) != 2 || !reflect.DeepEqual(spec.File.Selectors[1], wantFile) {
		t.Errorf("file selectors:\n got %s\nwant writes and %s", js(spec.File.Selectors), js(wantFile))
	}
	if got := spec.File.Responses[0].Exclude; !reflect.DeepEqual(got, []string{"learned.0.file.0"}) {
		t.Errorf("file response excludes %v, want [learned.0.file.0]", got)
	}
}

func js(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// A learned file whose ruleset has no process section, or is absent,
// and a ruleset naming its own selector learned.*, are errors.
func TestLearnedRulesNeedTheirRulesetAndSection(t *testing.T) {
	fileOnly := header + `kind: RuntimeRuleset
metadata: {name: files}
spec:
  file:
    selectors: [{name: learned.x, targetFilePath: [/etc/**]}]
    responses: [{match: [learned.x], actions: [alert]}]
`
	learned := header + `kind: LearnedRules
metadata: {name: files}
spec:
  workloads:
    - namespace: shop
      workload: Deployment/web
      container: app
      process:
        - {executable: /bin/true, evidence: {count: 1, firstSeen: "2026-12-01T10:00:00Z", lastSeen: "2026-12-01T10:00:00Z"}}
---
` + header + `kind: LearnedRules
metadata: {name: shop_runtim}
spec: {}
`
	_, errs := load(t, map[string]string{"r.yaml": fileOnly, "learned/l.yaml": learned, "rulesets/shop.yaml": shopRuleset})
	want := []string{
		`learned/l.yaml:10:9: spec.workloads[0].process: RuntimeRuleset "files" has no process section`,
		`learned/l.yaml:14:18: metadata.name: RuntimeRuleset "shop_runtim" not found: a LearnedRules extends the ruleset of its name (did you mean "shop_runtime"?)`,
		`r.yaml:6:24: spec.file.selectors[0].name: selector names starting with "learned." are reserved for the rules of LearnedRules`,
	}
	checkErrors(t, errs, want)
}

func TestLearnedRulesErrorsNameFileLineAndField(t *testing.T) {
	bad := header + `kind: LearnedRules
metadata: {name: shop_runtime}
spec:
  workloads:
    - namespace: Shop
      workload: web
      container: ""
      image: x
      colour: blue
      process:
        - executable: usr/bin/nginx
          interactive: maybe
          evidence: {count: 0, firstSeen: yesterday, lastSeen: "2026-12-01T10:00:00Z"}
        - evidence: {count: 1, firstSeen: "2026-12-02T10:00:00Z", lastSeen: "2026-12-01T10:00:00Z", pods: [a]}
      file:
        - operation: [exec, modifyFile]
          path: "var/[x"
          evidence: {count: 1, firstSeen: "2026-12-01T10:00:00Z", lastSeen: "2026-12-01T10:00:00Z", distinct: -1}
        - path: "/x/[a"
          evidence: {count: 1, lastSeen: "2026-12-01T10:00:00Z", extra: 1}
    - namespace: shop
      workload: Deployment/web
      container: app
    - {namespace: shop, workload: Deployment/web, container: app}
`
	_, errs := load(t, map[string]string{"rulesets/shop.yaml": shopRuleset, "learned/shop_runtime.yaml": bad})
	f := "learned/shop_runtime.yaml:"
	want := []string{
		f + `6:18: spec.workloads[0].namespace: invalid namespace "Shop"`,
		f + `7:17: spec.workloads[0].workload: invalid workload "web"`,
		f + `8:18: spec.workloads[0].container: container is required`,
		f + `10:7: spec.workloads[0].colour: unknown field "colour"`,
		f + `12:23: spec.workloads[0].process[0].executable: executable "usr/bin/nginx" must be absolute`,
		f + `13:24: spec.workloads[0].process[0].interactive: expected a bool, got "maybe"`,
		f + `14:29: spec.workloads[0].process[0].evidence.count: count must be at least 1, not 0`,
		f + `14:43: spec.workloads[0].process[0].evidence.firstSeen: invalid time "yesterday": want RFC 3339`,
		f + `15:11: spec.workloads[0].process[1].executable: executable is required`,
		f + `15:77: spec.workloads[0].process[1].evidence.lastSeen: lastSeen 2026-12-01T10:00:00Z is before firstSeen 2026-12-02T10:00:00Z`,
		f + `17:23: spec.workloads[0].file[0].operation[0]: invalid value "exec"`,
		f + `18:17: spec.workloads[0].file[0].path: path "var/[x" must be absolute`,
		f + `19:111: spec.workloads[0].file[0].evidence.distinct: distinct must not be negative, not -1`,
		f + `20:11: spec.workloads[0].file[1].operation: at least one operation is required`,
		f + `20:17: spec.workloads[0].file[1].path: invalid path pattern "/x/[a"`,
		f + `21:21: spec.workloads[0].file[1].evidence.firstSeen: firstSeen is required`,
		f + `21:66: spec.workloads[0].file[1].evidence.extra: unknown field "extra"`,
		f + `25:7: spec.workloads[2]: duplicate workload shop/Deployment/web container app (first at learned/shop_runtime.yaml:22:7)`,
	}
	checkErrors(t, errs, want)
}

func checkErrors(t *testing.T, errs policy.ErrorList, want []string) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("error %d:\n got %s\nwant …%s…", i, errs[i], w)
		}
	}
}

func TestDuplicateLearnedRules(t *testing.T) {
	doc := header + "kind: LearnedRules\nmetadata: {name: shop_runtime}\nspec: {}\n"
	_, errs := load(t, map[string]string{"rulesets/shop.yaml": shopRuleset, "learned/a.yaml": doc, "learned/b.yaml": doc})
	checkErrors(t, errs, []string{`learned/b.yaml:3:18: metadata.name: duplicate LearnedRules name "shop_runtime" (first defined at learned/a.yaml:3:18)`})
}

func TestWorkloadAndContainerConditionsAreValidated(t *testing.T) {
	doc := header + `kind: RuntimeRuleset
metadata: {name: r}
spec:
  process:
    selectors:
      - {name: ok, kubernetesWorkload: [Deployment/web, "StatefulSet/*", "*", CronJob/nightly], containerName: [app, web-2]}
      - {name: bad, kubernetesWorkload: [web, "*/web", "Deployment/*/*"], containerName: [App_1]}
    responses: [{match: [ok], exclude: [bad], actions: [alert]}]
`
	_, errs := load(t, map[string]string{"r.yaml": doc})
	checkErrors(t, errs, []string{
		`r.yaml:8:42: spec.process.selectors[1].kubernetesWorkload[0]: invalid workload "web" (want <Kind>/<name> such as Deployment/web, or a prefix ending with *)`,
		`r.yaml:8:47: spec.process.selectors[1].kubernetesWorkload[1]: invalid workload "*/web"`,
		`r.yaml:8:56: spec.process.selectors[1].kubernetesWorkload[2]: invalid workload "Deployment/*/*"`,
		`r.yaml:8:91: spec.process.selectors[1].containerName[0]: invalid container name "App_1"`,
	})
}
