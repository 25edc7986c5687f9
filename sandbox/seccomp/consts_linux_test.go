//go:build linux

package seccomp

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestConstants checks every kernel constant this package keeps against
// golang.org/x/sys/unix (amd64 and arm64 share these values; the test runs
// on whichever the machine is).
func TestConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"AUDIT_ARCH_X86_64", uint64(ArchAMD64), unix.AUDIT_ARCH_X86_64},
		{"AUDIT_ARCH_AARCH64", uint64(ArchARM64), unix.AUDIT_ARCH_AARCH64},
		{"AUDIT_ARCH_I386", auditArchI386, unix.AUDIT_ARCH_I386},
		{"AUDIT_ARCH_ARM", auditArchARM, unix.AUDIT_ARCH_ARM},

		{"SECCOMP_RET_KILL_PROCESS", uint64(ActKillProcess), unix.SECCOMP_RET_KILL_PROCESS},
		{"SECCOMP_RET_KILL_THREAD", uint64(ActKillThread), unix.SECCOMP_RET_KILL_THREAD},
		{"SECCOMP_RET_TRAP", uint64(ActTrap), unix.SECCOMP_RET_TRAP},
		{"SECCOMP_RET_ERRNO", uint64(ActErrno(0)), unix.SECCOMP_RET_ERRNO},
		{"SECCOMP_RET_USER_NOTIF", uint64(ActNotify), unix.SECCOMP_RET_USER_NOTIF},
		{"SECCOMP_RET_TRACE", uint64(ActTrace), unix.SECCOMP_RET_TRACE},
		{"SECCOMP_RET_LOG", uint64(ActLog), unix.SECCOMP_RET_LOG},
		{"SECCOMP_RET_ALLOW", uint64(ActAllow), unix.SECCOMP_RET_ALLOW},
		{"SECCOMP_RET_ACTION_FULL", retActionFull, unix.SECCOMP_RET_ACTION_FULL},
		{"SECCOMP_RET_DATA", retData, unix.SECCOMP_RET_DATA},
		{"SECCOMP_FILTER_FLAG_NEW_LISTENER", seccompFlagNewListen, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
		{"SECCOMP_FILTER_FLAG_SPEC_ALLOW", seccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},

		{"EPERM", errEPERM, uint64(unix.EPERM)},
		{"ENOENT", errENOENT, uint64(unix.ENOENT)},
		{"EACCES", errEACCES, uint64(unix.EACCES)},
		{"EINVAL", errEINVAL, uint64(unix.EINVAL)},
		{"ENOSYS", errENOSYS, uint64(unix.ENOSYS)},
		{"EAFNOSUPPORT", errEAFNOSUPPORT, uint64(unix.EAFNOSUPPORT)},

		{"CLONE_FS", cloneFS, unix.CLONE_FS},
		{"CLONE_FILES", cloneFiles, unix.CLONE_FILES},
		{"CLONE_SYSVSEM", cloneSysVSem, unix.CLONE_SYSVSEM},
		{"CLONE_NEWNS", cloneNewNS, unix.CLONE_NEWNS},
		{"CLONE_NEWCGROUP", cloneNewCgroup, unix.CLONE_NEWCGROUP},
		{"CLONE_NEWUTS", cloneNewUTS, unix.CLONE_NEWUTS},
		{"CLONE_NEWIPC", cloneNewIPC, unix.CLONE_NEWIPC},
		{"CLONE_NEWUSER", cloneNewUser, unix.CLONE_NEWUSER},
		{"CLONE_NEWPID", cloneNewPID, unix.CLONE_NEWPID},
		{"CLONE_NEWNET", cloneNewNet, unix.CLONE_NEWNET},
		{"CLONE_NEWTIME", cloneNewTime, unix.CLONE_NEWTIME},

		{"TIOCSTI", ioctlTIOCSTI, unix.TIOCSTI},
		{"TIOCLINUX", ioctlTIOCLINUX, unix.TIOCLINUX},
		{"FS_IOC_SETFLAGS", ioctlFSIOCSETFLAGS, unix.FS_IOC_SETFLAGS},
		// x/sys has no FS_IOC_FSSETXATTR: _IOW('X', 32, struct fsxattr), 28 bytes.
		{"FS_IOC_FSSETXATTR", ioctlFSIOCFSSETXATTR, 1<<30 | 28<<16 | 'X'<<8 | 32},

		{"PR_SET_DUMPABLE", prSetDumpable, unix.PR_SET_DUMPABLE},
		{"PR_SET_SECCOMP", prSetSeccomp, unix.PR_SET_SECCOMP},
		{"PR_SET_MM", prSetMM, unix.PR_SET_MM},
		{"PR_CAP_AMBIENT", prCapAmbient, unix.PR_CAP_AMBIENT},
		{"PR_CAP_AMBIENT_RAISE", prCapAmbientRaise, unix.PR_CAP_AMBIENT_RAISE},
		{"PR_SET_SPECULATION_CTRL", prSetSpeculationCtrl, unix.PR_SET_SPECULATION_CTRL},
		{"PR_SPEC_ENABLE", prSpecEnable, unix.PR_SPEC_ENABLE},
		{"PR_SET_PTRACER", prSetPtracer, unix.PR_SET_PTRACER},
		{"F_SETLEASE", fcntlSetLease, unix.F_SETLEASE},
		{"F_NOTIFY", fcntlNotify, unix.F_NOTIFY},
		{"MFD_EXEC", mfdExec, unix.MFD_EXEC},
		{"S_ISUID|S_ISGID|S_ISVTX", modeSetIDSticky, unix.S_ISUID | unix.S_ISGID | unix.S_ISVTX},

		{"AF_UNIX", afUnix, unix.AF_UNIX},
		{"AF_INET", afInet, unix.AF_INET},
		{"AF_INET6", afInet6, unix.AF_INET6},
		{"AF_NETLINK", afNetlink, unix.AF_NETLINK},
		{"SOCK_STREAM", sockStream, unix.SOCK_STREAM},
		{"SOCK_DGRAM", sockDgram, unix.SOCK_DGRAM},
		{"SOCK_RAW", sockRaw, unix.SOCK_RAW},
		{"SOCK_SEQPACKET", sockSeqpacket, unix.SOCK_SEQPACKET},
		{"NETLINK_ROUTE", netlinkRoute, unix.NETLINK_ROUTE},

		{"BPF_LD|BPF_W|BPF_ABS", opLdAbsW, unix.BPF_LD | unix.BPF_W | unix.BPF_ABS},
		{"BPF_ALU|BPF_AND|BPF_K", opAndK, unix.BPF_ALU | unix.BPF_AND | unix.BPF_K},
		{"BPF_JMP|BPF_JA", opJa, unix.BPF_JMP | unix.BPF_JA},
		{"BPF_JMP|BPF_JEQ|BPF_K", opJeqK, unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K},
		{"BPF_JMP|BPF_JGT|BPF_K", opJgtK, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K},
		{"BPF_JMP|BPF_JGE|BPF_K", opJgeK, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K},
		{"BPF_JMP|BPF_JSET|BPF_K", opJsetK, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K},
		{"BPF_RET|BPF_K", opRetK, unix.BPF_RET | unix.BPF_K},
		{"BPF_MAXINSNS", maxInsns, unix.BPF_MAXINSNS},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, x/sys/unix has %#x", c.name, c.got, c.want)
		}
	}
	// SOCK_TYPE_MASK: everything in type that is not a flag.
	if sockTypeMask&(unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK) != 0 || unix.SOCK_PACKET&^sockTypeMask != 0 {
		t.Error("SOCK_TYPE_MASK overlaps the type flags")
	}
	// CLONE_NEW* mask: every namespace flag clone(2) can carry.
	want := uint64(unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET)
	if cloneNewMask != want {
		t.Errorf("cloneNewMask = %#x, want %#x", cloneNewMask, want)
	}
}

