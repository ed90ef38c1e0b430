package vm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/test/vm"
)

// Filesystem magics (linux/magic.h) the probe reports for its mounts.
const (
	bpfFSMagic   = "0xcafe4a11"
	cgroup2Magic = "0x63677270"
)

// TestBootDebianKernelWithBPFLSM is the harness's promise: Debian's 6.1
// kernel boots, securityfs lists bpf among the active LSMs, bpffs and
// cgroup2 are mounted, files are copied in, and the binary's output and
// exit code come back.
func TestBootDebianKernelWithBPFLSM(t *testing.T) {
	t.Parallel()
	bin := vm.BuildTest(t, "./testdata/probe")
	hello := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(hello, []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := vm.Run(t, vm.Options{
		Binary: bin,
		Args:   []string{"probe", "/etc/palisade/hello"},
		Files:  map[string]string{hello: "/etc/palisade/hello"},
	})
	if r.ExitCode != 3 {
		t.Errorf("exit code = %d, want 3", r.ExitCode)
	}
	lsm := field(r.Output, "lsm=")
	if !contains(strings.Split(lsm, ","), "bpf") {
		t.Errorf("LSM list %q lacks bpf", lsm)
	}
	if rel := field(r.Output, "release="); !strings.HasPrefix(rel, "6.1.0-") || !strings.HasSuffix(rel, "-amd64") {
		t.Errorf("kernel release = %q, want Debian's 6.1.0-N-amd64", rel)
	}
	for _, want := range []string{
		`file /etc/palisade/hello="from the host" err=<nil>`,
		"statfs /sys/fs/bpf=" + bpfFSMagic + " err=<nil>",
		"statfs /sys/fs/cgroup=" + cgroup2Magic + " err=<nil>",
	} {
		if !strings.Contains(r.Output, want) {
			t.Errorf("output lacks %q:\n%s", want, r.Output)
		}
	}
}

// TestGuestCrashIsReported: a binary that panics is an exit code (Go's 2)
// with its message in the output, not a hung or silent boot.
func TestGuestCrashIsReported(t *testing.T) {
	t.Parallel()
	r := vm.Run(t, vm.Options{Binary: vm.BuildTest(t, "./testdata/probe"), Args: []string{"panic"}})
	if r.ExitCode != 2 {
		t.Errorf("exit code = %d, want 2 (a Go panic)", r.ExitCode)
	}
	if !strings.Contains(r.Output, "panic: probe asked to crash") {
		t.Errorf("output lacks the panic:\n%s", r.Output)
	}
}

// TestGuestThatStopsWithoutExitCode: a guest that powers off under the
// binary (as a kernel panic would) is ErrNoExitCode, with the output kept.
func TestGuestThatStopsWithoutExitCode(t *testing.T) {
	t.Parallel()
	r, err := vm.Boot(t.Context(), vm.Options{Binary: vm.BuildTest(t, "./testdata/probe"), Args: []string{"poweroff"}})
	if !errors.Is(err, vm.ErrNoExitCode) {
		t.Fatalf("Boot error = %v, want ErrNoExitCode\nconsole:\n%s", err, r.Console)
	}
	if r.ExitCode != -1 || !strings.Contains(r.Output, "powering off") {
		t.Errorf("result = exit %d, output %q; want -1 and the binary's output", r.ExitCode, r.Output)
	}
}

// TestHungGuestIsKilled: the timeout kills QEMU and says so, promptly.
func TestHungGuestIsKilled(t *testing.T) {
	t.Parallel()
	const timeout = 5 * time.Second
	bin := vm.BuildTest(t, "./testdata/probe")
	start := time.Now()
	_, err := vm.Boot(t.Context(), vm.Options{Binary: bin, Args: []string{"hang"}, Timeout: timeout})
	if !errors.Is(err, vm.ErrTimeout) {
		t.Fatalf("Boot error = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > timeout+10*time.Second {
		t.Errorf("Boot returned after %s, want about %s", d, timeout)
	}
}

// TestMissingBinaryFailsBeforeBooting: a wrong path is an error at once.
func TestMissingBinaryFailsBeforeBooting(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := vm.Boot(ctx, vm.Options{Binary: filepath.Join(t.TempDir(), "no-such-binary")})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Boot error = %v, want one wrapping os.ErrNotExist", err)
	}
}

// field returns the rest of the first output line starting with prefix.
func field(out, prefix string) string {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestBPFLSMDeniesInGuest runs internal/lsmprobe in the guest: BPF LSM
// programs loaded with cilium/ebpf deny an open and an exec and stop
// denying once detached, the path the runtime sensor's blocking takes.
func TestBPFLSMDeniesInGuest(t *testing.T) {
	t.Parallel()
	r := vm.Run(t, vm.Options{Binary: vm.BuildTest(t, "./internal/lsmprobe"), Args: []string{"-test.v"}})
	if r.ExitCode != 0 {
		t.Errorf("lsmprobe exit code = %d, want 0:\n%s", r.ExitCode, r.Output)
	}
	for _, want := range []string{
		"--- PASS: TestFileOpenOfMarkedInodeIsDenied",
		"--- PASS: TestExecOfMarkedInodeIsDenied",
	} {
		if !strings.Contains(r.Output, want) {
			t.Errorf("lsmprobe output lacks %q:\n%s", want, r.Output)
		}
	}
}
