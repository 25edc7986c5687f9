//go:build linux

package broker

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// Open flag values as the kernel defines them. x/sys/unix gives 0 for
// O_LARGEFILE on 64-bit ABIs (glibc never passes it), but the kernel
// accepts the bit, so it comes from the per-architecture files.
const (
	oTmpfileBit = unix.O_TMPFILE &^ unix.O_DIRECTORY // __O_TMPFILE
	oSyncBit    = unix.O_SYNC &^ unix.O_DSYNC        // __O_SYNC

	validOpenFlags = unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY |
		unix.O_TRUNC | unix.O_APPEND | unix.O_NONBLOCK | unix.O_DSYNC | unix.O_ASYNC |
		unix.O_DIRECT | oLargefile | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_NOATIME |
		unix.O_CLOEXEC | unix.O_PATH | oTmpfileBit | oSyncBit

	oPathFlags = unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_PATH | unix.O_CLOEXEC

	resolveCached = 0x20 // RESOLVE_CACHED (5.12), not in x/sys/unix
	validResolve  = unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS |
		unix.RESOLVE_BENEATH | unix.RESOLVE_IN_ROOT | resolveCached

	openHowSizeVer0 = 24   // sizeof(struct open_how), first version
	pageSize        = 4096 // openat2 rejects a larger open_how with E2BIG
	sIALLUGO        = 0o7777
)

// openReq is a decoded open request.
type openReq struct {
	flags   uint32 // open flags as the kernel will use them
	mode    uint32 // create mode, S_IALLUGO bits only; 0 without O_CREAT
	resolve uint64 // the worker's openat2 resolve flags
}

// decodeOpen decodes the flags and mode of open, openat and creat. Flags
// are an int: the kernel ignores bits above 31 (R12); mode is a umode_t.
// It returns 0 and the request, or a reply code: codeDeny for what the
// broker never opens (R36: access mode 3, unknown bits, O_TMPFILE,
// O_ASYNC), EINVAL where the kernel says so.
func decodeOpen(flags, mode uint64) (openReq, int) {
	f := uint32(flags)
	if f&^validOpenFlags != 0 || f&unix.O_ACCMODE == unix.O_ACCMODE || f&(oTmpfileBit|unix.O_ASYNC) != 0 {
		return openReq{}, codeDeny
	}
	if f&unix.O_PATH != 0 {
		f &= oPathFlags // "O_PATH beats everything else"
	}
	if f&(unix.O_CREAT|unix.O_DIRECTORY) == unix.O_CREAT|unix.O_DIRECTORY {
		return openReq{}, int(unix.EINVAL)
	}
	o := openReq{flags: f}
	if f&unix.O_CREAT != 0 {
		o.mode = uint32(uint16(mode)) & sIALLUGO
	}
	return o, codeOK
}

// decodeOpenHow decodes openat2's struct open_how of usize bytes, of which
// b holds the first min(usize, pageSize). It applies openat2's rules in the
// kernel's order (R12): size below 24 EINVAL, above a page or with a
// non-zero tail E2BIG, unknown flag bits (also in the upper 32 bits) or
// resolve bits EINVAL, BENEATH with IN_ROOT EINVAL, a mode without
// O_CREAT/O_TMPFILE or above 07777 EINVAL, O_CREAT|O_DIRECTORY EINVAL,
// O_PATH with other flags EINVAL; then the broker's denials (R36).
func decodeOpenHow(b []byte, usize uint64) (openReq, int) {
	if usize < openHowSizeVer0 {
		return openReq{}, int(unix.EINVAL)
	}
	if usize > pageSize || uint64(len(b)) < usize {
		return openReq{}, int(unix.E2BIG)
	}
	for _, c := range b[openHowSizeVer0:usize] {
		if c != 0 {
			return openReq{}, int(unix.E2BIG)
		}
	}
	flags := binary.NativeEndian.Uint64(b[0:])
	mode := binary.NativeEndian.Uint64(b[8:])
	resolve := binary.NativeEndian.Uint64(b[16:])
	if flags&^uint64(validOpenFlags) != 0 || resolve&^uint64(validResolve) != 0 {
		return openReq{}, int(unix.EINVAL)
	}
	if resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) == unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT {
		return openReq{}, int(unix.EINVAL)
	}
	f := uint32(flags)
	if f&(unix.O_CREAT|oTmpfileBit) != 0 {
		if mode&^sIALLUGO != 0 {
			return openReq{}, int(unix.EINVAL)
		}
	} else if mode != 0 {
		return openReq{}, int(unix.EINVAL)
	}
	if f&(unix.O_CREAT|unix.O_DIRECTORY) == unix.O_CREAT|unix.O_DIRECTORY {
		return openReq{}, int(unix.EINVAL)
	}
	if f&oTmpfileBit != 0 && (f&unix.O_DIRECTORY == 0 || f&unix.O_ACCMODE == unix.O_RDONLY) {
		return openReq{}, int(unix.EINVAL)
	}
	if f&unix.O_PATH != 0 && f&^oPathFlags != 0 {
		return openReq{}, int(unix.EINVAL)
	}
	if f&unix.O_ACCMODE == unix.O_ACCMODE || f&(oTmpfileBit|unix.O_ASYNC) != 0 {
		return openReq{}, codeDeny
	}
	return openReq{flags: f, mode: uint32(mode), resolve: resolve}, codeOK
}

