//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
)

func TestUserFlag(t *testing.T) {
	for _, c := range []struct {
		in       string
		uid, gid uint32
		bad      bool
	}{
		{"65534", 65534, 65534, false},
		{"1000:100", 1000, 100, false},
		{"0:0", 0, 0, false},
		{"nobody", 0, 0, true},
		{"1000:", 0, 0, true},
		{":1000", 0, 0, true},
		{"-1", 0, 0, true},
		{"4294967295", 0, 0, true},
		{"4294967296", 0, 0, true},
		{"1:2:3", 0, 0, true},
	} {
		var u userFlag
		err := u.Set(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("--user %q: accepted as %v", c.in, u.String())
			}
			continue
		}
		if err != nil || u.cred == nil || u.cred.Uid != c.uid || u.cred.Gid != c.gid || u.cred.Groups == nil || len(u.cred.Groups) != 0 || u.cred.NoSetGroups {
			t.Errorf("--user %q: %+v, %v; want %d:%d without groups", c.in, u.cred, err, c.uid, c.gid)
		}
	}
}

// TestUserCommand runs the built command with --user: as root the worker
// runs as 65534 and --report says so; as uid 65534 the same flag fails with
// status 125 and a message naming what is missing.
func TestUserCommand(t *testing.T) {
	testutil.RequireRoot(t)
	cred := testutil.UnprivilegedCredential(t)
	dir := testutil.UnprivilegedTempDir(t)
	bin := filepath.Join(dir, "sandbox-exec")
	if err := testutil.BuildCommand(bin); err != nil {
		t.Fatal(err)
	}
	os.Chmod(bin, 0o755)
	const pol = "version 1\nallow read /usr/** /lib/** /lib64/** /etc/**\nallow exec /usr/bin/* /bin/*\nallow read,write /dev/null\nallow stat /\n"
	report := filepath.Join(dir, "report.json")

	cmd := exec.Command(bin, "--user", "65534", "--report", report, "-p", pol, "--", "/bin/sh", "-c", "id -u; id -g; id -G")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.String() != "65534\n65534\n65534\n" {
		t.Fatalf("--user 65534: %q, %v; stderr %q; want ids 65534 and no other group", stdout.String(), err, stderr.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		User struct {
			Uid    int   `json:"uid"`
			Gid    int   `json:"gid"`
			Groups []int `json:"groups"`
		} `json:"user"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.User.Uid != 65534 || r.User.Gid != 65534 || r.User.Groups == nil || len(r.User.Groups) != 0 {
		t.Errorf("report user %+v (%v), want 65534:65534 and groups []:\n%s", r.User, err, b)
	}

	// Without --user the worker is root: the flag made the difference.
	out, err := exec.Command(bin, "-p", pol, "--", "/bin/sh", "-c", "id -u").Output()
	if err != nil || string(out) != "0\n" {
		t.Errorf("without --user: %q, %v", out, err)
	}

	for _, c := range []struct {
		args []string
		cred *syscall.Credential
		msg  string
	}{
		{[]string{"--user", "nobody"}, nil, "numeric"},
		{[]string{"--user", "0"}, cred, "CAP_SETUID"},
	} {
		cmd := exec.Command(bin, slices.Concat(c.args, []string{"-p", pol, "--", "/bin/true"})...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 125 || !strings.Contains(string(out), c.msg) {
			t.Errorf("%v (as %+v): %v, %q; want status 125 and a message naming %q", c.args, c.cred, err, out, c.msg)
		}
	}
}
