//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// Exit statuses of sandbox-exec's own failures (design.md section 5).
const (
	exitFailure       = 125
	exitNotExecutable = 126
	exitNotFound      = 127
)

func main() {
	launcher.Init()
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return check(args[1:])
		case "explain":
			return explain(args[1:])
		case "features":
			return features(args[1:])
		case "learn":
			return learn(args[1:])
		case "help", "-h", "-help", "--help":
			usage(os.Stdout)
			return 0
		}
	}
	return run(args)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  sandbox-exec [-f FILE]... [-p TEXT] [-D NAME=VALUE]... [options] [--] CMD [ARG]...
  sandbox-exec check FILE...
  sandbox-exec explain -f FILE [-D NAME=VALUE]... [-r RIGHT] PATH...
  sandbox-exec features [--json]

With neither -f nor -p the built-in default policy applies.

options:
  -f FILE            policy file (repeatable; later files add to earlier ones)
  -p TEXT            policy text (after the files)
  -D NAME=VALUE      define a policy variable (wins over define lines)
  --audit FILE|-     write one JSON line per brokered decision (- is stderr)
  --audit-denials    audit only denials
  --report FILE|-    write the layers enforced for the worker as JSON,
                     before it execs
  --metrics          print a latency summary of brokered calls at exit
  --user UID[:GID]   run the worker as this numeric uid and gid (GID
                     defaults to UID), without supplementary groups; the
                     broker checks permissions as that user; needs root
`)
}

func errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sandbox-exec: "+format+"\n", args...)
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// policyFlags are the flags that choose a policy, shared by run and explain.
type policyFlags struct {
	files   listFlag
	text    string
	defines listFlag
}

func (pf *policyFlags) register(fs *flag.FlagSet) {
	fs.Var(&pf.files, "f", "policy `FILE` (repeatable)")
	fs.StringVar(&pf.text, "p", "", "policy `TEXT`")
	fs.Var(&pf.defines, "D", "define `NAME=VALUE` (repeatable)")
}

func (pf *policyFlags) load() (*policy.Policy, error) {
	defs := policy.Defines{}
	for _, d := range pf.defines {
		name, value, ok := strings.Cut(d, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("-D %q: want NAME=VALUE", d)
		}
		defs[name] = value
	}
	switch {
	case len(pf.files) == 0 && pf.text == "":
		return policy.Default(defs)
	case len(pf.files) == 1 && pf.text == "":
		return policy.ParseFile(pf.files[0], defs)
	case len(pf.files) == 0:
		return policy.Parse("-p", []byte(pf.text), defs)
	}
	// Several sources: one policy that includes each file, then the text.
	var src strings.Builder
	for _, f := range pf.files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(abs, "'\n") {
			return nil, fmt.Errorf("-f %q: the path may not contain a quote or a newline", f)
		}
		fmt.Fprintf(&src, "include '%s'\n", abs)
	}
	src.WriteString(pf.text)
	return policy.Parse("command line", []byte(src.String()), defs)
}

func run(args []string) int {
	fs := flag.NewFlagSet("sandbox-exec", flag.ContinueOnError)
	fs.Usage = func() { usage(os.Stderr) }
	var pf policyFlags
	pf.register(fs)
	auditPath := fs.String("audit", "", "audit `FILE` (- for stderr)")
	auditDenials := fs.Bool("audit-denials", false, "audit denials only")
	reportPath := fs.String("report", "", "report `FILE` (- for stderr)")
	metrics := fs.Bool("metrics", false, "print latency metrics at exit")
	var user userFlag
	fs.Var(&user, "user", "run the worker as `UID[:GID]`")
	if err := fs.Parse(args); err != nil {
		return exitFailure
	}
	argv := fs.Args()
	if len(argv) == 0 {
		errorf("no command given; usage: sandbox-exec [-f FILE] [--] CMD [ARG]...")
		return exitFailure
	}
	p, err := pf.load()
	if err != nil {
		errorf("%v", err)
		return exitFailure
	}
	// This process serves one policy and touches nothing else: confine it
	// to what the policy grants (security.md R5). Before Landlock ABI 8
	// this re-executes sandbox-exec, which then gets here again.
	var writable []string
	for _, out := range []string{*auditPath, *reportPath} {
		if out != "" && out != "-" {
			writable = append(writable, out)
		}
	}
	if _, err := launcher.ConfineHost(launcher.HostConfig{Policies: []*policy.Policy{p}, Programs: argv[:1], Writable: writable}); err != nil {
		errorf("%v", err)
		return exitFailure
	}
	if err := launcher.BecomeSubreaper(); err != nil {
		errorf("%v", err)
		return exitFailure
	}
	cmd := launcher.Command(p, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ConfineHost = true
	cmd.Credential = user.cred

	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	if *auditPath != "" || *auditDenials {
		w, c, err := openOutput(*auditPath)
		if err != nil {
			errorf("--audit: %v", err)
			return exitFailure
		}
		if c != nil {
			closers = append(closers, c)
		}
		var mu sync.Mutex
		enc := json.NewEncoder(w)
		cmd.Audit = func(e launcherEvent) {
			mu.Lock()
			enc.Encode(auditRecord(e))
			mu.Unlock()
		}
		cmd.AuditDenialsOnly = *auditDenials
	}

	if *reportPath != "" {
		// Opened now, before the worker starts.
		w, c, err := openOutput(*reportPath)
		if err != nil {
			errorf("--report: %v", err)
			return exitFailure
		}
		if c != nil {
			closers = append(closers, c)
		}
		cmd.BeforeExec = func(r *launcher.Report) error { return encodeJSON(w, r) }
	}

	// Forward the signals a user sends to the worker (security.md R64).
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		errorf("%v", err)
		var le *launcher.Error
		if errors.As(err, &le) {
			switch {
			case le.NotFound():
				return exitNotFound
			case le.NotExecutable():
				return exitNotExecutable
			}
		}
		return exitFailure
	}
	go func() {
		for s := range sigs {
			cmd.Signal(s)
		}
	}()
	err = cmd.Wait()
	if *metrics {
		printMetrics(os.Stderr, cmd.Metrics())
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			errorf("%v", err)
			return exitFailure
		}
	}
	return exitStatus(cmd.ProcessState)
}

// userFlag is --user UID[:GID]: numeric ids only (names would need the
// user database, which the confined host cannot read), no supplementary
// groups.
type userFlag struct{ cred *syscall.Credential }

func (u *userFlag) String() string {
	if u == nil || u.cred == nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", u.cred.Uid, u.cred.Gid)
}

func (u *userFlag) Set(v string) error {
	uidText, gidText, hasGid := strings.Cut(v, ":")
	uid, err := parseID(uidText)
	if err != nil {
		return fmt.Errorf("uid %q: %w (want UID[:GID], numeric)", uidText, err)
	}
	gid := uid
	if hasGid {
		if gid, err = parseID(gidText); err != nil {
			return fmt.Errorf("gid %q: %w (want UID[:GID], numeric)", gidText, err)
		}
	}
	u.cred = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	return nil
}

// parseID parses a numeric uid or gid; -1 (4294967295) is no id.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, errors.New("not a numeric id")
	}
	return uint32(n), nil
}

// exitStatus is the worker's status, or 128+N when signal N killed it.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return exitFailure
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// openOutput opens FILE for writing, or stderr for "-" or "".
func openOutput(path string) (io.Writer, io.Closer, error) {
	if path == "" || path == "-" {
		return os.Stderr, nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
