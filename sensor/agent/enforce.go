package agent

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/enforce"
)

// ExecKiller is the part of *enforce.ExecKiller the agent drives.
type ExecKiller interface {
	Block(cgroupID uint64, path string) error
	Unblock(cgroupID uint64, path string) error
}

// FanotifyMarks is the part of *enforce.Fanotify the agent drives; its
// decisions come from (*Agent).DecideAccess.
type FanotifyMarks interface {
	MarkContainer(root string) error
	UnmarkContainer(root string) error
}

// LSMRules is the part of *enforce.LSM the agent drives.
type LSMRules interface {
	BlockExec(cgroupID uint64, path string) error
	BlockWrite(cgroupID uint64, path string) error
	BlockDelete(cgroupID uint64, path string) error
	DriftPrevention(cgroupID uint64, on bool) error
	Unwatch(cgroupID uint64) error
}

var (
	_ ExecKiller    = (*enforce.ExecKiller)(nil)
	_ FanotifyMarks = (*enforce.Fanotify)(nil)
	_ LSMRules      = (*enforce.LSM)(nil)
)

// Backends are the blocking backends the agent programs; a nil one is
// not wired.
type Backends struct {
	LSM      LSMRules
	Fanotify FanotifyMarks
	Killer   ExecKiller
}

// LoadBackends loads the blocking backends the node's Features offer and
// the agent drives: BPF LSM, fanotify (for what the LSM's path rules
// cannot express, or for opens and exec patterns without LSM) and,
// without LSM, the exec killer. A backend that fails to load is logged
// and its operations fall to the next backend or are reported
// unenforced; the error is returned only when a feature the probe found
// failed to load, for the caller to log (the agent runs on). It logs the
// startup line naming, per operation, the backend that blocks it.
func (a *Agent) LoadBackends() error {
	f := a.opts.Features
	var errs []error
	a.mu.Lock()
	if f.BPFLSM && a.backends.LSM == nil {
		if l, err := enforce.LoadLSM(); err != nil {
			errs = append(errs, err)
			a.log.Error("bpf lsm not loaded: its operations fall back", "error", err)
		} else {
			a.backends.LSM, a.loaded = l, append(a.loaded, l)
		}
	}
	if f.Fanotify && a.backends.Fanotify == nil {
		if fa, err := enforce.NewFanotify(a.DecideAccess); err != nil {
			errs = append(errs, err)
			a.log.Error("fanotify not loaded: its operations fall back", "error", err)
		} else {
			a.backends.Fanotify, a.loaded = fa, append(a.loaded, fa)
		}
	}
	if f.ExecKill && a.backends.LSM == nil && a.backends.Killer == nil {
		if k, err := enforce.LoadExecKiller(); err != nil {
			errs = append(errs, err)
			a.log.Error("exec killer not loaded: exact exec blocks fall back", "error", err)
		} else {
			a.backends.Killer, a.loaded = k, append(a.loaded, k)
		}
	}
	a.mu.Unlock()
	a.log.Info("sensor can block", "node", a.node, "backends", a.BackendSummary())
	return joinErrs(errs)
}

// operations are the D4C operations, in the order status lists them.
var operations = []string{enforce.OpExec, enforce.OpFork, enforce.OpCreateExecutable, enforce.OpModifyExecutable,
	enforce.OpCreateFile, enforce.OpModifyFile, enforce.OpDeleteFile}

// routeOpLocked names the backends that block op here ("+" between
// them: exec-kill+fanotify is exact paths by the killer, patterns by
// fanotify), or the reason none does.
func (a *Agent) routeOpLocked(op string) (string, string) {
	b := a.backends
	var out []string
	switch op {
	case enforce.OpExec:
		if b.LSM != nil {
			out = append(out, enforce.BackendLSM)
		}
		if b.Killer != nil {
			out = append(out, enforce.BackendExecKill)
		}
		if b.Fanotify != nil {
			out = append(out, enforce.BackendFanotify)
		}
	case enforce.OpCreateFile, enforce.OpModifyFile:
		if b.LSM != nil {
			out = append(out, enforce.BackendLSM)
		}
		if b.Fanotify != nil {
			out = append(out, enforce.BackendFanotify)
		}
	case enforce.OpDeleteFile, enforce.OpCreateExecutable, enforce.OpModifyExecutable:
		if b.LSM != nil {
			out = append(out, enforce.BackendLSM)
		}
	}
	if len(out) > 0 {
		return strings.Join(out, "+"), ""
	}
	if _, err := a.opts.Features.Backend(op); err != nil {
		return "", err.Error()
	}
	kb, _ := a.opts.Features.CanBlock(op)
	return "", fmt.Sprintf("the kernel offers %s, which did not load", kb)
}

