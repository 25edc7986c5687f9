package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

const (
	// maxIncludeDepth bounds nested includes.
	maxIncludeDepth = 32
	// maxFileSize bounds the size of one policy file.
	maxFileSize = 16 << 20
)

var directiveNames = []string{
	"version", "include", "define", "allow", "deny", "net", "env", "limit",
	"namespaces", "syscall", "default-errno", "require", "landlock",
}

var builtinNames = []string{"CWD", "HOME", "TMPDIR", "UID"}

var namespaceNames = []string{"ipc", "net", "pid", "user", "uts"}

// Parse parses the policy src. name is used in positions and to resolve
// includes, which are read from the file system relative to the directory of
// the including file. Variables come from defs first, then define lines,
// then the built-ins HOME and TMPDIR (from the environment; TMPDIR defaults
// to /tmp), CWD (the current directory) and UID (the real user ID).
//
// The error, if any, is a *[ParseError] listing every problem found.
func Parse(name string, src []byte, defs Defines) (*Policy, error) {
	return parse(name, src, defs, readInclude)
}

// ParseFile reads and parses the policy file at path; see [Parse]. path may
// name a pipe (sandbox-exec -f <(...)); files it includes must be regular
// files. A policy file is at most 16 MiB.
func ParseFile(path string, defs Defines) (*Policy, error) {
	src, err := readPolicyFile(path, false)
	if err != nil {
		return nil, &ParseError{Errors: []Error{{
			Pos: Position{File: path},
			Msg: "cannot read policy: " + describeReadError(err),
			Err: err,
		}}}
	}
	return parse(path, src, defs, readInclude)
}

// Default parses the built-in default policy, the embedded copy of
// policies/default.policy: read-only system directories and the current
// directory (${CWD}), no writes, no network. Positions in it name the file
// "default.policy".
func Default(defs Defines) (*Policy, error) {
	return parse("default.policy", defaultPolicy, defs, func(string) ([]byte, error) {
		return nil, errors.New("the built-in policy cannot include files")
	})
}

func readInclude(name string) ([]byte, error) { return readPolicyFile(name, true) }

// readPolicyFile reads a file of at most maxFileSize bytes; with
// regularOnly, only a regular file.
func readPolicyFile(name string, regularOnly bool) ([]byte, error) {
	// Stat before opening: opening a FIFO would block.
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := checkPolicyFileInfo(name, fi, regularOnly); err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkPolicyFileInfo(name, fi, regularOnly); err != nil {
		return nil, err
	}
	src, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxFileSize {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("file is larger than 16 MiB")}
	}
	return src, nil
}

func checkPolicyFileInfo(name string, fi fs.FileInfo, regularOnly bool) error {
	switch {
	case fi.IsDir():
		return &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	case regularOnly && !fi.Mode().IsRegular():
		return &fs.PathError{Op: "read", Path: name, Err: errors.New("not a regular file")}
	case fi.Size() > maxFileSize:
		return &fs.PathError{Op: "read", Path: name, Err: errors.New("file is larger than 16 MiB")}
	}
	return nil
}

// describeReadError drops the path a *fs.PathError repeats.
func describeReadError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

type variable struct {
	value string
	pos   Position
}

type frame struct {
	name       string // as used in positions
	key        string // absolute path, for cycle detection
	lines      []string
	line       int // current line, 1-based
	directives int // directives seen so far
	version    Position
}

type parser struct {
	read func(string) ([]byte, error)
	defs Defines
	vars map[string]variable // define lines

	builtinsDone bool
	builtins     map[string]string
	builtinWhy   map[string]string

	stack []*frame
	incl  []Position // include directives, outermost first

	errs      []Error
	truncated bool

	p         *Policy
	seenFiles map[string]bool
	limitIdx  map[string]int
	passSeen  map[string]bool
	connect   map[uint16]bool
	bind      map[uint16]bool

	// landlockChain is the include chain of the last landlock line, for
	// an error found once every file is read.
	landlockChain []Position
	// unsafeLL are the names of unsafe-allow lines that need Landlock,
	// checked against landlock off once every file is read.
	unsafeLL []unsafeUse
}

