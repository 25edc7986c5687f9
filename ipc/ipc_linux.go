//go:build linux

package ipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
)

// EnvFD is the environment variable that tells a worker which descriptor
// holds its end of the channel, as a decimal number. See [FromEnv].
const EnvFD = "SANDBOX_EXEC_IPC_FD"

// bufferRequest is the SO_SNDBUF and SO_RCVBUF value asked for; the
// kernel caps it at net.core.wmem_max (rmem_max) and doubles it.
const bufferRequest = 2 * maxPacket

// minSendBuffer is the smallest SO_SNDBUF (as reported by getsockopt) that
// carries a maxPacket message: AF_UNIX datagram and seqpacket sockets
// refuse packets longer than the send buffer minus 32 bytes with EMSGSIZE.
const minSendBuffer = maxPacket + 32

// oobSize is the control buffer of Recv: room for exactly MaxFiles
// descriptors, so that a packet with more is reported as MSG_CTRUNC.
var oobSize = unix.CmsgSpace(MaxFiles * 4)

// Message is one received packet.
type Message struct {
	// Type is the message type given to Send.
	Type uint16
	// Payload is the message body; it is never nil after a successful Recv
	// and is owned by the caller.
	Payload []byte
	// Files are the descriptors sent with the message, in order. They are
	// close-on-exec and owned by the caller, who must close them; see
	// [Message.Close].
	Files []*os.File
}

// Close closes every file of m and clears m.Files. It returns the first
// error.
func (m *Message) Close() error {
	var first error
	for _, f := range m.Files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	m.Files = nil
	return first
}

// Decode unmarshals the JSON payload of m into v, as sent by
// [Conn.SendJSON]. It does not touch m.Files.
func (m *Message) Decode(v any) error {
	if err := json.Unmarshal(m.Payload, v); err != nil {
		return fmt.Errorf("ipc: decode message type %d: %w", m.Type, err)
	}
	return nil
}

// Conn is one end of a channel. Send and Recv may be called concurrently
// with each other and with themselves; each message is sent and received
// whole.
//
// A Conn owns its socket: Close releases it, and nothing else does.
type Conn struct {
	uc *net.UnixConn
	rc syscall.RawConn

	closeOnce sync.Once
}

// Pair returns the two ends of a new channel: a SOCK_SEQPACKET|SOCK_CLOEXEC
// socketpair whose send buffers hold a message of MaxPayload bytes. If
// net.core.wmem_max is too small for that and the process lacks
// CAP_NET_ADMIN to exceed it, Pair fails with an error wrapping
// [ErrTooLarge].
func Pair() (*Conn, *Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("ipc: %w", os.NewSyscallError("socketpair", err))
	}
	a, err := newConn(os.NewFile(uintptr(fds[0]), "ipc-pair"), true)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := newConn(os.NewFile(uintptr(fds[1]), "ipc-pair"), true)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// NewConn makes a Conn of f, which must be a connected AF_UNIX
// SOCK_SEQPACKET socket, such as an end of [Pair] inherited by a worker.
//
// NewConn takes ownership of f: it closes f, on success as on error, and
// the Conn works on a close-on-exec duplicate. Raising the send buffer to
// fit MaxPayload is best effort here (the host's Pair already did it);
// if the buffer stays too small, large sends fail with [ErrTooLarge].
//
// NewConn calls getsockopt, getsockname and getpeername on the socket (and
// setsockopt if the buffer is too small), so a seccomp filter must allow
// those or the worker must call it before the filter is installed.
func NewConn(f *os.File) (*Conn, error) {
	if f == nil {
		return nil, errors.New("ipc: new conn: nil file")
	}
	return newConn(f, false)
}

func newConn(f *os.File, strict bool) (*Conn, error) {
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("ipc: new conn: %w", err)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("ipc: new conn: %T is not an AF_UNIX socket", nc)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("ipc: new conn: %w", err)
	}
	c := &Conn{uc: uc, rc: rc}
	if err := c.setup(strict); err != nil {
		c.Close()
		return nil, fmt.Errorf("ipc: new conn: %w", err)
	}
	return c, nil
}

