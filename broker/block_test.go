//go:build linux

package broker

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fifoWorker makes the FIFO $T/rw/<name> and starts a worker that holds
// an O_PATH fd on it as fd 3: the one way a worker reaches a FIFO (FIFOs
// it names are denied, P-40), and one it may open as the kernel would,
// waiting for the other end.
func fifoWorker(t *testing.T, b *Broker, T, name string) (*worker, string) {
	t.Helper()
	p := filepath.Join(T, "rw", name)
	if err := unix.Mkfifo(p, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o666)
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), p)
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro"), extra: []*os.File{f}})
	f.Close()
	return w, p
}

// async sends cmd to w and returns the channel its answer arrives on.
func (w *worker) async(cmd string) <-chan string {
	ch := make(chan string, 1)
	if _, err := w.stdin.Write([]byte(cmd + "\n")); err != nil {
		w.t.Fatalf("%s: %v", cmd, err)
	}
	go func() {
		l, ok := <-w.lines
		if !ok {
			l = "EOF"
		}
		ch <- l
	}()
	return ch
}

// waitFor polls cond every 5 ms for up to d and reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hostThreads(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestFIFOOpenWaits checks that a FIFO open without O_NONBLOCK waits for
// the other end as the kernel's would (R26): the broker holds the request
// in a blocking section, and the worker's open returns once a writer
// comes and writes, with the flags it asked for.
func TestFIFOOpenWaits(t *testing.T) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), BlockTimeout: time.Minute})
	w, p := fifoWorker(t, b, T, "fifo")
	got := w.async("open r /proc/self/fd/3 O_RDONLY")
	if !waitFor(5*time.Second, func() bool { return b.Metrics().Blocked == 1 }) {
		t.Fatalf("no blocking section: %+v", b.Metrics())
	}
	select {
	case l := <-got:
		t.Fatalf("the open returned %q with no writer; the kernel makes it wait", l)
	case <-time.After(100 * time.Millisecond):
	}
	// The broker holds a reader for the worker while it waits, so a
	// writer's non-blocking open succeeds, as it would with the worker's
	// open waiting in the kernel.
	wfd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("writer: %v", err)
	}
	defer unix.Close(wfd)
	unix.Write(wfd, []byte("hi"))
	select {
	case l := <-got:
		if l != "ok" {
			t.Fatalf("open after the writer came: %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the open did not return when a writer came")
	}
	w.expect("getfl r", "flags=0") // no O_NONBLOCK left
	w.expect("readpipe r", `data="hi"`)
	if m := b.Metrics(); m.Blocked != 0 || m.Deadlines != 0 || m.Abandoned != 0 {
		t.Errorf("metrics after a completed wait: %+v", m)
	}
}

// TestFIFOTargetKilled checks R26 and D-03: a worker killed while the
// broker waits in its FIFO open frees the broker thread at the next
// ID_VALID poll, long before the deadline, and leaves no fd behind (the
// fd and goroutine counts are checked when the worker stops).
func TestFIFOTargetKilled(t *testing.T) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), BlockTimeout: time.Minute})
	w, _ := fifoWorker(t, b, T, "fifo")
	got := w.async("open r /proc/self/fd/3 O_RDONLY")
	if !waitFor(5*time.Second, func() bool { return b.Metrics().Blocked == 1 }) {
		t.Fatalf("no blocking section: %+v", b.Metrics())
	}
	threads := b.Metrics().Threads
	killed := time.Now()
	w.cmd.Process.Kill()
	if !waitFor(5*time.Second, func() bool { m := b.Metrics(); return m.Blocked == 0 && m.Stuck == 0 }) {
		t.Fatalf("broker thread still waiting 5 s after the target died: %+v", b.Metrics())
	}
	freed := time.Since(killed)
	t.Logf("broker thread freed %v after the kill (deadline 1 min)", freed)
	if freed > time.Second {
		t.Errorf("freed after %v: ID_VALID is polled every %v", freed, pollEvery)
	}
	if m := b.Metrics(); m.Abandoned != 1 || m.Deadlines != 0 {
		t.Errorf("abandoned %d, deadlines %d; want 1, 0", m.Abandoned, m.Deadlines)
	}
	if l := <-got; l != "EOF" {
		t.Errorf("killed worker answered %q", l)
	}
	w.stop()
	if !waitFor(5*time.Second, func() bool { return b.Metrics().Threads == 0 }) {
		t.Errorf("%d serving threads left after Serve returned (%d while it waited)", b.Metrics().Threads, threads)
	}
}

// TestFIFODeadline checks the deadline (R26): a FIFO writer that never
// finds a reader is answered EINTR at Options.BlockTimeout, the thread is
// woken and serves again, and the audit event names the deadline.
func TestFIFODeadline(t *testing.T) {
	T := newFixture(t)
	var mu sync.Mutex
	var limited []Event
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), BlockTimeout: 300 * time.Millisecond,
		Audit: func(e Event) {
			if e.Limit != "" {
				mu.Lock()
				limited = append(limited, e)
				mu.Unlock()
			}
		}})
	w, _ := fifoWorker(t, b, T, "fifo")
	start := time.Now()
	w.expect("open v /proc/self/fd/3 O_WRONLY", "EINTR")
	took := time.Since(start)
	t.Logf("EINTR after %v (deadline 300ms)", took)
	if took < 250*time.Millisecond || took > 5*time.Second {
		t.Errorf("answered after %v; the deadline is 300 ms", took)
	}
	if !waitFor(5*time.Second, func() bool { m := b.Metrics(); return m.Blocked == 0 && m.Stuck == 0 }) {
		t.Errorf("the thread was not woken after the deadline: %+v", b.Metrics())
	}
	w.expect("open a f O_RDONLY", "ok")
	if m := b.Metrics(); m.Deadlines != 1 {
		t.Errorf("deadlines %d, want 1", m.Deadlines)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(limited) != 1 || limited[0].Limit != LimitDeadline || limited[0].Errno != int(unix.EINTR) || limited[0].Syscall != "openat" {
		t.Errorf("audit events with a limit: %+v", limited)
	}
}

