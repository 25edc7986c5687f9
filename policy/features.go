package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// featureNames are the features a require line may name; only landlock
// takes a minimum version (landlock>=N, N the Landlock ABI version).
var featureNames = []string{
	"landlock", "landlock-net", "landlock-scope",
	"user-notif", "addfd-send", "sync-wakeup", "wait-killable-recv",
	"userns", "pidns", "netns", "ipcns", "utsns",
}

// KnownFeatures returns the feature names a require line accepts.
func KnownFeatures() []string {
	return append([]string(nil), featureNames...)
}

func parseRequirement(s string) (Requirement, error) {
	name, ver, hasVer := strings.Cut(s, ">=")
	known := false
	for _, f := range featureNames {
		if f == name {
			known = true
		}
	}
	if !known {
		return Requirement{}, fmt.Errorf("unknown feature %q%s; valid features: %s, and landlock>=N for a Landlock ABI version",
			name, didYouMean(name, featureNames), strings.Join(featureNames, ", "))
	}
	if !hasVer {
		if name == "landlock" {
			return Requirement{Feature: name, MinVersion: 1}, nil
		}
		return Requirement{Feature: name}, nil
	}
	if name != "landlock" {
		return Requirement{}, fmt.Errorf("feature %s has no versions; only landlock takes >=N", name)
	}
	n, err := strconv.Atoi(ver)
	if err != nil || n < 1 || n > 1000 || strings.TrimLeft(ver, "0123456789") != "" {
		return Requirement{}, fmt.Errorf("invalid Landlock ABI version %q in %q; write landlock>=N with N a number from 1 (ABI 1 is Linux 5.13)", ver, s)
	}
	return Requirement{Feature: name, MinVersion: n}, nil
}

func (r Requirement) String() string {
	if r.Feature == "landlock" && r.MinVersion > 1 {
		return "landlock>=" + strconv.Itoa(r.MinVersion)
	}
	return r.Feature
}
