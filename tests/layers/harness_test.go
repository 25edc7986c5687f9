//go:build linux

package layers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// fixture is the tree of security.md section 2: ro/ (f = "RO", bin/ok a
// real ELF program), empty rw/, and out/secret = "SECRET-OUT" under no
// rule.
type fixture struct {
	T string
}

func newFixture(t *testing.T, cred *syscall.Credential) *fixture {
	t.Helper()
	// bin/ok: an ELF program (a script would need its interpreter to be
	// executable too, which would allow running the interpreter itself).
	ok, err := os.ReadFile("/usr/bin/true")
	if err != nil {
		t.Skipf("no /usr/bin/true: %v", err)
	}
	return &fixture{T: testutil.NewFixture(t, testutil.FixtureOptions{
		Entries: []testutil.FixtureEntry{{Path: "ro/bin/ok", Mode: 0o755, Content: string(ok)}},
		Owner:   cred,
	})}
}

// base is a policy for this test binary as the worker: it may run itself
// and load its libraries, and gets the helper's environment variable.
func (f *fixture) base(extra string) string {
	return f.policyFor(testutil.Executable(), extra)
}

// policyFor is base for a copy of the test binary at worker.
func (f *fixture) policyFor(worker, extra string) string {
	return `version 1
allow read ` + f.T + `/ro/**
allow read,write,create ` + f.T + `/rw/**
allow read,write /dev/null
allow read /etc/ld.so.cache /lib/** /lib64/** /usr/lib/** /usr/lib64/**
allow exec ` + f.T + `/ro/bin/ok
allow read,exec ` + worker + `
allow read /proc/self/status
env pass ` + testutil.EnvHelper + `
` + extra
}

func mustParse(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("layers.policy", []byte(text), nil)
	if err != nil {
		t.Fatalf("policy: %v\n%s", err, text)
	}
	return p
}

// probeRun is what a run of the probe helper printed, one line per op.
type probeRun struct {
	lines  []string
	stderr string
	err    error
	report *launcher.Report
	events []launcher.Event
	pid    int
}

// line returns the output of op i, failing the test if there is none.
func (r probeRun) line(t *testing.T, i int) string {
	t.Helper()
	if i >= len(r.lines) {
		t.Fatalf("no output for op %d: %q (err %v, stderr %s)", i, r.lines, r.err, r.stderr)
	}
	return r.lines[i]
}

// ops joins operations with the ";" separator of the probe helper; each
// operation is one string of words.
func ops(list ...string) []string {
	words := make([][]string, len(list))
	for i, o := range list {
		words[i] = strings.Fields(o)
	}
	return testutil.JoinOps(words...)
}

