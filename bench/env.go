//go:build linux

package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/seed-025014a4/sandbox-exec/broker"
	"github.com/seed-025014a4/sandbox-exec/policy"
	"github.com/seed-025014a4/sandbox-exec/sandbox"
)

// describeMachine fills the header of the report.
func (b *bench) describeMachine() {
	m := &b.report.Machine
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		m.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	m.Arch = runtime.GOARCH
	m.CPUs = len(b.allCPUs)
	m.CPUModel = cpuModel()
	m.Go = runtime.Version()
	m.Cgo.Bench = cgoSetting(b.exe)
	if m.Cgo.Bench != "0" {
		b.warnf("the bench binary is linked with cgo (CGO_ENABLED=%s): its Go workers and in-process starts pay the dynamic loader; run it as CGO_ENABLED=0 go run ./bench", orUnknown(m.Cgo.Bench))
	}
	m.WorkerCPU, m.OtherCPU = b.workerCPU, b.otherCPU
	m.CPUIdle = cpuIdle()

	f := &m.Features
	f.LandlockABI = sandbox.LandlockABI()
	// The features that need a listener are probed in a throw-away
	// worker: a filter cannot be removed from this process.
	if out, err := b.runGoWorker([]string{workerArg, "probe"}, nil); err != nil {
		b.errorf("feature probe: %v", err)
	} else {
		kv := parseKV(out)
		f.UserNotif = kv["user_notif"] == "true"
		f.SyncWakeUp = kv["sync_wake_up"] == "true"
		f.SyncWakeUpBroker = kv["sync_wake_up_sys"] == "true"
		if f.SyncWakeUp && !f.SyncWakeUpBroker {
			b.warnf("the kernel has SYNC_WAKE_UP but internal/sys.SetSyncWakeup fails (%s): the broker runs without it", kv["sync_wake_up_sys_error"])
		}
		f.WaitKillableRecv = kv["wait_killable_recv"] == "true"
	}
	if p, err := policy.Parse("probe.policy", []byte("version 1\n"), nil); err == nil {
		if _, err := broker.New(broker.Options{Matcher: p.Matcher()}); err == nil {
			f.AddfdSend = true
		} else {
			b.skip("broker", "broker.New: "+err.Error())
		}
	}
	if p, err := exec.LookPath("bwrap"); err == nil {
		f.Bwrap = p
	}
}

// describeSource records the git commit and which product directories
// differ from it.
func (b *bench) describeSource() {
	if b.root == "" {
		return
	}
	git, err := exec.LookPath("git")
	if err != nil {
		return
	}
	out, err := exec.Command(git, "-C", b.root, "rev-parse", "HEAD").Output()
	if err != nil {
		return
	}
	b.report.Source.Commit = strings.TrimSpace(string(out))
	out, err = exec.Command(git, "-C", b.root, "status", "--porcelain", "--untracked-files=normal", "--",
		"broker", "launcher", "sandbox", "policy", "ipc", "internal", "cmd", "policies", "bench").Output()
	if err != nil {
		return
	}
	for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
		if len(line) < 4 {
			continue
		}
		p := strings.TrimSuffix(line[3:], "/")
		dir, _, _ := strings.Cut(p, "/")
		if !slices.Contains(b.report.Source.Dirty, dir) {
			b.report.Source.Dirty = append(b.report.Source.Dirty, dir)
		}
	}
}

func parseKV(out []byte) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		kv[k] = v
	}
	return kv
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, key := range []string{"model name", "Model", "CPU part"} {
		for line := range strings.SplitSeq(string(data), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown"
}

// cpuIdle describes the cpuidle governor and the idle states of CPU 0:
// whether an idle vCPU halts decides the cost of a cross-CPU wake-up.
func cpuIdle() string {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	var parts []string
	gov := read("/sys/devices/system/cpu/cpuidle/current_governor_ro")
	if gov == "" {
		gov = read("/sys/devices/system/cpu/cpuidle/current_governor")
	}
	if drv := read("/sys/devices/system/cpu/cpuidle/current_driver"); drv != "" {
		parts = append(parts, "driver "+drv)
	}
	if gov != "" {
		parts = append(parts, "governor "+gov)
	}
	states, _ := filepath.Glob("/sys/devices/system/cpu/cpu0/cpuidle/state*/name")
	slices.Sort(states)
	var names []string
	for _, s := range states {
		names = append(names, read(s))
	}
	if len(names) > 0 {
		parts = append(parts, "states "+strings.Join(names, ","))
	}
	if v := read("/sys/module/haltpoll/parameters/guest_halt_poll_ns"); v != "" {
		parts = append(parts, "guest_halt_poll_ns "+v)
	}
	if len(parts) == 0 {
		return "no cpuidle driver (idle = halt)"
	}
	return strings.Join(parts, "; ")
}

// cgoSetting reads CGO_ENABLED from the build information of the Go
// binary at path ("" if it has none).
func cgoSetting(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value
		}
	}
	return ""
}
