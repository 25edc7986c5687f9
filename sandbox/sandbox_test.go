//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/sandbox/seccomp"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestLandlockSupported(t *testing.T) {
	for _, c := range []struct {
		abi            int
		fs, net, scope int // number of rights
	}{{0, 0, 0, 0}, {1, 13, 0, 0}, {2, 14, 0, 0}, {3, 15, 0, 0}, {4, 15, 2, 0}, {5, 16, 2, 0}, {6, 16, 2, 2}, {7, 16, 2, 2}, {8, 16, 2, 2}, {9, 17, 2, 2}} {
		fs, net, scope := LandlockSupported(c.abi)
		if got := [3]int{len(LandlockFSNames(fs)), len(LandlockNetNames(net)), len(LandlockScopeNames(scope))}; got != [3]int{c.fs, c.net, c.scope} {
			t.Errorf("ABI %d: %v rights, want %v", c.abi, got, [3]int{c.fs, c.net, c.scope})
		}
	}
	if got := LandlockFSNames(AccessFSExecute | AccessFSIoctlDev); !slices.Equal(got, []string{"execute", "ioctl_dev"}) {
		t.Errorf("names: %v", got)
	}
	if got := LandlockScopeNames(ScopeSignal); !slices.Equal(got, []string{"signal"}) {
		t.Errorf("names: %v", got)
	}
}

// What an ABI enforces is a pure function: test it over fake ABI levels.
func TestDowngrade(t *testing.T) {
	all := &Landlock{HandledFS: 1<<16 - 1, HandledNet: AccessNetBindTCP | AccessNetConnectTCP, Scoped: ScopeSignal | ScopeAbstractUnixSocket}
	best := *all
	best.BestEffort = true
	for _, c := range []struct {
		name                  string
		l                     *Landlock
		abi                   int
		enforce, fail         bool
		droppedFS, droppedNet bool
		droppedScope          bool
	}{
		{"strict, new kernel", all, 7, true, false, false, false, false},
		{"strict, ABI 3", all, 3, false, true, true, true, true},
		{"best effort, ABI 3", &best, 3, true, false, true, true, true},
		{"best effort, ABI 5", &best, 5, true, false, false, false, true},
		{"best effort, no Landlock", &best, 0, false, false, true, true, true},
		{"required ABI 6 on 5", &Landlock{BestEffort: true, MinABI: 6, HandledFS: 1}, 5, false, true, false, false, false},
		{"required ABI 6 on 7", &Landlock{BestEffort: true, MinABI: 6, HandledFS: 1}, 7, true, false, false, false, false},
		{"nothing handled", &Landlock{BestEffort: true}, 7, false, false, false, false, false},
	} {
		res, enforce, err := Downgrade(c.l, c.abi)
		if enforce != c.enforce || (err != nil) != c.fail {
			t.Errorf("%s: enforce %v, err %v", c.name, enforce, err)
		}
		if err != nil && !errors.Is(err, sys.ErrNotSupported) {
			t.Errorf("%s: %v does not wrap ErrNotSupported", c.name, err)
		}
		if (res.DroppedFS != 0) != c.droppedFS || (res.DroppedNet != 0) != c.droppedNet || (res.DroppedScoped != 0) != c.droppedScope {
			t.Errorf("%s: dropped fs %#x net %#x scopes %#x", c.name, res.DroppedFS, res.DroppedNet, res.DroppedScoped)
		}
		if res.HandledFS&res.DroppedFS != 0 {
			t.Errorf("%s: a right is both handled and dropped", c.name)
		}
	}
	if LandlockKernel(6) != "6.12" || LandlockKernel(99) != "newer than 6.15" {
		t.Errorf("LandlockKernel: %q, %q", LandlockKernel(6), LandlockKernel(99))
	}
}

// Apply on a throwaway locked thread of a subprocess: the capabilities are
// gone, no_new_privs is set, the Landlock domain refuses what it does not
// grant, and the listener comes back.
func TestApply(t *testing.T) {
	if !testutil.RunInSubprocess(t) {
		return
	}
	prog, err := seccomp.Profile{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	dir := t.TempDir()
	spec := &Spec{
		Rlimits:          []Rlimit{{Resource: unix.RLIMIT_CORE, Cur: 0, Max: 0}},
		DropCapabilities: true,
		Landlock:         &Landlock{BestEffort: true, HandledFS: AccessFSExecute | AccessFSReadFile, Paths: []LandlockPath{{Path: dir, Access: AccessFSReadFile}}},
		Filter:           filter,
	}
	type out struct {
		res  *Result
		err  error
		exec error
	}
	done := make(chan out, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its filter
		res, err := Apply(spec)
		var execErr error
		if err == nil && res.Landlock.Enforced {
			// execve is allowed by the filter; Landlock refuses it.
			execErr = unix.Exec("/bin/true", []string{"true"}, nil)
		}
		done <- out{res, err, execErr}
	}()
	o := <-done
	testutil.SkipIfNotSupported(t, o.err)
	defer o.res.Listener.Close()
	if o.res.Landlock.ABI > 0 && !errors.Is(o.exec, unix.EACCES) {
		t.Errorf("execve under Landlock without execute: %v, want EACCES", o.exec)
	}
	if !o.res.NoNewPrivs {
		t.Errorf("no_new_privs not set")
	}
	c := o.res.Capabilities
	if c.Effective|c.Permitted|c.Inheritable|c.Ambient != 0 {
		t.Errorf("capabilities left: %+v", c)
	}
	if o.res.BoundingDropped != (c.Bounding == 0) {
		t.Errorf("bounding dropped %v, bounding %#x", o.res.BoundingDropped, c.Bounding)
	}
	if os.Geteuid() == 0 && !c.Empty() {
		t.Errorf("as root, capabilities left: %+v", c)
	}
	if len(o.res.Rlimits) != 1 || o.res.Rlimits[0].Cur != 0 {
		t.Errorf("rlimits read back: %+v", o.res.Rlimits)
	}
	if o.res.Landlock.ABI > 0 && (!o.res.Landlock.Enforced || o.res.Landlock.Rules != 1) {
		t.Errorf("Landlock: %+v", o.res.Landlock)
	}
	if o.res.Listener == nil {
		t.Errorf("no listener")
	}
}

// TestProgramJSON checks that a Spec's filter survives the JSON trip to
// the init stage instruction for instruction, in its compact form, and
// that a damaged one is refused.
func TestProgramJSON(t *testing.T) {
	raw, err := seccomp.Profile{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	prog := make(Program, len(raw))
	for i, ins := range raw {
		prog[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	in := Spec{Filter: prog, WaitKillableRecv: true}
	b, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out Spec
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.Filter, out.Filter) || len(out.Filter) == 0 {
		t.Fatalf("filter changed on the way: %d instructions in, %d out", len(in.Filter), len(out.Filter))
	}
	// 8 bytes per instruction, base64: about 11 bytes of JSON each, where
	// an array of objects took about 40.
	if n := len(b); n > 12*len(prog)+200 {
		t.Errorf("%d bytes of JSON for %d instructions", n, len(prog))
	}
	for _, bad := range []string{`{"filter":"AAAA"}`, `{"filter":"!!"}`, `{"filter":[{"Code":6}]}`} {
		var s Spec
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s: decoded to %d instructions, want an error", bad, len(s.Filter))
		}
	}
}
