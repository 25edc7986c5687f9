package seccomp

import (
	"strings"
)

// The expectations below are written out independently of the catalogue in
// classify.go: they are the reviewed specification the filter is tested
// against (and the reference FuzzBuild compares with). A syscall added to the
// catalogue without a line here fails TestCatalogMatchesSpec.

func set(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}

var (
	specAlwaysBrokered = set(`open creat openat openat2 stat lstat newfstatat statx
		access faccessat faccessat2 readlink readlinkat chdir`)
	specOptional = set(`mkdir mkdirat rmdir unlink unlinkat rename renameat renameat2
		symlink symlinkat chmod fchmodat fchmodat2 truncate utimensat utimes utime futimesat
		statfs getxattr lgetxattr listxattr llistxattr`)
	specOptIn = set(`inotify_add_watch`)
	// Path syscalls answered with Profile.DenyErrno.
	specPathDenyErrno = set(`link linkat chown lchown fchownat setxattr lsetxattr
		removexattr lremovexattr setxattrat removexattrat file_setattr mknod mknodat
		execveat mq_open mq_unlink fanotify_mark`)
	// Path syscalls answered with ENOSYS: libc falls back to a brokered form.
	specPathENOSYS = set(`getxattrat listxattrat file_getattr`)
	// Path syscalls answered with EPERM (S-04, S-07, S-08, S-09).
	specPathEPERM = set(`mount umount2 pivot_root fsopen fsconfig fsmount fspick
		open_tree open_tree_attr move_mount mount_setattr chroot uselib swapon swapoff
		acct quotactl name_to_handle_at open_by_handle_at`)
	specDangerousEPERM = set(`bpf perf_event_open fanotify_init syslog quotactl_fd
		kexec_load kexec_file_load init_module finit_module delete_module
		ptrace process_vm_readv process_vm_writev pidfd_getfd kcmp setns`)
	specDangerousENOSYS = set(`io_uring_setup io_uring_enter io_uring_register userfaultfd
		keyctl add_key request_key statmount listmount listns clone3`)
	specSysV       = set(`shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl`)
	specRestricted = set(`fchown fsetxattr fremovexattr fchmod`)
	specAllowed    = set(`read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2
		close close_range lseek dup dup2 dup3 pipe pipe2 fstat fstatfs ftruncate fallocate
		fsync fdatasync sync syncfs sync_file_range fadvise64 readahead flock getdents getdents64
		sendfile splice tee vmsplice copy_file_range fgetxattr flistxattr getcwd umask fchdir
		mmap munmap mprotect mremap madvise brk msync mincore mlock mlock2 munlock mlockall
		munlockall membarrier pkey_mprotect pkey_alloc pkey_free mseal get_mempolicy set_mempolicy
		mbind map_shadow_stack execve
		fork vfork exit exit_group wait4 waitid getpid getppid gettid getuid geteuid getgid getegid
		getresuid getresgid getgroups getpgrp getpgid getsid setsid setpgid setuid setgid setreuid
		setregid setresuid setresgid setfsuid setfsgid setgroups capget capset set_tid_address
		set_robust_list get_robust_list rseq futex futex_waitv futex_wake futex_wait futex_requeue
		sched_yield sched_getaffinity sched_setaffinity sched_getparam sched_setparam
		sched_getscheduler sched_setscheduler sched_get_priority_max sched_get_priority_min
		sched_rr_get_interval sched_getattr sched_setattr getpriority setpriority ioprio_get
		ioprio_set getcpu uname sysinfo getrusage times getrlimit setrlimit arch_prctl restart_syscall
		rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigsuspend
		rt_sigqueueinfo rt_tgsigqueueinfo sigaltstack kill tkill tgkill pidfd_send_signal pidfd_open
		pause alarm signalfd signalfd4
		nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time getitimer setitimer
		timer_create timer_settime timer_gettime timer_getoverrun timer_delete timerfd_create
		timerfd_settime timerfd_gettime
		poll ppoll select pselect6 epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait
		epoll_pwait2 eventfd eventfd2 inotify_init inotify_init1 inotify_rm_watch
		connect accept accept4 bind listen sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg
		shutdown getsockname getpeername setsockopt getsockopt
		getrandom landlock_create_ruleset landlock_add_rule landlock_restrict_self
		uretprobe uprobe`)
	// Argument-checked; with all arguments zero they are allowed except
	// the socket calls (family 0 is AF_UNSPEC).
	specChecked = set(`clone unshare ioctl prctl personality fcntl seccomp memfd_create
		prlimit64 socket socketpair`)
	specWidenable = set(`personality fcntl`)

	// Every syscall that takes a pathname argument (a const char __user *
	// filename/pathname/path/name resolved through the VFS), from the
	// kernel's SYSCALL_DEFINEs, plus calls that reach files without one.
	// None may be allowed, except execve.
	specTakesPath = set(`open creat openat openat2 stat lstat newfstatat statx access faccessat
		faccessat2 readlink readlinkat chdir mkdir mkdirat rmdir unlink unlinkat rename renameat
		renameat2 symlink symlinkat chmod fchmodat fchmodat2 truncate utimensat utimes utime
		futimesat statfs getxattr lgetxattr listxattr llistxattr inotify_add_watch link linkat
		chown lchown fchownat setxattr lsetxattr removexattr lremovexattr setxattrat getxattrat
		listxattrat removexattrat file_getattr file_setattr mknod mknodat execveat mq_open
		mq_unlink fanotify_mark mount umount2 pivot_root fspick open_tree open_tree_attr
		move_mount mount_setattr chroot uselib swapon swapoff acct quotactl name_to_handle_at
		open_by_handle_at execve`)
)

