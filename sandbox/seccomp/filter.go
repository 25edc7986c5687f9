package seccomp

import (
	"cmp"
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
)

// Filter is a seccomp program in rule form: the assembler's input. A
// [Profile] compiles to a Filter; Filter.Assemble turns it into classic BPF.
//
// The program Assemble emits is, in order:
//
//  1. load arch; any arch other than Arch → BadArch;
//  2. load nr; on amd64 any nr ≥ 0x40000000 (the x32 bit, or a negative
//     number) → BadArch;
//  3. a binary search over syscall numbers: runs of consecutive numbers with
//     the same unconditional action (including the gaps, which get Default)
//     become one range, and one JGE per tree level picks the range, so every
//     syscall is dispatched in about log2(ranges) comparisons;
//  4. at each leaf, a RET, or the rule's argument checks.
//
// Steps 1–3 load only nr and arch and end in constant RETs, so on Linux ≥ 5.11
// the kernel's per-filter action cache (seccomp_cache) proves every
// unconditionally allowed syscall allowed once and skips the filter for it.
type Filter struct {
	Arch    Arch   // ArchAMD64 or ArchARM64
	BadArch Action // foreign arch and x32; taken literally (zero is ActKillThread)
	Default Action // numbers no rule names; taken literally
	Rules   []Rule // at most one per number
}

// Rule decides one syscall number: the first case whose conditions all hold
// gives the action, else Action.
type Rule struct {
	Nr     int
	Cases  []Case
	Action Action
}

// Case is a conjunction of argument conditions and the action taken when
// all of them hold. A Case without conditions always matches.
type Case struct {
	When   []Cond
	Action Action
}

// Op is a comparison in a Cond. Comparisons are unsigned.
type Op uint8

// Comparison operators.
const (
	OpEq Op = iota + 1
	OpNe
	OpGt
	OpGe
	OpLt
	OpLe
)

