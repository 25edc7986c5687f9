//go:build linux

package workloads

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	fcList     = "/usr/bin/fc-list"
	fcMatch    = "/usr/bin/fc-match"
	dejavuSans = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
)

// fontHome makes a home directory with a font of the user's own in
// ~/.fonts: fontconfig has no cache for that directory, so the first run
// scans it and writes a cache.
func fontHome(t *testing.T, dir string) string {
	t.Helper()
	copyFile(t, dejavuSans, filepath.Join(dir, ".fonts", "MyOwnFont.ttf"))
	return dir
}

// fcNativeEnv is the environment fontconfig.policy gives the worker.
func fcNativeEnv(home, cache string) []string {
	return []string{"HOME=" + home, "XDG_CACHE_HOME=" + cache, "PATH=/usr/bin:/bin", "LANG=" + os.Getenv("LANG")}
}

func sortedLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	slices.Sort(lines)
	return lines
}

func TestFontconfig(t *testing.T) {
	requireProgram(t, fcList, "fontconfig")
	requireProgram(t, dejavuSans, "fonts-dejavu-core")
	T := t.TempDir()
	home := fontHome(t, filepath.Join(T, "home"))
	cache := filepath.Join(T, "cache")
	pol := policyFile(t, "fontconfig.policy")
	defs := map[string]string{"CACHE": cache}
	sbEnv := withEnv("HOME=" + home)

	// First run: the user's font directory has no cache; fontconfig scans
	// it and writes one to CACHE/fontconfig, the one writable place.
	audit := filepath.Join(T, "audit.jsonl")
	cold := sandboxed(t, pol, defs, audit, runSpec{name: fcList, env: sbEnv})
	if cold.code != 0 {
		t.Fatalf("sandboxed fc-list: status %d\n%s", cold.code, cold.stderr)
	}
	if !strings.Contains(cold.stdout, "MyOwnFont.ttf") {
		t.Errorf("fc-list did not list the user's font:\n%s", cold.stdout)
	}
	written, _ := filepath.Glob(filepath.Join(cache, "fontconfig", "*.cache-*"))
	if len(written) == 0 {
		t.Errorf("no cache written to %s/fontconfig", cache)
	}
	// The cache of the user's font directory is named after the
	// directory; it must not have gone to the system's cache directory.
	for _, w := range written {
		if _, err := os.Stat(filepath.Join("/var/cache/fontconfig", filepath.Base(w))); err == nil {
			t.Errorf("the cache %s was written to /var/cache/fontconfig too", filepath.Base(w))
		}
	}
	events := readAudit(t, audit)
	if bad := writesOutside(events, []string{cache}); len(bad) > 0 {
		t.Errorf("allowed writes outside CACHE: %q", bad)
	}
	// As root fontconfig first tries the system cache directory; the
	// policy refuses that.
	refusedSystem := false
	for _, e := range events {
		if !e.allowed() && strings.HasPrefix(e.Resolved, "/var/cache/fontconfig") && (e.has("write") || e.has("create")) {
			refusedSystem = true
		}
	}
	if os.Geteuid() == 0 && !refusedSystem {
		t.Errorf("audit: no refused write to /var/cache/fontconfig")
	}

	// Native, with the cache the sandboxed run wrote: the same fonts.
	native := run(t, runSpec{name: fcList, env: fcNativeEnv(home, cache)})
	if native.code != 0 {
		t.Fatalf("native fc-list: status %d\n%s", native.code, native.stderr)
	}
	if !slices.Equal(sortedLines(cold.stdout), sortedLines(native.stdout)) {
		t.Errorf("fc-list output differs:\nnative:\n%s\nsandboxed:\n%s", native.stdout, cold.stdout)
	}

	// Warm runs, alternating, compared line for line; and fc-match.
	var nt, st []time.Duration
	for i := range 5 {
		n := run(t, runSpec{name: fcList, env: fcNativeEnv(home, cache)})
		s := sandboxed(t, pol, defs, "", runSpec{name: fcList, env: sbEnv})
		if n.code != 0 || s.code != 0 || s.stdout != n.stdout || s.stderr != n.stderr {
			t.Fatalf("run %d: fc-list differs: native status %d, sandboxed %d\nnative:\n%s%s\nsandboxed:\n%s%s",
				i, n.code, s.code, n.stdout, n.stderr, s.stdout, s.stderr)
		}
		nt, st = append(nt, n.took), append(st, s.took)
	}
	t.Logf("fc-list: %d fonts, identical to native", len(sortedLines(native.stdout)))
	logRatio(t, "fc-list (warm cache)", nt, st)

	nt, st = nil, nil
	for i := range 5 {
		for _, pattern := range []string{"DejaVu Sans:bold", "monospace", "serif:italic"} {
			args := []string{pattern}
			if i == 0 {
				args = []string{"--format=%{family} %{style} %{file}\n", pattern}
			}
			n := run(t, runSpec{name: fcMatch, args: args, env: fcNativeEnv(home, cache)})
			s := sandboxed(t, pol, defs, "", runSpec{name: fcMatch, args: args, env: sbEnv})
			if n.code != 0 || s.code != 0 || s.stdout != n.stdout || s.stderr != n.stderr {
				t.Fatalf("fc-match %q differs: native status %d %q, sandboxed %d %q\n%s",
					args, n.code, n.stdout, s.code, s.stdout, s.stderr)
			}
			if i == 0 {
				t.Logf("fc-match %q: %s", pattern, strings.TrimSpace(s.stdout))
			}
			nt, st = append(nt, n.took), append(st, s.took)
		}
	}
	logRatio(t, "fc-match", nt, st)
}

// TestFontconfigDenials points fontconfig at files outside the policy: the
// user's configuration adds a font directory elsewhere and includes
// /etc/shadow. Both are refused, the run succeeds without them.
func TestFontconfigDenials(t *testing.T) {
	requireProgram(t, fcList, "fontconfig")
	requireProgram(t, dejavuSans, "fonts-dejavu-core")
	T := t.TempDir()
	home := fontHome(t, filepath.Join(T, "home"))
	private := filepath.Join(T, "private-fonts")
	copyFile(t, dejavuSans, filepath.Join(private, "PrivateFont.ttf"))
	writeFile(t, filepath.Join(home, ".config", "fontconfig", "fonts.conf"), fmt.Sprintf(`<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>%s</dir>
  <include ignore_missing="yes">/etc/shadow</include>
</fontconfig>
`, private), 0o644)
	cache := filepath.Join(T, "cache")
	audit := filepath.Join(T, "audit.jsonl")
	r := sandboxed(t, policyFile(t, "fontconfig.policy"), map[string]string{"CACHE": cache}, audit,
		runSpec{name: fcList, env: withEnv("HOME=" + home)})
	if r.code != 0 {
		t.Fatalf("fc-list: status %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "PrivateFont") {
		t.Errorf("fc-list listed a font outside the policy:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "MyOwnFont.ttf") {
		t.Errorf("fc-list lost the user's own font:\n%s", r.stdout)
	}
	events := readAudit(t, audit)
	requireDenied(t, events, "/etc/shadow")
	requireDenied(t, events, private)
	if bad := writesOutside(events, []string{cache}); len(bad) > 0 {
		t.Errorf("allowed writes outside CACHE: %q", bad)
	}
}
