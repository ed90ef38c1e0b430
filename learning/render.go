package learning

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/palisade-dev/palisade/policy"
	"gopkg.in/yaml.v3"
)

// LearnedHeader opens every learned/<ruleset>.yaml file.
const LearnedHeader = "# Written by Palisade learning mode (palisade learn propose). Review it like any policy:\n" +
	"# delete an entry to reject that rule.\n"

// LearnedPath is where a ruleset's learned rules live in the policy
// repository.
func LearnedPath(ruleset string) string {
	return "learned/" + ruleset + ".yaml"
}

// RenderLearned writes the proposal as learned/<ruleset>.yaml (kind
// LearnedRules, see the learning contract): the header comment, then per
// workload its process and file rules, each with its reason as a comment
// above it and its evidence as a flow mapping. The output is a pure
// function of the proposal.
func RenderLearned(p *Proposal) ([]byte, error) {
	if p == nil || p.Ruleset == "" {
		return nil, errors.New("render learned rules: proposal has no ruleset")
	}
	var b bytes.Buffer
	b.WriteString(LearnedHeader)
	b.WriteString("apiVersion: palisade.dev/v1alpha1\nkind: LearnedRules\nmetadata:\n")
	fmt.Fprintf(&b, "  name: %s\n", yamlScalar(p.Ruleset))
	b.WriteString("spec:\n")
	if len(p.Workloads) == 0 {
		b.WriteString("  workloads: []\n")
		return b.Bytes(), nil
	}
	b.WriteString("  workloads:\n")
	for wi, w := range p.Workloads {
		if w.ID.Namespace == "" || w.ID.Workload == "" || w.ID.Container == "" {
			return nil, fmt.Errorf("render learned rules: workload %d: namespace, workload and container are required", wi)
		}
		fmt.Fprintf(&b, "    - namespace: %s\n", yamlScalar(w.ID.Namespace))
		fmt.Fprintf(&b, "      workload: %s\n", yamlScalar(w.ID.Workload))
		fmt.Fprintf(&b, "      container: %s\n", yamlScalar(w.ID.Container))
		if w.ID.Image != "" {
			fmt.Fprintf(&b, "      image: %s\n", yamlScalar(w.ID.Image))
		}
		if len(w.Process) > 0 {
			b.WriteString("      process:\n")
			for _, r := range w.Process {
				if !strings.HasPrefix(r.Executable, "/") {
					return nil, fmt.Errorf("render learned rules: %s: executable %q is not absolute", w.ID.Workload, r.Executable)
				}
				writeComment(&b, "        ", r.Reason)
				fmt.Fprintf(&b, "        - executable: %s\n", yamlScalar(r.Executable))
				if r.Interactive != nil {
					fmt.Fprintf(&b, "          interactive: %t\n", *r.Interactive)
				}
				fmt.Fprintf(&b, "          evidence: %s\n", evidenceFlow(r.Evidence))
			}
		}
		if len(w.File) > 0 {
			b.WriteString("      file:\n")
			for _, r := range w.File {
				if !strings.HasPrefix(r.Path, "/") || len(r.Operation) == 0 {
					return nil, fmt.Errorf("render learned rules: %s: file rule %q needs an absolute path and operations", w.ID.Workload, r.Path)
				}
				writeComment(&b, "        ", r.Reason)
				ops := make([]string, len(r.Operation))
				for i, op := range r.Operation {
					ops[i] = yamlScalar(op)
				}
				fmt.Fprintf(&b, "        - operation: [%s]\n", strings.Join(ops, ", "))
				fmt.Fprintf(&b, "          path: %s\n", yamlScalar(r.Path))
				fmt.Fprintf(&b, "          evidence: %s\n", evidenceFlow(r.Evidence))
			}
		}
	}
	return b.Bytes(), nil
}

