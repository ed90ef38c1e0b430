# Package pod holds the pod-level rules: host namespaces, host ports,
# host-path volumes, blocked host paths, Pod Security Standards and service
# account token automount.
package palisade.rules.pod

import data.palisade.lib.pss
import data.palisade.lib.subject

findings(rules) := ((((host_namespaces(rules) | host_ports(rules)) | host_path_volumes(rules)) | blocked_host_paths(rules)) | pod_security_standards(rules)) | automount_service_account_token(rules)

_all_host_namespaces := ["hostNetwork", "hostPID", "hostIPC"]

host_namespaces(rules) := {f |
	some ns in object.get(rules.hostNamespaces, "namespaces", _all_host_namespaces)
	subject.pod_spec[ns] == true
	f := {"rule": "hostNamespaces", "field": "podSpec", "value": concat("", [ns, "=true"]), "container": ""}
}

host_ports(rules) := {f |
	allowed := object.get(rules.hostPorts, "allowed", [])
	some c in subject.containers
	some p in object.get(c.spec, "ports", [])
	port := object.get(p, "hostPort", 0)
	port != 0
	not port in allowed
	f := {"rule": "hostPorts", "field": "containerPorts", "value": sprintf("hostPort=%d", [port]), "container": c.name}
}

# Host-path volumes, with the containers that mount each.
_host_paths contains [v.name, v.hostPath.path] if {
	some v in object.get(subject.pod_spec, "volumes", [])
	is_object(v.hostPath)
}

_mounted_by(volume) := {c.name |
	some c in subject.containers
	some m in object.get(c.spec, "volumeMounts", [])
	m.name == volume
}

_path_findings(rule, field, path, volume) := {f |
	some c in _mounted_by(volume)
	f := {"rule": rule, "field": field, "value": path, "container": c}
} if count(_mounted_by(volume)) > 0

_path_findings(rule, field, path, volume) := {{"rule": rule, "field": field, "value": path, "container": ""}} if {
	count(_mounted_by(volume)) == 0
}

host_path_volumes(rules) := {f |
	rules.hostPathVolumes
	some [volume, path] in _host_paths
	some f in _path_findings("hostPathVolumes", "volumes", path, volume)
}

blocked_host_paths(rules) := {f |
	some [volume, path] in _host_paths
	some blocked in rules.blockedHostPaths.paths
	_exposes(path, blocked)
	some f in _path_findings("blockedHostPaths", "volumes", path, volume)
}

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

pod_security_standards(rules) := {f |
	level := rules.podSecurityStandards.level
	some v in pss.violations(subject.pod_spec, subject.pod_metadata, level)
	f := {
		"rule": "podSecurityStandards",
		"field": concat("", ["pss.", level]),
		"value": concat("", [v.control, ": ", v.value]),
		"container": v.container,
	}
}

automount_service_account_token(rules) := {f |
	rules.automountServiceAccountToken
	value := object.get(subject.pod_spec, "automountServiceAccountToken", "unset")
	value != false
	f := {"rule": "automountServiceAccountToken", "field": "podSpec", "value": sprintf("automountServiceAccountToken=%v", [value]), "container": ""}
}
