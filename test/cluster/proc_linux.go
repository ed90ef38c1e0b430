package cluster

import "syscall"

// sysProcAttr detaches a process into a session of its own, or makes the
// kernel kill it when its parent exits (a test binary that panics or times
// out leaves no API server behind).
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
