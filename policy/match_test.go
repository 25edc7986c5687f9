package policy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// A check is one expected decision: the rights in need on path are allowed
// or not, and if rule is not 0, the deciding rule is on that line.
type check struct {
	path    string
	need    Right
	allowed bool
	line    int // line of the deciding rule; -1 for default deny; 0: not checked
}

func runChecks(t *testing.T, src string, checks []check) {
	t.Helper()
	p := mustParse(t, src)
	m := p.Matcher()
	for _, c := range checks {
		v := m.Decide(c.path, c.need)
		if v.Allowed != c.allowed {
			t.Errorf("Decide(%q, %s) allowed = %v, want %v\n%s", c.path, c.need, v.Allowed, c.allowed, m.Explain(c.path, c.need))
		}
		line := -1
		if v.Rule >= 0 {
			line = m.Rule(v.Rule).Pos.Line
		}
		if c.line != 0 && line != c.line {
			t.Errorf("Decide(%q, %s) decided by line %d, want %d\n%s", c.path, c.need, line, c.line, m.Explain(c.path, c.need))
		}
		if want := refDecide(p.rules, c.path, c.need); v != want {
			t.Errorf("Decide(%q, %s) = %+v, reference %+v", c.path, c.need, v, want)
		}
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name   string
		src    string
		checks []check
	}{
		{"no rule denies", "", []check{
			{"/", Stat, false, -1},
			{"/etc/passwd", Read, false, -1},
		}},
		{"exact rule", "allow read /a/b", []check{
			{"/a/b", Read, true, 1},
			{"/a/b", Stat, true, 1},
			{"/a/b", Write, false, -1},
			{"/a/b/c", Read, false, -1},
			{"/a/bc", Read, false, -1},
			{"/a", Read, false, -1},
		}},
		{"subtree includes its root", "allow read /a/**", []check{
			{"/a", Read, true, 1},
			{"/a/b/c/d", Read, true, 1},
			{"/ab", Read, false, -1},
			{"/", Read, false, -1},
		}},
		{"everything", "allow stat /**", []check{
			{"/", Stat, true, 1},
			{"/x/y", Stat, true, 1},
			{"/x/y", Read, false, -1},
		}},
		{"root only", "allow stat /", []check{
			{"/", Stat, true, 1},
			{"/x", Stat, false, -1},
		}},
		{"read and write imply stat, others do not", "allow read /r\nallow write /w\nallow create /c\nallow exec /x", []check{
			{"/r", Stat, true, 1},
			{"/w", Stat, true, 2},
			{"/c", Stat, false, -1},
			{"/x", Stat, false, -1},
			{"/c", Create, true, 3},
			{"/x", Exec, true, 4},
		}},
		{"last matching rule decides per right", "allow read,write /a/**\ndeny write /a/b\nallow write /a/b/c", []check{
			{"/a/b", Read, true, 1},
			{"/a/b", Write, false, 2},
			{"/a/b", Stat, true, 3}, // a directory on the way to /a/b/c
			{"/a/b", Read | Write, false, 2},
			{"/a/b/c", Write, true, 3},
			{"/a/b/c", Read | Write, true, 3},
			{"/a/x", Read | Write | Stat, true, 1},
		}},
		{"deny without rights denies everything", "allow read,write,create,exec /a/**\ndeny /a/s", []check{
			{"/a/s", Read, false, 2},
			{"/a/s", Write, false, 2},
			{"/a/s", Create, false, 2},
			{"/a/s", Exec, false, 2},
			{"/a/s", Stat, false, 2},
			{"/a/t", Exec, true, 1},
		}},
		{"a later allow overrides a deny", "deny /a/**\nallow read /a/b", []check{
			{"/a/b", Read, true, 2},
			{"/a/c", Read, false, 1},
		}},
		{"several rights need every one", "allow read /a\nallow write /a", []check{
			{"/a", Read | Write, true, 2},
			{"/a", Read | Write | Exec, false, -1},
		}},
		{"denial names the first denied right", "allow read,write /a\ndeny write /a\ndeny read /a\n", []check{
			{"/a", Read | Write, false, 3},
			{"/a", Write | Stat, false, 2},
		}},
		{"implicit stat on ancestors", "allow read /a/b/c", []check{
			{"/", Stat, true, 1},
			{"/a", Stat, true, 1},
			{"/a/b", Stat, true, 1},
			{"/a/b", Read, false, -1},
			{"/a/x", Stat, false, -1},
			{"/a/b/c/d", Stat, false, -1},
		}},
		{"implicit stat on the subtree root", "allow exec /opt/app/**", []check{
			{"/opt", Stat, true, 1},
			{"/opt/app", Stat, true, 1},
			{"/opt/app", Exec | Stat, true, 1},
			{"/opt/app/bin", Stat, false, -1},
			{"/opt/app/bin/x", Exec, true, 1},
		}},
		{"implicit stat keeps its place in the order", "allow read /a/b/c\ndeny stat /a\n", []check{
			{"/a", Stat, false, 2},
			{"/a/b", Stat, true, 1},
		}},
		{"a later allow's implicit stat beats an earlier deny", "deny /a/**\nallow read /a/b/c\n", []check{
			{"/a", Stat, true, 2},
			{"/a", Read, false, 1},
			{"/a/b", Stat, true, 2},
			{"/a/x", Stat, false, 1},
		}},
		{"deny rules grant no implicit stat", "deny read /a/b\n", []check{
			{"/a", Stat, false, -1},
		}},
		{"glob ancestors", "allow read /home/*/.config/app/**", []check{
			{"/home", Stat, true, 1},
			{"/home/u", Stat, true, 1},
			{"/home/u/.config", Stat, true, 1},
			{"/home/u/.config/app/x", Read, true, 1},
			{"/home/u/x", Stat, false, -1},
			{"/home/u/.config/other", Stat, false, -1},
		}},
		{"star stays within a component", "allow read /a/*", []check{
			{"/a/b", Read, true, 1},
			{"/a/.hidden", Read, true, 1},
			{"/a/b/c", Read, false, -1},
			{"/a", Read, false, -1},
			{"/a", Stat, true, 1},
		}},
		{"question mark is one character", "allow read /a/? /b/x?z", []check{
			{"/a/b", Read, true, 1},
			{"/a/é", Read, true, 1},
			{"/a/ab", Read, false, -1},
			{"/b/xyz", Read, true, 1},
			{"/b/xéz", Read, true, 1},
			{"/b/xz", Read, false, -1},
		}},
		{"globs with a suffix", "allow read /lib/*.so* /lib/lib?.a", []check{
			{"/lib/libc.so.6", Read, true, 1},
			{"/lib/.so", Read, true, 1},
			{"/lib/libc.a", Read, true, 1},
			{"/lib/libc.so/x", Read, false, -1},
			{"/lib/libcc.a", Read, false, -1},
		}},
		{"glob and literal at the same place", "allow read /a/*\ndeny read /a/secret\nallow read /a/secret/**", []check{
			{"/a/x", Read, true, 1},
			{"/a/secret", Read, true, 3},
			{"/a/secret/y", Read, true, 3},
		}},
		{"unclean and relative paths are denied", "allow read /**", []check{
			{"", Read, false, -1},
			{"a", Read, false, -1},
			{"a/b", Read, false, -1},
			{"/a/", Read, false, -1},
			{"//a", Read, false, -1},
			{"/a//b", Read, false, -1},
			{"/./a", Read, false, -1},
			{"/a/.", Read, false, -1},
			{"/a/..", Read, false, -1},
			{"/a/../b", Read, false, -1},
			{"/a\x00b", Read, false, -1},
			{"/a/b", Read, true, 1},
		}},
		{"unclean paths are denied even without a matching rule", "allow read /x/**", []check{
			{"/y/../x/z", Read, false, -1},
			{"/x/../y", Read, false, -1},
		}},
		{"empty or unknown rights are denied", "allow read,write,create,exec,stat /**", []check{
			{"/a", 0, false, -1},
			{"/a", 1 << 5, false, -1},
			{"/a", AllRights, true, 1},
		}},
		{"proc self is literal", "allow read /proc/self/status", []check{
			{"/proc/self/status", Read, true, 1},
			{"/proc/123/status", Read, false, -1},
			{"/proc/self/environ", Read, false, -1},
			{"/proc", Stat, true, 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runChecks(t, tc.src, tc.checks) })
	}
}

// TestConformance holds the C- cases of security.md that are about the
// decision, with $T = /t. The broker resolves paths before asking, so the
// cases about unclean strings check that the raw form is denied (never
// guessed at) and that its resolved form gets the expected verdict.
func TestConformance(t *testing.T) {
	t.Run("C-05 no rule", func(t *testing.T) {
		runChecks(t, "allow read /t/ro/**", []check{
			{"/t/out/secret", Read, false, -1},
			{"/t/out/secret", Write, false, -1},
			{"/t/out/missing", Read | Write, false, -1},
		})
	})
	t.Run("C-12 subtree", func(t *testing.T) {
		runChecks(t, "allow read /t/p/**", []check{
			{"/t/p/x/y/z", Read, true, 1},
			{"/t/p", Read, true, 1},
			{"/t/pq/x", Read, false, -1},
			{"/t/pq", Stat, false, -1},
		})
	})
	t.Run("C-14 directory form", func(t *testing.T) {
		runChecks(t, "allow read /t/p/**", []check{
			{"/t/p/", Read, false, -1}, // unresolved: the broker cleans it to /t/p
			{"/t/p", Read, true, 1},
			{"", Read, false, -1},
		})
		if ValidPath("/t/p/") == nil || ValidPath("") == nil || ValidPath("/t/p") != nil {
			t.Error("ValidPath does not reject the unresolved forms")
		}
	})
	t.Run("C-15 ..name is a name", func(t *testing.T) {
		runChecks(t, "allow read /t/p/**", []check{
			{"/t/p/..name", Read, true, 1},
			{"/t/p/..", Read, false, -1},
		})
		if _, err := Parse("t.policy", []byte("allow read /t/p/..name /t/p/...\n"), nil); err != nil {
			t.Errorf("..name in a pattern: %v", err)
		}
	})
	t.Run("C-16 double slash", func(t *testing.T) {
		runChecks(t, "allow read /t/p/**", []check{
			{"/t/p//x", Read, false, -1}, // unresolved
			{"/t/p/x", Read, true, 1},
		})
		runChecks(t, "allow read /t//p//**", []check{{"/t/p/x", Read, true, 1}})
	})
	t.Run("C-17 exact rule", func(t *testing.T) {
		runChecks(t, "allow read /t/t/good", []check{
			{"/t/t/good", Read, true, 1},
			{"/t/t/good_extra", Read, false, -1},
			{"/t/t/good/file", Read, false, -1},
			{"/t/t/go", Read, false, -1},
		})
	})
	t.Run("C-23 C-24 stat", func(t *testing.T) {
		runChecks(t, "allow read /t/a/f", []check{
			{"/t/out/x", Stat, false, -1},
			{"/t/a/f", Stat, true, 1},
		})
	})
	t.Run("C-34 stat-only ancestor", func(t *testing.T) {
		runChecks(t, "allow read /t/ro/d/**", []check{
			{"/t", Stat, true, 1},
			{"/t/ro", Stat, true, 1},
			{"/t/ro", Read, false, -1},
			{"/t/ro/e", Stat, false, -1},
			{"/t/missing", Stat, false, -1},
		})
	})
	t.Run("C-35 subtree boundary", func(t *testing.T) {
		runChecks(t, "allow read,write,create /t/t/good/**", []check{
			{"/t/t/good/a/b/new", Create, true, 1},
			{"/t/t/good/a/b/f", Read | Write, true, 1},
			{"/t/t/good_extra/f", Read, false, -1},
			{"/t/t/good_extra/f", Stat, false, -1},
			{"/t/t/good/../f", Read, false, -1}, // unresolved
			{"/t/t/f", Read, false, -1},         // resolved
			{"/t/t/f", Stat, false, -1},
		})
	})
	t.Run("C-37 exact rights", func(t *testing.T) {
		p := mustParse(t, "allow read /dev/urandom\n")
		m := p.Matcher()
		var got Right
		for _, r := range []Right{Read, Write, Create, Exec, Stat} {
			if m.Decide("/dev/urandom", r).Allowed {
				got |= r
			}
			if m.Decide("/dev/random", r).Allowed {
				t.Errorf("unrelated path gets %s", r)
			}
		}
		if got != Read|Stat {
			t.Errorf("/dev/urandom gets %s, want read,stat", got)
		}
		// A loaded Policy never changes.
		before := p.String()
		rules := p.Rules()
		rules[0].Rights = AllRights
		if p.String() != before || m.Decide("/dev/urandom", Write).Allowed {
			t.Error("the policy changed")
		}
	})
	t.Run("C-38 deny under an allow", func(t *testing.T) {
		runChecks(t, "allow read,write,create /t/rw/**\ndeny /t/rw/private/**\n", []check{
			{"/t/rw/private/f", Read, false, 2},
			{"/t/rw/private/f", Create, false, 2},
			{"/t/rw/private", Stat, false, 2},
			{"/t/rw/f", Read | Write | Create, true, 1},
		})
	})
	t.Run("C-20 loader errors", func(t *testing.T) {
		for _, tc := range []struct{ src, msg string }{
			{"allow read ''", "t.policy:1:12: empty pattern"},
			{"allow read t/x", "t.policy:1:12: pattern \"t/x\" is not absolute"},
			{"allow read /t/../x", "t.policy:1:12: pattern \"/t/../x\" has a .. component"},
			{"allow read ${UNDEFINED}/x", "t.policy:1:12: undefined variable ${UNDEFINED}"},
			{"allow read /t/\x00", "t.policy:1:15: NUL byte"},
		} {
			_, err := Parse("t.policy", []byte(tc.src), nil)
			if err == nil || !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("%q: error %v, want %s...", tc.src, err, tc.msg)
			}
		}
	})
	t.Run("C-44 default-errno", func(t *testing.T) {
		if got := mustParse(t, "default-errno ENOENT").DefaultErrno(); got != 2 {
			t.Errorf("DefaultErrno() = %d, want 2", got)
		}
	})
	t.Run("P-14 proc self", func(t *testing.T) {
		runChecks(t, "allow read /proc/self/status", []check{
			{"/proc/self/status", Read, true, 1},
			{"/proc/1/status", Read, false, -1},
		})
	})
	t.Run("P-34 dot names", func(t *testing.T) {
		runChecks(t, "allow read /t/ro/**", []check{
			{"/t/ro/..f", Read, true, 1},
			{"/t/ro/f", Read, true, 1},
		})
	})
}

