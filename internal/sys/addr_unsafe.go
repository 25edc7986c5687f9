//go:build linux

package sys

// AddrOf returns the address of b's first byte in this process, for a
// process that tells another where to read it (the init stage's memory
// probe, security.md R6). b must not be empty, and must stay reachable
// (a package-level variable) for as long as the address is used.
func AddrOf(b []byte) uint64 { return uint64(addr(b)) }
