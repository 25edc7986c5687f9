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
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

const learnSynopsis = `usage:
  sandbox-exec learn -o OUT.policy [-f BASE.policy] [-D NAME=VALUE]... [--threshold N] [--] CMD [ARG]...
  sandbox-exec learn --diff  -f POLICY [-D NAME=VALUE]... [--threshold N] [--] CMD [ARG]...
  sandbox-exec learn --check -f POLICY [-D NAME=VALUE]... [--] CMD [ARG]...
`

const learnUsage = learnSynopsis + `
Runs CMD with every file call allowed (allow read,write,create,exec /**; the
seccomp filter, limits, environment and network settings stay on) and
records each path the broker resolved and the rights it was used with.

  -o FILE         write a policy that allows what the run used: paths under
                  -D values, the current directory, $HOME and $TMPDIR written
                  with variables; rights per path the least the run used; a
                  directory with N or more used entries as DIR/**; grouped and
                  commented by top directory. With -f, FILE is BASE followed
                  by what the run used beyond it (several runs merge: pass
                  the previous output as -f).
  -f FILE         base policy: its env, net, limit, syscall and other settings
                  apply to the run, its rules count as already allowed, and
                  what it denies with a rule stays denied during the run and
                  is never added (a deny keeps a permissive run, as root
                  say, from writing where it must not).
  -D NAME=VALUE   define a variable for BASE, and write paths under VALUE as
                  ${NAME} (the policy then needs -D NAME=... when used).
  --threshold N   entries of a directory that make it DIR/** (default 8).
  --diff          print what the run would add to -f POLICY; write nothing.
  --check         exit 1 if the run used anything -f POLICY does not allow,
                  printing what (a drift check for CI). Lookups of missing
                  paths, uses that POLICY denies with a rule and other
                  processes' /proc entries are listed but do not fail it.
                  With --diff and --check the command may read anything but
                  write only where POLICY allows: other writes are refused
                  and reported.
  --audit FILE|-  also write the broker's decisions as JSON lines.

Lookups that found nothing (ENOENT) are kept in the policy, in a block of
their own per group, so the program sees "no such file" as it would outside
the sandbox rather than EACCES. Exit status: the command's (with --check,
1 on drift), 125 when sandbox-exec itself failed.
`

// learnFlags are the parsed options of "sandbox-exec learn".
type learnFlags struct {
	out       string
	base      string
	defines   listFlag
	threshold int
	diff      bool
	check     bool
	audit     string
	argv      []string
}