// BackendSummary names, per operation, the backends that block it here,
// or why none does.
func (a *Agent) BackendSummary() map[string]string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := map[string]string{}
	for _, op := range operations {
		if b, reason := a.routeOpLocked(op); b != "" {
			out[op] = b
		} else {
			out[op] = "cannot block on this node: " + reason
		}
	}
	return out
}

// route picks the backend for one block rule in one container, with the
// kernel path for the LSM; "" and a reason when none can enforce it.
func (a *Agent) routeRuleLocked(r blockRule) (backend, kpath, reason string) {
	b := a.backends
	if r.interactive {
		return "", "", "sessionLeaderInteractive is not visible to any blocking backend"
	}
	fanotify := func(why string) (string, string, string) {
		if b.Fanotify != nil && (r.op == enforce.OpExec || r.op == enforce.OpCreateFile || r.op == enforce.OpModifyFile) {
			return enforce.BackendFanotify, "", ""
		}
		return "", "", why
	}
	if b.LSM != nil {
		switch r.op {
		case enforce.OpCreateExecutable, enforce.OpModifyExecutable:
			// The kernel's drift mark is per file, not per path: only a
			// rule over every path is what it enforces.
			if kp, err := enforce.KernelPath(r.pattern); err != nil || kp != "/" || !r.decisive {
				return "", "", fmt.Sprintf("bpf-lsm drift prevention covers every path: only targetFilePath /** without conditions is enforced, not %q", r.pattern)
			}
			return enforce.BackendLSM, "", ""
		case enforce.OpExec, enforce.OpCreateFile, enforce.OpModifyFile, enforce.OpDeleteFile:
			if !r.decisive {
				return fanotify("process conditions or exclusions are not expressible in bpf-lsm path rules")
			}
			kp, err := enforce.KernelPath(r.pattern)
			if err != nil {
				return fanotify(err.Error())
			}
			return enforce.BackendLSM, kp, ""
		}
	}
	if r.op == enforce.OpExec && b.Killer != nil && r.exact() && r.decisive {
		return enforce.BackendExecKill, r.pattern, ""
	}
	if be, why := a.routeOpLocked(r.op); be == "" {
		return "", "", why
	}
	return fanotify(fmt.Sprintf("pattern %q needs a backend this node did not load", r.pattern))
}

// programLocked gives each backend the block rules of c that apply to
// w's container, and notes what it cannot enforce.
func (a *Agent) programLocked(w *watched, c *compiled) {
	a.unprogramLocked(w, false)
	w.covered = map[string]string{}
	fanOps := map[string]bool{}
	defer func() { w.fanOps = fanOps }()
	if c == nil {
		a.syncMarkLocked(w)
		return
	}
	b := a.backends
	for _, r := range c.rules {
		if !c.appliesTo(r, w.facts) {
			continue
		}
		backend, kp, reason := a.routeRuleLocked(r)
		var err error
		switch backend {
		case enforce.BackendExecKill:
			if err = b.Killer.Block(w.cgroupID, kp); err == nil {
				w.execBlocks = append(w.execBlocks, kp)
				a.log.Info("exec blocked", "container", w.id, "pod", w.facts.Namespace+"/"+w.facts.PodName, "path", kp, "backend", backend)
			}
		case enforce.BackendLSM:
			switch r.op {
			case enforce.OpExec:
				err = b.LSM.BlockExec(w.cgroupID, kp)
			case enforce.OpCreateFile, enforce.OpModifyFile:
				err = b.LSM.BlockWrite(w.cgroupID, kp)
			case enforce.OpDeleteFile:
				err = b.LSM.BlockDelete(w.cgroupID, kp)
			default:
				err = b.LSM.DriftPrevention(w.cgroupID, true)
			}
			if err == nil {
				w.lsm = true
			}
		case enforce.BackendFanotify:
			w.fanWant, fanOps[r.op] = true, true
		default:
			a.noteUnenforcedLocked(r.ruleset, r.op, reason)
			continue
		}
		if err != nil {
			a.noteUnenforcedLocked(r.ruleset, r.op, err.Error())
			continue
		}
		if prev, ok := w.covered[r.op]; ok && prev != backend && !strings.Contains(prev, backend) {
			backend = prev + "+" + backend
		}
		w.covered[r.op] = backend
	}
	a.syncMarkLocked(w)
}

