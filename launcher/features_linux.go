//go:build linux

package launcher

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

// Feature is one kernel feature a layer uses, as probed on this machine.
type Feature struct {
	// Name is the feature as a `require` line names it, where it can.
	Name string `json:"name"`
	// Layer is the layer it belongs to: seccomp, broker, landlock,
	// namespaces or ptrace.
	Layer string `json:"layer"`
	// Available is the probe's answer.
	Available bool `json:"available"`
	// Why says what the probe did and saw.
	Why string `json:"why"`
	// Linux is the first release with the feature.
	Linux string `json:"linux"`
}

// LandlockFeatures details the Landlock ABI of the kernel.
type LandlockFeatures struct {
	ABI    int      `json:"abi"`
	Errata int      `json:"errata"`
	FS     []string `json:"fs"`
	Net    []string `json:"net"`
	Scopes []string `json:"scopes"`
}

// Features is what this kernel offers, layer by layer
// (`sandbox-exec features`).
type Features struct {
	Version int    `json:"version"`
	Kernel  string `json:"kernel"` // the release, for the reader; never parsed
	Arch    string `json:"arch"`
	Uid     int    `json:"uid"`
	// Privileged: the process has CAP_SYS_ADMIN, so namespaces other than
	// a user namespace can be created without one.
	Privileged bool             `json:"privileged"`
	Features   []Feature        `json:"features"`
	Landlock   LandlockFeatures `json:"landlock"`
}

// Get returns the feature called name.
func (f *Features) Get(name string) (Feature, bool) {
	for _, x := range f.Features {
		if x.Name == name {
			return x, true
		}
	}
	return Feature{}, false
}

// why renders a probe's error: "" for success.
func why(err error, ok string) (bool, string) {
	if err == nil {
		return true, ok
	}
	return false, err.Error()
}