func parseLearnFlags(args []string) (*learnFlags, error) {
	fs := flag.NewFlagSet("sandbox-exec learn", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	lf := &learnFlags{}
	fs.StringVar(&lf.out, "o", "", "")
	fs.StringVar(&lf.base, "f", "", "")
	fs.Var(&lf.defines, "D", "")
	fs.IntVar(&lf.threshold, "threshold", 8, "")
	fs.BoolVar(&lf.diff, "diff", false, "")
	fs.BoolVar(&lf.check, "check", false, "")
	fs.StringVar(&lf.audit, "audit", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	lf.argv = fs.Args()
	modes := 0
	for _, on := range []bool{lf.out != "", lf.diff, lf.check} {
		if on {
			modes++
		}
	}
	switch {
	case len(lf.argv) == 0:
		return nil, errors.New("no command given")
	case modes == 0:
		return nil, errors.New("say what to do: -o FILE, --diff or --check")
	case modes > 1:
		return nil, errors.New("-o, --diff and --check exclude each other")
	case (lf.diff || lf.check) && lf.base == "":
		return nil, errors.New("--diff and --check compare with a policy: give it with -f")
	case lf.threshold < 2:
		return nil, fmt.Errorf("--threshold %d: want 2 or more", lf.threshold)
	}
	return lf, nil
}

// learn is "sandbox-exec learn".
func learn(args []string) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Print(learnUsage)
		return 0
	}
	lf, err := parseLearnFlags(args)
	if err != nil {
		errorf("learn: %v", err)
		fmt.Fprint(os.Stderr, learnSynopsis+"(sandbox-exec learn -h explains every option)\n")
		return exitFailure
	}
	defs := policy.Defines{}
	for _, d := range lf.defines {
		name, value, ok := strings.Cut(d, "=")
		if !ok || name == "" {
			errorf("learn: -D %q: want NAME=VALUE", d)
			return exitFailure
		}
		defs[name] = value
	}

	var baseText []byte
	var base *policy.Policy
	if lf.base != "" {
		if baseText, err = os.ReadFile(lf.base); err != nil {
			errorf("learn: %v", err)
			return exitFailure
		}
		if base, err = policy.Parse(lf.base, baseText, defs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitFailure
		}
	}
	lp, baseRules, err := learningPolicy(lf.base, baseText, base, defs, !lf.check && !lf.diff)
	if err != nil {
		errorf("learn: learning policy: %v", err)
		return exitFailure
	}

	rec := newRecorder()
	rec.baseRules = baseRules
	rec.deniedWrites = lf.check || lf.diff
	rec.addProgram(lf.argv[0])
	started := time.Now()
	status, ok := runLearning(lp, lf, rec)
	if !ok {
		return status
	}
	if status != 0 {
		errorf("learn: the command exited with status %d; what it used up to then is recorded", status)
	}

	cfg := learnConfig(lf.threshold, defs)
	var baseMatcher *policy.Matcher
	if base != nil {
		baseMatcher = base.Matcher()
	}
	res := generate(rec.l, baseMatcher, cfg)
	reportRefused(rec.l)

	switch {
	case lf.check:
		if drift := reportCheck(os.Stdout, lf.base, res, rec.l); drift {
			return 1
		}
		return status
	case lf.diff:
		var b strings.Builder
		writeAddition(&b, lf, cfg, res, rec.l, started, status, baseText)
		fmt.Print(b.String())
		return status
	}
	if err := writeLearned(lf, cfg, defs, res, rec.l, started, status, baseText); err != nil {
		errorf("learn: %v", err)
		return exitFailure
	}
	return status
}

// learningPolicy is the policy of a learning run: BASE (for its settings),
// then a rule that allows every file call, then BASE's rules once more so
// that what BASE denies stays denied. Devices need a rule without
// wildcards, so the common ones are allowed by name. Without writes (for
// --check and --diff) the rule allows reading and executing only: a run
// that only compares never writes where BASE does not allow it; what it
// tried is recorded from the denials.
//
// rules maps the position ("file:line", as in an audit event) of each rule
// repeated from BASE to its position in BASE.
func learningPolicy(name string, baseText []byte, base *policy.Policy, defs policy.Defines, writes bool) (p *policy.Policy, rules map[string]string, err error) {
	var b strings.Builder
	rules = map[string]string{}
	if base != nil {
		b.Write(baseText)
		if len(baseText) > 0 && baseText[len(baseText)-1] != '\n' {
			b.WriteByte('\n')
		}
	} else {
		name = "learning policy"
		b.WriteString("version 1\n")
	}
	if writes {
		b.WriteString("allow read,write,create,exec /**\n")
	} else {
		b.WriteString("allow read,exec /**\n")
	}
	devices := []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx"}
	for _, glob := range []string{"/dev/pts/*", "/dev/dri/*"} {
		m, _ := filepath.Glob(glob)
		devices = append(devices, m...)
	}
	for _, d := range devices {
		if st, err := os.Stat(d); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(&b, "allow read,write %s\n", quoteWord(escapeDollar(d)))
		}
	}
	if base != nil {
		// BASE's rules again, in order: its allows change nothing, its
		// denies still win (the run learns nothing they refuse, and a
		// deny keeps a permissive run away from what must not change),
		// and its exact device rules open its devices.
		for _, r := range base.Rules() {
			verb := "allow"
			if !r.Allow {
				verb = "deny"
			}
			rights := r.Rights.String() + " "
			if !r.Allow && r.Rights == policy.AllRights {
				rights = ""
			}
			line := strings.Count(b.String(), "\n") + 1
			rules[fmt.Sprintf("%s:%d", name, line)] = fmt.Sprintf("%s:%d", r.Pos.File, r.Pos.Line)
			fmt.Fprintf(&b, "%s %s%s\n", verb, rights, quoteWord(escapeDollar(r.Pattern)))
		}
	}
	p, err = policy.Parse(name, []byte(b.String()), defs)
	return p, rules, err
}

