package seccomp

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
)

// Arch is a seccomp audit architecture (AUDIT_ARCH_*), the value the kernel
// puts in seccomp_data.arch. It selects the syscall table a filter is built
// for.
type Arch uint32

// Supported architectures.
const (
	ArchAMD64 Arch = 0xc000003e // AUDIT_ARCH_X86_64
	ArchARM64 Arch = 0xc00000b7 // AUDIT_ARCH_AARCH64
)

// pseudoSyscall reports whether name is an entry of the generated tables
// that is not a syscall (x/sys exports __NR_arch_specific_syscall, the base
// of arm64's private range, as if it were one).
func pseudoSyscall(name string) bool { return name == "arch_specific_syscall" }

// sysTable is the derived form of one generated table. Building it costs
// tens of microseconds, so it is built on first use, not at package init:
// every sandbox-exec start (and its init-stage re-exec) links this package,
// and most never build a filter.
type sysTable struct {
	byName map[string]int // the generated table; see pseudoSyscall
	byNr   []string       // indexed by number; "" for none
	names  []string       // sorted
}

var (
	tableAMD64 = sync.OnceValue(func() *sysTable { return newSysTable(syscallsAMD64) })
	tableARM64 = sync.OnceValue(func() *sysTable { return newSysTable(syscallsARM64) })
)

func newSysTable(m map[string]int) *sysTable {
	t := &sysTable{byName: m, names: make([]string, 0, len(m))}
	maxNr := 0
	for name, nr := range m {
		if pseudoSyscall(name) {
			continue
		}
		t.names = append(t.names, name)
		maxNr = max(maxNr, nr)
	}
	slices.Sort(t.names)
	t.byNr = make([]string, maxNr+1)
	for _, name := range t.names {
		t.byNr[m[name]] = name // unique: TestArchTables round-trips each name
	}
	return t
}

func (a Arch) table() *sysTable {
	switch a {
	case ArchAMD64:
		return tableAMD64()
	case ArchARM64:
		return tableARM64()
	}
	return nil
}

// generated returns a's generated table, without building its sysTable.
func (a Arch) generated() map[string]int {
	switch a {
	case ArchAMD64:
		return syscallsAMD64
	case ArchARM64:
		return syscallsARM64
	}
	return nil
}

// NativeArch returns the architecture of the running program, and false if
// it is not one this package supports. It depends only on runtime.GOARCH, so
// it answers on any OS.
func NativeArch() (Arch, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return ArchAMD64, true
	case "arm64":
		return ArchARM64, true
	}
	return 0, false
}

// Syscall returns the number of the named syscall on a, and false if a has
// no such syscall (or a is not supported).
func (a Arch) Syscall(name string) (int, bool) {
	if pseudoSyscall(name) {
		return 0, false
	}
	nr, ok := a.generated()[name]
	return nr, ok
}

// SyscallName returns the name of syscall number nr on a, or "" if a has no
// syscall with that number.
func (a Arch) SyscallName(nr int) string {
	t := a.table()
	if t == nil || nr < 0 || nr >= len(t.byNr) {
		return ""
	}
	return t.byNr[nr]
}

// Syscalls returns the names of every syscall a has, sorted.
func (a Arch) Syscalls() []string {
	t := a.table()
	if t == nil {
		return nil
	}
	return append([]string(nil), t.names...)
}

// String returns "amd64", "arm64", or the audit value in hex.
func (a Arch) String() string {
	switch a {
	case ArchAMD64:
		return "amd64"
	case ArchARM64:
		return "arm64"
	}
	return fmt.Sprintf("arch(%#x)", uint32(a))
}

// knownSyscall reports whether name is a syscall on any supported arch.
// Policies are written once for every arch, so a name that exists on only
// one of them is valid everywhere and simply absent on the other.
func knownSyscall(name string) bool {
	_, ok1 := ArchAMD64.Syscall(name)
	_, ok2 := ArchARM64.Syscall(name)
	return ok1 || ok2
}
