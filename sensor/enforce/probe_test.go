package enforce

import (
	"errors"
	"strings"
	"testing"
)

// The build host's kernel (6.18) has bpf in its LSM list but refuses
// every trampoline program with EPERM; fanotify and tp_btf work. CI runs
// this as root on the same kind of host.
func TestProbeOnHost(t *testing.T) {
	f := Probe()
	t.Logf("features: %+v", f)
	if f.BPFLSM {
		t.Skip("this kernel loads LSM programs: the EPERM case is the VM test's")
	}
	if r := f.Reasons[FeatureBPFLSM]; !strings.Contains(r, "operation not permitted") {
		t.Errorf("bpf-lsm reason %q; want the kernel's EPERM", r)
	}
	if !f.Fanotify || !f.ExecKill {
		t.Errorf("fanotify %v, exec-kill %v; want both on this host: %v", f.Fanotify, f.ExecKill, f.Reasons)
	}
	if b, ok := f.CanBlock(OpExec); !ok || b != BackendFanotify {
		t.Errorf("CanBlock(exec) = %q, %v; want fanotify", b, ok)
	}
	if _, err := f.Backend(OpDeleteFile); !errors.Is(err, ErrCannotBlock) || !strings.Contains(err.Error(), "operation not permitted") {
		t.Errorf("Backend(deleteFile) = %v; want ErrCannotBlock with the LSM reason", err)
	}
}

func TestCanBlock(t *testing.T) {
	all := Features{BPFLSM: true, Fanotify: true, ExecKill: true}
	noLSM := Features{Fanotify: true, ExecKill: true}
	killOnly := Features{ExecKill: true}
	none := Features{}
	for _, tc := range []struct {
		name string
		f    Features
		op   string
		want string // "" = cannot block
	}{
		{"lsm preferred for exec", all, OpExec, BackendLSM},
		{"fanotify open-exec before kill", noLSM, OpExec, BackendFanotify},
		{"kill at exec as the last resort", killOnly, OpExec, BackendExecKill},
		{"nothing blocks exec without backends", none, OpExec, ""},
		{"lsm for createFile", all, OpCreateFile, BackendLSM},
		{"fanotify open for modifyFile", noLSM, OpModifyFile, BackendFanotify},
		{"the killer cannot block a write", killOnly, OpModifyFile, ""},
		{"deleteFile needs lsm", noLSM, OpDeleteFile, ""},
		{"deleteFile with lsm", all, OpDeleteFile, BackendLSM},
		{"chmod needs lsm", noLSM, OpChmod, ""},
		{"createExecutable needs lsm", noLSM, OpCreateExecutable, ""},
		{"modifyExecutable with lsm", all, OpModifyExecutable, BackendLSM},
		{"fork is never blocked", all, OpFork, ""},
		{"an unknown operation is never blocked", all, "rename", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := tc.f.CanBlock(tc.op)
			if ok != (tc.want != "") || b != tc.want {
				t.Errorf("CanBlock(%s) = %q, %v; want %q", tc.op, b, ok, tc.want)
			}
		})
	}
}
