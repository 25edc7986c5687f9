//go:build linux

package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/ipc"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

type sandboxSpec = sandbox.Spec

// stageReport is what the init stage applied, read back from the kernel,
// for the host's report.
type stageReport struct {
	Landlock         sandbox.LandlockResult `json:"landlock"`
	WaitKillableRecv bool                   `json:"wait_killable_recv"`
	Capabilities     sandbox.Capabilities   `json:"capabilities"`
	NoNewPrivs       bool                   `json:"no_new_privs"`
	NewSession       bool                   `json:"new_session"`
	Rlimits          []sandbox.Rlimit       `json:"rlimits"`
	FDs              []int                  `json:"fds"`
	// Namespaces are the types whose /proc/self/ns link differs from the
	// host's: the namespaces the init stage is really in.
	Namespaces []string `json:"namespaces"`
	// User is the stage's identity after the user switch, read back with
	// getresuid, getresgid and getgroups.
	User UserReport `json:"user"`
}

// memProbe is what the host reads from an init stage's memory before it
// serves the stage's listener (security.md R6): the broker reads every
// path from the worker's memory the same way.
var memProbe = []byte("sandbox-exec: R6 memory probe")

// IsInit reports whether this process was started as an init stage.
func IsInit() bool {
	_, ok := os.LookupEnv(envInit)
	return ok
}

// Init runs the init stage and never returns when this process is one;
// otherwise it returns at once (after picking up a confinement that
// ConfineHost re-executed the program with). Call it first thing in main
// (and in TestMain of tests that start workers), before any other
// goroutine runs.
func Init() {
	if os.Getenv(envProbeUserns) == "1" {
		os.Exit(runUsernsProbe())
	}
	if !IsInit() {
		initHost()
		return
	}
	// Everything below runs on this thread, which execs the worker. The
	// stage runs with GOMAXPROCS=1 from its environment (startStage).
	runtime.LockOSThread()
	code := runInit()
	os.Exit(code)
}

// Exit codes of an init stage that could not exec; the host reads the
// reason from the ipc socket, these only matter if that is lost.
const (
	exitSetup    = 125
	exitNoExec   = 126
	exitNotFound = 127
)

