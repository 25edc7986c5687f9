//go:build linux

package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

func shortSettle(t *testing.T, d time.Duration) {
	old := settleTime
	settleTime = d
	t.Cleanup(func() { settleTime = old })
}

func TestFDs(t *testing.T) {
	n := FDs(t)
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	if got := FDs(t); got != n+1 {
		t.Errorf("FDs = %d after opening one, want %d", got, n+1)
	}
	f.Close()
	if got := FDs(t); got != n {
		t.Errorf("FDs = %d after closing it, want %d", got, n)
	}
}

func TestCheckFDLeaks(t *testing.T) {
	shortSettle(t, 50*time.Millisecond)
	leaky := filepath.Join(t.TempDir(), "leaky")
	if err := os.WriteFile(leaky, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	var f *os.File
	fake := runFake(t, func(tb *fakeTB) {
		CheckFDLeaks(tb)
		var err error
		if f, err = os.Open(leaky); err != nil {
			t.Error(err)
		}
	})
	f.Close()
	if len(fake.errors) != 1 || !strings.Contains(fake.errors[0], "-> "+leaky) {
		t.Errorf("leak report = %q, want one naming %s", fake.errors, leaky)
	}

	fake = runFake(t, func(tb *fakeTB) {
		CheckFDLeaks(tb)
		f, err := os.Open(leaky)
		if err != nil {
			t.Error(err)
		}
		f.Close()
	})
	if len(fake.errors) != 0 {
		t.Errorf("no leak, yet: %q", fake.errors)
	}

	// A descriptor closed within the settling time is no leak.
	shortSettle(t, 5*time.Second)
	fake = runFake(t, func(tb *fakeTB) {
		CheckFDLeaks(tb)
		f, err := os.Open(leaky)
		if err != nil {
			t.Error(err)
		}
		time.AfterFunc(20*time.Millisecond, func() { f.Close() })
	})
	if len(fake.errors) != 0 {
		t.Errorf("descriptor closed late, yet: %q", fake.errors)
	}
}

func leakyGoroutine(stop chan struct{}) { <-stop }

func TestCheckGoroutineLeaks(t *testing.T) {
	shortSettle(t, 50*time.Millisecond)
	stop := make(chan struct{})
	fake := runFake(t, func(tb *fakeTB) {
		CheckGoroutineLeaks(tb)
		go leakyGoroutine(stop)
	})
	close(stop)
	if len(fake.errors) != 1 || !strings.Contains(fake.errors[0], "leakyGoroutine") {
		t.Errorf("leak report = %q, want one naming leakyGoroutine", fake.errors)
	}

	shortSettle(t, 5*time.Second)
	fake = runFake(t, func(tb *fakeTB) {
		CheckGoroutineLeaks(tb)
		go func() { time.Sleep(20 * time.Millisecond) }()
	})
	if len(fake.errors) != 0 {
		t.Errorf("goroutine ended within the settling time, yet: %q", fake.errors)
	}
}

func TestSkipIfNotSupported(t *testing.T) {
	t.Setenv(EnvStrict, "")
	feature := func(min string) error {
		return fmt.Errorf("probe: %w", &sys.UnsupportedFeatureError{Name: "frobnicate", MinimumVersion: min, Err: unix.ENOSYS})
	}
	for _, tc := range []struct {
		name      string
		err       error
		strict    bool
		skip      string // substring of the skip message, "" for no skip
		wantFatal bool
	}{
		{name: "nil"},
		{name: "other error", err: errors.New("boom"), wantFatal: true},
		{name: "plain", err: fmt.Errorf("x: %w", sys.ErrNotSupported), skip: "not supported"},
		{name: "feature", err: feature("5.14"), skip: "frobnicate not supported (requires Linux 5.14"},
		{name: "strict, old kernel", err: feature("99.1"), strict: true, skip: "frobnicate"},
		{name: "strict, new kernel", err: feature("2.6"), strict: true, wantFatal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.strict {
				t.Setenv(EnvStrict, "1")
			}
			f := runFake(t, func(tb *fakeTB) { SkipIfNotSupported(tb, tc.err) })
			if (f.fatal != "") != tc.wantFatal {
				t.Errorf("fatal = %q, want fatal %v", f.fatal, tc.wantFatal)
			}
			if tc.skip == "" && f.skip != "" || !strings.Contains(f.skip, tc.skip) {
				t.Errorf("skip = %q, want %q", f.skip, tc.skip)
			}
		})
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release, min string
		want         bool
	}{
		{"6.8.0-45-generic", "5.14", true},
		{"5.14.0", "5.14", true},
		{"5.13.19", "5.14", false},
		{"5.4.0-rc1", "5.13", false},
		{"6.1", "6.10", false},
		{"6.12-foo", "6.10", true},
		{"garbage", "5.14", false},
		{"6.8.0", "", false},
	} {
		if got := versionAtLeast(tc.release, tc.min); got != tc.want {
			t.Errorf("versionAtLeast(%q, %q) = %v, want %v", tc.release, tc.min, got, tc.want)
		}
	}
	if !versionAtLeast(kernelRelease(), "3.0") {
		t.Errorf("running kernel %q is not >= 3.0", kernelRelease())
	}
}

