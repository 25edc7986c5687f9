//go:build linux

package tests

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// fixture is the tree of security.md section 2: ro/ (f = "RO", d/,
// executable bin/ok), empty rw/, and out/secret = "SECRET-OUT" under no
// rule.
type fixture struct {
	T string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{T: testutil.NewFixture(t, testutil.FixtureOptions{
		Traversable: true,
		Entries: []testutil.FixtureEntry{
			testutil.FixtureDir("ro/d", 0o755),
			{Path: "ro/d/g", Mode: 0o644, Content: "G"},
			{Path: "ro/bin/ok", Mode: 0o755, Content: "#!/bin/sh\necho ok\n"},
		},
	})}
}

// p0 is policy P0 of security.md, plus what the Go test binary needs to
// start (its own file, the loader) and the helper's environment variable.
func (f *fixture) p0(extra string) string {
	return testutil.PolicyP0(f.T, testutil.Executable()) + extra
}

func mustParse(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.policy", []byte(text), nil)
	if err != nil {
		t.Fatalf("policy: %v\n%s", err, text)
	}
	return p
}

// opsResult is what a run of the ops helper printed, one line per op.
type opsResult struct {
	lines  []string
	stderr string
	events []launcher.Event
	err    error
}

// runOps runs the ops helper under policy text; ops are separated by ";".
func runOpsUnder(t *testing.T, text string, dir string, ops ...string) opsResult {
	t.Helper()
	return runOpsWith(t, text, dir, nil, ops...)
}

// runOpsUnderGrants is runOpsUnder with per-worker grants, from "/".
func runOpsUnderGrants(t *testing.T, text string, grants []policy.Grant, ops ...string) opsResult {
	t.Helper()
	return runOpsWith(t, text, "/", grants, ops...)
}

func runOpsWith(t *testing.T, text, dir string, grants []policy.Grant, ops ...string) opsResult {
	t.Helper()
	p := mustParse(t, text)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := launcher.CommandContext(ctx, p, testutil.Executable(), ops...)
	cmd.Env = append(os.Environ(), testutil.HelperEnv("ops"))
	cmd.Dir = dir
	cmd.Grants = grants
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var res opsResult
	events := testutil.NewSink[launcher.Event](4096)
	cmd.Audit = events.Add
	res.err = cmd.Run()
	res.events = events.Drain()
	res.stderr = stderr.String()
	res.lines = testutil.Lines(stdout.String())
	return res
}

// ops joins operations with the ";" separator of the ops helper.
func ops(list ...[]string) []string { return testutil.JoinOps(list...) }

func op(words ...string) []string { return words }
