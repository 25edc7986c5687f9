//go:build linux

package main

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// This file turns what a learning run recorded into policy text. It is
// pure: no process, no file system, so learn_test.go can feed it by hand.

// pathUse is what a run did with one path, in the form the matcher sees.
type pathUse struct {
	// found are the rights asked on the path while it existed (the call
	// succeeded or failed with an error other than "no such file").
	found policy.Right
	// missing are the rights asked while it did not exist (ENOENT or
	// ENOTDIR): the program looked and found nothing.
	missing policy.Right
	// syscalls names the calls made on the path, for --check and --diff.
	syscalls []string
}

func (u *pathUse) need() policy.Right { return u.found | u.missing }

// learned is the record of one run.
type learned struct {
	uses map[string]*pathUse
	// others are rights used on other processes' /proc entries, keyed
	// by the path with the pid replaced by "*": pids change between runs,
	// so they are written as comments, not rules.
	others map[string]policy.Right
	// refused counts the calls the broker refused even while learning
	// (anonymous objects reopened through /proc/self/fd, FIFOs, sockets,
	// devices outside the learning set), keyed "syscall path".
	refused map[string]int
	// baseDenied are the calls a rule of the base policy denied during
	// the run.
	baseDenied []denial
	// events is the number of brokered calls seen.
	events int
}

func newLearned() *learned {
	return &learned{uses: map[string]*pathUse{}, others: map[string]policy.Right{}, refused: map[string]int{}}
}

// add records that right was asked on p (a clean absolute path).
func (l *learned) add(p string, right policy.Right, missing bool, syscall string) {
	if right == 0 || policy.ValidPath(p) != nil {
		return
	}
	u := l.uses[p]
	if u == nil {
		u = &pathUse{}
		l.uses[p] = u
	}
	if missing {
		u.missing |= right
	} else {
		u.found |= right
	}
	if syscall != "" && !slices.Contains(u.syscalls, syscall) && len(u.syscalls) < 4 {
		u.syscalls = append(u.syscalls, syscall)
	}
}

// variable is a policy variable whose value is written as ${NAME}.
type variable struct {
	name, value string
	// what says what the variable is, for the group comment.
	what string
}

// genConfig says how to generalise and how to write paths.
type genConfig struct {
	// threshold is the number of used entries of a directory from which
	// the directory is allowed as DIR/**.
	threshold int
	// vars are tried longest value first; a path equal to a value or
	// beneath it is written with the variable.
	vars []variable
	// keep are directories never generalised, nor any of their
	// ancestors: the home and temporary directories, so that DIR/** never
	// opens all of $HOME (~/.ssh) or a shared /tmp.
	keep []string
	// home is the home directory, for secrets such as ~/.ssh.
	home string
}

// secrets are files that hold credentials: a learned rule that names one
// is marked for review (the run touched it; a program that renders or
// converts rarely needs to).
var secrets = []string{"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh/", "/etc/ssl/private/",
	"/etc/pki/tls/private/", "/etc/krb5.keytab", "/etc/security/opasswd", "/root/"}

var homeSecrets = []string{".ssh/", ".gnupg/", ".aws/", ".netrc", ".kube/", ".docker/config.json",
	".config/gcloud/", ".password-store/", ".pki/", ".mozilla/", ".config/chromium/", ".config/google-chrome/"}

// secret reports whether a learned pattern names (or may match) a file
// with credentials.
func (cfg genConfig) secret(pattern string) bool {
	p := strings.TrimSuffix(pattern, "**")
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	match := func(prefix string) bool {
		if strings.HasSuffix(prefix, "/") {
			return strings.HasPrefix(p, prefix) || strings.HasPrefix(prefix, p)
		}
		return strings.HasPrefix(p, prefix)
	}
	for _, s := range secrets {
		if match(s) && !(cfg.home != "" && strings.HasPrefix(cfg.home+"/", "/root/") && s == "/root/") {
			return true
		}
	}
	if cfg.home != "" && cfg.home != "/" {
		for _, s := range homeSecrets {
			if match(cfg.home + "/" + s) {
				return true
			}
		}
	}
	return false
}

