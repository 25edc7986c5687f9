// Package launcher starts sandboxed workers and wires the other packages
// together: it derives a worker's [sandbox.Spec] and seccomp filter from a
// policy, runs the init stage, receives the listener and serves it with a
// broker.
//
// # Use
//
// The API is shaped like os/exec:
//
//	func main() {
//		launcher.Init() // returns at once unless this process is an init stage
//		p, err := policy.ParseFile("renderer.policy", policy.Defines{"PROFILE": dir})
//		...
//		cmd := launcher.Command(p, "/usr/lib/chromium/chromium", "--type=renderer")
//		cmd.Stdout = os.Stdout
//		cmd.Audit = func(e broker.Event) { log.Print(e) }
//		err = cmd.Run()
//	}
//
// # The init stage
//
// Go cannot run code between fork and exec, and no_new_privs, Landlock and
// a seccomp filter bind a thread. So a worker starts as a re-exec of
// /proc/self/exe in "init stage": [Init], called first thing in main, sees
// the marker in its environment, reads its Spec from an ipc socket, applies
// it on one locked thread, sends the seccomp listener back, waits for the
// host's ack and execs the target from the same thread. The protocol is
// tabled in initproto.go.
//
// # Layers
//
// From one policy the launcher derives every layer of a worker (design.md
// sections 1 and 7), applied by the init stage in a fixed order: the
// namespaces of the policy's `namespaces` line (clone flags, a user
// namespace first, with the host's uid and gid mapped to themselves);
// rlimits; an empty capability set, also for a root host; no_new_privs;
// a Landlock ruleset mirroring the allow rules (execute rights for exec
// rules and the interpreters of their programs, TCP ports from `net`,
// signal and abstract-socket scopes); the seccomp filter. Without a
// `require` line a layer the kernel lacks is skipped and listed in the
// report's downgrades; with one, Start fails naming the feature and the
// Linux release that has it. [ProbeFeatures] says what this kernel offers.
//
// The host can confine itself with Landlock too ([ConfineHost],
// Cmd.ConfineHost), so that a bug in the broker stays within what the
// policies grant. [Report] lists what was enforced for a worker, read back
// by the init stage right before exec; Cmd.BeforeExec receives it then.
//
// A worker in its own pid namespace is that namespace's init: the kernel
// delivers to it only signals it handles (Cmd.Signal sends SIGKILL in
// place of an unhandled terminating signal), it reaps orphans of its
// tree, and every process of the namespace dies with it.
//
// # Pools, grants and users
//
// A host that starts many short workers keeps them ready with a [Pool]:
// NewPool starts init stages that apply every layer of the pool's policy
// and then wait, with their listeners already in the host; Pool.Command
// returns an ordinary Cmd whose Start costs a message and an execve (the
// stage receives the program, its arguments, environment and fds, and
// moves the fds into place). Landlock is applied before the command is
// known, so PoolOptions.Programs lists the programs (their interpreters
// get execute rights) and PoolOptions.GrantRoots bounds the per-command
// Cmd.Grants, which the broker decides exactly for each worker.
// Cmd.Credential (PoolOptions.Credential) runs the worker as another user:
// the init stage switches inside its namespaces, before it drops its
// capabilities, and the broker checks permissions as that user.
//
// # Lifetime
//
// The init stage is started with Setsid (no controlling terminal: TIOCSTI
// and TIOCLINUX cannot inject input) and Pdeathsig SIGKILL from a host
// thread that stays locked and alive as long as the worker runs, plus a
// parent check, so a worker dies with its host. [Cmd.Wait] returns when the
// worker has exited and no process of its tree still uses the filter.
package launcher
