package seccomp

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// fuzzNames is the pool FuzzBuild draws syscall names from: every name of
// either table, the pseudo entry, and two unknown names.
var fuzzNames = func() []string {
	seen := map[string]bool{"frobnicate": true, "": true}
	for _, m := range []map[string]int{syscallsAMD64, syscallsARM64} {
		for n := range m {
			seen[n] = true
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}()

// fuzzProfile decodes a Profile from fuzz input: arch, net mode, a flags
// byte (SysVIPC, default action, deny errno), then list entries: an op byte
// (list in (op&0x7f)%7, deny errno in op>>3&3) and a name, given either as a
// two-byte index into fuzzNames or, when op has bit 7 set, as a length byte
// and the name itself (the committed corpus uses that form so it survives
// table changes).
func fuzzProfile(b []byte) Profile {
	b = b[:min(len(b), 1024)] // longer inputs add nothing but time
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	p := Profile{Arch: arches[next()%2], Net: NetMode(next() % 5)}
	fl := next()
	p.SysVIPC = fl&1 != 0
	p.Default = []Action{0, ActKillProcess, ActTrap, ActErrno(1), ActErrno(0), ActAllow, ActNotify, ActErrno(5000)}[fl>>1&7]
	p.DenyErrno = []uint16{0, 2, 13, 5000}[fl>>4&3]
	for len(b) >= 3 {
		op := next()
		var name string
		if op&0x80 != 0 {
			n := min(int(next()), len(b))
			name, b = string(b[:n]), b[n:]
		} else {
			name = fuzzNames[(int(next())<<8|int(next()))%len(fuzzNames)]
		}
		switch (op & 0x7f) % 7 {
		case 0:
			p.Disable = append(p.Disable, name)
		case 1:
			p.Enable = append(p.Enable, name)
		case 2, 3:
			p.Allow = append(p.Allow, name)
		case 4:
			p.UnsafeAllow = append(p.UnsafeAllow, name)
		case 5:
			p.Deny = append(p.Deny, Deny{Name: name, Errno: []uint16{0, 2, 22, 5000}[op>>3&3]})
		case 6:
			p.Deny = append(p.Deny, Deny{Name: name, Kill: true})
		}
	}
	return p
}

// specKnown: the name is a syscall of either generated table.
func specKnown(n string) bool {
	_, a := syscallsAMD64[n]
	_, b := syscallsARM64[n]
	return (a || b) && n != "arch_specific_syscall"
}

// specBuildError is the reference for when Build must fail.
func specBuildError(p Profile) bool {
	if p.Net > NetAll || p.DenyErrno > 4095 {
		return true
	}
	switch p.Default {
	case 0, ActKillProcess, ActTrap:
	default:
		if e, ok := p.Default.Errno(); !ok || e == 0 || e > 4095 {
			return true
		}
	}
	denied := map[string]Action{}
	for _, d := range p.Deny {
		if !specKnown(d.Name) {
			return true
		}
		act := ActKillProcess
		if !d.Kill {
			e := d.Errno
			if e == 0 {
				e = 1
			}
			if e > 4095 {
				return true
			}
			act = ActErrno(e)
		}
		if prev, ok := denied[d.Name]; ok && prev != act {
			return true
		}
		denied[d.Name] = act
	}
	for _, l := range [][]string{p.Disable, p.Enable, p.Allow, p.UnsafeAllow} {
		for _, n := range l {
			if !specKnown(n) {
				return true
			}
		}
	}
	for _, n := range p.Disable {
		if !specOptional[n] && !specOptIn[n] || slices.Contains(p.Enable, n) {
			return true
		}
	}
	for _, n := range p.Enable {
		if !specAlwaysBrokered[n] && !specOptional[n] && !specOptIn[n] {
			return true
		}
	}
	for _, n := range p.Allow {
		if specAllowError(n, false) {
			return true
		}
		if _, ok := denied[n]; ok {
			return true
		}
	}
	for _, n := range p.UnsafeAllow {
		if specAllowError(n, true) {
			return true
		}
		if _, ok := denied[n]; ok {
			return true
		}
	}
	return false
}

// FuzzBuild builds random profiles: Build must never panic, must fail
// exactly when the reference says the profile is invalid, and the program
// must decide every syscall number as the reference classification does
// (all arguments zero) and like Filter.Eval for random arguments.
func FuzzBuild(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{1, 2, 1, 0, 0, 50, 1, 0, 60})
	f.Fuzz(func(t *testing.T, in []byte) {
		p := fuzzProfile(in)
		prog, err := p.Build()
		if wantErr := specBuildError(p); (err != nil) != wantErr {
			t.Fatalf("Build(%+v): error %v, reference says error=%v", p, err, wantErr)
		}
		if err != nil {
			return
		}
		checkKernelRules(t, prog)
		m := newMachine(t, prog)
		def := p.Default
		if def == 0 {
			def = ActErrno(38)
		}
		for nr := 0; nr < 1024; nr++ {
			name := p.Arch.SyscallName(nr)
			want, named := specZeroArgs(name, p)
			if !named {
				want = def
			}
			if got := m.run(Data{Nr: int32(nr), Arch: p.Arch}); got != want {
				t.Fatalf("%+v: %d (%s) got %v, want %v", p, nr, name, got, want)
			}
		}
		filter, err := p.Filter()
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(len(in)), 7))
		for i := 0; i < 64; i++ {
			d := Data{Nr: int32(r.IntN(480)), Arch: p.Arch}
			for j := range d.Args {
				d.Args[j] = interesting(r, []uint64{0, 1, 2, 4, 0x5412, 0x400, 0x7e020000, 0xffffffff}[r.IntN(8)])
			}
			if got, want := m.run(d), filter.Eval(d); got != want {
				t.Fatalf("%+v: %+v program %v, Eval %v", p, d, got, want)
			}
		}
	})
}

// TestFuzzCorpus keeps the committed seeds meaningful: "bad-" seeds are
// invalid profiles, the others build.
func TestFuzzCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzBuild/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(src)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a fuzz corpus file", file)
		}
		in, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		_, err = fuzzProfile([]byte(in)).Build()
		if bad := strings.HasPrefix(filepath.Base(file), "bad-"); bad != (err != nil) {
			t.Errorf("%s: Build error %v", file, err)
		}
	}
}
