//go:build linux

package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// sysCall is a system call the broker serves.
type sysCall struct {
	name string
	h    func(*req) result
	idx  int // index in syscallList, for metrics
}

// syscallList holds every call the broker knows, for all architectures;
// syscallNumbers (per architecture) maps the numbers that exist.
var syscallList = [...]sysCall{
	{name: "open", h: hOpen},
	{name: "creat", h: hCreat},
	{name: "openat", h: hOpenat},
	{name: "openat2", h: hOpenat2},
	{name: "stat", h: hStat},
	{name: "lstat", h: hLstat},
	{name: "newfstatat", h: hNewfstatat},
	{name: "statx", h: hStatx},
	{name: "access", h: hAccess},
	{name: "faccessat", h: hFaccessat},
	{name: "faccessat2", h: hFaccessat2},
	{name: "readlink", h: hReadlink},
	{name: "readlinkat", h: hReadlinkat},
	{name: "chdir", h: hChdir},
	{name: "mkdir", h: hMkdir},
	{name: "mkdirat", h: hMkdirat},
	{name: "rmdir", h: hRmdir},
	{name: "unlink", h: hUnlink},
	{name: "unlinkat", h: hUnlinkat},
	{name: "rename", h: hRename},
	{name: "renameat", h: hRenameat},
	{name: "renameat2", h: hRenameat2},
	{name: "symlink", h: hSymlink},
	{name: "symlinkat", h: hSymlinkat},
	{name: "chmod", h: hChmod},
	{name: "fchmodat", h: hFchmodat},
	{name: "fchmodat2", h: hFchmodat2},
	{name: "truncate", h: hTruncate},
	{name: "utimensat", h: hUtimensat},
	{name: "utimes", h: hUtimes},
	{name: "utime", h: hUtime},
	{name: "futimesat", h: hFutimesat},
	{name: "statfs", h: hStatfs},
	{name: "getxattr", h: hGetxattr},
	{name: "lgetxattr", h: hLgetxattr},
	{name: "listxattr", h: hListxattr},
	{name: "llistxattr", h: hLlistxattr},
	{name: "inotify_add_watch", h: hInotifyAddWatch},
	// R42: a second name for an inode, ownership, xattr writes and device
	// nodes are never granted.
	{name: "link", h: hDeny},
	{name: "linkat", h: hDeny},
	{name: "mknod", h: hDeny},
	{name: "mknodat", h: hDeny},
	{name: "chown", h: hDeny},
	{name: "lchown", h: hDeny},
	{name: "fchownat", h: hDeny},
	{name: "setxattr", h: hDeny},
	{name: "lsetxattr", h: hDeny},
	{name: "removexattr", h: hDeny},
	{name: "lremovexattr", h: hDeny},
}

// syscallsByNr maps this architecture's numbers to syscallList entries.
var syscallsByNr []*sysCall

func init() {
	byName := make(map[string]*sysCall, len(syscallList))
	for i := range syscallList {
		syscallList[i].idx = i
		byName[syscallList[i].name] = &syscallList[i]
	}
	maxNr := 0
	for nr := range syscallNumbers {
		maxNr = max(maxNr, nr)
	}
	syscallsByNr = make([]*sysCall, maxNr+1)
	for nr, name := range syscallNumbers {
		sc := byName[name]
		if sc == nil {
			panic(fmt.Sprintf("broker: no handler for %s", name))
		}
		syscallsByNr[nr] = sc
	}
}

func lookupSyscall(nr int32) *sysCall {
	if nr < 0 || int(nr) >= len(syscallsByNr) {
		return nil
	}
	return syscallsByNr[nr]
}

// Syscalls returns the names of the system calls the broker answers on this
// architecture, sorted. A filter should notify exactly these (or a subset:
// the rest then stays denied by the filter).
func Syscalls() []string {
	var names []string
	for _, sc := range syscallsByNr {
		if sc != nil {
			names = append(names, sc.name)
		}
	}
	slices.Sort(names)
	return names
}

func hDeny(*req) result { return denied() }

// readFirstPath reads the path at addr into r.pathBuf and validates the
// notification; nullEmpty makes NULL an empty path (AT_EMPTY_PATH, 6.11).
func (r *req) readFirstPath(addr uint64, nullEmpty bool) (string, int) {
	if addr == 0 && nullEmpty {
		return "", r.validate()
	}
	p, c := r.readPath(addr, r.pathBuf)
	if c != codeOK {
		return "", c
	}
	r.path = p
	return p, r.validate()
}

// lookupAt reads the path at addr and looks it up from dirfd for nd, with
// the *at family's flags: AT_EMPTY_PATH (a NULL or empty path names dirfd
// itself) and AT_SYMLINK_NOFOLLOW.
func (r *req) lookupAt(dirfd int32, addr uint64, flags uint32, nd need) (*object, int) {
	emptyOK := flags&unix.AT_EMPTY_PATH != 0
	p, c := r.readFirstPath(addr, emptyOK)
	if c != codeOK {
		return nil, c
	}
	return r.lookup(atTarget(dirfd, p, flags), nd)
}

