//go:build linux

package testutil

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Worker operations
//
// The end-to-end packages run a copy of the test binary under the sandbox
// as a worker helper that carries out the operations named on its command
// line ([SplitOps]) with raw system calls and prints one line per
// operation: "ok ..." or the errno's name ([ErrnoName]). [WorkerOps] holds
// the operations they share; each helper keeps its own for the rest.

// OpenFlags names the open(2) flags of worker operations ("rdonly|creat");
// "acc3" is the invalid access mode 3.
var OpenFlags = map[string]uint64{
	"rdonly": unix.O_RDONLY, "wronly": unix.O_WRONLY, "rdwr": unix.O_RDWR, "acc3": 3,
	"creat": unix.O_CREAT, "excl": unix.O_EXCL, "trunc": unix.O_TRUNC,
	"nofollow": unix.O_NOFOLLOW, "directory": unix.O_DIRECTORY, "path": unix.O_PATH,
	"append": unix.O_APPEND, "cloexec": unix.O_CLOEXEC, "tmpfile": unix.O_TMPFILE,
	"async": unix.O_ASYNC, "direct": unix.O_DIRECT, "largefile": unix.O_LARGEFILE,
	"noatime": unix.O_NOATIME, "noctty": unix.O_NOCTTY, "nonblock": unix.O_NONBLOCK,
	"sync": unix.O_SYNC, "dsync": unix.O_DSYNC,
}

// ParseOpenFlags ORs the flags s names, joined by "|": names of
// [OpenFlags] or numbers ([ParseNumber]), all 64 bits kept. It panics on
// anything else: a bug in the test.
func ParseOpenFlags(s string) uint64 {
	var f uint64
	for _, n := range strings.Split(s, "|") {
		if v, ok := OpenFlags[n]; ok {
			f |= v
			continue
		}
		f |= ParseNumber(n)
	}
	return f
}

// ParseNumber parses a numeric argument of a worker operation: Go integer
// syntax with a base prefix (0x, 0o or a leading 0, 0b), a negative number
// as its two's complement, or "A+B" as a sum. It panics on anything else:
// a bug in the test.
func ParseNumber(s string) uint64 {
	if a, b, ok := strings.Cut(s, "+"); ok {
		return ParseNumber(a) + ParseNumber(b)
	}
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			panic(err)
		}
		return uint64(v)
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		panic(fmt.Sprintf("bad number %q", s))
	}
	return v
}

// OpResult is the line of an operation that yields nothing but its error:
// "ok" for nil or a zero errno (what a raw syscall returns on success),
// else the errno's name.
func OpResult(err error) string {
	var e unix.Errno
	if err == nil || errors.As(err, &e) && e == 0 {
		return "ok"
	}
	return ErrnoName(err)
}

// FileType names the file type in a stat mode: file, dir, symlink,
// chardev, fifo, sock or other.
func FileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "chardev"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "sock"
	}
	return "other"
}

// JoinOps joins operations into a worker helper's arguments, with
// [OpSeparator] between them: the inverse of [SplitOps].
func JoinOps(list ...[]string) []string {
	var out []string
	for i, o := range list {
		if i > 0 {
			out = append(out, OpSeparator)
		}
		out = append(out, o...)
	}
	return out
}

// RunOps is the body of a worker helper: it carries out the operations in
// args ([SplitOps]) with do, prints each line do returns, and returns
// exit code 0.
func RunOps(args []string, do func(op []string) string) int {
	for _, op := range SplitOps(args) {
		fmt.Println(do(op))
	}
	return 0
}

// atFDCWD is AT_FDCWD as the raw system call operations pass it: the
// 32-bit value, upper half zero, which the kernel truncates to an int.
const atFDCWD = uintptr(0xffffff9c)

