package sensor

// sysOpenByHandleAt is open_by_handle_at(2), absent from package syscall.
const sysOpenByHandleAt = 304
