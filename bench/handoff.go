//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// handoffSection times how long a host waits for a new worker: from
// Start until the worker's main runs (its first byte of output), for a
// worker from a launcher.Pool, a cold launcher.Command and bubblewrap,
// interleaved in one run. The program is /bin/echo: a dynamically linked
// program whose loader and libc are opened through the broker.
func (b *bench) handoffSection() {
	const prog = "/bin/echo"
	def, err := policy.Default(nil)
	if err != nil {
		b.errorf("handoff: %v", err)
		return
	}
	pool, err := launcher.NewPool(def, launcher.PoolOptions{Size: 2, Dir: b.dir, Programs: []string{prog}})
	if err != nil {
		b.errorf("handoff: pool: %v", err)
		return
	}
	defer pool.Close()

	type starter struct {
		cell *HandoffCell
		run  func() (start, main time.Duration, err error)
	}
	library := func(cmd func() *launcher.Cmd) func() (time.Duration, time.Duration, error) {
		return func() (time.Duration, time.Duration, error) {
			pr, pw, err := os.Pipe()
			if err != nil {
				return 0, 0, err
			}
			defer pr.Close()
			c := cmd()
			c.Dir, c.Stdout = b.dir, pw
			t0 := time.Now()
			err = c.Start()
			t1 := time.Now()
			pw.Close()
			if err != nil {
				return 0, 0, err
			}
			var one [1]byte
			_, rerr := pr.Read(one[:])
			t2 := time.Now()
			if err := c.Wait(); err != nil {
				return 0, 0, err
			}
			if rerr != nil {
				return 0, 0, fmt.Errorf("no output: %w", rerr)
			}
			return t1.Sub(t0), t2.Sub(t0), nil
		}
	}
	ss := []*starter{
		{&HandoffCell{Name: "launcher.Pool: pool.Command(echo).Start()"}, library(func() *launcher.Cmd { return pool.Command(prog, "x") })},
		{&HandoffCell{Name: "launcher.Command(echo).Start(), cold"}, library(func() *launcher.Cmd { return launcher.Command(def, prog, "x") })},
	}
	if bw := b.report.Machine.Features.Bwrap; bw != "" {
		ss = append(ss, &starter{&HandoffCell{Name: "bwrap --ro-bind / / echo"}, func() (time.Duration, time.Duration, error) {
			cmd := exec.Command(bw, "--ro-bind", "/", "/", prog, "x")
			out, err := cmd.StdoutPipe()
			if err != nil {
				return 0, 0, err
			}
			t0 := time.Now()
			if err := cmd.Start(); err != nil {
				return 0, 0, err
			}
			t1 := time.Now()
			_, rerr := bufio.NewReader(out).ReadByte()
			t2 := time.Now()
			if err := cmd.Wait(); err != nil {
				return 0, 0, err
			}
			if rerr != nil {
				return 0, 0, fmt.Errorf("no output: %w", rerr)
			}
			return t1.Sub(t0), t2.Sub(t0), nil
		}})
	} else {
		b.skip("handoff: bwrap", "bwrap is missing (scripts/setup installs bubblewrap)")
	}
	for _, s := range ss {
		s.cell.Status = "ok"
	}
	runs := b.cfg.StartRuns * 5
	// One untimed run each, then interleaved. Before each sample the pool
	// is full again: the figure is a Start that finds a ready stage, and
	// the refill (a Go process start) does not run during another sample.
	for i := -1; i < runs; i++ {
		if i == 0 || i == runs-1 {
			b.progress("handoff: run %d/%d", i+1, runs)
		}
		for _, s := range ss {
			if s.cell.Status != "ok" {
				continue
			}
			for deadline := time.Now().Add(time.Second); pool.Stats().Ready < 2 && time.Now().Before(deadline); {
				time.Sleep(200 * time.Microsecond)
			}
			start, main, err := s.run()
			if err != nil {
				s.cell.Status, s.cell.Reason = "failed", err.Error()
				b.errorf("handoff %s: %v", s.cell.Name, err)
				continue
			}
			if i >= 0 {
				s.cell.StartMs = append(s.cell.StartMs, ms(start))
				s.cell.MainMs = append(s.cell.MainMs, ms(main))
			}
		}
	}
	for _, s := range ss {
		c := s.cell
		c.Start, c.Main = newPercentiles(c.StartMs), newPercentiles(c.MainMs)
		b.report.Handoff = append(b.report.Handoff, *c)
	}
	st := pool.Stats()
	b.report.HandoffPool = &st.Taken
	if st.Cold > 0 {
		b.warnf("handoff: %d of %d pooled starts found no ready stage", st.Cold, st.Cold+st.Taken)
	}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// Percentiles of a sample, in its unit.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func newPercentiles(xs []float64) Percentiles {
	if len(xs) == 0 {
		return Percentiles{}
	}
	s := sorted(xs)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Percentiles{N: len(s), P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: s[len(s)-1]}
}
