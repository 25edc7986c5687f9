package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/shlex"
)

// fuzzDefs fixes the built-ins so that fuzzing does not depend on the
// environment.
var fuzzDefs = Defines{"HOME": "/home/u", "CWD": "/work/p", "TMPDIR": "/tmp", "UID": "1000"}

// fuzzFiles is the file system includes see while fuzzing.
var fuzzFiles = map[string]string{
	"inc.policy":   "allow read /inc/**\ndefine INC=/inc\n",
	"bad.policy":   "allow raed /x\n\x00\n",
	"self.policy":  "include self.policy\n",
	"sub/a.policy": "include ../inc.policy\ndeny /inc/secret\n",
}

func fuzzRead(name string) ([]byte, error) {
	if s, ok := fuzzFiles[filepath.ToSlash(name)]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// parseSeeds are inputs for FuzzParse; testdata/fuzz/FuzzParse holds them
// too (written by go test -run TestWriteFuzzCorpus -update).
var parseSeeds = []string{
	"",
	"version 1\n",
	"version 1\nallow read /usr/** /etc/fonts/**\ndeny /etc/shadow\n",
	"allow read,write,create ${TMPDIR}/app/** # comment\n",
	"allow read /a#b /c# #d e\n  # indented comment\n\t#\nallow read /x\r\n#\n",
	"define P=${HOME}/p\nallow read ${P}/** '${P}/with space'\n",
	"allow read \"/a b\" '/c'\\''d' /e\\ f\n",
	"allow read /a$$b\n",
	"include inc.policy\ndeny read ${INC}/x\n",
	"include sub/a.policy\n",
	"include self.policy\n",
	"include bad.policy\n",
	"include missing.policy\n",
	"net unix\nnet tcp-connect 443 80\nnet tcp-bind 8080\n",
	"env clear\nenv pass LANG TZ\nenv set HOME=/tmp 'X=a b' Y=$$z\n",
	"limit nofile 1024\nlimit fsize 1GiB unlimited\nlimit as unlimited\nlimit stack 8M 16M\n",
	"namespaces user pid ipc uts net\nnamespaces none\n",
	"syscall allow ptrace\nsyscall deny mount umount2 errno=EPERM\nsyscall default errno=ENOSYS\nsyscall default kill\n",
	"default-errno ENOENT\nrequire landlock>=3 user-notif addfd-send userns\n",
	"\uFEFFversion 1\r\nallow read /x\r\n",
	"allow read /x/\\\n",
	"allow read '/x\n",
	"allow read \"/x\n",
	"allow read /x\x00\n",
	"allow read /x\xff\n",
	"alow read /x\nallow raed /x\nallow read x\nallow read /a/../b\nallow read ${NOPE}\n",
	"deny\ndeny read\nallow\nallow read\nversion\nversion 2\ninclude\n",
	"allow read /a/**/b /a/b** / /** // /./a/./ ''\n",
	"allow read /proc/self/status /proc/thread-self/**\n",
	"# only a comment\n   \n\t# indented\n",
	"allow read /a#b #c\n",
	"allow read \"\\$HOME\"\n",
	"allow read /é/?/*.so\n",
	"landlock off\nlandlock on\nlandlock off\nallow exec /usr/bin/*\n",
	"landlock off\nrequire landlock-net\nlandlock\nlandlock of\n",
	"syscall unsafe-allow io_uring_setup io_uring_enter ptrace\nsyscall allow fcntl\n",
	"landlock off\nsyscall unsafe-allow io_uring_setup openat fcntl\nsyscall unsafe-allow bpf errno=EPERM\n",
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 64<<10 {
			return
		}
		checkLexer(t, src)
		p, err := parse("fuzz.policy", src, fuzzDefs, fuzzRead)
		if err != nil {
			checkParseError(t, err)
			return
		}
		checkRoundTrip(t, p)
		p.Lint()
		if len(p.rules) > 100 {
			return // the reference matcher is slow
		}
		for _, path := range probePaths(p.Rules()) {
			checkDecide(t, p, path)
		}
	})
}

