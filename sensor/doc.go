// Package sensor observes what happens inside containers on this node,
// from the kernel, and attributes it to containers by cgroup id.
//
// Load compiles nothing: it loads the committed BPF objects (bpf/sensor.c,
// built by bpf2go), attaches them to tracepoints, and starts one goroutine
// that drains the ring buffer into Events. The programs report only the
// cgroups user space has passed to Watch: host processes, and containers
// not watched, cost one hash lookup per traced call and produce nothing.
//
// Lifecycle: a Probe holds kernel objects (programs, links, maps) through
// file descriptors; Close detaches every program and releases them, and
// then closes the Events channel. A Probe that is never closed stays
// attached until the process exits. Events the ring buffer had no room for
// are counted by the kernel and reported by Drops, never lost silently.
//
// The attribution helpers (CgroupPath, ParseCgroupPath) map a cgroup id to
// the cgroup v2 directory it names and that path to a container and pod
// uid, for the kubelet layouts (systemd and cgroupfs drivers) and the
// runtimes (containerd, CRI-O, Docker) a node runs.
package sensor
