//go:build !amd64 && !arm64

package sensor

// sysOpenByHandleAt is 0 where its number is not recorded here: CgroupPath
// then searches the hierarchy instead.
const sysOpenByHandleAt = 0