func TestRequirePrivilege(t *testing.T) {
	root := os.Geteuid() == 0
	if f := runFake(t, func(tb *fakeTB) { RequireRoot(tb) }); (f.skip != "") == root {
		t.Errorf("RequireRoot as root=%v: skip %q", root, f.skip)
	}
	if f := runFake(t, func(tb *fakeTB) { RequireNonRoot(tb) }); (f.skip != "") != root {
		t.Errorf("RequireNonRoot as root=%v: skip %q", root, f.skip)
	}
}

func TestUnprivileged(t *testing.T) {
	cred := UnprivilegedCredential(t)
	wantUID := os.Getuid()
	if cred != nil {
		wantUID = int(cred.Uid)
		if cred.Uid != Nobody || cred.Gid != Nobody {
			t.Errorf("credential %+v, want uid and gid %d", cred, Nobody)
		}
	}
	dir := UnprivilegedTempDir(t)
	file := filepath.Join(dir, "written")
	cmd := exec.Command("/bin/sh", "-c", `id -u && echo ok > "$1"`, "sh", file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh as uid %d: %v\n%s", wantUID, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(wantUID) {
		t.Errorf("id -u = %q, want %d", got, wantUID)
	}
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil || int(st.Uid) != wantUID {
		t.Errorf("file written by the child: uid %d, %v; want %d", st.Uid, err, wantUID)
	}

	// The test binary as a helper, run without privileges.
	helper := exec.CommandContext(t.Context(), UnprivilegedExecutable(t))
	helper.Env = append(os.Environ(), HelperEnv("uid"))
	helper.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err = helper.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", wantUID, err, out)
	}
	if got := strings.Fields(string(out)); len(got) == 0 || got[0] != strconv.Itoa(wantUID) {
		t.Errorf("helper reports uid %q, want %d", out, wantUID)
	}
}

func TestHelperCommand(t *testing.T) {
	CheckFDLeaks(t)
	out, err := HelperCommand(t, "echo", "a b", "-test.run=x", "-v").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "a b -test.run=x -v\n" {
		t.Errorf("echo helper printed %q", got)
	}

	err = HelperCommand(t, "exit", "7").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exit helper: %v, want exit code 7", err)
	}

	cmd := exec.CommandContext(t.Context(), Executable())
	cmd.Env = append(os.Environ(), EnvHelper+"=no-such-helper")
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `unknown helper "no-such-helper"`) {
		t.Errorf("unknown helper: %v, %q", err, out)
	}
}

var registerRuns atomic.Int32