// atTarget is the target of an *at call's path p, read by readFirstPath.
func atTarget(dirfd int32, p string, flags uint32) target {
	return target{dirfd: dirfd, path: p, nofollow: flags&unix.AT_SYMLINK_NOFOLLOW != 0, emptyOK: flags&unix.AT_EMPTY_PATH != 0}
}

// --- open, creat, openat, openat2 ---

func hOpen(r *req) result {
	o, c := decodeOpen(r.arg(1), r.arg(2))
	return r.open(unix.AT_FDCWD, r.arg(0), o, c)
}

func hCreat(r *req) result {
	o, c := decodeOpen(unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, r.arg(1))
	return r.open(unix.AT_FDCWD, r.arg(0), o, c)
}

func hOpenat(r *req) result {
	o, c := decodeOpen(r.arg(2), r.arg(3))
	return r.open(dirfdArg(r.arg(0)), r.arg(1), o, c)
}

func hOpenat2(r *req) result {
	usize := r.arg(3)
	if usize < openHowSizeVer0 {
		return errnoResult(unix.EINVAL)
	}
	if usize > pageSize {
		return errnoResult(unix.E2BIG)
	}
	b := r.buf[:usize]
	if c := r.readMem(r.arg(2), b); c != codeOK {
		return fail(c)
	}
	o, c := decodeOpenHow(b, usize)
	return r.open(dirfdArg(r.arg(0)), r.arg(1), o, c)
}

func (r *req) open(dirfd int32, addr uint64, o openReq, code int) result {
	if code != codeOK {
		return fail(code)
	}
	p, c := r.readFirstPath(addr, false)
	if c != codeOK {
		return fail(c)
	}
	t := target{
		dirfd:    dirfd,
		path:     p,
		nofollow: o.flags&unix.O_NOFOLLOW != 0,
		dir:      o.flags&unix.O_DIRECTORY != 0,
		resolve:  o.resolve,
	}
	if o.flags&unix.O_CREAT != 0 {
		return r.create(t, o)
	}
	t.openFlags, t.direct = o.flags, directFlags(o.flags)
	obj, c := r.lookup(t, need{right: openRights(o.flags)})
	if c != codeOK {
		return fail(c)
	}
	return r.openObject(obj, o.flags)
}

// exactRule reports whether v was decided by a rule without wildcards: only
// such a rule grants a device (R34).
func (r *req) exactRule(v policy.Verdict) bool {
	return v.Allowed && v.Rule >= 0 && !strings.ContainsAny(r.b.m.Rule(v.Rule).Pattern, "*?")
}

