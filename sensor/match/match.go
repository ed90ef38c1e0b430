package match

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gobwas/glob"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// Matcher decides on events as data.palisade.runtime.decision does, for
// the policy of one bundle.
type Matcher struct {
	systemNamespace string
	clusterWide     []*ruleset
	// byNamespace holds the rulesets of the namespaces a namespaced
	// definition takes.
	byNamespace map[string][]*ruleset
}

// ruleset is a compiled RuntimeRuleset; sections are indexed by kind.
type ruleset struct {
	name    string
	mode    string
	observe bool
	file    *section
	process *section
}

// section is the ruleset's section for events of a kind (EventFile or
// EventProcess), nil when it has none.
func (rs *ruleset) section(kind string) *section {
	if kind == bundles.EventProcess {
		return rs.process
	}
	return rs.file
}

type section struct {
	selectors []selector
	responses []response
}

type response struct {
	index   int
	match   []ref // unique names, sorted: a match lists them in this order
	exclude []ref
	actions uint8 // after the ruleset's mode
}

// ref is a selector name and the indices of the selectors that bear it
// (none when no selector does, more than one only in invalid data).
type ref struct {
	name string
	idx  []int
	// alone is []string{name}: a match whose only hit is this selector
	// shares it instead of allocating one (the usual case). Decisions
	// are read, never modified.
	alone []string
}

type selector struct {
	operation, processName                  []string
	imageFullName, imageName, imageTag      []string
	clusterID, clusterName, namespace       []string
	containerName                           []string
	targetFilePath, processExecutable       []*glob.Pattern
	podName, workload                       []wildcard
	labels                                  []label
	hasTargetFilePath, hasProcessExecutable bool
	hasPodName, hasWorkload, hasLabels      bool
	interactive                             *bool
	ignoreVolumeMounts, ignoreVolumeFiles   bool
}

// wildcard is an exact value, or a prefix when the pattern ends with `*`.
type wildcard struct {
	value  string
	prefix bool
}

func (w wildcard) match(s string) bool {
	if w.prefix {
		return strings.HasPrefix(s, w.value)
	}
	return s == w.value
}

func newWildcard(p string) wildcard {
	if v, ok := strings.CutSuffix(p, "*"); ok {
		return wildcard{value: v, prefix: true}
	}
	return wildcard{value: p}
}

type label struct {
	key   string
	value wildcard
}

// The runtime actions (policy validates them): the policy package names
// only the deployment and continuous ones.
const (
	actionAlert = "alert"
	actionBlock = "block"
	actionLog   = "log"
)

// Actions as bits, in their sorted order.
const (
	actAlert uint8 = 1 << iota
	actBlock
	actLog
)

// actionLists are the sorted action lists of every set of bits, shared by
// every decision (read only): nil for none, as Rego's empty set reads.
var actionLists = func() [8][]string {
	var out [8][]string
	for bits := 1; bits < 8; bits++ {
		for i, a := range []string{actionAlert, actionBlock, actionLog} {
			if bits&(1<<i) != 0 {
				out[bits] = append(out[bits], a)
			}
		}
	}
	return out
}()

// effect is what each action becomes in each mode (runtime.rego's
// _effect); a mode without an entry drops every action.
var effect = map[string]map[string]uint8{
	policy.ModeEnforce:  {actionLog: actLog, actionAlert: actAlert, actionBlock: actBlock},
	policy.ModeAudit:    {actionLog: actLog, actionAlert: actAlert, actionBlock: actAlert},
	policy.ModeLearning: {actionLog: actLog},
}

// FromBundle compiles the policy data of a bundle (data.palisade.policy,
// as bundles.Build writes it).
func FromBundle(b *bundle.Bundle) (*Matcher, error) {
	root, _ := b.Data[bundles.Root].(map[string]any)
	raw, err := json.Marshal(root["policy"])
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", b.Manifest.Revision, err)
	}
	var d bundles.ClusterData
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("read bundle %s: data.%s.policy: %w", b.Manifest.Revision, bundles.Root, err)
	}
	return Compile(&d)
}

