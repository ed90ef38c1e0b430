package enforce

import "errors"

// Errors callers branch on.
var (
	// ErrNotAbsolute: a blocked path must be absolute, as the container
	// sees it; the kernel compares whole paths.
	ErrNotAbsolute = errors.New("path is not absolute")
	// ErrPathTooLong: the exec killer's keys hold paths up to 255 bytes.
	ErrPathTooLong = errors.New("path longer than the kernel key")
	// ErrNotMountRoot: MarkContainer was given a path that is not the
	// root of a mount; marking its mount would cover files outside the
	// container, host files included.
	ErrNotMountRoot = errors.New("not the root of a mount")
	// ErrClosed: the backend has been closed.
	ErrClosed = errors.New("backend closed")
)
