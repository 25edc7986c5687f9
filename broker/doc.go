// Package broker serves the seccomp user notifications of sandboxed workers:
// it reads each trapped file system call from the worker, resolves its path
// the way the kernel would for the worker, asks the policy's
// [policy.Matcher] and then performs the call itself, installing file
// descriptors with SECCOMP_IOCTL_NOTIF_ADDFD and SECCOMP_ADDFD_FLAG_SEND or
// answering with the call's result. Denials return one configured errno
// ([Options.DenyErrno], EACCES by default), the same for existing and
// missing names; errors of allowed operations are the kernel's.
//
// # Serving
//
// [Broker.Serve] owns one listener fd (one worker tree) and serves it with
// [Options.Threads] goroutines, each locked to its OS thread for life. Only
// one of them at a time holds the receiver role: it polls the listener and
// issues SECCOMP_IOCTL_NOTIF_RECV only after poll reported it readable. It
// hands the role on before handling its request when requests come from
// several threads; when they come from one thread in a row (which cannot
// send another until it is answered) it keeps the role and serves in a
// tight poll, RECV, handle, reply loop, and a watchdog hands the role on
// if one request takes long. The kernel counts pending
// notifications, so a RECV after POLLIN returns at once, with ENOENT if the
// task was killed in between; no goroutine is ever blocked inside RECV.
// That matters before Linux 6.11, where a RECV issued after the last task of
// the filter exited blocked forever (security.md R8). On 6.11 and later
// (measured on 6.18 by TestRecvAfterExit) a RECV blocked at that moment
// returns ENOENT, and poll reports POLLHUP as soon as the last task exits,
// before it is reaped. POLLHUP without POLLIN ends Serve; so does the
// cancellation of its context. The listener is registered with
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6) where the kernel has it.
//
// Each serving thread unshares its fs_struct and sets umask 0 (so created
// files get exactly the mode computed from the worker's umask), takes the
// worker's fsuid, fsgid and supplementary groups and clears its effective
// capabilities: the kernel checks DAC as the worker, also when the host runs
// as root (R39). A thread whose credentials changed is never returned to the
// Go scheduler: its goroutine never unlocks it, so it dies with it.
//
// CAP_SYS_PTRACE, where permitted, is made effective in three cases only:
// for the broker's own opens of the caller's /proc/<tid>/cwd, fd/N and
// fdinfo/N when the worker holds capabilities (the kernel then demands it);
// to retry an operation refused on an object in the caller's own
// /proc/self (a process always passes ptrace checks on itself, the broker
// does not); and for the whole thread when the worker runs under another
// uid ([Options.Uid]), since reading its memory needs it. It overrides no
// permission bits.
//
// # Requests
//
// For each notification the broker checks the architecture (ENOSYS if it is
// not the native one) and the pid (0: deny), copies each string argument
// once into its own memory (EFAULT and ENAMETOOLONG become the reply), and
// checks SECCOMP_IOCTL_NOTIF_ID_VALID before using what it read and after
// opening anything through /proc/<tid>. ENOENT from ID_VALID, ADDFD or SEND
// means the target is gone: the request is dropped and its fds closed. Every
// broker-side fd is counted against a limit derived from RLIMIT_NOFILE and
// closed on every path; a panic in one request becomes an EIO reply.
//
// # Resolution
//
// Anchors are fds: "/" for absolute paths, /proc/<tid>/cwd for AT_FDCWD and
// /proc/<tid>/fd/N for a dirfd (dirfds are 32-bit, as the kernel truncates
// them), judged by their canonical path. /proc/self and /proc/thread-self
// are rewritten to the worker's tgid and tid; /dev/fd/N, /dev/std*,
// /proc/self/fd/N and the worker's own /proc/<tgid>/fd/N take the worker's
// fd N and judge that object. Other magic links are never followed. The
// matcher sees the worker's own /proc/<tgid>/ as /proc/self/, and anything
// under the broker's own /proc/<pid>/ is denied.
//
// Fast path: a path without ".." is cleaned lexically and decided before any
// file system call; if allowed it is opened with openat2 and
// RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS, so the object is exactly the
// decided path. A symlink on the way (ELOOP) or a ".." sends the request to
// the slow path: openat2 with RESOLVE_NO_MAGICLINKS lets the kernel resolve
// it, and the decision is taken on the canonical path of the resulting fd.
// If that resolution fails, a component walker finds where, and the kernel's
// error is returned only if the policy lets the worker know about that
// place; otherwise the request is denied.
//
// Objects are opened by reopening the checked O_PATH fd through
// /proc/self/fd with the worker's flags plus O_NOCTTY and O_CLOEXEC (and
// O_NONBLOCK, cleared again unless asked for), and the (st_dev, st_ino) of
// both are compared. On the fast path (no "..", no symlink, outside /dev,
// /proc and /sys) the decided path is opened once with those flags instead
// and verified with fstat: only a regular file or directory is handed over,
// anything else goes the careful way (fastopen.go). FIFOs and sockets are
// denied, except a FIFO the worker holds an fd on, which it may open
// through /proc/self/fd/N and which waits for its other end as in the
// kernel (see Blocking operations); devices need a rule without wildcards. Creating calls resolve the parent and act on
// (parent fd, name) with O_NOFOLLOW; a dangling symlink never creates
// anything.
//
// O_PATH: SECCOMP_IOCTL_NOTIF_ADDFD cannot install an O_PATH file (the
// kernel takes the source with fget(), which refuses them), so an O_PATH
// open is answered with a read-only open of the object (O_DIRECTORY kept)
// and needs the read right, not stat alone. O_PATH|O_NOFOLLOW on a symlink,
// which has nothing to open, is denied.
//
// # Side effects and restarts
//
// Every call performs its side effect (create, truncate, mkdir, unlink,
// rename, chmod ...) once, in the broker. If the worker's thread gives up
// after that (a fatal signal; any signal unless the filter was installed
// with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV), the answer is lost: an fd
// is never installed (ADDFD|SEND fails with ENOENT and the broker closes
// its copy) but the effect stays, and a call restarted by SA_RESTART, a new
// notification, observes it: O_CREAT|O_EXCL and mkdir get EEXIST, unlink
// and rmdir ENOENT, a plain O_CREAT finds the file.
//
// # Emulated system calls
//
// open, creat, openat, openat2, stat, lstat, newfstatat, statx, access,
// faccessat, faccessat2, readlink, readlinkat, chdir (the only call answered
// with SECCOMP_USER_NOTIF_FLAG_CONTINUE, after checking the target is a
// directory the worker may stat), mkdir, mkdirat, rmdir, unlink, unlinkat,
// rename, renameat, renameat2, symlink, symlinkat, chmod, fchmodat,
// fchmodat2, truncate, utimensat, utimes, utime, futimesat, statfs,
// getxattr, lgetxattr, listxattr, llistxattr and inotify_add_watch, where
// the architecture has them. link, linkat, mknod, mknodat, the chown family
// and xattr writes are denied. Any other notified call gets ENOSYS.
//
// # Blocking operations
//
// Lookups are tried from the dentry cache first (openat2 RESOLVE_CACHED,
// Linux 5.12). A miss, a create or truncate, and a FIFO open waiting for
// its other end run in a blocking section on the serving thread, under
// caps taken before the operation starts: [Options.MaxBlockedPerWorker]
// per listener, [Options.MaxBlocked] per Broker and 2048 per process
// (Go aborts at 10,000 threads). A request that finds a cap full is
// answered EAGAIN at once, with nothing opened and nothing created. While
// a section lasts, a spare serving goroutine keeps the listener served,
// SECCOMP_IOCTL_NOTIF_ID_VALID is polled every 10 ms (a target that gave
// up frees the thread), and at [Options.BlockTimeout] the request is
// answered EINTR (security.md R26, R59, R60). A thread stuck in a hung
// file system stays counted against the caps until the kernel returns.
// Serving goroutines that serve request after request yield their P once
// a millisecond, so a flooded listener cannot keep another listener's
// goroutine waiting for one (R59). Metrics and audit events ([Event].Limit)
// show every cap and deadline that decided a reply.
//
// # Audit and metrics
//
// With [Options.Audit] set, every decision (or only denials) is reported as
// an [Event]; without it nothing is built. [Broker.Metrics] returns per
// system call counts and latency percentiles from lock-free histograms.
package broker
