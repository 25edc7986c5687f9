//go:build linux

package ipc

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// encode returns the packet Send would write.
func encode(typ uint16, payload []byte, nfiles int) []byte {
	p := make([]byte, headerSize+len(payload))
	encodeHeader(p, typ, nfiles, len(payload))
	copy(p[headerSize:], payload)
	return p
}

var decodeCases = []struct {
	name   string
	packet []byte
	nfiles int
	ok     bool
}{
	{"empty payload", encode(0, nil, 0), 0, true},
	{"payload and files", encode(0xBEEF, []byte("payload"), 3), 3, true},
	{"max files", encode(1, []byte{0}, MaxFiles), MaxFiles, true},
	{"nothing", nil, 0, false},
	{"short header", encode(1, nil, 0)[:headerSize-1], 0, false},
	{"text", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0, false},
	{"json", []byte(`{"type":1,"payload":"aGVsbG8="}`), 0, false},
	{"file count mismatch", encode(1, nil, 2), 1, false},
	{"too many files", encode(1, nil, MaxFiles+1), MaxFiles + 1, false},
	{"length too long", encode(1, []byte("abc"), 0)[:headerSize+2], 0, false},
	{"length too short", append(encode(1, []byte("abc"), 0), 'x'), 0, false},
	{"bad version", func() []byte { p := encode(1, nil, 0); p[2] = 0; return p }(), 0, false},
	{"reserved", func() []byte { p := encode(1, nil, 0); p[7] = 0x80; return p }(), 0, false},
	{"huge length", func() []byte { p := encode(1, nil, 0); p[11] = 0xff; return p }(), 0, false},
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decode(tc.packet, tc.nfiles)
			if tc.ok && err != nil {
				t.Errorf("decode: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrMalformed) {
				t.Errorf("decode = %v, want ErrMalformed", err)
			}
		})
	}
}

// FuzzDecode checks that decode never panics, rejects with ErrMalformed,
// and accepts only what encodeHeader produces.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add(tc.packet, uint8(tc.nfiles))
	}
	f.Fuzz(func(t *testing.T, packet []byte, nfiles uint8) {
		typ, payload, err := decode(packet, int(nfiles))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(payload) > MaxPayload || nfiles > MaxFiles {
			t.Fatalf("accepted a %d-byte payload with %d files", len(payload), nfiles)
		}
		if again := encode(typ, payload, int(nfiles)); !bytes.Equal(again, packet) {
			t.Fatalf("decode accepted %x, which encodes back as %x", packet, again)
		}
	})
}

// FuzzParseRights checks that control data the kernel would never produce
// neither panics nor reads beyond the buffer. The fds found are numbers
// only: nothing is closed.
func FuzzParseRights(f *testing.F) {
	f.Add(unix.UnixRights(3, 4, 5))
	f.Add(unix.UnixRights())
	f.Add(append(unix.UnixRights(7), unix.UnixRights(8, 9)...))
	f.Add(unix.UnixRights(1)[:unix.SizeofCmsghdr+2])
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, oob []byte) {
		fds, err := parseRights(oob)
		if len(fds) > len(oob)/4 {
			t.Fatalf("%d fds from %d bytes", len(fds), len(oob))
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}

func TestParseRights(t *testing.T) {
	fds, err := parseRights(append(unix.UnixRights(7), unix.UnixRights(8, 9)...))
	if err != nil || len(fds) != 3 || fds[0] != 7 || fds[2] != 9 {
		t.Errorf("parseRights = %v, %v", fds, err)
	}
	// Descriptors ahead of garbage are returned for closing.
	bad := append(unix.UnixRights(7), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	fds, err = parseRights(bad)
	if !errors.Is(err, ErrMalformed) || len(fds) != 1 || fds[0] != 7 {
		t.Errorf("parseRights(garbage tail) = %v, %v", fds, err)
	}
	creds := unix.UnixCredentials(&unix.Ucred{Pid: 1})
	fds, err = parseRights(append(creds, unix.UnixRights(5)...))
	if !errors.Is(err, ErrMalformed) || len(fds) != 1 {
		t.Errorf("parseRights(creds+rights) = %v, %v", fds, err)
	}
}
