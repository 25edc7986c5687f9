//go:build linux

package testutil

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNewFixture(t *testing.T) {
	T := NewFixture(t, FixtureOptions{
		Traversable: true,
		Entries: []FixtureEntry{
			{Path: "ro/zero", Mode: 0o000, Content: "Z"},
			{Path: "a/b/c", Mode: 0o640, Content: "C"},
			FixtureDir("ro/d", 0o755),
			FixtureSymlink("rw/rel", "../ro/f"),
			FixtureSymlink("rw/abs", "$T/ro/f"),
			FixtureFIFO("ro/fifo", 0o644),
		},
	})
	for _, c := range []struct {
		path, content string
		mode          os.FileMode
	}{
		{"ro/f", "RO", 0o644},
		{"out/secret", "SECRET-OUT", 0o644},
		{"ro/zero", "Z", 0},
		{"a/b/c", "C", 0o640},
	} {
		fi, err := os.Lstat(T + "/" + c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
		if c.mode&0o400 != 0 {
			if b, err := os.ReadFile(T + "/" + c.path); err != nil || string(b) != c.content {
				t.Errorf("%s: %q, %v; want %q", c.path, b, err, c.content)
			}
		}
	}
	for _, d := range []string{"rw", "ro/d"} {
		if fi, err := os.Stat(T + "/" + d); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v, %v; want a directory", d, fi, err)
		}
	}
	for name, want := range map[string]string{"rw/rel": "../ro/f", "rw/abs": T + "/ro/f"} {
		if got, err := os.Readlink(T + "/" + name); err != nil || got != want {
			t.Errorf("%s -> %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Lstat(T + "/ro/fifo"); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("ro/fifo: %v, %v; want a FIFO", fi, err)
	}
	if fi, err := os.Stat(T); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("Traversable: $T is %v, %v; want 0755", fi, err)
	}
}

func TestNewFixtureOwner(t *testing.T) {
	RequireRoot(t)
	cred := &syscall.Credential{Uid: 65534, Gid: 65534}
	T := NewFixture(t, FixtureOptions{
		Owner:   cred,
		Entries: []FixtureEntry{FixtureSymlink("rw/l", "/etc/passwd")},
	})
	for _, p := range []string{T, T + "/ro/f", T + "/rw", T + "/out/secret", T + "/rw/l"} {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != cred.Uid || st.Gid != cred.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, cred.Uid, cred.Gid)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat("/etc/passwd", &st); err != nil || st.Uid == cred.Uid {
		t.Errorf("the owner followed a symlink out of the tree: /etc/passwd uid %d, %v", st.Uid, err)
	}
}

func TestPolicyP0(t *testing.T) {
	p := PolicyP0("/T", "/bin/worker")
	for _, line := range []string{"version 1", "allow read /T/ro/**", "allow read,write,create /T/rw/**", "allow exec /T/ro/bin/*",
		"allow read,exec /bin/worker", "env pass " + EnvHelper} {
		if !slices.Contains(strings.Split(p, "\n"), line) {
			t.Errorf("no line %q in\n%s", line, p)
		}
	}
	if strings.Contains(p, "/T/out") || !strings.HasSuffix(p, "\n") {
		t.Errorf("P0 names $T/out or lacks its final newline:\n%s", p)
	}
}

func TestParseOpenFlags(t *testing.T) {
	for s, want := range map[string]uint64{
		"rdonly":               unix.O_RDONLY,
		"wronly|creat|excl":    unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL,
		"acc3":                 3,
		"rdonly|0x40000000":    0x40000000,
		"0x7f0000000000":       0x7f0000000000,
		"tmpfile|rdwr":         unix.O_TMPFILE | unix.O_RDWR,
		"path|directory|async": unix.O_PATH | unix.O_DIRECTORY | unix.O_ASYNC,
	} {
		if got := ParseOpenFlags(s); got != want {
			t.Errorf("ParseOpenFlags(%q) = %#x, want %#x", s, got, want)
		}
	}
	for s, want := range map[string]uint64{"10": 10, "0x10": 16, "0644": 0o644, "0o10": 8, "-100": 0xffffffffffffff9c, "0x100000000+3": 1<<32 | 3} {
		if got := ParseNumber(s); got != want {
			t.Errorf("ParseNumber(%q) = %#x, want %#x", s, got, want)
		}
	}
	for _, bad := range []string{"bogus", "rdonly|nosuch", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ParseOpenFlags(%q) did not panic", bad)
				}
			}()
			ParseOpenFlags(bad)
		}()
	}
}

