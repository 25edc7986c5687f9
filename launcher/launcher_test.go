//go:build linux

package launcher

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/policy"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
	"github.com/seed-025014a4/sandbox-exec/sandbox/seccomp"
)

func TestMain(m *testing.M) {
	Init()
	testutil.Main(m)
}

func parse(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("t.policy", []byte("version 1\n"+text), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGlobFreePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"/":               "/",
		"/usr/**":         "/usr",
		"/usr/lib/*/x":    "/usr/lib",
		"/etc/hostname":   "/etc/hostname",
		"/lib64/ld-*.so*": "/lib64",
		"/a/b?/c":         "/a",
		"/*":              "/",
	} {
		if got := globFreePrefix(in); got != want {
			t.Errorf("globFreePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLandlockRights(t *testing.T) {
	for _, c := range []struct {
		r    policy.Right
		want []string
	}{
		{policy.Stat, []string{}},
		{policy.Read, []string{"read_file", "read_dir", "ioctl_dev"}},
		{policy.Write, []string{"write_file", "truncate", "ioctl_dev"}},
		{policy.Exec, []string{"execute", "read_file"}},
		{policy.Create, []string{"remove_dir", "remove_file", "make_dir", "make_reg", "make_sock", "make_sym", "refer"}},
	} {
		if got := sandbox.LandlockFSNames(landlockRights(c.r)); !slices.Equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.r, got, c.want)
		}
	}
	// Never devices or FIFOs: the broker creates neither (P-39, P-40).
	if landlockRights(policy.AllRights)&(sandbox.AccessFSMakeChar|sandbox.AccessFSMakeBlock|sandbox.AccessFSMakeFifo) != 0 {
		t.Errorf("a policy right grants device or FIFO creation")
	}
}

func TestPlanNet(t *testing.T) {
	tcp := uint64(sandbox.AccessNetBindTCP | sandbox.AccessNetConnectTCP)
	both := uint64(sandbox.ScopeSignal | sandbox.ScopeAbstractUnixSocket)
	for _, c := range []struct {
		text    string
		mode    seccomp.NetMode
		handled uint64
		ports   int
		scoped  uint64
	}{
		{"", seccomp.NetNone, tcp, 0, both},
		{"net unix", seccomp.NetUnix, tcp, 0, sandbox.ScopeSignal},
		{"net inet", seccomp.NetInet, 0, 0, both},
		{"net all", seccomp.NetAll, 0, 0, sandbox.ScopeSignal},
		{"net tcp-connect 443", seccomp.NetInet, tcp, 1, both},
		{"net all\nnet tcp-bind 8080 8081", seccomp.NetAll, tcp, 2, sandbox.ScopeSignal},
	} {
		np := planNet(parse(t, c.text).Net())
		if np.mode != c.mode || np.handledNet != c.handled || len(np.ports) != c.ports || np.scoped != c.scoped {
			t.Errorf("%q: mode %v handled %#x ports %v scoped %#x", c.text, np.mode, np.handledNet, np.ports, np.scoped)
		}
	}
}

func TestLandlockPaths(t *testing.T) {
	exe := testutil.Executable()
	p := parse(t, "allow read /usr/** /etc/hostname\nallow stat /\nallow read,write,create /tmp/x/*.txt\n"+
		"allow exec "+exe+"\nallow read /proc/self/status\ndeny /usr/secret/**\n")
	paths, denies := landlockPaths(p, "", false)
	got := map[string][]string{}
	for _, pa := range paths {
		got[pa.Path] = sandbox.LandlockFSNames(pa.Access)
	}
	if !slices.Equal(got["/usr"], []string{"read_file", "read_dir", "ioctl_dev"}) {
		t.Errorf("/usr/**: %v", got["/usr"])
	}
	if _, ok := got["/"]; ok {
		t.Errorf("a stat rule became a Landlock rule")
	}
	if !slices.Contains(got["/tmp/x"], "make_reg") || !slices.Contains(got["/tmp/x"], "write_file") {
		t.Errorf("/tmp/x/*.txt (prefix /tmp/x): %v", got["/tmp/x"])
	}
	if !slices.Equal(got[exe], []string{"execute", "read_file"}) {
		t.Errorf("exact exec rule: %v", got[exe])
	}
	if interp := elfInterp(exe); interp != "" {
		if !slices.Equal(got[interp], []string{"execute", "read_file"}) {
			t.Errorf("the interpreter %s of an exec rule's target: %v", interp, got[interp])
		}
	}
	if len(denies) != 1 || !strings.HasPrefix(denies[0], "deny /usr/secret/**") {
		t.Errorf("deny rules: %q", denies)
	}
	if _, ok := got["/proc/self/status"]; !ok {
		t.Errorf("the worker's own /proc/self rule is missing")
	}
	host, _ := landlockPaths(p, "", true)
	for _, pa := range host {
		if strings.HasPrefix(pa.Path, "/proc/self") {
			t.Errorf("host ruleset has %s: the host's /proc/self is not the worker's", pa.Path)
		}
		if pa.Path == "/tmp/x" && !pa.OrAncestor {
			t.Errorf("a create rule of the host does not fall back to an existing ancestor")
		}
	}
	// The worker's program gets its interpreter when it may be executed.
	p2 := parse(t, "allow exec /usr/bin/*\n")
	if t2 := resolveTarget("true", []string{"PATH=/usr/bin:/bin"}, ""); t2 != "" {
		if interp := elfInterp(t2); interp != "" {
			w, _ := landlockPaths(p2, t2, false)
			if !slices.ContainsFunc(w, func(pa llPath) bool { return pa.Path == interp }) {
				t.Errorf("the interpreter %s of the target %s is missing: %+v", interp, t2, w)
			}
		}
	}
}

func TestWorkerEnv(t *testing.T) {
	host := []string{"PATH=/bin", "HOME=/root", "LD_PRELOAD=/evil.so", "LC_ALL=C", "FOO=1", "DISPLAY=:0"}
	for _, c := range []struct {
		text string
		want []string
	}{
		{"", []string{"HOME=/root", "LC_ALL=C", "PATH=/bin"}},
		{"env clear", []string{}},
		{"env clear\nenv pass FOO MISSING\nenv set A=b", []string{"A=b", "FOO=1"}},
		{"env pass DISPLAY\nenv set PATH=/usr/bin", []string{"DISPLAY=:0", "HOME=/root", "LC_ALL=C", "PATH=/usr/bin"}},
	} {
		if got := workerEnv(parse(t, c.text).Env(), host); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.text, got, c.want)
		}
	}
}

