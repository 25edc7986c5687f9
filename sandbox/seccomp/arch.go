package seccomp

import (
	"fmt"
	"runtime"
	"sort"
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

// pseudoSyscalls are entries of the generated tables that are not syscalls
// (x/sys exports __NR_arch_specific_syscall, the base of arm64's private
// range, as if it were one).
var pseudoSyscalls = map[string]bool{"arch_specific_syscall": true}

type sysTable struct {
	byName map[string]int
	byNr   map[int]string
	names  []string // sorted
	maxNr  int
}

var (
	tableAMD64 = newSysTable(syscallsAMD64)
	tableARM64 = newSysTable(syscallsARM64)
)

func newSysTable(m map[string]int) *sysTable {
	t := &sysTable{byName: map[string]int{}, byNr: map[int]string{}}
	for name, nr := range m {
		if pseudoSyscalls[name] {
			continue
		}
		t.byName[name] = nr
		t.byNr[nr] = name
		t.names = append(t.names, name)
		t.maxNr = max(t.maxNr, nr)
	}
	sort.Strings(t.names)
	return t
}

func (a Arch) table() *sysTable {
	switch a {
	case ArchAMD64:
		return tableAMD64
	case ArchARM64:
		return tableARM64
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
	t := a.table()
	if t == nil {
		return 0, false
	}
	nr, ok := t.byName[name]
	return nr, ok
}

// SyscallName returns the name of syscall number nr on a, or "" if a has no
// syscall with that number.
func (a Arch) SyscallName(nr int) string {
	t := a.table()
	if t == nil {
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
	_, ok1 := tableAMD64.byName[name]
	_, ok2 := tableARM64.byName[name]
	return ok1 || ok2
}
