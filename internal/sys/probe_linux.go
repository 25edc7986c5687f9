//go:build linux

package sys

// Feature probes. Each runs the real operation once (no uname parsing),
// matches the specific errno that means "missing", and returns nil when
// the feature works, an error wrapping ErrNotSupported (an
// *UnsupportedFeatureError naming the feature and the first Linux release
// with it) when the kernel lacks it, and any other error when the answer
// is inconclusive. Only conclusive answers are cached.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// conclusive reports whether err is a definite answer: nil (yes) or a
// missing feature (no).
func conclusive(err error) bool {
	return err == nil || errors.Is(err, ErrNotSupported)
}

// LandlockABI returns the Landlock ABI version of the running kernel
// (landlock_create_ruleset with LANDLOCK_CREATE_RULESET_VERSION, Linux
// 5.13). ENOSYS (not built in) and EOPNOTSUPP (disabled at boot) give an
// error wrapping ErrNotSupported.
func LandlockABI() (int, error) {
	v, err := ll.LandlockGetABIVersion()
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
			return 0, &UnsupportedFeatureError{Name: "landlock", MinimumVersion: "5.13", Err: err}
		}
		return 0, os.NewSyscallError("landlock_create_ruleset(VERSION)", err)
	}
	return v, nil
}

// LandlockErrata returns the bitmask of Landlock errata fixed in the
// running kernel (LANDLOCK_CREATE_RULESET_ERRATA); 0 where the kernel does
// not report errata.
func LandlockErrata() int {
	v, err := ll.LandlockGetErrata()
	if err != nil {
		return 0
	}
	return v
}

// HaveUserNotif checks SECCOMP_RET_USER_NOTIF with
// SECCOMP_GET_ACTION_AVAIL (Linux 5.0).
func HaveUserNotif() error {
	err := ActionAvailable(unix.SECCOMP_RET_USER_NOTIF)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return &UnsupportedFeatureError{Name: "user-notif", MinimumVersion: "5.0", Err: err}
	}
	return os.NewSyscallError("seccomp(GET_ACTION_AVAIL)", err)
}

// HaveOpenat2 checks openat2 (Linux 5.6).
func HaveOpenat2() error {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return &UnsupportedFeatureError{Name: "openat2", MinimumVersion: "5.6", Err: err}
		}
		return os.NewSyscallError("openat2", err)
	}
	unix.Close(fd)
	return nil
}

// NotifProbe is the outcome of [ProbeNotif], one error per feature (nil:
// available).
type NotifProbe struct {
	UserNotif        error // SECCOMP_RET_USER_NOTIF, 5.0
	NewListener      error // SECCOMP_FILTER_FLAG_NEW_LISTENER, 5.0
	Addfd            error // SECCOMP_IOCTL_NOTIF_ADDFD, 5.9
	AddfdSend        error // SECCOMP_ADDFD_FLAG_SEND, 5.14
	WaitKillableRecv error // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, 5.19
	SyncWakeup       error // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 6.6
}

func (p NotifProbe) conclusive() bool {
	for _, err := range []error{p.UserNotif, p.NewListener, p.Addfd, p.AddfdSend, p.WaitKillableRecv, p.SyncWakeup} {
		if !conclusive(err) {
			return false
		}
	}
	return true
}

var notifCache struct {
	mu   sync.Mutex
	done bool
	p    NotifProbe
}

// ProbeNotif tests seccomp user notification end to end, the way the
// sandbox uses it: a throwaway locked thread sets no_new_privs and
// installs a filter (NEW_LISTENER, with WAIT_KILLABLE_RECV if the kernel
// takes it) that notifies one syscall with a magic argument; a second
// goroutine receives the notification and answers it with ADDFD and
// SECCOMP_ADDFD_FLAG_SEND (falling back to ADDFD then SEND), and the
// first checks that the fd it got back is the one installed. The thread
// exits afterwards, taking its filter and no_new_privs with it; the Go
// runtime never clones new threads from a locked one.
//
// The result is cached when every answer is conclusive.
func ProbeNotif() NotifProbe {
	notifCache.mu.Lock()
	defer notifCache.mu.Unlock()
	if notifCache.done {
		return notifCache.p
	}
	p := probeNotif()
	if p.conclusive() {
		notifCache.done, notifCache.p = true, p
	}
	return p
}

// probeMagic is the argument of the notified getpgid(2): no process has
// this id, so the call means nothing anywhere else.
const probeMagic = 0x5ecc0f1d