// writeComment writes a reason as comment lines (one per line of text).
func writeComment(b *bytes.Buffer, indent, text string) {
	if text == "" {
		return
	}
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintf(b, "%s# %s\n", indent, printable(strings.TrimRight(line, " \t\r")))
	}
}

// evidenceFlow renders evidence as a one-line flow mapping: count,
// firstSeen, lastSeen (RFC 3339, UTC, seconds), pods, distinct (only when
// more than 0).
func evidenceFlow(e RuleEvidence) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{count: %d, firstSeen: %s, lastSeen: %s", e.Count, rfc3339(e.FirstSeen), rfc3339(e.LastSeen))
	if len(e.Pods) > 0 {
		pods := make([]string, len(e.Pods))
		for i, p := range e.Pods {
			pods[i] = yamlScalar(p)
		}
		fmt.Fprintf(&b, ", pods: [%s]", strings.Join(pods, ", "))
	}
	if e.Distinct > 0 {
		fmt.Fprintf(&b, ", distinct: %d", e.Distinct)
	}
	b.WriteString("}")
	return b.String()
}

func rfc3339(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// yamlScalar writes s plain when that is safe in block and flow context
// and reads back as the same string; double-quoted otherwise.
func yamlScalar(s string) string {
	if yamlPlainSafe(s) {
		if s[0] == '/' {
			return s // a path never resolves to another type
		}
		if c := s[0] | 0x20; c >= 'a' && c <= 'z' {
			switch strings.ToLower(s) {
			case "null", "true", "false", "y", "yes", "n", "no", "on", "off":
				return yamlQuote(s) // YAML 1.1 readers take these for booleans or null
			default:
				return s
			}
		}
		var v any
		if err := yaml.Unmarshal([]byte("v: "+s), &v); err == nil {
			if m, ok := v.(map[string]any); ok && m["v"] == s {
				return s
			}
		}
	}
	return yamlQuote(s)
}

// yamlQuote quotes s: single-quoted when every rune is printable (a
// backslash stays a backslash, easier to review in a glob), else
// double-quoted with what YAML does not allow raw (control characters,
// DEL, C1 controls, non-printable runes) escaped. s must be valid UTF-8
// (Generalise drops other paths).
func yamlQuote(s string) string {
	if printable(s) == s {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == ' ' || r != utf8.RuneError && unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			b.WriteString(yamlEscapeRune(r))
		}
	}
	b.WriteByte('"')
	return b.String()
}

func yamlEscapeRune(r rune) string {
	switch {
	case r < 0x100:
		return fmt.Sprintf("\\x%02x", r)
	case r < 0x10000:
		return fmt.Sprintf("\\u%04x", r)
	}
	return fmt.Sprintf("\\U%08x", r)
}

// printable replaces the runes YAML comments and markdown cannot hold
// raw with their escapes.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == ' ' || r != utf8.RuneError && unicode.IsPrint(r) {
			b.WriteRune(r)
		} else {
			b.WriteString(yamlEscapeRune(r))
		}
	}
	return b.String()
}

