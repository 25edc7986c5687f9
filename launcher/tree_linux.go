//go:build linux

package launcher

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// killTree kills the worker pid, its process group (the worker leads its
// own session and group) and every descendant found through
// /proc/<pid>/task/*/children, children first listed, then killed.
func killTree(pid int) {
	if pid <= 0 {
		return
	}
	seen := map[int]bool{}
	var walk func(p int)
	walk = func(p int) {
		if seen[p] || len(seen) > 100000 {
			return
		}
		seen[p] = true
		for _, c := range children(p) {
			walk(c)
		}
	}
	walk(pid)
	unix.Kill(-pid, unix.SIGKILL)
	for p := range seen {
		unix.Kill(p, unix.SIGKILL)
	}
}

// children lists the children of every thread of pid.
func children(pid int) []int {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