func parse(name string, src []byte, defs Defines, read func(string) ([]byte, error)) (*Policy, error) {
	ps := &parser{
		read:      read,
		defs:      defs,
		vars:      map[string]variable{},
		p:         &Policy{defaultErrno: defaultErrno},
		seenFiles: map[string]bool{},
		limitIdx:  map[string]int{},
		passSeen:  map[string]bool{},
		connect:   map[uint16]bool{},
		bind:      map[uint16]bool{},
	}
	ps.file(name, fileKey(name), src)
	if len(ps.errs) > 0 {
		return nil, &ParseError{Errors: ps.errs, Truncated: ps.truncated}
	}
	ps.checkLandlockOff()
	ps.checkUnsafeLandlock()
	if len(ps.errs) > 0 {
		return nil, &ParseError{Errors: ps.errs, Truncated: ps.truncated}
	}
	p := ps.p
	p.net.TCPConnect = sortedPorts(ps.connect)
	p.net.TCPBind = sortedPorts(ps.bind)
	p.env.Given = p.env.Clear || len(p.env.Pass) > 0 || len(p.env.Set) > 0
	p.matcher = newMatcher(p.rules)
	return p, nil
}

func fileKey(name string) string {
	if abs, err := filepath.Abs(name); err == nil {
		return abs
	}
	return filepath.Clean(name)
}

func sortedPorts(m map[uint16]bool) []uint16 {
	var ports []uint16
	for p := range m {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return ports
}

func (ps *parser) cur() *frame { return ps.stack[len(ps.stack)-1] }

func (ps *parser) pos(col int) Position {
	f := ps.cur()
	return Position{File: f.name, Line: f.line, Col: col}
}

func (ps *parser) errf(pos Position, format string, args ...any) {
	ps.errWrap(pos, nil, format, args...)
}

func (ps *parser) errWrap(pos Position, err error, format string, args ...any) {
	ps.addErr(Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Chain: ps.chain(), Err: err})
}

func (ps *parser) addErr(e Error) {
	if len(ps.errs) >= MaxErrors {
		ps.truncated = true
		return
	}
	ps.errs = append(ps.errs, e)
}

func (ps *parser) file(name, key string, src []byte) {
	ps.stack = append(ps.stack, &frame{name: name, key: key})
	defer func() { ps.stack = ps.stack[:len(ps.stack)-1] }()
	if !ps.seenFiles[key] {
		ps.seenFiles[key] = true
		ps.p.files = append(ps.p.files, name)
	}
	f := ps.cur()
	f.lines = strings.Split(string(src), "\n")
	for i, raw := range f.lines {
		if ps.truncated {
			return
		}
		f.line = i + 1
		if i == 0 && strings.HasPrefix(raw, "\uFEFF") {
			raw = "   " + raw[3:] // a byte-order mark; keep the columns
		}
		if lerr := checkLine(raw); lerr != nil {
			ps.errf(ps.pos(lerr.col), "%s", lerr.msg)
			continue
		}
		toks, lerr := tokenize(raw)
		if lerr != nil {
			ps.errf(ps.pos(lerr.col), "%s", lerr.msg)
			continue
		}
		if len(toks) > 0 {
			ps.directive(toks[0], toks[1:])
			f.directives++
		}
	}
}

// argc checks the number of arguments of a directive: at least lo and, if
// hi >= 0, at most hi. usage is the directive's synopsis.
func (ps *parser) argc(d token, args []token, lo, hi int, usage string) bool {
	if len(args) < lo {
		ps.errf(ps.pos(d.col), "%s needs %s; usage: %s", d.val, plural(lo, "argument"), usage)
		return false
	}
	if hi >= 0 && len(args) > hi {
		ps.errf(ps.pos(args[hi].col), "unexpected argument %q; usage: %s", args[hi].val, usage)
		return false
	}
	return true
}

func plural(n int, what string) string {
	switch n {
	case 1:
		return "an " + what
	default:
		return strconv.Itoa(n) + " " + what + "s"
	}
}

