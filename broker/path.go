//go:build linux

package broker

import "strings"

// These helpers are lexical. They decide nothing on their own: the fast
// path uses them only on paths without "..", opened afterwards with
// RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS, for which the lexical result
// is exactly the object the kernel reaches (R32).

// hasDotDot reports whether some component of p is "..".
func hasDotDot(p string) bool {
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '.' && p[i+1] == '.' && (i == 0 || p[i-1] == '/') && (i+2 == len(p) || p[i+2] == '/') {
			return true
		}
	}
	return false
}

// mustBeDir reports whether the kernel requires p to name a directory: a
// trailing slash, or a last component ".".
func mustBeDir(p string) bool {
	if p == "" {
		return false
	}
	if p[len(p)-1] == '/' {
		return true
	}
	return p == "." || strings.HasSuffix(p, "/.")
}

// cleanJoin returns the clean absolute path of p taken relative to the
// clean absolute directory base (p's leading slashes, if any, are ignored:
// callers pass base "/" for absolute paths). Empty and "." components are
// dropped; p must not contain "..".
func cleanJoin(base, p string) string {
	var b strings.Builder
	b.Grow(len(base) + len(p) + 1)
	if base != "/" {
		b.WriteString(base)
	}
	for len(p) > 0 {
		var c string
		if i := strings.IndexByte(p, '/'); i >= 0 {
			c, p = p[:i], p[i+1:]
		} else {
			c, p = p, ""
		}
		if c == "" || c == "." {
			continue
		}
		b.WriteByte('/')
		b.WriteString(c)
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// cleanRel returns p without empty and "." components and without leading
// slashes, or "." if nothing is left; p must not contain "..". It is the
// relative path the fast path opens from an anchor.
func cleanRel(p string) string {
	s := cleanJoin("/", p)
	if s == "/" {
		return "."
	}
	return s[1:]
}

// joinPath appends name (one component) to the clean absolute dir.
func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// parentPath returns the lexical parent of a clean absolute path.
func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// splitLast splits p into the directory part and the last component, as
// the kernel's parent lookup does: trailing slashes are not part of the
// name but make trailing true. dir is "" when p has a single component
// (the anchor is the parent), "/" for "/name". name is "" when p is all
// slashes (the root).
func splitLast(p string) (dir, name string, trailing bool) {
	end := len(p)
	for end > 0 && p[end-1] == '/' {
		end--
	}
	trailing = end < len(p)
	if end == 0 {
		return "/", "", trailing
	}
	i := strings.LastIndexByte(p[:end], '/')
	if i < 0 {
		return "", p[:end], trailing
	}
	name = p[i+1 : end]
	j := i
	for j > 0 && p[j-1] == '/' {
		j--
	}
	if j == 0 {
		return "/", name, trailing
	}
	return p[:j], name, trailing
}

// components splits p into its components, without empty and "." ones.
func components(p string) []string {
	var cs []string
	for c := range strings.SplitSeq(p, "/") {
		if c != "" && c != "." {
			cs = append(cs, c)
		}
	}
	return cs
}

// cutComponent reports whether p is prefix or prefix + "/..." and returns
// the rest after prefix ("" or "/...").
func cutComponent(p, prefix string) (rest string, ok bool) {
	if !strings.HasPrefix(p, prefix) {
		return "", false
	}
	rest = p[len(prefix):]
	if rest != "" && rest[0] != '/' {
		return "", false
	}
	return rest, true
}

// parseUint parses a decimal number the way procfs parses a pid or fd
// name: digits only, no sign, no leading zero (except "0"), below 2^31.
func parseUint(s string) (int, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n >= 1<<31 {
		return 0, false
	}
	return n, true
}

// leadingNumber splits "N" or "N/rest" into N and "/rest".
func leadingNumber(s string) (n int, rest string, ok bool) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		i = len(s)
	}
	n, ok = parseUint(s[:i])
	return n, s[i:], ok
}

// procPid parses "/proc/N" or "/proc/N/rest" and returns N and "/rest".
func procPid(p string) (n int, rest string, ok bool) {
	s, ok := strings.CutPrefix(p, "/proc/")
	if !ok {
		return 0, "", false
	}
	return leadingNumber(s)
}

// fdTable names whose fd table an fd form refers to.
type fdTable uint8

const (
	tableProcess fdTable = iota // the thread group leader's (/proc/self/fd, /dev/fd)
	tableThread                 // the calling thread's (/proc/thread-self/fd)
)

// fdForm recognises the clean absolute paths that name a worker fd:
// /dev/fd/N, /dev/stdin, /dev/stdout, /dev/stderr, /proc/self/fd/N and
// /proc/thread-self/fd/N, each optionally followed by more components
// (rest, "" or "/..."). The worker's own /proc/<tgid>/fd/N forms are
// recognised by the caller, which knows the tgid.
func fdForm(p string) (fd int, rest string, table fdTable, ok bool) {
	for i, name := range [...]string{"/dev/stdin", "/dev/stdout", "/dev/stderr"} {
		if rest, ok := cutComponent(p, name); ok {
			return i, rest, tableProcess, true
		}
	}
	for _, f := range [...]struct {
		prefix string
		table  fdTable
	}{{"/dev/fd/", tableProcess}, {"/proc/self/fd/", tableProcess}, {"/proc/thread-self/fd/", tableThread}} {
		if s, ok := strings.CutPrefix(p, f.prefix); ok {
			n, rest, ok := leadingNumber(s)
			return n, rest, f.table, ok
		}
	}
	return 0, "", 0, false
}

// procAliases are procfs symlinks into /proc/self that the broker must not
// let the kernel resolve (they would name the broker): they are rewritten
// lexically like /proc/self.
var procAliases = [...]struct{ from, to string }{
	{"/proc/self", "/proc/self"},
	{"/proc/mounts", "/proc/self/mounts"},
	{"/proc/net", "/proc/self/net"},
}

// selfForm rewrites a clean absolute path that starts with /proc/self,
// /proc/thread-self or an alias of them to the matcher's form
// (/proc/self/... or /proc/thread-self/...); kind is 1 for /proc/self and
// 2 for /proc/thread-self, 0 if p is none of them. When follow is false a
// path that is exactly one of these symlinks is left alone: it names the
// link itself.
func selfForm(p string, follow bool) (mp, rest string, kind int) {
	if rest, ok := cutComponent(p, "/proc/thread-self"); ok {
		if rest == "" && !follow {
			return p, "", 0
		}
		return p, rest, 2
	}
	for _, a := range procAliases {
		if rest, ok := cutComponent(p, a.from); ok {
			if rest == "" && !follow {
				return p, "", 0
			}
			full := a.to + rest
			return full, full[len("/proc/self"):], 1
		}
	}
	return p, "", 0
}
