package runtime

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

var reapOnce sync.Once

// reap deletes the containers under StateRoot whose owning test binary is
// gone, and their cgroup directories: a binary killed on timeout never
// runs its Cleanups, and its `sleep 3600` inits would otherwise outlive
// it by an hour. It is best effort: a container it cannot remove is left
// for a later run, and never fails the test that found it.
func reap(runc string, hier []string) {
	entries, err := os.ReadDir(StateRoot)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	for _, e := range entries {
		if e.IsDir() {
			reapOne(ctx, runc, hier, e.Name(), deadline)
		}
	}
}

// reapOne removes container id if its owner is gone. It holds the cgroup
// lock throughout, so that of two binaries reaping at once, one removes
// the container whole and the other then finds nothing to do.
func reapOne(ctx context.Context, runc string, hier []string, id string, deadline time.Time) {
	lock, err := lockCgroups()
	if err != nil {
		return
	}
	defer lock.unlock()
	out, err := exec.CommandContext(ctx, runc, "--root", StateRoot, "state", id).Output()
	if err != nil {
		return
	}
	var st struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(out, &st) != nil {
		return
	}
	owner, err := strconv.Atoi(st.Annotations[ownerAnnotation])
	if err != nil || owner == os.Getpid() {
		return
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(owner)); err == nil {
		return // its owner is still running and will clean up
	}
	_ = exec.CommandContext(ctx, runc, "--root", StateRoot, "delete", "--force", id).Run()
	if cg := st.Annotations[cgroupAnnotation]; cg != "" {
		_ = removeCgroups(hier, cg, deadline)
	}
}