func runInit() (code int) {
	fd, err := strconv.Atoi(os.Getenv(envInit))
	if err != nil || fd < 3 {
		fmt.Fprintf(os.Stderr, "sandbox-exec: init stage: bad %s=%q\n", envInit, os.Getenv(envInit))
		return exitSetup
	}
	os.Unsetenv(envInit)
	conn, err := ipc.NewConn(os.NewFile(uintptr(fd), "init"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox-exec: init stage: %v\n", err)
		return exitSetup
	}
	fail := func(op string, err error) int {
		ie := initError{Op: op, Msg: err.Error()}
		var errno unix.Errno
		if errors.As(err, &errno) {
			ie.Errno = int(errno)
		}
		payload, _ := json.Marshal(ie)
		conn.Send(msgError, payload)
		switch {
		case op == "exec" && errors.Is(err, unix.ENOENT), op == "lookup" && errors.Is(err, unix.ENOENT):
			return exitNotFound
		case op == "exec", op == "lookup":
			return exitNoExec
		}
		return exitSetup
	}
	defer func() {
		// A panic in the init stage is a setup error, reported to the host.
		if r := recover(); r != nil {
			code = fail("init", fmt.Errorf("panic: %v", r))
		}
	}()

	msg, err := conn.Recv()
	if err != nil {
		return fail("read spec", err)
	}
	closeFiles(msg.Files)
	if msg.Type != msgSpec {
		return fail("read spec", fmt.Errorf("unexpected message %d", msg.Type))
	}
	var spec initSpec
	if err := json.Unmarshal(msg.Payload, &spec); err != nil {
		return fail("read spec", err)
	}
	// The setup order is fixed (design.md section 1, runc's
	// standard_init_linux.go); each step says why it comes where it does.
	//
	// 1. Parent check. The host may have died before Pdeathsig was armed
	// (runc does the same check): then nobody would ever serve our filter.
	// In a new pid namespace the parent is invisible (getppid is 0); there
	// the spec we just read proves the host was alive after the fork, and
	// Pdeathsig covers the rest.
	wantPpid := spec.HostPid
	if spec.PidNS {
		wantPpid = 0
	}
	if os.Getppid() != wantPpid {
		return fail("parent check", fmt.Errorf("host %d is gone (parent is %d)", spec.HostPid, os.Getppid()))
	}
	// 2. Namespaces were created by clone (SysProcAttr: the user namespace
	// first, id maps written by the host); check we are in them.
	var rep stageReport
	for name, hostLink := range spec.HostNS {
		if l, err := os.Readlink("/proc/self/ns/" + name); err == nil && l != hostLink {
			rep.Namespaces = append(rep.Namespaces, name)
		}
	}
	slices.Sort(rep.Namespaces)
	// 3. Close stray fds. A leaked fd (a directory above all, runc
	// CVE-2024-21626) would bypass every path check: everything from the
	// first fd the worker does not keep is closed at exec, including this
	// socket (security.md R3, S-17). Rlimits follow in sandbox.Apply.
	if err := unix.CloseRange(uint(3+spec.NFiles), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail("close fds", err)
	}
	rep.FDs = inheritedFDs()
	// 4. The environment is spec.Env, filtered by the host (env lines);
	// the session is new (Setsid at clone), so the worker has no
	// controlling terminal to inject input into (TIOCSTI, TIOCLINUX).
	sid, _ := unix.Getsid(0)
	rep.NewSession = sid == os.Getpid()
	// 4a. The worker's user (Cmd.Credential), where runc's setupUser
	// switches: inside the namespaces, which clone created with the
	// host's privileges (a user namespace maps the new ids), and before
	// the program is looked up, so that the lookup checks execute
	// permission as the worker will at exec; before sandbox.Apply, whose
	// capability drop then takes CAP_SETUID and CAP_SETGID too, and
	// before no_new_privs, Landlock and the filter (which would trap or
	// deny the calls). The switch is this thread's, like everything the
	// worker inherits.
	if spec.User != nil {
		if err := sandbox.SetUser(*spec.User); err != nil {
			return fail("user", err)
		}
	}
	// Read back who we are: the report states what the kernel holds, not
	// what was asked (also without a switch).
	if rep.User, err = readUser(); err != nil {
		return fail("user", err)
	}
	// 5. The working directory was set at clone (Cmd.Dir). Look the
	// program up now, while the file system is still ours to read.
	// A pooled stage gets its program later, from a host that looked it
	// up itself.
	var path string
	if !spec.Pooled {
		if path, err = lookPath(spec.Path, spec.Env); err != nil {
			return fail("lookup", err)
		}
	}
	// 6-8. rlimits, capabilities, no_new_privs, Landlock, and the seccomp
	// filter last (sandbox.Apply keeps that order). No file system call
	// may follow until the host serves the listener.
	res, err := sandbox.Apply(&spec.Sandbox)
	if err != nil {
		return fail("sandbox", err)
	}
	rep.Landlock, rep.WaitKillableRecv = res.Landlock, res.WaitKillableRecv
	rep.Capabilities, rep.NoNewPrivs, rep.Rlimits = res.Capabilities, res.NoNewPrivs, res.Rlimits
	ready, _ := json.Marshal(initReady{Report: rep, MemProbe: sys.AddrOf(memProbe)})
	// 9. Send the listener and wait for the ack: the broker serves it
	// before the worker's first file system call.
	err = conn.Send(msgListener, ready, res.Listener)
	// No copy of the listener may survive in the worker (security.md R4).
	res.Listener.Close()
	if err != nil {
		return fail("send listener", err)
	}
	msg, err = conn.Recv()
	if err != nil {
		return exitSetup // the host is gone (or a pool closed); it can't be told
	}
	if spec.Pooled {
		return execPooled(conn, msg, fail)
	}
	closeFiles(msg.Files)
	if msg.Type != msgAck {
		return fail("wait for ack", fmt.Errorf("unexpected message %d", msg.Type))
	}
	// 10. execve from this thread: the filter, Landlock domain and
	// no_new_privs are this thread's, and stay with the new program.
	err = unix.Exec(path, spec.Args, spec.Env)
	return fail("exec", &os.PathError{Op: "exec", Path: path, Err: err})
}

// execPooled runs the last step of a pooled stage: msg is msgExec with the
// worker's stdin, stdout, stderr and ExtraFiles, which go to fds 0, 1, 2,
// 3... before the exec. Every other fd is close-on-exec already (step 3;
// ipc receives with MSG_CMSG_CLOEXEC). The filter is installed: chdir and
// nothing else here is brokered, and the host serves the listener before
// it sends msgExec.
func execPooled(conn *ipc.Conn, msg ipc.Message, fail func(string, error) int) int {
	defer closeFiles(msg.Files)
	if msg.Type != msgExec || len(msg.Files) < 3 {
		return fail("wait for exec", fmt.Errorf("unexpected message %d with %d fds", msg.Type, len(msg.Files)))
	}
	var es execSpec
	if err := json.Unmarshal(msg.Payload, &es); err != nil {
		return fail("wait for exec", err)
	}
	connFD := -1
	if rc, err := conn.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { connFD = int(fd) })
	}
	if connFD < 0 {
		return fail("wait for exec", errors.New("no socket to report on"))
	}
	fds := make([]int, len(msg.Files))
	for i, f := range msg.Files {
		fds[i] = int(f.Fd())
	}
	// The socket may sit on a number that a worker fd takes: then errors
	// go out through a copy above them.
	report, err := placeFDs(fds, connFD)
	if err != nil {
		return fail("pass fds", err)
	}
	if report != connFD {
		c, err := ipc.NewConn(os.NewFile(uintptr(report), "init"))
		if err != nil {
			return exitSetup
		}
		conn = c
	}
	if es.Dir != "" {
		if err := unix.Chdir(es.Dir); err != nil {
			return fail("chdir", &os.PathError{Op: "chdir", Path: es.Dir, Err: err})
		}
	}
	err = unix.Exec(es.Path, es.Args, es.Env)
	return fail("exec", &os.PathError{Op: "exec", Path: es.Path, Err: err})
}

