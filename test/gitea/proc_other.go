//go:build !linux

package gitea

import "syscall"

// sysProcAttr puts Gitea in a process group of its own (killed as one on
// cleanup).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killWorkingIn does nothing here: finding processes by working
// directory needs Linux's /proc.
func killWorkingIn(string) {}