// TestNativeTable checks the generated table against x/sys's numbers for
// the machine's own architecture.
func TestNativeTable(t *testing.T) {
	a, ok := NativeArch()
	if !ok {
		t.Skipf("GOARCH %s not supported", runtime.GOARCH)
	}
	for name, want := range map[string]int{
		"read": unix.SYS_READ, "openat": unix.SYS_OPENAT, "openat2": unix.SYS_OPENAT2,
		"newfstatat": unix.SYS_NEWFSTATAT, "statx": unix.SYS_STATX, "ioctl": unix.SYS_IOCTL,
		"clone": unix.SYS_CLONE, "clone3": unix.SYS_CLONE3, "seccomp": unix.SYS_SECCOMP,
		"io_uring_setup": unix.SYS_IO_URING_SETUP, "faccessat2": unix.SYS_FACCESSAT2,
		"prctl": unix.SYS_PRCTL, "socket": unix.SYS_SOCKET, "execveat": unix.SYS_EXECVEAT,
	} {
		if got, ok := a.Syscall(name); !ok || got != want {
			t.Errorf("%s = %d, %v; x/sys/unix has %d", name, got, ok, want)
		}
	}
	wantArch := map[string]Arch{"amd64": ArchAMD64, "arm64": ArchARM64}[runtime.GOARCH]
	if a != wantArch {
		t.Errorf("NativeArch = %v", a)
	}
}
