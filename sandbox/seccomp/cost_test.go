package seccomp

import (
	"fmt"
	"testing"
)

// hotCalls are the syscalls the workloads (workloads.md) make most, with
// typical arguments.
var hotCalls = []struct {
	name string
	args []uint64
}{
	{"read", nil}, {"write", nil}, {"close", nil}, {"futex", nil}, {"mmap", nil},
	{"munmap", nil}, {"mprotect", nil}, {"madvise", nil}, {"epoll_pwait", nil},
	{"clock_gettime", nil}, {"getpid", nil}, {"sendmsg", nil}, {"recvmsg", nil},
	{"openat", nil}, {"newfstatat", nil}, {"statx", nil}, {"faccessat2", nil},
	{"readlinkat", nil}, {"fstat", nil}, {"lseek", nil}, {"getdents64", nil},
	{"fcntl", []uint64{3, 3}},         // F_GETFL
	{"fcntl", []uint64{3, 6}},         // F_SETLK
	{"ioctl", []uint64{0, 0x5401}},    // TCGETS
	{"prctl", []uint64{0x53564d41}},   // PR_SET_VMA
	{"clone", []uint64{0x3d0f00}},     // thread
	{"memfd_create", []uint64{0, 3}},  //
	{"socketpair", []uint64{1, 5, 0}}, //
	{"setpriority", nil}, {"sched_yield", nil}, {"rt_sigprocmask", nil},
}

// TestInstructionCounts reports how many instructions the default filter
// executes per syscall and fails if any syscall needs more than a bound
// that a linear list of ~300 comparisons would blow through.
func TestInstructionCounts(t *testing.T) {
	for _, a := range arches {
		prog := mustBuild(t, Profile{Arch: a})
		t.Logf("%v: %d instructions", a, len(prog))
		for _, c := range hotCalls {
			nr, ok := a.Syscall(c.name)
			if !ok {
				continue
			}
			d := Data{Nr: int32(nr), Arch: a}
			copy(d.Args[:], c.args)
			act, steps, err := interp(prog, d)
			if err != nil {
				t.Fatal(err)
			}
			cached := ""
			if constAllow(prog, a, nr) {
				cached = " (kernel cache: filter skipped)"
			}
			t.Logf("%v %-14s %-16s %2d insns%s", a, c.name, act, steps, cached)
			if steps > 22 {
				t.Errorf("%v %s: %d instructions", a, c.name, steps)
			}
		}
		worst, sum, n := 0, 0, 0
		for nr := 0; nr < 1024; nr++ {
			_, steps, err := interp(prog, Data{Nr: int32(nr), Arch: a})
			if err != nil {
				t.Fatal(err)
			}
			worst = max(worst, steps)
			sum += steps
			n++
		}
		t.Logf("%v: numbers 0-1023 with zero args: mean %.1f, worst %d instructions", a, float64(sum)/float64(n), worst)
		if worst > 32 {
			t.Errorf("%v: worst case %d instructions", a, worst)
		}
	}
}

// TestKernelActionCache: every syscall the default filter allows
// unconditionally must be provably constant for the kernel's seccomp
// action cache (5.11+), and nothing else may be.
func TestKernelActionCache(t *testing.T) {
	for _, a := range arches {
		p := Profile{Arch: a}
		prog := mustBuild(t, p)
		f, err := p.Filter()
		if err != nil {
			t.Fatal(err)
		}
		for nr := 0; nr < 1024; nr++ {
			want := false
			for _, r := range f.Rules {
				if r.Nr == nr && r.unconditional() && r.Action == ActAllow {
					want = true
				}
			}
			if got := constAllow(prog, a, nr); got != want {
				t.Errorf("%v %d (%s): cacheable %v, want %v", a, nr, a.SyscallName(nr), got, want)
			}
		}
	}
}

// BenchmarkFilter runs the default filter in the x/net VM and reports the
// instructions the kernel would execute (insns/op).
func BenchmarkFilter(b *testing.B) {
	for _, a := range arches {
		prog := mustBuild(b, Profile{Arch: a})
		vm, err := newVM(prog)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range hotCalls {
			nr, ok := a.Syscall(c.name)
			if !ok {
				continue
			}
			d := Data{Nr: int32(nr), Arch: a}
			copy(d.Args[:], c.args)
			_, steps, _ := interp(prog, d)
			b.Run(fmt.Sprintf("%v/%s", a, c.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := vm.run(d); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(steps), "insns/op")
			})
		}
	}
}

// BenchmarkBuild measures building the default profile.
func BenchmarkBuild(b *testing.B) {
	for b.Loop() {
		if _, err := (Profile{Arch: ArchAMD64}).Build(); err != nil {
			b.Fatal(err)
		}
	}
}
