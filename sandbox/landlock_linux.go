//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// Landlock is the Landlock part of a Spec: the rights the ruleset handles
// and the paths and ports that keep some of them. Access values use the
// kernel's LANDLOCK_ACCESS_* bits.
//
// Landlock rules are "path beneath" rules on existing objects: a rule on a
// directory grants its rights on everything beneath it, and nothing can
// take a right away below a rule. The launcher therefore maps each policy
// pattern to its longest glob-free prefix, so the ruleset is at most as
// wide as those prefixes and never narrower than the policy; deny rules
// cannot be expressed at all. Landlock is the backstop; the broker stays
// exact.
type Landlock struct {
	// MinABI is the lowest Landlock ABI the policy accepts (`require
	// landlock>=N`). With BestEffort unset, a kernel below it is an error.
	MinABI int `json:"min_abi,omitempty"`
	// BestEffort drops rights the kernel's ABI does not know instead of
	// failing; the Result says what was dropped.
	BestEffort bool `json:"best_effort,omitempty"`

	HandledFS  uint64 `json:"handled_fs"`
	HandledNet uint64 `json:"handled_net,omitempty"`
	Scoped     uint64 `json:"scoped,omitempty"`

	Paths []LandlockPath `json:"paths,omitempty"`
	Ports []LandlockPort `json:"ports,omitempty"`
}

// LandlockPath allows Access beneath Path. A missing path is skipped, or,
// with OrAncestor, replaced by its nearest existing ancestor, so that what
// a policy lets be created where nothing exists yet can be created (and
// then used) at all: Landlock rules attach to existing objects only.
type LandlockPath struct {
	Path       string `json:"path"`
	Access     uint64 `json:"access"`
	OrAncestor bool   `json:"or_ancestor,omitempty"`
	// ExactAccess are rights of Access that never move to an ancestor:
	// when Path is missing they are skipped, and Path is listed in
	// SkippedPaths as well as in WidenedPaths. Zero moves every right.
	ExactAccess uint64 `json:"exact_access,omitempty"`
}

// AddedPath is one path rule as added to a ruleset.
type AddedPath struct {
	Requested string `json:"requested"`
	Path      string `json:"path"`
	Access    uint64 `json:"access"`
}

// LandlockPort allows Access (bind, connect) on a TCP port.
type LandlockPort struct {
	Port   uint16 `json:"port"`
	Access uint64 `json:"access"`
}

// LandlockResult tells what the Landlock step enforced.
type LandlockResult struct {
	ABI        int    `json:"abi"`
	Enforced   bool   `json:"enforced"`
	HandledFS  uint64 `json:"handled_fs"`
	HandledNet uint64 `json:"handled_net"`
	Scoped     uint64 `json:"scoped"`
	// DroppedFS, DroppedNet and DroppedScoped are what the policy asked for
	// but this kernel's ABI cannot enforce.
	DroppedFS     uint64 `json:"dropped_fs,omitempty"`
	DroppedNet    uint64 `json:"dropped_net,omitempty"`
	DroppedScoped uint64 `json:"dropped_scoped,omitempty"`
	// Rules is the number of path and port rules added.
	Rules int `json:"rules"`
	// Added are the path rules as the kernel got them: the path opened
	// (an ancestor for a widened one) and the rights kept (file rights
	// only on a file). Requested is the path asked for.
	Added []AddedPath `json:"added,omitempty"`
	// SkippedPaths did not exist; WidenedPaths did not exist either and
	// were replaced by their nearest existing ancestor ("missing ->
	// ancestor"). A widened path whose ExactAccess rights were skipped is
	// in both lists.
	SkippedPaths []string `json:"skipped_paths,omitempty"`
	WidenedPaths []string `json:"widened_paths,omitempty"`
	// AllThreads is set when every thread of the process was restricted
	// in place (RestrictAllThreads), not just the calling one.
	AllThreads bool `json:"all_threads,omitempty"`
}

// LandlockABI returns the Landlock ABI version of the running kernel, 0 if
// Landlock is missing or disabled.
func LandlockABI() int {
	v, err := sys.LandlockABI()
	if err != nil {
		return 0
	}
	return v
}

