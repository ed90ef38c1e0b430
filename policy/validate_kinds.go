package policy

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gobwas/glob"
)

// Operations of the Defend for Containers selectors, by section.
var (
	fileOperations    = []string{"createExecutable", "modifyExecutable", "createFile", "modifyFile", "deleteFile"}
	processOperations = []string{"fork", "exec"}
	runtimeActions    = []string{"log", "alert", "block"}
	rulesetModes      = []string{ModeLearning, ModeAudit, ModeEnforce}
)

func (v *validator) ruleset(rs *RuntimeRuleset) {
	v.name("metadata.name", rs.Metadata.Name)
	if rs.Spec.Mode == "" {
		rs.Spec.Mode = ModeEnforce
	}
	v.oneOf("spec.mode", rs.Spec.Mode, rulesetModes)
	if rs.Spec.File == nil && rs.Spec.Process == nil {
		v.errorf("spec", "a RuntimeRuleset needs a file or a process section")
	}
	if rs.Spec.File != nil {
		v.d4cSection("spec.file", rs.Spec.File, fileOperations, true)
	}
	if rs.Spec.Process != nil {
		v.d4cSection("spec.process", rs.Spec.Process, processOperations, false)
	}
}

func (v *validator) d4cSection(field string, s *D4CSection, operations []string, file bool) {
	names := map[string]bool{}
	for i, sel := range s.Selectors {
		sf := fmt.Sprintf("%s.selectors[%d]", field, i)
		v.name(sf+".name", sel.Name)
		if strings.HasPrefix(sel.Name, LearnedPrefix) {
			v.errorf(sf+".name", "selector names starting with %q are reserved for the rules of LearnedRules", LearnedPrefix)
		}
		if names[sel.Name] {
			v.errorf(sf+".name", "duplicate selector %q", sel.Name)
		}
		names[sel.Name] = true
		v.subset(sf+".operation", sel.Operation, operations)
		// As in Defend for Containers: a selector on createFile,
		// modifyFile or deleteFile must say which files, or it would
		// match every write in the container.
		if file && len(sel.TargetFilePath) == 0 {
			for _, op := range sel.Operation {
				if op == "createFile" || op == "modifyFile" || op == "deleteFile" {
					v.errorf(sf+".targetFilePath", "targetFilePath is required for operation %s", op)
					break
				}
			}
		}
		for j, p := range sel.TargetFilePath {
			pf := fmt.Sprintf("%s.targetFilePath[%d]", sf, j)
			if !file {
				v.errorf(pf, "targetFilePath applies to file selectors only")
				break
			}
			v.pathGlob(pf, p)
		}
		for j, p := range sel.ProcessExecutable {
			v.pathGlob(fmt.Sprintf("%s.processExecutable[%d]", sf, j), p)
		}
		if file && sel.SessionLeaderInteractive != nil {
			v.errorf(sf+".sessionLeaderInteractive", "sessionLeaderInteractive applies to process selectors only")
		}
		if !file && (sel.IgnoreVolumeFiles || sel.IgnoreVolumeMounts) {
			v.errorf(sf, "ignoreVolumeFiles and ignoreVolumeMounts apply to file selectors only")
		}
		for j, w := range sel.KubernetesWorkload {
			prefix := strings.HasSuffix(w, "*") && strings.Count(w, "*") == 1
			if !prefix && !workloadPattern.MatchString(w) {
				v.errorf(fmt.Sprintf("%s.kubernetesWorkload[%d]", sf, j),
					"invalid workload %q (want <Kind>/<name> such as Deployment/web, or a prefix ending with *)", w)
			}
		}
		for j, c := range sel.ContainerName {
			if !namespacePattern.MatchString(c) {
				v.errorf(fmt.Sprintf("%s.containerName[%d]", sf, j), "invalid container name %q (want a DNS label, as in the pod spec)", c)
			}
		}
		for j, l := range sel.KubernetesPodLabel {
			if k, _, ok := strings.Cut(l, ":"); !ok || k == "" {
				v.errorf(fmt.Sprintf("%s.kubernetesPodLabel[%d]", sf, j), "invalid label %q (want key:value, value may use *)", l)
			}
		}
	}
	if len(s.Responses) == 0 {
		v.errorf(field+".responses", "at least one response is required")
	}
	for i, r := range s.Responses {
		rf := fmt.Sprintf("%s.responses[%d]", field, i)
		if len(r.Match) == 0 {
			v.errorf(rf+".match", "at least one selector is required")
		}
		for j, m := range r.Match {
			if !names[m] {
				v.errorf(fmt.Sprintf("%s.match[%d]", rf, j), "selector %q not found in %s", m, field)
			}
		}
		for j, m := range r.Exclude {
			if !names[m] {
				v.errorf(fmt.Sprintf("%s.exclude[%d]", rf, j), "selector %q not found in %s", m, field)
			}
		}
		if len(r.Actions) == 0 {
			v.errorf(rf+".actions", "at least one action is required (log, alert, block)")
		}
		v.subset(rf+".actions", r.Actions, runtimeActions)
		if slices.Contains(r.Actions, "block") && !slices.Contains(r.Actions, "alert") {
			v.errorf(rf+".actions", "block requires alert (a blocked operation is always reported)")
		}
	}
}

// pathGlob validates a D4C path pattern: absolute, `*` within a segment,
// `**` across segments.
func (v *validator) pathGlob(field, p string) {
	if !strings.HasPrefix(p, "/") {
		v.errorf(field, "path %q must be absolute (start with /)", p)
		return
	}
	if _, err := glob.Compile(p, '/'); err != nil {
		v.errorf(field, "invalid path pattern %q: %v", p, err)
	}
}

