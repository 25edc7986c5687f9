//go:build linux

package broker

import (
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// maxErrno is the largest errno a reply may carry (R21).
const maxErrno = 4095

// Codes that handlers return besides a positive errno.
const (
	codeOK   = 0
	codeDeny = -1 // the policy denies: reply Options.DenyErrno
	codeDrop = -2 // the target is gone: no reply
)

type resultKind uint8

const (
	resError    resultKind = iota // errno (or codeDeny) in code
	resValue                      // emulated success: val
	resFd                         // install fd with ADDFD|SEND
	resContinue                   // SECCOMP_USER_NOTIF_FLAG_CONTINUE (chdir only)
	resDrop                       // target gone: nothing to answer
)

// result is what a handler decided. Only the reply encoder turns it into a
// response.
type result struct {
	kind    resultKind
	code    int   // resError: errno > 0 or codeDeny
	val     int64 // resValue
	fd      int   // resFd: broker-side fd (owned by the request)
	cloexec bool  // resFd: O_CLOEXEC for the worker's copy
}

func fail(code int) result {
	if code == codeDrop {
		return result{kind: resDrop}
	}
	return result{kind: resError, code: code}
}

func errnoResult(e unix.Errno) result { return result{kind: resError, code: int(e)} }
func value(v int64) result            { return result{kind: resValue, val: v} }
func denied() result                  { return result{kind: resError, code: codeDeny} }

// encodeReply builds the one response the kernel gets for a request that is
// not answered by ADDFD. Errors are negative errnos in [-4095, -1] with val
// 0; a value is returned only as an emulated success and must not be
// negative (libc would read it as an errno); anything else is a bug and
// becomes the deny errno (R21, N-01).
func encodeReply(id uint64, res result, denyErrno int) sys.NotifResp {
	resp := sys.NotifResp{ID: id}
	switch res.kind {
	case resValue:
		if res.val >= 0 {
			resp.Val = res.val
			return resp
		}
	case resContinue:
		resp.Flags = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
		return resp
	case resError:
		if res.code >= 1 && res.code <= maxErrno {
			resp.Error = -int32(res.code)
			return resp
		}
	}
	resp.Error = -int32(denyErrno)
	return resp
}

// req is the state of one request; each serving goroutine reuses its own.
type req struct {
	s   *server
	b   *Broker
	l   *sys.Listener
	n   sys.Notif
	sc  *sysCall
	tid int

	tgid  int // from /proc/<tid>/status; 0 until needed
	umask int // ditto; -1 until needed

	g        *gor  // the serving goroutine
	ticket   int64 // the receiver role is kept while serving (see run)
	holding  bool  // the role is held plainly while serving (one thread)
	released bool  // a blocking section gave the role up
	halt     error // errOverCap or errGone: use the file system no more
	gone     bool  // answered by the monitor or abandoned: no reply
	limit    string

	fds      []int      // broker-side fds, closed when the request ends
	caps     threadCaps // this thread's capabilities
	poisoned error      // the thread's credentials are not as set up: stop serving

	pathBuf  []byte // first path argument
	pathBuf2 []byte // second path argument (rename, symlink)
	buf      []byte // readlink results, /proc files

	// For audit and metrics.
	start    time.Time
	lat      time.Duration // service time of the last request (serve)
	path     string
	resolved string
	right    policy.Right
	verdict  policy.Verdict
	judged   bool
	deny     bool
}

func newReq(s *server, l *sys.Listener) *req {
	return &req{
		s:        s,
		b:        s.b,
		l:        l,
		pathBuf:  make([]byte, sys.PathMax),
		pathBuf2: make([]byte, sys.PathMax),
		buf:      make([]byte, sys.PathMax),
		fds:      make([]int, 0, 8),
	}
}

func (r *req) reset() {
	r.sc = nil
	r.tid = int(r.n.Pid)
	r.tgid, r.umask = 0, -1
	r.path, r.resolved = "", ""
	r.right, r.verdict, r.judged, r.deny = 0, policy.Verdict{Rule: -1}, false, false
	r.halt, r.gone, r.limit = nil, false, ""
}

// serve handles the notification in r.n: decide, act, reply, record.
func (r *req) serve() {
	r.start = time.Now()
	r.reset()
	res := r.dispatch()
	switch {
	case r.gone:
		// A blocking section ended without this thread: the monitor
		// answered EINTR at the deadline, or the target gave up.
		res = result{kind: resDrop}
	case r.limit != "":
		// A cap refused a blocking operation: whatever the handler made
		// of that, the answer is EAGAIN (block.go).
		res = errnoResult(unix.EAGAIN)
	}
	// The clock stops when the answer is ready, before the reply: ADDFD or
	// SEND wakes the worker, which on a shared CPU preempts the broker
	// inside the ioctl and runs on (its next call included) before the
	// broker's clock could stop. The latency is thus the service time
	// without the reply ioctl itself (~1 µs).
	lat := time.Since(r.start)
	r.lat = lat
	errno := r.reply(res)
	r.closeAll()
	r.b.metrics.record(r.sc, res.kind == resDrop, r.deny, errno != 0, lat)
	if r.b.audit != nil && res.kind != resDrop && (r.deny || !r.b.denials) {
		r.emit(errno, lat)
	}
}

// dispatch runs the handler; a panic becomes an EIO reply (R61).
func (r *req) dispatch() (res result) {
	defer func() {
		if p := recover(); p != nil {
			r.b.metrics.panics.Add(1)
			res = errnoResult(unix.EIO)
		}
	}()
	if r.n.Data.Arch != nativeArch {
		return errnoResult(unix.ENOSYS) // R11
	}
	r.sc = lookupSyscall(r.n.Data.Nr)
	if r.n.Pid == 0 {
		return denied() // the caller is invisible to us (R10)
	}
	if r.sc == nil {
		return errnoResult(unix.ENOSYS)
	}
	return r.sc.h(r)
}

// reply answers the kernel and returns the errno the worker sees.
func (r *req) reply(res result) int {
	switch res.kind {
	case resDrop:
		r.b.metrics.dropped.Add(1)
		return 0
	case resFd:
		var flags uint32
		if res.cloexec {
			flags = unix.O_CLOEXEC
		}
		a := sys.NotifAddfd{ID: r.n.ID, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, Srcfd: uint32(res.fd), NewfdFlags: flags}
		var newfd int
		var err error
		if r.b.twoStep {
			// A plain ADDFD that a signal interrupts is taken back by the
			// kernel and retried, and the request stays pending: no mask
			// needed (two rt_sigprocmask calls per open saved).
			a.Flags = 0
			newfd, err = r.l.Addfd(&a)
		} else {
			newfd, err = addfdNoSignals(r.l, &a)
		}
		if err == nil && r.b.twoStep {
			// The value comes from ADDFD (R21); see Options.WaitKillableRecv.
			resp := sys.NotifResp{ID: r.n.ID, Val: int64(newfd)}
			if err := r.l.Send(&resp); err != nil {
				if !errors.Is(err, unix.ENOENT) {
					r.b.metrics.sendErrors.Add(1)
				}
				r.b.metrics.dropped.Add(1)
			}
			return 0
		}
		if err == nil {
			return 0
		}
		var e unix.Errno
		if errors.Is(err, unix.ENOENT) || !errors.As(err, &e) {
			// Target gone (R9); the broker's copy is closed by closeAll.
			r.b.metrics.dropped.Add(1)
			return 0
		}
		// EMFILE at the worker's limit, an LSM refusal...: the thread is
		// still waiting for an answer (R20).
		res = errnoResult(e)
	case resError:
		if res.code == codeDeny {
			r.deny = true
		}
	}
	resp := encodeReply(r.n.ID, res, r.b.denyErrno)
	if err := r.l.Send(&resp); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			r.b.metrics.sendErrors.Add(1)
		}
		r.b.metrics.dropped.Add(1)
	}
	return int(-resp.Error)
}