func TestReportDowngrades(t *testing.T) {
	pl := &plan{spec: sandbox.Spec{WaitKillableRecv: true, Landlock: &sandbox.Landlock{}}}
	pl.ns.skipped = []NamespaceSkip{{"pid", "no"}}
	pl.notif.SyncWakeup = errors.New("no")
	st := stageReport{Landlock: sandbox.LandlockResult{ABI: 3, Enforced: true, DroppedNet: 3, DroppedScoped: 3, DroppedFS: llResolveUnix}}
	st.Capabilities.Bounding = 1
	r := pl.report(st, 1, nil)
	var layers []string
	for _, d := range r.Downgrades {
		layers = append(layers, d.Layer+":"+d.Wanted)
	}
	for _, want := range []string{"landlock:TCP rules bind_tcp,connect_tcp", "landlock:scopes abstract_unix_socket,signal",
		"landlock:resolve_unix (no connect to pathname UNIX sockets)", "namespaces:pid", "seccomp:SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
		"broker:SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP", "capabilities:empty bounding set"} {
		if !slices.Contains(layers, want) {
			t.Errorf("downgrade %q missing from %q", want, layers)
		}
	}
	r = (&plan{spec: sandbox.Spec{Landlock: &sandbox.Landlock{}}}).report(stageReport{}, 1, nil)
	if len(r.Downgrades) == 0 || r.Downgrades[0].Layer != "landlock" || r.Downgrades[0].Got != "none" {
		t.Errorf("no Landlock: %+v", r.Downgrades)
	}
}

