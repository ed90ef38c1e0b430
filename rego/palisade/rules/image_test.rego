package palisade.rules.image_test

import data.palisade.rules.image
import data.palisade.test.fixtures as fx

# _findings returns image.findings under these rules (the tab's rules,
# lib/decision.rules); _rule, the findings of one rule of the catalog.
_findings(rules) := fs if {
	fs := image.findings with data.palisade.lib.decision.rules as rules
}

_rule(name, rules) := {f | some f in _findings(rules); f.rule == name}

_at(name) := concat("@", [name, _digest])

_digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

# _denied_images returns the images of a pod's containers (one per image)
# that rules find violating.
_denied_images(rules, images) := {f.value | some f in fs} if {
	fs := _findings(rules) with input as fx.containers_input([fx.container(sprintf("c%d", [i]), img) | some i, img in images])
}

#
# allowedRegistries
#

_registries(list) := {"allowedRegistries": {"action": "block", "registries": list}}

test_allowed_registries_finding_shape_denied if {
	fs := _rule("allowedRegistries", _registries(["ghcr.io/acme"])) with input as fx.containers_input([fx.container("c", "nginx:1.25")])
	fs == {{"rule": "allowedRegistries", "field": "image", "value": "nginx:1.25", "container": "c"}}
}

test_allowed_registries_host_allowed if {
	_denied_images(_registries(["myregistry.io"]), ["myregistry.io/app:1", _at("myregistry.io/team/app")]) == set()
}

test_allowed_registries_host_suffix_bypass_denied if {
	_denied_images(_registries(["myregistry.io"]), ["myregistry.io.evil.com/x"]) == {"myregistry.io.evil.com/x"}
}

test_allowed_registries_host_in_path_bypass_denied if {
	_denied_images(_registries(["myregistry.io"]), ["evil.com/myregistry.io/x"]) == {"evil.com/myregistry.io/x"}
}

test_allowed_registries_host_as_docker_hub_name_bypass_denied if {
	_denied_images(_registries(["myregistry.io"]), ["myregistry.io:1.0", "myregistry"]) == {"myregistry.io:1.0", "myregistry"}
}

test_allowed_registries_path_allowed if {
	_denied_images(_registries(["ghcr.io/acme"]), ["ghcr.io/acme/app:1.0", "ghcr.io/acme/team/app"]) == set()
}

test_allowed_registries_path_suffix_bypass_denied if {
	_denied_images(_registries(["ghcr.io/acme"]), ["ghcr.io/acme-evil/x"]) == {"ghcr.io/acme-evil/x"}
}

test_allowed_registries_path_itself_denied if {
	_denied_images(_registries(["ghcr.io/acme"]), ["ghcr.io/acme", "ghcr.io/other/acme"]) == {"ghcr.io/acme", "ghcr.io/other/acme"}
}

test_allowed_registries_docker_library_allowed if {
	imgs := ["nginx", "nginx:1.25", "library/nginx", "docker.io/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx", "index.docker.io/nginx:1.25"]
	_denied_images(_registries(["docker.io/library"]), imgs) == set()
}

test_allowed_registries_docker_library_other_namespace_denied if {
	imgs := ["nginxinc/nginx", "docker.io/nginxinc/nginx", "index.docker.io/nginxinc/nginx"]
	_denied_images(_registries(["docker.io/library"]), imgs) == {"nginxinc/nginx", "docker.io/nginxinc/nginx", "index.docker.io/nginxinc/nginx"}
}

test_allowed_registries_docker_hub_allowed if {
	_denied_images(_registries(["docker.io"]), ["nginx", "nginxinc/nginx", "index.docker.io/bitnami/redis"]) == set()
}

# distribution/reference reads an upper-case first segment as a registry
# host: Evil/x is pulled from the host "evil", not from Docker Hub.
test_allowed_registries_upper_case_host_bypass_denied if {
	_denied_images(_registries(["docker.io"]), ["Evil/x", "EVIL.COM/x"]) == {"Evil/x", "EVIL.COM/x"}
}

