//go:build linux

package layers

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// R6: the broker reads the arguments of a brokered call (the path) from the
// worker's memory with process_vm_readv only, which the kernel checks like
// ptrace (Yama, dumpability, Landlock domains, user namespaces), and a
// read that fails denies the call: it never falls back to /proc/<pid>/mem
// (which ignores page protections) and never lets the call through. The
// worker opens an allowed file, then the host loses process_vm_readv (a
// seccomp filter makes it fail with EPERM, as Yama or a foreign Landlock
// domain would), and the worker opens the same file again.
func TestWorkerMemoryReads(t *testing.T) {
	f := inSubprocess(t)
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	file := f.T + "/ro/f"
	cmd := launcher.CommandContext(ctx, mustParse(t, f.base("")), testutil.Executable(),
		ops("open "+file, "wait", "open "+file, "readlink "+f.T+"/ro")...)
	cmd.Env = append(os.Environ(), testutil.HelperEnv("probe"))
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	defer outR.Close()
	cmd.Stdin, cmd.Stdout = inR, outW
	var stderr strings.Builder
	cmd.Stderr = &stderr
	events := make(chan launcher.Event, 256)
	cmd.Audit = func(e launcher.Event) {
		select {
		case events <- e:
		default:
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	out := bufio.NewReader(outR)
	next := func() string {
		l, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("worker output ended: %v\nstderr: %s", err, stderr.String())
		}
		return strings.TrimSuffix(l, "\n")
	}
	if got := next(); got != "ok 2" {
		t.Fatalf("open %s with the host reading worker memory: %q, want ok 2", file, got)
	}
	if got := next(); got != "ready" {
		t.Fatalf("worker: %q, want ready", got)
	}
	testutil.FailSyscall(t, unix.SYS_PROCESS_VM_READV, unix.EPERM)
	if _, err := inW.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	got := []string{next(), next(), next()}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("worker: %v\nstderr: %s", err, stderr.String())
	}
	// readlink: a path argument too, on a directory that is no symlink
	// (EINVAL when the broker can read the path).
	if want := []string{"ok", "EACCES", "EACCES"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("wait, open %s and readlink without process_vm_readv: %q, want %q (denied, never served)", file, got, want)
	}
	close(events)
	allowed := 0
	for e := range events {
		if e.Path == file && e.Allowed {
			allowed++
		}
	}
	if allowed != 1 {
		t.Errorf("%d allowed opens of %s in the audit log, want 1 (before the host lost process_vm_readv)", allowed, file)
	}
}

// R6 at start: a host that cannot read a worker's memory refuses to start
// it (an error naming the cause), rather than run a worker whose every
// brokered call would fail.
func TestStartNeedsWorkerMemory(t *testing.T) {
	f := inSubprocess(t)
	if f == nil {
		return
	}
	p := mustParse(t, f.base(""))
	// Probed first: the probe installs a filter of its own.
	worker := func() *launcher.Cmd {
		c := launcher.Command(p, testutil.Executable(), ops("open "+f.T+"/ro/f")...)
		c.Env = append(os.Environ(), testutil.HelperEnv("probe"))
		return c
	}
	if out, err := worker().Output(); err != nil || string(out) != "ok 2\n" {
		t.Fatalf("before: %q, %v", out, err)
	}
	testutil.FailSyscall(t, unix.SYS_PROCESS_VM_READV, unix.EPERM)
	err := worker().Run()
	var le *launcher.Error
	if !errors.As(err, &le) || le.Op != "memory access" || !strings.Contains(err.Error(), "ptrace_scope") {
		t.Fatalf("start without process_vm_readv: %v, want a memory access error that names the cause", err)
	}
}
