package policy

import (
	"reflect"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string // "line:part of the message"
	}{
		{"clean", "allow read /usr/**\ndeny /usr/secret\nallow read,write,create /tmp/app/**", nil},
		{"duplicate", "allow read /a\nallow read /a", []string{"1:allow read /a has no effect: the later allow read /a at t.policy:2 matches every path it matches"}},
		{"wider later", "allow read /a/b\nallow read /a/**", []string{"1:has no effect"}},
		{"more rights later", "allow read /a/b\nallow read,write /a/**", []string{"1:has no effect"}},
		{"fewer rights later", "allow read,write /a/b\nallow read /a/**", nil},
		{"narrower later", "allow read /a/**\nallow read /a/b", nil},
		{"glob covers literal", "allow read /a/x.so\nallow read /a/*.so", []string{"1:has no effect"}},
		{"star covers glob", "allow read /a/*.so\nallow read /a/*", []string{"1:has no effect"}},
		{"glob does not cover star", "allow read /a/*\nallow read /a/*.so", nil},
		{"subtree covers deeper subtree", "allow read /a/b/**\nallow read /a/**", []string{"1:has no effect"}},
		{"plain does not cover subtree", "allow read /a/**\nallow read /a", nil},
		// The earlier exec rule grants stat on /a/b, which the later one
		// (no stat, ancestors only up to /a) does not.
		{"implicit stat keeps an allow", "allow exec /a/b/c\nallow exec /a/**", nil},
		{"implicit stat covered", "allow exec /a/b\nallow exec /a/**", []string{"1:has no effect"}},
		{"deny shadowed by deny", "allow read /**\ndeny /a/b\ndeny /a/**", []string{"2:deny /a/b has no effect: the later deny /a/** at t.policy:3"}},
		{"deny shadowed by allow", "allow read /**\ndeny read /a\nallow read /a/**", []string{"2:deny read /a has no effect"}},
		{"allow overridden by deny", "allow read /a/b\ndeny /a/**", []string{"1:allow read /a/b is overridden by the later deny /a/** at t.policy:2, which denies every right it grants on every path it matches; only stat on the directories leading to it remains"}},
		{"allow overridden by deny of everything", "allow read /a\ndeny /**", []string{"1:has no effect"}},
		{"deny first changes nothing", "deny /etc/shadow\nallow read /etc/**", []string{"1:deny /etc/shadow changes nothing: no allow rule above it grants a right it removes"}},
		{"deny elsewhere changes nothing", "allow read /usr/**\ndeny /etc/shadow", []string{"2:changes nothing"}},
		{"deny of a right nobody grants", "allow exec /a/**\ndeny read /a/b", []string{"2:changes nothing"}},
		{"deny of implicit stat", "allow read /a/b/c\ndeny stat /a", nil},
		{"deny under a glob", "allow read /home/*/x/**\ndeny /home/u/**", nil},
		{"deny beside a glob", "allow read /home/*.txt\ndeny /home/a.png", []string{"2:changes nothing"}},
		{"write without read", "allow write /tmp/x\nallow write,create /tmp/y/**\nallow read,write /tmp/z\nallow create /tmp/n", []string{
			"1:allow write without read is probably a mistake: programs usually open files they write with O_RDWR or read them back; write allow read,write, or use create for making new files",
			"2:write allow read,write,create",
		}},
		{"write everywhere", "allow read,write /**\nallow create /", []string{
			"1:allow read,write /** lets the worker change every file its user may change",
			"2:allow create / lets the worker change every file",
		}},
		{"landlock off alone", "allow read /usr/**\nlandlock off", nil},
		{"landlock off with exec and ports", "allow read /usr/**\nallow exec /usr/bin/*\nnet tcp-connect 443\nlandlock off", []string{
			"4:landlock off: the exec rule at t.policy:2 is then enforced only by the host's own Landlock confinement",
			"4:landlock off: net tcp-connect and tcp-bind ports are then not enforced",
		}},
		{"landlock on again", "allow exec /usr/bin/*\nlandlock off\nlandlock on", nil},
		{"unsafe-allow", "syscall allow fcntl\nsyscall unsafe-allow io_uring_setup ptrace io_uring_enter\nsyscall unsafe-allow bpf", []string{
			"2:unsafe-allow io_uring_setup io_uring_enter: io_uring bypasses the broker and the filter: only Landlock limits the files its requests open",
			"2:unsafe-allow ptrace: reaches other processes' memory",
			"3:unsafe-allow bpf: a large kernel surface",
		}},
		{"unsafe-allow with landlock off", "syscall unsafe-allow userfaultfd\nlandlock off", []string{"1:unsafe-allow userfaultfd: userfaultfd lets the worker stall"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diags := mustParse(t, tc.src).Lint()
			if len(diags) != len(tc.want) {
				t.Fatalf("%d diagnostics, want %d: %q", len(diags), len(tc.want), diags)
			}
			for i, d := range diags {
				line, msg, _ := strings.Cut(tc.want[i], ":")
				if got := d.Pos.Line; line != "" && got != atoi(line) {
					t.Errorf("diagnostic %d at line %d, want %s: %s", i, got, line, d)
				}
				if !strings.Contains(d.Msg, msg) {
					t.Errorf("diagnostic %q does not contain %q", d.Msg, msg)
				}
				if d.Pos.Col == 0 || !strings.HasPrefix(d.String(), d.Pos.String()+": ") {
					t.Errorf("diagnostic without a column: %s", d)
				}
			}
		})
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestCovers checks the conservative inclusion test against the reference
// matcher: whenever covers says yes, every probe path agrees.
func TestCovers(t *testing.T) {
	pats := []string{"/", "/**", "/a", "/a/**", "/a/b", "/a/b/**", "/a/*", "/a/*/**", "/a/?", "/a/*.so", "/a/x.so", "/a/?.so", "/b/*", "/*/b"}
	paths := []string{"/", "/a", "/b", "/a/b", "/a/x.so", "/a/y.so", "/a/bb", "/a/b/c", "/c/b", "/a/.so", "/b/b"}
	for _, ps := range pats {
		for _, qs := range pats {
			p, q := compilePattern(ps), compilePattern(qs)
			if !p.covers(&q) {
				continue
			}
			pc, psub := refPattern(ps)
			qc, qsub := refPattern(qs)
			for _, path := range paths {
				if refMatch(qc, qsub, refSplit(path)) && !refMatch(pc, psub, refSplit(path)) {
					t.Errorf("covers(%s, %s) but %s matches only the second", ps, qs, path)
				}
			}
		}
	}
	if !reflect.DeepEqual(compilePattern("/a/**"), pattern{comps: []string{"a"}, glob: []bool{false}, subtree: true}) {
		t.Errorf("compilePattern(/a/**) = %+v", compilePattern("/a/**"))
	}
}

// TestOverlaps checks the conservative overlap test: whenever it says no,
// no probe path matches both patterns (or, with ancestors, is an ancestor
// of the second).
func TestOverlaps(t *testing.T) {
	pats := []string{"/", "/**", "/a", "/a/**", "/a/b", "/a/b/**", "/a/*", "/a/*/c", "/a/?", "/a/*.so", "/a/x.so", "/b/*", "/*/b", "/a/b/c"}
	paths := []string{"/", "/a", "/b", "/a/b", "/a/x.so", "/a/bb", "/a/b/c", "/a/z/c", "/c/b", "/b/b", "/a/b/c/d"}
	for _, ps := range pats {
		for _, qs := range pats {
			p, q := compilePattern(ps), compilePattern(qs)
			pc, psub := refPattern(ps)
			qc, qsub := refPattern(qs)
			for _, anc := range []bool{false, true} {
				if p.overlaps(&q, anc) {
					continue
				}
				for _, path := range paths {
					pp := refSplit(path)
					inQ := refMatch(qc, qsub, pp) || (anc && refAncestor(qc, qsub, pp))
					if inQ && refMatch(pc, psub, pp) {
						t.Errorf("overlaps(%s, %s, %v) is false but %s is in both", ps, qs, anc, path)
					}
				}
			}
		}
	}
}