// TestBlockedCaps checks R59 and R60: a worker with 1,000 opens that wait
// gets no more than MaxBlockedPerWorker broker threads (the rest are
// answered EAGAIN at once), a second worker is limited by MaxBlocked over
// the Broker and is still served, and the host's thread count stays
// bounded. Killing the workers frees every thread.
func TestBlockedCaps(t *testing.T) {
	T := newFixture(t)
	var mu sync.Mutex
	limits := map[string]int{}
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), Threads: 2, BlockTimeout: time.Minute,
		MaxBlockedPerWorker: 8, MaxBlocked: 12,
		Audit: func(e Event) {
			// Only the FIFO opens: the workers' Go runtime opens a few
			// files of its own now and then (denied, or refused when
			// the caps are full).
			if e.Limit != "" && e.Path == "/proc/self/fd/3" {
				mu.Lock()
				limits[e.Limit]++
				mu.Unlock()
			}
		}})
	refused := func(limit string) int {
		mu.Lock()
		defer mu.Unlock()
		return limits[limit]
	}
	base := hostThreads(t)
	w1, _ := fifoWorker(t, b, T, "fifo1")
	w2, _ := fifoWorker(t, b, T, "fifo2")
	w3 := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	got1 := w1.async("openmany 1000 /proc/self/fd/3 O_RDONLY")
	if !waitFor(20*time.Second, func() bool { m := b.Metrics(); return m.Blocked == 8 && refused(LimitWorkerCap) == 992 }) {
		t.Fatalf("worker 1: %+v", b.Metrics())
	}
	// One worker's full cap leaves the others all of theirs: a third
	// worker's first open of a directory (a dentry cache miss for it: its
	// credentials never walked there) takes a slot and is served.
	start := time.Now()
	w3.expect("open n "+T+"/ro/d O_RDONLY|O_DIRECTORY", "ok")
	w3.expect("open a f O_RDONLY", "ok")
	got2 := w2.async("openmany 100 /proc/self/fd/3 O_RDONLY")
	if !waitFor(20*time.Second, func() bool { m := b.Metrics(); return m.Blocked == 12 && refused(LimitBrokerCap) == 96 }) {
		t.Fatalf("worker 2: %+v", b.Metrics())
	}
	// With MaxBlocked full as well, what the cache serves is still served.
	w3.expect("open a f O_RDONLY", "ok")
	if got := w3.do("stat %s/ro/d", T); got == "EAGAIN" {
		t.Errorf("stat of a cached directory: %s", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("another worker's plain opens took %v", d)
	}
	m := b.Metrics()
	threads := hostThreads(t)
	// Per listener: Threads serving plus the waiting ones, at most
	// MaxBlocked over all; slack for the Go runtime's own threads.
	bound := base + 3*2 + 12 + 16
	t.Logf("host threads %d before, %d with 1,100 waiting opens (bound %d); serving goroutines %d; %+v", base, threads, bound, m.Threads, m)
	if threads > bound {
		t.Errorf("host has %d threads, bound %d", threads, bound)
	}
	if m.Threads > 3*2+12 {
		t.Errorf("%d serving goroutines, want at most %d", m.Threads, 3*2+12)
	}
	w1.cmd.Process.Kill()
	w2.cmd.Process.Kill()
	if !waitFor(5*time.Second, func() bool { m := b.Metrics(); return m.Blocked == 0 && m.Stuck == 0 }) {
		t.Fatalf("threads still waiting after the workers died: %+v", b.Metrics())
	}
	for _, ch := range []<-chan string{got1, got2} {
		if l := <-ch; l != "EOF" {
			t.Errorf("killed worker answered %q", l)
		}
	}
	w1.stop()
	w2.stop()
	w3.stop()
	if m := b.Metrics(); m.Abandoned != 12 {
		t.Errorf("abandoned %d, want 12", m.Abandoned)
	}
	if !waitFor(5*time.Second, func() bool { return b.Metrics().Threads == 0 }) {
		t.Errorf("%d serving threads left", b.Metrics().Threads)
	}
	if m := b.Metrics(); m.OverCap < 992+96 {
		t.Errorf("OverCap %d, want at least %d", m.OverCap, 992+96)
	}
}

// TestResolveCached checks that the broker found RESOLVE_CACHED (Linux
// 5.12) where the kernel has it: without it every lookup that may wait on
// a file system is indistinguishable from one that cannot (R60).
func TestResolveCached(t *testing.T) {
	_, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveCached})
	if errors.Is(err, unix.EINVAL) {
		t.Skip("openat2 RESOLVE_CACHED: Linux 5.12")
	}
	if !haveResolveCached() {
		t.Fatalf("RESOLVE_CACHED works here (%v) but the probe says no", err)
	}
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, "")})
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	// A cached hit takes no blocking section; a create always does.
	w.expect("open a f O_RDONLY", "ok")
	w.expect("open c "+T+"/rw/new O_CREAT|O_WRONLY 0644", "ok")
	if m := b.Metrics(); m.Blocked != 0 || m.OverCap != 0 {
		t.Errorf("metrics: %+v", m)
	}
}
