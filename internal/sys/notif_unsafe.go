//go:build linux

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func ioctlPtr(fd int, req uint, buf []byte) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&buf[0])))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

func ioctlU64(fd int, req uint, v uint64) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&v)))
	if e != 0 {
		return e
	}
	return nil
}

func ioctlAddfd(fd int, a *NotifAddfd) (int, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(ioctlNotifAddfd), uintptr(unsafe.Pointer(a)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

func decodeNotif(b []byte, n *Notif) {
	*n = *(*Notif)(unsafe.Pointer(&b[0]))
}

func encodeResp(b []byte, r *NotifResp) {
	*(*NotifResp)(unsafe.Pointer(&b[0])) = *r
}

func seccompGetNotifSizes(s *NotifSizes) error {
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(s)))
	if e != 0 {
		return e
	}
	return nil
}

func seccompGetActionAvail(action uint32) error {
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	if e != 0 {
		return e
	}
	return nil
}

func seccompSetModeFilter(prog []unix.SockFilter, flags uint) (int, error) {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// Sizes of the ABI structures as compiled, for tests.
var compiledSizes = map[string]uintptr{
	"seccomp_notif":       unsafe.Sizeof(Notif{}),
	"seccomp_notif_resp":  unsafe.Sizeof(NotifResp{}),
	"seccomp_notif_addfd": unsafe.Sizeof(NotifAddfd{}),
	"seccomp_data":        unsafe.Sizeof(SeccompData{}),
}

// StatBytes returns the bytes of st as the kernel lays out struct stat for
// the native ABI, to write into a worker's buffer. The slice aliases st.
func StatBytes(st *unix.Stat_t) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(st)), unsafe.Sizeof(*st))
}

// StatxBytes returns the bytes of stx as struct statx. The slice aliases stx.
func StatxBytes(stx *unix.Statx_t) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(stx)), unsafe.Sizeof(*stx))
}

// StatfsBytes returns the bytes of st as struct statfs. The slice aliases st.
func StatfsBytes(st *unix.Statfs_t) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(st)), unsafe.Sizeof(*st))
}

// addr returns the address of b's first byte, for tests that hand their own
// memory to ReadString and WriteMem.
func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
