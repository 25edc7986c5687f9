// Package tests holds the end-to-end tests of sandbox-exec: the built
// command and the launcher library running real programs, with this test
// binary as the workload (see helpers_test.go).
package tests
