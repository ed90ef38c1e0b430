package sensor

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// ErrCgroupNotFound is returned by CgroupPath when no cgroup has the id:
// the cgroup was removed (its container exited) or never existed.
var ErrCgroupNotFound = errors.New("cgroup not found")

// Cgroup2Mount returns where the cgroup v2 hierarchy is mounted, the one
// whose directory inodes are the ids BPF programs report: /sys/fs/cgroup on
// a pure v2 node, /sys/fs/cgroup/unified on a hybrid one.
func Cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	return cgroup2Mount(f)
}

func cgroup2Mount(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - cgroup2 cgroup2 rw
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && len(fields) > 4 {
				if fields[i+1] == "cgroup2" {
					return unescapeMountinfo(fields[4]), nil
				}
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return "", errors.New("no cgroup2 hierarchy mounted: cgroup ids cannot be resolved")
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CgroupPath returns the path, relative to the cgroup v2 mount at root
// (see Cgroup2Mount), of the cgroup with this id, as /proc/<pid>/cgroup
// shows it: "/kubepods.slice/…/cri-containerd-<id>.scope". It opens the
// cgroup by its kernfs file handle (the id is the handle), which needs
// CAP_DAC_READ_SEARCH, and falls back to searching the hierarchy for the
// directory whose inode is the id (on 64-bit kernels they are equal). It
// returns ErrCgroupNotFound when neither finds it.
func CgroupPath(root string, id uint64) (string, error) {
	p, err := cgroupPathByHandle(root, id)
	if err == nil {
		return p, nil
	}
	if errors.Is(err, ErrCgroupNotFound) {
		return "", fmt.Errorf("cgroup %d: %w", id, err)
	}
	return cgroupPathByWalk(root, id)
}

// fileidKernfs is FILEID_KERNFS: a kernfs node's 64-bit id as a handle.
const fileidKernfs = 0xfe

func cgroupPathByHandle(root string, id uint64) (string, error) {
	if sysOpenByHandleAt == 0 {
		return "", errors.ErrUnsupported
	}
	mnt, err := os.Open(root)
	if err != nil {
		return "", fmt.Errorf("open cgroup mount: %w", err)
	}
	defer mnt.Close()
	// struct file_handle { u32 handle_bytes; int handle_type; u8 f_handle[8]; }
	var h [16]byte
	binary.NativeEndian.PutUint32(h[0:], 8)
	binary.NativeEndian.PutUint32(h[4:], fileidKernfs)
	binary.NativeEndian.PutUint64(h[8:], id)
	fd, _, errno := syscall.Syscall(sysOpenByHandleAt, mnt.Fd(),
		uintptr(unsafe.Pointer(&h[0])), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC)
	if errno != 0 {
		if errno == syscall.ESTALE || errno == syscall.ENOENT {
			return "", ErrCgroupNotFound
		}
		return "", fmt.Errorf("open cgroup by handle: %w", errno)
	}
	defer syscall.Close(int(fd))
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
	if err != nil {
		return "", fmt.Errorf("read cgroup path: %w", err)
	}
	return relativeTo(root, target)
}

func cgroupPathByWalk(root string, id uint64) (string, error) {
	var found string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a cgroup removed while walking
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Ino == id {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("search cgroups under %s: %w", root, err)
	}
	if found == "" {
		return "", fmt.Errorf("cgroup %d: %w", id, ErrCgroupNotFound)
	}
	return relativeTo(root, found)
}

func relativeTo(root, p string) (string, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("cgroup %s is outside the mount %s", p, root)
	}
	return "/" + strings.TrimPrefix(rel, "."), nil
}

// ContainerRef is what a cgroup path says about its container.
type ContainerRef struct {
	// ID is the container id: 64 hex digits, as a Pod's
	// status.containerStatuses[].containerID has it after the scheme.
	ID string
	// Runtime is the containerID scheme: "containerd", "cri-o" or
	// "docker"; empty for kubelet's cgroupfs layout with containerd or
	// Docker, whose directory is the bare id.
	Runtime string
	// PodUID is the pod's uid, with dashes, or empty when the path has no
	// pod directory (a container started outside Kubernetes).
	PodUID string
}

// runtimePrefixes are the container directory prefixes of the runtimes,
// with their containerID scheme. crio-conmon-<id> is CRI-O's monitor,
// not the container: its prefix is not here, so it does not parse.
var runtimePrefixes = []struct{ prefix, runtime string }{
	{"cri-containerd-", "containerd"},
	{"crio-", "cri-o"},
	{"docker-", "docker"},
}

// ParseCgroupPath reads the container id and pod uid out of a cgroup path
// in the layouts kubelet makes, with either cgroup driver:
//
//	/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope
//	/kubepods/besteffort/pod<uid>/<id>
//	/kubepods/pod<uid>/crio-<id>
//
// It reports false for a path that does not end in a container: a pod's
// own cgroup, a host service, CRI-O's conmon.
func ParseCgroupPath(p string) (ContainerRef, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	last := strings.TrimSuffix(parts[len(parts)-1], ".scope")
	var ref ContainerRef
	for _, rp := range runtimePrefixes {
		if id, ok := strings.CutPrefix(last, rp.prefix); ok {
			ref.ID, ref.Runtime = id, rp.runtime
			break
		}
	}
	if ref.ID == "" {
		ref.ID = last
	}
	if !isContainerID(ref.ID) {
		return ContainerRef{}, false
	}
	for _, part := range parts[:len(parts)-1] {
		if uid, ok := strings.CutPrefix(part, "pod"); ok {
			ref.PodUID = uid // cgroupfs: pod<uid>
		} else if i := strings.LastIndex(part, "-pod"); i >= 0 && strings.HasSuffix(part, ".slice") {
			// systemd: kubepods-<qos>-pod<uid>.slice, the uid's dashes
			// written as underscores (a dash separates slice names).
			ref.PodUID = strings.ReplaceAll(strings.TrimSuffix(part[i+len("-pod"):], ".slice"), "_", "-")
		}
	}
	return ref, true
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
