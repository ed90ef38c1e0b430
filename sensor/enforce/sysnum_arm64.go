package enforce

// openFlagsArg returns which argument of syscall nr holds open(2) flags,
// ok false for other syscalls and openat2 (flags in user memory). arm64
// has only openat.
func openFlagsArg(nr int64) (arg int, ok bool) {
	if nr == 56 { // openat
		return 2, true
	}
	return 0, false
}
