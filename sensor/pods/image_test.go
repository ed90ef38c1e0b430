package pods

import "testing"

const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000001"

func TestImageFacts(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		spec, statusImage, imgID  string
		fullName, repo, tag, dgst string
	}{
		{name: "spec only, short name runs latest from Docker Hub", spec: "nginx",
			fullName: "docker.io/library/nginx", repo: "library/nginx", tag: "latest"},
		{name: "status image wins over spec", spec: "nginx:stable", statusImage: "docker.io/library/nginx:1.25",
			fullName: "docker.io/library/nginx", repo: "library/nginx", tag: "1.25"},
		{name: "digest from imageID", spec: "ghcr.io/acme/app:v1", statusImage: "ghcr.io/acme/app:v1",
			imgID:    "ghcr.io/acme/app@" + digest,
			fullName: "ghcr.io/acme/app", repo: "acme/app", tag: "v1", dgst: digest},
		{name: "status as image id falls back to spec", spec: "Registry.Example.com/team/app:2",
			statusImage: digest, imgID: digest,
			fullName: "registry.example.com/team/app", repo: "team/app", tag: "2"},
		{name: "pulled by digest keeps the spec's tag", spec: "busybox:1.36@" + digest,
			statusImage: "docker.io/library/busybox@" + digest, imgID: "docker.io/library/busybox@" + digest,
			fullName: "docker.io/library/busybox", repo: "library/busybox", tag: "1.36", dgst: digest},
		{name: "digest only has no tag", spec: "busybox@" + digest,
			fullName: "docker.io/library/busybox", repo: "library/busybox", dgst: digest},
		{name: "docker schemes stripped", spec: "redis", statusImage: "redis:7",
			imgID:    "docker-pullable://redis@" + digest,
			fullName: "docker.io/library/redis", repo: "library/redis", tag: "7", dgst: digest},
		{name: "nothing parses, no facts", spec: "UPPER/Case", statusImage: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := imageFacts(tc.spec, tc.statusImage, tc.imgID)
			want := image{fullName: tc.fullName, name: tc.repo, tag: tc.tag, digest: tc.dgst}
			if got != want {
				t.Errorf("imageFacts(%q, %q, %q) = %+v, want %+v", tc.spec, tc.statusImage, tc.imgID, got, want)
			}
		})
	}
}