// checkLexer checks that the columns scanLine finds are where shlex's words
// start: splitting the rest of the line from a column yields the same word.
// (Long lines are skipped: the check is quadratic.)
func checkLexer(t *testing.T, src []byte) {
	for _, line := range strings.Split(string(src), "\n") {
		if len(line) > 1024 {
			continue
		}
		if checkLine(line) != nil {
			continue
		}
		cols, lerr := scanLine(line)
		words, err := shlex.Split(line)
		if (lerr == nil) != (err == nil) {
			t.Fatalf("line %q: scanLine error %v, shlex error %v", line, lerr, err)
		}
		if err != nil {
			continue
		}
		if len(cols) != len(words) {
			t.Fatalf("line %q: scanLine found %d words, shlex %d", line, len(cols), len(words))
		}
		for i, col := range cols {
			rest, err := shlex.Split(line[col-1:])
			if err != nil || len(rest) == 0 || rest[0] != words[i] {
				t.Fatalf("line %q: word %d (%q) does not start at column %d", line, i, words[i], col)
			}
		}
		// tokenize's fast path for lines without quotes, escapes and
		// comments must give shlex's words at scanLine's columns.
		if plain(line) {
			toks := plainTokens(line)
			if len(toks) != len(words) {
				t.Fatalf("line %q: plainTokens found %d words, shlex %d", line, len(toks), len(words))
			}
			for i, tok := range toks {
				if tok.val != words[i] || tok.col != cols[i] {
					t.Fatalf("line %q: plainTokens word %d is %q at %d, shlex %q at %d", line, i, tok.val, tok.col, words[i], cols[i])
				}
			}
		}
	}
}

func checkParseError(t *testing.T, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error is %T, not *ParseError: %v", err, err)
	}
	if len(pe.Errors) == 0 || len(pe.Errors) > MaxErrors {
		t.Fatalf("%d errors", len(pe.Errors))
	}
	for _, e := range pe.Errors {
		if e.Pos.File == "" || e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" {
			t.Fatalf("error without a position or message: %#v", e)
		}
		if !strings.HasPrefix(e.Error(), e.Pos.String()+": ") {
			t.Fatalf("error %q does not start with its position", e.Error())
		}
	}
}

// checkRoundTrip checks that String is re-parseable into the same policy
// and a fixed point.
func checkRoundTrip(t *testing.T, p *Policy) {
	t.Helper()
	s := p.String()
	p2, err := Parse("normal.policy", []byte(s), Defines{})
	if err != nil {
		t.Fatalf("normal form does not parse: %v\n%s", err, s)
	}
	if same, what := samePolicy(p, p2); !same {
		t.Fatalf("normal form differs in %s:\n%s", what, s)
	}
	if s2 := p2.String(); s2 != s {
		t.Fatalf("String is not a fixed point:\n%s\n---\n%s", s, s2)
	}
}

// probePaths derives paths near the rules' patterns: globs instantiated,
// subtrees entered, parents, siblings.
func probePaths(rules []Rule) []string {
	paths := []string{"/", "/x"}
	for _, r := range rules {
		inst := strings.NewReplacer("**", "d/e", "*", "x", "?", "y").Replace(r.Pattern)
		paths = append(paths, inst, inst+"x", inst+"/x")
		if i := strings.LastIndexByte(inst, '/'); i > 0 {
			paths = append(paths, inst[:i])
		}
		if len(paths) > 64 {
			break
		}
	}
	return paths
}

var needs = []Right{Read, Write, Create, Exec, Stat, Read | Write, Read | Stat, AllRights, 0, 1 << 6}

// checkDecide compares Decide, the linear scan, Explain and the reference.
func checkDecide(t *testing.T, p *Policy, path string) {
	t.Helper()
	m := p.Matcher()
	for _, need := range needs {
		want := refDecide(p.rules, path, need)
		if got := m.Decide(path, need); got != want {
			t.Fatalf("Decide(%q, %s) = %+v, reference %+v\npolicy:\n%s", path, need, got, want, p)
		}
		if got := m.linear(path, need); got != want {
			t.Fatalf("linear(%q, %s) = %+v, reference %+v\npolicy:\n%s", path, need, got, want, p)
		}
		tr := m.Explain(path, need)
		if tr.Verdict != want {
			t.Fatalf("Explain(%q, %s).Verdict = %+v, reference %+v", path, need, tr.Verdict, want)
		}
		for _, d := range tr.Decisions {
			if w := refDecide(p.rules, path, d.Right); d.Verdict != w {
				t.Fatalf("Explain(%q, %s) decides %s as %+v, reference %+v\npolicy:\n%s", path, need, d.Right, d.Verdict, w, p)
			}
		}
	}
}

// Components for generated rules and paths: literals, globs, names that
// look like traversal but are not, non-ASCII.
var (
	fuzzPatComps  = []string{"a", "b", "ab", "ba", "*", "?", "a*", "*b", "?b", "a?", "*a*", "..a", ".a", "é", "?é", "*?"}
	fuzzPathComps = []string{"a", "b", "ab", "ba", "aa", "bb", "é", "..a", ".a", "x", "abab", "bé", "*", "?", "aé", "b.a"}
)

