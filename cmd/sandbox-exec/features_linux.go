//go:build linux

package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/seed-025014a4/sandbox-exec/launcher"
)

// features prints what this kernel offers, layer by layer: each probe ran
// the real operation once.
func features(args []string) int {
	fs := flag.NewFlagSet("features", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sandbox-exec features [--json]")
	}
	if err := fs.Parse(args); err != nil {
		return exitFailure
	}
	if fs.NArg() > 0 {
		errorf("features: unexpected argument %q", fs.Arg(0))
		return exitFailure
	}
	f := launcher.ProbeFeatures()
	if *asJSON {
		if err := encodeJSON(os.Stdout, f); err != nil {
			errorf("features: %v", err)
			return exitFailure
		}
		return 0
	}
	printFeatures(os.Stdout, f)
	return 0
}

func printFeatures(w io.Writer, f *launcher.Features) {
	priv := "no"
	if f.Privileged {
		priv = "yes"
	}
	fmt.Fprintf(w, "kernel %s (%s), uid %d, CAP_SYS_ADMIN %s\n\n", f.Kernel, f.Arch, f.Uid, priv)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tFEATURE\tAVAILABLE\tLINUX\tWHY")
	for _, x := range f.Features {
		yes := "no"
		if x.Available {
			yes = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Layer, x.Name, yes, x.Linux, x.Why)
	}
	tw.Flush()
	none := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, " ")
	}
	fmt.Fprintf(w, "\nLandlock ABI %d (errata %#x) handles\n  file system: %s\n  network:     %s\n  scopes:      %s\n",
		f.Landlock.ABI, f.Landlock.Errata, none(f.Landlock.FS), none(f.Landlock.Net), none(f.Landlock.Scopes))
	if info, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(w, "\nthis binary: %s\n", buildNote(info))
	}
}

// buildNote says how this binary was built, as far as start time goes: a
// start runs three process images of it, and one linked with cgo (Go's
// default where a C compiler is installed) pays the dynamic loader and
// libc's start in each.
func buildNote(info *debug.BuildInfo) string {
	for _, s := range info.Settings {
		if s.Key != "CGO_ENABLED" {
			continue
		}
		if s.Value == "1" {
			return info.GoVersion + ", linked with cgo: every start runs the dynamic loader and libc's start in each of its three process images; build with CGO_ENABLED=0 to start faster"
		}
		return info.GoVersion + ", static (CGO_ENABLED=" + s.Value + ")"
	}
	return info.GoVersion
}