func TestVerdictDetails(t *testing.T) {
	p := mustParse(t, "allow read /a/b\nallow write /a/b\nallow exec /c/d\n")
	m := p.Matcher()
	if v := m.Decide("/a", Stat); !v.Allowed || !v.Implicit || v.Rule != 1 {
		t.Errorf("implicit stat on /a: %+v", v)
	}
	if v := m.Decide("/a/b", Stat); !v.Allowed || v.Implicit || v.Rule != 1 {
		t.Errorf("explicit stat on /a/b: %+v", v)
	}
	if v := m.Decide("/a/b", Read|Write); v != (Verdict{Allowed: true, Rule: 1}) {
		t.Errorf("read,write on /a/b: %+v", v)
	}
	if got := m.Where(m.Decide("/a/b", Read)); got != "t.policy:1" {
		t.Errorf("Where = %q", got)
	}
	if got := m.Where(m.Decide("/x", Read)); got != "default" {
		t.Errorf("Where(default) = %q", got)
	}
	if got := m.Rule(-1); got != (Rule{}) {
		t.Errorf("Rule(-1) = %+v", got)
	}
	if got := m.Rule(2); got.Pattern != "/c/d" {
		t.Errorf("Rule(2) = %+v", got)
	}
	if m.Len() != 3 {
		t.Errorf("Len() = %d", m.Len())
	}
}

