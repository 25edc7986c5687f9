//go:build linux && amd64

package escape

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
)

// The "esc" helper is the attacker: a copy of this test binary started
// under the sandbox that carries out the operations named on its command
// line with raw system calls and prints one line per operation, "ok ..."
// or the errno's name. Operations are separated by ";". The first argument
// is the inode of $T/out/secret: every descriptor the worker gets is
// fstat'ed, and one on that inode prints "ESCAPE" instead of a result.
//
// An operation may start with "@NAME": its numeric result (an fd) is kept
// open and "$NAME" in later arguments is replaced by it. "$pid" is the
// worker's pid. The operations are documented in doOp; open, openat,
// write, stat, lstat, readlink, chdir, ls and kill (with mkdir, rmdir,
// unlink, rename and symlink) are testutil.WorkerOps, shared with the
// other end-to-end packages.
func init() {
	testutil.Register("esc", runEsc)
}

var (
	secretIno uint64
	vars      = map[string]string{}
	stdinR    = bufio.NewReader(os.Stdin)
)

func runEsc(args []string) int {
	secretIno, _ = strconv.ParseUint(args[0], 10, 64)
	args = args[1:]
	vars["pid"] = strconv.Itoa(os.Getpid())
	for _, op := range testutil.SplitOps(args) {
		save := ""
		if strings.HasPrefix(op[0], "@") {
			save, op = op[0][1:], op[1:]
		}
		for i := range op {
			for k, v := range vars {
				op[i] = strings.ReplaceAll(op[i], "$"+k, v)
			}
		}
		res, val := doOp(op)
		keepMu.Lock()
		keep = nil
		keepMu.Unlock()
		if save != "" && val >= 0 {
			vars[save] = strconv.Itoa(val)
		} else if val >= 0 {
			unix.Close(val)
		}
		fmt.Println(res)
	}
	return 0
}

// num parses a numeric argument (testutil.ParseNumber).
func num(s string) uint64 { return testutil.ParseNumber(s) }

// parseFlags parses open flags: names and numbers joined by "|"
// (testutil.ParseOpenFlags).
func parseFlags(s string) uint64 { return testutil.ParseOpenFlags(s) }

// addr is the address of b for a raw syscall argument. style.md confines
// package unsafe to internal/sys (arch_test.go enforces it for tests too),
// so the attacker helper takes addresses through reflect. The buffers are
// heap memory kept alive by their callers (keep, runtime.KeepAlive) or
// mmap'ed; the Go heap does not move.
func addr(b *byte) uintptr { return reflect.ValueOf(b).Pointer() }

// keep holds buffers passed to raw syscalls until the call returns.
//
// Operations run concurrently under "parallel": keep is guarded by keepMu
// and emptied only between top-level operations (runEsc), when no
// operation is running.
var (
	keepMu sync.Mutex
	keep   [][]byte
)

func keepBuf(b []byte) {
	keepMu.Lock()
	keep = append(keep, b)
	keepMu.Unlock()
}

func cstr(s string) uintptr {
	b := append([]byte(s), 0)
	keepBuf(b)
	return addr(&b[0])
}

// arg decodes a raw syscall argument: a number, "s:TEXT" (a pointer to
// the NUL-terminated TEXT), "b:N" (a pointer to N zero bytes), "null".
func arg(s string) uintptr {
	switch {
	case strings.HasPrefix(s, "s:"):
		return cstr(s[2:])
	case strings.HasPrefix(s, "b:"):
		b := make([]byte, num(s[2:])+1)
		keepBuf(b)
		return addr(&b[0])
	case strings.HasPrefix(s, "h:"): // h:HEX, a pointer to the bytes
		b := make([]byte, len(s[2:])/2+1)
		for i := 0; i+1 < len(s[2:]); i += 2 {
			v, _ := strconv.ParseUint(s[2+i:4+i], 16, 8)
			b[i/2] = byte(v)
		}
		keepBuf(b)
		return addr(&b[0])
	case s == "null":
		return 0
	}
	return uintptr(num(s))
}

func rawsys(nr uintptr, a ...uintptr) (uintptr, unix.Errno) {
	var x [6]uintptr
	copy(x[:], a)
	r, _, e := unix.Syscall6(nr, x[0], x[1], x[2], x[3], x[4], x[5])
	return r, e
}

// wops are the operations shared with the other end-to-end packages,
// which print "ESCAPE" for a descriptor or stat result on the secret.
func wops() testutil.WorkerOps { return testutil.WorkerOps{SecretIno: secretIno} }

// readable reports whether an open with flags reads back.
func readable(flags uint64) bool { return testutil.WorkerOps{}.Readable(flags) }

func fdResult(r uintptr, e unix.Errno, flags uint64) (string, int) {
	return wops().FDResult(r, e, flags)
}