// rule is one generated allow rule.
type rule struct {
	pattern string // literal absolute pattern: a path or DIR/**
	rights  policy.Right
	// paths is the number of recorded paths the rule stands for, and
	// missing how many of them were never found.
	paths, missing int
}

// missingOnly reports whether every path the rule stands for was missing.
func (r rule) missingOnly() bool { return r.paths > 0 && r.missing == r.paths }

// denial is a right the run used that the base policy denies with a rule.
type denial struct {
	path  string
	right policy.Right
	where string
}

// genResult is the result of generate.
type genResult struct {
	rules []rule
	// denied are uses the base policy takes away explicitly: never added.
	denied []denial
	// need are the uses the rules had to cover (after the base policy),
	// by path: what --check and --diff report.
	need map[string]*pathUse
}

// rightBits are the rights in their canonical order.
var rightBits = []policy.Right{policy.Read, policy.Write, policy.Create, policy.Exec, policy.Stat}

// generate builds the rules that allow what l recorded and base (nil for
// none) does not allow already.
func generate(l *learned, base *policy.Matcher, cfg genConfig) genResult {
	res := genResult{need: map[string]*pathUse{}}
	for p, u := range l.uses {
		found, missing := u.found, u.missing
		if base != nil {
			for _, bit := range rightBits {
				if (found|missing)&bit == 0 {
					continue
				}
				v := base.Decide(p, bit)
				if v.Allowed {
					found &^= bit
					missing &^= bit
					continue
				}
				if v.Rule >= 0 && !base.Rule(v.Rule).Allow {
					res.denied = append(res.denied, denial{path: p, right: bit, where: base.Where(v)})
					found &^= bit
					missing &^= bit
				}
			}
		}
		if found|missing != 0 {
			res.need[p] = &pathUse{found: found, missing: missing &^ found, syscalls: u.syscalls}
		}
	}
	for _, d := range l.baseDenied {
		if base != nil {
			for _, bit := range rightBits {
				if d.right&bit != 0 && base.Decide(d.path, bit).Allowed {
					d.right &^= bit
				}
			}
		}
		if d.right != 0 {
			res.denied = append(res.denied, d)
		}
	}
	slices.SortFunc(res.denied, func(a, b denial) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return int(a.right) - int(b.right)
	})
	res.denied = slices.Compact(res.denied)

	type acc struct {
		rights         policy.Right
		paths, missing map[string]bool
	}
	byPattern := map[string]*acc{}
	emit := func(pattern string, bit policy.Right, covered []string) {
		a := byPattern[pattern]
		if a == nil {
			a = &acc{paths: map[string]bool{}, missing: map[string]bool{}}
			byPattern[pattern] = a
		}
		a.rights |= bit
		for _, p := range covered {
			a.paths[p] = true
			if res.need[p].found == 0 {
				a.missing[p] = true
			}
		}
	}
	// Generalise right by right, so that DIR/** gets only the rights that
	// were used widely beneath DIR: many libraries read do not make the
	// one loader executed turn every library executable. Names with a
	// random suffix are generalised first, to prefix*.
	for _, bit := range rightBits {
		var used []string
		for p, u := range res.need {
			if u.need()&bit == 0 {
				continue
			}
			if bit == policy.Stat && u.need()&(policy.Read|policy.Write) != 0 {
				continue // read and write imply stat
			}
			used = append(used, p)
		}
		var paths []string
		real := map[string][]string{}
		for p, g := range globRandom(used) {
			if real[g] == nil {
				paths = append(paths, g)
			}
			real[g] = append(real[g], p)
		}
		if bit == policy.Stat {
			// Stat on a path some rule already grants it on (read or
			// write beneath a DIR/**, or a directory on the way to a
			// pattern) needs no rule of its own.
			sofar := make(map[string]policy.Right, len(byPattern))
			for q, a := range byPattern {
				sofar[q] = a.rights
			}
			paths = slices.DeleteFunc(paths, func(p string) bool { return statCovered(p, sofar) })
		}
		slices.Sort(paths)
		for _, g := range generalise(paths, cfg) {
			var covered []string
			for _, c := range g.covered {
				covered = append(covered, real[c]...)
			}
			emit(g.pattern, bit, covered)
		}
	}

	// Drop rights a wider DIR/** rule carries as well.
	patterns := make([]string, 0, len(byPattern))
	for p := range byPattern {
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	for _, p := range patterns {
		a := byPattern[p]
		for _, q := range patterns {
			if q == p || !strings.HasSuffix(q, "/**") {
				continue
			}
			if covers(q, p) {
				a.rights &^= effective(byPattern[q].rights)
			}
		}
	}
	for _, p := range patterns {
		a := byPattern[p]
		if a.rights == 0 {
			continue
		}
		res.rules = append(res.rules, rule{pattern: p, rights: written(a.rights), paths: len(a.paths), missing: len(a.missing)})
	}
	// A stat-only rule on a directory on the way to another rule's
	// pattern is implied by that rule.
	res.rules = slices.DeleteFunc(res.rules, func(r rule) bool {
		if r.rights != policy.Stat || strings.HasSuffix(r.pattern, "/**") {
			return false
		}
		for _, o := range res.rules {
			if o.pattern != r.pattern && strings.HasPrefix(o.pattern, strings.TrimSuffix(r.pattern, "/")+"/") {
				return true
			}
		}
		return false
	})
	return res
}