// openObject opens the checked object itself (R35): the O_PATH fd is
// reopened through /proc/self/fd with the worker's flags, never by name.
func (r *req) openObject(o *object, flags uint32) result {
	if o.opened {
		// Opened with the worker's flags and verified (openDirect).
		return result{kind: resFd, fd: o.fd, cloexec: flags&unix.O_CLOEXEC != 0}
	}
	if c := r.fstat(o); c != codeOK {
		return fail(c)
	}
	typ := o.typ()
	cloexec := flags&unix.O_CLOEXEC != 0
	if flags&unix.O_PATH != 0 {
		// ADDFD cannot install an O_PATH file (fget() refuses them), so
		// O_PATH is served as a read-only open, judged with read.
		if typ == unix.S_IFLNK {
			return denied() // nothing to open for O_PATH|O_NOFOLLOW on a symlink
		}
		flags = unix.O_RDONLY | flags&(unix.O_DIRECTORY|unix.O_CLOEXEC)
	}
	switch {
	case typ == unix.S_IFSOCK, typ == unix.S_IFIFO && !o.worker:
		return denied() // P-40, P-41: never block, never connect
	case flags&unix.O_DIRECTORY != 0 && typ != unix.S_IFDIR:
		return errnoResult(unix.ENOTDIR)
	case typ == unix.S_IFLNK:
		return errnoResult(unix.ELOOP) // O_NOFOLLOW on a symlink (P-07)
	case (typ == unix.S_IFCHR || typ == unix.S_IFBLK) && !o.withinMode && !r.exactRule(o.verdict):
		return denied()
	}
	strip := uint32(unix.O_CREAT | unix.O_NOFOLLOW | unix.O_CLOEXEC)
	if flags&unix.O_CREAT != 0 {
		strip |= unix.O_EXCL
	}
	oflags := int(flags&^strip) | unix.O_NOCTTY | unix.O_CLOEXEC
	nonblock := typ != unix.S_IFDIR
	fd := -1
	var err error
	if acc := flags & unix.O_ACCMODE; typ == unix.S_IFIFO && o.kind != objPipe && flags&unix.O_NONBLOCK == 0 && acc != unix.O_RDWR {
		// A FIFO the worker holds (others are denied above), opened
		// without O_NONBLOCK: the kernel would make the worker wait for
		// the other end, so the broker waits for it on the worker's
		// behalf, bounded and watched (block.go, R26). O_RDWR never
		// waits. A plain O_NONBLOCK open would give a reader EOF at once
		// and a writer ENXIO, unlike the kernel either way.
		fd, err = r.openBlocking(func(gone func() bool) (int, error) { return waitFIFO(o.fd, oflags, acc, gone) })
		oflags |= unix.O_NONBLOCK // cleared below
	} else {
		if nonblock {
			oflags |= unix.O_NONBLOCK // ttys, leases, devices: never block the broker
		}
		err = r.asSelf(o, func() (err error) {
			fd, err = r.openat(unix.AT_FDCWD, procFdPath(o.fd), oflags, 0)
			return err
		})
	}
	if err != nil {
		return fail(errCode(err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != o.st.Dev || st.Ino != o.st.Ino {
		return denied()
	}
	if nonblock && flags&unix.O_NONBLOCK == 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, oflags&^unix.O_NONBLOCK); err != nil {
			return fail(errCode(err))
		}
	}
	return result{kind: resFd, fd: fd, cloexec: cloexec}
}

// create serves an O_CREAT open (R37, R38): resolve the parent, decide on
// parent/name, then openat(parent, name, flags|O_NOFOLLOW). O_EXCL passes
// through (P-10). An existing symlink is followed only to an existing
// object, never to create one (P-09).
func (r *req) create(t target, o openReq) result {
	if mustBeDir(t.path) {
		return errnoResult(unix.EISDIR)
	}
	if o.flags&unix.O_EXCL == 0 {
		// O_CREAT and O_TRUNC do nothing to an existing character device
		// (the kernel truncates regular files only), so "> /dev/null"
		// needs write on /dev/null, not create. Only an existing device
		// takes this way; anything else is decided as a create below.
		plain := o.flags &^ (unix.O_CREAT | unix.O_TRUNC)
		pt := t
		pt.nofollow = true
		if obj, c := r.lookup(pt, need{right: openRights(plain)}); c == codeOK {
			if c := r.fstat(obj); c == codeOK && obj.typ() == unix.S_IFCHR {
				return r.openObject(obj, plain)
			}
		} else if c == codeDrop {
			return fail(c)
		}
	}
	nd := need{right: openRights(o.flags)}
	parent, name, _, c := r.lookupParent(t, nd)
	if c != codeOK {
		return fail(c)
	}
	if parent == nil {
		return errnoResult(unix.EISDIR)
	}
	if c := r.status(); c != codeOK {
		return fail(c)
	}
	mode := o.mode & 0o777 &^ uint32(r.umask)

	var st unix.Stat_t
	err := unix.Fstatat(parent.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch typ := st.Mode & unix.S_IFMT; {
	case err != nil && !errors.Is(err, unix.ENOENT):
		return fail(errCode(err))
	case err == nil && typ == unix.S_IFLNK:
		if o.flags&unix.O_EXCL != 0 {
			return errnoResult(unix.EEXIST)
		}
		return r.createThroughLink(parent, name, t, o)
	case err == nil && typ != unix.S_IFREG && typ != unix.S_IFDIR:
		if o.flags&unix.O_EXCL != 0 {
			return errnoResult(unix.EEXIST)
		}
		// An existing FIFO, socket or device: an open of that object.
		fd, err := r.openat2(parent.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC,
			unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
		if err != nil {
			return fail(errCode(err))
		}
		return r.openObject(&object{fd: fd, verdict: parent.verdict}, o.flags&^unix.O_CREAT)
	}

	// A create cannot be looked up from the cache: it may wait on the
	// file system (block.go, R60).
	fd, err := r.openatBlocking(parent.fd, name, int(o.flags)|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, mode)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return denied() // a symlink appeared: never create through it
		}
		return fail(errCode(err))
	}
	var nst unix.Stat_t
	if err := unix.Fstat(fd, &nst); err != nil {
		return fail(errCode(err))
	}
	if typ := nst.Mode & unix.S_IFMT; typ != unix.S_IFREG && typ != unix.S_IFDIR {
		return denied() // something else appeared under the name
	}
	if o.flags&unix.O_NONBLOCK == 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, int(o.flags)); err != nil {
			return fail(errCode(err))
		}
	}
	return result{kind: resFd, fd: fd, cloexec: o.flags&unix.O_CLOEXEC != 0}
}

// createThroughLink handles O_CREAT without O_EXCL on an existing symlink:
// if it leads to an existing object the call is an open of that object,
// with that object's rights (create included, R36); a dangling link is
// denied.
func (r *req) createThroughLink(parent *object, name string, t target, o openReq) result {
	a := anchor{fd: parent.fd, canon: parent.path}
	sub := target{path: name, anchor: &a, resolve: t.resolve}
	obj, c := r.lookup(sub, need{right: openRights(o.flags)})
	switch {
	case c == codeDrop:
		return fail(c)
	case c != codeOK:
		return denied()
	}
	return r.openObject(obj, o.flags&^(unix.O_CREAT|unix.O_EXCL))
}

// --- stat family ---

func hStat(r *req) result { return r.stat(unix.AT_FDCWD, r.arg(0), r.arg(1), 0) }
func hLstat(r *req) result {
	return r.stat(unix.AT_FDCWD, r.arg(0), r.arg(1), unix.AT_SYMLINK_NOFOLLOW)
}