// doOp carries out one operation and returns its line and, for an
// operation that yields a descriptor, the descriptor (else -1).
func doOp(op []string) (string, int) {
	switch op[0] {
	case "open2": // open2 PATH FLAGS: the legacy open(2)
		flags := parseFlags(op[2])
		r, e := rawsys(unix.SYS_OPEN, cstr(op[1]), uintptr(flags), 0o644)
		return fdResult(r, e, flags)
	case "creat": // creat PATH MODE
		r, e := rawsys(unix.SYS_CREAT, cstr(op[1]), uintptr(num(op[2])))
		return fdResult(r, e, unix.O_WRONLY)
	case "mode": // mode PATH FLAGS MODE: open, print the new file's mode
		r, e := rawsys(unix.SYS_OPENAT, uintptr(0xffffff9c), cstr(op[1]), uintptr(parseFlags(op[2])), uintptr(num(op[3])))
		if e != 0 {
			return testutil.ErrnoName(e), -1
		}
		var st unix.Stat_t
		unix.Fstat(int(r), &st)
		unix.Close(int(r))
		return fmt.Sprintf("ok mode=%#o", st.Mode&0o7777), -1
	case "ino": // ino PATH FLAGS: open, print inode and rdev
		r, e := rawsys(unix.SYS_OPENAT, uintptr(0xffffff9c), cstr(op[1]), uintptr(parseFlags(op[2])), 0)
		if e != 0 {
			return testutil.ErrnoName(e), -1
		}
		var st unix.Stat_t
		unix.Fstat(int(r), &st)
		unix.Close(int(r))
		if st.Ino == secretIno {
			return "ESCAPE", -1
		}
		return fmt.Sprintf("ok ino=%d rdev=%d:%d", st.Ino, unix.Major(st.Rdev), unix.Minor(st.Rdev)), -1
	case "rawopenat": // rawopenat DFD64 PATH FLAGS64: no truncation by Go
		flags := num(op[3])
		r, e := rawsys(unix.SYS_OPENAT, uintptr(num(op[1])), cstr(op[2]), uintptr(flags), 0)
		return fdResult(r, e, flags)
	case "openat2": // openat2 PATH FLAGS MODE RESOLVE SIZE TAILBYTE
		size := int(num(op[5]))
		buf := make([]byte, max(size, 24)+8)
		binary.LittleEndian.PutUint64(buf[0:], parseFlags(op[2]))
		binary.LittleEndian.PutUint64(buf[8:], num(op[3]))
		binary.LittleEndian.PutUint64(buf[16:], num(op[4]))
		for i := 24; i < size; i++ {
			buf[i] = byte(num(op[6]))
		}
		keepBuf(buf)
		r, e := rawsys(unix.SYS_OPENAT2, uintptr(0xffffff9c), cstr(op[1]), addr(&buf[0]), uintptr(size))
		runtime.KeepAlive(buf)
		return fdResult(r, e, parseFlags(op[2]))
	case "statfull": // statfull PATH: every field a direct stat must match
		var st unix.Stat_t
		if err := unix.Stat(op[1], &st); err != nil {
			return testutil.ErrnoName(err), -1
		}
		return statFull(&st), -1
	case "fstatat": // fstatat DIR PATH FLAGS
		dfd, bad := testutil.DirArg(op[1])
		if bad != "" {
			return bad, -1
		}
		var st unix.Stat_t
		// unix.Fstatat passes dirfd and flags unchanged (int is 64-bit).
		if err := unix.Fstatat(dfd, op[2], &st, int(num(op[3]))); err != nil {
			return testutil.ErrnoName(err), -1
		}
		return wops().StatLine(&st), -1
	case "fstatcmp": // fstatcmp PATH: fstat = newfstatat(fd, "", EMPTY) = statx(fd, "", EMPTY)
		fd, err := unix.Open(op[1], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "open:" + testutil.ErrnoName(err), -1
		}
		defer unix.Close(fd)
		var a, b unix.Stat_t
		var x unix.Statx_t
		unix.Fstat(fd, &a)
		if err := unix.Fstatat(fd, "", &b, unix.AT_EMPTY_PATH); err != nil {
			return "fstatat:" + testutil.ErrnoName(err), -1
		}
		if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS, &x); err != nil {
			return "statx:" + testutil.ErrnoName(err), -1
		}
		if statFull(&a) != statFull(&b) || x.Ino != a.Ino || uint64(x.Size) != uint64(a.Size) || uint32(x.Mode) != a.Mode&0xffff {
			return fmt.Sprintf("differ %s / %s / ino=%d", statFull(&a), statFull(&b), x.Ino), -1
		}
		return "ok same", -1
	case "statxempty": // statx(AT_FDCWD, "", AT_EMPTY_PATH)
		var x unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS, &x); err != nil {
			return testutil.ErrnoName(err), -1
		}
		return fmt.Sprintf("ok ino=%d", x.Ino), -1
	case "statx": // statx PATH: the basic fields
		var x unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, op[1], 0, unix.STATX_BASIC_STATS, &x); err != nil {
			return testutil.ErrnoName(err), -1
		}
		return fmt.Sprintf("ok ino=%d mode=%#o size=%d uid=%d nlink=%d mtime=%d", x.Ino, x.Mode, x.Size, x.Uid, x.Nlink, x.Mtime.Sec), -1
	case "access": // access PATH MODE(number): access(2)
		_, e := rawsys(unix.SYS_ACCESS, cstr(op[1]), uintptr(num(op[2])))
		return result(e), -1
	case "fchdir": // fchdir PATH: open O_PATH|O_DIRECTORY, fchdir
		fd, err := unix.Open(op[1], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "open:" + testutil.ErrnoName(err), -1
		}
		defer unix.Close(fd)
		return result(unix.Fchdir(fd)), -1
	case "unnamed": // unnamed NR,NR,...: each with zero arguments; those not answered ENOSYS
		var bad []string
		for _, f := range strings.Split(op[1], ",") {
			nr := num(f)
			r, _, e := unix.Syscall6(uintptr(nr), 0, 0, 0, 0, 0, 0)
			if e != unix.ENOSYS {
				bad = append(bad, fmt.Sprintf("%d=%d/%s", nr, int64(r), testutil.ErrnoName(e)))
			}
		}
		if len(bad) > 0 {
			return "ran: " + strings.Join(bad, " "), -1
		}
		return "ok", -1
	case "spawn": // spawn N: fork N children that pause, then pause
		for range num(op[1]) {
			pid, _, e := unix.RawSyscall(unix.SYS_FORK, 0, 0, 0)
			if e != 0 {
				return "fork:" + testutil.ErrnoName(e), -1
			}
			if pid == 0 {
				for {
					unix.RawSyscall(unix.SYS_PAUSE, 0, 0, 0)
				}
			}
		}
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour)
		}
	case "spew": // spew BYTES: write to stdout (which nobody may read)
		buf := make([]byte, 64<<10)
		for left := int(num(op[1])); left > 0; left -= len(buf) {
			if _, err := unix.Write(1, buf); err != nil {
				return "write:" + testutil.ErrnoName(err), -1
			}
		}
		return "ok", -1
	case "set": // set NAME VALUE
		vars[op[1]] = op[2]
		return "ok", -1
	case "umask":
		unix.Umask(int(num(op[1])))
		return "ok", -1
	case "sys": // sys NR ARG...: a raw syscall; prints "ok RET"
		var a []uintptr
		for _, s := range op[2:] {
			a = append(a, arg(s))
		}
		r, e := rawsys(uintptr(num(op[1])), a...)
		if e != 0 {
			return testutil.ErrnoName(e), -1
		}
		return fmt.Sprintf("ok %d", int64(r)), -1
	case "sysfd": // sysfd NR ARG...: a raw syscall returning an fd
		var a []uintptr
		for _, s := range op[2:] {
			a = append(a, arg(s))
		}
		r, e := rawsys(uintptr(num(op[1])), a...)
		return fdResult(r, e, unix.O_PATH)
	case "fdwrite": // fdwrite FD TEXT
		_, err := unix.Write(int(num(op[1])), []byte(op[2]))
		return result(err), -1
	case "fdread": // fdread FD
		buf := make([]byte, 64)
		n, err := unix.Pread(int(num(op[1])), buf, 0)
		if err != nil {
			return testutil.ErrnoName(err), -1
		}
		return "ok " + strconv.Quote(string(buf[:n])), -1
	case "fill": // fill PATH: write 64 KiB blocks until an error
		fd, err := unix.Open(op[1], unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return testutil.ErrnoName(err), -1
		}
		defer unix.Close(fd)
		signal.Ignore(syscall.SIGXFSZ)
		buf := make([]byte, 64<<10)
		total := 0
		for total < 1<<30 {
			n, err := unix.Write(fd, buf)
			total += n
			if err != nil {
				return fmt.Sprintf("%s after %d", testutil.ErrnoName(err), total), -1
			}
		}
		return "ok no limit", -1
	case "fds": // the fds open in the worker
		return "ok " + strings.Join(openFDs(), ","), -1
	case "fdcheck": // no open fd is on the secret
		n := 0
		for fd := range 4096 {
			var st unix.Stat_t
			if unix.Fstat(fd, &st) == nil {
				n++
				if st.Ino == secretIno {
					return fmt.Sprintf("ESCAPE fd %d", fd), -1
				}
			}
		}
		return fmt.Sprintf("ok n=%d", n), -1
	case "exec": // exec PATH ARG...: fork and exec, print its output
		cmd := exec.Command(op[1], op[2:]...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "exec:" + testutil.ErrnoName(err) + " " + strings.TrimSpace(string(out)), -1
		}
		return "ok " + strings.TrimSpace(string(out)), -1
	case "envhas":
		if _, ok := os.LookupEnv(op[1]); ok {
			return "present", -1
		}
		return "absent", -1
	case "selfstatus": // /proc/self/status: "ok pid=SAME" when Pid: is getpid()
		fd, err := unix.Open("/proc/self/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return testutil.ErrnoName(err), -1
		}
		defer unix.Close(fd)
		buf := make([]byte, 4096)
		n, _ := unix.Read(fd, buf)
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok {
				if strings.TrimSpace(v) == strconv.Itoa(os.Getpid()) {
					return "ok pid=SAME", -1
				}
				return "pid=" + strings.TrimSpace(v) + " getpid=" + strconv.Itoa(os.Getpid()), -1
			}
		}
		return "no Pid line", -1
	case "capeff": // whether the worker holds CAP_DAC_OVERRIDE
		var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return testutil.ErrnoName(err), -1
		}
		return fmt.Sprintf("ok uid=%d dac_override=%v eff=%#x", os.Geteuid(), data[0].Effective&(1<<unix.CAP_DAC_OVERRIDE) != 0, uint64(data[1].Effective)<<32|uint64(data[0].Effective)), -1
	case "sync": // sync TAG ARGS...: print "SYNC TAG ARGS", wait for the harness
		fmt.Println("SYNC " + strings.Join(op[1:], " "))
		if _, err := stdinR.ReadByte(); err != nil {
			return "sync:" + err.Error(), -1
		}
		return "ok", -1
	case "timed": // timed MS OP...: the op's line, then "slow" if it took longer than MS
		ms := num(op[1])
		start := time.Now()
		res, fd := doOp(op[2:])
		if d := time.Since(start); d > time.Duration(ms)*time.Millisecond {
			return res + fmt.Sprintf(" slow=%v", d), fd
		}
		return res, fd
	case "parallel": // parallel N MS OP...: N threads run OP at once; counts of results, "slow" beyond MS
		n := int(num(op[1]))
		ms := time.Duration(num(op[2])) * time.Millisecond
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		var slow atomic.Int64
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				start := time.Now()
				res := parallelOp(op[3:])
				if time.Since(start) > ms {
					slow.Add(1)
				}
				mu.Lock()
				counts[res]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		var parts []string
		for k, v := range counts {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
		slices.Sort(parts)
		s := strings.Join(parts, " ")
		if slow.Load() > 0 {
			s += fmt.Sprintf(" slow=%d", slow.Load())
		}
		return s, -1
	case "exclrace": // exclrace PREFIX N: two threads O_CREAT|O_EXCL PREFIX.i at once
		n := int(num(op[2]))
		for i := range n {
			name := fmt.Sprintf("%s.%d", op[1], i)
			var res [2]string
			var wg sync.WaitGroup
			for j := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					fd, err := unix.Open(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
					if err != nil {
						res[j] = testutil.ErrnoName(err)
						return
					}
					unix.Close(fd)
					res[j] = "fd"
				}()
			}
			wg.Wait()
			slices.Sort(res[:])
			if res != [2]string{"EEXIST", "fd"} {
				return fmt.Sprintf("bad %d: %v", i, res), -1
			}
		}
		return "ok", -1
	case "longpath": // longpath KIND BASE: P-30's strings
		return longPath(op[1], op[2]), -1
	case "guard": // guard PATH: P-31's strings near a PROT_NONE page
		return guardPage(op[1]), -1
	case "flipopen": // flipopen N GOOD BAD: a thread flips the buffer while this one opens it
		return flipOpen(int(num(op[1])), op[2], op[3]), -1
	case "loopopen": // loopopen N PATH GOODINO: open PATH N times; every success must be GOODINO
		return loopOpen(int(num(op[1])), op[2], num(op[3]), 0), -1
	case "loopopenms": // loopopenms N PATH GOODINO MS: as loopopen, and no call slower than MS
		return loopOpen(int(num(op[1])), op[2], num(op[3]), time.Duration(num(op[4]))*time.Millisecond), -1
	case "memfdflip": // memfdflip N GOOD BAD: the path lives in a MAP_SHARED memfd the harness rewrites
		return memfdFlip(int(num(op[1])), op[2], op[3]), -1
	case "ticker": // ticker HZ SECONDS PATH: open+close at HZ, print latency percentiles
		return ticker(num(op[1]), num(op[2]), op[3]), -1
	case "flood": // flood SECONDS THREADS: garbage and real requests as fast as possible
		return flood(time.Duration(num(op[1]))*time.Second, int(num(op[2]))), -1
	case "random": // random N SEED: D-05
		return randomCalls(int(num(op[1])), num(op[2])), -1
	case "sigterm": // sigterm CODE: wait for SIGTERM or SIGINT, exit with CODE
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("ready")
		<-ch
		os.Exit(int(num(op[1])))
	case "sleep":
		time.Sleep(time.Duration(num(op[1])) * time.Millisecond)
		return "ok", -1
	case "forkbomb": // forkbomb CAP: fork children that pause until EAGAIN or CAP
		return forkBomb(int(num(op[1]))), -1
	case "killprobe": // killprobe PID SIG: kill(PID, 0), and SIG only if that failed
		if err := unix.Kill(int(num(op[1])), 0); err == nil {
			return "REACHABLE", -1
		}
		return result(unix.Kill(int(num(op[1])), syscall.Signal(num(op[2])))), -1
	case "uconnect": // uconnect ADDR: AF_UNIX stream connect; @name is abstract
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return "socket:" + testutil.ErrnoName(err), -1
		}
		defer unix.Close(fd)
		return result(unix.Connect(fd, &unix.SockaddrUnix{Name: op[1]})), -1
	case "usendto": // usendto ADDR: unconnected AF_UNIX datagram
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return "socket:" + testutil.ErrnoName(err), -1
		}
		defer unix.Close(fd)
		return result(unix.Sendto(fd, []byte("x"), 0, &unix.SockaddrUnix{Name: op[1]})), -1
	case "ptracechild": // fork a child and PTRACE_ATTACH to it, kcmp it
		cmd := exec.Command("/proc/self/exe")
		_ = cmd
		pid, _, e := unix.RawSyscall(unix.SYS_FORK, 0, 0, 0)
		if e != 0 {
			return "fork:" + testutil.ErrnoName(e), -1
		}
		if pid == 0 {
			for {
				unix.RawSyscall(unix.SYS_PAUSE, 0, 0, 0)
			}
		}
		_, _, e1 := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_ATTACH, pid, 0)
		_, _, e2 := unix.RawSyscall6(unix.SYS_KCMP, uintptr(os.Getpid()), pid, 0, 0, 0, 0)
		unix.Kill(int(pid), unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(int(pid), &ws, 0, nil)
		return fmt.Sprintf("ptrace=%s kcmp=%s", testutil.ErrnoName(e1), testutil.ErrnoName(e2)), -1
	case "inotify": // inotify PATH: init1 + add_watch, wait for the harness, read one event
		ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
		if err != nil {
			return "init:" + testutil.ErrnoName(err), -1
		}
		defer unix.Close(ifd)
		wd, err := unix.InotifyAddWatch(ifd, op[1], unix.IN_CREATE)
		if err != nil {
			return testutil.ErrnoName(err), -1
		}
		if len(op) < 3 {
			return fmt.Sprintf("ok wd=%d", wd), -1
		}
		fmt.Println("SYNC " + op[2])
		stdinR.ReadByte()
		buf := make([]byte, 4096)
		n, err := unix.Read(ifd, buf)
		if err != nil || n < unix.SizeofInotifyEvent {
			return "read:" + testutil.ErrnoName(err), -1
		}
		wd2 := int32(binary.LittleEndian.Uint32(buf[0:]))
		mask := binary.LittleEndian.Uint32(buf[4:])
		nlen := int(binary.LittleEndian.Uint32(buf[12:]))
		name := strings.TrimRight(string(buf[unix.SizeofInotifyEvent:unix.SizeofInotifyEvent+nlen]), "\x00")
		return fmt.Sprintf("ok wd=%d mask=%#x name=%s", wd2, mask, name), -1
	case "unlinkkeep": // unlinkkeep PATH TEXT: C-21
		fd, err := unix.Open(op[1], unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return testutil.ErrnoName(err), -1
		}
		defer unix.Close(fd)
		unix.Write(fd, []byte(op[2]))
		if err := unix.Unlink(op[1]); err != nil {
			return "unlink:" + testutil.ErrnoName(err), -1
		}
		buf := make([]byte, 64)
		n, _ := unix.Pread(fd, buf, 0)
		var st unix.Stat_t
		e := unix.Stat(op[1], &st)
		return fmt.Sprintf("ok %q after:%s", buf[:n], result(e)), -1
	case "accesscheck": // accesscheck PATH: F R W X RW results
		var parts []string
		for _, m := range []uint32{unix.F_OK, unix.R_OK, unix.W_OK, unix.X_OK, unix.R_OK | unix.W_OK} {
			parts = append(parts, result(unix.Access(op[1], m)))
		}
		return strings.Join(parts, " "), -1
	}
	if line, fd, ok := wops().Do(op); ok {
		return line, fd
	}
	return "unknown op " + op[0], -1
}

