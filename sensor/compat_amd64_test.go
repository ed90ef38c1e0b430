package sensor

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/test/vm"
)

// compatELF returns a static x86-64 executable that makes one 32-bit
// syscall (int 0x80) and then the 64-bit truncate(path, 0), and exits.
// The 32-bit call is ia32 getrlimit, number 76 like x86-64's truncate,
// with rdi pointing at path as truncate's would: read as a 64-bit call
// it would be a truncate of path.
func compatELF(path string) []byte {
	code := []byte{
		0x48, 0x8d, 0x3d, 57, 0, 0, 0, // lea rdi, [rip+path]
		0xb8, 76, 0, 0, 0, // mov eax, 76 (ia32 getrlimit)
		0x31, 0xdb, // xor ebx, ebx (RLIMIT_CPU)
		0x48, 0x8d, 0x0d, 27, 0, 0, 0, // lea rcx, [rip+buf]
		0xcd, 0x80, // int 0x80
		0x48, 0x8d, 0x3d, 34, 0, 0, 0, // lea rdi, [rip+path]
		0xb8, 76, 0, 0, 0, // mov eax, 76 (truncate)
		0x31, 0xf6, // xor esi, esi
		0x0f, 0x05, // syscall
		0xb8, 60, 0, 0, 0, // mov eax, 60 (exit)
		0x31, 0xff, // xor edi, edi
		0x0f, 0x05, // syscall
	}
	code = append(code, make([]byte, 16)...) // buf, at code+48
	code = append(append(code, path...), 0)  // path, at code+64
	return elf64(code)
}

// compatExitELF returns a static x86-64 executable whose only syscall is
// the 32-bit exit(7): it exits with 7 where the kernel runs 32-bit
// syscalls, and dies of SIGSEGV where it refuses int 0x80.
func compatExitELF() []byte {
	return elf64([]byte{
		0xb8, 1, 0, 0, 0, // mov eax, 1 (ia32 exit)
		0xbb, 7, 0, 0, 0, // mov ebx, 7
		0xcd, 0x80, // int 0x80
	})
}

// elf64 wraps code in a static x86-64 ELF executable with one writable
// and executable segment, code starting right after the headers.
func elf64(code []byte) []byte {
	const base, hdrs = 0x400000, 64 + 56
	size := uint64(hdrs + len(code))
	le := binary.LittleEndian
	var b []byte
	b = append(b, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	b = le.AppendUint16(b, 2)         // ET_EXEC
	b = le.AppendUint16(b, 0x3e)      // EM_X86_64
	b = le.AppendUint32(b, 1)         // EV_CURRENT
	b = le.AppendUint64(b, base+hdrs) // entry
	b = le.AppendUint64(b, 64)        // phoff
	b = le.AppendUint64(b, 0)         // shoff
	b = le.AppendUint32(b, 0)         // flags
	b = le.AppendUint16(b, 64)        // ehsize
	b = le.AppendUint16(b, 56)        // phentsize
	b = le.AppendUint16(b, 1)         // phnum
	b = append(b, 0, 0, 0, 0, 0, 0)   // shentsize, shnum, shstrndx
	b = le.AppendUint32(b, 1)         // PT_LOAD
	b = le.AppendUint32(b, 7)         // rwx: a buffer in the code may be written
	b = le.AppendUint64(b, 0)         // offset
	b = le.AppendUint64(b, base)      // vaddr
	b = le.AppendUint64(b, base)      // paddr
	b = le.AppendUint64(b, size)      // filesz
	b = le.AppendUint64(b, size)      // memsz
	b = le.AppendUint64(b, 0x1000)    // align
	return append(b, code...)
}

// runs32BitSyscalls says whether this kernel runs a 64-bit process's
// int 0x80. Kernels built without IA32 emulation, booted with
// ia32_emulation=0, or whose platform does not route the vector (this
// machine's: a general protection fault at the int) refuse it, and then
// no 32-bit syscall can reach the sensor at all. Any other outcome than
// exit 7 or SIGSEGV fails the test.
func runs32BitSyscalls(t *testing.T) bool {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "compat-exit")
	if err := os.WriteFile(bin, compatExitELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	err := exec.Command(bin).Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("run the 32-bit exit program: %v, want exit status 7 or SIGSEGV", err)
	}
	ws := exit.Sys().(syscall.WaitStatus)
	switch {
	case ws.Exited() && ws.ExitStatus() == 7:
		return true
	case ws.Signaled() && ws.Signal() == syscall.SIGSEGV:
		return false
	}
	t.Fatalf("the 32-bit exit program ended with %v, want exit status 7 or SIGSEGV", err)
	return false
}

// A 32-bit syscall has another table's number: the sensor must not read
// it as the 64-bit call of that number.
//
// A kernel that refuses 32-bit syscalls (this build host's) cannot show
// it: there the test runs itself in the VM booting Debian's 6.1 kernel
// (test/vm), which runs them, as the BPF LSM tests do.
func TestCompatSyscallNotMisread(t *testing.T) {
	if os.Getenv(vm.EnvGuest) == "1" {
		if !runs32BitSyscalls(t) {
			t.Fatal("the VM's kernel refuses 32-bit syscalls: nothing to test the sensor against")
		}
	} else if !runs32BitSyscalls(t) {
		t.Log("this kernel refuses 32-bit syscalls (int 0x80 dies of SIGSEGV): running the test in the VM")
		t.Parallel()
		r := vm.Run(t, vm.Options{
			Binary:  vm.BuildTest(t, "../sensor"),
			Args:    []string{"-test.run", "^TestCompatSyscallNotMisread$", "-test.v"},
			Timeout: 2 * time.Minute,
		})
		t.Logf("guest output:\n%s", r.Output)
		if r.ExitCode != 0 || !strings.Contains(r.Output, "--- PASS: TestCompatSyscallNotMisread") {
			t.Fatalf("TestCompatSyscallNotMisread in the VM failed (exit %d)", r.ExitCode)
		}
		return
	}
	p := load(t, Options{PollInterval: time.Millisecond})
	dir, id := benchCgroup(t)
	if err := p.Watch(id); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	target := filepath.Join(tmp, "target")
	if err := os.WriteFile(target, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "compat")
	if err := os.WriteFile(bin, compatELF(target), 0o755); err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run the 32-bit syscall program: %v: %s", err, out)
	}
	if st, err := os.Stat(target); err != nil || st.Size() != 0 {
		t.Fatalf("the program's 64-bit truncate did not run: %v, %v", st, err)
	}
	evs := collect(t, p, 2*time.Second, func(evs []Event) bool {
		_, ok := find(evs, OpModifyFile, target)
		return ok
	})
	evs = append(evs, collect(t, p, 100*time.Millisecond, func([]Event) bool { return false })...)
	n := 0
	for _, ev := range evs {
		if ev.Path == target {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d events for %s, want the 64-bit truncate's modifyFile only:\n%s", n, target, dump(evs))
	}
}
