//go:build !linux

package gitea

import "syscall"

// sysProcAttr puts Gitea in a process group of its own (killed as one on
// cleanup).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