// allSignals is a full signal set: SIGKILL and SIGSTOP cannot be blocked,
// the kernel ignores them in a mask.
var allSignals = unix.Sigset_t{Val: [len(unix.Sigset_t{}.Val)]uint64{0: ^uint64(0), 1: ^uint64(0)}}

// addfdNoSignals issues ADDFD|SEND with every signal blocked on the calling
// (locked) serving thread.
//
// The kernel marks the notification answered (REPLIED) when it queues an
// ADDFD|SEND, before the target has installed the fd, and then waits
// interruptibly for the target. If a signal interrupts that wait before
// the target took the fd (a SIGCHLD from any child of the host, which the
// kernel may deliver to any thread, or SIGURG from the Go runtime), the
// kernel takes the queued fd back, and the target wakes up answered with
// the reply's initial value: its open returns 0 with no error, an fd it
// never got (the benchmark's intermittent EBADF: the worker later closed
// "fd 0"; a worker could as well read or write its stdin believing it the
// file it opened). The ioctl, restarted, then fails with EINPROGRESS or
// ENOENT. Blocking signals across the ioctl closes that window; pending
// signals are delivered once the mask is restored. The goroutine is locked
// to its thread, so the mask applies to exactly this ioctl (rt_sigprocmask
// is a raw, per-thread system call).
func addfdNoSignals(l *sys.Listener, a *sys.NotifAddfd) (int, error) {
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &allSignals, &old); err != nil {
		return -1, err
	}
	fd, err := l.Addfd(a)
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return fd, err
}

