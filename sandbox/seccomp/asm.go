package seccomp

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// ErrTooLong is returned (wrapped) when a program needs more than the
// kernel's 4096 instructions (BPF_MAXINSNS).
var ErrTooLong = errors.New("filter exceeds the kernel's 4096-instruction limit")

// label names a position in the program; it is bound to the instruction
// that follows the bind. Conditional jumps refer to labels, and the
// assembler turns them into the 8-bit forward offsets classic BPF has,
// inserting trampolines where a target is more than 255 instructions away.
type label int32

const noLabel label = 0

type asmInsn struct {
	op     uint16
	k      uint32
	jt, jf label // conditional jumps
	ja     label // unconditional jump
}

type asmItem struct {
	bind label // != noLabel: binds the label here; insn unused
	insn asmInsn
}

// aState is what the accumulator holds: the 32-bit word at off, ANDed with
// mask. It lets consecutive comparisons of one argument share a load.
type aState struct {
	known bool
	off   uint32
	mask  uint32
}

// flow is the accumulator state reaching a point: dead (no path reaches it),
// known, or unknown (paths disagree).
type flow struct {
	live bool
	a    aState
}

func (f flow) merge(g flow) flow {
	switch {
	case !f.live:
		return g
	case !g.live:
		return f
	case f.a == g.a:
		return f
	}
	return flow{live: true}
}

// assembler collects instructions and labels. It tracks the accumulator's
// contents along every edge so that emitters can skip redundant loads; this
// is sound because classic BPF only jumps forward, so every jump to a label
// is emitted before the label is bound.
type assembler struct {
	items   []asmItem
	nlabels label
	cur     flow
	pending map[label]flow
}

func newAssembler() *assembler {
	return &assembler{cur: flow{live: true}, pending: map[label]flow{}}
}

func (a *assembler) newLabel() label {
	a.nlabels++
	return a.nlabels
}

func (a *assembler) bind(l label) {
	a.items = append(a.items, asmItem{bind: l})
	a.cur = a.cur.merge(a.pending[l])
	delete(a.pending, l)
}

func (a *assembler) edge(l label) { a.pending[l] = a.pending[l].merge(a.cur) }

// load leaves word(off) & mask in A, reusing what A already holds when it can.
func (a *assembler) load(off, mask uint32) {
	if s := a.cur.a; a.cur.live && s.known && s.off == off {
		if s.mask == mask {
			return
		}
		if mask&^s.mask == 0 { // (w & s.mask) & mask == w & mask
			a.insn(asmInsn{op: opAndK, k: mask})
			a.cur.a.mask = mask
			return
		}
	}
	a.insn(asmInsn{op: opLdAbsW, k: off})
	if mask != 0xffffffff {
		a.insn(asmInsn{op: opAndK, k: mask})
	}
	a.cur.a = aState{known: true, off: off, mask: mask}
}

func (a *assembler) insn(in asmInsn) { a.items = append(a.items, asmItem{insn: in}) }

// jump emits a conditional jump on A against k.
func (a *assembler) jump(op uint16, k uint32, jt, jf label) {
	a.insn(asmInsn{op: op, k: k, jt: jt, jf: jf})
	a.edge(jt)
	a.edge(jf)
	a.cur.live = false
}

func (a *assembler) jumpTo(l label) {
	a.insn(asmInsn{op: opJa, ja: l})
	a.edge(l)
	a.cur.live = false
}

func (a *assembler) ret(act Action) {
	a.insn(asmInsn{op: opRetK, k: uint32(act)})
	a.cur.live = false
}

func isCondJump(op uint16) bool {
	switch op {
	case opJeqK, opJgtK, opJgeK, opJsetK:
		return true
	}
	return false
}

