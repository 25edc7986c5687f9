//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// Rlimit is one resource limit, applied with prlimit so that Go's own
// RLIMIT_NOFILE handling (it raises the soft limit at start and restores
// the original at exec) cannot undo it.
type Rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// Spec is what the init stage applies to itself before it execs the worker.
type Spec struct {
	// Rlimits are set first, in order.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// DropCapabilities empties every capability set of the thread (bounding
	// and ambient included, as far as the thread may) before no_new_privs.
	DropCapabilities bool `json:"drop_capabilities,omitempty"`
	// Landlock, if not nil, restricts the thread with a Landlock ruleset.
	Landlock *Landlock `json:"landlock,omitempty"`
	// Filter is the seccomp program (classic BPF), installed last with
	// SECCOMP_FILTER_FLAG_NEW_LISTENER. It must not be empty.
	Filter Program `json:"filter"`
	// WaitKillableRecv adds SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux
	// 5.19): once the broker has received a request, only a fatal signal
	// interrupts the worker's call, so SA_RESTART handlers do not make the
	// broker perform side effects twice (security.md R24).
	WaitKillableRecv bool `json:"wait_killable_recv,omitempty"`
}

// Result tells what Apply did.
type Result struct {
	// Listener is the seccomp user-notification fd (close-on-exec). The
	// caller sends it to the broker and closes its own copy before exec.
	Listener *os.File
	// Landlock is the outcome of the Landlock step (zero if not asked).
	Landlock LandlockResult
	// WaitKillableRecv reports whether the flag was applied.
	WaitKillableRecv bool
	// Rlimits are the limits read back after setting them.
	Rlimits []Rlimit
	// Capabilities are the thread's capability sets read back after the
	// drop (or as they were, without DropCapabilities).
	Capabilities Capabilities
	// BoundingDropped reports whether the bounding set could be emptied.
	BoundingDropped bool
	// NoNewPrivs is no_new_privs read back (PR_GET_NO_NEW_PRIVS).
	NoNewPrivs bool
}

// Apply restricts the calling thread as spec says, in a fixed order (each
// step says why it comes where it does): rlimits, capabilities,
// no_new_privs, Landlock, then the seccomp filter with a new listener.
//
// Preconditions: the calling goroutine is locked to its OS thread, and the
// same thread will execve the worker.
func Apply(spec *Spec) (*Result, error) {
	if len(spec.Filter) == 0 {
		return nil, errors.New("apply sandbox: empty seccomp filter")
	}
	res := &Result{}
	// 1. Rlimits, with prlimit: raising a hard limit needs
	// CAP_SYS_RESOURCE, which step 2 drops; prlimit (unlike setrlimit
	// behind Go's back) also tells the Go runtime not to restore its
	// original RLIMIT_NOFILE at exec.
	for _, rl := range spec.Rlimits {
		lim := unix.Rlimit{Cur: rl.Cur, Max: rl.Max}
		if err := unix.Prlimit(0, rl.Resource, &lim, nil); err != nil {
			return nil, fmt.Errorf("setrlimit %d (cur %d, max %d): %w", rl.Resource, rl.Cur, rl.Max, err)
		}
		var got unix.Rlimit
		if err := unix.Prlimit(0, rl.Resource, nil, &got); err == nil {
			res.Rlimits = append(res.Rlimits, Rlimit{Resource: rl.Resource, Cur: got.Cur, Max: got.Max})
		}
	}
	// 2. Capabilities: none may reach the worker, also when the host is
	// root or the worker is root in its own user namespace. Nothing later
	// needs one, so they go before anything else is set up.
	if spec.DropCapabilities {
		b, err := dropCapabilities()
		if err != nil {
			return nil, fmt.Errorf("drop capabilities: %w", err)
		}
		res.BoundingDropped = b
	}
	caps, err := ReadCapabilities()
	if err != nil {
		return nil, err
	}
	res.Capabilities = caps
	// 3. no_new_privs: Landlock and a seccomp filter installed without
	// CAP_SYS_ADMIN need it, and it keeps a set-id or file-capability
	// binary from gaining privileges in the worker.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && v == 1 {
		res.NoNewPrivs = true
	}
	// 4. Landlock before the filter: the filter is built to let
	// landlock_restrict_self through, but nothing needs it to.
	if spec.Landlock != nil {
		lr, err := applyLandlock(spec.Landlock)
		if err != nil {
			return nil, err
		}
		res.Landlock = lr
	}
	// 5. The seccomp filter last: from here on, every file system call of
	// this thread waits for the broker, which only exists once the
	// listener has been sent.
	flags := uint(sys.FilterFlagNewListener)
	if spec.WaitKillableRecv {
		flags |= sys.FilterFlagWaitKillableRecv
	}
	fd, err := sys.InstallFilter(spec.Filter, flags)
	if err != nil && spec.WaitKillableRecv && errors.Is(err, unix.EINVAL) {
		// Kernels before 5.19 do not know the flag: install without it.
		flags &^= sys.FilterFlagWaitKillableRecv
		fd, err = sys.InstallFilter(spec.Filter, flags)
	} else if err == nil {
		res.WaitKillableRecv = spec.WaitKillableRecv
	}
	if err != nil {
		return nil, fmt.Errorf("install seccomp filter: %w", err)
	}
	res.Listener = os.NewFile(uintptr(fd), "seccomp-listener")
	return res, nil
}