func hNewfstatat(r *req) result {
	flags := uint32(r.arg(3))
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT|unix.AT_EMPTY_PATH) != 0 {
		return errnoResult(unix.EINVAL)
	}
	return r.stat(dirfdArg(r.arg(0)), r.arg(1), r.arg(2), flags)
}

func (r *req) stat(dirfd int32, addr, buf uint64, flags uint32) result {
	p, c := r.readFirstPath(addr, flags&unix.AT_EMPTY_PATH != 0)
	if c != codeOK {
		return fail(c)
	}
	if workerFdStat(dirfd, p, flags) {
		var st unix.Stat_t
		return r.fdStat(dirfd, buf, func(path string) error {
			return unix.Fstatat(r.s.proc, path, &st, 0)
		}, func() []byte { return sys.StatBytes(&st) })
	}
	obj, c := r.lookup(atTarget(dirfd, p, flags), need{right: policy.Stat, statFree: true})
	if c != codeOK {
		return fail(c)
	}
	if c := r.fstat(obj); c != codeOK {
		return fail(c)
	}
	if c := r.writeMem(buf, sys.StatBytes(&obj.st)); c != codeOK {
		return fail(c)
	}
	return value(0)
}

// workerFdStat reports whether a stat call names an fd of the worker
// itself: AT_EMPTY_PATH with an empty (or NULL) path and a dirfd. This is
// how glibc implements fstat(2), and statx(fd, "", AT_EMPTY_PATH) how Rust
// and others read an open file's metadata.
func workerFdStat(dirfd int32, path string, flags uint32) bool {
	return path == "" && flags&unix.AT_EMPTY_PATH != 0 && dirfd >= 0
}

// fdStat answers the stat of the worker's fd dirfd with one stat call
// through the magic link /proc/<tid>/fd/<dirfd>, which reaches the same
// object the fd holds: no rule is needed for an fd the worker holds (R17,
// as workerObject's statFree case), and no fd is opened. The notification
// is validated after the /proc access and right before the write (R13,
// R23).
func (r *req) fdStat(dirfd int32, buf uint64, stat func(path string) error, result func() []byte) result {
	err := r.procDo(func() error { return stat(itoa(r.tid) + "/fd/" + itoa(int(dirfd))) })
	if c := r.validate(); c != codeOK {
		return fail(c)
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		return errnoResult(unix.EBADF) // the worker has no such fd
	case err != nil:
		return fail(errCode(err))
	}
	if c := r.writeValidated(buf, result()); c != codeOK {
		return fail(c)
	}
	return value(0)
}

const atStatxSyncType = unix.AT_STATX_FORCE_SYNC | unix.AT_STATX_DONT_SYNC

func hStatx(r *req) result {
	flags := uint32(r.arg(2))
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT|unix.AT_EMPTY_PATH|atStatxSyncType) != 0 ||
		flags&atStatxSyncType == atStatxSyncType {
		return errnoResult(unix.EINVAL)
	}
	mask := uint32(r.arg(3))
	if mask&unix.STATX__RESERVED != 0 {
		return errnoResult(unix.EINVAL)
	}
	dirfd := dirfdArg(r.arg(0))
	p, c := r.readFirstPath(r.arg(1), flags&unix.AT_EMPTY_PATH != 0)
	if c != codeOK {
		return fail(c)
	}
	var stx unix.Statx_t
	if workerFdStat(dirfd, p, flags) {
		return r.fdStat(dirfd, r.arg(4), func(path string) error {
			return unix.Statx(r.s.proc, path, int(flags&atStatxSyncType), int(mask), &stx)
		}, func() []byte { return sys.StatxBytes(&stx) })
	}
	obj, c := r.lookup(atTarget(dirfd, p, flags), need{right: policy.Stat, statFree: true})
	if c != codeOK {
		return fail(c)
	}
	if err := unix.Statx(obj.fd, "", unix.AT_EMPTY_PATH|int(flags&atStatxSyncType), int(mask), &stx); err != nil {
		return fail(errCode(err))
	}
	if c := r.writeMem(r.arg(4), sys.StatxBytes(&stx)); c != codeOK {
		return fail(c)
	}
	return value(0)
}

// --- access family (R41) ---

func hAccess(r *req) result    { return r.access(unix.AT_FDCWD, r.arg(0), r.arg(1), 0) }
func hFaccessat(r *req) result { return r.access(dirfdArg(r.arg(0)), r.arg(1), r.arg(2), 0) }

func hFaccessat2(r *req) result {
	if _, c := accessRights(r.arg(2)); c != codeOK {
		return fail(c)
	}
	flags := uint32(r.arg(3))
	if flags&^(unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return errnoResult(unix.EINVAL)
	}
	return r.access(dirfdArg(r.arg(0)), r.arg(1), r.arg(2), flags)
}

