// Package probe is the guest program of test/vm's own tests, built with
// vm.BuildTest as the sensor's tests will be. Its TestMain does what the
// first argument asks instead of running tests.
package probe

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	mode := "probe"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "probe":
		// What the harness promises: securityfs mounted with bpf in the
		// LSM list, the Debian kernel, the files copied in.
		lsm, err := os.ReadFile("/sys/kernel/security/lsm")
		if err != nil {
			fmt.Println("read lsm:", err)
			os.Exit(1)
		}
		var uts syscall.Utsname
		if err := syscall.Uname(&uts); err != nil {
			fmt.Println("uname:", err)
			os.Exit(1)
		}
		fmt.Printf("lsm=%s\n", lsm)
		fmt.Printf("release=%s\n", utsString(uts.Release[:]))
		for _, p := range os.Args[2:] {
			b, err := os.ReadFile(p)
			fmt.Printf("file %s=%q err=%v\n", p, b, err)
		}
		for _, fs := range []string{"/sys/fs/bpf", "/sys/fs/cgroup", "/sys/kernel/tracing"} {
			var st syscall.Statfs_t
			err := syscall.Statfs(fs, &st)
			fmt.Printf("statfs %s=%#x err=%v\n", fs, st.Type, err)
		}
		os.Exit(3)
	case "panic":
		panic("probe asked to crash")
	case "poweroff":
		// Stops the guest before /init can report an exit code.
		fmt.Println("powering off")
		_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
		os.Exit(0)
	case "hang":
		fmt.Println("hanging")
		time.Sleep(time.Hour)
	}
	fmt.Println("unknown mode", mode)
	os.Exit(m.Run())
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}