// runLearning runs the command under p, recording into rec. ok is false
// when sandbox-exec itself failed; status is then its exit status.
func runLearning(p *policy.Policy, lf *learnFlags, rec *recorder) (status int, ok bool) {
	if err := launcher.BecomeSubreaper(); err != nil {
		errorf("%v", err)
		return exitFailure, false
	}
	cmd := launcher.Command(p, lf.argv[0], lf.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Audit = rec.event
	if lf.audit != "" {
		w, c, err := openOutput(lf.audit)
		if err != nil {
			errorf("--audit: %v", err)
			return exitFailure, false
		}
		if c != nil {
			defer c.Close()
		}
		var mu sync.Mutex
		enc := json.NewEncoder(w)
		cmd.Audit = func(e launcher.Event) {
			rec.event(e)
			mu.Lock()
			enc.Encode(auditRecord(e))
			mu.Unlock()
		}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		errorf("%v", err)
		var le *launcher.Error
		if errors.As(err, &le) {
			switch {
			case le.NotFound():
				return exitNotFound, false
			case le.NotExecutable():
				return exitNotExecutable, false
			}
		}
		return exitFailure, false
	}
	go func() {
		for s := range sigs {
			cmd.Signal(s)
		}
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			errorf("%v", err)
			return exitFailure, false
		}
	}
	return exitStatus(cmd.ProcessState), true
}

// learnConfig collects the variables paths are written with: the -D
// values, then ${CWD}, ${HOME} and ${TMPDIR}, longest value first.
func learnConfig(threshold int, defs policy.Defines) genConfig {
	cfg := genConfig{threshold: threshold}
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		cfg.vars = append(cfg.vars, variable{name: name, value: defs[name],
			what: fmt.Sprintf("the directory given with -D %s (learned as %s)", name, defs[name])})
	}
	cwd, _ := os.Getwd()
	tmp := os.Getenv("TMPDIR")
	if tmp == "" {
		tmp = "/tmp"
	}
	home := os.Getenv("HOME")
	for _, v := range []variable{
		{name: "CWD", value: cwd, what: "the current directory (learned in " + cwd + ")"},
		{name: "HOME", value: home, what: "the home directory (learned as " + home + ")"},
		{name: "TMPDIR", value: tmp, what: "the temporary directory (learned as " + tmp + ")"},
	} {
		if _, given := defs[v.name]; !given {
			cfg.vars = append(cfg.vars, v)
		}
	}
	cfg.vars = slices.DeleteFunc(cfg.vars, func(v variable) bool {
		return v.value == "" || v.value == "/" || !filepath.IsAbs(v.value) || filepath.Clean(v.value) != v.value
	})
	slices.SortStableFunc(cfg.vars, func(a, b variable) int { return len(b.value) - len(a.value) })
	for _, k := range []string{home, tmp} {
		if filepath.IsAbs(k) {
			cfg.keep = append(cfg.keep, filepath.Clean(k))
		}
	}
	if filepath.IsAbs(home) {
		cfg.home = filepath.Clean(home)
	}
	return cfg
}

