//go:build linux

package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seed-025014a4/sandbox-exec/ipc"
	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// systemRuntime is a copy of policies/system-runtime.policy (go:embed
// cannot reach outside this directory; TestPolicyInSync keeps the copy
// honest). workerPolicy is appended to it and the two parse as one text,
// so the binary needs no policy file at run time.
//
//go:embed system-runtime.policy
var systemRuntime string

//go:embed worker.policy
var workerPolicy string

// extraPolicy is appended to the worker's policy; only tests set it.
var extraPolicy string

type options struct {
	size      int
	workers   int
	timeout   time.Duration
	out       string
	maxPixels int64
	maxBytes  int64
	verbose   bool
	audit     bool
	probe     string
}

// run is the host role: the whole command line, minus the program name.
// It returns the exit status: 0 when every file made a thumbnail, 1 when
// any failed, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("thumbnailer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: thumbnailer [-size 128] [-workers N] [-timeout 20s] -out DIR FILE...\n       thumbnailer -probe PATH\n\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.size, "size", 128, "longer side of each thumbnail, in `pixels`")
	fs.IntVar(&o.workers, "workers", runtime.NumCPU(), "sandboxed workers at a time")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Second, "time allowed to one worker (also its CPU limit)")
	fs.StringVar(&o.out, "out", "", "write DIR/<name>.png here")
	fs.Int64Var(&o.maxPixels, "max-pixels", 50_000_000, "refuse images whose header claims more `pixels` (width*height)")
	fs.Int64Var(&o.maxBytes, "max-bytes", 64<<20, "refuse input files larger than this")
	fs.BoolVar(&o.verbose, "v", false, "print timings for every file")
	fs.BoolVar(&o.audit, "audit-denials", false, "log every file access the sandbox denied to a worker")
	fs.StringVar(&o.probe, "probe", "", "start one worker that tries to open `PATH`, print what happened, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "thumbnailer: %s\n", msg)
		fs.Usage()
		return 2
	}
	switch {
	case o.size < 1 || o.size > maxSide:
		return usage(fmt.Sprintf("-size %d: want 1 to %d", o.size, maxSide))
	case o.workers < 1:
		return usage("-workers must be at least 1")
	case o.timeout <= 0:
		return usage("-timeout must be positive")
	case o.probe == "" && (o.out == "" || fs.NArg() == 0):
		return usage("need -out DIR and at least one FILE")
	}

	h, err := newHost(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "thumbnailer: %v\n", err)
		return 2
	}
	defer h.close()
	ctx := context.Background()
	if o.probe != "" {
		r, err := h.probe(ctx, o.probe)
		if err != nil {
			fmt.Fprintf(stderr, "thumbnailer: probe: %v\n", err)
			return 1
		}
		if r.Errno == "" {
			fmt.Fprintf(stdout, "%s: opened\n", r.Path)
		} else {
			fmt.Fprintf(stdout, "%s: %s (%s)\n", r.Path, r.Errno, r.Msg)
		}
		return 0
	}
	if st, err := os.Stat(o.out); err != nil || !st.IsDir() {
		return usage(fmt.Sprintf("-out %s: not a directory", o.out))
	}
	return h.runAll(ctx, fs.Args(), stdout, stderr)
}

// host starts workers and writes what they send back.
type host struct {
	opts   options
	policy *policy.Policy
	self   string // this binary, resolved: the worker's program
	log    io.Writer
	// pool keeps -workers sandboxed init stages ready: a worker then
	// costs a message and an exec, not a whole sandbox setup.
	pool *launcher.Pool
}

func newHost(o options, log io.Writer) (*host, error) {
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	cpu := int((o.timeout + time.Second - 1) / time.Second)
	text := systemRuntime + "\n# ---- worker.policy ----\n" + workerPolicy +
		"\n# ---- from -timeout ----\nlimit cpu " + strconv.Itoa(cpu) + "\n" + extraPolicy
	p, err := policy.Parse("system-runtime.policy+worker.policy", []byte(text), policy.Defines{"SELF": self})
	if err != nil {
		return nil, fmt.Errorf("worker policy: %w", err)
	}
	pool, err := launcher.NewPool(p, launcher.PoolOptions{Size: o.workers, Programs: []string{self}})
	if err != nil {
		return nil, fmt.Errorf("worker pool: %w", err)
	}
	return &host{opts: o, policy: p, self: self, log: log, pool: pool}, nil
}

// close stops the pool: the stages still waiting are killed.
func (h *host) close() { h.pool.Close() }

// command makes the Cmd of one worker, from the pool. It is the only
// place that says how workers start: launcher.CommandContext(ctx,
// h.policy, h.self, args...) would start the same worker cold.
func (h *host) command(ctx context.Context, args ...string) *launcher.Cmd {
	return h.pool.CommandContext(ctx, h.self, args...)
}

