//go:build linux

package launcher

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
)

// credentialFixture makes a directory the policy lets the worker read,
// reachable by uid 65534, with a file everyone may read ("open") and a
// root-owned 0600 file ("secret"). It returns the directory and the policy.
func credentialFixture(t *testing.T) (string, string) {
	t.Helper()
	dir := testutil.UnprivilegedTempDir(t)
	if err := os.WriteFile(dir+"/open", []byte("OPEN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/secret", []byte("SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir+"/secret", 0, 0); err != nil {
		t.Fatal(err)
	}
	return dir, poolPolicy + "allow read " + dir + "/**\n"
}

// idScript prints the ids the worker runs with, then reads both files.
const idScript = `id -u; id -g; id -G; cat "$1/open"; cat "$1/secret"`

// TestCredential: a worker started with Credential 65534:65534 runs as
// that user with no supplementary group, the report says so, and the
// broker opens files as that user (R39): a root-owned 0600 file the policy
// allows is refused with EACCES, while the same command without Credential
// reads it.
func TestCredential(t *testing.T) {
	testutil.RequireRoot(t)
	cred := testutil.UnprivilegedCredential(t)
	if cred.NoSetGroups {
		t.Skip("setgroups is denied in this user namespace")
	}
	dir, text := credentialFixture(t)
	for _, c := range []struct {
		name string
		ns   string
	}{
		{"plain", ""},
		// The stage switches inside its user namespace, which must map
		// the worker's ids to themselves.
		{"userns", "namespaces user pid\nrequire userns\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := parse(t, text+c.ns)
			cmd := Command(p, "/bin/sh", "-c", idScript, "sh", dir)
			cmd.Credential = &syscall.Credential{Uid: testutil.Nobody, Gid: testutil.Nobody}
			var events []Event
			var mu sync.Mutex
			cmd.Audit = func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			var le *Error
			if c.ns != "" && errors.As(err, &le) && strings.Contains(err.Error(), "userns") {
				t.Skipf("no user namespaces: %v", err)
			}
			if err == nil {
				t.Errorf("the shell's last cat succeeded; stderr %q", errb.String())
			}
			if want := "65534\n65534\n65534\nOPEN\n"; out.String() != want {
				t.Errorf("stdout %q, want %q (ids 65534, no other group, the open file only); stderr %q", out.String(), want, errb.String())
			}
			if !strings.Contains(errb.String(), "Permission denied") {
				t.Errorf("stderr %q: want cat's Permission denied on the 0600 root file", errb.String())
			}
			// The policy allowed it: the kernel refused, checking as 65534.
			refused := false
			for _, e := range events {
				refused = refused || e.Path == dir+"/secret" && e.Allowed && e.Errno == int(syscall.EACCES)
			}
			if !refused {
				t.Errorf("no audit event shows %s allowed by the policy and refused with EACCES: %+v", dir+"/secret", events)
			}
			if c.ns != "" && !slices.Contains(cmd.Report().Namespaces.Applied, "user") {
				t.Errorf("namespaces applied %v: want a user namespace", cmd.Report().Namespaces.Applied)
			}
			u := cmd.Report().User
			if u.Uid != testutil.Nobody || u.Gid != testutil.Nobody || len(u.Groups) != 0 {
				t.Errorf("report user %+v, want uid and gid 65534 without groups", u)
			}
			// The switch kept what the capability drop needs: every set
			// is empty, the bounding set included (CAP_SETPCAP).
			if c := cmd.Report().Capabilities; c != (CapabilitiesReport{"0x0", "0x0", "0x0", "0x0", "0x0"}) {
				t.Errorf("capabilities after the switch: %+v, want all empty", c)
			}
		})
	}

	// Control: the host's user (root) reads the secret through the same
	// policy, so the refusal above came from the credential.
	cmd := Command(parse(t, text), "/bin/sh", "-c", `id -u; cat "$1/secret"`, "sh", dir)
	out, err := cmd.Output()
	if err != nil || string(out) != "0\nSECRET\n" {
		t.Errorf("without Credential: %q, %v; want uid 0 reading the secret", out, err)
	}
	if u := cmd.Report().User; u.Uid != 0 || u.Gid != 0 {
		t.Errorf("report user without Credential: %+v, want 0:0", u)
	}
}

// TestCredentialGroups: supplementary groups reach the worker and the
// broker: a 0640 file of group 4242 is readable by 65534 in that group
// only.
func TestCredentialGroups(t *testing.T) {
	testutil.RequireRoot(t)
	if testutil.UnprivilegedCredential(t).NoSetGroups {
		t.Skip("setgroups is denied in this user namespace")
	}
	dir, text := credentialFixture(t)
	os.WriteFile(dir+"/grp", []byte("GRP\n"), 0o640)
	if err := os.Chown(dir+"/grp", 0, 4242); err != nil {
		t.Fatal(err)
	}
	for _, groups := range [][]uint32{{4242}, nil} {
		cmd := Command(parse(t, text), "/bin/sh", "-c", `id -G; cat "$1/grp"`, "sh", dir)
		cmd.Credential = &syscall.Credential{Uid: testutil.Nobody, Gid: testutil.Nobody, Groups: groups}
		out, _ := cmd.Output()
		want := "65534\n"
		if groups != nil {
			want = "65534 4242\nGRP\n"
		}
		if string(out) != want {
			t.Errorf("groups %v: %q, want %q", groups, out, want)
		}
		wantGroups := []int{}
		if groups != nil {
			wantGroups = []int{4242}
		}
		if got := cmd.Report().User.Groups; !slices.Equal(got, wantGroups) {
			t.Errorf("groups %v: report groups %v, want %v", groups, got, wantGroups)
		}
	}
}

// TestCredentialPool: a pool's stages switch to PoolOptions.Credential;
// its commands inherit it, and one asking for another user is refused
// before a stage is spent.
func TestCredentialPool(t *testing.T) {
	testutil.RequireRoot(t)
	if testutil.UnprivilegedCredential(t).NoSetGroups {
		t.Skip("setgroups is denied in this user namespace")
	}
	dir, text := credentialFixture(t)
	pool, err := NewPool(parse(t, text), PoolOptions{Size: 1, Programs: []string{"/bin/sh"},
		Credential: &syscall.Credential{Uid: testutil.Nobody, Gid: testutil.Nobody}})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for range 2 {
		c := pool.Command("/bin/sh", "-c", idScript, "sh", dir)
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		c.Run()
		if want := "65534\n65534\n65534\nOPEN\n"; out.String() != want || !strings.Contains(errb.String(), "Permission denied") {
			t.Errorf("pooled worker: stdout %q stderr %q, want ids 65534 and the secret refused", out.String(), errb.String())
		}
		if u := c.Report().User; u.Uid != testutil.Nobody || u.Gid != testutil.Nobody {
			t.Errorf("pooled report user %+v", u)
		}
	}
	before := pool.Stats()
	for _, cr := range []*syscall.Credential{nil, {Uid: 1000, Gid: 1000}, {Uid: testutil.Nobody, Gid: testutil.Nobody, Groups: []uint32{4242}}} {
		c := pool.Command("/bin/true")
		c.Credential = cr
		err := c.Start()
		var le *Error
		if !errors.As(err, &le) || le.Op != "credential" || !strings.Contains(err.Error(), "PoolOptions.Credential") {
			t.Errorf("pooled command with Credential %+v: %v, want a credential *Error naming PoolOptions.Credential", cr, err)
			if err == nil {
				c.Wait()
			}
		}
	}
	if st := pool.Stats(); st.Taken+st.Cold != before.Taken+before.Cold {
		t.Errorf("refused commands used stages: %+v, before %+v", st, before)
	}
}

// TestCredentialUnprivileged: a host that is not root (uid 65534, no
// capabilities) asking for a Credential fails with a clear *Error before
// anything is started, in Start and in NewPool.
func TestCredentialUnprivileged(t *testing.T) {
	cred := testutil.UnprivilegedCredential(t)
	if !testutil.RunInSubprocess(t) {
		return
	}
	if cred != nil {
		// The subprocess drops to 65534 for good, every thread.
		if !cred.NoSetGroups {
			if err := syscall.Setgroups(nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := syscall.Setresgid(int(cred.Gid), int(cred.Gid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setresuid(int(cred.Uid), int(cred.Uid), int(cred.Uid)); err != nil {
			t.Fatal(err)
		}
	}
	p := parse(t, poolPolicy)
	want := &syscall.Credential{Uid: 0, Gid: 0}
	cmd := Command(p, "/bin/true")
	cmd.Credential = want
	err := cmd.Start()
	var le *Error
	if !errors.As(err, &le) || le.Op != "credential" || !strings.Contains(err.Error(), "CAP_SETUID") {
		t.Fatalf("Start with Credential as uid %d: %v, want a credential *Error naming CAP_SETUID", os.Getuid(), err)
	}
	if cmd.Process != nil {
		t.Errorf("a process was started: %d", cmd.Process.Pid)
	}
	t.Logf("as uid %d: %v", os.Getuid(), err)
	if _, err := NewPool(p, PoolOptions{Size: 1, Credential: want}); !errors.As(err, &le) || le.Op != "credential" {
		t.Errorf("NewPool with Credential as uid %d: %v, want a credential *Error", os.Getuid(), err)
	}
	// Without Credential the same host still runs workers.
	if err := Command(p, "/bin/true").Run(); err != nil {
		t.Errorf("without Credential: %v", err)
	}
}

// TestSameCredential: the pool's comparison of credentials.
func TestSameCredential(t *testing.T) {
	a := &syscall.Credential{Uid: 1, Gid: 2, Groups: []uint32{3, 4}}
	for _, c := range []struct {
		b    *syscall.Credential
		same bool
	}{
		{&syscall.Credential{Uid: 1, Gid: 2, Groups: []uint32{4, 3, 3}}, true},
		{&syscall.Credential{Uid: 1, Gid: 2, Groups: []uint32{3}}, false},
		{&syscall.Credential{Uid: 1, Gid: 9, Groups: []uint32{3, 4}}, false},
		{&syscall.Credential{Uid: 9, Gid: 2, Groups: []uint32{3, 4}}, false},
		{&syscall.Credential{Uid: 1, Gid: 2, NoSetGroups: true}, false},
		{nil, false},
	} {
		if got := sameCredential(a, c.b); got != c.same {
			t.Errorf("sameCredential(%+v, %+v) = %v", a, c.b, got)
		}
	}
	if !sameCredential(nil, nil) || !sameCredential(&syscall.Credential{NoSetGroups: true, Groups: []uint32{1}}, &syscall.Credential{NoSetGroups: true}) {
		t.Errorf("nil/nil or NoSetGroups pairs differ")
	}
	if c := cloneCredential(a); c == a || &c.Groups[0] == &a.Groups[0] || !sameCredential(a, c) {
		t.Errorf("cloneCredential shares or changes %+v", a)
	}
}
