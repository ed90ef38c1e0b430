package enforce

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Backends, as Features.CanBlock names them.
const (
	BackendLSM      = "bpf-lsm"
	BackendFanotify = "fanotify"
	BackendExecKill = "exec-kill"
)

// Feature names, the keys of Features.Reasons.
const (
	FeatureBPFLSM   = "bpf-lsm"
	FeatureFanotify = "fanotify"
	FeatureExecKill = "exec-kill"
)

// Features says which enforcement backends this node's kernel offers.
type Features struct {
	BPFLSM   bool // LSM programs load and attach (lsm/file_open)
	Fanotify bool // fanotify permission events, open and open-exec
	ExecKill bool // tp_btf/sched_process_exec with bpf_send_signal
	// Reasons holds, for each feature that is missing, the kernel's
	// answer (an errno, a verifier message): what an operator reads to
	// know why a node cannot block an operation.
	Reasons map[string]string
}

// Probe tries each backend the way it is used: it loads and attaches a
// trivial LSM program, creates a fanotify group of class FAN_CLASS_CONTENT
// and marks a temporary file for open and open-exec permission events,
// and loads and attaches the exec killer. Everything is released before
// it returns. It needs the privileges the backends need (root); without
// them every feature is missing, with EPERM as the reason.
func Probe() Features {
	f := Features{Reasons: map[string]string{}}
	probe := func(name string, ok *bool, try func() error) error {
		err := try()
		if err != nil {
			f.Reasons[name] = err.Error()
			return err
		}
		*ok = true
		return nil
	}
	probe(FeatureExecKill, &f.ExecKill, probeExecKill)
	probe(FeatureFanotify, &f.Fanotify, probeFanotify)
	if err := probe(FeatureBPFLSM, &f.BPFLSM, probeLSM); errors.Is(err, unix.EPERM) && f.ExecKill {
		// cilium/ebpf suggests a memlock limit for any EPERM; a tracing
		// program just loaded with the same privileges, so the kernel
		// refuses this program type (bpf missing from lsm=, or
		// trampoline programs refused), which is what to tell an operator.
		f.Reasons[FeatureBPFLSM] = err.Error() + " (tp_btf programs load: the kernel refuses LSM programs)"
	}
	return f
}

// probeLSM loads `return 0` as lsm/file_open and attaches it. A kernel
// without bpf in its LSM list, or one that refuses trampolines (the build
// host: EPERM at attach), fails here rather than when the first rule is
// enforced. Attaching is part of the probe: the attached program allows
// everything, and is detached at once.
func probeLSM() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:       "probe_lsm",
		Type:       ebpf.LSM,
		AttachType: ebpf.AttachLSMMac,
		AttachTo:   "file_open",
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		return lsmError("load", err)
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return lsmError("attach", err)
	}
	return l.Close()
}

// lsmError keeps the errno alone for EPERM: cilium/ebpf appends a
// memlock hint to every EPERM, which misleads here (Probe says why).
func lsmError(step string, err error) error {
	if errors.Is(err, unix.EPERM) {
		err = unix.EPERM
	}
	return fmt.Errorf("%s lsm/file_open: %w", step, err)
}

// probeFanotify creates a permission-class group and marks a temporary
// file (not a mount: nothing else gets events) with both permission
// events: a kernel built without CONFIG_FANOTIFY_ACCESS_PERMISSIONS
// refuses the class, one older than 5.0 the open-exec event.
func probeFanotify() error {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK|unix.FAN_REPORT_TID,
		unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fanotify_init(FAN_CLASS_CONTENT): %w", err)
	}
	defer unix.Close(fd)
	tmp, err := os.CreateTemp("", "palisade-probe-")
	if err != nil {
		return fmt.Errorf("fanotify probe file: %w", err)
	}
	defer os.Remove(tmp.Name())
	tmp.Close()
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_OPEN_PERM|unix.FAN_OPEN_EXEC_PERM, unix.AT_FDCWD, tmp.Name()); err != nil {
		return fmt.Errorf("fanotify_mark(FAN_OPEN_PERM|FAN_OPEN_EXEC_PERM): %w", err)
	}
	return nil
}

func probeExecKill() error {
	k, err := LoadExecKiller()
	if err != nil {
		return err
	}
	return k.Close()
}

// Operations as the policy names them (D4C's), for CanBlock.
const (
	OpFork             = "fork"
	OpExec             = "exec"
	OpCreateExecutable = "createExecutable"
	OpModifyExecutable = "modifyExecutable"
	OpCreateFile       = "createFile"
	OpModifyFile       = "modifyFile"
	OpDeleteFile       = "deleteFile"
	OpChmod            = "chmod"
)

// ErrCannotBlock is returned by Features.Backend for an operation no
// backend of this node can block.
var ErrCannotBlock = errors.New("cannot block on this node")

// CanBlock returns the backend that blocks op on this node, in order of
// preference, and false when none can: a block rule for op must then be
// reported as unenforced, never ignored.
//
//   - exec: BPF LSM (EPERM before the exec), else fanotify open-exec
//     (EPERM before the exec), else the exec killer (SIGKILL after it).
//   - createFile, modifyFile: BPF LSM, else fanotify open permission.
//     Fanotify sees the open, not the write: it denies opening the file
//     (Access.Write tells a write open apart), and a file the open creates
//     exists, empty, when the open is denied.
//   - createExecutable, modifyExecutable, deleteFile, chmod: BPF LSM only.
//     They happen through chmod, unlink and writes to files that become
//     executable, which raise no fanotify permission event.
//   - fork: no backend; D4C does not block forks either.
func (f Features) CanBlock(op string) (backend string, ok bool) {
	switch op {
	case OpExec:
		switch {
		case f.BPFLSM:
			return BackendLSM, true
		case f.Fanotify:
			return BackendFanotify, true
		case f.ExecKill:
			return BackendExecKill, true
		}
	case OpCreateFile, OpModifyFile:
		switch {
		case f.BPFLSM:
			return BackendLSM, true
		case f.Fanotify:
			return BackendFanotify, true
		}
	case OpCreateExecutable, OpModifyExecutable, OpDeleteFile, OpChmod:
		if f.BPFLSM {
			return BackendLSM, true
		}
	}
	return "", false
}

// Backend is CanBlock with the reason as an error: ErrCannotBlock wrapped
// with the operation and the kernel's reasons for the missing backends.
func (f Features) Backend(op string) (string, error) {
	if b, ok := f.CanBlock(op); ok {
		return b, nil
	}
	if r, ok := f.Reasons[FeatureBPFLSM]; ok {
		return "", fmt.Errorf("%s: %w (bpf-lsm: %s)", op, ErrCannotBlock, r)
	}
	return "", fmt.Errorf("%s: %w", op, ErrCannotBlock)
}