# The runtime refuses a reference distribution/reference cannot parse:
# it lies in no registry, whatever its prefix.
test_allowed_registries_unparsable_reference_denied if {
	imgs := ["docker.io/library/../evil/x:1", "docker.io/library/./x", "docker.io/library//x", "docker.io/library/Nginx", "nginx:", "nginx@sha256:abc"]
	_denied_images(_registries(["docker.io/library", "docker.io"]), imgs) == {i | some i in imgs}
}

test_allowed_registries_port_allowed if {
	_denied_images(_registries(["localhost:5000"]), ["localhost:5000/app:1", "localhost:5000/team/app"]) == set()
}

test_allowed_registries_port_mismatch_denied if {
	imgs := ["localhost:5001/app", "localhost/app", "localhost:50000/app", "localhost:5000.evil.com/app"]
	_denied_images(_registries(["localhost:5000"]), imgs) == {"localhost:5001/app", "localhost/app", "localhost:50000/app", "localhost:5000.evil.com/app"}
}

test_allowed_registries_any_entry_allowed if {
	_denied_images(_registries(["docker.io/library", "ghcr.io/acme"]), ["nginx", "ghcr.io/acme/app"]) == set()
}

test_allowed_registries_init_and_ephemeral_containers_denied if {
	spec := {
		"containers": [fx.container("c", "ghcr.io/acme/app")],
		"initContainers": [fx.container("init", "busybox")],
		"ephemeralContainers": [fx.container("debugger", "evil.com/tools")],
	}
	fx.pairs(_rule("allowedRegistries", _registries(["ghcr.io/acme"]))) == {["init", "busybox"], ["debugger", "evil.com/tools"]} with input as fx.spec_input(spec)
}

test_allowed_registries_rule_off_allowed if {
	_denied_images({}, ["evil.com/x"]) == set()
}

#
# imageName: matched against the normalised name (no tag, no digest)
#

_name(cfg) := {"imageName": object.union({"action": "block"}, cfg)}

test_image_name_finding_shape_denied if {
	fs := _rule("imageName", _name({"deny": [{"equals": "docker.io/library/nginx"}]})) with input as fx.containers_input([fx.container("c", "nginx:1.25")])
	fs == {{"rule": "imageName", "field": "image", "value": "nginx:1.25", "container": "c"}}
}

test_image_name_deny_equals_denied if {
	imgs := ["nginx", "nginx:1.25", _at("index.docker.io/library/nginx")]
	_denied_images(_name({"deny": [{"equals": "docker.io/library/nginx"}]}), imgs) == {"nginx", "nginx:1.25", _at("index.docker.io/library/nginx")}
}

test_image_name_deny_equals_allowed if {
	_denied_images(_name({"deny": [{"equals": "docker.io/library/nginx"}]}), ["nginxinc/nginx", "nginx-unprivileged"]) == set()
}

test_image_name_deny_contains_denied if {
	_denied_images(_name({"deny": [{"contains": "xmrig"}]}), ["evil.com/tools/xmrig-miner:1", "ghcr.io/acme/app"]) == {"evil.com/tools/xmrig-miner:1"}
}

test_image_name_deny_prefix_denied if {
	_denied_images(_name({"deny": [{"prefix": "docker.io/"}]}), ["busybox", "ghcr.io/acme/app"]) == {"busybox"}
}

test_image_name_deny_glob_denied if {
	cfg := _name({"deny": [{"glob": "docker.io/library/*miner*"}]})
	_denied_images(cfg, ["coinminer:1", "docker.io/library/miner", "nginx", "docker.io/acme/coinminer"]) == {"coinminer:1", "docker.io/library/miner"}
}

test_image_name_deny_ignores_tag_allowed if {
	_denied_images(_name({"deny": [{"contains": "evil"}]}), ["nginx:evil", _at("nginx")]) == set()
}

