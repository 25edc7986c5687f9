// Package seccomp builds the classic BPF seccomp filter a sandbox-exec
// worker runs under.
//
// The package is pure: it imports only the standard library and
// golang.org/x/net/bpf, has no build tags and builds on every OS, so a host
// can build (and fail early on) a filter anywhere, and its tests and fuzzers
// run anywhere. It keeps its own copies of the kernel constants it needs;
// a Linux-only test checks them against golang.org/x/sys/unix. Syscall
// numbers come from zsyscalls.go, generated from x/sys's tables for amd64
// and arm64 by internal/cmd/gensyscalls.
//
// # Layers
//
// A [Profile] is what the launcher knows about a worker: its architecture,
// the policy's `syscall` lines, which optional brokered syscalls are on, the
// network mode. [Profile.Filter] compiles it into a [Filter], a list of
// per-syscall rules ([Rule]) with argument conditions ([Cond]);
// [Filter.Assemble] turns
// that into instructions, resolving labels and long jumps, and refuses
// programs above the kernel's 4096 instructions ([ErrTooLong]).
// [Profile.Build] does both. [Disassemble] prints any program.
//
// # The filter
//
// In order (design.md section 2, R44):
//
//  1. the architecture must be Profile.Arch, else KILL_PROCESS (this also
//     kills int 0x80 calls on x86-64, which report AUDIT_ARCH_I386); on
//     amd64 a number with the x32 bit 0x40000000 is KILL_PROCESS too;
//  2. path syscalls: USER_NOTIF for the brokered ones, Profile.DenyErrno
//     for the rest (EPERM for the mount family and other privileged ones,
//     ENOSYS for new forms of brokered reads so libc falls back to those);
//     no syscall that takes a path is allowed, except execve (Landlock
//     decides what may run; the kernel cannot be made to use a brokered
//     path for it);
//  3. dangerous syscalls: a fixed errno, ENOSYS where programs probe and
//     fall back (io_uring, clone3, keys, userfaultfd, statmount), EPERM
//     elsewhere;
//  4. the baseline: what glibc programs, the Go runtime, Python, gcc,
//     shells, coreutils and Chromium use, ALLOW, with argument checks on
//     clone, unshare, ioctl, prctl, personality, fcntl, seccomp,
//     memfd_create, prlimit64, socket and socketpair;
//  5. everything else: Profile.Default, ERRNO(ENOSYS) unless set.
//
// [Classify] and [Catalog] expose which class each syscall is in and why;
// [Brokered] lists what the broker must serve; [Profile.Notified] what a
// given profile sends it.
//
// Dispatch is a balanced binary search over syscall numbers, merging runs of
// numbers with the same unconditional action, so a syscall costs about a
// dozen instructions whatever its number (see TestInstructionCounts), and
// on Linux 5.11 and later unconditionally allowed syscalls skip the filter
// altogether through the kernel's seccomp action cache.
//
// # Argument checks
//
// seccomp_data holds each argument as a 64-bit register; the kernel then
// truncates int and unsigned int arguments to their low 32 bits. A
// condition on such an argument compares the low 32 bits only ([Arg32]), so
// TIOCSTI|1<<32 is still TIOCSTI; pointers and unsigned long arguments
// compare all 64 bits as two 32-bit halves ([Arg64]). Both amd64 and arm64
// are little-endian: the low half of args[i] is at offset 16+8i.
//
// # Testing filters
//
// golang.org/x/net/bpf's VM runs these programs in tests, but it decodes
// 32-bit loads big-endian while the kernel loads host-endian words.
// [Data.VMInput] lays out seccomp_data for the VM (each 32-bit word
// big-endian at the offset where the little-endian kernel keeps it) and
// [Run] executes a program on a [Data].
package seccomp

//go:generate go run ../../internal/cmd/gensyscalls ../..
