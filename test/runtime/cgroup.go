package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// CgroupStyle is how the container's cgroup path is laid out: the two
// layouts kubelet produces, with containerd's container directory inside.
type CgroupStyle int

const (
	// SystemdStyle is kubelet's systemd cgroup driver with containerd:
	//   /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope
	// It is the default because it is the default of kubeadm (since
	// Kubernetes 1.22) and of most managed clusters, so it is what the
	// sensor meets most. The directories are created by runc's cgroupfs
	// driver, not by systemd: the path is what matters to the sensor, and
	// test machines need not run systemd.
	SystemdStyle CgroupStyle = iota
	// CgroupfsStyle is kubelet's cgroupfs driver:
	//   /kubepods/besteffort/pod<uid>/<id>
	CgroupfsStyle
)

// cgroupPath returns the container's cgroup path, relative to the root of
// every hierarchy. kubelet writes a pod uid's dashes as underscores in
// systemd unit names, because systemd reads a dash as a slice separator.
func (s CgroupStyle) cgroupPath(podUID, id string) string {
	if s == CgroupfsStyle {
		return "/kubepods/besteffort/pod" + podUID + "/" + id
	}
	pod := "kubepods-besteffort-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice"
	return "/kubepods.slice/kubepods-besteffort.slice/" + pod + "/cri-containerd-" + id + ".scope"
}

func (s CgroupStyle) String() string {
	if s == CgroupfsStyle {
		return "cgroupfs"
	}
	return "systemd"
}

// hierarchies lists the mount points of the host's cgroup hierarchies:
// one cgroup2 mount on a pure v2 host; each v1 controller plus the
// unified hierarchy on a hybrid host. unified is the cgroup2 mount, whose
// directory inodes are the ids bpf_get_current_cgroup_id() returns; it is
// empty on a pure v1 host.
func hierarchies() (all []string, unified string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, "", fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// parseMountinfo reads hierarchies from a mountinfo file (proc(5)).
func parseMountinfo(r io.Reader) (all []string, unified string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fld := range fields {
			if fld == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		switch fields[sep+1] {
		case "cgroup2":
			unified = fields[4]
			all = append(all, fields[4])
		case "cgroup":
			all = append(all, fields[4])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("read mountinfo: %w", err)
	}
	return all, unified, nil
}

// cgroupInode returns the inode number of a cgroup directory: on 64-bit
// kernels, the cgroup id (kernfs node id) that BPF programs see.
func cgroupInode(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("stat cgroup %s: %w", dir, err)
	}
	return st.Ino, nil
}

// removeCgroups removes path and its ancestors, deepest first, from every
// hierarchy: runc delete removes only the container's own directory, and
// the pod and QoS directories kubelet would own are ours to remove. An
// ancestor another container still uses stays (rmdir fails with EBUSY or
// ENOTEMPTY). A cgroup whose last task is still exiting is busy for a
// moment, so the container's own directory is retried until deadline.
func removeCgroups(hier []string, path string, deadline time.Time) error {
	var errs []error
	for _, h := range hier {
		own := true
		for p := path; p != "/" && p != "." && p != ""; p = filepath.Dir(p) {
			dir := filepath.Join(h, p)
			for {
				err := syscall.Rmdir(dir)
				if err == nil || errors.Is(err, syscall.ENOENT) {
					break
				}
				if own && errors.Is(err, syscall.EBUSY) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if own {
					errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
				}
				break
			}
			own = false
		}
	}
	return errors.Join(errs...)
}
