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
	// Landlock, if not nil, restricts the thread with a Landlock ruleset.
	Landlock *Landlock `json:"landlock,omitempty"`
	// Filter is the seccomp program (classic BPF), installed last with
	// SECCOMP_FILTER_FLAG_NEW_LISTENER. It must not be empty.
	Filter []unix.SockFilter `json:"filter"`
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
}

// Apply restricts the calling thread as spec says: rlimits, no_new_privs,
// Landlock, then the seccomp filter with a new listener.
//
// Preconditions: the calling goroutine is locked to its OS thread, and the
// same thread will execve the worker.
func Apply(spec *Spec) (*Result, error) {
	if len(spec.Filter) == 0 {
		return nil, errors.New("apply sandbox: empty seccomp filter")
	}
	res := &Result{}
	for _, rl := range spec.Rlimits {
		lim := unix.Rlimit{Cur: rl.Cur, Max: rl.Max}
		if err := unix.Prlimit(0, rl.Resource, &lim, nil); err != nil {
			return nil, fmt.Errorf("setrlimit %d (cur %d, max %d): %w", rl.Resource, rl.Cur, rl.Max, err)
		}
	}
	// no_new_privs first: Landlock and an unprivileged seccomp filter need
	// it, and it keeps a setuid binary from gaining privileges later.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if spec.Landlock != nil {
		lr, err := applyLandlock(spec.Landlock)
		if err != nil {
			return nil, err
		}
		res.Landlock = lr
	}
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
