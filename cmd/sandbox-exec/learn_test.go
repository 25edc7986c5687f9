//go:build linux

package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

func rules(t *testing.T, l *learned, base *policy.Matcher, cfg genConfig) map[string]string {
	t.Helper()
	res := generate(l, base, cfg)
	out := map[string]string{}
	for _, r := range res.rules {
		out[r.pattern] = r.rights.String()
	}
	return out
}

func TestLearnGeneralise(t *testing.T) {
	l := newLearned()
	for _, name := range []string{"a", "b", "c", "d"} {
		l.add("/usr/lib/few/"+name, policy.Read, false, "openat")
	}
	for _, name := range []string{"1", "2", "3", "4", "5", "6", "7", "8"} {
		l.add("/usr/lib/many/"+name, policy.Read, false, "openat")
	}
	l.add("/usr/lib/many/sub/x", policy.Read, false, "openat")
	l.add("/usr/lib/many/1", policy.Exec, false, "execve")
	got := rules(t, l, nil, genConfig{threshold: 8})
	want := map[string]string{
		"/usr/lib/few/a": "read", "/usr/lib/few/b": "read", "/usr/lib/few/c": "read", "/usr/lib/few/d": "read",
		"/usr/lib/many/**": "read",
		"/usr/lib/many/1":  "exec", // exec is generalised on its own: one file
	}
	if !mapsEqual(got, want) {
		t.Errorf("rules:\n got %v\nwant %v", got, want)
	}
}

func TestLearnNeverGeneralised(t *testing.T) {
	cfg := genConfig{threshold: 2, keep: []string{"/home/u", "/tmp"}}
	for _, p := range []string{"/", "/etc", "/home", "/home/u", "/proc/self", "/sys/devices", "/dev/pts", "/dev/shm", "/tmp"} {
		if cfg.generalisable(p) {
			t.Errorf("generalisable(%q) = true", p)
		}
	}
	for _, p := range []string{"/usr/lib", "/home/u/.cache", "/dev/shm/x", "/tmp/x"} {
		if !cfg.generalisable(p) {
			t.Errorf("generalisable(%q) = false", p)
		}
	}
}

func TestLearnStatImplied(t *testing.T) {
	l := newLearned()
	l.add("/usr/share/x/file", policy.Read, false, "openat")
	l.add("/usr/share/x", policy.Stat, false, "newfstatat")      // on the way to a rule
	l.add("/usr/share/x/file", policy.Stat, false, "newfstatat") // read implies stat
	l.add("/", policy.Stat, false, "newfstatat")
	l.add("/etc/alone", policy.Stat, true, "access")
	got := rules(t, l, nil, genConfig{threshold: 8})
	want := map[string]string{"/usr/share/x/file": "read", "/etc/alone": "stat"}
	if !mapsEqual(got, want) {
		t.Errorf("rules:\n got %v\nwant %v", got, want)
	}
}

func TestLearnRandomSuffix(t *testing.T) {
	l := newLearned()
	for _, n := range []string{"15kO9p", "OXQLGO", "a1b2c3"} {
		l.add("/dev/shm/.org.chromium.Chromium."+n, policy.Read|policy.Write|policy.Create, false, "openat")
	}
	l.add("/var/cache/x/MANIFEST-000001", policy.Read, false, "openat") // digits only: a name
	got := rules(t, l, nil, genConfig{threshold: 8})
	want := map[string]string{
		"/dev/shm/.org.chromium.Chromium.*": "read,write,create",
		"/var/cache/x/MANIFEST-000001":      "read",
	}
	if !mapsEqual(got, want) {
		t.Errorf("rules:\n got %v\nwant %v", got, want)
	}
}

func TestLearnProcOther(t *testing.T) {
	for in, want := range map[string]struct {
		out   string
		other bool
	}{
		"/proc/self/status":          {"/proc/self/status", false},
		"/proc/self/task/123/stat":   {"/proc/self/task/*/stat", false},
		"/proc/42/oom_score_adj":     {"/proc/*/oom_score_adj", true},
		"/proc/42/task/43/status":    {"/proc/*/task/*/status", true},
		"/proc/cpuinfo":              {"/proc/cpuinfo", false},
		"/usr/proc/42/oom_score_adj": {"/usr/proc/42/oom_score_adj", false},
	} {
		out, other := procOther(in)
		if out != want.out || other != want.other {
			t.Errorf("procOther(%q) = %q, %v; want %q, %v", in, out, other, want.out, want.other)
		}
	}
}