func (v *validator) attestor(a *Attestor) {
	v.name("metadata.name", a.Metadata.Name)
	if len(a.Spec.Keys) == 0 && len(a.Spec.Keyless) == 0 {
		v.errorf("spec", "an Attestor needs keys or keyless identities")
	}
	for i, k := range a.Spec.Keys {
		kf := fmt.Sprintf("spec.keys[%d]", i)
		switch {
		case (k.PublicKey == "") == (k.File == ""):
			v.errorf(kf, "set exactly one of publicKey, file")
		case k.PublicKey != "":
			block, _ := pem.Decode([]byte(k.PublicKey))
			if block == nil {
				v.errorf(kf+".publicKey", "not a PEM-encoded public key")
			} else if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
				v.errorf(kf+".publicKey", "invalid public key: %v", err)
			}
		}
	}
	for i, k := range a.Spec.Keyless {
		kf := fmt.Sprintf("spec.keyless[%d]", i)
		if k.Issuer == "" {
			v.errorf(kf+".issuer", "issuer is required")
		}
		if (k.Subject == "") == (k.SubjectRegExp == "") {
			v.errorf(kf, "set exactly one of subject, subjectRegExp")
		}
		if k.SubjectRegExp != "" {
			if _, err := regexp.Compile(k.SubjectRegExp); err != nil {
				v.errorf(kf+".subjectRegExp", "invalid regular expression: %v", err)
			}
		}
		// Verification is offline: the Fulcio roots and the Rekor key
		// come with the attestor, never from the network.
		for _, pf := range []struct{ field, value, what string }{
			{"fulcioRoots", k.FulcioRoots, "the Fulcio root certificates (PEM)"},
			{"rekorPublicKey", k.RekorPublicKey, "the Rekor public key (PEM)"},
		} {
			if pf.value == "" {
				v.errorf(kf+"."+pf.field, "%s is required: %s, so that signatures verify offline", pf.field, pf.what)
			} else if block, _ := pem.Decode([]byte(pf.value)); block == nil {
				v.errorf(kf+"."+pf.field, "not PEM-encoded")
			}
		}
	}
}

var (
	testOperations = []string{"CREATE", "UPDATE", "DELETE", "CONNECT"}
	testPoints     = []string{"admission", "continuous"}
)

func (v *validator) policyTest(r *Repo, t *PolicyTest, clusters map[string]*Policy) {
	v.name("metadata.name", t.Metadata.Name)
	if t.Spec.Cluster == "" {
		v.errorf("spec.cluster", "cluster is required")
	} else if clusters[t.Spec.Cluster] == nil {
		v.errorf("spec.cluster", "no Policy is assigned to cluster %q", t.Spec.Cluster)
	}
	if t.Spec.Now != "" {
		if _, err := time.Parse(time.RFC3339, t.Spec.Now); err != nil {
			v.errorf("spec.now", "invalid time %q: want RFC 3339", t.Spec.Now)
		}
	}
	if len(t.Spec.Cases) == 0 {
		v.errorf("spec.cases", "at least one case is required")
	}
	known := RuleNames()
	names := map[string]bool{}
	for i := range t.Spec.Cases {
		c := &t.Spec.Cases[i]
		cf := fmt.Sprintf("spec.cases[%d]", i)
		if c.Name == "" {
			v.errorf(cf+".name", "name is required")
		} else if names[c.Name] {
			v.errorf(cf+".name", "duplicate case %q", c.Name)
		}
		names[c.Name] = true
		if c.Point == "" {
			c.Point = "admission"
		}
		for _, ref := range sortedKeys(c.Images) {
			img := c.Images[ref]
			imf := fmt.Sprintf("%s.images.%s", cf, ref)
			for j, a := range img.SignedBy {
				if _, ok := r.Attestors[a]; !ok {
					v.errorf(fmt.Sprintf("%s.signedBy[%d]", imf, j), "Attestor %q not found%s", a, suggestFrom(a, sortedKeys(r.Attestors)))
				}
			}
			for j, scan := range img.Scans {
				sf := fmt.Sprintf("%s.scans[%d]", imf, j)
				if _, ok := r.Attestors[scan.Attestor]; !ok {
					v.errorf(sf+".attestor", "Attestor %q not found%s", scan.Attestor, suggestFrom(scan.Attestor, sortedKeys(r.Attestors)))
				}
				if _, err := time.Parse(time.RFC3339, scan.Finished); err != nil {
					v.errorf(sf+".finished", "invalid time %q: want RFC 3339", scan.Finished)
				}
			}
		}
		v.oneOf(cf+".point", c.Point, testPoints)
		if c.Operation == "" {
			c.Operation = "CREATE"
		}
		v.oneOf(cf+".operation", c.Operation, testOperations)
		if c.Now != "" {
			if _, err := time.Parse(time.RFC3339, c.Now); err != nil {
				v.errorf(cf+".now", "invalid time %q: want RFC 3339", c.Now)
			}
		}
		switch {
		case (c.Object == nil) == (c.File == ""):
			v.errorf(cf, "set exactly one of object, file")
		case c.File != "":
			p := path.Join(path.Dir(t.Source.File), c.File)
			if !fs.ValidPath(p) {
				v.errorf(cf+".file", "file %q is outside the repository", c.File)
			} else if _, err := fs.Stat(r.FS, p); err != nil {
				v.errorf(cf+".file", "file %q not found", c.File)
			}
		}
		if c.Expect.Allowed == nil {
			v.errorf(cf+".expect.allowed", "allowed is required (true or false)")
		}
		for j, rule := range c.Expect.Violations {
			if !slices.Contains(known, rule) && !IsVerificationRule(rule) {
				v.errorf(fmt.Sprintf("%s.expect.violations[%d]", cf, j), "unknown rule %q%s", rule, suggestFrom(rule, known))
			}
		}
	}
}