func TestProbeFeatures(t *testing.T) {
	f := ProbeFeatures()
	seen := map[string]bool{}
	for _, x := range f.Features {
		if seen[x.Name] {
			t.Errorf("feature %s twice", x.Name)
		}
		seen[x.Name] = true
		if x.Why == "" || x.Linux == "" || x.Layer == "" {
			t.Errorf("feature %+v lacks a reason, a release or a layer", x)
		}
	}
	for _, name := range policy.KnownFeatures() {
		if _, ok := f.Get(name); !ok {
			t.Errorf("require names %s, features does not report it", name)
		}
	}
	if l, _ := f.Get("landlock"); l.Available != (f.Landlock.ABI > 0) {
		t.Errorf("landlock available %v with ABI %d", l.Available, f.Landlock.ABI)
	}
}

// A Cmd with ConfineHost in an unconfined process confines it in place
// with Landlock ABI 8, and refuses to start the worker before.
func TestCmdConfineHost(t *testing.T) {
	if !testutil.RunInSubprocess(t) {
		return
	}
	p := parse(t, "allow read,exec /usr/** /lib/** /lib64/** /bin/**\nallow read /etc/ld.so.cache\n")
	c := Command(p, "/bin/true")
	c.ConfineHost = true
	err := c.Run()
	abi := sandbox.LandlockABI()
	switch {
	case abi == 0:
		if err != nil {
			t.Fatalf("without Landlock: %v", err)
		}
		if r := c.Report(); r.Host.Confined || len(r.Downgrades) == 0 {
			t.Errorf("without Landlock the report claims %+v", r.Host)
		}
	case abi < 8:
		var le *Error
		if !errors.As(err, &le) || le.Op != "confine host" || !errors.Is(err, sys.ErrNotSupported) {
			t.Fatalf("ConfineHost on Landlock ABI %d: %v; want an *Error wrapping ErrNotSupported", abi, err)
		}
	default:
		if err != nil {
			t.Fatal(err)
		}
		if h := c.Report().Host; !h.Confined || h.Method != "tsync" || h.Dumpable {
			t.Errorf("host: %+v", h)
		}
	}
	if _, err := os.Stat("/"); err != nil {
		t.Fatal(err)
	}
}

func TestGrantPaths(t *testing.T) {
	exe := testutil.Executable()
	paths := grantPaths([]policy.Grant{{Pattern: "/srv/doc/*.pdf", Rights: policy.Read}, {Pattern: exe, Rights: policy.Exec}, {Pattern: "/x", Rights: policy.Stat}}, false)
	if len(paths) == 0 || paths[0].Path != "/srv/doc" || paths[0].Source != "grant:1" {
		t.Fatalf("grant paths: %+v", paths)
	}
	if !slices.ContainsFunc(paths, func(p llPath) bool { return p.Path == exe && p.Source == "grant:2" }) {
		t.Errorf("exec grant missing: %+v", paths)
	}
	if slices.ContainsFunc(paths, func(p llPath) bool { return p.Path == "/x" }) {
		t.Errorf("a stat grant became a Landlock rule")
	}
}

// TestStartFailureLeavesNoStage checks a cold Start that fails after its
// init stage was forked (Start forks it before building the plan): the
// plan's error comes back, and neither a process nor a registry entry is
// left behind. Likewise when the stage itself cannot start.
func TestStartFailureLeavesNoStage(t *testing.T) {
	for _, c := range []struct {
		name, policy, dir, want string
	}{
		{"plan", "require landlock>=99\nallow read,exec /\n", "", "landlock>=99"},
		{"spawn", "allow read,exec /\n", "/nonexistent-dir", "nonexistent-dir"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := Command(parse(t, c.policy), "/bin/true")
			cmd.Dir = c.dir
			err := cmd.Start()
			if err == nil {
				cmd.Wait()
				t.Fatalf("Start succeeded; want an error naming %s", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Start: %v; want it to name %s", err, c.want)
			}
			if kids := children(os.Getpid()); len(kids) != 0 {
				t.Errorf("children left after the failed Start: %v", kids)
			}
			registryMu.Lock()
			n := len(registry)
			registryMu.Unlock()
			if n != 0 {
				t.Errorf("%d registered workers left after the failed Start", n)
			}
		})
	}
}
