//go:build linux

package tests

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
)

func ino(t *testing.T, path string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("ino=%d", st.Ino)
}

// TestBrokeredSyscalls runs every emulated syscall, allowed and denied, in
// one worker: absolute and relative paths, dirfds, symlinks inside and out
// of the allowlist, /proc/self, creation flags, stat and listings.
func TestBrokeredSyscalls(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := newFixture(t)
	T := f.T
	for _, l := range []struct{ name, target string }{
		{"rw/ok", "../ro/f"},
		{"rw/s", T + "/out/secret"},
		{"rw/d", "/etc"},
		{"rw/dangling", T + "/out/new"},
		{"lnk", "ro"}, // a name under no rule for an allowed directory, like /lib -> usr/lib
	} {
		if err := os.Symlink(l.target, T+"/"+l.name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(T+"/rw/a", []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		op   []string
		want string
	}{
		{op("open", T+"/ro/f", "rdonly"), `ok "RO"`},
		{op("open", T+"/out/secret", "rdonly"), "EACCES"},
		{op("open", T+"/out/missing", "rdonly"), "EACCES"},
		{op("open", T+"/ro/missing", "rdonly"), "ENOENT"},
		{op("open", T+"/ro/f", "wronly"), "EACCES"},
		{op("open", T+"/ro/f", "rdwr"), "EACCES"},
		{op("open", T+"/ro/../out/secret", "rdonly"), "EACCES"},
		{op("open", T+"/ro/./d/../f", "rdonly"), `ok "RO"`},
		{op("open", "//"+T[1:]+"//ro/./f", "rdonly"), `ok "RO"`},
		{op("open", "f", "rdonly"), `ok "RO"`},
		{op("open", "d/g", "rdonly"), `ok "G"`},
		{op("open", "../out/secret", "rdonly"), "EACCES"},
		{op("openat", T+"/ro", "f", "rdonly"), `ok "RO"`},
		{op("openat", T+"/ro", "../out/secret", "rdonly"), "EACCES"},
		{op("openat", T+"/out", "secret", "rdonly"), "dir:EACCES"},
		{op("open", T+"/rw/ok", "rdonly"), `ok "RO"`},
		{op("open", T+"/rw/ok", "rdwr"), "EACCES"},
		{op("open", T+"/rw/ok", "rdonly|nofollow"), "ELOOP"},
		{op("open", T+"/rw/s", "rdonly"), "EACCES"},
		{op("open", T+"/lnk/f", "rdonly"), `ok "RO"`},
		{op("stat", T+"/lnk/f"), "ok " + ino(t, T+"/ro/f") + " file"},
		{op("open", T+"/lnk/../out/secret", "rdonly"), "EACCES"},
		{op("open", T+"/rw/d/passwd", "rdonly"), "EACCES"},
		{op("open", T+"/rw/dangling", "wronly|creat"), "EACCES"},
		{op("open", T+"/ro/f/", "rdonly"), "ENOTDIR"},
		{op("write", T+"/rw/new", "hello"), "ok"},
		{op("open", T+"/rw/new", "rdonly"), `ok "hello"`},
		{op("open", T+"/rw/new", "wronly|creat|excl"), "EEXIST"},
		{op("open", T+"/ro/f", "wronly|trunc"), "EACCES"},
		{op("open", T+"/ro/f", "rdonly|trunc"), "EACCES"},
		{op("write", T+"/ro/new", "x"), "EACCES"},
		{op("open", T+"/ro/f", "rdonly"), `ok "RO"`},
		{op("stat", T+"/ro/f"), "ok " + ino(t, T+"/ro/f") + " file"},
		{op("stat", T+"/ro/d"), "ok " + ino(t, T+"/ro/d") + " dir"},
		{op("stat", T+"/out/secret"), "EACCES"},
		{op("stat", T+"/out/missing"), "EACCES"},
		{op("stat", T+"/ro/missing"), "ENOENT"},
		{op("lstat", T+"/rw/ok"), "ok " + ino(t, T+"/rw/ok") + " symlink"},
		{op("stat", T+"/rw/ok"), "ok " + ino(t, T+"/ro/f") + " file"},
		{op("stat", T+"/rw/s"), "EACCES"},
		{op("fstat", T+"/ro/f"), "ok " + ino(t, T+"/ro/f") + " file"},
		{op("access", T+"/ro/f", "r"), "ok"},
		{op("access", T+"/ro/f", "f"), "ok"},
		{op("access", T+"/ro/f", "w"), "EACCES"},
		{op("access", T+"/out/secret", "f"), "EACCES"},
		{op("readlink", T+"/rw/ok"), "ok ../ro/f"},
		{op("readlink", T+"/out/secret"), "EACCES"},
		{op("ls", T+"/ro"), "ok bin,d,f"},
		{op("ls", T+"/out"), "EACCES"},
		{op("mkdir", T+"/rw/sub"), "ok"},
		{op("mkdir", T+"/ro/sub"), "EACCES"},
		{op("rename", T+"/rw/a", T+"/rw/b"), "ok"},
		{op("rename", T+"/ro/f", T+"/rw/f"), "EACCES"},
		{op("unlink", T+"/rw/new"), "ok"},
		{op("unlink", T+"/ro/f"), "EACCES"},
		{op("rmdir", T+"/rw/sub"), "ok"},
		{op("self-status"), "ok pid=SELF"},
		{op("chdir", T+"/out"), "EACCES"},
		{op("chdir", T+"/ro/d"), "ok"},
		{op("open", "g", "rdonly"), `ok "G"`},
		{op("open", "../../out/secret", "rdonly"), "EACCES"},
	}
	var list [][]string
	for _, c := range cases {
		list = append(list, c.op)
	}
	res := runOpsUnder(t, f.p0("allow read /proc/self/status\n"), T+"/ro", ops(list...)...)
	if res.err != nil {
		t.Fatalf("worker: %v\nstderr: %s", res.err, res.stderr)
	}
	if len(res.lines) != len(cases) {
		t.Fatalf("got %d result lines for %d operations:\n%s\nstderr: %s", len(res.lines), len(cases), strings.Join(res.lines, "\n"), res.stderr)
	}
	for i, c := range cases {
		got := res.lines[i]
		if c.want == "ok pid=SELF" {
			var pid, getpid int
			if _, err := fmt.Sscanf(got, "ok pid=%d getpid=%d", &pid, &getpid); err != nil || pid != getpid {
				t.Errorf("%v: got %q, want the worker's own pid", c.op, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%v: got %q, want %q", c.op, got, c.want)
		}
	}
	// Nothing outside the policy changed.
	if b, _ := os.ReadFile(T + "/ro/f"); string(b) != "RO" {
		t.Errorf("ro/f changed: %q", b)
	}
	if _, err := os.Stat(T + "/out/new"); err == nil {
		t.Errorf("out/new was created through a dangling symlink")
	}
	if _, err := os.Stat(T + "/rw/b"); err != nil {
		t.Errorf("rename in rw did not happen: %v", err)
	}
	// The audit log names the deciding rule for allowed calls and the
	// default for denials.
	var sawDeny, sawAllow bool
	for _, e := range res.events {
		if !e.Allowed && strings.HasSuffix(e.Path, "/out/secret") && e.Rule == "default" {
			sawDeny = true
		}
		if e.Allowed && e.Path == T+"/ro/f" && strings.HasPrefix(e.Rule, "test.policy:") {
			sawAllow = true
		}
	}
	if !sawDeny || !sawAllow {
		t.Errorf("audit events lack a denial of out/secret (%v) or an allow of ro/f by its rule (%v)", sawDeny, sawAllow)
	}
}