// setup checks the socket type and sizes the buffers.
func (c *Conn) setup(strict bool) error {
	var err error
	cerr := c.rc.Control(func(fd uintptr) {
		s := int(fd)
		var typ int
		typ, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			err = os.NewSyscallError("getsockopt", err)
			return
		}
		if typ != unix.SOCK_SEQPACKET {
			err = fmt.Errorf("socket type %d is not SOCK_SEQPACKET", typ)
			return
		}
		err = sizeBuffers(s)
		if !strict {
			err = nil
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// sizeBuffers raises SO_SNDBUF (and SO_RCVBUF, for symmetry; AF_UNIX
// does not use it) when it is too small for a maxPacket message, using
// the *FORCE variants where net.core.[wr]mem_max is lower and the process
// has CAP_NET_ADMIN. Buffers that are large enough are left alone.
func sizeBuffers(s int) error {
	raise := func(opt, force int) (int, error) {
		got, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, opt)
		if err != nil {
			return 0, os.NewSyscallError("getsockopt", err)
		}
		if got >= minSendBuffer {
			return got, nil
		}
		unix.SetsockoptInt(s, unix.SOL_SOCKET, opt, bufferRequest)
		if got, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, opt); err == nil && got >= minSendBuffer {
			return got, nil
		}
		unix.SetsockoptInt(s, unix.SOL_SOCKET, force, bufferRequest)
		got, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, opt)
		if err != nil {
			return 0, os.NewSyscallError("getsockopt", err)
		}
		return got, nil
	}
	raise(unix.SO_RCVBUF, unix.SO_RCVBUFFORCE)
	got, err := raise(unix.SO_SNDBUF, unix.SO_SNDBUFFORCE)
	if err != nil {
		return err
	}
	if got < minSendBuffer {
		return fmt.Errorf("%w: socket send buffer of %d bytes cannot carry a %d-byte message (raise net.core.wmem_max)", ErrTooLarge, got, maxPacket)
	}
	return nil
}

// FromEnv returns the worker's end of the channel: the descriptor named
// by the environment variable [EnvFD], as set by the host with [EnvVar].
// It unsets EnvFD, so the worker's own children do not inherit a stale
// number, and takes ownership of the descriptor as [NewConn] does (the
// inherited descriptor is closed; the Conn holds a close-on-exec copy).
// Descriptors 0, 1 and 2 are refused.
func FromEnv() (*Conn, error) {
	v, ok := os.LookupEnv(EnvFD)
	if !ok {
		return nil, fmt.Errorf("ipc: %s is not set; was this process started with an ipc channel?", EnvFD)
	}
	os.Unsetenv(EnvFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("ipc: %s=%q is not a descriptor number", EnvFD, v)
	}
	if fd <= 2 {
		return nil, fmt.Errorf("ipc: %s=%d names a standard stream", EnvFD, fd)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return nil, fmt.Errorf("ipc: %s=%d: %w", EnvFD, fd, os.NewSyscallError("fcntl", err))
	}
	return NewConn(os.NewFile(uintptr(fd), "ipc-inherited"))
}

// EnvVar returns the "NAME=value" entry of [EnvFD] for a child that finds
// its end of the channel at descriptor fd; for exec.Cmd.ExtraFiles[i], fd
// is 3+i.
func EnvVar(fd int) string {
	return EnvFD + "=" + strconv.Itoa(fd)
}

