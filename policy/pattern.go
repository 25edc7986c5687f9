package policy

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// cleanPattern checks an expanded pattern and cleans it lexically: empty
// and "." components go away ("//", "/./", a trailing "/"). It returns a
// message for the user when the pattern is not valid.
func cleanPattern(s string) (string, string) {
	if s == "" {
		return "", "empty pattern; a pattern is an absolute path such as /usr/lib/**"
	}
	if s[0] != '/' {
		return "", relativeHint(s)
	}
	var comps []string
	for c := range strings.SplitSeq(s[1:], "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", fmt.Sprintf("pattern %q has a .. component; patterns are matched against resolved paths, so write the path without ..", s)
		}
		comps = append(comps, c)
	}
	for i, c := range comps {
		if !strings.Contains(c, "**") {
			continue
		}
		if c != "**" {
			return "", fmt.Sprintf("pattern %q: ** must be a whole path component (DIR/**); use * to match within one component", s)
		}
		if i != len(comps)-1 {
			return "", fmt.Sprintf("pattern %q: ** is only allowed as the last component (DIR/** is DIR and everything beneath it)", s)
		}
	}
	return "/" + strings.Join(comps, "/"), ""
}

func relativeHint(s string) string {
	switch {
	case s == "~" || strings.HasPrefix(s, "~/"):
		return fmt.Sprintf("pattern %q is not absolute: ~ is not expanded; write ${HOME}%s", s, s[1:])
	case strings.HasPrefix(s, "./") || s == ".":
		return fmt.Sprintf("pattern %q is not absolute; patterns must start with /; for the current directory write ${CWD}%s", s, strings.TrimPrefix(s, "."))
	}
	if _, ok := rightByName(s); ok {
		return fmt.Sprintf("pattern %q is not absolute; rights are one comma-separated word (read,write), not separate words", s)
	}
	return fmt.Sprintf("pattern %q is not absolute; patterns must start with / (for a path under the current directory write ${CWD}/%s)", s, s)
}

// A pattern is a compiled rule pattern: its components, with the trailing
// "**" removed and recorded as subtree.
type pattern struct {
	comps   []string
	glob    []bool // comps[i] holds * or ?
	subtree bool
}

func compilePattern(s string) pattern {
	var p pattern
	if s != "/" {
		p.comps = strings.Split(s[1:], "/")
	}
	if n := len(p.comps); n > 0 && p.comps[n-1] == "**" {
		p.comps = p.comps[:n-1]
		p.subtree = true
	}
	p.glob = make([]bool, len(p.comps))
	for i, c := range p.comps {
		p.glob[i] = isGlob(c)
	}
	return p
}

func isGlob(c string) bool { return strings.ContainsAny(c, "*?") }

// ancestorDepth is the number of path components of the deepest ancestor the
// pattern grants implicit stat to: the parent directory of a plain pattern,
// DIR itself for DIR/**.
func (p *pattern) ancestorDepth() int {
	if p.subtree {
		return len(p.comps)
	}
	return len(p.comps) - 1
}

// match reports whether the clean absolute path matches the pattern, and
// whether it is one of the ancestors the pattern grants implicit stat to. It
// does not allocate.
func (p *pattern) match(path string) (match, ancestor bool) {
	n, k := 0, len(p.comps)
	for rest := path[1:]; rest != ""; n++ {
		var c string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			c, rest = rest[:i], rest[i+1:]
		} else {
			c, rest = rest, ""
		}
		if n == k {
			return p.subtree, false
		}
		if !p.compMatch(n, c) {
			return false, false
		}
	}
	return n == k, n <= p.ancestorDepth()
}

func (p *pattern) compMatch(i int, c string) bool {
	if p.glob[i] {
		return globMatch(p.comps[i], c)
	}
	return p.comps[i] == c
}

