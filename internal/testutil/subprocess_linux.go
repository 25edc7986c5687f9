//go:build linux

package testutil

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// EnvSubprocess marks a copy of the test binary started by
// [RunInSubprocess]; its value is the name of the test the child runs.
const EnvSubprocess = "SANDBOX_EXEC_TEST_SUBPROCESS"

// InSubprocess reports whether the process is a child started by
// [RunInSubprocess].
func InSubprocess() bool {
	return os.Getenv(EnvSubprocess) != ""
}

// RunInSubprocess runs the test t in a fresh copy of the test binary, so
// that what it does to its process (seccomp filters, Landlock, no_new_privs,
// credentials, rlimits) stays there, and reports whether the caller is that
// child:
//
//	if !testutil.RunInSubprocess(t) {
//		return
//	}
//	// irreversible effects here
//
// In the parent, it reruns the binary with -test.run=^Name$ (one anchored
// pattern per subtest level), -test.v and the environment variable
// [EnvSubprocess] set to t.Name(), plus the "NAME=value" entries in env;
// TMPDIR points at a directory of the parent, which removes it. It then
// logs the child's output and mirrors its result: a failing child fails t
// (t.FailNow), a skipping child skips t (t.SkipNow), and a passing child
// makes RunInSubprocess return false, after which the test must return.
// The child is killed when t's deadline (-test.timeout) is near.
//
// In the child (and in the child of an enclosing test that itself runs in
// a subprocess) it returns true at once.
func RunInSubprocess(t *testing.T, env ...string) (child bool) {
	t.Helper()
	name := t.Name()
	if target, ok := os.LookupEnv(EnvSubprocess); ok && (target == name || strings.HasPrefix(target, name+"/")) {
		return true
	}

	args := []string{"-test.run=" + runPattern(name), "-test.v=true", "-test.count=1"}
	ctx, cancel, args := childDeadline(t, args)
	defer cancel()
	cmd := exec.CommandContext(ctx, Executable(), args...)
	cmd.Env = append(withoutEnv(os.Environ(), EnvSubprocess, EnvHelper, "TMPDIR"),
		EnvSubprocess+"="+name, "TMPDIR="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("subprocess %s output:\n%s", name, indent(out))

	var ee *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("run %s in a subprocess: %v", name, err)
	case err != nil:
		t.Fatalf("%s failed in a subprocess: %v", name, ee.ProcessState)
	}
	switch status, detail := testResult(out, name); status {
	case "PASS":
		return false
	case "SKIP":
		t.Skipf("skipped in a subprocess: %s", detail)
	case "FAIL":
		t.Fatalf("%s failed in a subprocess, yet it exited 0", name)
	default:
		t.Fatalf("the subprocess did not run %s (pattern %q)", name, runPattern(name))
	}
	return false // unreachable
}

// childDeadline fits a child test binary into t's deadline: it adds a
// -test.timeout of 90 % of the time left to args, and returns a context
// that kills the child shortly before t's own timeout would fire.
func childDeadline(t *testing.T, args []string) (context.Context, context.CancelFunc, []string) {
	d, ok := t.Deadline()
	if !ok {
		return context.Background(), func() {}, args
	}
	left := time.Until(d)
	args = append(args, "-test.timeout="+(left*9/10).String())
	ctx, cancel := context.WithDeadline(context.Background(), d.Add(-left/20))
	return ctx, cancel, args
}

// runPattern is the -test.run pattern that selects exactly the test name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// testResult finds the "--- PASS/SKIP/FAIL: name" line of go test -v
// output and returns the status and, for a skip, the last line the test
// logged (go test -v streams t.Log output ahead of the result line).
func testResult(out []byte, name string) (status, detail string) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	last := ""
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case strings.HasPrefix(trimmed, "=== "):
			continue
		case strings.HasPrefix(trimmed, "--- "):
			for _, s := range []string{"PASS", "SKIP", "FAIL"} {
				if strings.HasPrefix(trimmed, "--- "+s+": "+name+" (") {
					status, detail = s, last
				}
			}
		case len(trimmed) < len(line):
			last = strings.TrimSpace(line)
		}
	}
	if status != "SKIP" {
		detail = ""
	}
	return status, detail
}

// withoutEnv returns env without the entries of the named variables.
func withoutEnv(env []string, names ...string) []string {
	out := make([]string, 0, len(env))
outer:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

func indent(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}
