//go:build linux && amd64

package escape

import (
	"os"
	"regexp"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// Blocking operations: security.md R26 (deadline, ID_VALID polls), R59
// (in-flight caps) and R60 (threads stuck in the kernel). The broker's
// defaults apply, as launcher sets none: a 10 s deadline, 8 waiting
// requests per worker (broker/block.go).
const (
	blockDeadline  = 10 * time.Second
	blockPerWorker = 8
)

// fifoFile opens the FIFO at p with O_PATH for a worker's ExtraFiles: a
// FIFO the worker is handed, which it may open through /proc/self/fd/3
// (a FIFO it names is denied, P-40, D-07).
func fifoFile(t *testing.T, p string) *os.File {
	t.Helper()
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), p)
	t.Cleanup(func() { f.Close() })
	return f
}

// until polls cond every 5 ms for up to d.
func until(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

func hostThreads() int {
	ents, _ := os.ReadDir("/proc/self/task")
	return len(ents)
}

// d03Slow is D-03's slow half: a request that waits (a FIFO open with no
// writer) and a worker SIGKILLed meanwhile. The broker learns it from
// ID_VALID, frees its thread long before the deadline and closes its fds.
func d03Slow(t *testing.T, f *fixture) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	fifo := fifoFile(t, f.T+"/ro/fifo")
	cmd, wait := f.start(t, run{policy: f.p0(""), args: ops(op("open", "/proc/self/fd/3", "rdonly")), extraFiles: []*os.File{fifo}})
	if !until(10*time.Second, func() bool { return cmd.Metrics().Blocked == 1 }) {
		cmd.Process.Kill()
		wait()
		t.Fatalf("the FIFO open is not waiting in the broker: %+v", cmd.Metrics())
	}
	killed := time.Now()
	cmd.Process.Kill()
	freed := until(5*time.Second, func() bool { m := cmd.Metrics(); return m.Blocked == 0 && m.Stuck == 0 })
	took := time.Since(killed)
	res := wait()
	if !freed {
		t.Fatalf("broker thread still waiting %v after the kill: %+v", took, cmd.Metrics())
	}
	t.Logf("broker thread freed %v after the SIGKILL (deadline %v)", took.Round(time.Millisecond), blockDeadline)
	if took > time.Second {
		t.Errorf("freed after %v: ID_VALID is polled every 10 ms", took)
	}
	if m := cmd.Metrics(); m.Abandoned != 1 || m.Deadlines != 0 {
		t.Errorf("abandoned %d, deadlines %d; want 1, 0", m.Abandoned, m.Deadlines)
	}
	if exitSignal(res.state) != syscall.SIGKILL || len(res.lines) != 0 {
		t.Errorf("worker: %v %q", res.err, res.lines)
	}
}

var tallyRe = regexp.MustCompile(`^(?:EAGAIN=(\d+))? ?(?:EINTR=(\d+))?(?: slow=\d+)?$`)

