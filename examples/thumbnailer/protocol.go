//go:build linux

package main

import "os"

// The worker's role and its end of the channel are set by the policy
// (worker.policy: env set THUMBNAILER_ROLE=worker SANDBOX_EXEC_IPC_FD=3),
// so nothing the host's environment holds can make a process a worker.
const (
	roleEnv    = "THUMBNAILER_ROLE"
	roleWorker = "worker"
)

func isWorker() bool { return os.Getenv(roleEnv) == roleWorker }

// Message types on the host↔worker channel (ipc.Conn).
//
//	host → worker  msgJob    JSON job, Files[0] = the input, opened read-only by the host
//	worker → host  msgChunk  raw PNG bytes, in order (a PNG may exceed ipc.MaxPayload)
//	worker → host  msgDone   JSON result: the thumbnail is complete
//	worker → host  msgFail   JSON failure: the input was rejected or could not be decoded
//	worker → host  msgProbe  JSON probeResult (worker started with -probe PATH)
//
// A worker handles one job and exits.
const (
	msgJob uint16 = iota + 1
	msgChunk
	msgDone
	msgFail
	msgProbe
)

type job struct {
	Size      int   `json:"size"`       // longer side of the thumbnail, pixels
	MaxPixels int64 `json:"max_pixels"` // largest width*height the worker decodes
	MaxBytes  int64 `json:"max_bytes"`  // largest input it reads
}

type result struct {
	Format    string `json:"format"` // "png", "jpeg", "gif"
	SrcWidth  int    `json:"src_width"`
	SrcHeight int    `json:"src_height"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Bytes     int    `json:"bytes"` // total of the chunks
}

type failure struct {
	Msg string `json:"msg"`
}

type probeResult struct {
	Path  string `json:"path"`
	Errno string `json:"errno"` // "" when the open succeeded, else e.g. "EACCES"
	Msg   string `json:"msg"`
}
