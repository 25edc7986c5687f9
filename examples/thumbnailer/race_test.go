//go:build linux && race

package main

// raceEnabled: the race detector's runtime needs far more memory than the
// worker's test limits allow.
const raceEnabled = true
