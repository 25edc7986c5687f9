//go:build linux

package testutil

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// OpSeparator separates the operations on the command line of a helper
// that performs a list of operations, such as "open F rdonly ; stat F".
const OpSeparator = ";"

// SplitOps splits a helper's arguments into operations at OpSeparator,
// dropping empty ones.
func SplitOps(args []string) [][]string {
	var ops [][]string
	var op []string
	for _, a := range args {
		if a == OpSeparator {
			if len(op) > 0 {
				ops = append(ops, op)
			}
			op = nil
			continue
		}
		op = append(op, a)
	}
	if len(op) > 0 {
		ops = append(ops, op)
	}
	return ops
}

// ErrnoName names the errno err wraps ("EACCES"), "errnoN" for an errno
// without a name, or err's text when it wraps none: what a worker helper
// prints so tests compare errnos as words.
func ErrnoName(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return fmt.Sprintf("errno%d", int(e))
	}
	return err.Error()
}
