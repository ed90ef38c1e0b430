package palisade.lib.images_test

import data.palisade.lib.images

_digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

_at(name) := concat("@", [name, _digest])

#
# parse
#

test_parse_short_name_parsed if {
	images.parse("nginx") == {
		"registry": "docker.io",
		"repository": "library/nginx",
		"name": "docker.io/library/nginx",
		"tag": "",
		"digest": "",
		"reference": "docker.io/library/nginx:latest",
	}
}

test_parse_short_name_with_tag_parsed if {
	img := images.parse("nginx:1.25")
	img.name == "docker.io/library/nginx"
	img.tag == "1.25"
	img.reference == "docker.io/library/nginx:1.25"
}

test_parse_library_prefix_parsed if {
	images.parse("library/nginx:1.25") == images.parse("nginx:1.25")
	images.parse("docker.io/nginx:1.25") == images.parse("nginx:1.25")
	images.parse("docker.io/library/nginx:1.25") == images.parse("nginx:1.25")
}

test_parse_docker_hub_namespace_parsed if {
	img := images.parse("nginxinc/nginx-unprivileged:1.25")
	img.registry == "docker.io"
	img.repository == "nginxinc/nginx-unprivileged"
	img.reference == "docker.io/nginxinc/nginx-unprivileged:1.25"
}

test_parse_index_docker_io_parsed if {
	images.parse("index.docker.io/library/nginx:1.25") == images.parse("nginx:1.25")
	images.parse("index.docker.io/nginx") == images.parse("nginx")
	images.parse("INDEX.DOCKER.IO/nginxinc/nginx").name == "docker.io/nginxinc/nginx"
}

test_parse_registry_with_path_parsed if {
	images.parse("ghcr.io/acme/team/app:1.0") == {
		"registry": "ghcr.io",
		"repository": "acme/team/app",
		"name": "ghcr.io/acme/team/app",
		"tag": "1.0",
		"digest": "",
		"reference": "ghcr.io/acme/team/app:1.0",
	}
}

test_parse_registry_single_path_segment_has_no_library_parsed if {
	images.parse("myregistry.io/app").repository == "app"
	images.parse("myregistry.io/app").reference == "myregistry.io/app:latest"
}

test_parse_registry_with_port_parsed if {
	img := images.parse("localhost:5000/app:1.0")
	img.registry == "localhost:5000"
	img.repository == "app"
	img.tag == "1.0"
	img.reference == "localhost:5000/app:1.0"
}

test_parse_registry_with_port_no_tag_parsed if {
	img := images.parse("myregistry.io:5000/team/app")
	img.registry == "myregistry.io:5000"
	img.repository == "team/app"
	img.tag == ""
	img.reference == "myregistry.io:5000/team/app:latest"
}

test_parse_localhost_parsed if {
	img := images.parse("localhost/app")
	img.registry == "localhost"
	img.name == "localhost/app"
}

test_parse_digest_only_parsed if {
	images.parse(_at("nginx")) == {
		"registry": "docker.io",
		"repository": "library/nginx",
		"name": "docker.io/library/nginx",
		"tag": "",
		"digest": _digest,
		"reference": _at("docker.io/library/nginx"),
	}
}

test_parse_tag_and_digest_parsed if {
	img := images.parse(_at("nginx:1.25"))
	img.tag == "1.25"
	img.digest == _digest
	img.reference == _at("docker.io/library/nginx:1.25")
}

test_parse_registry_port_and_digest_parsed if {
	img := images.parse(_at("localhost:5000/team/app:2"))
	img.registry == "localhost:5000"
	img.repository == "team/app"
	img.tag == "2"
	img.digest == _digest
	img.reference == _at("localhost:5000/team/app:2")
}

test_parse_host_is_lower_cased_parsed if {
	images.parse("MyRegistry.IO/app:1").registry == "myregistry.io"
}

# As in distribution/reference: an upper-case first segment is a host.
test_parse_upper_case_first_segment_is_host_parsed if {
	img := images.parse("Evil/x")
	img.registry == "evil"
	img.name == "evil/x"
}

