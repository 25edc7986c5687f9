//go:build linux

package broker

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// TestEncodeReply checks N-01 and R21: errors are negative errnos in
// [-4095, -1] with val 0, values are never negative, anything else is the
// deny errno.
func TestEncodeReply(t *testing.T) {
	const id, deny = 42, int(unix.EACCES)
	for _, c := range []struct {
		res       result
		val       int64
		err       int32
		flags     uint32
		wantDeny  bool
		wantValue bool
	}{
		{res: errnoResult(unix.ENOENT), err: -int32(unix.ENOENT)},
		{res: result{kind: resError, code: 4095}, err: -4095},
		{res: result{kind: resError, code: 4096}, wantDeny: true},
		{res: result{kind: resError, code: 0}, wantDeny: true},
		{res: result{kind: resError, code: -38}, wantDeny: true},
		{res: denied(), wantDeny: true},
		{res: value(0)},
		{res: value(38), val: 38},
		{res: value(-2), wantDeny: true},
		{res: result{kind: resContinue}, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE},
		{res: result{kind: resFd, fd: 3}, wantDeny: true}, // fds go through ADDFD, never SEND
	} {
		r := encodeReply(id, c.res, deny)
		if c.wantDeny {
			c.err, c.val = -int32(deny), 0
		}
		if r.ID != id || r.Val != c.val || r.Error != c.err || r.Flags != c.flags {
			t.Errorf("encodeReply(%+v) = %+v", c.res, r)
		}
		if r.Error != 0 && (r.Val != 0 || r.Error < -4095 || r.Error > -1) {
			t.Errorf("encodeReply(%+v) = %+v: bad error reply", c.res, r)
		}
	}
}

func TestDecodeOpen(t *testing.T) {
	for _, c := range []struct {
		flags, mode uint64
		want        openReq
		code        int
	}{
		{flags: unix.O_RDONLY, want: openReq{flags: unix.O_RDONLY}},
		{flags: 1<<32 | unix.O_WRONLY, want: openReq{flags: unix.O_WRONLY}}, // bits above 31 ignored
		{flags: unix.O_ACCMODE, code: codeDeny},
		{flags: 0x40000000, code: codeDeny},
		{flags: unix.O_TMPFILE | unix.O_RDWR, code: codeDeny},
		{flags: unix.O_ASYNC, code: codeDeny},
		{flags: unix.O_CREAT | unix.O_DIRECTORY, code: int(unix.EINVAL)},
		{flags: unix.O_CREAT | unix.O_WRONLY, mode: 0o1234567, want: openReq{flags: unix.O_CREAT | unix.O_WRONLY, mode: 0o4567}},
		{flags: unix.O_RDONLY, mode: 0o644, want: openReq{flags: unix.O_RDONLY}}, // mode only with O_CREAT
		{flags: unix.O_PATH | unix.O_CREAT | unix.O_DIRECTORY | unix.O_TRUNC, want: openReq{flags: unix.O_PATH | unix.O_DIRECTORY}},
		{flags: oLargefile | unix.O_RDONLY, want: openReq{flags: oLargefile}},
	} {
		got, code := decodeOpen(c.flags, c.mode)
		if code != c.code || (code == codeOK && got != c.want) {
			t.Errorf("decodeOpen(%#x, %#o) = %+v, %d; want %+v, %d", c.flags, c.mode, got, code, c.want, c.code)
		}
	}
}

func openHow(flags, mode, resolve uint64, size int) []byte {
	b := make([]byte, max(size, 24))
	binary.NativeEndian.PutUint64(b[0:], flags)
	binary.NativeEndian.PutUint64(b[8:], mode)
	binary.NativeEndian.PutUint64(b[16:], resolve)
	return b[:size]
}

