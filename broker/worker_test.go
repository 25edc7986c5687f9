//go:build linux

package broker

// The worker side of the tests: the test binary re-run with workerEnv set.
// It locks its thread, sets no_new_privs, installs a filter that notifies
// every call the broker serves (TSYNC, so all threads are covered), sends
// the listener number to the parent, waits for "go", and then runs one
// command per line of stdin, printing one result line each.

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

const workerEnv = "BROKER_TEST_WORKER"

// testFilter notifies nrs and allows everything else, after an
// architecture check (foreign: kill).
func testFilter(nrs []int) []unix.SockFilter {
	const (
		ldAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		retK   = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ldAbsW, K: 4}, // seccomp_data.arch
		{Code: jeqK, Jt: 1, Jf: 0, K: nativeArch},
		{Code: retK, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: ldAbsW, K: 0}, // seccomp_data.nr
	}
	for i, nr := range nrs {
		prog = append(prog, unix.SockFilter{Code: jeqK, Jt: uint8(len(nrs) - i), Jf: 0, K: uint32(nr)})
	}
	return append(prog,
		unix.SockFilter{Code: retK, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: retK, K: unix.SECCOMP_RET_USER_NOTIF})
}

func brokeredNumbers() []int {
	var nrs []int
	for nr, sc := range syscallsByNr {
		if sc != nil {
			nrs = append(nrs, nr)
		}
	}
	return nrs
}

func workerMain() {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("error no_new_privs:", err)
		os.Exit(2)
	}
	flags := uint(sys.FilterFlagNewListener | sys.FilterFlagTsync | sys.FilterFlagTsyncEsrch | sys.FilterFlagWaitKillableRecv)
	lfd, err := sys.InstallFilter(testFilter(brokeredNumbers()), flags)
	if err != nil {
		fmt.Println("error filter:", err)
		os.Exit(2)
	}
	fmt.Printf("listener %d\n", lfd)
	in := bufio.NewReader(os.Stdin)
	if line, err := in.ReadString('\n'); err != nil || line != "go\n" {
		os.Exit(3)
	}
	unix.Close(lfd) // only the broker may hold the listener (R4, R58)
	w := &interp{fds: map[string]int{}}
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			os.Exit(0)
		}
		fmt.Println(w.run(strings.Fields(strings.TrimSuffix(line, "\n"))))
	}
}

// interp runs worker commands. Numbers accept Go syntax (0x, 0o);
// fds are named $var; a path "-" is NULL; paths may use %20 for spaces.
type interp struct {
	fds map[string]int
}

// cstr returns a NUL-terminated copy of s and its address. reflect gives the
// address without package unsafe (which only internal/sys may use); the
// slice stays on the heap and the caller keeps it alive.
func cstr(s string) ([]byte, uintptr) {
	if s == "-" {
		return nil, 0
	}
	if s == "''" {
		s = ""
	}
	s = strings.ReplaceAll(s, "%20", " ")
	b := append([]byte(s), 0)
	return b, reflect.ValueOf(b).Pointer()
}

func addrOf(b []byte) uintptr { return reflect.ValueOf(b).Pointer() }

func errStr(e error) string {
	if e == nil {
		return "ok"
	}
	if en, ok := e.(unix.Errno); ok {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
	}
	return e.Error()
}

func (w *interp) num(s string) uint64 {
	if name, ok := strings.CutPrefix(s, "$"); ok {
		if v, ok := w.fds[name]; ok {
			return uint64(v)
		}
		panic("no fd " + s)
	}
	if h, ok := strings.CutPrefix(s, "hi"); ok { // hi$v: (1<<32)|fd
		return 1<<32 | w.num(h)
	}
	if f, ok := openFlagNames[s]; ok {
		return uint64(f)
	}
	if strings.Contains(s, "|") {
		var v uint64
		for p := range strings.SplitSeq(s, "|") {
			v |= w.num(p)
		}
		return v
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		u, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			panic("bad number " + s)
		}
		return u
	}
	return uint64(v)
}

