//go:build linux

package broker

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// target describes a path argument and how the call uses it.
type target struct {
	dirfd    int32   // the worker's dirfd, truncated to 32 bits (R12)
	path     string  // as the worker sent it
	nofollow bool    // do not follow a final symlink
	emptyOK  bool    // AT_EMPTY_PATH: "" names dirfd itself
	dir      bool    // O_DIRECTORY, IN_ONLYDIR: must be a directory
	resolve  uint64  // the worker's openat2 resolve flags, added to ours (R40)
	child    string  // parent mode: path is the parent directory of child
	anchor   *anchor // resolve from here instead of dirfd
	// openFlags, with direct set, are the flags of an open (not a create)
	// that the fast path may open at once (fastopen.go).
	openFlags uint32
	direct    bool
}

// need is what a call needs on its object.
type need struct {
	right    policy.Right
	dirRight policy.Right // instead of right on a directory (access X_OK)
	statFree bool         // stat of an fd the worker holds needs no rule (R17)
}

func (n need) forType(mode uint32) policy.Right {
	if n.dirRight != 0 && mode&unix.S_IFMT == unix.S_IFDIR {
		return n.dirRight
	}
	return n.right
}

// anchor is the directory a relative path starts from: an fd and where it
// is now.
type anchor struct {
	fd    int
	canon string // canonical absolute path
}

type objKind uint8

const (
	objPath objKind = iota // an object with a name
	objPipe                // a worker's pipe (pipe:[...])
	objAnon                // a worker's socket, anonymous inode or unlinked file
)

// object is a resolved and allowed object: an O_PATH fd owned by the
// request (or a shared anchor fd), and what the decision was taken on.
type object struct {
	fd         int
	path       string // matcher form of the object's path; "" for anonymous objects
	kind       objKind
	worker     bool // taken from a worker fd
	withinMode bool // allowed as a reopen within the worker fd's access mode
	st         unix.Stat_t
	haveSt     bool
	verdict    policy.Verdict
	opened     bool // fd is the open the worker asked for (openDirect)
}

func (r *req) fstat(o *object) int {
	if o.haveSt {
		return codeOK
	}
	if err := unix.Fstat(o.fd, &o.st); err != nil {
		return errCode(err)
	}
	o.haveSt = true
	return codeOK
}

func (o *object) typ() uint32 { return o.st.Mode & unix.S_IFMT }

// self reports whether the object is in the calling worker's own /proc.
func (o *object) self() bool {
	_, ok1 := cutComponent(o.path, "/proc/self")
	_, ok2 := cutComponent(o.path, "/proc/thread-self")
	return ok1 || ok2
}

// canonical returns where fd is now: the readlink of /proc/self/fd/N. It
// is "pipe:[...]", "socket:[...]" and the like for objects without a name
// and ends in " (deleted)" for unlinked ones.
func (r *req) canonical(fd int) (string, int) {
	n, err := unix.Readlink(procFdPath(fd), r.buf)
	if err != nil {
		return "", errCode(err)
	}
	if n >= len(r.buf) {
		return "", int(unix.ENAMETOOLONG)
	}
	return string(r.buf[:n]), codeOK
}

// isName reports whether a canonical path names a live object.
func isName(canon string) bool {
	return canon != "" && canon[0] == '/' && !strings.HasSuffix(canon, " (deleted)")
}

// judge asks the matcher about the clean absolute path p, after rewriting
// the worker's own /proc/<tgid> to /proc/self; the broker's own /proc
// entries are denied without asking (P-18).
func (r *req) judge(p string, right policy.Right) bool {
	r.judged, r.right = true, right
	mp, c := r.matcherPath(p)
	if c != codeOK {
		r.resolved, r.verdict = p, policy.Verdict{Rule: -1}
		return false
	}
	t0 := time.Now()
	v := r.b.m.Decide(mp, right)
	r.b.metrics.matcherNs.Add(int64(time.Since(t0)))
	r.b.metrics.matcherRuns.Add(1)
	r.resolved, r.verdict = mp, v
	return v.Allowed
}