// globMatch reports whether name matches pat, where * matches any run of
// characters and ? exactly one character (one UTF-8 sequence, or one byte
// that is not valid UTF-8). Every other byte matches itself. It does not
// allocate.
func globMatch(pat, name string) bool {
	px, nx := 0, 0
	starPx, starNx := -1, 0
	for px < len(pat) || nx < len(name) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				starPx, starNx = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					_, w := utf8.DecodeRuneInString(name[nx:])
					px++
					nx += w
					continue
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if starPx >= 0 && starNx < len(name) {
			_, w := utf8.DecodeRuneInString(name[starNx:])
			starNx += w
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}

// cleanPath reports whether path is absolute and clean: it starts with /,
// has no empty, "." or ".." component, no trailing / (except the root) and
// no NUL byte. Only such paths can be allowed.
func cleanPath(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	if path == "/" {
		return true
	}
	if strings.IndexByte(path, 0) >= 0 {
		return false
	}
	for rest := path[1:]; ; {
		var c string
		i := strings.IndexByte(rest, '/')
		if i >= 0 {
			c, rest = rest[:i], rest[i+1:]
		} else {
			c = rest
		}
		if c == "" || c == "." || c == ".." {
			return false
		}
		if i < 0 {
			return true
		}
	}
}

// ValidPath returns nil if path can be passed to [Matcher.Decide], or an
// error saying why not: it must be absolute and clean (no empty, "." or ".."
// components, no trailing slash, no NUL byte). Decide denies every other
// path; callers resolve paths first.
func ValidPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("empty path")
	case path[0] != '/':
		return fmt.Errorf("path %q is not absolute", path)
	case strings.IndexByte(path, 0) >= 0:
		return fmt.Errorf("path %q contains a NUL byte", path)
	case !cleanPath(path):
		return fmt.Errorf("path %q is not clean (empty, . or .. component, or a trailing slash)", path)
	}
	return nil
}

// covers reports, conservatively, whether every path q matches also matches
// p. A false answer may be wrong (glob inclusion is not fully decided); a
// true answer never is.
func (p *pattern) covers(q *pattern) bool {
	if len(q.comps) < len(p.comps) {
		return false
	}
	if !p.subtree && (q.subtree || len(q.comps) != len(p.comps)) {
		return false
	}
	for i := range p.comps {
		if !compCovers(p.comps[i], p.glob[i], q.comps[i], q.glob[i]) {
			return false
		}
	}
	return true
}

// compCovers reports whether component pattern a matches every name that
// component pattern b matches.
func compCovers(a string, aGlob bool, b string, bGlob bool) bool {
	switch {
	case a == b:
		return true
	case !aGlob:
		return false
	case a == "*":
		return true
	case !bGlob:
		return globMatch(a, b)
	}
	return false
}

// overlaps reports, conservatively, whether some path may match both p and
// q at some depth: a false answer is always right, a true one may not be.
// With ancestors, q also counts as matching its implicit stat ancestors.
func (p *pattern) overlaps(q *pattern, ancestors bool) bool {
	// Depths (numbers of components) that p and q match.
	pMin, pMax := len(p.comps), len(p.comps)
	if p.subtree {
		pMax = -1 // unbounded
	}
	qMin, qMax := len(q.comps), len(q.comps)
	if q.subtree {
		qMax = -1
	}
	if ancestors {
		qMin = 0
	}
	lo := max(pMin, qMin)
	if (pMax >= 0 && lo > pMax) || (qMax >= 0 && lo > qMax) {
		return false
	}
	// Compare the components both patterns constrain at depth lo.
	for i := 0; i < lo && i < len(p.comps) && i < len(q.comps); i++ {
		if !compOverlaps(p.comps[i], p.glob[i], q.comps[i], q.glob[i]) {
			return false
		}
	}
	return true
}

func compOverlaps(a string, aGlob bool, b string, bGlob bool) bool {
	switch {
	case !aGlob && !bGlob:
		return a == b
	case aGlob && !bGlob:
		return globMatch(a, b)
	case !aGlob && bGlob:
		return globMatch(b, a)
	}
	return true
}
