//go:build linux

package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// ErrNotSupported is wrapped by errors that mean the kernel lacks a feature
// the broker needs. It is [sys.ErrNotSupported].
var ErrNotSupported = sys.ErrNotSupported

// Options configure a [Broker]. The zero value of each field means its
// default.
type Options struct {
	// Matcher decides every request. Required.
	Matcher *policy.Matcher
	// DenyErrno is the errno of denials, policy.DefaultErrno(); 0 means
	// EACCES. It must be in [1, 4095].
	DenyErrno int
	// Audit, if set, is called with one Event per request after its reply,
	// from the serving goroutines (so it must be safe for concurrent use
	// and should be quick). Nil means no audit and no cost.
	Audit func(Event)
	// AuditDenialsOnly restricts Audit to denied requests.
	AuditDenialsOnly bool
	// Threads is the number of serving goroutines (each on its own locked
	// OS thread) per listener; 0 means 2.
	Threads int

	// Uid and Gid are the worker's user and group: the serving threads set
	// their fsuid and fsgid to them so that the kernel checks permissions
	// as the worker (security.md R39). 0 means the broker's own fsuid and
	// fsgid; a broker that is not root can only use its own.
	Uid, Gid int
	// WaitKillableRecv tells the broker that the workers' filter was
	// installed with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19):
	// once a request is received only a fatal signal interrupts the
	// worker's call. The broker then installs an fd with a plain ADDFD and
	// answers with SEND (val = the new fd number) instead of ADDFD|SEND:
	// an ADDFD|SEND interrupted by SIGSTOP of the host (which no mask can
	// block) makes the kernel answer the worker with 0 and no fd; a plain
	// ADDFD interrupted that way leaves the request pending and is
	// retried, and no worker thread can give up between ADDFD and SEND.
	WaitKillableRecv bool
	// Groups are the worker's supplementary groups. Nil means the broker's
	// own; an empty, non-nil slice means none (needs CAP_SETGID).
	Groups []int

	// BlockTimeout is the deadline of a request that waits in the kernel
	// (a FIFO open waiting for its other end, a lookup on a hung FUSE or
	// NFS mount; see block.go): when it passes, the broker answers EINTR
	// and stops waiting for the thread (security.md R26). 0 means 10 s.
	BlockTimeout time.Duration
	// MaxBlockedPerWorker caps the requests of one listener (one worker
	// tree) that wait in the kernel at once, each on its own broker
	// thread; a request beyond it is answered EAGAIN (R59, R60). 0 means
	// 8.
	MaxBlockedPerWorker int
	// MaxBlocked caps the same over every listener this Broker serves, at
	// most 2048, the cap of the process as a whole (every Broker). 0
	// means 256.
	MaxBlocked int
}

// An Event records one decision.
type Event struct {
	Time     time.Time     // when the request was received
	Pid      int           // calling thread id, in the broker's pid namespace
	Syscall  string        // e.g. "openat"
	Path     string        // the path as the worker sent it ("old -> new" for rename)
	Resolved string        // the path the decision was taken on, as the matcher saw it
	Right    policy.Right  // the rights asked of the matcher
	Allowed  bool          // the policy allowed the request
	Rule     string        // the deciding rule, "file:line", or "default"
	Errno    int           // the errno returned to the worker, 0 for success
	Latency  time.Duration // from receiving the notification to the reply
	// Limit is set when a cap or a deadline, not the kernel, decided the
	// reply: LimitWorkerCap, LimitBrokerCap, LimitProcessCap (EAGAIN) or
	// LimitDeadline (EINTR).
	Limit string
}

// A Broker answers the notifications of workers under one policy. It is
// safe for concurrent use: Serve may run for many listeners at once.
type Broker struct {
	m         *policy.Matcher
	denyErrno int
	twoStep   bool // WaitKillableRecv: ADDFD, then SEND
	audit     func(Event)
	denials   bool
	threads   int
	creds     creds
	pid       int // the broker's own tgid
	fds       fdLimit
	metrics   metrics
	cached    bool // openat2 has RESOLVE_CACHED (Linux 5.12)

	blockTimeout        time.Duration
	maxBlockedPerWorker int
	maxBlocked          int
	blocked             atomic.Int64 // blocking sections now, every listener

	// hookAfterRead, if set (tests only), runs after a request's memory was
	// read and before it is checked with ID_VALID.
	hookAfterRead func(tid int)
}

