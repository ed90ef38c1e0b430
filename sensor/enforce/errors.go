package enforce

import "errors"

// Errors callers branch on.
var (
	// ErrNotAbsolute: a blocked path must be absolute, as the container
	// sees it; the kernel compares whole paths.
	ErrNotAbsolute = errors.New("path is not absolute")
	// ErrPathTooLong: the exec killer's keys hold paths up to 255 bytes.
	ErrPathTooLong = errors.New("path longer than the kernel key")
	// ErrClosed: the backend has been closed.
	ErrClosed = errors.New("backend closed")
)
