//go:build linux

package workloads

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// learnBase is the base policy of the learning runs: the settings the
// learned policy keeps, and denies that keep a learning run (every file
// allowed, and the tests run as root) from changing the system.
const learnBase = `version 1
# Learning allows every file call; as root that would let the program write
# anywhere. Keep the system read-only while learning (and after).
deny write,create /usr/** /etc/** /var/** /boot/** /root/**
net none
env clear
env pass LANG LC_ALL
env set PATH=/usr/bin:/bin
`

// learn runs "sandbox-exec learn" with args in dir.
func learn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return run(t, runSpec{name: sandboxExec, args: append([]string{"learn"}, args...), dir: dir, env: env})
}

// parseLearned checks that a learned policy parses with defs.
func parseLearned(t *testing.T, path string, defs policy.Defines) {
	t.Helper()
	if _, err := policy.ParseFile(path, defs); err != nil {
		t.Fatalf("learned policy: %v", err)
	}
}

// hasRule reports whether text has an allow line with right among its
// rights and pattern as its pattern.
func hasRule(text, right, pattern string) bool {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "allow" && f[2] == pattern && slices.Contains(strings.Split(f[1], ","), right) {
			return true
		}
	}
	return false
}

func TestLearnPython(t *testing.T) {
	requireProgram(t, python, "python3")
	T := t.TempDir()
	script, in := pythonInput(t, T)
	out := filepath.Join(T, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(T, "base.policy")
	writeFile(t, base, learnBase, 0o644)
	learned := filepath.Join(T, "learned.policy")
	cmd := []string{python, "-I", script, in, out}
	defs := []string{"-D", "IN=" + in, "-D", "OUT=" + out}

	r := learn(t, T, nil, append(append([]string{"-o", learned, "-f", base}, defs...), append([]string{"--"}, cmd...)...)...)
	if r.code != 0 {
		t.Fatalf("learn: status %d\n%s", r.code, r.stderr)
	}
	text, err := os.ReadFile(learned)
	if err != nil {
		t.Fatal(err)
	}
	parseLearned(t, learned, policy.Defines{"IN": in, "OUT": out})
	for _, want := range []string{"# ---- Added by sandbox-exec learn on ", "allow read ${IN}/data.json", "allow read ${IN}/table.csv",
		"${OUT}/result.json", "${OUT}/report.txt", "/usr/lib/python3", "allow read ${CWD}/app/convert.py"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("learned policy lacks %q", want)
		}
	}
	if !hasRule(string(text), "exec", "/usr/bin/python3") {
		t.Errorf("learned policy does not allow executing /usr/bin/python3")
	}
	if strings.Contains(string(text), "/etc/shadow") {
		t.Errorf("learned policy names /etc/shadow")
	}
	t.Logf("learned %d lines, %d rules", strings.Count(string(text), "\n"), strings.Count(string(text), "\nallow "))

	// The learned policy runs the script, with another output directory
	// given by -D, and the result is the native one. The script is under
	// ${CWD}: run from the directory of the learning run.
	out2 := filepath.Join(T, "out2")
	if err := os.MkdirAll(out2, 0o755); err != nil {
		t.Fatal(err)
	}
	nout := filepath.Join(T, "native-out")
	if err := os.MkdirAll(nout, 0o755); err != nil {
		t.Fatal(err)
	}
	sr := sandboxed(t, learned, map[string]string{"IN": in, "OUT": out2}, "", runSpec{name: python, args: []string{"-I", script, in, out2}, dir: T})
	nr := run(t, runSpec{name: python, args: []string{"-I", script, in, nout}, env: pythonEnv()})
	if sr.code != 0 || sr.stdout != nr.stdout {
		t.Fatalf("under the learned policy: status %d, stdout %q (native %q)\n%s", sr.code, sr.stdout, nr.stdout, sr.stderr)
	}
	for _, name := range []string{"result.json", "report.txt"} {
		a, _ := os.ReadFile(filepath.Join(nout, name))
		b, _ := os.ReadFile(filepath.Join(out2, name))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("%s differs from native", name)
		}
	}

	// No drift: the same command needs nothing new.
	check := func() result {
		return learn(t, T, nil, append(append([]string{"--check", "-f", learned}, defs...), append([]string{"--"}, cmd...)...)...)
	}
	if r := check(); r.code != 0 {
		t.Fatalf("learn --check on the unchanged script: status %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A changed script that also reads a new input file: the drift check
	// fails and names it, --diff shows the rule it would add, and the
	// learned policy refuses the file.
	extra := filepath.Join(in, "extra.txt")
	writeFile(t, extra, "more input\n", 0o644)
	changed := strings.Replace(convertScript, "    print(\"rows\"", "    print(\"extra\", (src / \"extra.txt\").read_text().strip())\n    print(\"rows\"", 1)
	writeFile(t, script, changed, 0o644)
	r = check()
	if r.code != 1 || !strings.Contains(r.stdout, "allow read "+extra) {
		t.Errorf("learn --check on the changed script: status %d (want 1), output:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = learn(t, T, nil, append(append([]string{"--diff", "-f", learned}, defs...), append([]string{"--"}, cmd...)...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "allow read ${IN}/extra.txt") {
		t.Errorf("learn --diff: status %d, output:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sr = sandboxed(t, learned, map[string]string{"IN": in, "OUT": out2}, "", runSpec{name: python, args: []string{"-I", script, in, out2}, dir: T})
	if sr.code == 0 || !strings.Contains(sr.stderr, "PermissionError") {
		t.Errorf("the changed script ran under the old learned policy: status %d\n%s", sr.code, sr.stderr)
	}
}

func TestLearnFontconfig(t *testing.T) {
	requireProgram(t, fcList, "fontconfig")
	requireProgram(t, dejavuSans, "fonts-dejavu-core")
	T := t.TempDir()
	home := fontHome(t, filepath.Join(T, "home"))
	base := filepath.Join(T, "base.policy")
	writeFile(t, base, learnBase+"env pass HOME\nenv set XDG_CACHE_HOME=${CACHE}\n", 0o644)
	learned := filepath.Join(T, "fonts.policy")
	env := withEnv("HOME=" + home)
	cache1 := filepath.Join(T, "cache1")

	// Two runs merge: fc-list into a new policy, then fc-match into the
	// same file (-f the previous output).
	r := learn(t, T, env, "-o", learned, "-f", base, "-D", "CACHE="+cache1, "--", fcList)
	if r.code != 0 {
		t.Fatalf("learn fc-list: status %d\n%s", r.code, r.stderr)
	}
	r = learn(t, T, env, "-o", learned, "-f", learned, "-D", "CACHE="+cache1, "--", fcMatch, "DejaVu Sans:bold")
	if r.code != 0 {
		t.Fatalf("learn fc-match: status %d\n%s", r.code, r.stderr)
	}
	text, err := os.ReadFile(learned)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(text), "learn on "); n != 2 {
		t.Errorf("the merged policy records %d learning runs, want 2", n)
	}
	for _, want := range []string{"allow exec /usr/bin/fc-list", "allow exec /usr/bin/fc-match", "${CACHE}/fontconfig", "${HOME}/.fonts"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("learned policy lacks %q", want)
		}
	}
	parseLearned(t, learned, policy.Defines{"CACHE": cache1})

	// Both programs under the merged policy, with a new, empty cache
	// directory: fontconfig writes the cache again (other temporary
	// names: the learned rules must have generalised them), and the
	// output is the native one.
	cache2 := filepath.Join(T, "cache2")
	for _, args := range [][]string{{fcList}, {fcMatch, "DejaVu Sans:bold"}} {
		s := sandboxed(t, learned, map[string]string{"CACHE": cache2}, "", runSpec{name: args[0], args: args[1:], env: env})
		n := run(t, runSpec{name: args[0], args: args[1:], env: fcNativeEnv(home, cache2)})
		if s.code != 0 || n.code != 0 || strings.Join(sortedLines(s.stdout), "\n") != strings.Join(sortedLines(n.stdout), "\n") {
			t.Errorf("%q under the learned policy: status %d, native %d\nsandboxed:\n%s%s\nnative:\n%s",
				args, s.code, n.code, s.stdout, s.stderr, n.stdout)
		}
	}
	if written, _ := filepath.Glob(filepath.Join(cache2, "fontconfig", "*.cache-*")); len(written) == 0 {
		t.Errorf("no cache written to the new cache directory")
	}
	// The drift check passes for both programs.
	for _, args := range [][]string{{fcList}, {fcMatch, "DejaVu Sans:bold"}} {
		r := learn(t, T, env, append([]string{"--check", "-f", learned, "-D", "CACHE=" + cache2, "--"}, args...)...)
		if r.code != 0 {
			t.Errorf("learn --check %q: status %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
}
