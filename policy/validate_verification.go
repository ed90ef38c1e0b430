package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Parameters of the verification rules.
var (
	signatureMatches = []string{"all", "any"}
	// Severities in increasing order: a scanResults rule refuses findings
	// at or above its severity.
	Severities = []string{"low", "medium", "high", "critical"}
	// vulnIDPattern accepts the ids scanners report: CVE-2024-3094,
	// GHSA-xxxx-xxxx-xxxx, GO-2024-1234, DLA-..., and so on.
	vulnIDPattern = regexp.MustCompile(`^[A-Za-z]+(-[A-Za-z0-9]+)+$`)
)

// Defaults of the verification rules.
const (
	DefaultSignatureMatch = "all"
	DefaultScanMaxAgeDays = 7
	DefaultScanSeverity   = "high"
)

// verificationRules validates and normalises a tab's imageSignature and
// scanResults rules. actions are the tab's actions; every action a rule
// names (its own, registryUnavailable, unscanned) must be one of them.
func (v *validator) verificationRules(r *Repo, field string, rules *Rules, actions []string) {
	names := map[string]string{} // rule name → field of its first definition
	common := func(f string, family string, vr *VerificationRule) {
		v.name(f+".name", vr.Name)
		if prev, ok := names[family+"."+vr.Name]; ok && vr.Name != "" {
			v.errorf(f+".name", "duplicate %s rule %q (first at %s)", family, vr.Name, v.src.Pos(prev))
		}
		names[family+"."+vr.Name] = f + ".name"
		v.action(f+".action", vr.Action, actions, true)
		if vr.RegistryUnavailable == "" {
			vr.RegistryUnavailable = vr.Action
		} else {
			v.action(f+".registryUnavailable", vr.RegistryUnavailable, actions, false)
		}
		for i := range vr.Images {
			v.matcher(fmt.Sprintf("%s.images[%d]", f, i), &vr.Images[i], matchReference)
		}
		for i, ns := range vr.Namespaces {
			if !namespacePattern.MatchString(ns) {
				v.errorf(fmt.Sprintf("%s.namespaces[%d]", f, i), "invalid namespace %q", ns)
			}
		}
		exceptions := map[string]bool{}
		for i := range vr.Exceptions {
			ef := fmt.Sprintf("%s.exceptions[%d]", f, i)
			if len(vr.Exceptions[i].Rules) > 0 {
				v.errorf(ef+".rules", "an exception of a %s rule applies to that rule only: leave rules out", family)
				vr.Exceptions[i].Rules = nil
			}
			v.exception(ef, &vr.Exceptions[i], exceptions)
		}
	}
	attestor := func(f, name string) {
		if name == "" {
			v.errorf(f, "attestor name is required")
		} else if _, ok := r.Attestors[name]; !ok {
			v.errorf(f, "Attestor %q not found%s", name, suggestFrom(name, sortedKeys(r.Attestors)))
		}
	}
	for i := range rules.ImageSignature {
		rule := &rules.ImageSignature[i]
		f := fmt.Sprintf("%s.%s[%d]", field, RuleImageSignature, i)
		common(f, RuleImageSignature, &rule.VerificationRule)
		if len(rule.Attestors) == 0 {
			v.errorf(f+".attestors", "at least one attestor is required")
		}
		for j, name := range rule.Attestors {
			attestor(fmt.Sprintf("%s.attestors[%d]", f, j), name)
		}
		if rule.Match == "" {
			rule.Match = DefaultSignatureMatch
		} else {
			v.oneOf(f+".match", rule.Match, signatureMatches)
		}
	}
	for i := range rules.ScanResults {
		rule := &rules.ScanResults[i]
		f := fmt.Sprintf("%s.%s[%d]", field, RuleScanResults, i)
		common(f, RuleScanResults, &rule.VerificationRule)
		attestor(f+".attestor", rule.Attestor)
		switch {
		case rule.MaxAgeDays == 0:
			rule.MaxAgeDays = DefaultScanMaxAgeDays
		case rule.MaxAgeDays < 0:
			v.errorf(f+".maxAgeDays", "maxAgeDays must be positive, not %d", rule.MaxAgeDays)
		}
		if rule.Severity == "" {
			rule.Severity = DefaultScanSeverity
		} else {
			rule.Severity = strings.ToLower(rule.Severity)
			v.oneOf(f+".severity", rule.Severity, Severities)
		}
		for j, id := range rule.Allow {
			if !vulnIDPattern.MatchString(id) {
				v.errorf(fmt.Sprintf("%s.allow[%d]", f, j), "invalid vulnerability id %q (want e.g. CVE-2024-3094)", id)
			}
			rule.Allow[j] = strings.ToUpper(id)
		}
		if rule.Unscanned == "" {
			rule.Unscanned = rule.Action
		} else {
			v.action(f+".unscanned", rule.Unscanned, actions, false)
		}
	}
}

// action checks an action against a tab's actions.
func (v *validator) action(field, action string, actions []string, required bool) {
	switch {
	case action == "" && required:
		v.errorf(field, "action is required (one of %s)", strings.Join(actions, ", "))
	case action != "" && !slices.Contains(actions, action):
		v.errorf(field, "action %q is not valid here (want one of %s)%s", action, strings.Join(actions, ", "), suggestFrom(action, actions))
	}
}