func TestDecodeOpenHow(t *testing.T) {
	tail := openHow(unix.O_RDONLY, 0, 0, 32)
	tail[31] = 1
	for _, c := range []struct {
		name string
		b    []byte
		size uint64
		code int
	}{
		{"ok", openHow(unix.O_RDONLY, 0, unix.RESOLVE_BENEATH, 24), 24, codeOK},
		{"short", openHow(0, 0, 0, 24)[:8], 8, int(unix.EINVAL)},
		{"zero tail", openHow(unix.O_RDONLY, 0, 0, 32), 32, codeOK},
		{"tail", tail, 32, int(unix.E2BIG)},
		{"page", make([]byte, 4097), 4097, int(unix.E2BIG)},
		{"unknown flag", openHow(0x40000000, 0, 0, 24), 24, int(unix.EINVAL)},
		{"upper flag", openHow(1<<40, 0, 0, 24), 24, int(unix.EINVAL)},
		{"unknown resolve", openHow(0, 0, 0x40, 24), 24, int(unix.EINVAL)},
		{"beneath in-root", openHow(0, 0, unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT, 24), 24, int(unix.EINVAL)},
		{"mode no creat", openHow(unix.O_RDONLY, 0o644, 0, 24), 24, int(unix.EINVAL)},
		{"mode big", openHow(unix.O_CREAT|unix.O_WRONLY, 0o10000, 0, 24), 24, int(unix.EINVAL)},
		{"creat dir", openHow(unix.O_CREAT|unix.O_DIRECTORY, 0, 0, 24), 24, int(unix.EINVAL)},
		{"path extra", openHow(unix.O_PATH|unix.O_RDWR, 0, 0, 24), 24, int(unix.EINVAL)},
		{"tmpfile rdonly", openHow(unix.O_TMPFILE, 0, 0, 24), 24, int(unix.EINVAL)},
		{"tmpfile", openHow(unix.O_TMPFILE|unix.O_RDWR, 0o600, 0, 24), 24, codeDeny},
		{"accmode 3", openHow(3, 0, 0, 24), 24, codeDeny},
		{"async", openHow(unix.O_ASYNC, 0, 0, 24), 24, codeDeny},
	} {
		_, code := decodeOpenHow(c.b, c.size)
		if code != c.code {
			t.Errorf("%s: code %d, want %d", c.name, code, c.code)
		}
	}
	o, _ := decodeOpenHow(openHow(unix.O_CREAT|unix.O_RDWR, 0o7777, unix.RESOLVE_NO_XDEV, 24), 24)
	if o.flags != unix.O_CREAT|unix.O_RDWR || o.mode != 0o7777 || o.resolve != unix.RESOLVE_NO_XDEV {
		t.Errorf("decoded %+v", o)
	}
}

func TestRights(t *testing.T) {
	for flags, want := range map[uint32]policy.Right{
		unix.O_RDONLY:                policy.Read,
		unix.O_WRONLY:                policy.Write,
		unix.O_RDWR:                  policy.Read | policy.Write,
		unix.O_RDONLY | unix.O_TRUNC: policy.Read | policy.Write | policy.Create,
		unix.O_WRONLY | unix.O_CREAT: policy.Write | policy.Create,
		unix.O_PATH:                  policy.Read,
		unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC: policy.Write | policy.Create,
	} {
		if got := openRights(flags); got != want {
			t.Errorf("openRights(%#o) = %v, want %v", flags, got, want)
		}
	}
	for mode, want := range map[uint64]need{
		unix.F_OK:             {right: policy.Stat},
		unix.R_OK:             {right: policy.Read},
		unix.W_OK | unix.R_OK: {right: policy.Read | policy.Write},
		unix.X_OK:             {right: policy.Exec, dirRight: policy.Read},
		unix.X_OK | unix.W_OK: {right: policy.Exec | policy.Write, dirRight: policy.Read | policy.Write},
	} {
		if got, c := accessRights(mode); c != codeOK || got != want {
			t.Errorf("accessRights(%d) = %+v", mode, got)
		}
	}
	if _, c := accessRights(8); c != int(unix.EINVAL) {
		t.Errorf("accessRights(8): %d", c)
	}
	if !withinMode(policy.Read|policy.Stat, unix.O_RDONLY) || withinMode(policy.Write, unix.O_RDONLY) ||
		!withinMode(policy.Read|policy.Write, unix.O_RDWR) || withinMode(policy.Create, unix.O_RDWR) {
		t.Error("withinMode")
	}
	if dirfdArg(1<<32|5) != 5 || dirfdArg(0x00000000FFFFFF9C) != unix.AT_FDCWD {
		t.Error("dirfdArg")
	}
}

