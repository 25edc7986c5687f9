//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "sandbox-exec: only Linux is supported (seccomp user notification, Linux 5.14 or later)")
	os.Exit(125)
}
