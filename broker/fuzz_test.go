//go:build linux

package broker

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzDecode feeds the request decoders (open flags and mode, open_how,
// timespecs) and the lexical path helpers with arbitrary input and checks
// the invariants the broker relies on: no panic; an accepted open never
// carries a bit the broker refuses; cleaned paths are absolute and clean.
func FuzzDecode(f *testing.F) {
	f.Add(uint64(unix.O_RDONLY), uint64(0), openHow(unix.O_RDONLY, 0, 0, 24), uint64(24), "/usr/lib/x86_64-linux-gnu/libc.so.6")
	f.Add(uint64(1<<32|unix.O_CREAT|unix.O_WRONLY), uint64(0o1777), openHow(unix.O_CREAT|unix.O_RDWR, 0o644, unix.RESOLVE_BENEATH, 32), uint64(32), "rw/../out/secret")
	f.Add(uint64(unix.O_PATH|unix.O_CREAT|unix.O_DIRECTORY), uint64(0), openHow(1<<40, 0, 0x40, 24), uint64(8), "/proc/self/fd/3/x/")
	f.Add(uint64(0x40000000), uint64(0), openHow(unix.O_TMPFILE|unix.O_RDWR, 0o600, 0, 24), uint64(4097), "//proc//thread-self/./fd/012")
	f.Add(uint64(3), uint64(0), []byte{}, uint64(0), "/dev/stdin/..")
	f.Add(uint64(unix.O_ASYNC), uint64(0), openHow(3, 0, unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT, 24), uint64(24), "")
	f.Fuzz(func(t *testing.T, flags, mode uint64, how []byte, size uint64, path string) {
		if o, c := decodeOpen(flags, mode); c == codeOK {
			checkOpen(t, o)
		}
		b := how
		if uint64(len(b)) > size {
			b = b[:size]
		}
		if size >= openHowSizeVer0 && size <= pageSize && uint64(len(b)) == size {
			if o, c := decodeOpenHow(b, size); c == codeOK {
				checkOpen(t, o)
				if o.resolve&^uint64(validResolve) != 0 || o.mode&^sIALLUGO != 0 {
					t.Fatalf("accepted resolve %#x mode %#o", o.resolve, o.mode)
				}
			}
		} else if _, c := decodeOpenHow(b, size); c == codeOK {
			t.Fatalf("accepted open_how of size %d (%d bytes)", size, len(b))
		}
		if len(how) >= 32 {
			decodeTimespecs(how[:32])
			decodeTimevals(how[:32])
			decodeUtimbuf(how[:16])
		}

		if strings.IndexByte(path, 0) >= 0 {
			return
		}
		openRights(uint32(flags))
		accessRights(mode)
		dir, name, _ := splitLast(path)
		if path != "" && strings.Contains(name, "/") {
			t.Fatalf("splitLast(%q) name %q", path, name)
		}
		_ = dir
		if hasDotDot(path) {
			return
		}
		full := cleanJoin("/", path)
		if !strings.HasPrefix(full, "/") || strings.Contains(full, "//") || strings.Contains(full, "/./") ||
			strings.HasSuffix(full, "/.") || (len(full) > 1 && strings.HasSuffix(full, "/")) {
			t.Fatalf("cleanJoin(%q) = %q not clean", path, full)
		}
		if cleanJoin("/", full) != full {
			t.Fatalf("cleanJoin not idempotent on %q", full)
		}
		if rel := cleanRel(path); rel == "" || strings.HasPrefix(rel, "/") {
			t.Fatalf("cleanRel(%q) = %q", path, rel)
		}
		if fd, rest, _, ok := fdForm(full); ok && (fd < 0 || (rest != "" && rest[0] != '/')) {
			t.Fatalf("fdForm(%q) = %d %q", full, fd, rest)
		}
		if mp, _, kind := selfForm(full, true); kind != 0 && !strings.HasPrefix(mp, "/proc/") {
			t.Fatalf("selfForm(%q) = %q", full, mp)
		}
	})
}

// checkOpen asserts what the broker never accepts in an open request.
func checkOpen(t *testing.T, o openReq) {
	t.Helper()
	if o.flags&^uint32(validOpenFlags) != 0 || o.flags&unix.O_ACCMODE == unix.O_ACCMODE ||
		o.flags&(oTmpfileBit|unix.O_ASYNC) != 0 {
		t.Fatalf("accepted flags %#o", o.flags)
	}
	if o.flags&(unix.O_CREAT|unix.O_DIRECTORY) == unix.O_CREAT|unix.O_DIRECTORY {
		t.Fatalf("accepted O_CREAT|O_DIRECTORY: %#o", o.flags)
	}
	if o.flags&unix.O_PATH != 0 && o.flags&^uint32(oPathFlags) != 0 {
		t.Fatalf("accepted O_PATH with %#o", o.flags)
	}
	if o.flags&unix.O_CREAT == 0 && o.mode != 0 {
		t.Fatalf("mode %#o without O_CREAT", o.mode)
	}
}
