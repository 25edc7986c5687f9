//go:build linux

package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// rawWorker starts a worker and takes its listener without serving it.
func rawWorker(t *testing.T) (*exec.Cmd, io.WriteCloser, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Fscanf(out, "listener %d\n", &n); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	lfd, err := unix.PidfdGetfd(pidfd, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "go\n")
	go io.Copy(io.Discard, out)
	return cmd, stdin, lfd
}

// TestRecvAfterExit measures security.md R8 on this kernel: what a RECV
// blocked when the last task of the filter exits, and poll, report. Before
// Linux 6.11 such a RECV blocks forever and POLLHUP comes only after the
// reap; Serve never issues RECV without POLLIN, so it does not depend on
// either.
func TestRecvAfterExit(t *testing.T) {
	cmd, stdin, lfd := rawWorker(t)
	defer unix.Close(lfd)
	l, err := sys.NewListener(lfd)
	if err != nil {
		t.Fatal(err)
	}
	recvd := make(chan error, 1)
	go func() {
		var n sys.Notif
		recvd <- l.Recv(&n)
	}()
	time.Sleep(50 * time.Millisecond)
	stdin.Close() // the worker exits; it is not reaped yet
	poll := func() int16 {
		fds := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		unix.Poll(fds, 2000)
		return fds[0].Revents
	}
	ev := poll()
	select {
	case err := <-recvd:
		t.Logf("RECV blocked at exit returned %v before the reap; poll before the reap: %#x", err, ev)
		if !errors.Is(err, unix.ENOENT) {
			t.Errorf("RECV after exit: %v, want ENOENT", err)
		}
	case <-time.After(2 * time.Second):
		t.Logf("RECV still blocked after the exit (kernel before 6.11); poll before the reap: %#x", ev)
	}
	cmd.Wait()
	if ev := poll(); ev&unix.POLLHUP == 0 {
		t.Errorf("poll after the reap: %#x, want POLLHUP", ev)
	}
}

// TestServeHUP checks C-41 and D-15: a worker that exits while the broker
// idles ends Serve (nil), without waiting for the reap where the kernel
// reports POLLHUP at exit, and leaves no goroutine or fd behind.
func TestServeHUP(t *testing.T) {
	T := newFixture(t)
	fds, gor := openFds(t), runtime.NumGoroutine()
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), Threads: 4})
	cmd, stdin, lfd := rawWorker(t)
	served := make(chan error, 1)
	go func() { served <- b.Serve(context.Background(), os.NewFile(uintptr(lfd), "listener")) }()
	time.Sleep(50 * time.Millisecond)
	stdin.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Logf("no POLLHUP before the reap (kernel before 6.11)")
		cmd.Wait()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	cmd.Wait()
	checkSettled(t, fds, gor)
}

// TestServeCancel: cancelling the context ends Serve and closes the
// listener; the worker's trapped calls then fail (ENOSYS), never hang.
func TestServeCancel(t *testing.T) {
	T := newFixture(t)
	fds, gor := openFds(t), runtime.NumGoroutine()
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, "")})
	cmd, stdin, lfd := rawWorker(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx, os.NewFile(uintptr(lfd), "listener")) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-served:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	stdin.Close()
	cmd.Wait()
	checkSettled(t, fds, gor)
}

// TestServeAfterCancelENOSYS: once the listener is closed a trapped call
// gets ENOSYS from the kernel (design.md s1).
func TestServeAfterCancelENOSYS(t *testing.T) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, "")})
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	w.expect("open a f O_RDONLY", "ok")
	w.cancel()
	if err := <-w.served; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve: %v", err)
	}
	w.served <- nil // for stop
	w.expect("open a f O_RDONLY", "ENOSYS")
}