// placeFDs makes fds[i] the descriptor i (without close-on-exec), the
// shuffle os/exec's child does before exec: every source below len(fds)
// first moves above it, so no placement overwrites a source still to be
// placed. keep, an fd that must survive (the socket to the host), moves
// too if it is in the way; placeFDs returns its new number. The sources
// themselves stay open, close-on-exec.
func placeFDs(fds []int, keep int) (int, error) {
	n := len(fds)
	for i, fd := range fds {
		if fd >= n {
			continue
		}
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, n)
		if err != nil {
			return keep, os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err)
		}
		fds[i] = nfd
	}
	if keep < n {
		nfd, err := unix.FcntlInt(uintptr(keep), unix.F_DUPFD_CLOEXEC, n)
		if err != nil {
			return keep, os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err)
		}
		keep = nfd
	}
	for i, fd := range fds {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return keep, os.NewSyscallError("dup3", err)
		}
	}
	return keep, nil
}

// inheritedFDs lists the descriptors that survive exec (no FD_CLOEXEC).
// It reads /proc/self/fd, so it must run before the filter is installed.
func inheritedFDs() []int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	fds := []int{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return fds
}

// readUser returns the calling thread's uid, gid and supplementary
// groups, and fails unless the real, effective and saved ids agree (a
// worker must not be able to switch back to another saved id).
func readUser() (UserReport, error) {
	r, e, s := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	if r != e || r != s || rg != eg || rg != sg {
		return UserReport{}, fmt.Errorf("the init stage has uids %d/%d/%d and gids %d/%d/%d (real/effective/saved): they must agree", r, e, s, rg, eg, sg)
	}
	groups, err := unix.Getgroups()
	if err != nil {
		return UserReport{}, os.NewSyscallError("getgroups", err)
	}
	slices.Sort(groups)
	if groups == nil {
		groups = []int{}
	}
	return UserReport{Uid: r, Gid: rg, Groups: groups}, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// lookPath finds name like a shell would with the worker's PATH: a name
// with a slash is used as it is. ENOENT means not found, EACCES found but
// not executable.
func lookPath(name string, env []string) (string, error) {
	if name == "" {
		return "", &os.PathError{Op: "lookup", Path: name, Err: unix.ENOENT}
	}
	if strings.Contains(name, "/") {
		return name, checkExecutable(name, false)
	}
	pathEnv := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	found := error(&os.PathError{Op: "lookup", Path: name, Err: unix.ENOENT})
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		err := checkExecutable(p, true)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, unix.EACCES) {
			found = err // keep looking, but remember it exists
		}
	}
	return "", found
}

func checkExecutable(p string, searching bool) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		if searching && errors.Is(err, unix.EACCES) {
			// A PATH directory this user cannot search (an unprivileged
			// worker and root's PATH) hides nothing it could run: not
			// found, like exec.LookPath.
			err = unix.ENOENT
		}
		return &os.PathError{Op: "lookup", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return &os.PathError{Op: "lookup", Path: p, Err: unix.EACCES}
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return &os.PathError{Op: "lookup", Path: p, Err: err}
	}
	return nil
}
