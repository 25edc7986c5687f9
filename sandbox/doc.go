// Package sandbox applies a worker's restrictions to the calling thread of
// an init stage: resource limits, an empty capability set, no_new_privs,
// Landlock and the seccomp filter with its user-notification listener. It
// also confines a host process with Landlock ([RestrictThread] before a
// re-exec, [RestrictAllThreads] in place with Landlock ABI 8).
//
// A [Spec] is plain data, the same on every kernel; [Apply] is where the
// kernel is asked. The package never sees a policy, an ipc channel or a
// broker: the launcher derives the Spec from the policy in the host and
// ships it to the init stage.
//
// # Threads
//
// Capabilities, no_new_privs, Landlock (before ABI 8) and a seccomp filter
// installed without TSYNC bind the calling thread only, and Go moves
// goroutines between threads. Apply must therefore run on a goroutine
// locked to its thread (runtime.LockOSThread), and that same thread must
// execve the worker: every other thread of the init stage ends at execve.
// [RestrictProcess], for a host that keeps running, restricts every thread
// at once instead.
//
// # Landlock
//
// Rules are "path beneath" rules on objects that exist when the ruleset is
// built: a rule on a directory covers everything beneath it, and no rule
// can take a right away below another. A ruleset derived from a policy is
// therefore at most as wide as the glob-free prefixes of its patterns, and
// deny rules cannot be expressed. Landlock is a backstop for what a worker
// does natively (execve above all, since the broker cannot serve it); the
// broker remains the exact check. Rights a kernel's ABI does not know are
// dropped with BestEffort and reported ([LandlockResult]).
package sandbox