// String returns the operator as in Go ("==", "<=", …).
func (o Op) String() string {
	switch o {
	case OpEq:
		return "=="
	case OpNe:
		return "!="
	case OpGt:
		return ">"
	case OpGe:
		return ">="
	case OpLt:
		return "<"
	case OpLe:
		return "<="
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Cond compares one argument register: (args[Arg] & Mask) Op Value.
//
// Width matters because the kernel truncates: an int, unsigned int or pid_t
// argument (ioctl's request, an fd, prctl's option, clone's flags after
// lower_32_bits) is the low 32 bits of the register, whatever the caller put
// in the upper half. Such arguments must be compared narrow, or a caller
// setting bit 32 slips past an equality test (CVE-2019-10063, CVE-2019-7303).
// Pointers and unsigned long arguments are compared wide, as two 32-bit
// halves of the little-endian seccomp_data.
type Cond struct {
	Arg   int    // 0..5
	Wide  bool   // compare all 64 bits; false compares the low 32 only
	Mask  uint64 // zero means every bit of the width
	Op    Op
	Value uint64
}

// Operand selects an argument and a width for building a Cond.
type Operand struct {
	arg  int
	wide bool
}

// Arg32 compares the low 32 bits of argument i (int, unsigned int, pid_t,
// and every flag or command the kernel declares narrower than 64 bits).
func Arg32(i int) Operand { return Operand{arg: i} }

// Arg64 compares all 64 bits of argument i (pointers, unsigned long).
func Arg64(i int) Operand { return Operand{arg: i, wide: true} }

func (o Operand) cond(op Op, mask, v uint64) Cond {
	return Cond{Arg: o.arg, Wide: o.wide, Mask: mask, Op: op, Value: v}
}

// Eq holds when the argument equals v.
func (o Operand) Eq(v uint64) Cond { return o.cond(OpEq, 0, v) }

// Ne holds when the argument differs from v.
func (o Operand) Ne(v uint64) Cond { return o.cond(OpNe, 0, v) }

// Gt holds when the argument is greater than v (unsigned).
func (o Operand) Gt(v uint64) Cond { return o.cond(OpGt, 0, v) }

// Ge holds when the argument is at least v (unsigned).
func (o Operand) Ge(v uint64) Cond { return o.cond(OpGe, 0, v) }

// Lt holds when the argument is less than v (unsigned).
func (o Operand) Lt(v uint64) Cond { return o.cond(OpLt, 0, v) }

// Le holds when the argument is at most v (unsigned).
func (o Operand) Le(v uint64) Cond { return o.cond(OpLe, 0, v) }

// MaskedEq holds when argument & mask == v.
func (o Operand) MaskedEq(mask, v uint64) Cond { return o.cond(OpEq, mask, v) }

// AnySet holds when any of bits is set in the argument.
func (o Operand) AnySet(bits uint64) Cond { return o.cond(OpNe, bits, 0) }

// NoneSet holds when none of bits is set in the argument.
func (o Operand) NoneSet(bits uint64) Cond { return o.cond(OpEq, bits, 0) }

func (c Cond) mask() uint64 {
	full := uint64(0xffffffff)
	if c.Wide {
		full = ^uint64(0)
	}
	if c.Mask == 0 {
		return full
	}
	return c.Mask & full
}

func (c Cond) validate() error {
	if c.Arg < 0 || c.Arg > 5 {
		return fmt.Errorf("argument index %d out of range 0-5", c.Arg)
	}
	if c.Op < OpEq || c.Op > OpLe {
		return fmt.Errorf("unknown comparison %v", c.Op)
	}
	if !c.Wide && (c.Mask > 0xffffffff || c.Value > 0xffffffff) {
		return fmt.Errorf("32-bit comparison of args[%d] with a 64-bit mask or value %#x", c.Arg, c.Value)
	}
	return nil
}

func compare(op Op, x, v uint64) bool {
	switch op {
	case OpEq:
		return x == v
	case OpNe:
		return x != v
	case OpGt:
		return x > v
	case OpGe:
		return x >= v
	case OpLt:
		return x < v
	case OpLe:
		return x <= v
	}
	return false
}

// Holds evaluates c on d in Go, with the kernel's truncation for narrow
// conditions. It is the reference the assembled program is tested against.
func (c Cond) Holds(d Data) bool {
	if c.Arg < 0 || c.Arg > 5 {
		return false
	}
	return compare(c.Op, d.Args[c.Arg]&c.mask(), c.Value)
}

// String formats c as "args[1]/32 & 0xf == 0x1".
func (c Cond) String() string {
	w := "32"
	if c.Wide {
		w = "64"
	}
	if c.Mask != 0 {
		return fmt.Sprintf("args[%d]/%s & %#x %v %#x", c.Arg, w, c.Mask, c.Op, c.Value)
	}
	return fmt.Sprintf("args[%d]/%s %v %#x", c.Arg, w, c.Op, c.Value)
}

// Eval returns what f decides for d, evaluated in Go from the rules. The
// program Assemble returns decides the same for every input; tests and
// FuzzBuild check that in the BPF VM.
func (f *Filter) Eval(d Data) Action {
	if d.Arch != f.Arch {
		return f.BadArch
	}
	nr := uint32(d.Nr)
	if f.Arch == ArchAMD64 && nr >= x32Bit {
		return f.BadArch
	}
	for _, r := range f.Rules {
		if r.Nr >= 0 && uint64(r.Nr) == uint64(nr) {
			return r.eval(d)
		}
	}
	return f.Default
}

func (r Rule) eval(d Data) Action {
	for _, c := range r.Cases {
		ok := true
		for _, cond := range c.When {
			if !cond.Holds(d) {
				ok = false
				break
			}
		}
		if ok {
			return c.Action
		}
	}
	return r.Action
}

func (r Rule) unconditional() bool { return len(r.Cases) == 0 }

// nrLimit is one past the largest number the dispatch tree must cover.
func (f *Filter) nrLimit() uint64 {
	if f.Arch == ArchAMD64 {
		return x32Bit
	}
	return 1 << 32
}

func (f *Filter) validate() error {
	if f.Arch.table() == nil {
		return fmt.Errorf("unsupported architecture %v", f.Arch)
	}
	for _, a := range []struct {
		what string
		act  Action
	}{{"bad-arch action", f.BadArch}, {"default action", f.Default}} {
		if !actionValid(a.act) {
			return fmt.Errorf("%s %v: unknown action", a.what, a.act)
		}
	}
	seen := map[int]bool{}
	for _, r := range f.Rules {
		if r.Nr < 0 || uint64(r.Nr) >= f.nrLimit() {
			return fmt.Errorf("rule for syscall %d: number out of range", r.Nr)
		}
		if seen[r.Nr] {
			return fmt.Errorf("two rules for syscall %d", r.Nr)
		}
		seen[r.Nr] = true
		if !actionValid(r.Action) {
			return fmt.Errorf("rule for syscall %d: unknown action %v", r.Nr, r.Action)
		}
		for _, c := range r.Cases {
			if !actionValid(c.Action) {
				return fmt.Errorf("rule for syscall %d: unknown action %v", r.Nr, c.Action)
			}
			for _, cond := range c.When {
				if err := cond.validate(); err != nil {
					return fmt.Errorf("rule for syscall %d: %w", r.Nr, err)
				}
			}
		}
	}
	return nil
}

// segment is a run [lo, next segment's lo) of numbers that share a leaf:
// either rule (with argument checks) or act.
type segment struct {
	lo   uint64
	act  Action
	rule *Rule
}

func (s segment) sameLeaf(t segment) bool {
	return s.rule == nil && t.rule == nil && s.act == t.act
}

func (f *Filter) segments() []segment {
	// Sorted by pointer: a Rule is 48 bytes, and this sort was a fifth of
	// Build (which every worker start pays).
	rules := make([]*Rule, len(f.Rules))
	for i := range f.Rules {
		rules[i] = &f.Rules[i]
	}
	slices.SortFunc(rules, func(a, b *Rule) int { return cmp.Compare(a.Nr, b.Nr) })
	var segs []segment
	add := func(s segment) {
		if n := len(segs); n > 0 && segs[n-1].sameLeaf(s) {
			return
		}
		segs = append(segs, s)
	}
	next := uint64(0)
	for _, r := range rules {
		nr := uint64(r.Nr)
		if nr > next {
			add(segment{lo: next, act: f.Default})
		}
		if r.unconditional() {
			add(segment{lo: nr, act: r.Action})
		} else {
			add(segment{lo: nr, rule: r})
		}
		next = nr + 1
	}
	if next < f.nrLimit() {
		add(segment{lo: next, act: f.Default})
	}
	return segs
}

// Assemble validates f and returns its classic BPF program, ready for
// seccomp(SECCOMP_SET_MODE_FILTER). It fails (wrapping [ErrTooLong]) when the
// program would exceed 4096 instructions.
func (f *Filter) Assemble() ([]bpf.RawInstruction, error) {
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("seccomp: assemble filter: %w", err)
	}
	g := &codegen{assembler: newAssembler(), rets: map[Action]label{}}

	// 1. Architecture: numbers mean different syscalls per ABI (R11).
	g.load(offArch, 0xffffffff)
	body := g.newLabel()
	g.jump(opJeqK, uint32(f.Arch), body, g.retLabel(f.BadArch))
	g.bind(body)

	// 2. Syscall number; on x86-64 reject x32 (and negative numbers): the
	// x32 ABI shares AUDIT_ARCH_X86_64 but has its own numbering.
	g.load(offNr, 0xffffffff)
	if f.Arch == ArchAMD64 {
		dispatch := g.newLabel()
		g.jump(opJgeK, x32Bit, g.retLabel(f.BadArch), dispatch)
		g.bind(dispatch)
	}

	// 3, 4. Dispatch tree and rule bodies.
	g.tree(f.segments())

	// Shared returns, in first-use order.
	for _, act := range g.retOrder {
		g.bind(g.rets[act])
		g.ret(act)
	}
	return g.assemble()
}

type codegen struct {
	*assembler
	rets     map[Action]label
	retOrder []Action
	split    split
}

func (g *codegen) retLabel(act Action) label {
	l, ok := g.rets[act]
	if !ok {
		l = g.newLabel()
		g.rets[act] = l
		g.retOrder = append(g.retOrder, act)
	}
	return l
}

// target is where a jump to the subtree segs goes: the shared RET of an
// action leaf, or a fresh label the subtree's code will be bound to.
func (g *codegen) target(segs []segment) (l label, emit bool) {
	if len(segs) == 1 && segs[0].rule == nil {
		return g.retLabel(segs[0].act), false
	}
	return g.newLabel(), true
}

// tree emits a balanced binary search over segs; A holds nr on entry.
func (g *codegen) tree(segs []segment) {
	if len(segs) == 1 {
		if segs[0].rule == nil {
			g.ret(segs[0].act)
			return
		}
		g.rule(segs[0].rule)
		return
	}
	mid := len(segs) / 2
	left, right := segs[:mid], segs[mid:]
	lt, emitLeft := g.target(left)
	rt, emitRight := g.target(right)
	g.jump(opJgeK, uint32(right[0].lo), rt, lt)
	if emitLeft {
		g.bind(lt)
		g.tree(left)
	}
	if emitRight {
		g.bind(rt)
		g.tree(right)
	}
}

// failSplit stands for "the next case" inside rule(): a jump to it is
// resolved, when emitted, to the next case's entry that skips its first
// load if A already holds that word, and to the entry that loads it
// otherwise. Consecutive cases testing one argument (prctl's options, ioctl's
// requests) thus share one load even when earlier cases had more conditions.
const failSplit label = -1

type split struct {
	known, other label
	state        aState
}

func (g *codegen) resolve(l label) label {
	if l != failSplit {
		return l
	}
	if g.cur.live && g.cur.a == g.split.state {
		return g.split.known
	}
	return g.split.other
}

func (g *codegen) jump(op uint16, k uint32, jt, jf label) {
	g.assembler.jump(op, k, g.resolve(jt), g.resolve(jf))
}

func (g *codegen) jumpTo(l label) { g.assembler.jumpTo(g.resolve(l)) }

// rule emits a rule's cases: each case's conditions fall through when they
// hold and jump to the next case when one fails.
func (g *codegen) rule(r *Rule) {
	for i, c := range r.Cases {
		var need aState
		if i+1 < len(r.Cases) && len(r.Cases[i+1].When) > 0 {
			need = firstLoad(r.Cases[i+1].When[0])
		}
		g.split = split{known: g.newLabel(), other: g.newLabel(), state: need}
		if !need.known {
			g.split.known = g.split.other
		}
		for _, cond := range c.When {
			g.cond(cond, failSplit)
		}
		g.ret(c.Action)
		sp := g.split
		g.bind(sp.other)
		if need.known && g.cur.live {
			g.load(need.off, need.mask)
		}
		if sp.known != sp.other {
			g.bind(sp.known)
		}
	}
	g.ret(r.Action)
}

// cond emits code that falls through when c holds and jumps to fail when not.
func (g *codegen) cond(c Cond, fail label) {
	pass := g.newLabel()
	lo := uint32(offArgs + 8*c.Arg)
	m := c.mask()
	lt, eq, gt := outcome(c.Op, pass, fail)
	if c.Wide {
		hiLt, hiGt := wideHigh(c.Op, lt, gt, pass, fail)
		checkLo := g.newLabel()
		g.cmpHalf(lo+4, uint32(m>>32), uint32(c.Value>>32), hiLt, checkLo, hiGt)
		g.bind(checkLo)
	}
	g.cmpHalf(lo, uint32(m), uint32(c.Value), lt, eq, gt)
	g.bind(pass)
}

// wideHigh gives the targets when the high halves differ: they decide,
// except that equality needs both halves equal.
func wideHigh(op Op, lt, gt, pass, fail label) (label, label) {
	switch op {
	case OpEq:
		return fail, fail
	case OpNe:
		return pass, pass
	}
	return lt, gt
}

// firstLoad is the accumulator state c's code loads first (zero if it
// decides without a load).
func firstLoad(c Cond) aState {
	const pass, fail, checkLo label = 1, 2, 3
	off := uint32(offArgs + 8*c.Arg)
	m := c.mask()
	lt, eq, gt := outcome(c.Op, pass, fail)
	mask, v := uint32(m), uint32(c.Value)
	if c.Wide {
		off += 4
		lt, gt = wideHigh(c.Op, lt, gt, pass, fail)
		eq = checkLo
		mask, v = uint32(m>>32), uint32(c.Value>>32)
	}
	lm, ok := halfLoad(mask, v, lt, eq, gt)
	if !ok {
		return aState{}
	}
	return aState{known: true, off: off, mask: lm}
}

// outcome maps an operator to the targets for word <, ==, > value.
func outcome(op Op, pass, fail label) (lt, eq, gt label) {
	switch op {
	case OpEq:
		return fail, pass, fail
	case OpNe:
		return pass, fail, pass
	case OpGt:
		return fail, fail, pass
	case OpGe:
		return fail, pass, pass
	case OpLt:
		return pass, fail, fail
	default: // OpLe
		return pass, pass, fail
	}
}

// halfLoad returns the mask cmpHalf loads the word with, or false when the
// outcome is known without looking at the word.
func halfLoad(mask, v uint32, lt, eq, gt label) (uint32, bool) {
	switch {
	case mask == 0, lt == eq && eq == gt, v&^mask != 0 && lt == gt:
		return 0, false
	case v == 0 && mask != 0xffffffff:
		// (w & mask) == 0 is !(w & mask): JSET on the raw word saves the
		// AND and leaves A reusable by the next comparison.
		return 0xffffffff, true
	}
	return mask, true
}

// cmpHalf compares word(off) & mask with v and jumps to lt, eq or gt.
func (g *codegen) cmpHalf(off, mask, v uint32, lt, eq, gt label) {
	lm, ok := halfLoad(mask, v, lt, eq, gt)
	if !ok {
		switch {
		case mask == 0 && v == 0: // the word is 0
			g.jumpTo(eq)
		case mask == 0 || lt == gt: // 0 < v, or never equal
			g.jumpTo(lt)
		default: // lt == eq == gt
			g.jumpTo(eq)
		}
		return
	}
	g.load(off, lm)
	switch {
	case lm != mask: // v == 0: nothing is below it, so lt is unreachable
		g.jump(opJsetK, mask, gt, eq)
	case lt == gt:
		g.jump(opJeqK, v, eq, lt)
	case lt == eq:
		g.jump(opJgtK, v, gt, lt)
	case eq == gt:
		g.jump(opJgeK, v, gt, lt)
	default:
		l := g.newLabel()
		g.jump(opJgtK, v, gt, l)
		g.bind(l)
		g.jump(opJeqK, v, eq, lt)
	}
}
