//go:build linux

package testutil

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// settleTime is how long the leak checks wait for descriptors and
// goroutines to go away before they report them.
var settleTime = 2 * time.Second

// warmUp makes the Go runtime open the descriptors it opens once and keeps
// (the network poller's epoll and eventfd), so that they do not show up as
// leaks of the first test that uses a pollable file.
var warmUp = sync.OnceFunc(func() {
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	r.SetReadDeadline(time.Now())
	r.Close()
	w.Close()
})

// openFDs returns the process's open descriptors and their readlink
// targets, without the one it reads /proc/self/fd through.
func openFDs() (map[int]string, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	self := -1
	if rc, err := d.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { self = int(fd) })
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	fds := make(map[int]string, len(names))
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd == self {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + n)
		if err != nil {
			continue // closed meanwhile
		}
		fds[fd] = target
	}
	return fds, nil
}

// FDs returns the number of descriptors open in the process.
func FDs(tb testing.TB) int {
	tb.Helper()
	fds, err := openFDs()
	if err != nil {
		tb.Fatalf("list open descriptors: %v", err)
	}
	return len(fds)
}

// newFDs describes the descriptors of after that are not in before (by
// number and target), sorted by number.
func newFDs(before, after map[int]string) []string {
	var nums []int
	for fd, target := range after {
		if old, ok := before[fd]; !ok || old != target {
			nums = append(nums, fd)
		}
	}
	slices.Sort(nums)
	out := make([]string, len(nums))
	for i, fd := range nums {
		out[i] = fmt.Sprintf("fd %d -> %s", fd, after[fd])
	}
	return out
}

// settleFDs waits up to settleTime for the descriptors opened since before
// to be closed and returns those that are not.
func settleFDs(before map[int]string) []string {
	deadline := time.Now().Add(settleTime)
	for {
		after, err := openFDs()
		if err != nil {
			return []string{"list open descriptors: " + err.Error()}
		}
		leaked := newFDs(before, after)
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckFDLeaks records the open descriptors now and, when the test ends,
// fails it if descriptors opened since are still open after a short
// settling time, listing them with their readlink targets.
//
// Call it first in the test, so that its cleanup runs after the test's
// other cleanups. It sees the whole process: do not use it in parallel
// tests.
func CheckFDLeaks(tb testing.TB) {
	tb.Helper()
	warmUp()
	before, err := openFDs()
	if err != nil {
		tb.Fatalf("list open descriptors: %v", err)
	}
	tb.Cleanup(func() {
		if leaked := settleFDs(before); len(leaked) > 0 {
			tb.Errorf("%d file descriptors leaked:\n\t%s", len(leaked), strings.Join(leaked, "\n\t"))
		}
	})
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) \[`)

// goroutines returns the stacks of all goroutines by id, without those the
// testing package created (running tests) and the caller.
func goroutines() map[int]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[int]string{}
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		m := goroutineHeader.FindSubmatch(g)
		if m == nil || i == 0 { // the first one is the caller
			continue
		}
		if bytes.Contains(g, []byte("\ncreated by testing.")) {
			continue
		}
		id, _ := strconv.Atoi(string(m[1]))
		stacks[id] = string(g)
	}
	return stacks
}

// CheckGoroutineLeaks records the running goroutines now and, when the
// test ends, fails it if goroutines started since are still running after
// a short settling time, with their stacks. Goroutines of the testing
// package (other tests) are ignored.
//
// Call it first in the test, so that its cleanup runs after the test's
// other cleanups. Do not use it in parallel tests.
func CheckGoroutineLeaks(tb testing.TB) {
	tb.Helper()
	before := goroutines()
	tb.Cleanup(func() {
		deadline := time.Now().Add(settleTime)
		for {
			var leaked []string
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				slices.Sort(leaked)
				tb.Errorf("%d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
