# Package pod holds the pod-level rules: host namespaces, host ports,
# host-path volumes, blocked host paths, Pod Security Standards and service
# account token automount.
package palisade.rules.pod

import data.palisade.lib.decision
import data.palisade.lib.pss
import data.palisade.lib.subject

# findings has one body per rule, each guarded by the rule's configuration
# in lib/decision.rules (see rules/container.rego).

# hostNamespaces: hostNetwork, hostPID or hostIPC (those listed) true.
findings contains f if {
	some ns in object.get(decision.rules.hostNamespaces, "namespaces", _all_host_namespaces)
	subject.pod_spec[ns] == true
	f := {"rule": "hostNamespaces", "field": "podSpec", "value": concat("", [ns, "=true"]), "container": ""}
}

# hostPorts: a host port that is not allowed.
findings contains f if {
	allowed := object.get(decision.rules.hostPorts, "allowed", [])
	some c in subject.containers
	some p in object.get(c.spec, "ports", [])
	port := object.get(p, "hostPort", 0)
	port != 0
	not port in allowed
	f := {"rule": "hostPorts", "field": "containerPorts", "value": sprintf("hostPort=%d", [port]), "container": c.name}
}

# hostPathVolumes: any host-path volume.
findings contains f if {
	decision.rules.hostPathVolumes
	some [path, containers] in _host_paths
	some c in containers
	f := {"rule": "hostPathVolumes", "field": "volumes", "value": path, "container": c}
}

# blockedHostPaths: a host-path volume that exposes a blocked path.
findings contains f if {
	some [path, containers] in _host_paths
	some blocked in decision.rules.blockedHostPaths.paths
	_exposes(path, blocked)
	some c in containers
	f := {"rule": "blockedHostPaths", "field": "volumes", "value": path, "container": c}
}

# podSecurityStandards: the Pod Security Standards controls of the level.
findings contains f if {
	level := decision.rules.podSecurityStandards.level
	some v in pss.violations(subject.pod_spec, subject.pod_metadata, level)
	f := {
		"rule": "podSecurityStandards",
		"field": concat("", ["pss.", level]),
		"value": concat("", [v.control, ": ", v.value]),
		"container": v.container,
	}
}

# automountServiceAccountToken: anything but false.
findings contains f if {
	decision.rules.automountServiceAccountToken
	value := object.get(subject.pod_spec, "automountServiceAccountToken", "unset")
	value != false
	f := {"rule": "automountServiceAccountToken", "field": "podSpec", "value": sprintf("automountServiceAccountToken=%v", [value]), "container": ""}
}

_all_host_namespaces := ["hostNetwork", "hostPID", "hostIPC"]

# The path of each host-path volume, with the containers that mount it, or
# [""] when none does (the finding is then the pod's).
_host_paths contains [path, containers] if {
	some v in object.get(subject.pod_spec, "volumes", [])
	is_object(v.hostPath)
	volume := v.name
	path := v.hostPath.path
	containers := _pod_if_none({c.name |
		some c in subject.containers
		some m in object.get(c.spec, "volumeMounts", [])
		m.name == volume
	})
}

_pod_if_none(names) := {""} if {
	count(names) == 0
} else := names

# under_path compares whole path segments, ignoring empty and "."
# segments: /var/run blocks /var/run/docker.sock and /var//run/, not
# /var/running. (The API server rejects hostPath paths with "..".)
under_path(path, prefix) if {
	p := _segments(path)
	b := _segments(prefix)
	count(p) >= count(b)
	array.slice(p, 0, count(b)) == b
}

# A host path exposes a blocked path when it lies at or below it, or above
# it: mounting /var (or /) exposes /var/run/docker.sock.
_exposes(path, blocked) if under_path(path, blocked)

_exposes(path, blocked) if under_path(blocked, path)

_segments(path) := [s | some s in split(path, "/"); s != ""; s != "."]
