//go:build linux

package tests

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

func TestMultiThreadedWorker(t *testing.T) {
	testutil.CheckGoroutineLeaks(t)
	f := newFixture(t)
	res := runOpsUnder(t, f.p0(""), "/", ops(op("threads", "8", "200", f.T+"/ro/f"), op("threads", "8", "50", f.T+"/out/secret"))...)
	if res.err != nil {
		t.Fatalf("worker: %v\n%s", res.err, res.stderr)
	}
	if len(res.lines) != 2 || res.lines[0] != "ok 1600/1600" || res.lines[1] != "ok 0/400" {
		t.Fatalf("got %q, want every allowed open to succeed and every denied one to fail", res.lines)
	}
}

func TestForkingWorkers(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(f.T+"/ro/b", []byte("B"), 0o644)
	pol := writePolicy(t, shippedRuntime(t)+"allow read "+f.T+"/ro/**\nallow read,write,create "+f.T+"/rw/**\nallow read,write /dev/null\n")
	out, errOut, code := cli(t, f.T+"/ro", "-f", pol, "--", "sh", "-c", "cat f; cat b; cat ../out/secret 2>/dev/null || echo denied")
	if code != 0 || out != "ROB"+"denied\n" {
		t.Fatalf("sh -c with children: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A double fork: the grandchild outlives the worker; sandbox-exec waits
	// for it and keeps serving it.
	start := time.Now()
	out, errOut, code = cli(t, f.T+"/ro", "-f", pol, "--", "sh", "-c", "(sleep 0.5; cat f > ../rw/late) & exit 3")
	if code != 3 {
		t.Fatalf("double fork: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if b, err := os.ReadFile(f.T + "/rw/late"); err != nil || string(b) != "RO" {
		t.Fatalf("the orphan's file: %q, %v (sandbox-exec returned after %v)", b, err, time.Since(start))
	}
}

func TestWorkerKilled(t *testing.T) {
	testutil.CheckGoroutineLeaks(t)
	testutil.CheckFDLeaks(t)
	f := newFixture(t)
	p := mustParse(t, f.p0(""))
	cmd := launcher.Command(p, testutil.Executable(), "threads", "4", "1000000", f.T+"/ro/f")
	cmd.Env = append(os.Environ(), testutil.HelperEnv("ops"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Kill()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Wait: %v, want an exit error", err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("worker status %v, want killed by SIGKILL", ws)
	}
}

func TestContextCancelKillsTree(t *testing.T) {
	testutil.CheckGoroutineLeaks(t)
	pol := mustParse(t, shippedRuntime(t))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cmd := launcher.CommandContext(ctx, pol, "sh", "-c", "sleep 100 & sleep 100")
	start := time.Now()
	err := cmd.Run()
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("Run: %v after %v; want the tree killed at the deadline", err, time.Since(start))
	}
}

// TestHostKilled kills sandbox-exec itself: the worker must die with it.
func TestHostKilled(t *testing.T) {
	pol := writePolicy(t, shippedRuntime(t))
	cmd := exec.Command(sandboxExec, "-f", pol, "--", "sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var worker int
	for i := 0; i < 100 && worker == 0; i++ {
		time.Sleep(20 * time.Millisecond)
		worker = firstChild(cmd.Process.Pid)
	}
	if worker == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("sandbox-exec started no worker")
	}
	// Wait until the worker is the exec'd sleep, not the init stage.
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(worker) + "/comm"); strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(worker, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(worker) + "/stat"); strings.Contains(string(b), ") Z ") {
			return // dead, waiting for init to reap it
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(worker, syscall.SIGKILL)
	t.Fatalf("worker %d still alive 1 s after its host was killed", worker)
}

func firstChild(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err != nil {
		return 0
	}
	// Children of other threads are listed in their own task directories.
	entries, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, e := range entries {
		c, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + e.Name() + "/children")
		b = append(b, ' ')
		b = append(b, c...)
	}
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			return n
		}
	}
	return 0
}
