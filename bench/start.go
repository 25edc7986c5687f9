//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// moduleRoot finds the directory of sandbox-exec's go.mod, from the
// working directory upwards ("" if not found).
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/seed-025014a4/sandbox-exec\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// buildSandboxExec builds ./cmd/sandbox-exec into dir, without cgo: a
// static binary skips the dynamic loader and libc's start in each of the
// three process images a start runs (the command, the confined host, the
// init stage), 3-4 ms of a 13-19 ms start on the project's machines.
func buildSandboxExec(root, dir string) (string, error) {
	if root == "" {
		return "", errors.New("not run from the sandbox-exec module (give -sandbox-exec PATH)")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command to build cmd/sandbox-exec (give -sandbox-exec PATH): %w", err)
	}
	bin := filepath.Join(dir, "sandbox-exec")
	cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/sandbox-exec")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sandbox-exec: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// timeRun runs argv to its end and returns the wall time in ms.
func timeRun(argv []string, dir string) (float64, []byte, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	el := time.Since(t0)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, lastLine(stderr.String()))
	}
	return float64(el.Nanoseconds()) / 1e6, stdout.Bytes(), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// startSection times /bin/true natively, under sandbox-exec, under
// bubblewrap and through the launcher library in this process.
func (b *bench) startSection() {
	truePath := "/bin/true"
	type starter struct {
		cell *StartCell
		run  func() (float64, error)
	}
	var ss []*starter
	add := func(name string, argv []string, reason string) {
		c := &StartCell{Name: name, Command: argv, Status: "ok"}
		if reason != "" {
			c.Status, c.Reason = "skipped", reason
			b.skip("start: "+name, reason)
		}
		s := &starter{cell: c}
		s.run = func() (float64, error) {
			ms, _, err := timeRun(argv, b.dir)
			return ms, err
		}
		ss = append(ss, s)
	}
	add("native /bin/true", []string{truePath}, "")
	// A Go binary of the bench's size that only execs: the floor any
	// launcher written in Go (sandbox-exec included) starts from.
	add("Go binary that execs /bin/true (floor of a Go launcher)", []string{b.exe, workerArg, "exec", truePath}, "")
	if b.sandboxExec != "" {
		add("sandbox-exec -- /bin/true", []string{b.sandboxExec, "--", truePath}, "")
	} else {
		add("sandbox-exec -- /bin/true", nil, b.sandboxExecErr)
	}
	if p := b.report.Machine.Features.Bwrap; p != "" {
		add("bwrap --ro-bind / / /bin/true", []string{p, "--ro-bind", "/", "/", truePath}, "")
	} else {
		add("bwrap --ro-bind / / /bin/true", nil, "bwrap is missing (scripts/setup installs bubblewrap)")
	}
	// The library, from this (warm) process: the cost a host application
	// pays per worker, without the exec of sandbox-exec itself.
	def, err := policy.Default(nil)
	lib := &starter{cell: &StartCell{Name: "launcher.Command(default policy, /bin/true).Run() in-process", Command: []string{truePath}, Status: "ok"}}
	if err != nil {
		lib.cell.Status, lib.cell.Reason = "failed", err.Error()
	}
	lib.run = func() (float64, error) {
		t0 := time.Now()
		cmd := launcher.Command(def, truePath)
		cmd.Dir = b.dir
		err := cmd.Run()
		return float64(time.Since(t0).Nanoseconds()) / 1e6, err
	}
	ss = append(ss, lib)

	// One untimed run each (page cache, lazy binding), then interleaved.
	for i := -1; i < b.cfg.StartRuns; i++ {
		if i == 0 || i == b.cfg.StartRuns-1 {
			b.progress("start: run %d/%d", i+1, b.cfg.StartRuns)
		}
		for _, s := range ss {
			if s.cell.Status != "ok" {
				continue
			}
			ms, err := s.run()
			if err != nil {
				s.cell.Status, s.cell.Reason = "failed", err.Error()
				b.errorf("start %s: %v", s.cell.Name, err)
				continue
			}
			if i >= 0 {
				s.cell.Samples = append(s.cell.Samples, ms)
			}
		}
	}
	for _, s := range ss {
		s.cell.Ms = newStats(s.cell.Samples)
	}
	native := ss[0].cell
	for _, s := range ss {
		if s.cell.Status == "ok" && native.Status == "ok" && native.Ms.Median > 0 {
			s.cell.Ratio = s.cell.Ms.Median / native.Ms.Median
		}
		b.report.Start = append(b.report.Start, *s.cell)
	}
}