// ProbeFeatures probes every layer's kernel features by running the real
// operation once: seccomp user notification end to end in a throwaway
// thread (ADDFD, ADDFD_FLAG_SEND, SYNC_WAKE_UP, WAIT_KILLABLE_RECV),
// landlock_create_ruleset(VERSION), a clone per namespace type, a clone
// of a user namespace by an unprivileged child, and Yama's ptrace scope.
// Nothing is inferred from the kernel version.
func ProbeFeatures() *Features {
	f := &Features{Version: 1, Arch: runtime.GOARCH, Uid: os.Geteuid(), Privileged: privileged()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		f.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	add := func(name, layer, linux string, err error, ok string) {
		avail, w := why(err, ok)
		f.Features = append(f.Features, Feature{Name: name, Layer: layer, Available: avail, Why: w, Linux: linux})
	}

	n := sys.ProbeNotif()
	add("user-notif", "seccomp", "5.0", n.UserNotif, "SECCOMP_GET_ACTION_AVAIL(SECCOMP_RET_USER_NOTIF) succeeded")
	add("new-listener", "seccomp", "5.0", n.NewListener, "a filter installed with SECCOMP_FILTER_FLAG_NEW_LISTENER returned a listener")
	add("addfd", "seccomp", "5.9", n.Addfd, "SECCOMP_IOCTL_NOTIF_ADDFD installed an fd in a notified thread")
	add("addfd-send", "seccomp", "5.14", n.AddfdSend, "ADDFD with SECCOMP_ADDFD_FLAG_SEND installed an fd and answered the call with it")
	add("wait-killable-recv", "seccomp", "5.19", n.WaitKillableRecv, "a filter installed with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
	add("sync-wakeup", "seccomp", "6.6", n.SyncWakeup, "SECCOMP_IOCTL_NOTIF_SET_FLAGS(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) on a listener")
	add("openat2", "broker", "5.6", sys.HaveOpenat2(), "openat2(\"/\", O_PATH, RESOLVE_NO_MAGICLINKS) succeeded")

	abi, lerr := sys.LandlockABI()
	f.Landlock.ABI = abi
	f.Landlock.Errata = sys.LandlockErrata()
	fs, net, scopes := sandbox.LandlockSupported(abi)
	f.Landlock.FS, f.Landlock.Net, f.Landlock.Scopes = sandbox.LandlockFSNames(fs), sandbox.LandlockNetNames(net), sandbox.LandlockScopeNames(scopes)
	abiWhy := fmt.Sprintf("landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION) = %d", abi)
	add("landlock", "landlock", "5.13", lerr, abiWhy)
	need := func(min int, what string) error {
		if lerr != nil {
			return lerr
		}
		if abi < min {
			return &sys.UnsupportedFeatureError{Name: what, MinimumVersion: sandbox.LandlockKernel(min), Err: fmt.Errorf("Landlock ABI %d < %d", abi, min)}
		}
		return nil
	}
	add("landlock-net", "landlock", sandbox.LandlockKernel(4), need(4, "landlock-net"), abiWhy+": TCP bind and connect rules (ABI 4)")
	add("landlock-scope", "landlock", sandbox.LandlockKernel(6), need(6, "landlock-scope"), abiWhy+": abstract UNIX socket and signal scopes (ABI 6)")
	tsync := need(8, "landlock-tsync")
	if tsync != nil && lerr == nil {
		tsync = fmt.Errorf("Landlock ABI %d < 8: a host confines itself by restricting one thread and re-executing, so all its threads share one domain", abi)
	}
	add("landlock-tsync", "landlock", "newer than 6.15", tsync, abiWhy+": LANDLOCK_RESTRICT_SELF_TSYNC restricts every thread of the host at once")

	for _, ns := range namespaceTypes {
		err := probeNamespace(ns.flag)
		ok := fmt.Sprintf("clone(%s) succeeded", ns.clone)
		if err == nil && ns.flag != sys.NamespaceUser && !f.Privileged {
			ok = fmt.Sprintf("clone(CLONE_NEWUSER|%s) succeeded (without CAP_SYS_ADMIN only inside a user namespace, which the launcher then adds)", ns.clone)
		}
		add(ns.feature, "namespaces", "3.8", err, ok)
	}
	uwhy, uerr := probeUnprivilegedUserns()
	add("unprivileged-userns", "namespaces", "3.8", uerr, uwhy)

	scope, yerr := sys.YamaPtraceScope()
	switch {
	case yerr != nil && errors.Is(yerr, sys.ErrNotSupported):
		add("yama", "ptrace", "3.4", yerr, "")
		add("host-reads-workers", "ptrace", "3.2", nil, "no Yama: a host may read the memory of its children of the same uid (process_vm_readv)")
	case yerr != nil:
		add("yama", "ptrace", "3.4", yerr, "")
	default:
		add("yama", "ptrace", "3.4", nil, fmt.Sprintf("kernel.yama.ptrace_scope = %d (%s)", scope, yamaScopes[min(max(scope, 0), 3)]))
		var rerr error
		if scope >= 2 {
			rerr = fmt.Errorf("ptrace_scope %d: only CAP_SYS_PTRACE (2) or nobody (3) may read another process's memory", scope)
		}
		add("host-reads-workers", "ptrace", "3.2", rerr, fmt.Sprintf("ptrace_scope %d lets a parent read its children's memory", scope))
	}
	return f
}

var yamaScopes = []string{"classic", "restricted to descendants", "admin only", "no attach"}

var namespaceTypes = []struct {
	name, feature, clone string
	flag                 uintptr
}{
	{"user", "userns", "CLONE_NEWUSER", sys.NamespaceUser},
	{"pid", "pidns", "CLONE_NEWPID", sys.NamespacePID},
	{"ipc", "ipcns", "CLONE_NEWIPC", sys.NamespaceIPC},
	{"uts", "utsns", "CLONE_NEWUTS", sys.NamespaceUTS},
	{"net", "netns", "CLONE_NEWNET", sys.NamespaceNet},
}

// probeNamespace checks one namespace type the way the launcher would
// create it: alone with CAP_SYS_ADMIN, else inside a new user namespace.
func probeNamespace(flag uintptr) error {
	if flag != sys.NamespaceUser && !privileged() {
		flag |= sys.NamespaceUser
	}
	return probeClone(flag)
}

// probeClone is sys.ProbeClone, run dumpable when it needs to be.
func probeClone(flags uintptr) error {
	var err error
	whileDumpable(flags&sys.NamespaceUser != 0, func() error {
		err = sys.ProbeClone(flags)
		return nil
	})
	return err
}

// envProbeUserns makes an Init that sees it probe for a user namespace
// and exit: the child of probeUnprivilegedUserns.
const envProbeUserns = "SANDBOX_EXEC_PROBE_USERNS"

// probeUnprivilegedUserns checks whether a user without capabilities may
// create a user namespace. Unprivileged, that is the plain probe; as root,
// a re-exec of this binary as uid and gid 65534 (nobody) does it.
func probeUnprivilegedUserns() (string, error) {
	if c, err := sys.EffectiveCapabilities(); err == nil && c == 0 && os.Geteuid() != 0 {
		return "clone(CLONE_NEWUSER) succeeded as this unprivileged user", probeClone(sys.NamespaceUser)
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"sandbox-exec-probe"}
	cmd.Env = []string{envProbeUserns + "=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "clone(CLONE_NEWUSER) succeeded in a child running as uid 65534 without capabilities", nil
	case errors.As(err, &ee) && ee.ExitCode() == probeMissing:
		return "", &sys.UnsupportedFeatureError{Name: "unprivileged-userns", MinimumVersion: "3.8 with unprivileged user namespaces allowed", Err: errors.New(msg)}
	case msg != "":
		return "", fmt.Errorf("probe as uid 65534: %v: %s", err, msg)
	}
	return "", fmt.Errorf("probe as uid 65534: %w", err)
}

// Exit codes of the userns probe child.
const (
	probeMissing      = 3
	probeInconclusive = 4
)

// runUsernsProbe is the child side of probeUnprivilegedUserns.
func runUsernsProbe() int {
	err := sys.ProbeClone(sys.NamespaceUser)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, err)
	if errors.Is(err, sys.ErrNotSupported) {
		return probeMissing
	}
	return probeInconclusive
}
