//go:build linux

package launcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/ipc"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

// stageConfig is what startStage needs to start an init stage.
type stageConfig struct {
	ctx  context.Context // nil: not bound to a context
	plan *plan
	// spec carries the program (Path, Args, Env, NFiles) or Pooled;
	// startStage fills in the rest.
	spec initSpec
	dir  string
	// cancel ends the stage's tree when ctx is done; it gets the pid.
	cancel         func(pid int) error
	waitDelay      time.Duration
	stdin          io.Reader
	stdout, stderr io.Writer
	extra          []*os.File
	// user, if not nil, is the identity the stage switches to after clone
	// (Cmd.Credential, PoolOptions.Credential).
	user *sandbox.User
}

// stage is an init stage that has applied every layer and handed over its
// listener: it waits for msgAck (or, pooled, msgExec) to exec.
type stage struct {
	proc *os.Process
	user *sandbox.User // the identity it switches to (stageConfig.user)
	// nsFlags are the namespaces it was cloned into.
	nsFlags uintptr
	// wait reaps proc, with exec.Cmd.Wait's error for a failed status.
	wait     func() (*os.ProcessState, error)
	conn     *ipc.Conn
	listener *os.File // nil once a broker serves it
	ready    initReady
	// release lets the thread that forked the stage end (Pdeathsig is
	// bound to it) once the stage's process has been reaped.
	release chan struct{}
	pidNS   bool
}

// startStage forks an init stage and runs the protocol up to the
// listener (initproto.go). On error nothing is left running.
func startStage(cfg stageConfig) (*stage, error) {
	st, err := spawnStage(cfg, cfg.plan.ns)
	if err != nil {
		return nil, err
	}
	if err := st.handshake(cfg.spec, cfg.plan); err != nil {
		st.discard()
		return nil, err
	}
	return st, nil
}

// spawnStage forks and execs an init stage in the namespaces of ns (with
// cfg.user's ids mapped) and returns it before it has its spec: handshake
// sends that. Between the two, the stage's Go runtime starts while the
// caller may still be building the plan.
func spawnStage(cfg stageConfig, ns nsPlan) (*stage, error) {
	hostEnd, childEnd, err := ipc.Pair()
	if err != nil {
		return nil, &Error{Op: "ipc", Err: err}
	}
	childFile, err := childEnd.File()
	childEnd.Close()
	if err != nil {
		hostEnd.Close()
		return nil, &Error{Op: "ipc", Err: err}
	}

	var inner *exec.Cmd
	if cfg.ctx != nil {
		inner = exec.CommandContext(cfg.ctx, "/proc/self/exe")
		inner.Cancel = func() error { return cfg.cancel(inner.Process.Pid) }
		inner.WaitDelay = cfg.waitDelay
	} else {
		inner = exec.Command("/proc/self/exe")
	}
	inner.Args = []string{"sandbox-exec-init"}
	// GOMAXPROCS=1 from the start, not set later by Init: the stage's
	// runtime starts fewer threads, and a stage leaves faster by execve
	// (pooled Start p50 about 8 % lower in A/B runs of 100 handoffs).
	// The worker's environment is the spec's, not this one.
	inner.Env = []string{envInit + "=" + strconv.Itoa(3+len(cfg.extra)), "GOMAXPROCS=1"}
	inner.Dir = cfg.dir
	inner.Stdin, inner.Stdout, inner.Stderr = cfg.stdin, cfg.stdout, cfg.stderr
	inner.ExtraFiles = append(append([]*os.File(nil), cfg.extra...), childFile)
	inner.SysProcAttr = &syscall.SysProcAttr{
		Setsid:    true,
		Pdeathsig: syscall.SIGKILL,
	}
	// Namespaces are created by clone, the user namespace first, with the
	// id maps written by this process before the child runs (no code runs
	// between fork and exec in Go).
	ns.sysProcAttr(inner.SysProcAttr)
	if cfg.user != nil {
		// Not SysProcAttr.Credential: the stage would then be cloned
		// without the host's privileges and could create no namespace
		// but a user namespace. It switches itself, inside them (the
		// spec's User, set by handshake).
		mapUser(inner.SysProcAttr, *cfg.user)
	}
	st := &stage{conn: hostEnd, pidNS: ns.flags&syscall.CLONE_NEWPID != 0, nsFlags: ns.flags, user: cfg.user}
	st.wait = func() (*os.ProcessState, error) {
		err := inner.Wait()
		return inner.ProcessState, err
	}

	// Pdeathsig fires when the thread that forked the child exits, not the
	// process (go.dev/issue/27505): fork from a locked thread that lives
	// until the worker has exited (security.md R57).
	st.release = make(chan struct{})
	startErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		registryMu.Lock()
		err := whileDumpable(ns.flags&syscall.CLONE_NEWUSER != 0, inner.Start)
		if err == nil {
			register(inner.Process.Pid)
		}
		registryMu.Unlock()
		startErr <- err
		if err == nil {
			<-st.release
		}
	}()
	err = <-startErr
	childFile.Close()
	if err != nil {
		hostEnd.Close()
		if cfg.dir != "" {
			// The child's chdir failed, but exec.Cmd names the program.
			if _, serr := os.Stat(cfg.dir); serr != nil {
				return nil, &Error{Op: "working directory", Err: serr}
			}
		}
		return nil, &Error{Op: "start init stage", Err: err}
	}
	st.proc = inner.Process
	return st, nil
}