func (ps *parser) directive(d token, args []token) {
	switch d.val {
	case "version":
		ps.version(d, args)
	case "include":
		if ps.argc(d, args, 1, 1, "include FILE") {
			ps.include(args[0])
		}
	case "define":
		if ps.argc(d, args, 1, 1, "define NAME=VALUE") {
			ps.define(args[0])
		}
	case "allow":
		ps.allow(d, args)
	case "deny":
		ps.deny(d, args)
	case "net":
		ps.net(d, args)
	case "env":
		ps.env(d, args)
	case "limit":
		ps.limit(d, args)
	case "namespaces":
		ps.namespaces(d, args)
	case "syscall":
		ps.syscall(d, args)
	case "default-errno":
		if ps.argc(d, args, 1, 1, "default-errno ERRNO") {
			n, err := ParseErrno(args[0].val)
			if err != nil {
				ps.errf(ps.pos(args[0].col), "%v", err)
				return
			}
			ps.p.defaultErrno, ps.p.errnoGiven = n, true
		}
	case "require":
		ps.require(d, args)
	case "landlock":
		ps.landlock(d, args)
	default:
		hint := didYouMean(d.val, directiveNames)
		if strings.HasPrefix(d.val, "/") || strings.HasPrefix(d.val, "$") {
			hint = " (a line starts with a directive: write allow RIGHTS " + d.val + " to allow a path)"
		}
		ps.errf(ps.pos(d.col), "unknown directive %q%s; valid directives: %s", d.val, hint, strings.Join(directiveNames, ", "))
	}
}

func (ps *parser) version(d token, args []token) {
	f := ps.cur()
	if f.version.Line > 0 {
		ps.errf(ps.pos(d.col), "version given twice; the first is at %s", f.version)
		return
	}
	if f.directives > 0 {
		ps.errf(ps.pos(d.col), "version must be the first directive of a file")
		return
	}
	f.version = ps.pos(d.col).line()
	if !ps.argc(d, args, 1, 1, "version 1") {
		return
	}
	if args[0].val != "1" {
		ps.errf(ps.pos(args[0].col), "unsupported policy version %q; this sandbox-exec reads version 1", args[0].val)
	}
}

