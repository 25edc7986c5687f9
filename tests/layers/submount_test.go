//go:build linux

package layers

import (
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// R43: a mount below an allowed root is "beneath" it for the broker, for
// Landlock and for any path string, whatever it holds. With $T/out (under
// no rule) bind-mounted on $T/ro/mnt, listing $T/ro shows the mount point,
// listing the mount point shows out's entries, and the secret is served
// through the mount while its own path is still refused: the rule on
// $T/ro/** grants the mount. The report is where a user sees that: it lists
// the mount under the rule, with the directory mounted there.
func TestSubmounts(t *testing.T) {
	testutil.RequireRoot(t) // mounting needs CAP_SYS_ADMIN
	f := newFixture(t, nil)
	mnt := f.T + "/ro/mnt"
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(f.T+"/out", mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	r := runProbes(t, f.base(""), nil, "ls "+f.T+"/ro", "ls "+mnt, "open "+mnt+"/secret", "open "+f.T+"/out/secret")
	if r.err != nil {
		t.Fatalf("worker: %v\n%s", r.err, r.stderr)
	}
	want := []string{"ok bin,f,mnt", "ok secret", "ok 10", "EACCES"}
	if !slices.Equal(r.lines, want) {
		t.Errorf("ls ro, ls ro/mnt, open ro/mnt/secret, open out/secret: %q, want %q", r.lines, want)
	}
	var got []launcher.Submount
	for _, s := range r.report.Submounts {
		if s.Mount == mnt {
			got = append(got, s)
		}
	}
	if len(got) != 1 || got[0].Root != f.T+"/ro" || got[0].Rule != "layers.policy:2" || !strings.HasSuffix(got[0].FSRoot, "/out") || got[0].FSType == "" {
		t.Errorf("report: submounts %+v; want %s under the root %s (layers.policy:2), with the mounted directory .../out", r.report.Submounts, mnt, f.T+"/ro")
	}
	for _, s := range r.report.Submounts {
		if !strings.HasPrefix(s.Mount, s.Root+"/") && s.Root != "/" {
			t.Errorf("report: %s is not below its root %s", s.Mount, s.Root)
		}
	}
}