func TestExplain(t *testing.T) {
	p := mustParse(t, "allow read /etc/**\ndeny /etc/shadow\nallow read /etc/shadow/x\n")
	m := p.Matcher()
	// The later allow of /etc/shadow/x grants stat on /etc/shadow, a
	// directory on its way, after the deny.
	tr := m.Explain("/etc/shadow", Stat)
	if !tr.Verdict.Allowed || tr.Verdict.Rule != 2 || !tr.Verdict.Implicit || len(tr.Steps) != 3 || len(tr.Decisions) != 1 {
		t.Fatalf("trace: %+v", tr)
	}
	if s := tr.Steps[2]; !s.Implicit || s.Carries != Stat || s.Index != 2 {
		t.Errorf("implicit step: %+v", s)
	}
	want := `/etc/shadow stat: allowed by t.policy:3 (a directory on the way to /etc/shadow/x)
  matching rules, in order (for each right the last rule carrying it decides):
    t.policy:1:12  allow read /etc/**        carries read,stat
    t.policy:2:6   deny /etc/shadow          carries read,write,create,exec,stat
    t.policy:3:12  allow read /etc/shadow/x  carries stat (a directory on the way)
`
	if got := tr.String(); got != want {
		t.Errorf("String():\n%s\nwant:\n%s", got, want)
	}
	if tr := m.Explain("/etc/shadow", Read); tr.Verdict.Allowed || tr.Verdict.Rule != 1 {
		t.Errorf("read of /etc/shadow: %+v", tr.Verdict)
	}
	// Rules that only grant stat are not listed when stat is not asked for.
	if tr := m.Explain("/etc/shadow", Read|Write); len(tr.Steps) != 2 {
		t.Errorf("steps for write: %+v", tr.Steps)
	}
	tr = m.Explain("/etc/passwd", Read|Write)
	want = `/etc/passwd read,write: denied by default (no rule matches)
  read: allowed by t.policy:1
  write: denied by default (no rule matches)
  matching rules, in order (for each right the last rule carrying it decides):
    t.policy:1:12  allow read /etc/**  carries read,stat
`
	if got := tr.String(); got != want {
		t.Errorf("String():\n%s\nwant:\n%s", got, want)
	}
	if tr := m.Explain("etc/passwd", Read); tr.Reason == "" || tr.Verdict.Allowed || !strings.Contains(tr.String(), "not absolute") {
		t.Errorf("relative path: %+v", tr)
	}
	if tr := m.Explain("/x", Read); !strings.Contains(tr.String(), "no rule matches; a path without a rule is denied") {
		t.Errorf("no match:\n%s", tr)
	}
}

