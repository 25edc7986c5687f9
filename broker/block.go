//go:build linux

package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// Blocking operations (security.md R26, R59, R60).
//
// Most of what the broker does for a request never waits: lookups in the
// dentry cache, opens with O_NONBLOCK. Three kinds of operation may wait
// in the kernel for as long as something else decides:
//   - a lookup that needs the file system: revalidation or I/O on FUSE,
//     NFS, autofs, a stale network mount (R60);
//   - an open that truncates or creates (its lookup cannot be done from the
//     cache, RESOLVE_CACHED refuses O_CREAT and O_TRUNC);
//   - the open of a FIFO the worker may open, without O_NONBLOCK: the
//     kernel makes the worker wait for the other end, so the broker waits
//     for it on the worker's behalf (waitFIFO).
//
// Lookups are tried with RESOLVE_CACHED first (Linux 5.12), which fails
// with EAGAIN instead of doing anything that could wait; only a miss takes
// the slow way. The slow way runs the operation in a blocking section on
// the serving thread itself (it carries the worker's credentials), under
// three caps that are taken before the operation starts, never after:
// Options.MaxBlockedPerWorker per listener (one worker tree), Options.
// MaxBlocked over every listener of the Broker, and maxBlockedProcess over
// the process (Go aborts at 10,000 threads, and every listener of every
// Broker shares them). A request that finds a cap full is answered EAGAIN
// at once: the caller sees "resource temporarily unavailable", as for an
// open that a lease or RESOLVE_CACHED refuses, and no thread waits for a
// slot (a wait would let one worker's backlog hold the others' threads,
// R59). Nothing is opened for such a request, so EAGAIN is never a silent
// allow, and no side effect (create, truncate) happens after a refusal:
// the request stops using the file system at the first refusal.
//
// A blocking section has a monitor (a timer, no thread of its own):
//   - after spareAfter it starts a spare serving goroutine for the
//     listener, so the listener keeps Options.Threads goroutines able to
//     receive while this one waits; spares retire once the waiting
//     threads are back. A listener thus has at most Threads goroutines
//     serving plus MaxBlockedPerWorker waiting.
//   - every pollEvery it checks SECCOMP_IOCTL_NOTIF_ID_VALID: nobody tells
//     the broker that the target gave up (killed, or interrupted before
//     Linux 5.19's WAIT_KILLABLE_RECV), R26. A target that gave up makes
//     the section abandoned.
//   - at Options.BlockTimeout it answers the request itself with EINTR,
//     the errno open(2) gives for an open of a slow device (a FIFO)
//     interrupted while it waits: callers that wait on purpose retry it
//     (Go's os package does), and each retry is a new, again bounded
//     request, so a broker thread never waits longer than the deadline
//     for a worker that still wants an answer.
//
// A FIFO open never waits inside the kernel: waitFIFO opens with
// O_NONBLOCK and waits in poll or in short sleeps, checking the section's
// state in between, so an abandoned or expired one returns within a poll
// interval and closes what it holds. Nothing wakes a thread stuck on a
// hung file system: it stays counted (Metrics.Stuck) against the caps
// until the kernel lets it go, its request already answered or dropped,
// and Serve returns without waiting for it; the listener and the other
// fds it may still use stay open until it is back (see server.refs).
const (
	defaultBlockTimeout        = 10 * time.Second
	defaultMaxBlockedPerWorker = 8
	defaultMaxBlocked          = 256
	// maxBlockedProcess caps blocking sections over every Broker of the
	// process: far below Go's 10,000 threads, with room for the serving
	// threads of some thousand listeners.
	maxBlockedProcess = 2048

	spareAfter = time.Millisecond
	pollEvery  = 10 * time.Millisecond
)

// blockedProcess counts the blocking sections of every Broker.
var blockedProcess atomic.Int64

// Errors a blocking section gives its caller. They are not unix.Errno
// values: no caller may take them for a kernel answer (raced takes
// EAGAIN for a rename race), and serve turns them into the reply.
var (
	errOverCap = errors.New("broker: a cap on blocking operations is full")
	errGone    = errors.New("broker: request answered or abandoned while it waited")
)

// Limits name, in Event.Limit, what decided a reply instead of the kernel.
const (
	LimitWorkerCap  = "worker-cap"  // Options.MaxBlockedPerWorker was full: EAGAIN
	LimitBrokerCap  = "broker-cap"  // Options.MaxBlocked was full: EAGAIN
	LimitProcessCap = "process-cap" // the process-wide cap was full: EAGAIN
	LimitDeadline   = "deadline"    // Options.BlockTimeout passed: EINTR
)

// Section states.
const (
	secRunning   int32 = iota
	secDone            // the thread finished first: it answers
	secExpired         // the monitor answered EINTR at the deadline
	secAbandoned       // the target gave up (ID_VALID failed)
)