test_image_name_allow_prefix_unmatched_denied if {
	cfg := _name({"allow": [{"prefix": "ghcr.io/acme/"}]})
	_denied_images(cfg, ["ghcr.io/acme/app:1", "ghcr.io/acme-evil/app", "nginx"]) == {"ghcr.io/acme-evil/app", "nginx"}
}

test_image_name_allow_equals_unmatched_denied if {
	cfg := _name({"allow": [{"equals": "docker.io/library/nginx"}]})
	_denied_images(cfg, ["nginx:1.25", "docker.io/library/nginx", "nginx/nginx"]) == {"nginx/nginx"}
}

test_image_name_allow_contains_unmatched_denied if {
	cfg := _name({"allow": [{"contains": "/acme/"}]})
	_denied_images(cfg, ["ghcr.io/acme/app", "ghcr.io/acmex/app"]) == {"ghcr.io/acmex/app"}
}

test_image_name_allow_glob_deeper_path_denied if {
	cfg := _name({"allow": [{"glob": "ghcr.io/acme/*"}]})
	_denied_images(cfg, ["ghcr.io/acme/app", "ghcr.io/acme/team/app"]) == {"ghcr.io/acme/team/app"}
}

test_image_name_allow_glob_any_depth_allowed if {
	cfg := _name({"allow": [{"glob": "ghcr.io/acme/**"}]})
	_denied_images(cfg, ["ghcr.io/acme/app", "ghcr.io/acme/team/app"]) == set()
}

test_image_name_deny_beats_allow_denied if {
	cfg := _name({"allow": [{"prefix": "ghcr.io/acme/"}], "deny": [{"contains": "miner"}]})
	_denied_images(cfg, ["ghcr.io/acme/miner", "ghcr.io/acme/app"]) == {"ghcr.io/acme/miner"}
}

test_image_name_rule_off_allowed if {
	_rule("imageName", {}) == set() with input as fx.containers_input([fx.container("c", "xmrig")])
}

#
# imageTag: matched against the tag (latest when neither tag nor digest)
#

_tag(cfg) := {"imageTag": object.union({"action": "log"}, cfg)}

test_image_tag_finding_shape_denied if {
	fs := _rule("imageTag", _tag({"deny": [{"equals": "dev"}]})) with input as fx.containers_input([fx.container("c", "nginx:dev")])
	fs == {{"rule": "imageTag", "field": "image", "value": "nginx:dev", "container": "c"}}
}

test_image_tag_deny_equals_matching_denied if {
	_denied_images(_tag({"deny": [{"equals": "dev"}]}), ["nginx:dev", "nginx:dev2", "nginx:1.25"]) == {"nginx:dev"}
}

test_image_tag_deny_contains_matching_denied if {
	_denied_images(_tag({"deny": [{"contains": "snapshot"}]}), ["app:1.0-SNAPSHOT", "app:1.0-snapshot", "app:1.0"]) == {"app:1.0-snapshot"}
}

test_image_tag_deny_prefix_matching_denied if {
	_denied_images(_tag({"deny": [{"prefix": "0."}]}), ["app:0.9", "app:1.0"]) == {"app:0.9"}
}

test_image_tag_deny_glob_matching_denied if {
	_denied_images(_tag({"deny": [{"glob": "*-rc*"}]}), ["app:1.0-rc1", "app:1.0", "localhost:5000/app:2.0-rc.2"]) == {"app:1.0-rc1", "localhost:5000/app:2.0-rc.2"}
}

test_image_tag_deny_latest_implicit_denied if {
	_denied_images(_tag({"deny": [{"equals": "latest"}]}), ["nginx", "localhost:5000/app"]) == {"nginx", "localhost:5000/app"}
}

test_image_tag_with_digest_judged_denied if {
	_denied_images(_tag({"deny": [{"equals": "dev"}]}), [_at("nginx:dev")]) == {_at("nginx:dev")}
}

test_image_tag_allow_glob_unmatched_denied if {
	cfg := _tag({"allow": [{"glob": "v*"}]})
	_denied_images(cfg, ["app:v1.2", "app:1.2", "app"]) == {"app:1.2", "app"}
}