// Send sends one message of type typ with payload and files as one
// packet. It blocks while the socket's send buffer is full, until the
// write deadline.
//
// Send neither closes nor keeps files: the peer receives duplicates, and
// the caller still owns and must close the originals. The files stay in
// whatever blocking mode they are in.
func (c *Conn) Send(typ uint16, payload []byte, files ...*os.File) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("ipc: send: %d-byte payload: %w (MaxPayload is %d)", len(payload), ErrTooLarge, MaxPayload)
	}
	if len(files) > MaxFiles {
		return fmt.Errorf("ipc: send: %d files: %w (MaxFiles is %d)", len(files), ErrTooLarge, MaxFiles)
	}
	var hdr [headerSize]byte
	encodeHeader(hdr[:], typ, len(files), len(payload))
	bufs := [][]byte{hdr[:], payload}
	err := withFDs(files, make([]int, 0, len(files)), func(fds []int) error {
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		var n int
		var serr error
		err := c.rc.Write(func(fd uintptr) bool {
			serr = sys.Retry(func() error {
				var err error
				n, err = unix.SendmsgBuffers(int(fd), bufs, oob, nil, unix.MSG_NOSIGNAL)
				return err
			})
			return !errors.Is(serr, unix.EAGAIN)
		})
		switch {
		case err != nil:
			return err
		case errors.Is(serr, unix.EMSGSIZE):
			return fmt.Errorf("%w: the socket's send buffer cannot carry %d bytes: %w", ErrTooLarge, headerSize+len(payload), os.NewSyscallError("sendmsg", serr))
		case serr != nil:
			return os.NewSyscallError("sendmsg", serr)
		case n != headerSize+len(payload):
			return fmt.Errorf("sendmsg wrote %d of %d bytes", n, headerSize+len(payload))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ipc: send: %w", err)
	}
	return nil
}

// withFDs calls fn with the descriptors of files, holding a reference on
// every file until fn returns so that none is closed and reused meanwhile,
// and without (*os.File).Fd, which would make them blocking.
func withFDs(files []*os.File, fds []int, fn func([]int) error) error {
	if len(files) == 0 {
		return fn(fds)
	}
	if files[0] == nil {
		return errors.New("nil file")
	}
	rc, err := files[0].SyscallConn()
	if err != nil {
		return fmt.Errorf("file %s: %w", files[0].Name(), err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = withFDs(files[1:], append(fds, int(fd)), fn)
	}); err != nil {
		return fmt.Errorf("file %s: %w", files[0].Name(), err)
	}
	return ferr
}

// SendJSON sends v, encoded as JSON, as the payload of a message of type
// typ; see [Conn.Send] and [Message.Decode].
func (c *Conn) SendJSON(typ uint16, v any, files ...*os.File) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ipc: send: encode message type %d: %w", typ, err)
	}
	return c.Send(typ, b, files...)
}

// Recv receives the next message. It blocks until one arrives, the peer
// closes its end or the read deadline passes.
//
// Received descriptors are close-on-exec (MSG_CMSG_CLOEXEC). When Recv
// fails, every descriptor that came with the packet has been closed. See
// the package documentation for the errors.
func (c *Conn) Recv() (Message, error) {
	var buf []byte
	oob := make([]byte, oobSize)
	var n, oobn, flags int
	var rerr error
	// Both recvmsg calls run under the socket's read lock (RawConn.Read),
	// so no other Recv takes the packet between the peek and the read.
	err := c.rc.Read(func(fd uintptr) bool {
		s := int(fd)
		// Learn the packet's length (MSG_TRUNC makes recvmsg return it)
		// without taking the packet or its descriptors.
		var size int
		rerr = sys.Retry(func() error {
			var err error
			size, _, _, _, err = unix.Recvmsg(s, nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
			return err
		})
		if rerr != nil {
			return !errors.Is(rerr, unix.EAGAIN)
		}
		if size > maxPacket {
			size = headerSize // take it anyway, to report MSG_TRUNC
		}
		buf = make([]byte, size)
		rerr = sys.Retry(func() error {
			var err error
			n, oobn, flags, _, err = unix.Recvmsg(s, buf, oob, unix.MSG_CMSG_CLOEXEC)
			return err
		})
		return !errors.Is(rerr, unix.EAGAIN)
	})
	switch {
	case err != nil:
		return Message{}, fmt.Errorf("ipc: recv: %w", err)
	case errors.Is(rerr, unix.ECONNRESET):
		return Message{}, fmt.Errorf("ipc: recv: peer closed without reading all messages: %w: %w", io.ErrUnexpectedEOF, os.NewSyscallError("recvmsg", rerr))
	case rerr != nil:
		return Message{}, fmt.Errorf("ipc: recv: %w", os.NewSyscallError("recvmsg", rerr))
	}
	m, err := unpack(buf[:n], oob[:oobn], flags)
	if err != nil && err != io.EOF {
		return Message{}, fmt.Errorf("ipc: recv: %w", err)
	}
	return m, err
}

// unpack turns a received packet, its control data and recvmsg flags into
// a Message. It owns the descriptors in oob: on error all are closed.
func unpack(packet, oob []byte, flags int) (m Message, err error) {
	fds, err := parseRights(oob)
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}()
	switch {
	case flags&unix.MSG_CTRUNC != 0:
		return Message{}, fmt.Errorf("%w: control data cut short (MSG_CTRUNC); more than %d files sent", ErrTruncated, MaxFiles)
	case flags&unix.MSG_TRUNC != 0:
		return Message{}, fmt.Errorf("%w: packet longer than %d bytes (MSG_TRUNC)", ErrTruncated, maxPacket)
	case err != nil:
		return Message{}, err
	case len(packet) == 0 && len(oob) == 0:
		// A zero-length read: the peer shut down its end. (This package
		// never sends an empty packet.)
		return Message{}, io.EOF
	}
	typ, payload, err := decode(packet, len(fds))
	if err != nil {
		return Message{}, err
	}
	m = Message{Type: typ, Payload: payload}
	if len(fds) > 0 {
		m.Files = make([]*os.File, len(fds))
		for i, fd := range fds {
			m.Files[i] = os.NewFile(uintptr(fd), "ipc-received")
		}
	}
	return m, nil
}

