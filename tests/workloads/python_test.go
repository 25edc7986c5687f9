//go:build linux

package workloads

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

// convertScript reads data.json and table.csv from its input directory,
// computes with the standard library and writes result.json and
// report.txt to its output directory. Arguments after the two directories
// are probes, "r:PATH" or "w:PATH": it tries to open each and prints the
// errno it got.
const convertScript = `import base64, collections, csv, datetime, decimal, hashlib, json, pathlib, re, statistics, sys, textwrap, zlib

def main(argv):
    src, dst = pathlib.Path(argv[1]), pathlib.Path(argv[2])
    data = json.loads((src / "data.json").read_text())
    with (src / "table.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    totals = collections.Counter()
    for r in rows:
        totals[r["kind"]] += decimal.Decimal(r["amount"])
    words = re.findall(r"[a-z]+", data["text"].lower())
    result = {
        "sum": sum(data["numbers"]),
        "mean": statistics.mean(data["numbers"]),
        "stdev": round(statistics.stdev(data["numbers"]), 6),
        "totals": {k: str(v) for k, v in sorted(totals.items())},
        "words": collections.Counter(words).most_common(3),
        "sha256": hashlib.sha256(data["text"].encode()).hexdigest(),
        "zlib": base64.b64encode(zlib.compress(data["text"].encode(), 9)).decode(),
        "date": datetime.date(2026, 11, 23).isoformat(),
    }
    (dst / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    (dst / "report.txt").write_text(textwrap.fill(" ".join(words), width=40) + "\n")
    print("rows", len(rows), "words", len(words), "sha256", result["sha256"][:16])
    probes = {}
    for p in argv[3:]:
        try:
            with open(p[2:], "w" if p.startswith("w:") else "r"):
                probes[p] = "opened"
        except OSError as e:
            probes[p] = e.errno
    if probes:
        print("probes", json.dumps(probes, sort_keys=True))

main(sys.argv)
`

// pythonInput writes the script and its input under T.
func pythonInput(t *testing.T, T string) (script, in string) {
	t.Helper()
	script = filepath.Join(T, "app", "convert.py")
	writeFile(t, script, convertScript, 0o644)
	in = filepath.Join(T, "in")
	writeFile(t, filepath.Join(in, "data.json"),
		`{"numbers": [3, 1, 4, 1, 5, 9, 2, 6], "text": "The sandbox lets the script read its input and write its output, and nothing else. The broker decides."}`, 0o644)
	writeFile(t, filepath.Join(in, "table.csv"), "kind,amount\nfruit,1.10\nbread,2.25\nfruit,0.40\ncheese,7.05\n", 0o644)
	return script, in
}

// pythonEnv is the environment python.policy gives the worker.
func pythonEnv() []string {
	return []string{"PATH=/usr/bin:/bin", "LANG=" + os.Getenv("LANG")}
}

func TestPython(t *testing.T) {
	requireProgram(t, python, "python3")
	T := t.TempDir()
	script, in := pythonInput(t, T)
	pol := policyFile(t, "python.policy")
	defines := func(out string) map[string]string {
		return map[string]string{"IN": in, "OUT": out, "SCRIPT": script}
	}
	mkOut := func(name string) string {
		out := filepath.Join(T, name)
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		return out
	}

	var native, sandbox []time.Duration
	for i := range 5 {
		nout, sout := mkOut("native-out"), mkOut("out")
		nr := run(t, runSpec{name: python, args: []string{"-I", script, in, nout}, env: pythonEnv()})
		if nr.code != 0 {
			t.Fatalf("native python: status %d\n%s", nr.code, nr.stderr)
		}
		sr := sandboxed(t, pol, defines(sout), "", runSpec{name: python, args: []string{"-I", script, in, sout}})
		if sr.code != 0 {
			t.Fatalf("sandboxed python: status %d\n%s", sr.code, sr.stderr)
		}
		native, sandbox = append(native, nr.took), append(sandbox, sr.took)
		if i > 0 {
			continue
		}
		// Output identical to native: stdout, stderr and both files.
		if sr.stdout != nr.stdout || sr.stderr != nr.stderr {
			t.Errorf("output differs:\nnative:    %q %q\nsandboxed: %q %q", nr.stdout, nr.stderr, sr.stdout, sr.stderr)
		}
		for _, name := range []string{"result.json", "report.txt"} {
			a, err1 := os.ReadFile(filepath.Join(nout, name))
			b, err2 := os.ReadFile(filepath.Join(sout, name))
			if err1 != nil || err2 != nil || string(a) != string(b) {
				t.Errorf("%s differs (%v, %v):\nnative:\n%s\nsandboxed:\n%s", name, err1, err2, a, b)
			}
		}
		t.Logf("python output: %s", strings.TrimSpace(sr.stdout))
	}
	logRatio(t, "python script", native, sandbox)

	// Forbidden paths: a private key, /etc/shadow, another user's file,
	// and writes outside the output directory. The script must see EACCES
	// and the audit log must show each denial.
	key := filepath.Join(T, "home", ".ssh", "id_rsa")
	writeFile(t, key, "not a key\n", 0o600)
	other := filepath.Join(T, "other", "secret.txt")
	writeFile(t, other, "someone else's\n", 0o600)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	evilIn, evilOut := filepath.Join(in, "evil.txt"), filepath.Join(T, "elsewhere.txt")
	probes := []string{"r:" + key, "r:/etc/shadow", "r:" + other, "w:" + evilIn, "w:" + evilOut}
	out := mkOut("probe-out")
	audit := filepath.Join(T, "audit.jsonl")
	sr := sandboxed(t, pol, defines(out), audit, runSpec{name: python, args: append([]string{"-I", script, in, out}, probes...)})
	if sr.code != 0 {
		t.Fatalf("sandboxed python with probes: status %d\n%s", sr.code, sr.stderr)
	}
	_, js, ok := strings.Cut(sr.stdout, "probes ")
	var got map[string]any
	if !ok || json.Unmarshal([]byte(js), &got) != nil {
		t.Fatalf("no probe report in %q", sr.stdout)
	}
	for _, p := range probes {
		if got[p] != float64(13) {
			t.Errorf("probe %s: got %v, want errno 13 (EACCES)", p, got[p])
		}
	}
	events := readAudit(t, audit)
	for _, p := range []string{key, "/etc/shadow", other, evilIn, evilOut} {
		requireDenied(t, events, p)
	}
	for _, p := range []string{evilIn, evilOut} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
	if bad := writesOutside(events, []string{out}); len(bad) > 0 {
		t.Errorf("allowed writes outside OUT: %q", bad)
	}
}
