//go:build linux

package workloads

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireProgram skips the test when a workload's program is missing:
// scripts/setup installs it from the distribution's package pkg.
func requireProgram(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is not installed (Debian package %s; scripts/setup installs it): %v", path, pkg, err)
	}
}

// policyFile returns the absolute path of a shipped policy.
func policyFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "policies", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// result is what one run of a program produced.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runSpec is one command to run.
type runSpec struct {
	name    string
	args    []string
	env     []string // nil: inherit
	dir     string
	timeout time.Duration // 0: 60 s
}

// run runs s and returns its output and status. Output goes to files, not
// pipes, so that a grandchild that keeps them open (Chromium's crash
// handler, natively) cannot make the wait hang.
func run(t *testing.T, s runSpec) result {
	t.Helper()
	timeout := s.timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir := t.TempDir()
	outF, err := os.OpenFile(filepath.Join(dir, "stdout"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.OpenFile(filepath.Join(dir, "stderr"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()
	cmd := exec.CommandContext(ctx, s.name, s.args...)
	cmd.Env, cmd.Dir = s.env, s.dir
	cmd.Stdout, cmd.Stderr = outF, errF
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %q: %v", s.name, s.args, err)
		}
		code = exitCode(ee.ProcessState)
	}
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	if ctx.Err() != nil {
		t.Fatalf("%s %q: no exit within %v\nstderr:\n%s", s.name, s.args, timeout, tail(string(stderr), 40))
	}
	return result{stdout: string(stdout), stderr: string(stderr), code: code, took: took}
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sandboxed runs program under sandbox-exec with the policy file and
// defines, writing the audit log to audit (if not empty).
func sandboxed(t *testing.T, pol string, defines map[string]string, audit string, s runSpec) result {
	t.Helper()
	args := []string{"-f", pol}
	keys := make([]string, 0, len(defines))
	for k := range defines {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "-D", k+"="+defines[k])
	}
	if audit != "" {
		args = append(args, "--audit", audit)
	}
	args = append(append(args, "--", s.name), s.args...)
	s.args, s.name = args, sandboxExec
	return run(t, s)
}

// withEnv returns os.Environ() with the given NAME=VALUE entries replacing
// or adding to it.
func withEnv(kv ...string) []string {
	env := os.Environ()
	for _, e := range kv {
		name, _, _ := strings.Cut(e, "=")
		env = slices.DeleteFunc(env, func(x string) bool { return strings.HasPrefix(x, name+"=") })
		env = append(env, e)
	}
	return env
}

// auditEvent is one line of sandbox-exec --audit.
type auditEvent struct {
	Syscall  string `json:"syscall"`
	Path     string `json:"path"`
	Resolved string `json:"resolved"`
	Right    string `json:"right"`
	Verdict  string `json:"verdict"`
	Rule     string `json:"rule"`
	Errno    string `json:"errno"`
}

func (e auditEvent) allowed() bool { return e.Verdict == "allow" }

// has reports whether the event asked for right (one of the names).
func (e auditEvent) has(right string) bool {
	return slices.Contains(strings.Split(e.Right, ","), right)
}

func readAudit(t *testing.T, path string) []auditEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// requireDenied fails unless the audit log denies path (resolved) with
// EACCES at least once.
func requireDenied(t *testing.T, events []auditEvent, path string) {
	t.Helper()
	for _, e := range events {
		if e.Resolved == path && !e.allowed() {
			if e.Errno != "EACCES" {
				t.Errorf("audit: %s %s denied with %s, want EACCES", e.Syscall, path, e.Errno)
			}
			return
		}
	}
	t.Errorf("audit: no denial of %s", path)
}

// requireAllowedRead fails unless the audit log shows a successful open
// of path for reading.
func requireAllowedRead(t *testing.T, events []auditEvent, path string) {
	t.Helper()
	for _, e := range events {
		if e.Resolved == path && e.allowed() && e.has("read") && e.Errno == "" && strings.HasPrefix(e.Syscall, "open") {
			return
		}
	}
	t.Errorf("audit: %s was never opened for reading", path)
}

// writesOutside returns the allowed calls that asked to write or create
// outside the given directories (and the path prefixes in also).
func writesOutside(events []auditEvent, dirs []string, also ...string) []string {
	var bad []string
	for _, e := range events {
		if !e.allowed() || !(e.has("write") || e.has("create")) {
			continue
		}
		ok := false
		for _, d := range dirs {
			if e.Resolved == d || strings.HasPrefix(e.Resolved, d+"/") {
				ok = true
			}
		}
		for _, p := range also {
			if strings.HasPrefix(e.Resolved, p) {
				ok = true
			}
		}
		if !ok {
			bad = append(bad, e.Syscall+" "+e.Resolved+" "+e.Right)
		}
	}
	return bad
}

// processesWith returns the pids of the processes (other than this one)
// whose command line contains marker.
func processesWith(marker string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// reapNative waits up to a few seconds for the processes a native run
// left behind (Chromium's double-forked crash handlers, recognised by
// marker, the run's unique profile directory), then kills them by pid.
func reapNative(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(processesWith(marker)) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range processesWith(marker) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// median returns the median of ds.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// ratio formats sandboxed over native medians for t.Logf.
func logRatio(t *testing.T, what string, native, sandboxed []time.Duration) {
	t.Helper()
	n, s := median(native), median(sandboxed)
	t.Logf("%s: native median %v, sandboxed median %v over %d runs each: ratio %.2f",
		what, n.Round(time.Millisecond/10), s.Round(time.Millisecond/10), len(native), float64(s)/float64(n))
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b), 0o644)
}