// New checks the options and the kernel and returns a Broker.
//
// It needs seccomp user notification with ADDFD and
// SECCOMP_ADDFD_FLAG_SEND (Linux 5.14) and openat2 (5.6); without them it
// returns an error wrapping [ErrNotSupported] (security.md R1).
func New(opts Options) (*Broker, error) {
	if opts.Matcher == nil {
		return nil, errors.New("broker: Options.Matcher is nil")
	}
	deny := opts.DenyErrno
	if deny == 0 {
		deny = int(unix.EACCES)
	}
	if deny < 1 || deny > maxErrno {
		return nil, fmt.Errorf("broker: DenyErrno %d out of range [1, %d]", opts.DenyErrno, maxErrno)
	}
	threads := opts.Threads
	if threads == 0 {
		threads = 2
	}
	if threads < 0 || threads > 64 {
		return nil, fmt.Errorf("broker: Threads %d out of range [1, 64]", opts.Threads)
	}
	b := &Broker{
		blockTimeout:        opts.BlockTimeout,
		maxBlockedPerWorker: opts.MaxBlockedPerWorker,
		maxBlocked:          opts.MaxBlocked,
	}
	if b.blockTimeout == 0 {
		b.blockTimeout = defaultBlockTimeout
	}
	if b.maxBlockedPerWorker == 0 {
		b.maxBlockedPerWorker = defaultMaxBlockedPerWorker
	}
	if b.maxBlocked == 0 {
		b.maxBlocked = defaultMaxBlocked
	}
	if b.blockTimeout < 0 || b.maxBlockedPerWorker < 0 || b.maxBlocked < 0 || b.maxBlocked > maxBlockedProcess {
		return nil, fmt.Errorf("broker: BlockTimeout %v, MaxBlockedPerWorker %d or MaxBlocked %d out of range", opts.BlockTimeout, opts.MaxBlockedPerWorker, opts.MaxBlocked)
	}
	if _, err := sys.GetNotifSizes(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := probeOpenat2(); err != nil {
		return nil, err
	}
	c, err := workerCreds(opts.Uid, opts.Gid, opts.Groups)
	if err != nil {
		return nil, err
	}
	b.m, b.denyErrno, b.twoStep = opts.Matcher, deny, opts.WaitKillableRecv
	b.audit, b.denials, b.threads = opts.Audit, opts.AuditDenialsOnly, threads
	b.creds, b.pid = c, os.Getpid()
	b.cached = haveResolveCached()
	b.fds.init()
	b.metrics.perSyscall = make([]syscallStats, len(syscallList)+1)
	return b, nil
}

// probeOpenat2 checks that openat2 exists (R1).
func probeOpenat2() error {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("broker: %w", &sys.UnsupportedFeatureError{Name: "openat2", MinimumVersion: "5.6", Err: err})
		}
		return fmt.Errorf("broker: openat2 probe: %w", os.NewSyscallError("openat2", err))
	}
	unix.Close(fd)
	return nil
}

// haveResolveCached reports whether openat2 knows RESOLVE_CACHED (Linux
// 5.12): EINVAL means it does not; a hit or EAGAIN (a miss) that it does.
func haveResolveCached() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveCached})
	if err == nil {
		unix.Close(fd)
		return true
	}
	return errors.Is(err, unix.EAGAIN)
}

// server is the state of one Serve call: one listener.
type server struct {
	b    *Broker
	fd   int // the listener
	efd  int // eventfd: readable once Serve must stop
	root int // O_PATH "/": the anchor of absolute paths
	proc int // O_PATH "/proc"
	task int // O_PATH "/proc/<broker pid>/task": the broker's own threads

	// mu is the receiver role: only its holder polls the listener and
	// issues RECV, so no goroutine ever blocks inside RECV (R8). The
	// others wait for it here, in Go, not in the kernel. It is released
	// by the goroutine that holds it or, for a holder busy with one
	// request for longer than handOffAfter, by the watchdog (watch).
	mu sync.Mutex
	// kept is the ticket of the request whose server holds mu while it
	// serves it (see run and keep), 0 if none; the watchdog may then
	// release mu on the holder's behalf.
	kept     atomic.Int64
	tickets  atomic.Int64
	lastSeen atomic.Int64 // the watchdog's last look at kept
	// lastTid and sameTid count requests in a row from one thread
	// (guarded by mu: only the holder of the role touches them).
	lastTid  uint32
	sameTid  int
	armed    atomic.Bool // the watchdog timer is set
	watchdog *time.Timer
	stopped  atomic.Bool // set once; the eventfd efd is then readable
	hup      atomic.Bool

	// raise is set once opening a worker's /proc/<tid> entry needed
	// CAP_SYS_PTRACE (a worker with capabilities); see req.procOpen.
	raise atomic.Bool

	// free counts the serving goroutines not in a blocking section;
	// blocked those in one (block.go).
	free    atomic.Int64
	blocked atomic.Int64

	// gmu guards the goroutine accounting: Serve waits until live, the
	// goroutines it must wait for, is 0; refs counts Serve and every
	// goroutine, and the last one closes the fds (a goroutine stuck in
	// the kernel may still use them after Serve returned).
	gmu     sync.Mutex
	cond    *sync.Cond
	live    int
	refs    int
	closing bool
	err     error // the first error of a serving goroutine
}

