//go:build linux

package sys

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestABISizes(t *testing.T) {
	want := map[string]uintptr{
		"seccomp_notif":       sizeofNotif,
		"seccomp_notif_resp":  sizeofNotifResp,
		"seccomp_notif_addfd": sizeofNotifAddfd,
		"seccomp_data":        sizeofData,
	}
	for name, size := range want {
		if got := compiledSizes[name]; got != size {
			t.Errorf("sizeof(%s) = %d, want %d", name, got, size)
		}
	}
	// The ioctl numbers encode the structure size in bits 16..29.
	ioc := func(req uint) uintptr { return uintptr(req>>16) & 0x3fff }
	for _, c := range []struct {
		req  uint
		want uintptr
	}{{ioctlNotifRecv, sizeofNotif}, {ioctlNotifSend, sizeofNotifResp}, {ioctlNotifAddfd, sizeofNotifAddfd}, {ioctlNotifIDValid, 8}, {ioctlNotifIDValidOld, 8}} {
		if got := ioc(c.req); got != c.want {
			t.Errorf("ioctl %#x encodes size %d, want %d", c.req, got, c.want)
		}
	}
	sizes, err := GetNotifSizes()
	if err != nil {
		t.Fatalf("GetNotifSizes: %v (this kernel lacks seccomp user notification, Linux 5.0)", err)
	}
	if sizes.Notif < sizeofNotif || sizes.Resp < sizeofNotifResp || sizes.Data < sizeofData {
		t.Errorf("kernel sizes %+v smaller than compiled ones", sizes)
	}
}

// guarded maps two pages and makes the second PROT_NONE, returning the
// mapping and the address of the boundary.
func guarded(t *testing.T) ([]byte, int) {
	t.Helper()
	ps := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	if err := unix.Mprotect(mem[ps:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	return mem, ps
}

func addrOf(b []byte) uint64 { return uint64(addr(b)) }

func TestReadString(t *testing.T) {
	pid := os.Getpid()
	mem, ps := guarded(t)
	buf := make([]byte, PathMax)

	// String whose NUL is the last byte before the PROT_NONE page.
	s := "/ends/at/the/guard"
	copy(mem[ps-len(s)-1:], s+"\x00")
	n, err := ReadString(pid, addrOf(mem[ps-len(s)-1:]), buf)
	if err != nil || string(buf[:n]) != s {
		t.Fatalf("NUL before guard: %q, %v", buf[:n], err)
	}
	// No NUL before the guard page: EFAULT.
	copy(mem[ps-4:], "abcd")
	if _, err := ReadString(pid, addrOf(mem[ps-4:]), buf); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("string running into guard: %v, want EFAULT", err)
	}
	// NULL and a kernel address: EFAULT.
	for _, a := range []uint64{0, 0xffffffff81000000, addrOf(mem[ps:])} {
		if _, err := ReadString(pid, a, buf); !errors.Is(err, unix.EFAULT) {
			t.Errorf("addr %#x: %v, want EFAULT", a, err)
		}
	}
	// Lengths around the chunk size and spanning pages read exactly.
	big := make([]byte, 3*ps)
	for _, l := range []int{0, 1, 255, 256, 257, 4095} {
		str := strings.Repeat("x", l)
		off := ps - 100 // spans a page boundary for long strings
		copy(big[off:], str+"\x00")
		n, err := ReadString(pid, addrOf(big[off:]), buf)
		if err != nil || n != l || string(buf[:n]) != str {
			t.Errorf("len %d: got %d, %v", l, n, err)
		}
	}
	// 4096 bytes without NUL: ENAMETOOLONG.
	copy(big, strings.Repeat("y", PathMax+1))
	if _, err := ReadString(pid, addrOf(big), buf); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Errorf("no NUL in 4096 bytes: %v, want ENAMETOOLONG", err)
	}
}

func TestWriteMem(t *testing.T) {
	pid := os.Getpid()
	mem, ps := guarded(t)
	if err := WriteMem(pid, addrOf(mem[8:]), []byte("hello")); err != nil || string(mem[8:13]) != "hello" {
		t.Fatalf("write: %v %q", err, mem[8:13])
	}
	// A write that would cross into the guard page fails whole.
	if err := WriteMem(pid, addrOf(mem[ps-2:]), []byte("abcd")); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("write across guard: %v, want EFAULT", err)
	}
}
