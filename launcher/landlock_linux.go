//go:build linux

package launcher

import (
	"bufio"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/policy"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
	"github.com/seed-025014a4/sandbox-exec/sandbox/seccomp"
)

// Landlock rights for each policy right. A policy right is wider in
// Landlock than in the broker in three ways, all documented in the
// README: rules are path-beneath rules on the glob-free prefix of the
// pattern; exec needs READ_FILE too (the kernel opens the program and its
// interpreter for reading); and read and write carry IOCTL_DEV, which
// Landlock checks on device fds by the rights of their opener (the broker,
// for brokered fds), so that isatty() on an allowed /dev/tty keeps working.
// stat has no Landlock right: stat, access and readlink are not Landlock
// operations.
const (
	llRead   = sandbox.AccessFSReadFile | sandbox.AccessFSReadDir | sandbox.AccessFSIoctlDev
	llWrite  = sandbox.AccessFSWriteFile | sandbox.AccessFSTruncate | sandbox.AccessFSIoctlDev
	llCreate = sandbox.AccessFSMakeReg | sandbox.AccessFSMakeDir | sandbox.AccessFSMakeSym | sandbox.AccessFSMakeSock |
		sandbox.AccessFSRemoveFile | sandbox.AccessFSRemoveDir | sandbox.AccessFSRefer
	llExec = sandbox.AccessFSExecute | sandbox.AccessFSReadFile

	// llHandledFS are the file system rights a worker's ruleset handles:
	// every right up to ABI 5. Whatever no rule grants is denied, device
	// and FIFO creation above all (the broker never creates them).
	llHandledFS = uint64(1<<16 - 1)
	// llResolveUnix (ABI 9) limits connect(2) to pathname UNIX sockets; it
	// is handled, and granted nowhere, under net inet (see planNet).
	llResolveUnix = uint64(sandbox.AccessFSResolveUnix)

	llNetTCP = sandbox.AccessNetBindTCP | sandbox.AccessNetConnectTCP
)

// landlockRights maps policy rights to Landlock file system rights.
func landlockRights(r policy.Right) uint64 {
	var a uint64
	if r&policy.Read != 0 {
		a |= llRead
	}
	if r&policy.Write != 0 {
		a |= llWrite
	}
	if r&policy.Create != 0 {
		a |= llCreate
	}
	if r&policy.Exec != 0 {
		a |= llExec
	}
	return a
}

// globFreePrefix returns the longest prefix of pattern without a glob
// component ("/usr/lib/*/x" → "/usr/lib", "/usr/**" → "/usr").
func globFreePrefix(pattern string) string {
	if pattern == "/" {
		return "/"
	}
	comps := strings.Split(pattern[1:], "/")
	n := 0
	for _, c := range comps {
		if strings.ContainsAny(c, "*?") {
			break
		}
		n++
	}
	return "/" + strings.Join(comps[:n], "/")
}