// section is one blocking operation of a request.
type section struct {
	s     *server
	g     *gor
	id    uint64
	state atomic.Int32
	timer *time.Timer
	until time.Time // the deadline
	ev    Event     // the audit record of a deadline reply

	// mu orders the monitor and the thread: the monitor acts only while
	// the thread is still inside (closed false).
	mu      sync.Mutex
	closed  bool
	spawned bool
}

// acquireBlocked takes a slot of every cap or names the full one.
func (r *req) acquireBlocked() string {
	s, b := r.s, r.b
	if s.blocked.Add(1) > int64(b.maxBlockedPerWorker) {
		s.blocked.Add(-1)
		return LimitWorkerCap
	}
	if b.blocked.Add(1) > int64(b.maxBlocked) {
		b.blocked.Add(-1)
		s.blocked.Add(-1)
		return LimitBrokerCap
	}
	if blockedProcess.Add(1) > maxBlockedProcess {
		blockedProcess.Add(-1)
		b.blocked.Add(-1)
		s.blocked.Add(-1)
		return LimitProcessCap
	}
	return ""
}

func (r *req) releaseBlocked() {
	blockedProcess.Add(-1)
	r.b.blocked.Add(-1)
	r.s.blocked.Add(-1)
}

// block runs op, a call that may wait, in a blocking section: capped,
// watched with ID_VALID and under the deadline. An op that waits in steps
// stops when gone reports true. op returns a raw fd (or -1) that the
// caller owns; if the section ended without the thread (abandoned,
// expired), block closes it and returns errGone, and the request is
// dropped.
func (r *req) block(op func(gone func() bool) (int, error)) (int, error) {
	if r.halt != nil {
		return -1, r.halt
	}
	if limit := r.acquireBlocked(); limit != "" {
		r.limit, r.halt = limit, errOverCap
		r.b.metrics.overCap.Add(1)
		return -1, errOverCap
	}
	defer r.releaseBlocked()
	// Nobody may wait for this request to give the receiver role back.
	r.releaseRole()
	s := r.s
	s.free.Add(-1)
	sec := &section{s: s, g: r.g, id: r.n.ID, until: r.start.Add(r.b.blockTimeout)}
	if r.b.audit != nil {
		sec.ev = r.event(int(unix.EINTR), 0)
		sec.ev.Limit = LimitDeadline
	}
	sec.mu.Lock() // tick reads sec.timer
	sec.timer = time.AfterFunc(min(spareAfter, time.Until(sec.until)), sec.tick)
	sec.mu.Unlock()

	fd, err := op(func() bool { return sec.state.Load() != secRunning })

	sec.timer.Stop()
	sec.mu.Lock()
	sec.closed = true
	sec.mu.Unlock()
	s.free.Add(1)
	if sec.state.CompareAndSwap(secRunning, secDone) {
		return fd, err
	}
	// The monitor answered or the target gave up: what op got is for
	// nobody. The thread serves again (spares retire to make room).
	if err == nil {
		unix.Close(fd)
	}
	r.b.metrics.stuck.Add(-1)
	s.recount(r.g)
	r.gone, r.halt = true, errGone
	return -1, errGone
}

// tick is the section's monitor.
func (sec *section) tick() {
	s := sec.s
	sec.mu.Lock()
	defer sec.mu.Unlock()
	if sec.closed {
		return
	}
	if !sec.spawned {
		sec.spawned = true
		s.spare()
	}
	next := secRunning
	if err := sys.NotifIDValid(s.fd, sec.id); err != nil {
		next = secAbandoned
	} else if !time.Now().Before(sec.until) {
		next = secExpired
	}
	if next == secRunning {
		sec.timer.Reset(min(pollEvery, max(time.Until(sec.until), 0)))
		return
	}
	if !sec.state.CompareAndSwap(secRunning, next) {
		return
	}
	b := s.b
	b.metrics.stuck.Add(1)
	if next == secExpired {
		b.metrics.deadlines.Add(1)
		if l, err := sys.NewListener(s.fd); err == nil {
			resp := encodeReply(sec.id, errnoResult(unix.EINTR), b.denyErrno)
			if err := l.Send(&resp); err != nil && !errors.Is(err, unix.ENOENT) {
				b.metrics.sendErrors.Add(1)
			}
		}
		if b.audit != nil && !b.denials {
			sec.ev.Latency = time.Since(sec.ev.Time)
			b.emitEvent(sec.ev)
		}
	} else {
		b.metrics.abandoned.Add(1)
	}
	// Serve no longer waits for this goroutine: it may never come back.
	s.uncount(sec.g)
}