func (r *req) emit(errno int, lat time.Duration) {
	r.b.emitEvent(r.event(errno, lat))
}

// event builds the audit record of the request.
func (r *req) event(errno int, lat time.Duration) Event {
	ev := Event{
		Time:     r.start,
		Pid:      r.tid,
		Path:     r.path,
		Resolved: r.resolved,
		Right:    r.right,
		Allowed:  !r.deny,
		Rule:     "default",
		Errno:    errno,
		Latency:  lat,
		Limit:    r.limit,
	}
	if r.sc != nil {
		ev.Syscall = r.sc.name
	} else {
		ev.Syscall = "syscall_" + strconv.Itoa(int(r.n.Data.Nr))
	}
	if r.judged {
		ev.Rule = r.b.m.Where(r.verdict)
	}
	return ev
}

// emitEvent calls the audit hook.
func (b *Broker) emitEvent(ev Event) {
	// The hook is the host's code, run on a serving thread after the
	// reply: a panic in it must not take the host and every other
	// worker's service down with it (R61, D-14).
	defer func() {
		if p := recover(); p != nil {
			b.metrics.panics.Add(1)
		}
	}()
	b.audit(ev)
}

// arg returns argument i as the kernel passed it.
func (r *req) arg(i int) uint64 { return r.n.Data.Args[i] }

// validate checks that the notification is still pending: the thread did
// not die, its tid was not recycled, no signal interrupted it (R13). It is
// called after every read of the worker's memory and every open through
// /proc/<tid>, before the result is used.
func (r *req) validate() int {
	if err := r.l.IDValid(r.n.ID); err != nil {
		return codeDrop
	}
	return codeOK
}

// readPath copies the string at addr into buf once (R14, R15). The caller
// validates before using it.
func (r *req) readPath(addr uint64, buf []byte) (string, int) {
	n, err := sys.ReadString(r.tid, addr, buf)
	if err != nil {
		return "", memErr(err)
	}
	if h := r.b.hookAfterRead; h != nil {
		h(r.tid)
	}
	return string(buf[:n]), codeOK
}

// readMem copies len(buf) bytes at addr (open_how, times).
func (r *req) readMem(addr uint64, buf []byte) int {
	if addr == 0 {
		return int(unix.EFAULT)
	}
	if _, err := sys.ReadMem(r.tid, addr, buf); err != nil {
		return memErr(err)
	}
	if h := r.b.hookAfterRead; h != nil {
		h(r.tid)
	}
	return codeOK
}

// memErr maps a failed read of worker memory to a reply code.
func memErr(err error) int {
	switch {
	case errors.Is(err, unix.EFAULT):
		return int(unix.EFAULT)
	case errors.Is(err, unix.ENAMETOOLONG):
		return int(unix.ENAMETOOLONG)
	case errors.Is(err, unix.ESRCH):
		return codeDrop // the process is gone
	}
	return codeDeny
}

// writeMem writes a result into the worker right after an ID_VALID (R23).
func (r *req) writeMem(addr uint64, b []byte) int {
	if c := r.validate(); c != codeOK {
		return c
	}
	return r.writeValidated(addr, b)
}

