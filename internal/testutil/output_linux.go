//go:build linux

package testutil

import "strings"

// Lines splits a worker's output into its lines, without the trailing
// newline; no output is no lines (nil).
func Lines(out string) []string {
	out = strings.TrimRight(out, "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// Sink collects values that other goroutines send while a worker runs,
// such as its audit events: Add never blocks and drops what exceeds the
// capacity. Drain it once, when nothing calls Add any more.
type Sink[E any] struct {
	ch chan E
}

// NewSink returns a Sink that holds up to capacity values.
func NewSink[E any](capacity int) *Sink[E] {
	return &Sink[E]{ch: make(chan E, capacity)}
}

// Add keeps e, or drops it when the sink is full.
func (s *Sink[E]) Add(e E) {
	select {
	case s.ch <- e:
	default:
	}
}

// Drain closes the sink and returns what it holds, in the order added.
func (s *Sink[E]) Drain() []E {
	close(s.ch)
	var out []E
	for e := range s.ch {
		out = append(out, e)
	}
	return out
}
