//go:build linux

package ipc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/ipc"
)

// headerSize is the size of the wire header (see the package doc).
const headerSize = 12

func pair(t *testing.T) (*ipc.Conn, *ipc.Conn) {
	t.Helper()
	a, b, err := ipc.Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// rawPair returns a Conn and the raw descriptor of its peer, for sending
// packets this package would never send.
func rawPair(t *testing.T) (*ipc.Conn, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The raw end must carry packets larger than the default buffer.
	if err := unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 1<<20); err != nil {
		unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	}
	c, err := ipc.NewConn(os.NewFile(uintptr(fds[0]), "conn"))
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); unix.Close(fds[1]) })
	return c, fds[1]
}

func header(typ uint16, nfiles int, length int) []byte {
	h := make([]byte, headerSize)
	h[0], h[1], h[2], h[3] = 0xF3, 0xF8, 1, byte(nfiles)
	binary.LittleEndian.PutUint16(h[4:], typ)
	binary.LittleEndian.PutUint32(h[8:], uint32(length))
	return h
}

// devNulls opens n descriptors of /dev/null, closed at cleanup.
func devNulls(t *testing.T, n int) []int {
	t.Helper()
	fds := make([]int, n)
	for i := range fds {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
		t.Cleanup(func() { unix.Close(fd) })
	}
	return fds
}

func tempFile(t *testing.T, content string) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func fdOf(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	rc.Control(func(u uintptr) { fd = int(u) })
	return fd
}

func recvOK(t *testing.T, c *ipc.Conn) ipc.Message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	m, err := c.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return m
}

func recvErr(t *testing.T, c *ipc.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	m, err := c.Recv()
	if err == nil {
		m.Close()
		t.Fatalf("Recv: got message type %d, want an error", m.Type)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv hung: %v", err)
	}
	return err
}

func TestRoundTrip(t *testing.T) {
	testutil.CheckFDLeaks(t)
	a, b := pair(t)
	const content = "the quick brown fox"
	f := tempFile(t, content)
	for _, size := range []int{0, 1, 4096, ipc.MaxPayload} {
		for _, nfiles := range []int{0, 1, ipc.MaxFiles} {
			t.Run(fmt.Sprintf("payload=%d/files=%d", size, nfiles), func(t *testing.T) {
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = byte(i * 7)
				}
				files := make([]*os.File, nfiles)
				for i := range files {
					files[i] = f
				}
				typ := uint16(size + nfiles)
				if err := a.Send(typ, payload, files...); err != nil {
					t.Fatalf("Send: %v", err)
				}
				m := recvOK(t, b)
				defer m.Close()
				if m.Type != typ || !bytes.Equal(m.Payload, payload) || m.Payload == nil {
					t.Errorf("got type %d, %d-byte payload; want type %d, %d bytes", m.Type, len(m.Payload), typ, size)
				}
				if len(m.Files) != nfiles {
					t.Fatalf("got %d files, want %d", len(m.Files), nfiles)
				}
				for _, g := range m.Files {
					fd := fdOf(t, g)
					flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
					if err != nil || flags&unix.FD_CLOEXEC == 0 {
						t.Errorf("received fd %d: flags %#x, %v; want FD_CLOEXEC", fd, flags, err)
					}
					buf := make([]byte, len(content))
					if _, err := g.ReadAt(buf, 0); err != nil || string(buf) != content {
						t.Errorf("read through received fd: %q, %v", buf, err)
					}
				}
			})
		}
	}
}

func TestBufferSizes(t *testing.T) {
	a, _ := pair(t)
	f, err := a.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, _ := f.SyscallConn()
	var snd int
	rc.Control(func(fd uintptr) { snd, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF) })
	if err != nil {
		t.Fatal(err)
	}
	// AF_UNIX seqpacket refuses packets longer than SO_SNDBUF-32.
	if min := headerSize + ipc.MaxPayload + 32; snd < min {
		t.Errorf("SO_SNDBUF = %d, want at least %d", snd, min)
	}
}

