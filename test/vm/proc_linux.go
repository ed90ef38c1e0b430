package vm

import "syscall"

// sysProcAttr makes the kernel kill QEMU when the test binary exits: a test
// that panics or times out leaves no guest spinning a core under TCG.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
