//go:build linux

package testutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// EnvStrict, set to 1, makes [SkipIfNotSupported] fail instead of skip
// when a feature is reported missing on a kernel at least as new as the
// feature's minimum version: for machines whose kernels are known to have
// every feature.
const EnvStrict = "SANDBOX_EXEC_TEST_STRICT"

// SkipIfNotSupported skips the test when err wraps sys.ErrNotSupported,
// naming the feature and its minimum Linux version when err carries a
// *sys.UnsupportedFeatureError, and fails it on any other non-nil error.
// Call it right after the real operation:
//
//	l, err := sys.InstallFilter(prog, 0)
//	testutil.SkipIfNotSupported(t, err)
//
// With [EnvStrict]=1, a missing feature on a new enough kernel fails.
func SkipIfNotSupported(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if !errors.Is(err, sys.ErrNotSupported) {
		tb.Fatal(err)
	}
	var ufe *sys.UnsupportedFeatureError
	if !errors.As(err, &ufe) {
		tb.Skipf("not supported: %v", err)
	}
	running := kernelRelease()
	if os.Getenv(EnvStrict) == "1" && versionAtLeast(running, ufe.MinimumVersion) {
		tb.Fatalf("%s reported missing on Linux %s, which is at least %s (%s=1): %v", ufe.Name, running, ufe.MinimumVersion, EnvStrict, err)
	}
	tb.Skipf("%s not supported (requires Linux %s, running %s): %v", ufe.Name, ufe.MinimumVersion, running, err)
}

// kernelRelease returns the running kernel's release, such as "6.8.0-1-generic".
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// versionAtLeast reports whether the release has at least the
// major.minor version min. Unparsable input reports false.
func versionAtLeast(release, min string) bool {
	parse := func(s string) (int, int, bool) {
		s, _, _ = strings.Cut(s, "-")
		f := strings.SplitN(s, ".", 3)
		if len(f) < 2 {
			return 0, 0, false
		}
		major, err1 := strconv.Atoi(f[0])
		minor, err2 := strconv.Atoi(strings.TrimRightFunc(f[1], func(r rune) bool { return r < '0' || r > '9' }))
		return major, minor, err1 == nil && err2 == nil
	}
	rMaj, rMin, ok1 := parse(release)
	mMaj, mMin, ok2 := parse(min)
	if !ok1 || !ok2 {
		return false
	}
	return rMaj > mMaj || (rMaj == mMaj && rMin >= mMin)
}

// RequireRoot skips the test unless the effective uid is 0.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if uid := os.Geteuid(); uid != 0 {
		tb.Skipf("requires root (running as uid %d)", uid)
	}
}

// RequireNonRoot skips the test when the effective uid is 0. As root, run
// the unprivileged part in a child with [UnprivilegedCredential] instead.
func RequireNonRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		tb.Skip("requires a non-root user (running as root; see testutil.UnprivilegedCredential)")
	}
}

// Nobody is the uid and gid that [UnprivilegedCredential] switches to.
const Nobody = 65534

// UnprivilegedCredential returns the credential for exec.Cmd's
// SysProcAttr that runs a child without privileges: uid and gid 65534
// (nobody) without supplementary groups when the test runs as root, and nil
// (keep the current ids) when it already runs as a user without
// capabilities. It skips the test as a non-root user with effective
// capabilities, and as root in a user namespace that does not map 65534.
func UnprivilegedCredential(tb testing.TB) *syscall.Credential {
	tb.Helper()
	if os.Geteuid() != 0 {
		if caps, err := effectiveCaps(); err != nil || caps != 0 {
			tb.Skipf("not root, yet not unprivileged either: effective capabilities %#x (%v)", caps, err)
		}
		return nil
	}
	for _, f := range []string{"/proc/self/uid_map", "/proc/self/gid_map"} {
		if ok, err := idMapped(f, Nobody); err != nil || !ok {
			tb.Skipf("uid/gid %d is not mapped in this user namespace (%s, %v)", Nobody, f, err)
		}
	}
	cred := &syscall.Credential{Uid: Nobody, Gid: Nobody, Groups: []uint32{}}
	if b, err := os.ReadFile("/proc/self/setgroups"); err == nil && strings.TrimSpace(string(b)) == "deny" {
		cred.Groups, cred.NoSetGroups = nil, true
	}
	return cred
}

// effectiveCaps returns CapEff of /proc/self/status.
func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

// idMapped reports whether the id map file maps id.
func idMapped(file string, id uint32) (bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.ParseUint(f[0], 10, 32)
		length, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 == nil && err2 == nil && uint64(id) >= start && uint64(id)-start < length {
			return true, nil
		}
	}
	return false, nil
}

// UnprivilegedTempDir returns a new temporary directory (t.TempDir) that a
// child running with [UnprivilegedCredential] can use: owned by that uid
// and gid, with every ancestor the test created traversable. As a non-root
// user it is a plain t.TempDir.
func UnprivilegedTempDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	MakeAccessible(tb, dir, UnprivilegedCredential(tb))
	return dir
}

// MakeAccessible gives path to the uid and gid of cred (chown) and makes
// its ancestors below the temporary directory root traversable (o+x) so
// that a child running with cred reaches it. A nil cred does nothing.
// Ancestors outside os.TempDir() and /tmp are never changed; if one of
// them is not traversable the test fails.
func MakeAccessible(tb testing.TB, path string, cred *syscall.Credential) {
	tb.Helper()
	if cred == nil {
		return
	}
	path, err := filepath.Abs(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Lchown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		tb.Fatalf("make %s accessible: %v", path, err)
	}
	roots := []string{filepath.Clean(os.TempDir()), "/tmp"}
	below := func(p string) bool {
		for _, r := range roots {
			if strings.HasPrefix(p, r+"/") {
				return true
			}
		}
		return false
	}
	for dir := filepath.Dir(path); dir != "/"; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			tb.Fatalf("make %s accessible: %v", path, err)
		}
		if fi.Mode().Perm()&0o001 != 0 {
			continue
		}
		if !below(dir) {
			tb.Fatalf("make %s accessible: ancestor %s (mode %v) is not traversable by uid %d", path, dir, fi.Mode().Perm(), cred.Uid)
		}
		if err := os.Chmod(dir, fi.Mode().Perm()|0o111); err != nil {
			tb.Fatalf("make %s accessible: %v", path, err)
		}
	}
}

// UnprivilegedExecutable returns a copy of the test binary that a child
// running with [UnprivilegedCredential] can execute. go test builds the
// binary in a private (0700) directory, so helpers run as another uid
// need this copy; pass it where [Executable] would go.
func UnprivilegedExecutable(tb testing.TB) string {
	tb.Helper()
	cred := UnprivilegedCredential(tb)
	if cred == nil {
		return Executable()
	}
	dir := tb.TempDir()
	dst := filepath.Join(dir, filepath.Base(Executable()))
	if err := copyFile(dst, Executable(), 0o755); err != nil {
		tb.Fatalf("copy test binary: %v", err)
	}
	MakeAccessible(tb, dir, cred)
	return dst
}

func copyFile(dst, src string, perm os.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Chmod(perm)
}