func TestOpResult(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{unix.Errno(0), "ok"},
		{unix.EACCES, "EACCES"},
		{&os.PathError{Op: "open", Path: "x", Err: unix.ENOENT}, "ENOENT"},
		{errors.New("EOF"), "EOF"},
	} {
		if got := OpResult(c.err); got != c.want {
			t.Errorf("OpResult(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestJoinOps(t *testing.T) {
	list := [][]string{{"open", "/x", "rdonly"}, {"stat", "/y"}}
	args := JoinOps(list...)
	if want := []string{"open", "/x", "rdonly", ";", "stat", "/y"}; !slices.Equal(args, want) {
		t.Errorf("JoinOps = %q, want %q", args, want)
	}
	if got := SplitOps(args); len(got) != 2 || !slices.Equal(got[0], list[0]) || !slices.Equal(got[1], list[1]) {
		t.Errorf("SplitOps(JoinOps(list)) = %q, want %q", got, list)
	}
}

func TestLinesAndSink(t *testing.T) {
	if got := Lines(""); got != nil {
		t.Errorf(`Lines("") = %q, want nil`, got)
	}
	if got := Lines("a\nb\n\n"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Lines = %q", got)
	}
	s := NewSink[int](2)
	for i := range 3 {
		s.Add(i)
	}
	if got := s.Drain(); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("Drain = %v, want [0 1] (the third dropped)", got)
	}
}

// TestWorkerOps runs the shared operations in this process on a fixture.
func TestWorkerOps(t *testing.T) {
	CheckFDLeaks(t)
	T := NewFixture(t, FixtureOptions{Entries: []FixtureEntry{
		FixtureDir("ro/d", 0o755),
		FixtureSymlink("rw/ok", "../ro/f"),
		FixtureSymlink("rw/s", "$T/out/secret"),
	}})
	ino := func(p string) string {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return strconv.FormatUint(st.Ino, 10)
	}
	secretIno, _ := strconv.ParseUint(ino(T+"/out/secret"), 10, 64)
	plain, tests, esc := WorkerOps{}, WorkerOps{NoReadRDWR: true}, WorkerOps{SecretIno: secretIno}
	for _, c := range []struct {
		w    WorkerOps
		op   []string
		want string
	}{
		{plain, []string{"open", T + "/ro/f", "rdonly"}, `ok "RO"`},
		{plain, []string{"open", T + "/ro/f", "rdwr"}, `ok "RO"`},
		{tests, []string{"open", T + "/ro/f", "rdwr"}, "ok"},
		{plain, []string{"open", T + "/ro/f", "wronly"}, "ok"},
		{plain, []string{"open", T + "/ro", "rdonly|directory"}, "ok"},
		{plain, []string{"open", T + "/ro/f", "path"}, "ok"},
		{plain, []string{"open", T + "/ro", "rdonly"}, "ok read:EISDIR"},
		{plain, []string{"open", T + "/ro/missing", "rdonly"}, "ENOENT"},
		{plain, []string{"open", T + "/rw/ok", "rdonly|nofollow"}, "ELOOP"},
		{plain, []string{"open", T + "/rw/m", "wronly|creat", "0600"}, "ok"},
		{plain, []string{"open", T + "/out/secret", "rdonly"}, `ok "SECRET-OUT"`},
		{esc, []string{"open", T + "/out/secret", "rdonly"}, "ESCAPE"},
		{esc, []string{"open", T + "/rw/s", "path"}, "ESCAPE"},
		{plain, []string{"openat", T + "/ro", "f", "rdonly"}, `ok "RO"`},
		{plain, []string{"openat", T + "/missing", "f", "rdonly"}, "dir:ENOENT"},
		{plain, []string{"openat", "file:" + T + "/ro/f", "x", "rdonly"}, "ENOTDIR"},
		{plain, []string{"openat", "9999", "f", "rdonly"}, "EBADF"},
		{plain, []string{"write", T + "/rw/w", "hello"}, "ok"},
		{plain, []string{"open", T + "/rw/w", "rdonly"}, `ok "hello"`},
		{plain, []string{"write", T + "/ro", "x"}, "EISDIR"},
		{plain, []string{"stat", T + "/rw/ok"}, "ok ino=" + ino(T+"/ro/f") + " file"},
		{plain, []string{"lstat", T + "/rw/ok"}, "re:ok ino=\\d+ symlink"},
		{plain, []string{"stat", T + "/ro"}, "ok ino=" + ino(T+"/ro") + " dir"},
		{plain, []string{"stat", T + "/ro/missing"}, "ENOENT"},
		{esc, []string{"stat", T + "/rw/s"}, "ESCAPE"},
		{plain, []string{"readlink", T + "/rw/ok"}, "ok ../ro/f"},
		{plain, []string{"readlink", T + "/ro/f"}, "EINVAL"},
		{plain, []string{"mkdir", T + "/rw/sub"}, "ok"},
		{plain, []string{"mkdir", T + "/rw/sub"}, "EEXIST"},
		{plain, []string{"symlink", "f", T + "/rw/sub/l"}, "ok"},
		{plain, []string{"rename", T + "/rw/sub/l", T + "/rw/sub/l2"}, "ok"},
		{plain, []string{"ls", T + "/rw/sub"}, "ok l2"},
		{plain, []string{"unlink", T + "/rw/sub/l2"}, "ok"},
		{plain, []string{"rmdir", T + "/rw/sub"}, "ok"},
		{plain, []string{"ls", T}, "ok out,ro,rw"},
		{plain, []string{"ls", T + "/ro/f"}, "ENOTDIR"},
		{plain, []string{"kill", strconv.Itoa(os.Getpid()), "0"}, "ok"},
	} {
		got, fd, ok := c.w.Do(c.op)
		if fd >= 0 {
			unix.Close(fd)
		}
		if !ok {
			t.Errorf("%q: not a shared operation", c.op)
			continue
		}
		if re, isRE := strings.CutPrefix(c.want, "re:"); isRE {
			if !regexp.MustCompile("^(?:" + re + ")$").MatchString(got) {
				t.Errorf("%q: %q, want /%s/", c.op, got, re)
			}
		} else if got != c.want {
			t.Errorf("%q: %q, want %q", c.op, got, c.want)
		}
		if strings.HasPrefix(got, "ok") && strings.HasPrefix(c.op[0], "open") && fd < 0 {
			t.Errorf("%q: %q without a descriptor", c.op, got)
		}
	}
	if line, fd, ok := (WorkerOps{}).Do([]string{"nosuch"}); ok || fd != -1 || line != "" {
		t.Errorf("unknown op: %q, %d, %v; want not ok", line, fd, ok)
	}
	if got := FileType(unix.S_IFSOCK); got != "sock" {
		t.Errorf("FileType(S_IFSOCK) = %q", got)
	}
}