test_image_tag_allow_equals_unmatched_denied if {
	_denied_images(_tag({"allow": [{"equals": "stable"}]}), ["app:stable", "app:stable-1", "app"]) == {"app:stable-1", "app"}
}

test_image_tag_allow_prefix_unmatched_denied if {
	_denied_images(_tag({"allow": [{"prefix": "v1."}]}), ["app:v1.2", "app:v2.0"]) == {"app:v2.0"}
}

test_image_tag_allow_contains_unmatched_denied if {
	_denied_images(_tag({"allow": [{"contains": "-release"}]}), ["app:1.0-release", "app:1.0-rc1"]) == {"app:1.0-rc1"}
}

test_image_tag_allow_digest_only_allowed if {
	_denied_images(_tag({"allow": [{"glob": "v*"}]}), [_at("app")]) == set()
}

test_image_tag_rule_off_allowed if {
	_rule("imageTag", {}) == set() with input as fx.containers_input([fx.container("c", "nginx:dev")])
}

#
# latestTag
#

test_latest_tag_no_tag_denied if {
	fs := _rule("latestTag", {"latestTag": {"action": "block"}}) with input as fx.containers_input([fx.container("c", "nginx")])
	fs == {{"rule": "latestTag", "field": "image", "value": "nginx", "container": "c"}}
}

test_latest_tag_explicit_denied if {
	_denied_images({"latestTag": {"action": "block"}}, ["nginx:latest", "localhost:5000/app", "localhost:5000/app:latest"]) == {"nginx:latest", "localhost:5000/app", "localhost:5000/app:latest"}
}

test_latest_tag_pinned_allowed if {
	_denied_images({"latestTag": {"action": "block"}}, ["nginx:1.25", "localhost:5000/app:1", "nginx:latest-not"]) == set()
}

test_latest_tag_digest_only_allowed if {
	_denied_images({"latestTag": {"action": "block"}}, [_at("nginx")]) == set()
}

test_latest_tag_rule_off_allowed if {
	_denied_images({}, ["nginx"]) == set()
}

#
# digestPinning
#

test_digest_pinning_tag_denied if {
	fs := _rule("digestPinning", {"digestPinning": {"action": "log"}}) with input as fx.containers_input([fx.container("c", "nginx:1.25")])
	fs == {{"rule": "digestPinning", "field": "image", "value": "nginx:1.25", "container": "c"}}
}

test_digest_pinning_no_tag_denied if {
	_denied_images({"digestPinning": {"action": "log"}}, ["nginx", "localhost:5000/app"]) == {"nginx", "localhost:5000/app"}
}

test_digest_pinning_digest_allowed if {
	_denied_images({"digestPinning": {"action": "log"}}, [_at("nginx"), _at("nginx:1.25"), _at("localhost:5000/app")]) == set()
}

test_digest_pinning_rule_off_allowed if {
	_denied_images({}, ["nginx:1.25"]) == set()
}

#
# effective_tag and findings
#

test_effective_tag_computed if {
	image.effective_tag({"tag": "1.25", "digest": ""}) == "1.25"
	image.effective_tag({"tag": "", "digest": ""}) == "latest"
	image.effective_tag({"tag": "1.25", "digest": _digest}) == "1.25"
	not image.effective_tag({"tag": "", "digest": _digest})
}

test_findings_union_of_rules_denied if {
	rules := {
		"allowedRegistries": {"action": "block", "registries": ["ghcr.io/acme"]},
		"imageName": {"action": "block", "deny": [{"contains": "xmrig"}]},
		"imageTag": {"action": "log", "deny": [{"equals": "latest"}]},
		"latestTag": {"action": "block"},
		"digestPinning": {"action": "log"},
	}
	fs := _findings(rules) with input as fx.containers_input([fx.container("c", "xmrig")])
	{f.rule | some f in fs} == {"allowedRegistries", "imageName", "imageTag", "latestTag", "digestPinning"}
}
