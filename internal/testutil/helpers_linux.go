//go:build linux

package testutil

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvHelper names the helper a copy of the test binary runs instead of the
// tests; see [MainHelpers].
const EnvHelper = "SANDBOX_EXEC_TEST_HELPER"

type helper struct {
	fn   func(args []string) int
	used bool
}

var (
	helpersMu sync.Mutex
	helpers   = map[string]*helper{}
)

// Register adds the helper name, run by [MainHelpers] in a child started
// with [HelperCommand] or [HelperEnv]. fn gets the child's os.Args[1:] and
// returns its exit code. Call Register from TestMain or init, before
// [Main]; it panics on an empty name, a nil fn or a name registered twice.
func Register(name string, fn func(args []string) int) {
	if name == "" || fn == nil {
		panic("testutil: Register needs a name and a function")
	}
	helpersMu.Lock()
	defer helpersMu.Unlock()
	if _, dup := helpers[name]; dup {
		panic(fmt.Sprintf("testutil: helper %q registered twice", name))
	}
	helpers[name] = &helper{fn: fn}
}

// MainHelpers runs the helper named by [EnvHelper], if the variable is
// set, and exits with its code; otherwise it returns. It unsets the
// variable first, so the helper's own children run tests or helpers of
// their own choosing. An unknown name exits with code 2. [Main] calls it;
// a TestMain that does not use Main calls it first.
func MainHelpers() {
	name, ok := os.LookupEnv(EnvHelper)
	if !ok {
		return
	}
	os.Unsetenv(EnvHelper)
	helpersMu.Lock()
	h := helpers[name]
	helpersMu.Unlock()
	if h == nil {
		fmt.Fprintf(os.Stderr, "testutil: unknown helper %q; registered: %s\n", name, strings.Join(helperNames(), ", "))
		os.Exit(2)
	}
	os.Exit(h.fn(os.Args[1:]))
}

// HelperEnv returns the "NAME=value" environment entry that makes a copy
// of the test binary ([Executable]) run the helper name, and records the
// helper as used. It panics if name is not registered.
func HelperEnv(name string) string {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	h := helpers[name]
	if h == nil {
		panic(fmt.Sprintf("testutil: helper %q is not registered", name))
	}
	h.used = true
	return EnvHelper + "=" + name
}

// HelperCommand returns a command that runs the helper name with args in a
// copy of the test binary: path [Executable], arguments args, environment
// os.Environ() plus [HelperEnv](name). The process is killed when the test
// ends.
func HelperCommand(tb testing.TB, name string, args ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.CommandContext(tb.Context(), Executable(), args...)
	cmd.Env = append(withoutEnv(os.Environ(), EnvHelper), HelperEnv(name))
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

var executable = sync.OnceValue(func() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return os.Args[0]
})

// Executable returns the absolute path of the running test binary.
func Executable() string { return executable() }

func helperNames() []string {
	names := make([]string, 0, len(helpers))
	for n := range helpers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Main is the body of a TestMain: it runs a requested helper
// ([MainHelpers]), then the tests, and exits. After a full, passing run in
// the parent process it also fails (exit 1) when a registered helper was
// never used or when descriptors opened during the run are still open.
func Main(m *testing.M) {
	MainHelpers()
	warmUp()
	before, fdErr := openFDs()
	code := m.Run()
	if code == 0 && !InSubprocess() && fullRun() {
		if unused := unusedHelpers(); len(unused) > 0 {
			fmt.Fprintf(os.Stderr, "testutil: registered helpers never used: %s\n", strings.Join(unused, ", "))
			code = 1
		}
		if fdErr == nil {
			if leaked := settleFDs(before); len(leaked) > 0 {
				fmt.Fprintf(os.Stderr, "testutil: %d file descriptors leaked by the tests:\n\t%s\n", len(leaked), strings.Join(leaked, "\n\t"))
				code = 1
			}
		}
	}
	os.Exit(code)
}

// unusedHelpers returns the registered helpers that HelperEnv never
// named.
func unusedHelpers() []string {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	var unused []string
	for _, n := range helperNames() {
		if !helpers[n].used {
			unused = append(unused, n)
		}
	}
	return unused
}

// fullRun reports whether no flag limited the set of tests run.
func fullRun() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list", "test.fuzz"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	if f := flag.Lookup("test.short"); f != nil && f.Value.String() == "true" {
		return false
	}
	return true
}
