package pods

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/palisade-dev/palisade/sensor"
)

// errNoCgroup: no cgroup directory names the container. It has not
// started yet, or has exited and its cgroup was removed; not worth a log.
var errNoCgroup = errors.New("no cgroup for container")

// CgroupIDFor returns the cgroup id of a container of this node: the
// inode of the cgroup v2 directory whose name holds the container id
// (which is the id BPF programs report, on 64-bit kernels). The id may
// carry its runtime scheme. It reports false when no such cgroup exists,
// so the sensor cannot watch a cgroup it did not find.
func (a *Attributor) CgroupIDFor(containerID string) (uint64, bool) {
	id, err := a.cgroupID(containerID)
	if err != nil {
		if !errors.Is(err, errNoCgroup) {
			a.log.Error("cgroup lookup failed", logKeyContainer, containerID, logKeyError, err.Error())
		}
		return 0, false
	}
	return id, true
}

func (a *Attributor) cgroupID(containerID string) (uint64, error) {
	root := a.opts.CgroupRoot
	if root == "" {
		var err error
		if root, err = sensor.Cgroup2Mount(); err != nil {
			return 0, err
		}
	}
	return findCgroup(root, StripRuntime(containerID))
}

// findCgroup searches the cgroup v2 hierarchy at root for the container's
// directory. A name holding the id is not enough: CRI-O's monitor lives
// in crio-conmon-<id>, beside the container's crio-<id>, so the path
// must parse as that container's (sensor.ParseCgroupPath). sensor has no
// exported search by name, only by id (CgroupPath), hence this walk;
// it costs one readdir per cgroup, once per container start.
func findCgroup(root, id string) (uint64, error) {
	if id == "" {
		return 0, fmt.Errorf("empty container id: %w", errNoCgroup)
	}
	var ino uint64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // a cgroup removed while walking
		}
		if !d.IsDir() || !strings.Contains(d.Name(), id) {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil
		}
		ref, ok := sensor.ParseCgroupPath("/" + rel)
		if !ok || ref.ID != id {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("search cgroups under %s: %w", root, err)
	}
	if ino == 0 {
		return 0, fmt.Errorf("container %s: %w", id, errNoCgroup)
	}
	return ino, nil
}
