//go:build linux

package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/broker"
	"github.com/seed-025014a4/sandbox-exec/ipc"
	"github.com/seed-025014a4/sandbox-exec/policy"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

// Cmd is a worker to be run under a policy. It is shaped like exec.Cmd:
// set the fields, then Start and Wait, or Run. A Cmd cannot be reused.
type Cmd struct {
	// Policy decides what the worker may touch. Required.
	Policy *policy.Policy

	// Path is the program to run; without a slash it is looked up in the
	// worker's PATH. Args holds the command line, Args[0] included.
	Path string
	Args []string

	// Env is the host environment that the policy's `env` lines filter;
	// nil means os.Environ(). The worker never sees more than the policy
	// lets through.
	Env []string

	// Dir is the worker's working directory; empty means the host's.
	Dir string

	// Credential, if not nil, is the user the worker runs as, with the
	// shape and meaning of exec.Cmd's SysProcAttr.Credential: uid, gid
	// and supplementary groups (none when Groups is empty, the host's
	// with NoSetGroups); nil means the host's. The init stage switches
	// to it inside its namespaces, before it drops its capabilities and
	// applies no_new_privs, Landlock and the filter, so the program and
	// everything it starts run as that user, and a set-id program gains
	// nothing (no_new_privs). The broker checks permissions as that user
	// (security.md R39). It needs a host with CAP_SETUID and CAP_SETGID
	// (root): otherwise Start fails before it starts anything. The ids
	// are the host's; with `namespaces user` they are mapped to
	// themselves.
	Credential *syscall.Credential

	// Stdin, Stdout, Stderr and ExtraFiles are as in exec.Cmd: ExtraFiles[i]
	// is fd 3+i in the worker. No other fd reaches the worker.
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	ExtraFiles []*os.File

	// Audit, if set, is called for every brokered decision (only denials
	// with AuditDenialsOnly), from the broker's goroutines.
	Audit            func(Event)
	AuditDenialsOnly bool

	// BrokerThreads is the number of goroutines serving the worker's
	// requests; 0 means the broker's default.
	BrokerThreads int

	// BlockTimeout and MaxBlocked bound the worker's requests that wait in
	// the kernel (a FIFO open waiting for its other end, a lookup on a
	// hung network or FUSE mount): after BlockTimeout the worker's call
	// fails with EINTR, and beyond MaxBlocked such requests at once it
	// fails with EAGAIN. 0 means the broker's defaults (10 s, 8); see
	// broker.Options.
	BlockTimeout time.Duration
	MaxBlocked   int

	// ConfineHost makes Start refuse to run the worker unless this whole
	// process is confined with Landlock to what Policy grants plus what
	// serving workers needs, with PR_SET_DUMPABLE cleared (see
	// [ConfineHost]): a bug in the broker's path resolution then cannot
	// hand out what the policy never allowed. If the process is not
	// confined yet, Start confines it in place, once and irreversibly,
	// which needs Landlock ABI 8; on older kernels call [ConfineHost] at
	// the start of main instead (it re-executes the program). Set it only
	// in a process whose every worker uses this Policy and that touches no
	// other files afterwards. Without Landlock the report says the host is
	// not confined.
	ConfineHost bool

	// BeforeExec, if set, is called with the worker's report once the
	// init stage has applied every layer and before it execs the program
	// (the report then describes exactly what the program starts under).
	// An error stops the start: the worker is killed and Start returns it.
	BeforeExec func(*Report) error

	// Grants give this worker rights beyond the shared Policy, such as
	// read on the one document it was handed; they win where they match
	// and show in the audit log as "grant:N".
	Grants []policy.Grant

	// Cancel and WaitDelay are as in exec.Cmd for a Cmd made by
	// CommandContext. The default Cancel kills the worker's whole tree.
	Cancel    func() error
	WaitDelay time.Duration

	// Process and ProcessState are set by Start and Wait.
	Process      *os.Process
	ProcessState *os.ProcessState

	ctx context.Context
	// wait reaps the worker (the init stage's process): exec.Cmd.Wait,
	// or Process.Wait for a stage started before a re-exec (early.go).
	wait       func() (*os.ProcessState, error)
	broker     *broker.Broker
	brokerOpts broker.Options
	report     *Report
	release    chan struct{} // lets the Pdeathsig thread go after the worker exited
	serveDone  chan error
	stopServe  context.CancelFunc
	waitOnce   sync.Once
	waitErr    error
	started    bool
	pidNS      bool // the worker is the init of its own pid namespace
	pool       *Pool
	pio        *pooledIO     // a pooled worker's stdio copying
	exited     chan struct{} // closed once Wait has reaped a pooled worker
}

