package policy

import (
	"slices"
	"strings"
	"sync"
)

// An UnsafeSyscall is a syscall that the sandbox's filter denies as
// dangerous and that only a `syscall unsafe-allow` line can allow.
type UnsafeSyscall struct {
	Name string
	// Exposes says what allowing it exposes; Lint repeats it for every use.
	Exposes string
	// NeedsLandlock: the worker's Landlock ruleset is the only layer left
	// that limits what the syscall reaches, so the parser refuses it
	// together with `landlock off`, and the launcher refuses to start
	// the worker on a kernel without Landlock.
	NeedsLandlock bool
}

// unsafeTable lists the syscalls of `syscall unsafe-allow`: exactly the
// filter's dangerous class (sandbox/seccomp classify.go, security.md R47).
// A name the filter adds there and this table lacks is refused by the
// parser, which fails closed.
var unsafeTable = sync.OnceValue(func() map[string]UnsafeSyscall {
	t := map[string]UnsafeSyscall{}
	add := func(exposes string, landlock bool, names ...string) {
		for _, n := range names {
			t[n] = UnsafeSyscall{Name: n, Exposes: exposes, NeedsLandlock: landlock}
		}
	}
	add("io_uring bypasses the broker and the filter: only Landlock limits the files its requests open (IORING_OP_OPENAT; deny rules inside allowed trees and the broker's checks do not apply), nothing hides which files exist (a missing name gives ENOENT) nor limits IORING_OP_STATX (Landlock does not see stat), and IORING_OP_SOCKET and CONNECT reach sockets the net line forbids (security.md R47, R56, S-03)",
		true, "io_uring_setup", "io_uring_enter", "io_uring_register")
	add("userfaultfd lets the worker stall the broker's reads of its memory and is a common kernel exploit primitive (D-09)",
		false, "userfaultfd")
	add("the kernel keyrings are a large kernel surface shared with the host's user (R47)",
		false, "keyctl", "add_key", "request_key")
	add("mount and namespace listing reveals the host's mounts and namespaces (S-07)",
		false, "statmount", "listmount", "listns")
	add("clone3 keeps its flags in memory the filter cannot read: the worker may create namespaces (CLONE_NEW*), which unlock mount, chroot and most unprivileged kernel exploits (R48)",
		false, "clone3")
	add("a large kernel surface, reachable without a trapped syscall (R47)",
		false, "bpf", "perf_event_open", "fanotify_init", "syslog", "quotactl_fd")
	add("kernel code loading: the worker has no capability to do it, but the kernel's checks are then the only barrier (R47)",
		false, "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module")
	add("reaches other processes' memory, fds or namespaces: only Yama, Landlock's scoping and the worker's credentials then stand between it and its siblings (R47, S-10)",
		false, "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp", "setns")
	return t
})

// pathSyscalls are the syscalls that take a path (or reach files without
// one): the broker serves them or the filter denies them, and no syscall
// line may allow them natively. The value says whether the broker serves
// it.
var pathSyscalls = sync.OnceValue(func() map[string]bool {
	t := map[string]bool{}
	for _, n := range strings.Fields(`open creat openat openat2 stat lstat newfstatat statx
		access faccessat faccessat2 readlink readlinkat chdir
		mkdir mkdirat rmdir unlink unlinkat rename renameat renameat2 symlink symlinkat
		chmod fchmodat fchmodat2 truncate utimensat utimes utime futimesat
		statfs getxattr lgetxattr listxattr llistxattr inotify_add_watch`) {
		t[n] = true
	}
	for _, n := range strings.Fields(`link linkat chown lchown fchownat setxattr lsetxattr
		removexattr lremovexattr setxattrat removexattrat file_setattr getxattrat listxattrat
		file_getattr mknod mknodat execveat mq_open mq_unlink fanotify_mark
		mount umount2 pivot_root fsopen fsconfig fsmount fspick open_tree open_tree_attr
		move_mount mount_setattr chroot uselib swapon swapoff acct quotactl
		name_to_handle_at open_by_handle_at`) {
		t[n] = false
	}
	return t
})

// UnsafeSyscalls returns the syscalls a `syscall unsafe-allow` line
// accepts, sorted by name.
func UnsafeSyscalls() []UnsafeSyscall {
	var out []UnsafeSyscall
	for _, u := range unsafeTable() {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b UnsafeSyscall) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LookupUnsafe returns the entry of name if `syscall unsafe-allow` accepts
// it.
func LookupUnsafe(name string) (UnsafeSyscall, bool) {
	u, ok := unsafeTable()[name]
	return u, ok
}

// unsafeNames is the sorted list of unsafe-allow names, for messages.
func unsafeNames() []string {
	var names []string
	for _, u := range UnsafeSyscalls() {
		names = append(names, u.Name)
	}
	return names
}

// unsafeUse is one name of a `syscall unsafe-allow` line that needs
// Landlock, kept for the check against `landlock off` once every file is
// read.
type unsafeUse struct {
	name  string
	pos   Position
	chain []Position
}

// checkUnsafeLandlock reports `syscall unsafe-allow` of a syscall that
// only Landlock limits together with `landlock off`: one error per line,
// naming both.
func (ps *parser) checkUnsafeLandlock() {
	if !ps.p.landlockOff {
		return
	}
	for i := 0; i < len(ps.unsafeLL); {
		first := ps.unsafeLL[i]
		names := []string{first.name}
		j := i + 1
		for ; j < len(ps.unsafeLL) && ps.unsafeLL[j].pos.File == first.pos.File && ps.unsafeLL[j].pos.Line == first.pos.Line; j++ {
			names = append(names, ps.unsafeLL[j].name)
		}
		list := strings.Join(names, " ")
		ps.addErr(Error{Pos: first.pos, Chain: first.chain,
			Msg: "syscall unsafe-allow " + list + " needs the worker's Landlock ruleset, the only layer that limits the files it reaches, and landlock off at " +
				ps.p.landlockPos.String() + " turns it off; delete that line (or write landlock on), or remove " + list + " from this line"})
		i = j
	}
}
