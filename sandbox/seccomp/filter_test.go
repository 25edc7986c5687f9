package seccomp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// interesting returns values around v that exercise both halves.
func interesting(r *rand.Rand, v uint64) uint64 {
	switch r.IntN(10) {
	case 0:
		return v
	case 1:
		return v + 1
	case 2:
		return v - 1
	case 3:
		return v ^ (uint64(r.Uint32()) << 32) // same low half
	case 4:
		return v ^ uint64(r.Uint32()) // same high half
	case 5:
		return v ^ 1<<r.IntN(64)
	case 6:
		return 0
	case 7:
		return ^uint64(0)
	case 8:
		return uint64(r.Uint32())
	}
	return r.Uint64()
}

func randCond(r *rand.Rand) Cond {
	c := Cond{Arg: r.IntN(6), Wide: r.IntN(2) == 0, Op: Op(1 + r.IntN(6))}
	full := uint64(0xffffffff)
	if c.Wide {
		full = ^uint64(0)
	}
	switch r.IntN(6) {
	case 0:
		c.Mask = r.Uint64() & full
	case 1:
		c.Mask = 0xffffffff00000000 & full // high half only (zero for narrow)
	case 2:
		c.Mask = 1 << r.IntN(32)
	}
	switch r.IntN(5) {
	case 0:
		c.Value = 0
	case 1:
		c.Value = 0xffffffff
	case 2:
		c.Value = uint64(r.IntN(8))
	case 3:
		c.Value = uint64(r.Uint32()) << 32
	default:
		c.Value = r.Uint64()
	}
	c.Value &= full
	return c
}

func randAction(r *rand.Rand) Action {
	return []Action{ActAllow, ActNotify, ActKillProcess, ActTrap, ActLog, ActErrno(uint16(r.IntN(5000)))}[r.IntN(6)]
}

// TestFilterMatchesEval assembles random filters and checks that the program
// decides like Filter.Eval for inputs near every compared value, in both the
// x/net VM and the counting interpreter.
func TestFilterMatchesEval(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		a := arches[iter%2]
		f := &Filter{Arch: a, BadArch: ActKillProcess, Default: ActErrno(38)}
		used := map[int]bool{}
		for n := r.IntN(12); n > 0; n-- {
			nr := r.IntN(40)
			if used[nr] {
				continue
			}
			used[nr] = true
			rule := Rule{Nr: nr, Action: randAction(r)}
			for c := r.IntN(4); c > 0; c-- {
				var cs Case
				for k := r.IntN(4); k > 0; k-- {
					cs.When = append(cs.When, randCond(r))
				}
				cs.Action = randAction(r)
				rule.Cases = append(rule.Cases, cs)
			}
			f.Rules = append(f.Rules, rule)
		}
		prog, err := f.Assemble()
		if err != nil {
			t.Fatalf("Assemble: %v", err)
		}
		checkKernelRules(t, prog)
		m := newMachine(t, prog)
		for k := 0; k < 200; k++ {
			d := Data{Nr: int32(r.IntN(42)), Arch: a}
			for i := range d.Args {
				d.Args[i] = r.Uint64()
			}
			// Steer arguments towards the compared values.
			for _, rule := range f.Rules {
				for _, c := range rule.Cases {
					for _, cond := range c.When {
						if r.IntN(3) == 0 {
							d.Args[cond.Arg] = interesting(r, cond.Value)
						}
					}
				}
			}
			if got, want := m.run(d), f.Eval(d); got != want {
				t.Fatalf("filter %+v\ninput %+v: program %v, Eval %v\n%s", f, d, got, want, Disassemble(prog))
			}
		}
	}
}

