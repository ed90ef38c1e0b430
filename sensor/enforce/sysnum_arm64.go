package enforce

// openFlagsArg returns which argument of syscall nr holds open(2) flags,
// -2 for execve/execveat (a read-only open of the program), ok false for
// other syscalls and openat2 (flags in user memory). arm64
// has only openat.
func openFlagsArg(nr int64) (arg int, ok bool) {
	switch nr {
	case 56: // openat
		return 2, true
	case 221, 281: // execve, execveat: the kernel opens read-only
		return -2, true
	}
	return 0, false
}
