package runtime

import (
	"slices"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name      string
		mountinfo string
		all       []string
		unified   string
	}{{
		name: "hybrid host: v1 controllers and v2 at unified",
		mountinfo: `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`,
		all:     []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"},
		unified: "/sys/fs/cgroup/unified",
	}, {
		name: "pure v2 node, optional fields before the separator",
		mountinfo: `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
27 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
`,
		all:     []string{"/sys/fs/cgroup"},
		unified: "/sys/fs/cgroup",
	}, {
		name: "pure v1 host has no unified hierarchy",
		mountinfo: `32 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
`,
		all: []string{"/sys/fs/cgroup/memory"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, unified, err := parseMountinfo(strings.NewReader(tt.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(all, tt.all) || unified != tt.unified {
				t.Errorf("got %q, unified %q; want %q, unified %q", all, unified, tt.all, tt.unified)
			}
		})
	}
}

func TestCgroupPathStyles(t *testing.T) {
	const pod = "6f1c2b1e-0d4e-4c3a-9b7e-2a1d5c6e7f80"
	id := strings.Repeat("ab", 32)
	for style, want := range map[CgroupStyle]string{
		// kubelet escapes the uid's dashes in systemd unit names.
		SystemdStyle:  "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6f1c2b1e_0d4e_4c3a_9b7e_2a1d5c6e7f80.slice/cri-containerd-" + id + ".scope",
		CgroupfsStyle: "/kubepods/besteffort/pod" + pod + "/" + id,
	} {
		if got := style.cgroupPath(pod, id); got != want {
			t.Errorf("%s: %s, want %s", style, got, want)
		}
	}
}
