package seccomp

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
)

const (
	enosys = Action(0x50000 | 38)
	eperm  = Action(0x50000 | 1)
	eacces = Action(0x50000 | 13)
	enoent = Action(0x50000 | 2)
	eafno  = Action(0x50000 | 97)
	hi     = uint64(1) << 32
)

func TestCatalogMatchesSpec(t *testing.T) {
	for _, e := range Catalog() {
		if !knownSyscall(e.Name) {
			t.Errorf("%s: classified but no architecture has it", e.Name)
		}
		if got := specClass(e.Name); got != e.Class {
			t.Errorf("%s: catalogue says %v, spec says %v", e.Name, e.Class, got)
		}
		if e.Note == "" {
			t.Errorf("%s: no note", e.Name)
		}
	}
	for _, m := range []map[string]bool{specAlwaysBrokered, specOptional, specOptIn, specPathDenyErrno,
		specPathEPERM, specPathENOSYS, specDangerousEPERM, specDangerousENOSYS, specSysV, specRestricted, specAllowed, specChecked} {
		for n := range m {
			if Classify(n) == ClassDefault {
				t.Errorf("%s: in the spec but not classified", n)
			}
		}
	}
}

// TestPathSyscallsNeverAllowed: every syscall that takes a path is
// notified or denied (R45), execve being the one documented exception.
func TestPathSyscallsNeverAllowed(t *testing.T) {
	for n := range specTakesPath {
		c := Classify(n)
		switch {
		case n == "execve":
			if c != ClassAllowed {
				t.Errorf("execve: %v", c)
			}
		case c != ClassBrokered && c != ClassOptional && c != ClassOptIn && c != ClassPathDenied:
			t.Errorf("%s takes a path but is %v", n, c)
		}
	}
	// Names that look like path syscalls must be reviewed: either they are
	// in specTakesPath or listed here as taking no path. A new kernel
	// syscall with such a name fails this test until someone decides.
	notPath := set(`fstat fstatfs fchmod fchown fgetxattr fsetxattr flistxattr fremovexattr
		ftruncate fchdir pidfd_open perf_event_open fsopen fsmount fsconfig statmount listmount
		cachestat ustat kexec_load kexec_file_load sched_getattr sched_setattr quotactl_fd
		mq_timedsend mq_timedreceive mq_notify mq_getsetattr inotify_init inotify_init1
		inotify_rm_watch fanotify_init lsm_get_self_attr lsm_set_self_attr lookup_dcookie
		sysfs fdatasync`)
	pathish := []string{"open", "stat", "access", "link", "chmod", "chown", "xattr", "mount",
		"mkdir", "rmdir", "rename", "chdir", "chroot", "mknod", "utime", "truncate", "exec",
		"quota", "swap", "handle", "mq_", "fspick", "fsconfig", "getattr", "setattr", "acct",
		"uselib", "notify", "mark", "attr", "lookup"}
	for _, a := range arches {
		for _, n := range a.Syscalls() {
			for _, p := range pathish {
				if strings.Contains(n, p) && !specTakesPath[n] && !notPath[n] {
					t.Errorf("%s (%v): looks like a path syscall; classify it and add it to specTakesPath or notPath", n, a)
				}
			}
		}
	}
}

// TestEveryNumber runs the default filter for every number 0..1023 on both
// architectures, plus x32 and foreign-arch variants (S-01, S-02, S-21).
func TestEveryNumber(t *testing.T) {
	for _, a := range arches {
		t.Run(a.String(), func(t *testing.T) {
			p := Profile{Arch: a}
			m := newMachine(t, mustBuild(t, p))
			for nr := 0; nr < 1024; nr++ {
				name := a.SyscallName(nr)
				want, named := specZeroArgs(name, p)
				if !named {
					want = enosys
				}
				if got := m.run(Data{Nr: int32(nr), Arch: a}); got != want {
					t.Errorf("%d (%s): got %v, want %v", nr, name, got, want)
				}
				// x32: amd64 kills; arm64 has no x32 ABI, the number is just unknown.
				wantX32 := ActKillProcess
				if a == ArchARM64 {
					wantX32 = enosys
				}
				if got := m.run(Data{Nr: int32(nr | x32Bit), Arch: a}); got != wantX32 {
					t.Errorf("%d|x32 (%s): got %v, want %v", nr, name, got, wantX32)
				}
				for _, foreign := range []Arch{auditArchI386, auditArchARM, ArchAMD64 ^ ArchARM64 ^ a, 0, 0xffffffff} {
					if got := m.run(Data{Nr: int32(nr), Arch: foreign}); got != ActKillProcess {
						t.Errorf("%d on arch %v: got %v, want KILL_PROCESS", nr, foreign, got)
					}
				}
			}
			wantNeg := ActKillProcess
			if a == ArchARM64 {
				wantNeg = enosys
			}
			for _, nr := range []int32{-1, -2, 0x7fffffff, 0x40000000} {
				if got := m.run(Data{Nr: nr, Arch: a}); got != wantNeg {
					t.Errorf("nr %#x: got %v, want %v", uint32(nr), got, wantNeg)
				}
			}
			if got := m.run(Data{Nr: 0x3fffffff, Arch: a}); got != enosys {
				t.Errorf("nr 0x3fffffff: got %v, want default", got)
			}
		})
	}
}

