package seccomp

import (
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
)

var arches = []Arch{ArchAMD64, ArchARM64}

func mustBuild(tb testing.TB, p Profile) []bpf.RawInstruction {
	tb.Helper()
	prog, err := p.Build()
	if err != nil {
		tb.Fatalf("Build(%+v): %v", p, err)
	}
	checkKernelRules(tb, prog)
	return prog
}

// machine runs a program both in x/net/bpf's VM (fed Data.VMInput) and in
// interp (which reads seccomp_data words straight from the Data fields, as
// the kernel does), and fails the test if they disagree. Agreement checks
// the VM encoding as well as the program.
type machine struct {
	tb   testing.TB
	prog []bpf.RawInstruction
	vm   vmRunner
}

func newMachine(tb testing.TB, prog []bpf.RawInstruction) *machine {
	tb.Helper()
	vm, err := newVM(prog)
	if err != nil {
		tb.Fatalf("VM rejects program: %v\n%s", err, Disassemble(prog))
	}
	return &machine{tb: tb, prog: prog, vm: vm}
}

func (m *machine) run(d Data) Action {
	m.tb.Helper()
	got, err := m.vm.run(d)
	if err != nil {
		m.tb.Fatalf("VM run %+v: %v", d, err)
	}
	ref, _, err := interp(m.prog, d)
	if err != nil {
		m.tb.Fatalf("interp %+v: %v", d, err)
	}
	if got != ref {
		m.tb.Fatalf("VM says %v, interpreter says %v for %+v", got, ref, d)
	}
	return got
}

func (m *machine) call(a Arch, name string, args ...uint64) Action {
	m.tb.Helper()
	nr, ok := a.Syscall(name)
	if !ok {
		m.tb.Fatalf("%v has no syscall %q", a, name)
	}
	d := Data{Nr: int32(nr), Arch: a, IP: 0x7fff12345678}
	copy(d.Args[:], args)
	return m.run(d)
}

// word returns the 32-bit word at off of seccomp_data on a little-endian
// machine, computed from the fields (no byte encoding involved).
func word(d Data, off uint32) (uint32, error) {
	if off%4 != 0 || off >= seccompData {
		return 0, fmt.Errorf("load at offset %d", off)
	}
	switch {
	case off == offNr:
		return uint32(d.Nr), nil
	case off == offArch:
		return uint32(d.Arch), nil
	case off == offIP:
		return uint32(d.IP), nil
	case off == offIP+4:
		return uint32(d.IP >> 32), nil
	}
	a := d.Args[(off-offArgs)/8]
	if (off-offArgs)%8 == 4 {
		return uint32(a >> 32), nil
	}
	return uint32(a), nil
}

// interp is a second classic-BPF interpreter for the opcodes this package
// emits. It counts executed instructions.
func interp(prog []bpf.RawInstruction, d Data) (Action, int, error) {
	var a uint32
	steps := 0
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		steps++
		switch in.Op {
		case opLdAbsW:
			w, err := word(d, in.K)
			if err != nil {
				return 0, steps, err
			}
			a = w
		case opAndK:
			a &= in.K
		case opJa:
			pc += int(in.K)
		case opJeqK, opJgtK, opJgeK, opJsetK:
			var ok bool
			switch in.Op {
			case opJeqK:
				ok = a == in.K
			case opJgtK:
				ok = a > in.K
			case opJgeK:
				ok = a >= in.K
			case opJsetK:
				ok = a&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case opRetK:
			return Action(in.K), steps, nil
		default:
			return 0, steps, fmt.Errorf("unexpected opcode %#x at %d", in.Op, pc)
		}
	}
	return 0, steps, fmt.Errorf("fell off the end")
}

// constAllow mirrors the kernel's seccomp_is_const_allow (kernel/seccomp.c,
// 5.11+): it emulates the program for a syscall number with only nr and arch
// known, and reports whether it reaches RET ALLOW without loading anything
// else. The kernel then caches the syscall as allowed and skips the filter.
func constAllow(prog []bpf.RawInstruction, a Arch, nr int) bool {
	var reg uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Op {
		case opLdAbsW:
			switch in.K {
			case offNr:
				reg = uint32(nr)
			case offArch:
				reg = uint32(a)
			default:
				return false
			}
		case opRetK:
			return in.K == retAllow
		case opJa:
			pc += int(in.K)
		case opJeqK, opJgeK, opJgtK, opJsetK:
			var ok bool
			switch in.Op {
			case opJeqK:
				ok = reg == in.K
			case opJgeK:
				ok = reg >= in.K
			case opJgtK:
				ok = reg > in.K
			case opJsetK:
				ok = reg&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case opAndK:
			reg &= in.K
		default:
			return false
		}
	}
	return false
}

// checkKernelRules checks what the kernel's bpf_check_classic and
// seccomp_check_filter demand: 1..4096 instructions, only seccomp-legal
// opcodes, loads 4-aligned inside seccomp_data, jumps inside the program,
// a RET last.
func checkKernelRules(tb testing.TB, prog []bpf.RawInstruction) {
	tb.Helper()
	if len(prog) == 0 || len(prog) > maxInsns {
		tb.Fatalf("program length %d", len(prog))
	}
	for i, in := range prog {
		switch in.Op {
		case opLdAbsW:
			if in.K%4 != 0 || in.K >= seccompData {
				tb.Fatalf("%d: load at offset %d", i, in.K)
			}
		case opAndK, opRetK:
		case opJa:
			if uint64(i)+1+uint64(in.K) >= uint64(len(prog)) {
				tb.Fatalf("%d: ja out of program", i)
			}
		case opJeqK, opJgtK, opJgeK, opJsetK:
			if i+1+int(in.Jt) >= len(prog) || i+1+int(in.Jf) >= len(prog) {
				tb.Fatalf("%d: jump out of program", i)
			}
		default:
			tb.Fatalf("%d: opcode %#x", i, in.Op)
		}
	}
	if prog[len(prog)-1].Op != opRetK {
		tb.Fatalf("last instruction is not RET")
	}
}