func TestLimits(t *testing.T) {
	testutil.CheckFDLeaks(t)
	a, b := pair(t)
	f := tempFile(t, "x")

	if err := a.Send(1, make([]byte, ipc.MaxPayload+1)); !errors.Is(err, ipc.ErrTooLarge) {
		t.Errorf("Send(MaxPayload+1) = %v, want ErrTooLarge", err)
	}
	files := make([]*os.File, ipc.MaxFiles+1)
	for i := range files {
		files[i] = f
	}
	if err := a.Send(1, nil, files...); !errors.Is(err, ipc.ErrTooLarge) {
		t.Errorf("Send(MaxFiles+1 files) = %v, want ErrTooLarge", err)
	}
	if err := a.Send(1, nil, nil); err == nil {
		t.Error("Send(nil file) succeeded")
	}
	closed := tempFile(t, "y")
	closed.Close()
	if err := a.Send(1, nil, closed); err == nil {
		t.Error("Send(closed file) succeeded")
	}
	// The failed sends sent nothing: the next message is the first.
	if err := a.Send(2, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if m := recvOK(t, b); m.Type != 2 {
		t.Errorf("got type %d, want 2", m.Type)
	}
}

// TestTruncated sends packets beyond the limits from a raw peer.
func TestTruncated(t *testing.T) {
	testutil.CheckFDLeaks(t)
	c, raw := rawPair(t)
	nulls := devNulls(t, ipc.MaxFiles+4)
	before := testutil.FDs(t)

	big := append(header(1, 0, ipc.MaxPayload+1), make([]byte, ipc.MaxPayload+1)...)
	if err := unix.Sendmsg(raw, big, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := recvErr(t, c); !errors.Is(err, ipc.ErrTruncated) {
		t.Errorf("oversized packet: %v, want ErrTruncated", err)
	}

	// MSG_CTRUNC: more descriptors than the receiver's control buffer holds.
	if err := unix.Sendmsg(raw, header(1, len(nulls), 0), unix.UnixRights(nulls...), nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := recvErr(t, c); !errors.Is(err, ipc.ErrTruncated) {
		t.Errorf("too many fds: %v, want ErrTruncated", err)
	}
	if after := testutil.FDs(t); after != before {
		t.Errorf("%d descriptors open after the truncated packets, %d before", after, before)
	}

	// The channel still works.
	if err := unix.Sendmsg(raw, header(7, 1, 0), unix.UnixRights(nulls[0]), nil, 0); err != nil {
		t.Fatal(err)
	}
	m := recvOK(t, c)
	if m.Type != 7 || len(m.Files) != 1 {
		t.Errorf("got type %d with %d files, want 7 with 1", m.Type, len(m.Files))
	}
	m.Close()
}

// TestMalformed sends garbage from a raw peer, with descriptors attached.
func TestMalformed(t *testing.T) {
	testutil.CheckFDLeaks(t)
	c, raw := rawPair(t)
	nulls := devNulls(t, 3)
	valid := header(1, 2, 3)
	for _, tc := range []struct {
		name   string
		packet []byte
		fds    []int
	}{
		{"text", []byte("hello, garbage"), nulls[:2]},
		{"short", []byte{0xF3, 0xF8, 1}, nulls[:1]},
		{"empty packet with fds", nil, nulls[:2]},
		{"bad magic", append([]byte{0xF3, 0xF9}, append(valid[2:], "abc"...)...), nulls[:2]},
		{"bad version", append(append([]byte{0xF3, 0xF8, 2}, valid[3:]...), "abc"...), nulls[:2]},
		{"reserved bits", func() []byte {
			p := append(append([]byte{}, valid...), "abc"...)
			p[6] = 1
			return p
		}(), nulls[:2]},
		{"fewer fds than announced", append(append([]byte{}, valid...), "abc"...), nulls[:1]},
		{"more fds than announced", append(append([]byte{}, valid...), "abc"...), nulls[:3]},
		{"long payload", append(append([]byte{}, valid...), "abcd"...), nulls[:2]},
		{"short payload", append(append([]byte{}, valid...), "ab"...), nulls[:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.FDs(t)
			var oob []byte
			if len(tc.fds) > 0 {
				oob = unix.UnixRights(tc.fds...)
			}
			// SendmsgBuffers sends an empty packet as such (Sendmsg would
			// add a byte).
			if _, err := unix.SendmsgBuffers(raw, [][]byte{tc.packet}, oob, nil, 0); err != nil {
				t.Fatal(err)
			}
			if err := recvErr(t, c); !errors.Is(err, ipc.ErrMalformed) {
				t.Errorf("Recv = %v, want ErrMalformed", err)
			}
			if after := testutil.FDs(t); after != before {
				t.Errorf("%d descriptors open after Recv, %d before", after, before)
			}
		})
	}
	// A well-formed message still gets through.
	if err := unix.Sendmsg(raw, append(append([]byte{}, valid...), "abc"...), unix.UnixRights(nulls[:2]...), nil, 0); err != nil {
		t.Fatal(err)
	}
	m := recvOK(t, c)
	if m.Type != 1 || string(m.Payload) != "abc" || len(m.Files) != 2 {
		t.Errorf("got %+v", m)
	}
	m.Close()
}

func TestEOF(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	t.Run("Close", func(t *testing.T) {
		a, b := pair(t)
		if err := a.Send(1, []byte("last words")); err != nil {
			t.Fatal(err)
		}
		a.Close()
		if m := recvOK(t, b); string(m.Payload) != "last words" {
			t.Errorf("got %q", m.Payload)
		}
		for range 2 {
			if _, err := b.Recv(); err != io.EOF {
				t.Errorf("Recv after peer Close = %v, want io.EOF", err)
			}
		}
		if err := b.Send(1, nil); !errors.Is(err, syscall.EPIPE) {
			t.Errorf("Send after peer Close = %v, want EPIPE", err)
		}
	})
	t.Run("CloseWrite", func(t *testing.T) {
		a, b := pair(t)
		if err := a.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Recv(); err != io.EOF {
			t.Errorf("Recv after peer CloseWrite = %v, want io.EOF", err)
		}
		// The other direction still works.
		if err := b.Send(3, []byte("back")); err != nil {
			t.Fatal(err)
		}
		if m := recvOK(t, a); m.Type != 3 {
			t.Errorf("got type %d", m.Type)
		}
	})
	t.Run("unread", func(t *testing.T) {
		a, b := pair(t)
		if err := a.Send(1, []byte("never read")); err != nil {
			t.Fatal(err)
		}
		b.Close()
		err := recvErr(t, a)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("Recv after the peer closed with unread data = %v, want ErrUnexpectedEOF", err)
		}
		if _, err := a.Recv(); err != io.EOF {
			t.Errorf("second Recv = %v, want io.EOF", err)
		}
	})
	t.Run("own Close", func(t *testing.T) {
		a, _ := pair(t)
		done := make(chan error)
		go func() {
			_, err := a.Recv()
			done <- err
		}()
		time.Sleep(10 * time.Millisecond)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Recv after Close = %v, want net.ErrClosed", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if err := a.Send(1, nil); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Send after Close = %v, want net.ErrClosed", err)
		}
	})
}

