//go:build linux

package tests

import (
	"fmt"
	"os"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// sandboxExec is the path of the sandbox-exec command built for this run.
var sandboxExec string

// envBin names a prebuilt sandbox-exec to test instead of building one:
// the unprivileged run (TestUnprivileged) gets the root run's build, as it
// has no Go build cache it could write to.
const envBin = "SANDBOX_EXEC_TESTS_BIN"

func TestMain(m *testing.M) {
	launcher.Init()
	testutil.MainHelpers()
	var err error
	if sandboxExec, err = testutil.CommandFromEnv(envBin, "sandbox-exec"); err != nil {
		fmt.Fprintf(os.Stderr, "build sandbox-exec: %v\n", err)
		os.Exit(1)
	}
	testutil.Main(m)
}

// TestUnprivileged runs the selected tests of this package again as an
// unprivileged user (uid and gid 65534, dropped by the test itself), so
// that a root CI run also covers a host without capabilities: user
// namespaces made by an unprivileged host, the broker checking access as a
// user that owns few files, Landlock without CAP_SYS_ADMIN. Run one test
// both ways with go test -run 'TestX|TestUnprivileged'.
func TestUnprivileged(t *testing.T) {
	testutil.RerunUnprivileged(t, map[string]string{envBin: sandboxExec})
}
