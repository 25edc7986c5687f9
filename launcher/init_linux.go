//go:build linux

package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/ipc"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

type sandboxSpec = sandbox.Spec

// stageReport is what the init stage applied, for the host's report.
type stageReport struct {
	Landlock         sandbox.LandlockResult `json:"landlock"`
	WaitKillableRecv bool                   `json:"wait_killable_recv"`
}

// IsInit reports whether this process was started as an init stage.
func IsInit() bool {
	_, ok := os.LookupEnv(envInit)
	return ok
}

// Init runs the init stage and never returns when this process is one;
// otherwise it returns at once. Call it first thing in main (and in
// TestMain of tests that start workers), before any other goroutine runs.
func Init() {
	if !IsInit() {
		return
	}
	// Everything below runs on this thread, which execs the worker.
	runtime.LockOSThread()
	runtime.GOMAXPROCS(1)
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
	// The host may have died before Pdeathsig was armed (runc does the
	// same check): then nobody would ever serve our filter.
	if os.Getppid() != spec.HostPid {
		return fail("parent check", fmt.Errorf("host %d is gone (parent is %d)", spec.HostPid, os.Getppid()))
	}
	// A leaked fd (a directory above all, runc CVE-2024-21626) would bypass
	// every path check: everything from the first fd the worker does not
	// keep is closed at exec, including this socket (security.md R3).
	if err := unix.CloseRange(uint(3+spec.NFiles), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail("close fds", err)
	}
	path, err := lookPath(spec.Path, spec.Env)
	if err != nil {
		return fail("lookup", err)
	}
	res, err := sandbox.Apply(&spec.Sandbox)
	if err != nil {
		return fail("sandbox", err)
	}
	ready, _ := json.Marshal(initReady{Report: stageReport{Landlock: res.Landlock, WaitKillableRecv: res.WaitKillableRecv}})
	err = conn.Send(msgListener, ready, res.Listener)
	// No copy of the listener may survive in the worker (security.md R4).
	res.Listener.Close()
	if err != nil {
		return fail("send listener", err)
	}
	msg, err = conn.Recv()
	if err != nil {
		return exitSetup // the host is gone; it can't be told
	}
	closeFiles(msg.Files)
	if msg.Type != msgAck {
		return fail("wait for ack", fmt.Errorf("unexpected message %d", msg.Type))
	}
	err = unix.Exec(path, spec.Args, spec.Env)
	return fail("exec", &os.PathError{Op: "exec", Path: path, Err: err})
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
		return name, checkExecutable(name)
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
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, unix.EACCES) {
			found = err // keep looking, but remember it exists
		}
	}
	return "", found
}

func checkExecutable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
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