func TestLexical(t *testing.T) {
	for _, c := range []struct{ base, p, want string }{
		{"/", "/a//b/./c/", "/a/b/c"},
		{"/", "/", "/"},
		{"/x/y", "z", "/x/y/z"},
		{"/x", ".", "/x"},
		{"/", "..f", "/..f"},
	} {
		if got := cleanJoin(c.base, c.p); got != c.want {
			t.Errorf("cleanJoin(%q, %q) = %q, want %q", c.base, c.p, got, c.want)
		}
	}
	for p, want := range map[string]bool{"..": true, "a/..": true, "../a": true, "a/../b": true, "..a": false, "a..": false, "a/..b/c": false, "/...": false} {
		if hasDotDot(p) != want {
			t.Errorf("hasDotDot(%q) = %v", p, !want)
		}
	}
	for p, want := range map[string]bool{"a/": true, "a/.": true, ".": true, "a": false, "": false, "a/.b": false} {
		if mustBeDir(p) != want {
			t.Errorf("mustBeDir(%q) = %v", p, !want)
		}
	}
	for _, c := range []struct{ p, dir, name string }{
		{"a", "", "a"}, {"/a", "/", "a"}, {"a/b", "a", "b"}, {"a//b//", "a", "b"}, {"/", "/", ""}, {"//a", "/", "a"}, {"a/..", "a", ".."},
	} {
		dir, name, _ := splitLast(c.p)
		if dir != c.dir || name != c.name {
			t.Errorf("splitLast(%q) = %q, %q; want %q, %q", c.p, dir, name, c.dir, c.name)
		}
	}
	for _, c := range []struct {
		p     string
		fd    int
		rest  string
		table fdTable
		ok    bool
	}{
		{"/dev/fd/3", 3, "", tableProcess, true},
		{"/dev/stdin", 0, "", tableProcess, true},
		{"/dev/stderr/x", 2, "/x", tableProcess, true},
		{"/dev/stdinx", 0, "", 0, false},
		{"/proc/self/fd/12/a/b", 12, "/a/b", tableProcess, true},
		{"/proc/thread-self/fd/0", 0, "", tableThread, true},
		{"/proc/self/fd/012", 0, "", 0, false},
		{"/proc/self/fd/", 0, "", 0, false},
		{"/proc/self/fdinfo/1", 0, "", 0, false},
	} {
		fd, rest, table, ok := fdForm(c.p)
		if ok != c.ok || (ok && (fd != c.fd || rest != c.rest || table != c.table)) {
			t.Errorf("fdForm(%q) = %d %q %d %v", c.p, fd, rest, table, ok)
		}
	}
	for _, c := range []struct {
		p      string
		follow bool
		mp     string
		rest   string
		kind   int
	}{
		{"/proc/self/status", true, "/proc/self/status", "/status", 1},
		{"/proc/self", false, "/proc/self", "", 0},
		{"/proc/self", true, "/proc/self", "", 1},
		{"/proc/thread-self/comm", true, "/proc/thread-self/comm", "/comm", 2},
		{"/proc/mounts", true, "/proc/self/mounts", "/mounts", 1},
		{"/proc/net/tcp", true, "/proc/self/net/tcp", "/net/tcp", 1},
		{"/proc/selfish", true, "/proc/selfish", "", 0},
		{"/proc/1/status", true, "/proc/1/status", "", 0},
	} {
		mp, rest, kind := selfForm(c.p, c.follow)
		if mp != c.mp || rest != c.rest || kind != c.kind {
			t.Errorf("selfForm(%q, %v) = %q %q %d", c.p, c.follow, mp, rest, kind)
		}
	}
	if n, rest, ok := procPid("/proc/123/task/5"); !ok || n != 123 || rest != "/task/5" {
		t.Errorf("procPid: %d %q %v", n, rest, ok)
	}
	if _, _, ok := procPid("/proc/12a"); ok {
		t.Error("procPid(/proc/12a)")
	}
}

func TestParseStatus(t *testing.T) {
	s := "Name:\tcat\nUmask:\t0077\nState:\tR (running)\nTgid:\t15481\nNgid:\t0\nPid:\t15482\n"
	tgid, umask, ok := parseStatus([]byte(s))
	if !ok || tgid != 15481 || umask != 0o077 {
		t.Errorf("parseStatus = %d %#o %v", tgid, umask, ok)
	}
	if _, _, ok := parseStatus([]byte("Name:\tx\n")); ok {
		t.Error("parseStatus without Tgid")
	}
}

func TestHistogram(t *testing.T) {
	for _, ns := range []int64{0, 1, 3, 4, 5, 7, 8, 100, 1000, 123456789, 1 << 40} {
		i := bucketOf(ns)
		if ns > bucketUpper(i) || (i > 0 && ns <= bucketUpper(i-1)) {
			t.Errorf("bucket %d of %d: upper %d, previous %d", i, ns, bucketUpper(i), bucketUpper(i-1))
		}
	}
	var h histogram
	for i := range 100 {
		h.add(time.Duration(i+1) * time.Microsecond)
	}
	var counts [numBuckets]uint64
	for i := range counts {
		counts[i] = h.buckets[i].Load()
	}
	p50, p99 := h.quantile(&counts, 100, 0.5), h.quantile(&counts, 100, 0.99)
	if p50 < 50*time.Microsecond || p50 > 60*time.Microsecond || p99 < 99*time.Microsecond || p99 > 100*time.Microsecond {
		t.Errorf("p50 %v p99 %v", p50, p99)
	}
}

func TestSyscallTable(t *testing.T) {
	for nr, name := range syscallNumbers {
		sc := lookupSyscall(int32(nr))
		if sc == nil || sc.name != name || syscallList[sc.idx].name != name {
			t.Errorf("nr %d: %+v, want %s", nr, sc, name)
		}
	}
	if lookupSyscall(-1) != nil || lookupSyscall(100000) != nil {
		t.Error("lookupSyscall out of range")
	}
	if !strings.Contains(strings.Join(Syscalls(), " "), "newfstatat") {
		t.Error("Syscalls lacks newfstatat")
	}
}
