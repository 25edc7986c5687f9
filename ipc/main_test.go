//go:build linux

package ipc_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/ipc"
)

// Message types of the helper protocol.
const (
	typeEcho     uint16 = iota + 1 // reply with the same type, payload and files
	typeReadFile                   // reply typeContent with the contents of Files[0]
	typeContent                    // a reply of typeReadFile
	typeCrash                      // the worker kills itself with SIGKILL
)

func TestMain(m *testing.M) {
	testutil.Register("ipc-worker", helperWorker)
	testutil.Main(m)
}

// helperWorker serves the helper protocol on the channel it finds with
// ipc.FromEnv, until end-of-file.
func helperWorker(args []string) int {
	c, err := ipc.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer c.Close()
	for {
		m, err := c.Recv()
		if err == io.EOF {
			return 0
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		switch m.Type {
		case typeEcho:
			err = c.Send(m.Type, m.Payload, m.Files...)
		case typeReadFile:
			var b []byte
			if len(m.Files) != 1 {
				err = fmt.Errorf("read-file: %d files", len(m.Files))
				break
			}
			if b, err = io.ReadAll(m.Files[0]); err == nil {
				err = c.Send(typeContent, bytes.ToUpper(b))
			}
		case typeCrash:
			unix.Kill(os.Getpid(), unix.SIGKILL)
			select {}
		default:
			err = fmt.Errorf("unknown message type %d", m.Type)
		}
		m.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}
