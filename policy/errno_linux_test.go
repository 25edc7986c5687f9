package policy

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestErrnoTableLinux cross-checks the errno and RLIMIT tables, which the
// package keeps itself to build on every OS, against golang.org/x/sys/unix.
func TestErrnoTableLinux(t *testing.T) {
	// x/sys/unix names some numbers by another alias.
	other := map[string]string{"ENOTSUP": "EOPNOTSUPP", "EFSCORRUPTED": "EUCLEAN"}
	for n := 1; n < 150; n++ {
		name := ""
		if n < len(errnoNames) {
			name = errnoNames[n]
		}
		got := unix.ErrnoName(unix.Errno(n))
		if o, ok := other[got]; ok {
			got = o
		}
		if got != name {
			t.Errorf("errno %d: table says %q, x/sys/unix %q", n, name, got)
		}
	}
	for name, n := range errnoAliases {
		want := map[string]unix.Errno{"EWOULDBLOCK": unix.EWOULDBLOCK, "EDEADLOCK": unix.EDEADLOCK, "ENOTSUP": unix.ENOTSUP}[name]
		if unix.Errno(n) != want {
			t.Errorf("%s = %d, x/sys/unix %d", name, n, want)
		}
	}
	rlimits := map[string]int{
		"cpu": unix.RLIMIT_CPU, "fsize": unix.RLIMIT_FSIZE, "data": unix.RLIMIT_DATA, "stack": unix.RLIMIT_STACK,
		"core": unix.RLIMIT_CORE, "rss": unix.RLIMIT_RSS, "nproc": unix.RLIMIT_NPROC, "nofile": unix.RLIMIT_NOFILE,
		"memlock": unix.RLIMIT_MEMLOCK, "as": unix.RLIMIT_AS, "locks": unix.RLIMIT_LOCKS, "sigpending": unix.RLIMIT_SIGPENDING,
		"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME,
	}
	if len(rlimits) != len(limitTable) || len(limitNames) != len(limitTable) {
		t.Errorf("limit tables differ in size: %d, %d, %d", len(rlimits), len(limitTable), len(limitNames))
	}
	for name, info := range limitTable {
		if rlimits[name] != info.resource {
			t.Errorf("limit %s: table says %d, x/sys/unix %d", name, info.resource, rlimits[name])
		}
	}
	if Unlimited != unix.RLIM_INFINITY {
		t.Errorf("Unlimited = %d, RLIM_INFINITY = %d", uint64(Unlimited), uint64(unix.RLIM_INFINITY))
	}
}