// specZeroArgs is the action of the default Profile for name with every
// argument zero, and false for names the spec does not mention (default).
func specZeroArgs(name string, p Profile) (Action, bool) {
	denyErrno := p.DenyErrno
	if denyErrno == 0 {
		denyErrno = 13
	}
	for _, d := range p.Deny {
		if d.Name == name {
			if d.Kill {
				return ActKillProcess, true
			}
			if d.Errno == 0 {
				return ActErrno(1), true
			}
			return ActErrno(d.Errno), true
		}
	}
	has := func(list []string) bool {
		for _, n := range list {
			if n == name {
				return true
			}
		}
		return false
	}
	allowed := has(p.Allow) || has(p.UnsafeAllow)
	switch {
	case specAlwaysBrokered[name]:
		return ActNotify, true
	case specOptional[name]:
		if has(p.Disable) {
			return ActErrno(denyErrno), true
		}
		return ActNotify, true
	case specOptIn[name]:
		if has(p.Enable) {
			return ActNotify, true
		}
		return ActErrno(denyErrno), true
	case specPathDenyErrno[name]:
		return ActErrno(denyErrno), true
	case specPathEPERM[name]:
		return ActErrno(1), true
	case specPathENOSYS[name]:
		return ActErrno(38), true
	case specDangerousEPERM[name]:
		if has(p.UnsafeAllow) {
			return ActAllow, true
		}
		return ActErrno(1), true
	case specDangerousENOSYS[name]:
		if has(p.UnsafeAllow) {
			return ActAllow, true
		}
		return ActErrno(38), true
	case specSysV[name]:
		if allowed || p.SysVIPC {
			return ActAllow, true
		}
		return ActErrno(1), true
	case specRestricted[name]:
		if allowed {
			return ActAllow, true
		}
		return ActErrno(1), true
	case specAllowed[name]:
		return ActAllow, true
	case specChecked[name]:
		switch name {
		case "socket", "socketpair":
			return ActErrno(97), true
		}
		return ActAllow, true
	}
	if allowed {
		return ActAllow, true
	}
	return 0, false
}

// specAllowError reports whether allowing name must fail.
func specAllowError(name string, unsafe bool) bool {
	switch {
	case specAlwaysBrokered[name], specOptional[name], specOptIn[name],
		specPathDenyErrno[name], specPathEPERM[name], specPathENOSYS[name]:
		return true
	case specDangerousEPERM[name], specDangerousENOSYS[name]:
		return !unsafe
	case specChecked[name]:
		return !specWidenable[name]
	}
	return false
}

// specClass maps the spec lists onto classes.
func specClass(name string) Class {
	switch {
	case specAlwaysBrokered[name]:
		return ClassBrokered
	case specOptional[name]:
		return ClassOptional
	case specOptIn[name]:
		return ClassOptIn
	case specPathDenyErrno[name], specPathEPERM[name], specPathENOSYS[name]:
		return ClassPathDenied
	case specDangerousEPERM[name], specDangerousENOSYS[name]:
		return ClassDangerous
	case specSysV[name], specRestricted[name]:
		return ClassRestricted
	case specAllowed[name]:
		return ClassAllowed
	case specChecked[name]:
		return ClassChecked
	}
	return ClassDefault
}