func (ps *parser) include(t token) {
	pos := ps.pos(t.col)
	s, ok := ps.expand(t, pos, false)
	if !ok {
		return
	}
	if s == "" {
		ps.errf(pos, "empty file name; usage: include FILE")
		return
	}
	name := s
	if !filepath.IsAbs(name) {
		name = filepath.Join(filepath.Dir(ps.cur().name), name)
	}
	key := fileKey(name)
	for i, f := range ps.stack {
		if f.key == key {
			var names []string
			for _, g := range ps.stack[i:] {
				names = append(names, g.name)
			}
			ps.errf(pos, "include cycle: %s includes %s", strings.Join(names, " includes "), name)
			return
		}
	}
	if len(ps.stack) >= maxIncludeDepth {
		ps.errf(pos, "includes nested more than %d deep", maxIncludeDepth)
		return
	}
	src, err := ps.read(name)
	if err != nil {
		where := ""
		if name != s {
			where = " (" + name + ")"
		}
		ps.errWrap(pos, err, "cannot include %q%s: %s", s, where, describeReadError(err))
		return
	}
	ps.incl = append(ps.incl, pos.line())
	ps.file(name, key, src)
	ps.incl = ps.incl[:len(ps.incl)-1]
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// identPrefix returns the longest prefix of s that is a variable name.
func identPrefix(s string) string {
	n := 0
	for n < len(s) && validName(s[:n+1]) {
		n++
	}
	return s[:n]
}

// definedBelow returns the position of a define line for name further down
// the current file, if there is one.
func (ps *parser) definedBelow(name string) (Position, bool) {
	f := ps.cur()
	for i := f.line; i < len(f.lines); i++ {
		line := f.lines[i]
		if !strings.Contains(line, name) || checkLine(line) != nil {
			continue
		}
		toks, lerr := tokenize(line)
		if lerr == nil && len(toks) == 2 && toks[0].val == "define" && strings.HasPrefix(toks[1].val, name+"=") {
			return Position{File: f.name, Line: i + 1}, true
		}
	}
	return Position{}, false
}

func (ps *parser) define(t token) {
	pos := ps.pos(t.col)
	name, value, ok := strings.Cut(t.val, "=")
	if !ok {
		ps.errf(pos, "define needs NAME=VALUE, got %q (no spaces around =; quote a value with spaces)", t.val)
		return
	}
	if !validName(name) {
		ps.errf(pos, "invalid variable name %q; names are letters, digits and _, and do not start with a digit", name)
		return
	}
	if _, ok := ps.defs[name]; ok {
		return // -D wins
	}
	if prev, ok := ps.vars[name]; ok {
		v, ok := ps.expand(token{value, t.col}, pos, false)
		if ok && v != prev.value {
			ps.errf(pos, "%s is already defined at %s; a variable is defined once (pass -D %s=VALUE to override it)", name, prev.pos, name)
		}
		return
	}
	v, ok := ps.expand(token{value, t.col}, pos, false)
	if !ok {
		return
	}
	ps.vars[name] = variable{v, pos.line()}
}

func (ps *parser) loadBuiltins() {
	if ps.builtinsDone {
		return
	}
	ps.builtinsDone = true
	ps.builtins = map[string]string{}
	ps.builtinWhy = map[string]string{}
	if h := os.Getenv("HOME"); h != "" {
		ps.builtins["HOME"] = h
	} else {
		ps.builtinWhy["HOME"] = "HOME is not set in the environment"
	}
	if t := os.Getenv("TMPDIR"); t != "" {
		ps.builtins["TMPDIR"] = t
	} else {
		ps.builtins["TMPDIR"] = "/tmp"
	}
	if wd, err := os.Getwd(); err == nil {
		ps.builtins["CWD"] = wd
	} else {
		ps.builtinWhy["CWD"] = "the current directory is unknown (" + err.Error() + ")"
	}
	if uid := os.Getuid(); uid >= 0 {
		ps.builtins["UID"] = strconv.Itoa(uid)
	} else {
		ps.builtinWhy["UID"] = "this system has no user IDs"
	}
}

// lookup returns the value of a variable. Built-in values are literal
// paths, so in patterns they may not hold glob characters, which would
// silently widen the rule.
func (ps *parser) lookup(name string, pos Position, inPattern bool) (string, bool) {
	if v, ok := ps.defs[name]; ok {
		return v, true
	}
	if v, ok := ps.vars[name]; ok {
		return v.value, true
	}
	if slices.Contains(builtinNames, name) {
		ps.loadBuiltins()
		if v, ok := ps.builtins[name]; ok {
			if inPattern && isGlob(v) {
				ps.errf(pos, "${%s} is %q, which holds a glob character (* or ?) that would widen the rule; pass -D %s=VALUE or write the path out", name, v, name)
				return "", false
			}
			return v, true
		}
		ps.errf(pos, "${%s} is not available: %s; pass -D %s=VALUE", name, ps.builtinWhy[name], name)
		return "", false
	}
	known := slices.Clone(builtinNames)
	for n := range ps.vars {
		known = append(known, n)
	}
	for n := range ps.defs {
		known = append(known, n)
	}
	if below, ok := ps.definedBelow(name); ok {
		ps.errf(pos, "undefined variable ${%s}: it is defined below, at %s; move the define above its first use", name, below)
		return "", false
	}
	hint := ""
	if s := closest(name, known); s != "" {
		hint = fmt.Sprintf(" (did you mean ${%s}?)", s)
	}
	ps.errf(pos, "undefined variable ${%s}%s; add \"define %s=VALUE\" above this line or pass -D %s=VALUE", name, hint, name, name)
	return "", false
}

// expand replaces ${NAME} and $$ in t. The result must be UTF-8 text
// without NUL or newline, so that String can print it back.
func (ps *parser) expand(t token, pos Position, inPattern bool) (string, bool) {
	s := t.val
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c != '$':
			b.WriteByte(c)
			i++
			continue
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i += 2
			continue
		case !strings.HasPrefix(s[i:], "${"):
			use := "${NAME} to use a variable"
			if n := identPrefix(s[i+1:]); n != "" {
				use = "${" + n + "} to use the variable"
			}
			ps.errf(pos, "stray $ in %q; write %s, or $$ for a literal $", s, use)
			return "", false
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			ps.errf(pos, "unterminated ${ in %q; write ${NAME}", s)
			return "", false
		}
		name := s[i+2 : i+2+end]
		if !validName(name) {
			ps.errf(pos, "invalid variable name %q in %q; names are letters, digits and _, and do not start with a digit", name, s)
			return "", false
		}
		v, ok := ps.lookup(name, pos, inPattern)
		if !ok {
			return "", false
		}
		b.WriteString(v)
		i += 3 + end
	}
	out := b.String()
	switch {
	case strings.IndexByte(out, 0) >= 0:
		ps.errf(pos, "%q expands to a value with a NUL byte", s)
	case strings.IndexByte(out, '\n') >= 0:
		ps.errf(pos, "%q expands to a value with a newline", s)
	case !utf8.ValidString(out):
		ps.errf(pos, "%q expands to a value that is not valid UTF-8", s)
	default:
		return out, true
	}
	return "", false
}