// statCovered reports whether the rules (pattern to rights) grant stat on
// p: a rule with read or write on p or on a DIR/** above it, or any rule
// whose pattern lies beneath p (directories on the way are stat'able).
func statCovered(p string, rules map[string]policy.Right) bool {
	for q, r := range rules {
		if strings.HasPrefix(q, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
		if effective(r)&policy.Stat != 0 && (q == p || covers(q, p)) {
			return true
		}
	}
	return false
}

// written drops the stat that read and write imply: the rights as a rule
// writes them.
func written(r policy.Right) policy.Right {
	if r&(policy.Read|policy.Write) != 0 {
		r &^= policy.Stat
	}
	return r
}

// effective adds the stat that read and write imply.
func effective(r policy.Right) policy.Right {
	if r&(policy.Read|policy.Write) != 0 {
		r |= policy.Stat
	}
	return r
}

// covers reports whether the DIR/** pattern q matches everything pattern p
// matches.
func covers(q, p string) bool {
	dir, ok := strings.CutSuffix(q, "/**")
	if !ok {
		return false
	}
	p = strings.TrimSuffix(p, "/**")
	return p == dir || dir == "" || strings.HasPrefix(p, dir+"/")
}

// generalised is one pattern and the recorded paths it stands for.
type generalised struct {
	pattern string
	covered []string
}

// generalise turns sorted clean paths into patterns: top down, a directory
// (that may be generalised) with at least cfg.threshold used entries
// becomes DIR/**; other paths stay exact.
func generalise(paths []string, cfg genConfig) []generalised {
	type node struct {
		children map[string]*node
		self     bool
	}
	root := &node{children: map[string]*node{}}
	for _, p := range paths {
		n := root
		for _, c := range strings.Split(p[1:], "/") {
			if c == "" {
				continue
			}
			child := n.children[c]
			if child == nil {
				child = &node{children: map[string]*node{}}
				n.children[c] = child
			}
			n = child
		}
		n.self = true
	}
	var out []generalised
	var all func(n *node, p string, into *[]string)
	all = func(n *node, p string, into *[]string) {
		if n.self {
			*into = append(*into, p)
		}
		for name, c := range n.children {
			all(c, joinPath(p, name), into)
		}
	}
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		if len(n.children) >= cfg.threshold && cfg.generalisable(p) {
			g := generalised{pattern: joinPath(p, "**")}
			all(n, p, &g.covered)
			out = append(out, g)
			return
		}
		if n.self {
			out = append(out, generalised{pattern: p, covered: []string{p}})
		}
		names := make([]string, 0, len(n.children))
		for name := range n.children {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			walk(n.children[name], joinPath(p, name))
		}
	}
	walk(root, "/")
	return out
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// generalisable reports whether directory p may become p/**: not /, not a
// top-level directory (/etc, /home, /tmp, ...), nothing in /proc, /sys or
// /dev (exact paths there) but below /dev/shm, and neither a kept directory nor one of its
// ancestors.
func (cfg genConfig) generalisable(p string) bool {
	if strings.Count(p, "/") < 2 {
		return false
	}
	for _, special := range []string{"/proc", "/sys", "/dev"} {
		if (p == special || strings.HasPrefix(p, special+"/")) && !strings.HasPrefix(p, "/dev/shm/") {
			return false
		}
	}
	for _, k := range cfg.keep {
		if k == p || strings.HasPrefix(k, p+"/") {
			return false
		}
	}
	return true
}

// --- writing ---

// withVars writes a literal pattern with the first variable whose value
// is a prefix of it, escaping literal dollars. It returns the group key:
// "${NAME}" or the first component ("/usr").
func (cfg genConfig) withVars(p string) (text, group string) {
	for _, v := range cfg.vars {
		if p == v.value || strings.HasPrefix(p, v.value+"/") {
			ref := "${" + v.name + "}"
			return ref + escapeDollar(p[len(v.value):]), ref
		}
	}
	group = p
	if i := strings.IndexByte(p[1:], '/'); i >= 0 {
		group = p[:i+1]
	}
	return escapeDollar(p), group
}

func escapeDollar(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// quoteWord quotes s for the policy tokeniser (shell rules) when needed.
func quoteWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_.,:+=@%^-~*?{}$", r))
	}) {
		return s
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// groupNotes say why a program typically touches a top-level directory.
var groupNotes = map[string]string{
	"/bin":   "programs",
	"/dev":   "devices (the broker opens a device only under a rule without wildcards)",
	"/etc":   "system configuration",
	"/lib":   "libraries (the /lib symlink of a merged /usr; the broker checks the path as written and the file it leads to)",
	"/lib64": "the loader's path as programs name it",
	"/opt":   "add-on software",
	"/proc":  "process information (/proc/self is the worker itself)",
	"/run":   "runtime state",
	"/sbin":  "programs",
	"/sys":   "kernel and device information",
	"/tmp":   "temporary files",
	"/usr":   "programs, libraries and shared data",
	"/var":   "variable data and caches",
}

// writeRules writes the rules grouped by top directory (or variable),
// each group with a comment, found rules before those that only stand for
// missing paths. others are rules on other processes' /proc entries,
// written as comments.
func (cfg genConfig) writeRules(b *strings.Builder, rules []rule, others map[string]policy.Right) {
	type line struct {
		text    string
		missing bool
	}
	groups := map[string][]line{}
	counts := map[string][2]int{}
	for _, r := range rules {
		text, g := cfg.withVars(r.pattern)
		l := line{text: "allow " + r.rights.String() + " " + quoteWord(text), missing: r.missingOnly()}
		if cfg.secret(r.pattern) {
			l.text = "# REVIEW: the run used a file that holds credentials; deny it instead\n" +
				"# unless the program really needs it.\n" + l.text
		}
		groups[g] = append(groups[g], l)
		c := counts[g]
		c[0] += r.paths
		c[1] += r.missing
		counts[g] = c
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	// System directories first, then the variables in the order of cfg.vars.
	rank := func(k string) int {
		for i, v := range cfg.vars {
			if k == "${"+v.name+"}" {
				return 1 + i
			}
		}
		return 0
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		lines := groups[k]
		slices.SortStableFunc(lines, func(a, b line) int {
			switch {
			case a.missing == b.missing:
				return 0
			case b.missing:
				return -1
			}
			return 1
		})
		note := groupNotes[k]
		for _, v := range cfg.vars {
			if k == "${"+v.name+"}" {
				note = v.what
			}
		}
		if note == "" {
			note = "used by the program"
		}
		c := counts[k]
		fmt.Fprintf(b, "\n# %s: %s.\n# %d %s used", k, note, c[0], plural(c[0], "path", "paths"))
		if c[1] > 0 {
			fmt.Fprintf(b, ", %d of them looked up but missing", c[1])
		}
		b.WriteString(".\n")
		inMissing := false
		for _, l := range lines {
			if l.missing && !inMissing {
				inMissing = true
				b.WriteString("# Looked up but missing while learning: allowed so that the program\n")
				b.WriteString("# gets \"no such file\" (ENOENT), as outside the sandbox, not EACCES.\n")
			}
			b.WriteString(l.text)
			b.WriteByte('\n')
		}
	}
	if len(others) > 0 {
		b.WriteString("\n# Other processes of the worker's tree (/proc/<pid>/...). Their pids change\n")
		b.WriteString("# from run to run, so these are not rules; uncomment one only if the\n")
		b.WriteString("# program fails without it, knowing that it names every process.\n")
		keys := make([]string, 0, len(others))
		for k := range others {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(b, "# allow %s %s\n", written(others[k]), quoteWord(escapeDollar(k)))
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// procOther rewrites /proc/<pid>/rest of another process to /proc/*/rest
// and reports whether p is one; /proc/self/task/<tid>/ (another thread of
// the worker) becomes /proc/self/task/*/ and is not "other".
func procOther(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/proc/")
	if !ok {
		return p, false
	}
	if t, ok := strings.CutPrefix(rest, "self/task/"); ok {
		if id, tail, _ := strings.Cut(t, "/"); isDigits(id) {
			return "/proc/self/task/*" + slashed(tail), false
		}
		return p, false
	}
	id, tail, _ := strings.Cut(rest, "/")
	if !isDigits(id) {
		return p, false
	}
	if t, ok := strings.CutPrefix(tail, "task/"); ok {
		if tid, tt, _ := strings.Cut(t, "/"); isDigits(tid) {
			tail = "task/*" + slashed(tt)
		}
	}
	return "/proc/*" + slashed(tail), true
}

// randomSuffix splits a name that ends in six letters and digits after a
// '.', '-' or '_' (the XXXXXX of mkstemp) into stem and suffix, and reports
// whether the suffix looks random: it mixes cases, or letters and digits.
func randomSuffix(name string) (stem string, ok, random bool) {
	const n = 6
	if len(name) < n+2 {
		return "", false, false
	}
	sep, suf := name[len(name)-n-1], name[len(name)-n:]
	if sep != '.' && sep != '-' && sep != '_' {
		return "", false, false
	}
	var upper, lower, digit bool
	for _, c := range suf {
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		default:
			return "", false, false
		}
	}
	return name[:len(name)-n], true, upper && lower || digit && (upper || lower)
}

// globRandom maps each path to its form with random name suffixes written
// as "*" (".org.chromium.Chromium.15kO9p" becomes ".org.chromium.Chromium.*"):
// such names change from run to run. A suffix that does not look random
// ("OXQLGO") is globbed too when a sibling with the same stem's does.
func globRandom(paths []string) map[string]string {
	stems := map[string]bool{} // parent + "/" + stem
	for _, p := range paths {
		comps := strings.Split(p, "/")
		for i, c := range comps {
			if stem, _, random := randomSuffix(c); random {
				stems[strings.Join(comps[:i], "/")+"/"+stem] = true
			}
		}
	}
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		comps := strings.Split(p, "/")
		for i, c := range comps {
			if stem, ok, _ := randomSuffix(c); ok && stems[strings.Join(comps[:i], "/")+"/"+stem] {
				comps[i] = stem + "*"
			}
		}
		out[p] = strings.Join(comps, "/")
	}
	return out
}

// lexical returns the lexically clean form of an absolute path without
// ".." components, or "" when it has none: the broker judges that form
// before it resolves symlinks (its fast path), so a policy must allow it
// as well as the file the symlinks lead to.
func lexical(p string) string {
	if p == "" || p[0] != '/' {
		return ""
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return ""
		}
	}
	return path.Clean(p)
}

func slashed(s string) string {
	if s == "" {
		return ""
	}
	return "/" + s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
