//go:build linux

package launcher

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/internal/sys"
	"github.com/seed-025014a4/sandbox-exec/policy"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

func itoa(n int) string { return strconv.Itoa(n) }

// HostReport describes the confinement of the host process (the broker's
// side): the Landlock domain it restricted itself to and whether it is
// dumpable. It is the same for every worker of a process.
type HostReport struct {
	// Confined is set once ConfineHost enforced a Landlock domain on
	// every thread of this process.
	Confined bool `json:"confined"`
	// Method is how: "reexec" (one thread restricted, then the program
	// re-executed from it) or "tsync" (Landlock ABI 8, in place); "" when
	// not confined.
	Method string `json:"method"`
	// Landlock is the host's ruleset (the union of its policies' grants
	// and what it needs to serve), nil when the host did not confine
	// itself.
	Landlock *LandlockReport `json:"landlock"`
	// Dumpable is PR_GET_DUMPABLE of the host: false after ConfineHost,
	// so that no worker can attach to it or open its /proc entries.
	Dumpable bool `json:"dumpable"`
	// Policies is the number of policies the host is confined for.
	Policies int `json:"policies"`
}

// HostConfig is what ConfineHost confines the host to.
type HostConfig struct {
	// Policies are every policy the host's workers will run under.
	Policies []*policy.Policy
	// Programs are the programs the workers will run, as given to
	// Command; their interpreters (PT_INTERP) get execute rights. Names
	// without a slash are looked up with the first policy's PATH.
	Programs []string
	// Writable are files the host writes after confining itself (an audit
	// log, a report). Each is created now if missing (mode 0644) and gets
	// write and truncate rights, nothing else.
	Writable []string
	// Grants are what the host will grant workers beyond their policies
	// (Cmd.Grants): a grant outside the host's domain cannot be served.
	Grants []policy.Grant
}

var host struct {
	mu     sync.Mutex
	done   bool
	report HostReport
	hashes []string // of the policies confined for
}

// envHostConfined carries the confinement into the re-executed program
// (see ConfineHost): the report and the hashes of the policies.
const envHostConfined = "SANDBOX_EXEC_HOST_CONFINED"

type hostMarker struct {
	Report HostReport `json:"report"`
	Hashes []string   `json:"hashes"`
}

// ErrHostConfined is returned by ConfineHost, and by Start for a Cmd with
// ConfineHost set, when the host is already confined to other policies:
// Landlock domains only nest, so a second confinement would be the
// intersection, not the union.
var ErrHostConfined = errors.New("launcher: the host is already confined to other policies; call ConfineHost once with every policy its workers use")

func policyHash(p *policy.Policy) string {
	h := sha256.Sum256([]byte(p.String()))
	return hex.EncodeToString(h[:])
}

// ConfineHost restricts this whole process with Landlock to the union of
// what cfg.Policies grant (read, write, create and exec rules, on the
// glob-free prefixes of their patterns, plus the interpreters of their
// exact exec rules and of cfg.Programs) and what serving workers needs:
// /proc (the workers' entries, which do not exist yet; written too for
// user namespaces' id maps), /dev/null, this binary, its interpreter and
// the libraries it maps (every worker is a re-exec of it), the policy
// files and cfg.Writable. It then clears PR_SET_DUMPABLE (security.md
// R5). A bug in the broker's path resolution, or a matcher that allows too
// much, then stays inside what some policy grants.
//
// All threads of the host must share one Landlock domain: Landlock lets a
// process read another's memory only from an ancestor domain, and the
// broker reads its workers' memory from threads other than the one that
// forked them. With Landlock ABI 8 (LANDLOCK_RESTRICT_SELF_TSYNC) the
// kernel restricts every thread in place. Before, ConfineHost restricts
// the calling thread only and re-executes the program from it
// (/proc/self/exe, same pid, arguments, environment and non-close-on-exec
// fds): the new image starts with that one thread, in the domain, and
// every thread it creates joins it. Init, in the re-executed program,
// picks the confinement up, and the program's own ConfineHost call (it
// runs main again) returns at once. Call it early in main, right after
// Init and before anything opens files the re-executed program would
// need or starts goroutines whose work would be lost.
//
// Without Landlock (before Linux 5.13, or disabled) the host stays
// unconfined, PR_SET_DUMPABLE is still cleared, the report says so, and
// the error is nil. Errors wrap sys.ErrNotSupported only when a policy's
// `require landlock` cannot be met.
func ConfineHost(cfg HostConfig) (*HostReport, error) {
	return confineHost(cfg, true)
}

