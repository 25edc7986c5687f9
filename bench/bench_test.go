//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// TestMain makes the test binary its own worker: the bench re-execs
// os.Executable(), which here is the test binary.
func TestMain(m *testing.M) {
	launcher.Init()
	if isWorker() {
		os.Exit(workerMain())
	}
	os.Exit(m.Run())
}

// TestShort runs the short mode end to end, as CI does, and checks the
// shape of its JSON report. The figures themselves are not checked: short
// mode takes too few samples to mean anything.
func TestShort(t *testing.T) {
	out := filepath.Join(t.TempDir(), "short.json")
	var log, md bytes.Buffer
	code := cli([]string{"-short", "-o", out}, &md, &log)
	t.Logf("log:\n%s", log.String())
	if code != 0 {
		t.Errorf("bench -short exited %d\n%s", code, md.String())
	}
	for _, h := range []string{"# sandbox-exec benchmark (short mode)", "## openat+close, per call", "## newfstatat, per call", "## Targets of the benchmark issue"} {
		if !strings.Contains(md.String(), h) {
			t.Errorf("Markdown lacks %q", h)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}

	// The document has every top-level key, whatever ran.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("report is not a JSON object: %v", err)
	}
	for _, k := range []string{"schema", "mode", "date", "machine", "config", "latency", "throughput", "start", "matcher", "workloads", "targets", "elapsed_s"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	var r Report
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	if r.Schema != 1 || r.Mode != "short" {
		t.Errorf("schema %d mode %q, want 1 short", r.Schema, r.Mode)
	}
	if r.Machine.Kernel == "" || r.Machine.CPUs < 1 || r.Machine.CPUModel == "" {
		t.Errorf("machine header incomplete: %+v", r.Machine)
	}
	if len(r.Errors) > 0 {
		t.Errorf("errors: %q", r.Errors)
	}
	for _, w := range r.Warnings {
		t.Logf("warning: %s", w)
	}

	// Latency: every cell has its samples and a ratio to its native; the
	// variants this machine can run are all there.
	want := []string{"native", "landlock", "seccomp"}
	if r.Machine.Features.AddfdSend {
		want = append(want, "broker")
	}
	if r.Machine.Features.CC != "" {
		want = append(want, "native-c", "sigsys", "ptrace")
		if r.Machine.Features.AddfdSend {
			want = append(want, "broker-c")
		}
	}
	if r.Machine.Features.LandlockABI == 0 {
		want = slices.DeleteFunc(want, func(s string) bool { return s == "landlock" })
	}
	for _, v := range want {
		for _, o := range opNames {
			for _, p := range placements {
				if p == "different-cpus" && r.Machine.CPUs < 2 {
					continue
				}
				c := findCell(r.Latency, v, o, p)
				switch {
				case c == nil:
					t.Errorf("latency: no cell %s / %s / %s", v, o, p)
				case c.Status != "ok":
					t.Errorf("latency %s / %s / %s: %s: %s", v, o, p, c.Status, c.Reason)
				case len(c.Samples) != r.Config.Rounds*r.Config.Batches || c.NsPerCall.Median <= 0 || c.Ratio <= 0 || c.Calls <= 0:
					t.Errorf("latency %s / %s / %s: %d samples (want %d), median %v, ratio %v, calls %d", v, o, p,
						len(c.Samples), r.Config.Rounds*r.Config.Batches, c.NsPerCall.Median, c.Ratio, c.Calls)
				case c.NsPerCall.Min > c.NsPerCall.Median || c.NsPerCall.Median > c.NsPerCall.Max:
					t.Errorf("latency %s / %s / %s: min %v median %v max %v out of order", v, o, p, c.NsPerCall.Min, c.NsPerCall.Median, c.NsPerCall.Max)
				}
			}
		}
	}

	// Throughput: 1, 2, 4 worker threads natively and with 1, 2, 4
	// broker threads.
	for _, wt := range []int{1, 2, 4} {
		bts := []int{0}
		if r.Machine.Features.AddfdSend {
			bts = append(bts, 1, 2, 4)
		}
		for _, bt := range bts {
			c := findTput(r.Throughput, wt, bt)
			if c == nil || c.Status != "ok" || c.CallsPerS.Median <= 0 || c.RatioTo1x1 <= 0 {
				t.Errorf("throughput %d×%d: %+v", wt, bt, c)
			}
		}
	}

	// Start: native always runs; the others run or say why not.
	if len(r.Start) < 3 || r.Start[0].Status != "ok" || r.Start[0].Ms.Median <= 0 {
		t.Errorf("start: %+v", r.Start)
	}
	for _, c := range r.Start {
		if c.Status != "ok" && c.Reason == "" {
			t.Errorf("start %s: status %s without a reason", c.Name, c.Status)
		}
	}

	if m := r.Matcher; m == nil || m.Rules != 1000 || m.NsPerDecision.Median <= 0 {
		t.Errorf("matcher: %+v", m)
	} else if m.AllocsPerDecision != 0 {
		t.Errorf("matcher: %v allocs/decision, want 0 (contract: Decide does not allocate)", m.AllocsPerDecision)
	}

	if len(r.Workloads) != 2 {
		t.Errorf("workloads: %d, want 2", len(r.Workloads))
	}
	for _, w := range r.Workloads {
		if w.Status == "ok" && (w.Native.Median <= 0 || w.Sandboxed.Median <= 0 || w.Ratio <= 0) {
			t.Errorf("workload %s: %+v", w.Name, w)
		}
		if w.Status != "ok" && w.Reason == "" {
			t.Errorf("workload %s: status %s without a reason", w.Name, w.Status)
		}
	}

	if len(r.Targets) == 0 {
		t.Error("no targets")
	}
	for _, tg := range r.Targets {
		if !slices.Contains([]string{"met", "missed", "not measured"}, tg.Verdict) {
			t.Errorf("target %q: verdict %q", tg.Name, tg.Verdict)
		}
	}
}

func TestStats(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Stats
	}{
		{nil, Stats{}},
		{[]float64{3}, Stats{N: 1, Min: 3, Median: 3, Max: 3}},
		{[]float64{4, 1, 3}, Stats{N: 3, Min: 1, Median: 3, Max: 4}},
		{[]float64{4, 1, 3, 2}, Stats{N: 4, Min: 1, Median: 2.5, Max: 4}},
	} {
		if got := newStats(tc.in); got != tc.want {
			t.Errorf("newStats(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestWorkerPolicyParses(t *testing.T) {
	// Paths with spaces and quotes must survive the policy's tokeniser.
	for _, exe := range []string{"/tmp/go-build1/b001/exe/bench", "/tmp/a b/it's/bench"} {
		if _, err := parseWorkerPolicy(exe, filepath.Dir(exe)); err != nil {
			t.Errorf("%s: %v", exe, err)
		}
	}
}

func TestBenchPoliciesParse(t *testing.T) {
	ents, err := benchPolicies.ReadDir("policies")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := benchPolicies.ReadFile("policies/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Parse(e.Name(), data, policy.Defines{"HOME": "/home/u", "CWD": "/work"})
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		for _, d := range p.Lint() {
			t.Logf("%s: lint: %v", e.Name(), d)
		}
	}
}
