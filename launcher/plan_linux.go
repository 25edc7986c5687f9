//go:build linux

package launcher

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/policy"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
	"github.com/seed-025014a4/sandbox-exec/sandbox/seccomp"
)

// plan is what the host derives from a policy before starting a worker:
// the Spec the init stage applies, and what goes into the report.
type plan struct {
	spec    sandbox.Spec
	profile seccomp.Profile
}

// newPlan derives the worker's Spec from p. It fails early, in the host,
// on anything the init stage could not apply (an unknown syscall on this
// architecture is skipped: policies are shared between architectures).
func newPlan(p *policy.Policy) (*plan, error) {
	arch, ok := seccomp.NativeArch()
	if !ok {
		return nil, fmt.Errorf("no seccomp support for this architecture")
	}
	prof := seccomp.Profile{Arch: arch, DenyErrno: uint16(p.DefaultErrno()), Net: netMode(p.Net().Mode)}
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
	prog, err := prof.Build()
	if err != nil {
		return nil, fmt.Errorf("build seccomp filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	spec := sandbox.Spec{Filter: filter, WaitKillableRecv: true}
	for _, l := range p.Limits() {
		spec.Rlimits = append(spec.Rlimits, sandbox.Rlimit{Resource: l.Resource, Cur: l.Soft, Max: l.Hard})
	}
	return &plan{spec: spec, profile: prof}, nil
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
