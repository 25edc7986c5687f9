//go:build linux

package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Report is the JSON document of one run (-o FILE). Every ratio in it
// compares two figures measured in this run on this machine.
type Report struct {
	Schema     int           `json:"schema"`
	Mode       string        `json:"mode"` // "short" or "full"
	Date       string        `json:"date"` // RFC 3339
	Source     Source        `json:"source"`
	Machine    Machine       `json:"machine"`
	Config     Config        `json:"config"`
	Latency    []LatencyCell `json:"latency"`
	Throughput []TputCell    `json:"throughput"`
	Start      []StartCell   `json:"start"`
	// Handoff is Start to the worker's main, pooled, cold and bwrap;
	// HandoffPool counts the pooled starts that found a ready stage.
	Handoff     []HandoffCell  `json:"handoff,omitempty"`
	HandoffPool *int           `json:"handoff_pool_taken,omitempty"`
	Matcher     *MatcherResult `json:"matcher"`
	Workloads   []WorkloadCell `json:"workloads"`
	Targets     []Target       `json:"targets"`
	Skipped     []Skip         `json:"skipped,omitempty"`
	Warnings    []string       `json:"warnings,omitempty"`
	Errors      []string       `json:"errors,omitempty"`
	ElapsedS    float64        `json:"elapsed_s"`
}

// Source identifies the code that was measured.
type Source struct {
	Commit string `json:"commit,omitempty"` // git HEAD of the module
	// Dirty lists the product's paths that differ from HEAD (uncommitted
	// or untracked): the figures are of the working tree.
	Dirty []string `json:"dirty,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Kernel   string `json:"kernel"` // uname release
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"` // CPUs this process may use
	CPUModel string `json:"cpu_model"`
	Go       string `json:"go"`
	// Cgo says whether the bench binary (the Go workers, the in-process
	// launcher's init stages) and the sandbox-exec binary it ran were
	// linked with cgo: a dynamic binary starts ~1 ms slower per process
	// image here.
	Cgo      BuildCgo `json:"cgo"`
	Features Features `json:"features"`
	// Placement CPUs: the worker always runs on WorkerCPU when pinned; the
	// broker on WorkerCPU (same) or OtherCPU (different).
	WorkerCPU int `json:"worker_cpu"`
	OtherCPU  int `json:"other_cpu"`
	// CPUIdle is the cpuidle governor and its states, when visible: whether
	// a vCPU may halt decides the unpinned figures.
	CPUIdle string `json:"cpuidle,omitempty"`
}

// BuildCgo is the CGO_ENABLED setting of the binaries measured ("0",
// "1", or "" when unknown).
type BuildCgo struct {
	Bench       string `json:"bench"`
	SandboxExec string `json:"sandbox_exec,omitempty"`
}

// Features are the kernel features that decide the figures.
type Features struct {
	UserNotif  bool `json:"user_notif"`
	AddfdSend  bool `json:"addfd_send"`   // broker.New succeeded
	SyncWakeUp bool `json:"sync_wake_up"` // the kernel offers it
	// SyncWakeUpBroker: internal/sys.SetSyncWakeup, which the broker
	// calls, succeeds. False with SyncWakeUp true means the broker runs
	// without it although the kernel has it.
	SyncWakeUpBroker bool   `json:"sync_wake_up_broker"`
	WaitKillableRecv bool   `json:"wait_killable_recv"`
	LandlockABI      int    `json:"landlock_abi"`
	Bwrap            string `json:"bwrap,omitempty"` // path, or "" if missing
	CC               string `json:"cc,omitempty"`    // C compiler of the baseline
}

// Config records the knobs of the run.
type Config struct {
	Rounds      int   `json:"rounds"`  // worker processes per latency cell
	Batches     int   `json:"batches"` // timed batches per worker process
	BatchNs     int64 `json:"batch_ns"`
	TputNs      int64 `json:"throughput_ns"`
	StartRuns   int   `json:"start_runs"`
	WorkRuns    int   `json:"workload_runs"`
	MatcherRule int   `json:"matcher_rules"`
}

