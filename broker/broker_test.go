//go:build linux

package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		workerMain()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The fixture of security.md: ro/ (f = "RO", d/, bin/ok), empty rw/,
// out/secret = "SECRET-OUT" under no rule, plus what the tests plant.
func newFixture(t testing.TB) string {
	t.Helper()
	T := t.TempDir()
	// Readable by other uids: the kernel checks DAC as the worker.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(filepath.Dir(T), 0o755)) // t.TempDir's parent is 0700
	for _, d := range []string{"", "ro", "ro/d", "ro/bin", "rw", "rw/private", "out", "t", "t/good", "t/good_extra", "st"} {
		must(os.MkdirAll(filepath.Join(T, d), 0o755))
		must(os.Chmod(filepath.Join(T, d), 0o755))
	}
	must(os.Chmod(filepath.Join(T, "rw"), 0o777))
	must(os.Chmod(filepath.Join(T, "rw/private"), 0o777))
	for name, content := range map[string]string{
		"ro/f": "RO", "ro/d/g": "G", "ro/..f": "DOTDOTF", "out/secret": "SECRET-OUT", "rw/private/f": "P",
	} {
		must(os.WriteFile(filepath.Join(T, name), []byte(content), 0o644))
	}
	must(os.WriteFile(filepath.Join(T, "ro/bin/ok"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(T, "ro/zero"), []byte("Z"), 0o000))
	for link, to := range map[string]string{
		"rw/ok":    "../ro/f",
		"rw/abs":   filepath.Join(T, "ro/f"),
		"rw/s":     "/etc/passwd",
		"rw/s2":    "../out/secret",
		"rw/d":     "/etc",
		"rw/x":     filepath.Join(T, "out/new"),
		"rw/lnk":   "/etc",
		"rw/n2":    "/dev/null",
		"rw/sda":   "/dev/sda",
		"rw/up":    "../ro",
		"rw/loop1": "loop2",
		"rw/loop2": "loop1",
	} {
		must(os.Symlink(to, filepath.Join(T, link)))
	}
	must(unix.Mkfifo(filepath.Join(T, "ro/fifo"), 0o666))
	return T
}

const testPolicy = `
version 1
allow read ${T}/ro/**
allow exec ${T}/ro/bin/*
allow read,write,create ${T}/rw/**
deny ${T}/rw/private/**
allow read,write,create ${T}/t/good/**
allow read ${T}/a/f
allow read,write /dev/null
allow read /dev/zero
allow read /dev/full*
allow read /proc/self/status /proc/thread-self/comm
allow stat /proc/self/exe /proc/self/fd/**
`

func testMatcher(t testing.TB, T, extra string) *policy.Matcher {
	t.Helper()
	p, err := policy.Parse("test.policy", []byte(testPolicy+extra), policy.Defines{"T": T})
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return p.Matcher()
}

func newTestBroker(t testing.TB, opts Options) *Broker {
	t.Helper()
	b, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// worker is a running test worker served by a Broker.
type worker struct {
	t      testing.TB
	b      *Broker
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	served chan error
	cancel context.CancelFunc
	stderr *syncBuffer
	once   sync.Once
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type workerOpts struct {
	dir  string
	cred *syscall.Credential
	exe  string // the binary to run; the test binary if empty
	// extra are the worker's fds 3, 4, ... (as exec.Cmd.ExtraFiles)
	extra []*os.File
}

func openFds(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory being read
}

// startWorker starts the test binary as a worker and serves it with b.
func startWorker(t testing.TB, b *Broker, o workerOpts) *worker {
	t.Helper()
	w := &worker{t: t, b: b, lines: make(chan string, 16), served: make(chan error, 1), stderr: &syncBuffer{}}
	live.mu.Lock()
	if live.n == 0 {
		live.fds, live.gor = openFds(t), runtime.NumGoroutine()
	}
	live.n++
	live.mu.Unlock()
	exe := o.exe
	if exe == "" {
		exe = os.Args[0]
	}
	w.cmd = exec.Command(exe, "-test.run=^$")
	w.cmd.Env = append(os.Environ(), workerEnv+"=1")
	w.cmd.Dir = o.dir
	w.cmd.Stderr = w.stderr
	w.cmd.ExtraFiles = o.extra
	if o.cred != nil {
		w.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred}
	}
	var err error
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(w.lines)
				return
			}
			w.lines <- strings.TrimSuffix(line, "\n")
		}
	}()
	first := w.next()
	var lfdNum int
	if _, err := fmt.Sscanf(first, "listener %d", &lfdNum); err != nil {
		w.cmd.Process.Kill()
		w.cmd.Wait()
		t.Fatalf("worker did not start: %q; stderr: %s", first, w.stderr)
	}
	// Take the listener with pidfd_getfd: no SCM_RIGHTS outside ipc.
	pidfd, err := unix.PidfdOpen(w.cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	lfd, err := unix.PidfdGetfd(pidfd, lfdNum, 0)
	unix.Close(pidfd)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() { w.served <- b.Serve(ctx, os.NewFile(uintptr(lfd), "listener")) }()
	if _, err := io.WriteString(w.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.stop)
	return w
}