func parallelOp(op []string) string {
	res, fd := doOp(op)
	if fd >= 0 {
		unix.Close(fd)
	}
	return res
}

func statFull(st *unix.Stat_t) string {
	if st.Ino == secretIno {
		return "ESCAPE"
	}
	return fmt.Sprintf("ok dev=%d ino=%d mode=%#o nlink=%d uid=%d gid=%d size=%d mtime=%d.%d ctime=%d.%d", st.Dev, st.Ino, st.Mode, st.Nlink, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}

// result is the line of an operation that yields only an error.
func result(err error) string { return testutil.OpResult(err) }

func openFDs() []string {
	var fds []string
	for fd := range 1024 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, strconv.Itoa(fd))
		}
	}
	return fds
}

// longPath builds P-30's strings under BASE ($T/ro).
func longPath(kind, base string) string {
	var p string
	switch kind {
	case "nonul": // 4096 bytes, no NUL among them
		p = "/" + strings.Repeat("a", 4095)
	case "dots4095": // exactly 4095 bytes ending in /f
		pad := 4095 - len(base) - len("/f")
		p = base + strings.Repeat("/.", pad/2) + strings.Repeat("/", pad%2) + "/f"
	case "comp256":
		p = base + "/" + strings.Repeat("c", 256)
	case "pad255", "pad256", "pad257", "pad4095":
		n, _ := strconv.Atoi(kind[3:])
		pad := n - len(base) - len("/f")
		p = base + strings.Repeat("/.", pad/2) + strings.Repeat("/", pad%2) + "/f"
	case "prefix": // an allowed 4095-byte path with more after it
		pad := 4095 - len(base) - len("/f")
		p = base + strings.Repeat("/.", pad/2) + strings.Repeat("/", pad%2) + "/f" + "/../../../out/secret"
	}
	r, e := rawsys(unix.SYS_OPENAT, uintptr(0xffffff9c), cstr(p), unix.O_RDONLY, 0)
	res, fd := fdResult(r, e, unix.O_RDONLY)
	if fd >= 0 {
		unix.Close(fd)
	}
	return fmt.Sprintf("len=%d %s", len(p), res)
}

