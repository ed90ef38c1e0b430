package palisade.rules.verification_test

import data.palisade.admission
import data.palisade.rules.verification
import data.palisade.test.fixtures as fx

_signed := "ghcr.io/acme/web:1.0"

_unsigned := "ghcr.io/acme/tools:2.0"

_other := "docker.io/library/nginx:1.25"

# _facts are what imageverify reports: web signed by release (not by ci),
# tools signed by nobody, nginx not asked.
_facts := {
	_signed: {
		"digest": "sha256:aaaa",
		"signatures": {"release": {"verified": true}, "ci": {"verified": false, "reason": "no signature"}},
		"attestations": {"scanner": [
			_scan("2026-11-20T00:00:00Z", [{"id": "CVE-2024-0001", "severity": "HIGH"}, {"id": "CVE-2024-0002", "severity": "LOW"}]),
			_scan("2026-11-10T00:00:00Z", [{"id": "CVE-2020-9999", "severity": "CRITICAL"}]),
		]},
	},
	_unsigned: {
		"digest": "sha256:bbbb",
		"signatures": {"release": {"verified": false, "reason": "no signature"}, "ci": {"verified": false, "reason": "no signature"}},
		"attestations": {},
	},
}

_scan(ts, vulns) := {
	"predicateType": verification.vuln_predicate,
	"predicate": {"scanner": {"result": {"vulnerabilities": vulns}}},
	"timestamp": ts,
}

_input(images, facts) := object.union(fx.containers_input([fx.container(sprintf("c%d", [i]), img) | some i, img in images]), {"facts": {"verification": facts}})

_sig_rule(extra) := object.union({"name": "signed", "action": "block", "attestors": ["release"], "match": "all", "registryUnavailable": "block"}, extra)

_scan_rule(extra) := object.union({"name": "scanned", "action": "block", "attestor": "scanner", "maxAgeDays": 7, "severity": "high", "unscanned": "log", "registryUnavailable": "log"}, extra)

_findings(rules, inp) := fs if {
	fs := verification.findings with data.palisade.lib.decision.rules as rules with input as inp
}

_values(rules, inp) := {[f.rule, f.value, f.action] | some f in _findings(rules, inp)}

test_signed_image_passes if {
	_findings({"imageSignature": [_sig_rule({})]}, _input([_signed], _facts)) == set()
}

test_unsigned_image_finding_shape if {
	_findings({"imageSignature": [_sig_rule({})]}, _input([_unsigned], _facts)) == {{
		"rule": "imageSignature.signed", "field": "image", "value": "ghcr.io/acme/tools:2.0 is not signed by release",
		"container": "c0", "action": "block", "verification": true,
	}}
}

test_match_all_needs_every_attestor if {
	_values({"imageSignature": [_sig_rule({"attestors": ["release", "ci"]})]}, _input([_signed], _facts)) == {["imageSignature.signed", "ghcr.io/acme/web:1.0 is not signed by ci", "block"]}
}

test_match_any_needs_one_attestor if {
	rules := {"imageSignature": [_sig_rule({"attestors": ["release", "ci"], "match": "any"})]}
	_findings(rules, _input([_signed], _facts)) == set()
	_values(rules, _input([_unsigned], _facts)) == {["imageSignature.signed", "ghcr.io/acme/tools:2.0 is not signed by any of release, ci", "block"]}
}

test_conditions_that_do_not_select_leave_the_image_alone if {
	rules := {"imageSignature": [_sig_rule({"images": [{"prefix": "ghcr.io/acme/web"}]})]}
	_findings(rules, _input([_unsigned, _other], _facts)) == set()
	verification.wanted == {} with data.palisade.lib.decision.rules as rules with input as _input([_unsigned, _other], _facts)
}

test_namespace_condition if {
	rules := {"imageSignature": [_sig_rule({"namespaces": ["payments"]})]}
	_findings(rules, _input([_unsigned], _facts)) == set()
}

test_preconditions_exempt if {
	pod_labels := {"imageSignature": [_sig_rule({"preconditions": {"podLabels": {"signed": "required"}}})]}
	_findings(pod_labels, _input([_unsigned], _facts)) == set()
	ns_labels := {"imageSignature": [_sig_rule({"preconditions": {"namespaceLabels": {"tier": "prod"}}})]}
	_findings(ns_labels, _input([_unsigned], _facts)) == set()
	count(_findings(ns_labels, object.union(_input([_unsigned], _facts), {"facts": {"namespaceLabels": {"tier": "prod"}}}))) == 1
}

test_own_exceptions_apply if {
	live := {"imageSignature": [_sig_rule({"exceptions": [{"name": "tools", "images": [{"prefix": "ghcr.io/acme/tools"}]}]})]}
	_findings(live, _input([_unsigned], _facts)) == set()
	expired := {"imageSignature": [_sig_rule({"exceptions": [{"name": "tools", "images": [{"prefix": "ghcr.io/acme/tools"}], "expiresNs": 1}]})]}
	count(_findings(expired, _input([_unsigned], _facts))) == 1
}

