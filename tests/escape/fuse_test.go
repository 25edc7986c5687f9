//go:build linux && amd64

package escape

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// hangFS is a FUSE file system, spoken raw over /dev/fuse, whose root
// directory answers GETATTR and never answers LOOKUP: any path below the
// mount point leaves the looking thread stuck in the kernel until the
// connection is aborted (D-08, R60). The protocol is that of
// include/uapi/linux/fuse.h, version 7.
type hangFS struct {
	mnt     string
	fd      int          // /dev/fuse; only serve uses and closes it
	lookups atomic.Int64 // LOOKUP requests left unanswered
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// FUSE opcodes and sizes used here.
const (
	fuseLookup    = 1
	fuseForget    = 2
	fuseGetattr   = 3
	fuseInit      = 26
	fuseInterrupt = 36
	fuseDestroy   = 38
	fuseBatchFget = 42

	fuseInHeader  = 40
	fuseOutHeader = 16
	fuseInitOut   = 64
	fuseAttrOut   = 104
)

// mountHangFS mounts a hangFS at mnt; it skips the test where the kernel
// or the sandbox the tests run in has no FUSE.
func mountHangFS(t *testing.T, mnt string) *hangFS {
	t.Helper()
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("FUSE (/dev/fuse): %v", err)
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40755,user_id=0,group_id=0,allow_other", fd)
	if err := unix.Mount("sandbox-exec-hangfs", mnt, "fuse", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENODEV) {
			t.Skipf("mount -t fuse: %v (needs CAP_SYS_ADMIN and the fuse module)", err)
		}
		t.Fatalf("mount fuse at %s: %v", mnt, err)
	}
	fs := &hangFS{mnt: mnt, fd: fd, stop: make(chan struct{}), done: make(chan struct{})}
	go fs.serve()
	t.Cleanup(fs.close)
	return fs
}

// abort ends the connection: closing the last fd on /dev/fuse fails every
// request still waiting, a LOOKUP a broker thread is stuck in included.
func (fs *hangFS) abort() {
	fs.once.Do(func() {
		close(fs.stop)
		<-fs.done
	})
}

func (fs *hangFS) close() {
	fs.abort()
	unix.Unmount(fs.mnt, unix.MNT_DETACH)
}

func (fs *hangFS) serve() {
	defer close(fs.done)
	fd := fs.fd
	// Closed here, never while a read is pending: a blocked read holds
	// the file, and only the last close aborts the connection.
	defer unix.Close(fd)
	buf := make([]byte, 1<<20+4096)
	for {
		select {
		case <-fs.stop:
			return
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, 20); n <= 0 {
			continue
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOENT) {
				continue // ENOENT: a request interrupted before it was read
			}
			return // EBADF, ENODEV: closed or aborted
		}
		if n < fuseInHeader {
			continue
		}
		opcode := binary.NativeEndian.Uint32(buf[4:])
		unique := binary.NativeEndian.Uint64(buf[8:])
		switch opcode {
		case fuseInit:
			out := make([]byte, fuseInitOut)
			binary.NativeEndian.PutUint32(out[0:], 7)      // major
			binary.NativeEndian.PutUint32(out[4:], 31)     // minor
			binary.NativeEndian.PutUint32(out[20:], 65536) // max_write
			fs.reply(fd, unique, 0, out)
		case fuseGetattr:
			out := make([]byte, fuseAttrOut)
			binary.NativeEndian.PutUint64(out[0:], 3600)                   // attr_valid (s)
			binary.NativeEndian.PutUint64(out[16:], 1)                     // ino
			binary.NativeEndian.PutUint32(out[16+60:], unix.S_IFDIR|0o755) // mode
			binary.NativeEndian.PutUint32(out[16+64:], 2)                  // nlink
			binary.NativeEndian.PutUint32(out[16+80:], 4096)               // blksize
			fs.reply(fd, unique, 0, out)
		case fuseLookup:
			fs.lookups.Add(1) // never answered
		case fuseForget, fuseBatchFget, fuseInterrupt, fuseDestroy:
			// No reply: FORGET has none; an INTERRUPT left unanswered
			// keeps the interrupted request waiting, as a hung server
			// would.
		default:
			fs.reply(fd, unique, -int32(unix.ENOSYS), nil)
		}
	}
}

func (fs *hangFS) reply(fd int, unique uint64, errno int32, body []byte) {
	out := make([]byte, fuseOutHeader+len(body))
	binary.NativeEndian.PutUint32(out[0:], uint32(len(out)))
	binary.NativeEndian.PutUint32(out[4:], uint32(errno))
	binary.NativeEndian.PutUint64(out[8:], unique)
	copy(out[fuseOutHeader:], body)
	unix.Write(fd, out)
}
