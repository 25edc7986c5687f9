//go:build linux

package launcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/policy"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

// PoolOptions configure a Pool.
type PoolOptions struct {
	// Size is the number of sandboxed init stages kept ready; 0 means 2.
	Size int

	// Dir is the working directory the stages start in; empty means the
	// host's at NewPool. A Cmd with another Dir moves there at handoff
	// (a brokered chdir, so the policy must let the worker stat it).
	Dir string

	// Programs are the programs the pool's workers run. Landlock is
	// applied before the program is known, so, as Command does for its
	// one program, the pool gives Landlock's execute right to the ELF
	// interpreter of each program listed here that the policy lets run.
	// Start refuses a program whose interpreter the pool's Landlock rules
	// do not cover.
	Programs []string

	// GrantRoots bound the per-command Grants of the pool's workers.
	// Landlock is applied before the command is known, so every stage
	// gets the Policy's rules plus these; the broker still decides each
	// worker exactly by the policy and its own Cmd.Grants. Start refuses a
	// grant that no root covers (with at least the grant's rights), rather
	// than let Landlock refuse it later. Leave empty when workers get no
	// grants.
	GrantRoots []policy.Grant

	// Credential is the user the pool's workers run as, as
	// Cmd.Credential; nil means the host's. The stages switch to it when
	// they start, before a command is known: Pool.Command gives each Cmd
	// a copy, and Start refuses a Cmd whose Credential was changed.
	Credential *syscall.Credential
}

// Pool keeps init stages ready that have applied every layer of its
// policy (namespaces, rlimits, capabilities, no_new_privs, Landlock, the
// seccomp filter with its listener held by the host) and wait only for a
// program: a worker from Pool.Command costs one message and one execve
// instead of a fork, a Go start and the whole setup. The pool refills in
// the background and keeps at most Size stages. It is safe for concurrent
// use.
type Pool struct {
	policy *policy.Policy
	opts   PoolOptions
	plan   *plan
	ready  chan *stage
	closed chan struct{}
	done   chan struct{} // the refill goroutine has returned
	once   sync.Once

	// handoffs counts Starts between take and the exec of their program;
	// the refill waits for them (kick wakes it) so that starting the next
	// stage, a whole Go process start, does not compete with them for the
	// CPU.
	handoffs atomic.Int32
	kick     chan struct{}

	mu      sync.Mutex
	lastErr error // the refill's last failure
	taken   int   // stages handed out ready
	cold    int   // stages started on demand because none was ready
}

// ErrPoolClosed is returned by Start for a Cmd of a closed Pool.
var ErrPoolClosed = errors.New("launcher: pool closed")

// NewPool starts a pool of workers under p. It starts the first stage
// itself, so a policy this kernel cannot apply fails here, not at the
// first Start.
func NewPool(p *policy.Policy, opts PoolOptions) (*Pool, error) {
	if p == nil {
		return nil, &Error{Op: "policy", Err: errors.New("no policy")}
	}
	if opts.Size < 0 || opts.Size > 256 {
		return nil, &Error{Op: "pool", Err: fmt.Errorf("Size %d out of range [0, 256]", opts.Size)}
	}
	if opts.Size == 0 {
		opts.Size = 2
	}
	if err := checkCredential(opts.Credential); err != nil {
		return nil, err
	}
	opts.Credential = cloneCredential(opts.Credential)
	if opts.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, &Error{Op: "pool", Err: err}
		}
		opts.Dir = wd
	}
	for _, g := range opts.GrantRoots {
		if _, err := p.Matcher().With(g); err != nil {
			return nil, &Error{Op: "grants", Err: err}
		}
	}
	pl, err := newPlan(p, "", opts.GrantRoots)
	if err != nil {
		return nil, err
	}
	for _, prog := range opts.Programs {
		target := resolveTarget(prog, nil, opts.Dir)
		if target == "" || !p.Matcher().Decide(target, policy.Exec).Allowed {
			continue
		}
		if interp := elfInterp(target); interp != "" && pl.spec.Landlock != nil && !pl.covers(interp, llExec) {
			lp := sandbox.LandlockPath{Path: interp, Access: llExec}
			pl.spec.Landlock.Paths = append(pl.spec.Landlock.Paths, lp)
			pl.llPaths = append(pl.llPaths, llPath{lp, "interpreter of " + target})
		}
	}
	pool := &Pool{
		policy: p,
		opts:   opts,
		plan:   pl,
		// The refill goroutine holds one more stage while it waits to
		// hand it over: Size stages in all.
		ready:  make(chan *stage, opts.Size-1),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
	}
	first, err := startStage(pool.stageConfig())
	if err != nil {
		return nil, err
	}
	go pool.refill(first)
	return pool, nil
}

func (p *Pool) stageConfig() stageConfig {
	return stageConfig{plan: p.plan, spec: initSpec{Pooled: true}, dir: p.opts.Dir, user: stageUser(p.opts.Credential)}
}

