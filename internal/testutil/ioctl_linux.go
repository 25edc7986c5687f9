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

// FailIoctl makes ioctl(fd, request, ...) fail with errno on every fd, in
// every thread of this process, from now on and in every process it
// starts: a seccomp filter installed with TSYNC, after setting
// no_new_privs, like [FailSyscall]. The request is compared in its lower
// 32 bits, as the kernel truncates it (security.md R12, R49); other ioctls
// and calls of another architecture are left alone. Neither the filter nor
// no_new_privs can be undone: call it only in a child of
// [RunInSubprocess]. Each call stacks one more filter.
//
// It stands in for a kernel that does not know request: the kernel
// answers an unknown ioctl of a seccomp listener with EINVAL.
func FailIoctl(tb testing.TB, request uint32, errno unix.Errno) {
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
		// Offsets in struct seccomp_data: nr, arch, then args[6] from 16.
		// amd64 and arm64 are little-endian: the lower half of args[1]
		// comes first.
		offNr       = 0
		offArch     = 4
		offArg1Low  = 16 + 8*1
		skipToAllow = 1
	)
	prog := []unix.SockFilter{
		{Code: ldAbs, K: offArch},
		{Code: jeq, K: arch, Jt: 0, Jf: 5},
		{Code: ldAbs, K: offNr},
		{Code: jeq, K: unix.SYS_IOCTL, Jt: 0, Jf: 3},
		{Code: ldAbs, K: offArg1Low},
		{Code: jeq, K: request, Jt: 0, Jf: skipToAllow},
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
		tb.Fatalf("fail ioctl %#x with %v: thread %d, %v\n%s", request, errno, tid, err, st)
	}
}
