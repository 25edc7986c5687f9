//go:build linux

package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
)

// The "ops" helper is the workload of most end-to-end tests: a copy of this
// test binary, started under the sandbox, that performs the file system
// operations named on its command line with raw system calls and prints one
// line per operation: "ok ..." or the errno's name. Operations, separated by
// the argument ";":
//
//	open PATH FLAGS          FLAGS: rdonly|wronly|rdwr|creat|excl|trunc|nofollow|directory|path|append, joined by "|"; prints the first bytes read
//	openat DIR REL FLAGS     DIR opened O_PATH|O_DIRECTORY, then openat(DIR, REL)
//	write PATH TEXT          open O_WRONLY|O_CREAT|O_TRUNC 0644, write TEXT
//	stat PATH / lstat PATH   prints ino and type
//	fstat PATH               open O_RDONLY, then newfstatat(fd, "", AT_EMPTY_PATH)
//	access PATH MODE         MODE: f|r|w|x|rw
//	readlink PATH
//	chdir PATH
//	mkdir PATH / rmdir PATH / unlink PATH / rename OLD NEW / symlink TARGET NEW
//	ls DIR                   sorted names
//	threads N COUNT PATH     N threads each open+read+close PATH COUNT times; prints successes
//	self-status              reads /proc/self/status, prints "pid=<Pid line> tgid=<getpid()>"
func init() {
	testutil.Register("ops", runOps)
}

func runOps(args []string) int {
	for _, op := range testutil.SplitOps(args) {
		fmt.Println(doOp(op))
	}
	return 0
}

var flagNames = map[string]int{
	"rdonly": unix.O_RDONLY, "wronly": unix.O_WRONLY, "rdwr": unix.O_RDWR,
	"creat": unix.O_CREAT, "excl": unix.O_EXCL, "trunc": unix.O_TRUNC,
	"nofollow": unix.O_NOFOLLOW, "directory": unix.O_DIRECTORY, "path": unix.O_PATH,
	"append": unix.O_APPEND, "cloexec": unix.O_CLOEXEC,
}

func parseFlags(s string) int {
	f := 0
	for _, n := range strings.Split(s, "|") {
		v, ok := flagNames[n]
		if !ok {
			panic("unknown flag " + n)
		}
		f |= v
	}
	return f
}

func readSome(fd int) string {
	buf := make([]byte, 64)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return "read:" + testutil.ErrnoName(err)
	}
	return strconv.Quote(string(buf[:n]))
}

func fileType(mode uint32) string {
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
	}
	return "other"
}

func doOp(op []string) string {
	switch op[0] {
	case "open":
		flags := parseFlags(op[2])
		fd, err := unix.Open(op[1], flags, 0o644)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		if flags&(unix.O_WRONLY|unix.O_RDWR|unix.O_PATH|unix.O_DIRECTORY) != 0 {
			return "ok"
		}
		return "ok " + readSome(fd)
	case "openat":
		dfd, err := unix.Open(op[1], unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return "dir:" + testutil.ErrnoName(err)
		}
		defer unix.Close(dfd)
		flags := parseFlags(op[3])
		fd, err := unix.Openat(dfd, op[2], flags, 0o644)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		if flags&(unix.O_WRONLY|unix.O_RDWR|unix.O_PATH|unix.O_DIRECTORY) != 0 {
			return "ok"
		}
		return "ok " + readSome(fd)
	case "write":
		fd, err := unix.Open(op[1], unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		if _, err := unix.Write(fd, []byte(op[2])); err != nil {
			return "write:" + testutil.ErrnoName(err)
		}
		return "ok"
	case "stat", "lstat":
		var st unix.Stat_t
		var err error
		if op[0] == "stat" {
			err = unix.Stat(op[1], &st)
		} else {
			err = unix.Lstat(op[1], &st)
		}
		if err != nil {
			return testutil.ErrnoName(err)
		}
		return fmt.Sprintf("ok ino=%d %s", st.Ino, fileType(st.Mode))
	case "fstat":
		fd, err := unix.Open(op[1], unix.O_RDONLY, 0)
		if err != nil {
			return "open:" + testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, "", &st, unix.AT_EMPTY_PATH); err != nil {
			return testutil.ErrnoName(err)
		}
		return fmt.Sprintf("ok ino=%d %s", st.Ino, fileType(st.Mode))
	case "access":
		mode := map[string]uint32{"f": unix.F_OK, "r": unix.R_OK, "w": unix.W_OK, "x": unix.X_OK, "rw": unix.R_OK | unix.W_OK}[op[2]]
		if err := unix.Access(op[1], mode); err != nil {
			return testutil.ErrnoName(err)
		}
		return "ok"
	case "readlink":
		buf := make([]byte, 4096)
		n, err := unix.Readlink(op[1], buf)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		return "ok " + string(buf[:n])
	case "chdir":
		if err := unix.Chdir(op[1]); err != nil {
			return testutil.ErrnoName(err)
		}
		return "ok"
	case "mkdir":
		return result(unix.Mkdir(op[1], 0o755))
	case "rmdir":
		return result(unix.Rmdir(op[1]))
	case "unlink":
		return result(unix.Unlink(op[1]))
	case "rename":
		return result(unix.Rename(op[1], op[2]))
	case "symlink":
		return result(unix.Symlink(op[1], op[2]))
	case "ls":
		fd, err := unix.Open(op[1], unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		var names []string
		buf := make([]byte, 8192)
		for {
			n, err := unix.Getdents(fd, buf)
			if err != nil {
				return "getdents:" + testutil.ErrnoName(err)
			}
			if n == 0 {
				break
			}
			_, _, names = unix.ParseDirent(buf[:n], -1, names)
		}
		slices.Sort(names)
		return "ok " + strings.Join(names, ",")
	case "threads":
		n, _ := strconv.Atoi(op[1])
		count, _ := strconv.Atoi(op[2])
		var ok, bad int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				for range count {
					fd, err := unix.Open(op[3], unix.O_RDONLY|unix.O_CLOEXEC, 0)
					mu.Lock()
					if err != nil {
						bad++
					} else {
						ok++
					}
					mu.Unlock()
					if err == nil {
						unix.Close(fd)
					}
				}
			}()
		}
		wg.Wait()
		return fmt.Sprintf("ok %d/%d", ok, ok+bad)
	case "self-status":
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return testutil.ErrnoName(unwrapErrno(err))
		}
		pid := ""
		for _, line := range bytes.Split(b, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("Pid:")); ok {
				pid = strings.TrimSpace(string(v))
			}
		}
		return fmt.Sprintf("ok pid=%s getpid=%d", pid, os.Getpid())
	}
	return "unknown op " + op[0]
}

func result(err error) string {
	if err != nil {
		return testutil.ErrnoName(err)
	}
	return "ok"
}

func unwrapErrno(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}