// refill keeps the pool full until Close.
func (p *Pool) refill(st *stage) {
	defer close(p.done)
	backoff := 10 * time.Millisecond
	for {
		if st == nil {
			p.waitHandoffs()
			var err error
			if st, err = startStage(p.stageConfig()); err != nil {
				p.mu.Lock()
				p.lastErr = err
				p.mu.Unlock()
				select {
				case <-p.closed:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			backoff = 10 * time.Millisecond
		}
		select {
		case p.ready <- st:
			st = nil
		case <-p.closed:
			st.discard()
			return
		}
	}
}

// waitHandoffs waits until no Start is handing a stage its program, for
// at most 50 ms (a slow BeforeExec must not stop the refill).
func (p *Pool) waitHandoffs() {
	limit := time.NewTimer(50 * time.Millisecond)
	defer limit.Stop()
	for p.handoffs.Load() > 0 {
		select {
		case <-p.kick:
		case <-limit.C:
			return
		case <-p.closed:
			return
		}
	}
}

// handoffDone ends a Start's handoff (see handoffs).
func (p *Pool) handoffDone() {
	p.handoffs.Add(-1)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// take hands out a ready stage, or starts one when none is.
func (p *Pool) take() (*stage, error) {
	for {
		select {
		case <-p.closed:
			return nil, ErrPoolClosed
		default:
		}
		select {
		case st := <-p.ready:
			if !st.alive() {
				st.discard()
				continue
			}
			p.mu.Lock()
			p.taken++
			p.mu.Unlock()
			return st, nil
		default:
		}
		st, err := startStage(p.stageConfig())
		if err == nil {
			p.mu.Lock()
			p.cold++
			p.mu.Unlock()
		}
		return st, err
	}
}

// PoolStats count how Starts were served.
type PoolStats struct {
	// Ready is the number of stages waiting now.
	Ready int
	// Taken Starts got a ready stage; Cold ones had to start a stage
	// because none was ready.
	Taken, Cold int
	// LastError is the refill's last failure to start a stage, if any.
	LastError error
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Ready: len(p.ready), Taken: p.taken, Cold: p.cold, LastError: p.lastErr}
}

// Close kills the stages waiting in the pool and stops refilling it.
// Workers already started are not affected. Start of a Cmd of a closed
// pool returns ErrPoolClosed.
func (p *Pool) Close() error {
	p.once.Do(func() {
		close(p.closed)
		<-p.done
		for {
			select {
			case st := <-p.ready:
				st.discard()
			default:
				return
			}
		}
	})
	return nil
}

// Command returns a Cmd that runs name with args under the pool's policy
// in one of its stages. Set its fields as for Command; Policy and
// Credential must stay the pool's, and Grants must fall under
// PoolOptions.GrantRoots.
func (p *Pool) Command(name string, arg ...string) *Cmd {
	c := Command(p.policy, name, arg...)
	c.pool = p
	c.Credential = cloneCredential(p.opts.Credential)
	return c
}

// CommandContext is Command with a context, as CommandContext.
func (p *Pool) CommandContext(ctx context.Context, name string, arg ...string) *Cmd {
	c := CommandContext(ctx, p.policy, name, arg...)
	c.pool = p
	c.Credential = cloneCredential(p.opts.Credential)
	return c
}

// alive reports whether the stage still waits: it never sends anything
// unasked, so a readable or hung-up socket means it is gone.
func (st *stage) alive() bool {
	rc, err := st.conn.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		ok = err == nil && n == 0
	})
	return ok
}

// covers reports whether the plan's Landlock rules give access on path.
func (pl *plan) covers(path string, access uint64) bool {
	for _, lp := range pl.llPaths {
		if lp.Access&access == access && (path == lp.Path || strings.HasPrefix(path, strings.TrimSuffix(lp.Path, "/")+"/")) {
			return true
		}
	}
	return false
}

// checkPooled refuses, before a stage is spent, a command the pool's
// Landlock rules would refuse later: a program whose interpreter no rule
// lets run, a grant no root covers.
func (p *Pool) checkPooled(c *Cmd, target string) error {
	if c.Policy != p.policy {
		return &Error{Op: "policy", Err: errors.New("a pooled command runs under its pool's policy; use launcher.Command for another")}
	}
	if !sameCredential(c.Credential, p.opts.Credential) {
		return &Error{Op: "credential", Err: fmt.Errorf("a pooled command runs as its pool's user (%s), not %s: the stages switched to it before the command was known; set PoolOptions.Credential, or use launcher.Command for another user", credentialString(p.opts.Credential), credentialString(c.Credential))}
	}
	if p.plan.spec.Landlock == nil {
		return nil
	}
	if interp := elfInterp(target); interp != "" && !p.plan.covers(interp, llExec) {
		return &Error{Op: "landlock", Err: fmt.Errorf("%s needs its interpreter %s, which the pool's Landlock rules do not let run: list %s in PoolOptions.Programs", target, interp, c.Path)}
	}
	for _, g := range c.Grants {
		if !p.plan.covers(globFreePrefix(filepath.Clean(g.Pattern)), landlockRights(g.Rights)) {
			return &Error{Op: "grants", Err: fmt.Errorf("grant %s %s is outside the pool's Landlock rules: add a root that covers it to PoolOptions.GrantRoots", g.Rights, g.Pattern)}
		}
	}
	return nil
}

func cloneCredential(cr *syscall.Credential) *syscall.Credential {
	if cr == nil {
		return nil
	}
	c := *cr
	c.Groups = slices.Clone(cr.Groups)
	return &c
}

// sameCredential reports whether a and b make the same user: the same
// ids and, unless both keep the host's groups, the same set of groups.
func sameCredential(a, b *syscall.Credential) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Uid != b.Uid || a.Gid != b.Gid || a.NoSetGroups != b.NoSetGroups {
		return false
	}
	if a.NoSetGroups {
		return true
	}
	ga, gb := slices.Clone(a.Groups), slices.Clone(b.Groups)
	slices.Sort(ga)
	slices.Sort(gb)
	return slices.Equal(slices.Compact(ga), slices.Compact(gb))
}

// credentialString describes cr for an error message.
func credentialString(cr *syscall.Credential) string {
	if cr == nil {
		return "the host's user"
	}
	s := fmt.Sprintf("uid %d, gid %d", cr.Uid, cr.Gid)
	switch {
	case cr.NoSetGroups:
		s += ", the host's groups"
	case len(cr.Groups) > 0:
		s += fmt.Sprintf(", groups %v", cr.Groups)
	}
	return s
}
