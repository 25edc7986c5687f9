//go:build linux

// Command thumbnailer makes PNG thumbnails of untrusted image files in
// sandboxed workers.
//
//	thumbnailer [-size 128] [-workers N] [-timeout 20s] -out DIR FILE...
//	thumbnailer -probe PATH
//
// It is one binary with two roles. The host opens every input itself,
// starts a worker (this binary again, under worker.policy, from a
// launcher.Pool of ready sandboxes), passes the open file over an ipc channel and
// writes DIR/<name>.png from the bytes the worker sends back. The worker
// can open no file beyond what its runtime needs: it decodes PNG, JPEG or
// GIF with the standard decoders, scales and encodes. A hostile input
// can only fail or kill its own worker; the host reports the file as
// failed and goes on. The exit status is 1 if any file failed.
//
// -probe PATH starts one worker that tries to open PATH and prints what
// happened, to show what the sandbox allows.
package main

import (
	"os"

	"github.com/seed-025014a4/sandbox-exec/launcher"
)

func main() {
	launcher.Init() // first: returns at once unless this process is an init stage
	if isWorker() {
		os.Exit(workerMain(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
