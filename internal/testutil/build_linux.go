//go:build linux

package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
)

// CommandPackage is the import path of the sandbox-exec command.
const CommandPackage = "github.com/seed-025014a4/sandbox-exec/cmd/sandbox-exec"

// BuildCommand builds the sandbox-exec command into out with "go build",
// with env added to the environment (CGO_ENABLED=0, say). Build output goes
// to stderr. End-to-end test packages call it from TestMain, with out next
// to the test binary, in the directory "go test" removes after the run.
func BuildCommand(out string, env ...string) error {
	cmd := exec.Command("go", "build", "-o", out, CommandPackage)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// CommandFromEnv returns the prebuilt command named by the environment
// variable env when it is set (an unprivileged rerun, which has no Go
// build cache, gets the root run's build this way), else builds the
// command with [BuildCommand] as name next to the test binary, in the
// directory "go test" removes after the run.
func CommandFromEnv(env, name string, buildEnv ...string) (string, error) {
	if bin := os.Getenv(env); bin != "" {
		return bin, nil
	}
	out := filepath.Join(filepath.Dir(Executable()), name)
	return out, BuildCommand(out, buildEnv...)
}
