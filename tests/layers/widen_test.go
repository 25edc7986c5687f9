//go:build linux

package layers

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// A profile directory that does not exist when the worker starts: Landlock
// rules attach to existing objects, so the worker's rule for
// `allow read,write,create PROFILE/**` goes to the nearest existing
// ancestor, and the report lists it as widened. What the worker does
// natively below the new directory then works (bind(2) of a UNIX socket,
// which the broker never sees: Landlock's make_sock), while the broker,
// which serves every open and mkdir, still refuses the ancestor's other
// entries. A read,write rule on a missing path is skipped, never widened
// (nothing can appear there), and execute never moves to an ancestor
// (Landlock alone limits execve).
func TestLandlockMissingCreatePath(t *testing.T) {
	f := newFixture(t, nil)
	out := f.T + "/out"
	profile := out + "/profile"
	tools := out + "/tools"
	gone := out + "/gone"
	pol := f.base("allow read,write,create " + profile + "/**\n" +
		"allow read,create,exec " + tools + "/**\n" +
		"allow read,write " + gone + "/**\n" +
		"net unix\nsyscall allow mkdir mkdirat\n")
	r := runProbes(t, pol, nil,
		"mkdir "+profile, "mkdir "+profile+"/sub", "create "+profile+"/sub/file", "bind-unix "+profile+"/sub/sock",
		"create "+out+"/sibling", "mkdir "+out+"/sibdir", "open "+out+"/secret")
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	ll := r.report.Landlock
	if !ll.Enforced {
		t.Skipf("Landlock not enforced (ABI %d)", ll.ABI)
	}
	want := []string{"ok", "ok", "ok", "ok", "EACCES", "EACCES", "EACCES"}
	if !slices.Equal(r.lines, want) {
		t.Errorf("mkdir PROFILE, mkdir PROFILE/sub, create PROFILE/sub/file, bind PROFILE/sub/sock, create and mkdir a sibling of PROFILE, open the ancestor's secret: %q, want %q", r.lines, want)
	}
	if b, err := os.ReadFile(profile + "/sub/file"); err != nil || string(b) != "new" {
		t.Errorf("PROFILE/sub/file: %q, %v", b, err)
	}
	for _, p := range []string{out + "/sibling", out + "/sibdir"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists: the broker let the worker create a sibling of PROFILE", p)
		}
	}

	// The report: both create rules widened to $T/out, the exec part of
	// the second one and the read,write rule skipped.
	for _, w := range []string{profile + " -> " + out, tools + " -> " + out} {
		if !slices.Contains(ll.WidenedPaths, w) {
			t.Errorf("report: widened %q, want %q listed", ll.WidenedPaths, w)
		}
	}
	if slices.ContainsFunc(ll.WidenedPaths, func(s string) bool { return strings.HasPrefix(s, gone+" ") }) || !slices.Contains(ll.SkippedPaths, gone) {
		t.Errorf("report: a read,write rule on a missing path: widened %q, skipped %q; want it skipped only", ll.WidenedPaths, ll.SkippedPaths)
	}
	if !slices.Contains(ll.SkippedPaths, tools) {
		t.Errorf("report: skipped %q; want %s (its execute right stays on the missing path)", ll.SkippedPaths, tools)
	}
	var onOut int
	for _, p := range ll.Paths {
		if p.Path != out {
			continue
		}
		onOut++
		if slices.Contains(p.Access, "execute") {
			t.Errorf("report: %s got execute (%s): execute must never move to an ancestor", out, p.Source)
		}
		if !slices.Contains(p.Access, "make_sock") || !strings.HasPrefix(p.Source, "layers.policy:") {
			t.Errorf("report: rule on %s: %+v; want make_sock from a policy line", out, p)
		}
	}
	if onOut != 2 {
		t.Errorf("report: %d rules on %s, want 2 (one per widened rule): %+v", onOut, out, ll.Paths)
	}
}