// guardPage runs P-31: strings next to a PROT_NONE page.
func guardPage(path string) string {
	pg := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 3*pg, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return "mmap:" + testutil.ErrnoName(err)
	}
	defer unix.Munmap(mem)
	// A string that spans pages 0 and 1 (both readable).
	span := pg - len(path)/2
	copy(mem[span:], path)
	mem[span+len(path)] = 0
	r0, _, e0 := unix.Syscall6(unix.SYS_OPENAT, uintptr(0xffffff9c), addr(&mem[span]), unix.O_RDONLY, 0, 0, 0)
	spanRes, fd0 := fdResult(r0, e0, unix.O_RDONLY)
	if fd0 >= 0 {
		unix.Close(fd0)
	}
	mem = mem[pg:]
	if err := unix.Mprotect(mem[pg:2*pg], unix.PROT_NONE); err != nil {
		return "mprotect:" + testutil.ErrnoName(err)
	}
	try := func(addr uintptr) string {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(0xffffff9c), addr, unix.O_RDONLY, 0, 0, 0)
		res, fd := fdResult(r, e, unix.O_RDONLY)
		if fd >= 0 {
			unix.Close(fd)
		}
		return res
	}
	base := addr(&mem[0])
	// NUL as the last byte before the guard page.
	start := pg - len(path) - 1
	copy(mem[start:], path)
	mem[pg-1] = 0
	a := try(base + uintptr(start))
	// The string runs onto the guard page (its NUL would be there).
	start2 := pg - len(path)
	copy(mem[start2:], path)
	b := try(base + uintptr(start2))
	c := try(base + uintptr(pg) + 16)
	d := try(0)
	e := try(0xffffffff81000000)
	runtime.KeepAlive(mem)
	return strings.Join([]string{a, b, c, d, e, spanRes}, " | ")
}

