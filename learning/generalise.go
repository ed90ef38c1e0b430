package learning

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultDirThreshold is the number of distinct children above which a
// directory becomes dir/**: enough that a handful of config files stay
// listed one by one, few enough that a cache of hashed names collapses.
const DefaultDirThreshold = 20

// DefaultQuietPeriod is how long a profile must go without new behaviour
// to be stable (NeuVector's Discover → Monitor promotion works the same
// way).
const DefaultQuietPeriod = 24 * time.Hour

// DefaultRoots are the directories never generalised at or above: their
// children stay specific (many files directly in /etc stay listed one by
// one, never /etc/* or /etc/**).
var DefaultRoots = []string{"/", "/bin", "/etc", "/lib", "/sbin", "/usr/bin", "/usr/lib", "/usr/sbin"}

// DefaultTempDirs are where random-looking names are taken for temp names.
var DefaultTempDirs = []string{"/dev/shm", "/tmp", "/var/tmp"}

// GeneraliseOptions configure Generalise. Zero values take the defaults.
type GeneraliseOptions struct {
	// DirThreshold: a directory with more distinct children becomes
	// dir/** (DefaultDirThreshold when 0 or less).
	DirThreshold int
	// Roots are never generalised at or above (DefaultRoots when nil);
	// "/" is always added.
	Roots []string
	// TempDirs are where random-looking names count as temp names
	// (DefaultTempDirs when nil).
	TempDirs []string
	// Sections are the sections the ruleset has (KindProcess, KindFile;
	// nil: both). Behaviour of a section the ruleset lacks is left out:
	// the loader rejects learned rules that would change nothing.
	Sections []string
}

// Proposal is the learned rules of one ruleset, ready to render.
type Proposal struct {
	Ruleset string
	// Workloads are sorted by namespace, workload, container.
	Workloads []WorkloadRules
	// DirThreshold and Roots are the settings the rules were generalised
	// with (Roots sorted, "/" included), for the pull request body.
	DirThreshold int
	Roots        []string
}

// WorkloadRules are the rules learned for one workload's container.
type WorkloadRules struct {
	ID WorkloadID
	// Process rules sorted by executable; File rules sorted by path.
	Process []ProcessRule
	File    []FileRule
}

// ProcessRule allows one exact executable.
type ProcessRule struct {
	Executable string
	// Interactive is false when the executable was only seen outside
	// interactive sessions; nil when it was seen in one (allowed either
	// way).
	Interactive *bool
	Evidence    RuleEvidence
	Reason      string
}

// FileRule allows operations on a path pattern.
type FileRule struct {
	// Operation is sorted in the D4C order (createExecutable,
	// modifyExecutable, createFile, modifyFile, deleteFile).
	Operation []string
	Path      string
	Evidence  RuleEvidence
	Reason    string
}

// RuleEvidence is the merged evidence of the behaviours a rule covers:
// count summed, first seen the earliest, last seen the latest, a sorted
// sample of at most MaxSamplePods pods, and Distinct observed paths
// (file rules; 0 for process rules).
type RuleEvidence struct {
	Evidence
	Distinct int
}

// RuleCount is the number of rules of the proposal.
func (p *Proposal) RuleCount() int {
	n := 0
	for _, w := range p.Workloads {
		n += len(w.Process) + len(w.File)
	}
	return n
}

// Stable reports whether the profile has behaviour and nothing new arrived
// for the quiet period (DefaultQuietPeriod when 0 or less).
func Stable(p *Profile, now time.Time, quiet time.Duration) bool {
	if p == nil || len(p.Workloads) == 0 || p.LastNew.IsZero() {
		return false
	}
	if quiet <= 0 {
		quiet = DefaultQuietPeriod
	}
	return !now.Before(p.LastNew.Add(quiet))
}

var (
	genFileOps    = []string{"createExecutable", "modifyExecutable", "createFile", "modifyFile", "deleteFile"}
	genProcessOps = []string{"exec", "fork"}
)

