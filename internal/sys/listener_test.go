//go:build linux

package sys

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

const envListenerChild = "SANDBOX_EXEC_SYS_LISTENER_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envListenerChild) != "" {
		os.Exit(listenerChild())
	}
	os.Exit(m.Run())
}

// listenerChild installs an allow-all filter with a listener on its locked
// thread and sets SYNC_WAKE_UP on it: exit 0 if that works, 3 if the
// kernel lacks the flag, 1 otherwise.
func listenerChild() int {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 1
	}
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	fd, err := InstallFilter(prog, FilterFlagNewListener)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	if err := SetSyncWakeup(fd); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		if _, ok := err.(*UnsupportedFeatureError); ok {
			return 3
		}
		return 1
	}
	return 0
}

// TestSetSyncWakeup sets SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on a real
// listener (Linux 6.6): the flags go by value, and a mistake there looks
// exactly like an old kernel.
func TestSetSyncWakeup(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envListenerChild+"=1")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
		t.Skipf("sync-wakeup not supported by this kernel (Linux 6.6): %s", out)
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