// matcherPath returns the form of p the matcher sees: the calling worker's
// /proc/<tgid>/ becomes /proc/self/ and /proc/<tgid>/task/<tid>/ becomes
// /proc/thread-self/ (CONTRACT.md); the broker's own /proc/<pid>/ and those
// of its threads are codeDeny.
func (r *req) matcherPath(p string) (string, int) {
	n, rest, ok := procPid(p)
	if !ok {
		return p, codeOK
	}
	if n == r.b.pid {
		return "", codeDeny
	}
	if c := r.status(); c != codeOK {
		return "", c
	}
	if n == r.tgid {
		if s, ok := strings.CutPrefix(rest, "/task/"); ok {
			if m, rest2, ok := leadingNumber(s); ok && m == r.tid {
				return "/proc/thread-self" + rest2, codeOK
			}
		}
		return "/proc/self" + rest, codeOK
	}
	var st unix.Stat_t
	if unix.Fstatat(r.s.task, strconv.Itoa(n), &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return "", codeDeny // a thread of the broker
	}
	return p, codeOK
}

// lookup resolves t as the kernel would for the worker and decides nd on
// the object. It returns the object, or a reply code: codeDeny, codeDrop
// or the kernel's errno for an allowed path.
func (r *req) lookup(t target, nd need) (*object, int) {
	if t.path == "" {
		if !t.emptyOK {
			return nil, int(unix.ENOENT)
		}
		return r.emptyPath(t.dirfd, nd)
	}
	a, c := r.anchorOf(t)
	if c != codeOK {
		return nil, c
	}
	if hasDotDot(t.path) {
		return r.slow(a, t, nd)
	}
	return r.fast(a, t, nd)
}

// lookupParent resolves the parent directory of t.path for a call that
// creates or removes its last component, and decides nd on
// parent/name. name is "", "." or ".." (and the object nil) when the path
// has no normal last component; the caller answers as the kernel does.
func (r *req) lookupParent(t target, nd need) (o *object, name string, trailing bool, code int) {
	if t.path == "" {
		return nil, "", false, int(unix.ENOENT)
	}
	dir, name, trailing := splitLast(t.path)
	if name == "" || name == "." || name == ".." {
		return nil, name, trailing, codeOK
	}
	pt := t
	pt.path, pt.child, pt.nofollow, pt.dir, pt.emptyOK = dir, name, false, true, false
	if dir == "" {
		pt.path = "."
	}
	o, code = r.lookup(pt, nd)
	return o, name, trailing, code
}

// anchorOf returns where t.path starts (R29).
func (r *req) anchorOf(t target) (anchor, int) {
	if t.anchor != nil {
		return *t.anchor, codeOK
	}
	if t.path[0] == '/' && t.resolve&unix.RESOLVE_IN_ROOT == 0 {
		return anchor{fd: r.s.root, canon: "/"}, codeOK
	}
	if t.dirfd == unix.AT_FDCWD {
		return r.cwd()
	}
	if t.dirfd < 0 {
		return anchor{}, int(unix.EBADF)
	}
	return r.workerAnchor(r.tid, int(t.dirfd), unix.EBADF)
}

// cwd opens the calling thread's working directory (TID, not TGID: threads
// may have their own) and judges it (R29, R30).
func (r *req) cwd() (anchor, int) {
	fd, err := r.procOpen(itoa(r.tid)+"/cwd", unix.O_PATH|unix.O_CLOEXEC)
	if c := r.validate(); c != codeOK {
		return anchor{}, c
	}
	if err != nil {
		return anchor{}, errCode(err)
	}
	return r.judgeAnchor(fd, false)
}

// workerAnchor opens the worker's fd n as a directory to resolve from.
// missing is the errno for an fd that is not open (EBADF for a dirfd,
// ENOENT for /proc/self/fd/N).
func (r *req) workerAnchor(pid, n int, missing unix.Errno) (anchor, int) {
	fd, err := r.procOpen(itoa(pid)+"/fd/"+itoa(n), unix.O_PATH|unix.O_CLOEXEC)
	if c := r.validate(); c != codeOK {
		return anchor{}, c
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return anchor{}, int(missing)
		}
		return anchor{}, errCode(err)
	}
	return r.judgeAnchor(fd, true)
}

