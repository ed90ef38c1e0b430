package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// KindLearnedRules is the kind of the rules learning mode proposes
// (learned/<ruleset>.yaml), reviewed and merged like any policy file.
const KindLearnedRules = "LearnedRules"

// LearnedPrefix starts the names of the selectors compiled from
// LearnedRules; a RuntimeRuleset may not name its own selectors so.
const LearnedPrefix = "learned."

// LearnedRules extends the RuntimeRuleset of the same name with the
// behaviour learned of its workloads: executables they run and files they
// write. Load compiles it into the ruleset as ordinary selectors, excluded
// by every response of their section, so that what a workload was seen
// doing raises nothing and everything else still does; see
// CompileLearned for the exact form.
type LearnedRules struct {
	// Metadata.Name is the RuntimeRuleset extended; it must exist.
	Metadata Metadata         `yaml:"metadata" json:"metadata"`
	Spec     LearnedRulesSpec `yaml:"spec" json:"spec"`
	Source   Source           `yaml:"-" json:"-"`
}

// LearnedRulesSpec is a LearnedRules' content.
type LearnedRulesSpec struct {
	Workloads []LearnedWorkload `yaml:"workloads" json:"workloads,omitempty"`
}

// LearnedWorkload is the learned behaviour of one container of one
// workload: its rules apply to that container of that workload in that
// namespace only, so that what one workload does never widens another's.
type LearnedWorkload struct {
	Namespace string `yaml:"namespace" json:"namespace"`
	// Workload is "<Kind>/<name>" of the pod's top controller, as the
	// sensor's facts name it ("Deployment/web", "Pod/<name>").
	Workload string `yaml:"workload" json:"workload"`
	// Container is the container's name in the pod spec.
	Container string `yaml:"container" json:"container"`
	// Image is the image repository the behaviour was seen in:
	// informational, enforcement ignores it.
	Image   string           `yaml:"image" json:"image,omitempty"`
	Process []LearnedProcess `yaml:"process" json:"process,omitempty"`
	File    []LearnedFile    `yaml:"file" json:"file,omitempty"`
}

// LearnedProcess is an executable the workload runs (exec and fork).
type LearnedProcess struct {
	// Executable is an absolute path, matched exactly (glob characters in
	// it are literal).
	Executable string `yaml:"executable" json:"executable"`
	// Interactive false allows the executable only without a controlling
	// terminal; true or absent allows it either way.
	Interactive *bool    `yaml:"interactive" json:"interactive,omitempty"`
	Evidence    Evidence `yaml:"evidence" json:"evidence"`
}

// LearnedFile is a file operation the workload performs on a path.
type LearnedFile struct {
	// Operation lists file operations (createFile, modifyFile,
	// deleteFile, createExecutable, modifyExecutable); at least one.
	Operation []string `yaml:"operation" json:"operation"`
	// Path is a D4C path pattern: absolute, `*` within one segment, `**`
	// across segments.
	Path     string   `yaml:"path" json:"path"`
	Evidence Evidence `yaml:"evidence" json:"evidence"`
}

// Evidence is what learning saw of a rule: validated, and otherwise
// ignored by enforcement (it is there for the reviewer).
type Evidence struct {
	Count     int64    `yaml:"count" json:"count"`
	FirstSeen string   `yaml:"firstSeen" json:"firstSeen"` // RFC 3339
	LastSeen  string   `yaml:"lastSeen" json:"lastSeen"`   // RFC 3339
	Pods      []string `yaml:"pods" json:"pods,omitempty"`
	// Distinct is how many distinct paths a generalised file path stands
	// for.
	Distinct int64 `yaml:"distinct" json:"distinct,omitempty"`
}

// The sections learned selectors are added to (their names' middle part).
const (
	sectionProcess = "process"
	sectionFile    = "file"
)