// mapUser adds u's uid, gid and groups to the id maps of a new user
// namespace, each to itself (as sysProcAttr maps the host's ids), so that
// the stage can switch to them there and the broker, which checks
// permissions with the same ids outside, agrees with the worker on who
// owns what. Writing several ids to the maps, and letting the stage call
// setgroups, needs CAP_SETUID and CAP_SETGID in the host's namespace,
// which Cmd.Credential requires anyway.
func mapUser(attr *syscall.SysProcAttr, u sandbox.User) {
	if attr.Cloneflags&syscall.CLONE_NEWUSER == 0 {
		return
	}
	addID := func(m []syscall.SysProcIDMap, id int) []syscall.SysProcIDMap {
		for _, e := range m {
			if id >= e.ContainerID && id < e.ContainerID+e.Size {
				return m
			}
		}
		return append(m, syscall.SysProcIDMap{ContainerID: id, HostID: id, Size: 1})
	}
	attr.UidMappings = addID(attr.UidMappings, int(u.Uid))
	attr.GidMappings = addID(attr.GidMappings, int(u.Gid))
	if !u.KeepGroups {
		for _, g := range u.Groups {
			attr.GidMappings = addID(attr.GidMappings, int(g))
		}
		attr.GidMappingsEnableSetgroups = true
	}
}

// handshake sends the spec and receives the listener.
func (st *stage) handshake(spec initSpec, plan *plan) error {
	spec.HostPid = os.Getpid()
	spec.User = st.user
	spec.Sandbox = plan.spec
	spec.PidNS = st.pidNS
	for _, t := range namespaceTypes {
		if st.nsFlags&t.flag == 0 {
			continue
		}
		l, err := os.Readlink("/proc/self/ns/" + t.name)
		if err != nil {
			return &Error{Op: "namespaces", Err: err}
		}
		if spec.HostNS == nil {
			spec.HostNS = map[string]string{}
		}
		spec.HostNS[t.name] = l
	}
	payload, err := json.Marshal(spec)
	if err != nil {
		return &Error{Op: "send spec", Err: err}
	}
	if err := st.conn.Send(msgSpec, payload); err != nil {
		return &Error{Op: "send spec", Err: err}
	}
	msg, err := st.conn.Recv()
	if err != nil {
		return &Error{Op: "init stage", Err: fmt.Errorf("no answer: %w", err)}
	}
	if msg.Type == msgError {
		closeFiles(msg.Files)
		return initFailure(msg.Payload)
	}
	if msg.Type != msgListener || len(msg.Files) != 1 {
		closeFiles(msg.Files)
		return &Error{Op: "init stage", Err: fmt.Errorf("unexpected message %d with %d fds", msg.Type, len(msg.Files))}
	}
	if err := json.Unmarshal(msg.Payload, &st.ready); err != nil {
		closeFiles(msg.Files)
		return &Error{Op: "init stage", Err: err}
	}
	st.listener = msg.Files[0]
	return checkMemory(st.proc.Pid, st.ready.MemProbe)
}

// checkMemory fails closed unless this process can read the stage's
// memory the way the broker reads paths (security.md R6): Yama's
// ptrace_scope, a non-dumpable stage, a Landlock domain the host is not
// an ancestor of or a foreign user namespace would make every brokered
// call fail.
func checkMemory(pid int, addr uint64) error {
	buf := make([]byte, len(memProbe))
	n, err := sys.ReadMem(pid, addr, buf)
	if err == nil && (addr == 0 || n != len(buf) || string(buf) != string(memProbe)) {
		err = fmt.Errorf("read %q at %#x", buf[:n], addr)
	}
	if err != nil {
		return &Error{Op: "memory access", Err: fmt.Errorf("this process cannot read the worker's memory (process_vm_readv: %w), so the broker could not read the paths it asks for; check Yama's kernel.yama.ptrace_scope (at most 1), that the host is the worker's parent, and that it is not confined by a Landlock domain of its own below the worker's", err)}
	}
	return nil
}

// discard kills a stage that will not run a command and reaps it.
func (st *stage) discard() {
	killTree(st.proc.Pid)
	if st.listener != nil {
		st.listener.Close()
	}
	st.conn.Close()
	st.wait()
	unregister(st.proc.Pid)
	close(st.release)
}
