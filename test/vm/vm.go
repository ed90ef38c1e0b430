package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultTimeout bounds a boot when Options.Timeout is zero: a boot and a
// short program take 20–40 s under TCG on two cores, so this leaves room
// for a loaded CI machine without letting a hung guest stall `make test`.
const DefaultTimeout = 3 * time.Minute

// maxConsole bounds the captured serial console: a guest printing in a
// loop must not exhaust the test binary's memory.
const maxConsole = 16 << 20

// kernelCmdline: the serial console, panic=-1 so that a kernel panic (init
// exiting included) reboots at once, which -no-reboot turns into QEMU
// exiting. Debian's default CONFIG_LSM already ends in bpf; lsm= pins the
// list so that a kernel with another default still tests BPF LSM.
const kernelCmdline = "console=ttyS0 panic=-1 lsm=lockdown,capability,landlock,yama,apparmor,bpf quiet"

// GuestBinDir is where the binary runs from inside the guest.
const GuestBinDir = "/palisade"

// EnvGuest is set to 1 in the binary's environment inside the guest: a
// test package that only makes sense there (one attaching BPF LSM
// programs) checks it, and says where it runs when it is absent.
const EnvGuest = "PALISADE_VM_GUEST"

// Errors Boot returns (wrapped) beside ErrNoImage.
var (
	// ErrTimeout: the guest was still running when Options.Timeout passed;
	// QEMU was killed.
	ErrTimeout = errors.New("VM timed out")
	// ErrNoExitCode: QEMU exited without the guest reporting the binary's
	// exit code (a kernel panic, a guest that powered itself off, or /init
	// failing before it ran the binary).
	ErrNoExitCode = errors.New("VM stopped without reporting an exit code")
)

// Options says what to run in the guest.
type Options struct {
	// Binary is a host path to a static Linux amd64 executable (BuildTest
	// makes one from a test package); it runs as root from GuestBinDir.
	Binary string
	// Args are passed to Binary, after its name.
	Args []string
	// Env is added to the binary's environment (PATH=/bin:/sbin:/usr/bin:/usr/sbin).
	Env []string
	// Files maps host paths to absolute paths in the guest; each is copied
	// into the initramfs with its permissions.
	Files map[string]string
	// Timeout bounds the whole boot; zero means DefaultTimeout.
	Timeout time.Duration
	// MemoryMB is the guest's RAM; zero means 1024. The initramfs, the
	// binary and the files live in it.
	MemoryMB int
}

// Result is what the guest reported.
type Result struct {
	// Output is what the binary wrote to stdout and stderr (both go to the
	// serial console, so kernel messages of level error or worse may be
	// interleaved), with \n line ends.
	Output string
	// ExitCode is the binary's exit status as the guest's shell saw it
	// (128+n for a binary killed by signal n); -1 when none was reported.
	ExitCode int
	// Console is the whole serial console, kernel messages included.
	Console string
	// Elapsed is the wall time from starting QEMU to its exit.
	Elapsed time.Duration
}

// Run boots a guest running o.Binary and returns its result. It fails the
// test (never skips) when the kernel image is missing, QEMU cannot start,
// the guest times out or reports no exit code; a non-zero exit code is the
// caller's to judge. On a later failure of the test, the console is logged.
func Run(t testing.TB, o Options) Result {
	t.Helper()
	dir := t.TempDir()
	r, err := boot(t.Context(), o, dir)
	if err != nil {
		if r.Console == "" {
			t.Fatalf("run %s in VM: %v", filepath.Base(o.Binary), err)
		}
		t.Fatalf("run %s in VM: %v\nconsole:\n%s", filepath.Base(o.Binary), err, tail(r.Console, 8<<10))
	}
	t.Logf("VM: %s exited %d after %s", filepath.Base(o.Binary), r.ExitCode, r.Elapsed.Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("VM console:\n%s", tail(r.Console, 64<<10))
		}
	})
	return r
}

// Boot is Run without a testing.TB: it returns an error wrapping
// ErrNoImage, ErrTimeout or ErrNoExitCode, or another error when the
// initramfs cannot be built or QEMU cannot start. The Result holds the
// console captured so far even when err is not nil. Its temporary files
// are removed before it returns.
func Boot(ctx context.Context, o Options) (Result, error) {
	dir, err := os.MkdirTemp("", "palisade-vm-")
	if err != nil {
		return Result{ExitCode: -1}, err
	}
	defer os.RemoveAll(dir)
	return boot(ctx, o, dir)
}