// judgeAnchor checks that an anchor is a directory with a name the worker
// may stat (R30: judged by where it is now).
func (r *req) judgeAnchor(fd int, checkDir bool) (anchor, int) {
	if checkDir {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return anchor{}, errCode(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return anchor{}, int(unix.ENOTDIR)
		}
	}
	canon, c := r.canonical(fd)
	if c != codeOK {
		return anchor{}, c
	}
	if !isName(canon) || !r.judge(canon, policy.Stat) {
		return anchor{}, codeDeny
	}
	return anchor{fd: fd, canon: canon}, codeOK
}

// emptyPath handles AT_EMPTY_PATH with an empty path: the object is dirfd
// itself (R17) or, for AT_FDCWD, the working directory (P-28).
func (r *req) emptyPath(dirfd int32, nd need) (*object, int) {
	if dirfd == unix.AT_FDCWD {
		a, c := r.cwd()
		if c != codeOK {
			return nil, c
		}
		o := &object{fd: a.fd, verdict: r.verdict}
		o.path, _ = r.matcherPath(a.canon)
		if nd.right != policy.Stat {
			if !r.judge(a.canon, nd.forType(unix.S_IFDIR)) {
				return nil, codeDeny
			}
			o.verdict = r.verdict
		}
		return o, codeOK
	}
	if dirfd < 0 {
		return nil, int(unix.EBADF)
	}
	return r.workerObject(r.tid, int(dirfd), unix.EBADF, nd)
}

// workerObject takes the worker's fd n (in the fd table of pid) and judges
// the object behind it for nd (R31): by its canonical path if it has one;
// pipes and devices also as a reopen within the fd's access mode; sockets
// and anonymous objects never, except for a stat (R17).
func (r *req) workerObject(pid, n int, missing unix.Errno, nd need) (*object, int) {
	fd, err := r.procOpen(itoa(pid)+"/fd/"+itoa(n), unix.O_PATH|unix.O_CLOEXEC)
	if c := r.validate(); c != codeOK {
		return nil, c
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, int(missing)
		}
		return nil, errCode(err)
	}
	o := &object{fd: fd, worker: true, kind: objAnon}
	if nd.statFree && nd.right == policy.Stat {
		return o, codeOK // fstat of an fd the worker holds anyway
	}
	if c := r.fstat(o); c != codeOK {
		return nil, c
	}
	canon, c := r.canonical(fd)
	if c != codeOK {
		return nil, c
	}
	switch {
	case isName(canon) && o.st.Nlink > 0:
		o.kind = objPath
	case strings.HasPrefix(canon, "pipe:["):
		o.kind = objPipe
	case strings.HasPrefix(canon, "/memfd:") && o.typ() == unix.S_IFREG && o.st.Nlink == 0:
		// A memfd has no name anywhere: like a pipe, it may be reopened
		// within the access mode the worker already holds (Python's and
		// Chromium's shared memory reopen /proc/self/fd/N).
		o.kind = objPipe
	}
	if o.kind == objPath {
		if r.judge(canon, nd.forType(o.st.Mode)) {
			o.path, _ = r.matcherPath(canon)
			o.verdict = r.verdict
			return o, codeOK
		}
	}
	if typ := o.typ(); o.kind == objPipe || (o.kind == objPath && (typ == unix.S_IFCHR || typ == unix.S_IFBLK)) {
		acc, c := r.fdAccMode(pid, n)
		if c != codeOK {
			return nil, c
		}
		if withinMode(nd.right, acc) {
			// Allowed without a rule: no more than the fd already grants.
			o.withinMode = true
			r.judged, r.right, r.resolved = true, nd.right, canon
			r.verdict = policy.Verdict{Allowed: true, Rule: -1}
			return o, codeOK
		}
	}
	return nil, codeDeny
}