// learned validates a LearnedRules against the repository's rulesets.
func (v *validator) learned(r *Repo, l *LearnedRules) {
	v.name("metadata.name", l.Metadata.Name)
	rs := r.Rulesets[l.Metadata.Name]
	if rs == nil && l.Metadata.Name != "" {
		v.errorf("metadata.name", "RuntimeRuleset %q not found: a LearnedRules extends the ruleset of its name%s",
			l.Metadata.Name, suggestFrom(l.Metadata.Name, sortedKeys(r.Rulesets)))
	}
	seen := map[string]string{}
	for w, wl := range l.Spec.Workloads {
		wf := fmt.Sprintf("spec.workloads[%d]", w)
		switch {
		case wl.Namespace == "":
			v.errorf(wf+".namespace", "namespace is required")
		case !namespacePattern.MatchString(wl.Namespace):
			v.errorf(wf+".namespace", "invalid namespace %q", wl.Namespace)
		}
		switch {
		case wl.Workload == "":
			v.errorf(wf+".workload", "workload is required (<Kind>/<name>, such as Deployment/web)")
		case !workloadPattern.MatchString(wl.Workload):
			v.errorf(wf+".workload", "invalid workload %q (want <Kind>/<name>, such as Deployment/web)", wl.Workload)
		}
		switch {
		case wl.Container == "":
			v.errorf(wf+".container", "container is required (the container's name in the pod spec)")
		case !namespacePattern.MatchString(wl.Container):
			v.errorf(wf+".container", "invalid container name %q", wl.Container)
		}
		id := wl.Namespace + "/" + wl.Workload + "/" + wl.Container
		if prev, ok := seen[id]; ok {
			v.errorf(wf, "duplicate workload %s/%s container %s (first at %s): merge the entries", wl.Namespace, wl.Workload, wl.Container, prev)
		} else {
			seen[id] = v.src.Pos(wf).String()
		}
		if len(wl.Process) > 0 && rs != nil && rs.Spec.Process == nil {
			v.errorf(wf+".process", "RuntimeRuleset %q has no process section: learned process rules would change nothing (delete them, or give the ruleset a process section)", rs.Metadata.Name)
		}
		if len(wl.File) > 0 && rs != nil && rs.Spec.File == nil {
			v.errorf(wf+".file", "RuntimeRuleset %q has no file section: learned file rules would change nothing (delete them, or give the ruleset a file section)", rs.Metadata.Name)
		}
		for k, p := range wl.Process {
			pf := fmt.Sprintf("%s.process[%d]", wf, k)
			switch {
			case p.Executable == "":
				v.errorf(pf+".executable", "executable is required")
			case !strings.HasPrefix(p.Executable, "/"):
				v.errorf(pf+".executable", "executable %q must be absolute (start with /)", p.Executable)
			}
			v.evidence(pf+".evidence", p.Evidence)
		}
		for i, f := range wl.File {
			ff := fmt.Sprintf("%s.file[%d]", wf, i)
			if len(f.Operation) == 0 {
				v.errorf(ff+".operation", "at least one operation is required (%s)", strings.Join(fileOperations, ", "))
			}
			v.subset(ff+".operation", f.Operation, fileOperations)
			if f.Path == "" {
				v.errorf(ff+".path", "path is required")
			} else {
				v.pathGlob(ff+".path", f.Path)
			}
			v.evidence(ff+".evidence", f.Evidence)
		}
	}
}

func (v *validator) evidence(field string, e Evidence) {
	if e.Count < 1 {
		v.errorf(field+".count", "count must be at least 1, not %d", e.Count)
	}
	if e.Distinct < 0 {
		v.errorf(field+".distinct", "distinct must not be negative, not %d", e.Distinct)
	}
	var times [2]time.Time
	for i, ts := range []struct{ name, value string }{{"firstSeen", e.FirstSeen}, {"lastSeen", e.LastSeen}} {
		t, err := time.Parse(time.RFC3339, ts.value)
		switch {
		case ts.value == "":
			v.errorf(field+"."+ts.name, "%s is required (RFC 3339)", ts.name)
		case err != nil:
			v.errorf(field+"."+ts.name, "invalid time %q: want RFC 3339", ts.value)
		}
		times[i] = t
	}
	if !times[0].IsZero() && !times[1].IsZero() && times[1].Before(times[0]) {
		v.errorf(field+".lastSeen", "lastSeen %s is before firstSeen %s", e.LastSeen, e.FirstSeen)
	}
}

