package policy

import (
	"slices"
	"strconv"
	"strings"
)

// Defines are variable values given by the caller (the command's -D
// NAME=VALUE). They win over define lines and over the built-ins.
type Defines map[string]string

// A Rule is one allow or deny rule, one per pattern of its line.
type Rule struct {
	// Allow is true for allow rules and false for deny rules.
	Allow bool
	// Rights are the rights as written: for allow rules without the implied
	// stat, for a deny rule without rights AllRights.
	Rights Right
	// Pattern is the expanded, lexically cleaned absolute pattern.
	Pattern string
	// Pos is the position of the pattern in its file.
	Pos Position
}

// String returns the rule in policy syntax, such as "allow read /usr/**".
func (r Rule) String() string {
	pat := quote(escapeDollar(r.Pattern))
	switch {
	case r.Allow:
		return "allow " + r.Rights.String() + " " + pat
	case r.Rights == AllRights:
		return "deny " + pat
	}
	return "deny " + r.Rights.String() + " " + pat
}

// A NetMode is the set of socket families a worker may use.
type NetMode int

// The network modes of the net directive.
const (
	NetNone NetMode = iota // no sockets (the default)
	NetUnix                // AF_UNIX only
	NetInet                // AF_INET and AF_INET6 only
	NetAll                 // AF_UNIX, AF_INET and AF_INET6
)

var netModeNames = []string{"none", "unix", "inet", "all"}

// String returns the mode's name in the policy language.
func (m NetMode) String() string {
	if m >= 0 && int(m) < len(netModeNames) {
		return netModeNames[m]
	}
	return "NetMode(" + strconv.Itoa(int(m)) + ")"
}

// Net is the network part of a policy.
type Net struct {
	// Mode is set by the last "net none|unix|inet|all" line; NetNone if
	// there is none.
	Mode NetMode
	// TCPConnect and TCPBind are the ports of "net tcp-connect" and "net
	// tcp-bind" lines, sorted, without duplicates.
	TCPConnect, TCPBind []uint16
}

// An EnvVar is one "env set NAME=VALUE".
type EnvVar struct{ Name, Value string }

// Env is the environment part of a policy, in the order the launcher
// applies it: clear, then pass, then set.
type Env struct {
	// Clear is set by "env clear": start from an empty environment.
	Clear bool
	// Pass are the names of "env pass" lines, in order, without duplicates.
	Pass []string
	// Set are the "env set" assignments in order; a later one for the same
	// name wins.
	Set []EnvVar
	// Given reports whether the policy has any env line.
	Given bool
}

// A Limit is one resource limit. A limit line without a hard value sets
// both values.
type Limit struct {
	Name       string // as in the policy: "nofile", "fsize", ...
	Resource   int    // Linux RLIMIT_* number
	Soft, Hard uint64 // Unlimited (math.MaxUint64) is RLIM_INFINITY
}

// A SyscallRule is one syscall line.
type SyscallRule struct {
	Action string   // "allow", "deny" or "default"
	Names  []string // the syscalls of allow and deny; nil for default
	Errno  int      // errno=E as a Linux number; 0 if not given
	Kill   bool     // "syscall default kill"
	Pos    Position // of the action word
}

// String returns the rule as a syscall line.
func (s SyscallRule) String() string {
	var b strings.Builder
	b.WriteString("syscall ")
	b.WriteString(s.Action)
	for _, n := range s.Names {
		b.WriteByte(' ')
		b.WriteString(n)
	}
	if s.Kill {
		b.WriteString(" kill")
	}
	if s.Errno != 0 {
		b.WriteString(" errno=")
		b.WriteString(ErrnoName(s.Errno))
	}
	return b.String()
}

// A Requirement is one feature of a require line.
type Requirement struct {
	Feature    string // a name from KnownFeatures
	MinVersion int    // for landlock: the minimum ABI version (1 for plain "landlock"); 0 otherwise
	Pos        Position
}

// A Diagnostic is a warning of [Policy.Lint]: a rule that is valid but
// probably not what its author meant.
type Diagnostic struct {
	Pos Position
	Msg string
}

// String returns "file:line:col: message".
func (d Diagnostic) String() string { return d.Pos.String() + ": " + d.Msg }

// defaultErrno is the errno of broker denials without default-errno.
const defaultErrno = 13 // EACCES

// A Policy is a parsed policy: rules, compiled into a [Matcher], and the
// settings for the sandbox. It is immutable and safe for concurrent use;
// accessors return copies.
type Policy struct {
	rules        []Rule
	matcher      *Matcher
	net          Net
	env          Env
	limits       []Limit
	namespaces   []string
	syscalls     []SyscallRule
	defaultErrno int
	errnoGiven   bool
	requires     []Requirement
	files        []string
	landlockOff  bool
	landlockPos  Position
}

