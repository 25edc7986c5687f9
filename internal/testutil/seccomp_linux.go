//go:build linux

package testutil

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// Classic BPF over struct seccomp_data: nr at 0, arch at 4, args[6] from
// 16. amd64 and arm64 are little-endian: the lower half of an argument
// comes first.
const (
	bpfLdAbs   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeq     = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfRet     = unix.BPF_RET | unix.BPF_K
	offNr      = 0
	offArch    = 4
	offArg1Low = 16 + 8*1
)

// FailSyscall makes the system call nr fail with errno in every thread of
// this process, from now on and in every process it starts: a seccomp
// filter installed with TSYNC, after setting no_new_privs. Neither can be
// undone; call it only in a child of [RunInSubprocess]. Calls of another
// architecture (i386 on amd64) are left alone.
func FailSyscall(tb testing.TB, nr uintptr, errno unix.Errno) {
	tb.Helper()
	arch := testArch(tb)
	installFailFilter(tb, fmt.Sprintf("fail syscall %d with %v", nr, errno), []unix.SockFilter{
		{Code: bpfLdAbs, K: offArch},
		{Code: bpfJeq, K: arch, Jt: 0, Jf: 3},
		{Code: bpfLdAbs, K: offNr},
		{Code: bpfJeq, K: uint32(nr), Jt: 0, Jf: 1},
		{Code: bpfRet, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: bpfRet, K: unix.SECCOMP_RET_ALLOW},
	})
}

// FailIoctl makes ioctl(fd, request, ...) fail with errno on every fd, in
// every thread of this process, from now on and in every process it
// starts, like [FailSyscall]. The request is compared in its lower 32
// bits, as the kernel truncates it (security.md R12, R49); other ioctls
// and calls of another architecture are left alone. Call it only in a
// child of [RunInSubprocess]; each call stacks one more filter.
//
// It stands in for a kernel that does not know request: the kernel
// answers an unknown ioctl of a seccomp listener with EINVAL.
func FailIoctl(tb testing.TB, request uint32, errno unix.Errno) {
	tb.Helper()
	arch := testArch(tb)
	installFailFilter(tb, fmt.Sprintf("fail ioctl %#x with %v", request, errno), []unix.SockFilter{
		{Code: bpfLdAbs, K: offArch},
		{Code: bpfJeq, K: arch, Jt: 0, Jf: 5},
		{Code: bpfLdAbs, K: offNr},
		{Code: bpfJeq, K: unix.SYS_IOCTL, Jt: 0, Jf: 3},
		{Code: bpfLdAbs, K: offArg1Low},
		{Code: bpfJeq, K: request, Jt: 0, Jf: 1},
		{Code: bpfRet, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: bpfRet, K: unix.SECCOMP_RET_ALLOW},
	})
}

// testArch is the AUDIT_ARCH_* of this binary; it skips tb elsewhere.
func testArch(tb testing.TB) uint32 {
	tb.Helper()
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	tb.Skipf("no seccomp architecture for %s", runtime.GOARCH)
	return 0
}

// installFailFilter sets no_new_privs and installs prog on every thread
// (TSYNC); what names the filter in a failure.
func installFailFilter(tb testing.TB, what string, prog []unix.SockFilter) {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		tb.Fatalf("prctl(PR_SET_NO_NEW_PRIVS): %v", err)
	}
	// With TSYNC, a positive result is the thread that could not take
	// the filter (it has one of its own); nothing was installed then.
	if tid, err := sys.InstallFilter(prog, sys.FilterFlagTsync); err != nil || tid != 0 {
		st, _ := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/status")
		tb.Fatalf("%s: thread %d, %v\n%s", what, tid, err, st)
	}
}
