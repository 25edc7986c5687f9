//go:build linux

package layers

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// Landlock in the worker: execve is allowed by the filter (it cannot be
// brokered) and never reaches the broker, so the execute right of
// Landlock is the only thing between the worker and an unlisted program
// (S-05).
func TestLandlockExecute(t *testing.T) {
	f := newFixture(t, nil)
	r := runProbes(t, f.base(""), nil, "exec "+f.T+"/ro/bin/ok", "exec /bin/sh", "exec "+f.T+"/rw/../ro/bin/ok")
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	if got := r.line(t, 0); got != "ok exit 0" {
		t.Errorf("exec of the listed program: %q, want ok exit 0", got)
	}
	if got := r.line(t, 1); got != "EACCES" {
		t.Errorf("exec /bin/sh (no exec rule): %q, want EACCES", got)
	}
	if got := r.line(t, 2); got != "ok exit 0" {
		t.Errorf("exec through ..: %q, want ok exit 0 (Landlock judges the object)", got)
	}
	for _, e := range r.events {
		if strings.Contains(e.Path, "/bin/sh") {
			t.Errorf("the broker saw %s %s: execve must not be brokered", e.Syscall, e.Path)
		}
	}
	ll := r.report.Landlock
	if !ll.Enforced || !slices.Contains(ll.HandledFS, "execute") {
		t.Errorf("report: Landlock enforced %v, handled %v; want execute handled", ll.Enforced, ll.HandledFS)
	}
}

// Landlock network rules: under `net tcp-connect P` the filter must allow
// AF_INET sockets, so only Landlock keeps the worker off other ports.
func TestLandlockNetwork(t *testing.T) {
	f := newFixture(t, nil)
	listen := func() (net.Listener, int) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Skipf("no loopback TCP: %v", err)
		}
		t.Cleanup(func() { l.Close() })
		return l, l.Addr().(*net.TCPAddr).Port
	}
	_, allowed := listen()
	_, other := listen()
	free := func() int {
		l, p := listen()
		l.Close()
		return p
	}
	bindOK, bindNo := free(), free()
	pol := f.base("net tcp-connect " + strconv.Itoa(allowed) + "\nnet tcp-bind " + strconv.Itoa(bindOK) + "\n")
	r := runProbes(t, pol, nil,
		"connect-tcp "+strconv.Itoa(allowed), "connect-tcp "+strconv.Itoa(other),
		"bind-tcp "+strconv.Itoa(bindOK), "bind-tcp "+strconv.Itoa(bindNo))
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	want := []string{"ok", "EACCES", "ok", "EACCES"}
	if !slices.Equal(r.lines, want) {
		t.Errorf("connect allowed, connect other, bind allowed, bind other: %q, want %q", r.lines, want)
	}
	if r.report.Seccomp.Net != "inet" {
		t.Errorf("report: filter net mode %q, want inet (ports imply inet sockets)", r.report.Seccomp.Net)
	}
	if len(r.report.Landlock.Ports) != 2 {
		t.Errorf("report: Landlock ports %v, want the two listed", r.report.Landlock.Ports)
	}
}

// Landlock scopes: kill is in the baseline (a worker signals its own
// processes), and a root worker passes the kernel's permission check on a
// root host; the signal scope alone keeps it from signalling the host or
// a sibling (S-11). Abstract UNIX sockets (S-15): under net inet the
// filter allows AF_UNIX, and only the scope refuses the X11-like socket.
func TestLandlockScopes(t *testing.T) {
	f := newFixture(t, nil)
	sibling := exec.Command("/bin/sleep", "60")
	if err := sibling.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sibling.Process.Kill(); sibling.Wait() }()
	name := "sandbox-layers-" + strconv.Itoa(os.Getpid())
	l, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	host, sib := strconv.Itoa(os.Getpid()), strconv.Itoa(sibling.Process.Pid)
	r := runProbes(t, f.base("net inet\n"), nil,
		"kill "+host+" "+strconv.Itoa(int(unix.SIGCONT)), "kill "+sib+" "+strconv.Itoa(int(unix.SIGKILL)),
		"connect-abstract "+name)
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	want := []string{"EPERM", "EPERM", "EPERM"}
	if !slices.Equal(r.lines, want) {
		t.Errorf("kill host, kill sibling, connect @%s: %q, want %q", name, r.lines, want)
	}
	if err := sibling.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the sibling died: %v", err)
	}
	if sc := r.report.Landlock.Scoped; !slices.Contains(sc, "signal") || !slices.Contains(sc, "abstract_unix_socket") {
		t.Errorf("report: scoped %v", sc)
	}
	// With net unix the policy asked for UNIX sockets: not scoped.
	r = runProbes(t, f.base("net unix\n"), nil, "connect-abstract "+name)
	if r.err != nil || r.line(t, 0) != "ok" {
		t.Errorf("net unix: connect @%s: %q, %v; want ok", name, r.lines, r.err)
	}
	if slices.Contains(r.report.Landlock.Scoped, "abstract_unix_socket") {
		t.Errorf("net unix: report says abstract sockets are scoped")
	}
}

