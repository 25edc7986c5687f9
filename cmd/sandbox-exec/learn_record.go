//go:build linux

package main

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// recorder collects a learning run's brokered calls from the audit
// callback (launcher.Cmd.Audit), which the broker calls from several
// goroutines.
type recorder struct {
	mu    sync.Mutex
	l     *learned
	exes  map[int]string  // thread id -> the program it runs, as last read
	execs map[string]bool // programs and loaders recorded with exec
	// baseRules maps the learning policy's positions of the base policy's
	// rules to their positions in the base policy.
	baseRules map[string]string
	// deniedWrites records refused writes (no rule: a --check or --diff
	// run, which allows only reading) as uses.
	deniedWrites bool
}

func newRecorder() *recorder {
	return &recorder{l: newLearned(), exes: map[int]string{}, execs: map[string]bool{}}
}

// event records one brokered decision. The path is the resolved one (what
// the broker decided on); for an absolute path through a symlink the path
// as written is recorded too, because the broker also checks that form.
func (r *recorder) event(e launcher.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.l.events++
	r.noteProgram(e)
	if !e.Allowed {
		p := e.Resolved
		if p == "" {
			p = e.Path
		}
		if where, ok := r.baseRules[e.Rule]; ok && e.Resolved != "" {
			r.l.baseDenied = append(r.l.baseDenied, denial{path: e.Resolved, right: e.Right, where: where})
			return
		}
		if r.deniedWrites && e.Rule == "default" && e.Resolved != "" && e.Right&(policy.Write|policy.Create) != 0 {
			r.add(e.Resolved, e.Right, false, e.Syscall)
			return
		}
		r.l.refused[e.Syscall+" "+p]++
		return
	}
	if e.Right == 0 || e.Resolved == "" {
		return // an fstat of a descriptor the worker holds: no path
	}
	missing := false
	switch syscall.Errno(e.Errno) {
	case syscall.EACCES, syscall.EPERM:
		return // the policy allowed it and the kernel refused: nothing used
	case syscall.ENOENT, syscall.ENOTDIR:
		missing = true
	}
	r.add(e.Resolved, e.Right, missing, e.Syscall)

	if strings.HasPrefix(e.Syscall, "rename") {
		r.renameSource(e, missing)
		return
	}
	lp := lexical(e.Path)
	if lp == "" || lp == e.Resolved || underAny(lp, "/proc", "/dev") {
		return
	}
	right := e.Right
	if missing && (strings.Contains(e.Syscall, "open") || e.Syscall == "creat") {
		// The broker found the name missing beyond a symlink and
		// recorded stat on where it stopped; the name as written was
		// checked for the open's own right first.
		right |= policy.Read
	}
	r.add(lp, right, missing, e.Syscall)
}

// renameSource records the source of a rename ("old -> new" in Path; the
// event's resolved path is the new name), which needs write and create as
// well (security.md R42).
func (r *recorder) renameSource(e launcher.Event, missing bool) {
	oldp, newp, ok := strings.Cut(e.Path, " -> ")
	if !ok || oldp == "" || newp == "" {
		return
	}
	right := policy.Write | policy.Create
	if lp := lexical(oldp); lp != "" {
		r.add(lp, right, missing, e.Syscall)
		return
	}
	// Both relative to one directory (the usual write-then-rename): the
	// source lies where the resolved target's directory is.
	if newp[0] == '/' || hasDotDot(oldp) || hasDotDot(newp) {
		return
	}
	rel := filepath.Clean(newp)
	dir, ok := strings.CutSuffix(e.Resolved, "/"+rel)
	if !ok {
		return
	}
	r.add(filepath.Join(dir, filepath.Clean(oldp)), right, missing, e.Syscall)
}

func hasDotDot(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

func underAny(p string, dirs ...string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// add records a path, setting other processes' /proc entries aside.
func (r *recorder) add(p string, right policy.Right, missing bool, sc string) {
	q, other := procOther(p)
	if other {
		if !missing {
			r.l.others[q] |= right
		}
		return
	}
	r.l.add(q, right, missing, sc)
}

// noteProgram records, with exec, the program the calling thread runs. Its
// first brokered call after an execve is the loader's (ld.so.preload, then
// ld.so.cache), so that is when the program is read again.
func (r *recorder) noteProgram(e launcher.Event) {
	if _, seen := r.exes[e.Pid]; seen && e.Path != "/etc/ld.so.preload" && e.Path != "/etc/ld.so.cache" {
		return
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(e.Pid) + "/exe")
	if err != nil || strings.HasSuffix(exe, " (deleted)") {
		return
	}
	r.exes[e.Pid] = exe
	r.addExec(exe)
}

// addProgram records the command's own program (as found in PATH), and
// its interpreter when it is a script, before the run starts.
func (r *recorder) addProgram(name string) {
	p := name
	if !strings.Contains(name, "/") {
		found, err := exec.LookPath(name)
		if err != nil {
			return
		}
		p = found
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addExec(abs)
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		r.addExec(real)
	}
	if interp := shebang(abs); interp != "" {
		r.addExec(interp)
		if real, err := filepath.EvalSymlinks(interp); err == nil {
			r.addExec(real)
		}
	}
}

// addExec records exec on a program and on its ELF interpreter (the
// loader the kernel opens for execution), as named and as resolved.
func (r *recorder) addExec(p string) {
	if r.execs[p] {
		return
	}
	r.execs[p] = true
	r.l.add(p, policy.Exec, false, "execve")
	if interp := elfInterp(p); interp != "" {
		r.l.add(filepath.Clean(interp), policy.Exec, false, "execve")
		if real, err := filepath.EvalSymlinks(interp); err == nil {
			r.l.add(real, policy.Exec, false, "execve")
		}
	}
}

// elfInterp returns the PT_INTERP of an ELF file, or "".
func elfInterp(p string) string {
	f, err := elf.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			return ""
		}
		if s := strings.TrimRight(string(b), "\x00"); strings.HasPrefix(s, "/") {
			return s
		}
	}
	return ""
}

// shebang returns the interpreter of a "#!" script, or "".
func shebang(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return ""
	}
	rest, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return ""
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "/") {
		return ""
	}
	return fields[0]
}