// TestTargetGone checks N-02: the worker dies between the read of its
// memory and the decision; nothing is opened or created and the request is
// dropped.
func TestTargetGone(t *testing.T) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, "")})
	var armed atomic.Bool
	var pid atomic.Int64
	b.hookAfterRead = func(tid int) {
		if !armed.Load() {
			return
		}
		p := int(pid.Load())
		pidfd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			return
		}
		defer unix.Close(pidfd)
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		unix.Poll(fds, 5000) // until the process has exited
	}
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	pid.Store(int64(w.cmd.Process.Pid))
	w.expect("open a f O_RDONLY", "ok")
	before := b.Metrics().Dropped
	armed.Store(true)
	if got := w.do("open c %s/rw/n02 O_CREAT|O_EXCL|O_WRONLY 0644", T); got != "EOF" {
		t.Errorf("worker answered %q after being killed", got)
	}
	w.stop()
	if _, err := os.Lstat(filepath.Join(T, "rw/n02")); err == nil {
		t.Errorf("N-02: %s/rw/n02 was created for a dead worker", T)
	}
	if m := b.Metrics(); m.Dropped <= before {
		t.Errorf("dropped %d, want > %d", m.Dropped, before)
	}
}

// TestSlowRequestHandOff checks that a serving thread that keeps the
// receiver role while it serves does not hold up the listener's other
// requests when one takes long (R59, R60): the watchdog hands the role to
// another thread.
func TestSlowRequestHandOff(t *testing.T) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), Threads: 2})
	var countdown atomic.Int32
	b.hookAfterRead = func(int) {
		if countdown.Add(-1) == 0 {
			time.Sleep(300 * time.Millisecond)
		}
	}
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	w.expect("open a f O_RDONLY", "ok")
	// The first thread's fourth request is slow: by then the serving
	// thread keeps the role (keepAfter requests from one thread), and
	// only the watchdog lets the second thread's request through.
	for _, n := range []int32{1, 4} {
		countdown.Store(n)
		w.expect(fmt.Sprintf("slowfast f %d", n), "second first")
	}
	w.stop()
}

// TestStressFds runs multi-threaded workers against one broker while other
// workers start and stop (Serve set up and torn down, fd numbers reused in
// the host): every fd a worker gets must be a live regular file, every
// close must succeed, and the host's own fds must survive. It hunts the
// intermittent EBADF the benchmark saw with several worker threads.
func TestStressFds(t *testing.T) {
	if testing.Short() {
		t.Skip("stress")
	}
	T := newFixture(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	var before unix.Stat_t
	if err := unix.Fstat(p[0], &before); err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), Threads: threads})
			stop := make(chan struct{})
			churned := make(chan int)
			go func() { // Serve churn: short-lived workers
				n := 0
				defer func() { churned <- n }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
					w.expect("open a f O_RDONLY", "ok")
					w.stop()
					n++
				}
			}()
			var wg sync.WaitGroup
			for i := range 3 {
				w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
				wg.Add(1)
				go func() {
					defer wg.Done()
					if got := w.do("ploop 4 1500 %s/ro/f", T); got != "ok" {
						t.Errorf("worker %d: %s", i, got)
					}
					w.stop()
				}()
			}
			wg.Wait()
			close(stop)
			t.Logf("%d short-lived workers meanwhile", <-churned)
		})
	}
	var after unix.Stat_t
	if err := unix.Fstat(p[0], &after); err != nil || after.Ino != before.Ino {
		t.Errorf("the host's pipe fd %d changed: %v", p[0], err)
	}
}

// TestPanicRecovered checks D-14 and R61: a request that panics gets EIO
// and service continues.
func TestPanicRecovered(t *testing.T) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, "")})
	var armed atomic.Bool
	b.hookAfterRead = func(int) {
		if armed.CompareAndSwap(true, false) {
			panic("injected")
		}
	}
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	armed.Store(true)
	w.expect("open a f O_RDONLY", "EIO")
	w.expect("open a f O_RDONLY", "ok")
	w.expect("read a", `data="RO"`)
	if p := b.Metrics().Panics; p != 1 {
		t.Errorf("panics %d, want 1", p)
	}
}

