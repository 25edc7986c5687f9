//go:build linux

package sandbox

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"golang.org/x/sys/unix"
)

// Program is a classic BPF program as the kernel takes it (struct
// sock_filter[]). In JSON it is one base64 string of those 8-byte records
// in the machine's byte order, not an array of objects: the host sends a
// Spec to every init stage, which decodes it on the path of every worker
// start, and decoding a filter of several hundred instructions field by
// field through reflection cost more than the rest of the message. Host
// and stage are the same binary on the same machine, so the byte order is
// shared.
type Program []unix.SockFilter

const sockFilterSize = 8 // sizeof(struct sock_filter)

// MarshalJSON encodes p as a base64 string of its raw instructions.
func (p Program) MarshalJSON() ([]byte, error) {
	raw := make([]byte, len(p)*sockFilterSize)
	for i, in := range p {
		b := raw[i*sockFilterSize:]
		binary.NativeEndian.PutUint16(b, in.Code)
		b[2], b[3] = in.Jt, in.Jf
		binary.NativeEndian.PutUint32(b[4:], in.K)
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(raw))
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (p *Program) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("seccomp program: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("seccomp program: %w", err)
	}
	if len(raw)%sockFilterSize != 0 {
		return fmt.Errorf("seccomp program: %d bytes is not a whole number of %d-byte instructions", len(raw), sockFilterSize)
	}
	out := make(Program, len(raw)/sockFilterSize)
	for i := range out {
		b := raw[i*sockFilterSize:]
		out[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	*p = out
	return nil
}