func TestLearnBase(t *testing.T) {
	base, err := policy.Parse("base", []byte("version 1\nallow read /usr/**\ndeny /usr/secret/**\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := newLearned()
	l.add("/usr/lib/a", policy.Read, false, "openat")      // allowed already
	l.add("/usr/lib/a", policy.Exec, false, "execve")      // not yet
	l.add("/usr/secret/key", policy.Read, false, "openat") // denied by a rule
	l.add("/opt/new", policy.Read, false, "openat")        // not yet
	res := generate(l, base.Matcher(), genConfig{threshold: 8})
	got := map[string]string{}
	for _, r := range res.rules {
		got[r.pattern] = r.rights.String()
	}
	want := map[string]string{"/usr/lib/a": "exec", "/opt/new": "read"}
	if !mapsEqual(got, want) {
		t.Errorf("rules:\n got %v\nwant %v", got, want)
	}
	if len(res.denied) != 1 || res.denied[0].path != "/usr/secret/key" || res.denied[0].where != "base:3" {
		t.Errorf("denied = %+v, want /usr/secret/key by base:3", res.denied)
	}
}

// TestLearnText writes a policy with variables, quoting and missing paths
// and checks that it parses into rules that allow everything recorded.
func TestLearnText(t *testing.T) {
	l := newLearned()
	l.add("/srv/out/Crash Reports/x", policy.Write|policy.Create, false, "openat")
	l.add("/srv/out/a$b", policy.Read, false, "openat")
	l.add("/home/u/.config/app.conf", policy.Read, false, "openat")
	l.add("/home/u/.config/missing.conf", policy.Read, true, "openat")
	l.add("/usr/lib/locale/C.UTF-8/LC_CTYPE", policy.Read, true, "openat")
	l.others["/proc/*/oom_score_adj"] = policy.Write
	cfg := genConfig{threshold: 8, keep: []string{"/home/u"}, home: "/home/u", vars: []variable{
		{name: "OUT", value: "/srv/out", what: "output"},
		{name: "HOME", value: "/home/u", what: "home"},
	}}
	res := generate(l, nil, cfg)
	var b strings.Builder
	b.WriteString("version 1\n")
	cfg.writeRules(&b, res.rules, l.others)
	text := b.String()
	p, err := policy.Parse("learned", []byte(text), policy.Defines{"OUT": "/srv/out", "HOME": "/home/u"})
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	m := p.Matcher()
	for path, u := range l.uses {
		if !m.Decide(path, u.need()).Allowed {
			t.Errorf("%s %s not allowed by\n%s", u.need(), path, text)
		}
	}
	for _, want := range []string{
		"allow write,create '${OUT}/Crash Reports/x'",
		"allow read ${OUT}/a$$b",
		"allow read ${HOME}/.config/app.conf",
		"# allow write /proc/*/oom_score_adj",
		"# Looked up but missing while learning",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	l2 := newLearned()
	l2.add("/home/u/.ssh/id_rsa", policy.Read, false, "openat")
	l2.add("/etc/shadow", policy.Read, true, "openat")
	l2.add("/home/u/.config/ok", policy.Read, false, "openat")
	var b2 strings.Builder
	cfg.writeRules(&b2, generate(l2, nil, cfg).rules, nil)
	if n := strings.Count(b2.String(), "# REVIEW"); n != 2 {
		t.Errorf("%d rules marked for review, want 2 (~/.ssh/id_rsa, /etc/shadow):\n%s", n, b2.String())
	}
	if m.Decide("/proc/1/oom_score_adj", policy.Write).Allowed {
		t.Errorf("other processes' /proc entries must stay comments")
	}
}

func TestLearnRebaseIncludes(t *testing.T) {
	in := "version 1\ninclude system-runtime.policy   # libc\ninclude /abs/x.policy\n  include sub/y.policy\n"
	got := rebaseIncludes(in, "/repo/policies", "/tmp/out")
	want := "version 1\ninclude /repo/policies/system-runtime.policy   # libc\ninclude /abs/x.policy\n  include /repo/policies/sub/y.policy\n"
	if got != want {
		t.Errorf("rebaseIncludes:\n got %q\nwant %q", got, want)
	}
	if rebaseIncludes(in, "/a", "/a") != in {
		t.Errorf("same directory: text changed")
	}
}

func TestLearnFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--", "true"},                           // no mode
		{"-o", "x", "--diff", "-f", "p", "true"}, // two modes
		{"--check", "true"},                      // no -f
		{"-o", "x"},                              // no command
		{"-o", "x", "--threshold", "1", "true"},  // threshold too small
	} {
		if _, err := parseLearnFlags(args); err == nil {
			t.Errorf("parseLearnFlags(%q): no error", args)
		}
	}
	lf, err := parseLearnFlags([]string{"-o", "out.policy", "-D", "A=/a", "--threshold", "4", "--", "ls", "-l"})
	if err != nil || lf.out != "out.policy" || lf.threshold != 4 || !slices.Equal(lf.argv, []string{"ls", "-l"}) {
		t.Errorf("parseLearnFlags: %+v, %v", lf, err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