// runProbes runs the probe helper under the policy text through the
// launcher library, with setup applied to the Cmd.
func runProbes(t *testing.T, text string, setup func(*launcher.Cmd), list ...string) probeRun {
	t.Helper()
	p := mustParse(t, text)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := launcher.CommandContext(ctx, p, testutil.Executable(), ops(list...)...)
	cmd.Env = append(os.Environ(), testutil.HelperEnv("probe"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var res probeRun
	events := testutil.NewSink[launcher.Event](4096)
	cmd.Audit = events.Add
	cmd.BeforeExec = func(r *launcher.Report) error {
		res.report = r
		return nil
	}
	if setup != nil {
		setup(cmd)
	}
	res.err = cmd.Run()
	if cmd.Process != nil {
		res.pid = cmd.Process.Pid
	}
	res.events = events.Drain()
	res.stderr = stderr.String()
	res.lines = testutil.Lines(stdout.String())
	return res
}

// cliResult is one run of the built command.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs sandbox-exec (bin) with args, as cred when not nil.
func cli(t *testing.T, bin string, cred *syscall.Credential, dir string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("sandbox-exec %v: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("sandbox-exec %v: timed out\nstderr: %s", args, r.stderr)
	}
	return r
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// shipped is the shipped system-runtime policy plus what the tests' system
// programs need.
func shipped(t *testing.T) string {
	abs, err := filepath.Abs("../../policies/system-runtime.policy")
	if err != nil {
		t.Fatal(err)
	}
	return "version 1\ninclude " + abs + "\nallow read /usr/bin/** /bin/** /usr/share/** /etc/hostname\nallow exec /usr/bin/* /bin/*\nallow read,write /dev/null\n"
}

// drain reads what the pty master has, for d.
func drain(m *os.File, d time.Duration) string {
	fd := int(m.Fd())
	unix.SetNonblock(fd, true)
	var b bytes.Buffer
	buf := make([]byte, 256)
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			b.Write(buf[:n])
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return b.String()
}

// statusField returns the value of key in a "status" probe line.
func statusField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// JSON schema: a validator for the subset the schemas in testdata use
// (type, properties, required, additionalProperties, items, enum,
// minimum, pattern, anyOf, $defs/$ref). It returns every violation, with
// its JSON path.

type schema = map[string]any

func loadSchema(t *testing.T, name string) schema {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func validateJSON(t *testing.T, schemaName string, doc []byte) {
	t.Helper()
	root := loadSchema(t, schemaName)
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("trailing data after the JSON document:\n%s", doc)
	}
	errs := validate(root, root, v, "$")
	for _, e := range errs {
		t.Errorf("%s: %s", schemaName, e)
	}
	if len(errs) > 0 {
		t.Logf("document:\n%s", doc)
	}
}

func validate(root, s schema, v any, path string) []string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		defs, _ := root["$defs"].(map[string]any)
		target, ok := defs[name].(map[string]any)
		if !ok {
			return []string{path + ": unknown $ref " + ref}
		}
		return validate(root, target, v, path)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		var all []string
		for _, alt := range alts {
			errs := validate(root, alt.(map[string]any), v, path)
			if len(errs) == 0 {
				return nil
			}
			all = append(all, errs...)
		}
		return []string{fmt.Sprintf("%s: matches no alternative of anyOf: %s", path, strings.Join(all, "; "))}
	}
	var errs []string
	if types, ok := s["type"]; ok && !typeMatches(types, v) {
		return []string{fmt.Sprintf("%s: %s is not of type %v", path, describe(v), types)}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", path, v, enum))
		}
	}
	if min, ok := s["minimum"].(float64); ok {
		if n, ok := v.(json.Number); ok {
			if f, _ := n.Float64(); f < min {
				errs = append(errs, fmt.Sprintf("%s: %v < minimum %v", path, v, min))
			}
		}
	}
	if pat, ok := s["pattern"].(string); ok {
		if str, ok := v.(string); ok && !regexp.MustCompile(pat).MatchString(str) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", path, str, pat))
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: missing required %q", path, r))
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if ap, ok := s["additionalProperties"].(bool); ok && !ap {
					errs = append(errs, fmt.Sprintf("%s: unexpected property %q", path, k))
				}
				continue
			}
			errs = append(errs, validate(root, ps, x[k], path+"."+k)...)
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				errs = append(errs, validate(root, items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func typeMatches(types any, v any) bool {
	var list []string
	switch t := types.(type) {
	case string:
		list = []string{t}
	case []any:
		for _, x := range t {
			list = append(list, x.(string))
		}
	}
	for _, want := range list {
		switch x := v.(type) {
		case nil:
			if want == "null" {
				return true
			}
		case bool:
			if want == "boolean" {
				return true
			}
		case string:
			if want == "string" {
				return true
			}
		case json.Number:
			if want == "number" {
				return true
			}
			if _, err := x.Int64(); err == nil && want == "integer" {
				return true
			}
		case []any:
			if want == "array" {
				return true
			}
		case map[string]any:
			if want == "object" {
				return true
			}
		}
	}
	return false
}

func describe(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		b = append(b[:60], "..."...)
	}
	return string(b)
}

// inSubprocess runs the calling test again in a fresh copy of the test
// binary (for effects that cannot be undone: filters, Landlock) with a
// fixture made by the parent. It returns the fixture in the child and nil
// in the parent, which only mirrors the child's result.
func inSubprocess(t *testing.T) *fixture {
	t.Helper()
	var dir string
	if !testutil.InSubprocess() {
		dir = newFixture(t, nil).T
	}
	if !testutil.RunInSubprocess(t, "LAYERS_FIXTURE="+dir) {
		return nil
	}
	return &fixture{T: os.Getenv("LAYERS_FIXTURE")}
}

// readReport reads and validates a --report file.
func readReport(t *testing.T, path string) launcher.Report {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	validateJSON(t, "report.schema.json", doc)
	var rep launcher.Report
	if err := json.Unmarshal(doc, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}
