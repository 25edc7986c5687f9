package policy

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// A Verdict is the answer of [Matcher.Decide].
type Verdict struct {
	// Allowed reports whether every requested right is granted.
	Allowed bool
	// Rule is the index (into Matcher.Rule and Policy.Rules) of the rule
	// that decided: the rule that denied the first denied right, in the
	// order read, write, create, exec, stat; or, when allowed, the last of
	// the allow rules that granted the rights. -1 means no rule: default
	// deny.
	Rule int
	// Implicit reports that stat was requested and Rule grants it only
	// because the path is a directory on the way to the rule's pattern.
	Implicit bool
}

var denyDefault = Verdict{Rule: -1}

// maxActive bounds the trie nodes a walk tracks at once. A policy whose glob
// rules make more nodes match the same path falls back to a linear scan,
// which is slower but equally allocation-free.
const maxActive = 32

// A node is one path component in the rule trie. Rule indexes are int32
// with -1 for none; a later rule has a higher index and wins.
type node struct {
	exact map[string]*node // children by literal component
	globs []*node          // children whose component holds * or ?
	glob  string           // the component pattern of a glob child

	end    [numRights]int32 // last rule carrying the right whose pattern ends here
	sub    [numRights]int32 // last DIR/** rule carrying the right with DIR here
	anc    int32            // last allow rule that grants implicit stat here
	hasEnd bool             // end or anc is set
	hasSub bool             // sub is set
}

func newNode(glob string) *node {
	n := &node{glob: glob, anc: -1}
	for i := range n.end {
		n.end[i], n.sub[i] = -1, -1
	}
	return n
}

func (n *node) child(c string) *node {
	if isGlob(c) {
		for _, g := range n.globs {
			if g.glob == c {
				return g
			}
		}
		g := newNode(c)
		n.globs = append(n.globs, g)
		return g
	}
	if ch := n.exact[c]; ch != nil {
		return ch
	}
	if n.exact == nil {
		n.exact = map[string]*node{}
	}
	ch := newNode("")
	n.exact[c] = ch
	return ch
}

// A Matcher decides which rights a policy grants on a path. It is built
// once by the parser, is immutable and safe for concurrent use.
//
// Decision: for each requested right, the last rule that matches the path
// and carries that right decides; no such rule means deny. Allow rules with
// read or write also carry stat. An allow rule also grants stat on each
// directory on the way to its pattern (for DIR/**, DIR included), at its own
// place in the order. A deny rule written without rights carries all rights.
type Matcher struct {
	rules []Rule
	pats  []pattern
	carry []Right // rights each rule carries when it matches
	root  *node
}

func newMatcher(rules []Rule) *Matcher {
	m := &Matcher{
		rules: rules,
		pats:  make([]pattern, len(rules)),
		carry: make([]Right, len(rules)),
		root:  newNode(""),
	}
	for i, r := range rules {
		p := compilePattern(r.Pattern)
		m.pats[i] = p
		m.carry[i] = carried(r.Allow, r.Rights)
		idx := int32(i)
		n := m.root
		for depth := 0; ; depth++ {
			if r.Allow && depth <= p.ancestorDepth() {
				n.anc, n.hasEnd = idx, true
			}
			if depth == len(p.comps) {
				break
			}
			n = n.child(p.comps[depth])
		}
		for b := range numRights {
			if m.carry[i]&(1<<b) == 0 {
				continue
			}
			if p.subtree {
				n.sub[b], n.hasSub = idx, true
			} else {
				n.end[b], n.hasEnd = idx, true
			}
		}
	}
	return m
}

