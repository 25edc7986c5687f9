//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

// workerArg is the hidden subcommand that turns the bench binary (or the
// test binary) into a worker: os.Args[1] == workerArg.
const workerArg = "__sandbox_exec_bench_worker"

// isWorker reports whether this process was started as a worker.
func isWorker() bool { return len(os.Args) > 1 && os.Args[1] == workerArg }

// workerMain runs the worker named by os.Args[2:] and returns the exit
// code. Results go to fd 3 (the first of ExtraFiles), one "key value" line
// each; errors go to stderr.
//
//	lat MODE OP PATH CPUS BATCH_NS BATCHES   latency batches
//	tput OP PATH THREADS DURATION_NS         calls in a fixed time, unpinned
//	probe                                    kernel features that need a filter
//	exec PATH ARG...                         exec PATH at once (start-cost floor)
//
// MODE is native, landlock or seccomp (restriction applied by the worker
// itself); the brokered variant runs "native" under a launcher filter.
func workerMain() int {
	if len(os.Args) > 3 && os.Args[2] == "exec" {
		// The floor of any Go launcher: start the runtime, exec.
		err := syscall.Exec(os.Args[3], os.Args[3:], os.Environ())
		fmt.Fprintf(os.Stderr, "bench worker: exec %s: %v\n", os.Args[3], err)
		return 127
	}
	out := os.NewFile(3, "results")
	w := bufio.NewWriter(out)
	err := runWorker(os.Args[2:], w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench worker: %v\n", err)
		return 1
	}
	return 0
}

