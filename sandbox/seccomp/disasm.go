package seccomp

import (
	"fmt"
	"strings"

	"golang.org/x/net/bpf"
)

// Disassemble returns a listing of a seccomp program, one instruction a
// line, with absolute jump targets and comments naming what the accumulator
// holds (nr, arch, args[i] halves), the syscall a number compares against
// (the arch is taken from the program's own arch check), and each RET's
// action. Instructions outside the subset this package emits are printed
// raw; the listing never fails.
func Disassemble(prog []bpf.RawInstruction) string {
	states := accStates(prog)
	arch := Arch(0)
	var b strings.Builder
	for i, in := range prog {
		a := states[i]
		var text, comment string
		switch in.Op {
		case opLdAbsW:
			text = fmt.Sprintf("ld [%d]", in.K)
			comment = wordName(in.K)
		case opAndK:
			text = fmt.Sprintf("and #%#x", in.K)
		case opJa:
			text = fmt.Sprintf("ja %d", i+1+int(in.K))
		case opJeqK, opJgtK, opJgeK, opJsetK:
			name := map[uint16]string{opJeqK: "jeq", opJgtK: "jgt", opJgeK: "jge", opJsetK: "jset"}[in.Op]
			text = fmt.Sprintf("%s #%#x, %d, %d", name, in.K, i+1+int(in.Jt), i+1+int(in.Jf))
			switch {
			case a.known && a.off == offArch && a.mask == 0xffffffff:
				if Arch(in.K).table() != nil && in.Op == opJeqK {
					arch = Arch(in.K)
				}
				comment = Arch(in.K).String()
			case a.known && a.off == offNr && a.mask == 0xffffffff && in.Op != opJsetK:
				if n := arch.SyscallName(int(in.K)); n != "" {
					comment = n
				} else if in.K == x32Bit {
					comment = "x32 bit"
				}
			case a.known:
				comment = wordName(a.off)
				if a.mask != 0xffffffff {
					comment += fmt.Sprintf(" & %#x", a.mask)
				}
			}
		case opRetK:
			text = fmt.Sprintf("ret #%#x", in.K)
			comment = Action(in.K).String()
		default:
			text = fmt.Sprintf("op 0x%02x jt %d jf %d k %#x", in.Op, in.Jt, in.Jf, in.K)
		}
		if comment != "" {
			fmt.Fprintf(&b, "%4d: %-32s ; %s\n", i, text, comment)
		} else {
			fmt.Fprintf(&b, "%4d: %s\n", i, text)
		}
	}
	return b.String()
}

// wordName names the seccomp_data word at byte offset off.
func wordName(off uint32) string {
	switch {
	case off == offNr:
		return "nr"
	case off == offArch:
		return "arch"
	case off == offIP:
		return "ip.lo"
	case off == offIP+4:
		return "ip.hi"
	case off >= offArgs && off < seccompData && off%4 == 0:
		half := "lo"
		if (off-offArgs)%8 == 4 {
			half = "hi"
		}
		return fmt.Sprintf("args[%d].%s", (off-offArgs)/8, half)
	}
	return fmt.Sprintf("offset %d", off)
}

// accStates computes what A holds on entry to each instruction by merging
// the states of all predecessors (jumps only go forward, so one pass does).
func accStates(prog []bpf.RawInstruction) []aState {
	in := make([]flow, len(prog)+1)
	if len(prog) > 0 {
		in[0] = flow{live: true}
	}
	out := make([]aState, len(prog))
	to := func(j int, f flow) {
		if j >= 0 && j < len(in) {
			in[j] = in[j].merge(f)
		}
	}
	for i, ins := range prog {
		f := in[i]
		if f.live {
			out[i] = f.a
		}
		switch ins.Op {
		case opLdAbsW:
			f.a = aState{known: true, off: ins.K, mask: 0xffffffff}
			to(i+1, f)
		case opAndK:
			if f.a.known {
				f.a.mask &= ins.K
			}
			to(i+1, f)
		case opJa:
			to(i+1+int(ins.K), f)
		case opJeqK, opJgtK, opJgeK, opJsetK:
			to(i+1+int(ins.Jt), f)
			to(i+1+int(ins.Jf), f)
		case opRetK:
		default:
			f.a = aState{}
			to(i+1, f)
		}
	}
	return out
}
