//go:build linux

package launcher

import "github.com/seed-025014a4/sandbox-exec/sandbox"

// The init-stage protocol, over one SOCK_SEQPACKET socketpair (package ipc).
// The child's end is the last of its ExtraFiles; its number is in the
// environment variable envInit, which is the whole environment of the init
// stage.
//
//	host                                   init stage (locked thread)
//	 ── msgSpec {initSpec} ──────────────▶  check parent, check namespaces,
//	                                        close stray fds, switch user,
//	                                        look up the target, rlimits,
//	                                        capabilities, no_new_privs,
//	                                        Landlock, filter
//	 ◀── msgListener {initReady} + fd ────  (or msgError {initError}, exit)
//	 start broker on the listener,
//	 Cmd.BeforeExec(report)
//	 ── msgAck ───────────────────────────▶ close listener, execve
//	 ◀── EOF (socket closed by exec) ─────  (or msgError {initError}, exit)
//
// Start returns after the EOF, like os/exec's Start returns after exec.
//
// A pooled init stage (initSpec.Pooled, see Pool) gets a spec without a
// program and stops after the listener: it waits, sandboxed, for msgExec
// instead of msgAck. The host starts the broker for the command it hands
// the stage to and sends
//
//	── msgExec {execSpec} + fds ─────────▶ fds to 0, 1, 2, 3..; chdir,
//	                                       execve
//	◀── EOF (socket closed by exec) ─────  (or msgError {initError}, exit)
//
// where the fds are the worker's stdin, stdout, stderr and ExtraFiles.
const (
	envInit = "SANDBOX_EXEC_INIT_FD"

	msgSpec     uint16 = 1
	msgListener uint16 = 2
	msgAck      uint16 = 3
	msgError    uint16 = 4
	msgExec     uint16 = 5
)

// initSpec is what the host sends to the init stage.
type initSpec struct {
	HostPid int      `json:"host_pid"`
	Path    string   `json:"path"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
	// NFiles is the number of ExtraFiles the worker keeps (fds 3..3+NFiles-1).
	NFiles  int         `json:"nfiles"`
	Sandbox sandboxSpec `json:"sandbox"`
	// PidNS: the init stage is pid 1 of a new pid namespace, where the
	// host is invisible.
	PidNS bool `json:"pid_ns,omitempty"`
	// HostNS are the host's /proc/self/ns links of the namespace types
	// the init stage is cloned into, to verify it is in new ones.
	HostNS map[string]string `json:"host_ns,omitempty"`
	// Pooled: Path, Args and Env are empty; the program comes with
	// msgExec.
	Pooled bool `json:"pooled,omitempty"`
	// User, if not nil, is the identity the stage switches to once it is
	// in its namespaces, before its capabilities are dropped
	// (Cmd.Credential, PoolOptions.Credential).
	User *sandbox.User `json:"user,omitempty"`
}

// execSpec hands a pooled init stage its program. Path is absolute (the
// host looked it up); Dir, if not empty, is where the worker starts.
type execSpec struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir,omitempty"`
}

// initReady comes with the listener fd.
type initReady struct {
	Report stageReport `json:"report"`
	// MemProbe is the address of memProbe in the stage: the host must be
	// able to read it (R6).
	MemProbe uint64 `json:"mem_probe"`
}

// initError reports a failed step; Errno is the raw errno when there is one.
type initError struct {
	Op    string `json:"op"`
	Errno int    `json:"errno,omitempty"`
	Msg   string `json:"msg"`
}