// TestDecideFallback makes more trie nodes match one path than Decide
// tracks, so that it falls back to the linear scan.
func TestDecideFallback(t *testing.T) {
	var b strings.Builder
	name := "abcdefgh"
	for mask := range maxActive + 8 {
		glob := []byte(name)
		for i := range glob {
			if mask&(1<<i) != 0 {
				glob[i] = '?'
			}
		}
		fmt.Fprintf(&b, "allow read /d/%s/x%d\n", glob, mask)
	}
	b.WriteString("deny /d/abcdefgh/x3\n")
	p := mustParse(t, b.String())
	m := p.Matcher()
	for _, path := range []string{"/d/abcdefgh/x3", "/d/abcdefgh/x39", "/d/abcdefgh/x40", "/d/abcdefgh", "/d/zbcdefgh/x1", "/d"} {
		for _, need := range []Right{Read, Stat} {
			if got, want := m.Decide(path, need), refDecide(p.rules, path, need); got != want {
				t.Errorf("Decide(%q, %s) = %+v, want %+v", path, need, got, want)
			}
		}
	}
	if a := testing.AllocsPerRun(100, func() { m.Decide("/d/abcdefgh/x39", Read) }); a != 0 {
		t.Errorf("fallback allocates %v times", a)
	}
}

// benchPolicy generates a policy of n rules, a third each exact, subtree
// and glob, one in ten a deny, and paths that hit and miss them.
func benchPolicy(n int) (string, []string) {
	r := rand.New(rand.NewPCG(1, 2))
	tops := []string{"usr", "lib", "etc", "home", "opt", "var", "srv", "data", "proj", "nix"}
	word := func() string {
		return fmt.Sprintf("%s%d", []string{"app", "lib", "share", "conf", "cache", "bin", "doc", "pkg"}[r.IntN(8)], r.IntN(20))
	}
	var b strings.Builder
	var paths []string
	for i := range n {
		comps := []string{tops[r.IntN(len(tops))]}
		for range 1 + r.IntN(4) {
			comps = append(comps, word())
		}
		dir := "/" + strings.Join(comps, "/")
		verb := "allow read"
		if i%10 == 9 {
			verb = "deny"
		}
		switch i % 3 {
		case 0:
			file := fmt.Sprintf("file%d.txt", i)
			fmt.Fprintf(&b, "%s %s/%s\n", verb, dir, file)
			paths = append(paths, dir+"/"+file, dir+"/other.txt")
		case 1:
			fmt.Fprintf(&b, "%s,write %s/**\n", strings.Replace(verb, "deny", "deny read", 1), dir)
			paths = append(paths, dir+"/x/y/z.dat", dir+"x/y")
		case 2:
			globDir := "/" + comps[0] + "/*/" + strings.Join(comps[1:], "/")
			fmt.Fprintf(&b, "%s %s/*.so.?\n", verb, globDir)
			paths = append(paths, "/"+comps[0]+"/any/"+strings.Join(comps[1:], "/")+"/libfoo.so.6", dir+"/libfoo.so")
		}
	}
	return b.String(), paths
}

