//go:build linux

package broker

// arm64 has no legacy path calls.
const haveLegacy = false

var legacy = map[string]uintptr{}