// fdAccMode reads the access mode of the worker's fd n from fdinfo.
func (r *req) fdAccMode(pid, n int) (uint32, int) {
	fd, err := r.procOpen(itoa(pid)+"/fdinfo/"+itoa(n), unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		if c := r.validate(); c != codeOK {
			return 0, c
		}
		return 0, codeDeny
	}
	k, err := unix.Pread(fd, r.buf[:256], 0)
	r.closeFd(fd)
	if c := r.validate(); c != codeOK {
		return 0, c
	}
	if err != nil {
		return 0, codeDeny
	}
	for line := range strings.Lines(string(r.buf[:k])) {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			f, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return 0, codeDeny
			}
			return uint32(f) & unix.O_ACCMODE, codeOK
		}
	}
	return 0, codeDeny
}

// withinMode reports whether right asks nothing beyond the access mode acc
// of an open file.
func withinMode(right policy.Right, acc uint32) bool {
	var have policy.Right = policy.Stat
	switch acc {
	case unix.O_RDONLY:
		have |= policy.Read
	case unix.O_WRONLY:
		have |= policy.Write
	case unix.O_RDWR:
		have |= policy.Read | policy.Write
	}
	return right&^have == 0
}

// fast is the path for names without "..": decide on the lexically clean
// path before any file system call, then open exactly that path with
// RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS. A symlink on the way sends
// the request to the slow path.
func (r *req) fast(a anchor, t target, nd need) (*object, int) {
	p := t.path
	fromRoot := p[0] == '/' && a.fd == r.s.root
	trailing := mustBeDir(p)
	follow := !t.nofollow || trailing || t.child != ""
	full := cleanJoin(a.canon, p)

	if o, c, ok := r.fdName(full, follow, t, nd); ok {
		return o, c
	}

	openDir, openPath := a.fd, cleanRel(p)
	if fromRoot {
		openPath = full
	}
	mp, rest, kind := selfForm(full, follow)
	if kind != 0 {
		if c := r.status(); c != codeOK {
			return nil, c
		}
		openDir, openPath = r.s.root, "/proc/"+itoa(r.tgid)+rest
		if kind == 2 {
			openPath = "/proc/" + itoa(r.tgid) + "/task/" + itoa(r.tid) + rest
		}
	}
	decide := mp
	if t.child != "" {
		decide = joinPath(mp, t.child)
	}
	if !r.judge(decide, nd.right) && (nd.dirRight == 0 || !r.judge(decide, nd.dirRight)) {
		// A denial of the name as written is final only when the name
		// holds no symlink: the decision belongs to the object it leads to
		// (R33, R34), and with /lib -> usr/lib "/lib/x" is "/usr/lib/x".
		if t.resolve&unix.RESOLVE_NO_SYMLINKS == 0 && r.viaSymlink(openDir, openPath, follow) {
			o, c := r.slow(a, t, nd)
			if c == int(unix.ELOOP) {
				// A magic link (/proc/self/exe) or a loop under a denied
				// name: the name's denial stands.
				return nil, codeDeny
			}
			return o, c
		}
		return nil, codeDeny
	}
	verdict := r.verdict

	resolve := unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | t.resolve
	if t.direct && kind == 0 && t.child == "" && nd.dirRight == 0 && directOK(full) {
		if o, c, ok := r.openDirect(openDir, openPath, t, follow, uint64(resolve)); ok {
			if c == int(unix.ELOOP) && t.resolve&unix.RESOLVE_NO_SYMLINKS == 0 {
				return r.slow(a, t, nd)
			}
			if c != codeOK {
				return nil, c // the path is allowed: the kernel's answer
			}
			o.verdict, o.path = verdict, mp
			return o, codeOK
		}
	}

	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	if t.dir || trailing || t.child != "" {
		flags |= unix.O_DIRECTORY
	}
	fd, err := r.openat2(openDir, openPath, flags, uint64(resolve))
	if err != nil {
		if errors.Is(err, unix.ELOOP) && t.resolve&unix.RESOLVE_NO_SYMLINKS == 0 {
			return r.slow(a, t, nd)
		}
		return nil, errCode(err) // the path is allowed: the kernel's answer
	}
	o := &object{fd: fd, verdict: verdict}
	o.path, _ = r.matcherPath(mp)
	if nd.dirRight != 0 {
		if c := r.fstat(o); c != codeOK {
			return nil, c
		}
		if !r.judge(decide, nd.forType(o.st.Mode)) {
			return nil, codeDeny
		}
		o.verdict = r.verdict
	}
	return o, codeOK
}

