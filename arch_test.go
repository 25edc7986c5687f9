// Package sandboxexec_test holds repository-wide checks. It has no code of
// its own: "go test ." runs them.
package sandboxexec_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/seed-025014a4/sandbox-exec"

// allowedImports is the table of style.md ("Allowed imports"): for each
// package, the project packages and third-party modules its non-test files
// may import. The standard library is always allowed. A package missing
// from this table fails the test: add it here when you add it to the tree,
// with the narrowest set that works.
var allowedImports = map[string][]string{
	"policy":            {"github.com/google/shlex"},
	"sandbox/seccomp":   {"golang.org/x/net/bpf"},
	"ipc":               {"internal/sys", "golang.org/x/sys/unix"},
	"sandbox":           {"sandbox/seccomp", "internal/sys", "golang.org/x/sys/unix", "github.com/landlock-lsm/go-landlock"},
	"broker":            {"policy", "internal/sys", "golang.org/x/sys/unix"},
	"launcher":          {"policy", "ipc", "sandbox", "sandbox/seccomp", "broker", "internal/sys", "golang.org/x/sys/unix"},
	"internal/sys":      {"golang.org/x/sys/unix", "github.com/landlock-lsm/go-landlock/landlock/syscall"},
	"internal/testutil": {"internal/sys", "golang.org/x/sys/unix"},
	"cmd/sandbox-exec":  {"policy", "launcher"},
	"tests":             {"policy", "launcher", "internal/testutil"},
	"tests/layers":      {"policy", "launcher", "internal/testutil"},
	"tests/escape":      {"policy", "launcher", "internal/testutil"},
	"tests/workloads":   {"policy", "launcher", "internal/testutil"},
	// Tools and examples outside the product's import graph.
	"internal/cmd/gensyscalls": {},
	"examples/thumbnailer":     {"policy", "launcher", "ipc"},
	"bench":                    {"policy", "launcher", "broker", "sandbox", "sandbox/seccomp", "internal/sys", "golang.org/x/sys/unix", "github.com/landlock-lsm/go-landlock"},
	".":                        {},
}

// testExtras may additionally be imported by _test.go files of any package:
// the test helpers, and x/sys/unix to cross-check constants.
var testExtras = []string{"internal/testutil", "golang.org/x/sys/unix"}

// banned are calls that bypass a project rule outside the one package that
// may make them (style.md: fd ownership, errors.Is, ipc owns SCM_RIGHTS).
var banned = map[string]string{
	"os.Create":            "", // files are created with explicit flags and mode
	"os.IsExist":           "", // use errors.Is
	"os.IsNotExist":        "",
	"os.IsPermission":      "",
	"os.IsTimeout":         "",
	"unix.UnixRights":      "ipc",
	"unix.ParseUnixRights": "ipc",
	"syscall.UnixRights":   "ipc",
}

// allowedBy reports whether import path rel (module-relative for project
// packages) is in list. A third-party entry also allows its subpackages.
func allowedBy(list []string, rel string) bool {
	for _, a := range list {
		if rel == a || (strings.Contains(a, ".") && strings.HasPrefix(rel, a+"/")) {
			return true
		}
	}
	return false
}

func TestArchitecture(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		allowed, ok := allowedImports[pkg]
		if !ok {
			t.Errorf("%s: package %q is not in the allowed-imports table of arch_test.go (style.md); add it", path, pkg)
			return nil
		}
		isTest := strings.HasSuffix(path, "_test.go")
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "unsafe" {
				if pkg != "internal/sys" || !strings.HasSuffix(path, "_unsafe.go") {
					t.Errorf("%s: imports unsafe; only internal/sys/*_unsafe.go may", path)
				}
				continue
			}
			first := strings.SplitN(p, "/", 2)[0]
			if !strings.Contains(first, ".") {
				continue // standard library
			}
			rel := p
			if p == module {
				rel = "."
			} else if strings.HasPrefix(p, module+"/") {
				rel = strings.TrimPrefix(p, module+"/")
			}
			if rel == pkg {
				continue // external test package of itself
			}
			if allowedBy(allowed, rel) || (isTest && allowedBy(testExtras, rel)) {
				continue
			}
			t.Errorf("%s: package %s may not import %s (allowed: %v; see style.md)", path, pkg, p, allowed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBannedCalls(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			name := id.Name + "." + sel.Sel.Name
			if owner, ok := banned[name]; ok && owner != pkg {
				where := "anywhere"
				if owner != "" {
					where = "outside " + owner
				}
				t.Errorf("%s: %s is banned %s (style.md)", fset.Position(sel.Pos()), name, where)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