func TestDecideAllocs(t *testing.T) {
	src, paths := benchPolicy(1000)
	p, err := Parse("bench.policy", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Matcher()
	def, err := Default(testDefs)
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, "/", "/a//b", "relative", "/usr/lib/x86_64-linux-gnu/libc.so.6")
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		path := paths[i%len(paths)]
		m.Decide(path, Read)
		m.Decide(path, Stat|Write)
		def.Matcher().Decide(path, Read)
		i++
	})
	if allocs != 0 {
		t.Errorf("Decide allocates %v times per run", allocs)
	}
	// The generated policy agrees with the reference on its paths.
	for _, path := range paths[:300] {
		for _, need := range []Right{Read, Write, Stat} {
			if got, want := m.Decide(path, need), refDecide(p.rules, path, need); got != want {
				t.Fatalf("Decide(%q, %s) = %+v, reference %+v", path, need, got, want)
			}
		}
	}
}

// BenchmarkDecide measures one decision against a 1,000-rule policy of
// exact, subtree and glob rules, over paths that hit and miss. The target
// is 500 ns per decision (10 % of a brokered round trip).
func BenchmarkDecide(b *testing.B) {
	src, paths := benchPolicy(1000)
	p, err := Parse("bench.policy", []byte(src), nil)
	if err != nil {
		b.Fatal(err)
	}
	m := p.Matcher()
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if m.Decide(paths[i%len(paths)], Read).Allowed {
			allowed++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
	_ = allowed
}

// BenchmarkDecideLinear is the linear scan Decide replaces, for scale.
func BenchmarkDecideLinear(b *testing.B) {
	src, paths := benchPolicy(1000)
	p, err := Parse("bench.policy", []byte(src), nil)
	if err != nil {
		b.Fatal(err)
	}
	m := p.Matcher()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.linear(paths[i%len(paths)], Read)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
}

func BenchmarkParse(b *testing.B) {
	src, _ := benchPolicy(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.policy", []byte(src), nil); err != nil {
			b.Fatal(err)
		}
	}
}
