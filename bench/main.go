//go:build linux

// Command bench measures sandbox-exec against the designs it replaces, in
// one run on one machine, and prints a Markdown table (JSON with -o).
//
//	go run ./bench            full mode: the numbers (about two minutes)
//	go run ./bench -short     a few seconds: a smoke test for CI
//	go run ./bench -o FILE    also write the JSON report
//
// Every variant is reported as a ratio to native measured in the same
// run; see bench/README.md for what each variant is and how to read the
// figures. Workers are re-execs of this binary (a hidden subcommand) that
// time their calls themselves, so process start is not in the per-call
// figures. The C baseline of the old design (bench/baseline/baseline.c) is
// compiled with the system C compiler at run time; it is not part of
// sandbox-exec.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

func main() {
	launcher.Init() // a worker under launcher starts as an init stage
	if isWorker() {
		os.Exit(workerMain())
	}
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// Options select what a run measures.
type Options struct {
	Short         bool
	Out           string   // JSON file, "" for none
	Sections      []string // nil: all
	Variants      []string // nil: all latency variants
	Placements    []string // nil: all placements
	Ops           []string // nil: both ops ("open", "stat")
	Rounds        int      // 0: the mode's default
	Batches       int
	BatchMs       float64
	BrokerThreads int    // latency cells; 0: the broker's default
	SandboxExec   string // prebuilt cmd/sandbox-exec; "" builds one
	CPUProfile    string
	NoNative      bool // skip the native references (profiling runs)
	Verbose       bool
	Keep          bool // keep the temporary directory
}

var allSections = []string{"latency", "throughput", "start", "handoff", "matcher", "workloads"}

func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	var sections, vars, places, ops string
	fs.BoolVar(&o.Short, "short", false, "a few seconds, for CI (figures are not meaningful)")
	fs.StringVar(&o.Out, "o", "", "write the JSON report to `FILE`")
	fs.StringVar(&sections, "only", "", "comma-separated `sections`: "+strings.Join(allSections, ","))
	fs.StringVar(&vars, "variants", "", "comma-separated latency `variants` (native is always measured): "+variantNames())
	fs.StringVar(&places, "placements", "", "comma-separated `placements`: "+strings.Join(placements, ","))
	fs.StringVar(&ops, "ops", "", "comma-separated `ops`: open,stat")
	fs.IntVar(&o.Rounds, "rounds", 0, "worker processes per cell (default 5, short 1)")
	fs.IntVar(&o.Batches, "batches", 0, "timed batches per worker process (default 4, short 3)")
	fs.Float64Var(&o.BatchMs, "batch-ms", 0, "length of one batch in `ms` (default 25, short 2)")
	fs.IntVar(&o.BrokerThreads, "broker-threads", 0, "serving threads of the broker in latency cells (0: the broker's default)")
	fs.StringVar(&o.SandboxExec, "sandbox-exec", "", "use this sandbox-exec binary instead of building ./cmd/sandbox-exec")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the host (broker included) to `FILE`")
	fs.BoolVar(&o.NoNative, "no-native", false, "do not measure the native references (for profiling runs; no ratios)")
	fs.BoolVar(&o.Verbose, "v", false, "progress on stderr")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	isOp := func(s string) bool { _, err := parseOp(s); return err == nil }
	isVariant := func(s string) bool { _, ok := variantByName(s); return ok }
	for _, l := range []struct {
		dst         *[]string
		kind, value string
		ok          func(string) bool
		want        string
	}{
		{&o.Sections, "section", sections, func(s string) bool { return slices.Contains(allSections, s) }, strings.Join(allSections, ",")},
		{&o.Variants, "variant", vars, isVariant, variantNames()},
		{&o.Placements, "placement", places, func(s string) bool { return slices.Contains(placements, s) }, strings.Join(placements, ",")},
		{&o.Ops, "op", ops, isOp, "open or stat"},
	} {
		if l.value == "" {
			continue
		}
		*l.dst = strings.Split(l.value, ",")
		for _, v := range *l.dst {
			if !l.ok(v) {
				fmt.Fprintf(stderr, "bench: unknown %s %q (want %s)\n", l.kind, v, l.want)
				return 2
			}
		}
	}
	o.Verbose = o.Verbose || !o.Short
	rep, err := Run(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	writeMarkdown(stdout, rep)
	if len(rep.Errors) > 0 {
		return 1
	}
	return 0
}

func variantNames() string {
	var s []string
	for _, v := range variants {
		s = append(s, v.name)
	}
	return strings.Join(s, ",")
}

// bench is the state of one run.
type bench struct {
	opts   Options
	cfg    Config
	short  bool
	log    io.Writer
	report *Report

	exe  string // this binary: the Go workers are re-execs of it
	root string // the module's directory, "" if unknown
	dir  string // temporary directory
	file string // the file every variant opens and stats

	baseline       string // compiled baseline.c, "" if unavailable
	sandboxExec    string // built cmd/sandbox-exec, "" if unavailable
	sandboxExecErr string
	workerPolicy   *policy.Policy // variant 4's policy; nil if no broker
	brokerThreads  int

	allCPUs   []int
	workerCPU int
	otherCPU  int
}

// Run performs a benchmark run and returns its report; with o.Out it
// also writes the JSON. Failures of single cells are in Report.Errors.
func Run(o Options, log io.Writer) (*Report, error) {
	start := time.Now()
	b := &bench{opts: o, short: o.Short, log: log, brokerThreads: o.BrokerThreads}
	b.cfg = Config{Rounds: 5, Batches: 4, BatchNs: 25e6, TputNs: 400e6, StartRuns: 40, WorkRuns: 15, MatcherRule: 1000}
	mode := "full"
	if o.Short {
		mode = "short"
		b.cfg = Config{Rounds: 1, Batches: 3, BatchNs: 2e6, TputNs: 30e6, StartRuns: 3, WorkRuns: 1, MatcherRule: 1000}
	}
	if o.Rounds > 0 {
		b.cfg.Rounds = o.Rounds
	}
	if o.Batches > 0 {
		b.cfg.Batches = o.Batches
	}
	if o.BatchMs > 0 {
		b.cfg.BatchNs = int64(o.BatchMs * 1e6)
	}
	b.report = &Report{Schema: 1, Mode: mode, Date: start.UTC().Format(time.RFC3339), Config: b.cfg}

	if o.CPUProfile != "" {
		f, err := os.OpenFile(o.CPUProfile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	if err := b.setup(); err != nil {
		return nil, err
	}
	if !o.Keep {
		defer os.RemoveAll(b.dir)
	} else {
		fmt.Fprintf(log, "bench: keeping %s\n", b.dir)
	}
	b.describeMachine()
	b.describeSource()
	if b.want("latency") {
		b.latencySection()
	}
	if b.want("throughput") {
		b.throughputSection()
	}
	if b.want("start") {
		b.startSection()
	}
	if b.want("handoff") {
		b.handoffSection()
	}
	if b.want("matcher") {
		b.matcherSection()
	}
	if b.want("workloads") {
		b.workloadSection()
	}
	b.evaluateTargets()
	b.report.ElapsedS = time.Since(start).Seconds()
	if o.Out != "" {
		data, err := json.MarshalIndent(b.report, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(o.Out, append(data, '\n'), 0o644); err != nil {
			return nil, err
		}
	}
	return b.report, nil
}

// setup creates the temporary tree, the measured file, the baseline and
// sandbox-exec binaries and the worker policy.
func (b *bench) setup() error {
	var err error
	if b.exe, err = os.Executable(); err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	b.root = moduleRoot()
	if b.dir, err = os.MkdirTemp("", "sandbox-exec-bench-"); err != nil {
		return err
	}
	// A small file three components below the temporary directory: the
	// broker resolves every component, so depth is part of the cost.
	data := filepath.Join(b.dir, "data", "fonts")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	b.file = filepath.Join(data, "file.conf")
	if err := os.WriteFile(b.file, []byte("bench\n"), 0o644); err != nil {
		return err
	}
	if b.allCPUs, err = allowedCPUs(); err != nil {
		return err
	}
	b.workerCPU = b.allCPUs[len(b.allCPUs)-1]
	b.otherCPU = b.allCPUs[0]
	if len(b.allCPUs) < 2 {
		b.skip("placement different-cpus", "only one CPU")
	}

	if b.want("latency") && (b.wantVariant("sigsys") || b.wantVariant("ptrace") || b.wantVariant("broker-c")) {
		bin, cc, err := buildBaseline(b.dir)
		switch {
		case errors.Is(err, errNoCC):
			b.skip("C variants (4c, 5, 6)", err.Error())
		case err != nil:
			b.errorf("C baseline: %v", err)
		default:
			b.baseline = bin
			b.report.Machine.Features.CC = cc
		}
	}
	if b.want("start") || b.want("workloads") {
		switch {
		case b.opts.SandboxExec != "":
			b.sandboxExec = b.opts.SandboxExec
		default:
			b.progress("building cmd/sandbox-exec")
			if bin, err := buildSandboxExec(b.root, b.dir); err != nil {
				b.sandboxExecErr = err.Error()
				b.skip("sandbox-exec binary", err.Error())
			} else {
				b.sandboxExec = bin
			}
		}
		if b.sandboxExec != "" {
			b.report.Machine.Cgo.SandboxExec = cgoSetting(b.sandboxExec)
		}
	}
	if b.workerPolicy, err = parseWorkerPolicy(b.exe, b.dir); err != nil {
		return err
	}
	return nil
}

func parseWorkerPolicy(exe, dir string) (*policy.Policy, error) {
	src := workerPolicySource(exe, dir)
	p, err := policy.Parse("bench-worker.policy", []byte(src), nil)
	if err != nil {
		return nil, fmt.Errorf("worker policy: %w\n%s", err, src)
	}
	return p, nil
}

// workerPolicySource is the policy of variant 4's workers: run this
// binary or the C helper in dir (with the loader and libraries), read the
// measured tree.
func workerPolicySource(exe, dir string) string {
	return fmt.Sprintf(`version 1
allow read,exec %s
allow read,exec /lib/*-linux-gnu*/ld-*.so* /usr/lib/*-linux-gnu*/ld-*.so* /lib64/ld-*.so* /usr/lib64/ld-*.so*
allow read /etc/ld.so.cache /lib/** /lib64/** /usr/lib/** /usr/lib64/**
allow read /sys/kernel/mm/transparent_hugepage/**
allow read,exec %s/**
`, quote(exe), quote(dir))
}

// quote quotes a path for the policy language (shell-like tokens).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

func (b *bench) want(section string) bool {
	return b.opts.Sections == nil || slices.Contains(b.opts.Sections, section)
}

// wantVariant reports whether variant name is measured; each harness's
// native is measured whenever a variant of that harness is.
func (b *bench) wantVariant(name string) bool {
	if b.opts.Variants == nil || slices.Contains(b.opts.Variants, name) {
		return true
	}
	if b.opts.NoNative {
		return false
	}
	for _, v := range b.opts.Variants {
		if vv, ok := variantByName(v); ok && nativeOf(vv) == name {
			return true
		}
	}
	return false
}

func (b *bench) progress(format string, args ...any) {
	if b.opts.Verbose {
		fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
	}
}

func (b *bench) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.report.Errors = append(b.report.Errors, msg)
	fmt.Fprintf(b.log, "bench: error: %s\n", msg)
}

func (b *bench) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.report.Warnings = append(b.report.Warnings, msg)
	fmt.Fprintf(b.log, "bench: warning: %s\n", msg)
}

func (b *bench) skip(what, reason string) {
	b.report.Skipped = append(b.report.Skipped, Skip{What: what, Reason: reason})
	b.progress("skipped %s: %s", what, reason)
}