// confineHost confines the host; with reexec false it only confines in
// place (ABI 8), as a Cmd with ConfineHost set does.
func confineHost(cfg HostConfig, reexec bool) (*HostReport, error) {
	host.mu.Lock()
	defer host.mu.Unlock()
	var hashes []string
	for _, p := range cfg.Policies {
		hashes = append(hashes, policyHash(p))
	}
	if host.done {
		for _, h := range hashes {
			if !slices.Contains(host.hashes, h) {
				return nil, ErrHostConfined
			}
		}
		r := host.report
		return &r, nil
	}
	// A `require` that cannot be met fails here, as it would at Start.
	for _, p := range cfg.Policies {
		if len(p.Requires()) == 0 {
			continue // nothing to probe for
		}
		if _, err := checkRequires(p, planNamespaces(p.Namespaces()), sys.ProbeNotif()); err != nil {
			return nil, err
		}
	}
	registryMu.Lock()
	running := len(registry)
	registryMu.Unlock()
	if running > 0 {
		return nil, fmt.Errorf("launcher: confine host: %d workers run outside the host's future domain; confine first", running)
	}
	l, paths := hostRuleset(cfg)
	abi := sandbox.LandlockABI()
	if abi < 1 {
		// Nothing to confine with; a `require landlock` fails here.
		if l.MinABI > 0 {
			return nil, fmt.Errorf("launcher: confine host: %w", &sys.UnsupportedFeatureError{Name: fmt.Sprintf("landlock>=%d", l.MinABI), MinimumVersion: sandbox.LandlockKernel(l.MinABI)})
		}
		return finishHost(HostReport{Policies: len(cfg.Policies)}, hashes)
	}
	if abi >= 8 {
		res, err := sandbox.RestrictAllThreads(l)
		if err != nil {
			return nil, fmt.Errorf("launcher: confine host: %w", err)
		}
		lr := landlockReport(res, paths, nil, nil)
		return finishHost(HostReport{Confined: res.Enforced, Method: "tsync", Landlock: &lr, Policies: len(cfg.Policies)}, hashes)
	}
	if !reexec {
		return nil, fmt.Errorf("launcher: confine host: %w; call launcher.ConfineHost at the start of main instead",
			&sys.UnsupportedFeatureError{Name: "landlock-tsync", MinimumVersion: sandbox.LandlockKernel(8),
				Err: fmt.Errorf("Landlock ABI %d cannot put the threads of a running process in one domain", abi)})
	}
	for _, w := range cfg.Writable {
		f, err := os.OpenFile(w, os.O_WRONLY|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("launcher: confine host: %w", err)
		}
		f.Close()
	}
	// One thread restricts itself and execs the program again. It is
	// never unlocked: if the exec fails, the thread ends with the
	// goroutine, and its domain with it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		res, err := sandbox.RestrictThread(l)
		if err != nil {
			errc <- err
			return
		}
		lr := landlockReport(res, paths, nil, nil)
		m, _ := json.Marshal(hostMarker{
			Report: HostReport{Confined: res.Enforced, Method: "reexec", Landlock: &lr, Policies: len(cfg.Policies)},
			Hashes: hashes,
		})
		env := append(withoutEnv(os.Environ(), envHostConfined), envHostConfined+"="+string(m))
		errc <- os.NewSyscallError("execve(/proc/self/exe)", syscall.Exec("/proc/self/exe", os.Args, env))
	}()
	return nil, fmt.Errorf("launcher: confine host: %w", <-errc)
}

// finishHost clears PR_SET_DUMPABLE and records the confinement: workers
// (same uid) can neither ptrace the host nor open its /proc entries. The
// host, their parent, still reads their memory: that check is on the
// worker, and the worker's domain nests inside the host's (R6).
func finishHost(r HostReport, hashes []string) (*HostReport, error) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("launcher: confine host: prctl(PR_SET_DUMPABLE): %w", err)
	}
	d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	r.Dumpable = d != 0
	host.report, host.hashes, host.done = r, hashes, true
	return &r, nil
}

