//go:build linux

package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// benchPolicies are the policies the bench writes for its real workloads;
// a policy of the same name under the repository's policies/ wins.
//
//go:embed policies/*.policy
var benchPolicies embed.FS

// workloadPolicy returns the policy file for name ("python.policy") and
// where it came from.
func (b *bench) workloadPolicy(name string) (string, error) {
	if b.root != "" {
		shipped := filepath.Join(b.root, "policies", name)
		if _, err := os.Stat(shipped); err == nil {
			return shipped, nil
		}
	}
	data, err := benchPolicies.ReadFile("policies/" + name)
	if err != nil {
		return "", err
	}
	p := filepath.Join(b.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// workloadSection runs real programs natively and under sandbox-exec,
// interleaved, and checks that both give the same output.
func (b *bench) workloadSection() {
	type workload struct {
		name   string
		argv   []string
		policy string
	}
	fcList, fcErr := exec.LookPath("fc-list")
	ws := []workload{
		{"python3 -c 'import json, email, http.client'", []string{"/usr/bin/python3", "-c", "import json, email, http.client"}, "python.policy"},
		{"fc-list", []string{fcList}, "fontconfig.policy"},
	}
	for _, w := range ws {
		c := WorkloadCell{Name: w.name, Command: w.argv, Status: "ok"}
		b.progress("workload: %s", w.name)
		switch {
		case w.argv[0] == "":
			c.Status, c.Reason = "skipped", fmt.Sprintf("fc-list missing: %v", fcErr)
		case b.sandboxExec == "":
			c.Status, c.Reason = "skipped", b.sandboxExecErr
		}
		if _, err := os.Stat(w.argv[0]); c.Status == "ok" && err != nil {
			c.Status, c.Reason = "skipped", err.Error()
		}
		var pol string
		if c.Status == "ok" {
			var err error
			if pol, err = b.workloadPolicy(w.policy); err != nil {
				c.Status, c.Reason = "failed", err.Error()
			}
			c.Policy = pol
			if b.root != "" {
				if rel, err := filepath.Rel(b.root, pol); err == nil && filepath.IsLocal(rel) {
					c.Policy = rel
				} else if filepath.Dir(pol) == b.dir {
					c.Policy = "bench/policies/" + w.policy
				}
			}
		}
		if c.Status != "ok" {
			b.skip("workload "+w.name, c.Reason)
			b.report.Workloads = append(b.report.Workloads, c)
			continue
		}
		boxed := append([]string{b.sandboxExec, "-f", pol, "--"}, w.argv...)
		var nativeOut, boxedOut []byte
		for i := -1; i < b.cfg.WorkRuns; i++ { // run -1 warms caches, untimed
			ms, out, err := timeRun(w.argv, b.dir)
			if err != nil {
				c.Status, c.Reason = "failed", "native: "+err.Error()
				break
			}
			if i >= 0 {
				c.NativeS = append(c.NativeS, ms)
			}
			nativeOut = out
			ms, out, err = timeRun(boxed, b.dir)
			if err != nil {
				c.Status, c.Reason = "failed", "sandboxed: "+err.Error()
				break
			}
			if i >= 0 {
				c.SandboxedS = append(c.SandboxedS, ms)
			}
			boxedOut = out
		}
		if c.Status == "ok" && !bytes.Equal(nativeOut, boxedOut) {
			c.Reason = fmt.Sprintf("output differs: native %d bytes, sandboxed %d bytes", len(nativeOut), len(boxedOut))
			b.warnf("workload %s: %s", w.name, c.Reason)
		}
		if c.Status != "ok" {
			b.errorf("workload %s: %s", w.name, c.Reason)
		}
		if c.Status == "ok" {
			// One more, untimed run with the broker's metrics.
			withMetrics := append([]string{b.sandboxExec, "--metrics", "-f", pol, "--"}, w.argv...)
			cmd := exec.Command(withMetrics[0], withMetrics[1:]...)
			cmd.Dir = b.dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				b.warnf("workload %s: --metrics run: %v", w.name, err)
			}
			c.BrokerMetrics = strings.TrimRight(stderr.String(), "\n")
		}
		c.Native, c.Sandboxed = newStats(c.NativeS), newStats(c.SandboxedS)
		if c.Native.Median > 0 && c.Sandboxed.Median > 0 {
			c.Ratio = c.Sandboxed.Median / c.Native.Median
		}
		b.report.Workloads = append(b.report.Workloads, c)
	}
}
