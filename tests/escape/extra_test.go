//go:build linux && amd64

package escape

import (
	"go/ast"
	"go/parser"
	"go/token"
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
)

// want checks a run's lines against the steps, in order.
func want(t *testing.T, res runResult, steps ...step) {
	t.Helper()
	for i, st := range steps {
		got := "<no output>"
		if i < len(res.lines) {
			got = res.lines[i]
		}
		if !match(got, st.want) {
			t.Errorf("%s: got %q, want %q", strings.Join(st.op, " "), got, st.want)
		}
	}
	if len(res.lines) != len(steps) {
		t.Errorf("worker printed %d lines for %d operations (err %v): %q\nstderr: %s", len(res.lines), len(steps), res.err, res.lines, res.stderr)
	}
}

func stepOps(steps []step) []string {
	var l [][]string
	for _, s := range steps {
		l = append(l, s.op)
	}
	return ops(l...)
}

// extraCases are the cases that need their own worker: another policy,
// cwd, stdin or program.
func extraCases(t *testing.T, f *fixture, h *harness) {
	T := f.T

	t.Run("C-20", testC20)

	// N-01 and N-02 are unit cases of the broker's notification protocol:
	// the broker's own tests inject the faults (a test binary of package
	// broker may reach its internals); they run here, from the escape suite.
	unit := brokerUnitTests(t)
	for _, c := range []struct{ id, test, missing string }{
		{"N-01", "TestEncodeReply", ""},
		{"N-02", "TestTargetGone", ""},
	} {
		t.Run(c.id, func(t *testing.T) {
			if c.test == "" {
				t.Skip(c.missing)
			}
			switch r := unit[c.test]; r {
			case "PASS":
			case "":
				t.Errorf("broker test %s did not run", c.test)
			default:
				t.Errorf("broker test %s: %s", c.test, r)
			}
		})
	}
	// N-03: a filter on a test process of its own fails the new ID_VALID
	// number with EINVAL (idvalid_test.go).
	t.Run("N-03", testN03)
	t.Run("N-04", func(t *testing.T) {
		// The kernel behaviour the loop relies on (R7), on a listener of the
		// helper's own: a dirty buffer gives EINVAL, a zeroed one sized by
		// GET_NOTIF_SIZES then works. The broker zeroes before every RECV
		// (sys.Listener.Recv).
		needC(t)
		out, err := exec.Command(cHelper, "dirtyrecv").CombinedOutput()
		if err != nil || !regexp.MustCompile(`^dirty=EINVAL clean=0 send=0 child=0 sizes=\d+/\d+\n$`).Match(out) {
			t.Errorf("dirty RECV: %v %q", err, out)
		}
	})

	t.Run("P-28", func(t *testing.T) {
		// C-13 too: a cwd under no rule anchors nothing.
		steps := []step{s(eacces, "statxempty"), s(eacces, "open", "secret", "rdonly"), s(eacces, "open", "../ro/f", "rdonly"),
			s(eacces, "open", ".", "directory"), s(`ok "RO"`, "open", T+"/ro/f", "rdonly")}
		want(t, f.run(t, run{policy: f.p0(""), dir: T + "/out", args: stepOps(steps)}), steps...)
	})

	t.Run("C-44", func(t *testing.T) {
		steps := []step{
			s("ENOENT", "open", T+"/out/secret", "rdonly"), s("ENOENT", "open", T+"/out/missing", "rdonly"),
			s("ENOENT", "stat", T+"/out/secret"), s("ENOENT", "open", T+"/ro/f", "wronly"), s("ENOENT", "open", T+"/rw/s", "rdonly"),
			s("ENOENT", "access", T+"/ro/f", "2"), s("ENOENT", "sys", n(unix.SYS_MKDIR), "s:"+T+"/ro/x44", "0755"),
			s("ENOENT", "sys", n(unix.SYS_LINKAT), "-100", "s:"+T+"/rw/rf", "-100", "s:"+T+"/rw/l44", "0"),
			// Errors of allowed paths stay the kernel's.
			s("ENOTDIR", "open", T+"/ro/f/", "rdonly"), s("EISDIR", "open", T+"/rw/n44/", "wronly|creat"),
			s("ENOENT", "open", T+"/ro/missing", "rdonly"), s("EEXIST", "open", T+"/rw/rf", "wronly|creat|excl"),
			s("ELOOP", "open", T+"/rw/ok", "rdonly|nofollow"), s(`ok "RO"`, "open", T+"/ro/f", "rdonly")}
		want(t, f.run(t, run{policy: f.p0("default-errno ENOENT\n"), args: stepOps(steps)}), steps...)
	})

	t.Run("C-22", func(t *testing.T) {
		// C-45's second half too: disabled optional syscalls get the
		// denial errno without a notification.
		var mu sync.Mutex
		notified := map[string]bool{}
		steps := []step{
			s(eacces, "sys", n(unix.SYS_MKDIR), "s:"+T+"/rw/c22", "0755"), s(eacces, "sys", n(unix.SYS_MKDIRAT), "-100", "s:"+T+"/rw/c22", "0755"),
			s(eacces, "sys", n(unix.SYS_UNLINK), "s:"+T+"/rw/rf"), s(eacces, "sys", n(unix.SYS_UNLINKAT), "-100", "s:"+T+"/rw/rf", "0"),
			s(eacces, "sys", n(unix.SYS_RENAME), "s:"+T+"/rw/rf", "s:"+T+"/rw/rf22"), s(eacces, "sys", n(unix.SYS_RENAMEAT2), "-100", "s:"+T+"/rw/rf", "-100", "s:"+T+"/rw/rf22", "0"),
			s(eacces, "sys", n(unix.SYS_RMDIR), "s:"+T+"/rw/private")}
		res := f.run(t, run{policy: f.p0("syscall deny mkdir mkdirat unlink unlinkat rename renameat renameat2 rmdir\n"), args: stepOps(steps),
			audit: func(e launcher.Event) { mu.Lock(); notified[e.Syscall] = true; mu.Unlock() }})
		want(t, res, steps...)
		mustNotExist(t, T+"/rw/c22")
		mustNotExist(t, T+"/rw/rf22")
		mustContain(t, T+"/rw/rf", "RF")
		mu.Lock()
		for _, name := range []string{"mkdir", "mkdirat", "unlink", "unlinkat", "rename", "renameat2", "rmdir"} {
			if notified[name] {
				t.Errorf("disabled %s reached the broker", name)
			}
		}
		mu.Unlock()
	})

	t.Run("C-33", func(t *testing.T) {
		os.MkdirAll(T+"/rw/w33", 0o755)
		steps := []step{s("re:ok wd=1 mask=0x100 name=new33", "inotify", T+"/rw/w33", "c33")}
		res := f.run(t, run{policy: f.p0("syscall allow inotify_add_watch\n"), args: stepOps(steps), sync: func([]string) {
			os.WriteFile(T+"/rw/w33/new33", nil, 0o644)
		}})
		want(t, res, steps...)
	})

	t.Run("C-34", func(t *testing.T) {
		steps := []step{s(eacces, "inotify", T), s(eacces, "inotify", T+"/pq"), s(eacces, "inotify", T+"/out/missing"), s(eacces, "inotify", T+"/out"),
			s("re:ok wd=\\d+", "inotify", T+"/ro/d")}
		want(t, f.run(t, run{policy: f.p0("syscall allow inotify_add_watch\n"), args: stepOps(steps)}), steps...)
	})

	t.Run("S-16", func(t *testing.T) {
		master, slave := testutil.Pty(t)
		defer master.Close()
		defer slave.Close()
		steps := []step{
			s("EPERM", "sys", n(unix.SYS_IOCTL), "0", n(unix.TIOCSTI), "s:X"),
			s("EPERM", "sys", n(unix.SYS_IOCTL), "0", "0x100000000+"+n(unix.TIOCSTI), "s:Y"),
			s("EPERM", "sys", n(unix.SYS_IOCTL), "0", n(unix.TIOCLINUX), "s:\x02"),
			s("EPERM", "sys", n(unix.SYS_IOCTL), "0", "0xffffffff00000000+"+n(unix.TIOCLINUX), "s:\x02"),
		}
		want(t, f.run(t, run{policy: f.p0(""), stdin: slave, args: stepOps(steps)}), steps...)
		// Nothing reached the terminal's input queue: the slave has no
		// pending input.
		var pending int
		if v, err := unix.IoctlGetInt(int(slave.Fd()), unix.TIOCINQ); err == nil {
			pending = v
		}
		if pending != 0 {
			t.Errorf("%d bytes were injected into the terminal", pending)
		}
	})

	t.Run("S-17", func(t *testing.T) {
		dfd, err := unix.Open(T+"/out", unix.O_RDONLY|unix.O_DIRECTORY, 0) // no CLOEXEC: a leak
		if err != nil {
			t.Fatal(err)
		}
		target := 7
		for ; target < 64; target++ {
			if _, err := unix.FcntlInt(uintptr(target), unix.F_GETFD, 0); err != nil {
				break
			}
		}
		if target != 7 {
			t.Logf("fd 7 is in use in the test process; leaking $T/out as fd %d", target)
		}
		if err := unix.Dup3(dfd, target, 0); err != nil {
			t.Fatal(err)
		}
		unix.Close(dfd)
		defer unix.Close(target)
		steps := []step{s("ok 0,1,2", "fds"), s("EBADF", "openat", n(target), "secret", "rdonly"), s("EBADF", "fstatat", n(target), "secret", "0")}
		want(t, f.run(t, run{policy: f.p0(""), args: stepOps(steps)}), steps...)
	})

	t.Run("S-21", func(t *testing.T) {
		unnamed := unnamedSyscalls(t)
		if len(unnamed) < 100 {
			t.Fatalf("only %d unnamed syscall numbers found: the parse of sandbox/seccomp failed", len(unnamed))
		}
		var list []string
		for _, nr := range unnamed {
			list = append(list, strconv.Itoa(nr))
		}
		steps := []step{s("ok", "unnamed", strings.Join(list, ","))}
		want(t, f.run(t, run{policy: f.p0(""), args: stepOps(steps)}), steps...)
	})

	t.Run("S-01", func(t *testing.T) {
		needC(t)
		for _, p := range []string{T + "/out/secret", T + "/ro/f"} {
			res := f.run(t, run{policy: f.p0(""), path: T + "/ro/bin/helper", args: []string{"x32", p}})
			if sig := exitSignal(res.state); sig != unix.SIGSYS {
				t.Errorf("x32 openat(%s): worker %v, output %q; want killed by SIGSYS", p, res.err, res.lines)
			}
		}
	})

	t.Run("S-02", func(t *testing.T) {
		needC(t)
		for _, nr := range []string{"5", "295"} {
			res := f.run(t, run{policy: f.p0(""), path: T + "/ro/bin/helper", args: []string{"int80", T + "/out/secret", nr}})
			if sig := exitSignal(res.state); sig != unix.SIGSYS {
				t.Errorf("int 0x80 nr %s: worker %v, output %q; want killed by SIGSYS", nr, res.err, res.lines)
			}
		}
	})

	t.Run("S-03", func(t *testing.T) {
		needC(t)
		res := f.run(t, run{policy: f.p0(""), path: T + "/ro/bin/helper", args: []string{"iouring", T + "/out/secret"}})
		want(t, res, s("re:setup:(ENOSYS|EPERM)", "iouring"))
		// The second half: io_uring unsafe-allowed, Landlock alone limits
		// IORING_OP_OPENAT (iouring_test.go).
		testIOUringLandlock(t, f)
	})

	t.Run("S-05", func(t *testing.T) {
		needC(t)
		steps := []step{s("re:exec:(EACCES|EPERM).*", "exec", "/bin/sh", "-c", "echo SHELL-RAN"), s("ok ok", "exec", T+"/ro/bin/ok")}
		res := f.run(t, run{policy: f.p0(""), args: stepOps(steps)})
		if len(res.lines) == 2 && res.lines[0] == "ok SHELL-RAN" {
			t.Errorf("/bin/sh ran under the sandbox: needs Landlock exec rules in the worker (R54; issue 5)")
		}
		want(t, res, steps...)
		// The setuid half needs a worker that is not root (setuid_test.go).
		testSetuidUnprivileged(t, f)
	})

	t.Run("S-23", func(t *testing.T) {
		needC(t)
		good := T + "/ro/bin/ok"
		bad := strings.Repeat("/", len(good)-len("bin/sh")) + "bin/sh"
		res := f.run(t, run{policy: f.p0(""), path: T + "/ro/bin/helper", args: []string{"execflip", "2000", good, bad}})
		if len(res.lines) != 1 || !strings.Contains(res.lines[0], " shell=0 ") {
			t.Errorf("execve flip: %q (%v): /bin/sh ran; needs Landlock exec rules in the worker (R54; issue 5)", res.lines, res.err)
		} else if !strings.Contains(res.lines[0], "okran=") || strings.Contains(res.lines[0], "okran=0 ") {
			t.Errorf("execve flip: %q: the allowed binary never ran", res.lines)
		}
		t.Logf("S-23: %q", res.lines)
	})

	t.Run("D-12", func(t *testing.T) {
		pol := filepath.Join(t.TempDir(), "p.policy")
		os.WriteFile(pol, []byte(f.p0("")), 0o644)
		for _, c := range []struct {
			sig  syscall.Signal
			ops  []string
			code int
		}{
			{syscall.SIGTERM, []string{"sigterm", "42"}, 42},
			{syscall.SIGINT, []string{"sigterm", "43"}, 43},
			{syscall.SIGTERM, []string{"sync", "x"}, 128 + 15},
			{syscall.SIGHUP, []string{"sync", "x"}, 128 + 1},
		} {
			cmd := exec.Command(sandboxExec, append([]string{"-f", pol, "--", testutil.Executable(), strconv.FormatUint(f.secretIno, 10)}, c.ops...)...)
			cmd.Env = append(os.Environ(), testutil.HelperEnv("esc"))
			out, _ := cmd.StdoutPipe()
			stdin, _ := cmd.StdinPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			out.Read(buf) // "ready" or "SYNC x": the handler is installed
			cmd.Process.Signal(c.sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Errorf("%v: sandbox-exec did not exit", c.sig)
			}
			stdin.Close()
			if got := cmd.ProcessState.ExitCode(); got != c.code {
				t.Errorf("%v to sandbox-exec running %v: exit %d (%v), want %d", c.sig, c.ops, got, cmd.ProcessState, c.code)
			}
		}
	})

	t.Run("P-44", func(t *testing.T) {
		testutil.RequireRoot(t)
		cf := T + "/cf"
		os.Mkdir(cf, 0o755)
		if err := unix.Mount("tmpfs", cf, "tmpfs", 0, "casefold=utf8"); err != nil {
			t.Skipf("casefold not available: mount tmpfs -o casefold=utf8: %v (needs Linux 6.13 with CONFIG_TMPFS and CONFIG_UNICODE)", err)
		}
		defer unix.Unmount(cf, unix.MNT_DETACH)
		os.Mkdir(cf+"/d", 0o755)
		// FS_CASEFOLD_FL on the (empty) directory.
		dfd, err := unix.Open(cf+"/d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		flags, _ := unix.IoctlGetUint32(dfd, unix.FS_IOC_GETFLAGS)
		err = unix.IoctlSetPointerInt(dfd, unix.FS_IOC_SETFLAGS, int(flags|0x40000000))
		unix.Close(dfd)
		if err != nil {
			t.Skipf("cannot set FS_CASEFOLD_FL: %v", err)
		}
		os.MkdirAll(cf+"/d/private", 0o755)
		os.WriteFile(cf+"/d/private/f", []byte("SECRET-OUT"), 0o644)
		if _, err := os.Stat(cf + "/d/PRIVATE/f"); err != nil {
			t.Skipf("the casefold directory does not fold: %v", err)
		}
		steps := []step{s(eacces, "open", cf+"/d/PRIVATE/f", "rdonly"), s(eacces, "open", cf+"/d/Private/F", "rdonly"), s(eacces, "open", cf+"/d/private/f", "rdonly")}
		want(t, f.run(t, run{policy: f.p0("allow read " + cf + "/**\ndeny " + cf + "/d/private/**\n"), args: stepOps(steps)}), steps...)
	})
}

// brokerUnitTests runs the broker's protocol tests and returns PASS, FAIL
// or SKIP by test name.
func brokerUnitTests(t *testing.T) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "test", "-count=1", "-v", "-run", "^(TestEncodeReply|TestTargetGone|TestServeHUP|TestPanicRecovered)$", "../../broker")
	out, err := cmd.CombinedOutput()
	res := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^--- (PASS|FAIL|SKIP): (\w+)`).FindAllStringSubmatch(string(out), -1) {
		res[m[2]] = m[1]
	}
	if err != nil && len(res) == 0 {
		t.Logf("go test ../../broker: %v\n%s", err, out)
	}
	return res
}

func checkNothingAccepted(t *testing.T, h *harness) {
	t.Helper()
	h.x11D.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := h.x11D.ReadFrom(make([]byte, 16)); err == nil {
		t.Errorf("the abstract datagram socket received a message from the worker")
	}
	select {
	case a := <-h.accepted:
		t.Errorf("%s accepted a connection from the worker", a)
	default:
	}
}

// unnamedSyscalls returns the syscall numbers in [0, 1024) that the
// filter of sandbox/seccomp does not name: every quoted syscall name in its
// non-generated sources counts as named.
func unnamedSyscalls(t *testing.T) []int {
	t.Helper()
	dir := "../../sandbox/seccomp"
	fset := token.NewFileSet()
	table := map[string]int{}
	zf, err := parser.ParseFile(fset, filepath.Join(dir, "zsyscalls.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(zf, func(nd ast.Node) bool {
		if vs, ok := nd.(*ast.ValueSpec); ok && len(vs.Names) == 1 && vs.Names[0].Name == "syscallsAMD64" {
			for _, el := range vs.Values[0].(*ast.CompositeLit).Elts {
				kv := el.(*ast.KeyValueExpr)
				k, _ := strconv.Unquote(kv.Key.(*ast.BasicLit).Value)
				v, _ := strconv.Atoi(kv.Value.(*ast.BasicLit).Value)
				table[k] = v
			}
			return false
		}
		return true
	})
	if len(table) == 0 {
		t.Fatal("no syscallsAMD64 table in sandbox/seccomp/zsyscalls.go")
	}
	named := map[int]bool{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") || strings.HasSuffix(file, "zsyscalls.go") {
			continue
		}
		af, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(nd ast.Node) bool {
			if bl, ok := nd.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				if s, err := strconv.Unquote(bl.Value); err == nil {
					if nr, ok := table[s]; ok {
						named[nr] = true
					}
				}
			}
			return true
		})
	}
	var out []int
	for nr := range 1024 {
		if !named[nr] {
			out = append(out, nr)
		}
	}
	return out
}