test_registry_unavailable_uses_its_action if {
	facts := {_unsigned: {"digest": "", "error": "registry unreachable: connection refused", "signatures": {}, "attestations": {}}}
	rules := {"imageSignature": [_sig_rule({"registryUnavailable": "log"})]}
	_values(rules, _input([_unsigned], facts)) == {["imageSignature.signed", "ghcr.io/acme/tools:2.0 cannot be verified: registry unreachable: connection refused", "log"]}
}

test_no_facts_fail_closed if {
	inp := fx.containers_input([fx.container("c", _unsigned)])
	_values({"imageSignature": [_sig_rule({})]}, inp) == {["imageSignature.signed", "ghcr.io/acme/tools:2.0 cannot be verified: no verification facts were gathered", "block"]}
}

test_wanted_lists_attestors_per_image if {
	rules := {
		"imageSignature": [_sig_rule({}), _sig_rule({"name": "ci", "attestors": ["ci"], "images": [{"prefix": "ghcr.io/acme/tools"}]})],
		"scanResults": [_scan_rule({})],
	}
	w := verification.wanted with data.palisade.lib.decision.rules as rules with input as _input([_signed, _unsigned], {})
	w == {_signed: {"release", "scanner"}, _unsigned: {"release", "ci", "scanner"}}
}

test_scan_latest_fresh_scan_decides if {
	# The 11-10 scan (a critical) is older than 7 days; the 11-20 one has
	# one high and one low.
	_values({"scanResults": [_scan_rule({})]}, _input([_signed], _facts)) == {["scanResults.scanned", "ghcr.io/acme/web:1.0 has CVE-2024-0001 (high or above)", "block"]}
}

test_scan_allow_list_and_threshold if {
	_findings({"scanResults": [_scan_rule({"allow": ["cve-2024-0001"]})]}, _input([_signed], _facts)) == set()
	_findings({"scanResults": [_scan_rule({"severity": "critical"})]}, _input([_signed], _facts)) == set()
	_values({"scanResults": [_scan_rule({"severity": "low"})]}, _input([_signed], _facts)) == {["scanResults.scanned", "ghcr.io/acme/web:1.0 has CVE-2024-0001, CVE-2024-0002 (low or above)", "block"]}
}

test_scan_too_old_is_unscanned if {
	_values({"scanResults": [_scan_rule({"maxAgeDays": 1})]}, _input([_signed], _facts)) == {["scanResults.scanned", "ghcr.io/acme/web:1.0 has no scan by scanner in the last 1 days", "log"]}
	_values({"scanResults": [_scan_rule({})]}, _input([_unsigned], _facts)) == {["scanResults.scanned", "ghcr.io/acme/tools:2.0 has no scan by scanner in the last 7 days", "log"]}
}

test_scan_lists_at_most_five_ids if {
	vulns := [{"id": sprintf("CVE-2024-000%d", [i]), "severity": "critical"} | some i in numbers.range(1, 7)]
	facts := {_signed: {"digest": "sha256:aaaa", "signatures": {}, "attestations": {"scanner": [_scan("2026-11-22T00:00:00Z", vulns)]}}}
	_values({"scanResults": [_scan_rule({})]}, _input([_signed], facts)) == {["scanResults.scanned", "ghcr.io/acme/web:1.0 has CVE-2024-0001, CVE-2024-0002, CVE-2024-0003, CVE-2024-0004, CVE-2024-0005 and 2 more (high or above)", "block"]}
}

test_scan_without_time_is_unscanned if {
	inp := json.remove(_input([_signed], _facts), ["facts/now"])
	_values({"scanResults": [_scan_rule({})]}, inp) == {["scanResults.scanned", "ghcr.io/acme/web:1.0 has no scan by scanner in the last 7 days", "log"]}
}

# Through the admission decision: the rule's action, its own message, and
# the tab's exceptions do not waive it (the system exception does).
_policy(exceptions) := object.union(fx.policy({"imageSignature": [_sig_rule({})], "runAsRoot": {"action": "log"}}, {}), {"clusterWide": {"exceptions": exceptions}})

test_admission_denies_unsigned_with_rule_and_image if {
	d := admission.decision with data.palisade.policy as _policy([]) with input as _input([_unsigned], _facts)
	not d.allowed
	some v in d.violations
	v.message == `image violates rule imageSignature.signed "ghcr.io/acme/tools:2.0 is not signed by release" in container(s) "c0" (block)`
}

test_admission_tab_exceptions_do_not_waive_signatures if {
	exceptions := [{"name": "everything", "namespaces": ["default"]}]
	d := admission.decision with data.palisade.policy as _policy(exceptions) with input as _input([_unsigned], _facts)
	not d.allowed
	{v.rule | some v in d.violations} == {"imageSignature.signed"}
}

test_admission_system_images_are_excepted if {
	img := "ghcr.io/palisade-dev/palisade:1.0"
	d := admission.decision with data.palisade.policy as _policy([]) with input as _input([img], {})
	d.allowed
	d.violations == set()
}

test_admission_audit_mode_logs if {
	pol := object.union(_policy([]), {"mode": "audit"})
	d := admission.decision with data.palisade.policy as pol with input as _input([_unsigned], _facts)
	d.allowed
	{[v.rule, v.action] | some v in d.violations; v.rule == "imageSignature.signed"} == {["imageSignature.signed", "log"]}
}
