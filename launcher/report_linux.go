//go:build linux

package launcher

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

// Report says which layers are enforced for one worker, as the init stage
// saw them just before it exec'd the worker (rights read back from the
// kernel, not copied from the policy). It never claims a layer that is not
// active (security.md R55), and Downgrades lists everything taken at less
// than the policy asked, with the reason. The JSON form is stable:
// Version changes when a field changes meaning.
type Report struct {
	Version int `json:"version"`
	// Pid is the worker's pid as the host sees it.
	Pid int `json:"pid"`
	// Program is the program as the host resolved it ("" if it could not).
	Program      string             `json:"program"`
	Seccomp      SeccompReport      `json:"seccomp"`
	Landlock     LandlockReport     `json:"landlock"`
	Host         HostReport         `json:"host"`
	Namespaces   NamespacesReport   `json:"namespaces"`
	Capabilities CapabilitiesReport `json:"capabilities"`
	// User is who the worker runs as (Cmd.Credential, or the host's
	// user), read back from the kernel by the init stage.
	User UserReport `json:"user"`
	// NoNewPrivs is PR_GET_NO_NEW_PRIVS of the init stage's thread.
	NoNewPrivs bool `json:"no_new_privs"`
	// NewSession: the worker leads a session of its own and has no
	// controlling terminal (TIOCSTI, TIOCLINUX).
	NewSession bool `json:"new_session"`
	// Rlimits are the limits read back after setting them.
	Rlimits []RlimitReport `json:"rlimits"`
	// FDs are the descriptors the worker starts with.
	FDs []int `json:"fds"`
	// Env names the worker's environment variables (values are not
	// reported).
	Env []string `json:"env"`
	// Submounts are the mounts below the roots of the policy's allow
	// rules (security.md R43).
	Submounts []Submount `json:"submounts"`
	// Requires are the policy's `require` lines, all met.
	Requires   []string    `json:"requires"`
	Downgrades []Downgrade `json:"downgrades"`
}

// SeccompReport describes the installed filter.
type SeccompReport struct {
	Enforced         bool     `json:"enforced"`
	Instructions     int      `json:"instructions"`
	UserNotif        bool     `json:"user_notif"`
	AddfdSend        bool     `json:"addfd_send"`
	WaitKillableRecv bool     `json:"wait_killable_recv"`
	SyncWakeup       bool     `json:"sync_wakeup"`
	Net              string   `json:"net"`
	SysVIPC          bool     `json:"sysv_ipc"`
	Default          string   `json:"default"`
	Notified         []string `json:"notified"`
	// UnsafeAllow are the dangerous syscalls the policy's `syscall
	// unsafe-allow` lines allow (those of this architecture), sorted:
	// what they reach is limited by Landlock alone (R54).
	UnsafeAllow []string `json:"unsafe_allow"`
}

// LandlockReport describes a Landlock domain: rights as names
// ("read_file", "bind_tcp", "signal").
type LandlockReport struct {
	// ABI is the Landlock ABI the ruleset was built for; for a worker
	// whose policy turned Landlock off, the kernel's.
	ABI      int  `json:"abi"`
	Enforced bool `json:"enforced"`
	// Disabled is "disabled by policy (FILE:LINE)" when the policy's
	// `landlock off` turned the worker's ruleset off; then nothing else
	// is set but ABI.
	Disabled      string   `json:"disabled,omitempty"`
	HandledFS     []string `json:"handled_fs"`
	HandledNet    []string `json:"handled_net"`
	Scoped        []string `json:"scoped"`
	DroppedFS     []string `json:"dropped_fs"`
	DroppedNet    []string `json:"dropped_net"`
	DroppedScoped []string `json:"dropped_scoped"`
	// Rules is the number of rules the kernel accepted.
	Rules int                  `json:"rules"`
	Paths []LandlockPathReport `json:"paths"`
	Ports []LandlockPortReport `json:"ports"`
	// SkippedPaths did not exist; WidenedPaths did not exist either and
	// were replaced by their nearest existing ancestor.
	SkippedPaths []string `json:"skipped_paths"`
	WidenedPaths []string `json:"widened_paths"`
	// DenyRules cannot be expressed in Landlock: the broker alone
	// enforces them.
	DenyRules []string `json:"deny_rules"`
	// AllThreads: every thread of the process is restricted (the host).
	AllThreads bool `json:"all_threads"`
}

