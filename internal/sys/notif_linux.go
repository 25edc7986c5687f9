//go:build linux

package sys

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// SeccompData mirrors struct seccomp_data (64 bytes).
type SeccompData struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Notif mirrors struct seccomp_notif (80 bytes).
type Notif struct {
	ID    uint64
	Pid   uint32 // calling TID in the listener's pid namespace; 0 if invisible (R10)
	Flags uint32 // always 0 (R9)
	Data  SeccompData
}

// NotifResp mirrors struct seccomp_notif_resp (24 bytes).
type NotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// NotifAddfd mirrors struct seccomp_notif_addfd (24 bytes).
type NotifAddfd struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

// NotifSizes mirrors struct seccomp_notif_sizes.
type NotifSizes struct {
	Notif uint16
	Resp  uint16
	Data  uint16
}

// Compiled sizes of the structures above; the ioctl numbers encode the same
// sizes (RECV 80, SEND 24, ADDFD 24), which a test checks.
const (
	sizeofNotif      = 80
	sizeofNotifResp  = 24
	sizeofNotifAddfd = 24
	sizeofData       = 64
)

// Ioctl numbers. ID_VALID first shipped with the wrong direction bit
// (_IOR instead of _IOW); kernels of that era accept only the old number
// (security.md R27).
const (
	ioctlNotifRecv       = unix.SECCOMP_IOCTL_NOTIF_RECV
	ioctlNotifSend       = unix.SECCOMP_IOCTL_NOTIF_SEND
	ioctlNotifAddfd      = unix.SECCOMP_IOCTL_NOTIF_ADDFD
	ioctlNotifIDValid    = unix.SECCOMP_IOCTL_NOTIF_ID_VALID
	ioctlNotifIDValidOld = 0x80082102
	ioctlNotifSetFlags   = unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS
)

// GetNotifSizes asks the kernel for the sizes of the notification structures
// (SECCOMP_GET_NOTIF_SIZES, Linux 5.0).
func GetNotifSizes() (NotifSizes, error) {
	var s NotifSizes
	if err := seccompGetNotifSizes(&s); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			return s, &UnsupportedFeatureError{Name: "user-notif", MinimumVersion: "5.0", Err: err}
		}
		return s, os.NewSyscallError("seccomp(GET_NOTIF_SIZES)", err)
	}
	return s, nil
}

// Listener serves the ioctls of one seccomp listener fd. Its buffers are
// sized from SECCOMP_GET_NOTIF_SIZES (the larger of the kernel's and the
// compiled size, R7) and are not safe for concurrent use: give each serving
// goroutine its own Listener on the same fd.
type Listener struct {
	fd   int
	recv []byte
	resp []byte
}

// NewListener prepares buffers for serving fd. It does not take ownership
// of fd.
func NewListener(fd int) (*Listener, error) {
	sizes, err := GetNotifSizes()
	if err != nil {
		return nil, err
	}
	return &Listener{
		fd:   fd,
		recv: make([]byte, max(int(sizes.Notif), sizeofNotif)),
		resp: make([]byte, max(int(sizes.Resp), sizeofNotifResp)),
	}, nil
}

// Fd returns the listener fd.
func (l *Listener) Fd() int { return l.fd }

// Recv waits for the next notification (SECCOMP_IOCTL_NOTIF_RECV). The
// buffer is zeroed first; a dirty buffer makes the kernel answer EINVAL (R7).
// ENOENT means the target died or was interrupted before the notification
// could be delivered; callers just receive again (R9).
func (l *Listener) Recv(n *Notif) error {
	clear(l.recv)
	if err := ioctlPtr(l.fd, ioctlNotifRecv, l.recv); err != nil {
		return err
	}
	decodeNotif(l.recv, n)
	return nil
}

// Send writes a response (SECCOMP_IOCTL_NOTIF_SEND).
func (l *Listener) Send(r *NotifResp) error {
	clear(l.resp)
	encodeResp(l.resp, r)
	return ioctlPtr(l.fd, ioctlNotifSend, l.resp)
}

// Addfd installs srcfd in the target (SECCOMP_IOCTL_NOTIF_ADDFD) and returns
// the number it got there. With SECCOMP_ADDFD_FLAG_SEND (Linux 5.14) the
// kernel also answers the notification with that number, atomically (R18).
func (l *Listener) Addfd(a *NotifAddfd) (int, error) {
	return ioctlAddfd(l.fd, a)
}

// IDValid reports whether notification id is still pending
// (SECCOMP_IOCTL_NOTIF_ID_VALID). It returns an error wrapping ENOENT when
// the target died, its TID may have been recycled, or a signal interrupted
// the call (R13).
func (l *Listener) IDValid(id uint64) error {
	return NotifIDValid(l.fd, id)
}

// idValidOld is set once the kernel rejected the new ID_VALID number;
// every serving thread reads it.
var idValidOld atomic.Bool

// NotifIDValid is Listener.IDValid for a bare fd.
func NotifIDValid(fd int, id uint64) error {
	if !idValidOld.Load() {
		err := ioctlU64(fd, ioctlNotifIDValid, id)
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		idValidOld.Store(true)
	}
	return ioctlU64(fd, ioctlNotifIDValidOld, id)
}

// SetSyncWakeup asks the kernel to wake the broker on the notifying task's
// CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6). On older kernels it
// returns an error wrapping ErrNotSupported (R28).
func SetSyncWakeup(fd int) error {
	// The flags travel by value in the ioctl argument, not through a
	// pointer like the other notification ioctls.
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(ioctlNotifSetFlags), unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	var err error
	if e != 0 {
		err = e
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
		return &UnsupportedFeatureError{Name: "sync-wakeup", MinimumVersion: "6.6", Err: err}
	}
	return err
}

// Filter flags used by InstallFilter.
const (
	FilterFlagNewListener      = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	FilterFlagWaitKillableRecv = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	FilterFlagTsync            = unix.SECCOMP_FILTER_FLAG_TSYNC
	FilterFlagTsyncEsrch       = unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
)

// InstallFilter loads prog with seccomp(SECCOMP_SET_MODE_FILTER, flags).
// With FilterFlagNewListener it returns the listener fd (close-on-exec).
//
// Preconditions: no_new_privs is set or the caller has CAP_SYS_ADMIN; the
// filter binds the calling thread only unless flags has TSYNC, so callers
// lock their goroutine to its thread.
func InstallFilter(prog []unix.SockFilter, flags uint) (int, error) {
	if len(prog) == 0 || len(prog) > 4096 {
		return -1, fmt.Errorf("install filter: %d instructions (want 1..4096)", len(prog))
	}
	fd, err := seccompSetModeFilter(prog, flags)
	if err != nil {
		return -1, os.NewSyscallError("seccomp(SET_MODE_FILTER)", err)
	}
	return fd, nil
}

// ActionAvailable reports whether the kernel knows the filter return action
// (SECCOMP_GET_ACTION_AVAIL, Linux 4.14).
func ActionAvailable(action uint32) error {
	return seccompGetActionAvail(action)
}
