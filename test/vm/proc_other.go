//go:build !linux

package vm

import "syscall"

// sysProcAttr: only Linux can tie a child's life to its parent's; elsewhere
// QEMU outlives a test binary that dies before the timeout kills it.
func sysProcAttr() *syscall.SysProcAttr { return nil }