// Serve answers the notifications of listener until no task uses its
// filter any more (POLLHUP) or ctx is done. It takes ownership of listener
// and closes it before returning. It returns nil after POLLHUP, ctx.Err()
// after cancellation, and an error if a serving thread could not be set up
// or the listener failed.
//
// Serve does not wait for a serving thread stuck in the kernel whose
// request was already answered at its deadline or dropped (a hung FUSE or
// NFS lookup, see [Options.BlockTimeout]): such a thread keeps a private
// copy of the listener fd until the kernel lets it go, then ends.
func (b *Broker) Serve(ctx context.Context, listener *os.File) (err error) {
	if listener == nil {
		return errors.New("broker: nil listener")
	}
	defer listener.Close()
	s := &server{b: b, fd: -1, efd: -1, root: -1, proc: -1, task: -1, refs: 1}
	s.cond = sync.NewCond(&s.gmu)
	// The server works on its own copy of the listener fd: a serving
	// thread stuck in the kernel past Serve's return (block.go) may still
	// use it, and must never find the number reused by another file.
	lfd, err := unix.FcntlInt(listener.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	runtime.KeepAlive(listener)
	if err != nil {
		return fmt.Errorf("broker: listener: %w", os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err))
	}
	s.fd = lfd
	defer s.unref()
	if err := s.openFds(); err != nil {
		return err
	}
	// SYNC_WAKE_UP makes the kernel wake the broker on the worker's CPU
	// (R28); without it (before 6.6) the broker is only slower.
	if err := sys.SetSyncWakeup(s.fd); err != nil && !errors.Is(err, sys.ErrNotSupported) {
		return fmt.Errorf("broker: listener: %w", os.NewSyscallError("ioctl(SECCOMP_IOCTL_NOTIF_SET_FLAGS)", err))
	}

	// The watcher must be gone before the fds may close: a wake() racing
	// with it would write to an fd number that may already belong to
	// someone else (another listener's eventfd, a request's file).
	done, watched := make(chan struct{}), make(chan struct{})
	defer func() { close(done); <-watched }()
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
			s.wake()
		case <-done:
		}
	}()

	s.watchdog = time.AfterFunc(time.Hour, s.watch)
	s.watchdog.Stop()
	defer s.watchdog.Stop()

	s.free.Store(int64(b.threads))
	for range b.threads {
		s.spawn()
	}
	// Wait for every serving goroutine except those stuck in the kernel
	// with their request already answered or dropped (block.go).
	s.gmu.Lock()
	for s.live > 0 {
		s.cond.Wait()
	}
	s.closing = true
	err = s.err
	s.gmu.Unlock()
	if err != nil {
		return err
	}
	if !s.hup.Load() && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func (s *server) openFds() error {
	var err error
	s.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("broker: %w", os.NewSyscallError("eventfd", err))
	}
	if s.root, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("broker: open /: %w", err)
	}
	if s.proc, err = unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("broker: open /proc: %w", err)
	}
	if s.task, err = unix.Openat(s.proc, itoa(s.b.pid)+"/task", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("broker: open /proc/%d/task: %w", s.b.pid, err)
	}
	return nil
}

