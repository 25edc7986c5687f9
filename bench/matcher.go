//go:build linux

package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// genPolicy writes a policy of n rules over ten top-level trees, the same
// generator as the policy package's BenchmarkDecide: a tenth are denies,
// a third each are exact files, recursive directories and globs. It
// returns the text and paths that hit and miss the rules.
func genPolicy(n int) (string, []string) {
	r := rand.New(rand.NewPCG(1, 2))
	tops := []string{"usr", "lib", "etc", "home", "opt", "var", "srv", "data", "proj", "nix"}
	word := func() string {
		return fmt.Sprintf("%s%d", []string{"app", "lib", "share", "conf", "cache", "bin", "doc", "pkg"}[r.IntN(8)], r.IntN(20))
	}
	var b strings.Builder
	b.WriteString("version 1\n")
	var paths []string
	for i := range n {
		comps := []string{tops[r.IntN(len(tops))]}
		for range 1 + r.IntN(4) {
			comps = append(comps, word())
		}
		dir := "/" + strings.Join(comps, "/")
		verb := "allow read"
		if i%10 == 9 {
			verb = "deny"
		}
		switch i % 3 {
		case 0:
			file := fmt.Sprintf("file%d.txt", i)
			fmt.Fprintf(&b, "%s %s/%s\n", verb, dir, file)
			paths = append(paths, dir+"/"+file, dir+"/other.txt")
		case 1:
			fmt.Fprintf(&b, "%s,write %s/**\n", strings.Replace(verb, "deny", "deny read", 1), dir)
			paths = append(paths, dir+"/x/y/z.dat", dir+"x/y")
		case 2:
			globDir := "/" + comps[0] + "/*/" + strings.Join(comps[1:], "/")
			fmt.Fprintf(&b, "%s %s/*.so.?\n", verb, globDir)
			paths = append(paths, "/"+comps[0]+"/any/"+strings.Join(comps[1:], "/")+"/libfoo.so.6", dir+"/libfoo.so")
		}
	}
	return b.String(), paths
}

// matcherSection measures Matcher.Decide on a generated 1,000-rule policy:
// ns per decision (min/median/max over repetitions) and allocations.
func (b *bench) matcherSection() {
	b.progress("matcher: %d rules", b.cfg.MatcherRule)
	src, paths := genPolicy(b.cfg.MatcherRule)
	p, err := policy.Parse("bench.policy", []byte(src), nil)
	if err != nil {
		b.errorf("matcher: parse generated policy: %v", err)
		return
	}
	m := p.Matcher()
	sink := 0
	decideAll := func() {
		for _, path := range paths {
			if m.Decide(path, policy.Read).Allowed {
				sink++
			}
		}
	}
	decideAll() // warm caches

	reps := 7
	per := 200 * time.Millisecond
	if b.short {
		reps, per = 3, 20*time.Millisecond
	}
	var samples []float64
	for range reps {
		n := 0
		t0 := time.Now()
		for time.Since(t0) < per {
			decideAll()
			n += len(paths)
		}
		samples = append(samples, float64(time.Since(t0).Nanoseconds())/float64(n))
	}
	allocs := testing.AllocsPerRun(5, decideAll) / float64(len(paths))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	decideAll()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(sink)
	b.report.Matcher = &MatcherResult{
		Rules:             len(p.Rules()),
		Paths:             len(paths),
		NsPerDecision:     newStats(samples),
		AllocsPerDecision: allocs,
		BytesPerDecision:  float64(after.TotalAlloc-before.TotalAlloc) / float64(len(paths)),
	}
}