// flipOpen runs P-32: thread A flips a buffer between good and bad (equal
// length), thread B opens it n times. Every success must read good's
// content; successes on other inodes are escapes.
func flipOpen(n int, good, bad string) string {
	if len(good) != len(bad) {
		return "lengths differ"
	}
	buf := make([]byte, len(good)+1)
	copy(buf, good)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		for i := 0; !stop.Load(); i++ {
			src := good
			if i&1 == 1 {
				src = bad
			}
			for j := 0; j < len(src); j++ {
				buf[j] = src[j]
			}
		}
		close(done)
	}()
	runtime.LockOSThread()
	res := tallyOpens(n, addr(&buf[0]), func(fd int, st *unix.Stat_t) bool {
		rb := make([]byte, 16)
		k, _ := unix.Read(fd, rb)
		return st.Ino == secretIno || string(rb[:k]) != "RO"
	})
	stop.Store(true)
	<-done
	runtime.KeepAlive(buf)
	return res
}

// tallyOpens opens the path at p n times with openat(AT_FDCWD, O_RDONLY)
// and counts the results: denied (any error), escape (escaped reports the
// opened fd as the wrong file) and ok. The race tests differ only in how
// they flip the path and what counts as the wrong file.
func tallyOpens(n int, p uintptr, escaped func(fd int, st *unix.Stat_t) bool) string {
	var ok, fail, escape int
	for range n {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(0xffffff9c), p, unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
		if e != 0 {
			fail++
			continue
		}
		var st unix.Stat_t
		unix.Fstat(int(r), &st)
		bad := escaped(int(r), &st)
		unix.Close(int(r))
		if bad {
			escape++
			continue
		}
		ok++
	}
	return fmt.Sprintf("ok=%d denied=%d escape=%d", ok, fail, escape)
}

