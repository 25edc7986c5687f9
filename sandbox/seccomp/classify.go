package seccomp

import (
	"fmt"
	"sort"
	"sync"
)

// Class is how the filter treats a syscall before a Profile adjusts it.
type Class uint8

// Classes. Each syscall is in exactly one; a Profile.Deny entry overrides
// any of them.
const (
	// ClassDefault: not named by the filter; Profile.Default decides (S-21).
	ClassDefault Class = iota
	// ClassBrokered: takes a path; always USER_NOTIF to the broker.
	ClassBrokered
	// ClassOptional: takes a path; USER_NOTIF unless Profile.Disable names
	// it, then Profile.DenyErrno without a notification.
	ClassOptional
	// ClassOptIn: takes a path; Profile.DenyErrno unless Profile.Enable
	// names it, then USER_NOTIF.
	ClassOptIn
	// ClassPathDenied: takes a path (or reaches files without one) and is
	// never notified nor allowed: Profile.DenyErrno; EPERM for the mount
	// family and other privileged calls; ENOSYS for new forms of brokered
	// reads (getxattrat, listxattrat, file_getattr), so libc falls back.
	ClassPathDenied
	// ClassDangerous: a large kernel surface or a way around the broker;
	// a fixed errno. Only Profile.UnsafeAllow can allow it.
	ClassDangerous
	// ClassRestricted: EPERM unless Profile.Allow names it (SysV IPC also
	// with Profile.SysVIPC).
	ClassRestricted
	// ClassAllowed: the baseline; ALLOW.
	ClassAllowed
	// ClassChecked: the baseline with argument checks; some argument
	// forms get an errno.
	ClassChecked
)

