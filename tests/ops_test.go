//go:build linux

package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
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
//
// open, openat, write, stat, lstat, readlink, chdir, mkdir, rmdir, unlink,
// rename, symlink and ls are testutil.WorkerOps (O_RDWR opens are not read
// back); the others are this package's.
func init() {
	testutil.Register("ops", runOps)
}

func runOps(args []string) int { return testutil.RunOps(args, doOp) }

// workerOps are the operations shared with the other end-to-end packages.
var workerOps = testutil.WorkerOps{NoReadRDWR: true}

func doOp(op []string) string {
	switch op[0] {
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
		return fmt.Sprintf("ok ino=%d %s", st.Ino, testutil.FileType(st.Mode))
	case "access":
		mode := map[string]uint32{"f": unix.F_OK, "r": unix.R_OK, "w": unix.W_OK, "x": unix.X_OK, "rw": unix.R_OK | unix.W_OK}[op[2]]
		if err := unix.Access(op[1], mode); err != nil {
			return testutil.ErrnoName(err)
		}
		return "ok"
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
	if line, fd, ok := workerOps.Do(op); ok {
		if fd >= 0 {
			unix.Close(fd)
		}
		return line
	}
	return "unknown op " + op[0]
}

func unwrapErrno(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}