// Decide returns whether the policy grants every right in need on path.
// path must be absolute and clean (see [ValidPath]); any other path, and a
// need that is empty or holds unknown bits, is denied with Rule -1. The
// broker rewrites the worker's /proc/<tgid>/ to /proc/self/ before calling.
//
// Decide does not allocate.
func (m *Matcher) Decide(path string, need Right) Verdict {
	if need == 0 || need&^AllRights != 0 || path == "" || path[0] != '/' || strings.IndexByte(path, 0) >= 0 {
		return denyDefault
	}
	var best [numRights]int32
	for i := range best {
		best[i] = -1
	}
	anc := int32(-1)
	var bufs [2][maxActive]*node
	cur, ncur := &bufs[0], 1
	cur[0] = m.root
	if m.root.hasSub {
		maxInto(&best, &m.root.sub)
	}
	alive := true
	for i, flip := 1, 1; i < len(path); flip ^= 1 {
		var c string
		if j := strings.IndexByte(path[i:], '/'); j >= 0 {
			c, i = path[i:i+j], i+j+1
			if i == len(path) {
				return denyDefault // trailing slash
			}
		} else {
			c, i = path[i:], len(path)
		}
		if c == "" || c == "." || c == ".." {
			return denyDefault
		}
		if !alive {
			continue // keep validating the path
		}
		next, n := &bufs[flip], 0
		for _, nd := range cur[:ncur] {
			if ch := nd.exact[c]; ch != nil {
				if n == maxActive {
					return m.linear(path, need)
				}
				next[n] = ch
				n++
				if ch.hasSub {
					maxInto(&best, &ch.sub)
				}
			}
			for _, g := range nd.globs {
				if !globMatch(g.glob, c) {
					continue
				}
				if n == maxActive {
					return m.linear(path, need)
				}
				next[n] = g
				n++
				if g.hasSub {
					maxInto(&best, &g.sub)
				}
			}
		}
		cur, ncur = next, n
		alive = n > 0
	}
	if alive {
		for _, nd := range cur[:ncur] {
			if nd.hasEnd {
				maxInto(&best, &nd.end)
				anc = max(anc, nd.anc)
			}
		}
	}
	return m.verdict(&best, anc, need)
}

func maxInto(dst, src *[numRights]int32) {
	for i := range dst {
		dst[i] = max(dst[i], src[i])
	}
}

// verdict combines the deciding rule of each right: best[b] is the last
// rule carrying right b that matched, anc the last allow rule granting
// implicit stat.
func (m *Matcher) verdict(best *[numRights]int32, anc int32, need Right) Verdict {
	last, statRule, statImplicit := int32(-1), int32(-1), false
	for b := range numRights {
		if need&(1<<b) == 0 {
			continue
		}
		idx, implicit := best[b], false
		if Right(1<<b) == Stat {
			if anc > idx {
				idx, implicit = anc, true
			}
			statRule, statImplicit = idx, implicit
		}
		if idx < 0 {
			return denyDefault
		}
		if !m.rules[idx].Allow {
			return Verdict{Rule: int(idx)}
		}
		last = max(last, idx)
	}
	return Verdict{Allowed: true, Rule: int(last), Implicit: statImplicit && statRule == last}
}

// linear decides by scanning every rule; it is the fallback of Decide and
// does not allocate either.
func (m *Matcher) linear(path string, need Right) Verdict {
	if need == 0 || need&^AllRights != 0 || !cleanPath(path) {
		return denyDefault
	}
	var best [numRights]int32
	for i := range best {
		best[i] = -1
	}
	anc := int32(-1)
	for i := range m.pats {
		match, ancestor := m.pats[i].match(path)
		if match {
			for b := range numRights {
				if m.carry[i]&(1<<b) != 0 {
					best[b] = int32(i)
				}
			}
		}
		if ancestor && m.rules[i].Allow {
			anc = int32(i)
		}
	}
	return m.verdict(&best, anc, need)
}

// Len returns the number of rules.
func (m *Matcher) Len() int { return len(m.rules) }

// Rule returns rule i, as in Policy.Rules; i is a Verdict's Rule. It returns
// the zero Rule when i is out of range (-1: no rule).
func (m *Matcher) Rule(i int) Rule {
	if i < 0 || i >= len(m.rules) {
		return Rule{}
	}
	return m.rules[i]
}

// Where returns the "file:line" of the rule that decided v, or "default"
// when no rule did.
func (m *Matcher) Where(v Verdict) string {
	if v.Rule < 0 || v.Rule >= len(m.rules) {
		return "default"
	}
	return m.rules[v.Rule].Pos.line().String()
}