func (r *req) access(dirfd int32, addr, mode uint64, flags uint32) result {
	nd, c := accessRights(mode)
	if c != codeOK {
		return fail(c)
	}
	obj, c := r.lookupAt(dirfd, addr, flags, nd)
	if c != codeOK {
		return fail(c)
	}
	if uint32(mode) == unix.F_OK {
		return value(0)
	}
	// The kernel decides as the worker: this thread has its fsuid, fsgid,
	// groups and no capabilities.
	if err := unix.Faccessat2(obj.fd, "", uint32(mode), unix.AT_EMPTY_PATH|unix.AT_EACCESS); err != nil {
		return fail(errCode(err))
	}
	return value(0)
}

// --- readlink ---

func hReadlink(r *req) result { return r.readlink(unix.AT_FDCWD, r.arg(0), r.arg(1), r.arg(2)) }
func hReadlinkat(r *req) result {
	return r.readlink(dirfdArg(r.arg(0)), r.arg(1), r.arg(2), r.arg(3))
}

func (r *req) readlink(dirfd int32, addr, buf, bufsiz uint64) result {
	size := int32(uint32(bufsiz))
	if size <= 0 {
		return errnoResult(unix.EINVAL)
	}
	p, c := r.readFirstPath(addr, false)
	if c != codeOK {
		return fail(c)
	}
	var link string
	if self, ok := r.selfLink(p); ok {
		// /proc/self read by the broker would name the broker.
		if !r.judge(cleanJoin("/", p), policy.Stat) {
			return denied()
		}
		link = self
	} else {
		t := target{dirfd: dirfd, path: p, nofollow: true, emptyOK: true}
		obj, c := r.lookup(t, need{right: policy.Stat, statFree: true})
		if c != codeOK {
			return fail(c)
		}
		var n int
		err := r.asSelf(obj, func() (err error) {
			n, err = unix.Readlinkat(obj.fd, "", r.buf)
			return err
		})
		if err != nil {
			if errors.Is(err, unix.ENOENT) && p != "" {
				return errnoResult(unix.EINVAL) // not a symlink
			}
			return fail(errCode(err))
		}
		link = string(r.buf[:n])
	}
	n := min(len(link), int(size))
	if c := r.writeMem(buf, []byte(link[:n])); c != codeOK {
		return fail(c)
	}
	return value(int64(n))
}

// selfLink returns what /proc/self and /proc/thread-self read as for the
// worker, if p names one of them.
func (r *req) selfLink(p string) (string, bool) {
	if p == "" || p[0] != '/' || hasDotDot(p) || mustBeDir(p) {
		return "", false
	}
	switch cleanJoin("/", p) {
	case "/proc/self":
		if r.status() != codeOK {
			return "", false
		}
		return itoa(r.tgid), true
	case "/proc/thread-self":
		if r.status() != codeOK {
			return "", false
		}
		return itoa(r.tgid) + "/task/" + itoa(r.tid), true
	}
	return "", false
}

// --- chdir (R16) ---

// hChdir checks that the target is a directory the worker may stat and
// lets the kernel do the rest: the only CONTINUE the broker answers. A
// cwd grants nothing by itself (every relative path is judged where its
// anchor really is), so a path swapped after the check can at most reveal
// that a directory exists.
func hChdir(r *req) result {
	p, c := r.readFirstPath(r.arg(0), false)
	if c != codeOK {
		return fail(c)
	}
	obj, c := r.lookup(target{dirfd: unix.AT_FDCWD, path: p}, need{right: policy.Stat})
	if c != codeOK {
		return fail(c)
	}
	if c := r.fstat(obj); c != codeOK {
		return fail(c)
	}
	if obj.typ() != unix.S_IFDIR {
		return errnoResult(unix.ENOTDIR)
	}
	return result{kind: resContinue}
}

// --- mkdir, unlink, rmdir, rename, symlink (create on the name) ---

func hMkdir(r *req) result   { return r.mkdir(unix.AT_FDCWD, r.arg(0), r.arg(1)) }
func hMkdirat(r *req) result { return r.mkdir(dirfdArg(r.arg(0)), r.arg(1), r.arg(2)) }

func (r *req) mkdir(dirfd int32, addr, mode uint64) result {
	parent, name, trailing, c := r.nameAt(dirfd, addr)
	if c != codeOK {
		return fail(c)
	}
	if parent == nil {
		return errnoResult(unix.EEXIST)
	}
	if c := r.status(); c != codeOK {
		return fail(c)
	}
	m := uint32(mode) & 0o777 &^ uint32(r.umask)
	if err := unix.Mkdirat(parent.fd, withSlash(name, trailing), m); err != nil {
		return fail(errCode(err))
	}
	return value(0)
}

// nameAt reads the path at addr and looks up its parent from dirfd, for
// create on the last name (mkdir, unlink, rmdir).
func (r *req) nameAt(dirfd int32, addr uint64) (parent *object, name string, trailing bool, c int) {
	p, c := r.readFirstPath(addr, false)
	if c != codeOK {
		return nil, "", false, c
	}
	return r.lookupParent(target{dirfd: dirfd, path: p}, need{right: policy.Create})
}

