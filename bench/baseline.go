//go:build linux

package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// baselineSource is the C program of the old designs (variants 5 and 6).
// It is a baseline for the benchmark, not part of sandbox-exec.
//
//go:embed baseline/baseline.c
var baselineSource []byte

// errNoCC means there is no C compiler: the C variants are skipped.
var errNoCC = errors.New("no C compiler")

// buildBaseline compiles baseline.c with the system C compiler (CC, else
// cc) into dir and returns the binary's path.
func buildBaseline(dir string) (bin, cc string, err error) {
	cc = os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	ccPath, err := exec.LookPath(cc)
	if err != nil {
		return "", "", fmt.Errorf("no C compiler (%s; scripts/setup installs gcc): %w", cc, errNoCC)
	}
	src := filepath.Join(dir, "baseline.c")
	if err := os.WriteFile(src, baselineSource, 0o600); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "baseline")
	out, err := exec.Command(ccPath, "-O2", "-Wall", "-o", bin, src).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("%s baseline.c: %v: %s", cc, err, strings.TrimSpace(string(out)))
	}
	return bin, ccPath, nil
}

// baselineArgs are the C helper's arguments for one cell.
func (b *bench) baselineArgs(mode string, o op, placement string) []string {
	wcpu, bcpu := -1, -1
	switch placement {
	case "same-cpu":
		wcpu, bcpu = b.workerCPU, b.workerCPU
	case "different-cpus":
		wcpu, bcpu = b.workerCPU, b.otherCPU
	}
	return []string{mode, o.arg(), b.file, strconv.Itoa(wcpu), strconv.Itoa(bcpu),
		strconv.FormatInt(b.cfg.BatchNs, 10), strconv.Itoa(b.cfg.Batches)}
}

// runBaseline runs the C helper for one cell.
func (b *bench) runBaseline(mode string, o op, placement string) (latencyResult, error) {
	cmd := exec.Command(b.baseline, b.baselineArgs(mode, o, placement)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return latencyResult{}, fmt.Errorf("baseline %s %s: %v: %s", mode, o.arg(), err, strings.TrimSpace(stderr.String()))
	}
	return parseLatency(out)
}