// outcome is what became of one input file.
type outcome struct {
	in, out string
	res     result
	start   time.Duration // launcher Start: the worker is running under its sandbox
	total   time.Duration
	err     error
}

// runAll makes a thumbnail of every file, at most opts.workers at a time,
// and reports each file as it is done.
func (h *host) runAll(ctx context.Context, files []string, stdout, stderr io.Writer) int {
	var (
		mu     sync.Mutex
		failed int
		wg     sync.WaitGroup
	)
	report := func(o outcome) {
		mu.Lock()
		defer mu.Unlock()
		if o.err != nil {
			failed++
			fmt.Fprintf(stderr, "thumbnailer: %s: %v\n", o.in, o.err)
			return
		}
		if h.opts.verbose {
			fmt.Fprintf(stdout, "%s -> %s (%s %dx%d -> %dx%d, %d bytes; worker start %v, total %v)\n",
				o.in, o.out, o.res.Format, o.res.SrcWidth, o.res.SrcHeight, o.res.Width, o.res.Height, o.res.Bytes,
				o.start.Round(10*time.Microsecond), o.total.Round(10*time.Microsecond))
		} else {
			fmt.Fprintf(stdout, "%s -> %s\n", o.in, o.out)
		}
	}
	sem := make(chan struct{}, h.opts.workers)
	used := map[string]string{}
	for _, in := range files {
		name := filepath.Base(in)
		name = strings.TrimSuffix(name, filepath.Ext(name)) + ".png"
		if prev, ok := used[name]; ok {
			report(outcome{in: in, err: fmt.Errorf("output %s is already taken by %s", name, prev)})
			continue
		}
		used[name] = in
		out := filepath.Join(h.opts.out, name)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			report(h.process(ctx, in, out))
		}()
	}
	wg.Wait()
	if failed > 0 {
		fmt.Fprintf(stderr, "thumbnailer: %d of %d files failed\n", failed, len(files))
		return 1
	}
	return 0
}

// process makes the thumbnail of in and writes it to out.
func (h *host) process(ctx context.Context, in, out string) (o outcome) {
	t0 := time.Now()
	o.in, o.out = in, out
	defer func() { o.total = time.Since(t0) }()

	f, err := openInput(in, h.opts.maxBytes)
	if err != nil {
		o.err = err
		return o
	}
	defer f.Close()

	ctx, cancel := context.WithTimeout(ctx, h.opts.timeout)
	defer cancel()
	w, err := h.startWorker(ctx)
	o.start = time.Since(t0)
	if err != nil {
		o.err = err
		return o
	}
	defer w.close()
	j := job{Size: h.opts.size, MaxPixels: h.opts.maxPixels, MaxBytes: h.opts.maxBytes}
	if err := w.conn.SendJSON(msgJob, j, f); err != nil {
		o.err = w.failed(ctx, fmt.Errorf("send job: %w", err))
		return o
	}
	f.Close() // the worker has its own copy now

	data, res, err := w.receive(h.opts.size)
	if err != nil {
		o.err = w.failed(ctx, err)
		return o
	}
	if err := w.wait(ctx); err != nil {
		o.err = err
		return o
	}
	if err := checkPNG(data, res, h.opts.size); err != nil {
		o.err = fmt.Errorf("worker sent a bad thumbnail: %w", err)
		return o
	}
	if err := writeFile(out, data); err != nil {
		o.err = err
		return o
	}
	o.res = res
	return o
}

// openInput opens a regular file for the worker to read. O_NONBLOCK keeps
// a FIFO from blocking the host; it means nothing for a regular file.
func openInput(path string, maxBytes int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("not a regular file (%v)", st.Mode().Type())
	}
	if st.Size() > maxBytes {
		f.Close()
		return nil, fmt.Errorf("%d bytes, more than -max-bytes %d", st.Size(), maxBytes)
	}
	return f, nil
}

// worker is one running worker and the host's end of its channel.
type worker struct {
	cmd    *launcher.Cmd
	conn   *ipc.Conn
	stderr *headBuffer
	stop   func() bool
	waited bool
	err    error
}

// startWorker starts a worker with args and hands it its end of a new
// channel as fd 3 (worker.policy names it with env set
// SANDBOX_EXEC_IPC_FD=3). When ctx ends, the worker is killed and any
// Recv on the channel fails.
func (h *host) startWorker(ctx context.Context, args ...string) (*worker, error) {
	hostEnd, workerEnd, err := ipc.Pair()
	if err != nil {
		return nil, err
	}
	f, err := workerEnd.File()
	workerEnd.Close()
	if err != nil {
		hostEnd.Close()
		return nil, err
	}
	cmd := h.command(ctx, args...)
	cmd.ExtraFiles = []*os.File{f} // fd 3
	stderr := &headBuffer{max: 4096}
	cmd.Stderr = stderr
	if h.opts.audit {
		cmd.AuditDenialsOnly = true
		cmd.Audit = func(e launcher.Event) {
			fmt.Fprintf(h.log, "thumbnailer: worker %d: denied %s %s (%s)\n", e.Pid, e.Syscall, e.Path, e.Rule)
		}
	}
	err = cmd.Start()
	f.Close() // the worker holds its own copy: the host sees EOF when it dies
	if err != nil {
		hostEnd.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { hostEnd.SetDeadline(time.Unix(1, 0)) })
	return &worker{cmd: cmd, conn: hostEnd, stderr: stderr, stop: stop}, nil
}

