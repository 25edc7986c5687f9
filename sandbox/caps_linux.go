//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Capabilities are the capability sets of a thread, one bit per
// capability (CAP_CHOWN is bit 0).
type Capabilities struct {
	Effective   uint64 `json:"effective"`
	Permitted   uint64 `json:"permitted"`
	Inheritable uint64 `json:"inheritable"`
	Bounding    uint64 `json:"bounding"`
	Ambient     uint64 `json:"ambient"`
}

// Empty reports whether every set is empty.
func (c Capabilities) Empty() bool {
	return c.Effective|c.Permitted|c.Inheritable|c.Bounding|c.Ambient == 0
}

// capLast returns the highest capability number the kernel knows, found
// with PR_CAPBSET_READ (EINVAL past the last one), so that no /proc read
// is needed.
func capLast() int {
	last := 0
	for c := 0; c < 64; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
			break
		}
		last = c
	}
	return last
}

// ReadCapabilities returns the calling thread's capability sets.
func ReadCapabilities() (Capabilities, error) {
	var c Capabilities
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return c, os.NewSyscallError("capget", err)
	}
	c.Effective = uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	c.Permitted = uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
	c.Inheritable = uint64(data[0].Inheritable) | uint64(data[1].Inheritable)<<32
	last := capLast()
	for i := 0; i <= last; i++ {
		if v, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0); err == nil && v == 1 {
			c.Bounding |= 1 << i
		}
		// PR_CAP_AMBIENT is Linux 4.3; before, there is no ambient set.
		if v, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(i), 0, 0); err == nil && v == 1 {
			c.Ambient |= 1 << i
		}
	}
	return c, nil
}

func hasCapability(capability int) bool {
	c, err := ReadCapabilities()
	return err == nil && c.Effective&(1<<capability) != 0
}

// dropCapabilities empties every capability set of the calling thread, so
// that the worker it execs has none, also when the host runs as root: not
// CAP_KILL, CAP_DAC_OVERRIDE, CAP_SYS_ADMIN … nor a way to regain them at
// execve (a root worker gets bounding ∩ file caps; the bounding set is
// empty). It returns whether the bounding set could be dropped: that needs
// CAP_SETPCAP, which an unprivileged init stage without a user namespace
// does not have; its bounding set is then full but unusable, because
// no_new_privs keeps execve from granting anything.
//
// All calls are raw, thread-scoped system calls (prctl, capset), never the
// all-threads wrappers of package syscall.
//
// Preconditions: locked thread, which then execs.
func dropCapabilities() (bounding bool, err error) {
	// The bounding set first: dropping from it needs CAP_SETPCAP, which
	// the capset below takes away.
	bounding = true
	last := capLast()
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EPERM) {
				bounding = false
				break
			}
			return false, fmt.Errorf("prctl(PR_CAPBSET_DROP, %d): %w", c, err)
		}
	}
	// Ambient capabilities survive execve of a file without capabilities.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return bounding, fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
	}
	// Effective, permitted and inheritable: empty. Nothing after this
	// step needs a capability: no_new_privs lets an unprivileged thread
	// enforce Landlock and install a seccomp filter.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return bounding, os.NewSyscallError("capset", err)
	}
	return bounding, nil
}
