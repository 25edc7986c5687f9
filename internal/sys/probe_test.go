//go:build linux

package sys

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The probes run the real operation. On kernels that have a feature the
// answer must be yes; on older ones the error must say which feature and
// which release has it.
func checkProbe(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ufe *UnsupportedFeatureError
	if !errors.As(err, &ufe) {
		t.Errorf("%s: inconclusive: %v", name, err)
		return
	}
	if ufe.Name == "" || ufe.MinimumVersion == "" {
		t.Errorf("%s: %+v names no feature or release", name, ufe)
	}
	t.Logf("%s: missing: %v", name, err)
}

func TestProbeNotif(t *testing.T) {
	p := ProbeNotif()
	for name, err := range map[string]error{"user-notif": p.UserNotif, "new-listener": p.NewListener, "addfd": p.Addfd,
		"addfd-send": p.AddfdSend, "wait-killable-recv": p.WaitKillableRecv, "sync-wakeup": p.SyncWakeup} {
		checkProbe(t, name, err)
	}
	if p.UserNotif != nil {
		t.Skipf("no user notification: %v", p.UserNotif)
	}
	// The probe thread is gone with its filter: this thread is free.
	if _, err := os.ReadFile("/proc/self/status"); err != nil {
		t.Fatal(err)
	}
	// Cached: a second call answers the same without probing.
	if q := ProbeNotif(); q != p {
		t.Errorf("second probe %+v, first %+v", q, p)
	}
}

func TestProbeLandlock(t *testing.T) {
	abi, err := LandlockABI()
	checkProbe(t, "landlock", err)
	if err == nil && abi < 1 {
		t.Errorf("Landlock ABI %d without an error", abi)
	}
	t.Logf("Landlock ABI %d, errata %#x", abi, LandlockErrata())
}

func TestProbeClone(t *testing.T) {
	for _, f := range []uintptr{NamespaceUser, NamespaceUser | NamespacePID, NamespaceUser | NamespaceIPC | NamespaceUTS | NamespaceNet} {
		checkProbe(t, NamespaceNames(f), ProbeClone(f))
	}
	if got := NamespaceNames(NamespaceUser | NamespaceNet); got != "userns+netns" {
		t.Errorf("NamespaceNames: %q", got)
	}
}

func TestProbeMisc(t *testing.T) {
	checkProbe(t, "user-notif", HaveUserNotif())
	checkProbe(t, "openat2", HaveOpenat2())
	scope, err := YamaPtraceScope()
	checkProbe(t, "yama", err)
	if err == nil && (scope < 0 || scope > 3) {
		t.Errorf("ptrace_scope %d", scope)
	}
	if _, err := EffectiveCapabilities(); err != nil {
		t.Error(err)
	}
}

// TestProbeLeavesMainThread: the probe's filter and no_new_privs never
// stay on the main thread, which Go parks instead of ending (the probe
// goroutine may be scheduled there: the main goroutine of a test binary
// waits in m.Run and leaves it free).
func TestProbeLeavesMainThread(t *testing.T) {
	if HaveUserNotif() != nil {
		t.Skip("no seccomp user notification on this kernel")
	}
	for range 30 {
		probeNotif()
		status, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && (k == "Seccomp" || k == "NoNewPrivs") && strings.TrimSpace(v) != "0" {
				t.Fatalf("main thread after a probe: %s", line)
			}
		}
	}
}
