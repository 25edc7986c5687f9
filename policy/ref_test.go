package policy

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// This file holds the slow reference semantics that the trie matcher is
// checked against: a linear scan, one right at a time, written from the
// specification (design.md section 4, CONTRACT.md) without sharing code
// with match.go.

// refDecide is Decide by definition.
func refDecide(rules []Rule, path string, need Right) Verdict {
	deny := Verdict{Rule: -1}
	if need == 0 || need&^AllRights != 0 || !refClean(path) {
		return deny
	}
	pc := refSplit(path)
	last, statImplicit, statRule := -1, false, -1
	for _, bit := range []Right{Read, Write, Create, Exec, Stat} {
		if need&bit == 0 {
			continue
		}
		decider, implicit := -1, false
		for i, r := range rules {
			carries := r.Rights
			if r.Allow && r.Rights&(Read|Write) != 0 {
				carries |= Stat
			}
			comps, subtree := refPattern(r.Pattern)
			if carries&bit != 0 && refMatch(comps, subtree, pc) {
				decider, implicit = i, false
			} else if bit == Stat && r.Allow && refAncestor(comps, subtree, pc) {
				decider, implicit = i, true
			}
		}
		if decider < 0 {
			return deny
		}
		if !rules[decider].Allow {
			return Verdict{Rule: decider}
		}
		if bit == Stat {
			statRule, statImplicit = decider, implicit
		}
		last = max(last, decider)
	}
	return Verdict{Allowed: true, Rule: last, Implicit: statImplicit && statRule == last}
}

func refClean(p string) bool {
	if p == "/" {
		return true
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return false
	}
	for _, c := range strings.Split(p[1:], "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

func refSplit(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

func refPattern(p string) ([]string, bool) {
	comps := refSplit(p)
	if n := len(comps); n > 0 && comps[n-1] == "**" {
		return comps[:n-1], true
	}
	return comps, false
}

// refMatch: DIR/** is DIR and everything beneath it; otherwise the depth
// must be equal. Each component matches as a glob.
func refMatch(pat []string, subtree bool, path []string) bool {
	if len(path) < len(pat) || (!subtree && len(path) != len(pat)) {
		return false
	}
	for i := range pat {
		if !refGlob(refUnits(pat[i]), refUnits(path[i])) {
			return false
		}
	}
	return true
}

// refAncestor: the directories on the way to the pattern, DIR included
// for DIR/**.
func refAncestor(pat []string, subtree bool, path []string) bool {
	limit := len(pat) - 1
	if subtree {
		limit = len(pat)
	}
	if len(path) > limit {
		return false
	}
	for i := range path {
		if !refGlob(refUnits(pat[i]), refUnits(path[i])) {
			return false
		}
	}
	return true
}

// refUnits splits s into characters: valid UTF-8 sequences, and single
// bytes that are not valid UTF-8.
func refUnits(s string) []string {
	var u []string
	for s != "" {
		_, w := utf8.DecodeRuneInString(s)
		u, s = append(u, s[:w]), s[w:]
	}
	return u
}

// refGlob matches by dynamic programming: ok[i][j] reports whether p[i:]
// matches s[j:].
func refGlob(p, s []string) bool {
	ok := make([][]bool, len(p)+1)
	for i := range ok {
		ok[i] = make([]bool, len(s)+1)
	}
	ok[len(p)][len(s)] = true
	for i := len(p) - 1; i >= 0; i-- {
		for j := len(s); j >= 0; j-- {
			switch {
			case p[i] == "*":
				ok[i][j] = ok[i+1][j] || (j < len(s) && ok[i][j+1])
			case j == len(s):
				ok[i][j] = false
			case p[i] == "?":
				ok[i][j] = ok[i+1][j+1]
			default:
				ok[i][j] = p[i] == s[j] && ok[i+1][j+1]
			}
		}
	}
	return ok[0][0]
}

// samePolicy reports whether a and b have the same rules and settings,
// positions aside.
func samePolicy(a, b *Policy) (bool, string) {
	ra, rb := a.Rules(), b.Rules()
	if len(ra) != len(rb) {
		return false, "number of rules"
	}
	for i := range ra {
		ra[i].Pos, rb[i].Pos = Position{}, Position{}
		if ra[i] != rb[i] {
			return false, "rule " + ra[i].String() + " vs " + rb[i].String()
		}
	}
	na, nb := a.Net(), b.Net()
	if na.Mode != nb.Mode || !slices.Equal(na.TCPConnect, nb.TCPConnect) || !slices.Equal(na.TCPBind, nb.TCPBind) {
		return false, "net"
	}
	ea, eb := a.Env(), b.Env()
	if ea.Clear != eb.Clear || ea.Given != eb.Given || !slices.Equal(ea.Pass, eb.Pass) || !slices.Equal(ea.Set, eb.Set) {
		return false, "env"
	}
	if !slices.Equal(a.Limits(), b.Limits()) {
		return false, "limits"
	}
	if !slices.Equal(a.Namespaces(), b.Namespaces()) {
		return false, "namespaces"
	}
	sa, sb := a.Syscalls(), b.Syscalls()
	if !slices.EqualFunc(sa, sb, func(x, y SyscallRule) bool {
		return x.Action == y.Action && slices.Equal(x.Names, y.Names) && x.Errno == y.Errno && x.Kill == y.Kill
	}) {
		return false, "syscalls"
	}
	if a.DefaultErrno() != b.DefaultErrno() {
		return false, "default-errno"
	}
	if !slices.EqualFunc(a.Requires(), b.Requires(), func(x, y Requirement) bool {
		return x.Feature == y.Feature && x.MinVersion == y.MinVersion
	}) {
		return false, "requires"
	}
	la, _ := a.Landlock()
	lb, _ := b.Landlock()
	if la != lb {
		return false, "landlock"
	}
	return true, ""
}
