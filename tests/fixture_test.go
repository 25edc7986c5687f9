//go:build linux

package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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
	T := t.TempDir()
	// t.TempDir's parents are 0700 on some systems; tests that drop
	// privileges need to traverse them.
	for d := T; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	mk := func(p string, mode os.FileMode, content string) {
		full := filepath.Join(T, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if content == "/" {
			if err := os.MkdirAll(full, mode); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("ro/f", 0o644, "RO")
	mk("ro/d", 0o755, "/")
	mk("ro/d/g", 0o644, "G")
	mk("ro/bin/ok", 0o755, "#!/bin/sh\necho ok\n")
	mk("rw", 0o777, "/")
	mk("out/secret", 0o644, "SECRET-OUT")
	return &fixture{T: T}
}

// p0 is policy P0 of security.md, plus what the Go test binary needs to
// start (its own file, the loader) and the helper's environment variable.
func (f *fixture) p0(extra string) string {
	return `version 1
allow read ` + f.T + `/ro/**
allow read,write,create ` + f.T + `/rw/**
allow read,write /dev/null
allow read /etc/ld.so.cache /lib/** /lib64/** /usr/lib/** /usr/lib64/**
allow exec ` + f.T + `/ro/bin/*
allow read,exec ` + testutil.Executable() + `
env pass ` + testutil.EnvHelper + `
` + extra
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
	eventsCh := make(chan launcher.Event, 4096)
	cmd.Audit = func(e launcher.Event) {
		select {
		case eventsCh <- e:
		default:
		}
	}
	res.err = cmd.Run()
	close(eventsCh)
	for e := range eventsCh {
		res.events = append(res.events, e)
	}
	res.stderr = stderr.String()
	out := strings.TrimRight(stdout.String(), "\n")
	if out != "" {
		res.lines = strings.Split(out, "\n")
	}
	return res
}

// ops joins operations with the ";" separator of the ops helper.
func ops(list ...[]string) []string {
	var out []string
	for i, o := range list {
		if i > 0 {
			out = append(out, ";")
		}
		out = append(out, o...)
	}
	return out
}

func op(words ...string) []string { return words }