// CompileLearned adds the rules of l to rs, the ruleset of its name, as
// ordinary selectors (Load does this for every LearnedRules of a valid
// repository; it is exported for tools that build rulesets themselves):
//
//   - for workload entry w, one process selector per interactive group k
//     (entries with interactive: false, and the others, in the order of
//     their first entry), named learned.<w>.process.<k>, with
//     processExecutable = the group's executables (exact: glob characters
//     escaped), and sessionLeaderInteractive: false for the
//     non-interactive group. It gives no operation, so it holds for exec
//     and fork alike: what the executable runs as and what it spawns of
//     itself.
//   - one file selector per file entry i, named learned.<w>.file.<i>,
//     with its operation and targetFilePath: [path].
//   - every one of them also gives kubernetesNamespace: [namespace],
//     kubernetesWorkload: [workload] and containerName: [container].
//   - every response of a section excludes every learned selector of that
//     section.
//
// A section the ruleset does not have gets nothing (validation reports
// learned rules for it as an error).
func CompileLearned(rs *RuntimeRuleset, l *LearnedRules) {
	var process, file []Selector
	for w, wl := range l.Spec.Workloads {
		scope := func(s Selector) Selector {
			s.KubernetesNamespace = []string{wl.Namespace}
			s.KubernetesWorkload = []string{wl.Workload}
			s.ContainerName = []string{wl.Container}
			return s
		}
		var groups []bool // nonInteractive of each group, in order
		byGroup := map[bool][]string{}
		for _, p := range wl.Process {
			nonInteractive := p.Interactive != nil && !*p.Interactive
			if _, ok := byGroup[nonInteractive]; !ok {
				groups = append(groups, nonInteractive)
			}
			exe := escapeGlob(p.Executable)
			if !slices.Contains(byGroup[nonInteractive], exe) {
				byGroup[nonInteractive] = append(byGroup[nonInteractive], exe)
			}
		}
		for k, nonInteractive := range groups {
			s := scope(Selector{
				Name:              fmt.Sprintf("%s%d.%s.%d", LearnedPrefix, w, sectionProcess, k),
				ProcessExecutable: byGroup[nonInteractive],
			})
			if nonInteractive {
				f := false
				s.SessionLeaderInteractive = &f
			}
			process = append(process, s)
		}
		for i, f := range wl.File {
			file = append(file, scope(Selector{
				Name:           fmt.Sprintf("%s%d.%s.%d", LearnedPrefix, w, sectionFile, i),
				Operation:      slices.Clone(f.Operation),
				TargetFilePath: []string{f.Path},
			}))
		}
	}
	addLearned(rs.Spec.Process, process)
	addLearned(rs.Spec.File, file)
}

func addLearned(sec *D4CSection, selectors []Selector) {
	if sec == nil || len(selectors) == 0 {
		return
	}
	sec.Selectors = append(sec.Selectors, selectors...)
	for i := range sec.Responses {
		r := &sec.Responses[i]
		r.Exclude = slices.Clip(r.Exclude)
		for _, s := range selectors {
			r.Exclude = append(r.Exclude, s.Name)
		}
	}
}

// escapeGlob makes a path a pattern that matches exactly that path, as
// glob.match (Rego) and gobwas/glob (the native matcher) read patterns.
func escapeGlob(p string) string {
	if !strings.ContainsAny(p, `*?[]{}\`) {
		return p
	}
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[]{}\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