// commandLine is how the learn invocation is shown in comments.
func commandLine() string {
	words := make([]string, len(os.Args))
	for i, a := range os.Args {
		words[i] = shellQuote(a)
	}
	if len(words) > 0 {
		words[0] = "sandbox-exec"
	}
	s := strings.Join(words, " ")
	return strings.ReplaceAll(s, "\n", " ")
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_.,:+=@%^-", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeAddition writes the rules of res as a section to append to the
// base policy (or, without one, as the body of a new policy).
func writeAddition(b *strings.Builder, lf *learnFlags, cfg genConfig, res genResult, l *learned, started time.Time, status int, baseText []byte) {
	cwd, _ := os.Getwd()
	others := map[string]policy.Right{}
	for k, r := range l.others {
		if !strings.Contains(string(baseText), k) {
			others[k] = r
		}
	}
	if len(res.rules) == 0 && len(others) == 0 {
		fmt.Fprintf(b, "\n# sandbox-exec learn on %s from\n#   %s\n# in %s: nothing to add, the rules above allow everything the run used.\n",
			started.UTC().Format(time.RFC3339), commandLine(), cwd)
		return
	}
	fmt.Fprintf(b, "\n# ---- Added by sandbox-exec learn on %s from\n#   %s\n", started.UTC().Format(time.RFC3339), commandLine())
	fmt.Fprintf(b, "# in %s; the command exited with status %d. %d %s for what the run\n", cwd, status, len(res.rules), plural(len(res.rules), "rule", "rules"))
	fmt.Fprintf(b, "# used beyond the rules above (a directory with %d or more used entries is\n# allowed as DIR/**). Review them like the rest.\n", lf.threshold)
	cfg.writeRules(b, res.rules, others)
}

// writeLearned writes the learned policy to lf.out, after checking that it
// parses and allows everything the run needed.
func writeLearned(lf *learnFlags, cfg genConfig, defs policy.Defines, res genResult, l *learned, started time.Time, status int, baseText []byte) error {
	outAbs, err := filepath.Abs(lf.out)
	if err != nil {
		return err
	}
	var b strings.Builder
	if baseText != nil {
		baseAbs, err := filepath.Abs(lf.base)
		if err != nil {
			return err
		}
		b.WriteString(rebaseIncludes(string(baseText), filepath.Dir(baseAbs), filepath.Dir(outAbs)))
		if !strings.HasSuffix(b.String(), "\n") {
			b.WriteByte('\n')
		}
		writeAddition(&b, lf, cfg, res, l, started, status, baseText)
	} else {
		writeHeader(&b, lf, cfg, res, l, started, status)
		b.WriteString("\nversion 1\n")
		cfg.writeRules(&b, res.rules, l.others)
	}
	text := b.String()
	p, err := policy.Parse(outAbs, []byte(text), defs)
	if err != nil {
		return fmt.Errorf("the learned policy does not parse (a bug; nothing written):\n%v", err)
	}
	m := p.Matcher()
	for path, u := range res.need {
		if v := m.Decide(path, u.need()); !v.Allowed {
			return fmt.Errorf("the learned policy does not allow %s %s (a bug; nothing written)", u.need(), path)
		}
	}
	tmp := outAbs + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, outAbs); err != nil {
		os.Remove(tmp)
		return err
	}
	missing := 0
	for _, u := range res.need {
		if u.found == 0 {
			missing++
		}
	}
	errorf("learn: %d brokered calls, %d paths to allow (%d of them missing); wrote %d rules to %s",
		l.events, len(res.need), missing, len(res.rules), lf.out)
	for _, d := range res.denied {
		errorf("learn: not added: %s %s is used by the command but denied by %s", d.right, d.path, d.where)
	}
	for _, r := range res.rules {
		if cfg.secret(r.pattern) {
			errorf("learn: review %s: the command used a file that holds credentials (marked REVIEW in the policy)", r.pattern)
		}
	}
	return nil
}

// writeHeader writes the header comment of a new learned policy.
func writeHeader(b *strings.Builder, lf *learnFlags, cfg genConfig, res genResult, l *learned, started time.Time, status int) {
	cwd, _ := os.Getwd()
	name := filepath.Base(lf.out)
	fmt.Fprintf(b, "# %s: learned by sandbox-exec learn; review before use.\n#\n", name)
	fmt.Fprintf(b, "# Learned on %s from\n#   %s\n", started.UTC().Format(time.RFC3339), commandLine())
	fmt.Fprintf(b, "# in %s as uid %d; the command exited with status %d.\n", cwd, os.Getuid(), status)
	fmt.Fprintf(b, "# %d brokered calls on %d paths, written as %d rules; a directory where\n", l.events, len(res.need), len(res.rules))
	fmt.Fprintf(b, "# the run used %d or more entries is allowed as DIR/** (--threshold).\n#\n", lf.threshold)
	b.WriteString("# It allows what one run touched, each path with the least rights it was\n")
	b.WriteString("# used with. Review it: narrow DIR/** rules, widen exact names to what the\n")
	b.WriteString("# program needs on every input, drop what it should never see. Merge more\n")
	fmt.Fprintf(b, "# runs with: sandbox-exec learn -f %s -o %s -- CMD...\n", name, name)
	var given []string
	for _, v := range cfg.vars {
		switch v.name {
		case "CWD", "HOME", "TMPDIR":
		default:
			given = append(given, "-D "+v.name+"=...")
		}
	}
	fmt.Fprintf(b, "# Run with: sandbox-exec -f %s %s-- %s\n", name, strings.Join(append(given, ""), " "), strings.Join(lf.argv, " "))
}