// The broker confines itself (R5): a host confined for policy A serves a
// worker whose broker decides by policy B, which allows /etc/shadow: the
// broker's decision is "allow", and the host's Landlock domain still
// refuses to open the file. A wrong matcher cannot leak beyond what the
// host's policies grant.
func TestHostConfinement(t *testing.T) {
	if _, err := os.Stat("/etc/shadow"); err != nil {
		t.Skipf("no /etc/shadow: %v", err)
	}
	f := inSubprocess(t)
	if f == nil {
		return
	}
	a := mustParse(t, f.base(""))
	// Before Landlock ABI 8 this re-executes the test binary, which runs
	// this test again and gets here with the host confined.
	rep, err := launcher.ConfineHost(launcher.HostConfig{Policies: []*policy.Policy{a}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Confined {
		t.Skip("no Landlock: the host cannot confine itself")
	}
	if rep.Dumpable {
		t.Errorf("the confined host is dumpable")
	}
	b := f.base("allow read /etc/shadow\n")
	r := runProbes(t, b, nil, "open /etc/shadow", "open "+f.T+"/ro/f")
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	if got := r.line(t, 0); got != "EACCES" {
		t.Errorf("open /etc/shadow with a matcher that allows it: %q, want EACCES from the host's Landlock domain", got)
	}
	if got := r.line(t, 1); got != "ok 2" {
		t.Errorf("open an allowed file: %q, want ok 2", got)
	}
	var seen bool
	for _, e := range r.events {
		if e.Path == "/etc/shadow" {
			seen = true
			if !e.Allowed || e.Errno != int(unix.EACCES) {
				t.Errorf("audit: %+v; want the matcher's allow and the kernel's EACCES", e)
			}
		}
	}
	if !seen {
		t.Errorf("no audit event for /etc/shadow")
	}
	if h := r.report.Host; !h.Confined || h.Method == "" || h.Landlock == nil || h.Dumpable {
		t.Errorf("report: host %+v", h)
	}
	// A second confinement for another policy would only narrow: refused.
	if _, err := launcher.ConfineHost(launcher.HostConfig{Policies: []*policy.Policy{mustParse(t, b)}}); err == nil {
		t.Errorf("ConfineHost for another policy succeeded")
	}
}

// The syscall baseline: the filter, the only layer that sees ioctl
// numbers, clone flags and SysV IPC calls.
func TestFilterLayer(t *testing.T) {
	f := newFixture(t, nil)
	m, s := testutil.Pty(t)
	defer m.Close()
	defer s.Close()
	host := strconv.Itoa(os.Getpid())
	r := runProbes(t, f.base(""), func(c *launcher.Cmd) { c.ExtraFiles = []*os.File{s} },
		"ptrace "+host, "vmread "+host,
		"tiocsti 3 0", "tiocsti 3 1", "tioclinux 3",
		"clone-newuser")
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	want := []string{"EPERM", "EPERM", "EPERM", "EPERM", "EPERM", "EPERM"}
	if !slices.Equal(r.lines, want) {
		t.Errorf("ptrace, process_vm_readv (S-10), TIOCSTI, TIOCSTI|1<<32 (S-16), TIOCLINUX, clone(CLONE_NEWUSER): %q, want %q", r.lines, want)
	}
	if got := drain(m, 100*time.Millisecond); got != "" {
		t.Errorf("input reached the terminal: %q", got)
	}
	// A user namespace of the policy's own does not let the worker make
	// another one.
	r = runProbes(t, f.base("namespaces user\n"), nil, "clone-newuser")
	if r.err != nil || r.line(t, 0) != "EPERM" {
		t.Errorf("clone(CLONE_NEWUSER) in a user namespace: %q, %v; want EPERM", r.lines, r.err)
	}
}

// SysV IPC (S-18, R53): denied by the filter, unless the worker has its
// own IPC namespace, where it works and the host's segments are out of
// reach.
func TestSysVIPC(t *testing.T) {
	f := newFixture(t, nil)
	key := 0x5e000000 | os.Getpid()&0xffffff
	id, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|0o666)
	if err != nil {
		t.Skipf("no SysV shared memory: %v", err)
	}
	defer unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	k := strconv.Itoa(key)
	r := runProbes(t, f.base(""), nil, "shmget "+k, "shmnew")
	if r.err != nil || !slices.Equal(r.lines, []string{"EPERM", "EPERM"}) {
		t.Errorf("without an IPC namespace: %q, %v; want EPERM twice", r.lines, r.err)
	}
	r = runProbes(t, f.base("namespaces ipc\n"), nil, "shmget "+k, "shmnew")
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	if !slices.Contains(r.report.Namespaces.Applied, "ipc") {
		t.Skipf("no IPC namespace: %+v", r.report.Namespaces)
	}
	if !slices.Equal(r.lines, []string{"ENOENT", "ok"}) {
		t.Errorf("in an IPC namespace: the host's segment, a private one: %q; want ENOENT, ok", r.lines)
	}
	if !r.report.Seccomp.SysVIPC {
		t.Errorf("report: SysV IPC not allowed by the filter with an IPC namespace")
	}
}

// Namespaces through the library (as root here; TestEndToEnd repeats the
// checks with an unprivileged host): the worker is pid 1 of its own
// namespace, yet the broker, which sees host pids in notifications and
// reads /proc as the host, still serves /proc/self; the network is its
// own; orphans die with the namespace and Wait returns.
func TestNamespaces(t *testing.T) {
	f := newFixture(t, nil)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	pol := f.base("namespaces user pid ipc uts net\nnet inet\n")
	start := time.Now()
	r := runProbes(t, pol, nil, "ids", "status", "connect-tcp "+port, "kill "+strconv.Itoa(os.Getpid())+" 0", "orphan 30")
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	ns := r.report.Namespaces
	for _, n := range []string{"user", "pid", "ipc", "uts", "net"} {
		if !slices.Contains(ns.Applied, n) {
			t.Fatalf("namespace %s not applied: %+v (features: sandbox-exec features)", n, ns)
		}
	}
	if got := r.line(t, 0); !strings.HasPrefix(got, "ok pid=1 sid=1 ") {
		t.Errorf("ids in a pid namespace: %q, want pid 1 leading its session", got)
	}
	st := r.line(t, 1)
	if pid := statusField(st, "Pid"); pid != strconv.Itoa(r.pid) {
		t.Errorf("/proc/self/status through the broker: Pid %q, want the worker's host pid %d (%s)", pid, r.pid, st)
	}
	if nspid := statusField(st, "NSpid"); nspid != strconv.Itoa(r.pid)+"/1" {
		t.Errorf("NSpid %q, want %d/1", nspid, r.pid)
	}
	if got := r.line(t, 2); got == "ok" {
		t.Errorf("the worker reached the host's loopback from its own network namespace")
	}
	if got := r.line(t, 3); got != "ESRCH" && got != "EPERM" {
		t.Errorf("kill(host pid, 0) from a pid namespace: %q, want ESRCH or EPERM", got)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Wait returned after %v: the orphan (sleep 30) outlived the pid namespace", d)
	}
	var sawStatus bool
	for _, e := range r.events {
		if e.Resolved == "/proc/self/status" && e.Allowed {
			sawStatus = true
			if e.Pid == 1 || e.Pid <= 0 {
				t.Errorf("audit: pid %d; notifications carry the pid in the broker's namespace", e.Pid)
			}
		}
	}
	if !sawStatus {
		t.Errorf("no allowed /proc/self/status in the audit")
	}
}

// Hygiene: descriptors, environment, session, no_new_privs,
// capabilities, rlimits — each checked from inside the worker.
func TestHygiene(t *testing.T) {
	f := newFixture(t, nil)
	// S-17: a directory outside the policy leaks into the host without
	// close-on-exec, the way runc CVE-2024-21626 leaked one.
	leak, err := unix.Open(f.T+"/out", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leak)
	// An fd the host hands over on purpose (ExtraFiles) is fd 3; a
	// directory outside the policy gives no access beneath it: openat is
	// brokered, and the broker judges where the fd really is (R30).
	out, err := os.Open(f.T + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	pol := f.base("env clear\nenv pass FOO " + testutil.EnvHelper + "\nenv set BAR=baz\nlimit fsize 1MiB\nlimit nofile 64 512\n")
	r := runProbes(t, pol, func(c *launcher.Cmd) {
		c.Env = append(os.Environ(), "FOO=bar", "SECRET_MARKER=1", testutil.HelperEnv("probe"))
		c.ExtraFiles = []*os.File{out}
	}, "fds", "openat "+strconv.Itoa(leak)+" secret", "env", "ids", "nnp", "status", "rlimit 1", "rlimit 7", "openat 3 secret")
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	for _, fd := range strings.Fields(strings.TrimPrefix(r.line(t, 0), "ok ")) {
		n, typ, _ := strings.Cut(fd, ":")
		if n != "0" && n != "1" && n != "2" && n != "3" && typ != "other" {
			t.Errorf("the worker has fd %s (S-17); want 0, 1, 2, ExtraFiles[0] and its runtime's own", fd)
		}
	}
	if leak == 3 {
		t.Fatalf("the leaked fd is 3, the ExtraFiles slot")
	}
	if got := r.line(t, 1); got != "EBADF" {
		t.Errorf("openat(leaked fd, secret): %q, want EBADF", got)
	}
	// (The helper's own variable is passed too; the helper unsets it.)
	if want := "ok BAR=baz,FOO=bar"; r.line(t, 2) != want {
		t.Errorf("env: %q, want %q", r.line(t, 2), want)
	}
	ids := r.line(t, 3)
	if pid, sid := statusField(ids, "pid"), statusField(ids, "sid"); pid != sid {
		t.Errorf("the worker does not lead its own session: %s", ids)
	}
	if got := r.line(t, 4); got != "ok 1" {
		t.Errorf("no_new_privs: %q", got)
	}
	st := r.line(t, 5)
	for _, k := range []string{"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"} {
		v := statusField(st, k)
		if k == "CapBnd" && os.Geteuid() != 0 && slices.ContainsFunc(r.report.Downgrades, func(d launcher.Downgrade) bool { return d.Layer == "capabilities" }) {
			// Unprivileged without a user namespace: no CAP_SETPCAP to
			// empty the bounding set; reported, and harmless under
			// no_new_privs.
			continue
		}
		if strings.Trim(v, "0") != "" || v == "" {
			t.Errorf("%s = %q inside the worker, want 0 (%s)", k, v, st)
		}
	}
	if got := r.line(t, 6); got != "ok 1048576 1048576" {
		t.Errorf("RLIMIT_FSIZE: %q", got)
	}
	if got := r.line(t, 7); !strings.HasSuffix(got, " 512") {
		t.Errorf("RLIMIT_NOFILE: %q, want hard 512", got)
	}
	if got := r.line(t, 8); got != "EACCES" {
		t.Errorf("openat(ExtraFiles directory outside the policy, secret): %q, want EACCES", got)
	}
	if !slices.Equal(r.report.FDs, []int{0, 1, 2, 3}) {
		t.Errorf("report: fds %v, want 0-3", r.report.FDs)
	}
	// RLIMIT_NOFILE as a program that is not Go sees it: the init stage
	// (Go) must not restore its original soft limit at exec.
	pol2 := writeFile(t, t.TempDir(), "p.policy", shipped(t)+"limit nofile 64 512\n")
	res := cli(t, sandboxExec, nil, "", nil, "-f", pol2, "--", "sh", "-c", "ulimit -Sn; ulimit -Hn")
	if res.code != 0 || res.stdout != "64\n512\n" {
		t.Errorf("ulimit -Sn, -Hn in the worker: %q (status %d, %s), want 64 and 512", res.stdout, res.code, res.stderr)
	}
}