// Stats summarise the samples of one measurement.
type Stats struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// sorted returns a sorted copy of xs.
func sorted(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}

func newStats(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := sorted(xs)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{N: len(s), Min: s[0], Median: med, Max: s[len(s)-1]}
}

// LatencyCell is one variant × op × placement.
type LatencyCell struct {
	Variant   string    `json:"variant"` // see variants
	Label     string    `json:"label"`
	Op        string    `json:"op"`        // "openat+close" or "newfstatat"
	Placement string    `json:"placement"` // "same-cpu", "different-cpus", "unpinned"
	Harness   string    `json:"harness"`   // "go" or "c": whose native is the reference
	Calls     int       `json:"calls_per_batch"`
	Samples   []float64 `json:"samples_ns"` // per-call ns, one per batch
	NsPerCall Stats     `json:"ns_per_call"`
	// Ratio is this cell's median over the median of native in the same
	// harness, op and placement.
	Ratio float64 `json:"ratio_to_native"`
	// Broker is the broker's own account of the requests (variant 4).
	Broker *BrokerView `json:"broker,omitempty"`
	Status string      `json:"status"` // "ok", "skipped", "failed"
	Reason string      `json:"reason,omitempty"`
}

// BrokerView is what the broker's metrics say about a brokered cell: the
// time from RECV to the reply (the rest of the round trip is the kernel's
// notification path, wake-ups and scheduling).
type BrokerView struct {
	ServiceNs    Stats   `json:"service_ns"`    // per request, one sample per worker process
	MatcherNs    Stats   `json:"matcher_ns"`    // per Matcher.Decide
	ServiceShare float64 `json:"service_share"` // median service / median round trip
}

// TputCell is one throughput configuration (unpinned).
type TputCell struct {
	Variant       string    `json:"variant"` // "native" or "broker"
	WorkerThreads int       `json:"worker_threads"`
	BrokerThreads int       `json:"broker_threads"` // 0 for native
	Samples       []float64 `json:"samples_calls_per_s"`
	CallsPerS     Stats     `json:"calls_per_s"`
	RatioTo1x1    float64   `json:"ratio_to_1x1"` // median over the same variant's 1×1 median
	Status        string    `json:"status"`
	Reason        string    `json:"reason,omitempty"`
}