// Rules returns a copy of the rules in policy order, includes flattened.
func (p *Policy) Rules() []Rule { return slices.Clone(p.rules) }

// Matcher returns the policy's compiled matcher. It is built once by the
// parser and is safe for concurrent use.
func (p *Policy) Matcher() *Matcher { return p.matcher }

// Net returns the network settings.
func (p *Policy) Net() Net {
	n := p.net
	n.TCPConnect = slices.Clone(n.TCPConnect)
	n.TCPBind = slices.Clone(n.TCPBind)
	return n
}

// Env returns the environment settings.
func (p *Policy) Env() Env {
	e := p.env
	e.Pass = slices.Clone(e.Pass)
	e.Set = slices.Clone(e.Set)
	return e
}

// Limits returns the resource limits in the order their names first
// appear; a later line for the same name replaces the values.
func (p *Policy) Limits() []Limit { return slices.Clone(p.limits) }

// Namespaces returns the namespaces of the last namespaces line as a
// sorted subset of "ipc", "net", "pid", "user", "uts"; empty without one or
// after "namespaces none".
func (p *Policy) Namespaces() []string { return slices.Clone(p.namespaces) }

// Syscalls returns the syscall lines in order.
func (p *Policy) Syscalls() []SyscallRule {
	s := slices.Clone(p.syscalls)
	for i := range s {
		s[i].Names = slices.Clone(s[i].Names)
	}
	return s
}

// DefaultErrno returns the Linux errno number the broker denies with: that
// of the last default-errno line, or 13 (EACCES).
func (p *Policy) DefaultErrno() int { return p.defaultErrno }

// Requires returns the features of require lines, in order.
func (p *Policy) Requires() []Requirement { return slices.Clone(p.requires) }

// Landlock reports whether the worker gets a Landlock ruleset of its own:
// on unless the last landlock line says off. With on (the default) the
// launcher enforces what the kernel offers and reports what it could not,
// and require landlock makes it mandatory; off is only valid without such
// a requirement. pos is the position of the last landlock line (zero
// without one), which the launcher's report names.
//
// off concerns the worker's ruleset only. A host that confines itself
// (sandbox-exec always does) still does so by the policy's rules, and its
// workers, which start inside its Landlock domain, stay in it: file rights
// within the union of what the host's policies grant, no network rules, no
// scopes.
func (p *Policy) Landlock() (on bool, pos Position) { return !p.landlockOff, p.landlockPos }

// Files returns the name of the policy and of every file it includes, in
// the order they were first read.
func (p *Policy) Files() []string { return slices.Clone(p.files) }

// String returns the policy in a normalised form that [Parse] reads back
// into the same rules and settings: variables expanded, includes
// flattened, one rule per line, comments dropped, settings after the rules.
// A literal $ is written $$.
func (p *Policy) String() string {
	var b strings.Builder
	b.WriteString("version 1\n")
	for _, r := range p.rules {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	b.WriteString("net " + p.net.Mode.String() + "\n")
	writePorts(&b, "tcp-connect", p.net.TCPConnect)
	writePorts(&b, "tcp-bind", p.net.TCPBind)
	if p.env.Clear {
		b.WriteString("env clear\n")
	}
	if len(p.env.Pass) > 0 {
		b.WriteString("env pass " + strings.Join(p.env.Pass, " ") + "\n")
	}
	for _, v := range p.env.Set {
		b.WriteString("env set " + quote(escapeDollar(v.Name+"="+v.Value)) + "\n")
	}
	for _, l := range p.limits {
		kind := limitTable[l.Name].kind
		b.WriteString("limit " + l.Name + " " + formatLimitValue(kind, l.Soft))
		if l.Hard != l.Soft {
			b.WriteString(" " + formatLimitValue(kind, l.Hard))
		}
		b.WriteByte('\n')
	}
	if len(p.namespaces) > 0 {
		b.WriteString("namespaces " + strings.Join(p.namespaces, " ") + "\n")
	}
	for _, s := range p.syscalls {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	if p.landlockOff {
		b.WriteString("landlock off\n")
	}
	if p.errnoGiven {
		b.WriteString("default-errno " + ErrnoName(p.defaultErrno) + "\n")
	}
	if len(p.requires) > 0 {
		b.WriteString("require")
		for _, r := range p.requires {
			b.WriteString(" " + r.String())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func writePorts(b *strings.Builder, what string, ports []uint16) {
	if len(ports) == 0 {
		return
	}
	b.WriteString("net " + what)
	for _, p := range ports {
		b.WriteString(" " + strconv.Itoa(int(p)))
	}
	b.WriteByte('\n')
}

func escapeDollar(s string) string { return strings.ReplaceAll(s, "$", "$$") }
