package policy

import (
	"fmt"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gobwas/glob"
	"github.com/robfig/cron/v3"
)

// Defaults applied by normalisation.
const (
	DefaultSystemNamespace = "palisade-system"
	// DefaultSchedule is how often continuous rules are re-checked.
	DefaultSchedule = "@every 5m"
)

// DefaultSystemImages are Palisade's own images: an implicit exception so
// that a policy can never lock Palisade out of its own cluster.
var DefaultSystemImages = []Matcher{{Prefix: "ghcr.io/palisade-dev/"}}

var (
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
	clusterPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	// The Kubernetes namespace grammar (RFC 1123 label).
	namespacePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// A workload, "<Kind>/<name>": a Kubernetes kind and an object name
	// (a DNS subdomain).
	workloadPattern = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
	cronParser      = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// Enumerations of rule parameters.
var (
	hostNamespaceNames = []string{"hostNetwork", "hostPID", "hostIPC"}
	pssLevels          = []string{"baseline", "restricted"}
	capabilityPresets  = []string{"restrict-nondefaults", "baseline", "restricted", "restrict-all"}
	resourceNames      = []string{"cpuRequests", "cpuLimits", "memoryRequests", "memoryLimits"}
	kubectlOperations  = []string{"exec", "attach", "portForward", "ephemeralContainers"}
	deploymentActions  = []string{ActionLog, ActionBlock}
	continuousActions  = []string{ActionLog, ActionIsolate, ActionTerminate}
	// Capabilities are the Linux capabilities (capabilities(7)), without
	// the CAP_ prefix.
	Capabilities = []string{
		"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
		"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
		"KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
		"NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
		"SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT",
		"SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
	}
	// continuousOnlyInvalid are deployment rules that have no meaning for a
	// running pod.
	deploymentOnly = []string{"kubectlAccess"}
)

// RuleNames returns the name of every rule in the catalog, except the
// verification rule lists (imageSignature, scanResults), whose rules are
// named by the policy.
func RuleNames() []string {
	t := reflect.TypeFor[Rules]()
	var names []string
	for name, idx := range structFields(t) {
		if t.FieldByIndex(idx).Type.Kind() == reflect.Pointer {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// IsVerificationRule reports whether a violation's rule name is that of
// an imageSignature or scanResults rule ("imageSignature.<name>").
func IsVerificationRule(rule string) bool {
	family, name, ok := strings.Cut(rule, ".")
	return ok && name != "" && (family == RuleImageSignature || family == RuleScanResults)
}

// validator collects the errors of one document.
type validator struct {
	src  Source
	errs ErrorList
}

func (v *validator) errorf(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Pos: v.src.Pos(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) name(field, name string) {
	switch {
	case name == "":
		v.errorf(field, "name is required")
	case !namePattern.MatchString(name):
		v.errorf(field, "invalid name %q: use letters, digits, '_' and '.' only", name)
	}
}

func (v *validator) oneOf(field, value string, allowed []string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	v.errorf(field, "invalid value %q (want one of %s)", value, strings.Join(allowed, ", "))
	return false
}

// validate checks the repository as a whole and normalises it in place.
func validate(r *Repo) ErrorList {
	var errs ErrorList
	seen := map[string]Source{}
	clusters := map[string]*Policy{}
	for _, p := range r.Policies {
		v := &validator{src: p.Source}
		v.name("metadata.name", p.Metadata.Name)
		if prev, ok := seen[p.Metadata.Name]; ok && p.Metadata.Name != "" {
			v.errorf("metadata.name", "duplicate Policy name %q (first defined at %s)", p.Metadata.Name, prev.Pos("metadata.name"))
		}
		seen[p.Metadata.Name] = p.Source
		v.policy(r, p)
		for i, c := range p.Spec.Clusters {
			field := fmt.Sprintf("spec.clusters[%d]", i)
			if !clusterPattern.MatchString(c) {
				v.errorf(field, "invalid cluster name %q: use letters, digits, '-', '_' and '.'", c)
			} else if prev, ok := clusters[c]; ok {
				v.errorf(field, "cluster %q is already assigned to Policy %q (%s)", c, prev.Metadata.Name, prev.Source.Pos("metadata.name"))
			}
			clusters[c] = p
		}
		errs = append(errs, v.errs...)
	}
	validRulesets := map[string]bool{}
	for _, name := range sortedKeys(r.Rulesets) {
		v := &validator{src: r.Rulesets[name].Source}
		v.ruleset(r.Rulesets[name])
		validRulesets[name] = len(v.errs) == 0
		errs = append(errs, v.errs...)
	}
	// Learned rules are compiled into their ruleset once it is valid
	// (the reserved names are checked first) and they are valid too.
	for _, name := range sortedKeys(r.Learned) {
		l := r.Learned[name]
		v := &validator{src: l.Source}
		v.learned(r, l)
		if len(v.errs) == 0 && validRulesets[name] {
			CompileLearned(r.Rulesets[name], l)
		}
		errs = append(errs, v.errs...)
	}
	for _, name := range sortedKeys(r.Attestors) {
		v := &validator{src: r.Attestors[name].Source}
		v.attestor(r.Attestors[name])
		errs = append(errs, v.errs...)
	}
	seenTests := map[string]Source{}
	for _, t := range r.Tests {
		v := &validator{src: t.Source}
		if prev, ok := seenTests[t.Metadata.Name]; ok && t.Metadata.Name != "" {
			v.errorf("metadata.name", "duplicate PolicyTest name %q (first defined at %s)", t.Metadata.Name, prev.Pos("metadata.name"))
		}
		seenTests[t.Metadata.Name] = t.Source
		v.policyTest(r, t, clusters)
		errs = append(errs, v.errs...)
	}
	return errs
}

func (v *validator) policy(r *Repo, p *Policy) {
	s := &p.Spec
	if len(s.Clusters) == 0 {
		v.errorf("spec.clusters", "at least one cluster is required")
	}
	if s.Mode == "" {
		s.Mode = ModeEnforce
	}
	v.oneOf("spec.mode", s.Mode, []string{ModeEnforce, ModeAudit})
	if s.SystemNamespace == "" {
		s.SystemNamespace = DefaultSystemNamespace
	}
	if len(s.SystemImages) == 0 {
		s.SystemImages = slices.Clone(DefaultSystemImages)
	}
	for i := range s.SystemImages {
		v.matcher(fmt.Sprintf("spec.systemImages[%d]", i), &s.SystemImages[i], matchReference)
	}
	v.definition(r, "spec.clusterWide", &s.ClusterWide)
	names := map[string]bool{}
	owner := map[string]string{}
	for i := range s.Namespaced {
		nd := &s.Namespaced[i]
		field := fmt.Sprintf("spec.namespaced[%d]", i)
		v.name(field+".name", nd.Name)
		if names[nd.Name] {
			v.errorf(field+".name", "duplicate namespaced definition %q", nd.Name)
		}
		names[nd.Name] = true
		if len(nd.Namespaces) == 0 {
			v.errorf(field+".namespaces", "at least one namespace is required")
		}
		for j, ns := range nd.Namespaces {
			nsField := fmt.Sprintf("%s.namespaces[%d]", field, j)
			if !namespacePattern.MatchString(ns) {
				v.errorf(nsField, "invalid namespace %q", ns)
			}
			if prev, ok := owner[ns]; ok {
				v.errorf(nsField, "namespace %q is already listed by namespaced definition %q", ns, prev)
			}
			owner[ns] = nd.Name
		}
		v.definition(r, field, &nd.Definition)
	}
}

func (v *validator) definition(r *Repo, field string, d *Definition) {
	v.rules(field+".deployment", &d.Deployment, deploymentActions, nil)
	if d.Continuous.Schedule == "" {
		d.Continuous.Schedule = DefaultSchedule
	} else if _, err := cronParser.Parse(d.Continuous.Schedule); err != nil {
		v.errorf(field+".continuous.schedule", "invalid schedule %q: %v", d.Continuous.Schedule, err)
	}
	v.rules(field+".continuous.rules", &d.Continuous.Rules, continuousActions, &d.Deployment)
	v.verificationRules(r, field+".deployment", &d.Deployment, deploymentActions)
	v.verificationRules(r, field+".continuous.rules", &d.Continuous.Rules, continuousActions)
	for i, name := range d.Runtime.Rulesets {
		if _, ok := r.Rulesets[name]; !ok {
			v.errorf(fmt.Sprintf("%s.runtime.rulesets[%d]", field, i), "RuntimeRuleset %q not found", name)
		}
	}
	names := map[string]bool{}
	for i := range d.Exceptions {
		v.exception(fmt.Sprintf("%s.exceptions[%d]", field, i), &d.Exceptions[i], names)
	}
}

// actionPairs are the valid (deployment, continuous) action pairs of one
// rule. A rule only in the continuous tab may log; isolating or terminating
// a pod that admission would have let in is refused.
var actionPairs = map[[2]string]bool{
	{ActionLog, ActionLog}:         true,
	{ActionBlock, ActionLog}:       true,
	{ActionBlock, ActionIsolate}:   true,
	{ActionBlock, ActionTerminate}: true,
	{"", ActionLog}:                true,
}

// rules validates and normalises one tab's rules. deployment is the same
// definition's deployment tab when rules is the continuous tab.
func (v *validator) rules(field string, rules *Rules, actions []string, deployment *Rules) {
	rv := reflect.ValueOf(rules).Elem()
	fields := structFields(rv.Type())
	for _, name := range RuleNames() {
		f := rv.FieldByIndex(fields[name])
		if f.IsNil() {
			continue
		}
		ruleField := field + "." + name
		if deployment != nil && slices.Contains(deploymentOnly, name) {
			v.errorf(ruleField, "rule %s applies at admission only; it cannot be in the continuous tab", name)
			continue
		}
		if deployment != nil {
			inheritParams(f.Elem(), reflect.ValueOf(deployment).Elem().FieldByIndex(fields[name]))
		}
		base := f.Elem().FieldByName("Action").String()
		if base == "" {
			v.errorf(ruleField+".action", "action is required (one of %s)", strings.Join(actions, ", "))
		} else if !slices.Contains(actions, base) {
			v.errorf(ruleField+".action", "action %q is not valid in the %s tab (want one of %s)%s", base, tabName(deployment), strings.Join(actions, ", "), suggestFrom(base, actions))
		} else if deployment != nil {
			dep := reflect.ValueOf(deployment).Elem().FieldByIndex(fields[name])
			depAction := ""
			if !dep.IsNil() {
				depAction = dep.Elem().FieldByName("Action").String()
			}
			// An invalid deployment action is reported on its own.
			depValid := depAction == "" || slices.Contains(deploymentActions, depAction)
			if depValid && !actionPairs[[2]string{depAction, base}] {
				if depAction == "" {
					depAction = "none"
				}
				v.errorf(ruleField+".action", "continuous action %s needs deployment action block for rule %s (deployment has %s; valid pairs: log/log, block/log, block/isolate, block/terminate)", base, name, depAction)
			}
		}
		v.ruleParams(ruleField, f.Interface())
	}
}

// inheritParams fills the parameters a continuous rule leaves unset from
// the same rule in the deployment tab, so that "re-check privileged on a
// schedule" needs only an action. The action is never inherited.
func inheritParams(cont, dep reflect.Value) {
	if dep.IsNil() {
		return
	}
	dep = dep.Elem()
	for i := range cont.NumField() {
		if f := cont.Field(i); cont.Type().Field(i).Name != "Rule" && f.IsZero() {
			f.Set(dep.Field(i))
		}
	}
}

func (v *validator) ruleParams(field string, rule any) {
	switch r := rule.(type) {
	case *HostNamespacesRule:
		v.subset(field+".namespaces", r.Namespaces, hostNamespaceNames)
	case *HostPortsRule:
		for i, p := range r.Allowed {
			if p < 1 || p > 65535 {
				v.errorf(fmt.Sprintf("%s.allowed[%d]", field, i), "invalid port %d (want 1-65535)", p)
			}
		}
	case *BlockedHostPathsRule:
		if len(r.Paths) == 0 {
			v.errorf(field+".paths", "at least one path is required")
		}
		for i, p := range r.Paths {
			if !strings.HasPrefix(p, "/") {
				v.errorf(fmt.Sprintf("%s.paths[%d]", field, i), "path %q must be absolute (start with /)", p)
				continue
			}
			r.Paths[i] = path.Clean(p)
		}
	case *PodSecurityRule:
		if r.Level == "" {
			v.errorf(field+".level", "level is required (baseline or restricted)")
		} else {
			v.oneOf(field+".level", r.Level, pssLevels)
		}
	case *CapabilitiesRule:
		if r.Preset == "" && len(r.Deny) == 0 {
			v.errorf(field, "set a preset (%s) or a deny list", strings.Join(capabilityPresets, ", "))
		}
		if r.Preset != "" {
			v.oneOf(field+".preset", r.Preset, capabilityPresets)
		}
		for i, c := range r.Deny {
			norm := NormalizeCapability(c)
			if norm != "ALL" && !slices.Contains(Capabilities, norm) {
				v.errorf(fmt.Sprintf("%s.deny[%d]", field, i), "unknown capability %q%s", c, suggestFrom(norm, Capabilities))
				continue
			}
			r.Deny[i] = norm
		}
	case *ResourcesRule:
		if len(r.Require) == 0 {
			r.Require = slices.Clone(resourceNames)
		}
		v.subset(field+".require", r.Require, resourceNames)
	case *AllowedRegistriesRule:
		if len(r.Registries) == 0 {
			v.errorf(field+".registries", "at least one registry is required")
		}
		for i, reg := range r.Registries {
			norm, err := normalizeRegistry(reg)
			if err != nil {
				v.errorf(fmt.Sprintf("%s.registries[%d]", field, i), "%v", err)
				continue
			}
			r.Registries[i] = norm
		}
	case *MatchRule:
		if len(r.Allow) == 0 && len(r.Deny) == 0 {
			v.errorf(field, "set allow or deny matchers")
		}
		on := matchPlain
		if strings.HasSuffix(field, ".imageName") {
			on = matchImageName
		}
		for i := range r.Allow {
			v.matcher(fmt.Sprintf("%s.allow[%d]", field, i), &r.Allow[i], on)
		}
		for i := range r.Deny {
			v.matcher(fmt.Sprintf("%s.deny[%d]", field, i), &r.Deny[i], on)
		}
	case *KubectlAccessRule:
		if len(r.Operations) == 0 {
			r.Operations = slices.Clone(kubectlOperations)
		}
		v.subset(field+".operations", r.Operations, kubectlOperations)
	}
}

func tabName(deployment *Rules) string {
	if deployment == nil {
		return "deployment"
	}
	return "continuous"
}

func (v *validator) subset(field string, values, allowed []string) {
	for i, s := range values {
		v.oneOf(fmt.Sprintf("%s[%d]", field, i), s, allowed)
	}
}

// NormalizeCapability upper-cases a capability name and strips CAP_, the
// way container runtimes accept it.
func NormalizeCapability(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

func suggestFrom(s string, known []string) string {
	m := make(map[string][]int, len(known))
	for _, k := range known {
		m[k] = nil
	}
	return suggest(s, m)
}

// What an image matcher's equals value is normalised to.
type matchOn int

const (
	matchPlain     matchOn = iota // left as written (tags)
	matchImageName                // docker.io/library/nginx
	matchReference                // docker.io/library/nginx:1.25
)

// matcher validates a matcher: exactly one operator, and a glob that
// compiles (with / as the segment separator, as Rego's glob.match is called).
// An equals value naming an image is normalised like the pods' images, so
// that equals: nginx:1.25 matches docker.io/library/nginx:1.25.
func (v *validator) matcher(field string, m *Matcher, on matchOn) {
	set := 0
	for _, s := range []string{m.Equals, m.Contains, m.Prefix, m.Glob} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		v.errorf(field, "set exactly one of equals, contains, prefix, glob")
		return
	}
	if m.Glob != "" {
		if _, err := glob.Compile(m.Glob, '/'); err != nil {
			v.errorf(field+".glob", "invalid glob %q: %v", m.Glob, err)
		}
	}
	if m.Equals == "" || on == matchPlain {
		return
	}
	img, err := ParseImage(m.Equals)
	switch {
	case err != nil:
		v.errorf(field+".equals", "%v", err)
	case on == matchImageName && (img.Tag != "" || img.Digest != ""):
		v.errorf(field+".equals", "%q has a tag or digest; imageName compares names only (use imageTag for tags)", m.Equals)
	case on == matchImageName:
		m.Equals = img.Name
	default:
		m.Equals = img.Reference
	}
}

func (v *validator) exception(field string, e *Exception, names map[string]bool) {
	v.name(field+".name", e.Name)
	if names[e.Name] {
		v.errorf(field+".name", "duplicate exception %q", e.Name)
	}
	names[e.Name] = true
	if len(e.Images) == 0 && len(e.Namespaces) == 0 && len(e.PodLabels) == 0 && len(e.ServiceAccounts) == 0 {
		v.errorf(field, "an exception needs at least one condition (images, namespaces, podLabels, serviceAccounts)")
	}
	known := RuleNames()
	for i, r := range e.Rules {
		if r == RuleImageSignature || r == RuleScanResults || IsVerificationRule(r) {
			v.errorf(fmt.Sprintf("%s.rules[%d]", field, i), "%s rules have their own exceptions: the tab's exceptions do not apply to them", r)
		} else if !slices.Contains(known, r) {
			v.errorf(fmt.Sprintf("%s.rules[%d]", field, i), "unknown rule %q%s", r, suggestFrom(r, known))
		}
	}
	for i := range e.Images {
		v.matcher(fmt.Sprintf("%s.images[%d]", field, i), &e.Images[i], matchReference)
	}
	for i, ns := range e.Namespaces {
		if !namespacePattern.MatchString(ns) {
			v.errorf(fmt.Sprintf("%s.namespaces[%d]", field, i), "invalid namespace %q", ns)
		}
	}
	if e.Expires != "" {
		t, err := ParseExpiry(e.Expires)
		if err != nil {
			v.errorf(field+".expires", "%v", err)
		}
		e.ExpiresNs = t.UnixNano()
	}
}

// ParseExpiry reads an exception's expiry: a date means through the end of
// that day in UTC, an RFC 3339 time means until that instant.
func ParseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.AddDate(0, 0, 1), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid expiry %q: want a date (2026-12-31) or an RFC 3339 time", s)
	}
	return t, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.Sort(keys)
	return keys
}