func TestDeadline(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	a, b := pair(t)

	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	if _, err := b.Recv(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv = %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Recv returned after %v", d)
	}
	b.SetReadDeadline(time.Time{})

	// Fill a's send buffer until Send blocks past its deadline.
	a.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	payload := make([]byte, ipc.MaxPayload)
	sent := 0
	for {
		err := a.Send(1, payload)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("Send #%d: %v", sent, err)
		}
		if sent++; sent > 1000 {
			t.Fatal("Send never blocked")
		}
	}
	a.SetWriteDeadline(time.Time{})
	for range sent {
		if m := recvOK(t, b); len(m.Payload) != ipc.MaxPayload {
			t.Fatalf("got %d bytes", len(m.Payload))
		}
	}
	// Both directions still work after the deadlines.
	if err := a.Send(2, nil); err != nil {
		t.Fatal(err)
	}
	if m := recvOK(t, b); m.Type != 2 {
		t.Errorf("got type %d", m.Type)
	}
}

func TestConcurrent(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	a, b := pair(t)
	f := tempFile(t, "shared")
	const senders, each = 4, 200
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(s), 1))
			for i := range each {
				p := make([]byte, 4+r.IntN(64<<10))
				binary.LittleEndian.PutUint32(p, uint32(i))
				for j := 4; j < len(p); j++ {
					p[j] = byte(s + j)
				}
				var files []*os.File
				if i%5 == 0 {
					files = []*os.File{f}
				}
				if err := a.Send(uint16(s), p, files...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		m := recvOK(t, b)
		s := int(m.Type)
		i := int(binary.LittleEndian.Uint32(m.Payload))
		if s >= senders || i != next[s] {
			t.Fatalf("sender %d: got message %d, want %d", s, i, next[s])
		}
		next[s]++
		for j := 4; j < len(m.Payload); j++ {
			if m.Payload[j] != byte(s+j) {
				t.Fatalf("sender %d message %d: corrupt at byte %d", s, i, j)
			}
		}
		if want := i%5 == 0; (len(m.Files) == 1) != want {
			t.Fatalf("sender %d message %d: %d files", s, i, len(m.Files))
		}
		m.Close()
	}
	wg.Wait()
}

