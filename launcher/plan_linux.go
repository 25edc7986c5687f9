//go:build linux

package launcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/policy"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
	"github.com/seed-025014a4/sandbox-exec/sandbox/seccomp"
)

// plan is what the host derives from a policy before starting a worker:
// the Spec the init stage applies, the namespaces it is cloned with, and
// what goes into the report.
type plan struct {
	spec    sandbox.Spec
	profile seccomp.Profile
	// target is the program as the host resolved it ("" if it could not):
	// its interpreter gets Landlock's execute right.
	target  string
	ns      nsPlan
	net     netPlan
	llPaths []llPath
	denies  []string
	notif   sys.NotifProbe
	reqs    []string
	// confineHost: the Cmd asked for ConfineHost (for the report).
	confineHost bool
	// landlockOff is "file:line" of the policy's `landlock off`, "" when
	// the worker gets a Landlock ruleset.
	landlockOff string
	// roots are the glob-free prefixes of the allow rules and grants,
	// whose submounts the report lists (R43).
	roots []root
}

// root is the glob-free prefix of an allow rule or grant that carries
// more than stat, and where it comes from (FILE:LINE).
type root struct{ path, source string }

// planRoots lists the roots of p and grants, each path once (with its
// first source).
func planRoots(p *policy.Policy, grants []policy.Grant) []root {
	var roots []root
	add := func(pattern string, r policy.Right, source string) {
		if r&^policy.Stat == 0 || pattern == "" || pattern[0] != '/' {
			return
		}
		prefix := globFreePrefix(pattern)
		if !slices.ContainsFunc(roots, func(x root) bool { return x.path == prefix }) {
			roots = append(roots, root{prefix, source})
		}
	}
	for _, r := range p.Rules() {
		if r.Allow {
			add(r.Pattern, r.Rights, r.Pos.File+":"+itoa(r.Pos.Line))
		}
	}
	for i, g := range grants {
		add(g.Pattern, g.Rights, policy.GrantFile+":"+itoa(i+1))
	}
	return roots
}

