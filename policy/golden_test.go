package policy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/errors/*.golden and the fuzz seed corpora")

// TestGoldenErrors parses each testdata/errors/*.policy and compares the
// error text with the .golden file next to it. Run with -update after
// changing messages, and read the diff.
func TestGoldenErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.policy")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := ParseFile(file, testDefs)
			if err == nil {
				t.Fatalf("%s parses without error", file)
			}
			checkParseError(t, err)
			// Messages name files with the OS's separator; goldens use /.
			got := filepath.ToSlash(err.Error()) + "\n"
			golden := strings.TrimSuffix(file, ".policy") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGoldenErrors -update)", err)
			}
			if got != string(want) {
				t.Errorf("error text of %s:\n%s\nwant (%s):\n%s", file, got, golden, want)
			}
		})
	}
}

// TestWriteFuzzCorpus writes the in-code seeds of FuzzParse and
// FuzzMatcher to testdata/fuzz when run with -update, so that the
// committed corpus and the seeds stay the same. Inputs the fuzzer found
// interesting may be added there by hand (from $(go env GOCACHE)/fuzz).
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	write := func(target string, i int, values ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n" + strings.Join(values, "\n") + "\n"
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range parseSeeds {
		write("FuzzParse", i, fmt.Sprintf("[]byte(%q)", s))
	}
	for i, s := range matcherSeeds {
		write("FuzzMatcher", i, fmt.Sprintf("[]byte(%q)", s.rules), fmt.Sprintf("[]byte(%q)", s.path), fmt.Sprintf("byte(%q)", rune(s.need)))
	}
}
