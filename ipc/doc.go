// Package ipc is the host↔worker channel of sandbox-exec: a connected
// SOCK_SEQPACKET Unix socket pair carrying typed, framed messages and the
// file descriptors that go with them.
//
// It is the only package of the repository that builds or parses
// SCM_RIGHTS control messages.
//
// # Messages
//
// One [Message] is one packet: a 12-byte header, the payload and, in the
// same sendmsg(2), at most [MaxFiles] file descriptors. Packet boundaries
// are kept by the kernel, so a message is never split, merged or
// interleaved with another one, and [Conn.Send] and [Conn.Recv] are safe
// for concurrent use.
//
// The header is little-endian:
//
//	offset size field
//	0      2    magic 0xF3 0xF8 (never valid UTF-8, so stray text is caught)
//	2      1    version, 1
//	3      1    number of file descriptors sent with the packet
//	4      2    message type, chosen by the caller
//	6      2    reserved, 0
//	8      4    payload length, equal to the packet length minus 12
//
// A payload holds at most [MaxPayload] bytes; what it means is up to the
// caller ([Conn.SendJSON] and [Message.Decode] are one choice).
//
// # Handing an end to a worker
//
// The host creates the channel with [Pair], passes one end to the child
// through exec.Cmd.ExtraFiles and tells the child the descriptor number in
// the environment variable [EnvFD] (ExtraFiles[i] becomes fd 3+i):
//
//	host, worker, err := ipc.Pair()
//	f, err := worker.File()        // a dup for the child
//	worker.Close()
//	cmd.ExtraFiles = []*os.File{f} // fd 3 in the child
//	cmd.Env = append(cmd.Env, ipc.EnvVar(3))
//	err = cmd.Start()
//	f.Close()                      // the child holds its own copy now
//
// The worker then calls [FromEnv], which reads and unsets [EnvFD] and
// takes over the descriptor.
//
// Close every copy of the worker's end in the host once the child is
// started: while the host holds one, it never sees end-of-file when the
// worker dies.
//
// # Errors
//
// Everything the kernel delivered with a rejected packet is closed before
// Recv returns, on every error path. Recv reports
//
//   - io.EOF, unwrapped, when the peer shut the channel down and every
//     packet was read;
//   - an error wrapping [io.ErrUnexpectedEOF] (and ECONNRESET) when the peer
//     went away without reading what was sent to it, such as a crashed worker;
//   - [ErrTruncated] when a packet exceeded [MaxPayload] or carried more than
//     [MaxFiles] descriptors (MSG_TRUNC, MSG_CTRUNC);
//   - [ErrMalformed] when a packet is not a message of this package.
//
// Send reports [ErrTooLarge] for messages beyond the limits, and an error
// wrapping EPIPE once the peer is gone.
//
// # Deadlines
//
// The sockets stay non-blocking and are served by the Go runtime's network
// poller, so [Conn.SetDeadline], [Conn.SetReadDeadline] and
// [Conn.SetWriteDeadline] work as on a net.Conn: a call that runs past its
// deadline fails with an error wrapping [os.ErrDeadlineExceeded]. To tie a
// Recv to a context, set a past deadline when the context ends:
//
//	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
//	defer stop()
//	m, err := c.Recv()
package ipc
