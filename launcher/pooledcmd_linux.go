//go:build linux

package launcher

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// startPooled is Start for a Cmd of a Pool: it looks the program up in
// the host, takes a waiting stage, starts the broker for this command's
// grants, and sends the stage the program and its fds.
func (c *Cmd) startPooled(args, env []string) error {
	p := c.pool
	select {
	case <-p.closed:
		return ErrPoolClosed
	default:
	}
	// As for Command: the worker starts in Dir, relative to where the
	// host is now, or there.
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return &Error{Op: "chdir", Err: err}
	}
	name := c.Path
	if strings.Contains(name, "/") && !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	path, err := lookPath(name, env)
	if err != nil {
		return &Error{Op: "lookup", Err: err}
	}
	target := resolveTarget(path, env, dir)
	if err := p.checkPooled(c, target); err != nil {
		return err
	}
	if c.ConfineHost {
		// The host serves every worker of the pool: its confinement is
		// the pool's policy and grant roots, not this command's grants.
		cfg := HostConfig{Policies: []*policy.Policy{p.policy}, Programs: p.opts.Programs, Grants: p.opts.GrantRoots}
		if _, err := confineHost(cfg, false); err != nil {
			return &Error{Op: "confine host", Err: err}
		}
	}
	if err := c.newBroker(); err != nil {
		return err
	}
	spec := execSpec{Path: path, Args: args, Env: env}
	if dir != p.opts.Dir {
		spec.Dir = dir
	}
	payload, err := json.Marshal(spec)
	if err != nil {
		return &Error{Op: "hand off", Err: err}
	}
	// A stage can die while it waits (killed by someone, or OOM); when it
	// is found gone before it read the program, the next one is taken.
	for attempt := 1; ; attempt++ {
		err := c.handOffPooled(target, env, payload)
		if err == nil || !stageGone(err) || attempt == 3 {
			return err
		}
		c.wait, c.Process, c.release, c.report = nil, nil, nil, nil
		c.stopServe, c.serveDone = nil, nil
	}
}

// stageGone reports whether a handoff failed because the stage was gone
// before it read msgExec: the send failed, or the stage's end was closed
// with the message unread.
func stageGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// handOffPooled takes a stage and hands it the program.
func (c *Cmd) handOffPooled(target string, env []string, payload []byte) error {
	files, pio, err := c.pooledFiles()
	if err != nil {
		return err
	}
	c.pool.handoffs.Add(1)
	defer c.pool.handoffDone()
	st, err := c.pool.take()
	if err != nil {
		pio.closeAll()
		return err
	}
	c.adopt(st)
	defer st.conn.Close()
	// The stage's fds at exec are exactly these (every other is
	// close-on-exec).
	st.ready.Report.FDs = make([]int, len(files))
	for i := range files {
		st.ready.Report.FDs[i] = i
	}
	if err := c.serve(st, c.pool.plan, env); err != nil {
		pio.closeAll()
		c.abort()
		return err
	}
	c.report.Program = target
	err = c.handOff(st.conn, msgExec, payload, files...)
	pio.closeAfterStart()
	if err != nil {
		pio.closeAll()
		c.abort()
		return err
	}
	c.pio = pio
	pio.start()
	c.exited = make(chan struct{})
	if c.ctx != nil {
		go c.watchContext()
	}
	return nil
}

// watchContext cancels a pooled worker when its context is done before
// Wait has reaped it, like exec.Cmd does for its own process.
func (c *Cmd) watchContext() {
	select {
	case <-c.ctx.Done():
		if c.Cancel != nil {
			c.Cancel()
		} else {
			killTree(c.Process.Pid)
		}
	case <-c.exited:
	}
}

// pooledIO is a pooled worker's stdio: the stage was started with
// /dev/null, so the host makes the files the worker gets (pipes with
// copying goroutines for readers and writers that are not files), as
// exec.Cmd does in its own Start.
type pooledIO struct {
	parentEnds []*os.File // closed after the copies
	childEnds  []*os.File // closed once the worker has them
	copies     []func() error
	errs       chan error
}

