package enforce

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/palisade-dev/palisade/sensor"
)

func cgroup2Mount() (string, error) { return sensor.Cgroup2Mount() }

// tgid reads the process id of a thread from /proc/<tid>/status.
func tgid(proc string) (int, bool) {
	f, err := os.Open(proc + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Tgid:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}

// cgroupID returns the inode of the thread's cgroup v2 directory (its
// "0::" line in /proc/<tid>/cgroup under the v2 mount), 0 when unknown.
// The path is relative to this process's cgroup namespace: the sensor
// runs in the host's.
func cgroupID(mount, proc string) uint64 {
	if mount == "" {
		return 0
	}
	b, err := os.ReadFile(proc + "/cgroup")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		p, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("0::"))
		if !ok {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(mount, string(p)), &st) != nil {
			return 0
		}
		return st.Ino
	}
	return 0
}

// syscallSettle bounds how long readSyscall waits for a thread to be
// seen blocked.
const syscallSettle = 20 * time.Millisecond

// readSyscall reads /proc/<tid>/syscall. The kernel answers "running"
// until the thread has left the CPU, and a thread that raised a
// permission event may not have, yet, when the event is read (on a VM a
// vCPU can be held by the host just then): the read is retried until the
// thread is seen blocked in its open, which waits for our answer, or
// until settle has passed. Without the retry the open's flags were
// unknown in 1 CI run of 5.
func readSyscall(proc string, settle time.Duration) ([]byte, error) {
	deadline := time.Now().Add(settle)
	for pause := 20 * time.Microsecond; ; pause *= 2 {
		b, err := os.ReadFile(proc + "/syscall")
		if err != nil || !bytes.HasPrefix(b, []byte("running")) || time.Now().After(deadline) {
			return b, err
		}
		time.Sleep(pause)
	}
}

// openWrites reports whether the open a thread is blocked in asks for
// write access; see openFlags.
func openWrites(proc string) (write, known bool) {
	flags, known := openFlags(proc)
	return flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_CREAT) != 0, known
}

// openFlags reads the flags of the open a thread is blocked in from
// /proc/<tid>/syscall ("nr arg0 arg1 ... sp pc", in hex). The thread
// waits in the kernel for our answer, so the arguments are still those of
// the open being decided. creat reads as O_CREAT|O_WRONLY|O_TRUNC, and
// execve/execveat (whose open of the program raises FAN_OPEN_PERM too)
// as O_RDONLY: without that, every exec in a container with file blocks
// would be asked as a write of its program.
func openFlags(proc string) (flags uint64, known bool) {
	b, err := readSyscall(proc, syscallSettle)
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) < 4 {
		return 0, false
	}
	nr, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0, false
	}
	arg, ok := openFlagsArg(nr)
	if !ok {
		return 0, false
	}
	switch arg {
	case -1: // creat
		return syscall.O_CREAT | syscall.O_WRONLY | syscall.O_TRUNC, true
	case -2: // an exec's open of the program (or its interpreter): a read
		return syscall.O_RDONLY, true
	}
	flags, err = strconv.ParseUint(strings.TrimPrefix(fields[1+arg], "0x"), 16, 64)
	if err != nil {
		return 0, false
	}
	return flags, true
}
