//go:build linux

package testutil

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvUnprivileged marks a copy of the test binary that [RerunUnprivileged]
// started as an unprivileged user.
const EnvUnprivileged = "SANDBOX_EXEC_TEST_UNPRIVILEGED"

// InUnprivilegedRerun reports whether the process is the unprivileged copy
// of the test binary that [RerunUnprivileged] started.
func InUnprivilegedRerun() bool { return os.Getenv(EnvUnprivileged) != "" }

// RerunUnprivileged runs the tests this test binary was asked to run once
// more, as uid and gid 65534 ([UnprivilegedCredential]), and fails t with
// the child's output if any of them fails. It is the body of a test such as
//
//	func TestUnprivileged(t *testing.T) {
//		testutil.RerunUnprivileged(t, map[string]string{envBin: sandboxExec})
//	}
//
// which go test runs as the root user CI uses: the same -test.run and
// -test.skip selection, so `go test -run 'TestX|TestUnprivileged'` runs
// TestX twice. The copy of the binary lives in a directory the user can
// read, with a TMPDIR and HOME of its own (also given to it), and files maps
// environment variable names to files (prebuilt helper programs, so that
// the child needs no Go build cache of its own): each file is copied next
// to the binary and the variable names the copy.
//
// In the child (where [InUnprivilegedRerun] is true) and for a user that is
// not root, where every test already runs unprivileged, it skips t.
func RerunUnprivileged(t *testing.T, files map[string]string) {
	t.Helper()
	if InUnprivilegedRerun() {
		if uid, gid := os.Geteuid(), os.Getegid(); uid != Nobody || gid != Nobody {
			t.Fatalf("the unprivileged run has uid %d, gid %d; want %d", uid, gid, Nobody)
		}
		t.Skip("this is the unprivileged run")
	}
	if os.Geteuid() != 0 {
		t.Skipf("running as uid %d already: every test ran unprivileged", os.Geteuid())
	}
	cred := UnprivilegedCredential(t)
	bin := UnprivilegedExecutable(t)
	dir := filepath.Dir(bin)
	env := withoutEnv(os.Environ(), EnvSubprocess, EnvHelper, EnvUnprivileged, "TMPDIR", "HOME")
	for name, src := range files {
		dst := filepath.Join(dir, filepath.Base(src))
		if err := copyFile(dst, src, 0o755); err != nil {
			t.Fatalf("copy %s for the unprivileged run: %v", src, err)
		}
		env = append(withoutEnv(env, name), name+"="+dst)
	}
	home := filepath.Join(dir, "home")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{home, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		MakeAccessible(t, d, cred)
	}
	env = append(env, EnvUnprivileged+"=1", "HOME="+home, "TMPDIR="+tmp)

	args := []string{"-test.v=true", "-test.count=1"}
	for _, name := range []string{"test.run", "test.skip", "test.short", "test.failfast"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != f.DefValue {
			args = append(args, "-"+name+"="+f.Value.String())
		}
	}
	ctx, cancel, args := childDeadline(t, args)
	defer cancel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = wd // go test runs a package's tests in its directory
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("run the tests as uid %d: %v", cred.Uid, err)
	case err != nil:
		t.Fatalf("the tests failed as uid %d (%v):\n%s", cred.Uid, ee.ProcessState, indent(out))
	}
	passed, skipped := rerunSummary(out)
	if len(passed) == 0 {
		if len(skipped) == 1 && strings.HasPrefix(skipped[0], t.Name()+":") {
			t.Skip("no other test is selected (-test.run)")
		}
		t.Fatalf("the unprivileged run passed no test:\n%s", indent(out))
	}
	t.Logf("as uid %d in %v: %d passed, %d skipped", cred.Uid, time.Since(start).Round(time.Millisecond), len(passed), len(skipped))
	for _, s := range skipped {
		t.Logf("skipped as uid %d: %s", cred.Uid, s)
	}
}

// rerunSummary lists the tests and subtests of go test -v output that
// passed, and those that skipped with the last line they logged.
func rerunSummary(out []byte) (passed, skipped []string) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	last := ""
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "--- PASS: "):
			passed = append(passed, strings.Fields(trimmed)[2])
		case strings.HasPrefix(trimmed, "--- SKIP: "):
			skipped = append(skipped, strings.Fields(trimmed)[2]+": "+last)
		case strings.HasPrefix(trimmed, "=== "):
		case strings.HasPrefix(line, "    "):
			last = trimmed
		}
	}
	return passed, skipped
}