func runWorker(args []string, w *bufio.Writer) error {
	if len(args) == 0 {
		return errors.New("no worker command")
	}
	// Every restriction below binds the calling thread only, so the loop
	// must run on the thread that applied it.
	runtime.LockOSThread()
	switch args[0] {
	case "lat":
		if len(args) != 7 {
			return fmt.Errorf("lat: want 6 arguments, got %q", args[1:])
		}
		op, err := parseOp(args[2])
		if err != nil {
			return err
		}
		cpus, err := parseCPUList(args[4])
		if err != nil {
			return err
		}
		batchNs, err1 := strconv.ParseInt(args[5], 10, 64)
		batches, err2 := strconv.Atoi(args[6])
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return latencyWorker(w, args[1], op, args[3], cpus, batchNs, batches)
	case "tput":
		if len(args) != 5 {
			return fmt.Errorf("tput: want 4 arguments, got %q", args[1:])
		}
		op, err := parseOp(args[1])
		if err != nil {
			return err
		}
		threads, err1 := strconv.Atoi(args[3])
		dur, err2 := strconv.ParseInt(args[4], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return throughputWorker(w, op, args[2], threads, time.Duration(dur))
	case "probe":
		return probeWorker(w)
	}
	return fmt.Errorf("unknown worker command %q", args[0])
}

// op is the measured call.
type op int

const (
	opOpen op = iota // openat(AT_FDCWD, path, O_RDONLY|O_CLOEXEC) + close
	opStat           // newfstatat(AT_FDCWD, path, &st, 0)
)

var opNames = []string{"openat+close", "newfstatat"}

func (o op) String() string { return opNames[o] }

// arg is the op's name on a command line.
func (o op) arg() string { return [...]string{"open", "stat"}[o] }

func parseOp(s string) (op, error) {
	switch s {
	case "open":
		return opOpen, nil
	case "stat":
		return opStat, nil
	}
	return 0, fmt.Errorf("unknown op %q (want open or stat)", s)
}

// call makes one measured call. unix.Openat and unix.Fstatat copy the path
// into a new NUL-terminated buffer on every call (~20 ns); the bench may not
// use unsafe to avoid it, and the copy is the same in every Go variant.
func call(o op, path string, st *unix.Stat_t) error {
	if o == opStat {
		if err := unix.Fstatat(unix.AT_FDCWD, path, st, 0); err != nil {
			return os.NewSyscallError("newfstatat", err)
		}
		return nil
	}
	fd, err := unix.Openat(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("openat", err)
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close(%d) of the fd openat returned: %w", fd, err)
	}
	return nil
}

// latencyWorker restricts its thread as mode says, pins it, calibrates a
// batch size that lasts about batchNs and reports the per-call time of
// each batch ("ns X") after one warm-up batch.
func latencyWorker(w *bufio.Writer, mode string, o op, path string, cpus []int, batchNs int64, batches int) error {
	// The loop allocates ~24 bytes per call (the path copy); keep the
	// collector out of the timed region.
	debug.SetGCPercent(-1)
	if err := pinThread(0, cpus); err != nil {
		return err
	}
	switch mode {
	case "native":
	case "landlock":
		if err := restrictLandlock(path); err != nil {
			return err
		}
	case "seccomp":
		if err := installAllowFilter(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	var st unix.Stat_t
	// Calibrate on a short warm-up, then size batches to last batchNs.
	const warm = 64
	t0 := time.Now()
	for range warm {
		if err := call(o, path, &st); err != nil {
			return fmt.Errorf("%s %s: %w", o, path, err)
		}
	}
	n := batchSize(batchNs, time.Since(t0).Nanoseconds(), warm)
	for b := -1; b < batches; b++ { // batch -1 is a warm-up
		start := time.Now()
		for range n {
			if err := call(o, path, &st); err != nil {
				return fmt.Errorf("%s %s: %w", o, path, err)
			}
		}
		el := time.Since(start).Nanoseconds()
		if b < 0 {
			// The first calls are the slowest (cold caches): size the
			// timed batches from the warm-up batch.
			n = batchSize(batchNs, el, n)
			fmt.Fprintf(w, "calls %d\n", n)
			continue
		}
		fmt.Fprintf(w, "ns %.1f\n", float64(el)/float64(n))
	}
	return nil
}

// batchSize is the number of calls that last about batchNs, given that
// calls calls took ns.
func batchSize(batchNs, ns int64, calls int) int {
	per := max(ns/int64(calls), 1)
	return int(min(max(batchNs/per, 20), 2_000_000))
}

// throughputWorker runs threads loops for dur and reports the calls made
// ("calls N") and the wall time ("elapsed_ns N").
func throughputWorker(w *bufio.Writer, o op, path string, threads int, dur time.Duration) error {
	debug.SetGCPercent(-1)
	runtime.GOMAXPROCS(threads + 1)
	var (
		total atomic.Int64
		stop  atomic.Bool
		ready sync.WaitGroup
		done  sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	startc := make(chan struct{})
	ready.Add(threads)
	done.Add(threads)
	for range threads {
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			var st unix.Stat_t
			ready.Done()
			<-startc
			var n int64
			for !stop.Load() {
				if err := call(o, path, &st); err != nil {
					errMu.Lock()
					first = cmp(first, fmt.Errorf("%s %s: %w", o, path, err))
					errMu.Unlock()
					break
				}
				n++
			}
			total.Add(n)
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(startc)
	time.Sleep(dur)
	stop.Store(true)
	done.Wait()
	el := time.Since(t0)
	if first != nil {
		return first
	}
	fmt.Fprintf(w, "calls %d\nelapsed_ns %d\n", total.Load(), el.Nanoseconds())
	return nil
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// restrictLandlock restricts the calling thread with a ruleset that
// handles every file system right this kernel knows and allows reading the
// directory that holds path.
func restrictLandlock(path string) error {
	abi := sandbox.LandlockABI()
	if abi < 1 {
		return fmt.Errorf("landlock: not available: %w", sys.ErrNotSupported)
	}
	handled, _, _ := sandbox.LandlockSupported(abi)
	rfd, err := ll.LandlockCreateRuleset(&ll.RulesetAttr{HandledAccessFS: handled}, 0)
	if err != nil {
		return fmt.Errorf("landlock_create_ruleset: %w", err)
	}
	defer unix.Close(rfd)
	dir := path[:strings.LastIndexByte(path, '/')+1]
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("landlock rule: %w", err)
	}
	defer unix.Close(dfd)
	attr := ll.PathBeneathAttr{AllowedAccess: ll.AccessFSReadFile | ll.AccessFSReadDir, ParentFd: dfd}
	if err := ll.LandlockAddPathBeneathRule(rfd, &attr, 0); err != nil {
		return fmt.Errorf("landlock_add_rule: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
	}
	if err := ll.LandlockRestrictSelf(rfd, 0); err != nil {
		return fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return nil
}

// allowFilter is the smallest honest filter: check the architecture (kill
// on a foreign one, like every real filter) and allow everything.
func allowFilter() ([]unix.SockFilter, error) {
	arch, err := nativeAuditArch()
	if err != nil {
		return nil, err
	}
	return []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: arch},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}, nil
}

func nativeAuditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("no audit arch for %s", runtime.GOARCH)
}

func installAllowFilter() error {
	prog, err := allowFilter()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
	}
	_, err = sys.InstallFilter(prog, 0)
	return err
}

// probeWorker checks the features that need a listener of one's own: it
// installs an allow-all filter with a new listener (in this throw-away
// process) and tries the flags.
func probeWorker(w *bufio.Writer) error {
	prog, err := allowFilter()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
	}
	fd, err := sys.InstallFilter(prog, sys.FilterFlagNewListener|sys.FilterFlagWaitKillableRecv)
	wkr := err == nil
	if err != nil {
		fd, err = sys.InstallFilter(prog, sys.FilterFlagNewListener)
		if err != nil {
			fmt.Fprintf(w, "user_notif false\n")
			return nil
		}
	}
	fmt.Fprintf(w, "user_notif true\nwait_killable_recv %t\n", wkr)
	// The kernel takes the SET_FLAGS argument by value (an unsigned long,
	// seccomp_notify_set_flags), not as a pointer to a __u64: ask it that
	// way to learn what the kernel offers, then ask the way the broker
	// does (internal/sys.SetSyncWakeup) to learn what the broker gets.
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS), unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	fmt.Fprintf(w, "sync_wake_up %t\n", e == 0)
	unix.Close(fd)
	if fd, err = sys.InstallFilter(prog, sys.FilterFlagNewListener); err != nil {
		return err
	}
	err = sys.SetSyncWakeup(fd)
	fmt.Fprintf(w, "sync_wake_up_sys %t\n", err == nil)
	if err != nil {
		fmt.Fprintf(w, "sync_wake_up_sys_error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	if _, err := sys.GetNotifSizes(); err == nil {
		fmt.Fprintf(w, "notif_sizes true\n")
	}
	unix.Close(fd)
	return nil
}