// parseRights returns the descriptors of the SCM_RIGHTS messages in oob.
// It returns every descriptor it found even when it also returns an error,
// so that the caller can close them.
func parseRights(oob []byte) (fds []int, err error) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, perr := unix.ParseOneSocketControlMessage(oob)
		if perr != nil {
			return fds, fmt.Errorf("%w: bad control message: %w", ErrMalformed, perr)
		}
		oob = rest
		if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_RIGHTS {
			err = fmt.Errorf("%w: unexpected control message (level %d, type %d)", ErrMalformed, h.Level, h.Type)
			continue
		}
		if len(data)%4 != 0 {
			err = fmt.Errorf("%w: SCM_RIGHTS data of %d bytes", ErrMalformed, len(data))
			data = data[:len(data)&^3]
		}
		r, perr := unix.ParseUnixRights(&unix.SocketControlMessage{Header: h, Data: data})
		if perr != nil {
			return fds, fmt.Errorf("%w: bad SCM_RIGHTS message: %w", ErrMalformed, perr)
		}
		fds = append(fds, r...)
	}
	if len(oob) != 0 && err == nil {
		err = fmt.Errorf("%w: %d stray bytes of control data", ErrMalformed, len(oob))
	}
	return fds, err
}

// SetDeadline sets the read and write deadlines; see net.Conn.
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline sets the deadline of Recv; see net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of Send; see net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// CloseWrite shuts down the sending side: once the peer has read every
// message, its Recv returns io.EOF. c can still receive.
func (c *Conn) CloseWrite() error {
	if err := c.uc.CloseWrite(); err != nil {
		return fmt.Errorf("ipc: close write: %w", err)
	}
	return nil
}

// SyscallConn gives access to c's socket, as net.UnixConn.SyscallConn
// does: for a process that must know the descriptor's number, such as one
// about to rearrange its descriptors before exec.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// File returns a duplicate of c's socket for handing this end to a child
// process through exec.Cmd.ExtraFiles (which clears its close-on-exec
// flag in the child). The caller owns the file and must close it.
//
// The duplicate shares the open file description with c, and os/exec
// switches that description to blocking mode when it starts the child
// (through (*os.File).Fd), which breaks c's deadlines: File is for giving
// an end away, so close c, and close the file once the child has started.
func (c *Conn) File() (*os.File, error) {
	f, err := c.uc.File()
	if err != nil {
		return nil, fmt.Errorf("ipc: file: %w", err)
	}
	return f, nil
}

// Close closes c's socket; the peer's Recv then returns io.EOF once it has
// read what was sent. Blocked Send and Recv calls return an error wrapping
// net.ErrClosed. Close is idempotent: later calls return nil.
func (c *Conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.uc.Close()
	})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipc: close: %w", err)
	}
	return nil
}
