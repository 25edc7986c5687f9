//go:build linux

package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cli runs the built sandbox-exec with args and returns stdout, stderr and
// the exit status.
func cli(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sandboxExec, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("sandbox-exec %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("sandbox-exec %v: timed out\nstderr: %s", args, stderr.String())
	}
	return stdout.String(), stderr.String(), code
}

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.policy")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func shippedRuntime(t *testing.T) string {
	abs, err := filepath.Abs("../policies/system-runtime.policy")
	if err != nil {
		t.Fatal(err)
	}
	return "version 1\ninclude " + abs + "\nallow read /usr/bin/** /bin/** /usr/share/** /etc/hostname\nallow exec /usr/bin/* /bin/*\n"
}

func TestCLICat(t *testing.T) {
	want, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Skipf("no /etc/hostname on this machine: %v", err)
	}
	pol := writePolicy(t, shippedRuntime(t))
	out, errOut, code := cli(t, "", "-f", pol, "--", "cat", "/etc/hostname")
	if code != 0 || out != string(want) {
		t.Fatalf("cat /etc/hostname: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// /etc/shadow is under no rule: cat reports EACCES and sandbox-exec
	// exits with cat's status.
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	out, errOut, code = cli(t, "", "-f", pol, "--audit", auditFile, "--", "cat", "/etc/shadow")
	if code != 1 || !strings.Contains(errOut, "/etc/shadow: Permission denied") || out != "" {
		t.Fatalf("cat /etc/shadow: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The audit log (JSON lines) records the denial with its rule.
	auditLog, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	sc := bufio.NewScanner(strings.NewReader(string(auditLog)))
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if ev["path"] == "/etc/shadow" && ev["verdict"] == "deny" && ev["rule"] == "default" {
			found = true
			for _, k := range []string{"time", "pid", "syscall", "resolved", "right", "latency_ns"} {
				if _, ok := ev[k]; !ok {
					t.Errorf("audit event lacks %q: %s", k, sc.Text())
				}
			}
		}
	}
	if !found {
		t.Errorf("no audit denial for /etc/shadow in:\n%s", auditLog)
	}
}

func TestCLIPolicySources(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "note"), []byte("hi"), 0o644)
	base := writePolicy(t, shippedRuntime(t))
	// -p adds rules after -f; -D defines a variable.
	out, errOut, code := cli(t, "", "-f", base, "-D", "DIR="+dir, "-p", "allow read ${DIR}/**", "--", "cat", dir+"/note")
	if code != 0 || out != "hi" {
		t.Fatalf("-f -D -p: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Without the -p rule the file is refused.
	_, _, code = cli(t, "", "-f", base, "--", "cat", dir+"/note")
	if code != 1 {
		t.Fatalf("without rule: status %d, want cat's 1", code)
	}
	// The built-in default policy reads the current directory.
	out, errOut, code = cli(t, dir, "--", "cat", "note")
	if code != 0 || out != "hi" {
		t.Fatalf("default policy: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// ... and writes nothing.
	_, _, code = cli(t, dir, "--", "sh", "-c", "echo x > new")
	if code == 0 {
		t.Fatalf("default policy allowed a write")
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Fatalf("default policy created a file")
	}
}

func TestCLIExitStatus(t *testing.T) {
	pol := writePolicy(t, shippedRuntime(t))
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"sh", "-c", "exit 7"}, 7},
		{[]string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{[]string{"no-such-program-anywhere"}, 127},
		{[]string{"/etc/hostname"}, 126},
		{[]string{"true"}, 0},
	}
	for _, c := range cases {
		_, errOut, code := cli(t, "", append([]string{"-f", pol, "--"}, c.args...)...)
		if code != c.want {
			t.Errorf("%v: status %d, want %d (stderr %q)", c.args, code, c.want, errOut)
		}
	}
	// A broken policy is sandbox-exec's own failure, with file:line:col.
	bad := writePolicy(t, "version 1\nallow raed /usr/**\n")
	_, errOut, code := cli(t, "", "-f", bad, "--", "true")
	if code != 125 || !strings.Contains(errOut, "p.policy:2:7") {
		t.Errorf("bad policy: status %d, stderr %q; want 125 and a position", code, errOut)
	}
}

func TestCLICheckExplain(t *testing.T) {
	pol := writePolicy(t, "version 1\nallow read /usr/**\ndeny /usr/secret/**\n")
	out, errOut, code := cli(t, "", "check", pol)
	if code != 0 || !strings.Contains(out, "allow read /usr/**") {
		t.Fatalf("check: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = cli(t, "", "explain", "-f", pol, "-r", "read", "/usr/lib/x", "/usr/secret/k", "/etc/passwd")
	if code != 1 || !strings.Contains(out, "p.policy:2") || !strings.Contains(out, "p.policy:3") {
		t.Fatalf("explain: status %d, stdout %q", code, out)
	}
	for _, f := range []string{"../policies/default.policy", "../policies/system-runtime.policy"} {
		if _, errOut, code := cli(t, "", "check", "-q", f); code != 0 {
			t.Errorf("check %s: status %d: %s", f, code, errOut)
		}
	}
}