func TestAudit(t *testing.T) {
	T := newFixture(t)
	var mu sync.Mutex
	var events []Event
	opts := Options{Matcher: testMatcher(t, T, ""), Audit: func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}}
	b := newTestBroker(t, opts)
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	pid := w.cmd.Process.Pid
	w.expect("open a "+T+"/out/secret O_RDONLY", deny)
	w.expect("open a f O_RDONLY", "ok")
	w.expect("stat "+T+"/rw/ok", "ok*")
	w.stop()
	snapshot := func() []Event {
		mu.Lock()
		defer mu.Unlock()
		// Events are emitted after the reply, by whichever serving
		// thread answered: order them by arrival.
		got := append([]Event(nil), events...)
		slices.SortFunc(got, func(a, b Event) int { return a.Time.Compare(b.Time) })
		return got
	}
	got := snapshot()
	if len(got) != 3 {
		t.Fatalf("%d got, want 3: %+v", len(got), got)
	}
	e := got[0]
	if e.Syscall != "openat" || e.Path != T+"/out/secret" || e.Resolved != T+"/out/secret" || e.Allowed ||
		e.Rule != "default" || e.Errno != int(unix.EACCES) || e.Right.String() != "read" || e.Pid != pid || e.Latency <= 0 {
		t.Errorf("denial event: %+v", e)
	}
	e = got[1]
	if !e.Allowed || e.Path != "f" || e.Resolved != T+"/ro/f" || e.Rule != "test.policy:3" || e.Errno != 0 {
		t.Errorf("allowed event: %+v", e)
	}
	e = got[2]
	if e.Syscall != "newfstatat" || e.Resolved != T+"/ro/f" || e.Right.String() != "stat" || !e.Allowed {
		t.Errorf("stat through a symlink: %+v", e)
	}

	// Denials only.
	mu.Lock()
	events = nil
	mu.Unlock()
	opts.AuditDenialsOnly = true
	b = newTestBroker(t, opts)
	w = startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	w.expect("open a f O_RDONLY", "ok")
	w.expect("open a "+T+"/out/missing O_RDONLY", deny)
	w.stop()
	got = snapshot()
	if len(got) != 1 || got[0].Allowed || got[0].Path != T+"/out/missing" {
		t.Errorf("denials only: %+v", got)
	}
}

func TestMetrics(t *testing.T) {
	T, w := setup(t, "")
	for range 50 {
		w.expect("open a f O_RDONLY", "ok")
		w.expect("close a", "ok")
	}
	w.expect("open a "+T+"/out/secret O_RDONLY", deny)
	w.stop()
	m := w.b.Metrics()
	var open *SyscallMetrics
	for i := range m.Syscalls {
		if m.Syscalls[i].Name == "openat" {
			open = &m.Syscalls[i]
		}
	}
	if open == nil || open.Count != 51 || open.Denied != 1 || open.Errors != 1 {
		t.Fatalf("openat metrics: %+v", open)
	}
	if !(open.P50 > 0 && open.P50 <= open.P90 && open.P90 <= open.P99 && open.P99 <= open.Max) {
		t.Errorf("percentiles not ordered: %+v", open)
	}
	if m.MatcherRuns < 51 || m.MatcherTime <= 0 || m.Requests < 51 || m.FdsInUse != 0 || m.FdLimit <= 0 {
		t.Errorf("metrics: %+v", m)
	}
	t.Logf("openat p50 %v p90 %v p99 %v max %v; matcher %v over %d runs",
		open.P50, open.P90, open.P99, open.Max, m.MatcherTime, m.MatcherRuns)
}

// TestConcurrentWorkers serves several workers at once from one Broker.
func TestConcurrentWorkers(t *testing.T) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, "")})
	var wg sync.WaitGroup
	for i := range 4 {
		w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 25 {
				if got := w.do("open a f O_RDONLY"); got != "ok" {
					t.Errorf("worker %d open %d: %s", i, j, got)
					return
				}
				w.do("close a")
			}
		}()
	}
	wg.Wait()
}

