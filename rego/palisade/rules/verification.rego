# Package verification holds the image verification rules: imageSignature
# (the images a rule selects are signed by its attestors) and scanResults
# (they carry a fresh vulnerability scan, signed by an attestor, without
# findings at or above a severity). Go gathers the facts: it verifies
# signatures and attestations against the attestors (package imageverify)
# and hands the results over in input.facts.verification, by image
# reference as written in the pod. Rego decides which images a rule
# selects and what the facts mean.
#
# A tab holds any number of named verification rules. Their findings name
# the rule "imageSignature.<name>" or "scanResults.<name>", carry their own
# action (which can differ from the rule's: registryUnavailable,
# unscanned), and are marked "verification" so that the tab's exceptions
# leave them alone (lib/decision): a verification rule has its own
# preconditions and exceptions.
package palisade.rules.verification

import data.palisade.lib.decision
import data.palisade.lib.images
import data.palisade.lib.subject

findings contains f if {
	some [i, c] in _signature_selected
	f := _signature_finding(_signature_rules[i], c)
}

findings contains f if {
	some [i, c] in _scan_selected
	f := _scan_finding(_scan_rules[i], c)
}

# wanted is what Go has to gather before the decision: image reference (as
# written) → the attestors that some rule asks about it. Empty when no rule
# selects an image, so that a pod no rule selects costs no registry call.
wanted[ref] := {a | some [r, a] in _wanted; r == ref} if some [ref, _] in _wanted

_wanted contains [c.image, a] if {
	some [i, c] in _signature_selected
	some a in _signature_rules[i].attestors
}

_wanted contains [c.image, _scan_rules[i].attestor] if some [i, c] in _scan_selected

_signature_rules := object.get(decision.rules, "imageSignature", [])

_scan_rules := object.get(decision.rules, "scanResults", [])

# [rule index, container] for each container a rule selects: its image
# conditions match the container's image (checked first: most images are
# selected by no rule), the rule applies to the subject (namespaces,
# preconditions), and none of its own exceptions covers the container.
# Worked out once per evaluation (functions are not memoised, complete
# rules are), for the findings and for wanted.
_signature_selected contains [i, c] if {
	some i, r in _signature_rules
	some c in subject.containers
	_image_selected(r, c)
	_applies(r)
	not _excepted(r, c)
}

_scan_selected contains [i, c] if {
	some i, r in _scan_rules
	some c in subject.containers
	_image_selected(r, c)
	_applies(r)
	not _excepted(r, c)
}

_applies(r) if {
	subject.in_namespaces(object.get(r, "namespaces", []))
	object.subset(object.get(input, ["facts", "namespaceLabels"], {}), object.get(r, ["preconditions", "namespaceLabels"], {}))
	object.subset(subject.labels, object.get(r, ["preconditions", "podLabels"], {}))
}

_image_selected(r, _) if count(object.get(r, "images", [])) == 0

_image_selected(r, c) if images.matches_any(r.images, _reference(c))

_excepted(r, c) if {
	some e in object.get(r, "exceptions", [])
	decision.covers(e, _reference(c))
}

# The normalised reference of a container's image; the image as written
# when it does not parse (no condition names an invalid reference).
_reference(c) := ref if {
	ref := subject.container_images[c.name].reference
} else := c.image

# The facts of a container's image cannot be used: Go gathered none (a
# plain OPA, or a gatherer that never ran) or the registry could not be
# asked. The rule's registryUnavailable action decides.
_unverifiable(c) if not input.facts.verification[c.image]

_unverifiable(c) if input.facts.verification[c.image].error

_unavailable(r, family, c) := _finding(r, family, c, concat("", [c.image, " cannot be verified: ", _reason(c)]), r.registryUnavailable)

_reason(c) := input.facts.verification[c.image].error if {
	input.facts.verification[c.image].error
} else := "no verification facts were gathered"

# imageSignature: match all needs every attestor's signature, match any
# one of them.
_signature_finding(r, c) := _unavailable(r, "imageSignature", c) if {
	_unverifiable(c)
} else := _finding(r, "imageSignature", c, concat("", [c.image, " is not signed by ", _attestor_list(r, missing)]), r.action) if {
	signatures := input.facts.verification[c.image].signatures
	missing := [a | some a in r.attestors; not signatures[a].verified]
	_unsigned(r, missing)
}

_unsigned(r, missing) if {
	r.match == "all"
	count(missing) > 0
}

_unsigned(r, missing) if {
	r.match == "any"
	count(missing) == count(r.attestors)
}

_attestor_list(r, missing) := concat(", ", missing) if {
	r.match == "all"
} else := concat("", ["any of ", concat(", ", missing)])

# scanResults: the latest fresh scan by the attestor decides; without one
# the image is unscanned. The state is worked out once (the latest scan
# sorts the attestations), then turned into a finding.
_scan_finding(r, c) := _scan_outcome(r, c, _scan_state(r, c))

_scan_state(r, c) := ["unverifiable"] if {
	_unverifiable(c)
} else := ["scanned", scan] if {
	scan := _latest_scan(r, c)
} else := ["unscanned"]

_scan_outcome(r, c, ["unverifiable"]) := _unavailable(r, "scanResults", c)

_scan_outcome(r, c, ["unscanned"]) := _finding(r, "scanResults", c, concat("", [c.image, " has no scan by ", r.attestor, " in the last ", format_int(r.maxAgeDays, 10), " days"]), r.unscanned)

_scan_outcome(r, c, ["scanned", scan]) := _finding(r, "scanResults", c, concat("", [c.image, " has ", _id_list(ids), " (", r.severity, " or above)"]), r.action) if {
	ids := _failing(r, scan)
	count(ids) > 0
}

# cosign's vulnerability attestation (cosign attest --type vuln).
vuln_predicate := "https://cosign.sigstore.dev/attestation/vuln/v1"

_day_ns := ((24 * 60) * 60) * 1000000000

# The fresh scan with the latest timestamp. Without an evaluation time
# nothing is fresh (fail closed: Rego never reads the clock).
_latest_scan(r, c) := scans[count(scans) - 1][1] if {
	oldest := subject.now_ns - (r.maxAgeDays * _day_ns)
	scans := sort([[ts, a] |
		some a in input.facts.verification[c.image].attestations[r.attestor]
		a.predicateType == vuln_predicate
		ts := time.parse_rfc3339_ns(a.timestamp)
		ts >= oldest
	])
	count(scans) > 0
}

# Severities in increasing order; a finding with another severity
# (unknown, negligible) is below every threshold.
_severity_rank := {"low": 1, "medium": 2, "high": 3, "critical": 4}

# The ids of a scan's findings at or above the rule's severity that the
# rule does not allow, sorted. The findings are read from
# predicate.scanner.result.vulnerabilities ([{id, severity}]), the shape
# imageverify documents.
_failing(r, scan) := sort({upper(v.id) |
	allowed := {upper(id) | some id in object.get(r, "allow", [])}
	threshold := _severity_rank[r.severity]
	some v in object.get(scan, ["predicate", "scanner", "result", "vulnerabilities"], [])
	_severity_rank[lower(v.severity)] >= threshold
	not upper(v.id) in allowed
})

# At most five ids, then how many more.
_id_list(ids) := concat(", ", ids) if {
	count(ids) <= 5
} else := concat("", [concat(", ", array.slice(ids, 0, 5)), " and ", format_int(count(ids) - 5, 10), " more"])

_finding(r, family, c, value, action) := {
	"rule": concat(".", [family, r.name]),
	"field": "image",
	"value": value,
	"container": c.name,
	"action": action,
	"verification": true,
}
