//go:build linux && amd64

package escape

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// iouringPolicy is the line S-03's second half adds to P0: io_uring
// allowed on purpose, so that only Landlock stands between IORING_OP_OPENAT
// and the files.
const iouringPolicy = "syscall unsafe-allow io_uring_setup io_uring_enter\n"

// testIOUringLandlock is S-03's second half: with io_uring unsafe-allowed,
// the C helper submits IORING_OP_OPENAT. The broker never sees these opens
// (no trapped syscall), so the secret and every other path without a rule
// must get EACCES from the worker's Landlock ruleset, while an allowed
// file opens.
func testIOUringLandlock(t *testing.T, f *fixture) {
	needC(t)
	T := f.T
	// Without Landlock nothing would limit io_uring: the policy language
	// refuses the combination, naming both lines.
	_, err := parsePolicy(f.p0(iouringPolicy + "landlock off\n"))
	if err == nil || !regexpMatch(`escape\.policy:\d+:22: syscall unsafe-allow io_uring_setup io_uring_enter needs the worker's Landlock ruleset.* landlock off at escape\.policy:\d+:1 turns it off`, err.Error()) {
		t.Errorf("unsafe-allow of io_uring with landlock off: %v, want an error naming both lines", err)
	}
	for _, c := range []struct{ path, want string }{
		{T + "/out/secret", "openat:EACCES"},
		{T + "/rw/s2", "openat:EACCES"}, // -> ../out/secret: Landlock judges the target
		// Landlock checks an object once found: a missing name gives
		// ENOENT, not the broker's EACCES (R22). Existence leaks; Lint
		// says so.
		{T + "/out/missing", "openat:ENOENT"},
		{"/etc/passwd", "openat:EACCES"},
		{T + "/rw/private/f", "OPENED PRIVATE"}, // deny rules are the broker's alone (report deny_rules): a known gap
		{T + "/ro/f", "OPENED RO"},
		{T + "/rw/ok", "OPENED RO"}, // -> ../ro/f
	} {
		var (
			mu      sync.Mutex
			audited []string
			rep     *launcher.Report
		)
		res := f.run(t, run{policy: f.p0(iouringPolicy), path: T + "/ro/bin/helper", args: []string{"iouring", c.path},
			started: func(cmd *launcher.Cmd) { rep = cmd.Report() },
			audit: func(e launcher.Event) {
				mu.Lock()
				audited = append(audited, e.Syscall+" "+e.Path)
				mu.Unlock()
			}})
		if len(res.lines) == 1 && strings.HasPrefix(res.lines[0], "setup:") {
			t.Fatalf("io_uring_setup under `%s`: %s; the filter still denies it", strings.TrimSpace(iouringPolicy), res.lines[0])
		}
		want(t, res, s(c.want, "iouring", c.path))
		t.Logf("io_uring openat %s: %q", c.path, res.lines)
		if rep == nil {
			t.Fatalf("no report for the worker")
		}
		if !rep.Landlock.Enforced {
			t.Errorf("Landlock not enforced in a worker with io_uring unsafe-allowed: %+v", rep.Landlock)
		}
		if got := rep.Seccomp.UnsafeAllow; !slices.Equal(got, []string{"io_uring_enter", "io_uring_setup"}) {
			t.Errorf("report seccomp.unsafe_allow = %q, want [io_uring_enter io_uring_setup]", got)
		}
		// The broker never saw the io_uring open: the verdict was
		// Landlock's.
		mu.Lock()
		for _, a := range audited {
			if strings.HasSuffix(a, " "+c.path) {
				t.Errorf("the io_uring open reached the broker: %s", a)
			}
		}
		mu.Unlock()
	}
}

func regexpMatch(re, s string) bool {
	return match(s, "re:(?s)"+re+".*")
}

// TestUnsafeAllowMatchesFilter checks the policy's unsafe-allow table
// against the filter's catalogue, parsed from sandbox/seccomp/classify.go
// (this package may not import sandbox/seccomp): `syscall unsafe-allow`
// takes exactly the filter's dangerous class, and refuses every path
// syscall, brokered or denied.
func TestUnsafeAllowMatchesFilter(t *testing.T) {
	classes := catalogClasses(t)
	var dangerous []string
	for name, class := range classes {
		if class == "ClassDangerous" {
			dangerous = append(dangerous, name)
		}
	}
	slices.Sort(dangerous)
	var table []string
	for _, u := range policy.UnsafeSyscalls() {
		table = append(table, u.Name)
	}
	if !slices.Equal(dangerous, table) {
		t.Errorf("policy.UnsafeSyscalls() = %q\nthe filter's dangerous class = %q", table, dangerous)
	}
	for name, class := range classes {
		_, err := parsePolicy("syscall unsafe-allow " + name + "\n")
		switch class {
		case "ClassDangerous":
			if err != nil {
				t.Errorf("unsafe-allow %s: %v", name, err)
			}
		case "ClassBrokered", "ClassOptional", "ClassOptIn", "ClassPathDenied":
			if err == nil || !strings.Contains(err.Error(), "cannot allow "+name+": it takes a path") {
				t.Errorf("unsafe-allow of the path syscall %s (%s): %v, want a refusal", name, class, err)
			}
		default:
			if err == nil {
				t.Errorf("unsafe-allow of %s (%s) accepted: only dangerous syscalls may be named", name, class)
			}
		}
		if class == "ClassDangerous" {
			if _, err := parsePolicy("syscall allow " + name + "\n"); err == nil {
				t.Errorf("syscall allow %s accepted: only unsafe-allow may allow it", name)
			}
		}
	}
}

// catalogClasses returns the class of every syscall the def calls of
// sandbox/seccomp/classify.go name: def(CLASS, ERRNO, NOTE, NAMES...).
func catalogClasses(t *testing.T) map[string]string {
	t.Helper()
	af, err := parser.ParseFile(token.NewFileSet(), "../../sandbox/seccomp/classify.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(af, func(nd ast.Node) bool {
		call, ok := nd.(*ast.CallExpr)
		if !ok || len(call.Args) < 4 {
			return true
		}
		if fn, ok := call.Fun.(*ast.Ident); !ok || fn.Name != "def" {
			return true
		}
		class, ok := call.Args[0].(*ast.Ident)
		if !ok {
			return true
		}
		for _, a := range call.Args[3:] {
			if bl, ok := a.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				if s, err := strconv.Unquote(bl.Value); err == nil {
					out[s] = class.Name
				}
			}
		}
		return true
	})
	if len(out) < 100 {
		t.Fatalf("only %d syscalls classified in sandbox/seccomp/classify.go: the parse failed", len(out))
	}
	return out
}