func loopOpen(n int, path string, good uint64, limit time.Duration) (s string) {
	var ok, fail, escape, slow int
	first := ""
	var worst time.Duration
	errs := map[string]int{}
	pb := append([]byte(path), 0)
	defer runtime.KeepAlive(pb)
	for range n {
		start := time.Now()
		r, e := rawsys(unix.SYS_OPENAT, uintptr(0xffffff9c), addr(&pb[0]), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		d := time.Since(start)
		worst = max(worst, d)
		if limit > 0 && d > limit {
			slow++
		}
		if e != 0 {
			fail++
			errs[testutil.ErrnoName(e)]++
			continue
		}
		var st unix.Stat_t
		ferr := unix.Fstat(int(r), &st)
		if st.Ino != good {
			escape++
			if first == "" {
				link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(r)))
				first = fmt.Sprintf(" first=[fd %d ino %d dev %d mode %#o fstat %v link %q]", int64(r), st.Ino, st.Dev, st.Mode, ferr, link)
			}
			if ferr == nil {
				unix.Close(int(r))
			}
			continue
		}
		unix.Close(int(r))
		ok++
	}
	s = fmt.Sprintf("ok=%d denied=%d escape=%d", ok, fail, escape)
	if limit > 0 {
		s += fmt.Sprintf(" slow=%d worst=%v", slow, worst.Round(time.Microsecond))
	}
	return s + fmt.Sprintf(" errs=%v", errs) + first
}