// openRights returns the rights an open needs (R36): the access mode,
// create for O_CREAT, write and create for O_TRUNC. O_PATH needs read, not
// stat alone: SECCOMP_IOCTL_NOTIF_ADDFD cannot install an O_PATH file (the
// kernel takes the source with fget(), which refuses them), so the broker
// serves O_PATH with a read-only open of the object.
func openRights(flags uint32) policy.Right {
	if flags&unix.O_PATH != 0 {
		return policy.Read
	}
	var r policy.Right
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		r = policy.Read
	case unix.O_WRONLY:
		r = policy.Write
	case unix.O_RDWR:
		r = policy.Read | policy.Write
	}
	if flags&unix.O_CREAT != 0 {
		r |= policy.Create
	}
	if flags&unix.O_TRUNC != 0 {
		r |= policy.Write | policy.Create
	}
	return r
}

// accessRights returns the rights access(2) needs for mode (R41): R_OK
// read, W_OK write, X_OK exec (read for a directory), F_OK stat. Unknown
// mode bits are EINVAL.
func accessRights(mode uint64) (need, int) {
	m := uint32(mode)
	if m&^uint32(unix.R_OK|unix.W_OK|unix.X_OK) != 0 {
		return need{}, int(unix.EINVAL)
	}
	if m == unix.F_OK {
		return need{right: policy.Stat}, codeOK
	}
	var r policy.Right
	if m&unix.R_OK != 0 {
		r |= policy.Read
	}
	if m&unix.W_OK != 0 {
		r |= policy.Write
	}
	n := need{right: r}
	if m&unix.X_OK != 0 {
		n.right |= policy.Exec
		n.dirRight = r | policy.Read
	}
	return n, codeOK
}

// dirfdArg truncates a dirfd argument to the int the kernel sees (R12):
// (1<<32)|fd is fd, 0x00000000FFFFFF9C is AT_FDCWD.
func dirfdArg(v uint64) int32 { return int32(uint32(v)) }

// timespec is one decoded struct timespec.
type timespec struct{ sec, nsec int64 }

// decodeTimespecs decodes utimensat's struct timespec[2]. It returns
// EINVAL for a tv_nsec the kernel rejects, and reports whether both are
// UTIME_OMIT (the kernel then returns 0 without looking at the path).
func decodeTimespecs(b []byte) (ts [2]unix.Timespec, omitBoth bool, code int) {
	for i := range ts {
		sec := int64(binary.NativeEndian.Uint64(b[16*i:]))
		nsec := int64(binary.NativeEndian.Uint64(b[16*i+8:]))
		if nsec != unix.UTIME_NOW && nsec != unix.UTIME_OMIT && (nsec < 0 || nsec > 999999999) {
			return ts, false, int(unix.EINVAL)
		}
		ts[i] = unix.Timespec{Sec: sec, Nsec: nsec}
	}
	return ts, ts[0].Nsec == unix.UTIME_OMIT && ts[1].Nsec == unix.UTIME_OMIT, codeOK
}

// decodeTimevals decodes utimes' and futimesat's struct timeval[2].
func decodeTimevals(b []byte) (ts [2]unix.Timespec, code int) {
	for i := range ts {
		sec := int64(binary.NativeEndian.Uint64(b[16*i:]))
		usec := int64(binary.NativeEndian.Uint64(b[16*i+8:]))
		if usec < 0 || usec >= 1000000 {
			return ts, int(unix.EINVAL)
		}
		ts[i] = unix.Timespec{Sec: sec, Nsec: usec * 1000}
	}
	return ts, codeOK
}

// decodeUtimbuf decodes utime's struct utimbuf {actime, modtime}.
func decodeUtimbuf(b []byte) [2]unix.Timespec {
	return [2]unix.Timespec{
		{Sec: int64(binary.NativeEndian.Uint64(b[0:]))},
		{Sec: int64(binary.NativeEndian.Uint64(b[8:]))},
	}
}

// nowTimes is what a NULL times pointer means.
var nowTimes = [2]unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