// newPlan derives the worker's Spec from p. It fails early, in the host,
// on anything the init stage could not apply (an unknown syscall on this
// architecture is skipped: policies are shared between architectures),
// and on a `require` this kernel cannot meet.
func newPlan(p *policy.Policy, target string, grants []policy.Grant) (*plan, error) {
	arch, ok := seccomp.NativeArch()
	if !ok {
		return nil, &Error{Op: "policy", Err: errors.New("no seccomp support for this architecture")}
	}
	pl := &plan{target: target}
	// The core cannot run without user notification, ADDFD and
	// ADDFD_FLAG_SEND (R1): there is no safe fallback, required or not.
	pl.notif = sys.ProbeNotif()
	for _, err := range []error{pl.notif.UserNotif, pl.notif.NewListener, pl.notif.Addfd, pl.notif.AddfdSend} {
		if err != nil {
			return nil, &Error{Op: "kernel", Err: err}
		}
	}
	pl.ns = planNamespaces(p.Namespaces())
	reqs, err := checkRequires(p, pl.ns, pl.notif)
	if err != nil {
		return nil, err
	}
	pl.reqs = reqs
	pl.net = planNet(p.Net())

	prof := seccomp.Profile{
		Arch:      arch,
		DenyErrno: uint16(p.DefaultErrno()),
		Net:       pl.net.mode,
		// SysV IPC is safe only in a private IPC namespace (R53, S-18).
		SysVIPC: pl.ns.flags&sys.NamespaceIPC != 0,
	}
	var needLandlock []string // unsafe-allowed syscalls only Landlock limits
	for _, r := range p.Syscalls() {
		if r.Action == "default" {
			switch {
			case r.Kill:
				prof.Default = seccomp.ActKillProcess
			case r.Errno != 0:
				prof.Default = seccomp.ActErrno(uint16(r.Errno))
			}
			continue
		}
		for _, name := range r.Names {
			if _, ok := arch.Syscall(name); !ok {
				continue // policies are shared between architectures
			}
			class := seccomp.Classify(name)
			switch {
			case r.Action == "unsafe-allow":
				// The policy's explicit opt-in (the parser takes only
				// dangerous syscalls here); Build still refuses path
				// syscalls and filter installation.
				prof.UnsafeAllow = append(prof.UnsafeAllow, name)
				if u, _ := policy.LookupUnsafe(name); u.NeedsLandlock {
					needLandlock = append(needLandlock, name+" ("+r.Pos.String()+")")
				}
			case r.Action == "allow" && (class == seccomp.ClassOptional || class == seccomp.ClassOptIn):
				// A path syscall is never allowed natively: "allow"
				// means "broker it".
				prof.Enable = append(prof.Enable, name)
			case r.Action == "allow":
				prof.Allow = append(prof.Allow, name)
			case class == seccomp.ClassOptional && r.Errno == 0 && !r.Kill:
				// Off: the policy's deny errno, without a notification.
				prof.Disable = append(prof.Disable, name)
			default:
				prof.Deny = append(prof.Deny, seccomp.Deny{Name: name, Errno: uint16(r.Errno), Kill: r.Kill})
			}
		}
	}
	if len(needLandlock) > 0 {
		// io_uring opens files without a trapped syscall: the worker's
		// Landlock ruleset is then the only check (R54), so its absence is
		// fatal, required or not (R1). The parser already refuses these
		// together with `landlock off`.
		on, pos := p.Landlock()
		if !on {
			return nil, &Error{Op: "policy", Err: fmt.Errorf("syscall unsafe-allow %s needs Landlock, which landlock off (%s) turns off", strings.Join(needLandlock, ", "), pos)}
		}
		if _, lerr := sys.LandlockABI(); lerr != nil {
			return nil, &Error{Op: "require", Err: &sys.UnsupportedFeatureError{Name: "landlock (for syscall unsafe-allow " + strings.Join(needLandlock, ", ") + ")",
				MinimumVersion: sandbox.LandlockKernel(1), Err: lerr}}
		}
	}
	prog, err := prof.Build()
	if err != nil {
		return nil, &Error{Op: "policy", Err: fmt.Errorf("build seccomp filter: %w", err)}
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	pl.spec = sandbox.Spec{Filter: filter, WaitKillableRecv: true, DropCapabilities: true}
	pl.roots = planRoots(p, grants)
	// `landlock off`: no ruleset of the worker's own (the parser refuses
	// it together with require landlock). The host's own confinement
	// (ConfineHost) still follows the policy's rules, and a worker of a
	// confined host stays inside the host's domain (file rights only).
	if on, pos := p.Landlock(); on {
		pl.spec.Landlock, pl.llPaths, pl.denies = workerLandlock(p, target, grants, pl.net)
	} else {
		pl.landlockOff = pos.File + ":" + itoa(pos.Line)
	}
	for _, lim := range p.Limits() {
		pl.spec.Rlimits = append(pl.spec.Rlimits, sandbox.Rlimit{Resource: lim.Resource, Cur: lim.Soft, Max: lim.Hard})
	}
	pl.profile = prof
	return pl, nil
}

// netPlan is the network part of a worker: socket families in the filter,
// TCP ports and scopes in Landlock.
type netPlan struct {
	mode        seccomp.NetMode
	handledNet  uint64
	ports       []sandbox.LandlockPort
	scoped      uint64
	unixSockets bool
}

// planNet maps `net` lines onto the filter and Landlock:
//
//   - net none|unix: no TCP at all; Landlock handles bind and connect and
//     allows no port (a backstop: the filter already refuses AF_INET).
//   - net tcp-connect PORT... / tcp-bind PORT...: implies inet sockets in
//     the filter; Landlock (ABI 4) allows exactly those ports, for both
//     directions handled: a port under neither list is refused.
//   - net inet|all without ports: TCP is not restricted by Landlock.
//
// Scopes (ABI 6): signals are always scoped (a worker never signals
// outside its own tree); abstract UNIX sockets too, unless the policy
// asked for UNIX sockets (net unix or net all), which is also when
// pathname UNIX sockets stay open to connect(2) (RESOLVE_UNIX, ABI 9).
func planNet(n policy.Net) netPlan {
	np := netPlan{mode: netMode(n.Mode)}
	np.unixSockets = n.Mode == policy.NetUnix || n.Mode == policy.NetAll
	ports := len(n.TCPConnect)+len(n.TCPBind) > 0
	if ports && np.mode < seccomp.NetInet {
		np.mode = seccomp.NetInet
	}
	if ports || n.Mode == policy.NetNone || n.Mode == policy.NetUnix {
		np.handledNet = llNetTCP
	}
	for _, p := range n.TCPConnect {
		np.ports = append(np.ports, sandbox.LandlockPort{Port: p, Access: sandbox.AccessNetConnectTCP})
	}
	for _, p := range n.TCPBind {
		np.ports = append(np.ports, sandbox.LandlockPort{Port: p, Access: sandbox.AccessNetBindTCP})
	}
	np.scoped = sandbox.ScopeSignal
	if !np.unixSockets {
		np.scoped |= sandbox.ScopeAbstractUnixSocket
	}
	return np
}

func netMode(m policy.NetMode) seccomp.NetMode {
	switch m {
	case policy.NetUnix:
		return seccomp.NetUnix
	case policy.NetInet:
		return seccomp.NetInet
	case policy.NetAll:
		return seccomp.NetAll
	}
	return seccomp.NetNone
}

// nsPlan says which namespaces the init stage is cloned with.
type nsPlan struct {
	requested []string
	applied   []string
	flags     uintptr
	// implicitUser: the policy did not ask for a user namespace, but the
	// others need one (no CAP_SYS_ADMIN).
	implicitUser bool
	skipped      []NamespaceSkip
}

// NamespaceSkip is a namespace the policy asked for and did not get.
type NamespaceSkip struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

func nsFlag(name string) (uintptr, string) {
	for _, t := range namespaceTypes {
		if t.name == name {
			return t.flag, t.feature
		}
	}
	return 0, ""
}

// planNamespaces decides the namespaces of a worker: each one the policy
// asks for that this process can create, with a user namespace first when
// the policy asks for one or when the process lacks CAP_SYS_ADMIN.
// Without `require`, what cannot be created is skipped and reported.
func planNamespaces(want []string) nsPlan {
	ns := nsPlan{requested: slices.Clone(want)}
	if len(want) == 0 {
		return ns
	}
	var base uintptr
	if slices.Contains(want, "user") || !privileged() {
		if err := probeClone(sys.NamespaceUser); err != nil {
			reason := err.Error()
			if slices.Contains(want, "user") {
				ns.skipped = append(ns.skipped, NamespaceSkip{"user", reason})
			}
			if !privileged() {
				for _, n := range want {
					if n != "user" {
						ns.skipped = append(ns.skipped, NamespaceSkip{n, "needs CAP_SYS_ADMIN or a user namespace, and " + reason})
					}
				}
				return ns
			}
		} else {
			base = sys.NamespaceUser
			ns.implicitUser = !slices.Contains(want, "user")
		}
	}
	ns.flags = base
	for _, n := range want {
		flag, _ := nsFlag(n)
		if flag == 0 || flag == sys.NamespaceUser {
			continue
		}
		if err := probeClone(base | flag); err != nil {
			ns.skipped = append(ns.skipped, NamespaceSkip{n, err.Error()})
			continue
		}
		ns.flags |= flag
	}
	for _, t := range namespaceTypes {
		if ns.flags&t.flag != 0 {
			ns.applied = append(ns.applied, t.name)
		}
	}
	return ns
}

// sysProcAttr returns the clone flags and id maps of ns: the host's uid and
// gid map to themselves (so the broker, which checks permissions as the
// host's uid, and the worker agree on who owns what), setgroups is denied,
// and CAP_SETPCAP is kept across the re-exec as an ambient capability so
// that the init stage can empty its bounding set even when it is not root
// in the new namespace.
func (ns nsPlan) sysProcAttr(attr *syscall.SysProcAttr) {
	attr.Cloneflags = ns.flags
	if ns.flags&sys.NamespaceUser == 0 {
		return
	}
	uid, gid := os.Geteuid(), os.Getegid()
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
	attr.GidMappingsEnableSetgroups = false
	attr.AmbientCaps = []uintptr{unix.CAP_SETPCAP}
}

// checkRequires fails, naming the feature and the Linux release that has
// it, when a `require` line cannot be met (exit status 125 in the
// command).
func checkRequires(p *policy.Policy, ns nsPlan, notif sys.NotifProbe) ([]string, error) {
	var met []string
	for _, r := range p.Requires() {
		met = append(met, r.String())
		var err error
		switch r.Feature {
		case "landlock", "landlock-net", "landlock-scope":
			min := r.MinVersion
			switch r.Feature {
			case "landlock-net":
				min = 4
			case "landlock-scope":
				min = 6
			}
			abi, lerr := sys.LandlockABI()
			switch {
			case lerr != nil:
				err = &sys.UnsupportedFeatureError{Name: r.String(), MinimumVersion: sandbox.LandlockKernel(min), Err: lerr}
			case abi < min:
				err = &sys.UnsupportedFeatureError{Name: r.String(), MinimumVersion: sandbox.LandlockKernel(min),
					Err: fmt.Errorf("this kernel offers Landlock ABI %d", abi)}
			}
		case "user-notif":
			err = notif.UserNotif
		case "addfd-send":
			err = notif.AddfdSend
		case "sync-wakeup":
			err = notif.SyncWakeup
		case "wait-killable-recv":
			err = notif.WaitKillableRecv
		case "userns", "pidns", "netns", "ipcns", "utsns":
			name := strings.TrimSuffix(r.Feature, "ns")
			for _, s := range ns.skipped {
				if s.Name == name {
					err = &sys.UnsupportedFeatureError{Name: r.Feature, MinimumVersion: "3.8", Err: errors.New(s.Reason)}
				}
			}
			if err == nil && !slices.Contains(ns.requested, name) {
				flag, _ := nsFlag(name)
				err = probeNamespace(flag)
			}
		default:
			err = fmt.Errorf("unknown feature %q", r.Feature)
		}
		if err != nil {
			return nil, &Error{Op: "require", Err: fmt.Errorf("%s (%s) cannot be met: %w", r, r.Pos, err)}
		}
	}
	return met, nil
}

// resolveTarget finds the program the init stage will exec, the way it
// will (lookPath with the worker's PATH, relative to dir), and returns its
// real path, "" if it cannot be found from the host.
func resolveTarget(name string, env []string, dir string) string {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		base := dir
		if base == "" {
			base, _ = os.Getwd()
		}
		return filepath.Join(base, p)
	}
	var candidates []string
	if strings.Contains(name, "/") {
		candidates = []string{abs(name)}
	} else {
		pathEnv := "/usr/local/bin:/usr/bin:/bin"
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				pathEnv = v
			}
		}
		for _, d := range strings.Split(pathEnv, ":") {
			if d == "" {
				d = "."
			}
			candidates = append(candidates, abs(d+"/"+name))
		}
	}
	for _, c := range candidates {
		var st unix.Stat_t
		if unix.Stat(c, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
			continue
		}
		if real, err := filepath.EvalSymlinks(c); err == nil {
			return filepath.Clean(real)
		}
	}
	return ""
}