// fdName recognises the clean names of worker fds (/dev/fd/N, /dev/std*,
// /proc/self/fd/N, the worker's own /proc/<tgid>/fd/N ...) and serves them
// from the worker's fd (R31). ok is false for other names.
func (r *req) fdName(full string, follow bool, t target, nd need) (o *object, code int, ok bool) {
	n, rest, table, ok := fdForm(full)
	if !ok {
		pid, prest, isProc := procPid(full)
		if !isProc || !(strings.HasPrefix(prest, "/fd/") || strings.HasPrefix(prest, "/task/")) {
			return nil, 0, false
		}
		if c := r.status(); c != codeOK {
			return nil, c, true
		}
		if pid != r.tgid {
			return nil, 0, false
		}
		if s, found := strings.CutPrefix(prest, "/fd/"); found {
			n, rest, ok = leadingNumber(s)
			table = tableProcess
		} else if s, found := strings.CutPrefix(prest, "/task/"); found {
			if m, s2, isNum := leadingNumber(s); isNum && m == r.tid {
				if s3, found := strings.CutPrefix(s2, "/fd/"); found {
					n, rest, ok = leadingNumber(s3)
					table = tableThread
				}
			}
		}
		if !ok {
			return nil, 0, false
		}
	}
	if rest == "" && !follow {
		return nil, 0, false // the magic link itself (lstat, readlink, O_NOFOLLOW)
	}
	pid := r.tid
	if table == tableProcess {
		if c := r.status(); c != codeOK {
			return nil, c, true
		}
		pid = r.tgid
	}
	if rest == "" && t.child == "" && !mustBeDir(t.path) {
		o, code = r.workerObject(pid, n, unix.ENOENT, nd)
		return o, code, true
	}
	// More components (or a trailing slash): the fd is a directory to
	// resolve from, judged like any anchor.
	a, c := r.workerAnchor(pid, n, unix.ENOENT)
	if c != codeOK {
		return nil, c, true
	}
	sub := t
	sub.anchor, sub.path = &a, "."
	if rest != "" {
		sub.path = rest[1:]
		if mustBeDir(t.path) {
			sub.path += "/"
		}
	}
	o, code = r.lookup(sub, nd)
	return o, code, true
}

// slow lets the kernel resolve symlinks and ".." (RESOLVE_NO_MAGICLINKS
// plus the worker's flags) and decides on the canonical path of the result
// (R33, R34). If the kernel fails, the walker finds where, and the kernel's
// error is returned only if the worker may know about that place.
func (r *req) slow(a anchor, t target, nd need) (*object, int) {
	p := t.path
	follow := !t.nofollow || mustBeDir(p) || t.child != ""
	openDir, openPath := a.fd, p
	if p[0] == '/' && a.fd == r.s.root {
		// A leading /proc/self names the worker, not the broker.
		if _, rest, kind := selfForm(p, follow); kind != 0 {
			if c := r.status(); c != codeOK {
				return nil, c
			}
			openPath = "/proc/" + itoa(r.tgid) + rest
			if kind == 2 {
				openPath = "/proc/" + itoa(r.tgid) + "/task/" + itoa(r.tid) + rest
			}
		}
	}
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	if t.dir || t.child != "" {
		flags |= unix.O_DIRECTORY
	}
	fd, err := r.openat2(openDir, openPath, flags, unix.RESOLVE_NO_MAGICLINKS|t.resolve)
	if err == nil {
		return r.judgeResolved(fd, t, nd)
	}
	if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
		return nil, errCode(err)
	}
	if t.resolve != 0 {
		// The walker does not reproduce the worker's resolve flags.
		if errors.Is(err, unix.EAGAIN) && t.resolve&resolveCached != 0 {
			return nil, int(unix.EAGAIN)
		}
		return nil, codeDeny
	}
	wfd, fp, c := r.walk(anchor{fd: openDir, canon: a.canon}, openPath, follow)
	if c != codeOK {
		return nil, c
	}
	if wfd >= 0 {
		// The walker got there (it does not check that the object is a
		// directory, and a race may have created it): decide on it.
		if t.dir || t.child != "" || mustBeDir(p) {
			var st unix.Stat_t
			if unix.Fstat(wfd, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return nil, r.reveal(failPoint{at: "", err: int(unix.ENOTDIR)}, wfd, t, nd)
			}
		}
		return r.judgeResolved(wfd, t, nd)
	}
	return nil, r.reveal(fp, -1, t, nd)
}

