//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// throughputSection measures openat+close calls per second with 1, 2 and
// 4 worker threads, natively and under the broker with 1, 2 and 4 serving
// threads, unpinned (as a real host runs).
func (b *bench) throughputSection() {
	type key struct{ wt, bt int } // bt 0: native
	workers := []int{1, 2, 4}
	brokers := []int{1, 2, 4}
	var keys []key
	for _, wt := range workers {
		keys = append(keys, key{wt, 0})
		if b.workerPolicy == nil {
			continue
		}
		for _, bt := range brokers {
			keys = append(keys, key{wt, bt})
		}
	}
	cells := map[key]*TputCell{}
	for _, k := range keys {
		v := "broker"
		if k.bt == 0 {
			v = "native"
		}
		cells[k] = &TputCell{Variant: v, WorkerThreads: k.wt, BrokerThreads: k.bt, Status: "ok"}
	}
	for round := range b.cfg.Rounds {
		order := keys
		if round%2 == 1 {
			order = reversed(keys)
		}
		for _, k := range order {
			c := cells[k]
			if c.Status != "ok" {
				continue
			}
			b.progress("throughput round %d/%d: %d worker threads, %d broker threads", round+1, b.cfg.Rounds, k.wt, k.bt)
			args := []string{workerArg, "tput", opOpen.arg(), b.file, strconv.Itoa(k.wt), strconv.FormatInt(b.cfg.TputNs, 10)}
			var bo *brokerOpts
			if k.bt > 0 {
				bo = &brokerOpts{threads: k.bt}
			}
			out, err := b.runGoWorker(args, bo)
			if err == nil {
				var rate float64
				rate, err = parseThroughput(out)
				c.Samples = append(c.Samples, rate)
			}
			if err != nil {
				c.Status, c.Reason = "failed", err.Error()
				b.errorf("throughput %d×%d: %v", k.wt, k.bt, err)
			}
		}
	}
	for _, k := range keys {
		c := cells[k]
		c.CallsPerS = newStats(c.Samples)
	}
	for _, k := range keys {
		c := cells[k]
		base := cells[key{1, min(k.bt, 1)}]
		if c.Status == "ok" && base != nil && base.Status == "ok" && base.CallsPerS.Median > 0 {
			c.RatioTo1x1 = c.CallsPerS.Median / base.CallsPerS.Median
		}
		b.report.Throughput = append(b.report.Throughput, *c)
	}
}

func parseThroughput(out []byte) (float64, error) {
	var calls, ns float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch k {
		case "calls":
			calls = x
		case "elapsed_ns":
			ns = x
		}
	}
	if calls == 0 || ns == 0 {
		return 0, fmt.Errorf("no throughput in worker output %q", out)
	}
	return calls / (ns / 1e9), nil
}
