//go:build linux

package layers

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	// A subprocess (testutil.RunInSubprocess) runs no command: it builds
	// none, unless one is prebuilt.
	if !testutil.InSubprocess() || os.Getenv(envBin) != "" {
		var err error
		if sandboxExec, err = testutil.CommandFromEnv(envBin, "sandbox-exec"); err != nil {
			fmt.Fprintf(os.Stderr, "build sandbox-exec: %v\n", err)
			os.Exit(1)
		}
	}
	testutil.Main(m)
}

func build(out string, env []string) error {
	return testutil.BuildCommand(out, env...)
}

// envNoCgoBin names a prebuilt sandbox-exec built with CGO_ENABLED=0, for
// the unprivileged run, which cannot build.
const envNoCgoBin = "SANDBOX_EXEC_LAYERS_NOCGO_BIN"

// nocgoBinary returns sandbox-exec built without cgo, building it once.
var nocgoBinary = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv(envNoCgoBin); bin != "" {
		return bin, nil
	}
	out := filepath.Join(filepath.Dir(sandboxExec), "sandbox-exec-nocgo")
	return out, build(out, []string{"CGO_ENABLED=0"})
})

// TestUnprivileged runs the selected tests of this package again as an
// unprivileged user (uid and gid 65534), with the sandbox-exec built here:
// every layer must work, or be reported as missing, for a host without
// capabilities too. Run one test both ways with go test -run
// 'TestX|TestUnprivileged'.
func TestUnprivileged(t *testing.T) {
	files := map[string]string{envBin: sandboxExec}
	if !testutil.InUnprivilegedRerun() && os.Geteuid() == 0 {
		nocgo, err := nocgoBinary()
		if err != nil {
			t.Fatal(err)
		}
		files[envNoCgoBin] = nocgo
	}
	testutil.RerunUnprivileged(t, files)
}