// writeValidated is writeMem for a caller that has just validated.
func (r *req) writeValidated(addr uint64, b []byte) int {
	if err := sys.WriteMem(r.tid, addr, b); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return codeDrop
		}
		return int(unix.EFAULT)
	}
	return codeOK
}

// own registers a broker-side fd; it is closed when the request ends.
func (r *req) own(fd int) { r.fds = append(r.fds, fd) }

// acquire reserves room for one more broker fd (R62).
func (r *req) acquire() bool { return r.b.fds.acquire() }

// opened finishes an fd-creating call made after acquire.
func (r *req) opened(fd int, err error) (int, error) {
	if err != nil {
		r.b.fds.release()
		return -1, err
	}
	r.own(fd)
	return fd, nil
}

// openat2 opens with openat2, retrying EINTR, and owns the result. The
// lookup is tried from the dentry cache first (RESOLVE_CACHED); a miss,
// or an open that must create or truncate, runs in a blocking section
// (block.go, R60).
func (r *req) openat2(dirfd int, path string, flags uint64, resolve uint64) (int, error) {
	if r.halt != nil {
		return -1, r.halt
	}
	if !r.acquire() {
		return -1, unix.EMFILE
	}
	how := unix.OpenHow{Flags: flags, Resolve: resolve}
	open := func() (int, error) {
		return sys.RetryValue(func() (int, error) { return unix.Openat2(dirfd, path, &how) })
	}
	if resolve&resolveCached != 0 {
		return r.opened(open()) // the worker's own RESOLVE_CACHED: never waits
	}
	if r.b.cached && flags&(unix.O_CREAT|unix.O_TRUNC|unix.O_TMPFILE) == 0 {
		how.Resolve = resolve | resolveCached
		fd, err := open()
		if !errors.Is(err, unix.EAGAIN) {
			return r.opened(fd, err)
		}
		how.Resolve = resolve
	}
	return r.opened(r.block(func(func() bool) (int, error) { return open() }))
}

// openat opens with openat, retrying EINTR, and owns the result. It is
// for the broker's own opens under /proc, which never wait.
func (r *req) openat(dirfd int, path string, flags int, mode uint32) (int, error) {
	if r.halt != nil {
		return -1, r.halt
	}
	if !r.acquire() {
		return -1, unix.EMFILE
	}
	return r.opened(sys.RetryValue(func() (int, error) { return unix.Openat(dirfd, path, flags, mode) }))
}

// openatBlocking is openat in a blocking section (block.go): a create in
// a worker's directory may wait on the file system.
func (r *req) openatBlocking(dirfd int, path string, flags int, mode uint32) (int, error) {
	return r.openBlocking(func(func() bool) (int, error) {
		return sys.RetryValue(func() (int, error) { return unix.Openat(dirfd, path, flags, mode) })
	})
}

// openBlocking runs op, which opens a file that may make it wait, in a
// blocking section, and owns the result.
func (r *req) openBlocking(op func(gone func() bool) (int, error)) (int, error) {
	if r.halt != nil {
		return -1, r.halt
	}
	if !r.acquire() {
		return -1, unix.EMFILE
	}
	return r.opened(r.block(op))
}

// procOpen opens path (such as "<tid>/cwd") under /proc for the broker's
// own use: anchors and fds of the calling worker. The kernel lets a
// thread open another task's fd and cwd links only if it holds every
// capability the task has permitted, or CAP_SYS_PTRACE; a worker with
// capabilities (root) thus needs CAP_SYS_PTRACE, which the serving thread
// makes effective for this open only. Paths the worker asks for are never
// opened with it.
func (r *req) procOpen(path string, flags int) (int, error) {
	fd := -1
	err := r.procDo(func() (err error) {
		fd, err = r.openat(r.s.proc, path, flags, 0)
		return err
	})
	return fd, err
}

// procDo runs op, an access to a worker's links under /proc (see
// procOpen), and retries it with CAP_SYS_PTRACE effective when refused,
// if the thread may raise it. Once a raise was needed, later calls raise
// at once.
func (r *req) procDo(op func() error) error {
	raise := r.s.raise.Load() && r.caps.canRaise
	if !raise {
		err := op()
		if err == nil || !r.caps.canRaise || !(errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
			return err
		}
	}
	if err := r.caps.raisePtrace(); err != nil {
		return err
	}
	err := op()
	if rerr := r.caps.restore(); rerr != nil {
		// A thread that cannot drop the capability must not serve again:
		// run ends it after this request.
		r.poisoned = os.NewSyscallError("capset", rerr)
		return unix.EPERM
	}
	if err == nil && !raise {
		r.s.raise.Store(true)
	}
	return err
}

