//go:build linux

package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRealPrograms runs unmodified dynamic programs under a policy built on
// the shipped system-runtime policy: their loader, libraries and locale
// files come through the broker.
func TestRealPrograms(t *testing.T) {
	out := t.TempDir()
	os.Chmod(out, 0o777)
	base := shippedRuntime(t) + "allow read /usr/** /etc/**\ndeny /etc/shadow /etc/gshadow\nallow read,write,create " + out + "/**\nallow read,write /dev/null\nallow exec /usr/** /bin/**\n"
	pol := writePolicy(t, base)
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, stdout string)
		need  string // a program that must exist
	}{
		{"ls", []string{"ls", "-la", "/usr"}, func(t *testing.T, s string) {
			if !strings.Contains(s, " lib") || !strings.Contains(s, " share") {
				t.Errorf("ls -la /usr output lacks lib/share:\n%s", s)
			}
		}, "ls"},
		{"sh", []string{"sh", "-c", "for f in /etc/hostname /etc/shadow; do if cat $f >/dev/null 2>&1; then echo yes; else echo no; fi; done"}, func(t *testing.T, s string) {
			if s != "yes\nno\n" {
				t.Errorf("sh script: %q", s)
			}
		}, "sh"},
		{"python", []string{"/usr/bin/python3", "-I", "-c", "import json, sqlite3; print(json.dumps({'ok': sqlite3.sqlite_version != ''}))"}, func(t *testing.T, s string) {
			if s != "{\"ok\": true}\n" {
				t.Errorf("python: %q", s)
			}
		}, "/usr/bin/python3"},
		{"memfd", []string{"/usr/bin/python3", "-I", "-c", memfdScript}, func(t *testing.T, s string) {
			// A memfd is reopened through /proc/self/fd within the access
			// mode the worker holds, never beyond it.
			if s != "b'hello'\nrw ok\nupgrade denied\n" {
				t.Errorf("memfd reopen: %q", s)
			}
		}, "/usr/bin/python3"},
		{"find", []string{"find", "/usr/share", "-name", "*.txt"}, func(t *testing.T, s string) {
			if strings.Count(s, ".txt\n") < 1 {
				t.Errorf("find found no .txt files")
			}
		}, "find"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := exec.LookPath(c.need); err != nil {
				t.Fatalf("%s is not installed; scripts/setup installs it: %v", c.need, err)
			}
			stdout, stderr, code := cli(t, out, append([]string{"-f", pol, "--"}, c.args...)...)
			if c.name == "find" && code == 1 {
				// The worker has no capabilities: directories that only
				// their owner may read stay closed to it, even as root.
				checkOnlyPrivateDirsDenied(t, stderr)
				code = 0
			}
			if code != 0 {
				t.Fatalf("status %d\nstderr: %s", code, stderr)
			}
			c.check(t, stdout)
		})
	}
	t.Run("gcc", func(t *testing.T) {
		if _, err := exec.LookPath("gcc"); err != nil {
			t.Fatalf("gcc is not installed; scripts/setup installs it: %v", err)
		}
		src := filepath.Join(out, "hello.c")
		os.WriteFile(src, []byte("#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}\n"), 0o644)
		tmp := filepath.Join(out, "tmp")
		os.Mkdir(tmp, 0o777)
		_, stderr, code := cli(t, out, "-f", pol, "-p", "env set TMPDIR="+tmp, "--", "gcc", "-o", filepath.Join(out, "hello"), src)
		if code != 0 {
			t.Fatalf("gcc: status %d\nstderr: %s", code, stderr)
		}
		b, err := exec.Command(filepath.Join(out, "hello")).Output()
		if err != nil || string(b) != "hello\n" {
			t.Fatalf("compiled program: %q, %v", b, err)
		}
	})
}

// checkOnlyPrivateDirsDenied checks that every "Permission denied" of find
// names a directory that others may not read, and that there is no other
// error.
func checkOnlyPrivateDirsDenied(t *testing.T, stderr string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		path, ok := strings.CutSuffix(line, "’: Permission denied")
		path, ok2 := strings.CutPrefix(path, "find: ‘")
		if !ok || !ok2 {
			t.Errorf("unexpected find error: %q", line)
			continue
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm()&0o005 == 0o005 {
			t.Errorf("find was refused %s, which others may read (%v)", path, err)
		}
	}
}

const memfdScript = `import os
fd = os.memfd_create("x")
os.write(fd, b"hello")
print(open("/proc/self/fd/%d" % fd, "rb").read())
try:
    open("/proc/self/fd/%d" % fd, "r+b"); print("rw ok")
except PermissionError:
    print("rw denied")
fd2 = os.memfd_create("y")
ro = os.open("/proc/self/fd/%d" % fd2, os.O_RDONLY)
try:
    open("/proc/self/fd/%d" % ro, "r+b"); print("upgrade ok")
except PermissionError:
    print("upgrade denied")
`
