package policy

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// testDefs fixes the built-ins for tests.
var testDefs = Defines{"HOME": "/home/u", "CWD": "/work/p", "TMPDIR": "/tmp", "UID": "1000"}

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse("t.policy", []byte(src), testDefs)
	if err != nil {
		t.Fatalf("Parse:\n%v\nsource:\n%s", err, src)
	}
	return p
}

func ruleList(p *Policy) []string {
	var out []string
	for _, r := range p.Rules() {
		out = append(out, r.String())
	}
	return out
}

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"allow", "allow read /usr/**", []string{"allow read /usr/**"}},
		{"several patterns", "allow read,exec /a /b/** /c/*.so", []string{"allow read,exec /a", "allow read,exec /b/**", "allow read,exec /c/*.so"}},
		{"rights canonical order", "allow stat,write,read /a", []string{"allow read,write,stat /a"}},
		{"repeated right", "allow read,read /a", []string{"allow read /a"}},
		{"deny without rights", "deny /etc/shadow", []string{"deny /etc/shadow"}},
		{"deny with rights", "deny write,create /a/**", []string{"deny write,create /a/**"}},
		{"deny all rights written out", "deny read,write,create,exec,stat /a", []string{"deny /a"}},
		{"root", "allow stat /", []string{"allow stat /"}},
		{"everything", "allow read /**", []string{"allow read /**"}},
		{"cleaning", "allow read //a//b/./c/ /./ /x/**/", []string{"allow read /a/b/c", "allow read /", "allow read /x/**"}},
		{"dot names are names", "allow read /a/..b /a/...  /a/.b", []string{"allow read /a/..b", "allow read /a/...", "allow read /a/.b"}},
		{"quoting", `allow read "/a b" '/c d' /e\ f`, []string{"allow read '/a b'", "allow read '/c d'", "allow read '/e f'"}},
		{"hash inside a word", "allow read /a#b # comment", []string{"allow read /a#b"}},
		{"comment only", "# allow read /a", nil},
		{"variables", "define P=${TMPDIR}/app\nallow read,write ${P}/** ${HOME}/.config/${UID} ${CWD}", []string{"allow read,write /tmp/app/**", "allow read,write /home/u/.config/1000", "allow read,write /work/p"}},
		{"literal dollar", "allow read /a$$b", []string{"allow read /a$$b"}},
		{"proc self kept literally", "allow read /proc/self/status /proc/thread-self/**", []string{"allow read /proc/self/status", "allow read /proc/thread-self/**"}},
		{"crlf", "allow read /a\r\ndeny /a/b\r\n", []string{"allow read /a", "deny /a/b"}},
		{"byte-order mark", "\uFEFFallow read /a", []string{"allow read /a"}},
		{"unicode", "allow read /é/ü*", []string{"allow read /é/ü*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.src)
			if got := ruleList(p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rules = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRuleFields(t *testing.T) {
	p := mustParse(t, "version 1\n\nallow read,write /a/** /b\n  deny   /c\n")
	want := []Rule{
		{Allow: true, Rights: Read | Write, Pattern: "/a/**", Pos: Position{"t.policy", 3, 18}},
		{Allow: true, Rights: Read | Write, Pattern: "/b", Pos: Position{"t.policy", 3, 24}},
		{Allow: false, Rights: AllRights, Pattern: "/c", Pos: Position{"t.policy", 4, 10}},
	}
	if got := p.Rules(); !reflect.DeepEqual(got, want) {
		t.Errorf("Rules() = %+v, want %+v", got, want)
	}
}

func TestSettings(t *testing.T) {
	p := mustParse(t, `
net unix
net tcp-connect 443 80 443
net tcp-bind 8080
env clear
env pass LANG TZ LANG
env set HOME=${TMPDIR}/h 'MSG=a b' X=
limit nofile 1024
limit fsize 1GiB
limit stack 8M unlimited
limit as unlimited
limit nofile 512 4096
limit core 0
namespaces pid user user
syscall unsafe-allow ptrace
syscall allow fcntl
syscall deny mount umount2 errno=EPERM
syscall default kill
syscall default errno=ENOSYS
default-errno ENOENT
require landlock>=3 user-notif landlock
`)
	if got, want := p.Net(), (Net{Mode: NetUnix, TCPConnect: []uint16{80, 443}, TCPBind: []uint16{8080}}); !reflect.DeepEqual(got, want) {
		t.Errorf("Net() = %+v, want %+v", got, want)
	}
	wantEnv := Env{Clear: true, Pass: []string{"LANG", "TZ"}, Set: []EnvVar{{"HOME", "/tmp/h"}, {"MSG", "a b"}, {"X", ""}}, Given: true}
	if got := p.Env(); !reflect.DeepEqual(got, wantEnv) {
		t.Errorf("Env() = %+v, want %+v", got, wantEnv)
	}
	wantLimits := []Limit{
		{"nofile", 7, 512, 4096},
		{"fsize", 1, 1 << 30, 1 << 30},
		{"stack", 3, 8 << 20, math.MaxUint64},
		{"as", 9, math.MaxUint64, math.MaxUint64},
		{"core", 4, 0, 0},
	}
	if got := p.Limits(); !reflect.DeepEqual(got, wantLimits) {
		t.Errorf("Limits() = %+v, want %+v", got, wantLimits)
	}
	if got := p.Namespaces(); !reflect.DeepEqual(got, []string{"pid", "user"}) {
		t.Errorf("Namespaces() = %q", got)
	}
	sys := p.Syscalls()
	for i := range sys {
		sys[i].Pos = Position{}
	}
	wantSys := []SyscallRule{
		{Action: "unsafe-allow", Names: []string{"ptrace"}},
		{Action: "allow", Names: []string{"fcntl"}},
		{Action: "deny", Names: []string{"mount", "umount2"}, Errno: 1},
		{Action: "default", Kill: true},
		{Action: "default", Errno: 38},
	}
	if !reflect.DeepEqual(sys, wantSys) {
		t.Errorf("Syscalls() = %+v, want %+v", sys, wantSys)
	}
	if got := p.DefaultErrno(); got != 2 {
		t.Errorf("DefaultErrno() = %d, want 2 (ENOENT)", got)
	}
	req := p.Requires()
	if len(req) != 3 || req[0] != (Requirement{"landlock", 3, Position{"t.policy", 21, 9}}) ||
		req[1].Feature != "user-notif" || req[2].Feature != "landlock" || req[2].MinVersion != 1 {
		t.Errorf("Requires() = %+v", req)
	}
	checkRoundTrip(t, p)
}

func TestDefaults(t *testing.T) {
	p := mustParse(t, "")
	if p.Net().Mode != NetNone || p.Env().Given || len(p.Limits()) != 0 || len(p.Namespaces()) != 0 ||
		len(p.Syscalls()) != 0 || p.DefaultErrno() != 13 || len(p.Requires()) != 0 || len(p.Rules()) != 0 {
		t.Errorf("empty policy has settings:\n%s", p)
	}
	if got := p.String(); got != "version 1\nnet none\n" {
		t.Errorf("String() = %q", got)
	}
	if v := p.Matcher().Decide("/", Stat); v.Allowed || v.Rule != -1 {
		t.Errorf("empty policy allows /: %+v", v)
	}
}

// TestLandlockSwitch: on by default, the last landlock line wins, off
// survives the normal form, and the position names the deciding line.
func TestLandlockSwitch(t *testing.T) {
	for _, tc := range []struct {
		src  string
		on   bool
		line int
	}{
		{"allow read /a", true, 0},
		{"landlock off", false, 1},
		{"landlock off\nallow read /a\nlandlock on", true, 3},
		{"landlock on\nlandlock off\nrequire userns", false, 2},
		{"landlock on\nrequire landlock>=2", true, 1},
	} {
		p := mustParse(t, tc.src)
		on, pos := p.Landlock()
		if on != tc.on || pos.Line != tc.line || (tc.line > 0 && (pos.File != "t.policy" || pos.Col != 1)) {
			t.Errorf("%q: Landlock() = %v, %v; want %v at line %d", tc.src, on, pos, tc.on, tc.line)
		}
		if got := strings.Contains(p.String(), "landlock off\n"); got == tc.on {
			t.Errorf("%q: normal form has landlock off: %v\n%s", tc.src, got, p)
		}
		checkRoundTrip(t, p)
	}
}

func TestLastSettingWins(t *testing.T) {
	p := mustParse(t, "net all\nnet none\nnamespaces user pid\nnamespaces none\ndefault-errno EPERM\ndefault-errno EACCES\n")
	if p.Net().Mode != NetNone || len(p.Namespaces()) != 0 || p.DefaultErrno() != 13 {
		t.Errorf("later lines did not win: %s", p)
	}
}

func TestPolicyIsImmutable(t *testing.T) {
	p := mustParse(t, "allow read /a\nnet tcp-connect 1\nenv pass A\nenv set B=c\nlimit nofile 1\nnamespaces pid\nsyscall deny mount\nrequire userns\n")
	before := p.String()
	r := p.Rules()
	r[0].Pattern, r[0].Allow = "/", false
	n := p.Net()
	n.TCPConnect[0] = 2
	e := p.Env()
	e.Pass[0], e.Set[0].Value = "Z", "z"
	p.Limits()[0].Soft = 5
	p.Namespaces()[0] = "net"
	p.Syscalls()[0].Names[0] = "bpf"
	p.Requires()[0].Feature = "netns"
	p.Files()[0] = "x"
	if after := p.String(); after != before {
		t.Errorf("policy changed through its accessors:\n%s\n---\n%s", before, after)
	}
	if v := p.Matcher().Decide("/a", Read); !v.Allowed {
		t.Errorf("matcher changed: %+v", v)
	}
}

func TestDefinePrecedence(t *testing.T) {
	src := "define A=/from-define\ndefine HOME=/define-home\nallow read ${A} ${HOME} ${TMPDIR}\n"
	p, err := Parse("t.policy", []byte(src), Defines{"A": "/from-flag", "TMPDIR": "/flag-tmp"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"allow read /from-flag", "allow read /define-home", "allow read /flag-tmp"}
	if got := ruleList(p); !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
	// A define overridden by -D is not expanded, so its undefined variables
	// do not matter.
	if _, err := Parse("t.policy", []byte("define A=${NOPE}\nallow read ${A}\n"), Defines{"A": "/x"}); err != nil {
		t.Errorf("overridden define was expanded: %v", err)
	}
	// Same value twice is fine; a different one is not.
	if _, err := Parse("t.policy", []byte("define A=/x\ndefine A=/x\n"), nil); err != nil {
		t.Errorf("identical redefinition: %v", err)
	}
}

func TestBuiltins(t *testing.T) {
	if os.Getuid() < 0 {
		t.Skip("no user IDs on this system")
	}
	t.Setenv("HOME", "/env-home")
	t.Setenv("TMPDIR", "")
	p, err := Parse("t.policy", []byte("allow read ${HOME} ${TMPDIR} ${CWD} /u/${UID}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := []string{"allow read /env-home", "allow read /tmp", "allow read " + quote(escapeDollar(filepath.Clean(wd))), "allow read /u/" + strconv.Itoa(os.Getuid())}
	if got := ruleList(p); !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}

	t.Setenv("HOME", "")
	_, err = Parse("t.policy", []byte("allow read ${HOME}/x\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "${HOME} is not available: HOME is not set in the environment; pass -D HOME=VALUE") {
		t.Errorf("missing HOME: %v", err)
	}
	t.Setenv("HOME", "/home/*")
	_, err = Parse("t.policy", []byte("allow read ${HOME}/x\nenv set H=${HOME}\n"), nil)
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "glob character") {
		t.Errorf("glob in HOME: %v", err)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		pos       string // "line:col" of the first error
		msg       string // part of the first error's message
	}{
		{"nul", "allow read /a\x00b", "1:14", "NUL byte"},
		{"invalid utf-8", "allow read /a\n  allow read /\xffb", "2:15", "invalid UTF-8"},
		{"unterminated single quote", "allow read '/a", "1:12", "unterminated '...' quote"},
		{"unterminated double quote", `allow read /x "/a`, "1:15", `unterminated "..." quote`},
		{"trailing backslash", `allow read /a \`, "1:15", "line ends with a backslash"},
		{"unknown directive", "  alow read /a", "1:3", `unknown directive "alow" (did you mean "allow"?); valid directives: version, include`},
		{"path as directive", "/usr/lib", "1:1", "write allow RIGHTS /usr/lib"},
		{"version twice", "version 1\nversion 1", "2:1", "version given twice; the first is at t.policy:1"},
		{"version late", "allow read /a\nversion 1", "2:1", "version must be the first directive"},
		{"version 2", "version 2", "1:9", `unsupported policy version "2"`},
		{"version missing", "version", "1:1", "version needs an argument; usage: version 1"},
		{"version extra", "version 1 2", "1:11", `unexpected argument "2"; usage: version 1`},
		{"allow without rights", "allow /a", "1:7", "allow needs rights before the patterns, e.g. allow read /a"},
		{"allow without patterns", "allow read", "1:1", "allow read needs at least one pattern"},
		{"allow nothing", "allow", "1:1", "allow needs rights and at least one pattern"},
		{"unknown right", "allow raed /a", "1:7", `unknown right "raed" (did you mean "read"?); valid rights: read, write, create, exec, stat`},
		{"rights with space", "allow read, write /a", "1:7", `empty right in "read,"`},
		{"rights as words", "allow read write /a", "1:12", "rights are one comma-separated word"},
		{"deny nothing", "deny", "1:1", "deny needs at least one pattern"},
		{"deny rights only", "deny read", "1:1", "deny needs at least one pattern"},
		{"deny unknown right", "deny wirte /a", "1:6", `unknown right "wirte" (did you mean "write"?)`},
		{"relative", "allow read a/b", "1:12", `pattern "a/b" is not absolute; patterns must start with / (for a path under the current directory write ${CWD}/a/b)`},
		{"dot relative", "allow read ./a", "1:12", "write ${CWD}/a"},
		{"tilde", "allow read ~/a", "1:12", "~ is not expanded; write ${HOME}/a"},
		{"empty pattern", `allow read ""`, "1:12", "empty pattern"},
		{"dotdot", "deny /a/../b", "1:6", "has a .. component"},
		{"dotdot last", "deny /a/..", "1:6", "has a .. component"},
		{"star star inside", "allow read /a/**/b", "1:12", "** is only allowed as the last component"},
		{"star star in name", "allow read /a/b**", "1:12", "** must be a whole path component"},
		{"undefined variable", "allow read ${NOPE}/a", "1:12", `undefined variable ${NOPE}; add "define NOPE=VALUE" above this line or pass -D NOPE=VALUE`},
		{"variable suggestion", "define PROFILE=/p\nallow read ${PROFIL}/a", "2:12", "did you mean ${PROFILE}?"},
		{"variable defined later", "allow read ${P}\ndefine P=/p", "1:12", "undefined variable ${P}"},
		{"relative variable", "define P=p\nallow read ${P}/a", "2:12", `pattern "p/a" is not absolute; patterns must start with / (for a path under the current directory write ${CWD}/p/a) (expanded from "${P}/a")`},
		{"stray dollar", "allow read /a$b", "1:12", "stray $ in \"/a$b\"; write ${b} to use the variable, or $$ for a literal $"},
		{"stray dollar alone", "allow read /a$", "1:12", "write ${NAME} to use a variable, or $$ for a literal $"},
		{"unterminated variable", "allow read ${A", "1:12", "unterminated ${"},
		{"bad variable name", "allow read ${1A}", "1:12", `invalid variable name "1A"`},
		{"define without =", "define A", "1:8", "define needs NAME=VALUE"},
		{"define spaced", "define A = /x", "1:10", `unexpected argument "="; usage: define NAME=VALUE`},
		{"define bad name", "define A-B=/x", "1:8", `invalid variable name "A-B"`},
		{"define twice", "define A=/x\ndefine A=/y", "2:8", "A is already defined at t.policy:1; a variable is defined once (pass -D A=VALUE to override it)"},
		{"net missing", "net", "1:1", "net needs an argument"},
		{"net unknown", "net inte", "1:5", `unknown net mode "inte" (did you mean "inet"?); valid: none, unix, inet, all, tcp-connect, tcp-bind`},
		{"net extra", "net none 80", "1:10", "net none takes no ports"},
		{"net no ports", "net tcp-connect", "1:5", "net tcp-connect needs at least one port"},
		{"net port zero", "net tcp-bind 0", "1:14", `invalid port "0"; ports are numbers from 1 to 65535`},
		{"net port big", "net tcp-bind 65536", "1:14", "invalid port"},
		{"env unknown", "env keep A", "1:5", `unknown env action "keep"; valid: clear, pass, set`},
		{"env clear extra", "env clear A", "1:11", "env clear takes no arguments"},
		{"env pass comma", "env pass A,B", "1:10", "separate several names with spaces"},
		{"env pass none", "env pass", "1:5", "env pass needs at least one variable name"},
		{"env set no =", "env set A", "1:9", "env set needs NAME=VALUE"},
		{"env set bad name", "env set 1A=b", "1:9", `invalid environment variable name "1A"`},
		{"env set undefined", "env set A=${NOPE}", "1:9", "undefined variable ${NOPE}"},
		{"landlock missing", "landlock", "1:1", "landlock needs an argument; usage: landlock on|off"},
		{"landlock unknown", "landlock offf", "1:10", `unknown landlock setting "offf" (did you mean "off"?); usage: landlock on|off`},
		{"landlock extra", "landlock off now", "1:14", `unexpected argument "now"; usage: landlock on|off`},
		{"landlock off required", "require user-notif landlock>=3\nlandlock off", "2:1", "landlock off contradicts require landlock>=3 at t.policy:1:20; delete this line (or write landlock on) to keep Landlock, or remove landlock>=3 from the require line"},
		{"landlock off required later", "landlock off\nrequire landlock-scope", "1:1", "landlock off contradicts require landlock-scope at t.policy:2:9"},
		{"limit unknown", "limit files 10", "1:7", `unknown limit "files"; valid limits: as, core, cpu`},
		{"limit suggestion", "limit nofiles 10", "1:7", `(did you mean "nofile"?)`},
		{"limit missing value", "limit nofile", "1:1", "limit needs 2 arguments"},
		{"limit extra", "limit nofile 1 2 3", "1:18", `unexpected argument "3"`},
		{"limit KB", "limit fsize 10KB", "1:13", `invalid size suffix "KB" in "10KB" (KB is ambiguous`},
		{"limit suffix", "limit fsize 10X", "1:13", "valid suffixes: K, KiB, M, MiB, G, GiB, T, TiB (all powers of 1024)"},
		{"limit size on count", "limit nofile 1K", "1:14", `limit nofile counts open files and takes a plain number, not "1K"`},
		{"limit not a number", "limit nofile lots", "1:14", "write a number of open files or unlimited"},
		{"limit negative", "limit nofile -1", "1:14", "write a number of open files or unlimited"},
		{"limit decimal", "limit fsize 1.5G", "1:13", "write a number of bytes or unlimited"},
		{"limit overflow", "limit fsize 99999999999TiB", "1:13", "too large; write unlimited"},
		{"limit overflow plain", "limit fsize 99999999999999999999", "1:13", "too large"},
		{"limit soft above hard", "limit nofile 10 5", "1:14", "soft limit 10 is above the hard limit 5"},
		{"limit unlimited above hard", "limit nofile unlimited 5", "1:14", "soft limit unlimited is above the hard limit 5"},
		{"namespaces missing", "namespaces", "1:1", "namespaces needs an argument"},
		{"namespaces unknown", "namespaces user mnt", "1:17", `unknown namespace "mnt"; valid namespaces: ipc, net, pid, user, uts, or none`},
		{"namespaces none mixed", "namespaces user none", "1:17", "none stands alone"},
		{"namespaces none extra", "namespaces none user", "1:17", "namespaces none stands alone"},
		{"syscall missing", "syscall", "1:1", "syscall needs an argument"},
		{"syscall action", "syscall permit open", "1:9", `unknown syscall action "permit"; valid: allow, deny, unsafe-allow, default`},
		{"syscall unsafe action typo", "syscall unsafe_allow bpf", "1:9", `unknown syscall action "unsafe_allow" (did you mean "unsafe-allow"?)`},
		{"syscall allow dangerous", "syscall allow read io_uring_setup", "1:20", "syscall allow never allows the dangerous io_uring_setup (io_uring bypasses the broker"},
		{"syscall allow dangerous hint", "syscall allow ptrace", "1:15", "write syscall unsafe-allow ptrace"},
		{"syscall unsafe-allow brokered", "syscall unsafe-allow io_uring_setup openat", "1:37", "syscall unsafe-allow cannot allow openat: it takes a path and must stay brokered"},
		{"syscall unsafe-allow optional", "syscall unsafe-allow mkdir", "1:22", "cannot allow mkdir: it takes a path and must stay brokered"},
		{"syscall unsafe-allow path denied", "syscall unsafe-allow open_by_handle_at", "1:22", "cannot allow open_by_handle_at: it takes a path or reaches files without one"},
		{"syscall unsafe-allow mount", "syscall unsafe-allow mount", "1:22", "cannot allow mount: it takes a path"},
		{"syscall unsafe-allow not dangerous", "syscall unsafe-allow fcntl", "1:22", "fcntl is not one of them: write syscall allow fcntl"},
		{"syscall unsafe-allow filter", "syscall unsafe-allow seccomp", "1:22", "seccomp is not one of them"},
		{"syscall unsafe-allow errno", "syscall unsafe-allow bpf errno=EPERM", "1:26", "errno= applies to syscall deny and syscall default, not to unsafe-allow"},
		{"syscall unsafe-allow empty", "syscall unsafe-allow", "1:9", "syscall unsafe-allow needs at least one syscall name"},
		{"syscall unsafe-allow unknown", "syscall unsafe-allow io_uring_setpu", "1:22", `unknown syscall "io_uring_setpu" (did you mean "io_uring_setup"?)`},
		{"unsafe io_uring with landlock off", "landlock off\nsyscall unsafe-allow bpf io_uring_enter io_uring_setup", "2:26", "syscall unsafe-allow io_uring_enter io_uring_setup needs the worker's Landlock ruleset, the only layer that limits the files it reaches, and landlock off at t.policy:1:1 turns it off; delete that line (or write landlock on), or remove io_uring_enter io_uring_setup from this line"},
		{"unsafe io_uring before landlock off", "syscall unsafe-allow io_uring_setup\nlandlock on\nlandlock off", "1:22", "landlock off at t.policy:3:1 turns it off"},
		{"syscall unknown", "syscall deny opne", "1:14", `unknown syscall "opne" (did you mean "open"?)`},
		{"syscall no names", "syscall deny errno=EPERM", "1:9", "syscall deny needs at least one syscall name"},
		{"syscall errno on allow", "syscall allow open errno=EPERM", "1:20", "errno= applies to syscall deny and syscall default"},
		{"syscall errno order", "syscall deny errno=EPERM open", "1:14", "errno= must come after the syscall names"},
		{"syscall bad errno", "syscall deny open errno=EPRM", "1:19", `unknown errno "EPRM" (did you mean "EPERM"?)`},
		{"syscall errno number", "syscall deny open errno=1", "1:19", "errno 1 must be given by name"},
		{"syscall errno lowercase", "syscall deny open errno=eperm", "1:19", `(did you mean "EPERM"?)`},
		{"syscall default missing", "syscall default", "1:9", "syscall default needs exactly one of errno=E or kill"},
		{"syscall default bad", "syscall default allow", "1:17", `syscall default takes errno=E or kill, not "allow"`},
		{"default-errno unknown", "default-errno EACESS", "1:15", `unknown errno "EACESS" (did you mean "EACCES"?)`},
		{"require missing", "require", "1:1", "require needs an argument"},
		{"require unknown", "require landlok", "1:9", `unknown feature "landlok" (did you mean "landlock"?); valid features: landlock, landlock-net`},
		{"require version zero", "require landlock>=0", "1:9", "invalid Landlock ABI version"},
		{"require version text", "require landlock>=x", "1:9", "invalid Landlock ABI version"},
		{"require version elsewhere", "require userns>=2", "1:9", "feature userns has no versions"},
		{"include missing arg", "include", "1:1", "include needs an argument"},
		{"include empty", `include ""`, "1:9", "empty file name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.policy", []byte(tc.src), testDefs)
			if err == nil {
				t.Fatalf("no error for %q", tc.src)
			}
			checkParseError(t, err)
			var pe *ParseError
			errors.As(err, &pe)
			first := pe.Errors[0]
			if got := strconv.Itoa(first.Pos.Line) + ":" + strconv.Itoa(first.Pos.Col); got != tc.pos {
				t.Errorf("position %s, want %s (%v)", got, tc.pos, first)
			}
			if !strings.Contains(first.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", first.Msg, tc.msg)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	src := "alow read /a\nallow raed /b\nallow read c\nnet nope\n"
	_, err := Parse("t.policy", []byte(src), testDefs)
	var pe *ParseError
	if !errors.As(err, &pe) || len(pe.Errors) != 4 {
		t.Fatalf("want 4 errors, got %v", err)
	}
	for i, e := range pe.Errors {
		if e.Pos.Line != i+1 {
			t.Errorf("error %d at line %d", i, e.Pos.Line)
		}
	}
	if got := strings.Count(err.Error(), "\n"); got != 3 {
		t.Errorf("Error() has %d newlines, want 3:\n%v", got, err)
	}
}

func TestErrorLimit(t *testing.T) {
	src := strings.Repeat("allow raed /a\n", MaxErrors+5)
	_, err := Parse("t.policy", []byte(src), testDefs)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatal(err)
	}
	if len(pe.Errors) != MaxErrors || !pe.Truncated {
		t.Errorf("%d errors, truncated %v; want %d, true", len(pe.Errors), pe.Truncated, MaxErrors)
	}
	if !strings.HasSuffix(err.Error(), "\ntoo many errors; stopped after 20") {
		t.Errorf("Error() does not say it stopped:\n%v", err)
	}
	_, err = Parse("t.policy", []byte(strings.Repeat("allow raed /a\n", MaxErrors)), testDefs)
	if !errors.As(err, &pe) || pe.Truncated || len(pe.Errors) != MaxErrors {
		t.Errorf("exactly %d errors: truncated %v, %d errors", MaxErrors, pe.Truncated, len(pe.Errors))
	}
}

func TestIncludes(t *testing.T) {
	p, err := ParseFile("testdata/include/main.policy", testDefs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"allow read /base/**",
		"allow read /sub/**",
		"allow read /base/**",
		"deny /base/secret",
		"allow read /main/**",
	}
	if got := ruleList(p); !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
	wantFiles := []string{"testdata/include/main.policy", "testdata/include/base.policy", "testdata/include/sub/sub.policy"}
	got := p.Files()
	for i := range got {
		got[i] = filepath.ToSlash(got[i])
	}
	if !reflect.DeepEqual(got, wantFiles) {
		t.Errorf("Files() = %q, want %q", got, wantFiles)
	}
	if got := p.Rules()[1].Pos; filepath.ToSlash(got.File) != "testdata/include/sub/sub.policy" || got.Line != 3 || got.Col != 12 {
		t.Errorf("position in included file = %v", got)
	}
}

func TestIncludeErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string
	}{
		{"testdata/include/cycle_a.policy", "testdata/include/cycle_b.policy:2:9: include cycle: testdata/include/cycle_a.policy includes testdata/include/cycle_b.policy includes testdata/include/cycle_a.policy\n\tincluded from testdata/include/cycle_a.policy:2"},
		{"testdata/include/self.policy", "testdata/include/self.policy:1:9: include cycle: testdata/include/self.policy includes testdata/include/self.policy"},
		{"testdata/include/missing.policy", `testdata/include/missing.policy:1:9: cannot include "nope/none.policy" (testdata/include/nope/none.policy): no such file or directory`},
		{"testdata/include/dir.policy", `testdata/include/dir.policy:1:9: cannot include "sub" (testdata/include/sub): is a directory`},
		{"testdata/include/chain.policy", "testdata/include/sub/bad.policy:2:7: unknown right \"raed\" (did you mean \"read\"?); valid rights: read, write, create, exec, stat\n\tincluded from testdata/include/sub/middle.policy:1\n\tincluded from testdata/include/chain.policy:3"},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			_, err := ParseFile(tc.file, testDefs)
			if err == nil || filepath.ToSlash(err.Error()) != tc.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
	_, err := ParseFile("testdata/include/missing.policy", testDefs)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing include does not wrap fs.ErrNotExist: %v", err)
	}
	_, err = ParseFile("testdata/include/no-such-file.policy", testDefs)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "testdata/include/no-such-file.policy: cannot read policy: ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestIncludeDepth(t *testing.T) {
	files := map[string]string{}
	for i := range maxIncludeDepth + 2 {
		files["f"+strconv.Itoa(i)+".policy"] = "include f" + strconv.Itoa(i+1) + ".policy\n"
	}
	read := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	_, err := parse("f0.policy", []byte(files["f0.policy"]), nil, read)
	if err == nil || !strings.Contains(err.Error(), "includes nested more than 32 deep") {
		t.Fatalf("deep includes: %v", err)
	}
	var pe *ParseError
	errors.As(err, &pe)
	if n := len(pe.Errors[0].Chain); n != maxIncludeDepth-1 {
		t.Errorf("chain has %d entries, want %d", n, maxIncludeDepth-1)
	}
}

func TestIncludeSpecialFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := Parse("t.policy", []byte("include /dev/zero\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("include /dev/zero: %v", err)
	}
}

func TestDefaultCannotInclude(t *testing.T) {
	_, err := parse("default.policy", []byte("include x.policy\n"), nil, func(string) ([]byte, error) {
		return nil, errors.New("the built-in policy cannot include files")
	})
	if err == nil || !strings.Contains(err.Error(), "cannot include") {
		t.Errorf("got %v", err)
	}
}

func TestPosition(t *testing.T) {
	for _, tc := range []struct {
		p    Position
		want string
	}{
		{Position{"a.policy", 3, 7}, "a.policy:3:7"},
		{Position{"a.policy", 3, 0}, "a.policy:3"},
		{Position{"a.policy", 0, 0}, "a.policy"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestRoundTripExamples(t *testing.T) {
	for _, src := range parseSeeds {
		p, err := parse("seed.policy", []byte(src), fuzzDefs, fuzzRead)
		if err != nil {
			continue
		}
		checkRoundTrip(t, p)
	}
	p := mustParse(t, "allow read \"/it's\" '/a\"b' '/#x' '/a\\b' /a$$ '/sp ace' \"/t\tab\" '/c\rr'\nenv set 'A=x y' B=$$ C='#'\n")
	checkRoundTrip(t, p)
}

func TestParseFilePipe(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	// A device or pipe may be the top-level policy, but it is read only up
	// to the size limit.
	_, err := ParseFile("/dev/zero", nil)
	if err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("ParseFile(/dev/zero): %v", err)
	}
	_, err = ParseFile("testdata", nil)
	if err == nil || err.Error() != "testdata: cannot read policy: is a directory" {
		t.Errorf("ParseFile(testdata): %v", err)
	}
}