// String returns the class name used in reports ("brokered", "checked", …).
func (c Class) String() string {
	switch c {
	case ClassDefault:
		return "default"
	case ClassBrokered:
		return "brokered"
	case ClassOptional:
		return "optional"
	case ClassOptIn:
		return "opt-in"
	case ClassPathDenied:
		return "path-denied"
	case ClassDangerous:
		return "dangerous"
	case ClassRestricted:
		return "restricted"
	case ClassAllowed:
		return "allowed"
	case ClassChecked:
		return "checked"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Entry describes one classified syscall.
type Entry struct {
	Name  string
	Class Class
	// Errno is what the class answers when it denies: for path classes 0
	// means Profile.DenyErrno; for ClassChecked it is the errno of the
	// denied argument forms (0 when it depends on the Profile).
	Errno uint16
	Note  string
}

// entry is the catalogue's internal form.
type entry struct {
	class Class
	errno uint16
	note  string
	// widen: for ClassChecked, Profile.Allow drops the argument checks.
	widen bool
	// why: for ClassChecked without widen, why Allow is refused.
	why string
	// rule builds the argument-checked rule (ClassChecked, and
	// ClassRestricted syscalls that keep a check once allowed).
	rule func(p *Profile) Rule
	// sysv marks the SysV IPC calls Profile.SysVIPC allows.
	sysv bool
}

// catalog maps each classified syscall to its entry. It is built on first
// use rather than at package init (some 300 entries and closures), since
// most processes that link this package never consult it.
var catalog = sync.OnceValue(buildCatalog)

// catalogBuilder is the catalogue under construction.
type catalogBuilder map[string]*entry

func (c catalogBuilder) def(class Class, errno uint16, note string, names ...string) {
	for _, n := range names {
		if _, dup := c[n]; dup {
			panic("seccomp: " + n + " classified twice")
		}
		c[n] = &entry{class: class, errno: errno, note: note}
	}
}

func (c catalogBuilder) checked(name string, errno uint16, note string, rule func(p *Profile) Rule) *entry {
	c.def(ClassChecked, errno, note, name)
	e := c[name]
	e.rule = rule
	return e
}

func buildCatalog() map[string]*entry {
	c := catalogBuilder{}
	def, checked := c.def, c.checked
	// Path syscalls (R45). Every syscall that takes a pathname is in one
	// of the next four groups, except execve (allowed below).
	def(ClassBrokered, 0, "path: brokered (R45)",
		"open", "creat", "openat", "openat2",
		"stat", "lstat", "newfstatat", "statx",
		"access", "faccessat", "faccessat2",
		"readlink", "readlinkat")
	def(ClassBrokered, 0, "path: brokered; the broker checks stat right and answers CONTINUE, the one exception (R16)",
		"chdir")
	def(ClassOptional, 0, "path: brokered unless disabled (R42, R45)",
		"mkdir", "mkdirat", "rmdir", "unlink", "unlinkat",
		"rename", "renameat", "renameat2", "symlink", "symlinkat",
		"chmod", "fchmodat", "fchmodat2", "truncate",
		"utimensat", "utimes", "utime", "futimesat",
		"statfs", "getxattr", "lgetxattr", "listxattr", "llistxattr")
	def(ClassOptIn, 0, "path: brokered only when enabled (R45)",
		"inotify_add_watch")
	def(ClassPathDenied, 0, "path: never allowed; a second name, owner or xattr the broker does not grant (R42)",
		"link", "linkat", "chown", "lchown", "fchownat",
		"setxattr", "lsetxattr", "removexattr", "lremovexattr",
		"setxattrat", "removexattrat", "file_setattr")
	def(ClassPathDenied, errENOSYS, "path: newer form of a brokered read; ENOSYS makes libc fall back to getxattr, listxattr or an ioctl on a brokered fd (R22)",
		"getxattrat", "listxattrat", "file_getattr")
	def(ClassPathDenied, 0, "path: device nodes and FIFOs are never created (P-40)",
		"mknod", "mknodat")
	def(ClassPathDenied, 0, "path: execution of an fd or a path the kernel would re-read; fexecve is not supported (R52)",
		"execveat")
	def(ClassPathDenied, 0, "path: POSIX message queue names",
		"mq_open", "mq_unlink")
	def(ClassPathDenied, 0, "path: needs an fanotify fd, which fanotify_init denies",
		"fanotify_mark")
	def(ClassPathDenied, errEPERM, "mount family: changes what paths mean (R47, S-07)",
		"mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount",
		"fspick", "open_tree", "open_tree_attr", "move_mount", "mount_setattr")
	def(ClassPathDenied, errEPERM, "path: privileged (R47, S-08, S-09)",
		"chroot", "uselib", "swapon", "swapoff", "acct", "quotactl")
	def(ClassPathDenied, errEPERM, "file handles reach files without a brokered path (R47, S-04)",
		"name_to_handle_at", "open_by_handle_at")

	// Dangerous (R47). ENOSYS where programs probe and fall back.
	def(ClassDangerous, errENOSYS, "io_uring: opens files without a trapped syscall (R47, S-03)",
		"io_uring_setup", "io_uring_enter", "io_uring_register")
	def(ClassDangerous, errENOSYS, "userfaultfd: stalls kernel reads of worker memory (D-09)",
		"userfaultfd")
	def(ClassDangerous, errENOSYS, "key management: large kernel surface (R47)",
		"keyctl", "add_key", "request_key")
	def(ClassDangerous, errENOSYS, "mount and namespace listing: host information (S-07)",
		"statmount", "listmount", "listns")
	def(ClassDangerous, errENOSYS, "clone3 keeps its flags in memory BPF cannot read, so CLONE_NEW* cannot be checked; glibc falls back to clone on ENOSYS (R48, crbug 1213452)",
		"clone3")
	def(ClassDangerous, errEPERM, "large kernel surface (R47)",
		"bpf", "perf_event_open", "fanotify_init", "syslog", "quotactl_fd")
	def(ClassDangerous, errEPERM, "kernel code loading (R47)",
		"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module")
	def(ClassDangerous, errEPERM, "reaches other processes' memory, fds or namespaces (R47, S-10)",
		"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp", "setns")

	// Restricted: EPERM unless the policy allows them.
	def(ClassRestricted, errEPERM, "SysV IPC: global keys reach the host's segments unless an IPC namespace is used (R53, S-18)",
		"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
		"msgget", "msgsnd", "msgrcv", "msgctl")
	for _, n := range []string{"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl"} {
		c[n].sysv = true
	}
	def(ClassRestricted, errEPERM, "metadata change through an fd, which may be a read-only brokered fd; Landlock does not see it (R42, R56)",
		"fchown", "fsetxattr", "fremovexattr")
	def(ClassRestricted, errEPERM, "mode change through an fd, which may be a read-only brokered fd (R42, R56); when allowed, set-id and sticky bits still get EPERM (R38)",
		"fchmod")
	c["fchmod"].rule = func(*Profile) Rule {
		return Rule{Cases: []Case{{When: []Cond{Arg32(1).AnySet(modeSetIDSticky)}, Action: ActErrno(errEPERM)}}, Action: ActAllow}
	}

	// Baseline.
	def(ClassAllowed, 0, "fd I/O",
		"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
		"preadv2", "pwritev2", "close", "close_range", "lseek", "dup", "dup2", "dup3",
		"pipe", "pipe2", "fstat", "fstatfs", "ftruncate", "fallocate", "fsync", "fdatasync",
		"sync", "syncfs", "sync_file_range", "fadvise64", "readahead", "flock",
		"getdents", "getdents64", "sendfile", "splice", "tee", "vmsplice", "copy_file_range",
		"fgetxattr", "flistxattr", "getcwd", "umask")
	def(ClassAllowed, 0, "fd-relative cwd; later relative paths are judged by where the cwd really is (R16, R30)",
		"fchdir")
	def(ClassAllowed, 0, "memory",
		"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "msync", "mincore",
		"mlock", "mlock2", "munlock", "mlockall", "munlockall", "membarrier",
		"pkey_mprotect", "pkey_alloc", "pkey_free", "mseal",
		"get_mempolicy", "set_mempolicy", "mbind", "map_shadow_stack")
	// execve takes a path but is allowed: the kernel reads the path and
	// the image itself, so a broker cannot open it on the worker's behalf.
	// Landlock's EXECUTE right is what limits it.
	def(ClassAllowed, 0, "execve cannot be brokered (the kernel reads the path and the new image itself); Landlock's EXECUTE right decides what runs, and no_new_privs stops set-id gains (design 1, R54)",
		"execve")
	def(ClassAllowed, 0, "processes and threads; calls naming another process reach only the worker's pid namespace (R53)",
		"fork", "vfork", "exit", "exit_group", "wait4", "waitid",
		"getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid",
		"getresuid", "getresgid", "getgroups", "getpgrp", "getpgid", "getsid", "setsid", "setpgid",
		"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
		"setfsuid", "setfsgid", "setgroups", "capget", "capset",
		"set_tid_address", "set_robust_list", "get_robust_list", "rseq",
		"futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
		"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
		"sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
		"sched_rr_get_interval", "sched_getattr", "sched_setattr",
		"getpriority", "setpriority", "ioprio_get", "ioprio_set", "getcpu",
		"uname", "sysinfo", "getrusage", "times", "getrlimit", "arch_prctl", "restart_syscall")
	def(ClassAllowed, 0, "resource limits of the caller: raising a hard limit needs CAP_SYS_RESOURCE, which the worker must not have (R51)",
		"setrlimit")
	def(ClassAllowed, 0, "signals; targets are confined by the pid namespace or Landlock's signal scope (R53)",
		"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
		"rt_sigsuspend", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack",
		"kill", "tkill", "tgkill", "pidfd_send_signal", "pidfd_open", "pause", "alarm",
		"signalfd", "signalfd4")
	def(ClassAllowed, 0, "time and timers",
		"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
		"getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
		"timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime")
	def(ClassAllowed, 0, "polling and event fds",
		"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
		"epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
		"inotify_init", "inotify_init1", "inotify_rm_watch")
	def(ClassAllowed, 0, "socket operations; which sockets exist is decided at socket() and socketpair() (R50)",
		"connect", "accept", "accept4", "bind", "listen", "sendto", "recvfrom", "sendmsg", "recvmsg",
		"sendmmsg", "recvmmsg", "shutdown", "getsockname", "getpeername", "setsockopt", "getsockopt")
	def(ClassAllowed, 0, "x86 uprobe return paths: the kernel accepts them only from its own trampoline (else SIGILL), and blocking them makes a uprobe placed on the worker crash it",
		"uretprobe", "uprobe")
	def(ClassAllowed, 0, "misc; Landlock can only restrict the caller further",
		"getrandom", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self")

	// Baseline with argument checks.
	checked("clone", errEPERM, "any CLONE_NEW* flag in the low 32 bits (the kernel uses lower_32_bits) → EPERM (R48)",
		func(*Profile) Rule {
			return Rule{Cases: []Case{{When: []Cond{Arg32(0).AnySet(cloneNewMask)}, Action: ActErrno(errEPERM)}}, Action: ActAllow}
		}).why = "an unconditional clone would let the worker create namespaces (R48)"
	checked("unshare", errEPERM, "only CLONE_FS, CLONE_FILES and CLONE_SYSVSEM; any namespace → EPERM (R48)",
		func(*Profile) Rule {
			return Rule{Cases: []Case{{When: []Cond{Arg32(0).AnySet(0xffffffff &^ unshareOK)}, Action: ActErrno(errEPERM)}}, Action: ActAllow}
		}).why = "an unconditional unshare would let the worker create namespaces (R48)"
	checked("ioctl", errEPERM, "request compared as 32 bits (unsigned int): TIOCSTI, TIOCLINUX (tty input injection) and FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR (inode flags through read-only fds) → EPERM (R49)",
		func(*Profile) Rule {
			var cs []Case
			for _, req := range []uint64{ioctlTIOCSTI, ioctlTIOCLINUX, ioctlFSIOCSETFLAGS, ioctlFSIOCFSSETXATTR} {
				cs = append(cs, Case{When: []Cond{Arg32(1).Eq(req)}, Action: ActErrno(errEPERM)})
			}
			return Rule{Cases: cs, Action: ActAllow}
		}).why = "TIOCSTI and TIOCLINUX inject input into the host's terminal (R49)"
	checked("prctl", errEPERM, "PR_SET_DUMPABLE, PR_SET_PTRACER, PR_SET_MM, PR_SET_SECCOMP, PR_CAP_AMBIENT_RAISE, PR_SET_SPECULATION_CTRL enable → EPERM (R46, R51)",
		func(*Profile) Rule {
			deny := ActErrno(errEPERM)
			var cs []Case
			for _, opt := range []uint64{prSetDumpable, prSetPtracer, prSetMM, prSetSeccomp} {
				cs = append(cs, Case{When: []Cond{Arg32(0).Eq(opt)}, Action: deny})
			}
			cs = append(cs,
				// arg2 and arg3 are unsigned long: compared wide, as the kernel does.
				Case{When: []Cond{Arg32(0).Eq(prCapAmbient), Arg64(1).Eq(prCapAmbientRaise)}, Action: deny},
				Case{When: []Cond{Arg32(0).Eq(prSetSpeculationCtrl), Arg64(2).Eq(prSpecEnable)}, Action: deny})
			return Rule{Cases: cs, Action: ActAllow}
		}).why = "prctl(PR_SET_SECCOMP) and PR_SET_PTRACER/PR_SET_DUMPABLE undo the sandbox (R46, R51)"
	checked("personality", errEPERM, "only PER_LINUX (0) and the query 0xffffffff; READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE … → EPERM (R51, S-12)",
		func(*Profile) Rule {
			return Rule{Cases: []Case{
				{When: []Cond{Arg32(0).Eq(personalityLinux)}, Action: ActAllow},
				{When: []Cond{Arg32(0).Eq(personalityQuery)}, Action: ActAllow},
			}, Action: ActErrno(errEPERM)}
		}).widen = true
	checked("fcntl", errEPERM, "F_SETLEASE and F_NOTIFY → EPERM: a lease stalls other openers, the broker among them (R51, S-19)",
		func(*Profile) Rule {
			return Rule{Cases: []Case{
				{When: []Cond{Arg32(1).Eq(fcntlSetLease)}, Action: ActErrno(errEPERM)},
				{When: []Cond{Arg32(1).Eq(fcntlNotify)}, Action: ActErrno(errEPERM)},
			}, Action: ActAllow}
		}).widen = true
	checked("seccomp", errEPERM, "flags with SECCOMP_FILTER_FLAG_NEW_LISTENER (a listener of the worker's own would answer CONTINUE once ours is gone) or SPEC_ALLOW → EPERM; other filters can only restrict (R46)",
		func(*Profile) Rule {
			return Rule{Cases: []Case{
				{When: []Cond{Arg32(1).AnySet(seccompFlagNewListen | seccompFlagSpecAllow)}, Action: ActErrno(errEPERM)},
			}, Action: ActAllow}
		}).why = "a listener installed by the worker could answer CONTINUE to every file syscall (R46)"
	checked("memfd_create", errEPERM, "MFD_EXEC → EPERM: Landlock cannot see memfd execution (R52); vm.memfd_noexec closes the flagless case",
		func(*Profile) Rule {
			return Rule{Cases: []Case{
				{When: []Cond{Arg32(1).AnySet(mfdExec)}, Action: ActErrno(errEPERM)},
			}, Action: ActAllow}
		}).why = "executable memfds bypass Landlock's EXECUTE right (R52)"
	checked("prlimit64", errEPERM, "the caller's own limits (pid 0) or a read of another's (new_limit NULL); setting another process's limits → EPERM (R51, R53)",
		func(*Profile) Rule {
			return Rule{Cases: []Case{
				{When: []Cond{Arg32(0).Eq(0)}, Action: ActAllow},
				{When: []Cond{Arg64(2).Eq(0)}, Action: ActAllow},
			}, Action: ActErrno(errEPERM)}
		}).why = "an unconditional prlimit64 sets the limits of other processes of the same user (R53)"
	checked("socket", 0, "family and type by Profile.Net; other families → EAFNOSUPPORT, raw and other types → EPERM (R50, S-13)",
		socketRule).why = "which sockets a worker may create is set by Profile.Net (R50)"
	checked("socketpair", 0, "AF_UNIX only; with Net = NetNone only SOCK_STREAM and SOCK_SEQPACKET, whose sendmsg ignores a destination address (R50)",
		socketpairRule).why = "which sockets a worker may create is set by Profile.Net (R50)"
	return c
}

// socketRule is socket(2) under p.Net. family, type and protocol are int.
// Cases that test one word are kept together so consecutive comparisons
// share a load.
func socketRule(p *Profile) Rule {
	noFamily := ActErrno(errEAFNOSUPPORT)
	family := Arg32(0)
	typ := func(t uint64) Cond { return Arg32(1).MaskedEq(sockTypeMask, t) }
	allow := func(c ...Cond) Case { return Case{When: c, Action: ActAllow} }
	switch p.Net {
	case NetUnix:
		return Rule{Cases: []Case{allow(family.Eq(afUnix))}, Action: noFamily}
	case NetInet:
		return Rule{Cases: []Case{
			allow(family.Eq(afUnix)),
			{When: []Cond{family.Ne(afInet), family.Ne(afInet6)}, Action: noFamily},
			allow(typ(sockStream)),
			allow(typ(sockDgram)),
		}, Action: ActErrno(errEPERM)} // SOCK_RAW, SOCK_PACKET, …
	case NetAll:
		return Rule{Cases: []Case{
			allow(family.Eq(afUnix)),
			allow(family.Eq(afInet)),
			allow(family.Eq(afInet6)),
			allow(family.Eq(afNetlink), Arg32(2).Eq(netlinkRoute)),
		}, Action: noFamily}
	}
	return Rule{Action: noFamily} // NetNone
}

// socketpairRule is socketpair(2) under p.Net. Only AF_UNIX has pairs.
// A datagram pair would let sendto/sendmsg name any bound AF_UNIX socket
// (/dev/log, a D-Bus or X11 socket) as destination; stream and seqpacket
// sockets ignore or refuse a destination once connected.
func socketpairRule(p *Profile) Rule {
	notUnix := Case{When: []Cond{Arg32(0).Ne(afUnix)}, Action: ActErrno(errEAFNOSUPPORT)}
	if p.Net != NetNone {
		return Rule{Cases: []Case{notUnix}, Action: ActAllow}
	}
	return Rule{Cases: []Case{
		notUnix,
		{When: []Cond{Arg32(1).MaskedEq(sockTypeMask, sockStream)}, Action: ActAllow},
		{When: []Cond{Arg32(1).MaskedEq(sockTypeMask, sockSeqpacket)}, Action: ActAllow},
	}, Action: ActErrno(errEPERM)}
}

// Classify returns the class of the named syscall (ClassDefault for names
// the filter does not name, or does not know).
func Classify(name string) Class {
	if e, ok := catalog()[name]; ok {
		return e.class
	}
	return ClassDefault
}

// Catalog returns every classified syscall, sorted by name. Names may exist
// on one architecture only (open on amd64, for instance).
func Catalog() []Entry {
	cat := catalog()
	out := make([]Entry, 0, len(cat))
	for n, e := range cat {
		out = append(out, Entry{Name: n, Class: e.class, Errno: e.errno, Note: e.note})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Brokered returns the syscalls of a the broker must be ready to serve,
// sorted: the always-brokered ones, the optional ones (on unless disabled)
// and the opt-in ones (inotify_add_watch). Which of them a given Profile
// notifies is [Profile.Notified].
func Brokered(a Arch) []string {
	var out []string
	for _, n := range a.Syscalls() {
		switch Classify(n) {
		case ClassBrokered, ClassOptional, ClassOptIn:
			out = append(out, n)
		}
	}
	return out
}
