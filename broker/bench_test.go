//go:build linux

package broker

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkOpenat measures openat+close of an allowed file through the
// broker (a worker loop, timed in the worker) against the same loop run
// natively in this process, in the same run (design.md s8: only ratios
// measured in one run count). Metrics: ns/op brokered, native-ns/op and
// the ratio.
func BenchmarkOpenat(b *testing.B) {
	for _, c := range []struct {
		name, path string // path: relative to the fixture, or to the worker's cwd ro/
		native     string // the same file, relative to the fixture
		threads    int
	}{
		{"fast", "ro/f", "ro/f", 2},
		{"fast-1thread", "ro/f", "ro/f", 1},
		{"symlink", "rw/abs", "rw/abs", 2},
		{"relative", "f", "ro/f", 2},
	} {
		b.Run(c.name, func(b *testing.B) {
			T := newFixture(b)
			br, err := New(Options{Matcher: testMatcher(b, T, ""), Threads: c.threads})
			if err != nil {
				b.Fatal(err)
			}
			w := startWorker(b, br, workerOpts{dir: filepath.Join(T, "ro")})
			path := c.path
			if !strings.HasPrefix(path, "f") {
				path = filepath.Join(T, c.path)
			}
			per := workerLoop(b, w, "loop", path)
			native := nativeOpenat(b, filepath.Join(T, c.native), b.N)
			w.stop()
			report(b, br, "openat", per, native)
		})
	}
}

// workerLoop warms the worker's timed loop op (loop, fstatloop) up, then
// runs b.N iterations of it in the worker and returns ns per iteration.
func workerLoop(b *testing.B, w *worker, op, path string) float64 {
	w.do("%s 100 %s", op, path)
	b.ResetTimer()
	got := w.do("%s %d %s", op, b.N, path)
	b.StopTimer()
	ns, err := strconv.ParseInt(strings.TrimPrefix(got, "ns="), 10, 64)
	if err != nil {
		b.Fatalf("%s: %s", op, got)
	}
	return float64(ns) / float64(b.N)
}

// report reports the brokered and native ns per call of syscall, their
// ratio, and the broker's own p50 service time for it (RECV to reply: the
// rest of the brokered time is the round trip, wake-ups and scheduling).
func report(b *testing.B, br *Broker, syscall string, per, native float64) {
	b.ReportMetric(per, "ns/"+syscall)
	b.ReportMetric(native, "native-ns/"+syscall)
	b.ReportMetric(per/native, "ratio")
	for _, sc := range br.Metrics().Syscalls {
		if sc.Name == syscall {
			b.ReportMetric(float64(sc.P50.Nanoseconds()), "broker-p50-ns")
		}
	}
}

func nativeOpenat(b *testing.B, path string, n int) float64 {
	n = max(n, 1000)
	start := time.Now()
	for range n {
		fd, err := unix.Openat(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(fmt.Errorf("native openat: %w", err))
		}
		unix.Close(fd)
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// BenchmarkFstat measures glibc's fstat (newfstatat(fd, "", AT_EMPTY_PATH))
// of a file the worker holds, brokered, against the same call natively in
// this process. Python's import system makes a third of its brokered calls
// this way.
func BenchmarkFstat(b *testing.B) {
	T := newFixture(b)
	br, err := New(Options{Matcher: testMatcher(b, T, ""), Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	w := startWorker(b, br, workerOpts{dir: filepath.Join(T, "ro")})
	path := filepath.Join(T, "ro/f")
	per := workerLoop(b, w, "fstatloop", path)
	w.stop()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	n := max(b.N, 1000)
	var st unix.Stat_t
	start := time.Now()
	for range n {
		unix.Fstatat(fd, "", &st, unix.AT_EMPTY_PATH)
	}
	report(b, br, "newfstatat", per, float64(time.Since(start).Nanoseconds())/float64(n))
}