// withSlash keeps a trailing slash for the kernel to judge (EISDIR,
// ENOTDIR ...); the lookup is from the parent fd, one component.
func withSlash(name string, trailing bool) string {
	if trailing {
		return name + "/"
	}
	return name
}

func hUnlink(r *req) result { return r.unlink(unix.AT_FDCWD, r.arg(0), 0) }
func hRmdir(r *req) result  { return r.unlink(unix.AT_FDCWD, r.arg(0), unix.AT_REMOVEDIR) }

func hUnlinkat(r *req) result {
	flags := int(uint32(r.arg(2)))
	if flags&^unix.AT_REMOVEDIR != 0 {
		return errnoResult(unix.EINVAL)
	}
	return r.unlink(dirfdArg(r.arg(0)), r.arg(1), flags)
}

func (r *req) unlink(dirfd int32, addr uint64, flags int) result {
	parent, name, trailing, c := r.nameAt(dirfd, addr)
	if c != codeOK {
		return fail(c)
	}
	if parent == nil {
		if flags&unix.AT_REMOVEDIR != 0 {
			switch name {
			case ".":
				return errnoResult(unix.EINVAL)
			case "..":
				return errnoResult(unix.ENOTEMPTY)
			}
			return errnoResult(unix.EBUSY)
		}
		return errnoResult(unix.EISDIR)
	}
	if err := unix.Unlinkat(parent.fd, withSlash(name, trailing), flags); err != nil {
		return fail(errCode(err))
	}
	return value(0)
}

func hRename(r *req) result {
	return r.rename(unix.AT_FDCWD, r.arg(0), unix.AT_FDCWD, r.arg(1), 0)
}

func hRenameat(r *req) result {
	return r.rename(dirfdArg(r.arg(0)), r.arg(1), dirfdArg(r.arg(2)), r.arg(3), 0)
}

func hRenameat2(r *req) result {
	flags := uint32(r.arg(4))
	const both = unix.RENAME_NOREPLACE | unix.RENAME_EXCHANGE
	if flags&^both != 0 || flags&both == both {
		return errnoResult(unix.EINVAL)
	}
	return r.rename(dirfdArg(r.arg(0)), r.arg(1), dirfdArg(r.arg(2)), r.arg(3), uint(flags))
}

// rename needs write and create on both names (R42, C-31).
func (r *req) rename(olddirfd int32, oldAddr uint64, newdirfd int32, newAddr uint64, flags uint) result {
	oldp, c := r.readPath(oldAddr, r.pathBuf)
	if c != codeOK {
		return fail(c)
	}
	newp, c := r.readPath(newAddr, r.pathBuf2)
	if c != codeOK {
		return fail(c)
	}
	r.path = oldp + " -> " + newp
	if c := r.validate(); c != codeOK {
		return fail(c)
	}
	nd := need{right: policy.Write | policy.Create}
	op, oname, otrail, c := r.lookupParent(target{dirfd: olddirfd, path: oldp}, nd)
	if c != codeOK {
		return fail(c)
	}
	np, nname, ntrail, c := r.lookupParent(target{dirfd: newdirfd, path: newp}, nd)
	if c != codeOK {
		return fail(c)
	}
	if op == nil || np == nil {
		return errnoResult(unix.EBUSY)
	}
	if err := unix.Renameat2(op.fd, withSlash(oname, otrail), np.fd, withSlash(nname, ntrail), flags); err != nil {
		return fail(errCode(err))
	}
	return value(0)
}

func hSymlink(r *req) result   { return r.symlink(r.arg(0), unix.AT_FDCWD, r.arg(1)) }
func hSymlinkat(r *req) result { return r.symlink(r.arg(0), dirfdArg(r.arg(1)), r.arg(2)) }

// symlink needs create on the new name; the target string grants nothing,
// since every later use of the link is resolved and judged (R42).
func (r *req) symlink(targetAddr uint64, dirfd int32, addr uint64) result {
	tgt, c := r.readPath(targetAddr, r.pathBuf2)
	if c != codeOK {
		return fail(c)
	}
	p, c := r.readFirstPath(addr, false)
	if c != codeOK {
		return fail(c)
	}
	if tgt == "" {
		return errnoResult(unix.ENOENT)
	}
	parent, name, trailing, c := r.lookupParent(target{dirfd: dirfd, path: p}, need{right: policy.Create})
	if c != codeOK {
		return fail(c)
	}
	if parent == nil {
		return errnoResult(unix.EEXIST)
	}
	if err := unix.Symlinkat(tgt, parent.fd, withSlash(name, trailing)); err != nil {
		return fail(errCode(err))
	}
	return value(0)
}

// --- chmod, truncate, utimes (write on the object) ---

func hChmod(r *req) result    { return r.chmod(unix.AT_FDCWD, r.arg(0), r.arg(1), 0) }
func hFchmodat(r *req) result { return r.chmod(dirfdArg(r.arg(0)), r.arg(1), r.arg(2), 0) }

func hFchmodat2(r *req) result {
	flags := uint32(r.arg(3))
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return errnoResult(unix.EINVAL)
	}
	return r.chmod(dirfdArg(r.arg(0)), r.arg(1), r.arg(2), flags)
}