// S-01/S-02: the exact syscalls of the escape tests.
func TestEscapeNumbers(t *testing.T) {
	m := newMachine(t, mustBuild(t, Profile{Arch: ArchAMD64}))
	for _, tc := range []struct {
		name string
		d    Data
	}{
		{"x32 openat", Data{Nr: 0x40000000 | 257, Arch: ArchAMD64}},
		{"int 0x80 open", Data{Nr: 5, Arch: auditArchI386}},
		{"int 0x80 openat", Data{Nr: 295, Arch: auditArchI386}},
	} {
		if got := m.run(tc.d); got != ActKillProcess {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}

type argCase struct {
	name string
	args []uint64
	want Action
}

func TestArgChecks(t *testing.T) {
	const (
		sigchld   = 17
		threadFl  = 0x3d0f00 // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
		tcgets    = 0x5401
		fionread  = 0x541b
		getflags  = 0x80086601
		f2fsProbe = 0xf50c
		ptr       = 0x7ffd_1234_5678
	)
	base := []argCase{
		// clone (R48): flags are lower_32_bits in the kernel.
		{"clone", []uint64{sigchld}, ActAllow},
		{"clone", []uint64{threadFl}, ActAllow},
		{"clone", []uint64{sigchld | 0x1000}, ActAllow}, // CLONE_PIDFD
		{"clone", []uint64{sigchld | hi}, ActAllow},
		{"clone", []uint64{0x80 | sigchld}, ActAllow}, // CSIGNAL bits, not CLONE_NEWTIME
		{"clone", []uint64{cloneNewUser | sigchld}, eperm},
		{"clone", []uint64{cloneNewUser | hi}, eperm},
		{"clone", []uint64{cloneNewNS}, eperm},
		{"clone", []uint64{cloneNewPID}, eperm},
		{"clone", []uint64{cloneNewNet}, eperm},
		{"clone", []uint64{cloneNewIPC}, eperm},
		{"clone", []uint64{cloneNewUTS}, eperm},
		{"clone", []uint64{cloneNewCgroup}, eperm},
		{"clone3", []uint64{ptr, 88}, enosys},
		// unshare
		{"unshare", []uint64{0}, ActAllow},
		{"unshare", []uint64{cloneFiles}, ActAllow},
		{"unshare", []uint64{cloneFS | cloneFiles | cloneSysVSem}, ActAllow},
		{"unshare", []uint64{cloneNewUser}, eperm},
		{"unshare", []uint64{cloneNewNS | cloneFS}, eperm},
		{"unshare", []uint64{cloneNewTime}, eperm},
		{"unshare", []uint64{cloneNewNet | hi}, eperm},
		// ioctl (R49, S-16): the request is 32 bits.
		{"ioctl", []uint64{0, tcgets}, ActAllow},
		{"ioctl", []uint64{0, fionread}, ActAllow},
		{"ioctl", []uint64{0, getflags}, ActAllow},
		{"ioctl", []uint64{3, f2fsProbe}, ActAllow},
		{"ioctl", []uint64{0, ioctlTIOCSTI}, eperm},
		{"ioctl", []uint64{0, ioctlTIOCSTI | hi}, eperm},
		{"ioctl", []uint64{hi, ioctlTIOCSTI | 0xdead<<32}, eperm},
		{"ioctl", []uint64{0, ioctlTIOCLINUX}, eperm},
		{"ioctl", []uint64{0, ioctlTIOCLINUX | hi}, eperm},
		{"ioctl", []uint64{3, ioctlFSIOCSETFLAGS}, eperm},
		{"ioctl", []uint64{3, ioctlFSIOCFSSETXATTR}, eperm},
		{"ioctl", []uint64{0, ioctlTIOCSTI + 1}, ActAllow},
		// prctl (R46, R51)
		{"prctl", []uint64{15, ptr}, ActAllow},         // PR_SET_NAME
		{"prctl", []uint64{0x53564d41, 0}, ActAllow},   // PR_SET_VMA
		{"prctl", []uint64{23, 0}, ActAllow},           // PR_CAPBSET_READ
		{"prctl", []uint64{38, 1}, ActAllow},           // PR_SET_NO_NEW_PRIVS
		{"prctl", []uint64{3}, ActAllow},               // PR_GET_DUMPABLE
		{"prctl", []uint64{21}, ActAllow},              // PR_GET_SECCOMP
		{"prctl", []uint64{prSetDumpable, 1}, eperm},   //
		{"prctl", []uint64{prSetDumpable | hi}, eperm}, // option is int
		{"prctl", []uint64{prSetPtracer, 0xffffffffffffffff}, eperm},
		{"prctl", []uint64{prSetMM, 1}, eperm},
		{"prctl", []uint64{prSetSeccomp, 2, ptr}, eperm},
		{"prctl", []uint64{prCapAmbient, prCapAmbientRaise, 21}, eperm},
		{"prctl", []uint64{prCapAmbient | hi, prCapAmbientRaise}, eperm},
		{"prctl", []uint64{prCapAmbient, 1, 21}, ActAllow},                  // IS_SET
		{"prctl", []uint64{prCapAmbient, 3, 21}, ActAllow},                  // LOWER
		{"prctl", []uint64{prCapAmbient, prCapAmbientRaise | hi}, ActAllow}, // unsigned long: kernel EINVAL
		{"prctl", []uint64{prSetSpeculationCtrl, 0, prSpecEnable}, eperm},
		{"prctl", []uint64{prSetSpeculationCtrl, 1, prSpecEnable}, eperm},
		{"prctl", []uint64{prSetSpeculationCtrl, 0, 4}, ActAllow}, // PR_SPEC_DISABLE
		{"prctl", []uint64{prSetSpeculationCtrl, 0, prSpecEnable | hi}, ActAllow},
		// personality (R51, S-12): unsigned int.
		{"personality", []uint64{0}, ActAllow},
		{"personality", []uint64{0xffffffff}, ActAllow},
		{"personality", []uint64{0xffffffff | 0xffffffff<<32}, ActAllow},
		{"personality", []uint64{hi}, ActAllow},
		{"personality", []uint64{0x0400000}, eperm}, // READ_IMPLIES_EXEC
		{"personality", []uint64{0x0040000}, eperm}, // ADDR_NO_RANDOMIZE
		{"personality", []uint64{8}, eperm},         // PER_LINUX32
		// fcntl (R51, S-19)
		{"fcntl", []uint64{3, 3}, ActAllow},       // F_GETFL
		{"fcntl", []uint64{3, 6, ptr}, ActAllow},  // F_SETLK
		{"fcntl", []uint64{3, 1033, 1}, ActAllow}, // F_ADD_SEALS
		{"fcntl", []uint64{3, 1025}, ActAllow},    // F_GETLEASE
		{"fcntl", []uint64{3, fcntlSetLease, 1}, eperm},
		{"fcntl", []uint64{3, fcntlSetLease | hi, 1}, eperm},
		{"fcntl", []uint64{3, fcntlNotify, 0x80000000}, eperm},
		// seccomp (R46)
		{"seccomp", []uint64{1, 0, ptr}, ActAllow},
		{"seccomp", []uint64{1, 1, ptr}, ActAllow}, // TSYNC
		{"seccomp", []uint64{1, hi, ptr}, ActAllow},
		{"seccomp", []uint64{2, 0, ptr}, ActAllow}, // GET_ACTION_AVAIL
		{"seccomp", []uint64{3, 0, ptr}, ActAllow}, // GET_NOTIF_SIZES
		{"seccomp", []uint64{1, seccompFlagNewListen, ptr}, eperm},
		{"seccomp", []uint64{1, seccompFlagNewListen | 0x11, ptr}, eperm},
		{"seccomp", []uint64{1, seccompFlagNewListen | hi, ptr}, eperm},
		{"seccomp", []uint64{1, seccompFlagSpecAllow, ptr}, eperm},
		// memfd_create (R52)
		{"memfd_create", []uint64{ptr, 3}, ActAllow},
		{"memfd_create", []uint64{ptr, 8}, ActAllow}, // MFD_NOEXEC_SEAL
		{"memfd_create", []uint64{ptr, mfdExec}, eperm},
		{"memfd_create", []uint64{ptr, mfdExec | 1}, eperm},
		// prlimit64 (R51, R53): pid_t narrow, new_limit pointer wide.
		{"prlimit64", []uint64{0, 7, ptr, 0}, ActAllow},
		{"prlimit64", []uint64{0, 7, 0, ptr}, ActAllow},
		{"prlimit64", []uint64{hi, 7, ptr, 0}, ActAllow},
		{"prlimit64", []uint64{1234, 7, 0, ptr}, ActAllow},
		{"prlimit64", []uint64{1234, 7, ptr, 0}, eperm},
		{"prlimit64", []uint64{1234, 7, hi, 0}, eperm},
		// restricted
		{"fchmod", []uint64{3, 0o644}, eperm},
		{"fchown", []uint64{3, 1000, 1000}, eperm},
		// socket, NetNone (S-13)
		{"socket", []uint64{afUnix, sockStream}, eafno},
		{"socket", []uint64{afInet, sockStream}, eafno},
		{"socket", []uint64{afNetlink, sockRaw, 0}, eafno},
		{"socketpair", []uint64{afUnix, sockStream, 0, ptr}, ActAllow},
		{"socketpair", []uint64{afUnix, sockSeqpacket | 0x80000, 0, ptr}, ActAllow},
		{"socketpair", []uint64{afUnix | hi, sockStream | hi, 0, ptr}, ActAllow},
		{"socketpair", []uint64{afUnix, sockDgram, 0, ptr}, eperm},
		{"socketpair", []uint64{afInet, sockStream, 0, ptr}, eafno},
	}
	netUnix := []argCase{
		{"socket", []uint64{afUnix, sockStream}, ActAllow},
		{"socket", []uint64{afUnix, sockDgram | 0x80000}, ActAllow},
		{"socket", []uint64{afUnix | hi, sockDgram}, ActAllow},
		{"socket", []uint64{afInet, sockStream}, eafno},
		{"socket", []uint64{afNetlink, sockRaw}, eafno},
		{"socketpair", []uint64{afUnix, sockDgram, 0, ptr}, ActAllow},
		{"socketpair", []uint64{afInet, sockDgram, 0, ptr}, eafno},
	}
	netInet := []argCase{
		{"socket", []uint64{afUnix, sockStream}, ActAllow},
		{"socket", []uint64{afInet, sockStream}, ActAllow},
		{"socket", []uint64{afInet, sockDgram | 0x80800}, ActAllow},
		{"socket", []uint64{afInet6, sockStream, 6}, ActAllow},
		{"socket", []uint64{afInet6, sockDgram | hi}, ActAllow},
		{"socket", []uint64{afInet, sockRaw, 1}, eperm},
		{"socket", []uint64{afInet6, sockRaw, 58}, eperm},
		{"socket", []uint64{afInet, 10}, eperm}, // SOCK_PACKET
		{"socket", []uint64{afInet, sockSeqpacket}, eperm},
		{"socket", []uint64{17, sockRaw}, eafno}, // AF_PACKET
		{"socket", []uint64{afNetlink, sockRaw, 0}, eafno},
		{"socket", []uint64{38, 5}, eafno}, // AF_ALG
		{"socket", []uint64{40, 1}, eafno}, // AF_VSOCK
		{"socket", []uint64{0, 1}, eafno},
	}
	netAll := []argCase{
		{"socket", []uint64{afInet, sockRaw, 1}, ActAllow},
		{"socket", []uint64{afInet6, sockStream}, ActAllow},
		{"socket", []uint64{afNetlink, sockRaw, netlinkRoute}, ActAllow},
		{"socket", []uint64{afNetlink, sockDgram | 0x80000, netlinkRoute}, ActAllow},
		{"socket", []uint64{afNetlink, sockRaw, 4}, eafno},  // NETLINK_SOCK_DIAG
		{"socket", []uint64{afNetlink, sockRaw, 15}, eafno}, // NETLINK_KOBJECT_UEVENT
		{"socket", []uint64{17, sockRaw}, eafno},
		{"socket", []uint64{38, 5}, eafno},
	}
	allowed := []argCase{
		{"fcntl", []uint64{3, fcntlSetLease, 1}, ActAllow}, // D-10 "leases allowed"
		{"personality", []uint64{0x0400000}, ActAllow},
		{"fchmod", []uint64{3, 0o755}, ActAllow},
		{"fchmod", []uint64{3, 0o4755}, eperm},
		{"fchmod", []uint64{3, 0o1777 | hi}, eperm},
		{"fchmod", []uint64{3, 0o644 | 0o4000<<32}, ActAllow},
		{"fchown", []uint64{3, 1000, 1000}, ActAllow},
		{"ioctl", []uint64{0, ioctlTIOCSTI}, eperm},
	}
	for _, a := range arches {
		for _, tc := range []struct {
			name  string
			p     Profile
			cases []argCase
		}{
			{"default", Profile{Arch: a}, base},
			{"net-unix", Profile{Arch: a, Net: NetUnix}, netUnix},
			{"net-inet", Profile{Arch: a, Net: NetInet}, netInet},
			{"net-all", Profile{Arch: a, Net: NetAll}, netAll},
			{"allowed", Profile{Arch: a, Allow: []string{"fcntl", "personality", "fchmod", "fchown"}}, allowed},
		} {
			t.Run(a.String()+"/"+tc.name, func(t *testing.T) {
				m := newMachine(t, mustBuild(t, tc.p))
				for _, c := range tc.cases {
					if got := m.call(a, c.name, c.args...); got != c.want {
						t.Errorf("%s(%#x): got %v, want %v", c.name, c.args, got, c.want)
					}
				}
			})
		}
	}
}

func TestProfileKnobs(t *testing.T) {
	type call struct {
		name string
		want Action
	}
	for _, a := range arches {
		for _, tc := range []struct {
			name  string
			p     Profile
			calls []call
		}{
			{"deny-errno", Profile{DenyErrno: 2, Disable: []string{"mkdirat"}}, []call{
				{"linkat", enoent}, {"mkdirat", enoent}, {"inotify_add_watch", enoent},
				{"mount", eperm}, {"openat", ActNotify}, {"unlinkat", ActNotify},
			}},
			{"disable", Profile{Disable: []string{"mkdirat", "unlinkat", "renameat2", "rename", "inotify_add_watch"}}, []call{
				{"mkdirat", eacces}, {"unlinkat", eacces}, {"renameat2", eacces},
				{"renameat", ActNotify}, {"openat", ActNotify}, {"inotify_add_watch", eacces},
			}},
			{"enable", Profile{Enable: []string{"inotify_add_watch", "mkdirat"}}, []call{
				{"inotify_add_watch", ActNotify}, {"mkdirat", ActNotify},
			}},
			{"allow", Profile{Allow: []string{"sethostname", "shmget", "io_setup", "arch_prctl"}}, []call{
				{"sethostname", ActAllow}, {"shmget", ActAllow}, {"shmat", eperm}, {"io_setup", ActAllow},
				{"reboot", enosys},
			}},
			{"sysv", Profile{SysVIPC: true}, []call{
				{"shmget", ActAllow}, {"shmat", ActAllow}, {"semget", ActAllow}, {"msgrcv", ActAllow},
			}},
			{"unsafe", Profile{UnsafeAllow: []string{"io_uring_setup", "io_uring_enter", "clone3", "sethostname"}}, []call{
				{"io_uring_setup", ActAllow}, {"io_uring_enter", ActAllow}, {"io_uring_register", enosys},
				{"clone3", ActAllow}, {"sethostname", ActAllow},
			}},
			{"deny", Profile{Deny: []Deny{{Name: "getpid"}, {Name: "openat", Errno: 2}, {Name: "ptrace", Kill: true}, {Name: "reboot", Errno: 22}}}, []call{
				{"getpid", eperm}, {"openat", enoent}, {"ptrace", ActKillProcess}, {"reboot", ActErrno(22)},
				{"newfstatat", ActNotify},
			}},
			{"default-kill", Profile{Default: ActKillProcess}, []call{{"reboot", ActKillProcess}, {"read", ActAllow}}},
			{"default-trap", Profile{Default: ActTrap}, []call{{"reboot", ActTrap}}},
			{"default-eperm", Profile{Default: ActErrno(1)}, []call{{"reboot", eperm}}},
		} {
			t.Run(a.String()+"/"+tc.name, func(t *testing.T) {
				p := tc.p
				p.Arch = a
				m := newMachine(t, mustBuild(t, p))
				for _, c := range tc.calls {
					if _, ok := a.Syscall(c.name); !ok {
						continue
					}
					if got := m.call(a, c.name); got != c.want {
						t.Errorf("%s: got %v, want %v", c.name, got, c.want)
					}
				}
			})
		}
	}
}

func TestProfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Profile
		want string
	}{
		{"allow path", Profile{Allow: []string{"openat"}}, "takes a path"},
		{"allow optional", Profile{Allow: []string{"mkdir"}}, "takes a path"},
		{"allow link", Profile{Allow: []string{"linkat"}}, "never allowed"},
		{"allow mount", Profile{Allow: []string{"mount"}}, "never allowed"},
		{"allow handle", Profile{Allow: []string{"open_by_handle_at"}}, "never allowed"},
		{"allow ptrace", Profile{Allow: []string{"ptrace"}}, "dangerous"},
		{"allow io_uring", Profile{Allow: []string{"io_uring_setup"}}, "unsafe"},
		{"allow clone", Profile{Allow: []string{"clone"}}, "namespaces"},
		{"allow seccomp", Profile{Allow: []string{"seccomp"}}, "listener"},
		{"allow prctl", Profile{Allow: []string{"prctl"}}, "PR_SET_SECCOMP"},
		{"allow ioctl", Profile{Allow: []string{"ioctl"}}, "TIOCSTI"},
		{"allow socket", Profile{Allow: []string{"socket"}}, "Profile.Net"},
		{"allow unshare", Profile{Allow: []string{"unshare"}}, "namespaces"},
		{"allow memfd", Profile{Allow: []string{"memfd_create"}}, "memfd"},
		{"unsafe path", Profile{UnsafeAllow: []string{"openat"}}, "takes a path"},
		{"unsafe seccomp", Profile{UnsafeAllow: []string{"seccomp"}}, "cannot be dropped"},
		{"unsafe chroot", Profile{UnsafeAllow: []string{"chroot"}}, "never allowed"},
		{"disable brokered", Profile{Disable: []string{"openat"}}, "always brokered"},
		{"disable read", Profile{Disable: []string{"read"}}, "not a brokered syscall"},
		{"enable read", Profile{Enable: []string{"read"}}, "not a brokered syscall"},
		{"enable and disable", Profile{Enable: []string{"mkdir"}, Disable: []string{"mkdir"}}, "both enabled and disabled"},
		{"allow and deny", Profile{Allow: []string{"sethostname"}, Deny: []Deny{{Name: "sethostname"}}}, "both allowed and denied"},
		{"deny twice", Profile{Deny: []Deny{{Name: "getpid"}, {Name: "getpid", Errno: 2}}}, "twice"},
		{"unknown allow", Profile{Allow: []string{"frobnicate"}}, "unknown syscall"},
		{"unknown deny", Profile{Deny: []Deny{{Name: "frobnicate"}}}, "unknown syscall"},
		{"unknown disable", Profile{Disable: []string{"frobnicate"}}, "unknown syscall"},
		{"pseudo", Profile{Allow: []string{"arch_specific_syscall"}}, "unknown syscall"},
		{"default allow", Profile{Default: ActAllow}, "default action"},
		{"default notify", Profile{Default: ActNotify}, "default action"},
		{"default log", Profile{Default: ActLog}, "default action"},
		{"default trace", Profile{Default: ActTrace}, "default action"},
		{"default errno 0", Profile{Default: ActErrno(0)}, "errno must be"},
		{"default errno big", Profile{Default: ActErrno(5000)}, "errno must be"},
		{"default garbage", Profile{Default: 0x12345678}, "default action"},
		{"deny errno big", Profile{DenyErrno: 4096}, "deny errno"},
		{"syscall deny errno big", Profile{Deny: []Deny{{Name: "getpid", Errno: 9999}}}, "errno 9999"},
		{"net", Profile{Net: 9}, "net mode"},
		{"arch", Profile{Arch: 0x1234}, "unsupported architecture"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, a := range arches {
				p := tc.p
				if p.Arch == 0 {
					p.Arch = a
				}
				_, err := p.Build()
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%v: got error %v, want one containing %q", a, err, tc.want)
				}
				if !strings.HasPrefix(err.Error(), "seccomp: build profile: ") {
					t.Errorf("error %q lacks the op prefix", err)
				}
			}
		})
	}
}