// LandlockSupported returns the rights an ABI version can handle:
// file system, network and scopes. It is a pure function of abi, so what
// a kernel enforces can be computed (and tested) for any ABI level.
func LandlockSupported(abi int) (fs, net, scoped uint64) {
	switch {
	case abi <= 0:
		return 0, 0, 0
	case abi == 1:
		fs = 1<<13 - 1
	case abi == 2:
		fs = 1<<14 - 1
	case abi <= 4:
		fs = 1<<15 - 1
	case abi <= 8:
		fs = 1<<16 - 1
	default:
		fs = 1<<17 - 1 // RESOLVE_UNIX
	}
	if abi >= 4 {
		net = 1<<2 - 1
	}
	if abi >= 6 {
		scoped = 1<<2 - 1
	}
	return fs, net, scoped
}

// Landlock rights (LANDLOCK_ACCESS_FS_*, LANDLOCK_ACCESS_NET_*) and scopes
// (LANDLOCK_SCOPE_*), for packages that describe rulesets without calling
// Landlock themselves.
const (
	AccessFSExecute     = ll.AccessFSExecute
	AccessFSWriteFile   = ll.AccessFSWriteFile
	AccessFSReadFile    = ll.AccessFSReadFile
	AccessFSReadDir     = ll.AccessFSReadDir
	AccessFSRemoveDir   = ll.AccessFSRemoveDir
	AccessFSRemoveFile  = ll.AccessFSRemoveFile
	AccessFSMakeChar    = ll.AccessFSMakeChar
	AccessFSMakeDir     = ll.AccessFSMakeDir
	AccessFSMakeReg     = ll.AccessFSMakeReg
	AccessFSMakeSock    = ll.AccessFSMakeSock
	AccessFSMakeFifo    = ll.AccessFSMakeFifo
	AccessFSMakeBlock   = ll.AccessFSMakeBlock
	AccessFSMakeSym     = ll.AccessFSMakeSym
	AccessFSRefer       = ll.AccessFSRefer
	AccessFSTruncate    = ll.AccessFSTruncate
	AccessFSIoctlDev    = ll.AccessFSIoctlDev
	AccessFSResolveUnix = ll.AccessFSResolveUnix

	AccessNetBindTCP    = ll.AccessNetBindTCP
	AccessNetConnectTCP = ll.AccessNetConnectTCP

	ScopeAbstractUnixSocket = ll.ScopeAbstractUnixSocket
	ScopeSignal             = ll.ScopeSignal
)

// Landlock file system rights, by name, in bit order.
var landlockFSNames = []string{
	"execute", "write_file", "read_file", "read_dir", "remove_dir", "remove_file",
	"make_char", "make_dir", "make_reg", "make_sock", "make_fifo", "make_block",
	"make_sym", "refer", "truncate", "ioctl_dev", "resolve_unix",
}

var (
	landlockNetNames   = []string{"bind_tcp", "connect_tcp"}
	landlockScopeNames = []string{"abstract_unix_socket", "signal"}
)