// StartCell is one way to start /bin/true.
type StartCell struct {
	Name    string    `json:"name"`
	Command []string  `json:"command"`
	Samples []float64 `json:"samples_ms"`
	Ms      Stats     `json:"ms"`
	Ratio   float64   `json:"ratio_to_native"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
}

// HandoffCell is one way to start a worker, timed from Start: until
// Start returned (StartMs) and until the worker's first output (MainMs).
type HandoffCell struct {
	Name    string      `json:"name"`
	StartMs []float64   `json:"start_samples_ms"`
	MainMs  []float64   `json:"main_samples_ms"`
	Start   Percentiles `json:"start_ms"`
	Main    Percentiles `json:"main_ms"`
	Status  string      `json:"status"`
	Reason  string      `json:"reason,omitempty"`
}

// MatcherResult is policy.Matcher.Decide on a generated policy.
type MatcherResult struct {
	Rules             int     `json:"rules"`
	Paths             int     `json:"paths"`
	NsPerDecision     Stats   `json:"ns_per_decision"`
	AllocsPerDecision float64 `json:"allocs_per_decision"`
	BytesPerDecision  float64 `json:"bytes_per_decision"`
}

// WorkloadCell is a real program, native and under sandbox-exec.
type WorkloadCell struct {
	Name       string    `json:"name"`
	Command    []string  `json:"command"`
	Policy     string    `json:"policy"` // file used
	Native     Stats     `json:"native_ms"`
	Sandboxed  Stats     `json:"sandboxed_ms"`
	NativeS    []float64 `json:"native_samples_ms"`
	SandboxedS []float64 `json:"sandboxed_samples_ms"`
	Ratio      float64   `json:"ratio_to_native"`
	// BrokerMetrics is what `sandbox-exec --metrics` printed for one more
	// (untimed) sandboxed run: requests per syscall and their latency.
	BrokerMetrics string `json:"broker_metrics,omitempty"`
	Status        string `json:"status"`
	Reason        string `json:"reason,omitempty"`
}

// Target is one goal of the benchmark issue with the figure of this run.
type Target struct {
	Name     string  `json:"name"`
	Goal     string  `json:"goal"`
	Measured float64 `json:"measured"` // NaN-free: 0 when not measured
	Text     string  `json:"text"`     // the measured figure, with context
	Verdict  string  `json:"verdict"`  // "met", "missed", "not measured"
}

// Skip records a section or cell that could not run, and why.
type Skip struct {
	What   string `json:"what"`
	Reason string `json:"reason"`
}

// placements, in table order.
var placements = []string{"same-cpu", "different-cpus", "unpinned"}

var placementTitle = map[string]string{
	"same-cpu":       "same CPU",
	"different-cpus": "different CPUs",
	"unpinned":       "unpinned",
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 100_000:
		return fmt.Sprintf("%.0f µs", ns/1000)
	case ns >= 10_000:
		return fmt.Sprintf("%.1f µs", ns/1000)
	default:
		return fmt.Sprintf("%.2f µs", ns/1000)
	}
}

func fmtRatio(r float64) string {
	if r == 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return "–"
	}
	if r >= 10 {
		return fmt.Sprintf("%.0f×", r)
	}
	return fmt.Sprintf("%.1f×", r)
}

// writeMarkdown prints the report as Markdown tables.
func writeMarkdown(w io.Writer, r *Report) {
	m := r.Machine
	fmt.Fprintf(w, "# sandbox-exec benchmark (%s mode)\n\n", r.Mode)
	fmt.Fprintf(w, "- date: %s; elapsed %.0f s\n", r.Date, r.ElapsedS)
	if r.Source.Commit != "" {
		dirty := ""
		if len(r.Source.Dirty) > 0 {
			dirty = fmt.Sprintf(" + working tree (%s)", strings.Join(r.Source.Dirty, ", "))
		}
		fmt.Fprintf(w, "- code: commit %.12s%s\n", r.Source.Commit, dirty)
	}
	fmt.Fprintf(w, "- kernel: %s (%s); %d CPUs: %s; %s\n", m.Kernel, m.Arch, m.CPUs, m.CPUModel, m.Go)
	fmt.Fprintf(w, "- build: CGO_ENABLED=%s for the bench binary, %s for sandbox-exec\n", orUnknown(m.Cgo.Bench), orUnknown(m.Cgo.SandboxExec))
	f := m.Features
	fmt.Fprintf(w, "- features: user notification %s, broker (ADDFD_FLAG_SEND, openat2) %s, SYNC_WAKE_UP %s in the kernel and %s in the broker, WAIT_KILLABLE_RECV %s, Landlock ABI %d\n",
		onOff(f.UserNotif), onOff(f.AddfdSend), onOff(f.SyncWakeUp), onOff(f.SyncWakeUpBroker), onOff(f.WaitKillableRecv), f.LandlockABI)
	if m.CPUIdle != "" {
		fmt.Fprintf(w, "- cpuidle: %s\n", m.CPUIdle)
	}
	fmt.Fprintf(w, "- placements: worker on CPU %d; broker on CPU %d (same) or %d (different); unpinned = no affinity\n", m.WorkerCPU, m.WorkerCPU, m.OtherCPU)
	fmt.Fprintf(w, "- latency: %d worker processes × %d batches of ~%.0f ms per cell; cells are median per call (min–max over batches) and the ratio to native of the same harness, op and placement\n\n",
		r.Config.Rounds, r.Config.Batches, float64(r.Config.BatchNs)/1e6)

	for _, o := range opNames {
		fmt.Fprintf(w, "## %s, per call\n\n", o)
		fmt.Fprintf(w, "| variant |")
		for _, p := range placements {
			fmt.Fprintf(w, " %s |", placementTitle[p])
		}
		fmt.Fprintf(w, "\n|---|")
		for range placements {
			fmt.Fprintf(w, "---|")
		}
		fmt.Fprintln(w)
		for _, v := range variants {
			fmt.Fprintf(w, "| %s |", v.label)
			for _, p := range placements {
				c := findCell(r.Latency, v.name, o, p)
				switch {
				case c == nil:
					fmt.Fprintf(w, " – |")
				case c.Status != "ok":
					fmt.Fprintf(w, " %s |", c.Status)
				default:
					fmt.Fprintf(w, " %s (%s–%s) **%s** |", fmtNs(c.NsPerCall.Median), trimUnit(fmtNs(c.NsPerCall.Min)), fmtNs(c.NsPerCall.Max), fmtRatio(c.Ratio))
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}

	var views []LatencyCell
	for _, c := range r.Latency {
		if c.Broker != nil && c.Status == "ok" {
			views = append(views, c)
		}
	}
	if len(views) > 0 {
		fmt.Fprintf(w, "## Inside the broker (its own metrics): service time from RECV to reply vs the round trip\n\n")
		fmt.Fprintf(w, "| variant | op | placement | round trip | broker service | share | matcher |\n|---|---|---|---|---|---|---|\n")
		for _, c := range views {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.0f %% | %.0f ns |\n", c.Variant, c.Op, placementTitle[c.Placement],
				fmtNs(c.NsPerCall.Median), fmtNs(c.Broker.ServiceNs.Median), 100*c.Broker.ServiceShare, c.Broker.MatcherNs.Median)
		}
		fmt.Fprintln(w)
	}

	if len(r.Throughput) > 0 {
		fmt.Fprintf(w, "## Throughput, openat+close, unpinned (calls/s, median (min–max), ratio to 1 worker × 1 broker thread)\n\n")
		fmt.Fprintf(w, "| worker threads | native |")
		bts := brokerThreadCounts(r.Throughput)
		for _, b := range bts {
			fmt.Fprintf(w, " broker, %d thread%s |", b, plural(b))
		}
		fmt.Fprintf(w, "\n|---|---|")
		for range bts {
			fmt.Fprintf(w, "---|")
		}
		fmt.Fprintln(w)
		for _, wt := range workerThreadCounts(r.Throughput) {
			fmt.Fprintf(w, "| %d |", wt)
			cols := append([]int{0}, bts...)
			for _, b := range cols {
				c := findTput(r.Throughput, wt, b)
				switch {
				case c == nil:
					fmt.Fprintf(w, " – |")
				case c.Status != "ok":
					fmt.Fprintf(w, " %s |", c.Status)
				default:
					fmt.Fprintf(w, " %s (%s–%s) **%s** |", fmtRate(c.CallsPerS.Median), fmtRate(c.CallsPerS.Min), fmtRate(c.CallsPerS.Max), fmtRatio(c.RatioTo1x1))
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}

	if len(r.Start) > 0 {
		fmt.Fprintf(w, "## Process start (wall time to run to exit, ms)\n\n| command | median (min–max) | ratio to native |\n|---|---|---|\n")
		for _, c := range r.Start {
			if c.Status != "ok" {
				fmt.Fprintf(w, "| %s | %s: %s | – |\n", c.Name, c.Status, c.Reason)
				continue
			}
			fmt.Fprintf(w, "| %s | %.2f (%.2f–%.2f) | %s |\n", c.Name, c.Ms.Median, c.Ms.Min, c.Ms.Max, fmtRatio(c.Ratio))
		}
		fmt.Fprintln(w)
	}

	if len(r.Handoff) > 0 {
		fmt.Fprintf(w, "## Worker handoff (ms from Start: until Start returns; until the worker's first output)\n\n| how | Start p50 | p99 | first output p50 | p99 |\n|---|---|---|---|---|\n")
		for _, c := range r.Handoff {
			if c.Status != "ok" {
				fmt.Fprintf(w, "| %s | %s: %s | | | |\n", c.Name, c.Status, c.Reason)
				continue
			}
			fmt.Fprintf(w, "| %s | %.3f | %.3f | %.3f | %.3f |\n", c.Name, c.Start.P50, c.Start.P99, c.Main.P50, c.Main.P99)
		}
		fmt.Fprintln(w)
	}

	if mr := r.Matcher; mr != nil {
		fmt.Fprintf(w, "## Matcher\n\n%d rules, %d paths: **%.0f ns/decision** (min %.0f, max %.0f), %.2f allocs/decision, %.0f B/decision\n\n",
			mr.Rules, mr.Paths, mr.NsPerDecision.Median, mr.NsPerDecision.Min, mr.NsPerDecision.Max, mr.AllocsPerDecision, mr.BytesPerDecision)
	}

	if len(r.Workloads) > 0 {
		fmt.Fprintf(w, "## Real workloads (wall time, ms)\n\n| workload | native | sandbox-exec | ratio | policy |\n|---|---|---|---|---|\n")
		for _, c := range r.Workloads {
			if c.Status != "ok" {
				fmt.Fprintf(w, "| %s | %s: %s | | | %s |\n", c.Name, c.Status, c.Reason, c.Policy)
				continue
			}
			fmt.Fprintf(w, "| %s | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | **%s** | %s |\n", c.Name,
				c.Native.Median, c.Native.Min, c.Native.Max, c.Sandboxed.Median, c.Sandboxed.Min, c.Sandboxed.Max, fmtRatio(c.Ratio), c.Policy)
		}
		fmt.Fprintln(w)
		for _, c := range r.Workloads {
			if c.BrokerMetrics != "" {
				fmt.Fprintf(w, "`sandbox-exec --metrics` for %s:\n\n```\n%s\n```\n\n", c.Name, c.BrokerMetrics)
			}
		}
	}

	if len(r.Targets) > 0 {
		fmt.Fprintf(w, "## Targets of the benchmark issue\n\n")
		if r.Mode == "short" {
			fmt.Fprintf(w, "Short mode: too few samples for the verdicts to mean anything.\n\n")
		}
		fmt.Fprintf(w, "| target | goal | measured | verdict |\n|---|---|---|---|\n")
		for _, t := range r.Targets {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Text, t.Verdict)
		}
		fmt.Fprintln(w)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "## Skipped\n\n")
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "- %s: %s\n", s.What, s.Reason)
		}
		fmt.Fprintln(w)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "## Warnings\n\n")
		for _, e := range r.Warnings {
			fmt.Fprintf(w, "- %s\n", e)
		}
		fmt.Fprintln(w)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "## Errors\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(w, "- %s\n", e)
		}
		fmt.Fprintln(w)
	}
}

func trimUnit(s string) string { return strings.TrimSuffix(s, " µs") }

func fmtRate(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.0fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func findCell(cells []LatencyCell, variant, op, placement string) *LatencyCell {
	for i := range cells {
		c := &cells[i]
		if c.Variant == variant && c.Op == op && c.Placement == placement {
			return c
		}
	}
	return nil
}

func findTput(cells []TputCell, wt, bt int) *TputCell {
	for i := range cells {
		c := &cells[i]
		if c.WorkerThreads == wt && c.BrokerThreads == bt {
			return c
		}
	}
	return nil
}

func brokerThreadCounts(cells []TputCell) []int {
	var out []int
	for _, c := range cells {
		if c.BrokerThreads > 0 && !slices.Contains(out, c.BrokerThreads) {
			out = append(out, c.BrokerThreads)
		}
	}
	slices.Sort(out)
	return out
}

func workerThreadCounts(cells []TputCell) []int {
	var out []int
	for _, c := range cells {
		if !slices.Contains(out, c.WorkerThreads) {
			out = append(out, c.WorkerThreads)
		}
	}
	slices.Sort(out)
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