// Generalise turns a profile into proposed rules, each with its merged
// evidence and a reason. The result depends only on the profile's content
// (not on map or slice order): the same profile always renders
// byte-identical files.
//
// Decisions (the issue left them open):
//   - Each workload (namespace, workload, container) gets its own rules;
//     nothing observed in one workload is ever merged into, or widens,
//     another's. A workload with no usable behaviour is left out.
//   - Executables are kept exact: a process rule names the exact path
//     that ran, never a wildcard, for exec and fork alike. One rule per
//     executable; interactive is false when it was only ever seen outside
//     an interactive session, absent (allowed either way) otherwise.
//   - File paths are generalised segment by segment; a `*` never spans a
//     `/`. Variable parts of a segment become `*`: runs of digits
//     delimited by non-alphanumerics (x86_64 and x86-64 excepted), tokens
//     of 8 or more hex characters with a digit, UUIDs, the workload's pod
//     names (only their generated suffix when the pod name is
//     "<workload name>-<suffix>"; a suffix alone when 5 characters or
//     longer), temp names (tmp.XXXXXX, tmpXXXXXX with a random-looking
//     rest, *.tmp and *.temp, and inside the temp directories random
//     looking tokens and 4+ digit tails of letters like go-build123456).
//   - A directory with more than DirThreshold distinct children (counted
//     after the segment rules, so /proc/1/x and /proc/2/x are one child)
//     becomes dir/**, covering every path below it, with the union of
//     their operations.
//   - Roots and their ancestors are protected: no child of a protected
//     directory becomes a wildcard and no protected directory becomes
//     dir/**. "/" is always a root, so `/**`, `/*` and `*` alone are
//     never produced.
//   - Glob metacharacters in observed names (* ? [ ] { } \) are escaped
//     with a backslash, so an odd file name matches only itself.
//   - Operations outside the D4C sets (file: createExecutable,
//     modifyExecutable, createFile, modifyFile, deleteFile; process: exec,
//     fork), relative, empty or non-UTF-8 paths (YAML cannot hold them)
//     and behaviour never counted are dropped, as are sections not in
//     GeneraliseOptions.Sections: the loader would reject them.
func Generalise(p *Profile, opts GeneraliseOptions) *Proposal {
	g := newGeneraliser(opts)
	out := &Proposal{Ruleset: p.Ruleset, DirThreshold: g.threshold, Roots: g.roots}
	keys := make([]string, 0, len(p.Workloads))
	for k, w := range p.Workloads {
		if w != nil {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := p.Workloads[keys[i]].ID, p.Workloads[keys[j]].ID
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Workload != b.Workload {
			return a.Workload < b.Workload
		}
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		w := p.Workloads[k]
		var wr WorkloadRules
		wr.ID = w.ID
		if opts.Sections == nil || slices.Contains(opts.Sections, KindProcess) {
			wr.Process = genProcessRules(w)
		}
		if opts.Sections == nil || slices.Contains(opts.Sections, KindFile) {
			wr.File = g.fileRules(w)
		}
		if len(wr.Process)+len(wr.File) > 0 {
			out.Workloads = append(out.Workloads, wr)
		}
	}
	return out
}

// genMerge adds one behaviour's evidence to a rule's.
func genMerge(dst *RuleEvidence, e Evidence) {
	if dst.Count == 0 && dst.FirstSeen.IsZero() && dst.LastSeen.IsZero() {
		dst.FirstSeen, dst.LastSeen = e.FirstSeen, e.LastSeen
	} else {
		if e.FirstSeen.Before(dst.FirstSeen) {
			dst.FirstSeen = e.FirstSeen
		}
		if e.LastSeen.After(dst.LastSeen) {
			dst.LastSeen = e.LastSeen
		}
	}
	if dst.LastSeen.Before(dst.FirstSeen) {
		dst.LastSeen = dst.FirstSeen // inconsistent input: keep the file valid
	}
	dst.Count += e.Count
	for _, pod := range e.Pods {
		if !slices.Contains(dst.Pods, pod) {
			dst.Pods = append(dst.Pods, pod)
		}
	}
	sort.Strings(dst.Pods)
	if len(dst.Pods) > MaxSamplePods {
		dst.Pods = dst.Pods[:MaxSamplePods]
	}
}

func genProcessRules(w *WorkloadProfile) []ProcessRule {
	type acc struct {
		ev          RuleEvidence
		interactive bool
		ops         map[string]bool
	}
	by := map[string]*acc{}
	for _, b := range w.Behaviour {
		if b.Key.Kind != KindProcess || !slices.Contains(genProcessOps, b.Key.Operation) || !genUsablePath(b.Key.Path) || b.Evidence.Count == 0 {
			continue
		}
		a := by[b.Key.Path]
		if a == nil {
			a = &acc{ops: map[string]bool{}}
			by[b.Key.Path] = a
		}
		genMerge(&a.ev, b.Evidence)
		a.interactive = a.interactive || b.Key.Interactive
		a.ops[b.Key.Operation] = true
	}
	var out []ProcessRule
	for exe, a := range by {
		r := ProcessRule{Executable: exe, Evidence: a.ev}
		if a.interactive {
			r.Reason = "exact executable, also seen in an interactive session: allowed interactive or not"
		} else {
			f := false
			r.Interactive = &f
			r.Reason = "exact executable, only seen outside interactive sessions"
		}
		if !a.ops["exec"] {
			r.Reason += " (seen forking only)"
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Executable < out[j].Executable })
	return out
}

// genUsablePath: absolute and valid UTF-8 (YAML cannot hold other bytes,
// so a rule could not name the path).
func genUsablePath(p string) bool {
	return strings.HasPrefix(p, "/") && utf8.ValidString(p)
}

// generaliser holds the options of one Generalise call.
type generaliser struct {
	threshold int
	roots     []string        // sorted, "/" included
	protected map[string]bool // roots and their ancestors
	tempDirs  []string
}

func newGeneraliser(opts GeneraliseOptions) *generaliser {
	g := &generaliser{threshold: opts.DirThreshold, protected: map[string]bool{"/": true}, tempDirs: opts.TempDirs}
	if g.threshold <= 0 {
		g.threshold = DefaultDirThreshold
	}
	roots := opts.Roots
	if roots == nil {
		roots = DefaultRoots
	}
	g.roots = []string{"/"}
	for _, r := range roots {
		if r := path.Clean("/" + r); !slices.Contains(g.roots, r) {
			g.roots = append(g.roots, r)
		}
		for d := path.Clean("/" + r); ; d = path.Dir(d) {
			g.protected[d] = true
			if d == "/" {
				break
			}
		}
	}
	sort.Strings(g.roots)
	if g.tempDirs == nil {
		g.tempDirs = DefaultTempDirs
	}
	return g
}

// genGroup is the behaviours that generalised to one pattern.
type genGroup struct {
	segs  []string // pattern segments
	raw   map[string]bool
	ops   map[string]bool
	kinds map[string]bool
	ev    RuleEvidence
	// collapsed: the directory that became dir/** and its child count.
	collapsed string
	children  int
}

func (g *generaliser) fileRules(w *WorkloadProfile) []FileRule {
	pods := genPodPatterns(w)
	groups := map[string]*genGroup{}
	for _, b := range w.Behaviour {
		if b.Key.Kind != KindFile || !slices.Contains(genFileOps, b.Key.Operation) || !genUsablePath(b.Key.Path) || b.Evidence.Count == 0 {
			continue
		}
		raw := path.Clean(b.Key.Path)
		segs, kinds := g.segments(raw, pods)
		key := "/" + strings.Join(segs, "/")
		gr := groups[key]
		if gr == nil {
			gr = &genGroup{segs: segs, raw: map[string]bool{}, ops: map[string]bool{}, kinds: map[string]bool{}}
			groups[key] = gr
		}
		gr.raw[raw] = true
		gr.ops[b.Key.Operation] = true
		for k := range kinds {
			gr.kinds[k] = true
		}
		genMerge(&gr.ev, b.Evidence)
	}
	groups, children := g.collapse(groups)
	out := make([]FileRule, 0, len(groups))
	for key, gr := range groups {
		r := FileRule{Path: key, Evidence: gr.ev}
		r.Evidence.Distinct = len(gr.raw)
		for _, op := range genFileOps {
			if gr.ops[op] {
				r.Operation = append(r.Operation, op)
			}
		}
		r.Reason = gr.reason(g.threshold)
		if parent := "/" + strings.Join(gr.segs[:max(len(gr.segs)-1, 0)], "/"); gr.collapsed == "" && len(gr.segs) > 0 &&
			g.protected[parent] && len(children[parent]) > g.threshold {
			r.Reason += fmt.Sprintf(" (%s has %d distinct children but is a root or above one: kept one by one)", parent, len(children[parent]))
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func (gr *genGroup) reason(threshold int) string {
	n := len(gr.raw)
	if gr.collapsed != "" {
		return fmt.Sprintf("%s has %d distinct children (more than %d): one rule for everything below it, covering %d observed %s",
			gr.collapsed, gr.children, threshold, n, genPlural(n, "path", "paths"))
	}
	if len(gr.kinds) == 0 {
		if n == 1 {
			return "exact path"
		}
		return fmt.Sprintf("%d observed paths", n)
	}
	kinds := make([]string, 0, len(gr.kinds))
	for k := range gr.kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	what := strings.Join(kinds, " and ")
	if n == 1 {
		return fmt.Sprintf("1 path with a variable %s part made *", what)
	}
	return fmt.Sprintf("%d paths differ only in %s parts", n, what)
}

func genPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// collapse turns every unprotected directory with more than threshold
// distinct children into dir/**, shallowest first.
func (g *generaliser) collapse(groups map[string]*genGroup) (map[string]*genGroup, map[string]map[string]bool) {
	children := map[string]map[string]bool{}
	for _, gr := range groups {
		for i := range gr.segs {
			dir := "/" + strings.Join(gr.segs[:i], "/")
			if children[dir] == nil {
				children[dir] = map[string]bool{}
			}
			children[dir][gr.segs[i]] = true
		}
	}
	dirs := make([]string, 0, len(children))
	for d, c := range children {
		if len(c) > g.threshold && !g.protected[d] {
			dirs = append(dirs, d)
		}
	}
	sort.Slice(dirs, func(i, j int) bool {
		di, dj := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/")
		if di != dj {
			return di < dj
		}
		return dirs[i] < dirs[j]
	})
	var chosen []string
	for _, d := range dirs {
		under := false
		for _, c := range chosen {
			if strings.HasPrefix(d, c+"/") {
				under = true
				break
			}
		}
		if !under {
			chosen = append(chosen, d)
		}
	}
	if len(chosen) == 0 {
		return groups, children
	}
	out := map[string]*genGroup{}
	for key, gr := range groups {
		dst := ""
		for _, c := range chosen {
			if strings.HasPrefix(key, c+"/") {
				dst = c
				break
			}
		}
		if dst == "" {
			out[key] = gr
			continue
		}
		nk := dst + "/**"
		m := out[nk]
		if m == nil {
			m = &genGroup{raw: map[string]bool{}, ops: map[string]bool{}, kinds: map[string]bool{}, collapsed: dst, children: len(children[dst])}
			out[nk] = m
		}
		for r := range gr.raw {
			m.raw[r] = true
		}
		for op := range gr.ops {
			m.ops[op] = true
		}
		genMerge(&m.ev, gr.ev.Evidence)
	}
	return out, children
}

// genPod is a pod name of the workload and the part of it that the
// workload's controller generated.
type genPod struct {
	name, suffix string
}

// genPodPatterns lists the workload's sample pod names, longest first.
// A bare pod's name is its identity, not a generated name: none.
func genPodPatterns(w *WorkloadProfile) []genPod {
	kind, name, _ := strings.Cut(w.ID.Workload, "/")
	if kind == "Pod" || kind == "" {
		return nil
	}
	seen := map[string]bool{}
	var out []genPod
	for _, b := range w.Behaviour {
		for _, pod := range b.Evidence.Pods {
			if pod == "" || seen[pod] {
				continue
			}
			seen[pod] = true
			gp := genPod{name: pod}
			if rest, ok := strings.CutPrefix(pod, name+"-"); ok && name != "" && rest != "" {
				gp.suffix = rest
			}
			out = append(out, gp)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].name) != len(out[j].name) {
			return len(out[i].name) > len(out[j].name)
		}
		return out[i].name < out[j].name
	})
	return out
}

// segments generalises a clean absolute path into pattern segments and
// the kinds of variable parts found.
func (g *generaliser) segments(p string, pods []genPod) ([]string, map[string]bool) {
	if p == "/" {
		return nil, nil
	}
	raw := strings.Split(p[1:], "/")
	out := make([]string, len(raw))
	kinds := map[string]bool{}
	for i, seg := range raw {
		parent := "/" + strings.Join(raw[:i], "/")
		if g.protected[parent] {
			out[i] = genEscape(seg)
			continue
		}
		out[i] = genSegment(seg, pods, g.inTemp(parent), kinds)
	}
	return out, kinds
}

func (g *generaliser) inTemp(dir string) bool {
	for _, t := range g.tempDirs {
		t = path.Clean("/" + t)
		if dir == t || strings.HasPrefix(dir, t+"/") {
			return true
		}
	}
	return false
}

var (
	genUUID      = regexp.MustCompile(`(?i)[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}`)
	genTmpPrefix = regexp.MustCompile(`(?i)^(tmp|temp)([._-]?)([A-Za-z0-9_]{5,})$`)
	genTmpSuffix = regexp.MustCompile(`(?i)^(.+)(\.tmp|\.temp)$`)
	genLetterNum = regexp.MustCompile(`^[A-Za-z]+([0-9]{4,})$`)
	// genFixed are names with digits that are not variable.
	genFixed = []string{"x86_64", "x86-64"}
)

// genSegment generalises one path segment: variable bytes are marked and
// each run of marked bytes becomes one `*`; the rest is escaped.
func genSegment(seg string, pods []genPod, inTemp bool, kinds map[string]bool) string {
	mark := make([]bool, len(seg))
	set := func(from, to int, kind string) {
		for i := from; i < to; i++ {
			mark[i] = true
		}
		kinds[kind] = true
	}
	fixed := make([]bool, len(seg))
	for _, f := range genFixed {
		for off := 0; ; {
			i := strings.Index(seg[off:], f)
			if i < 0 {
				break
			}
			for j := off + i; j < off+i+len(f); j++ {
				fixed[j] = true
			}
			off += i + len(f)
		}
	}
	// Pod names: the generated suffix of a full pod name, else the whole
	// name; a long enough suffix alone.
	for _, pod := range pods {
		for off := 0; ; {
			i := strings.Index(seg[off:], pod.name)
			if i < 0 {
				break
			}
			start := off + i
			if pod.suffix != "" {
				set(start+len(pod.name)-len(pod.suffix), start+len(pod.name), "pod name")
			} else {
				set(start, start+len(pod.name), "pod name")
			}
			off = start + len(pod.name)
		}
		if len(pod.suffix) >= 5 {
			for off := 0; ; {
				i := strings.Index(seg[off:], pod.suffix)
				if i < 0 {
					break
				}
				set(off+i, off+i+len(pod.suffix), "pod name")
				off += i + len(pod.suffix)
			}
		}
	}
	for _, m := range genUUID.FindAllStringIndex(seg, -1) {
		set(m[0], m[1], "uuid")
	}
	// Temp names.
	if m := genTmpPrefix.FindStringSubmatchIndex(seg); m != nil {
		rest := seg[m[6]:m[7]]
		if seg[m[4]:m[5]] == "." || genRandomLooking(rest) {
			set(m[6], m[7], "temp name")
		}
	}
	if m := genTmpSuffix.FindStringSubmatchIndex(seg); m != nil {
		set(m[2], m[3], "temp name")
	}
	// Alphanumeric tokens: numbers, hex, and random names in temp dirs.
	for i := 0; i < len(seg); {
		if !genAlnum(seg[i]) {
			i++
			continue
		}
		j := i
		for j < len(seg) && genAlnum(seg[j]) {
			j++
		}
		tok := seg[i:j]
		switch {
		case slices.Contains(fixed[i:j], true), slices.Contains(mark[i:j], true):
		case genAllDigits(tok):
			set(i, j, "number")
		case len(tok) >= 8 && genHex(tok):
			set(i, j, "hex")
		case inTemp && genLetterNum.MatchString(tok):
			set(j-len(genLetterNum.FindStringSubmatch(tok)[1]), j, "temp name")
		case inTemp && len(tok) >= 6 && genRandomLooking(tok):
			set(i, j, "temp name")
		}
		i = j
	}
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		if mark[i] {
			if i == 0 || !mark[i-1] {
				b.WriteByte('*')
			}
			continue
		}
		b.WriteString(genEscape(seg[i : i+1]))
	}
	return b.String()
}

func genAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func genAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// genHex: all hex digits with at least one decimal digit (so that words
// like "deadbeef" or "facade" stay).
func genHex(s string) bool {
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return digit
}

// genRandomLooking: letters mixed with digits, or upper and lower case
// letters after the first character (not a capitalised word).
func genRandomLooking(s string) bool {
	var digit, letter, upper, lower bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z':
			letter, lower = true, true
		case c >= 'A' && c <= 'Z':
			letter = true
			if i > 0 {
				upper = true
			}
		}
	}
	return digit && letter || upper && lower
}

// genEscape escapes glob metacharacters so that a name matches itself.
func genEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]{}\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[]{}\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
