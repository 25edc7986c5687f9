//go:build linux

package layers

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// sandboxExec is the sandbox-exec command built for this run (with the
// default CGO_ENABLED, which links cgo in through the net package).
var sandboxExec string

// envBin names a prebuilt sandbox-exec to test instead, for running this
// test binary where go cannot build (as another user, for instance).
const envBin = "SANDBOX_EXEC_LAYERS_BIN"

func TestMain(m *testing.M) {
	launcher.Init()
	testutil.Register("probe", runProbe)
	testutil.MainHelpers()
	if bin := os.Getenv(envBin); bin != "" {
		sandboxExec = bin
	} else if !testutil.InSubprocess() {
		// Next to the test binary, in the directory go test removes.
		sandboxExec = filepath.Join(filepath.Dir(testutil.Executable()), "sandbox-exec")
		if err := build(sandboxExec, nil); err != nil {
			fmt.Fprintf(os.Stderr, "build sandbox-exec: %v\n", err)
			os.Exit(1)
		}
	}
	testutil.Main(m)
}

func build(out string, env []string) error {
	return testutil.BuildCommand(out, env...)
}
