package sensor

import (
	"errors"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/test/runtime"
)

const cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		want ContainerRef
		ok   bool
	}{
		{"systemd driver with containerd",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b2c3d4e_0000_4111_8222_333344445555.slice/cri-containerd-" + cid + ".scope",
			ContainerRef{ID: cid, Runtime: "containerd", PodUID: "1b2c3d4e-0000-4111-8222-333344445555"}, true},
		{"systemd driver, guaranteed pod (no QoS slice)",
			"/kubepods.slice/kubepods-pod1b2c3d4e_0000_4111_8222_333344445555.slice/cri-containerd-" + cid + ".scope",
			ContainerRef{ID: cid, Runtime: "containerd", PodUID: "1b2c3d4e-0000-4111-8222-333344445555"}, true},
		{"systemd driver with CRI-O",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/crio-" + cid + ".scope",
			ContainerRef{ID: cid, Runtime: "cri-o", PodUID: "abc"}, true},
		{"systemd driver with Docker",
			"/kubepods.slice/kubepods-podabc.slice/docker-" + cid + ".scope",
			ContainerRef{ID: cid, Runtime: "docker", PodUID: "abc"}, true},
		{"cgroupfs driver, bare id",
			"/kubepods/besteffort/pod1b2c3d4e-0000-4111-8222-333344445555/" + cid,
			ContainerRef{ID: cid, PodUID: "1b2c3d4e-0000-4111-8222-333344445555"}, true},
		{"cgroupfs driver with CRI-O",
			"/kubepods/podabc/crio-" + cid,
			ContainerRef{ID: cid, Runtime: "cri-o", PodUID: "abc"}, true},
		{"container outside Kubernetes", "/system.slice/docker-" + cid + ".scope",
			ContainerRef{ID: cid, Runtime: "docker"}, true},
		{"CRI-O's conmon is not the container",
			"/kubepods.slice/kubepods-podabc.slice/crio-conmon-" + cid + ".scope", ContainerRef{}, false},
		{"a pod's own cgroup", "/kubepods/besteffort/podabc", ContainerRef{}, false},
		{"host service", "/system.slice/sshd.service", ContainerRef{}, false},
		{"root", "/", ContainerRef{}, false},
		{"id too short", "/kubepods/podabc/" + cid[:63], ContainerRef{}, false},
		{"upper-case hex is not a runtime's id", "/kubepods/podabc/" + strings.ToUpper(cid), ContainerRef{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseCgroupPath(tc.path)
			if ok != tc.ok || got != tc.want {
				t.Errorf("ParseCgroupPath(%q) = %+v, %v; want %+v, %v", tc.path, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCgroup2Mount(t *testing.T) {
	for _, tc := range []struct {
		name, mountinfo, want string
	}{
		{"hybrid", "30 23 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n" +
			"31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n" +
			"32 30 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n", "/sys/fs/cgroup/unified"},
		{"pure v2 with an optional field", "29 23 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup"},
		{"escaped space", "29 23 0:26 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n", "/mnt/cg two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroup2Mount(strings.NewReader(tc.mountinfo))
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := cgroup2Mount(strings.NewReader("32 30 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n")); err == nil {
		t.Error("pure v1: want an error")
	}
}

// A real container's cgroup id leads back to its path, container id and
// pod uid, in both kubelet layouts, by file handle and by search.
func TestCgroupIDToContainer(t *testing.T) {
	root, err := Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	for _, style := range []runtime.CgroupStyle{runtime.SystemdStyle, runtime.CgroupfsStyle} {
		t.Run(style.String(), func(t *testing.T) {
			c := runtime.Start(t, runtime.Options{Style: style})
			for name, resolve := range map[string]func(string, uint64) (string, error){
				"handle": cgroupPathByHandle, "search": cgroupPathByWalk, "CgroupPath": CgroupPath,
			} {
				p, err := resolve(root, c.CgroupID())
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if p != c.CgroupPath() {
					t.Errorf("%s: path %q, want %q", name, p, c.CgroupPath())
				}
			}
			ref, ok := ParseCgroupPath(c.CgroupPath())
			if !ok || ref.ID != c.ID() || ref.PodUID != c.PodUID() {
				t.Errorf("ParseCgroupPath(%q) = %+v, %v; want id %s pod %s", c.CgroupPath(), ref, ok, c.ID(), c.PodUID())
			}
			if want := strings.TrimSuffix(c.ContainerID(), "://"+c.ID()); style == runtime.SystemdStyle && ref.Runtime != want {
				t.Errorf("runtime %q, want %q", ref.Runtime, want)
			}
		})
	}
	if _, err := CgroupPath(root, 1<<62); !errors.Is(err, ErrCgroupNotFound) {
		t.Errorf("unknown id: err %v, want ErrCgroupNotFound", err)
	}
}