// reveal returns the kernel's error at fp if the policy lets the worker
// know about that place (stat on it, or nd on the path it was heading for
// when that path has no ".."), and codeDeny otherwise: missing and
// existing names under no rule look the same (R22).
func (r *req) reveal(fp failPoint, fd int, t target, nd need) int {
	if fd >= 0 {
		canon, c := r.canonical(fd)
		if c != codeOK || !isName(canon) {
			return codeDeny
		}
		fp.at = canon
	}
	rest := fp.rest
	if t.child != "" {
		if rest == "" {
			rest = t.child
		} else {
			rest += "/" + t.child
		}
	}
	if r.judge(fp.at, policy.Stat) {
		return fp.err
	}
	if rest != "" && !hasDotDot(rest) && r.judge(cleanJoin(fp.at, rest), nd.right) {
		return fp.err
	}
	return codeDeny
}

// judgeResolved decides on an object the kernel resolved: its canonical
// path (unlinked: ENOENT; no name: deny) and type.
func (r *req) judgeResolved(fd int, t target, nd need) (*object, int) {
	o := &object{fd: fd}
	if c := r.fstat(o); c != codeOK {
		return nil, c
	}
	canon, c := r.canonical(fd)
	if c != codeOK {
		return nil, c
	}
	if o.st.Nlink == 0 || strings.HasSuffix(canon, " (deleted)") {
		return nil, int(unix.ENOENT)
	}
	if !isName(canon) {
		return nil, codeDeny
	}
	decide := canon
	if t.child != "" {
		decide = joinPath(canon, t.child)
	}
	if !r.judge(decide, nd.forType(o.st.Mode)) {
		return nil, codeDeny
	}
	o.verdict = r.verdict
	o.path, _ = r.matcherPath(canon)
	return o, codeOK
}

// raced reports the errors that only the walker's own resolution gives
// (a rename or mount racing with it: EAGAIN from a scoped lookup, EXDEV
// from a ".." that left where it started, P-45). The worker's call never
// returns them, and a racing tree proves nothing about where the path
// leads: deny (R32) rather than hand the worker a kernel-unlike errno.
func raced(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EXDEV)
}

// failPoint is where the walker stopped.
type failPoint struct {
	at   string // clean absolute path of the component that failed
	rest string // what was left to resolve after it (may hold "..")
	err  int    // the kernel's errno there
}

const maxSymlinks = 40 // the kernel's MAXSYMLINKS