func (s *server) closeFds() {
	for _, fd := range []int{s.fd, s.efd, s.root, s.proc, s.task} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// wake makes every serving goroutine return: the eventfd stays readable.
func (s *server) wake() {
	var one = [8]byte{1}
	unix.Write(s.efd, one[:])
}

// stop ends the loop of every serving goroutine. It never waits for the
// receiver role: its holder may be in poll, which the eventfd wakes.
func (s *server) stop() {
	s.stopped.Store(true)
	s.wake()
}

// run is one serving goroutine. It locks its OS thread and never unlocks
// it: the thread's credentials change, so it must exit with the goroutine
// and never run other Go code.
//
// The receiver role (s.mu) makes its holder the only thread that polls and
// receives: RECV is issued only after poll reported the listener readable,
// and no goroutine ever blocks inside RECV (R8). Handing the role to
// another serving thread on every request costs a futex wake and a context
// switch per request, for nothing when a single worker thread makes one
// call at a time: that thread is blocked in its call until the reply and
// cannot send another notification meanwhile. So the holder keeps the role
// while it serves once the last keepAfter requests came from the same
// thread, and goes straight back to poll → RECV: one thread in a tight
// synchronous loop. As soon as requests come from several threads or
// processes it hands the role over before serving each request, so a
// second serving thread polls the listener meanwhile (several worker
// threads are served in parallel). A request from another thread that
// arrives while the holder serves with the role kept waits for the end of
// that request; the watchdog (watch) bounds this wait for requests that
// take long (R59, R60).
func (s *server) run(g *gor) error {
	runtime.LockOSThread()
	caps, err := s.b.creds.apply()
	if err != nil {
		s.stop()
		return fmt.Errorf("broker: serving thread: %w", err)
	}
	l, err := sys.NewListener(s.fd)
	if err != nil {
		s.stop()
		return fmt.Errorf("broker: %w", err)
	}
	r := newReq(s, l)
	r.caps, r.g = caps, g
	held := false
	var busy, done time.Time // this goroutine's busy stretch (yieldEvery)
	defer func() {
		if held {
			s.mu.Unlock()
		}
	}()
	helpers := s.b.threads > 1
	for {
		if !held {
			s.mu.Lock()
			held = true
		}
		ok, err := s.receive(l, &r.n)
		if !ok {
			return err
		}
		r.ticket, r.holding, r.released = 0, held, false
		if helpers {
			// Only the holder of the role gets here: s.lastTid and
			// s.sameTid are guarded by it.
			if tid := r.n.Pid; tid == s.lastTid {
				s.sameTid++
			} else {
				s.lastTid, s.sameTid = tid, 0
			}
			r.holding = false
			if s.sameTid >= keepAfter {
				r.ticket = s.keep()
			} else {
				s.mu.Unlock()
				held = false
			}
		}
		r.serve()
		switch {
		case r.released:
			held = false // a blocking section gave the role up
		case r.ticket != 0 && !s.kept.CompareAndSwap(r.ticket, 0):
			held = false // the watchdog released the role meanwhile
		}
		if r.poisoned != nil {
			return fmt.Errorf("broker: serving thread retired: %w", r.poisoned)
		}
		if s.retire() {
			return nil // a spare, no longer needed (block.go)
		}
		// A busy serving goroutine gives its P up now and then (R59):
		// see yieldEvery.
		if r.start.Sub(done) > idleGap {
			busy = r.start // it waited for this request
		}
		done = r.start.Add(r.lat)
		if done.Sub(busy) >= yieldEvery {
			runtime.Gosched()
			busy = time.Now()
		}
	}
}

// yieldEvery is how often a serving goroutine that serves request after
// request without a pause lets other goroutines have its P
// (runtime.Gosched). Go runs at most GOMAXPROCS goroutines at once, and a
// serving goroutine keeps its P across the short system calls of a
// request, so under a flood the flooded listener's goroutines hold every P
// while another listener's goroutine, woken from poll by its worker's
// request, waits in the global run queue until the scheduler preempts one
// of them (10 ms of running Go code) or one blocks: measured on 2 vCPUs, a control worker's p99 under a
// 256-thread flood of another worker was 20 ms with GOMAXPROCS=2 and 0.45
// ms with 8 (GC off in both). A goroutine yields once it has served for
// yieldEvery without a pause longer than idleGap between two requests:
// about one scheduler hand-off per millisecond for a flooded listener,
// none for a worker that makes a call now and then. (Yielding is not
// cheap: the goroutine is locked to its thread, so Gosched hands the P to
// another thread and back, two wake-ups; yielding whenever a millisecond
// had passed since the last yield cost a sparse caller such as Python's
// import system one such hand-off per call.)
const yieldEvery = time.Millisecond

// idleGap is the pause between two requests (from the end of one's
// service to the start of the next) that ends a busy stretch: the thread
// waited in poll, where its P is free for other goroutines. A flooded
// listener's requests follow each other within a round trip (10-30 µs).
const idleGap = 100 * time.Microsecond

// handOffAfter is how long a serving thread keeps the receiver role for
// one request (at least, at most twice that) before the watchdog hands it
// to another thread: a request that takes long (a file system stuck in
// the kernel, R60) must not hold up the others.
const handOffAfter = 500 * time.Microsecond

// keepAfter is how many requests from the same thread in a row make the
// holder of the receiver role keep it while it serves (see run).
const keepAfter = 2

// keep records that the caller, holder of the receiver role, keeps it
// while it serves one request, and returns the ticket that names this
// request. The caller ends it with s.kept.CompareAndSwap(ticket, 0): if
// that fails, the watchdog has released the role on its behalf.
func (s *server) keep() int64 {
	t := s.tickets.Add(1)
	s.kept.Store(t)
	if s.armed.CompareAndSwap(false, true) {
		s.watchdog.Reset(handOffAfter)
	}
	return t
}

// watch is the watchdog: it runs every handOffAfter while requests are
// served with the role kept (one timer for the server, not one per
// request) and releases the role of a request it finds still running on
// its second look. Tickets are unique, so the compare-and-swap releases
// the role exactly once, here or by its holder, and never someone else's.
func (s *server) watch() {
	t := s.kept.Load()
	if t != 0 && t == s.lastSeen.Load() {
		if s.kept.CompareAndSwap(t, 0) {
			s.mu.Unlock()
		}
		t = 0
	}
	s.lastSeen.Store(t)
	if t != 0 {
		s.watchdog.Reset(handOffAfter)
		return
	}
	s.armed.Store(false)
	// keep may have seen armed still true after the Load above.
	if s.kept.Load() != 0 && s.armed.CompareAndSwap(false, true) {
		s.watchdog.Reset(handOffAfter)
	}
}

// maxRecvEinval bounds consecutive EINVAL answers to RECV (a dirty buffer,
// R7) before the listener is given up.
const maxRecvEinval = 16

// receive waits for the next notification. The caller holds the receiver
// role (s.mu). It returns false when the loop must end: POLLHUP (nil
// error), a wake-up, or a listener error.
func (s *server) receive(l *sys.Listener, n *sys.Notif) (bool, error) {
	einval := 0
	for !s.stopped.Load() {
		fds := [2]unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(s.efd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds[:], -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			s.stop()
			return false, fmt.Errorf("broker: %w", os.NewSyscallError("poll", err))
		}
		if fds[1].Revents != 0 {
			return false, nil
		}
		ev := fds[0].Revents
		switch {
		case ev&unix.POLLNVAL != 0:
			s.stop()
			return false, errors.New("broker: listener fd is not open")
		case ev&unix.POLLIN != 0:
			// poll said readable and we are the only receiver, so RECV
			// returns at once: with the notification, or ENOENT if its
			// task was killed in between (R9).
			err := l.Recv(n)
			switch {
			case err == nil:
				return true, nil
			case errors.Is(err, unix.ENOENT):
				s.b.metrics.dropped.Add(1)
			case errors.Is(err, unix.EINVAL) && einval < maxRecvEinval:
				einval++
			default:
				s.stop()
				return false, fmt.Errorf("broker: %w", os.NewSyscallError("ioctl(SECCOMP_IOCTL_NOTIF_RECV)", err))
			}
		case ev&(unix.POLLHUP|unix.POLLERR) != 0:
			// No task uses the filter any more: the worker tree is gone.
			s.hup.Store(true)
			s.stop()
			return false, nil
		}
	}
	return false, nil
}

// creds are the credentials serving threads take.
type creds struct {
	uid, gid  int
	groups    []int
	setGroups bool
	// keepPtrace keeps CAP_SYS_PTRACE effective: a worker with another
	// real uid can only be read (process_vm_readv, pidfd_getfd: ptrace
	// access with real credentials) with it. It grants no DAC override.
	keepPtrace bool
}

// threadCaps are a serving thread's capability sets after setup.
type threadCaps struct {
	hdr  unix.CapUserHeader
	data [2]unix.CapUserData
	// canRaise: CAP_SYS_PTRACE is permitted, so the thread may make it
	// effective for a moment (see req.procOpen).
	canRaise bool
}

// raisePtrace makes CAP_SYS_PTRACE effective on the calling thread.
func (tc *threadCaps) raisePtrace() error {
	d := tc.data
	d[0].Effective |= 1 << unix.CAP_SYS_PTRACE
	return unix.Capset(&tc.hdr, &d[0])
}

// restore puts back the effective set of the setup.
func (tc *threadCaps) restore() error {
	d := tc.data
	return unix.Capset(&tc.hdr, &d[0])
}

func workerCreds(uid, gid int, groups []int) (creds, error) {
	c := creds{uid: uid, gid: gid}
	if uid == 0 {
		c.uid = unix.Getuid()
		if fsuid, err := unix.SetfsuidRetUid(-1); err == nil {
			c.uid = fsuid
		}
	}
	if gid == 0 {
		c.gid = unix.Getgid()
		if fsgid, err := unix.SetfsgidRetGid(-1); err == nil {
			c.gid = fsgid
		}
	}
	if uid < 0 || gid < 0 {
		return c, fmt.Errorf("broker: invalid worker uid %d or gid %d", uid, gid)
	}
	c.keepPtrace = c.uid != unix.Getuid()
	if groups != nil {
		own, err := unix.Getgroups()
		if err != nil {
			return c, fmt.Errorf("broker: %w", os.NewSyscallError("getgroups", err))
		}
		a, b := slices.Clone(groups), slices.Clone(own)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			c.groups, c.setGroups = slices.Clone(groups), true
		}
	}
	return c, nil
}

