//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// variant is one way to make the measured calls.
type variant struct {
	name    string
	label   string
	harness string // "go": the bench binary's worker; "c": baseline.c
	mode    string // worker mode (go) or baseline mode (c)
	broker  bool   // has a broker or tracer that placements pin
}

// variants, in table order.
var variants = []variant{
	{name: "native", label: "1 native", harness: "go", mode: "native"},
	{name: "landlock", label: "2 Landlock only", harness: "go", mode: "landlock"},
	{name: "seccomp", label: "3 seccomp filter, allow all", harness: "go", mode: "seccomp"},
	{name: "broker", label: "4 **sandbox-exec broker** (user notif + ADDFD)", harness: "go", mode: "native", broker: true},
	{name: "native-c", label: "1c native, C harness (reference for 4c, 5, 6)", harness: "c", mode: "native"},
	{name: "broker-c", label: "4c **sandbox-exec broker**, C worker", harness: "c", mode: "native", broker: true},
	{name: "sigsys", label: "5 old design: SIGSYS + socket + SCM_RIGHTS (C baseline)", harness: "c", mode: "sigsys", broker: true},
	{name: "ptrace", label: "6 ptrace, SECCOMP_RET_TRACE, tracer continues (C)", harness: "c", mode: "ptrace", broker: true},
}

func variantByName(name string) (variant, bool) {
	for _, v := range variants {
		if v.name == name {
			return v, true
		}
	}
	return variant{}, false
}

// nativeOf is the reference of a variant's harness.
func nativeOf(v variant) string {
	if v.harness == "c" {
		return "native-c"
	}
	return "native"
}

// cpusFor returns the worker's and the broker's CPUs for a placement.
func (b *bench) cpusFor(placement string) (worker, broker []int) {
	switch placement {
	case "same-cpu":
		return []int{b.workerCPU}, []int{b.workerCPU}
	case "different-cpus":
		return []int{b.workerCPU}, []int{b.otherCPU}
	}
	return b.allCPUs, b.allCPUs
}

// latencyResult is the output of one worker process.
type latencyResult struct {
	calls   int
	samples []float64
	// For brokered runs: the broker's own view (launcher.Cmd.Metrics),
	// averaged over every request of the worker process.
	service     float64 // ns from RECV to the reply, per request
	matcher     float64 // ns in Matcher.Decide, per decision
	requests    uint64
	haveMetrics bool
}

// withMetrics adds the broker's figures for the measured syscall.
func (lr latencyResult) withMetrics(m launcher.Metrics, o op) latencyResult {
	name := "openat"
	if o == opStat {
		name = "newfstatat"
	}
	for _, sc := range m.Syscalls {
		if sc.Name == name && sc.Count > 0 {
			lr.service = float64(sc.Average.Nanoseconds())
			lr.requests = sc.Count
			lr.haveMetrics = true
		}
	}
	if m.MatcherRuns > 0 {
		lr.matcher = float64(m.MatcherTime.Nanoseconds()) / float64(m.MatcherRuns)
	}
	return lr
}

func parseLatency(out []byte) (latencyResult, error) {
	var r latencyResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch k {
		case "calls":
			r.calls, _ = strconv.Atoi(v)
		case "ns":
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return r, fmt.Errorf("bad sample %q", v)
			}
			r.samples = append(r.samples, x)
		}
	}
	if len(r.samples) == 0 {
		return r, fmt.Errorf("no samples in worker output %q", out)
	}
	return r, nil
}

// runLatency runs one worker process for v, o and placement.
func (b *bench) runLatency(v variant, o op, placement string) (latencyResult, error) {
	wcpus, bcpus := b.cpusFor(placement)
	if v.harness == "c" && v.name != "broker-c" {
		return b.runBaseline(v.mode, o, placement)
	}
	args := []string{workerArg, "lat", v.mode, o.arg(), b.file, cpuListString(wcpus), strconv.FormatInt(b.cfg.BatchNs, 10), strconv.Itoa(b.cfg.Batches)}
	if !v.broker {
		out, err := b.runGoWorker(args, nil)
		if err != nil {
			return latencyResult{}, err
		}
		return parseLatency(out)
	}
	// The broker runs in this process: pin every thread of it (the
	// serving threads that launcher starts inherit the affinity), start
	// the worker under the bench policy, and unpin afterwards.
	if err := pinProcess(0, bcpus); err != nil {
		return latencyResult{}, fmt.Errorf("pin broker: %w", err)
	}
	defer pinProcess(0, b.allCPUs)
	if v.harness == "c" {
		// The C harness's native loop, as an unmodified program under
		// the launcher's filter: the same worker code as variant 5.
		args = b.baselineArgs("native", o, placement)
		bo := &brokerOpts{threads: b.brokerThreads}
		out, err := b.runWorker(b.baseline, args, bo)
		if err != nil {
			return latencyResult{}, err
		}
		lr, err := parseLatency(out)
		return lr.withMetrics(bo.metrics, o), err
	}
	bo := &brokerOpts{threads: b.brokerThreads}
	out, err := b.runGoWorker(args, bo)
	if err != nil {
		return latencyResult{}, err
	}
	lr, err := parseLatency(out)
	return lr.withMetrics(bo.metrics, o), err
}