func (ps *parser) allow(d token, args []token) {
	if len(args) == 0 {
		ps.errf(ps.pos(d.col), "allow needs rights and at least one pattern; usage: allow RIGHTS PATTERN..., e.g. allow read /usr/share/**")
		return
	}
	if !isRightsWord(args[0].val) {
		ps.errf(ps.pos(args[0].col), "allow needs rights before the patterns, e.g. allow read %s; valid rights: %s", quote(args[0].val), validRights)
		return
	}
	r, err := ParseRights(args[0].val)
	if err != nil {
		ps.errf(ps.pos(args[0].col), "%v", err)
		return
	}
	if len(args) == 1 {
		ps.errf(ps.pos(d.col), "allow %s needs at least one pattern; usage: allow RIGHTS PATTERN...", args[0].val)
		return
	}
	ps.rules(true, r, args[1:])
}

// isRightsWord tells a rights list from a pattern: rights are lowercase
// letters and commas.
func isRightsWord(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz,") == ""
}

func (ps *parser) deny(d token, args []token) {
	r := AllRights
	if len(args) > 0 && isRightsWord(args[0].val) {
		var err error
		if r, err = ParseRights(args[0].val); err != nil {
			ps.errf(ps.pos(args[0].col), "%v", err)
			return
		}
		args = args[1:]
	}
	if len(args) == 0 {
		ps.errf(ps.pos(d.col), "deny needs at least one pattern; usage: deny [RIGHTS] PATTERN... (without rights it denies every right)")
		return
	}
	ps.rules(false, r, args)
}

func (ps *parser) rules(allow bool, r Right, pats []token) {
	for _, t := range pats {
		pos := ps.pos(t.col)
		s, ok := ps.expand(t, pos, true)
		if !ok {
			continue
		}
		pat, msg := cleanPattern(s)
		if msg != "" {
			if s != t.val {
				msg += fmt.Sprintf(" (expanded from %q)", t.val)
			}
			ps.errf(pos, "%s", msg)
			continue
		}
		ps.p.rules = append(ps.p.rules, Rule{Allow: allow, Rights: r, Pattern: pat, Pos: pos})
	}
}

func (ps *parser) net(d token, args []token) {
	const usage = "net none|unix|inet|all, net tcp-connect PORT..., net tcp-bind PORT..."
	if !ps.argc(d, args, 1, -1, usage) {
		return
	}
	switch mode := args[0].val; mode {
	case "none", "unix", "inet", "all":
		if len(args) > 1 {
			ps.errf(ps.pos(args[1].col), "unexpected argument %q; net %s takes no ports (use net tcp-connect PORT...)", args[1].val, mode)
			return
		}
		ps.p.net.Mode = NetMode(slices.Index(netModeNames, mode))
	case "tcp-connect", "tcp-bind":
		if len(args) == 1 {
			ps.errf(ps.pos(args[0].col), "net %s needs at least one port", mode)
			return
		}
		set := ps.connect
		if mode == "tcp-bind" {
			set = ps.bind
		}
		for _, t := range args[1:] {
			n, err := strconv.ParseUint(t.val, 10, 16)
			if err != nil || n == 0 {
				ps.errf(ps.pos(t.col), "invalid port %q; ports are numbers from 1 to 65535", t.val)
				continue
			}
			set[uint16(n)] = true
		}
	default:
		valid := append(slices.Clone(netModeNames), "tcp-connect", "tcp-bind")
		ps.errf(ps.pos(args[0].col), "unknown net mode %q%s; valid: %s", mode, didYouMean(mode, valid), strings.Join(valid, ", "))
	}
}

