package lsmprobe

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/palisade-dev/palisade/test/vm"
)

// inGuest skips outside test/vm's guest: this host's kernel refuses LSM
// programs (EPERM on attach), and the test is run by test/vm's
// TestBPFLSMDeniesInGuest inside Debian's kernel instead.
func inGuest(t *testing.T) {
	t.Helper()
	if os.Getenv(vm.EnvGuest) != "1" {
		t.Skip("runs inside test/vm's QEMU guest (go test ./test/vm -run BPFLSM)")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatalf("remove memlock limit: %v", err)
	}
}

// field is one pointer step from a hook's argument to the inode number:
// the member's struct and name, resolved to an offset in the kernel's BTF.
type field struct{ structName, member string }

// denyInode returns an LSM program for hook that returns -EPERM when the
// inode reached from the hook's first argument through path has number
// ino, and 0 (allow) otherwise. Tracing programs may load through BTF
// pointers directly, so each step is one load at the member's offset.
func denyInode(t *testing.T, spec *btf.Spec, hook string, path []field, ino uint64) *ebpf.Program {
	t.Helper()
	insns := asm.Instructions{
		// r6 = the hook's first argument (the context is an array of u64).
		asm.LoadMem(asm.R6, asm.R1, 0, asm.DWord),
	}
	for i, f := range path {
		off := offset(t, spec, f)
		dst := asm.R6
		if i == len(path)-1 {
			dst = asm.R3
		}
		insns = append(insns, asm.LoadMem(dst, asm.R6, int16(off), asm.DWord))
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 0),
		asm.LoadImm(asm.R4, int64(ino), asm.DWord),
		asm.JNE.Reg(asm.R3, asm.R4, "allow"),
		asm.Mov.Imm(asm.R0, -int32(syscall.EPERM)),
		asm.Return().WithSymbol("allow"),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "deny_" + hook,
		Type:         ebpf.LSM,
		AttachType:   ebpf.AttachLSMMac,
		AttachTo:     hook,
		Instructions: insns,
		License:      "GPL",
	})
	if err != nil {
		t.Fatalf("load lsm/%s: %v", hook, err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// offset finds a member's byte offset in the running kernel's BTF.
func offset(t *testing.T, spec *btf.Spec, f field) uint32 {
	t.Helper()
	var s *btf.Struct
	if err := spec.TypeByName(f.structName, &s); err != nil {
		t.Fatalf("BTF struct %s: %v", f.structName, err)
	}
	for _, m := range s.Members {
		if m.Name == f.member {
			return m.Offset.Bytes()
		}
	}
	t.Fatalf("BTF struct %s has no member %s", f.structName, f.member)
	return 0
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func kernelBTF(t *testing.T) *btf.Spec {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("load kernel BTF: %v", err)
	}
	return spec
}

func TestFileOpenOfMarkedInodeIsDenied(t *testing.T) {
	inGuest(t)
	dir := t.TempDir()
	marked, other := filepath.Join(dir, "marked"), filepath.Join(dir, "other")
	for _, p := range []string{marked, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prog := denyInode(t, kernelBTF(t), "file_open",
		[]field{{"file", "f_inode"}, {"inode", "i_ino"}}, inode(t, marked))
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		t.Fatalf("attach lsm/file_open: %v", err)
	}

	if _, err := os.ReadFile(marked); !errors.Is(err, syscall.EPERM) {
		t.Errorf("open of the marked file: err = %v, want EPERM", err)
	}
	if _, err := os.ReadFile(other); err != nil {
		t.Errorf("open of another file: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if _, err := os.ReadFile(marked); err != nil {
		t.Errorf("open of the marked file after detaching: %v", err)
	}
	fmt.Println("lsm/file_open denied the marked file, and stopped when detached")
}

func TestExecOfMarkedInodeIsDenied(t *testing.T) {
	inGuest(t)
	dir := t.TempDir()
	marked, other := filepath.Join(dir, "marked.sh"), filepath.Join(dir, "other.sh")
	for _, p := range []string{marked, other} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prog := denyInode(t, kernelBTF(t), "bprm_check_security",
		[]field{{"linux_binprm", "file"}, {"file", "f_inode"}, {"inode", "i_ino"}}, inode(t, marked))
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		t.Fatalf("attach lsm/bprm_check_security: %v", err)
	}

	if out, err := exec.Command(marked).CombinedOutput(); !errors.Is(err, syscall.EPERM) {
		t.Errorf("exec of the marked script: err = %v (output %q), want EPERM", err, out)
	}
	if out, err := exec.Command(other).CombinedOutput(); err != nil || string(out) != "ran\n" {
		t.Errorf("exec of another script: %q, %v", out, err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if out, err := exec.Command(marked).CombinedOutput(); err != nil {
		t.Errorf("exec of the marked script after detaching: %q, %v", out, err)
	}
	fmt.Println("lsm/bprm_check_security denied the marked script, and stopped when detached")
}