func probeNotif() NotifProbe {
	var p NotifProbe
	p.UserNotif = HaveUserNotif()
	if p.UserNotif != nil {
		p.NewListener, p.Addfd, p.AddfdSend, p.WaitKillableRecv, p.SyncWakeup = p.UserNotif, p.UserNotif, p.UserNotif, p.UserNotif, p.UserNotif
		return p
	}
	out := make(chan NotifProbe, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, and its
		// filter with it.
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			out <- notifThread(p)
			return
		}
		// The main thread, which Go parks instead of ending when a
		// locked goroutine exits: the probe's filter and no_new_privs
		// would stay on it for good (and any later TSYNC filter would
		// fail). Hold it while another thread probes, then give it back
		// untouched.
		other := make(chan NotifProbe, 1)
		go func() {
			runtime.LockOSThread()
			other <- notifThread(p)
		}()
		res := <-other
		runtime.UnlockOSThread()
		out <- res
	}()
	return <-out
}

// nativeAuditArch is the AUDIT_ARCH_* of the running binary.
func nativeAuditArch() uint32 {
	if runtime.GOARCH == "arm64" {
		return unix.AUDIT_ARCH_AARCH64
	}
	return unix.AUDIT_ARCH_X86_64
}

// probeProgram notifies getpgid(probeMagic) of the native architecture and
// allows everything else.
func probeProgram() []unix.SockFilter {
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeqK = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		retK = unix.BPF_RET | unix.BPF_K
	)
	return []unix.SockFilter{
		{Code: ldW, K: 4}, // arch
		{Code: jeqK, Jt: 0, Jf: 5, K: nativeAuditArch()},
		{Code: ldW, K: 0}, // nr
		{Code: jeqK, Jt: 0, Jf: 3, K: unix.SYS_GETPGID},
		{Code: ldW, K: 16}, // low half of args[0] (little-endian)
		{Code: jeqK, Jt: 0, Jf: 1, K: probeMagic},
		{Code: retK, K: unix.SECCOMP_RET_USER_NOTIF},
		{Code: retK, K: unix.SECCOMP_RET_ALLOW},
	}
}

type superviseResult struct {
	addfd, send error
}

// notifThread runs on the locked probe thread.
func notifThread(p NotifProbe) NotifProbe {
	fail := func(err error) NotifProbe {
		p.NewListener, p.Addfd, p.AddfdSend, p.WaitKillableRecv, p.SyncWakeup = err, err, err, err, err
		return p
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail(os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err))
	}
	prog := probeProgram()
	lfd, err := InstallFilter(prog, FilterFlagNewListener|FilterFlagWaitKillableRecv)
	if errors.Is(err, unix.EINVAL) {
		p.WaitKillableRecv = &UnsupportedFeatureError{Name: "wait-killable-recv", MinimumVersion: "5.19", Err: err}
		lfd, err = InstallFilter(prog, FilterFlagNewListener)
	}
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			err = &UnsupportedFeatureError{Name: "user-notif", MinimumVersion: "5.0", Err: err}
		}
		wk := p.WaitKillableRecv
		p = fail(err)
		if wk != nil {
			p.WaitKillableRecv = wk
		}
		return p
	}
	p.SyncWakeup = SetSyncWakeup(lfd)
	src, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(lfd)
		return fail(os.NewSyscallError("eventfd", err))
	}
	defer unix.Close(src)
	var srcSt unix.Stat_t
	unix.Fstat(src, &srcSt)

	done := make(chan superviseResult, 1)
	go func() { done <- supervise(lfd, src) }() // closes lfd
	// Syscall, not RawSyscall: the scheduler may hand this P to the
	// supervising goroutine while the call waits.
	r, _, e := unix.Syscall(unix.SYS_GETPGID, probeMagic, 0, 0)
	res := <-done
	p.Addfd, p.AddfdSend = res.addfd, res.send
	if e != 0 {
		if p.Addfd == nil {
			p.Addfd = fmt.Errorf("notified call failed: %w", e)
		}
		if p.AddfdSend == nil {
			p.AddfdSend = p.Addfd
		}
		return p
	}
	fd := int(r)
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil || st.Ino != srcSt.Ino || st.Dev != srcSt.Dev {
		bad := fmt.Errorf("the notified call returned %d, which is not the installed fd", fd)
		p.Addfd, p.AddfdSend = bad, bad
	}
	return p
}