func (ps *parser) env(d token, args []token) {
	const usage = "env clear, env pass NAME..., env set NAME=VALUE..."
	if !ps.argc(d, args, 1, -1, usage) {
		return
	}
	switch what := args[0].val; what {
	case "clear":
		if len(args) > 1 {
			ps.errf(ps.pos(args[1].col), "unexpected argument %q; env clear takes no arguments", args[1].val)
			return
		}
		ps.p.env.Clear = true
	case "pass":
		if len(args) == 1 {
			ps.errf(ps.pos(args[0].col), "env pass needs at least one variable name")
			return
		}
		for _, t := range args[1:] {
			if !validName(t.val) {
				ps.errf(ps.pos(t.col), "invalid environment variable name %q; names are letters, digits and _ (separate several names with spaces)", t.val)
				continue
			}
			if !ps.passSeen[t.val] {
				ps.passSeen[t.val] = true
				ps.p.env.Pass = append(ps.p.env.Pass, t.val)
			}
		}
	case "set":
		if len(args) == 1 {
			ps.errf(ps.pos(args[0].col), "env set needs NAME=VALUE")
			return
		}
		for _, t := range args[1:] {
			pos := ps.pos(t.col)
			name, value, ok := strings.Cut(t.val, "=")
			if !ok {
				ps.errf(pos, "env set needs NAME=VALUE, got %q (no spaces around =; quote a value with spaces)", t.val)
				continue
			}
			if !validName(name) {
				ps.errf(pos, "invalid environment variable name %q; names are letters, digits and _", name)
				continue
			}
			v, ok := ps.expand(token{value, t.col}, pos, false)
			if !ok {
				continue
			}
			ps.p.env.Set = append(ps.p.env.Set, EnvVar{name, v})
		}
	default:
		valid := []string{"clear", "pass", "set"}
		ps.errf(ps.pos(args[0].col), "unknown env action %q%s; valid: clear, pass, set", what, didYouMean(what, valid))
	}
}

func (ps *parser) limit(d token, args []token) {
	const usage = "limit NAME VALUE [HARD], e.g. limit nofile 1024 or limit fsize 1GiB"
	if !ps.argc(d, args, 2, 3, usage) {
		return
	}
	name := args[0].val
	info, ok := limitTable[name]
	if !ok {
		ps.errf(ps.pos(args[0].col), "unknown limit %q%s; valid limits: %s", name, didYouMean(name, limitNames), strings.Join(limitNames, ", "))
		return
	}
	soft, err := parseLimitValue(name, info, args[1].val)
	if err != nil {
		ps.errf(ps.pos(args[1].col), "%v", err)
		return
	}
	hard := soft
	if len(args) == 3 {
		if hard, err = parseLimitValue(name, info, args[2].val); err != nil {
			ps.errf(ps.pos(args[2].col), "%v", err)
			return
		}
		if soft > hard {
			ps.errf(ps.pos(args[1].col), "soft limit %s is above the hard limit %s", args[1].val, args[2].val)
			return
		}
	}
	l := Limit{Name: name, Resource: info.resource, Soft: soft, Hard: hard}
	if i, ok := ps.limitIdx[name]; ok {
		ps.p.limits[i] = l
		return
	}
	ps.limitIdx[name] = len(ps.p.limits)
	ps.p.limits = append(ps.p.limits, l)
}