// receive reads the PNG, in chunks, and the worker's result.
func (w *worker) receive(size int) ([]byte, result, error) {
	var (
		buf bytes.Buffer
		res result
	)
	// A size×size RGBA PNG at its worst is the raw pixels plus a filter
	// byte per row plus zlib and chunk overhead: twice that is plenty.
	limit := 2*(4*size*size+size) + 64<<10
	for {
		m, err := w.conn.Recv()
		if err != nil {
			return nil, res, err
		}
		m.Close() // the worker has no business sending descriptors
		switch m.Type {
		case msgChunk:
			if buf.Len()+len(m.Payload) > limit {
				return nil, res, fmt.Errorf("worker sent more than %d bytes", limit)
			}
			buf.Write(m.Payload)
		case msgDone:
			if err := m.Decode(&res); err != nil {
				return nil, res, err
			}
			return buf.Bytes(), res, nil
		case msgFail:
			var f failure
			if err := m.Decode(&f); err != nil {
				return nil, res, err
			}
			return nil, res, &rejectedError{msg: f.Msg}
		default:
			return nil, res, fmt.Errorf("unexpected message type %d from worker", m.Type)
		}
	}
}

// rejectedError is the worker's own account of why it refused an input.
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return e.msg }

// wait waits for the worker to exit and describes how it ended.
func (w *worker) wait(ctx context.Context) error {
	if w.waited {
		return w.err
	}
	w.waited = true
	err := w.cmd.Wait()
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		w.err = errors.New("timed out: worker killed")
		return w.err
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("worker %s", ee.ProcessState)
	}
	if line := w.stderr.firstLine(); line != "" {
		err = fmt.Errorf("%w: %s", err, line)
	}
	w.err = err
	return err
}

// failed turns a channel error into the best account of what happened:
// the worker's own message if it sent one, else how it ended.
func (w *worker) failed(ctx context.Context, err error) error {
	var rej *rejectedError
	if errors.As(err, &rej) {
		w.wait(ctx) // exits 1 after refusing
		return err
	}
	w.cmd.Kill() // it may still be running, for instance if it sent garbage
	if werr := w.wait(ctx); werr != nil {
		return werr
	}
	return fmt.Errorf("worker: %w", err)
}

// close releases the channel and reaps the worker if nobody did.
func (w *worker) close() {
	w.stop()
	w.conn.Close()
	if !w.waited {
		w.cmd.Kill()
		w.wait(context.Background())
	}
}

// checkPNG makes sure what the (untrusted) worker sent is a PNG of the
// size the host asked for, reading only its header.
func checkPNG(data []byte, res result, size int) error {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if cfg.Width != res.Width || cfg.Height != res.Height || max(cfg.Width, cfg.Height) != size || min(cfg.Width, cfg.Height) < 1 {
		return fmt.Errorf("%dx%d, asked for %d on the longer side", cfg.Width, cfg.Height, size)
	}
	return nil
}

// writeFile writes out atomically: a temporary file in the same
// directory, renamed into place.
func writeFile(out string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), out)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// probe starts a worker that tries to open path and returns its account.
func (h *host) probe(ctx context.Context, path string) (probeResult, error) {
	var r probeResult
	ctx, cancel := context.WithTimeout(ctx, h.opts.timeout)
	defer cancel()
	w, err := h.startWorker(ctx, "-probe", path)
	if err != nil {
		return r, err
	}
	defer w.close()
	m, err := w.conn.Recv()
	if err != nil {
		return r, w.failed(ctx, err)
	}
	m.Close()
	if m.Type != msgProbe {
		return r, w.failed(ctx, fmt.Errorf("unexpected message type %d from worker", m.Type))
	}
	if err := m.Decode(&r); err != nil {
		return r, w.failed(ctx, err)
	}
	return r, w.wait(ctx)
}

// headBuffer keeps the first max bytes written to it: a worker's stderr,
// for error reports, bounded whatever the worker writes.
type headBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *headBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := t.max - len(t.buf); room > 0 {
		t.buf = append(t.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// firstLine is the first non-empty line written, such as "fatal error:
// runtime: out of memory" or "panic: ...".
func (t *headBuffer) firstLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range strings.Split(string(t.buf), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