// brokerOpts ask runGoWorker to start the worker through launcher.
type brokerOpts struct {
	threads int
	// afterStart, if set, runs once the worker has exec'd (profiling).
	afterStart func(pid int)
	// metrics is set after the worker exited.
	metrics launcher.Metrics
}

// runWorker runs a C baseline worker through launcher and returns its
// standard output.
func (b *bench) runWorker(bin string, args []string, bo *brokerOpts) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := launcher.Command(b.workerPolicy, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.BrokerThreads = bo.threads
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	if bo.afterStart != nil {
		bo.afterStart(cmd.Process.Pid)
	}
	err := cmd.Wait()
	bo.metrics = cmd.Metrics()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// runGoWorker runs the bench binary as a worker (through launcher when bo
// is not nil) and returns what it wrote to fd 3.
func (b *bench) runGoWorker(args []string, bo *brokerOpts) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var stderr bytes.Buffer
	var wait func() error
	if bo == nil {
		cmd := exec.Command(b.exe, args...)
		cmd.ExtraFiles = []*os.File{w}
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			w.Close()
			return nil, err
		}
		wait = cmd.Wait
	} else {
		cmd := launcher.Command(b.workerPolicy, b.exe, args...)
		cmd.ExtraFiles = []*os.File{w}
		cmd.Stderr = &stderr
		cmd.BrokerThreads = bo.threads
		if err := cmd.Start(); err != nil {
			w.Close()
			return nil, fmt.Errorf("launcher: %w", err)
		}
		if bo.afterStart != nil {
			bo.afterStart(cmd.Process.Pid)
		}
		wait = func() error {
			err := cmd.Wait()
			bo.metrics = cmd.Metrics()
			return err
		}
	}
	w.Close()
	out, rerr := io.ReadAll(r)
	werr := wait()
	if werr != nil {
		return out, fmt.Errorf("worker %s: %v: %s", strings.Join(args[1:3], " "), werr, strings.TrimSpace(stderr.String()))
	}
	if rerr != nil {
		return out, rerr
	}
	return out, nil
}

// latencySection measures every variant × op × placement, round-robin so
// that drift of the machine spreads over all cells alike.
func (b *bench) latencySection() {
	type key struct {
		v         variant
		o         op
		placement string
	}
	var keys []key
	for _, v := range variants {
		if !b.wantVariant(v.name) {
			continue
		}
		if v.harness == "c" && b.baseline == "" {
			continue
		}
		if v.name == "broker-c" && !b.report.Machine.Features.AddfdSend {
			continue
		}
		if v.broker && v.harness == "go" && (b.workerPolicy == nil || !b.report.Machine.Features.AddfdSend) {
			continue
		}
		for _, o := range []op{opOpen, opStat} {
			if b.opts.Ops != nil && !slices.Contains(b.opts.Ops, o.arg()) {
				continue
			}
			for _, p := range placements {
				if p == "different-cpus" && b.otherCPU == b.workerCPU {
					continue
				}
				if b.opts.Placements != nil && !slices.Contains(b.opts.Placements, p) {
					continue
				}
				keys = append(keys, key{v, o, p})
			}
		}
	}
	res := map[key]*LatencyCell{}
	service, matcher := map[key][]float64{}, map[key][]float64{}
	for _, k := range keys {
		res[k] = &LatencyCell{Variant: k.v.name, Label: k.v.label, Op: k.o.String(), Placement: k.placement, Harness: k.v.harness, Status: "ok"}
	}
	for round := range b.cfg.Rounds {
		order := keys
		if round%2 == 1 {
			order = reversed(keys)
		}
		for _, k := range order {
			c := res[k]
			if c.Status != "ok" {
				continue
			}
			b.progress("latency round %d/%d: %s, %s, %s", round+1, b.cfg.Rounds, k.v.name, k.o, k.placement)
			lr, err := b.runLatency(k.v, k.o, k.placement)
			if err != nil {
				c.Status, c.Reason = "failed", err.Error()
				b.errorf("latency %s %s %s: %v", k.v.name, k.o, k.placement, err)
				continue
			}
			c.Calls = lr.calls
			c.Samples = append(c.Samples, lr.samples...)
			if lr.haveMetrics {
				service[k] = append(service[k], lr.service)
				matcher[k] = append(matcher[k], lr.matcher)
			}
		}
	}
	for _, k := range keys {
		c := res[k]
		c.NsPerCall = newStats(c.Samples)
		if len(service[k]) > 0 {
			c.Broker = &BrokerView{ServiceNs: newStats(service[k]), MatcherNs: newStats(matcher[k])}
			if c.NsPerCall.Median > 0 {
				c.Broker.ServiceShare = c.Broker.ServiceNs.Median / c.NsPerCall.Median
			}
		}
	}
	for _, k := range keys {
		c := res[k]
		if c.Status != "ok" {
			continue
		}
		if n := res[key{mustVariant(nativeOf(k.v)), k.o, k.placement}]; n != nil && n.Status == "ok" && n.NsPerCall.Median > 0 {
			c.Ratio = c.NsPerCall.Median / n.NsPerCall.Median
		}
		b.report.Latency = append(b.report.Latency, *c)
	}
	for _, k := range keys {
		if c := res[k]; c.Status != "ok" {
			b.report.Latency = append(b.report.Latency, *c)
		}
	}
}

func mustVariant(name string) variant {
	v, ok := variantByName(name)
	if !ok {
		panic("no variant " + name)
	}
	return v
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}