var openFlagNames = map[string]int{
	"AT_FDCWD": unix.AT_FDCWD, "O_RDONLY": unix.O_RDONLY, "O_WRONLY": unix.O_WRONLY, "O_RDWR": unix.O_RDWR,
	"O_CREAT": unix.O_CREAT, "O_EXCL": unix.O_EXCL, "O_TRUNC": unix.O_TRUNC, "O_APPEND": unix.O_APPEND,
	"O_NONBLOCK": unix.O_NONBLOCK, "O_DIRECTORY": unix.O_DIRECTORY, "O_NOFOLLOW": unix.O_NOFOLLOW,
	"O_CLOEXEC": unix.O_CLOEXEC, "O_PATH": unix.O_PATH, "O_TMPFILE": unix.O_TMPFILE, "O_ASYNC": unix.O_ASYNC,
	"O_NOCTTY": unix.O_NOCTTY, "O_SYNC": unix.O_SYNC, "O_DSYNC": unix.O_DSYNC, "O_NOATIME": unix.O_NOATIME,
	"O_DIRECT": unix.O_DIRECT, "O_LARGEFILE": oLargefile,
	"AT_SYMLINK_NOFOLLOW": unix.AT_SYMLINK_NOFOLLOW, "AT_EMPTY_PATH": unix.AT_EMPTY_PATH,
	"AT_REMOVEDIR": unix.AT_REMOVEDIR, "AT_EACCESS": unix.AT_EACCESS, "AT_NO_AUTOMOUNT": unix.AT_NO_AUTOMOUNT,
	"R_OK": unix.R_OK, "W_OK": unix.W_OK, "X_OK": unix.X_OK, "F_OK": unix.F_OK,
	"RESOLVE_BENEATH": unix.RESOLVE_BENEATH, "RESOLVE_IN_ROOT": unix.RESOLVE_IN_ROOT,
	"RESOLVE_NO_SYMLINKS": unix.RESOLVE_NO_SYMLINKS, "RESOLVE_NO_XDEV": unix.RESOLVE_NO_XDEV,
	"RENAME_NOREPLACE": unix.RENAME_NOREPLACE, "RENAME_EXCHANGE": unix.RENAME_EXCHANGE, "RENAME_WHITEOUT": unix.RENAME_WHITEOUT,
	"STATX_BASIC_STATS": unix.STATX_BASIC_STATS, "STATX_INO": unix.STATX_INO, "STATX_MNT_ID": unix.STATX_MNT_ID,
	"IN_CREATE": unix.IN_CREATE, "IN_ONLYDIR": unix.IN_ONLYDIR, "IN_DONT_FOLLOW": unix.IN_DONT_FOLLOW,
}

func statStr(st *unix.Stat_t) string {
	return fmt.Sprintf("ok ino=%d mode=%#o size=%d nlink=%d uid=%d rdev=%#x", st.Ino, st.Mode, st.Size, st.Nlink, st.Uid, st.Rdev)
}

func (w *interp) storeFd(name string, fd int, err error) string {
	if err != nil {
		return errStr(err)
	}
	w.fds[name] = fd
	return "ok"
}

// rawFd runs a raw system call that returns an fd.
func (w *interp) rawFd(name string, trap uintptr, args ...uintptr) string {
	var a [6]uintptr
	copy(a[:], args)
	r, _, e := unix.Syscall6(trap, a[0], a[1], a[2], a[3], a[4], a[5])
	if e != 0 {
		return errStr(e)
	}
	return w.storeFd(name, int(r), nil)
}

// raw runs a raw system call and reports its return value.
func raw(trap uintptr, args ...uintptr) (uintptr, string) {
	var a [6]uintptr
	copy(a[:], args)
	r, _, e := unix.Syscall6(trap, a[0], a[1], a[2], a[3], a[4], a[5])
	if e != 0 {
		return 0, errStr(e)
	}
	return r, "ok"
}

