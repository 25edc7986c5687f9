// Package sandbox applies a worker's restrictions to the calling thread of
// an init stage: resource limits, no_new_privs, Landlock and the seccomp
// filter with its user-notification listener.
//
// A [Spec] is plain data, the same on every kernel; [Apply] is where the
// kernel is asked. The package never sees a policy, an ipc channel or a
// broker: the launcher derives the Spec from the policy in the host and
// ships it to the init stage.
//
// # Threads
//
// no_new_privs, Landlock (before ABI 8) and a seccomp filter installed
// without TSYNC bind the calling thread only, and Go moves goroutines
// between threads. Apply must therefore run on a goroutine locked to its
// thread (runtime.LockOSThread), and that same thread must execve the
// worker: every other thread of the init stage ends at execve.
package sandbox
