//go:build linux && amd64

package escape

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// parseBounded runs policy.Parse (or ParseFile when file is set) with a
// deadline and turns a panic into a failure: hostile policies must give a
// clear error or a policy in bounded time, never a hang or a crash.
func parseBounded(t *testing.T, limit time.Duration, name string, src []byte, file string) (*policy.Policy, error, time.Duration) {
	t.Helper()
	type out struct {
		p     *policy.Policy
		err   error
		panic string
	}
	ch := make(chan out, 1)
	start := time.Now()
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- out{panic: fmt.Sprintf("%v\n%s", r, debug.Stack())}
			}
		}()
		var p *policy.Policy
		var err error
		if file != "" {
			p, err = policy.ParseFile(file, nil)
		} else {
			p, err = policy.Parse(name, src, nil)
		}
		ch <- out{p: p, err: err}
	}()
	select {
	case o := <-ch:
		if o.panic != "" {
			t.Fatalf("policy.Parse panicked: %s", o.panic)
		}
		return o.p, o.err, time.Since(start)
	case <-time.After(limit):
		t.Fatalf("policy.Parse did not return within %v (hang)", limit)
	}
	return nil, nil, 0
}

// TestHostilePolicies: a million rules, deeply nested includes, a 1 MiB
// line, binary garbage, NUL, include cycles.
func TestHostilePolicies(t *testing.T) {
	t.Run("million-rules", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("version 1\n")
		for i := range 1_000_000 {
			fmt.Fprintf(&b, "allow read /srv/r%d/**\n", i)
		}
		p, err, d := parseBounded(t, 60*time.Second, "big.policy", []byte(b.String()), "")
		t.Logf("%d bytes: %v in %v", b.Len(), err, d)
		if err != nil {
			if !strings.Contains(err.Error(), "big.policy") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		start := time.Now()
		for i := range 1000 {
			p.Matcher().Decide(fmt.Sprintf("/srv/r%d/x", i*997), policy.Read)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("1000 decisions over a million rules took %v", d)
		} else {
			t.Logf("1000 decisions: %v", d)
		}
	})

	t.Run("nested-includes", func(t *testing.T) {
		dir := t.TempDir()
		const depth = 200
		for i := range depth {
			body := "version 1\nallow read /srv/x" + fmt.Sprint(i) + "\n"
			if i+1 < depth {
				body += fmt.Sprintf("include p%d.policy\n", i+1)
			}
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%d.policy", i)), []byte(body), 0o644)
		}
		_, err, d := parseBounded(t, 10*time.Second, "", nil, filepath.Join(dir, "p0.policy"))
		t.Logf("%d nested includes: %v in %v", depth, err, d)
		if err == nil || !strings.Contains(err.Error(), ".policy:") {
			t.Errorf("want a positioned error for %d nested includes, got %v", depth, err)
		}
		// A cycle.
		os.WriteFile(filepath.Join(dir, "a.policy"), []byte("version 1\ninclude b.policy\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "b.policy"), []byte("version 1\ninclude a.policy\n"), 0o644)
		_, err, _ = parseBounded(t, 10*time.Second, "", nil, filepath.Join(dir, "a.policy"))
		if err == nil {
			t.Errorf("an include cycle parsed")
		}
		t.Logf("cycle: %v", err)
	})

	t.Run("long-line", func(t *testing.T) {
		for _, src := range []string{
			"version 1\nallow read /" + strings.Repeat("a", 1<<20) + "\n",
			"version 1\n# " + strings.Repeat("x", 1<<20) + "\nallow read /srv/**\n",
			"version 1\nallow read " + strings.Repeat("/a", 1<<19) + "\n",
			"version 1\nallow read /srv/" + strings.Repeat("*?", 1<<19) + "\n",
			"version 1\nenv set X=" + strings.Repeat("\"", 1<<20) + "\n",
		} {
			p, err, d := parseBounded(t, 10*time.Second, "long.policy", []byte(src), "")
			t.Logf("%d-byte line: err %v in %v", len(src), trunc(err), d)
			if err == nil && p != nil {
				start := time.Now()
				p.Matcher().Decide("/srv/"+strings.Repeat("ab", 1000), policy.Read)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("a decision against a 1 MiB pattern took %v", d)
				}
			} else if err != nil && !strings.Contains(err.Error(), "long.policy:") {
				t.Errorf("error without file:line: %v", trunc(err))
			}
		}
	})

	t.Run("garbage", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 200 {
			b := make([]byte, rng.IntN(4096))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			if i%2 == 0 {
				b = append([]byte("version 1\n"), b...)
			}
			_, err, _ := parseBounded(t, 5*time.Second, "garbage.policy", b, "")
			if err == nil {
				continue // random bytes that happen to be valid
			}
			if !strings.Contains(err.Error(), "garbage.policy") {
				t.Errorf("error without the file name: %v", trunc(err))
			}
		}
		for _, src := range []string{"version 1\nallow read /a\x00b\n", "version 1\nallow read /\xff\xfe\n", "\x00\x00\x00", "version 1\nallow read \\\n/x\n"} {
			_, err, _ := parseBounded(t, 5*time.Second, "bad.policy", []byte(src), "")
			if err == nil || !strings.Contains(err.Error(), "bad.policy:") {
				t.Errorf("%q: %v; want a file:line error", src, err)
			}
		}
	})

	t.Run("sandbox-exec-check", func(t *testing.T) {
		// The command on a policy file of binary garbage: status 125 or a
		// check failure, quickly, with a message.
		f := filepath.Join(t.TempDir(), "g.policy")
		b := make([]byte, 1<<16)
		for i := range b {
			b[i] = byte(i * 7)
		}
		os.WriteFile(f, b, 0o644)
		cmd := exec.Command(sandboxExec, "check", f)
		done := make(chan struct{})
		var out []byte
		go func() { out, _ = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatal("sandbox-exec check hung on a garbage policy")
		}
		if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(out), "g.policy") {
			t.Errorf("sandbox-exec check: status %d, %q", cmd.ProcessState.ExitCode(), trunc(fmt.Errorf("%s", out)))
		}
	})
}

func trunc(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// testC20: the loader rejects with file:line (C-20).
func testC20(t *testing.T) {
	for _, c := range []struct{ src, line string }{
		{"version 1\nallow read \"\"\n", ":2"},
		{"version 1\nallow read relative/path\n", ":2"},
		{"version 1\n\nallow read /a/../b\n", ":3"},
		{"version 1\nallow read ${NOPE}/x\n", ":2"},
		{"version 1\nallow read /a\x00/b\n", ":2"},
	} {
		_, err, _ := parseBounded(t, 5*time.Second, "c20.policy", []byte(c.src), "")
		if err == nil || !strings.Contains(err.Error(), "c20.policy"+c.line) {
			t.Errorf("%q: %v; want an error at c20.policy%s", c.src, err, c.line)
		}
	}
}