// supervise answers the probe's notification and closes the listener
// (which also releases the probe thread if no notification ever came).
func supervise(lfd, src int) (res superviseResult) {
	defer unix.Close(lfd)
	timeout := errors.New("no notification within 2s")
	res = superviseResult{timeout, timeout}
	l, err := NewListener(lfd)
	if err != nil {
		return superviseResult{err, err}
	}
	deadline := time.Now().Add(2 * time.Second)
	for left := time.Until(deadline); left > 0; left = time.Until(deadline) {
		fds := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return superviseResult{err, err}
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			continue
		}
		var n Notif
		if err := l.Recv(&n); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINTR) {
				continue // the call was interrupted; it restarts
			}
			return superviseResult{err, err}
		}
		_, err := l.Addfd(&NotifAddfd{ID: n.ID, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, Srcfd: uint32(src)})
		if err == nil {
			return superviseResult{nil, nil}
		}
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if !errors.Is(err, unix.EINVAL) {
			l.Send(&NotifResp{ID: n.ID, Error: -int32(unix.ENOSYS)})
			return superviseResult{err, err}
		}
		res.send = &UnsupportedFeatureError{Name: "addfd-send", MinimumVersion: "5.14", Err: err}
		newfd, err := l.Addfd(&NotifAddfd{ID: n.ID, Srcfd: uint32(src)})
		if err == nil {
			res.addfd = l.Send(&NotifResp{ID: n.ID, Val: int64(newfd)})
			return res
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
			err = &UnsupportedFeatureError{Name: "addfd", MinimumVersion: "5.9", Err: err}
		}
		res.addfd = err
		l.Send(&NotifResp{ID: n.ID, Error: -int32(unix.ENOSYS)})
		return res
	}
	return res
}

// Namespace types, as clone(2) flags.
const (
	NamespaceUser = unix.CLONE_NEWUSER
	NamespacePID  = unix.CLONE_NEWPID
	NamespaceIPC  = unix.CLONE_NEWIPC
	NamespaceUTS  = unix.CLONE_NEWUTS
	NamespaceNet  = unix.CLONE_NEWNET
)

var cloneCache sync.Map // flags -> error (conclusive answers only)

// ProbeClone checks that a child can be created with the namespace flags
// (CLONE_NEW*): it forks a child with them that execs a path that does
// not exist. ENOENT proves the child was created and reached exec; clone
// itself never returns ENOENT. With CLONE_NEWUSER the child maps the
// caller's uid and gid, as the launcher does. EPERM, EINVAL (for example
// user namespaces disabled by the kernel configuration), ENOSPC and EUSERS
// (limits reached) mean "not available to this process".
func ProbeClone(flags uintptr) error {
	if v, ok := cloneCache.Load(flags); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	err := probeClone(flags)
	if conclusive(err) {
		cloneCache.Store(flags, err)
	}
	return err
}

func probeClone(flags uintptr) error {
	attr := &syscall.SysProcAttr{Cloneflags: flags}
	if flags&unix.CLONE_NEWUSER != 0 {
		uid, gid := os.Geteuid(), os.Getegid()
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
	}
	const missing = "/nonexistent/sandbox-exec-namespace-probe"
	pid, err := syscall.ForkExec(missing, []string{"probe"}, &syscall.ProcAttr{Sys: attr})
	if err == nil {
		// Cannot happen (nothing is there to exec); reap it anyway.
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		return nil
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EUSERS), errors.Is(err, unix.EACCES):
		return &UnsupportedFeatureError{Name: NamespaceNames(flags), MinimumVersion: namespaceKernel(flags), Err: err}
	}
	return fmt.Errorf("clone(%s): %w", NamespaceNames(flags), err)
}

// NamespaceNames names the CLONE_NEW* flags in flags ("user+pid").
func NamespaceNames(flags uintptr) string {
	var names []string
	for _, n := range []struct {
		flag uintptr
		name string
	}{{NamespaceUser, "userns"}, {NamespacePID, "pidns"}, {NamespaceIPC, "ipcns"}, {NamespaceUTS, "utsns"}, {NamespaceNet, "netns"}} {
		if flags&n.flag != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, "+")
}

// namespaceKernel is the first Linux release where every namespace in
// flags works unprivileged inside a user namespace (3.8); each type also
// needs its CONFIG_*_NS option.
func namespaceKernel(flags uintptr) string {
	if flags&NamespaceUser != 0 {
		return "3.8 with CONFIG_USER_NS"
	}
	return "3.8 with the namespace's CONFIG_*_NS option"
}

// YamaPtraceScope returns kernel.yama.ptrace_scope (0 classic, 1
// restricted to descendants, 2 admin only, 3 none). Without Yama it
// returns an error wrapping ErrNotSupported.
func YamaPtraceScope() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, &UnsupportedFeatureError{Name: "yama", MinimumVersion: "3.4 with CONFIG_SECURITY_YAMA", Err: err}
		}
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// EffectiveCapabilities returns the calling thread's effective
// capability set (capget).
func EffectiveCapabilities() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, os.NewSyscallError("capget", err)
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}
