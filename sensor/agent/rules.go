package agent

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor/enforce"
	"github.com/palisade-dev/palisade/sensor/match"
)

// compiled is the native matcher of one revision and the block rules its
// enforce-mode rulesets give the backends.
type compiled struct {
	revision string
	matcher  *match.Matcher
	rules    []blockRule
	blockOps []string // operations some enforce-mode response blocks
	// blocks names, per ruleset, the operations its responses block.
	blocks map[string][]string
}

// blockRule is one (operation, path pattern) a block response names.
type blockRule struct {
	ruleset  string
	response int // index of the response in its section
	op       string
	// pattern is the targetFilePath (file) or processExecutable (exec)
	// pattern; "/**" when the selector names none (every path).
	pattern string
	// decisive: the rule's meaning in a container is its path alone (no
	// process or session conditions, no exclusions unless the pattern is
	// an exact path), so the matcher's answer on a sample path tells
	// whether it applies to a container, and a kernel path rule (exec
	// killer, LSM) enforces it exactly.
	decisive bool
	// interactive: the rule needs a session attribute no backend sees.
	interactive bool
}

func (r blockRule) exact() bool { return !strings.Contains(r.pattern, "*") }

// compileRules compiles a bundle's runtime rulesets.
func compileRules(b *bundle.Bundle) (*compiled, error) {
	m, err := match.FromBundle(b)
	if err != nil {
		return nil, err
	}
	c := &compiled{revision: b.Manifest.Revision, matcher: m, blocks: map[string][]string{}}
	root, _ := b.Data[bundles.Root].(map[string]any)
	raw, err := json.Marshal(root["policy"])
	if err != nil {
		return nil, fmt.Errorf("read cluster data: %w", err)
	}
	var d bundles.ClusterData
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("read cluster data: %w", err)
	}
	ops := map[string]bool{}
	seen := map[blockRule]bool{}
	names := make([]string, 0, len(d.Rulesets))
	for name := range d.Rulesets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rs := d.Rulesets[name]
		if rs.Mode != "" && rs.Mode != policy.ModeEnforce {
			continue
		}
		rsOps := map[string]bool{}
		for _, sec := range []*policy.D4CSection{rs.File, rs.Process} {
			if sec == nil {
				continue
			}
			byName := map[string]policy.Selector{}
			for _, s := range sec.Selectors {
				byName[s.Name] = s
			}
			for ri, r := range sec.Responses {
				if !slices.Contains(r.Actions, "block") {
					continue
				}
				for _, sn := range r.Match {
					s := byName[sn]
					selOps := s.Operation
					if len(selOps) == 0 && sec == rs.Process {
						selOps = []string{enforce.OpExec, enforce.OpFork}
					}
					patterns := s.TargetFilePath
					if sec == rs.Process {
						patterns = s.ProcessExecutable
					}
					if len(patterns) == 0 {
						patterns = []string{"/**"}
					}
					procCond := len(s.ProcessName) > 0 || (sec == rs.File && len(s.ProcessExecutable) > 0)
					for _, op := range selOps {
						ops[op], rsOps[op] = true, true
						for _, p := range patterns {
							br := blockRule{ruleset: name, response: ri, op: op, pattern: p,
								interactive: s.SessionLeaderInteractive != nil && *s.SessionLeaderInteractive}
							// An exclusion is decided by the sample only
							// when the sample is the one path blocked.
							br.decisive = !procCond && s.SessionLeaderInteractive == nil && (len(r.Exclude) == 0 || br.exact())
							if !seen[br] {
								seen[br] = true
								c.rules = append(c.rules, br)
							}
						}
					}
				}
			}
		}
		if len(rsOps) > 0 {
			c.blocks[name] = sortedKeys(rsOps)
		}
	}
	c.blockOps = sortedKeys(ops)
	return c, nil
}

// samplePath is a path the pattern matches: its wildcards replaced by x.
func samplePath(pattern string) string {
	p := strings.ReplaceAll(pattern, "**", "x")
	return strings.ReplaceAll(p, "*", "x")
}

// appliesTo reports whether r may block in a container with these facts:
// the matcher's block on a sample event when r is decisive, else true.
func (c *compiled) appliesTo(r blockRule, facts *bundles.Container) bool {
	if !r.decisive {
		return true
	}
	ev := syntheticEvent(r.op, samplePath(r.pattern))
	// The rule's own response must block the sample: another response's
	// block of the same path says nothing about this pattern.
	for _, m := range c.matcher.Match(&ev, facts).Matches {
		if m.Ruleset == r.ruleset && m.Response == r.response && slices.Contains(m.Actions, "block") {
			return true
		}
	}
	return false
}

// syntheticEvent is the event an operation on p would raise.
func syntheticEvent(op, p string) bundles.RuntimeEvent {
	ev := bundles.RuntimeEvent{Kind: bundles.EventFile, Operation: op, Path: p}
	if op == enforce.OpExec || op == enforce.OpFork {
		ev.Kind, ev.ProcessExecutable, ev.ProcessName = bundles.EventProcess, p, path.Base(p)
	}
	return ev
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