// chmod changes permission bits only, never set-id or sticky (R42, C-39).
func (r *req) chmod(dirfd int32, addr, mode uint64, flags uint32) result {
	obj, c := r.lookupAt(dirfd, addr, flags, need{right: policy.Write})
	if c != codeOK {
		return fail(c)
	}
	if c := r.fstat(obj); c != codeOK {
		return fail(c)
	}
	if obj.typ() == unix.S_IFLNK {
		return errnoResult(unix.EOPNOTSUPP)
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, procFdPath(obj.fd), uint32(mode)&0o777, 0); err != nil {
		return fail(errCode(err))
	}
	return value(0)
}

func hTruncate(r *req) result {
	length := int64(r.arg(1))
	if length < 0 {
		return errnoResult(unix.EINVAL)
	}
	p, c := r.readFirstPath(r.arg(0), false)
	if c != codeOK {
		return fail(c)
	}
	obj, c := r.lookup(target{dirfd: unix.AT_FDCWD, path: p}, need{right: policy.Write})
	if c != codeOK {
		return fail(c)
	}
	if err := unix.Truncate(procFdPath(obj.fd), length); err != nil {
		return fail(errCode(err))
	}
	return value(0)
}

func hUtimensat(r *req) result {
	ts := nowTimes
	if addr := r.arg(2); addr != 0 {
		b := r.buf[:32]
		if c := r.readMem(addr, b); c != codeOK {
			return fail(c)
		}
		var omit bool
		var c int
		ts, omit, c = decodeTimespecs(b)
		if c != codeOK {
			return fail(c)
		}
		if omit {
			return value(0) // the kernel returns before looking at the path
		}
	}
	flags := uint32(r.arg(3))
	if r.arg(1) == 0 && dirfdArg(r.arg(0)) != unix.AT_FDCWD {
		if flags != 0 {
			return errnoResult(unix.EINVAL)
		}
		return r.utimes(dirfdArg(r.arg(0)), 0, true, ts, 0)
	}
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return errnoResult(unix.EINVAL)
	}
	return r.utimes(dirfdArg(r.arg(0)), r.arg(1), false, ts, flags)
}

func hUtimes(r *req) result {
	ts, c := r.readTimevals(r.arg(1))
	if c != codeOK {
		return fail(c)
	}
	return r.utimes(unix.AT_FDCWD, r.arg(0), false, ts, 0)
}

func hFutimesat(r *req) result {
	ts, c := r.readTimevals(r.arg(2))
	if c != codeOK {
		return fail(c)
	}
	if r.arg(1) == 0 && dirfdArg(r.arg(0)) != unix.AT_FDCWD {
		return r.utimes(dirfdArg(r.arg(0)), 0, true, ts, 0)
	}
	return r.utimes(dirfdArg(r.arg(0)), r.arg(1), false, ts, 0)
}

func hUtime(r *req) result {
	ts := nowTimes
	if addr := r.arg(1); addr != 0 {
		b := r.buf[:16]
		if c := r.readMem(addr, b); c != codeOK {
			return fail(c)
		}
		ts = decodeUtimbuf(b)
	}
	return r.utimes(unix.AT_FDCWD, r.arg(0), false, ts, 0)
}

func (r *req) readTimevals(addr uint64) ([2]unix.Timespec, int) {
	if addr == 0 {
		return nowTimes, codeOK
	}
	b := r.buf[:32]
	if c := r.readMem(addr, b); c != codeOK {
		return nowTimes, c
	}
	return decodeTimevals(b)
}

// utimes sets the times of the object (write right); byFd means the call
// named the worker's fd dirfd itself (a NULL path).
func (r *req) utimes(dirfd int32, addr uint64, byFd bool, ts [2]unix.Timespec, flags uint32) result {
	var obj *object
	var c int
	if byFd {
		if c := r.validate(); c != codeOK {
			return fail(c)
		}
		if dirfd < 0 {
			return errnoResult(unix.EBADF)
		}
		obj, c = r.workerObject(r.tid, int(dirfd), unix.EBADF, need{right: policy.Write})
	} else {
		var p string
		p, c = r.readFirstPath(addr, false)
		if c != codeOK {
			return fail(c)
		}
		t := target{dirfd: dirfd, path: p, nofollow: flags&unix.AT_SYMLINK_NOFOLLOW != 0, emptyOK: flags&unix.AT_EMPTY_PATH != 0}
		obj, c = r.lookup(t, need{right: policy.Write})
	}
	if c != codeOK {
		return fail(c)
	}
	if err := unix.UtimesNanoAt(obj.fd, "", ts[:], unix.AT_EMPTY_PATH); err != nil {
		return fail(errCode(err))
	}
	return value(0)
}

// --- statfs, xattr reads (stat right) ---

