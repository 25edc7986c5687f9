//go:build linux

package launcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/ipc"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

func init() {
	testutil.Register("pool-host", poolHost)
	testutil.Register("ipc-crash", ipcCrash)
}

// poolPolicy lets a shell run and read the system, and nothing else.
const poolPolicy = `
allow read /usr/** /lib/** /lib64/** /etc/** /proc/self/**
allow read,write /dev/null
allow exec /usr/bin/* /bin/*
allow stat /
`

func newPool(t *testing.T, text string, opts PoolOptions) *Pool {
	t.Helper()
	if opts.Programs == nil {
		opts.Programs = []string{"/bin/sh"}
	}
	pool, err := NewPool(parse(t, text), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// TestPoolRun runs pooled workers with every kind of stdio, arguments,
// environment, a working directory of their own, an extra file and an
// exit status, and checks they came from ready stages.
func TestPoolRun(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/here", []byte("in dir\n"), 0o644)
	pool := newPool(t, poolPolicy+"allow read "+dir+"/**\nenv clear\nenv pass GREETING\n", PoolOptions{Size: 2})
	for i := range 6 {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		c := pool.Command("sh", "-c", `read x; echo "got $x $1 $GREETING $OTHER"; cat here; echo err >&2; echo extra >&3; ls /proc/self/fd | tr '\n' ' ' >&2; exit 3`, "sh", "arg"+strconv.Itoa(i))
		var out, errb bytes.Buffer
		c.Stdin = strings.NewReader("hello\n")
		c.Stdout, c.Stderr = &out, &errb
		c.Env = []string{"GREETING=hi", "OTHER=leak", "PATH=/usr/bin:/bin"}
		c.Dir = dir
		c.ExtraFiles = []*os.File{pw}
		err = c.Run()
		pw.Close()
		extra, _ := bufio.NewReader(pr).ReadString('\n')
		pr.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("run %d: %v (want exit status 3); stderr %q", i, err, errb.String())
		}
		if want := fmt.Sprintf("got hello arg%d hi \nin dir\n", i); out.String() != want {
			t.Errorf("run %d: stdout %q, want %q", i, out.String(), want)
		}
		// The shell lists its fds: 0-3 and the one ls reads the directory with.
		if got := errb.String(); !strings.HasPrefix(got, "err\n0 1 2 3 ") || strings.Count(got, " ") != 5 {
			t.Errorf("run %d: stderr %q, want err and fds 0 1 2 3 plus ls's own", i, got)
		}
		if extra != "extra\n" {
			t.Errorf("run %d: fd 3 got %q", i, extra)
		}
		r := c.Report()
		if r.Program != "/usr/bin/dash" && !strings.HasSuffix(r.Program, "sh") {
			t.Errorf("report program %q", r.Program)
		}
		if !slices.Equal(r.FDs, []int{0, 1, 2, 3}) {
			t.Errorf("report fds %v, want 0-3", r.FDs)
		}
	}
	if st := pool.Stats(); st.Taken < 4 || st.LastError != nil {
		t.Errorf("stats %+v: want most starts from ready stages and no error", st)
	}
}

// TestPoolConcurrent starts workers from several goroutines at once.
func TestPoolConcurrent(t *testing.T) {
	pool := newPool(t, poolPolicy, PoolOptions{Size: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				want := fmt.Sprintf("%d-%d", g, i)
				out, err := pool.Command("/bin/echo", want).Output()
				if err != nil || string(out) != want+"\n" {
					errs <- fmt.Errorf("worker %s: %q, %v", want, out, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPoolRefusals: what the pool cannot run fails before a stage is
// spent, with an error that says what to change.
func TestPoolRefusals(t *testing.T) {
	dir := t.TempDir()
	pool := newPool(t, poolPolicy, PoolOptions{Size: 1, GrantRoots: []policy.Grant{{Pattern: dir + "/docs/**", Rights: policy.Read}}})
	bare := newPool(t, poolPolicy, PoolOptions{Size: 1, Programs: []string{}})
	for _, c := range []struct {
		cmd  *Cmd
		want string
	}{
		{pool.Command("/no/such/program"), "no such file"},
		{bare.Command("/bin/sh", "-c", "true"), "PoolOptions.Programs"},
		{func() *Cmd {
			c := pool.Command("/bin/sh")
			c.Grant(dir+"/other/x", policy.Read)
			return c
		}(), "PoolOptions.GrantRoots"},
		{func() *Cmd {
			c := pool.Command("/bin/sh")
			c.Grant(dir+"/docs/x", policy.Read|policy.Write)
			return c
		}(), "PoolOptions.GrantRoots"},
		{func() *Cmd {
			c := pool.Command("/bin/sh")
			c.Policy = parse(t, poolPolicy)
			return c
		}(), "pool's policy"},
	} {
		err := c.cmd.Start()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error about %q", c.cmd.Args, err, c.want)
			if err == nil {
				c.cmd.Wait()
			}
		}
	}
	var le *Error
	if err := pool.Command("/no/such/program").Run(); !errors.As(err, &le) || !le.NotFound() {
		t.Errorf("missing program: %v, want NotFound", err)
	}
	if st := pool.Stats(); st.Taken+st.Cold != 0 {
		t.Errorf("refused commands used stages: %+v", st)
	}
	// Without Landlock in the workers there is nothing to refuse ahead.
	off := newPool(t, poolPolicy+"landlock off\n", PoolOptions{Size: 1, Programs: []string{}})
	if out, err := off.Command("/bin/echo", "ran").Output(); err != nil || string(out) != "ran\n" {
		t.Errorf("landlock off pool: %q, %v", out, err)
	}
	pool.Close()
	if err := pool.Command("/bin/true").Run(); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("closed pool: %v, want ErrPoolClosed", err)
	}
}

// TestPoolGrants: two workers from one pool, each granted its own
// document under the pool's grant root, read only their own.
func TestPoolGrants(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(dir+"/docs", 0o755)
	docs := []string{dir + "/docs/a", dir + "/docs/b"}
	for i, d := range docs {
		os.WriteFile(d, []byte{'A' + byte(i)}, 0o644)
	}
	pool := newPool(t, poolPolicy, PoolOptions{Size: 2, GrantRoots: []policy.Grant{{Pattern: dir + "/docs/**", Rights: policy.Read}}})
	for i, mine := range docs {
		c := pool.Command("/bin/sh", "-c", `cat "$1"; echo; cat "$2"`, "sh", mine, docs[1-i])
		c.Grant(mine, policy.Read)
		var events []Event
		var mu sync.Mutex
		c.Audit = func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		c.Run()
		if want := string(rune('A'+i)) + "\n"; out.String() != want || !strings.Contains(errb.String(), "Permission denied") {
			t.Errorf("worker %d: stdout %q stderr %q, want its own document only", i, out.String(), errb.String())
		}
		byGrant := false
		for _, e := range events {
			byGrant = byGrant || e.Path == mine && e.Allowed && e.Rule == "grant:1"
		}
		if !byGrant {
			t.Errorf("worker %d: no audit event shows grant:1 deciding %s", i, mine)
		}
	}
}

// TestPoolCancel: a pooled worker of a CommandContext dies with its
// context, and Wait returns.
func TestPoolCancel(t *testing.T) {
	pool := newPool(t, poolPolicy, PoolOptions{Size: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c := pool.CommandContext(ctx, "/bin/sh", "-c", "while :; do :; done")
	t0 := time.Now()
	err := c.Run()
	if err == nil || time.Since(t0) > 5*time.Second {
		t.Errorf("cancelled worker: %v after %v", err, time.Since(t0))
	}
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("status %v, want killed", c.ProcessState)
	}
}

// stagePids lists this process's children that wait in a pool.
func stagePids(t *testing.T) []int {
	var pids []int
	for _, pid := range children(os.Getpid()) {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && strings.HasPrefix(string(b), "sandbox-exec-init") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPoolStageDeath: a stage killed while it waits is not handed out;
// Close leaves no stage behind.
func TestPoolStageDeath(t *testing.T) {
	if len(stagePids(t)) != 0 {
		t.Fatal("stages left over from another test")
	}
	pool := newPool(t, poolPolicy, PoolOptions{Size: 3})
	deadline := time.Now().Add(5 * time.Second)
	for len(stagePids(t)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, pid := range stagePids(t) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for i := range 4 {
		if out, err := pool.Command("/bin/echo", "ok").Output(); err != nil || string(out) != "ok\n" {
			t.Fatalf("start %d after the stages died: %q, %v", i, out, err)
		}
	}
	pool.Close()
	if left := stagePids(t); len(left) != 0 {
		t.Errorf("stages %v still running after Close", left)
	}
}

// TestPoolHostKilled: the stages of a host that is killed die with it.
func TestPoolHostKilled(t *testing.T) {
	cmd := testutil.HelperCommand(t, "pool-host")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("pool host: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	if len(pids) != 3 {
		t.Fatalf("pool host reported stages %q, want 3", line)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(time.Second)
	for _, pid := range pids {
		for running(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("stage %d outlived its host by a second", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// running reports whether pid exists and is not a zombie (a stage whose
// host died is reparented, maybe to this subreaper, and stays a zombie
// until reaped).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// poolHost fills a pool of 3, prints the stages' pids and waits to be
// killed.
func poolHost([]string) int {
	p, err := policy.Parse("t.policy", []byte("version 1\n"+poolPolicy), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := NewPool(p, PoolOptions{Size: 3}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		var pids []string
		for _, pid := range children(os.Getpid()) {
			pids = append(pids, strconv.Itoa(pid))
		}
		if len(pids) == 3 {
			fmt.Println(strings.Join(pids, " "))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {}
}

// BenchmarkStartToMain times Start until the worker's first byte of
// output (its main running), pooled and cold (go run ./bench reports the
// same against bwrap).
func BenchmarkStartToMain(b *testing.B) {
	p, err := policy.Parse("t.policy", []byte("version 1\n"+poolPolicy), nil)
	if err != nil {
		b.Fatal(err)
	}
	pool, err := NewPool(p, PoolOptions{Size: 2, Programs: []string{"/bin/echo"}})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	for _, bc := range []struct {
		name string
		cmd  func() *Cmd
	}{
		{"pooled", func() *Cmd { return pool.Command("/bin/echo", "x") }},
		{"cold", func() *Cmd { return Command(p, "/bin/echo", "x") }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var buf [1]byte
			for b.Loop() {
				b.StopTimer()
				pr, pw, _ := os.Pipe()
				c := bc.cmd()
				c.Stdout = pw
				time.Sleep(2 * time.Millisecond) // let the pool refill
				b.StartTimer()
				if err := c.Start(); err != nil {
					b.Fatal(err)
				}
				pr.Read(buf[:])
				b.StopTimer()
				pw.Close()
				pr.Close()
				c.Wait()
				b.StartTimer()
			}
		})
	}
}

// TestBlockedOptions: Cmd.BlockTimeout and Cmd.MaxBlocked reach the
// broker. Two shells open a FIFO the worker was handed (as an O_PATH fd)
// that nobody writes: with a cap of 1, one waits and fails with EINTR at
// the deadline, the other fails at once with EAGAIN.
func TestBlockedOptions(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(dir+"/fifo", 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir+"/fifo", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fifo := os.NewFile(uintptr(fd), "fifo")
	defer fifo.Close()
	c := Command(parse(t, poolPolicy+"allow read "+dir+"/**\n"), "/bin/sh", "-c", `(cat /proc/self/fd/3 2>&1 | head -c 60; echo) & sleep 0.1; cat /proc/self/fd/3; wait`)
	c.ExtraFiles = []*os.File{fifo}
	c.BlockTimeout, c.MaxBlocked = 500*time.Millisecond, 1
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	t0 := time.Now()
	c.Run()
	el := time.Since(t0)
	got := out.String()
	if !strings.Contains(got, "Resource temporarily unavailable") || !strings.Contains(got, "Interrupted system call") {
		t.Errorf("output %q, want one open refused with EAGAIN and one with EINTR", got)
	}
	if el < 400*time.Millisecond || el > 5*time.Second {
		t.Errorf("took %v, want about the 500 ms deadline", el)
	}
	if m := c.Metrics(); m.Deadlines != 1 || m.OverCap != 1 {
		t.Errorf("metrics: %d deadlines, %d over the cap; want 1 and 1", m.Deadlines, m.OverCap)
	}
}

// TestPoolWorkerCrashMidMessage: a pooled worker that dies in the middle of
// a conversation over its ipc channel (after one message of an answer
// that takes several) gives its host an error, never a hang; the
// descriptors the host passed are not leaked and the next worker from the
// same pool is served.
func TestPoolWorkerCrashMidMessage(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	exe := testutil.Executable()
	text := poolPolicy + "allow read,exec " + exe + "\nenv clear\nenv set SANDBOX_EXEC_IPC_FD=3 " + testutil.HelperEnv("ipc-crash") + "\n"
	pool := newPool(t, text, PoolOptions{Size: 1, Programs: []string{exe}})
	for i := range 3 {
		host, workerEnd, err := ipc.Pair()
		if err != nil {
			t.Fatal(err)
		}
		f, err := workerEnd.File()
		workerEnd.Close()
		if err != nil {
			t.Fatal(err)
		}
		c := pool.Command(exe)
		c.ExtraFiles = []*os.File{f}
		var stderr bytes.Buffer
		c.Stderr = &stderr
		err = c.Start()
		f.Close()
		if err != nil {
			host.Close()
			t.Fatal(err)
		}
		doc, err := os.Open("/etc/hostname")
		if err != nil {
			t.Fatal(err)
		}
		err = host.Send(1, []byte("job"), doc)
		doc.Close()
		if err != nil {
			t.Fatal(err)
		}
		host.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := host.Recv()
		if err != nil || string(m.Payload) != "part 1" {
			t.Fatalf("run %d: first part: %q, %v; stderr %s", i, m.Payload, err, stderr.String())
		}
		m.Close()
		if _, err := host.Recv(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("run %d: Recv after the worker died: %v, want EOF", i, err)
		}
		host.Close()
		var ee *exec.ExitError
		if err := c.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("run %d: worker: %v, want killed by SIGKILL", i, err)
		}
	}
	if st := pool.Stats(); st.Taken == 0 {
		t.Errorf("no worker came from a ready stage: %+v", st)
	}
}

// ipcCrash reads a job with a file from its channel, sends the first of
// several parts of an answer and kills itself.
func ipcCrash([]string) int {
	conn, err := ipc.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	m, err := conn.Recv()
	if err != nil || len(m.Files) != 1 {
		fmt.Fprintln(os.Stderr, "job:", err)
		return 3
	}
	if err := conn.Send(2, []byte("part 1")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestPoolRelativeDir: a relative Cmd.Dir is relative to the host's
// working directory at Start, as for Command, not to the stage's.
func TestPoolRelativeDir(t *testing.T) {
	tmp := t.TempDir()
	os.Mkdir(tmp+"/d", 0o755)
	os.WriteFile(tmp+"/d/f", []byte("here\n"), 0o644)
	pool := newPool(t, poolPolicy+"allow read "+tmp+"/**\n", PoolOptions{Size: 1})
	t.Chdir(tmp)
	c := pool.Command("/bin/cat", "f")
	c.Dir = "d"
	if out, err := c.Output(); err != nil || string(out) != "here\n" {
		t.Errorf("cat f in d: %q, %v", out, err)
	}
}