# As in distribution/reference: a single segment is a Docker Hub
# library image even when it looks like a host or host:port.
test_parse_single_segment_is_docker_hub_parsed if {
	images.parse("myregistry.io").name == "docker.io/library/myregistry.io"
	img := images.parse("myregistry:5000")
	img.name == "docker.io/library/myregistry"
	img.tag == "5000"
}

test_parse_host_needs_dot_port_or_localhost_parsed if {
	images.parse("acme/app").registry == "docker.io"
	images.parse("localhostx/app").registry == "docker.io"
	images.parse("acme.io/app").registry == "acme.io"
	images.parse("acme:80/app").registry == "acme:80"
}

#
# valid: the distribution/reference grammar
#

test_valid_references_accepted if {
	every ref in [
		"nginx", "nginx:1.25", "library/nginx", "docker.io/library/nginx:1.25", _at("nginx"), _at("nginx:1.25"),
		"ghcr.io/acme/team/app:v1.0-RC_1", "localhost:5000/app", "localhost/app", "Evil/x", "MyRegistry.IO/app",
		"[::1]:5000/app:1", "my-registry.example.com:443/a.b/c__d/e---f:latest", "index.docker.io/nginx",
	] {
		images.valid(ref)
	}
}

test_invalid_references_rejected if {
	every ref in [
		"", "docker.io/library/../evil/x", "./x", "a//b", "a/", "/a", "Nginx", "a/B", "nginx:", "nginx:-tag",
		"nginx@sha256:abc", "nginx@", "nginx:1:2", "ex ample/x", "a/b_", "a/-b",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	] {
		not images.valid(ref)
	}
}

#
# matches
#

test_matches_equals_matched if {
	images.matches({"equals": "docker.io/library/nginx"}, "docker.io/library/nginx")
	not images.matches({"equals": "docker.io/library/nginx"}, "docker.io/library/nginx:1")
}

test_matches_contains_matched if {
	images.matches({"contains": "xmrig"}, "evil.com/xmrig:1")
	not images.matches({"contains": "xmrig"}, "evil.com/miner")
}

test_matches_prefix_matched if {
	images.matches({"prefix": "ghcr.io/acme/"}, "ghcr.io/acme/app")
	not images.matches({"prefix": "ghcr.io/acme/"}, "ghcr.io/acme-evil/app")
}

test_matches_glob_single_segment_matched if {
	images.matches({"glob": "ghcr.io/acme/*"}, "ghcr.io/acme/app")
	not images.matches({"glob": "ghcr.io/acme/*"}, "ghcr.io/acme/team/app")
}

test_matches_glob_any_depth_matched if {
	images.matches({"glob": "ghcr.io/acme/**"}, "ghcr.io/acme/team/app")
	images.matches({"glob": "docker.io/moby/buildkit:*"}, "docker.io/moby/buildkit:v0.12")
}

test_matches_any_matched if {
	images.matches_any([{"equals": "a"}, {"prefix": "b"}], "bc")
	not images.matches_any([{"equals": "a"}, {"prefix": "b"}], "c")
	not images.matches_any([], "a")
}

#
# under_registry
#

test_under_registry_host_matched if {
	images.under_registry("myregistry.io/app", "myregistry.io")
	images.under_registry("myregistry.io/team/app", "myregistry.io")
}

test_under_registry_host_suffix_bypass_denied if {
	not images.under_registry("myregistry.io.evil.com/x", "myregistry.io")
	not images.under_registry("evil.com/myregistry.io/x", "myregistry.io")
}

test_under_registry_path_matched if {
	images.under_registry("ghcr.io/acme/app", "ghcr.io/acme")
	not images.under_registry("ghcr.io/acme-evil/x", "ghcr.io/acme")
	not images.under_registry("ghcr.io/acme", "ghcr.io/acme")
	not images.under_registry("ghcr.io", "ghcr.io/acme")
}

test_under_registry_port_matched if {
	images.under_registry("localhost:5000/app", "localhost:5000")
	not images.under_registry("localhost:5001/app", "localhost:5000")
	not images.under_registry("localhost/app", "localhost:5000")
}
