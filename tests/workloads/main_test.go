//go:build linux

package workloads

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// sandboxExec is the path of the sandbox-exec command built for this run.
var sandboxExec string

func TestMain(m *testing.M) {
	launcher.Init()
	testutil.MainHelpers()
	// Next to the test binary, in the directory "go test" removes after
	// the run.
	sandboxExec = filepath.Join(filepath.Dir(testutil.Executable()), "sandbox-exec")
	if err := testutil.BuildCommand(sandboxExec); err != nil {
		fmt.Fprintf(os.Stderr, "build sandbox-exec: %v\n", err)
		os.Exit(1)
	}
	testutil.Main(m)
}
