package seccomp

import "fmt"

// Action is a filter's verdict in the kernel's SECCOMP_RET_* encoding: the
// action in the high 16 bits, its data (an errno for ERRNO) in the low 16.
//
// When several filters are stacked the kernel applies the most severe
// verdict, in this order: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, USER_NOTIF,
// TRACE, LOG, ALLOW. A filter a worker adds on top of ours can therefore turn
// a notified call into an error or a signal, never into an allowed call.
type Action uint32

// Actions. ActKillThread is the zero value; types that use Action as an
// optional field (Profile.Default) therefore cannot ask for it, which is
// deliberate: killing one thread leaves a process in an undefined state.
const (
	ActKillProcess Action = 0x80000000 // SECCOMP_RET_KILL_PROCESS (4.14)
	ActKillThread  Action = 0x00000000 // SECCOMP_RET_KILL_THREAD
	ActTrap        Action = 0x00030000 // SECCOMP_RET_TRAP: SIGSYS
	ActNotify      Action = 0x7fc00000 // SECCOMP_RET_USER_NOTIF (5.0): ask the listener
	ActTrace       Action = 0x7ff00000 // SECCOMP_RET_TRACE: ENOSYS without a tracer
	ActLog         Action = 0x7ffc0000 // SECCOMP_RET_LOG: allow and log
	ActAllow       Action = 0x7fff0000 // SECCOMP_RET_ALLOW
)

// ActErrno returns the action that fails the syscall with errno without
// running it. The kernel clamps errno to 4095. Profile.Build rejects errno
// values outside 1-4095: ERRNO(0) would make the call "succeed" with return
// value 0 without running it.
func ActErrno(errno uint16) Action { return Action(retErrno | uint32(errno)) }

// Errno returns the errno of an ActErrno action and whether a is one.
func (a Action) Errno() (uint16, bool) {
	if uint32(a)&retActionFull != retErrno {
		return 0, false
	}
	return uint16(uint32(a) & retData), true
}

// String returns the action in the form the disassembler prints:
// "ALLOW", "NOTIFY", "ERRNO(13 EACCES)", "KILL_PROCESS", …
func (a Action) String() string {
	switch uint32(a) & retActionFull {
	case retKillProcess:
		return "KILL_PROCESS"
	case retKillThread:
		return "KILL_THREAD"
	case retTrap:
		return "TRAP"
	case retErrno:
		e := uint16(uint32(a) & retData)
		if n := errnoName(e); n != "" {
			return fmt.Sprintf("ERRNO(%d %s)", e, n)
		}
		return fmt.Sprintf("ERRNO(%d)", e)
	case retUserNotif:
		return "NOTIFY"
	case retTrace:
		return "TRACE"
	case retLog:
		return "LOG"
	case retAllow:
		return "ALLOW"
	}
	return fmt.Sprintf("ACTION(%#x)", uint32(a))
}

// errnoName names the errno values this package uses and a few a policy is
// likely to choose.
func errnoName(e uint16) string {
	switch e {
	case errEPERM:
		return "EPERM"
	case errENOENT:
		return "ENOENT"
	case errEACCES:
		return "EACCES"
	case errEINVAL:
		return "EINVAL"
	case errENOSYS:
		return "ENOSYS"
	case errEAFNOSUPPORT:
		return "EAFNOSUPPORT"
	}
	return ""
}

// actionValid reports whether the kernel knows a's action (its data bits
// are free for every action but only meaningful for ERRNO, TRAP and TRACE).
func actionValid(a Action) bool {
	switch uint32(a) & retActionFull {
	case retKillProcess, retKillThread, retTrap, retErrno, retUserNotif, retTrace, retLog, retAllow:
		return true
	}
	return false
}