// A Trace explains a decision: every rule that matched the path, in policy
// order, and how each requested right was decided.
type Trace struct {
	Path string
	Need Right
	// Steps are the rules that match Path, in policy order. Rules that
	// only grant stat on Path as a directory on the way to their pattern
	// are listed when Need includes stat.
	Steps []Step
	// Decisions holds one entry per right in Need, in the order read,
	// write, create, exec, stat.
	Decisions []Decision
	// Verdict is what Decide returns.
	Verdict Verdict
	// Reason is set when Path or Need is rejected before any rule is
	// looked at (for example a relative path).
	Reason string
}

// A Step is one rule that matches the traced path.
type Step struct {
	Index int  // of the rule, as in Verdict.Rule
	Rule  Rule // the rule as written
	// Carries are the rights the rule decides for this path: as written
	// plus implied stat, or stat alone when Implicit.
	Carries Right
	// Implicit reports that the rule grants stat on the path because the
	// path is a directory on the way to the rule's pattern.
	Implicit bool
}

// A Decision is the verdict for one right.
type Decision struct {
	Right   Right
	Verdict Verdict
}

// Explain returns the trace of Decide(path, need). It allocates and is
// meant for people (sandbox-exec explain), not for the broker.
func (m *Matcher) Explain(path string, need Right) Trace {
	t := Trace{Path: path, Need: need, Verdict: m.Decide(path, need)}
	if need == 0 || need&^AllRights != 0 {
		t.Reason = fmt.Sprintf("invalid rights %s", need)
		return t
	}
	if err := ValidPath(path); err != nil {
		t.Reason = err.Error() + "; only absolute, clean paths can be allowed"
		return t
	}
	for i := range m.pats {
		r := m.rules[i]
		match, ancestor := m.pats[i].match(path)
		s := Step{Index: i, Rule: r}
		if match {
			s.Carries = m.carry[i]
		}
		if ancestor && r.Allow && s.Carries&Stat == 0 && (match || need&Stat != 0) {
			s.Carries |= Stat
			s.Implicit = true
		}
		if s.Carries != 0 {
			t.Steps = append(t.Steps, s)
		}
	}
	for b := range numRights {
		bit := Right(1 << b)
		if need&bit == 0 {
			continue
		}
		v := denyDefault
		for _, s := range t.Steps {
			if s.Carries&bit != 0 {
				v = Verdict{Allowed: s.Rule.Allow, Rule: s.Index, Implicit: s.Implicit && bit == Stat}
			}
		}
		t.Decisions = append(t.Decisions, Decision{Right: bit, Verdict: v})
	}
	return t
}

// String formats the trace for a terminal: the verdict, then one line per
// matching rule.
func (t Trace) String() string {
	var b strings.Builder
	verdict := func(v Verdict) string {
		s := "denied by "
		if v.Allowed {
			s = "allowed by "
		}
		for _, st := range t.Steps {
			if st.Index == v.Rule {
				s += st.Rule.Pos.line().String()
				if v.Implicit {
					s += " (a directory on the way to " + st.Rule.Pattern + ")"
				}
				return s
			}
		}
		return s + "default (no rule matches)"
	}
	fmt.Fprintf(&b, "%s %s: %s\n", t.Path, t.Need, verdict(t.Verdict))
	if t.Reason != "" {
		fmt.Fprintf(&b, "  %s\n", t.Reason)
		return b.String()
	}
	if len(t.Decisions) > 1 {
		for _, d := range t.Decisions {
			fmt.Fprintf(&b, "  %s: %s\n", d.Right, verdict(d.Verdict))
		}
	}
	if len(t.Steps) == 0 {
		b.WriteString("  no rule matches; a path without a rule is denied\n")
		return b.String()
	}
	b.WriteString("  matching rules, in order (for each right the last rule carrying it decides):\n")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, s := range t.Steps {
		carries := "carries " + s.Carries.String()
		if s.Implicit {
			carries += " (a directory on the way)"
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\n", s.Rule.Pos, s.Rule, carries)
	}
	tw.Flush()
	return b.String()
}
