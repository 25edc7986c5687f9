//go:build linux

package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// MaxPayload is the largest payload of one message, in bytes.
	MaxPayload = 256 << 10
	// MaxFiles is the largest number of files sent with one message.
	MaxFiles = 16

	// headerSize is the size of the header that precedes every payload.
	headerSize = 12
	// maxPacket is the largest packet a peer of this package sends.
	maxPacket = headerSize + MaxPayload

	magic0  = 0xF3
	magic1  = 0xF8
	version = 1
)

var (
	// ErrMalformed means a packet was not a message of this package: bad
	// magic, version or reserved bits, a length or descriptor count that does
	// not match what arrived, or unexpected control data.
	ErrMalformed = errors.New("malformed message")
	// ErrTruncated means the kernel cut a packet short because it was larger
	// than MaxPayload (MSG_TRUNC) or carried more than MaxFiles descriptors
	// (MSG_CTRUNC). The rest of the packet is lost.
	ErrTruncated = errors.New("message truncated")
	// ErrTooLarge means a message to send exceeds MaxPayload or MaxFiles, or
	// the socket's send buffer cannot hold it.
	ErrTooLarge = errors.New("message too large")
)

// encodeHeader writes the header of a message into b, which must hold at
// least headerSize bytes. The caller has checked the limits.
func encodeHeader(b []byte, typ uint16, nfiles, length int) {
	b[0] = magic0
	b[1] = magic1
	b[2] = version
	b[3] = uint8(nfiles)
	binary.LittleEndian.PutUint16(b[4:], typ)
	binary.LittleEndian.PutUint16(b[6:], 0)
	binary.LittleEndian.PutUint32(b[8:], uint32(length))
}

// decode checks one received packet that arrived with nfiles descriptors
// and returns its type and payload, a subslice of packet. Every error wraps
// ErrMalformed.
func decode(packet []byte, nfiles int) (typ uint16, payload []byte, err error) {
	if len(packet) < headerSize {
		return 0, nil, fmt.Errorf("%w: %d-byte packet is shorter than the %d-byte header", ErrMalformed, len(packet), headerSize)
	}
	if packet[0] != magic0 || packet[1] != magic1 {
		return 0, nil, fmt.Errorf("%w: bad magic %#02x %#02x", ErrMalformed, packet[0], packet[1])
	}
	if packet[2] != version {
		return 0, nil, fmt.Errorf("%w: unsupported version %d (want %d)", ErrMalformed, packet[2], version)
	}
	if r := binary.LittleEndian.Uint16(packet[6:]); r != 0 {
		return 0, nil, fmt.Errorf("%w: reserved field is %#x", ErrMalformed, r)
	}
	if nfiles > MaxFiles {
		return 0, nil, fmt.Errorf("%w: %d files exceed MaxFiles", ErrMalformed, nfiles)
	}
	if want := int(packet[3]); want != nfiles {
		return 0, nil, fmt.Errorf("%w: header announces %d files, %d arrived", ErrMalformed, want, nfiles)
	}
	n := binary.LittleEndian.Uint32(packet[8:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("%w: payload length %d exceeds MaxPayload", ErrMalformed, n)
	}
	if int(n) != len(packet)-headerSize {
		return 0, nil, fmt.Errorf("%w: header announces %d payload bytes, %d arrived", ErrMalformed, n, len(packet)-headerSize)
	}
	return binary.LittleEndian.Uint16(packet[4:]), packet[headerSize:], nil
}