// memfdFlip runs P-33: the path is in a MAP_SHARED memfd page that the
// harness rewrites through /proc/<pid>/fd/<memfd> between good and bad.
func memfdFlip(n int, good, bad string) string {
	fd, err := unix.MemfdCreate("path", unix.MFD_CLOEXEC)
	if err != nil {
		return "memfd:" + testutil.ErrnoName(err)
	}
	defer unix.Close(fd)
	pg := os.Getpagesize()
	unix.Ftruncate(fd, int64(pg))
	mem, err := unix.Mmap(fd, 0, pg, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return "mmap:" + testutil.ErrnoName(err)
	}
	defer unix.Munmap(mem)
	copy(mem, good)
	fmt.Printf("SYNC memfd %d %d\n", os.Getpid(), fd)
	stdinR.ReadByte()
	res := tallyOpens(n, addr(&mem[0]), func(_ int, st *unix.Stat_t) bool { return st.Ino == secretIno })
	fmt.Println("SYNC memfd-done")
	stdinR.ReadByte()
	return res
}

func ticker(hz, secs uint64, path string) string {
	period := time.Second / time.Duration(hz)
	n := int(hz * secs)
	lat := make([]time.Duration, 0, n)
	fails := 0
	next := time.Now()
	for range n {
		time.Sleep(time.Until(next))
		next = next.Add(period)
		start := time.Now()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		lat = append(lat, time.Since(start))
		if err != nil {
			fails++
			continue
		}
		unix.Close(fd)
	}
	slices.Sort(lat)
	p := func(q float64) int64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds() }
	return fmt.Sprintf("ok n=%d fails=%d p50us=%d p99us=%d maxus=%d", n, fails, p(0.5), p(0.99), lat[len(lat)-1].Microseconds())
}