func (ps *parser) namespaces(d token, args []token) {
	if !ps.argc(d, args, 1, -1, "namespaces NAME... (ipc, net, pid, user, uts) or namespaces none") {
		return
	}
	if args[0].val == "none" {
		if len(args) > 1 {
			ps.errf(ps.pos(args[1].col), "unexpected argument %q; namespaces none stands alone", args[1].val)
			return
		}
		ps.p.namespaces = nil
		return
	}
	var ns []string
	bad := false
	for _, t := range args {
		if !slices.Contains(namespaceNames, t.val) {
			hint := didYouMean(t.val, namespaceNames)
			if t.val == "none" {
				hint = " (none stands alone)"
			}
			ps.errf(ps.pos(t.col), "unknown namespace %q%s; valid namespaces: %s, or none", t.val, hint, strings.Join(namespaceNames, ", "))
			bad = true
			continue
		}
		if !slices.Contains(ns, t.val) {
			ns = append(ns, t.val)
		}
	}
	if !bad {
		slices.Sort(ns)
		ps.p.namespaces = ns
	}
}

func (ps *parser) syscall(d token, args []token) {
	const usage = "syscall allow NAME..., syscall deny NAME... [errno=E], syscall unsafe-allow NAME..., syscall default errno=E|kill"
	if !ps.argc(d, args, 1, -1, usage) {
		return
	}
	act := args[0]
	rule := SyscallRule{Action: act.val, Pos: ps.pos(act.col)}
	rest := args[1:]
	switch act.val {
	case "allow", "deny", "unsafe-allow":
		var errnoTok *token
		if n := len(rest); n > 0 && strings.HasPrefix(rest[n-1].val, "errno=") {
			errnoTok, rest = &rest[n-1], rest[:n-1]
		}
		if len(rest) == 0 {
			ps.errf(ps.pos(act.col), "syscall %s needs at least one syscall name; usage: %s", act.val, usage)
			return
		}
		ok := true
		var needLL []unsafeUse
		for _, t := range rest {
			if strings.HasPrefix(t.val, "errno=") {
				ps.errf(ps.pos(t.col), "errno= must come after the syscall names")
				ok = false
				continue
			}
			if _, known := syscallArches[t.val]; !known {
				ps.errf(ps.pos(t.col), "unknown syscall %q%s; names are those of Linux on amd64 or arm64, as in golang.org/x/sys/unix", t.val, didYouMean(t.val, syscallNames()))
				ok = false
				continue
			}
			if !ps.checkAllowed(act.val, t) {
				ok = false
				continue
			}
			if u, unsafe := LookupUnsafe(t.val); unsafe && act.val == "unsafe-allow" && u.NeedsLandlock {
				needLL = append(needLL, unsafeUse{name: t.val, pos: ps.pos(t.col), chain: ps.chain()})
			}
			rule.Names = append(rule.Names, t.val)
		}
		if errnoTok != nil {
			if act.val != "deny" {
				ps.errf(ps.pos(errnoTok.col), "errno= applies to syscall deny and syscall default, not to %s", act.val)
				ok = false
			} else if e, valid := ps.errnoArg(*errnoTok); valid {
				rule.Errno = e
			} else {
				ok = false
			}
		}
		if !ok {
			return
		}
		ps.unsafeLL = append(ps.unsafeLL, needLL...)
	case "default":
		if len(rest) != 1 {
			ps.errf(ps.pos(act.col), "syscall default needs exactly one of errno=E or kill")
			return
		}
		switch t := rest[0]; {
		case t.val == "kill":
			rule.Kill = true
		case strings.HasPrefix(t.val, "errno="):
			e, ok := ps.errnoArg(t)
			if !ok {
				return
			}
			rule.Errno = e
		default:
			ps.errf(ps.pos(t.col), "syscall default takes errno=E or kill, not %q", t.val)
			return
		}
	default:
		valid := []string{"allow", "deny", "unsafe-allow", "default"}
		ps.errf(ps.pos(act.col), "unknown syscall action %q%s; valid: allow, deny, unsafe-allow, default", act.val, didYouMean(act.val, valid))
		return
	}
	ps.p.syscalls = append(ps.p.syscalls, rule)
}

