//go:build linux

package sys

import (
	"bytes"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// PathMax is the kernel's PATH_MAX: the longest path string, NUL included.
const PathMax = 4096

var pageSize = uint64(os.Getpagesize())

// ReadMem copies len(buf) bytes at addr in process pid into buf with
// process_vm_readv, in pieces that never cross a page boundary, so a fault
// is reported for exactly the byte where it happens. It returns the number
// of bytes read before the first fault and EFAULT if that is short.
//
// The caller must check the notification with ID_VALID after the read and
// before using the bytes (security.md R13).
func ReadMem(pid int, addr uint64, buf []byte) (int, error) {
	done := 0
	for done < len(buf) {
		a := addr + uint64(done)
		if a < addr { // wrapped around the address space
			return done, unix.EFAULT
		}
		chunk := min(uint64(len(buf)-done), pageSize-a%pageSize)
		n, err := readChunk(pid, a, buf[done:done+int(chunk)])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func readChunk(pid int, addr uint64, b []byte) (int, error) {
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := RetryValue(func() (int, error) { return unix.ProcessVMReadv(pid, local, remote, 0) })
	if err != nil {
		if errors.Is(err, unix.EFAULT) || errors.Is(err, unix.EIO) {
			return 0, unix.EFAULT
		}
		return 0, err
	}
	if n < len(b) {
		return n, unix.EFAULT
	}
	return n, nil
}

// ReadString reads a NUL-terminated string of at most len(buf) bytes
// (NUL included) at addr in process pid, the way the kernel's
// strncpy_from_user does for a path (security.md R15): page by page, never
// reading a page it does not need. It returns the string's length without
// the NUL. A NULL or unreadable address before the NUL gives EFAULT; no NUL
// within len(buf) bytes gives ENAMETOOLONG. The string is never truncated.
func ReadString(pid int, addr uint64, buf []byte) (int, error) {
	if addr == 0 {
		return 0, unix.EFAULT
	}
	done := 0
	for done < len(buf) {
		a := addr + uint64(done)
		if a < addr {
			return 0, unix.EFAULT
		}
		chunk := min(uint64(len(buf)-done), pageSize-a%pageSize)
		// Read short pieces first: most paths are far shorter than a page.
		if done == 0 {
			chunk = min(chunk, 256)
		}
		n, err := readChunk(pid, a, buf[done:done+int(chunk)])
		if i := bytes.IndexByte(buf[done:done+n], 0); i >= 0 {
			return done + i, nil
		}
		done += n
		if err != nil {
			return 0, err
		}
	}
	return 0, unix.ENAMETOOLONG
}

// WriteMem writes b at addr in process pid with process_vm_writev, which,
// unlike /proc/<pid>/mem, honours page protections (security.md R23). It
// returns EFAULT unless every byte was written.
func WriteMem(pid int, addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if addr == 0 || addr+uint64(len(b)) < addr {
		return unix.EFAULT
	}
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := RetryValue(func() (int, error) { return unix.ProcessVMWritev(pid, local, remote, 0) })
	if err != nil {
		if errors.Is(err, unix.EFAULT) || errors.Is(err, unix.EIO) {
			return unix.EFAULT
		}
		return err
	}
	if n != len(b) {
		return unix.EFAULT
	}
	return nil
}
