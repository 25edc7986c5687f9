//go:build linux

package broker

import "golang.org/x/sys/unix"

// The legacy path calls x86-64 has and arm64 has not.
const haveLegacy = true

var legacy = map[string]uintptr{
	"open":      unix.SYS_OPEN,
	"creat":     unix.SYS_CREAT,
	"stat":      unix.SYS_STAT,
	"lstat":     unix.SYS_LSTAT,
	"access":    unix.SYS_ACCESS,
	"readlink":  unix.SYS_READLINK,
	"mkdir":     unix.SYS_MKDIR,
	"rmdir":     unix.SYS_RMDIR,
	"unlink":    unix.SYS_UNLINK,
	"rename":    unix.SYS_RENAME,
	"symlink":   unix.SYS_SYMLINK,
	"chmod":     unix.SYS_CHMOD,
	"utimes":    unix.SYS_UTIMES,
	"utime":     unix.SYS_UTIME,
	"futimesat": unix.SYS_FUTIMESAT,
}