// WorkerOps carries out the file system operations that the worker
// helpers share, with raw system calls, and returns the line to print.
// The zero value is ready to use.
//
// Operations (PATH is used verbatim, FLAGS as [ParseOpenFlags], numbers as
// [ParseNumber]):
//
//	open PATH FLAGS [MODE]   openat(AT_FDCWD) with MODE (default 0644); see below
//	openat DIR REL FLAGS     DIR: a path (opened O_PATH|O_DIRECTORY), file:PATH (opened O_RDONLY) or an fd; "dir:ERRNO" when DIR fails
//	write PATH TEXT          open O_WRONLY|O_CREAT|O_TRUNC 0644, write TEXT
//	stat PATH / lstat PATH   "ok ino=N TYPE" ([FileType])
//	readlink PATH            "ok TARGET"
//	chdir PATH
//	mkdir PATH               mode 0755
//	rmdir PATH / unlink PATH / rename OLD NEW / symlink TARGET NEW
//	ls DIR                   "ok NAME,..." sorted (getdents64, without . and ..)
//	kill PID SIG             kill(2)
//
// open and openat print "ok" and the first 64 bytes read, quoted, for a
// readable descriptor ([WorkerOps.Readable]), "ok" alone for the others,
// and yield the descriptor to the caller, which closes it.
type WorkerOps struct {
	// SecretIno, when not zero, is the inode of the fixture's secret: a
	// descriptor or stat result on it prints "ESCAPE" instead of its line.
	SecretIno uint64
	// NoReadRDWR reads back O_RDONLY opens only, not O_RDWR ones.
	NoReadRDWR bool
}

// Do carries out op when it is one of the shared operations, and returns
// its line and the descriptor it yields (else -1); ok is false for an
// operation it does not know, which it leaves alone.
func (w WorkerOps) Do(op []string) (line string, fd int, ok bool) {
	switch op[0] {
	case "open":
		flags := ParseOpenFlags(op[2])
		mode := uint64(0o644)
		if len(op) > 3 {
			mode = ParseNumber(op[3])
		}
		r, e := rawOpenat(atFDCWD, op[1], flags, mode)
		line, fd = w.FDResult(r, e, flags)
	case "openat":
		dfd, bad := DirArg(op[1])
		if bad != "" {
			return bad, -1, true
		}
		if strings.HasPrefix(op[1], "/") || strings.HasPrefix(op[1], "file:") {
			defer unix.Close(dfd)
		}
		flags := ParseOpenFlags(op[3])
		r, e := rawOpenat(uintptr(dfd), op[2], flags, 0o644)
		line, fd = w.FDResult(r, e, flags)
	case "write":
		fd, err := unix.Open(op[1], unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return ErrnoName(err), -1, true
		}
		defer unix.Close(fd)
		if _, err := unix.Write(fd, []byte(op[2])); err != nil {
			return "write:" + ErrnoName(err), -1, true
		}
		return "ok", -1, true
	case "stat", "lstat":
		var st unix.Stat_t
		var err error
		if op[0] == "stat" {
			err = unix.Stat(op[1], &st)
		} else {
			err = unix.Lstat(op[1], &st)
		}
		if err != nil {
			return ErrnoName(err), -1, true
		}
		return w.StatLine(&st), -1, true
	case "readlink":
		buf := make([]byte, 4096)
		n, err := unix.Readlink(op[1], buf)
		if err != nil {
			return ErrnoName(err), -1, true
		}
		return "ok " + string(buf[:n]), -1, true
	case "chdir":
		return OpResult(unix.Chdir(op[1])), -1, true
	case "mkdir":
		return OpResult(unix.Mkdir(op[1], 0o755)), -1, true
	case "rmdir":
		return OpResult(unix.Rmdir(op[1])), -1, true
	case "unlink":
		return OpResult(unix.Unlink(op[1])), -1, true
	case "rename":
		return OpResult(unix.Rename(op[1], op[2])), -1, true
	case "symlink":
		return OpResult(unix.Symlink(op[1], op[2])), -1, true
	case "ls":
		return listDir(op[1]), -1, true
	case "kill":
		return OpResult(unix.Kill(int(ParseNumber(op[1])), unix.Signal(ParseNumber(op[2])))), -1, true
	default:
		return "", -1, false
	}
	return line, fd, true
}