func TestJSON(t *testing.T) {
	a, b := pair(t)
	type req struct {
		Path string
		N    int
	}
	if err := a.SendJSON(9, req{"/x", 3}); err != nil {
		t.Fatal(err)
	}
	m := recvOK(t, b)
	var got req
	if err := m.Decode(&got); err != nil || got != (req{"/x", 3}) || m.Type != 9 {
		t.Errorf("Decode = %+v, %v", got, err)
	}
	m.Payload = []byte("{")
	if err := m.Decode(&got); err == nil {
		t.Error("Decode of bad JSON succeeded")
	}
	if err := a.SendJSON(1, func() {}); err == nil {
		t.Error("SendJSON of a func succeeded")
	}
}

func TestNewConn(t *testing.T) {
	testutil.CheckFDLeaks(t)
	t.Run("stream", func(t *testing.T) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[1])
		if c, err := ipc.NewConn(os.NewFile(uintptr(fds[0]), "stream")); err == nil {
			c.Close()
			t.Error("NewConn accepted a SOCK_STREAM socket")
		}
	})
	t.Run("regular file", func(t *testing.T) {
		f, err := os.Open("/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		if c, err := ipc.NewConn(f); err == nil {
			c.Close()
			t.Error("NewConn accepted /dev/null")
		}
	})
	t.Run("nil", func(t *testing.T) {
		if _, err := ipc.NewConn(nil); err == nil {
			t.Error("NewConn(nil) succeeded")
		}
	})
	t.Run("File", func(t *testing.T) {
		a, b := pair(t)
		f, err := b.File()
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		c, err := ipc.NewConn(f)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := f.Close(); err == nil {
			t.Error("NewConn did not take ownership of its file")
		}
		if err := a.Send(5, []byte("via dup")); err != nil {
			t.Fatal(err)
		}
		if m := recvOK(t, c); m.Type != 5 || string(m.Payload) != "via dup" {
			t.Errorf("got %d %q", m.Type, m.Payload)
		}
	})
}

