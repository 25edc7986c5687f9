//go:build linux

package main

import (
	"fmt"
	"strings"
)

// evaluateTargets compares the run with the targets of the benchmark
// issue. Every figure is a ratio of two medians of this run.
func (b *bench) evaluateTargets() {
	r := b.report
	lat := func(variant, op, placement string) *LatencyCell {
		c := findCell(r.Latency, variant, op, placement)
		if c == nil || c.Status != "ok" || c.NsPerCall.Median == 0 {
			return nil
		}
		return c
	}
	open := opOpen.String()
	add := func(name, goal string, measured float64, text string, ok bool, have bool) {
		t := Target{Name: name, Goal: goal, Measured: measured, Text: text, Verdict: "not measured"}
		if have {
			t.Verdict = "missed"
			if ok {
				t.Verdict = "met"
			}
		}
		r.Targets = append(r.Targets, t)
	}

	// The per-call targets are judged on both workers: the C worker (an
	// unmodified C program, the same loop as the SIGSYS baseline) and the
	// Go worker (the bench binary, whose runtime adds its own cost to a
	// blocking system call).
	workers := []struct{ variant, native, title string }{
		{"broker-c", "native-c", "C worker"},
		{"broker", "native", "Go worker"},
	}
	for _, t := range []struct {
		placement string
		limit     float64
	}{{"same-cpu", 8}, {"unpinned", 15}} {
		for _, wk := range workers {
			name := fmt.Sprintf("brokered openat+close vs native, %s, %s", placementTitle[t.placement], wk.title)
			goal := fmt.Sprintf("≤ %.0f×", t.limit)
			c, n := lat(wk.variant, open, t.placement), lat(wk.native, open, t.placement)
			if c == nil || n == nil || c.Ratio == 0 {
				add(name, goal, 0, "–", false, false)
				continue
			}
			add(name, goal, c.Ratio, fmt.Sprintf("%.1f× (%s vs %s)", c.Ratio, fmtNs(c.NsPerCall.Median), fmtNs(n.NsPerCall.Median)), c.Ratio <= t.limit, true)
		}
	}
	for _, t := range []struct {
		placement string
		factor    float64
	}{{"same-cpu", 2}, {"unpinned", 4}} {
		for _, o := range opNames {
			for _, wk := range workers {
				if o != open && wk.variant != "broker-c" {
					continue
				}
				name := fmt.Sprintf("broker faster than the SIGSYS baseline, %s, %s, %s", o, placementTitle[t.placement], wk.title)
				goal := fmt.Sprintf("≥ %.0f×", t.factor)
				if o != open {
					goal += " (issue names openat; stat for reference)"
				}
				if wk.variant == "broker" {
					goal += " (different harnesses)"
				}
				bc, sc := lat(wk.variant, o, t.placement), lat("sigsys", o, t.placement)
				if bc == nil || sc == nil {
					add(name, goal, 0, "–", false, false)
					continue
				}
				x := sc.NsPerCall.Median / bc.NsPerCall.Median
				add(name, goal, x, fmt.Sprintf("%.2f× (%s vs %s)", x, fmtNs(bc.NsPerCall.Median), fmtNs(sc.NsPerCall.Median)), x >= t.factor, true)
			}
		}
	}
	{
		name := "throughput, 4 worker × 4 broker threads vs 1 × 1"
		goal := fmt.Sprintf("≥ 3× (as far as %d CPUs allow)", r.Machine.CPUs)
		c, base := findTput(r.Throughput, 4, 4), findTput(r.Throughput, 1, 1)
		n4, n1 := findTput(r.Throughput, 4, 0), findTput(r.Throughput, 1, 0)
		if c != nil && base != nil && c.Status == "ok" && base.Status == "ok" && base.CallsPerS.Median > 0 {
			x := c.CallsPerS.Median / base.CallsPerS.Median
			text := fmt.Sprintf("%.2f× (%s vs %s calls/s", x, fmtRate(c.CallsPerS.Median), fmtRate(base.CallsPerS.Median))
			if n4 != nil && n1 != nil && n4.Status == "ok" && n1.CallsPerS.Median > 0 {
				text += fmt.Sprintf("; native scales %.2f× from 1 to 4 threads", n4.CallsPerS.Median/n1.CallsPerS.Median)
			}
			// A brokered call keeps a CPU busy for about the same-CPU
			// round trip (worker and broker never run at once), so
			// CPUs / that time bounds the throughput.
			if s := lat("broker", open, "same-cpu"); s != nil {
				ceil := float64(r.Machine.CPUs) * 1e9 / s.NsPerCall.Median
				text += fmt.Sprintf("; CPU-bound ceiling ≈ %d CPUs / %s = %s calls/s, %.1f× 1 × 1", r.Machine.CPUs, fmtNs(s.NsPerCall.Median), fmtRate(ceil), ceil/base.CallsPerS.Median)
			}
			add(name, goal, x, text+")", x >= 3, true)
		} else {
			add(name, goal, 0, "–", false, false)
		}
	}
	{
		name := "sandbox-exec -- /bin/true vs bwrap --ro-bind / / /bin/true"
		var se, bw *StartCell
		for i := range r.Start {
			c := &r.Start[i]
			switch {
			case strings.HasPrefix(c.Name, "sandbox-exec"):
				se = c
			case strings.HasPrefix(c.Name, "bwrap"):
				bw = c
			}
		}
		if se != nil && bw != nil && se.Status == "ok" && bw.Status == "ok" && bw.Ms.Median > 0 {
			x := se.Ms.Median / bw.Ms.Median
			add(name, "≤ 0.8×", x, fmt.Sprintf("%.2f× (%.2f vs %.2f ms)", x, se.Ms.Median, bw.Ms.Median), x <= 0.8, true)
		} else {
			add(name, "≤ 0.8×", 0, "–", false, false)
		}
	}
	for _, c := range r.Handoff {
		if !strings.HasPrefix(c.Name, "launcher.Pool") {
			continue
		}
		name := "pooled handoff: pool.Command().Start()"
		if c.Status != "ok" || c.Start.N == 0 {
			add(name, "≤ 0.3 ms", 0, c.Status+": "+c.Reason, false, false)
			continue
		}
		add(name, "≤ 0.3 ms", c.Start.P50, fmt.Sprintf("p50 %.3f ms, p99 %.3f ms (first output p50 %.3f ms)", c.Start.P50, c.Start.P99, c.Main.P50), c.Start.P50 <= 0.3, true)
	}
	for _, w := range r.Workloads {
		name := "real workload: " + w.Name
		if w.Status != "ok" || w.Ratio == 0 {
			add(name, "≤ 1.5× native", 0, w.Status+": "+w.Reason, false, false)
			continue
		}
		add(name, "≤ 1.5× native", w.Ratio, fmt.Sprintf("%.2f× (%.1f vs %.1f ms)", w.Ratio, w.Sandboxed.Median, w.Native.Median), w.Ratio <= 1.5, true)
	}
}
