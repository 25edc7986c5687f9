//go:build linux && amd64

package escape

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
)

// FuzzResolve compares the broker's path resolution with a reference: for
// a random tree of directories, files and symlinks and random paths, what
// the worker gets from the broker must be what the kernel resolves (in the
// harness, as root) when the policy is applied to the final object. The
// policy is `allow read $D/allowed/**`; $D/denied/ is under no rule.
//
// The reference allows an open iff the kernel resolves the path to a
// regular file or directory whose canonical path is under $D/allowed.
// The broker must then return the same inode; for any other outcome it
// must fail (with the kernel's errno, or the denial errno EACCES).
func FuzzResolve(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		[]byte("\x03\x02\x05\x07\x01\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11"),
		[]byte("symlink..chain/../../denied/s"),
		[]byte{6, 6, 6, 6, 6, 6, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		[]byte{2, 14, 3, 15, 4, 16, 5, 17, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		fx := &fixture{T: t.TempDir()}
		D := fx.T
		for d := D; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
		for _, d := range []string{"allowed/d", "allowed/sub", "denied/d"} {
			os.MkdirAll(filepath.Join(D, d), 0o755)
		}
		os.WriteFile(D+"/allowed/f", []byte("F"), 0o644)
		os.WriteFile(D+"/allowed/d/g", []byte("G"), 0o644)
		os.WriteFile(D+"/denied/s", []byte("S"), 0o644)
		os.WriteFile(D+"/denied/d/g", []byte("G2"), 0o644)
		fx.secretIno = inoOf(t, D+"/denied/s")

		rd := &byteReader{b: data}
		places := []string{"allowed/l0", "allowed/l1", "allowed/d/l2", "denied/l3", "denied/d/l4", "allowed/sub/l5"}
		targets := []string{"f", "../f", "../denied/s", D + "/denied/s", D + "/allowed/f", "d", "..", "../..", "/etc/passwd",
			"/proc/self/root" + D + "/denied/s", "l1", "../allowed/l0", "/", D, "../denied", "../../allowed/d", "g", "l0",
			"../l1", D + "/denied/d/../../allowed/f", "/proc/self/cwd/f", "../../denied/d/g"}
		nlinks := int(rd.next() % 7)
		for range nlinks {
			place := places[int(rd.next())%len(places)]
			target := targets[int(rd.next())%len(targets)]
			os.Symlink(target, filepath.Join(D, place))
		}
		comps := []string{"allowed", "denied", "f", "d", "g", "s", "..", ".", "l0", "l1", "l2", "l3", "l4", "l5", "sub", ""}
		var paths []string
		for range 8 {
			if rd.done() {
				break
			}
			n := 1 + int(rd.next()%6)
			var parts []string
			for range n {
				parts = append(parts, comps[int(rd.next())%len(comps)])
			}
			p := strings.Join(parts, "/")
			if rd.next()%2 == 0 {
				p = D + "/" + p
			}
			if p == "" {
				p = "."
			}
			paths = append(paths, p)
		}
		if len(paths) == 0 {
			return
		}
		var list [][]string
		for _, p := range paths {
			list = append(list, op("ino", p, "rdonly"))
		}
		res := fx.run(t, run{policy: fx.p0Fuzz(), dir: D + "/allowed", args: ops(list...)})
		if res.err != nil || len(res.lines) != len(paths) {
			t.Fatalf("worker: %v %q\n%s", res.err, res.lines, res.stderr)
		}
		links := describeLinks(D, places)
		for i, p := range paths {
			ref, refIno := reference(D, p)
			got := res.lines[i]
			switch {
			case strings.HasPrefix(got, "ok "):
				if ref != "allow" || !strings.HasPrefix(got, "ok ino="+strconv.FormatUint(refIno, 10)+" ") {
					t.Errorf("ESCAPE or wrong object: %q gave %q; reference %s ino %d\nlinks: %s", p, got, ref, refIno, links)
				}
			case ref == "allow":
				t.Errorf("%q: broker %q; reference allows ino %d (the broker refuses what the policy allows)\nlinks: %s", p, got, refIno, links)
			case got != "EACCES" && got != ref:
				t.Errorf("%q: broker %q; reference %s (neither the kernel's errno nor the denial)\nlinks: %s", p, got, ref, links)
			}
		}
	})
}

func (f *fixture) p0Fuzz() string {
	return `version 1
allow read ` + f.T + `/allowed/**
allow read /etc/ld.so.cache /lib/** /lib64/** /usr/lib/** /usr/lib64/**
allow read,exec ` + testutil.Executable() + `
env pass ` + testutil.EnvHelper + `
`
}

// reference resolves p as the kernel does for a process with cwd
// $D/allowed and applies the policy to the final object.
func reference(D, p string) (string, uint64) {
	dfd, err := unix.Open(D+"/allowed", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "harness:" + err.Error(), 0
	}
	defer unix.Close(dfd)
	// /proc/self means the worker: the harness's own would be a
	// different process, so the reference takes /proc/self/root and cwd
	// as the worker's (root "/", cwd $D/allowed).
	p = strings.Replace(p, "/proc/self/cwd", D+"/allowed", 1)
	fd, err := unix.Openat(dfd, p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return testutil.ErrnoName(err), 0
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	canon, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	typ := st.Mode & unix.S_IFMT
	if (canon == D+"/allowed" || strings.HasPrefix(canon, D+"/allowed/")) && (typ == unix.S_IFREG || typ == unix.S_IFDIR) {
		return "allow", st.Ino
	}
	return "deny:" + canon, st.Ino
}

func describeLinks(D string, places []string) string {
	var b strings.Builder
	for _, p := range places {
		if t, err := os.Readlink(filepath.Join(D, p)); err == nil {
			fmt.Fprintf(&b, "%s -> %s; ", p, strings.ReplaceAll(t, D, "$D"))
		}
	}
	return b.String()
}

type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) next() byte {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *byteReader) done() bool { return r.i >= len(r.b) }