// unprogramLocked removes what the kernel backends hold for w; the
// fanotify mark stays unless gone (a reprogram that still wants it must
// not open a window).
func (a *Agent) unprogramLocked(w *watched, gone bool) {
	b := a.backends
	if b.Killer != nil {
		for _, p := range w.execBlocks {
			_ = b.Killer.Unblock(w.cgroupID, p)
		}
	}
	w.execBlocks = nil
	if w.lsm && b.LSM != nil {
		if err := b.LSM.Unwatch(w.cgroupID); err != nil {
			a.log.Error("remove lsm rules", "container", w.id, "error", err)
		}
	}
	w.lsm = false
	w.fanWant = false
	if gone {
		a.syncMarkLocked(w)
	}
}

// syncMarkLocked marks or unmarks w's root for fanotify as w.fanWant says.
func (a *Agent) syncMarkLocked(w *watched) {
	fa := a.backends.Fanotify
	if fa == nil {
		return
	}
	switch {
	case w.fanWant && w.fanRoot == "":
		root, err := a.root(w.cgroupID)
		if err == nil {
			err = fa.MarkContainer(root)
		}
		if err != nil {
			// Retried on the container's next event (Handle).
			a.log.Debug("fanotify mark not set yet", "container", w.id, "error", err)
			return
		}
		w.fanRoot = root
		a.log.Info("container root marked for fanotify", "container", w.id, "pod", w.facts.Namespace+"/"+w.facts.PodName, "root", root)
	case !w.fanWant && w.fanRoot != "":
		if err := fa.UnmarkContainer(w.fanRoot); err != nil {
			a.log.Error("fanotify unmark", "container", w.id, "error", err)
		}
		w.fanRoot = ""
	}
}

// retryMark marks a container whose root could not be marked when it
// started (no process yet).
func (a *Agent) retryMark(w *watched) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.fanWant && w.fanRoot == "" {
		a.syncMarkLocked(w)
	}
}

// noteBlock accounts for a block response on an event the kernel
// reported. The exec killer kills after the exec, so an exec it holds is
// counted as blocked; an operation another backend covers in this
// container was denied before it happened (and counted there) or let
// through by a timeout (counted by the backend); anything else was not
// blocked and is reported.
func (a *Agent) noteBlock(w *watched, ruleset, op, p string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w != nil {
		if op == enforce.OpExec && slices.Contains(w.execBlocks, p) {
			a.killed.Add(1)
			return
		}
		if b := w.covered[op]; b != "" && (b != enforce.BackendExecKill) {
			return
		}
	}
	// Known already (the common case of a storm of blocked events): only
	// count it; the reason was worked out the first time.
	if u := a.unenforced[ruleset+"\x00"+op]; u != nil {
		u.Count++
		return
	}
	reason := "no backend programmed for this container and path"
	if b, r := a.routeOpLocked(op); b == "" {
		reason = r
	} else if w != nil && w.fanWant && w.fanRoot == "" {
		reason = "fanotify: the container's root is not marked yet"
	}
	a.noteUnenforcedLocked(ruleset, op, reason).Count++
}

func (a *Agent) noteUnenforcedLocked(ruleset, op, reason string) *Unenforced {
	k := ruleset + "\x00" + op
	u := a.unenforced[k]
	if u == nil {
		u = &Unenforced{Ruleset: ruleset, Operation: op, Reason: reason}
		a.unenforced[k] = u
		a.log.Warn("block not enforced on this node", "ruleset", ruleset, "operation", op, "reason", reason)
	}
	return u
}