// decodeRules turns bytes into a policy: per rule, a kind byte (bit 0 allow,
// bits 1-5 rights, bit 6 deny without rights), a shape byte (bits 0-1 the
// number of components, bit 2 a trailing /**) and one byte per component.
func decodeRules(data []byte) string {
	var b strings.Builder
	for len(data) >= 2 {
		kind, shape := data[0], data[1]
		data = data[2:]
		var comps []string
		for range int(shape % 4) {
			if len(data) == 0 {
				break
			}
			comps = append(comps, fuzzPatComps[int(data[0])%len(fuzzPatComps)])
			data = data[1:]
		}
		if shape&4 != 0 {
			comps = append(comps, "**")
		}
		pat := "/" + strings.Join(comps, "/")
		rights := Right(kind>>1) & AllRights
		switch {
		case kind&1 == 1:
			if rights == 0 {
				rights = Read
			}
			fmt.Fprintf(&b, "allow %s %s\n", rights, pat)
		case kind&0x40 != 0 || rights == 0:
			fmt.Fprintf(&b, "deny %s\n", pat)
		default:
			fmt.Fprintf(&b, "deny %s %s\n", rights, pat)
		}
	}
	return b.String()
}

// decodePath turns bytes into a path: one component per byte, except that
// a leading 0xff takes the rest as a raw (possibly invalid) path.
func decodePath(data []byte) string {
	if len(data) > 0 && data[0] == 0xff {
		return string(data[1:])
	}
	var b strings.Builder
	for _, c := range data {
		b.WriteString("/" + fuzzPathComps[int(c)%len(fuzzPathComps)])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

type matcherSeed struct {
	rules, path []byte
	need        uint8
}

var matcherSeeds = []matcherSeed{
	{[]byte{1, 5, 0}, []byte{0, 1}, uint8(Read)},                          // allow read /a/**; /a/b
	{[]byte{1, 5, 0, 0x40, 5, 0}, []byte{0, 1}, uint8(Read)},              // deny wins
	{[]byte{1, 2, 0, 1}, []byte{0}, uint8(Stat)},                          // implicit stat on /a
	{[]byte{1, 2, 4, 1, 0x40, 1, 0}, []byte{9}, uint8(Stat)},              // glob ancestor
	{[]byte{9, 3, 5, 6, 13}, []byte{0, 1, 6}, uint8(Read | Stat)},         // globs
	{[]byte{1, 4}, []byte{}, uint8(Read)},                                 // /** matches /
	{[]byte{1, 5, 0}, []byte{0xff, '/', 'a', '/'}, uint8(Read)},           // trailing slash
	{[]byte{1, 5, 0}, []byte{0xff, '/', 'a', '/', '/', 'b'}, uint8(Read)}, // double slash
	{[]byte{1, 5, 11}, []byte{7, 7}, uint8(Read)},                         // ..a is a name
	{[]byte{0x21, 1, 0, 0x40, 1, 0, 3, 2, 0, 1}, []byte{0, 1}, uint8(Stat | Exec)},
}

func FuzzMatcher(f *testing.F) {
	for _, s := range matcherSeeds {
		f.Add(s.rules, s.path, s.need)
	}
	f.Fuzz(func(t *testing.T, rules, path []byte, need uint8) {
		if len(rules) > 256 || len(path) > 64 {
			return // the reference is slow; long inputs find nothing new
		}
		src := decodeRules(rules)
		p, err := Parse("fuzz.policy", []byte(src), nil)
		if err != nil {
			t.Fatalf("generated policy does not parse: %v\n%s", err, src)
		}
		m := p.Matcher()
		pth := decodePath(path)
		want := refDecide(p.rules, pth, Right(need))
		if got := m.Decide(pth, Right(need)); got != want {
			t.Fatalf("Decide(%q, %s) = %+v, reference %+v\npolicy:\n%s", pth, Right(need), got, want, src)
		}
		checkDecide(t, p, pth)
	})
}

// TestMatcherRandom runs the FuzzMatcher property over many generated
// policies, so that plain "go test" covers more than the seeds.
func TestMatcherRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	n := 400
	if testing.Short() {
		n = 50
	}
	for range n {
		rules := make([]byte, r.IntN(40))
		for i := range rules {
			rules[i] = byte(r.UintN(256))
		}
		src := decodeRules(rules)
		p, err := Parse("random.policy", []byte(src), nil)
		if err != nil {
			t.Fatalf("generated policy does not parse: %v\n%s", err, src)
		}
		for range 10 {
			path := make([]byte, r.IntN(5))
			for i := range path {
				path[i] = byte(r.UintN(255))
			}
			checkDecide(t, p, decodePath(path))
		}
		for _, path := range probePaths(p.Rules()) {
			checkDecide(t, p, path)
		}
	}
}