// pooledFiles returns the worker's fds 0, 1, 2 and ExtraFiles.
func (c *Cmd) pooledFiles() ([]*os.File, *pooledIO, error) {
	pio := &pooledIO{}
	var devNull *os.File
	null := func() (*os.File, error) {
		if devNull == nil {
			f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return nil, err
			}
			devNull = f
			pio.childEnds = append(pio.childEnds, f)
		}
		return devNull, nil
	}
	files := make([]*os.File, 3, 3+len(c.ExtraFiles))
	fail := func(err error) ([]*os.File, *pooledIO, error) {
		pio.closeAll()
		return nil, nil, &Error{Op: "stdio", Err: err}
	}
	switch r := c.Stdin.(type) {
	case nil:
		f, err := null()
		if err != nil {
			return fail(err)
		}
		files[0] = f
	case *os.File:
		files[0] = r
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		files[0] = pr
		pio.childEnds = append(pio.childEnds, pr)
		pio.parentEnds = append(pio.parentEnds, pw)
		pio.copies = append(pio.copies, func() error {
			_, err := io.Copy(pw, r)
			if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed) {
				err = nil // the worker stopped reading, or Wait gave up
			}
			if cerr := pw.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
				err = cerr
			}
			return err
		})
	}
	output := func(w io.Writer) (*os.File, error) {
		switch w := w.(type) {
		case nil:
			return null()
		case *os.File:
			return w, nil
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		pio.childEnds = append(pio.childEnds, pw)
		pio.parentEnds = append(pio.parentEnds, pr)
		pio.copies = append(pio.copies, func() error {
			_, err := io.Copy(w, pr)
			if errors.Is(err, os.ErrClosed) {
				err = nil // closed by Wait after WaitDelay
			}
			pr.Close()
			return err
		})
		return pw, nil
	}
	var err error
	if files[1], err = output(c.Stdout); err != nil {
		return fail(err)
	}
	if c.Stderr != nil && interfaceEqual(c.Stderr, c.Stdout) {
		files[2] = files[1]
	} else if files[2], err = output(c.Stderr); err != nil {
		return fail(err)
	}
	files = append(files, c.ExtraFiles...)
	for _, f := range files {
		// Fd puts the file in blocking mode, as exec.Cmd's Start does for
		// what it passes on: a worker expects blocking stdio (the pipes
		// above are non-blocking for this process's poller).
		f.Fd()
	}
	return files, pio, nil
}

// interfaceEqual compares two writers without panicking on
// incomparable dynamic types.
func interfaceEqual(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

func (pio *pooledIO) closeAfterStart() {
	for _, f := range pio.childEnds {
		f.Close()
	}
	pio.childEnds = nil
}

func (pio *pooledIO) closeAll() {
	pio.closeAfterStart()
	for _, f := range pio.parentEnds {
		f.Close()
	}
}

func (pio *pooledIO) start() {
	pio.errs = make(chan error, len(pio.copies))
	for _, fn := range pio.copies {
		go func() { pio.errs <- fn() }()
	}
}

// wait waits for the copies once the worker has exited. Descendants may
// hold the pipes open; after delay (if positive) the host's ends are
// closed and wait returns exec.ErrWaitDelay, as exec.Cmd.Wait does.
func (pio *pooledIO) wait(delay time.Duration) error {
	var timeout <-chan time.Time
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		timeout = t.C
	}
	var first error
	for range pio.copies {
		select {
		case err := <-pio.errs:
			if err != nil && first == nil {
				first = err
			}
		case <-timeout:
			// A copy may also be stuck reading Stdin: stop waiting for
			// it (errs is buffered, it can still finish).
			for _, f := range pio.parentEnds {
				f.Close()
			}
			if first == nil {
				first = exec.ErrWaitDelay
			}
			return first
		}
	}
	return first
}