// Command returns a Cmd that runs name with args under p.
func Command(p *policy.Policy, name string, arg ...string) *Cmd {
	return &Cmd{Policy: p, Path: name, Args: append([]string{name}, arg...)}
}

// CommandContext is Command with a context: when ctx is done before the
// worker exits, Cancel is called (by default killing the worker's tree).
func CommandContext(ctx context.Context, p *policy.Policy, name string, arg ...string) *Cmd {
	if ctx == nil {
		panic("launcher: nil Context")
	}
	c := Command(p, name, arg...)
	c.ctx = ctx
	return c
}

// Error is a failure of sandbox-exec itself to start a worker, with the
// step that failed. Errors of the init stage carry its errno.
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string { return "start worker: " + e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// NotFound reports whether the program was not found (shell status 127).
func (e *Error) NotFound() bool {
	return (e.Op == "lookup" || e.Op == "exec") && errors.Is(e.Err, unix.ENOENT)
}

// NotExecutable reports whether the program was found but could not be
// executed (shell status 126).
func (e *Error) NotExecutable() bool {
	return (e.Op == "lookup" || e.Op == "exec") && !e.NotFound()
}

// Start starts the worker and returns once it has exec'd its program
// under the sandbox, or with an *Error if it could not.
func (c *Cmd) Start() error {
	args, env, err := c.begin()
	if err != nil {
		return err
	}
	if c.pool != nil {
		return c.startPooled(args, env)
	}
	target := resolveTarget(c.Path, env, c.Dir)
	cfg := stageConfig{
		user: stageUser(c.Credential),
		ctx:  c.ctx,
		spec: initSpec{Path: c.Path, Args: args, Env: env, NFiles: len(c.ExtraFiles)},
		dir:  c.Dir,
		// Taken when the context is done, as exec.Cmd does.
		cancel: func(pid int) error {
			if c.Cancel != nil {
				return c.Cancel()
			}
			killTree(pid)
			return nil
		},
		waitDelay: c.WaitDelay,
		stdin:     c.Stdin, stdout: c.Stdout, stderr: c.Stderr,
		extra: c.ExtraFiles,
	}
	// The init stage is forked first when nothing has to happen to this
	// process before: its Go runtime then starts (1.5-2 ms) while the
	// plan is built (0.4-0.6 ms: the filter, the Landlock plan). A host
	// still to be confined must be confined before any worker exists.
	var early *stage
	if !c.ConfineHost || hostConfined() {
		st, err := spawnStage(cfg, planNamespaces(c.Policy.Namespaces()))
		if err != nil {
			// A plan that cannot be made says better why.
			if _, perr := newPlan(c.Policy, target, c.Grants); perr != nil {
				return perr
			}
			return err
		}
		early = st
	}
	st, plan, err := c.prepare(cfg, early, target)
	if err != nil {
		if early != nil {
			early.discard()
		}
		return err
	}
	c.adopt(st)
	defer st.conn.Close()
	if err := c.serve(st, plan, env); err != nil {
		c.abort()
		return err
	}
	if err := c.handOff(st.conn, msgAck, nil); err != nil {
		c.abort()
		return err
	}
	return nil
}

// prepare builds the plan and the broker and hands the init stage its
// spec: to the stage spawned early, or to one started now.
func (c *Cmd) prepare(cfg stageConfig, early *stage, target string) (*stage, *plan, error) {
	plan, err := newPlan(c.Policy, target, c.Grants)
	if err != nil {
		return nil, nil, err
	}
	if c.ConfineHost {
		plan.confineHost = true
		if _, err := confineHost(HostConfig{Policies: []*policy.Policy{c.Policy}, Programs: []string{c.Path}, Grants: c.Grants}, false); err != nil {
			return nil, nil, &Error{Op: "confine host", Err: err}
		}
	}
	if err := c.newBroker(); err != nil {
		return nil, nil, err
	}
	cfg.plan = plan
	if early == nil {
		st, err := startStage(cfg)
		return st, plan, err
	}
	if early.nsFlags != plan.ns.flags {
		return nil, nil, &Error{Op: "namespaces", Err: fmt.Errorf("the init stage was cloned with namespaces %#x, the plan has %#x", early.nsFlags, plan.ns.flags)}
	}
	if err := early.handshake(cfg.spec, plan); err != nil {
		return nil, nil, err
	}
	return early, plan, nil
}

// begin checks c before a start and returns the worker's command line and
// environment.
func (c *Cmd) begin() (args, env []string, err error) {
	if c.started {
		return nil, nil, errors.New("launcher: already started")
	}
	c.started = true
	if c.Policy == nil {
		return nil, nil, &Error{Op: "policy", Err: errors.New("no policy")}
	}
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	if err := checkCredential(c.Credential); err != nil {
		return nil, nil, err
	}
	args = c.Args
	if len(args) == 0 {
		args = []string{c.Path}
	}
	hostEnv := c.Env
	if hostEnv == nil {
		hostEnv = os.Environ()
	}
	return args, workerEnv(c.Policy.Env(), hostEnv), nil
}

// checkCredential fails, before anything is started, when this process
// cannot switch a worker to cr (nil: the host's user): the switch needs
// CAP_SETUID and CAP_SETGID, which root has.
func checkCredential(cr *syscall.Credential) error {
	if cr == nil {
		return nil
	}
	const need = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID
	caps, err := sandbox.ReadCapabilities()
	if err == nil && caps.Effective&need != need {
		err = fmt.Errorf("running as uid %d:%d without CAP_SETUID and CAP_SETGID: only root (or a host with both capabilities) can run a worker as another user; leave Credential nil to run it as this process's user", os.Getuid(), os.Getgid())
	}
	if err != nil {
		return &Error{Op: "credential", Err: err}
	}
	for _, id := range append([]uint32{cr.Uid, cr.Gid}, cr.Groups...) {
		if id == ^uint32(0) {
			return &Error{Op: "credential", Err: errors.New("id 4294967295 (-1) is not a user or group")}
		}
	}
	return nil
}

// stageUser is the identity an init stage takes for cr (nil: none).
func stageUser(cr *syscall.Credential) *sandbox.User {
	if cr == nil {
		return nil
	}
	return &sandbox.User{Uid: cr.Uid, Gid: cr.Gid, Groups: slices.Clone(cr.Groups), KeepGroups: cr.NoSetGroups}
}

// newBroker makes the broker for c's policy and grants, for an init
// stage that installs its filter with WaitKillableRecv, as every stage
// asks; serve makes another if the stage could not.
func (c *Cmd) newBroker() error {
	matcher, err := c.Policy.Matcher().With(c.Grants...)
	if err != nil {
		return &Error{Op: "grants", Err: err}
	}
	c.brokerOpts = broker.Options{
		Matcher:          matcher,
		DenyErrno:        c.Policy.DefaultErrno(),
		Audit:            c.Audit,
		AuditDenialsOnly: c.AuditDenialsOnly,
		Threads:          c.BrokerThreads,
		WaitKillableRecv: true,

		BlockTimeout:        c.BlockTimeout,
		MaxBlockedPerWorker: c.MaxBlocked,
	}
	if cr := c.Credential; cr != nil {
		// The broker opens files as the worker's user (R39).
		c.brokerOpts.Uid, c.brokerOpts.Gid = int(cr.Uid), int(cr.Gid)
		if !cr.NoSetGroups {
			c.brokerOpts.Groups = make([]int, len(cr.Groups)) // none when empty
			for i, g := range cr.Groups {
				c.brokerOpts.Groups[i] = int(g)
			}
		}
	}
	b, err := broker.New(c.brokerOpts)
	if err != nil {
		return &Error{Op: "broker", Err: err}
	}
	c.broker = b
	return nil
}

// adopt makes the started init stage st this command's process.
func (c *Cmd) adopt(st *stage) {
	c.wait, c.release, c.pidNS = st.wait, st.release, st.pidNS
	c.Process = st.proc
}

// serve writes the report of the stage c adopted and starts the broker on
// its listener.
func (c *Cmd) serve(st *stage, plan *plan, env []string) error {
	c.report = plan.report(st.ready.Report, c.Process.Pid, env)
	listener := st.listener
	st.listener = nil
	if !st.ready.Report.WaitKillableRecv {
		// Without it any signal can interrupt a received call, and the
		// broker must answer with ADDFD|SEND in one step
		// (broker.Options.WaitKillableRecv).
		opts := c.brokerOpts
		opts.WaitKillableRecv = false
		b, err := broker.New(opts)
		if err != nil {
			listener.Close()
			return &Error{Op: "broker", Err: err}
		}
		c.broker = b
	}
	serveCtx, stop := context.WithCancel(context.Background())
	c.stopServe = stop
	c.serveDone = make(chan error, 1)
	go func() { c.serveDone <- c.broker.Serve(serveCtx, listener) }()
	return nil
}

// handOff calls BeforeExec, lets the init stage exec (msgAck, or msgExec
// with the worker's fds for a pooled stage) and waits until it has.
func (c *Cmd) handOff(conn *ipc.Conn, typ uint16, payload []byte, files ...*os.File) error {
	if c.BeforeExec != nil {
		if err := c.BeforeExec(c.report); err != nil {
			return &Error{Op: "before exec", Err: err}
		}
	}
	if err := conn.Send(typ, payload, files...); err != nil {
		return &Error{Op: "hand off", Err: err}
	}
	// The socket closes when exec succeeds (close-on-exec); a message
	// means exec failed.
	msg, err := conn.Recv()
	if err == nil {
		closeFiles(msg.Files)
		if msg.Type == msgError {
			return initFailure(msg.Payload)
		}
		return &Error{Op: "exec", Err: fmt.Errorf("unexpected message %d", msg.Type)}
	}
	if !errors.Is(err, io.EOF) {
		return &Error{Op: "exec", Err: err}
	}
	return nil
}

// abort kills the worker after a failed start and releases everything.
func (c *Cmd) abort() {
	killTree(c.Process.Pid)
	c.finish()
}

func initFailure(payload []byte) error {
	var ie initError
	if err := json.Unmarshal(payload, &ie); err != nil {
		return &Error{Op: "init stage", Err: fmt.Errorf("unreadable error report: %w", err)}
	}
	var err error = errors.New(ie.Msg)
	if ie.Errno != 0 {
		err = &errnoError{msg: ie.Msg, errno: unix.Errno(ie.Errno)}
	}
	return &Error{Op: ie.Op, Err: err}
}

// errnoError keeps the init stage's message and lets errors.Is match its errno.
type errnoError struct {
	msg   string
	errno unix.Errno
}

func (e *errnoError) Error() string { return e.msg }
func (e *errnoError) Unwrap() error { return e.errno }

// finish reaps the init stage after a failed start and releases everything.
func (c *Cmd) finish() {
	c.wait()
	unregister(c.Process.Pid)
	close(c.release)
	if c.stopServe != nil {
		c.stopServe()
		<-c.serveDone
	}
}

// Wait waits for the worker to exit and for every process of its tree to
// stop using the filter, then releases everything. The error is as in
// exec.Cmd.Wait: an *exec.ExitError for a non-zero status.
func (c *Cmd) Wait() error {
	if c.wait == nil || c.Process == nil {
		return errors.New("launcher: not started")
	}
	c.waitOnce.Do(func() {
		ps, err := c.wait()
		unregister(c.Process.Pid)
		c.ProcessState = ps
		close(c.release)
		if c.exited != nil {
			close(c.exited)
		}
		if c.pio != nil {
			if ioErr := c.pio.wait(c.WaitDelay); err == nil {
				err = ioErr
			}
		}
		// The listener reports POLLHUP once no task of the tree uses the
		// filter: descendants that outlived the worker are waited for.
		if c.serveDone != nil {
			if serr := <-c.serveDone; serr != nil && err == nil {
				err = fmt.Errorf("broker: %w", serr)
			}
			c.stopServe()
		}
		c.waitErr = err
	})
	return c.waitErr
}

// Run starts the worker and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the worker and returns its standard output, as exec.Cmd's
// Output does (without capturing stderr into the error).
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("launcher: Stdout already set")
	}
	var out bytes.Buffer
	c.Stdout = &out
	err := c.Run()
	return out.Bytes(), err
}