func hStatfs(r *req) result {
	p, c := r.readFirstPath(r.arg(0), false)
	if c != codeOK {
		return fail(c)
	}
	obj, c := r.lookup(target{dirfd: unix.AT_FDCWD, path: p}, need{right: policy.Stat})
	if c != codeOK {
		return fail(c)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(obj.fd, &sfs); err != nil {
		return fail(errCode(err))
	}
	if c := r.writeMem(r.arg(1), sys.StatfsBytes(&sfs)); c != codeOK {
		return fail(c)
	}
	return value(0)
}

const (
	xattrNameMax = 255   // XATTR_NAME_MAX
	xattrSizeMax = 65536 // XATTR_SIZE_MAX
)

func hGetxattr(r *req) result   { return r.getxattr(false) }
func hLgetxattr(r *req) result  { return r.getxattr(true) }
func hListxattr(r *req) result  { return r.listxattr(false) }
func hLlistxattr(r *req) result { return r.listxattr(true) }

func (r *req) getxattr(nofollow bool) result {
	name, c := r.readPath(r.arg(1), r.pathBuf2[:xattrNameMax+1])
	if c == int(unix.ENAMETOOLONG) || (c == codeOK && name == "") {
		return errnoResult(unix.ERANGE)
	}
	if c != codeOK {
		return fail(c)
	}
	return r.readXattr(nofollow, r.arg(2), r.arg(3), func(path string, buf []byte) (int, error) {
		return unix.Getxattr(path, name, buf)
	})
}

func (r *req) listxattr(nofollow bool) result {
	return r.readXattr(nofollow, r.arg(1), r.arg(2), unix.Listxattr)
}

// readXattr serves the xattr reads: the path (argument 0) needs stat; read
// runs on the object through its magic link (the lookup lands on the
// object itself, the symlink for the l- forms) into a buffer of at most
// size bytes, which is copied to the worker's buffer at addr.
func (r *req) readXattr(nofollow bool, addr, size uint64, read func(path string, buf []byte) (int, error)) result {
	p, c := r.readFirstPath(r.arg(0), false)
	if c != codeOK {
		return fail(c)
	}
	obj, c := r.lookup(target{dirfd: unix.AT_FDCWD, path: p, nofollow: nofollow}, need{right: policy.Stat})
	if c != codeOK {
		return fail(c)
	}
	size = min(size, xattrSizeMax)
	var buf []byte
	if size > 0 {
		buf = make([]byte, size)
	}
	n, err := read(procFdPath(obj.fd), buf)
	if err != nil {
		return fail(errCode(err))
	}
	if size > 0 {
		if c := r.writeMem(addr, buf[:n]); c != codeOK {
			return fail(c)
		}
	}
	return value(int64(n))
}

// --- inotify_add_watch (read on the watched object) ---

func hInotifyAddWatch(r *req) result {
	ifd := dirfdArg(r.arg(0))
	mask := uint32(r.arg(2))
	p, c := r.readFirstPath(r.arg(1), false)
	if c != codeOK {
		return fail(c)
	}
	if ifd < 0 {
		return errnoResult(unix.EBADF)
	}
	t := target{dirfd: unix.AT_FDCWD, path: p, nofollow: mask&unix.IN_DONT_FOLLOW != 0, dir: mask&unix.IN_ONLYDIR != 0}
	obj, c := r.lookup(t, need{right: policy.Read})
	if c != codeOK {
		return fail(c)
	}
	if c := r.fstat(obj); c != codeOK {
		return fail(c)
	}
	if mask&unix.IN_ONLYDIR != 0 && obj.typ() != unix.S_IFDIR {
		return errnoResult(unix.ENOTDIR)
	}
	in, c := r.takeFd(int(ifd))
	if c != codeOK {
		return fail(c)
	}
	if link, c := r.canonical(in); c != codeOK || link != "anon_inode:inotify" {
		return errnoResult(unix.EINVAL)
	}
	// The watch goes on the object behind our O_PATH fd; the magic link
	// itself is followed, so IN_DONT_FOLLOW (already honoured) is dropped.
	wd, err := unix.InotifyAddWatch(in, procFdPath(obj.fd), mask&^unix.IN_DONT_FOLLOW)
	if err != nil {
		return fail(errCode(err))
	}
	return value(int64(wd))
}

const pidfdThread = unix.O_EXCL // PIDFD_THREAD (6.9)

// takeFd copies the calling thread's fd n into the broker with
// pidfd_getfd: the same open file, not a reopen.
func (r *req) takeFd(n int) (int, int) {
	if !r.acquire() {
		return -1, int(unix.EMFILE)
	}
	pidfd, err := unix.PidfdOpen(r.tid, pidfdThread)
	if errors.Is(err, unix.EINVAL) {
		if c := r.status(); c != codeOK {
			r.b.fds.release()
			return -1, c
		}
		pidfd, err = unix.PidfdOpen(r.tgid, 0)
	}
	if _, err := r.opened(pidfd, err); err != nil {
		if c := r.validate(); c != codeOK {
			return -1, c
		}
		return -1, errCode(err)
	}
	if !r.acquire() {
		return -1, int(unix.EMFILE)
	}
	fd, err := r.opened(unix.PidfdGetfd(pidfd, n, 0))
	if c := r.validate(); c != codeOK {
		return -1, c
	}
	if err != nil {
		return -1, errCode(err)
	}
	return fd, codeOK
}