// TestWideCompares pins the two-halves logic on hand-picked values.
func TestWideCompares(t *testing.T) {
	const v = 0x00000001_80000000
	vals := []uint64{0, v - 1, v, v + 1, 0x80000000, 0x00000002_00000000, 0x00000001_00000000, 0x00000000_ffffffff, ^uint64(0), 0x00000001_7fffffff}
	for _, op := range []Op{OpEq, OpNe, OpGt, OpGe, OpLt, OpLe} {
		for _, wide := range []bool{true, false} {
			value := uint64(v)
			if !wide {
				value = 0x80000000
			}
			f := &Filter{Arch: ArchAMD64, BadArch: ActKillProcess, Default: ActErrno(38), Rules: []Rule{{
				Nr: 1, Cases: []Case{{When: []Cond{{Arg: 2, Wide: wide, Op: op, Value: value}}, Action: ActAllow}}, Action: ActErrno(1)}}}
			prog, err := f.Assemble()
			if err != nil {
				t.Fatal(err)
			}
			m := newMachine(t, prog)
			for _, x := range vals {
				d := Data{Nr: 1, Arch: ArchAMD64, Args: [6]uint64{0, 0, x}}
				y := x
				if !wide {
					y = uint64(uint32(x))
				}
				want := ActErrno(1)
				if compare(op, y, value) {
					want = ActAllow
				}
				if got := m.run(d); got != want {
					t.Errorf("wide=%v %#x %v %#x: got %v want %v", wide, x, op, value, got, want)
				}
			}
		}
	}
}

// TestLongJumps forces targets more than 255 instructions away, both inside
// a rule and from the dispatch tree, and checks every outcome.
func TestLongJumps(t *testing.T) {
	for _, a := range arches {
		f := &Filter{Arch: a, BadArch: ActKillProcess, Default: ActErrno(38)}
		big := Rule{Nr: 3, Action: ActAllow}
		for i := 0; i < 300; i++ {
			big.Cases = append(big.Cases, Case{When: []Cond{Arg64(0).Eq(uint64(i) << 32)}, Action: ActErrno(uint16(100 + i))})
		}
		f.Rules = append(f.Rules, big)
		for nr := 10; nr < 700; nr++ {
			r := Rule{Nr: nr, Action: []Action{ActAllow, ActNotify, ActErrno(13)}[nr%3]}
			if nr%50 == 0 {
				r.Cases = []Case{{When: []Cond{Arg32(1).Eq(7)}, Action: ActTrap}}
			}
			f.Rules = append(f.Rules, r)
		}
		prog, err := f.Assemble()
		if err != nil {
			t.Fatal(err)
		}
		checkKernelRules(t, prog)
		if len(prog) < 600 {
			t.Fatalf("program too short (%d) to test long jumps", len(prog))
		}
		m := newMachine(t, prog)
		for i := 0; i < 310; i++ {
			d := Data{Nr: 3, Arch: a, Args: [6]uint64{uint64(i) << 32}}
			if got, want := m.run(d), f.Eval(d); got != want {
				t.Fatalf("%v case %d: got %v want %v", a, i, got, want)
			}
		}
		for nr := 0; nr < 1024; nr++ {
			for _, arg := range []uint64{0, 7} {
				d := Data{Nr: int32(nr), Arch: a, Args: [6]uint64{0, arg}}
				if got, want := m.run(d), f.Eval(d); got != want {
					t.Fatalf("%v nr %d: got %v want %v", a, nr, got, want)
				}
			}
		}
	}
}

func TestTooLong(t *testing.T) {
	f := &Filter{Arch: ArchARM64, BadArch: ActKillProcess, Default: ActErrno(38)}
	r := Rule{Nr: 1, Action: ActAllow}
	for i := 0; i < 1100; i++ {
		r.Cases = append(r.Cases, Case{When: []Cond{Arg64(0).Eq(uint64(i) << 33)}, Action: ActErrno(1)})
	}
	f.Rules = []Rule{r}
	_, err := f.Assemble()
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("got %v, want ErrTooLong", err)
	}
	if !strings.Contains(err.Error(), "instructions") {
		t.Errorf("error %q does not give the size", err)
	}
	f.Rules[0].Cases = f.Rules[0].Cases[:500]
	if _, err := f.Assemble(); err != nil {
		t.Fatalf("smaller filter: %v", err)
	}
}

