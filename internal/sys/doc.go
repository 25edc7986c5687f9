// Package sys is the fenced home of sandbox-exec's kernel ABI: the seccomp
// user-notification structures and ioctls, filter installation, reads and
// writes of a worker's memory, feature probes and the one ErrNotSupported.
//
// It is the only package that imports unsafe, and only in *_unsafe.go files.
// Everything else reaches the kernel through typed functions here or through
// golang.org/x/sys/unix.
//
// # Kernel floor
//
// User notification with ADDFD and SECCOMP_ADDFD_FLAG_SEND needs Linux 5.14;
// openat2 needs 5.6. Optional flags (SYNC_WAKE_UP 6.6, WAIT_KILLABLE_RECV
// 5.19) are probed and reported, never assumed.
package sys
