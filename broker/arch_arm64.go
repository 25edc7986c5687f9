//go:build linux

package broker

import "golang.org/x/sys/unix"

const (
	nativeArch = unix.AUDIT_ARCH_AARCH64
	oLargefile = 0o400000 // the kernel's O_LARGEFILE on arm64
)

// syscallNumbers maps the arm64 numbers of the calls the broker serves to
// their names (see handlers). arm64 has no legacy path calls (open, stat,
// access, mkdir, utimes, ...).
var syscallNumbers = map[int]string{
	unix.SYS_OPENAT:            "openat",
	unix.SYS_OPENAT2:           "openat2",
	unix.SYS_NEWFSTATAT:        "newfstatat",
	unix.SYS_STATX:             "statx",
	unix.SYS_FACCESSAT:         "faccessat",
	unix.SYS_FACCESSAT2:        "faccessat2",
	unix.SYS_READLINKAT:        "readlinkat",
	unix.SYS_CHDIR:             "chdir",
	unix.SYS_MKDIRAT:           "mkdirat",
	unix.SYS_UNLINKAT:          "unlinkat",
	unix.SYS_RENAMEAT:          "renameat",
	unix.SYS_RENAMEAT2:         "renameat2",
	unix.SYS_SYMLINKAT:         "symlinkat",
	unix.SYS_FCHMODAT:          "fchmodat",
	unix.SYS_FCHMODAT2:         "fchmodat2",
	unix.SYS_TRUNCATE:          "truncate",
	unix.SYS_UTIMENSAT:         "utimensat",
	unix.SYS_STATFS:            "statfs",
	unix.SYS_GETXATTR:          "getxattr",
	unix.SYS_LGETXATTR:         "lgetxattr",
	unix.SYS_LISTXATTR:         "listxattr",
	unix.SYS_LLISTXATTR:        "llistxattr",
	unix.SYS_INOTIFY_ADD_WATCH: "inotify_add_watch",
	unix.SYS_LINKAT:            "linkat",
	unix.SYS_MKNODAT:           "mknodat",
	unix.SYS_FCHOWNAT:          "fchownat",
	unix.SYS_SETXATTR:          "setxattr",
	unix.SYS_LSETXATTR:         "lsetxattr",
	unix.SYS_REMOVEXATTR:       "removexattr",
	unix.SYS_LREMOVEXATTR:      "lremovexattr",
}