// d08 is D-08 and the caps of R59/R60, on a FIFO and on FUSE.
func d08(t *testing.T, f *fixture) {
	T := f.T
	fIno := strconv.FormatUint(inoOf(t, T+"/ro/f"), 10)

	t.Run("fifo", func(t *testing.T) {
		// 1,000 threads open a FIFO nobody writes: the worker gets 8
		// broker threads, the rest EAGAIN at once; W0 is served all the
		// while and the host's thread count stays bounded.
		testutil.CheckFDLeaks(t)
		testutil.CheckGoroutineLeaks(t)
		fifo := fifoFile(t, T+"/ro/fifo")
		base := hostThreads()
		w0 := f.w0(t, 3)
		var refused atomic.Int64
		cmd, wait := f.start(t, run{policy: f.p0(""), args: ops(op("parallel", "1000", "0", "open", "/proc/self/fd/3", "rdonly")), extraFiles: []*os.File{fifo},
			audit: func(e launcher.Event) {
				if e.Limit == "worker-cap" && e.Errno == int(unix.EAGAIN) && e.Path == "/proc/self/fd/3" {
					refused.Add(1)
				}
			}})
		capped := until(20*time.Second, func() bool {
			m := cmd.Metrics()
			return m.Blocked == blockPerWorker && m.OverCap >= 1000-blockPerWorker
		})
		threads, m := hostThreads(), cmd.Metrics()
		ctl := w0()
		cmd.Process.Kill()
		freed := until(5*time.Second, func() bool { m := cmd.Metrics(); return m.Blocked == 0 && m.Stuck == 0 })
		wait()
		t.Logf("1,000 waiting opens: %d blocked in the broker, %d refused EAGAIN, %d serving threads for the worker; host threads %d → %d", m.Blocked, m.OverCap, m.Threads, base, threads)
		if !capped {
			t.Fatalf("want %d waiting and the rest refused: %+v", blockPerWorker, m)
		}
		if n := refused.Load(); n != 1000-blockPerWorker {
			t.Errorf("%d audit events with Limit worker-cap, want %d", n, 1000-blockPerWorker)
		}
		if m.Threads > 2+blockPerWorker {
			t.Errorf("%d serving threads for one worker, cap %d", m.Threads, 2+blockPerWorker)
		}
		// W0's listener (2 threads and a spare), the worker's (2 + 8),
		// slack for the Go runtime: nowhere near 1,000.
		if bound := base + 3 + 2 + blockPerWorker + 24; threads > bound {
			t.Errorf("host threads %d → %d, bound %d", base, threads, bound)
		}
		checkFairness(t, "W0 beside 1,000 waiting opens", ctl.p99, ctl.fails)
		if !freed {
			t.Errorf("threads still waiting after the kill: %+v", cmd.Metrics())
		}
	})

	t.Run("fuse", func(t *testing.T) {
		// A FUSE file system whose lookups hang; 100 threads open a name
		// on it. 8 broker threads get stuck in the kernel and are
		// answered EINTR at the deadline, the rest EAGAIN at once; W0 and
		// a worker on the same files are served meanwhile.
		testutil.CheckFDLeaks(t)
		testutil.CheckGoroutineLeaks(t)
		mnt := T + "/rw/hangfs"
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(mnt)
		fs := mountHangFS(t, mnt)
		base := hostThreads()
		cmd, wait := f.start(t, run{policy: f.p0(""), args: ops(op("parallel", "100", "5000", "open", mnt+"/x", "rdonly"))})
		if !until(20*time.Second, func() bool { return cmd.Metrics().Blocked == blockPerWorker }) {
			t.Errorf("want %d broker threads in the hung file system: %+v", blockPerWorker, cmd.Metrics())
		}
		threads := hostThreads()
		w0 := f.w0(t, 2)
		other := f.run(t, run{policy: f.p0(""), args: ops(op("loopopen", "1000", T+"/ro/f", fIno))})
		ctl := w0()
		res := wait()
		m := cmd.Metrics()
		t.Logf("hung lookups: %q; %d LOOKUPs unanswered; stuck threads %d, deadlines %d; host threads %d → %d", res.lines, fs.lookups.Load(), m.Stuck, m.Deadlines, base, threads)
		if len(res.lines) != 1 {
			t.Fatalf("worker: %v %q %s", res.err, res.lines, res.stderr)
		}
		mt := tallyRe.FindStringSubmatch(res.lines[0])
		if mt == nil {
			t.Fatalf("worker's opens: %q; want only EAGAIN and EINTR", res.lines[0])
		}
		eagain, _ := strconv.Atoi(mt[1])
		eintr, _ := strconv.Atoi(mt[2])
		if eagain+eintr != 100 || eintr < 1 || eintr > blockPerWorker {
			t.Errorf("EAGAIN=%d EINTR=%d: want at most %d EINTR (the cap), the rest EAGAIN", eagain, eintr, blockPerWorker)
		}
		if m.Deadlines != uint64(eintr) || m.Stuck != int64(eintr) || m.Blocked != int64(eintr) {
			t.Errorf("deadlines %d, stuck %d, blocked %d; want %d each", m.Deadlines, m.Stuck, m.Blocked, eintr)
		}
		if bound := base + 3 + 2 + blockPerWorker + 24; threads > bound {
			t.Errorf("host threads %d → %d, bound %d", base, threads, bound)
		}
		if len(other.lines) != 1 || !regexp.MustCompile(`^ok=1000 denied=0 escape=0`).MatchString(other.lines[0]) {
			t.Errorf("another worker beside the hung file system: %q %s", other.lines, other.stderr)
		}
		checkFairness(t, "W0 beside a hung file system", ctl.p99, ctl.fails)
		// The server gives up: the stuck threads come back.
		fs.abort()
		if !until(5*time.Second, func() bool { m := cmd.Metrics(); return m.Blocked == 0 && m.Stuck == 0 }) {
			t.Errorf("threads still stuck after the FUSE connection was aborted: %+v", cmd.Metrics())
		}
	})
}
