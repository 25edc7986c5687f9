//go:build linux

package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// entryKind is what a [FixtureEntry] makes; the zero value is a regular
// file.
type entryKind int

const (
	entryFile entryKind = iota
	entryDir
	entrySymlink
	entryFIFO
)

// FixtureEntry is one name of a fixture tree, relative to its root. A
// literal with Path, Mode and Content is a regular file, written with
// exactly Mode (chmod'ed after the write, whatever the umask); [FixtureDir],
// [FixtureSymlink] and [FixtureFIFO] make the other kinds. Missing parents
// are made 0755 (less the umask).
type FixtureEntry struct {
	Path    string
	Mode    os.FileMode
	Content string
	target  string
	kind    entryKind
}

// FixtureDir is a directory made with os.MkdirAll(path, mode): the umask
// applies, so chmod it afterwards for an exact mode.
func FixtureDir(path string, mode os.FileMode) FixtureEntry {
	return FixtureEntry{Path: path, Mode: mode, kind: entryDir}
}

// FixtureSymlink is a symbolic link at path to target: verbatim, except
// that a target starting with "$T/" is made absolute under the fixture's
// root, as security.md writes it ("$T/rw/abs -> $T/ro/f").
func FixtureSymlink(path, target string) FixtureEntry {
	return FixtureEntry{Path: path, target: target, kind: entrySymlink}
}

// FixtureFIFO is a named pipe made with mkfifo(path, mode).
func FixtureFIFO(path string, mode os.FileMode) FixtureEntry {
	return FixtureEntry{Path: path, Mode: mode, kind: entryFIFO}
}

// FixtureOptions says what [NewFixture] adds to the base tree.
type FixtureOptions struct {
	// Entries are made after the base tree, in order.
	Entries []FixtureEntry
	// Traversable makes the temporary directory and its parents up to
	// os.TempDir() mode 0755 before anything is made: t.TempDir's parents
	// are 0700 on some systems, and workers that drop privileges need to
	// traverse them.
	Traversable bool
	// Owner, when not nil, is made the owner of every name in the tree
	// (lchown, after the entries), and the tree is made reachable for it
	// with [MakeAccessible].
	Owner *syscall.Credential
}

// fixtureBase is the part of the tree $T of security.md section 2 that
// every package's fixture shares: ro/f = "RO", an empty rw/ and
// out/secret = "SECRET-OUT", which policy P0 names in no rule.
var fixtureBase = []FixtureEntry{
	{Path: "ro/f", Mode: 0o644, Content: "RO"},
	FixtureDir("rw", 0o777),
	{Path: "out/secret", Mode: 0o644, Content: "SECRET-OUT"},
}

// NewFixture makes the escape fixture tree $T of security.md section 2 in
// a new tb.TempDir() and returns its path: the base tree (ro/f = "RO", an
// empty rw/, out/secret = "SECRET-OUT"), then opts.Entries. An error fails
// tb. Each end-to-end package adds its own entries (ro/bin/ok, symlinks
// for the path cases, the conformance subtrees) and writes its policy
// around [PolicyP0].
func NewFixture(tb testing.TB, opts FixtureOptions) string {
	tb.Helper()
	T := tb.TempDir()
	if opts.Traversable {
		for d := T; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
	}
	for _, e := range append(fixtureBase[:len(fixtureBase):len(fixtureBase)], opts.Entries...) {
		if err := e.make(T); err != nil {
			tb.Fatalf("fixture: %v", err)
		}
	}
	if opts.Owner != nil {
		uid, gid := int(opts.Owner.Uid), int(opts.Owner.Gid)
		filepath.WalkDir(T, func(p string, _ os.DirEntry, err error) error {
			if err == nil {
				os.Lchown(p, uid, gid)
			}
			return nil
		})
		MakeAccessible(tb, T, opts.Owner)
	}
	return T
}

func (e FixtureEntry) make(root string) error {
	full := filepath.Join(root, e.Path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	switch e.kind {
	case entryDir:
		return os.MkdirAll(full, e.Mode)
	case entrySymlink:
		target := e.target
		if rel, ok := strings.CutPrefix(target, "$T/"); ok {
			target = filepath.Join(root, rel)
		}
		return os.Symlink(target, full)
	case entryFIFO:
		if err := unix.Mkfifo(full, uint32(e.Mode.Perm())); err != nil {
			return &os.PathError{Op: "mkfifo", Path: full, Err: err}
		}
		return nil
	}
	if err := os.WriteFile(full, []byte(e.Content), e.Mode); err != nil {
		return err
	}
	return os.Chmod(full, e.Mode)
}

// PolicyP0 is the text of policy P0 of security.md section 2 for the
// fixture T, plus what a copy of the test binary at worker needs to run as
// the workload: read and exec on itself, and [EnvHelper] passed through.
// Callers append their own rules; the text ends with a newline.
func PolicyP0(T, worker string) string {
	return `version 1
allow read ` + T + `/ro/**
allow read,write,create ` + T + `/rw/**
allow read,write /dev/null
allow read /etc/ld.so.cache /lib/** /lib64/** /usr/lib/** /usr/lib64/**
allow exec ` + T + `/ro/bin/*
allow read,exec ` + worker + `
env pass ` + EnvHelper + `
`
}
