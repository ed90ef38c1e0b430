package enforce

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/test/vm"
)

// TestLoadLSMReportsTheKernelsRefusal: the build host's kernel refuses
// every trampoline program, so LoadLSM must fail there with EPERM and say
// which step failed, leaving nothing attached. Inside the VM the same
// binary runs TestLSMInVM instead.
func TestLoadLSMReportsTheKernelsRefusal(t *testing.T) {
	if os.Getenv(vm.EnvGuest) == "1" {
		return // the guest's kernel accepts LSM programs: TestLSMInVM checks them
	}
	l, err := LoadLSM()
	if err == nil {
		l.Close()
		t.Fatal("LoadLSM succeeded on the build host, whose kernel refuses LSM programs; run the LSM tests here too")
	}
	if !errors.Is(err, unix.EPERM) {
		t.Fatalf("LoadLSM error = %v, want one wrapping EPERM", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "lsm") || strings.Contains(msg, "memlock") {
		t.Errorf("LoadLSM error %q should name the LSM step and not suggest memlock", msg)
	}
	t.Logf("host refuses LSM as expected: %v", err)
}

// TestLSMInVM boots Debian's 6.1 kernel (test/vm) and runs this package's
// test binary there with -test.run TestLSMInVM: inside the guest the test
// runs the scenarios of lsm_guest_test.go against real BPF LSM hooks.
func TestLSMInVM(t *testing.T) {
	if os.Getenv(vm.EnvGuest) == "1" {
		testLSMGuest(t)
		return
	}
	t.Parallel()
	bin := vm.BuildTest(t, "../enforce") // named enforce.test in the guest
	r := vm.Run(t, vm.Options{
		Binary:  bin,
		Args:    []string{"-test.run", "^TestLSMInVM$", "-test.v"},
		Timeout: 2 * time.Minute,
	})
	t.Logf("guest output:\n%s", r.Output)
	if r.ExitCode != 0 || !strings.Contains(r.Output, "--- PASS: TestLSMInVM") {
		t.Fatalf("LSM tests in the VM failed (exit %d)", r.ExitCode)
	}
}

func TestKernelPath(t *testing.T) {
	for _, c := range []struct {
		name, pattern, want string
		err                 error
	}{
		{"an exact path stays exact", "/etc/passwd", "/etc/passwd", nil},
		{"a trailing /** becomes a directory prefix", "/etc/**", "/etc/", nil},
		{"everything is the root prefix", "/**", "/", nil},
		{"a star within a segment is refused", "/etc/*.conf", "", ErrPatternUnsupported},
		{"a single-segment star is refused, not widened", "/etc/*", "", ErrPatternUnsupported},
		{"** before the last segment is refused", "/var/**/log", "", ErrPatternUnsupported},
		{"a bare directory is refused: say /**", "/etc/", "", ErrPatternUnsupported},
		{"a relative path is refused", "etc/passwd", "", ErrNotAbsolute},
		{"a path longer than the key is refused", "/" + strings.Repeat("a", maxLSMPath), "", ErrPathTooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := KernelPath(c.pattern)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("KernelPath(%q) = %q, %v; want error %v", c.pattern, got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("KernelPath(%q) = %q, %v; want %q", c.pattern, got, err, c.want)
			}
		})
	}
}