func TestFromEnv(t *testing.T) {
	testutil.CheckFDLeaks(t)
	a, b := pair(t)
	f, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	// A raw descriptor, as a worker inherits it: FromEnv takes it over.
	fd, err := unix.Dup(fdOf(t, f))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	t.Setenv(ipc.EnvFD, strconv.Itoa(fd))
	c, err := ipc.FromEnv()
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := os.LookupEnv(ipc.EnvFD); ok {
		t.Errorf("FromEnv left %s set", ipc.EnvFD)
	}
	if err := a.Send(1, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := recvOK(t, c); string(m.Payload) != "hi" {
		t.Errorf("got %q", m.Payload)
	}
	if ipc.EnvVar(3) != ipc.EnvFD+"=3" {
		t.Errorf("EnvVar(3) = %q", ipc.EnvVar(3))
	}

	// No process has this many descriptors open: fcntl fails with EBADF.
	const unusedFD = 1<<20 + 7
	for _, v := range []string{"", "x", "-1", "1", strconv.Itoa(unusedFD)} {
		t.Setenv(ipc.EnvFD, v)
		if c, err := ipc.FromEnv(); err == nil {
			c.Close()
			t.Errorf("FromEnv with %s=%q succeeded", ipc.EnvFD, v)
		}
	}
	os.Unsetenv(ipc.EnvFD)
	if _, err := ipc.FromEnv(); err == nil {
		t.Errorf("FromEnv without %s succeeded", ipc.EnvFD)
	}
}

// startWorker starts the ipc-worker helper in a child process with one end
// of a channel, and returns the other end. before, if not nil, runs before
// the child starts.
func startWorker(t *testing.T, before func(host *ipc.Conn)) (*ipc.Conn, *exec.Cmd) {
	t.Helper()
	host, worker, err := ipc.Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	f, err := worker.File()
	worker.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := testutil.HelperCommand(t, "ipc-worker")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(cmd.Env, ipc.EnvVar(3))
	cmd.Stderr = os.Stderr
	if before != nil {
		before(host)
	}
	err = cmd.Start()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return host, cmd
}

func TestChild(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	host, cmd := startWorker(t, nil)

	if err := host.Send(typeReadFile, nil, tempFile(t, "passed by fd")); err != nil {
		t.Fatal(err)
	}
	if m := recvOK(t, host); m.Type != typeContent || string(m.Payload) != "PASSED BY FD" {
		t.Errorf("got type %d %q", m.Type, m.Payload)
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), ipc.MaxPayload/16)
	if err := host.Send(typeEcho, big, os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
	m := recvOK(t, host)
	if m.Type != typeEcho || !bytes.Equal(m.Payload, big) || len(m.Files) != 2 {
		t.Errorf("echo: type %d, %d bytes, %d files", m.Type, len(m.Payload), len(m.Files))
	}
	m.Close()

	host.CloseWrite()
	if _, err := host.Recv(); err != io.EOF {
		t.Errorf("Recv after the worker's orderly exit = %v, want io.EOF", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("worker: %v", err)
	}
}

// TestChildCrash kills the worker in the middle of a conversation: the
// host gets an error, never a hang.
func TestChildCrash(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	t.Run("while host waits", func(t *testing.T) {
		host, cmd := startWorker(t, nil)
		if err := host.Send(typeEcho, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		recvOK(t, host)
		if err := host.Send(typeCrash, nil); err != nil {
			t.Fatal(err)
		}
		err := recvErr(t, host)
		if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Recv from a crashed worker = %v, want io.EOF or ErrUnexpectedEOF", err)
		}
		var ee *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("worker exit: %v, want SIGKILL", err)
		}
		if err := host.Send(typeEcho, nil); !errors.Is(err, syscall.EPIPE) {
			t.Errorf("Send to a crashed worker = %v, want EPIPE", err)
		}
	})
	t.Run("with unread messages", func(t *testing.T) {
		f := tempFile(t, "pending")
		// Both messages are queued before the worker starts: it reads
		// the first and dies with the second unread.
		host, _ := startWorker(t, func(host *ipc.Conn) {
			if err := host.Send(typeCrash, nil); err != nil {
				t.Fatal(err)
			}
			if err := host.Send(typeReadFile, nil, f); err != nil {
				t.Fatal(err)
			}
		})
		err := recvErr(t, host)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Recv from a worker that died with unread messages = %v, want ErrUnexpectedEOF", err)
		}
	})
}
