// Package runtime runs real containers for tests: Debian's runc starting a
// busybox-static root file system, placed in a cgroup whose path names a
// 64-hex container id the way kubelet and containerd name it on a node.
// The sensor's tests use it to see real processes, in real namespaces and
// cgroups, attributed to a container id they can put in a Pod's status.
//
// runc, not crun: Debian's crun refuses hybrid cgroup hosts (cgroup v1
// controllers plus cgroup v2 at /sys/fs/cgroup/unified), which is what the
// build machine has, while a real node is usually pure cgroup v2. runc
// handles both; this package detects which one the host has.
//
// Lifecycle: Start returns once runc has started the container's init and
// written its host pid. runc stays in the foreground as a child of the
// test binary (no --detach), so that a killed process is reaped at once
// and its cgroup can be removed without waiting for the host's pid 1. The
// test's Cleanup kills and deletes the container, then removes the cgroup
// directories of its path (container, pod, and the kubepods directories
// no other container uses) in every hierarchy. Containers keep their state under StateRoot, not runc's default
// root, so that whatever a crashed test binary left behind is told apart
// from other containers on the machine, and reaped by the next Start.
//
// The host must have runc and busybox-static installed
// (hack/install-runtime-deps.sh); Start fails the test, never skips it,
// when they are missing, with the command that installs them.
package runtime
