package seccomp

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/net/bpf"
)

// NetMode selects which sockets socket(2) and socketpair(2) may create.
type NetMode uint8

// Network modes (policy `net` lines map onto these).
const (
	// NetNone: no socket(2) at all (EAFNOSUPPORT); socketpair(AF_UNIX)
	// with SOCK_STREAM or SOCK_SEQPACKET only.
	NetNone NetMode = iota
	// NetUnix: AF_UNIX sockets of any type, and AF_UNIX pairs. Connecting
	// to a named socket is then the policy's explicit choice (R50).
	NetUnix
	// NetInet: NetUnix plus AF_INET and AF_INET6 stream and datagram
	// sockets; SOCK_RAW and other types get EPERM. Ports are Landlock's.
	NetInet
	// NetAll: AF_UNIX, AF_INET and AF_INET6 of any type (the kernel's
	// CAP_NET_RAW check decides raw sockets) and AF_NETLINK with
	// NETLINK_ROUTE. AF_PACKET, AF_ALG, AF_VSOCK and the rest stay
	// EAFNOSUPPORT.
	NetAll
)

// String returns the policy keyword ("none", "unix", "inet", "all").
func (m NetMode) String() string {
	switch m {
	case NetNone:
		return "none"
	case NetUnix:
		return "unix"
	case NetInet:
		return "inet"
	case NetAll:
		return "all"
	}
	return fmt.Sprintf("net(%d)", uint8(m))
}

// Deny is a policy `syscall deny` line: Name fails with Errno (0 means
// EPERM), or kills the process when Kill is set.
type Deny struct {
	Name  string
	Errno uint16
	Kill  bool
}

// Profile describes the filter for one worker. The zero value (plus Arch)
// is the default sandbox: every path syscall brokered or denied, the
// baseline allowed, net none, unknown syscalls ENOSYS.
//
// Syscall names are the kernel's (x/sys's SYS_* in lower case). A name that
// exists on another supported architecture but not on Arch is ignored, so
// one policy serves both; a name no architecture knows is an error.
type Profile struct {
	// Arch is the architecture of the worker; zero means [NativeArch].
	Arch Arch
	// DenyErrno answers path syscalls that are not brokered (policy
	// default-errno); zero means EACCES (R22).
	DenyErrno uint16
	// Disable turns optional brokered syscalls off: they get DenyErrno
	// without a notification (C-22, C-45).
	Disable []string
	// Enable turns opt-in brokered syscalls on (inotify_add_watch).
	Enable []string
	// Allow lists policy `syscall allow` names. It may allow unnamed
	// syscalls, restricted ones (SysV IPC, fchmod, fchown, fsetxattr,
	// fremovexattr) and drop the argument checks of personality and fcntl.
	// Allowing a path syscall, a dangerous one, or one whose checks guard
	// the sandbox (clone, seccomp, prctl, ...) is an error.
	Allow []string
	// UnsafeAllow allows dangerous syscalls (io_uring, bpf, ptrace, …)
	// as well as what Allow accepts. What they reach is then guarded by
	// Landlock alone (R54); path syscalls and filter installation remain
	// impossible to allow.
	UnsafeAllow []string
	// Deny lists policy `syscall deny` lines. They narrow: a denied name
	// gets its errno (or a kill) whatever its class, brokered ones included.
	Deny []Deny
	// Default answers every syscall the filter does not name. Zero means
	// ERRNO(ENOSYS): libc falls back to older (trapped) syscalls, and new
	// kernel syscalls stay closed (R44). It must be ActKillProcess, ActTrap
	// or an ActErrno.
	Default Action
	// Net selects the socket families (R50).
	Net NetMode
	// SysVIPC allows the SysV IPC syscalls; set it when the worker has its
	// own IPC namespace (R53, S-18).
	SysVIPC bool
}

// Build returns the profile's filter program. Build fails, saying why, when
// the profile asks for something the sandbox cannot grant (see Allow) or
// names an unknown syscall.
func (p Profile) Build() ([]bpf.RawInstruction, error) {
	f, err := p.Filter()
	if err != nil {
		return nil, err
	}
	return f.Assemble()
}