func isSelfProc(p string) bool {
	for _, s := range []string{"/proc/self", "/proc/thread-self"} {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

// llPath is a Landlock path rule with where it came from, for the report.
type llPath struct {
	sandbox.LandlockPath
	Source string
}

// landlockPaths maps the allow rules of p to path rules (merged per
// path), and returns the deny rules, which Landlock cannot express.
// target, if not empty, is the program the worker starts: its interpreter
// is added when the policy lets it be executed.
//
// A rule with the create right on a path that does not exist yet (a
// profile directory the worker makes on its first run) goes to the
// nearest existing ancestor instead, for the host and for the worker
// (see orAncestor): Landlock rules attach to existing objects only. The
// report lists each such rule as widened.
func landlockPaths(p *policy.Policy, target string, host bool) (paths []llPath, denies []string) {
	index := map[string]int{}
	add := func(path string, access uint64, source string, orAncestor bool) {
		lp := sandbox.LandlockPath{Path: path, Access: access, OrAncestor: orAncestor}
		if orAncestor && !host {
			lp.ExactAccess = workerExactAccess
		}
		if i, ok := index[path]; ok {
			paths[i].Access |= lp.Access
			paths[i].OrAncestor = paths[i].OrAncestor || lp.OrAncestor
			paths[i].ExactAccess |= lp.ExactAccess
			return
		}
		index[path] = len(paths)
		paths = append(paths, llPath{lp, source})
	}
	var execs []string
	for _, r := range p.Rules() {
		where := r.Pos.File + ":" + itoa(r.Pos.Line)
		if !r.Allow {
			denies = append(denies, r.String()+" ("+where+")")
			continue
		}
		access := landlockRights(r.Rights)
		if access == 0 {
			continue // stat only
		}
		prefix := globFreePrefix(r.Pattern)
		if host && isSelfProc(prefix) {
			continue // the host has /proc; its /proc/self is not the worker's
		}
		add(prefix, access, where, orAncestor(prefix, r.Rights))
		if r.Rights&policy.Exec != 0 && prefix == r.Pattern {
			execs = append(execs, r.Pattern)
		}
	}
	if target != "" && p.Matcher().Decide(target, policy.Exec).Allowed {
		execs = append(execs, target)
	}
	for _, e := range execs {
		if interp := elfInterp(e); interp != "" {
			add(interp, llExec, "interpreter of "+e, false)
		}
	}
	return paths, denies
}

// orAncestor reports whether a rule with rights on the glob-free prefix
// falls back to the nearest existing ancestor when prefix is missing: when
// it may create. Without create nothing can appear at a missing path (the
// broker refuses to make it), so a read or write rule there is skipped and
// reported, never widened. A worker's own /proc/self entries are never
// created.
//
// The host must be able to create what a worker may. The worker needs the
// rule for what it does natively under the new directory, which the
// broker never sees: bind(2) of a pathname UNIX socket (make_sock), as
// Chromium's singleton socket in its profile directory. Each widened rule
// is wider in Landlock than in the policy (on the ancestor, a worker may
// bind sockets beside the missing directory, and a filter bug would reach
// the ancestor's files); the broker, which serves every open, mkdir and
// rename, stays exact.
func orAncestor(prefix string, r policy.Right) bool {
	return r&policy.Create != 0 && !isSelfProc(prefix)
}

// workerExactAccess are the rights a worker's widened rule leaves on the
// missing path (and so skips): execute. execve is not brokered, and
// Landlock is the only layer that limits what a worker may run; moved to
// the ancestor, execute would let it run every program there.
const workerExactAccess = sandbox.AccessFSExecute

// grantPaths maps per-worker grants (Cmd.Grants) like allow rules.
func grantPaths(grants []policy.Grant, host bool) []llPath {
	var paths []llPath
	for i, g := range grants {
		access := landlockRights(g.Rights)
		if access == 0 || g.Pattern == "" || g.Pattern[0] != '/' {
			continue
		}
		prefix := globFreePrefix(g.Pattern)
		if host && isSelfProc(prefix) {
			continue
		}
		source := policy.GrantFile + ":" + itoa(i+1)
		lp := sandbox.LandlockPath{Path: prefix, Access: access, OrAncestor: orAncestor(prefix, g.Rights)}
		if lp.OrAncestor && !host {
			lp.ExactAccess = workerExactAccess
		}
		paths = append(paths, llPath{lp, source})
		if g.Rights&policy.Exec != 0 && prefix == g.Pattern {
			if interp := elfInterp(g.Pattern); interp != "" {
				paths = append(paths, llPath{sandbox.LandlockPath{Path: interp, Access: llExec}, "interpreter of " + g.Pattern})
			}
		}
	}
	return paths
}

// workerLandlock is the Landlock ruleset of a worker under p and its
// grants.
func workerLandlock(p *policy.Policy, target string, grants []policy.Grant, net netPlan) (*sandbox.Landlock, []llPath, []string) {
	paths, denies := landlockPaths(p, target, false)
	paths = append(paths, grantPaths(grants, false)...)
	l := &sandbox.Landlock{
		BestEffort: true,
		HandledFS:  llHandledFS,
		HandledNet: net.handledNet,
		Scoped:     net.scoped,
		Ports:      net.ports,
	}
	if net.mode == seccomp.NetInet && !net.unixSockets {
		// AF_UNIX sockets exist under net inet, but the policy did not
		// ask for them (under net none the filter refuses them).
		l.HandledFS |= llResolveUnix
	}
	for _, r := range p.Requires() {
		if r.Feature == "landlock" {
			l.MinABI = max(l.MinABI, r.MinVersion)
		}
	}
	for _, pa := range paths {
		l.Paths = append(l.Paths, pa.LandlockPath)
	}
	return l, paths, denies
}

// hostLandlock is the ruleset a host confines itself to before serving
// workers of the policies ps (security.md R5): the union of what they
// grant, and what the host needs itself.
func hostLandlock(ps []*policy.Policy, targets []string, grants []policy.Grant, userns bool) (*sandbox.Landlock, []llPath) {
	var paths []llPath
	for i, p := range ps {
		t := ""
		if i < len(targets) {
			t = targets[i]
		}
		pp, _ := landlockPaths(p, t, true)
		paths = append(paths, pp...)
	}
	paths = append(paths, grantPaths(grants, true)...)
	// The broker reads /proc/<tid>/status of its workers and the launcher
	// their task lists, for pids that do not exist yet: all of /proc is
	// readable to the host (not to the worker: the broker's matcher
	// decides for it). A user namespace needs the uid and gid maps of
	// the new child written.
	proc := uint64(sandbox.AccessFSReadFile | sandbox.AccessFSReadDir)
	if userns {
		proc |= sandbox.AccessFSWriteFile
	}
	paths = append(paths, llPath{sandbox.LandlockPath{Path: "/proc", Access: proc}, "host: workers' /proc entries"})
	// os/exec opens /dev/null for a nil Stdin, Stdout or Stderr.
	paths = append(paths, llPath{sandbox.LandlockPath{Path: "/dev/null", Access: llRead | llWrite}, "host: /dev/null"})
	// Every worker starts as a re-exec of this binary: the binary, its
	// interpreter and every file it has mapped (its libraries), and the
	// loader's cache.
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		paths = append(paths, llPath{sandbox.LandlockPath{Path: exe, Access: llExec}, "host: own binary (re-exec)"})
		if interp := elfInterp(exe); interp != "" {
			paths = append(paths, llPath{sandbox.LandlockPath{Path: interp, Access: llExec}, "host: own interpreter"})
		}
	}
	for _, m := range mappedFiles() {
		paths = append(paths, llPath{sandbox.LandlockPath{Path: m, Access: sandbox.AccessFSReadFile}, "host: mapped library"})
	}
	paths = append(paths, llPath{sandbox.LandlockPath{Path: "/etc/ld.so.cache", Access: sandbox.AccessFSReadFile}, "host: loader cache"})

	l := &sandbox.Landlock{BestEffort: true, HandledFS: llHandledFS}
	for _, pa := range paths {
		l.Paths = append(l.Paths, pa.LandlockPath)
	}
	return l, paths
}

// mappedFiles lists the regular files mapped into this process
// (/proc/self/maps): the binary and its shared libraries.
func mappedFiles() []string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[5], "/") || len(fields) > 6 {
			continue // anonymous, [heap], or "(deleted)"
		}
		if !slices.Contains(out, fields[5]) {
			out = append(out, fields[5])
		}
	}
	return out
}

// interpCache remembers the PT_INTERP of files by identity, so that a host
// starting many workers reads each program header once.
var interpCache sync.Map // interpKey -> string

type interpKey struct {
	dev, ino    uint64
	mtime, size int64
}

// elfInterp returns the PT_INTERP of the ELF file at path, "" when it has
// none (a static binary, a script) or cannot be read.
func elfInterp(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return ""
	}
	key := interpKey{st.Dev, st.Ino, st.Mtim.Nano(), st.Size}
	if v, ok := interpCache.Load(key); ok {
		return v.(string)
	}
	interp := readInterp(path)
	interpCache.Store(key, interp)
	return interp
}

func readInterp(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP || p.Filesz == 0 || p.Filesz > 4096 {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil && !errors.Is(err, io.EOF) {
			return ""
		}
		s := strings.TrimRight(string(b), "\x00")
		if strings.HasPrefix(s, "/") {
			return s
		}
	}
	return ""
}