// LandlockPathReport is one path rule: its glob-free prefix, the rights,
// and the rule or need it comes from.
type LandlockPathReport struct {
	Path   string   `json:"path"`
	Access []string `json:"access"`
	Source string   `json:"source"`
}

// LandlockPortReport is one TCP port rule.
type LandlockPortReport struct {
	Port   int      `json:"port"`
	Access []string `json:"access"`
}

// NamespacesReport lists the namespaces the policy asked for and those
// the worker is in, verified by the init stage (its /proc/self/ns links
// differ from the host's).
type NamespacesReport struct {
	Requested    []string        `json:"requested"`
	Applied      []string        `json:"applied"`
	UserImplicit bool            `json:"user_implicit"`
	Skipped      []NamespaceSkip `json:"skipped"`
}

// UserReport is the worker's identity: its uid and gid (real,
// effective and saved alike) and its supplementary groups, sorted. The
// ids are those of the init stage's user namespace, which maps them to
// the same ids outside.
type UserReport struct {
	Uid    int   `json:"uid"`
	Gid    int   `json:"gid"`
	Groups []int `json:"groups"`
}

// CapabilitiesReport are the init stage's capability sets right before
// exec, as hexadecimal masks. With an empty bounding set and no ambient
// capabilities, the worker starts with none, whatever its uid.
type CapabilitiesReport struct {
	Effective   string `json:"effective"`
	Permitted   string `json:"permitted"`
	Inheritable string `json:"inheritable"`
	Bounding    string `json:"bounding"`
	Ambient     string `json:"ambient"`
}

// RlimitReport is one resource limit; values are decimal or "unlimited".
type RlimitReport struct {
	Name     string `json:"name"`
	Resource int    `json:"resource"`
	Soft     string `json:"soft"`
	Hard     string `json:"hard"`
}

// Submount is a mount point below the root of an allow rule (the
// longest glob-free prefix of its pattern, security.md R43). To the broker,
// to Landlock's path-beneath rules and to path strings it is "beneath" the
// rule, while it is another file system or, for a bind mount, a directory
// from anywhere (FSRoot names which one): the rule grants it all. Mounts
// are listed as the host saw them when it started the worker.
type Submount struct {
	// Root is the rule's glob-free prefix, Rule its FILE:LINE (or
	// grant:N).
	Root string `json:"root"`
	Rule string `json:"rule"`
	// Mount is the mount point, FSType its file system type, FSRoot the
	// directory of that file system mounted there ("/" for a whole file
	// system; another path for a bind mount).
	Mount  string `json:"mount"`
	FSType string `json:"fstype"`
	FSRoot string `json:"fs_root"`
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct{ point, fsType, fsRoot string }

// readMountInfo parses /proc/self/mountinfo; nil if it cannot be read.
func readMountInfo() []mountInfo {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return parseMountInfo(string(b))
}

// parseMountInfo parses mountinfo text (proc_pid_mountinfo(5)): "ID
// PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER".
func parseMountInfo(text string) []mountInfo {
	var out []mountInfo
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) < 6 || sep < 6 || sep+1 >= len(f) {
			continue
		}
		out = append(out, mountInfo{point: unescapeMount(f[4]), fsType: f[sep+1], fsRoot: unescapeMount(f[3])})
	}
	return out
}

// unescapeMount decodes the octal escapes (\040 for a space) of a
// mountinfo path.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// submounts lists, for each root, the mount points strictly below it.
func submounts(roots []root, mounts []mountInfo) []Submount {
	out := []Submount{}
	for _, r := range roots {
		below := r.path + "/"
		if r.path == "/" {
			below = "/"
		}
		for _, m := range mounts {
			if m.point != r.path && strings.HasPrefix(m.point, below) {
				out = append(out, Submount{Root: r.path, Rule: r.source, Mount: m.point, FSType: m.fsType, FSRoot: m.fsRoot})
			}
		}
	}
	return out
}

// Downgrade is a layer, or part of one, taken at less than asked.
type Downgrade struct {
	Layer  string `json:"layer"`
	Wanted string `json:"wanted"`
	Got    string `json:"got"`
	Reason string `json:"reason"`
}

var rlimitNames = []string{"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile", "memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"}