func boot(ctx context.Context, o Options, dir string) (Result, error) {
	res := Result{ExitCode: -1}
	img, err := ImageDir()
	if err != nil {
		return res, err
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return res, fmt.Errorf("find QEMU (Debian package qemu-system-x86): %w", err)
	}
	nonce, err := newNonce()
	if err != nil {
		return res, err
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := writeInitramfs(initrd, img, nonce, o); err != nil {
		return res, fmt.Errorf("build initramfs: %w", err)
	}

	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	mem := o.MemoryMB
	if mem <= 0 {
		mem = 1024
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-accel", "tcg",
		"-m", strconv.Itoa(mem),
		// No default devices (VGA, NIC and their option ROMs cost boot
		// time under TCG); the serial port is the only I/O.
		"-nodefaults", "-display", "none", "-serial", "stdio",
		"-no-reboot",
		"-kernel", filepath.Join(img, kernelFile),
		"-initrd", initrd,
		"-append", kernelCmdline,
	)
	console := &limitedBuffer{max: maxConsole}
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.SysProcAttr = sysProcAttr()
	// QEMU has no children, but its output pipe must not keep Wait
	// blocked after a kill.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	res.Elapsed = time.Since(start)
	res.Console = strings.ReplaceAll(console.String(), "\r\n", "\n")

	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return res, fmt.Errorf("%w after %s", ErrTimeout, timeout)
		}
		return res, fmt.Errorf("VM stopped: %w", ctx.Err())
	}
	if runErr != nil {
		return res, fmt.Errorf("qemu: %w", runErr)
	}
	return parseConsole(res, nonce)
}

// parseConsole fills Output and ExitCode from the markers /init prints.
func parseConsole(res Result, nonce string) (Result, error) {
	c := res.Console
	if i := strings.Index(c, nonce+" setup failed: "); i >= 0 {
		line, _, _ := strings.Cut(c[i+len(nonce)+1:], "\n")
		return res, fmt.Errorf("%w: guest %s", ErrNoExitCode, line)
	}
	startMark := nonce + " start\n"
	i := strings.Index(c, startMark)
	if i < 0 {
		return res, fmt.Errorf("%w: the guest never started the binary", ErrNoExitCode)
	}
	out := c[i+len(startMark):]
	exitMark := nonce + " exit "
	j := strings.Index(out, exitMark)
	if j < 0 {
		res.Output = out
		return res, ErrNoExitCode
	}
	// /init echoes a newline first, in case the binary's last line had none.
	res.Output = strings.TrimSuffix(out[:j], "\n")
	codeText, _, _ := strings.Cut(out[j+len(exitMark):], "\n")
	code, err := strconv.Atoi(strings.TrimSpace(codeText))
	if err != nil {
		return res, fmt.Errorf("%w: unreadable exit code %q", ErrNoExitCode, codeText)
	}
	res.ExitCode = code
	return res, nil
}

// newNonce makes the console markers unique per boot, so that nothing the
// binary prints can be mistaken for them.
func newNonce() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "palisade-vm-" + hex.EncodeToString(b), nil
}

// writeInitramfs writes the guest's root: busybox with its applet links,
// /init, the binary and the files.
func writeInitramfs(dst, img, nonce string, o Options) error {
	if o.Binary == "" {
		return errors.New("no binary")
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	w := newCPIOWriter(f)
	for _, d := range []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/dev", "/proc", "/sys", "/tmp", "/run", "/root", "/etc"} {
		if err := w.Dir(d); err != nil {
			return err
		}
	}
	if err := w.File("/bin/busybox", filepath.Join(img, busyboxFile)); err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	// /bin/sh for the shebang; /init installs the other applet links.
	if err := w.Symlink("/bin/sh", "busybox"); err != nil {
		return err
	}
	guestBin := path.Join(GuestBinDir, filepath.Base(o.Binary))
	if err := w.File(guestBin, o.Binary); err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	hosts := make([]string, 0, len(o.Files))
	for h := range o.Files {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts) // a reproducible archive
	for _, h := range hosts {
		if err := w.File(o.Files[h], h); err != nil {
			return fmt.Errorf("file %s: %w", h, err)
		}
	}
	if err := w.Bytes("/init", 0o755, []byte(initScript(nonce, guestBin, o))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

// initScript is the guest's PID 1. Mounts the binary needs fail the boot
// with a "setup failed" marker; debugfs and tracefs are optional.
func initScript(nonce, guestBin string, o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root %[2]s=1
fail() { echo "%[1]s setup failed: $*"; poweroff -f; exit 1; }
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"
mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t securityfs securityfs /sys/kernel/security || fail "mount securityfs"
mount -t bpf bpf /sys/fs/bpf || fail "mount bpffs"
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
mount -t tmpfs tmpfs /tmp || fail "mount /tmp"
mount -t tmpfs tmpfs /run || fail "mount /run"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname palisade-vm
cd /
echo "%[1]s start"
`, nonce, EnvGuest)
	for _, e := range o.Env {
		fmt.Fprintf(&b, "export %s\n", shellQuote(e))
	}
	b.WriteString(shellQuote(guestBin))
	for _, a := range o.Args {
		b.WriteString(" " + shellQuote(a))
	}
	fmt.Fprintf(&b, `
code=$?
echo
echo "%[1]s exit $code"
poweroff -f
`, nonce)
	return b.String()
}

// shellQuote quotes s for sh as one word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// limitedBuffer keeps the first max bytes written and drops the rest, so
// that QEMU never blocks on a full pipe.
type limitedBuffer struct {
	mu   sync.Mutex
	b    []byte
	max  int
	lost bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	room := l.max - len(l.b)
	if room < len(p) {
		l.lost = true
		if room > 0 {
			l.b = append(l.b, p[:room]...)
		}
		return len(p), nil
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return string(l.b) + fmt.Sprintf("\n[console truncated at %d bytes]\n", l.max)
	}
	return string(l.b)
}
