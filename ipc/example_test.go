//go:build linux

package ipc_test

import (
	"bytes"
	"fmt"

	"github.com/seed-025014a4/sandbox-exec/ipc"
)

func ExamplePair() {
	host, worker, err := ipc.Pair()
	if err != nil {
		panic(err)
	}
	defer host.Close()

	// In real use the worker end goes to a child process: see the package
	// documentation and FromEnv.
	go func() {
		defer worker.Close()
		m, err := worker.Recv()
		if err != nil {
			return
		}
		defer m.Close()
		worker.Send(m.Type+1, bytes.ToUpper(m.Payload))
	}()

	if err := host.Send(1, []byte("hello")); err != nil {
		panic(err)
	}
	m, err := host.Recv()
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Type, string(m.Payload))
	// Output: 2 HELLO
}