func limitValue(v uint64) string {
	if v == math.MaxUint64 {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func hexMask(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// landlockReport renders a Landlock result with the rules it was built
// from.
func landlockReport(res sandbox.LandlockResult, paths []llPath, ports []sandbox.LandlockPort, denies []string) LandlockReport {
	r := LandlockReport{
		ABI:           res.ABI,
		Enforced:      res.Enforced,
		HandledFS:     sandbox.LandlockFSNames(res.HandledFS),
		HandledNet:    sandbox.LandlockNetNames(res.HandledNet),
		Scoped:        sandbox.LandlockScopeNames(res.Scoped),
		DroppedFS:     sandbox.LandlockFSNames(res.DroppedFS),
		DroppedNet:    sandbox.LandlockNetNames(res.DroppedNet),
		DroppedScoped: sandbox.LandlockScopeNames(res.DroppedScoped),
		Rules:         res.Rules,
		Paths:         []LandlockPathReport{},
		Ports:         []LandlockPortReport{},
		SkippedPaths:  nonNil(res.SkippedPaths),
		WidenedPaths:  nonNil(res.WidenedPaths),
		DenyRules:     nonNil(denies),
		AllThreads:    res.AllThreads,
	}
	if res.Enforced {
		source := map[string]string{}
		for _, p := range paths {
			if _, ok := source[p.Path]; !ok {
				source[p.Path] = p.Source
			}
		}
		for _, a := range res.Added {
			r.Paths = append(r.Paths, LandlockPathReport{Path: a.Path, Access: sandbox.LandlockFSNames(a.Access), Source: source[a.Requested]})
		}
		if res.HandledNet != 0 {
			for _, p := range ports {
				r.Ports = append(r.Ports, LandlockPortReport{Port: int(p.Port), Access: sandbox.LandlockNetNames(p.Access & res.HandledNet)})
			}
		}
	}
	return r
}

// landlockReport is the worker's Landlock report: what the init stage
// enforced, or that the policy turned Landlock off.
func (p *plan) landlockReport(res sandbox.LandlockResult) LandlockReport {
	if p.landlockOff != "" {
		r := landlockReport(sandbox.LandlockResult{ABI: sandbox.LandlockABI()}, nil, nil, nil)
		r.Disabled = "disabled by policy (" + p.landlockOff + ")"
		return r
	}
	return landlockReport(res, p.llPaths, p.spec.Landlock.Ports, p.denies)
}

// report builds the worker's report from the plan and what the init stage
// read back.
func (p *plan) report(st stageReport, pid int, env []string) *Report {
	r := &Report{
		Version: 1,
		Pid:     pid,
		Program: p.target,
		Seccomp: SeccompReport{
			Enforced:         true,
			Instructions:     len(p.spec.Filter),
			UserNotif:        true,
			AddfdSend:        p.notif.AddfdSend == nil,
			WaitKillableRecv: st.WaitKillableRecv,
			SyncWakeup:       p.notif.SyncWakeup == nil,
			Net:              p.net.mode.String(),
			SysVIPC:          p.profile.SysVIPC,
			Default:          p.profile.Default.String(),
			Notified:         []string{},
		},
		Landlock: p.landlockReport(st.Landlock),
		Host:     hostReport(),
		Namespaces: NamespacesReport{
			Requested:    nonNil(p.ns.requested),
			Applied:      nonNil(st.Namespaces),
			UserImplicit: p.ns.implicitUser,
			Skipped:      p.ns.skipped,
		},
		Capabilities: CapabilitiesReport{
			Effective:   hexMask(st.Capabilities.Effective),
			Permitted:   hexMask(st.Capabilities.Permitted),
			Inheritable: hexMask(st.Capabilities.Inheritable),
			Bounding:    hexMask(st.Capabilities.Bounding),
			Ambient:     hexMask(st.Capabilities.Ambient),
		},
		User:       st.User,
		NoNewPrivs: st.NoNewPrivs,
		NewSession: st.NewSession,
		Rlimits:    []RlimitReport{},
		FDs:        st.FDs,
		Env:        []string{},
		Submounts:  submounts(p.roots, readMountInfo()),
		Requires:   nonNil(p.reqs),
		Downgrades: []Downgrade{},
	}
	if p.profile.Default == 0 {
		r.Seccomp.Default = "errno ENOSYS"
	}
	if r.Namespaces.Skipped == nil {
		r.Namespaces.Skipped = []NamespaceSkip{}
	}
	if r.FDs == nil {
		r.FDs = []int{}
	}
	if r.User.Groups == nil {
		r.User.Groups = []int{}
	}
	if n, err := p.profile.Notified(); err == nil {
		r.Seccomp.Notified = n
	}
	r.Seccomp.UnsafeAllow = nonNil(slices.Compact(slices.Sorted(slices.Values(p.profile.UnsafeAllow))))
	for _, l := range st.Rlimits {
		name := "rlimit" + itoa(l.Resource)
		if l.Resource >= 0 && l.Resource < len(rlimitNames) {
			name = rlimitNames[l.Resource]
		}
		r.Rlimits = append(r.Rlimits, RlimitReport{Name: name, Resource: l.Resource, Soft: limitValue(l.Cur), Hard: limitValue(l.Max)})
	}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		r.Env = append(r.Env, name)
	}
	r.Downgrades = p.downgrades(st, r)
	return r
}

// downgrades lists what was taken at less than the policy asked.
func (p *plan) downgrades(st stageReport, r *Report) []Downgrade {
	out := []Downgrade{}
	ll := st.Landlock
	switch {
	case p.landlockOff != "":
		// Asked for by the policy: not a downgrade (Landlock.Disabled
		// says so, and Lint warns about what then goes unenforced).
	case !ll.Enforced && ll.ABI == 0:
		out = append(out, Downgrade{"landlock", "Landlock ruleset (exec, file, network rules, scopes)", "none",
			"Landlock is missing or disabled (Linux 5.13, CONFIG_SECURITY_LANDLOCK, lsm=landlock): execve is limited by nothing but the broker-served loader, TCP ports and signals are not restricted"})
	default:
		if d := ll.DroppedFS &^ llResolveUnix; d != 0 {
			out = append(out, Downgrade{"landlock", "file system rights " + strings.Join(sandbox.LandlockFSNames(d), ","), "not handled",
				fmt.Sprintf("Landlock ABI %d does not know them", ll.ABI)})
		}
		if ll.DroppedFS&llResolveUnix != 0 {
			out = append(out, Downgrade{"landlock", "resolve_unix (no connect to pathname UNIX sockets)", "not handled",
				fmt.Sprintf("Landlock ABI %d < 9: under net inet the worker may connect to any pathname UNIX socket it can write to (D-Bus, X11); use net none or net unix to decide", ll.ABI)})
		}
		if ll.DroppedNet != 0 {
			out = append(out, Downgrade{"landlock", "TCP rules " + strings.Join(sandbox.LandlockNetNames(ll.DroppedNet), ","), "not handled",
				fmt.Sprintf("Landlock ABI %d < 4 (Linux 6.7): TCP ports are not restricted", ll.ABI)})
		}
		if ll.DroppedScoped != 0 {
			out = append(out, Downgrade{"landlock", "scopes " + strings.Join(sandbox.LandlockScopeNames(ll.DroppedScoped), ","), "not scoped",
				fmt.Sprintf("Landlock ABI %d < 6 (Linux 6.12)", ll.ABI)})
		}
	}
	for _, s := range p.ns.skipped {
		out = append(out, Downgrade{"namespaces", s.Name, "host's " + s.Name + " namespace", s.Reason})
	}
	for _, n := range p.ns.applied {
		if !slices.Contains(st.Namespaces, n) {
			out = append(out, Downgrade{"namespaces", n, "not verified", "the init stage's /proc/self/ns/" + n + " is the host's"})
		}
	}
	if p.spec.WaitKillableRecv && !st.WaitKillableRecv {
		out = append(out, Downgrade{"seccomp", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "not set",
			"Linux 5.19: a signal after the broker received a request restarts the call (security.md R24-R25)"})
	}
	if !r.Seccomp.SyncWakeup {
		out = append(out, Downgrade{"broker", "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP", "not set", "Linux 6.6: brokered calls are slower"})
	}
	if st.Capabilities.Bounding != 0 {
		out = append(out, Downgrade{"capabilities", "empty bounding set", "bounding set " + hexMask(st.Capabilities.Bounding),
			"no CAP_SETPCAP to drop it (unprivileged host without a user namespace); no_new_privs still keeps execve from granting any capability"})
	}
	if cmdConfinesHost(p) && !r.Host.Confined {
		out = append(out, Downgrade{"host", "Landlock confinement of the host", "none", "Landlock is missing or disabled"})
	}
	return out
}

// cmdConfinesHost is set by Start for a Cmd with ConfineHost.
func cmdConfinesHost(p *plan) bool { return p.confineHost }