// Readable reports whether open and openat read back a descriptor opened
// with flags: not for O_WRONLY, access mode 3, O_PATH or O_DIRECTORY, nor
// for O_RDWR with NoReadRDWR.
func (w WorkerOps) Readable(flags uint64) bool {
	acc := flags & unix.O_ACCMODE
	if acc == unix.O_WRONLY || acc == 3 || acc == unix.O_RDWR && w.NoReadRDWR {
		return false
	}
	return flags&(unix.O_PATH|unix.O_DIRECTORY) == 0
}

// FDResult is the line for a raw system call that returns a descriptor:
// the errno's name, or [WorkerOps.Describe] of the descriptor, which it
// also returns (-1 on error), read back when flags are [WorkerOps.Readable].
func (w WorkerOps) FDResult(r uintptr, e unix.Errno, flags uint64) (string, int) {
	if e != 0 {
		return ErrnoName(e), -1
	}
	fd := int(r)
	return w.Describe(fd, w.Readable(flags)), fd
}

// Describe checks a descriptor the worker got, "ESCAPE" when it is on the
// secret, and returns "ok", followed with read by the first 64 bytes read,
// quoted, or "read:ERRNO".
func (w WorkerOps) Describe(fd int, read bool) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "ok fstat:" + ErrnoName(err)
	}
	if w.SecretIno != 0 && st.Ino == w.SecretIno {
		return "ESCAPE"
	}
	if !read {
		return "ok"
	}
	buf := make([]byte, 64)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return "ok read:" + ErrnoName(err)
	}
	return "ok " + strconv.Quote(string(buf[:n]))
}

// StatLine is the line for a stat result: "ok ino=N TYPE", or "ESCAPE"
// for the secret.
func (w WorkerOps) StatLine(st *unix.Stat_t) string {
	if w.SecretIno != 0 && st.Ino == w.SecretIno {
		return "ESCAPE"
	}
	return fmt.Sprintf("ok ino=%d %s", st.Ino, FileType(st.Mode))
}

// DirArg opens the DIR argument of an at-operation: a path starting with
// "/" with O_PATH|O_DIRECTORY, "file:PATH" with O_RDONLY (for ENOTDIR
// cases), else a descriptor number used as is. For a failed open it
// returns -1 and the line "dir:ERRNO". The caller closes what it opened.
func DirArg(s string) (int, string) {
	if p, ok := strings.CutPrefix(s, "file:"); ok {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, "dir:" + ErrnoName(err)
		}
		return fd, ""
	}
	if strings.HasPrefix(s, "/") {
		fd, err := unix.Open(s, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, "dir:" + ErrnoName(err)
		}
		return fd, ""
	}
	return int(ParseNumber(s)), ""
}

// rawOpenat is openat(2) with every argument passed as given: the flags
// keep their upper 32 bits, and dfd may be any 64-bit value.
func rawOpenat(dfd uintptr, path string, flags, mode uint64) (uintptr, unix.Errno) {
	p := append([]byte(path), 0)
	// style.md keeps package unsafe in internal/sys: the address comes
	// through reflect, and the heap buffer stays alive until the call
	// returns.
	r, _, e := unix.Syscall6(unix.SYS_OPENAT, dfd, reflect.ValueOf(&p[0]).Pointer(), uintptr(flags), uintptr(mode), 0, 0)
	runtime.KeepAlive(p)
	return r, e
}

// listDir is the line of "ls DIR".
func listDir(dir string) string {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ErrnoName(err)
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return "getdents:" + ErrnoName(err)
		}
		if n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return "ok " + strings.Join(names, ",")
}
