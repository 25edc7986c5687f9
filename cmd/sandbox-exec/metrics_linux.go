//go:build linux

package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// printMetrics writes the --metrics summary: one row per brokered syscall
// with its latency quantiles, then the totals and the matcher's share.
func printMetrics(w io.Writer, m launcher.Metrics) {
	us := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e3) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "syscall\tcount\tdenied\terrors\tp50 µs\tp90 µs\tp99 µs\tmax µs\t")
	for _, s := range m.Syscalls {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", s.Name, s.Count, s.Denied, s.Errors, us(s.P50), us(s.P90), us(s.P99), us(s.Max))
	}
	tw.Flush()
	var avg time.Duration
	if m.MatcherRuns > 0 {
		avg = m.MatcherTime / time.Duration(m.MatcherRuns)
	}
	fmt.Fprintf(w, "sandbox-exec: %d requests, %d denied, %d dropped (target gone); matcher %d calls, %v in all, %v each\n",
		m.Requests, m.Denied, m.Dropped, m.MatcherRuns, m.MatcherTime, avg)
}
