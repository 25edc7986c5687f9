package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A limitKind says how the value of a limit is written.
type limitKind int

const (
	limitCount limitKind = iota // a plain number
	limitSize                   // bytes, with an optional binary suffix
)

type limitInfo struct {
	resource int // Linux RLIMIT_* number (generic, shared by amd64 and arm64)
	kind     limitKind
	unit     string // for messages
}

var limitTable = map[string]limitInfo{
	"cpu":        {0, limitCount, "seconds of CPU time"},
	"fsize":      {1, limitSize, "bytes"},
	"data":       {2, limitSize, "bytes"},
	"stack":      {3, limitSize, "bytes"},
	"core":       {4, limitSize, "bytes"},
	"rss":        {5, limitSize, "bytes"},
	"nproc":      {6, limitCount, "processes"},
	"nofile":     {7, limitCount, "open files"},
	"memlock":    {8, limitSize, "bytes"},
	"as":         {9, limitSize, "bytes"},
	"locks":      {10, limitCount, "file locks"},
	"sigpending": {11, limitCount, "signals"},
	"msgqueue":   {12, limitSize, "bytes"},
	"nice":       {13, limitCount, "(20 - nice value)"},
	"rtprio":     {14, limitCount, "(real-time priority)"},
	"rttime":     {15, limitCount, "microseconds"},
}

// limitNames is the sorted list of limit names.
var limitNames = []string{
	"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
	"nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

// Unlimited is the value of a limit written as "unlimited" (RLIM_INFINITY).
const Unlimited uint64 = math.MaxUint64

// sizeSuffixes are the suffixes a size accepts, all powers of 1024.
var sizeSuffixes = []struct {
	name  string
	shift uint
}{
	{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
	{"K", 10}, {"M", 20}, {"G", 30}, {"T", 40},
}

const validSuffixes = "K, KiB, M, MiB, G, GiB, T, TiB (all powers of 1024)"

// parseLimitValue parses "unlimited", a decimal number, or for size limits a
// number with a binary suffix ("4GiB", "512M").
func parseLimitValue(name string, info limitInfo, s string) (uint64, error) {
	if s == "unlimited" {
		return Unlimited, nil
	}
	digits := s
	for digits != "" && digits[len(digits)-1] > '9' {
		digits = digits[:len(digits)-1]
	}
	suffix := s[len(digits):]
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("invalid value %q for limit %s; write a number of %s or unlimited", s, name, info.unit)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q for limit %s is too large; write unlimited for no limit", s, name)
	}
	if suffix == "" {
		if n == Unlimited {
			return 0, fmt.Errorf("value %q for limit %s is too large; write unlimited for no limit", s, name)
		}
		return n, nil
	}
	if info.kind != limitSize {
		return 0, fmt.Errorf("limit %s counts %s and takes a plain number, not %q", name, info.unit, s)
	}
	for _, sfx := range sizeSuffixes {
		if sfx.name != suffix {
			continue
		}
		if n > (Unlimited-1)>>sfx.shift {
			return 0, fmt.Errorf("value %q for limit %s is too large; write unlimited for no limit", s, name)
		}
		return n << sfx.shift, nil
	}
	hint := ""
	switch suffix {
	case "KB", "MB", "GB", "TB", "kB", "k", "kb":
		hint = fmt.Sprintf(" (%s is ambiguous: sizes here are powers of 1024, so write the KiB/MiB/GiB/TiB form or plain bytes)", suffix)
	}
	return 0, fmt.Errorf("invalid size suffix %q in %q%s; valid suffixes: %s", suffix, s, hint, validSuffixes)
}

// formatLimitValue writes v the way parseLimitValue reads it, using the
// largest exact binary suffix for sizes.
func formatLimitValue(kind limitKind, v uint64) string {
	if v == Unlimited {
		return "unlimited"
	}
	if kind == limitSize && v != 0 {
		for _, sfx := range []struct {
			name  string
			shift uint
		}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
			if v&(1<<sfx.shift-1) == 0 {
				return strconv.FormatUint(v>>sfx.shift, 10) + sfx.name
			}
		}
	}
	return strconv.FormatUint(v, 10)
}