func yamlPlainSafe(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '/', c == '_', c == '.':
		case i > 0 && strings.IndexByte("*+=~@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// BodyOptions describe the change a proposal's pull request makes besides
// the learned file.
type BodyOptions struct {
	// FromMode and NextMode: the ruleset's mode now and the mode this
	// change sets (defaults "learning" and "audit").
	FromMode, NextMode string
	// RulesetFile is the ruleset's file in the policy repository, e.g.
	// "rulesets/shop.yaml" (named in the summary when set).
	RulesetFile string
	// LearnedFile is the learned file's path in the repository
	// (LearnedPath(ruleset) when empty).
	LearnedFile string
	// Ruleset is the published ruleset: its responses say concretely what
	// will alert. Nil: the body says it in general terms.
	Ruleset *policy.RuntimeRuleset
	// Why says why the proposal is made now, e.g. "no new behaviour for
	// 24h" or "requested with palisade learn propose".
	Why string
	// MaxRows bounds each workload's table (DefaultBodyRows when 0 or
	// less); the learned file always holds every rule.
	MaxRows int
}

// DefaultBodyRows keeps a pull request body well under the forges' body
// limits (GitHub: 65536 characters) for a handful of workloads.
const DefaultBodyRows = 60

// Title is the pull request title of a proposal.
func Title(p *Proposal) string {
	return fmt.Sprintf("Palisade learning: %d learned %s for %s (%d %s)",
		p.RuleCount(), genPlural(p.RuleCount(), "rule", "rules"), p.Ruleset,
		len(p.Workloads), genPlural(len(p.Workloads), "workload", "workloads"))
}

// modeMeaning says what a ruleset does in a mode.
func modeMeaning(mode string) string {
	switch mode {
	case "learning":
		return "the sensor raises no alerts and blocks nothing for it; it only records behaviour"
	case "audit":
		return "the sensor alerts on behaviour outside the rules and blocks nothing (a `block` action is reported, not applied)"
	case "enforce":
		return "the sensor alerts and, where a response says `block`, blocks behaviour outside the rules"
	}
	return "mode " + mdCode(mode)
}

// RenderBody writes the pull request body: summary and mode change, a
// table per workload of the rules added with their evidence, what will
// now alert, and how to reject a rule. It holds only the proposal's and
// the ruleset's content: no credentials.
func RenderBody(p *Proposal, opts BodyOptions) string {
	if opts.NextMode == "" {
		opts.NextMode = "audit"
	}
	if opts.FromMode == "" {
		opts.FromMode = "learning"
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = DefaultBodyRows
	}
	learned := learnedFileName(opts, p)
	var b strings.Builder
	nProc, nFile := 0, 0
	var ev Evidence
	for _, w := range p.Workloads {
		nProc += len(w.Process)
		nFile += len(w.File)
		for _, r := range w.Process {
			ev = bodyMerge(ev, r.Evidence.Evidence)
		}
		for _, r := range w.File {
			ev = bodyMerge(ev, r.Evidence.Evidence)
		}
	}

	b.WriteString("## Summary\n\n")
	fmt.Fprintf(&b, "Palisade learned the behaviour of ruleset %s", mdCode(p.Ruleset))
	if ev.Count > 0 {
		fmt.Fprintf(&b, " from %d observed events between %s and %s", ev.Count, rfc3339(ev.FirstSeen), rfc3339(ev.LastSeen))
	}
	b.WriteString(".")
	if opts.Why != "" {
		fmt.Fprintf(&b, " Proposed now because: %s.", mdText(opts.Why))
	}
	b.WriteString(" This pull request:\n\n")
	fmt.Fprintf(&b, "1. adds %s: %d process and %d file %s for %d %s, each with its evidence;\n",
		mdCode(learned), nProc, nFile, genPlural(nProc+nFile, "rule", "rules"), len(p.Workloads), genPlural(len(p.Workloads), "workload", "workloads"))
	where := ""
	if opts.RulesetFile != "" {
		where = " in " + mdCode(opts.RulesetFile)
	}
	fmt.Fprintf(&b, "2. changes the ruleset's `spec.mode`%s from %s to %s.\n\n", where, mdCode(opts.FromMode), mdCode(opts.NextMode))
	fmt.Fprintf(&b, "In %s, %s.", mdCode(opts.NextMode), modeMeaning(opts.NextMode))
	if opts.NextMode != "enforce" {
		b.WriteString(" **Enforcement begins only after a second, human change** that sets `mode: enforce`; Palisade never proposes it.")
	}
	b.WriteString(" Each learned rule applies only to its own workload's container (namespace, workload and container name): it widens nothing for any other workload.\n\n")

	if warn := bodyWarnings(p); len(warn) > 0 {
		b.WriteString("### Review these first\n\n")
		for _, w := range warn {
			fmt.Fprintf(&b, "- %s\n", w)
		}
		b.WriteString("\n")
	}

	b.WriteString("## Rules added\n\n")
	if len(p.Workloads) == 0 {
		b.WriteString("No behaviour to allow was observed: the file lists no workloads.\n\n")
	}
	for _, w := range p.Workloads {
		fmt.Fprintf(&b, "### %s in %s, container %s\n\n", mdCode(w.ID.Workload), mdCode(w.ID.Namespace), mdCode(w.ID.Container))
		if w.ID.Image != "" {
			fmt.Fprintf(&b, "Image %s", mdCode(w.ID.Image))
			if w.ID.Digest != "" {
				fmt.Fprintf(&b, " (%s)", mdCode(w.ID.Digest))
			}
			b.WriteString(".\n\n")
		}
		b.WriteString("| Section | Executable or path | Operations | Count | Paths | First seen | Last seen | Sample pods | Why |\n")
		b.WriteString("|---|---|---|---:|---:|---|---|---|---|\n")
		rows := 0
		total := len(w.Process) + len(w.File)
		for _, r := range w.Process {
			if rows == opts.MaxRows {
				break
			}
			rows++
			ops := "run, interactive or not"
			if r.Interactive != nil && !*r.Interactive {
				ops = "run, not interactive"
			}
			bodyRow(&b, "process", r.Executable, ops, r.Evidence, r.Reason)
		}
		for _, r := range w.File {
			if rows == opts.MaxRows {
				break
			}
			rows++
			bodyRow(&b, "file", r.Path, strings.Join(r.Operation, ", "), r.Evidence, r.Reason)
		}
		if rows < total {
			fmt.Fprintf(&b, "\n%d more %s of this workload are in %s.\n", total-rows, genPlural(total-rows, "rule", "rules"), mdCode(learned))
		}
		b.WriteString("\n")
	}

	b.WriteString("## How the rules were generalised\n\n")
	b.WriteString("- Executables are exact: a process rule names the path that ran, never a pattern.\n")
	b.WriteString("- In file paths, variable parts of a name (numbers, hex and hash-like names, UUIDs, the workload's pod names, temp names) became `*`, which never matches across a `/`.\n")
	if p.DirThreshold > 0 {
		fmt.Fprintf(&b, "- A directory with more than %d distinct children became `dir/**` (everything below it).\n", p.DirThreshold)
	}
	if len(p.Roots) > 0 {
		roots := make([]string, len(p.Roots))
		for i, r := range p.Roots {
			roots[i] = mdCode(r)
		}
		fmt.Fprintf(&b, "- Never at or above %s: their children stay listed one by one.\n", strings.Join(roots, ", "))
	}
	b.WriteString("- Each rule's reason is the comment above it in the file and the last column above.\n\n")

	b.WriteString("## What will now alert\n\n")
	bodyAlerts(&b, p, opts)

	b.WriteString("## How to reject a rule\n\n")
	fmt.Fprintf(&b, "- **One rule:** delete its entry in %s in this pull request (the `- executable:` or `- operation:` item with the comment above it and its evidence), then merge. What it allowed then alerts like any behaviour outside the rules.\n", mdCode(learned))
	b.WriteString("- **All of it:** close this pull request without merging. Palisade remembers a closed proposal and does not reopen a pull request with the same content; the ruleset stays in " + mdCode(opts.FromMode) + ".\n")
	b.WriteString("- **Later:** a learned rule is a policy like any other: delete it in a later pull request.\n\n")
	b.WriteString("If Palisade proposes again before this is merged, it updates this pull request in place (its branch is force-pushed): an edit pushed to the branch is replaced, so review the update, or merge first and delete rules in a follow-up change.\n")
	return b.String()
}

// learnedFileName is the learned file's path in the repository.
func learnedFileName(opts BodyOptions, p *Proposal) string {
	if opts.LearnedFile != "" {
		return opts.LearnedFile
	}
	return LearnedPath(p.Ruleset)
}

func bodyMerge(a, e Evidence) Evidence {
	var r RuleEvidence
	r.Evidence = a
	genMerge(&r, e)
	return r.Evidence
}

func bodyRow(b *strings.Builder, section, rule, ops string, e RuleEvidence, why string) {
	pods := make([]string, len(e.Pods))
	for i, p := range e.Pods {
		pods[i] = mdCode(p)
	}
	paths := ""
	if e.Distinct > 0 {
		paths = fmt.Sprint(e.Distinct)
	}
	fmt.Fprintf(b, "| %s | %s | %s | %d | %s | %s | %s | %s | %s |\n",
		section, mdCode(rule), mdText(ops), e.Count, paths, rfc3339(e.FirstSeen), rfc3339(e.LastSeen), strings.Join(pods, " "), mdText(why))
}

// bodyWarnings lists the rules a reviewer should look at first: those
// that allow writing executables or running one in an interactive
// session, and executables run from temp directories.
func bodyWarnings(p *Proposal) []string {
	var out []string
	for _, w := range p.Workloads {
		for _, r := range w.Process {
			if r.Interactive == nil {
				out = append(out, fmt.Sprintf("%s: %s was run in an interactive session (a shell someone opened?): the rule allows it interactive or not.", mdCode(w.ID.Workload), mdCode(r.Executable)))
			}
			for _, t := range DefaultTempDirs {
				if strings.HasPrefix(r.Executable, t+"/") {
					out = append(out, fmt.Sprintf("%s: %s runs from a temp directory.", mdCode(w.ID.Workload), mdCode(r.Executable)))
				}
			}
		}
		for _, r := range w.File {
			for _, op := range r.Operation {
				if op == "createExecutable" || op == "modifyExecutable" {
					out = append(out, fmt.Sprintf("%s: %s allows writing executables (%s).", mdCode(w.ID.Workload), mdCode(r.Path), mdText(strings.Join(r.Operation, ", "))))
					break
				}
			}
		}
	}
	return out
}

// bodyAlerts says per section which responses will alert, on what, now
// that the learned rules are excluded from them.
func bodyAlerts(b *strings.Builder, p *Proposal, opts BodyOptions) {
	verb := "alert"
	if opts.NextMode == "enforce" {
		verb = "alert, and be blocked where the response says `block`"
	}
	if opts.Ruleset == nil {
		fmt.Fprintf(b, "Every event that a response of %s matches and that no learned rule of its workload covers will %s. For the workloads above: any executable not listed, and any file operation on a path not listed. Workloads not listed get no learned rules: everything the responses match in them alerts.\n\n", mdCode(p.Ruleset), verb)
		return
	}
	for _, sec := range []struct {
		name string
		s    *policy.D4CSection
	}{{"process", opts.Ruleset.Spec.Process}, {"file", opts.Ruleset.Spec.File}} {
		fmt.Fprintf(b, "### %s\n\n", sec.name)
		if sec.s == nil || len(sec.s.Responses) == 0 {
			fmt.Fprintf(b, "The ruleset has no %s responses: nothing in this section alerts, and the learned %s rules change nothing until a response is added.\n\n", sec.name, sec.name)
			continue
		}
		selectors := map[string]policy.Selector{}
		for _, s := range sec.s.Selectors {
			selectors[s.Name] = s
		}
		fmt.Fprintf(b, "These responses now %s on every event they match unless it is excluded or allowed by a learned %s rule of its own workload:\n\n", verb, sec.name)
		for i, r := range sec.s.Responses {
			fmt.Fprintf(b, "%d. actions %s, on events matching", i+1, mdText(strings.Join(r.Actions, ", ")))
			for j, m := range r.Match {
				if j > 0 {
					b.WriteString(" or")
				}
				fmt.Fprintf(b, " %s (%s)", mdCode(m), mdText(selectorText(selectors[m])))
			}
			// Selectors compiled from a learned file already merged are
			// this file's predecessors: named as such, not listed.
			var own []string
			for _, m := range r.Exclude {
				if !strings.HasPrefix(m, policy.LearnedPrefix) {
					own = append(own, m)
				}
			}
			if len(own) > 0 {
				b.WriteString(", except")
				for j, m := range own {
					if j > 0 {
						b.WriteString(" or")
					}
					fmt.Fprintf(b, " %s (%s)", mdCode(m), mdText(selectorText(selectors[m])))
				}
			}
			if len(own) < len(r.Exclude) {
				fmt.Fprintf(b, " (the rules of the current %s, which this change replaces, are excluded today)", mdCode(learnedFileName(opts, p)))
			}
			b.WriteString(".\n")
		}
		b.WriteString("\nConcretely, among the events these responses match:\n\n")
		for _, w := range p.Workloads {
			who := fmt.Sprintf("%s in %s, container %s", mdCode(w.ID.Workload), mdCode(w.ID.Namespace), mdCode(w.ID.Container))
			if sec.name == "process" {
				exes := make([]string, 0, len(w.Process))
				for _, r := range w.Process {
					exes = append(exes, mdCode(r.Executable))
				}
				switch {
				case len(exes) == 0:
					fmt.Fprintf(b, "- %s: every process event (no executable was learned).\n", who)
				case len(exes) <= 8:
					fmt.Fprintf(b, "- %s: any executable other than %s; these too when run interactively unless their rule allows it.\n", who, strings.Join(exes, ", "))
				default:
					fmt.Fprintf(b, "- %s: any executable other than the %d learned ones; these too when run interactively unless their rule allows it.\n", who, len(exes))
				}
				continue
			}
			if len(w.File) == 0 {
				fmt.Fprintf(b, "- %s: every file event (no file rule was learned).\n", who)
			} else {
				fmt.Fprintf(b, "- %s: any file operation on a path outside its %d learned file %s, or an operation a rule does not list for its path.\n", who, len(w.File), genPlural(len(w.File), "rule", "rules"))
			}
		}
		b.WriteString("- every other workload: everything these responses match, as before (no learned rules).\n\n")
	}
}

// selectorText lists a selector's conditions ("operation: exec; kubernetesNamespace: shop").
func selectorText(s policy.Selector) string {
	if s.Name == "" {
		return "unknown selector"
	}
	v := reflect.ValueOf(s)
	t := v.Type()
	var parts []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "name" || name == "" || name == "-" || v.Field(i).IsZero() {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Pointer {
			fv = fv.Elem()
		}
		switch fv.Kind() {
		case reflect.Slice:
			vals := make([]string, fv.Len())
			for j := range vals {
				vals[j] = fmt.Sprint(fv.Index(j).Interface())
			}
			parts = append(parts, name+": "+strings.Join(vals, ", "))
		default:
			parts = append(parts, fmt.Sprintf("%s: %v", name, fv.Interface()))
		}
	}
	if len(parts) == 0 {
		return "any event"
	}
	return strings.Join(parts, "; ")
}

// mdCell makes text safe in a markdown table cell: no `|` column break,
// no line break.
func mdCell(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return strings.ReplaceAll(printable(s), "|", `\|`)
}

// mdText is mdCell with markdown's emphasis, code, link and HTML
// characters escaped, so that names and paths read as written.
func mdText(s string) string {
	var b strings.Builder
	for _, c := range mdCell(s) {
		if strings.ContainsRune("*_`<>[]", c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// mdCode writes s as a code span, safe in a table cell: `|` escaped (GFM
// tables split on it even in code spans), a span fence longer than any
// backtick run inside.
func mdCode(s string) string {
	s = mdCell(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if len(fence) > 1 || strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}
