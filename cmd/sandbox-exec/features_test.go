//go:build linux

package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildNote(t *testing.T) {
	for _, c := range []struct {
		cgo, want string
	}{
		{"1", "build with CGO_ENABLED=0"},
		{"0", "static (CGO_ENABLED=0)"},
		{"", "go1.x"},
	} {
		info := &debug.BuildInfo{GoVersion: "go1.x"}
		if c.cgo != "" {
			info.Settings = []debug.BuildSetting{{Key: "CGO_ENABLED", Value: c.cgo}}
		}
		if got := buildNote(info); !strings.Contains(got, c.want) {
			t.Errorf("CGO_ENABLED=%q: %q, want it to say %q", c.cgo, got, c.want)
		}
	}
}
