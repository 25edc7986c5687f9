//go:build linux && amd64

package escape

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

var raceIterations = flag.Int("race-iterations", 10000, "iterations of each race test (P-08, P-32, P-33, P-45, /proc reuse)")

var (
	// cHelper is testdata/helper.c built statically for this run; empty
	// when no C compiler is installed.
	cHelper string
	// sandboxExec is the sandbox-exec command built for this run.
	sandboxExec string
	cHelperErr  string
)

func TestMain(m *testing.M) {
	launcher.Init()
	testutil.MainHelpers()
	// P-15: the host's environment carries a marker no worker may see.
	os.Setenv("BROKER_MARKER", "1")
	dir, err := os.MkdirTemp("", "escape-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	cHelper = filepath.Join(dir, "helper")
	if out, err := exec.Command("cc", "-static", "-O1", "-pthread", "-o", cHelper, "testdata/helper.c").CombinedOutput(); err != nil {
		cHelperErr = fmt.Sprintf("cc -static testdata/helper.c: %v: %s", err, out)
		cHelper = ""
	}
	sandboxExec = filepath.Join(dir, "sandbox-exec")
	if err := testutil.BuildCommand(sandboxExec); err != nil {
		fmt.Fprintf(os.Stderr, "build sandbox-exec: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	testutil.Main(m)
}

func needC(t *testing.T) {
	t.Helper()
	if cHelper == "" {
		t.Skipf("needs a C compiler with static glibc for testdata/helper.c: %s", cHelperErr)
	}
}

// fixture is the tree of security.md section 2 plus what the conformance
// cases need.
type fixture struct {
	T         string
	secretIno uint64
	listeners []io.Closer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	entries := []testutil.FixtureEntry{
		{Path: "ro/d/g", Mode: 0o644, Content: "G"},
		{Path: "ro/..f", Mode: 0o644, Content: "DOTDOT"},
		{Path: "ro/zero", Mode: 0o000, Content: "ZERO"},
		{Path: "rw/tf", Mode: 0o644, Content: "TRUNCME"},
		{Path: "rw/rf", Mode: 0o644, Content: "RF"},
		{Path: "rw/private/f", Mode: 0o644, Content: "PRIVATE"},
		{Path: "a/f", Mode: 0o644, Content: "AF"},
		{Path: "a/rwf", Mode: 0o644, Content: "RWF"},
		{Path: "a/zero", Mode: 0o000, Content: "Z"},
		{Path: "p/x/y/z", Mode: 0o644, Content: "Z"},
		{Path: "p/..name", Mode: 0o644, Content: "DN"},
		{Path: "pq/x", Mode: 0o644, Content: "PQ"},
		{Path: "t17/good/file", Mode: 0o644, Content: "GF"},
		{Path: "t17/good_extra", Mode: 0o644, Content: "GE"},
		{Path: "t17/go", Mode: 0o644, Content: "GO"},
		{Path: "t/good/f", Mode: 0o644, Content: "TG"},
		{Path: "t/good_extra/f", Mode: 0o644, Content: "TGE"},
		{Path: "t/f", Mode: 0o644, Content: "TF"},
		testutil.FixtureDir("ro/bin", 0o755),
		testutil.FixtureSymlink("rw/s", "/etc/passwd"),
		testutil.FixtureSymlink("rw/s2", "../out/secret"),
		testutil.FixtureSymlink("rw/ok", "../ro/f"),
		testutil.FixtureSymlink("rw/abs", "$T/ro/f"),
		testutil.FixtureSymlink("rw/d", "/etc"),
		testutil.FixtureSymlink("rw/x9", "$T/out/new"),
		testutil.FixtureSymlink("rw/lnk", "/etc"),
		testutil.FixtureSymlink("rw/null", "/dev/sda"),
		testutil.FixtureSymlink("rw/n2", "/dev/null"),
		testutil.FixtureSymlink("rw/l40", "$T/out/secret"),
		testutil.FixtureFIFO("ro/fifo", 0o644),
	}
	if cHelper != "" {
		b, err := os.ReadFile(cHelper)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"ok", "helper"} {
			entries = append(entries, testutil.FixtureEntry{Path: "ro/bin/" + n, Mode: 0o755, Content: string(b)})
		}
	}
	T := testutil.NewFixture(t, testutil.FixtureOptions{Entries: entries, Traversable: true})
	os.Chmod(T+"/rw", 0o777)
	f := &fixture{T: T, secretIno: inoOf(t, T+"/out/secret")}
	t.Cleanup(func() {
		for _, l := range f.listeners {
			l.Close()
		}
	})
	return f
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// p0 is policy P0 of security.md plus the rules of the conformance cases
// (each on its own subtree, so they do not change P0's verdicts), what the
// Go test binary needs to start and the helper's environment variable.
func (f *fixture) p0(extra string) string {
	T := f.T
	return testutil.PolicyP0(T, testutil.Executable()) + `allow read /proc/self/status
allow read ` + T + `/a/f ` + T + `/a/m ` + T + `/a/zero
allow read,write ` + T + `/a/rwf
allow read ` + T + `/p/**
allow read ` + T + `/t17/good
allow read,write,create ` + T + `/t/good/**
deny ` + T + `/rw/private/**
` + extra
}

func mustParse(t testing.TB, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("escape.policy", []byte(text), nil)
	if err != nil {
		t.Fatalf("policy: %v\n%s", err, text)
	}
	return p
}

// run describes one worker run.
type run struct {
	policy string
	dir    string
	path   string   // program; empty: this test binary as the "esc" helper
	args   []string // ops (esc) or arguments (path)
	// sync answers the worker's "SYNC ..." lines; the worker continues when
	// it returns.
	sync       func(fields []string)
	stdin      *os.File // instead of the sync pipe
	extraFiles []*os.File
	env        []string
	timeout    time.Duration
	started    func(cmd *launcher.Cmd)
	audit      func(launcher.Event)
}

type runResult struct {
	lines  []string
	stderr string
	err    error
	state  *os.ProcessState
	pid    int
}

var forbidden = regexp.MustCompile(`SECRET-OUT|ESCAPE|BROKER_MARKER`)

// start launches r and returns a function that waits for it.
func (f *fixture) start(t testing.TB, r run) (*launcher.Cmd, func() runResult) {
	t.Helper()
	p := mustParse(t, r.policy)
	timeout := r.timeout
	if timeout == 0 {
		timeout = 120 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	var cmd *launcher.Cmd
	if r.path == "" {
		args := append([]string{strconv.FormatUint(f.secretIno, 10)}, r.args...)
		cmd = launcher.CommandContext(ctx, p, testutil.Executable(), args...)
		cmd.Env = append(os.Environ(), testutil.HelperEnv("esc"))
	} else {
		cmd = launcher.CommandContext(ctx, p, r.path, r.args...)
	}
	cmd.Env = append(cmd.Env, r.env...)
	cmd.Dir = r.dir
	if cmd.Dir == "" {
		cmd.Dir = f.T + "/ro"
	}
	cmd.ExtraFiles = r.extraFiles
	cmd.Audit = r.audit
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var inW *os.File
	if r.stdin != nil {
		cmd.Stdin = r.stdin
	} else {
		inR, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin, inW = inR, w
		defer inR.Close()
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = outW, &stderr
	if err := cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		if inW != nil {
			inW.Close()
		}
		cancel()
		t.Fatalf("start worker: %v", err)
	}
	outW.Close()
	if r.started != nil {
		r.started(cmd)
	}
	var lines []string
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "SYNC "); ok || line == "SYNC" {
				if r.sync != nil {
					r.sync(strings.Fields(rest))
				}
				if inW != nil {
					inW.Write([]byte{1})
				}
				continue
			}
			lines = append(lines, line)
		}
	}()
	pid := cmd.Process.Pid
	return cmd, func() runResult {
		<-readDone
		outR.Close()
		err := cmd.Wait()
		if inW != nil {
			inW.Close()
		}
		cancel()
		res := runResult{lines: lines, stderr: stderr.String(), err: err, state: cmd.ProcessState, pid: pid}
		for _, l := range append(lines, res.stderr) {
			if forbidden.MatchString(l) {
				t.Errorf("worker output reveals what it must not see: %q", l)
			}
		}
		return res
	}
}

func (f *fixture) run(t testing.TB, r run) runResult {
	t.Helper()
	_, wait := f.start(t, r)
	return wait()
}

// ops joins operations with the ";" separator of the esc helper.
func ops(list ...[]string) []string { return testutil.JoinOps(list...) }

func op(words ...string) []string { return words }

// match reports whether got satisfies want: equal, or "re:REGEXP"
// matching all of got.
func match(got, want string) bool {
	if re, ok := strings.CutPrefix(want, "re:"); ok {
		return regexp.MustCompile("^(?:" + re + ")$").MatchString(got)
	}
	return got == want
}

func inoOf(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func sfmt(v ...any) string { return fmt.Sprint(v...) }

// snapshot hashes a tree's names, modes, sizes, times and contents, to
// prove that nothing under it changed.
func snapshot(t testing.TB, root string, recurse bool) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && p != root && !recurse {
			info, _ := d.Info()
			if info != nil {
				fmt.Fprintf(h, "%s %v %d\n", p, info.Mode(), info.ModTime().UnixNano())
			}
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		fmt.Fprintf(h, "%s %o %d %d %d %d.%d\n", p, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		if st.Mode&unix.S_IFMT == unix.S_IFREG && recurse {
			if b, err := os.ReadFile(p); err == nil {
				h.Write(b)
			}
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

// exitSignal returns the signal that killed the worker, or 0.
func exitSignal(st *os.ProcessState) syscall.Signal {
	if st == nil {
		return 0
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return 0
}

var onceMu sync.Mutex

func parsePolicy(text string) (*policy.Policy, error) {
	return policy.Parse("escape.policy", []byte(text), nil)
}
