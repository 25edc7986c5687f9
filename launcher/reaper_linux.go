//go:build linux

package launcher

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The registry of init stages this process started, so that the orphan
// reaper never steals the status of a child os/exec is waiting for. Its
// lock is held from before a fork until the child is registered.
var (
	registryMu sync.Mutex
	registry   = map[int]bool{}
	reaping    bool
)

// BecomeSubreaper makes this process the reaper of every orphaned
// descendant of its workers (PR_SET_CHILD_SUBREAPER), so that processes
// that double-fork out of a worker's tree (crash handlers) stay visible,
// are killed with the tree and are reaped. It starts a goroutine that reaps
// such orphans by pid, never with wait4(-1), which would steal the
// statuses of children started elsewhere in this process (security.md R63).
//
// Call it once, early, in a program whose only children are its workers
// (the sandbox-exec command does); a host application that runs other
// children should not.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if reaping {
		return nil
	}
	reaping = true
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sigs:
			case <-tick.C:
			}
			reapOrphans()
		}
	}()
	return nil
}

// reapOrphans reaps every exited child of this process that no Cmd started.
func reapOrphans() {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, pid := range children(os.Getpid()) {
		if registry[pid] {
			continue
		}
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

func register(pid int) { registry[pid] = true }

func unregister(pid int) {
	registryMu.Lock()
	delete(registry, pid)
	registryMu.Unlock()
}