func bitNames(mask uint64, names []string) []string {
	out := []string{}
	for i, n := range names {
		if mask&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	for i := len(names); i < 64; i++ {
		if mask&(1<<i) != 0 {
			out = append(out, fmt.Sprintf("bit%d", i))
		}
	}
	return out
}

// LandlockFSNames names the file system rights in mask ("read_file", ...).
func LandlockFSNames(mask uint64) []string { return bitNames(mask, landlockFSNames) }

// LandlockNetNames names the network rights in mask ("bind_tcp", ...).
func LandlockNetNames(mask uint64) []string { return bitNames(mask, landlockNetNames) }

// LandlockScopeNames names the scopes in mask ("signal", ...).
func LandlockScopeNames(mask uint64) []string { return bitNames(mask, landlockScopeNames) }

// File rights are the only ones a rule on a non-directory may carry.
const landlockFileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// applyLandlock restricts the calling thread only (landlock_restrict_self
// without TSYNC).
//
// Preconditions: locked thread, no_new_privs set.
func applyLandlock(l *Landlock) (LandlockResult, error) {
	rfd, res, err := buildRuleset(l)
	if err != nil || rfd < 0 {
		return res, err
	}
	defer unix.Close(rfd)
	if err := ll.LandlockRestrictSelf(rfd, 0); err != nil {
		return res, fmt.Errorf("landlock_restrict_self: %w", err)
	}
	res.Enforced = true
	return res, nil
}

// RestrictThread restricts the calling thread with l, setting
// no_new_privs on it first when it lacks CAP_SYS_ADMIN. It is the first
// half of confining a whole host process before Landlock ABI 8: the
// caller then execs its own program from this thread, so that the new
// image starts with one thread, already in the domain, and every thread
// it creates joins that same domain.
//
// Restricting each thread of a running process separately (go-landlock's
// AllThreadsLandlockRestrictSelf, through psx) is not the same: every
// landlock_restrict_self makes a new domain, so the threads end up in
// sibling domains, and Landlock's ptrace rule (the tracer's domain must be
// an ancestor of the tracee's) then forbids a broker thread to read the
// memory of a worker forked by another thread. That holds with and
// without cgo; psx itself works either way (libpsx's C code with cgo,
// because syscall.AllThreadsSyscall fails with ENOTSUP once cgo is linked
// in, which the net package does by default).
//
// Preconditions: locked thread, which then execs (or exits).
func RestrictThread(l *Landlock) (LandlockResult, error) {
	if !hasCapability(unix.CAP_SYS_ADMIN) {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return LandlockResult{}, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	return applyLandlock(l)
}

// RestrictAllThreads restricts every thread of the calling process with l
// into one domain, in place, with LANDLOCK_RESTRICT_SELF_TSYNC (Landlock
// ABI 8). Before ABI 8 it returns an error wrapping sys.ErrNotSupported
// and changes nothing; see RestrictThread. Without CAP_SYS_ADMIN it sets
// no_new_privs on every thread first, which every later child inherits.
func RestrictAllThreads(l *Landlock) (LandlockResult, error) {
	if abi := LandlockABI(); abi < 8 {
		return LandlockResult{ABI: abi}, &sys.UnsupportedFeatureError{Name: "landlock-tsync", MinimumVersion: LandlockKernel(8),
			Err: fmt.Errorf("Landlock ABI %d restricts one thread at a time", abi)}
	}
	rfd, res, err := buildRuleset(l)
	if err != nil || rfd < 0 {
		return res, err
	}
	defer unix.Close(rfd)
	if !hasCapability(unix.CAP_SYS_ADMIN) {
		if err := ll.AllThreadsPrctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return res, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS) on all threads: %w", err)
		}
	}
	if err := ll.LandlockRestrictSelf(rfd, ll.FlagRestrictSelfTSync); err != nil {
		return res, fmt.Errorf("landlock_restrict_self(TSYNC): %w", err)
	}
	res.Enforced, res.AllThreads = true, true
	return res, nil
}

// Downgrade computes what a kernel with Landlock ABI abi enforces of l: the
// rights it handles and those it drops. It is a pure function of l and
// abi. enforce is false when there is nothing to enforce (no Landlock, or
// nothing handled); the error, which wraps sys.ErrNotSupported, is set
// when l accepts no downgrade (BestEffort unset) or asks for an ABI above
// abi (MinABI).
func Downgrade(l *Landlock, abi int) (res LandlockResult, enforce bool, err error) {
	res.ABI = abi
	if abi < max(l.MinABI, 1) {
		need := max(l.MinABI, 1)
		err := &sys.UnsupportedFeatureError{Name: fmt.Sprintf("landlock>=%d", need), MinimumVersion: LandlockKernel(need)}
		if !l.BestEffort || l.MinABI > 0 {
			return res, false, err
		}
		res.DroppedFS, res.DroppedNet, res.DroppedScoped = l.HandledFS, l.HandledNet, l.Scoped
		return res, false, nil
	}
	fsOK, netOK, scopeOK := LandlockSupported(abi)
	res.HandledFS, res.HandledNet, res.Scoped = l.HandledFS&fsOK, l.HandledNet&netOK, l.Scoped&scopeOK
	res.DroppedFS, res.DroppedNet, res.DroppedScoped = l.HandledFS&^fsOK, l.HandledNet&^netOK, l.Scoped&^scopeOK
	if !l.BestEffort && (res.DroppedFS|res.DroppedNet|res.DroppedScoped) != 0 {
		return res, false, &sys.UnsupportedFeatureError{Name: "landlock rights beyond ABI " + fmt.Sprint(abi), MinimumVersion: LandlockKernel(abi + 1)}
	}
	return res, res.HandledFS|res.HandledNet|res.Scoped != 0, nil
}