// initHost is called by Init: a program re-executed by ConfineHost finds
// its confinement in the environment.
func initHost() {
	v, ok := os.LookupEnv(envHostConfined)
	if !ok {
		return
	}
	os.Unsetenv(envHostConfined)
	// The re-executed host is about to start a worker: probe user
	// notification (a thread, a filter, one notified call: 0.1-0.4 ms)
	// while main parses its policy again; Start then finds the answer
	// cached.
	go sys.ProbeNotif()
	var m hostMarker
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox-exec: bad %s: %v\n", envHostConfined, err)
		os.Exit(exitSetup)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	// execve made the new image dumpable again.
	if _, err := finishHost(m.Report, m.Hashes); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox-exec: %v\n", err)
		os.Exit(exitSetup)
	}
}

// hostRuleset builds the host's ruleset from cfg.
func hostRuleset(cfg HostConfig) (*sandbox.Landlock, []llPath) {
	userns := false
	minABI := 0
	var targets []string
	for _, p := range cfg.Policies {
		for _, n := range p.Namespaces() {
			if n == "user" {
				userns = true
			}
		}
		if len(p.Namespaces()) > 0 && !privileged() {
			userns = true // added implicitly, see planNamespaces
		}
		for _, r := range p.Requires() {
			switch r.Feature {
			case "landlock":
				minABI = max(minABI, r.MinVersion)
			case "userns", "pidns", "ipcns", "utsns", "netns":
				// Start probes the namespace with a user namespace
				// child, whose id maps it writes.
				userns = true
			}
		}
	}
	if len(cfg.Policies) > 0 {
		env := workerEnv(cfg.Policies[0].Env(), os.Environ())
		for _, prog := range cfg.Programs {
			if t := resolveTarget(prog, env, ""); t != "" {
				targets = append(targets, t)
			}
		}
	}
	l, paths := hostLandlock(cfg.Policies, targets, cfg.Grants, userns)
	for _, p := range cfg.Policies {
		for _, f := range p.Files() {
			paths = append(paths, llPath{sandbox.LandlockPath{Path: f, Access: sandbox.AccessFSReadFile}, "host: policy file"})
		}
	}
	for _, w := range cfg.Writable {
		paths = append(paths, llPath{sandbox.LandlockPath{Path: w, Access: sandbox.AccessFSWriteFile | sandbox.AccessFSTruncate}, "host: output file"})
	}
	l.Paths = l.Paths[:0]
	for _, pa := range paths {
		l.Paths = append(l.Paths, pa.LandlockPath)
	}
	l.MinABI = minABI
	return l, paths
}

var dumpMu sync.Mutex

// whileDumpable runs fn, which forks a child into a new user namespace,
// with this process dumpable for the time. A child inherits its parent's
// dumpable flag until it execs, and the /proc files of a non-dumpable
// process belong to root: an unprivileged host that cleared
// PR_SET_DUMPABLE (ConfineHost) could not write its new child's uid_map
// and gid_map. Root can, so only unprivileged hosts pay for it; workers
// already running cannot use the moment (the filter denies ptrace and
// process_vm_readv, Landlock forbids them to trace an ancestor domain, and
// the broker denies the host's /proc entries).
func whileDumpable(userns bool, fn func() error) error {
	if !userns || privileged() {
		return fn()
	}
	dumpMu.Lock()
	defer dumpMu.Unlock()
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 0 {
		return fn()
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		return fn()
	}
	defer unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	return fn()
}

// hostReport returns the host's confinement as it is now.
func hostReport() HostReport {
	host.mu.Lock()
	defer host.mu.Unlock()
	if host.done {
		return host.report
	}
	d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	return HostReport{Dumpable: d != 0}
}

// privileged reports whether this process may create namespaces other
// than a user namespace itself (CAP_SYS_ADMIN).
func privileged() bool {
	c, err := sandbox.ReadCapabilities()
	return err == nil && c.Effective&(1<<unix.CAP_SYS_ADMIN) != 0
}

// withoutEnv returns env without the entries of name.
func withoutEnv(env []string, name string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if len(kv) > len(name) && kv[:len(name)] == name && kv[len(name)] == '=' {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// hostConfined reports whether this process has been confined
// (ConfineHost, or a Cmd with ConfineHost set).
func hostConfined() bool {
	host.mu.Lock()
	defer host.mu.Unlock()
	return host.done
}
