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
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		out, err := exec.CommandContext(ctx, runc, "--root", StateRoot, "state", e.Name()).Output()
		if err != nil {
			continue
		}
		var st struct {
			Annotations map[string]string `json:"annotations"`
		}
		if json.Unmarshal(out, &st) != nil {
			continue
		}
		owner, err := strconv.Atoi(st.Annotations[ownerAnnotation])
		if err != nil || owner == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(owner)); err == nil {
			continue // its owner is still running and will clean up
		}
		_ = exec.CommandContext(ctx, runc, "--root", StateRoot, "delete", "--force", e.Name()).Run()
		if cg := st.Annotations[cgroupAnnotation]; cg != "" {
			if lock, err := lockCgroups(); err == nil {
				_ = removeCgroups(hier, cg, time.Now().Add(time.Second))
				lock.unlock()
			}
		}
	}
}