// Names of another architecture are ignored, so one policy fits both.
func TestProfileCrossArchNames(t *testing.T) {
	p := Profile{Arch: ArchARM64, Disable: []string{"rename", "mkdir"}, Allow: []string{"arch_prctl", "iopl"},
		Deny: []Deny{{Name: "time"}}}
	if _, err := p.Build(); err != nil {
		t.Fatal(err)
	}
	p.Arch = ArchAMD64
	m := newMachine(t, mustBuild(t, p))
	for _, c := range []struct {
		name string
		want Action
	}{{"rename", eacces}, {"mkdir", eacces}, {"iopl", ActAllow}, {"time", eperm}} {
		if got := m.call(ArchAMD64, c.name); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestZeroArchIsNative(t *testing.T) {
	native, ok := NativeArch()
	_, err := Profile{}.Build()
	if ok != (err == nil) {
		t.Fatalf("native %v/%v, Build error %v", native, ok, err)
	}
	if !ok {
		return
	}
	a, _ := Profile{Arch: native}.Build()
	b, _ := Profile{}.Build()
	if !slices.Equal(a, b) {
		t.Error("zero Arch builds a different program than NativeArch")
	}
}

func TestBrokered(t *testing.T) {
	for _, a := range arches {
		var want []string
		for _, n := range a.Syscalls() {
			if specAlwaysBrokered[n] || specOptional[n] || specOptIn[n] {
				want = append(want, n)
			}
		}
		got := Brokered(a)
		if !slices.Equal(got, want) {
			t.Errorf("%v: Brokered = %v, want %v", a, got, want)
		}
		if !sort.StringsAreSorted(got) {
			t.Errorf("%v: not sorted", a)
		}
	}
	if slices.Contains(Brokered(ArchARM64), "open") {
		t.Error("arm64 has no open")
	}
	if !slices.Contains(Brokered(ArchAMD64), "open") {
		t.Error("amd64 lost open")
	}
}

// C-45: under the compiled filter every syscall of R45 reaches the broker;
// disabled optional ones get EACCES with no notification.
func TestNotified(t *testing.T) {
	for _, a := range arches {
		p := Profile{Arch: a, Disable: []string{"mkdir", "mkdirat"}, Enable: []string{"inotify_add_watch"}}
		got, err := p.Notified()
		if err != nil {
			t.Fatal(err)
		}
		m := newMachine(t, mustBuild(t, p))
		for _, n := range Brokered(a) {
			want := !(n == "mkdir" || n == "mkdirat")
			if slices.Contains(got, n) != want {
				t.Errorf("%v %s: notified = %v, want %v", a, n, !want, want)
			}
			act := m.call(a, n)
			if want && act != ActNotify || !want && act != eacces {
				t.Errorf("%v %s: filter says %v", a, n, act)
			}
		}
	}
	if _, err := (Profile{Allow: []string{"openat"}}).Notified(); err == nil {
		t.Error("Notified accepted an invalid profile")
	}
}

func TestClassifyUnknown(t *testing.T) {
	for _, n := range []string{"", "frobnicate", "reboot", "sethostname"} {
		if c := Classify(n); c != ClassDefault {
			t.Errorf("%q: %v", n, c)
		}
	}
	for c := ClassDefault; c <= ClassChecked+1; c++ {
		if c.String() == "" {
			t.Errorf("class %d has no name", c)
		}
	}
}

func TestBuildErrorsWrap(t *testing.T) {
	_, err := Profile{Arch: ArchAMD64, Allow: []string{"openat"}}.Build()
	if err == nil || errors.Is(err, ErrTooLong) {
		t.Fatalf("got %v", err)
	}
}

// Build is deterministic: the same profile gives the same program, so a
// launcher can build in the parent and compare with what the child loads.
func TestBuildDeterministic(t *testing.T) {
	p := Profile{Arch: ArchAMD64, Net: NetInet, Allow: []string{"sethostname", "fchmod"},
		Deny: []Deny{{Name: "getpid"}, {Name: "reboot", Kill: true}}, Disable: []string{"mkdir", "rename"}}
	first := mustBuild(t, p)
	for i := 0; i < 20; i++ {
		if !slices.Equal(first, mustBuild(t, p)) {
			t.Fatal("two builds differ")
		}
	}
}
