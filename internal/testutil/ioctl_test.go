//go:build linux

package testutil

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFailIoctl checks FailIoctl on TIOCINQ (FIONREAD): it fails with the errno
// given, also with bits above 32 set in the request (which the kernel
// ignores), while other ioctls on the same fd pass.
func TestFailIoctl(t *testing.T) {
	if !RunInSubprocess(t) {
		return
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := unix.IoctlGetInt(p[0], unix.TIOCINQ); err != nil {
		t.Fatalf("FIONREAD before the filter: %v", err)
	}
	FailIoctl(t, unix.TIOCINQ, unix.ENOTTY)
	if _, err := unix.IoctlGetInt(p[0], unix.TIOCINQ); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("FIONREAD: %v, want ENOTTY", err)
	}
	// A NULL argument: EFAULT from the kernel, ENOTTY from the filter.
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(p[0]), 1<<32|unix.TIOCINQ, 0); e != unix.ENOTTY {
		t.Errorf("FIONREAD|1<<32: %v, want ENOTTY (the filter compares the lower 32 bits)", e)
	}
	const fioclex = 0x5451 // FIOCLEX, asm-generic (amd64 and arm64)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(p[0]), fioclex, 0); e != 0 {
		t.Errorf("FIOCLEX: %v, want success (another request)", e)
	}
}