// Compile compiles the rulesets of a cluster's policy. It fails only on a
// path pattern that does not compile, which validation rejects.
func Compile(d *bundles.ClusterData) (*Matcher, error) {
	c := compiler{data: d, done: map[string]*ruleset{}}
	m := &Matcher{systemNamespace: d.SystemNamespace, byNamespace: map[string][]*ruleset{}}
	var err error
	if m.clusterWide, err = c.definition(d.ClusterWide); err != nil {
		return nil, err
	}
	// As lib/decision.definition: through namespaceIndex when the data has
	// one (an index past the list falls back to cluster-wide), else the
	// first namespaced definition that lists the namespace.
	if d.NamespaceIndex != nil {
		for ns, i := range d.NamespaceIndex {
			if i < 0 || i >= len(d.Namespaced) {
				continue
			}
			if m.byNamespace[ns], err = c.definition(d.Namespaced[i].Definition); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	for _, nd := range d.Namespaced {
		for _, ns := range nd.Namespaces {
			if _, ok := m.byNamespace[ns]; ok {
				continue
			}
			if m.byNamespace[ns], err = c.definition(nd.Definition); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

type compiler struct {
	data *bundles.ClusterData
	done map[string]*ruleset
}

// definition returns the rulesets a definition names that exist, sorted
// by name without duplicates (Rego iterates a set of names).
func (c *compiler) definition(def policy.Definition) ([]*ruleset, error) {
	names := slices.Clone(def.Runtime.Rulesets)
	slices.Sort(names)
	names = slices.Compact(names)
	var out []*ruleset
	for _, name := range names {
		spec, ok := c.data.Rulesets[name]
		if !ok {
			continue
		}
		rs := c.done[name]
		if rs == nil {
			var err error
			if rs, err = c.ruleset(name, spec); err != nil {
				return nil, err
			}
			c.done[name] = rs
		}
		out = append(out, rs)
	}
	return out, nil
}

func (c *compiler) ruleset(name string, spec policy.RuntimeRulesetSpec) (*ruleset, error) {
	mode := spec.Mode
	if mode == "" {
		mode = policy.ModeEnforce
	}
	// A global audit never blocks, as for admission.
	if mode == policy.ModeEnforce && c.data.Mode == policy.ModeAudit {
		mode = policy.ModeAudit
	}
	rs := &ruleset{name: name, mode: mode, observe: mode == policy.ModeLearning}
	var err error
	for _, s := range []struct {
		src *policy.D4CSection
		dst **section
	}{{spec.File, &rs.file}, {spec.Process, &rs.process}} {
		if s.src == nil {
			continue
		}
		if *s.dst, err = compileSection(s.src, mode); err != nil {
			return nil, fmt.Errorf("ruleset %s: %w", name, err)
		}
	}
	return rs, nil
}

func compileSection(s *policy.D4CSection, mode string) (*section, error) {
	out := &section{}
	byName := map[string][]int{}
	for i, sel := range s.Selectors {
		cs, err := compileSelector(sel)
		if err != nil {
			return nil, fmt.Errorf("selector %s: %w", sel.Name, err)
		}
		out.selectors = append(out.selectors, cs)
		byName[sel.Name] = append(byName[sel.Name], i)
	}
	refs := func(names []string) []ref {
		names = slices.Clone(names)
		slices.Sort(names)
		names = slices.Compact(names)
		rs := make([]ref, 0, len(names))
		for _, n := range names {
			rs = append(rs, ref{name: n, idx: byName[n], alone: []string{n}[:1:1]})
		}
		return rs
	}
	for i, r := range s.Responses {
		cr := response{index: i, match: refs(r.Match), exclude: refs(r.Exclude)}
		for _, a := range r.Actions {
			cr.actions |= effect[mode][a]
		}
		out.responses = append(out.responses, cr)
	}
	return out, nil
}

func compileSelector(s policy.Selector) (selector, error) {
	out := selector{
		operation: s.Operation, processName: s.ProcessName,
		imageFullName: s.ContainerImageFullName, imageName: s.ContainerImageName, imageTag: s.ContainerImageTag,
		clusterID: s.KubernetesClusterID, clusterName: s.KubernetesClusterName, namespace: s.KubernetesNamespace,
		containerName:     s.ContainerName,
		hasTargetFilePath: len(s.TargetFilePath) > 0, hasProcessExecutable: len(s.ProcessExecutable) > 0,
		hasPodName: len(s.KubernetesPodName) > 0, hasWorkload: len(s.KubernetesWorkload) > 0,
		hasLabels:          len(s.KubernetesPodLabel) > 0,
		interactive:        s.SessionLeaderInteractive,
		ignoreVolumeMounts: s.IgnoreVolumeMounts, ignoreVolumeFiles: s.IgnoreVolumeFiles,
	}
	var err error
	if out.targetFilePath, err = globs(s.TargetFilePath); err != nil {
		return out, err
	}
	if out.processExecutable, err = globs(s.ProcessExecutable); err != nil {
		return out, err
	}
	for _, p := range s.KubernetesPodName {
		out.podName = append(out.podName, newWildcard(p))
	}
	for _, p := range s.KubernetesWorkload {
		out.workload = append(out.workload, newWildcard(p))
	}
	// A label without a colon matches nothing, but still makes the
	// condition present (hasLabels).
	for _, l := range s.KubernetesPodLabel {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out.labels = append(out.labels, label{key: k, value: newWildcard(v)})
		}
	}
	return out, nil
}

// globs compiles path patterns as glob.match(p, ["/"], path) does.
func globs(patterns []string) ([]*glob.Pattern, error) {
	var out []*glob.Pattern
	for _, p := range patterns {
		g, err := glob.Compile(p, '/')
		if err != nil {
			return nil, fmt.Errorf("path pattern %q: %w", p, err)
		}
		out = append(out, g)
	}
	return out, nil
}

// Match decides on an event in a container; a nil container is a host
// process, which no rule matches. It allocates only for matches.
func (m *Matcher) Match(ev *bundles.RuntimeEvent, c *bundles.Container) bundles.RuntimeDecision {
	var d bundles.RuntimeDecision
	m.MatchInto(&d, ev, c)
	return d
}

// MatchInto is Match writing the decision into d and reusing the array
// of d.Matches: a caller that decides event after event (the sensor's
// agent) keeps a decision and allocates nothing for matches once that
// array holds the most matches an event got. What d held is overwritten,
// so a caller that keeps a decision past its next call copies it; when
// nothing matches, d.Matches is empty but may not be nil.
func (m *Matcher) MatchInto(d *bundles.RuntimeDecision, ev *bundles.RuntimeEvent, c *bundles.Container) {
	*d = bundles.RuntimeDecision{Matches: d.Matches[:0]}
	if c == nil {
		return
	}
	ns := c.Namespace
	if ns == "" {
		ns = "default"
	}
	if ns == m.systemNamespace {
		return
	}
	if ev.Kind != bundles.EventFile && ev.Kind != bundles.EventProcess {
		return
	}
	rulesets, ok := m.byNamespace[ns]
	if !ok {
		rulesets = m.clusterWide
	}
	var (
		bits  uint8
		buf   [64]uint8
		slots []uint8
	)
	x := evaluation{ev: ev, c: c, ns: ns}
	for _, rs := range rulesets {
		sec := rs.section(ev.Kind)
		if sec == nil {
			continue
		}
		// Each selector is evaluated at most once per event: 0 unknown,
		// 1 holds, 2 does not.
		if len(sec.selectors) <= len(buf) {
			slots = buf[:len(sec.selectors)]
			clear(slots)
		} else {
			slots = make([]uint8, len(sec.selectors))
		}
		x.sec, x.slots = sec, slots
		for i := range sec.responses {
			r := &sec.responses[i]
			first := -1
			for j := range r.match {
				if x.hits(&r.match[j]) {
					first = j
					break
				}
			}
			if first < 0 || x.anyHit(r.exclude) {
				continue
			}
			names := r.match[first].alone
			for j := first + 1; j < len(r.match); j++ {
				if x.hits(&r.match[j]) {
					// alone has no room to spare: append copies it.
					names = append(names, r.match[j].name)
				}
			}
			if cap(d.Matches) == 0 {
				// Room for the section's remaining responses, up to 16:
				// events that many rules match grow the array rarely,
				// and once for a caller of MatchInto.
				d.Matches = make([]bundles.RuntimeMatch, 0, min(len(sec.responses)-i, 16))
			}
			d.Matches = append(d.Matches, bundles.RuntimeMatch{
				Ruleset: rs.name, Response: r.index, Mode: rs.mode,
				Actions: actionLists[r.actions], Selectors: names,
			})
			bits |= r.actions
			d.Observe = d.Observe || rs.observe
		}
	}
	d.Actions = actionLists[bits]
}

// evaluation is one event against one section, with the selectors
// already evaluated.
type evaluation struct {
	ev    *bundles.RuntimeEvent
	c     *bundles.Container
	ns    string
	sec   *section
	slots []uint8
}

func (x *evaluation) anyHit(refs []ref) bool {
	for i := range refs {
		if x.hits(&refs[i]) {
			return true
		}
	}
	return false
}

func (x *evaluation) hits(r *ref) bool {
	for _, i := range r.idx {
		if x.slots[i] == 0 {
			x.slots[i] = 2
			if x.sec.selectors[i].selects(x) {
				x.slots[i] = 1
			}
		}
		if x.slots[i] == 1 {
			return true
		}
	}
	return false
}

// selects is runtime.rego's _selects: every condition given holds.
func (s *selector) selects(x *evaluation) bool {
	ev, c := x.ev, x.c
	return anyEqual(s.operation, ev.Operation) &&
		(!s.hasTargetFilePath || anyGlob(s.targetFilePath, ev.Path)) &&
		anyEqual(s.processName, ev.ProcessName) &&
		(!s.hasProcessExecutable || anyGlob(s.processExecutable, ev.ProcessExecutable)) &&
		anyEqual(s.namespace, x.ns) &&
		anyEqual(s.imageFullName, c.ImageFullName) &&
		anyEqual(s.imageName, c.ImageName) &&
		anyEqual(s.imageTag, c.ImageTag) &&
		anyEqual(s.clusterID, c.ClusterID) &&
		anyEqual(s.clusterName, c.ClusterName) &&
		anyEqual(s.containerName, c.ContainerName) &&
		(!s.hasPodName || anyWildcard(s.podName, c.PodName)) &&
		(!s.hasWorkload || anyWildcard(s.workload, c.Workload)) &&
		(!s.hasLabels || anyLabel(s.labels, c.PodLabels)) &&
		(s.interactive == nil || *s.interactive == ev.Interactive) &&
		!(s.ignoreVolumeMounts && ev.OnVolume) &&
		!(s.ignoreVolumeFiles && ev.OnVolumeFile)
}

// anyEqual: an empty list is a condition left out, which holds.
func anyEqual(list []string, v string) bool {
	return len(list) == 0 || slices.Contains(list, v)
}

func anyGlob(gs []*glob.Pattern, s string) bool {
	for _, g := range gs {
		if g.Match(s) {
			return true
		}
	}
	return false
}

func anyWildcard(ws []wildcard, s string) bool {
	for _, w := range ws {
		if w.match(s) {
			return true
		}
	}
	return false
}

func anyLabel(ls []label, labels map[string]string) bool {
	for _, l := range ls {
		if v, ok := labels[l.key]; ok && l.value.match(v) {
			return true
		}
	}
	return false
}
