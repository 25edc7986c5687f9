package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestUnsafeAllow(t *testing.T) {
	p := mustParse(t, "syscall unsafe-allow io_uring_setup io_uring_enter\nsyscall unsafe-allow ptrace\nlandlock off\nlandlock on\n")
	sys := p.Syscalls()
	for i := range sys {
		sys[i].Pos = Position{}
	}
	want := []SyscallRule{
		{Action: "unsafe-allow", Names: []string{"io_uring_setup", "io_uring_enter"}},
		{Action: "unsafe-allow", Names: []string{"ptrace"}},
	}
	if !reflect.DeepEqual(sys, want) {
		t.Errorf("Syscalls() = %+v, want %+v", sys, want)
	}
	if s := p.String(); !strings.Contains(s, "\nsyscall unsafe-allow io_uring_setup io_uring_enter\nsyscall unsafe-allow ptrace\n") {
		t.Errorf("String() lacks the unsafe-allow lines:\n%s", s)
	}
	checkRoundTrip(t, p)
	if diags := p.Lint(); len(diags) != 2 {
		t.Errorf("Lint() = %q, want one warning per exposure", diags)
	}
}

// TestUnsafeTable checks the table of unsafe-allow against the syscall
// tables and the path syscalls: every name exists on some architecture,
// none takes a path, and every entry says what it exposes.
func TestUnsafeTable(t *testing.T) {
	list := UnsafeSyscalls()
	if len(list) == 0 || !slices.IsSortedFunc(list, func(a, b UnsafeSyscall) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatalf("UnsafeSyscalls() empty or unsorted: %v", list)
	}
	landlock := 0
	for _, u := range list {
		if _, ok := syscallArches[u.Name]; !ok {
			t.Errorf("%s: unknown syscall", u.Name)
		}
		if _, path := pathSyscalls()[u.Name]; path {
			t.Errorf("%s: both unsafe-allowable and a path syscall", u.Name)
		}
		if u.Exposes == "" {
			t.Errorf("%s: no exposure", u.Name)
		}
		if got, ok := LookupUnsafe(u.Name); !ok || got != u {
			t.Errorf("LookupUnsafe(%s) = %v, %v", u.Name, got, ok)
		}
		if u.NeedsLandlock {
			landlock++
			if !strings.HasPrefix(u.Name, "io_uring_") {
				t.Errorf("%s needs Landlock: only io_uring is limited by Landlock alone", u.Name)
			}
		}
	}
	if landlock != 3 {
		t.Errorf("%d syscalls need Landlock, want io_uring_setup, io_uring_enter, io_uring_register", landlock)
	}
	for name := range pathSyscalls() {
		if _, ok := syscallArches[name]; !ok {
			t.Errorf("path syscall %s: unknown syscall", name)
		}
	}
}
