//go:build linux

package broker

import (
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// Metrics is a snapshot of a Broker's counters since New.
type Metrics struct {
	Requests    uint64        // notifications handled (including dropped ones)
	Denied      uint64        // answered with the deny errno by policy
	Dropped     uint64        // abandoned because the target was gone (ENOENT)
	Panics      uint64        // requests that panicked (answered EIO)
	SendErrors  uint64        // replies the kernel refused for another reason than ENOENT
	FdsInUse    int64         // broker fds held by requests right now
	FdLimit     int64         // the most they may hold (from RLIMIT_NOFILE)
	MatcherTime time.Duration // total time spent in Matcher.Decide
	MatcherRuns uint64        // calls of Matcher.Decide
	// Blocking operations (Options.BlockTimeout, MaxBlockedPerWorker,
	// MaxBlocked; security.md R26, R59, R60).
	Blocked   int64  // requests waiting in the kernel right now, each on a broker thread
	Stuck     int64  // of those, the ones already answered or abandoned
	Deadlines uint64 // answered EINTR at their deadline
	Abandoned uint64 // given up because the target gave up (ID_VALID)
	OverCap   uint64 // answered EAGAIN because a cap was full
	Threads   int64  // serving goroutines (locked threads) alive, every listener
	Syscalls  []SyscallMetrics
}

// SyscallMetrics are the counters of one system call. Percentiles come
// from a histogram with four buckets per power of two, so they are upper
// bounds within 19 %.
type SyscallMetrics struct {
	Name    string
	Count   uint64
	Denied  uint64
	Errors  uint64 // replies with an errno, denials included
	Total   time.Duration
	P50     time.Duration
	P90     time.Duration
	P99     time.Duration
	Max     time.Duration
	Average time.Duration
}

const (
	subBuckets = 4
	numBuckets = 64 * subBuckets
)

// histogram counts latencies in logarithmic buckets with atomics only.
type histogram struct {
	buckets [numBuckets]atomic.Uint64
	count   atomic.Uint64
	sum     atomic.Int64
	max     atomic.Int64
}

// bucketOf maps a duration in ns to its bucket: the power of two and the
// next two bits below the leading one.
func bucketOf(ns int64) int {
	if ns < 2*subBuckets {
		return int(max(ns, 0)) // exact below 8 ns
	}
	u := uint64(ns)
	lz := 63 - bits.LeadingZeros64(u)
	sub := int(u>>(lz-2)) & (subBuckets - 1)
	return lz*subBuckets + sub
}

// bucketUpper is the largest duration (ns) of bucket i.
func bucketUpper(i int) int64 {
	if i < 3*subBuckets {
		return int64(min(i, 2*subBuckets-1))
	}
	lz, sub := i/subBuckets, i%subBuckets
	lower := uint64(1)<<lz | uint64(sub)<<(lz-2)
	return int64(lower + uint64(1)<<(lz-2) - 1)
}

func (h *histogram) add(d time.Duration) {
	ns := int64(d)
	h.buckets[bucketOf(ns)].Add(1)
	h.count.Add(1)
	h.sum.Add(ns)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			break
		}
	}
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *histogram) quantile(counts *[numBuckets]uint64, total uint64, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i := range counts {
		seen += counts[i]
		if seen >= rank {
			return time.Duration(min(bucketUpper(i), h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

type syscallStats struct {
	hist   histogram
	denied atomic.Uint64
	errors atomic.Uint64
}

type metrics struct {
	requests    atomic.Uint64
	denied      atomic.Uint64
	dropped     atomic.Uint64
	panics      atomic.Uint64
	sendErrors  atomic.Uint64
	matcherNs   atomic.Int64
	matcherRuns atomic.Uint64
	stuck       atomic.Int64
	deadlines   atomic.Uint64
	abandoned   atomic.Uint64
	overCap     atomic.Uint64
	threads     atomic.Int64
	perSyscall  []syscallStats // by sysCall.idx; the last is for unknown calls
}

func (m *metrics) record(sc *sysCall, dropped, deny, isErr bool, lat time.Duration) {
	m.requests.Add(1)
	if dropped {
		return
	}
	st := &m.perSyscall[len(m.perSyscall)-1]
	if sc != nil {
		st = &m.perSyscall[sc.idx]
	}
	st.hist.add(lat)
	if deny {
		m.denied.Add(1)
		st.denied.Add(1)
	}
	if isErr {
		st.errors.Add(1)
	}
}

// Metrics returns a snapshot of the broker's counters. It is cheap enough
// to call at any time; the serving goroutines never wait for it.
func (b *Broker) Metrics() Metrics {
	m := &b.metrics
	out := Metrics{
		Requests:    m.requests.Load(),
		Denied:      m.denied.Load(),
		Dropped:     m.dropped.Load(),
		Panics:      m.panics.Load(),
		SendErrors:  m.sendErrors.Load(),
		FdsInUse:    b.fds.n.Load(),
		FdLimit:     b.fds.max,
		MatcherTime: time.Duration(m.matcherNs.Load()),
		MatcherRuns: m.matcherRuns.Load(),
		Blocked:     b.blocked.Load(),
		Stuck:       m.stuck.Load(),
		Deadlines:   m.deadlines.Load(),
		Abandoned:   m.abandoned.Load(),
		OverCap:     m.overCap.Load(),
		Threads:     m.threads.Load(),
	}
	for i := range m.perSyscall {
		st := &m.perSyscall[i]
		var counts [numBuckets]uint64
		var total uint64
		for j := range counts {
			counts[j] = st.hist.buckets[j].Load()
			total += counts[j]
		}
		if total == 0 {
			continue
		}
		name := "unknown"
		if i < len(syscallList) {
			name = syscallList[i].name
		}
		sum := time.Duration(st.hist.sum.Load())
		out.Syscalls = append(out.Syscalls, SyscallMetrics{
			Name:    name,
			Count:   total,
			Denied:  st.denied.Load(),
			Errors:  st.errors.Load(),
			Total:   sum,
			P50:     st.hist.quantile(&counts, total, 0.50),
			P90:     st.hist.quantile(&counts, total, 0.90),
			P99:     st.hist.quantile(&counts, total, 0.99),
			Max:     time.Duration(st.hist.max.Load()),
			Average: sum / time.Duration(total),
		})
	}
	sort.Slice(out.Syscalls, func(i, j int) bool { return out.Syscalls[i].Name < out.Syscalls[j].Name })
	return out
}