func TestFilterValidate(t *testing.T) {
	ok := func() *Filter { return &Filter{Arch: ArchAMD64, BadArch: ActKillProcess, Default: ActAllow} }
	for _, tc := range []struct {
		name string
		mod  func(f *Filter)
		want string
	}{
		{"arch", func(f *Filter) { f.Arch = 3 }, "unsupported architecture"},
		{"default", func(f *Filter) { f.Default = 0x12340000 }, "default action"},
		{"badarch", func(f *Filter) { f.BadArch = 0x12340000 }, "bad-arch action"},
		{"nr", func(f *Filter) { f.Rules = []Rule{{Nr: x32Bit, Action: ActAllow}} }, "out of range"},
		{"negative nr", func(f *Filter) { f.Rules = []Rule{{Nr: -1, Action: ActAllow}} }, "out of range"},
		{"dup", func(f *Filter) { f.Rules = []Rule{{Nr: 1, Action: ActAllow}, {Nr: 1, Action: ActAllow}} }, "two rules"},
		{"rule action", func(f *Filter) { f.Rules = []Rule{{Nr: 1, Action: 0x12340000}} }, "unknown action"},
		{"case action", func(f *Filter) {
			f.Rules = []Rule{{Nr: 1, Action: ActAllow, Cases: []Case{{Action: 0x12340000}}}}
		}, "unknown action"},
		{"arg", func(f *Filter) {
			f.Rules = []Rule{{Nr: 1, Cases: []Case{{When: []Cond{Arg32(6).Eq(1)}}}}}
		}, "out of range 0-5"},
		{"op", func(f *Filter) {
			f.Rules = []Rule{{Nr: 1, Cases: []Case{{When: []Cond{{Arg: 1}}}}}}
		}, "unknown comparison"},
		{"narrow value", func(f *Filter) {
			f.Rules = []Rule{{Nr: 1, Cases: []Case{{When: []Cond{Arg32(1).Eq(hi)}}}}}
		}, "32-bit comparison"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ok()
			tc.mod(f)
			_, err := f.Assemble()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// An empty filter is just the checks and the default.
	prog, err := ok().Assemble()
	if err != nil {
		t.Fatal(err)
	}
	m := newMachine(t, prog)
	if got := m.run(Data{Nr: 5, Arch: ArchAMD64}); got != ActAllow {
		t.Errorf("empty filter: %v", got)
	}
	if got := m.run(Data{Nr: 5 | x32Bit, Arch: ArchAMD64}); got != ActKillProcess {
		t.Errorf("empty filter x32: %v", got)
	}
}

func TestVMInputLayout(t *testing.T) {
	d := Data{Nr: 257, Arch: ArchAMD64, IP: 0x11223344_55667788,
		Args: [6]uint64{0xaaaaaaaa_bbbbbbbb, 1, 2, 3, 4, 0xffffffff_00000005}}
	b := d.VMInput()
	want := []byte{
		0, 0, 1, 1, 0xc0, 0, 0, 0x3e, // nr, arch
		0x55, 0x66, 0x77, 0x88, 0x11, 0x22, 0x33, 0x44, // ip: low word first, each big-endian
		0xbb, 0xbb, 0xbb, 0xbb, 0xaa, 0xaa, 0xaa, 0xaa,
	}
	if !bytes.Equal(b[:len(want)], want) {
		t.Fatalf("VMInput = % x", b[:len(want)])
	}
	if len(b) != 64 || !bytes.Equal(b[56:], []byte{0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("args[5] = % x", b[56:])
	}
	for off := uint32(0); off < 64; off += 4 {
		w, _ := word(d, off)
		if got := uint32(b[off])<<24 | uint32(b[off+1])<<16 | uint32(b[off+2])<<8 | uint32(b[off+3]); got != w {
			t.Errorf("offset %d: VM word %#x, kernel word %#x", off, got, w)
		}
	}
}

func TestRun(t *testing.T) {
	prog := mustBuild(t, Profile{Arch: ArchARM64})
	act, err := Run(prog, Data{Nr: 56, Arch: ArchARM64}) // openat
	if err != nil || act != ActNotify {
		t.Fatalf("Run = %v, %v", act, err)
	}
	if _, err := Run(nil, Data{}); err == nil {
		t.Error("Run accepted an empty program")
	}
	if _, err := Run([]bpf.RawInstruction{{Op: opLdAbsW, K: 0}}, Data{}); err == nil {
		t.Error("Run accepted a program without RET")
	}
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		a    Action
		s    string
		errn int
	}{
		{ActAllow, "ALLOW", -1}, {ActNotify, "NOTIFY", -1}, {ActKillProcess, "KILL_PROCESS", -1},
		{ActKillThread, "KILL_THREAD", -1}, {ActTrap, "TRAP", -1}, {ActTrace, "TRACE", -1}, {ActLog, "LOG", -1},
		{ActErrno(13), "ERRNO(13 EACCES)", 13}, {ActErrno(38), "ERRNO(38 ENOSYS)", 38},
		{ActErrno(1234), "ERRNO(1234)", 1234}, {0x12340000, "ACTION(0x12340000)", -1},
	} {
		if got := tc.a.String(); got != tc.s {
			t.Errorf("%#x: String %q, want %q", uint32(tc.a), got, tc.s)
		}
		e, ok := tc.a.Errno()
		if ok != (tc.errn >= 0) || ok && int(e) != tc.errn {
			t.Errorf("%v: Errno = %d, %v", tc.a, e, ok)
		}
	}
}

func TestArchTables(t *testing.T) {
	for _, tc := range []struct {
		a    Arch
		name string
		nr   int
		s    string
	}{{ArchAMD64, "openat", 257, "amd64"}, {ArchARM64, "openat", 56, "arm64"}, {ArchAMD64, "open", 2, "amd64"}} {
		if nr, ok := tc.a.Syscall(tc.name); !ok || nr != tc.nr {
			t.Errorf("%v %s = %d, %v", tc.a, tc.name, nr, ok)
		}
		if n := tc.a.SyscallName(tc.nr); n != tc.name {
			t.Errorf("%v %d = %q", tc.a, tc.nr, n)
		}
		if tc.a.String() != tc.s {
			t.Errorf("%v String", tc.a)
		}
	}
	if _, ok := ArchARM64.Syscall("open"); ok {
		t.Error("arm64 has open")
	}
	if _, ok := ArchARM64.Syscall("arch_specific_syscall"); ok {
		t.Error("pseudo syscall in the table")
	}
	if ArchARM64.SyscallName(244) != "" {
		t.Error("arm64 244 has a name")
	}
	var bogus Arch = 7
	if _, ok := bogus.Syscall("read"); ok || bogus.SyscallName(0) != "" || bogus.Syscalls() != nil {
		t.Error("unsupported arch answers")
	}
	if bogus.String() != "arch(0x7)" {
		t.Errorf("String = %q", bogus.String())
	}
	for _, a := range arches {
		for _, n := range a.Syscalls() {
			nr, _ := a.Syscall(n)
			if a.SyscallName(nr) != n {
				t.Errorf("%v: %s/%d does not round-trip", a, n, nr)
			}
		}
	}
}

func TestDisassemble(t *testing.T) {
	prog := mustBuild(t, Profile{Arch: ArchAMD64})
	out := Disassemble(prog)
	if n := strings.Count(out, "\n"); n != len(prog) {
		t.Errorf("%d lines for %d instructions", n, len(prog))
	}
	for _, want := range []string{
		"   0: ld [4]", "; arch", "; amd64", "; x32 bit", "; openat", "; NOTIFY",
		"; KILL_PROCESS", "; ERRNO(13 EACCES)", "; args[1].lo", "& 0xf", "jset #0x7e020000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	arm := Disassemble(mustBuild(t, Profile{Arch: ArchARM64}))
	if !strings.Contains(arm, "; arm64") || strings.Contains(arm, "x32 bit") {
		t.Errorf("arm64 listing:\n%s", arm)
	}
	raw := Disassemble([]bpf.RawInstruction{{Op: 0x20, K: 16}, {Op: 0x20, K: 36}, {Op: 0x07}, {Op: opRetK, K: retAllow}})
	for _, want := range []string{"args[0].lo", "args[2].hi", "op 0x07", "ALLOW"} {
		if !strings.Contains(raw, want) {
			t.Errorf("raw listing lacks %q:\n%s", want, raw)
		}
	}
}