// checkAllowed reports whether syscall action act (allow or unsafe-allow)
// may name t, and says why not. Dangerous syscalls need unsafe-allow,
// which takes nothing else, so that no dangerous syscall is allowed by
// accident; syscalls that take a path are never allowed natively: the
// broker serves them (allow turns the optional ones on) or the filter
// denies them.
func (ps *parser) checkAllowed(act string, t token) bool {
	_, unsafe := LookupUnsafe(t.val)
	brokered, path := pathSyscalls()[t.val]
	switch {
	case act == "allow" && unsafe:
		u, _ := LookupUnsafe(t.val)
		ps.errf(ps.pos(t.col), "syscall allow never allows the dangerous %s (%s); if the worker needs it anyway, write syscall unsafe-allow %s", t.val, u.Exposes, t.val)
		return false
	case act != "unsafe-allow" || unsafe:
		return true
	case path && brokered:
		ps.errf(ps.pos(t.col), "syscall unsafe-allow cannot allow %s: it takes a path and must stay brokered; allow the path with a file rule instead (such as allow read /some/path)", t.val)
	case path:
		ps.errf(ps.pos(t.col), "syscall unsafe-allow cannot allow %s: it takes a path or reaches files without one, which the broker cannot check, so the filter always denies it", t.val)
	default:
		ps.errf(ps.pos(t.col), "syscall unsafe-allow takes only the syscalls the filter denies as dangerous (%s); %s is not one of them: write syscall allow %s", strings.Join(unsafeNames(), ", "), t.val, t.val)
	}
	return false
}

func (ps *parser) errnoArg(t token) (int, bool) {
	n, err := ParseErrno(strings.TrimPrefix(t.val, "errno="))
	if err != nil {
		ps.errf(ps.pos(t.col), "%v", err)
		return 0, false
	}
	return n, true
}

// syscallNames is the sorted list of known syscall names, for suggestions.
var syscallNames = sync.OnceValue(func() []string {
	names := make([]string, 0, len(syscallArches))
	for n := range syscallArches {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
})

func (ps *parser) require(d token, args []token) {
	if !ps.argc(d, args, 1, -1, "require FEATURE..., e.g. require landlock>=3 user-notif") {
		return
	}
	for _, t := range args {
		r, err := parseRequirement(t.val)
		if err != nil {
			ps.errf(ps.pos(t.col), "%v", err)
			continue
		}
		r.Pos = ps.pos(t.col)
		ps.p.requires = append(ps.p.requires, r)
	}
}

// landlock parses "landlock on|off": whether the launcher restricts the
// worker with a Landlock ruleset. The last landlock line wins.
func (ps *parser) landlock(d token, args []token) {
	const usage = "landlock on|off (on, the default, enforces what the kernel offers; require landlock makes it mandatory)"
	if !ps.argc(d, args, 1, 1, usage) {
		return
	}
	switch v := args[0].val; v {
	case "on", "off":
		ps.p.landlockOff = v == "off"
		ps.p.landlockPos = ps.pos(d.col)
		ps.landlockChain = ps.chain()
	default:
		ps.errf(ps.pos(args[0].col), "unknown landlock setting %q%s; usage: %s", v, didYouMean(v, []string{"on", "off"}), usage)
	}
}

// checkLandlockOff reports a policy that both turns Landlock off and
// requires it: one of the lines must change, and the error names both.
func (ps *parser) checkLandlockOff() {
	if !ps.p.landlockOff {
		return
	}
	var names, where []string
	for _, r := range ps.p.requires {
		if strings.HasPrefix(r.Feature, "landlock") {
			names = append(names, r.String())
			where = append(where, r.String()+" at "+r.Pos.String())
		}
	}
	if len(names) == 0 {
		return
	}
	ps.addErr(Error{Pos: ps.p.landlockPos, Chain: ps.landlockChain,
		Msg: fmt.Sprintf("landlock off contradicts require %s; delete this line (or write landlock on) to keep Landlock, or remove %s from the require line to run without it",
			strings.Join(where, ", "), strings.Join(names, " and "))})
}

// chain returns the include directives that led to the current file,
// innermost first.
func (ps *parser) chain() []Position {
	var chain []Position
	for i := len(ps.incl) - 1; i >= 0; i-- {
		chain = append(chain, ps.incl[i])
	}
	return chain
}