// flood sends brokered requests as fast as threads can: garbage pointers,
// denied paths, allowed paths.
func flood(d time.Duration, threads int) string {
	var total atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			paths := []uintptr{cstrKeep("/nonexistent/x"), cstrKeep("/etc/shadow"), 0, 1, 0xffffffff81000000}
			for i := t; time.Now().Before(deadline); i++ {
				r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(0xffffff9c), paths[i%len(paths)], unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
				if e == 0 {
					unix.Close(int(r))
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	return fmt.Sprintf("ok requests=%d", total.Load())
}

var keepForever [][]byte

func cstrKeep(s string) uintptr {
	b := append([]byte(s), 0)
	keepForever = append(keepForever, b)
	return addr(&b[0])
}

// randomCalls runs D-05: random arguments over every trapped syscall.
// Pointers point into a scratch area, at NULL, at unmapped or kernel
// addresses; never into the Go heap, so the worker survives the broker's
// writes.
func randomCalls(n int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pg := os.Getpagesize()
	scratch, err := unix.Mmap(-1, 0, 4*pg, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return "mmap:" + testutil.ErrnoName(err)
	}
	unix.Mprotect(scratch[3*pg:], unix.PROT_NONE)
	base := addr(&scratch[0])
	paths := []string{vars["T"] + "/ro/f", vars["T"] + "/out/secret", vars["T"] + "/rw/r", vars["T"] + "/rw", vars["T"] + "/ro", "", ".", "..", "/proc/self/fd/0", "/proc/self/exe", vars["T"] + "/rw/d/../x", "f", "/"}
	nrs := []uintptr{unix.SYS_OPEN, unix.SYS_CREAT, unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_STAT, unix.SYS_LSTAT, unix.SYS_NEWFSTATAT, unix.SYS_STATX,
		unix.SYS_ACCESS, unix.SYS_FACCESSAT, unix.SYS_FACCESSAT2, unix.SYS_READLINK, unix.SYS_READLINKAT, unix.SYS_MKDIR, unix.SYS_MKDIRAT,
		unix.SYS_RMDIR, unix.SYS_UNLINK, unix.SYS_UNLINKAT, unix.SYS_RENAME, unix.SYS_RENAMEAT, unix.SYS_RENAMEAT2, unix.SYS_SYMLINK, unix.SYS_SYMLINKAT,
		unix.SYS_CHMOD, unix.SYS_FCHMODAT, unix.SYS_TRUNCATE, unix.SYS_UTIMENSAT, unix.SYS_UTIMES, unix.SYS_UTIME, unix.SYS_FUTIMESAT,
		unix.SYS_STATFS, unix.SYS_GETXATTR, unix.SYS_LGETXATTR, unix.SYS_LISTXATTR, unix.SYS_LLISTXATTR}
	randArg := func() uintptr {
		switch rng.IntN(8) {
		case 0:
			return 0
		case 1: // a path string in scratch
			p := paths[rng.IntN(len(paths))]
			off := rng.IntN(pg)
			copy(scratch[off:], p)
			scratch[off+len(p)] = 0
			return base + uintptr(off)
		case 2:
			return base + uintptr(rng.IntN(3*pg))
		case 3:
			return base + uintptr(3*pg+rng.IntN(pg))
		case 4:
			return 0xffffffff81000000 + uintptr(rng.IntN(1<<20))
		case 5:
			return uintptr(rng.Uint64())
		case 6:
			return uintptr(rng.IntN(64)) // a small fd, size or flag
		default:
			return uintptr(0xffffff9c) | uintptr(rng.IntN(2))<<32
		}
	}
	var fds, errs, bad int
	for range n {
		nr := nrs[rng.IntN(len(nrs))]
		r, _, e := unix.Syscall6(nr, randArg(), randArg(), randArg(), randArg(), randArg(), randArg())
		if e != 0 {
			if e > 4095 {
				bad++
			}
			errs++
			continue
		}
		switch nr {
		case unix.SYS_OPEN, unix.SYS_CREAT, unix.SYS_OPENAT, unix.SYS_OPENAT2:
			var st unix.Stat_t
			if unix.Fstat(int(r), &st) != nil {
				bad++ // a success value that is no fd
			} else if st.Ino == secretIno {
				return "ESCAPE"
			}
			fds++
			unix.Close(int(r))
		default:
			if int64(r) > 1<<20 {
				bad++
			}
		}
	}
	unix.Munmap(scratch)
	return fmt.Sprintf("ok bad=%d fds=%d errs=%d", bad, fds, errs)
}

func forkBomb(limit int) string {
	var pids []int
	defer func() {
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
			var ws unix.WaitStatus
			unix.Wait4(p, &ws, 0, nil)
		}
	}()
	for len(pids) < limit {
		pid, _, e := unix.RawSyscall(unix.SYS_FORK, 0, 0, 0)
		if e != 0 {
			return fmt.Sprintf("%s after %d", testutil.ErrnoName(e), len(pids))
		}
		if pid == 0 {
			for {
				unix.RawSyscall(unix.SYS_PAUSE, 0, 0, 0)
			}
		}
		pids = append(pids, int(pid))
	}
	return fmt.Sprintf("no limit after %d", len(pids))
}
