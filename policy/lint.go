package policy

import (
	"fmt"
	"strings"
)

// Lint returns warnings about rules that are valid but probably not what
// the author meant, in rule order:
//
//   - a rule that a later rule overrides completely: the later rule matches
//     every path the earlier one matches (same or wider pattern) and carries
//     every right it carries, so the earlier rule never decides anything;
//   - a deny rule that changes nothing, because no allow rule above it
//     grants a right it removes (paths without a rule are denied anyway);
//   - allow write without read;
//   - allow write or create on / or /**;
//   - landlock off while exec rules or TCP ports rely on the worker's
//     Landlock ruleset, the only layer that enforces them per worker
//     (execve is not brokered; the filter sees socket families, not
//     ports);
//   - every syscall unsafe-allow, saying what the syscalls it allows
//     expose (io_uring, for one, bypasses the broker: only Landlock then
//     limits the files it opens).
//
// Pattern inclusion with globs is decided conservatively: Lint may miss a
// case, but what it reports is true.
func (p *Policy) Lint() []Diagnostic {
	m := p.matcher
	var diags []Diagnostic
	add := func(r Rule, format string, args ...any) {
		diags = append(diags, Diagnostic{Pos: r.Pos, Msg: fmt.Sprintf(format, args...)})
	}
	for i, r := range m.rules {
		if j, onlyAncestors := m.shadowedBy(i); j >= 0 {
			later := m.rules[j]
			if onlyAncestors {
				add(r, "%s is overridden by the later %s at %s, which denies every right it grants on every path it matches; only stat on the directories leading to it remains (move the allow below the deny, or narrow the deny)",
					r, later, later.Pos.line())
			} else {
				add(r, "%s has no effect: the later %s at %s matches every path it matches and decides every right it carries (remove it, or narrow the later rule)",
					r, later, later.Pos.line())
			}
		}
		if !r.Allow && !m.restrictsEarlierAllow(i) {
			add(r, "%s changes nothing: no allow rule above it grants a right it removes, and paths without a rule are denied anyway (a deny only overrides allow rules above it; put it below the allow it should restrict)", r)
		}
		if r.Allow && r.Rights&Write != 0 && r.Rights&Read == 0 {
			add(r, "allow %s without read is probably a mistake: programs usually open files they write with O_RDWR or read them back; write allow %s, or use create for making new files",
				r.Rights, r.Rights|Read)
		}
		if r.Allow && r.Rights&(Write|Create) != 0 && (r.Pattern == "/" || r.Pattern == "/**") {
			add(r, "%s lets the worker change every file its user may change; limit write and create to the directories it needs, such as ${TMPDIR}/app/**", r)
		}
	}
	if on, pos := p.Landlock(); !on {
		var why []string
		for _, r := range m.rules {
			if r.Allow && r.Rights&Exec != 0 {
				why = append(why, fmt.Sprintf("the exec rule at %s is then enforced only by the host's own Landlock confinement, for every worker of the host at once: execve is not brokered, and a host without that confinement lets the worker run every program it can read", r.Pos.line()))
				break
			}
		}
		if len(p.net.TCPConnect)+len(p.net.TCPBind) > 0 {
			why = append(why, "net tcp-connect and tcp-bind ports are then not enforced: the filter allows every TCP port")
		}
		for _, w := range why {
			diags = append(diags, Diagnostic{Pos: pos, Msg: "landlock off: " + w + " (write landlock on to enforce it)"})
		}
	}
	for _, s := range p.syscalls {
		if s.Action != "unsafe-allow" {
			continue
		}
		// One warning per exposure: io_uring_setup, _enter and _register
		// expose the same thing.
		var order []string
		names := map[string][]string{}
		for _, n := range s.Names {
			u, _ := LookupUnsafe(n)
			if _, seen := names[u.Exposes]; !seen {
				order = append(order, u.Exposes)
			}
			names[u.Exposes] = append(names[u.Exposes], n)
		}
		for _, e := range order {
			diags = append(diags, Diagnostic{Pos: s.Pos, Msg: fmt.Sprintf("unsafe-allow %s: %s", strings.Join(names[e], " "), e)})
		}
	}
	return diags
}

// shadowedBy returns the first later rule that makes rule i irrelevant, or
// -1. onlyAncestors reports that i is an allow rule whose matches a later
// deny overrides completely, while the stat it grants on the directories
// leading to its pattern remains.
func (m *Matcher) shadowedBy(i int) (j int, onlyAncestors bool) {
	pi, ci := &m.pats[i], m.carry[i]
	for j := i + 1; j < len(m.rules); j++ {
		pj, cj := &m.pats[j], m.carry[j]
		if cj&ci != ci || !pj.covers(pi) {
			continue
		}
		switch {
		case !m.rules[i].Allow:
			return j, false
		case !m.rules[j].Allow:
			// The deny overrides the matches; the implicit stat on the
			// directories leading to i survives unless j is deny /**.
			if len(pj.comps) == 0 && pj.subtree && cj&Stat != 0 {
				return j, false
			}
			return j, true
		case cj&Stat != 0 || pi.ancestorDepth() <= pj.ancestorDepth():
			// Both allow: j also grants stat on every directory leading to
			// i's pattern, as an ancestor or by matching it with stat.
			return j, false
		}
	}
	return -1, false
}

// restrictsEarlierAllow reports whether deny rule i may override a right
// that an allow rule above it grants.
func (m *Matcher) restrictsEarlierAllow(i int) bool {
	pi, ci := &m.pats[i], m.carry[i]
	for k := range i {
		if !m.rules[k].Allow {
			continue
		}
		if m.carry[k]&ci != 0 && pi.overlaps(&m.pats[k], false) {
			return true
		}
		if ci&Stat != 0 && pi.overlaps(&m.pats[k], true) {
			return true
		}
	}
	return false
}