// apply gives the calling thread the worker's credentials for file access.
//
// Preconditions: the goroutine is locked to its thread and never unlocks
// it; every call here is thread-scoped (raw system calls, not the
// all-threads wrappers of package syscall).
func (c *creds) apply() (threadCaps, error) {
	var tc threadCaps
	// A private fs_struct makes umask (and cwd) thread-local: created
	// files then get exactly the mode the broker computes from the
	// worker's umask.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return tc, os.NewSyscallError("unshare(CLONE_FS)", err)
	}
	unix.Umask(0)
	if c.setGroups {
		// x/sys/unix's Setgroups is the raw, per-thread system call.
		if err := unix.Setgroups(c.groups); err != nil {
			return tc, os.NewSyscallError("setgroups", err)
		}
	}
	if _, err := unix.SetfsgidRetGid(c.gid); err != nil {
		return tc, os.NewSyscallError("setfsgid", err)
	}
	if got, _ := unix.SetfsgidRetGid(-1); got != c.gid {
		return tc, fmt.Errorf("setfsgid(%d): fsgid is %d", c.gid, got)
	}
	if _, err := unix.SetfsuidRetUid(c.uid); err != nil {
		return tc, os.NewSyscallError("setfsuid", err)
	}
	if got, _ := unix.SetfsuidRetUid(-1); got != c.uid {
		return tc, fmt.Errorf("setfsuid(%d): fsuid is %d", c.uid, got)
	}
	// No effective capabilities: no CAP_DAC_OVERRIDE, CAP_FOWNER, ... so a
	// root broker cannot open what the worker may not (P-42). The
	// permitted set is kept; the thread never raises it again. The one
	// exception is CAP_SYS_PTRACE for a worker of another uid (see creds).
	tc.hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&tc.hdr, &tc.data[0]); err != nil {
		return tc, os.NewSyscallError("capget", err)
	}
	tc.canRaise = tc.data[0].Permitted&(1<<unix.CAP_SYS_PTRACE) != 0
	tc.data[0].Effective, tc.data[1].Effective = 0, 0
	if c.keepPtrace {
		tc.data[0].Effective = tc.data[0].Permitted & (1 << unix.CAP_SYS_PTRACE)
	}
	if err := tc.restore(); err != nil {
		return tc, os.NewSyscallError("capset", err)
	}
	return tc, nil
}

// fdLimit bounds the fds all requests hold at once (R62), so that a flood
// of requests turns into EMFILE replies instead of a broker out of fds.
type fdLimit struct {
	n   atomic.Int64
	max int64
}

func (l *fdLimit) init() {
	var rl unix.Rlimit
	cur := int64(1024)
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<30 {
		cur = int64(rl.Cur)
	}
	reserve := min(max(16, cur/4), 256)
	l.max = max(cur-reserve, 8)
}

func (l *fdLimit) acquire() bool {
	if l.n.Add(1) > l.max {
		l.n.Add(-1)
		return false
	}
	return true
}

func (l *fdLimit) release() { l.n.Add(-1) }