// Notified returns the syscalls this profile sends to the broker, sorted.
func (p Profile) Notified() ([]string, error) {
	f, err := p.Filter()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range f.Rules {
		if r.unconditional() && r.Action == ActNotify {
			out = append(out, f.Arch.SyscallName(r.Nr))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Filter compiles the profile into rule form. Build is Filter followed by
// [Filter.Assemble].
//
// Every syscall number gets exactly one rule, so the order of R44 is a
// precedence, not an instruction order: architecture and x32 checks come
// first in the program; then, per syscall, Deny; path classes (notify or
// deny); dangerous (errno); the baseline with argument checks and Allow;
// and the default for everything unnamed.
func (p Profile) Filter() (*Filter, error) {
	c, err := p.compile()
	if err != nil {
		return nil, fmt.Errorf("seccomp: build profile: %w", err)
	}
	return c, nil
}

type nameSet map[string]bool

func (p Profile) compile() (*Filter, error) {
	arch := p.Arch
	if arch == 0 {
		a, ok := NativeArch()
		if !ok {
			return nil, errors.New("no architecture given and this one is not supported")
		}
		arch = a
	}
	if arch.table() == nil {
		return nil, fmt.Errorf("unsupported architecture %v", arch)
	}
	denyErrno := p.DenyErrno
	if denyErrno == 0 {
		denyErrno = errEACCES
	}
	if denyErrno > maxErrno {
		return nil, fmt.Errorf("deny errno %d above %d", denyErrno, maxErrno)
	}
	def := p.Default
	if def == 0 {
		def = ActErrno(errENOSYS)
	}
	if err := checkDefault(def); err != nil {
		return nil, err
	}
	if p.Net > NetAll {
		return nil, fmt.Errorf("unknown net mode %d", p.Net)
	}

	sets := map[string]nameSet{}
	for _, l := range []struct {
		what  string
		names []string
	}{{"disable", p.Disable}, {"enable", p.Enable}, {"allow", p.Allow}, {"unsafe-allow", p.UnsafeAllow}} {
		s := nameSet{}
		for _, n := range l.names {
			if !knownSyscall(n) {
				return nil, fmt.Errorf("%s %q: unknown syscall", l.what, n)
			}
			s[n] = true
		}
		sets[l.what] = s
	}
	deny := map[string]Action{}
	for _, d := range p.Deny {
		if !knownSyscall(d.Name) {
			return nil, fmt.Errorf("deny %q: unknown syscall", d.Name)
		}
		act := ActKillProcess
		if !d.Kill {
			e := d.Errno
			if e == 0 {
				e = errEPERM
			}
			if e > maxErrno {
				return nil, fmt.Errorf("deny %s: errno %d above %d", d.Name, e, maxErrno)
			}
			act = ActErrno(e)
		}
		if prev, dup := deny[d.Name]; dup && prev != act {
			return nil, fmt.Errorf("deny %s: given twice with different actions", d.Name)
		}
		deny[d.Name] = act
	}

	// Validate every list against the classes, arch-independently, so a
	// policy is rejected the same way on every machine.
	for n := range sets["disable"] {
		switch Classify(n) {
		case ClassOptional, ClassOptIn:
		case ClassBrokered:
			return nil, fmt.Errorf("disable %s: always brokered; only %s can be disabled", n, strings.Join(namesOf(ClassOptional, ClassOptIn), ", "))
		default:
			return nil, fmt.Errorf("disable %s: not a brokered syscall; optional ones are %s", n, strings.Join(namesOf(ClassOptional, ClassOptIn), ", "))
		}
		if sets["enable"][n] {
			return nil, fmt.Errorf("%s: both enabled and disabled", n)
		}
	}
	for n := range sets["enable"] {
		switch Classify(n) {
		case ClassOptional, ClassOptIn, ClassBrokered:
		default:
			return nil, fmt.Errorf("enable %s: not a brokered syscall; opt-in ones are %s", n, strings.Join(namesOf(ClassOptIn), ", "))
		}
	}
	for _, w := range []string{"allow", "unsafe-allow"} {
		for n := range sets[w] {
			if err := checkAllow(n, w == "unsafe-allow"); err != nil {
				return nil, fmt.Errorf("%s %s: %w", w, n, err)
			}
			if _, ok := deny[n]; ok {
				return nil, fmt.Errorf("%s: both allowed and denied", n)
			}
		}
	}

	f := &Filter{Arch: arch, BadArch: ActKillProcess, Default: def}
	allowed := func(n string) bool { return sets["allow"][n] || sets["unsafe-allow"][n] }
	cat := catalog()
	for _, n := range arch.Syscalls() {
		nr, _ := arch.Syscall(n)
		r := Rule{Nr: nr}
		e := cat[n]
		switch act, denied := deny[n]; {
		case denied:
			r.Action = act
		case e == nil:
			if !allowed(n) {
				continue // default
			}
			r.Action = ActAllow
		default:
			switch e.class {
			case ClassBrokered:
				r.Action = ActNotify
			case ClassOptional:
				r.Action = ActNotify
				if sets["disable"][n] {
					r.Action = ActErrno(denyErrno)
				}
			case ClassOptIn:
				r.Action = ActErrno(denyErrno)
				if sets["enable"][n] {
					r.Action = ActNotify
				}
			case ClassPathDenied:
				r.Action = ActErrno(denyErrno)
				if e.errno != 0 {
					r.Action = ActErrno(e.errno)
				}
			case ClassDangerous:
				r.Action = ActErrno(e.errno)
				if sets["unsafe-allow"][n] {
					r.Action = ActAllow
				}
			case ClassRestricted:
				r.Action = ActErrno(e.errno)
				if allowed(n) || (e.sysv && p.SysVIPC) {
					r.Action = ActAllow
					if e.rule != nil {
						nr := r.Nr
						r = e.rule(&p)
						r.Nr = nr
					}
				}
			case ClassAllowed:
				r.Action = ActAllow
			case ClassChecked:
				if e.widen && allowed(n) {
					r.Action = ActAllow
					break
				}
				r = e.rule(&p)
				r.Nr = nr
			}
		}
		f.Rules = append(f.Rules, r)
	}
	return f, nil
}

func checkDefault(a Action) error {
	switch uint32(a) & retActionFull {
	case retKillProcess, retTrap:
		return nil
	case retErrno:
		if e, _ := a.Errno(); e == 0 || e > maxErrno {
			return fmt.Errorf("default action %v: errno must be 1-%d", a, maxErrno)
		}
		return nil
	}
	return fmt.Errorf("default action %v: must be KILL_PROCESS, TRAP or ERRNO; anything else would run or notify syscalls nobody reviewed", a)
}

// checkAllow says why name may not be allowed.
func checkAllow(name string, unsafe bool) error {
	e := catalog()[name]
	if e == nil {
		return nil
	}
	switch e.class {
	case ClassBrokered, ClassOptional, ClassOptIn:
		return errors.New("takes a path and is brokered; allow the path in the policy's file rules instead")
	case ClassPathDenied:
		return fmt.Errorf("takes a path or reaches files without one, so it is never allowed (%s)", e.note)
	case ClassDangerous:
		if unsafe {
			return nil
		}
		return fmt.Errorf("dangerous (%s); only an explicit unsafe allow can permit it", e.note)
	case ClassChecked:
		if !e.widen {
			return fmt.Errorf("argument checks cannot be dropped: %s", e.why)
		}
	}
	return nil
}

// namesOf lists the catalogue's names in the given classes, sorted.
func namesOf(classes ...Class) []string {
	var out []string
	for _, e := range Catalog() {
		for _, c := range classes {
			if e.Class == c {
				out = append(out, e.Name)
			}
		}
	}
	return out
}