// walk resolves p from a one component at a time, as the kernel does:
// openat2(O_PATH|O_NOFOLLOW, RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS) from
// the current directory, symlinks read with readlinkat and followed by the
// walker itself (absolute ones from "/"), ".." through the real parent, at
// most 40 links. A magic link is never followed: codeDeny. It returns the
// object's fd if the walk succeeds (the caller then decides on it), or the
// point where it failed.
func (r *req) walk(a anchor, p string, follow bool) (int, failPoint, int) {
	cur, canon := a.fd, a.canon
	if p[0] == '/' {
		cur, canon = r.s.root, "/"
	}
	owned := -1 // the walker's own fd for cur, closed when it moves on
	move := func(fd int, to string) {
		if owned >= 0 {
			r.closeFd(owned)
		}
		cur, owned, canon = fd, fd, to
	}
	comps := components(p)
	trailing := mustBeDir(p)
	links := 0
	for i := 0; i < len(comps); i++ {
		c, last := comps[i], i == len(comps)-1
		rest := strings.Join(comps[i+1:], "/")
		if c == ".." {
			fd, err := r.openat2(cur, "..", unix.O_PATH|unix.O_CLOEXEC, unix.RESOLVE_NO_MAGICLINKS)
			if err != nil {
				if raced(err) {
					return -1, failPoint{}, codeDeny
				}
				return -1, failPoint{at: canon, rest: rest, err: errCode(err)}, codeOK
			}
			move(fd, parentPath(canon))
			continue
		}
		at := joinPath(canon, c)
		flags := uint64(unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC)
		if !last {
			// Most components are directories: O_DIRECTORY spares an fstat.
			fd, err := r.openat2(cur, c, flags|unix.O_DIRECTORY, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_MAGICLINKS)
			if err == nil {
				move(fd, at)
				continue
			}
			if raced(err) {
				return -1, failPoint{}, codeDeny
			}
			if !errors.Is(err, unix.ENOTDIR) {
				return -1, failPoint{at: at, rest: rest, err: errCode(err)}, codeOK
			}
		}
		fd, err := r.openat2(cur, c, flags, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_MAGICLINKS)
		if err != nil {
			if raced(err) {
				return -1, failPoint{}, codeDeny
			}
			return -1, failPoint{at: at, rest: rest, err: errCode(err)}, codeOK
		}
		if last && !follow && !trailing {
			move(fd, at)
			break
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			r.closeFd(fd)
			return -1, failPoint{at: at, rest: rest, err: errCode(err)}, codeOK
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			move(fd, at)
			if !last {
				// A file in the middle: the kernel's ENOTDIR.
				return -1, failPoint{at: at, rest: rest, err: int(unix.ENOTDIR)}, codeOK
			}
			continue
		}
		links++
		if links > maxSymlinks {
			r.closeFd(fd)
			return -1, failPoint{at: at, rest: rest, err: int(unix.ELOOP)}, codeOK
		}
		n, err := unix.Readlinkat(fd, "", r.buf)
		if err != nil || n >= len(r.buf) {
			r.closeFd(fd)
			return -1, failPoint{at: at, rest: rest, err: int(unix.ELOOP)}, codeOK
		}
		link := string(r.buf[:n])
		magic := isMagicLink(fd, link)
		r.closeFd(fd)
		if magic {
			return -1, failPoint{}, codeDeny // never followed (R31)
		}
		if link == "" {
			return -1, failPoint{at: at, rest: rest, err: int(unix.ENOENT)}, codeOK
		}
		if last && mustBeDir(link) {
			trailing = true
		}
		comps = append(components(link), comps[i+1:]...)
		i = -1
		if link[0] == '/' {
			if owned >= 0 {
				r.closeFd(owned)
			}
			cur, owned, canon = r.s.root, -1, "/"
		}
	}
	return cur, failPoint{}, codeOK
}

// isMagicLink reports whether the symlink fd with target link is a procfs
// magic link (/proc/<pid>/fd/N, cwd, root, exe, ns/...). procfs's ordinary
// symlinks (self, thread-self, mounts, net) have relative targets; magic
// ones read as absolute paths or "type:[inode]".
func isMagicLink(fd int, link string) bool {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return true
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC {
		return false
	}
	return link == "" || link[0] == '/' || strings.Contains(link, ":[")
}

// viaSymlink reports whether resolving path from dir meets a symlink that
// resolution would follow (every one before the last component, and the
// last one when follow is set).
func (r *req) viaSymlink(dir int, path string, follow bool) bool {
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	_, err := r.openat2(dir, path, flags, unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	return errors.Is(err, unix.ELOOP) // the request owns and closes the fd
}