// asSelf runs op on an object. For an object under the calling worker's
// own /proc/<tgid> (matcher path /proc/self/... or /proc/thread-self/...)
// a refusal is retried with CAP_SYS_PTRACE effective: the kernel lets a
// process pass every ptrace access check on itself (readlink of
// /proc/self/exe, open of /proc/self/environ ...), which the broker, a
// different process, only passes with that capability. Nothing else ever
// runs with it.
func (r *req) asSelf(o *object, op func() error) error {
	err := op()
	if err == nil || !o.self() || !r.caps.canRaise || !(errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
		return err
	}
	if rerr := r.caps.raisePtrace(); rerr != nil {
		return err
	}
	err = op()
	if rerr := r.caps.restore(); rerr != nil {
		r.poisoned = os.NewSyscallError("capset", rerr)
		return unix.EPERM
	}
	return err
}

// closeFd closes one owned fd before the request ends.
func (r *req) closeFd(fd int) {
	for i, f := range r.fds {
		if f == fd {
			r.fds = append(r.fds[:i], r.fds[i+1:]...)
			unix.Close(fd)
			r.b.fds.release()
			return
		}
	}
}

// closeAll closes every fd the request still owns (R18, R62).
func (r *req) closeAll() {
	for _, fd := range r.fds {
		unix.Close(fd)
		r.b.fds.release()
	}
	r.fds = r.fds[:0]
}

// errCode turns a system call error into a reply code.
func errCode(err error) int {
	switch {
	case errors.Is(err, errGone):
		return codeDrop
	case errors.Is(err, errOverCap):
		return int(unix.EAGAIN) // serve answers EAGAIN anyway
	}
	var e unix.Errno
	if errors.As(err, &e) && e != 0 && int(e) <= maxErrno {
		return int(e)
	}
	return int(unix.EIO)
}

func itoa(n int) string { return strconv.Itoa(n) }

// procPath is "/proc/self/fd/N" for a broker fd: the way to reach the
// object behind an O_PATH fd without naming it again.
func procFdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// status reads Tgid and Umask of the calling thread from
// /proc/<tid>/status, then validates the notification (the tid may have
// been recycled while we read).
func (r *req) status() int {
	if r.tgid != 0 {
		return codeOK
	}
	if !r.acquire() {
		return int(unix.EMFILE)
	}
	fd, err := r.opened(unix.Openat(r.s.proc, itoa(r.tid)+"/status", unix.O_RDONLY|unix.O_CLOEXEC, 0))
	if err != nil {
		if c := r.validate(); c != codeOK {
			return c
		}
		return errCode(err)
	}
	n, err := sys.RetryValue(func() (int, error) { return unix.Pread(fd, r.buf[:1024], 0) })
	r.closeFd(fd)
	if err != nil {
		return errCode(err)
	}
	if c := r.validate(); c != codeOK {
		return c
	}
	tgid, umask, ok := parseStatus(r.buf[:n])
	if !ok {
		return int(unix.EIO)
	}
	r.tgid, r.umask = tgid, umask
	return codeOK
}

// parseStatus extracts Tgid and Umask from /proc/<pid>/status.
func parseStatus(b []byte) (tgid, umask int, ok bool) {
	umask = 0o022 // kernels before 4.7 have no Umask line
	for len(b) > 0 {
		line := b
		if i := indexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		switch {
		case hasPrefixBytes(line, "Umask:\t"):
			v, err := strconv.ParseUint(string(line[7:]), 8, 32)
			if err != nil {
				return 0, 0, false
			}
			umask = int(v)
		case hasPrefixBytes(line, "Tgid:\t"):
			v, err := strconv.Atoi(string(line[6:]))
			if err != nil || v <= 0 {
				return 0, 0, false
			}
			return v, umask, true
		}
	}
	return 0, 0, false
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func hasPrefixBytes(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}