func TestNewOptions(t *testing.T) {
	T := newFixture(t)
	m := testMatcher(t, T, "")
	for _, o := range []Options{{}, {Matcher: m, DenyErrno: 4096}, {Matcher: m, DenyErrno: -1}, {Matcher: m, Threads: -1}, {Matcher: m, Uid: -5},
		{Matcher: m, BlockTimeout: -time.Second}, {Matcher: m, MaxBlockedPerWorker: -1}, {Matcher: m, MaxBlocked: maxBlockedProcess + 1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	b := newTestBroker(t, Options{Matcher: m})
	if b.blockTimeout != defaultBlockTimeout || b.maxBlockedPerWorker != defaultMaxBlockedPerWorker || b.maxBlocked != defaultMaxBlocked {
		t.Errorf("defaults: %v %d %d", b.blockTimeout, b.maxBlockedPerWorker, b.maxBlocked)
	}
	if err := b.Serve(context.Background(), nil); err == nil {
		t.Error("Serve(nil) succeeded")
	}
	names := Syscalls()
	if !strings.Contains(strings.Join(names, ","), "openat") {
		t.Errorf("Syscalls() = %v", names)
	}
}

// TestServeSetupError: a serving thread that cannot take the worker's
// credentials makes Serve fail (it never serves with the broker's own),
// without leaving the other threads behind.
func TestServeSetupError(t *testing.T) {
	T := newFixture(t)
	fds, gor := openFds(t), runtime.NumGoroutine()
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), Groups: []int{-1}, Threads: 3})
	cmd, stdin, lfd := rawWorker(t)
	served := make(chan error, 1)
	go func() { served <- b.Serve(context.Background(), os.NewFile(uintptr(lfd), "listener")) }()
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "setgroups") {
			t.Errorf("Serve: %v, want a setgroups error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	stdin.Close()
	cmd.Wait()
	checkSettled(t, fds, gor)
}

// TestHostSignals sends signals to every thread of the host (SIGURG, the
// Go runtime's preemption signal, and SIGCHLD, which the kernel gives to
// any thread) while four worker threads open a file in a loop, in both
// ways of installing an fd: ADDFD|SEND under a full signal mask, and plain
// ADDFD then SEND (WaitKillableRecv), which runs unmasked because an
// interrupted plain ADDFD is retried. Every open must return the file:
// an install that a signal broke shows up as an fd that is not a regular
// file (the worker's stdin) or an error.
func TestHostSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("stress")
	}
	T := newFixture(t)
	for _, twoStep := range []bool{false, true} {
		t.Run(fmt.Sprintf("WaitKillableRecv=%v", twoStep), func(t *testing.T) {
			b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), WaitKillableRecv: twoStep})
			w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
			stop := make(chan struct{})
			sent := make(chan int)
			go func() {
				n := 0
				defer func() { sent <- n }()
				pid := os.Getpid()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ents, _ := os.ReadDir("/proc/self/task")
					for _, e := range ents {
						var tid int
						fmt.Sscan(e.Name(), &tid)
						for _, sig := range []unix.Signal{unix.SIGURG, unix.SIGCHLD} {
							if unix.Tgkill(pid, tid, sig) == nil {
								n++
							}
						}
					}
					time.Sleep(20 * time.Microsecond)
				}
			}()
			got := w.do("ploop 4 3000 %s/ro/f", T)
			close(stop)
			n := <-sent
			w.stop()
			if got != "ok" {
				t.Errorf("worker under host signals: %s", got)
			}
			m := b.Metrics()
			t.Logf("%d signals sent; %d requests, %d dropped", n, m.Requests, m.Dropped)
			if m.Dropped != 0 {
				t.Errorf("%d requests dropped; want 0 (no worker thread gave up)", m.Dropped)
			}
		})
	}
}
