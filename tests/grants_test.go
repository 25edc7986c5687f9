//go:build linux

package tests

import (
	"os"
	"strings"
	"testing"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// TestPerWorkerGrants starts two workers under one shared policy, each
// granted read on its own document only: each reads its own and is refused
// the other's, and the audit log names the grant as the deciding rule.
func TestPerWorkerGrants(t *testing.T) {
	f := newFixture(t)
	docs := []string{f.T + "/out/doc-a", f.T + "/out/doc-b"}
	for i, d := range docs {
		os.WriteFile(d, []byte{'A' + byte(i)}, 0o644)
	}
	text := f.p0("")
	for i, mine := range docs {
		other := docs[1-i]
		res := runOpsUnderGrants(t, text, []policy.Grant{{Pattern: mine, Rights: policy.Read}},
			ops(op("open", mine, "rdonly"), op("open", other, "rdonly"))...)
		if res.err != nil {
			t.Fatalf("worker %d: %v\n%s", i, res.err, res.stderr)
		}
		want := []string{`ok "` + string(rune('A'+i)) + `"`, "EACCES"}
		if strings.Join(res.lines, "|") != strings.Join(want, "|") {
			t.Errorf("worker %d: got %q, want %q", i, res.lines, want)
		}
		var byGrant bool
		for _, e := range res.events {
			if e.Path == mine && e.Allowed && e.Rule == "grant:1" {
				byGrant = true
			}
		}
		if !byGrant {
			t.Errorf("worker %d: no audit event shows grant:1 deciding %s", i, mine)
		}
	}
}
