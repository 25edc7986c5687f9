//go:build linux

package layers

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
)

// The "probe" helper is the workload of these tests: a copy of this test
// binary started under the sandbox, which tries what an attacker inside
// the worker would, with raw system calls, and prints one line per
// operation: "ok ..." or the errno's name. Operations, separated by ";":
//
//	exec PATH                fork and execve PATH; "ok exit N"
//	kill PID SIG             kill(2)
//	ptrace PID               ptrace(PTRACE_ATTACH); detaches if it worked
//	vmread PID               process_vm_readv of one byte
//	tiocsti FD HIGH          ioctl(FD, TIOCSTI | HIGH<<32, "X")
//	tioclinux FD             ioctl(FD, TIOCLINUX, 11)
//	clone-newuser            clone(CLONE_NEWUSER) of a child that execs nothing
//	shmget KEY               shmget(KEY, 4096, 0): look up a segment
//	shmnew                   shmget(IPC_PRIVATE, 4096, IPC_CREAT|0600), then removes it
//	fds                      "ok FD:TYPE ..." for every open fd below 1024
//	openat FD NAME           openat(FD, NAME, O_RDONLY)
//	rlimit RES               "ok SOFT HARD" (getrlimit)
//	env                      "ok NAME=VALUE,..." sorted
//	status                   /proc/self/status (brokered): "ok CapEff=.. CapPrm=.. ..."
//	nnp                      prctl(PR_GET_NO_NEW_PRIVS)
//	ids                      "ok pid=.. sid=.. euid=.."
//	connect-tcp PORT         connect to 127.0.0.1:PORT
//	bind-tcp PORT            bind 127.0.0.1:PORT
//	connect-abstract NAME    connect to the abstract UNIX socket @NAME
//	readlink PATH            readlink(2) (brokered)
//	open PATH                open O_RDONLY (brokered) and read; "ok N" bytes
//	orphan SECS              double fork: a grandchild that sleeps SECS seconds
//	mkdir PATH               mkdir(2) mode 0755 (brokered when the policy enables it)
//	create PATH              open O_WRONLY|O_CREAT|O_EXCL (brokered) and write "new"
//	bind-unix PATH           bind a UNIX socket to PATH (native: the broker never sees it)
//	wait                     print "ready", then read a line from stdin; "ok"
//	ls DIR                   "ok NAME,..." sorted (open brokered, getdents native)
//
// kill, readlink, mkdir and ls are testutil.WorkerOps.
func runProbe(args []string) int { return testutil.RunOps(args, doProbe) }

// result is the line of an operation that yields only an error.
var result = testutil.OpResult

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func doProbe(op []string) string {
	switch op[0] {
	case "exec":
		pid, err := syscall.ForkExec(op[1], []string{op[1]}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
		if err != nil {
			return testutil.ErrnoName(err)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			return testutil.ErrnoName(err)
		}
		return fmt.Sprintf("ok exit %d", ws.ExitStatus())
	case "ptrace":
		err := unix.PtraceAttach(atoi(op[1]))
		if err == nil {
			unix.PtraceDetach(atoi(op[1]))
		}
		return result(err)
	case "vmread":
		b := make([]byte, 1)
		local := []unix.Iovec{{Base: &b[0]}}
		local[0].SetLen(1)
		remote := []unix.RemoteIovec{{Base: 0x400000, Len: 1}}
		_, err := unix.ProcessVMReadv(atoi(op[1]), local, remote, 0)
		return result(err)
	case "tiocsti":
		// The argument points at an int whose first byte (little-endian)
		// is the character to inject.
		req := uint(unix.TIOCSTI) | uint(atoi(op[2]))<<32
		return result(unix.IoctlSetPointerInt(atoi(op[1]), req, 'X'))
	case "tioclinux":
		return result(unix.IoctlSetPointerInt(atoi(op[1]), unix.TIOCLINUX, 11))
	case "clone-newuser":
		attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		_, err := syscall.ForkExec("/nonexistent/layers-probe", []string{"x"}, &syscall.ProcAttr{Sys: attr})
		if errors.Is(err, unix.ENOENT) {
			return "ok created" // the child existed and reached exec
		}
		return result(err)
	case "shmget":
		key, _ := strconv.ParseInt(op[1], 0, 64)
		_, err := unix.SysvShmGet(int(key), 4096, 0)
		return result(err)
	case "shmnew":
		id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
		if err == nil {
			unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		}
		return result(err)
	case "fds":
		var out []string
		for fd := 0; fd < 1024; fd++ {
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				continue
			}
			out = append(out, fmt.Sprintf("%d:%s", fd, testutil.FileType(st.Mode)))
		}
		return "ok " + strings.Join(out, " ")
	case "openat":
		fd, err := unix.Openat(atoi(op[1]), op[2], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return result(err)
	case "rlimit":
		var rl unix.Rlimit
		if err := unix.Getrlimit(atoi(op[1]), &rl); err != nil {
			return testutil.ErrnoName(err)
		}
		return fmt.Sprintf("ok %d %d", rl.Cur, rl.Max)
	case "env":
		env := os.Environ()
		slices.Sort(env)
		return "ok " + strings.Join(env, ",")
	case "status":
		f, err := os.Open("/proc/self/status")
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer f.Close()
		var out []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			switch k {
			case "Pid", "NSpid", "CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp":
				out = append(out, k+"="+strings.Join(strings.Fields(v), "/"))
			}
		}
		return "ok " + strings.Join(out, " ")
	case "nnp":
		v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		return fmt.Sprintf("ok %d", v)
	case "ids":
		sid, _ := unix.Getsid(0)
		return fmt.Sprintf("ok pid=%d sid=%d euid=%d", os.Getpid(), sid, os.Geteuid())
	case "connect-tcp", "bind-tcp":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrInet4{Port: atoi(op[1]), Addr: [4]byte{127, 0, 0, 1}}
		if op[0] == "bind-tcp" {
			return result(unix.Bind(fd, sa))
		}
		return result(unix.Connect(fd, sa))
	case "connect-abstract":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		return result(unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + op[1]}))
	case "open":
		fd, err := unix.Open(op[1], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		b := make([]byte, 1<<16)
		n, err := unix.Read(fd, b)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		return fmt.Sprintf("ok %d", n)
	case "wait":
		fmt.Println("ready")
		_, err := bufio.NewReader(os.Stdin).ReadString('\n')
		return result(err)
	case "create":
		fd, err := unix.Open(op[1], unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		_, err = unix.Write(fd, []byte("new"))
		return result(err)
	case "bind-unix":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return testutil.ErrnoName(err)
		}
		defer unix.Close(fd)
		return result(unix.Bind(fd, &unix.SockaddrUnix{Name: op[1]}))
	case "orphan":
		// The child forks the grandchild and exits at once; the
		// grandchild sleeps.
		pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "sleep " + op[1] + " & exit 0"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
		if err != nil {
			return testutil.ErrnoName(err)
		}
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		return "ok"
	}
	if line, fd, ok := (testutil.WorkerOps{}).Do(op); ok {
		if fd >= 0 {
			unix.Close(fd)
		}
		return line
	}
	return "unknown op " + op[0]
}