func (w *interp) run(args []string) (res string) {
	defer func() {
		if p := recover(); p != nil {
			res = fmt.Sprintf("panic %v", p)
		}
	}()
	if len(args) == 0 {
		return "empty"
	}
	for i, arg := range args {
		for name, fd := range w.fds {
			arg = strings.ReplaceAll(arg, "{"+name+"}", strconv.Itoa(fd))
		}
		args[i] = arg
	}
	a := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return "0"
	}
	n := func(i int) uint64 { return w.num(a(i)) }
	u := func(i int) uintptr { return uintptr(w.num(a(i))) }
	switch args[0] {
	case "open": // open V PATH FLAGS [MODE]  (openat AT_FDCWD)
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		return w.rawFd(a(1), unix.SYS_OPENAT, uintptr(unix.AT_FDCWD&0xffffffff)|0, pa, u(3), u(4))
	case "openat": // openat V DIRFD PATH FLAGS [MODE]
		p, pa := cstr(a(3))
		defer runtime.KeepAlive(p)
		return w.rawFd(a(1), unix.SYS_OPENAT, u(2), pa, u(4), u(5))
	case "openat2": // openat2 V DIRFD PATH FLAGS MODE RESOLVE [SIZE [TAILBYTE]]
		p, pa := cstr(a(3))
		size := 24
		if len(args) > 7 {
			size = int(n(7))
		}
		how := make([]byte, max(size, 32))
		putU64(how[0:], n(4))
		putU64(how[8:], n(5))
		putU64(how[16:], n(6))
		if len(args) > 8 && size > 24 {
			how[size-1] = byte(n(8))
		}
		defer runtime.KeepAlive(p)
		defer runtime.KeepAlive(how)
		return w.rawFd(a(1), unix.SYS_OPENAT2, u(2), pa, addrOf(how), uintptr(size))
	case "sysopen": // sysopen V PATH FLAGS [MODE]: the legacy open call
		if !haveLegacy {
			return "skip"
		}
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		return w.rawFd(a(1), legacy["open"], pa, u(3), u(4))
	case "creat": // creat V PATH MODE
		if !haveLegacy {
			return "skip"
		}
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		return w.rawFd(a(1), legacy["creat"], pa, u(3))
	case "openptr": // openptr ADDR FLAGS: a raw pointer as the path
		_, e := raw(unix.SYS_OPENAT, uintptr(unix.AT_FDCWD&0xffffffff), u(1), u(2))
		return e
	case "openguard": // openguard PATH nul|nonul: the path ends at a PROT_NONE page
		return openGuard(a(1), a(2) == "nul")
	case "openlong": // openlong DIR N FILE: DIR/./././.../FILE, N bytes, then NUL (none if N >= 4096)
		dir, file := a(1), a(3)
		total := int(n(2))
		b := make([]byte, 8192)
		for i := range b {
			b[i] = '/'
		}
		copy(b, dir)
		i := len(dir)
		for i+2+1+len(file) <= total {
			copy(b[i:], "/.")
			i += 2
		}
		copy(b[total-len(file)-1:], "/"+file)
		if total < len(b) {
			b[total] = 0
		}
		r, e := raw(unix.SYS_OPENAT, uintptr(unix.AT_FDCWD&0xffffffff), addrOf(b), unix.O_RDONLY|unix.O_CLOEXEC)
		runtime.KeepAlive(b)
		if e != "ok" {
			return e
		}
		w.fds[a(4)] = int(r)
		return "ok"
	case "close":
		err := unix.Close(w.fds[a(1)])
		delete(w.fds, a(1))
		return errStr(err)
	case "read":
		b := make([]byte, 512)
		k, err := unix.Pread(w.fds[a(1)], b, 0)
		if err != nil {
			return errStr(err)
		}
		return "data=" + strconv.Quote(string(b[:k]))
	case "readpipe":
		b := make([]byte, 512)
		k, err := unix.Read(w.fds[a(1)], b)
		if err != nil {
			return errStr(err)
		}
		return "data=" + strconv.Quote(string(b[:k]))
	case "write":
		k, err := unix.Write(w.fds[a(1)], []byte(a(2)))
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("ok %d", k)
	case "fstat":
		var st unix.Stat_t
		if err := unix.Fstat(w.fds[a(1)], &st); err != nil {
			return errStr(err)
		}
		return statStr(&st)
	case "getfl":
		f, err := unix.FcntlInt(uintptr(w.fds[a(1)]), unix.F_GETFL, 0)
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("flags=%#o", f&^int(oLargefile))
	case "cloexec":
		f, err := unix.FcntlInt(uintptr(w.fds[a(1)]), unix.F_GETFD, 0)
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("cloexec=%v", f&unix.FD_CLOEXEC != 0)
	case "ls":
		b := make([]byte, 8192)
		k, err := unix.Getdents(w.fds[a(1)], b)
		if err != nil {
			return errStr(err)
		}
		_, _, names := unix.ParseDirent(b[:k], -1, nil)
		slices.Sort(names)
		return "names=" + strings.Join(names, ",")
	case "pipe": // pipe R W
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return errStr(err)
		}
		w.fds[a(1)], w.fds[a(2)] = p[0], p[1]
		return "ok"
	case "socket":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return w.storeFd(a(1), fd, err)
	case "dup2": // dup2 $v N
		return errStr(unix.Dup3(w.fds[a(1)], int(n(2)), 0))
	case "openmany": // openmany N PATH FLAGS: N threads open at once; tally of the results
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		var mu sync.Mutex
		var wg sync.WaitGroup
		tally := map[string]int{}
		for range int(n(1)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(unix.AT_FDCWD&0xffffffff), pa, u(3), 0, 0, 0)
				res := "ok"
				if e != 0 {
					res = errStr(e)
				} else {
					unix.Close(int(fd))
				}
				mu.Lock()
				tally[res]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		keys := make([]string, 0, len(tally))
		for k, v := range tally {
			keys = append(keys, fmt.Sprintf("%s=%d", k, v))
		}
		slices.Sort(keys)
		return strings.Join(keys, " ")
	case "fd": // fd V N: name a numeric fd
		w.fds[a(1)] = int(n(2))
		return "ok"
	case "stat": // stat PATH (newfstatat)
		return fstatat(unix.AT_FDCWD, a(1), 0)
	case "lstat":
		return fstatat(unix.AT_FDCWD, a(1), unix.AT_SYMLINK_NOFOLLOW)
	case "fstatat": // fstatat DIRFD PATH FLAGS
		return fstatat(int(int32(n(1))), a(2), int(n(3)))
	case "sysstat", "syslstat": // the legacy stat and lstat calls
		if !haveLegacy {
			return "skip"
		}
		p, pa := cstr(a(1))
		var st unix.Stat_t
		trap := legacy["stat"]
		if args[0] == "syslstat" {
			trap = legacy["lstat"]
		}
		_, e := raw(trap, pa, reflect.ValueOf(&st).Pointer())
		runtime.KeepAlive(p)
		if e != "ok" {
			return e
		}
		return statStr(&st)
	case "statx": // statx DIRFD PATH FLAGS MASK
		var stx unix.Statx_t
		p, pa := cstr(a(2))
		_, e := raw(unix.SYS_STATX, u(1), pa, u(3), u(4), reflect.ValueOf(&stx).Pointer())
		runtime.KeepAlive(p)
		if e != "ok" {
			return e
		}
		return fmt.Sprintf("ok ino=%d mode=%#o size=%d mask=%#x", stx.Ino, stx.Mode, stx.Size, stx.Mask)
	case "access": // access PATH MODE (legacy on amd64, faccessat elsewhere)
		p, pa := cstr(a(1))
		defer runtime.KeepAlive(p)
		if haveLegacy {
			_, e := raw(legacy["access"], pa, u(2))
			return e
		}
		_, e := raw(unix.SYS_FACCESSAT, uintptr(unix.AT_FDCWD&0xffffffff), pa, u(2))
		return e
	case "faccessat": // faccessat DIRFD PATH MODE
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_FACCESSAT, u(1), pa, u(3))
		return e
	case "faccessat2": // faccessat2 DIRFD PATH MODE FLAGS
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_FACCESSAT2, u(1), pa, u(3), u(4))
		return e
	case "readlink": // readlink PATH BUFSIZ
		return readlinkCmd(uintptr(unix.AT_FDCWD&0xffffffff), a(1), int(n(2)), true)
	case "readlinkat": // readlinkat DIRFD PATH BUFSIZ
		return readlinkCmd(u(1), a(2), int(n(3)), false)
	case "chdir":
		p, pa := cstr(a(1))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_CHDIR, pa)
		return e
	case "fchdir":
		return errStr(unix.Fchdir(w.fds[a(1)]))
	case "getcwd":
		d, err := unix.Getwd()
		if err != nil {
			return errStr(err)
		}
		return "cwd=" + d
	case "mkdir": // mkdir PATH MODE
		return pathCall("mkdir", unix.SYS_MKDIRAT, a(1), u(2))
	case "mkdirat": // mkdirat DIRFD PATH MODE
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_MKDIRAT, u(1), pa, u(3))
		return e
	case "rmdir":
		if haveLegacy {
			return pathCall("rmdir", 0, a(1))
		}
		p, pa := cstr(a(1))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_UNLINKAT, uintptr(unix.AT_FDCWD&0xffffffff), pa, unix.AT_REMOVEDIR)
		return e
	case "unlink":
		return pathCall("unlink", unix.SYS_UNLINKAT, a(1))
	case "unlinkat": // unlinkat DIRFD PATH FLAGS
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_UNLINKAT, u(1), pa, u(3))
		return e
	case "rename": // rename OLD NEW
		p, pa := cstr(a(1))
		q, qa := cstr(a(2))
		defer runtime.KeepAlive(p)
		defer runtime.KeepAlive(q)
		if haveLegacy {
			_, e := raw(legacy["rename"], pa, qa)
			return e
		}
		_, e := raw(unix.SYS_RENAMEAT2, uintptr(unix.AT_FDCWD&0xffffffff), pa, uintptr(unix.AT_FDCWD&0xffffffff), qa, 0)
		return e
	case "renameat2": // renameat2 OLDDIRFD OLD NEWDIRFD NEW FLAGS
		p, pa := cstr(a(2))
		q, qa := cstr(a(4))
		defer runtime.KeepAlive(p)
		defer runtime.KeepAlive(q)
		_, e := raw(unix.SYS_RENAMEAT2, u(1), pa, u(3), qa, u(5))
		return e
	case "renameat": // renameat OLDDIRFD OLD NEWDIRFD NEW
		p, pa := cstr(a(2))
		q, qa := cstr(a(4))
		defer runtime.KeepAlive(p)
		defer runtime.KeepAlive(q)
		_, e := raw(unix.SYS_RENAMEAT, u(1), pa, u(3), qa)
		return e
	case "symlinkat": // symlinkat TARGET DIRFD PATH
		p, pa := cstr(a(1))
		q, qa := cstr(a(3))
		defer runtime.KeepAlive(p)
		defer runtime.KeepAlive(q)
		_, e := raw(unix.SYS_SYMLINKAT, pa, u(2), qa)
		return e
	case "fchmodat": // fchmodat DIRFD PATH MODE
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_FCHMODAT, u(1), pa, u(3))
		return e
	case "symlink": // symlink TARGET PATH
		p, pa := cstr(a(1))
		q, qa := cstr(a(2))
		defer runtime.KeepAlive(p)
		defer runtime.KeepAlive(q)
		if haveLegacy {
			_, e := raw(legacy["symlink"], pa, qa)
			return e
		}
		_, e := raw(unix.SYS_SYMLINKAT, pa, uintptr(unix.AT_FDCWD&0xffffffff), qa)
		return e
	case "chmod": // chmod PATH MODE
		if haveLegacy {
			return pathCall("chmod", 0, a(1), u(2))
		}
		p, pa := cstr(a(1))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_FCHMODAT, uintptr(unix.AT_FDCWD&0xffffffff), pa, u(2))
		return e
	case "fchmodat2": // fchmodat2 DIRFD PATH MODE FLAGS
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_FCHMODAT2, u(1), pa, u(3), u(4))
		return e
	case "truncate": // truncate PATH LEN
		p, pa := cstr(a(1))
		defer runtime.KeepAlive(p)
		_, e := raw(unix.SYS_TRUNCATE, pa, u(2))
		return e
	case "utimensat": // utimensat DIRFD PATH|- FLAGS [SEC NSEC SEC NSEC]
		p, pa := cstr(a(2))
		var ts []byte
		var ta uintptr
		if len(args) > 4 {
			ts = make([]byte, 32)
			for i := range 4 {
				putU64(ts[8*i:], n(4+i))
			}
			ta = addrOf(ts)
		}
		_, e := raw(unix.SYS_UTIMENSAT, u(1), pa, ta, u(3))
		runtime.KeepAlive(p)
		runtime.KeepAlive(ts)
		return e
	case "utimes": // utimes PATH (NULL times; legacy)
		if !haveLegacy {
			return "skip"
		}
		return pathCall("utimes", 0, a(1), 0)
	case "utime": // utime PATH (NULL times; legacy)
		if !haveLegacy {
			return "skip"
		}
		return pathCall("utime", 0, a(1), 0)
	case "futimesat": // futimesat DIRFD PATH|- (NULL times; legacy)
		if !haveLegacy {
			return "skip"
		}
		p, pa := cstr(a(2))
		defer runtime.KeepAlive(p)
		_, e := raw(legacy["futimesat"], u(1), pa, 0)
		return e
	case "mtime": // mtime PATH: native-independent check through stat
		var st unix.Stat_t
		if err := unix.Fstatat(unix.AT_FDCWD, a(1), &st, 0); err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("mtime=%d", st.Mtim.Sec)
	case "statfs":
		var sfs unix.Statfs_t
		if err := unix.Statfs(a(1), &sfs); err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("ok type=%#x", sfs.Type)
	case "getxattr": // getxattr PATH NAME SIZE
		b := make([]byte, n(3))
		k, err := unix.Getxattr(a(1), a(2), b)
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("ok %d", k)
	case "lgetxattr":
		k, err := unix.Lgetxattr(a(1), a(2), nil)
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("ok %d", k)
	case "listxattr": // listxattr PATH SIZE
		b := make([]byte, n(2))
		k, err := unix.Listxattr(a(1), b)
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("ok %d", k)
	case "inotify": // inotify V PATH MASK
		ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			return errStr(err)
		}
		w.fds[a(1)] = ifd
		wd, err := unix.InotifyAddWatch(ifd, a(2), uint32(n(3)))
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("ok wd=%d", wd)
	case "inotifyfd": // inotifyfd FD PATH MASK: a raw fd number
		wd, err := unix.InotifyAddWatch(int(n(1)), a(2), uint32(n(3)))
		if err != nil {
			return errStr(err)
		}
		return fmt.Sprintf("ok wd=%d", wd)
	case "inotifyread": // inotifyread V: the first event's mask and name
		b := make([]byte, 4096)
		deadline := time.Now().Add(2 * time.Second)
		for {
			k, err := unix.Read(w.fds[a(1)], b)
			if err == unix.EAGAIN && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err != nil {
				return errStr(err)
			}
			mask := getU32(b[4:])
			l := getU32(b[12:])
			name := strings.TrimRight(string(b[16:16+l]), "\x00")
			_ = k
			return fmt.Sprintf("event mask=%#x name=%s", mask, name)
		}
	case "getpid":
		return fmt.Sprintf("pid=%d", unix.Getpid())
	case "gettid":
		return fmt.Sprintf("tid=%d", unix.Gettid())
	case "inthread": // inthread CMD...: run CMD on another OS thread (tid != tgid)
		res := make(chan string)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if unix.Gettid() == unix.Getpid() {
				res <- "same thread"
				return
			}
			res <- w.run(args[1:])
		}()
		return <-res
	case "umask":
		unix.Umask(int(n(1)))
		return "ok"
	case "excl2": // excl2 PATH: two threads create PATH with O_EXCL at once
		return excl2(a(1))
	case "slowfast": // slowfast PATH N: a thread opens PATH N times, another once 20 ms after the first began; the order they end in
		done := make(chan string, 2)
		open := func(tag string, n int) {
			runtime.LockOSThread()
			for range n {
				if fd, err := unix.Open(a(1), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
					unix.Close(fd)
				}
			}
			done <- tag
		}
		go open("first", int(n(2)))
		time.Sleep(20 * time.Millisecond)
		go open("second", 1)
		return <-done + " " + <-done
	case "ploop": // ploop T N PATH: T threads, each N openat+close checking every result; "ok" or the first failure
		threads, cnt := int(n(1)), int(n(2))
		errs := make(chan string, threads)
		for range threads {
			go func() {
				runtime.LockOSThread()
				for i := range cnt {
					fd, err := unix.Open(a(3), unix.O_RDONLY|unix.O_CLOEXEC, 0)
					if err != nil {
						errs <- fmt.Sprintf("openat %d: %s", i, errStr(err))
						return
					}
					var st unix.Stat_t
					if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
						errs <- fmt.Sprintf("fstat %d of fd %d: %v mode %#o", i, fd, err, st.Mode)
						return
					}
					if err := unix.Close(fd); err != nil {
						errs <- fmt.Sprintf("close %d of fd %d: %s", i, fd, errStr(err))
						return
					}
				}
				errs <- "ok"
			}()
		}
		res := "ok"
		for range threads {
			if e := <-errs; e != "ok" && res == "ok" {
				res = e
			}
		}
		return res
	case "loop": // loop N PATH: N openat+close, total ns
		p, pa := cstr(a(2))
		cnt := int(n(1))
		start := time.Now()
		for range cnt {
			r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(unix.AT_FDCWD&0xffffffff), pa, unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
			if e != 0 {
				return errStr(e)
			}
			unix.Close(int(r))
		}
		runtime.KeepAlive(p)
		return fmt.Sprintf("ns=%d", time.Since(start).Nanoseconds())
	case "fstatloop": // fstatloop N PATH: open PATH, N fstat as glibc does it (newfstatat(fd, "", AT_EMPTY_PATH)), total ns
		fd, err := unix.Open(a(2), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return errStr(err)
		}
		defer unix.Close(fd)
		cnt := int(n(1))
		var st unix.Stat_t
		start := time.Now()
		for range cnt {
			if err := unix.Fstatat(fd, "", &st, unix.AT_EMPTY_PATH); err != nil {
				return errStr(err)
			}
		}
		return fmt.Sprintf("ns=%d", time.Since(start).Nanoseconds())
	case "exit":
		os.Exit(int(n(1)))
	}
	return "unknown command " + args[0]
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func getU32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func fstatat(dirfd int, path string, flags int) string {
	var st unix.Stat_t
	p, pa := cstr(path)
	_, e := raw(unix.SYS_NEWFSTATAT, uintptr(uint32(dirfd)), pa, reflect.ValueOf(&st).Pointer(), uintptr(flags))
	runtime.KeepAlive(p)
	if e != "ok" {
		return e
	}
	return statStr(&st)
}

