//go:build linux

package testutil

import (
	"slices"
	"testing"
)

func TestRerunSummary(t *testing.T) {
	out := []byte(`=== RUN   TestA
--- PASS: TestA (0.01s)
=== RUN   TestB
=== RUN   TestB/root
    b_test.go:3: requires root (running as uid 65534)
=== RUN   TestB/user
--- PASS: TestB (0.02s)
    --- SKIP: TestB/root (0.00s)
    --- PASS: TestB/user (0.01s)
=== RUN   TestC
    c_test.go:9: this is the unprivileged run
--- SKIP: TestC (0.00s)
PASS
`)
	passed, skipped := rerunSummary(out)
	if want := []string{"TestA", "TestB", "TestB/user"}; !slices.Equal(passed, want) {
		t.Errorf("passed %q, want %q", passed, want)
	}
	want := []string{"TestB/root: b_test.go:3: requires root (running as uid 65534)", "TestC: c_test.go:9: this is the unprivileged run"}
	if !slices.Equal(skipped, want) {
		t.Errorf("skipped %q, want %q", skipped, want)
	}
}