// DecideAccess answers a fanotify permission event: the decide callback
// of the enforce.Fanotify LoadBackends creates. A process outside the
// marked containers (a host process, whatever path it uses) is always
// allowed; an exec is asked as exec of the file, a write open as
// modifyFile, and also as createFile when it has O_CREAT.
func (a *Agent) DecideAccess(acc enforce.Access) enforce.Verdict {
	return a.decideAccess(acc.CgroupID, acc.Kind, acc.ContainerPath, acc.TID, acc.OpenFlags)
}

const writeFlags = syscall.O_WRONLY | syscall.O_RDWR | syscall.O_TRUNC | syscall.O_CREAT

func (a *Agent) decideAccess(cgroupID uint64, kind enforce.Kind, p string, tid int, flags func() (uint64, bool)) enforce.Verdict {
	if cgroupID == 0 || p == "" {
		return enforce.Allow
	}
	a.mu.RLock()
	w := a.containers[a.byCgroup[cgroupID]]
	var (
		facts  *bundles.Container
		fanOps map[string]bool
	)
	marked := w != nil && w.fanRoot != ""
	if marked {
		facts, fanOps = w.facts, w.fanOps
	}
	a.mu.RUnlock()
	if !marked || a.attr == nil {
		return enforce.Allow // a host process, or a container not marked
	}
	if f, ok := a.attr.Lookup(w.id); ok {
		facts = f
	}
	var ops []string // the operations this access may be, routed to fanotify
	ev := bundles.RuntimeEvent{Kind: bundles.EventFile, Path: p}
	switch kind {
	case enforce.OpenExec:
		// Exact exec paths go to the exec killer: each rule has one
		// backend, so what blocks an exec does not depend on whether
		// the container also has file blocks.
		if !fanOps[enforce.OpExec] {
			return enforce.Allow
		}
		ev = syntheticEvent(enforce.OpExec, p)
		ops = []string{enforce.OpExec}
	case enforce.Open:
		if !fanOps[enforce.OpModifyFile] && !fanOps[enforce.OpCreateFile] {
			return enforce.Allow
		}
		fl, known := flags()
		if known && fl&writeFlags == 0 {
			return enforce.Allow // a read
		}
		// Unknown flags (openat2) are taken as a write: fail closed on
		// the paths a block rule names.
		if fanOps[enforce.OpModifyFile] {
			ops = append(ops, enforce.OpModifyFile)
		}
		if fanOps[enforce.OpCreateFile] && (!known || fl&syscall.O_CREAT != 0) {
			ops = append(ops, enforce.OpCreateFile)
		}
		ev.ProcessName = comm(tid)
	default:
		return enforce.Allow
	}
	d := decisions.Get().(*bundles.RuntimeDecision)
	defer decisions.Put(d)
	for _, op := range ops {
		ev.Operation = op
		if err := a.decide(d, &ev, facts); err != nil {
			a.log.Error("decide on fanotify event", "error", err)
			return enforce.Allow
		}
		if slices.Contains(d.Actions, "block") {
			a.fanDenied.Add(1)
			a.log.Debug("denied", "container", w.id, "operation", op, "path", p, "backend", enforce.BackendFanotify)
			return enforce.Deny
		}
	}
	return enforce.Allow
}

// comm reads a thread's name, as the kernel events carry it.
func comm(tid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// errNoProcess: a container's cgroup lists no process to reach its root.
var errNoProcess = errors.New("no process in the container's cgroup")

// containerRoot is /proc/<pid>/root of a process of the cgroup: the
// container's root mount, as enforce.Fanotify.MarkContainer needs it.
func containerRoot(cgroupID uint64) (string, error) {
	mount, err := sensor.Cgroup2Mount()
	if err != nil {
		return "", err
	}
	rel, err := sensor.CgroupPath(mount, cgroupID)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(mount, rel, "cgroup.procs"))
	if err != nil {
		return "", fmt.Errorf("container root of cgroup %d: %w", cgroupID, err)
	}
	for _, f := range strings.Fields(string(b)) {
		if _, err := strconv.Atoi(f); err == nil {
			return path.Join("/proc", f, "root"), nil
		}
	}
	return "", fmt.Errorf("container root of cgroup %d: %w", cgroupID, errNoProcess)
}

func joinErrs(errs []error) error { return errors.Join(errs...) }
