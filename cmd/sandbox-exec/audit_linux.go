//go:build linux

package main

import (
	"time"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

type launcherEvent = launcher.Event

// auditLine is the JSON form of one decision in --audit output.
type auditLine struct {
	Time      string `json:"time"`
	Pid       int    `json:"pid"`
	Syscall   string `json:"syscall"`
	Path      string `json:"path"`
	Resolved  string `json:"resolved,omitempty"`
	Right     string `json:"right"`
	Verdict   string `json:"verdict"`
	Rule      string `json:"rule"`
	Errno     string `json:"errno,omitempty"`
	LatencyNs int64  `json:"latency_ns"`
}

func auditRecord(e launcherEvent) auditLine {
	verdict := "deny"
	if e.Allowed {
		verdict = "allow"
	}
	l := auditLine{
		Time:      e.Time.UTC().Format(time.RFC3339Nano),
		Pid:       e.Pid,
		Syscall:   e.Syscall,
		Path:      e.Path,
		Resolved:  e.Resolved,
		Right:     e.Right.String(),
		Verdict:   verdict,
		Rule:      e.Rule,
		LatencyNs: e.Latency.Nanoseconds(),
	}
	if e.Errno != 0 {
		l.Errno = policy.ErrnoName(e.Errno)
	}
	return l
}
