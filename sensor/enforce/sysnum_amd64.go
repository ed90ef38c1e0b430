package enforce

// openFlagsArg returns which argument of syscall nr holds open(2) flags:
// -1 for creat (flags implied), -2 for exec (a read-only open of the
// program), ok false for other syscalls and openat2
// (flags in a struct in user memory).
func openFlagsArg(nr int64) (arg int, ok bool) {
	switch nr {
	case 2: // open
		return 1, true
	case 85: // creat
		return -1, true
	case 257: // openat
		return 2, true
	case 59, 322, 134: // execve, execveat, uselib: the kernel opens read-only
		return -2, true
	}
	return 0, false
}
