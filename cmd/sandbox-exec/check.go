//go:build linux

package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// check parses and lints policy files and prints each normalised. Exit
// status: 0 clean, 1 warnings only, 125 errors.
func check(args []string) int {
	fs := flag.NewFlagSet("sandbox-exec check", flag.ContinueOnError)
	var defines listFlag
	fs.Var(&defines, "D", "define `NAME=VALUE` (repeatable)")
	quiet := fs.Bool("q", false, "do not print the normalised policy")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sandbox-exec check [-D NAME=VALUE]... [-q] FILE...")
	}
	if err := fs.Parse(args); err != nil {
		return exitFailure
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitFailure
	}
	pf := policyFlags{defines: defines}
	status := 0
	for _, file := range fs.Args() {
		pf.files = listFlag{file}
		p, err := pf.load()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = exitFailure
			continue
		}
		diags := p.Lint()
		for _, d := range diags {
			fmt.Fprintf(os.Stderr, "%s: warning: %s\n", d.Pos, d.Msg)
		}
		if len(diags) > 0 && status == 0 {
			status = 1
		}
		if !*quiet {
			if fs.NArg() > 1 {
				fmt.Printf("# %s\n", file)
			}
			fmt.Print(p.String())
		}
	}
	return status
}

// explain prints, for each path, the verdict and the rules that decided it.
func explain(args []string) int {
	fs := flag.NewFlagSet("sandbox-exec explain", flag.ContinueOnError)
	var pf policyFlags
	pf.register(fs)
	rights := fs.String("r", "read", "`RIGHT`s to ask for, comma-separated: read, write, create, exec, stat")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sandbox-exec explain [-f FILE]... [-p TEXT] [-D NAME=VALUE]... [-r RIGHT] PATH...")
	}
	if err := fs.Parse(args); err != nil {
		return exitFailure
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitFailure
	}
	need, err := policy.ParseRights(*rights)
	if err != nil {
		errorf("-r: %v", err)
		return exitFailure
	}
	p, err := pf.load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitFailure
	}
	m := p.Matcher()
	status := 0
	for _, path := range fs.Args() {
		t := m.Explain(path, need)
		fmt.Print(t.String())
		if !t.Verdict.Allowed {
			status = 1
		}
	}
	return status
}