// waitFIFO opens the FIFO behind the broker's O_PATH fd ofd for the
// worker, who asked for access mode acc (O_RDONLY or O_WRONLY) without
// O_NONBLOCK, and waits for the other end as the kernel would make the
// worker wait, without ever blocking in the kernel (R35):
//   - a writer: O_WRONLY|O_NONBLOCK fails with ENXIO while there is no
//     reader; it is retried with a backoff up to pollEvery.
//   - a reader: O_RDONLY|O_NONBLOCK always succeeds; the broker then
//     holds that reader, which lets a writer's open complete as the
//     worker's waiting open would, and waits in poll until the writer
//     writes or has come and gone (POLLIN, POLLHUP). A writer that opens
//     and stays silent is seen only when it writes or closes (or at the
//     deadline): the kernel would have let the worker's open return on
//     the writer's open alone, which nothing outside the pipe can see.
//
// The fd is returned with O_NONBLOCK set; the caller clears it. No other
// opener of the FIFO is woken or sees anything the worker's own waiting
// open would not have caused.
func waitFIFO(ofd int, oflags int, acc uint32, gone func() bool) (int, error) {
	path := procFdPath(ofd)
	open := func() (int, error) {
		return sys.RetryValue(func() (int, error) {
			return unix.Openat(unix.AT_FDCWD, path, oflags|unix.O_NONBLOCK, 0)
		})
	}
	if acc == unix.O_WRONLY {
		for pause := 100 * time.Microsecond; ; pause = min(2*pause, pollEvery) {
			fd, err := open()
			if !errors.Is(err, unix.ENXIO) {
				return fd, err
			}
			if gone() {
				return -1, errGone
			}
			time.Sleep(pause)
		}
	}
	fd, err := open()
	if err != nil {
		return fd, err
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(pollEvery/time.Millisecond))
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			return fd, nil // data, a writer gone (EOF), or an error for read to see
		}
		if gone() {
			unix.Close(fd)
			return -1, errGone
		}
	}
}

// releaseRole gives the receiver role up if the request's goroutine holds
// it while it serves: a thread about to wait must not hold up the others.
func (r *req) releaseRole() {
	s := r.s
	switch {
	case r.ticket != 0:
		if s.kept.CompareAndSwap(r.ticket, 0) {
			s.mu.Unlock()
		}
		r.ticket, r.released = 0, true
	case r.holding:
		s.mu.Unlock()
		r.holding, r.released = false, true
	}
}

// gor is one serving goroutine, as Serve counts it.
type gor struct {
	counted bool // guarded by server.gmu: Serve waits for it
}

// spawn starts a serving goroutine unless Serve is done with the
// listener. It takes a reference on the server's fds for it.
func (s *server) spawn() bool {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if s.closing {
		return false
	}
	g := &gor{counted: true}
	s.live++
	s.refs++
	s.b.metrics.threads.Add(1)
	go s.runGor(g)
	return true
}

// spare starts a spare serving goroutine if fewer than Options.Threads are
// free to receive.
func (s *server) spare() {
	if s.stopped.Load() || s.free.Load() >= int64(s.b.threads) {
		return
	}
	s.free.Add(1)
	if !s.spawn() {
		s.free.Add(-1)
	}
}

// retire reports whether the calling goroutine, free after a request, is
// one too many and must end.
func (s *server) retire() bool {
	for {
		f := s.free.Load()
		if f <= int64(s.b.threads) {
			return false
		}
		if s.free.CompareAndSwap(f, f-1) {
			return true
		}
	}
}

// runGor runs one serving goroutine and accounts for its end.
func (s *server) runGor(g *gor) {
	err := s.run(g)
	s.gmu.Lock()
	if err != nil && s.err == nil {
		s.err = err
	}
	if g.counted {
		g.counted = false
		s.live--
		s.cond.Broadcast()
	}
	s.gmu.Unlock()
	s.b.metrics.threads.Add(-1)
	s.unref()
}

// uncount stops Serve from waiting for g (stuck in the kernel).
func (s *server) uncount(g *gor) {
	s.gmu.Lock()
	if g.counted {
		g.counted = false
		s.live--
		s.cond.Broadcast()
	}
	s.gmu.Unlock()
}

// recount counts g again once it is back from the kernel; if Serve is
// done meanwhile, g ends after its request (stopped is then set).
func (s *server) recount(g *gor) {
	s.gmu.Lock()
	if !g.counted && !s.closing {
		g.counted = true
		s.live++
	}
	s.gmu.Unlock()
}

// unref drops a reference on the server's fds, closing them with the
// last one.
func (s *server) unref() {
	s.gmu.Lock()
	s.refs--
	last := s.refs == 0
	s.gmu.Unlock()
	if last {
		s.closeFds()
	}
}