// Signal sends sig to the worker process.
//
// A worker in its own pid namespace (`namespaces pid`) is that
// namespace's init, and the kernel delivers to an init only the signals
// it has a handler for (and SIGKILL and SIGSTOP, from the host). So that
// SIGINT, SIGTERM and their like still end such a worker, Signal sends
// SIGKILL instead of a signal whose default action would end the process
// when the worker neither handles nor ignores it; the worker then exits
// with status 128+9, not 128+N.
func (c *Cmd) Signal(sig os.Signal) error {
	if c.Process == nil {
		return errors.New("launcher: not started")
	}
	if s, ok := sig.(syscall.Signal); ok && c.pidNS && terminates(s) && !handled(c.Process.Pid, s) {
		sig = syscall.SIGKILL
	}
	return c.Process.Signal(sig)
}

// terminates reports whether the default action of s ends the process.
func terminates(s syscall.Signal) bool {
	switch s {
	case syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2,
		syscall.SIGALRM, syscall.SIGPIPE, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGVTALRM, syscall.SIGPROF:
		return true
	}
	return false
}

// handled reports whether process pid catches or ignores s (SigCgt and
// SigIgn of /proc/<pid>/status); true when that cannot be read.
func handled(pid int, s syscall.Signal) bool {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/status")
	if err != nil {
		return true
	}
	bit := uint64(1) << (uint(s) - 1)
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range []string{"SigCgt:", "SigIgn:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil || m&bit != 0 {
					return true
				}
			}
		}
	}
	return false
}

// Kill kills the worker and every process of its tree that can be found.
func (c *Cmd) Kill() error {
	if c.Process == nil {
		return errors.New("launcher: not started")
	}
	killTree(c.Process.Pid)
	return nil
}

// Metrics returns the broker's latency figures for this worker.
func (c *Cmd) Metrics() Metrics {
	if c.broker == nil {
		return Metrics{}
	}
	return c.broker.Metrics()
}

// Report returns what was enforced for this worker, after Start.
func (c *Cmd) Report() *Report { return c.report }

// Event is one brokered decision, as given to Cmd.Audit.
type Event = broker.Event

// Metrics are the broker's latency figures for a worker.
type Metrics = broker.Metrics

// Grant adds rights on pattern for this worker only (see Cmd.Grants).
// Call it before Start.
func (c *Cmd) Grant(pattern string, rights policy.Right) {
	c.Grants = append(c.Grants, policy.Grant{Pattern: pattern, Rights: rights})
}
