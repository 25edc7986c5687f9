//go:build linux

package testutil

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// FailSyscall makes the system call nr fail with errno in every thread of
// this process, from now on and in every process it starts: a seccomp
// filter installed with TSYNC, after setting no_new_privs. Neither can be
// undone; call it only in a child of [RunInSubprocess]. Calls of another architecture (i386 on amd64) are
// left alone.
func FailSyscall(tb testing.TB, nr uintptr, errno unix.Errno) {
	tb.Helper()
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		tb.Skipf("no seccomp architecture for %s", runtime.GOARCH)
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ldAbs, K: 4}, // seccomp_data.arch
		{Code: jeq, K: arch, Jt: 0, Jf: 3},
		{Code: ldAbs, K: 0}, // seccomp_data.nr
		{Code: jeq, K: uint32(nr), Jt: 0, Jf: 1},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		tb.Fatalf("prctl(PR_SET_NO_NEW_PRIVS): %v", err)
	}
	// With TSYNC, a positive result is the thread that could not take
	// the filter (it has one of its own); nothing was installed then.
	if tid, err := sys.InstallFilter(prog, sys.FilterFlagTsync); err != nil || tid != 0 {
		st, _ := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/status")
		tb.Fatalf("fail syscall %d with %v: thread %d, %v\n%s", nr, errno, tid, err, st)
	}
}
