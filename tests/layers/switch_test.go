//go:build linux

package layers

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// `landlock off` turns the worker's Landlock layer off, and only that
// layer: probed from inside the worker, what only Landlock stops (execve
// of an unlisted program, a signal to the host) goes through, what the
// broker and the filter stop is still stopped, and the report says the
// layer is disabled by the policy line, without calling it a downgrade.
// With the same policy but `landlock on` the same probes are refused, so
// the difference is the switch. The host's confinement is not switched
// off: under sandbox-exec the worker stays inside the host's domain.
func TestLandlockOff(t *testing.T) {
	f := newFixture(t, nil)
	host := strconv.Itoa(os.Getpid())
	probes := []string{"exec /bin/sh", "kill " + host + " " + strconv.Itoa(int(unix.SIGCONT)),
		"open " + f.T + "/out/secret", "ptrace " + host, "open " + f.T + "/ro/f"}
	on := runProbes(t, f.base("landlock off\nlandlock on\n"), nil, probes...)
	if on.err != nil {
		t.Fatalf("worker: %v\n%s", on.err, on.stderr)
	}
	if !on.report.Landlock.Enforced {
		t.Skipf("no Landlock here (ABI %d): nothing to turn off", on.report.Landlock.ABI)
	}
	if want := []string{"EACCES", "EPERM", "EACCES", "EPERM", "ok 2"}; !slices.Equal(on.lines, want) {
		t.Errorf("landlock on: exec /bin/sh, kill host, open secret, ptrace host, open ro/f: %q, want %q", on.lines, want)
	}
	if on.report.Landlock.Disabled != "" {
		t.Errorf("landlock on: report says %q", on.report.Landlock.Disabled)
	}

	text := f.base("landlock off\n")
	line := strings.Count(text, "\n") // landlock off is the last line
	off := runProbes(t, text, nil, probes...)
	if off.err != nil {
		t.Fatalf("worker: %v\n%s", off.err, off.stderr)
	}
	if want := []string{"ok exit 0", "ok", "EACCES", "EPERM", "ok 2"}; !slices.Equal(off.lines, want) {
		t.Errorf("landlock off: exec /bin/sh, kill host, open secret, ptrace host, open ro/f: %q, want %q", off.lines, want)
	}
	ll := off.report.Landlock
	if want := "disabled by policy (layers.policy:" + strconv.Itoa(line) + ")"; ll.Disabled != want || ll.Enforced || ll.Rules != 0 || len(ll.HandledFS) != 0 || len(ll.Scoped) != 0 {
		t.Errorf("landlock off: report %+v; want disabled %q and nothing enforced", ll, want)
	}
	if ll.ABI != on.report.Landlock.ABI {
		t.Errorf("landlock off: report ABI %d, the kernel's is %d", ll.ABI, on.report.Landlock.ABI)
	}
	for _, d := range off.report.Downgrades {
		if d.Layer == "landlock" {
			t.Errorf("landlock off reported as a downgrade: %+v", d)
		}
	}
	if !off.report.Seccomp.Enforced || !off.report.NoNewPrivs {
		t.Errorf("landlock off turned other layers off: %+v", off.report)
	}

	// The command: the report file validates, and require landlock
	// with landlock off is a policy error naming both lines (125).
	dir := f.T + "/rw"
	pol := writeFile(t, dir, "off.policy", shipped(t)+"landlock off\n")
	report := dir + "/r.json"
	if r := cli(t, sandboxExec, nil, dir, nil, "-f", pol, "--report", report, "--", "true"); r.code != 0 {
		t.Fatalf("landlock off: status %d: %s", r.code, r.stderr)
	}
	rep := readReport(t, report)
	if !strings.HasPrefix(rep.Landlock.Disabled, "disabled by policy ("+pol+":") || !rep.Host.Confined {
		t.Errorf("--report: landlock %+v, host %+v; want the worker's ruleset disabled and the host confined", rep.Landlock, rep.Host)
	}
	// sandbox-exec confines itself by the policy's rules whatever the
	// landlock line says, and the worker stays inside the host's domain:
	// a program under no exec rule still does not run.
	prog := f.T + "/ro/bin/ok"
	if r := cli(t, sandboxExec, nil, dir, nil, "-f", pol, "--", "sh", "-c", prog); r.code != 126 {
		t.Errorf("landlock off under a confined host: sh -c %s: status %d, %s; want 126 (the host's domain)", prog, r.code, r.stderr)
	}
	withExec := writeFile(t, dir, "exec.policy", shipped(t)+"allow exec "+prog+"\nlandlock off\n")
	if r := cli(t, sandboxExec, nil, dir, nil, "-f", withExec, "--", "sh", "-c", prog); r.code != 0 {
		t.Errorf("landlock off with an exec rule: sh -c %s: status %d, %s", prog, r.code, r.stderr)
	}
	bad := writeFile(t, dir, "bad.policy", shipped(t)+"require landlock>=2\nlandlock off\n")
	r := cli(t, sandboxExec, nil, dir, nil, "-f", bad, "--", "true")
	n := strings.Count(shipped(t), "\n")
	if r.code != 125 || !strings.Contains(r.stderr, bad+":"+strconv.Itoa(n+2)+":1: landlock off contradicts require landlock>=2 at "+bad+":"+strconv.Itoa(n+1)) {
		t.Errorf("require landlock with landlock off: status %d, %s; want 125 naming both lines", r.code, r.stderr)
	}
}
