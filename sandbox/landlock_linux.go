//go:build linux

package sandbox

import (
	"errors"
	"fmt"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// Landlock is the Landlock part of a Spec: the rights the ruleset handles
// and the paths and ports that keep some of them. Access values use the
// kernel's LANDLOCK_ACCESS_* bits.
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

// LandlockPath allows Access beneath Path. A missing path is skipped.
type LandlockPath struct {
	Path   string `json:"path"`
	Access uint64 `json:"access"`
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
	DroppedFS     uint64   `json:"dropped_fs,omitempty"`
	DroppedNet    uint64   `json:"dropped_net,omitempty"`
	DroppedScoped uint64   `json:"dropped_scoped,omitempty"`
	SkippedPaths  []string `json:"skipped_paths,omitempty"`
}

// LandlockABI returns the Landlock ABI version of the running kernel, 0 if
// Landlock is missing or disabled.
func LandlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// LandlockSupported returns the rights an ABI version can handle:
// file system, network and scopes.
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
	default:
		fs = 1<<16 - 1
	}
	if abi >= 4 {
		net = 1<<2 - 1
	}
	if abi >= 6 {
		scoped = 1<<2 - 1
	}
	return fs, net, scoped
}

// File rights are the only ones a rule on a non-directory may carry.
const landlockFileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// applyLandlock restricts the calling thread only (landlock_restrict_self
// without TSYNC); Preconditions: locked thread, no_new_privs set.
func applyLandlock(l *Landlock) (LandlockResult, error) {
	abi := LandlockABI()
	res := LandlockResult{ABI: abi}
	if abi < max(l.MinABI, 1) {
		err := &sys.UnsupportedFeatureError{Name: fmt.Sprintf("landlock>=%d", max(l.MinABI, 1)), MinimumVersion: landlockKernel(max(l.MinABI, 1))}
		if !l.BestEffort || l.MinABI > 0 {
			return res, err
		}
		res.DroppedFS, res.DroppedNet, res.DroppedScoped = l.HandledFS, l.HandledNet, l.Scoped
		return res, nil
	}
	fsOK, netOK, scopeOK := LandlockSupported(abi)
	res.HandledFS, res.HandledNet, res.Scoped = l.HandledFS&fsOK, l.HandledNet&netOK, l.Scoped&scopeOK
	res.DroppedFS, res.DroppedNet, res.DroppedScoped = l.HandledFS&^fsOK, l.HandledNet&^netOK, l.Scoped&^scopeOK
	if !l.BestEffort && (res.DroppedFS|res.DroppedNet|res.DroppedScoped) != 0 {
		return res, &sys.UnsupportedFeatureError{Name: "landlock rights beyond ABI " + fmt.Sprint(abi), MinimumVersion: landlockKernel(abi + 1)}
	}
	if res.HandledFS|res.HandledNet|res.Scoped == 0 {
		return res, nil
	}
	attr := ll.RulesetAttr{HandledAccessFS: res.HandledFS, HandledAccessNet: res.HandledNet, Scoped: res.Scoped}
	rfd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return res, fmt.Errorf("landlock_create_ruleset: %w", err)
	}
	defer unix.Close(rfd)
	for _, p := range l.Paths {
		fd, err := unix.Open(p.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				res.SkippedPaths = append(res.SkippedPaths, p.Path)
				continue
			}
			return res, fmt.Errorf("landlock rule %s: %w", p.Path, err)
		}
		access := p.Access & res.HandledFS
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &= landlockFileRights
		}
		if access != 0 {
			err = ll.LandlockAddPathBeneathRule(rfd, &ll.PathBeneathAttr{AllowedAccess: access, ParentFd: fd}, 0)
		}
		unix.Close(fd)
		if err != nil {
			return res, fmt.Errorf("landlock rule %s: %w", p.Path, err)
		}
	}
	if res.HandledNet != 0 {
		for _, p := range l.Ports {
			access := p.Access & res.HandledNet
			if access == 0 {
				continue
			}
			if err := ll.LandlockAddNetPortRule(rfd, &ll.NetPortAttr{AllowedAccess: access, Port: uint64(p.Port)}, 0); err != nil {
				return res, fmt.Errorf("landlock port rule %d: %w", p.Port, err)
			}
		}
	}
	if err := ll.LandlockRestrictSelf(rfd, 0); err != nil {
		return res, fmt.Errorf("landlock_restrict_self: %w", err)
	}
	res.Enforced = true
	return res, nil
}

// landlockKernel is the first Linux release with a Landlock ABI.
func landlockKernel(abi int) string {
	versions := []string{"5.13", "5.13", "5.19", "6.2", "6.7", "6.10", "6.12", "6.15", "6.18", "6.19"}
	if abi < len(versions) {
		return versions[abi]
	}
	return "a future release"
}
