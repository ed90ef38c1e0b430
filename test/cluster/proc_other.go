//go:build !linux

package cluster

import "syscall"

// sysProcAttr: only Linux can tie a child's life to its parent's; elsewhere
// a process outlives a test binary that dies before Stop.
func sysProcAttr(bool) *syscall.SysProcAttr { return nil }