// buildRuleset creates the ruleset of l and adds its rules. It returns -1
// and no error when there is nothing to enforce (no Landlock with
// BestEffort, or nothing handled).
func buildRuleset(l *Landlock) (int, LandlockResult, error) {
	res, enforce, err := Downgrade(l, LandlockABI())
	if err != nil || !enforce {
		return -1, res, err
	}
	attr := ll.RulesetAttr{HandledAccessFS: res.HandledFS, HandledAccessNet: res.HandledNet, Scoped: res.Scoped}
	rfd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return -1, res, fmt.Errorf("landlock_create_ruleset: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(rfd)
		}
	}()
	if res.HandledFS != 0 {
		for _, p := range l.Paths {
			added, err := addPathRule(rfd, p, res.HandledFS, &res)
			if err != nil {
				return -1, res, err
			}
			if added {
				res.Rules++
			}
		}
	}
	if res.HandledNet != 0 {
		for _, p := range l.Ports {
			access := p.Access & res.HandledNet
			if access == 0 {
				continue
			}
			if err := ll.LandlockAddNetPortRule(rfd, &ll.NetPortAttr{AllowedAccess: access, Port: uint64(p.Port)}, 0); err != nil {
				return -1, res, fmt.Errorf("landlock port rule %d: %w", p.Port, err)
			}
			res.Rules++
		}
	}
	ok = true
	return rfd, res, nil
}

// addPathRule adds the rule of p, keeping the rights handled. It opens the
// path with O_PATH, which follows symlinks: the rule lands on the object
// the path names now.
func addPathRule(rfd int, p LandlockPath, handled uint64, res *LandlockResult) (bool, error) {
	path := p.Path
	access := p.Access & handled
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil && p.OrAncestor && errors.Is(err, unix.ENOENT) && access&^p.ExactAccess != 0 {
		for err != nil && errors.Is(err, unix.ENOENT) && path != "/" {
			path = filepath.Dir(path)
			fd, err = unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		}
		if err == nil {
			res.WidenedPaths = append(res.WidenedPaths, p.Path+" -> "+path)
			if access&p.ExactAccess != 0 {
				res.SkippedPaths = append(res.SkippedPaths, p.Path)
			}
			access &^= p.ExactAccess
		}
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EACCES) {
			res.SkippedPaths = append(res.SkippedPaths, p.Path)
			return false, nil
		}
		return false, fmt.Errorf("landlock rule %s: %w", p.Path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= landlockFileRights
	}
	if access == 0 {
		return false, nil
	}
	if err := ll.LandlockAddPathBeneathRule(rfd, &ll.PathBeneathAttr{AllowedAccess: access, ParentFd: fd}, 0); err != nil {
		return false, fmt.Errorf("landlock rule %s: %w", path, err)
	}
	res.Added = append(res.Added, AddedPath{Requested: p.Path, Path: path, Access: access})
	return true, nil
}

// landlockReleases[n] is the first Linux release with Landlock ABI n.
var landlockReleases = []string{"5.13", "5.13", "5.19", "6.2", "6.7", "6.10", "6.12", "6.15"}

// LandlockKernel returns the first Linux release with Landlock ABI abi, or
// "newer than X" when this build knows no release with it (X being the
// release of the newest ABI it knows).
func LandlockKernel(abi int) string {
	if abi >= 0 && abi < len(landlockReleases) {
		return landlockReleases[abi]
	}
	return "newer than " + landlockReleases[len(landlockReleases)-1]
}