// User is an identity the init stage takes before it is sandboxed: the
// uid and gid become its real, effective and saved ids (and, through
// them, its file system ids), Groups its supplementary groups.
type User struct {
	Uid    uint32   `json:"uid"`
	Gid    uint32   `json:"gid"`
	Groups []uint32 `json:"groups"`
	// KeepGroups leaves the supplementary groups as they are (as
	// syscall.Credential's NoSetGroups does); Groups is then ignored.
	KeepGroups bool `json:"keep_groups,omitempty"`
}

// SetUser switches the calling thread to u, the way runc's setupUser
// does: supplementary groups, then gid, then uid (after the uid, the
// thread could no longer change the others). The switch keeps the
// permitted capabilities (PR_SET_KEEPCAPS) and makes them effective again,
// so that the capability drop of Apply, which must follow, can still
// empty the bounding set (CAP_SETPCAP); without that drop a uid 0 → n
// switch would leave a full bounding set behind.
//
// Every call is a raw, thread-scoped system call, never the all-threads
// wrappers of package syscall: only this thread execs.
//
// Preconditions: the goroutine is locked to its OS thread, which has
// CAP_SETUID and CAP_SETGID and which calls Apply and then execs the
// worker.
func SetUser(u User) error {
	if !u.KeepGroups {
		gids := make([]int, len(u.Groups))
		for i, g := range u.Groups {
			gids[i] = int(g)
		}
		// x/sys/unix's Setgroups is the raw, per-thread system call.
		if err := unix.Setgroups(gids); err != nil {
			return fmt.Errorf("set user: %w", os.NewSyscallError("setgroups", err))
		}
	}
	gid, uid := uintptr(u.Gid), uintptr(u.Uid)
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, gid, gid, gid); e != 0 {
		return fmt.Errorf("set user: %w", os.NewSyscallError("setresgid", e))
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set user: %w", os.NewSyscallError("prctl(PR_SET_KEEPCAPS)", err))
	}
	_, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uid, uid, uid)
	// execve clears the flag as well; clear it now so nothing relies on it.
	unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("set user: %w", os.NewSyscallError("setresuid", e))
	}
	// Leaving uid 0 cleared the effective set (permitted is kept):
	// raise it again for the capability drop.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set user: %w", os.NewSyscallError("capget", err))
	}
	data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set user: %w", os.NewSyscallError("capset", err))
	}
	// Read back what the kernel did.
	r, ef, s := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	if r != int(u.Uid) || ef != int(u.Uid) || s != int(u.Uid) || rg != int(u.Gid) || eg != int(u.Gid) || sg != int(u.Gid) {
		return fmt.Errorf("set user %d:%d: the thread has uids %d/%d/%d and gids %d/%d/%d", u.Uid, u.Gid, r, ef, s, rg, eg, sg)
	}
	return nil
}
