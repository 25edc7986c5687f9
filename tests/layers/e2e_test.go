//go:build linux

package layers

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// TestEndToEnd runs the key end-to-end checks of the command with the
// host (sandbox-exec itself) as root and as an unprivileged user (uid and
// gid 65534 without groups, dropped by the test): files, exec, every
// layer, the report (checked against the schema and against probes from
// inside the worker) and features.
func TestEndToEnd(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		testutil.RequireRoot(t)
		e2e(t, sandboxExec, nil)
	})
	t.Run("unprivileged", func(t *testing.T) {
		cred := testutil.UnprivilegedCredential(t)
		bin := sandboxExec
		if cred != nil {
			dir := t.TempDir()
			bin = filepath.Join(dir, "sandbox-exec")
			b, err := os.ReadFile(sandboxExec)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, b, 0o755); err != nil {
				t.Fatal(err)
			}
			testutil.MakeAccessible(t, dir, cred)
		}
		e2e(t, bin, cred)
	})
}

func e2e(t *testing.T, bin string, cred *syscall.Credential) {
	f := newFixture(t, cred)
	worker := testutil.UnprivilegedExecutable(t)
	run := func(env []string, args ...string) cliResult {
		t.Helper()
		return cli(t, bin, cred, f.T, env, args...)
	}

	// Files: the broker serves what the policy allows, and nothing else.
	sys := writeFile(t, f.T, "sys.policy", shipped(t)+"allow read "+f.T+"/ro/**\n")
	if r := run(nil, "-f", sys, "--", "cat", f.T+"/ro/f"); r.code != 0 || r.stdout != "RO" {
		t.Errorf("cat an allowed file: status %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	if r := run(nil, "-f", sys, "--", "cat", f.T+"/out/secret"); r.code != 1 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("cat a file under no rule: status %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	// Landlock: a program under no exec rule does not run (S-05).
	if r := run(nil, "-f", sys, "--", "sh", "-c", f.T+"/ro/bin/ok"); r.code != 126 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("sh -c <program under no exec rule>: status %d, %s; want 126", r.code, r.stderr)
	}
	if r := run(nil, "-f", sys, "--", "sh", "-c", "true"); r.code != 0 {
		t.Errorf("sh -c true: status %d, %s", r.code, r.stderr)
	}

	// Every layer at once, the report written before exec, and probes
	// from inside the worker that check it.
	report := f.T + "/rw/report.json"
	pol := writeFile(t, f.T, "all.policy", f.policyFor(worker,
		"namespaces user pid ipc uts net\nlimit fsize 1MiB\nenv clear\nenv pass "+testutil.EnvHelper+"\nenv set ONLY=1\n"))
	r := run([]string{testutil.HelperEnv("probe")}, append([]string{"-f", pol, "--report", report, "--", worker},
		ops("open "+report, "status", "nnp", "fds", "rlimit 1", "ids", "env", "exec /bin/sh", "shmnew")...)...)
	if r.code != 0 {
		t.Fatalf("probes: status %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 9 {
		t.Fatalf("probes printed %q", lines)
	}
	rep := readReport(t, report)
	if !strings.HasPrefix(lines[0], "ok ") || lines[0] == "ok 0" {
		t.Errorf("the worker read the report as %q: it must be complete before exec", lines[0])
	}
	checkReport(t, &rep, lines, cred)

	// --report - writes to stderr.
	r = run(nil, "-f", sys, "--report", "-", "--", "true")
	var rep2 launcher.Report
	if err := json.Unmarshal([]byte(r.stderr), &rep2); err != nil || r.code != 0 {
		t.Errorf("--report -: status %d, %v\n%s", r.code, err, r.stderr)
	}

	// no_new_privs: a set-user-ID root program runs, without root.
	if cred != nil && os.Geteuid() == 0 {
		suid := f.T + "/ro/bin/suid-id"
		b, err := os.ReadFile("/usr/bin/id")
		if err != nil {
			t.Skipf("no /usr/bin/id: %v", err)
		}
		if err := os.WriteFile(suid, b, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chown(suid, 0, 0)
		if err := syscall.Chmod(suid, 0o4755); err != nil { // os.Chmod wants os.ModeSetuid
			t.Fatal(err)
		}
		ctl := exec.Command(suid, "-u")
		ctl.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := ctl.Output()
		if err != nil || strings.TrimSpace(string(out)) != "0" {
			t.Skipf("set-user-ID does not work here (nosuid?): %q, %v", out, err)
		}
		p := writeFile(t, f.T, "suid.policy", shipped(t)+"allow exec "+suid+"\nallow read "+suid+"\n")
		if r := run(nil, "-f", p, "--", suid, "-u"); r.code != 0 || strings.TrimSpace(r.stdout) != "65534" {
			t.Errorf("set-user-ID root program in the sandbox: euid %q (status %d, %s), want 65534", r.stdout, r.code, r.stderr)
		}
	}

	// features --json: the schema, and what the report saw.
	r = run(nil, "features", "--json")
	if r.code != 0 {
		t.Fatalf("features --json: status %d: %s", r.code, r.stderr)
	}
	validateJSON(t, "features.schema.json", []byte(r.stdout))
	var feat launcher.Features
	if err := json.Unmarshal([]byte(r.stdout), &feat); err != nil {
		t.Fatal(err)
	}
	if feat.Landlock.ABI != rep.Landlock.ABI {
		t.Errorf("features: Landlock ABI %d, the report %d", feat.Landlock.ABI, rep.Landlock.ABI)
	}
	for _, n := range []string{"user", "pid", "ipc", "uts", "net"} {
		fx, _ := feat.Get(n + "ns")
		if fx.Available != slices.Contains(rep.Namespaces.Applied, n) {
			t.Errorf("features says %sns available=%v (%s); the worker got %v", n, fx.Available, fx.Why, rep.Namespaces.Applied)
		}
	}
	for _, name := range []string{"user-notif", "addfd-send", "openat2"} {
		if fx, _ := feat.Get(name); !fx.Available {
			t.Errorf("features: %s not available (%s), yet workers run", name, fx.Why)
		}
	}
	if r := run(nil, "features"); r.code != 0 || !strings.Contains(r.stdout, "LAYER") || !strings.Contains(r.stdout, "Landlock ABI") {
		t.Errorf("features: status %d\n%s", r.code, r.stdout)
	}
}

// checkReport compares the report with the probes run inside the worker:
// open report, status, nnp, fds, rlimit 1, ids, env, exec /bin/sh, shmnew.
func checkReport(t *testing.T, rep *launcher.Report, lines []string, cred *syscall.Credential) {
	t.Helper()
	st := lines[1]
	for k, v := range map[string]string{"CapEff": rep.Capabilities.Effective, "CapPrm": rep.Capabilities.Permitted,
		"CapInh": rep.Capabilities.Inheritable, "CapBnd": rep.Capabilities.Bounding, "CapAmb": rep.Capabilities.Ambient} {
		if v != "0x0" {
			t.Errorf("report: %s %s, want 0x0", k, v)
		}
		got := statusField(st, k)
		if n, err := strconv.ParseUint(got, 16, 64); err != nil || "0x"+strconv.FormatUint(n, 16) != v {
			t.Errorf("inside the worker %s = %s, report says %s", k, got, v)
		}
	}
	if statusField(st, "Seccomp") != "2" || !rep.Seccomp.Enforced {
		t.Errorf("seccomp: worker %q, report %v", statusField(st, "Seccomp"), rep.Seccomp.Enforced)
	}
	if (lines[2] == "ok 1") != rep.NoNewPrivs || !rep.NoNewPrivs {
		t.Errorf("no_new_privs: worker %q, report %v", lines[2], rep.NoNewPrivs)
	}
	var fds []string
	for _, fd := range strings.Fields(strings.TrimPrefix(lines[3], "ok ")) {
		if n, typ, _ := strings.Cut(fd, ":"); typ != "other" {
			fds = append(fds, n)
		}
	}
	var repFDs []string
	for _, fd := range rep.FDs {
		repFDs = append(repFDs, strconv.Itoa(fd))
	}
	if !slices.Equal(fds, repFDs) {
		t.Errorf("fds: worker %v, report %v", fds, repFDs)
	}
	var fsize *launcher.RlimitReport
	for i := range rep.Rlimits {
		if rep.Rlimits[i].Name == "fsize" {
			fsize = &rep.Rlimits[i]
		}
	}
	if fsize == nil || lines[4] != "ok "+fsize.Soft+" "+fsize.Hard || fsize.Soft != "1048576" {
		t.Errorf("RLIMIT_FSIZE: worker %q, report %+v", lines[4], fsize)
	}
	pidNS := slices.Contains(rep.Namespaces.Applied, "pid")
	if got := strings.HasPrefix(lines[5], "ok pid=1 "); got != pidNS {
		t.Errorf("pid namespace: worker %q, report applied %v", lines[5], rep.Namespaces.Applied)
	}
	if pid, sid := statusField(lines[5], "pid"), statusField(lines[5], "sid"); (pid == sid) != rep.NewSession {
		t.Errorf("new session: worker %q, report %v", lines[5], rep.NewSession)
	}
	var names []string
	for _, kv := range strings.Split(strings.TrimPrefix(lines[6], "ok "), ",") {
		n, _, _ := strings.Cut(kv, "=")
		names = append(names, n)
	}
	want := slices.DeleteFunc(slices.Clone(rep.Env), func(n string) bool { return n == testutil.EnvHelper })
	if !slices.Equal(names, want) || !slices.Equal(want, []string{"ONLY"}) {
		t.Errorf("env: worker %v, report %v", names, rep.Env)
	}
	enforcesExec := rep.Landlock.Enforced && slices.Contains(rep.Landlock.HandledFS, "execute")
	if (lines[7] == "EACCES") != enforcesExec {
		t.Errorf("exec /bin/sh: worker %q, report Landlock enforced %v handled %v", lines[7], rep.Landlock.Enforced, rep.Landlock.HandledFS)
	}
	if (lines[8] == "ok") != rep.Seccomp.SysVIPC {
		t.Errorf("SysV IPC: worker %q, report %v", lines[8], rep.Seccomp.SysVIPC)
	}
	for _, n := range []string{"user", "pid", "ipc", "uts", "net"} {
		if !slices.Contains(rep.Namespaces.Applied, n) {
			t.Errorf("namespace %s not applied (%+v)", n, rep.Namespaces)
		}
	}
	if cred != nil && !rep.Namespaces.UserImplicit && !slices.Contains(rep.Namespaces.Requested, "user") {
		t.Errorf("unprivileged namespaces without a user namespace: %+v", rep.Namespaces)
	}
	if h := rep.Host; rep.Landlock.ABI > 0 && (!h.Confined || h.Dumpable || h.Landlock == nil || !h.Landlock.Enforced) {
		t.Errorf("report: host %+v, want confined and not dumpable", h)
	}
	if len(rep.Downgrades) != 0 {
		t.Logf("downgrades on this kernel: %+v", rep.Downgrades)
	}
}

// A `require` the kernel cannot meet is sandbox-exec's own failure (exit
// 125), naming the feature and the Linux release that has it; one it can
// meet changes nothing.
func TestRequire(t *testing.T) {
	dir := t.TempDir()
	pol := writeFile(t, dir, "p.policy", shipped(t)+"require landlock>=99\n")
	r := cli(t, sandboxExec, nil, "", nil, "-f", pol, "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "landlock>=99") || !strings.Contains(r.stderr, "Linux") || !strings.Contains(r.stderr, "p.policy:") {
		t.Errorf("require landlock>=99: status %d, stderr %q; want 125 naming the feature, the policy line and a Linux release", r.code, r.stderr)
	}
	feat := launcher.ProbeFeatures()
	if feat.Landlock.ABI < 6 {
		t.Skipf("Landlock ABI %d: the rest needs ABI 6", feat.Landlock.ABI)
	}
	req := "require landlock>=6 landlock-net landlock-scope user-notif addfd-send"
	for _, ns := range []string{"userns", "pidns"} {
		if f, _ := feat.Get(ns); f.Available {
			req += " " + ns // probed again by the confined host
		}
	}
	pol = writeFile(t, dir, "q.policy", shipped(t)+req+"\n")
	if r := cli(t, sandboxExec, nil, "", nil, "-f", pol, "--", "true"); r.code != 0 {
		t.Errorf("requirements this kernel meets: status %d: %s", r.code, r.stderr)
	}
}

// The cgo finding: sandbox-exec links cgo by default (the net package),
// and syscall.AllThreadsSyscall refuses to run then; host confinement does
// not depend on it (one thread is restricted, then the program is
// re-executed), so a CGO_ENABLED=0 build confines itself the same way.
func TestHostConfinementBuilds(t *testing.T) {
	nocgo, err := nocgoBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ bin, cgo string }{{sandboxExec, ""}, {nocgo, "0"}} {
		out, err := exec.Command("go", "version", "-m", c.bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", filepath.Base(c.bin), strings.Join(slices.DeleteFunc(strings.Split(string(out), "\n"), func(l string) bool { return !strings.Contains(l, "CGO_ENABLED") }), ""))
		if c.cgo == "0" && !strings.Contains(string(out), "CGO_ENABLED=0") {
			t.Errorf("%s was not built without cgo", c.bin)
		}
		dir := t.TempDir()
		report := filepath.Join(dir, "r.json")
		r := cli(t, c.bin, nil, dir, nil, "--report", report, "--", "cat", "/etc/hostname")
		want, _ := os.ReadFile("/etc/hostname")
		if r.code != 0 || r.stdout != string(want) {
			t.Errorf("%s: cat /etc/hostname: status %d, %q, %s", c.bin, r.code, r.stdout, r.stderr)
		}
		var rep launcher.Report
		doc, _ := os.ReadFile(report)
		if err := json.Unmarshal(doc, &rep); err != nil {
			t.Fatalf("%s: report: %v", c.bin, err)
		}
		if rep.Landlock.ABI > 0 && (!rep.Host.Confined || rep.Host.Landlock == nil) {
			t.Errorf("%s: host not confined: %+v", c.bin, rep.Host)
		}
	}
}
