// Package policy parses sandbox-exec policy files into an immutable [Policy]
// and compiles its rules into a [Matcher], which the broker asks, for every
// brokered system call, whether a worker may touch a path.
//
// The package is pure: it reads policy files and nothing else, imports only
// the standard library and github.com/google/shlex, and builds on every OS.
//
// # The language
//
// A policy is UTF-8 text, one directive per line. The parser splits lines
// itself, rejects NUL bytes and invalid UTF-8, and then splits each line
// into words with shell quoting rules (github.com/google/shlex): '...'
// quotes literally, "..." and \ escape, and # starts a comment where a word
// could start. A directive cannot continue on the next line.
//
//	version 1                             # optional; first in its file
//	include system-runtime.policy         # relative to this file
//	define PROFILE=${TMPDIR}/renderer     # a default; -D PROFILE=... wins
//	allow read /usr/share/fonts/** /etc/fonts/**
//	allow read,write,create ${PROFILE}/**
//	deny /etc/shadow /etc/ssh/**          # without rights: every right
//	net none                              # unix, inet, all; tcp-connect PORT...; tcp-bind PORT...
//	env clear                             # env pass NAME...; env set NAME=VALUE...
//	limit nofile 1024                     # limit NAME SOFT [HARD]; one value sets both
//	limit fsize 1GiB
//	namespaces user pid ipc uts net       # or none
//	syscall deny ptrace errno=EPERM       # syscall allow NAME...; syscall default errno=E|kill
//	syscall unsafe-allow io_uring_setup io_uring_enter  # dangerous: see below
//	default-errno EACCES                  # the errno of broker denials
//	require landlock>=3 user-notif addfd-send
//	landlock on                           # the default; off: no Landlock ruleset for the worker
//
// Includes are read relative to the including file; cycles, missing files
// and more than 32 nested levels are errors. A file is included as often
// as it is named.
//
// Variables are written ${NAME} and expand in patterns, include names,
// define values and env set values; $$ is a literal $, any other $ is an
// error. A value comes from the caller's [Defines] (the command's -D) first,
// then from define lines above its use, then from the built-ins HOME,
// TMPDIR (default /tmp), CWD and UID of the parsing process. An undefined
// variable is an error, never an empty string. Built-in values are literal
// paths: one holding * or ? is an error in a pattern rather than a glob.
//
// Limits take a number, unlimited, or for sizes (fsize, data, stack, core,
// rss, memlock, as, msgqueue) a number with one of the suffixes K, KiB, M,
// MiB, G, GiB, T, TiB, all powers of 1024; KB, MB and GB are rejected as
// ambiguous. Syscall names are checked against the amd64 and arm64 tables,
// errno names against Linux's, features against [KnownFeatures].
//
// Each layer of the sandbox is switched by its directive: landlock on|off
// for the worker's Landlock ruleset (see [Policy.Landlock]; landlock off
// together with require landlock, landlock-net or landlock-scope is an
// error), namespaces for namespaces, limit for resource limits, env for the
// environment, syscall for the filter's baseline, net for sockets.
//
// syscall allow widens the filter's baseline but never allows a syscall
// the filter denies as dangerous (security.md R47). Only syscall
// unsafe-allow does, and it takes nothing else (see [UnsafeSyscalls]):
// never a syscall that takes a path, which stays brokered or denied. Every
// use is a [Policy.Lint] warning saying what it exposes. io_uring bypasses
// the broker, so only the worker's Landlock ruleset limits the files it
// opens: unsafe-allow of io_uring together with landlock off is an error,
// and the launcher refuses to start such a worker on a kernel without
// Landlock.
//
// # Patterns
//
// A pattern is an absolute path. DIR/** is DIR and everything beneath it;
// ** is allowed only as the whole last component. * matches any run of
// characters within one component (including a leading dot) and ? exactly
// one character; there is no way to match a literal * or ?. Patterns are
// cleaned lexically ("//", "/./" and a trailing "/" go away); a ".."
// component, an empty pattern and a relative path are errors. ..name is a
// name like any other.
//
// /proc/self/... and /proc/thread-self/... are kept literally: the broker
// rewrites the calling worker's own /proc/<tgid>/ (and /proc/<tgid>/task/<tid>/)
// prefix to /proc/self/ (/proc/thread-self/) before it asks the Matcher.
//
// # Rights and decisions
//
// The rights are read, write, create (create or truncate; implies nothing
// else), exec and stat (metadata, access, readlink). In allow rules read and
// write imply stat. For each right the last rule that matches the path and
// carries the right decides; no such rule means deny. A deny without rights
// carries every right. An allow rule also grants stat on every directory on
// the way to its pattern (for DIR/**, DIR included; glob components match
// as globs), at its own place in the order, so a later deny still wins.
// [Matcher.Decide] grants a set of rights only if it grants each of them.
//
// [Matcher.Decide] does not allocate: rules are indexed in a trie by path
// component, with per-node last-rule indexes for each right.
// [Matcher.Explain] returns every matching rule and is what sandbox-exec
// explain prints.
//
// # Errors
//
// Every error reads FILE:LINE:COL: message, where COL is the 1-based byte
// column of the offending word in the raw line; an error in an included
// file is followed by one "included from FILE:LINE" line per include. The
// message says what would be valid. A parse reports all errors, up to
// [MaxErrors], as one *[ParseError].
//
// [Policy.Lint] reports rules that are valid but probably mistakes: rules a
// later rule overrides completely, denies that change nothing, allow write
// without read, write access to the whole file system, and every syscall
// unsafe-allow.
//
// # Normal form
//
// [Policy.String] prints a policy that [Parse] reads back into the same
// rules and settings: variables expanded, includes flattened, one rule per
// line, words quoted where needed.
package policy
