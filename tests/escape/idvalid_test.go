//go:build linux && amd64

package escape

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
)

// The two numbers of SECCOMP_IOCTL_NOTIF_ID_VALID: the kernel's first one
// had the wrong direction, _IOR('!', 2, __u64); 5.17 and later define
// _IOW('!', 2, __u64) and still accept the old one (security.md R27).
const (
	idValidNew = uint32(unix.SECCOMP_IOCTL_NOTIF_ID_VALID)
	idValidOld = uint32(0x80082102)
)

// TestIDValidFallback is N-03: on a kernel that rejects the new ID_VALID
// number with EINVAL, the broker must use the old one. This kernel accepts
// both, so a seccomp filter on the test process (inherited by the host's
// serving threads) plays the old kernel: ioctl(any fd, new number) fails
// with EINVAL. The broker checks every request with ID_VALID after reading
// the worker's memory and serves nothing whose check failed, so:
//
//  1. with only the new number failing, an allowed open returns the file
//     and a denied one EACCES: each request passed an ID_VALID, which only
//     the old number could give;
//  2. with the old number failing as well (a broker without the fallback
//     sees exactly this), no request is served: the worker gets no answer
//     until it is killed. This is what 1 would look like without the
//     fallback, and shows the test can fail.
//
// The broker keeps no counter of the fallback; 2 is the evidence that 1
// went through the old number.
func TestIDValidFallback(t *testing.T) {
	if !testutil.RunInSubprocess(t) {
		return
	}
	f := newFixture(t)
	T := f.T
	testutil.FailIoctl(t, idValidNew, unix.EINVAL)
	steps := []step{
		s(`ok "RO"`, "open", T+"/ro/f", "rdonly"),
		s("EACCES", "open", T+"/out/secret", "rdonly"),
		s("EACCES", "open", T+"/rw/s2", "rdonly"),
		s(`ok "RF"`, "open", T+"/rw/rf", "rdwr"),
		s("re:ok .*", "stat", T+"/ro/f"),
		s("EACCES", "stat", T+"/out/secret"),
	}
	res := f.run(t, run{policy: f.p0(""), args: stepOps(steps), timeout: 30 * time.Second})
	want(t, res, steps...)
	if t.Failed() {
		t.Fatalf("the broker did not serve with the new ID_VALID number failing EINVAL: no fallback to the old one (R27); stderr: %s", res.stderr)
	}

	testutil.FailIoctl(t, idValidOld, unix.EINVAL)
	start := time.Now()
	res = f.run(t, run{policy: f.p0(""), args: stepOps(steps[:1]), timeout: 3 * time.Second})
	if len(res.lines) != 0 || res.err == nil {
		t.Errorf("with both ID_VALID numbers failing the worker was served (%q, %v): the broker answers without a valid ID_VALID, so the first run proves nothing", res.lines, res.err)
	}
	t.Logf("both numbers failing: worker killed after %v (%v), as expected", time.Since(start).Round(time.Millisecond), res.err)
}

// testN03 runs TestIDValidFallback from the escape suite: it needs a
// process of its own (a seccomp filter cannot be removed), which a subtest
// of TestEscape cannot get without repeating the suite's main run.
func testN03(t *testing.T) {
	cmd := exec.Command(testutil.Executable(), "-test.run=^TestIDValidFallback$", "-test.v=true", "-test.count=1", "-test.timeout=5m")
	out, err := cmd.CombinedOutput()
	m := regexp.MustCompile(`(?m)^--- (PASS|FAIL|SKIP): TestIDValidFallback `).FindSubmatch(out)
	switch {
	case m == nil:
		t.Fatalf("TestIDValidFallback did not run (%v):\n%s", err, out)
	case string(m[1]) == "PASS" && err == nil:
		t.Logf("%s", lastLines(out, 3))
	case string(m[1]) == "SKIP":
		t.Skipf("TestIDValidFallback skipped:\n%s", lastLines(out, 5))
	default:
		t.Errorf("TestIDValidFallback: %s (%v):\n%s", m[1], err, out)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