// pathCall runs the legacy call name (amd64) or trap with AT_FDCWD first.
func pathCall(name string, trap uintptr, path string, rest ...uintptr) string {
	p, pa := cstr(path)
	defer runtime.KeepAlive(p)
	if haveLegacy {
		if nr, ok := legacy[name]; ok {
			_, e := raw(nr, append([]uintptr{pa}, rest...)...)
			return e
		}
	}
	if trap == 0 {
		return "skip"
	}
	_, e := raw(trap, append([]uintptr{uintptr(unix.AT_FDCWD & 0xffffffff), pa}, rest...)...)
	return e
}

func readlinkCmd(dirfd uintptr, path string, size int, legacyCall bool) string {
	p, pa := cstr(path)
	b := make([]byte, max(size, 1)+8)
	var r uintptr
	var e string
	if legacyCall && haveLegacy {
		r, e = raw(legacy["readlink"], pa, addrOf(b), uintptr(size))
	} else {
		r, e = raw(unix.SYS_READLINKAT, dirfd, pa, addrOf(b), uintptr(size))
	}
	runtime.KeepAlive(p)
	if e != "ok" {
		return e
	}
	return fmt.Sprintf("ok %d %s", r, b[:r])
}

// openGuard places path so that its last byte (nul: the NUL) sits right
// before a PROT_NONE page.
func openGuard(path string, nul bool) string {
	ps := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return errStr(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[ps:], unix.PROT_NONE); err != nil {
		return errStr(err)
	}
	s := path
	if nul {
		s += "\x00"
	}
	off := ps - len(s)
	copy(mem[off:], s)
	r, e := raw(unix.SYS_OPENAT, uintptr(unix.AT_FDCWD&0xffffffff), addrOf(mem[off:]), unix.O_RDONLY|unix.O_CLOEXEC)
	if e == "ok" {
		unix.Close(int(r))
	}
	return e
}

func excl2(path string) string {
	var wg sync.WaitGroup
	res := make([]string, 2)
	start := make(chan struct{})
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-start
			fd, err := unix.Open(path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
			res[i] = errStr(err)
		}()
	}
	close(start)
	wg.Wait()
	slices.Sort(res)
	return strings.Join(res, ",")
}
