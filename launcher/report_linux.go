//go:build linux

package launcher

import (
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

// Report says which layers are enforced for one worker. It never claims a
// layer that is not active (security.md R55).
type Report struct {
	Seccomp  SeccompReport          `json:"seccomp"`
	Landlock sandbox.LandlockResult `json:"landlock"`
	Rlimits  []sandbox.Rlimit       `json:"rlimits"`
}

// SeccompReport describes the installed filter.
type SeccompReport struct {
	Instructions     int  `json:"instructions"`
	UserNotif        bool `json:"user_notif"`
	WaitKillableRecv bool `json:"wait_killable_recv"`
}

func (p *plan) report(st stageReport) *Report {
	return &Report{
		Seccomp: SeccompReport{
			Instructions:     len(p.spec.Filter),
			UserNotif:        true,
			WaitKillableRecv: st.WaitKillableRecv,
		},
		Landlock: st.Landlock,
		Rlimits:  p.spec.Rlimits,
	}
}