func (w *worker) next() string {
	select {
	case l, ok := <-w.lines:
		if !ok {
			return "EOF"
		}
		return l
	case <-time.After(20 * time.Second):
		w.t.Fatalf("worker timed out; stderr: %s", w.stderr)
	}
	return ""
}

// do runs one worker command and returns its result line.
func (w *worker) do(format string, args ...any) string {
	w.t.Helper()
	cmd := fmt.Sprintf(format, args...)
	if _, err := io.WriteString(w.stdin, cmd+"\n"); err != nil {
		w.t.Fatalf("%s: %v", cmd, err)
	}
	return w.next()
}

// expect runs cmd and checks the result against want, in which "*"
// matches any run of characters.
func (w *worker) expect(cmd, want string) string {
	w.t.Helper()
	got := w.do("%s", cmd)
	if !match(got, want) {
		w.t.Errorf("%s\n\tgot  %s\n\twant %s", cmd, got, want)
	}
	return got
}

func match(got, want string) bool {
	parts := strings.Split(want, "*")
	if len(parts) == 1 {
		return got == want
	}
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	got = got[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(got, p)
		if i < 0 {
			return false
		}
		got = got[i+len(p):]
	}
	return strings.HasSuffix(got, parts[len(parts)-1])
}

// stop ends the worker and checks that Serve returned on its own (POLLHUP)
// and that no fd or goroutine is left behind.
func (w *worker) stop() {
	w.once.Do(func() {
		w.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- w.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			w.cmd.Process.Kill()
			<-done
			w.t.Errorf("worker did not exit")
		}
		select {
		case err := <-w.served:
			if err != nil && !errors.Is(err, context.Canceled) {
				w.t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			w.t.Errorf("Serve did not return after the worker exited")
			w.cancel()
			<-w.served
		}
		w.cancel()
		live.mu.Lock()
		live.n--
		last := live.n == 0
		live.mu.Unlock()
		if last {
			checkSettled(w.t, live.fds, live.gor)
		}
	})
}

// live counts running test workers: fds and goroutines are checked when the
// last one stops against the counts from before the first one started.
var live struct {
	mu       sync.Mutex
	n        int
	fds, gor int
}

// checkSettled waits for the fd and goroutine counts to come back.
func checkSettled(t testing.TB, fds, gor int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, g := openFds(t), runtime.NumGoroutine()
		if f <= fds && g <= gor {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Errorf("leak: fds %d (before %d), goroutines %d (before %d)\n%s", f, fds, g, gor, buf[:n])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listenUnix binds a unix socket at path for the duration of the test.
func listenUnix(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func itoaT(n uint64) string { return strconv.FormatUint(n, 10) }
