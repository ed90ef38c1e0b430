// Package agent is the node sensor's pipeline: it turns kernel events of
// watched containers into decisions of the active bundle's runtime
// rulesets, writes the log, alert and observation streams, records pod
// Events, programs the blocking backends per container, and reports what
// it does (status, metrics). `palisade sensor` only wires flags, the
// kernel probe (package sensor), the pod attributor (sensor/pods) and the
// bundle client to an Agent.
//
// Lifecycle: New builds an Agent from its seams (Options); LoadBackends
// loads the blocking backends the node's Features allow; the bundle
// client calls Activate on each new revision, the attributor calls
// OnContainer as containers come and go, and ConsumeBatches decides on the
// probe's batches (Consume on single events) until the channel closes. Close releases the backends
// (after which nothing is blocked) and stops recording pod Events; call it
// before closing the event source, and let Consume return before closing
// the Alerts, Events writers and the Observer's sink.
//
// Decisions this package makes (ambiguities resolved):
//
//   - Decisions use the native matcher (sensor/match) compiled from the
//     bundle the client verified; until it is compiled for the active
//     revision, the engine's Rego decides.
//   - Host processes (a cgroup no pod names) are never decided on nor
//     blocked.
//   - An operation the agent does not know (package sensor may add ops)
//     is counted in palisade_sensor_events_total under its name and not
//     decided on: a decision on an unknown kind would be a guess.
//   - Blocking backends, by operation (a block rule no wired backend can
//     enforce is listed in Status().Unenforced, counted by
//     palisade_sensor_unenforced_blocks and logged, never ignored):
//   - BPF LSM when the kernel loads it: exec, createFile/modifyFile
//     (write, which also denies creation), deleteFile, for exact paths and
//     trailing /** prefixes; createExecutable/modifyExecutable turn on
//     drift prevention for the container, which covers every path (the
//     kernel's inode mark has no path), so only a drift rule on /**
//     without process conditions is enforced; a narrower one is reported.
//     Other patterns go to fanotify when loaded.
//   - Without BPF LSM, exec of an exact path goes to the exec killer
//     (SIGKILL after the exec, no cost to other execs); exec patterns with
//     wildcards, createFile and modifyFile go to fanotify permission
//     events on the container's root mount, decided by the full matcher:
//     a write open (O_WRONLY, O_RDWR, O_TRUNC, O_CREAT; unknown flags are
//     taken as a write) is asked as modifyFile, and as createFile when it
//     has O_CREAT (fanotify cannot tell whether the open creates). A
//     container's root is marked only when a block rule routed to
//     fanotify may apply to it: marking costs every open of the container
//     a user-space decision.
//   - Which rules apply to a container is asked from the matcher with a
//     synthetic event on a sample path of the pattern (wildcards replaced
//     by "x"). A rule whose response has exclusions or whose selectors
//     have process conditions is assumed to apply (the sample could miss):
//     for fanotify that costs only time; for the kernel backends such a
//     rule is routed to fanotify, or reported unenforced, since the kernel
//     cannot evaluate the condition and would over-block.
//   - Rules that need an interactive session (sessionLeaderInteractive)
//     are not enforced by any backend (none sees the session) and are
//     reported.
//   - Observations carry the pod's image digest from the attributor's
//     container event (the status's imageID); bundles.Container has none.
package agent
