//go:build linux

package broker

import "golang.org/x/sys/unix"

const (
	nativeArch = unix.AUDIT_ARCH_X86_64
	oLargefile = 0o100000 // the kernel's O_LARGEFILE on x86-64
)

// syscallNumbers maps the x86-64 numbers of the calls the broker serves to
// their names (see handlers).
var syscallNumbers = map[int]string{
	unix.SYS_OPEN:              "open",
	unix.SYS_CREAT:             "creat",
	unix.SYS_OPENAT:            "openat",
	unix.SYS_OPENAT2:           "openat2",
	unix.SYS_STAT:              "stat",
	unix.SYS_LSTAT:             "lstat",
	unix.SYS_NEWFSTATAT:        "newfstatat",
	unix.SYS_STATX:             "statx",
	unix.SYS_ACCESS:            "access",
	unix.SYS_FACCESSAT:         "faccessat",
	unix.SYS_FACCESSAT2:        "faccessat2",
	unix.SYS_READLINK:          "readlink",
	unix.SYS_READLINKAT:        "readlinkat",
	unix.SYS_CHDIR:             "chdir",
	unix.SYS_MKDIR:             "mkdir",
	unix.SYS_MKDIRAT:           "mkdirat",
	unix.SYS_RMDIR:             "rmdir",
	unix.SYS_UNLINK:            "unlink",
	unix.SYS_UNLINKAT:          "unlinkat",
	unix.SYS_RENAME:            "rename",
	unix.SYS_RENAMEAT:          "renameat",
	unix.SYS_RENAMEAT2:         "renameat2",
	unix.SYS_SYMLINK:           "symlink",
	unix.SYS_SYMLINKAT:         "symlinkat",
	unix.SYS_CHMOD:             "chmod",
	unix.SYS_FCHMODAT:          "fchmodat",
	unix.SYS_FCHMODAT2:         "fchmodat2",
	unix.SYS_TRUNCATE:          "truncate",
	unix.SYS_UTIMENSAT:         "utimensat",
	unix.SYS_UTIMES:            "utimes",
	unix.SYS_UTIME:             "utime",
	unix.SYS_FUTIMESAT:         "futimesat",
	unix.SYS_STATFS:            "statfs",
	unix.SYS_GETXATTR:          "getxattr",
	unix.SYS_LGETXATTR:         "lgetxattr",
	unix.SYS_LISTXATTR:         "listxattr",
	unix.SYS_LLISTXATTR:        "llistxattr",
	unix.SYS_INOTIFY_ADD_WATCH: "inotify_add_watch",
	unix.SYS_LINK:              "link",
	unix.SYS_LINKAT:            "linkat",
	unix.SYS_MKNOD:             "mknod",
	unix.SYS_MKNODAT:           "mknodat",
	unix.SYS_CHOWN:             "chown",
	unix.SYS_LCHOWN:            "lchown",
	unix.SYS_FCHOWNAT:          "fchownat",
	unix.SYS_SETXATTR:          "setxattr",
	unix.SYS_LSETXATTR:         "lsetxattr",
	unix.SYS_REMOVEXATTR:       "removexattr",
	unix.SYS_LREMOVEXATTR:      "lremovexattr",
}