func TestRegister(t *testing.T) {
	name := fmt.Sprintf("registered-in-test-%d", registerRuns.Add(1)) // -count=n
	Register(name, func([]string) int { return 0 })
	if !slices.Contains(unusedHelpers(), name) {
		t.Errorf("unusedHelpers() = %q, want %s", unusedHelpers(), name)
	}
	HelperEnv(name)
	for _, n := range unusedHelpers() {
		if n == name {
			t.Error("HelperEnv did not mark the helper used")
		}
	}
	for name, fn := range map[string]func(){
		"duplicate":  func() { Register("echo", func([]string) int { return 0 }) },
		"empty name": func() { Register("", func([]string) int { return 0 }) },
		"unknown":    func() { HelperEnv("no-such-helper") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}

func TestRunPattern(t *testing.T) {
	for name, want := range map[string]string{
		"TestX":            "^TestX$",
		"TestX/case_[1]":   `^TestX$/^case_\[1\]$`,
		"TestX/a.b/c+d#01": `^TestX$/^a\.b$/^c\+d#01$`,
	} {
		if got := runPattern(name); got != want {
			t.Errorf("runPattern(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestTestResult(t *testing.T) {
	out := `=== RUN   TestA
    a_test.go:10: some log
    a_test.go:11: kernel too old
--- SKIP: TestA (0.00s)
=== RUN   TestAB
--- PASS: TestAB (0.00s)
=== RUN   TestC/sub
    --- FAIL: TestC/sub (0.01s)
PASS
`
	for name, want := range map[string]string{"TestA": "SKIP", "TestAB": "PASS", "TestC/sub": "FAIL", "TestD": ""} {
		status, detail := testResult([]byte(out), name)
		if status != want {
			t.Errorf("testResult(%s) = %q, want %q", name, status, want)
		}
		if name == "TestA" && detail != "a_test.go:11: kernel too old" {
			t.Errorf("skip detail = %q", detail)
		}
	}
}

// TestRunInSubprocess checks that the body runs in a child, which may do
// what the parent must not.
func TestRunInSubprocess(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "child-pid")
	if !RunInSubprocess(t, "TESTUTIL_MARKER="+marker, "TESTUTIL_PARENT="+strconv.Itoa(os.Getpid())) {
		b, err := os.ReadFile(marker)
		if err != nil {
			t.Fatalf("the child left no marker: %v", err)
		}
		if pid, _ := strconv.Atoi(string(b)); pid == os.Getpid() || pid == 0 {
			t.Errorf("marker pid %q, parent %d", b, os.Getpid())
		}
		if nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); nnp != 0 {
			t.Error("no_new_privs leaked into the parent")
		}
		return
	}
	if !InSubprocess() {
		t.Fatal("InSubprocess() = false in the child")
	}
	if ppid := strconv.Itoa(os.Getppid()); ppid != os.Getenv("TESTUTIL_PARENT") {
		t.Errorf("parent pid %s, want %s", ppid, os.Getenv("TESTUTIL_PARENT"))
	}
	// Irreversible, which is why it runs here.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("TESTUTIL_MARKER"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSubprocessFixture is run by TestRunInSubprocessMirrors with
// TESTUTIL_FIXTURE set; it passes at once otherwise.
func TestSubprocessFixture(t *testing.T) {
	mode := os.Getenv("TESTUTIL_FIXTURE")
	if mode == "" {
		return
	}
	t.Run("inner [x]", func(t *testing.T) {
		if !RunInSubprocess(t) {
			return
		}
		switch mode {
		case "skip":
			t.Skip("fixture skips")
		case "fail":
			t.Fatal("fixture fails")
		}
	})
}

// TestRunInSubprocessMirrors runs TestSubprocessFixture in a copy of the
// test binary, which runs its subtest in a copy of its own, and checks
// that the middle process reports what the innermost one did.
func TestRunInSubprocessMirrors(t *testing.T) {
	const name = "TestSubprocessFixture/inner_[x]"
	for _, mode := range []string{"pass", "skip", "fail"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), Executable(), "-test.run=^TestSubprocessFixture$", "-test.v=true")
			cmd.Env = append(withoutEnv(os.Environ(), EnvSubprocess), "TESTUTIL_FIXTURE="+mode)
			out, err := cmd.CombinedOutput()
			status, detail := testResult(out, name)
			want := strings.ToUpper(mode)
			if status != want || (err != nil) != (mode == "fail") {
				t.Fatalf("status %q, exit %v; want %s\n%s", status, err, want, out)
			}
			if mode == "skip" && !strings.Contains(detail, "fixture skips") {
				t.Errorf("skip detail %q does not carry the child's reason", detail)
			}
			if mode == "fail" && !strings.Contains(string(out), "fixture fails") {
				t.Errorf("the child's failure is not in the output:\n%s", out)
			}
		})
	}
}