// assemble resolves labels and returns the program. Targets more than 255
// instructions ahead of a conditional jump get a trampoline right after the
// jump: a copy of the target if it is a RET or a JA (no extra instruction
// executed), else a JA to it. Inserting trampolines moves other targets
// further away, so this repeats until every offset fits; each jump gets at
// most two trampolines, which bounds the loop.
func (a *assembler) assemble() ([]bpf.RawInstruction, error) {
	items := dropJumpsToNext(a.items)
	for {
		pos, at, err := layout(items, a.nlabels)
		if err != nil {
			return nil, err
		}
		changed := false
		out := make([]asmItem, 0, len(items)+8)
		idx := 0
		for _, it := range items {
			if it.bind != noLabel {
				out = append(out, it)
				continue
			}
			in := it.insn
			if isCondJump(in.op) {
				var tramps []asmItem
				for _, t := range []*label{&in.jt, &in.jf} {
					d := pos[*t] - idx - 1
					if d < 0 {
						return nil, bug(fmt.Errorf("backward jump at %d", idx))
					}
					if d <= maxJumpOf {
						continue
					}
					target := *t
					tl := a.newLabel()
					*t = tl
					tin := at[pos[target]]
					if tin.op != opRetK && tin.op != opJa {
						tin = asmInsn{op: opJa, ja: target}
					}
					tramps = append(tramps, asmItem{bind: tl}, asmItem{insn: tin})
					changed = true
				}
				out = append(out, asmItem{insn: in})
				out = append(out, tramps...)
			} else {
				out = append(out, it)
			}
			idx++
		}
		items = out
		if !changed {
			break
		}
	}
	pos, _, err := layout(items, a.nlabels)
	if err != nil {
		return nil, err
	}
	var prog []bpf.RawInstruction
	for _, it := range items {
		if it.bind != noLabel {
			continue
		}
		in := it.insn
		idx := len(prog)
		raw := bpf.RawInstruction{Op: in.op, K: in.k}
		switch {
		case in.op == opJa:
			raw.K = uint32(pos[in.ja] - idx - 1)
		case isCondJump(in.op):
			raw.Jt = uint8(pos[in.jt] - idx - 1)
			raw.Jf = uint8(pos[in.jf] - idx - 1)
		}
		prog = append(prog, raw)
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: assemble filter: %d instructions: %w", len(prog), ErrTooLong)
	}
	if len(prog) == 0 || prog[len(prog)-1].Op != opRetK {
		return nil, bug(errors.New("program does not end with a return"))
	}
	return prog, nil
}

// layout returns each label's instruction index and the instructions by index.
func layout(items []asmItem, nlabels label) ([]int, []asmInsn, error) {
	pos := make([]int, nlabels+1)
	for i := range pos {
		pos[i] = -1
	}
	var at []asmInsn
	for _, it := range items {
		if it.bind != noLabel {
			pos[it.bind] = len(at)
			continue
		}
		at = append(at, it.insn)
	}
	for _, it := range items {
		in := it.insn
		if it.bind != noLabel {
			continue
		}
		for _, l := range []label{in.jt, in.jf, in.ja} {
			if l != noLabel && (pos[l] < 0 || pos[l] >= len(at)) {
				return nil, nil, bug(fmt.Errorf("label %d not bound to an instruction", l))
			}
		}
	}
	return pos, at, nil
}

// dropJumpsToNext removes unconditional jumps to the very next instruction
// (emitters produce them when a constant-folded comparison falls through).
func dropJumpsToNext(items []asmItem) []asmItem {
	out := make([]asmItem, 0, len(items))
	for i, it := range items {
		if it.bind == noLabel && it.insn.op == opJa {
			next := false
			for _, b := range items[i+1:] {
				if b.bind == noLabel {
					break
				}
				if b.bind == it.insn.ja {
					next = true
					break
				}
			}
			if next {
				continue
			}
		}
		out = append(out, it)
	}
	return out
}

// bug reports an impossible state: a bug in this package, not in its input.
func bug(err error) error {
	return fmt.Errorf("seccomp: internal error (please report): %w", err)
}
