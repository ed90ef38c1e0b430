package gitea

import "syscall"

// sysProcAttr puts Gitea in a process group of its own (killed as one on
// cleanup) and has the kernel kill it if the test binary dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
