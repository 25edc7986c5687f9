//go:build linux && amd64

package escape

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// testSetuidUnprivileged is the setuid half of S-05: "an allowed
// setuid-root binary runs with euid ≠ 0". As root the worker's euid is 0
// whatever the binary, so the worker runs as uid 65534 (Cmd.Credential)
// and execs root-owned set-uid copies of programs that print their
// effective uid: /usr/bin/id and, with a C compiler, the helper. They live
// in $T/suid (the suite checks that $T/ro stays unchanged), which P0 plus
// `allow exec $T/suid/*` lets the worker execute (policy and Landlock).
// no_new_privs keeps the set-uid bit from taking effect: each must print
// euid 65534. Outside the sandbox the same copies, run as 65534, print
// euid 0: the bits work on this file system, so the test can fail.
func testSetuidUnprivileged(t *testing.T, f *fixture) {
	t.Helper()
	testutil.RequireRoot(t)
	cred := testutil.UnprivilegedCredential(t)
	dir := f.T + "/suid"
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	type prog struct {
		path string
		args []string
		want string // output under the sandbox
		root string // output as 65534 outside it
	}
	progs := []prog{{dir + "/id", []string{"-u"}, "65534", "0"}}
	copyFile(t, "/usr/bin/id", progs[0].path, 0o755)
	if cHelper != "" {
		progs = append(progs, prog{dir + "/helper", []string{"euid"}, "ok euid=65534 uid=65534", "ok euid=0 uid=65534"})
		copyFile(t, cHelper, progs[1].path, 0o755)
	} else {
		t.Logf("without a C compiler only the copy of /usr/bin/id runs: %s", cHelperErr)
	}
	for _, p := range progs {
		if err := os.Chown(p.path, 0, 0); err != nil {
			t.Fatal(err)
		}
		// syscall.Chmod: os.Chmod takes os.ModeSetuid, not the 04000 bit.
		if err := syscall.Chmod(p.path, 0o4755); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p.path, &st); err != nil || st.Uid != 0 || st.Mode&syscall.S_ISUID == 0 {
			t.Fatalf("%s: not a setuid-root file (uid %d, mode %o, %v)", p.path, st.Uid, st.Mode, err)
		}
		// Control: without the sandbox the set-uid bit takes effect.
		c := exec.Command(p.path, p.args...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := c.Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != p.root {
			t.Skipf("%s run as uid %d outside the sandbox: %q, %v; want %q: set-uid bits do not work here (nosuid mount?)", p.path, cred.Uid, got, err, p.root)
		}
	}

	// The attacker: this test binary as the esc helper, a copy uid 65534
	// can execute, run as 65534.
	exe := testutil.UnprivilegedExecutable(t)
	pol := mustParse(t, f.p0("allow exec "+dir+"/*\nallow read,exec "+exe+"\n"))
	var steps []step
	steps = append(steps, s("ok uid=65534 dac_override=false eff=0x0", "capeff"))
	for _, p := range progs {
		steps = append(steps, s("ok "+p.want, append([]string{"exec", p.path}, p.args...)...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := launcher.CommandContext(ctx, pol, exe, append([]string{strconv.FormatUint(f.secretIno, 10)}, stepOps(steps)...)...)
	cmd.Env = append(os.Environ(), testutil.HelperEnv("esc"))
	cmd.Dir = f.T + "/ro"
	cmd.Credential = cred
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if r := cmd.Report(); r == nil || r.User.Uid != int(cred.Uid) || !r.NoNewPrivs {
		t.Fatalf("report %+v: want the worker as uid %d under no_new_privs (start: %v, stderr %q)", r, cred.Uid, err, stderr.String())
	}
	res := runResult{lines: strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n"), stderr: stderr.String(), err: err, state: cmd.ProcessState}
	for _, l := range append(res.lines, res.stderr) {
		if forbidden.MatchString(l) {
			t.Errorf("worker output reveals what it must not see: %q", l)
		}
	}
	if err != nil {
		t.Errorf("worker: %v; stderr %q", err, stderr.String())
	}
	for _, l := range res.lines {
		if strings.Contains(l, "euid=0 ") || l == "ok 0" {
			t.Errorf("a setuid-root binary ran with euid 0 under the sandbox: %q", l)
		}
	}
	want(t, res, steps...)
	t.Logf("S-05 setuid half as uid %d: %q", cred.Uid, res.lines)
}