// includeLine is compiled on first use: only learn needs it, and every
// sandbox-exec start (and init-stage re-exec) would pay for it at init.
var includeLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\s*include\s+)([^\s'"#$]+)(\s*(#.*)?)$`) })

// rebaseIncludes rewrites relative include names of a policy moved from
// dir from to dir to, so that they name the same files.
func rebaseIncludes(text, from, to string) string {
	if from == to {
		return text
	}
	lines := strings.SplitAfter(text, "\n")
	for i, line := range lines {
		body := strings.TrimSuffix(line, "\n")
		m := includeLine().FindStringSubmatch(body)
		if m == nil || filepath.IsAbs(m[2]) {
			continue
		}
		abs := filepath.Join(from, m[2])
		lines[i] = m[1] + quoteWord(escapeDollar(abs)) + m[3] + strings.TrimPrefix(line, body)
	}
	return strings.Join(lines, "")
}

// reportRefused lists on stderr what the broker refused even while
// learning: those calls fail under any policy.
func reportRefused(l *learned) {
	if len(l.refused) == 0 {
		return
	}
	keys := make([]string, 0, len(l.refused))
	total := 0
	for k, n := range l.refused {
		keys = append(keys, k)
		total += n
	}
	slices.Sort(keys)
	errorf("learn: %d calls were refused even while learning (anonymous objects, FIFOs, sockets, devices without an exact rule); no policy rule can allow them:", total)
	for i, k := range keys {
		if i == 10 {
			fmt.Fprintf(os.Stderr, "  ... and %d more\n", len(keys)-10)
			break
		}
		fmt.Fprintf(os.Stderr, "  %s (%d×)\n", k, l.refused[k])
	}
}

// reportCheck prints what the policy does not allow and reports drift:
// anything used while it existed that the policy does not allow.
func reportCheck(w io.Writer, name string, res genResult, l *learned) (drift bool) {
	var found, missing []string
	paths := make([]string, 0, len(res.need))
	for p := range res.need {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		u := res.need[p]
		if u.found != 0 {
			found = append(found, fmt.Sprintf("  allow %s %s    # %s", written(u.found), quoteWord(escapeDollar(p)), strings.Join(u.syscalls, ",")))
		}
		if u.missing != 0 {
			missing = append(missing, fmt.Sprintf("  allow %s %s    # %s, missing", written(u.missing), quoteWord(escapeDollar(p)), strings.Join(u.syscalls, ",")))
		}
	}
	if len(found) > 0 {
		fmt.Fprintf(w, "%s does not allow %d %s the command used:\n%s\n", name, len(found), plural(len(found), "path", "paths"), strings.Join(found, "\n"))
	} else {
		fmt.Fprintf(w, "%s allows everything the command used.\n", name)
	}
	if len(missing) > 0 {
		fmt.Fprintf(w, "not counted: %d %s of missing paths %s does not allow (the command gets EACCES instead of ENOENT):\n%s\n",
			len(missing), plural(len(missing), "lookup", "lookups"), name, strings.Join(missing, "\n"))
	}
	if len(res.denied) > 0 {
		fmt.Fprintf(w, "not counted: %d %s denied by a rule of %s:\n", len(res.denied), plural(len(res.denied), "use", "uses"), name)
		for _, d := range res.denied {
			fmt.Fprintf(w, "  %s %s    # %s\n", written(d.right), quoteWord(escapeDollar(d.path)), d.where)
		}
	}
	if len(l.others) > 0 {
		keys := make([]string, 0, len(l.others))
		for k := range l.others {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "not counted: other processes' /proc entries (pids change between runs): %s\n", strings.Join(keys, " "))
	}
	return len(found) > 0
}
