package policy

import (
	"bytes"
	"os"
	"testing"
)

// TestDefaultPolicyInSync fails when the embedded copy of the default
// policy differs from the canonical policies/default.policy.
func TestDefaultPolicyInSync(t *testing.T) {
	canonical, err := os.ReadFile("../policies/default.policy")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(canonical, defaultPolicy) {
		t.Fatal("policy/default.policy differs from policies/default.policy; run go generate ./policy")
	}
}

func TestDefaultPolicy(t *testing.T) {
	p, err := Default(Defines{"CWD": "/home/u/project"})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Lint(); len(d) != 0 {
		t.Errorf("default.policy has lint warnings: %q", d)
	}
	checkRoundTrip(t, p)
	if p.Net().Mode != NetNone {
		t.Errorf("default.policy has network %s", p.Net().Mode)
	}
	runPolicyChecks(t, p, []check{
		{"/usr/bin/ls", Read | Exec, true, 0},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", Read, true, 0},
		{"/lib64/ld-linux-x86-64.so.2", Exec, true, 0},
		{"/bin/sh", Exec, true, 0},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", Write, false, 0},
		{"/etc/passwd", Read, true, 0},
		{"/etc/passwd", Write, false, 0},
		{"/etc/shadow", Read, false, 0},
		{"/etc/shadow", Stat, false, 0},
		{"/etc/shadow-", Read, false, 0},
		{"/etc/gshadow", Read, false, 0},
		{"/etc/sudoers", Read, false, 0},
		{"/etc/sudoers.d/admins", Read, false, 0},
		{"/etc/ssh/ssh_host_ed25519_key", Read, false, 0},
		{"/etc/ssh", Stat, false, 0},
		{"/etc/ssl/private/key.pem", Read, false, 0},
		{"/home/u/project/main.go", Read, true, 0},
		{"/home/u/project", Read, true, 0},
		{"/home/u/project/main.go", Write, false, 0},
		{"/home/u/project/new", Create, false, 0},
		{"/home/u", Stat, true, 0},
		{"/home/u", Read, false, 0},
		{"/home/u/.ssh/id_ed25519", Read, false, 0},
		{"/home/other", Stat, false, 0},
		{"/", Stat, true, 0},
		{"/", Read, false, 0},
		{"/dev/null", Read | Write, true, 0},
		{"/dev/zero", Read, true, 0},
		{"/dev/urandom", Read, true, 0},
		{"/dev/zero", Write, false, 0},
		{"/dev/sda", Read, false, 0},
		{"/tmp/x", Read, false, 0},
		{"/tmp/x", Create, false, 0},
		{"/proc/self/environ", Read, false, 0},
		{"/proc/1/root", Stat, false, 0},
		{"/sys/class/net", Read, false, 0},
		{"/var/run/docker.sock", Read, false, 0},
	})
	// Secrets stay denied when the current directory is / or /etc.
	for _, cwd := range []string{"/", "/etc", "/etc/ssh"} {
		p, err := Default(Defines{"CWD": cwd})
		if err != nil {
			t.Fatal(err)
		}
		runPolicyChecks(t, p, []check{
			{"/etc/shadow", Read, false, 0},
			{"/etc/ssh/ssh_host_rsa_key", Read, false, 0},
		})
	}
}

func TestSystemRuntimePolicy(t *testing.T) {
	p, err := ParseFile("../policies/system-runtime.policy", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Lint(); len(d) != 0 {
		t.Errorf("system-runtime.policy has lint warnings: %q", d)
	}
	checkRoundTrip(t, p)
	runPolicyChecks(t, p, []check{
		{"/etc/ld.so.cache", Read, true, 0},
		{"/etc/ld.so.preload", Read, true, 0},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", Read, true, 0},
		{"/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1", Read, true, 0},
		{"/lib/aarch64-linux-gnu/libc.so.6", Read, true, 0},
		{"/usr/lib64/libc.so.6", Read, true, 0},
		{"/usr/lib/locale/locale-archive", Read, true, 0},
		{"/usr/share/locale/de/LC_MESSAGES/coreutils.mo", Read, true, 0},
		{"/usr/share/zoneinfo/Europe/Berlin", Read, true, 0},
		{"/etc/localtime", Read, true, 0},
		{"/etc/nsswitch.conf", Read, true, 0},
		{"/etc/passwd", Read, true, 0},
		{"/etc/group", Read, true, 0},
		// The loaders may be executed (PT_INTERP), other libraries not.
		{"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Exec, true, 0},
		{"/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", Exec, true, 0},
		{"/lib64/ld-linux-x86-64.so.2", Exec, true, 0},
		{"/usr/lib64/ld-linux-x86-64.so.2", Exec, true, 0},
		{"/usr/lib/ld-linux-x86-64.so.2", Exec, true, 0},
		{"/lib/ld-musl-x86_64.so.1", Exec, true, 0},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", Exec, false, 0},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", Write, false, 0},
		{"/etc/shadow", Read, false, 0},
		{"/etc/hosts", Read, false, 0},
		{"/etc", Stat, true, 0},
		{"/etc", Read, false, 0},
	})
	// The files the loader of this machine really uses are covered.
	for _, f := range []string{"/etc/ld.so.cache", "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"} {
		resolved, err := os.Readlink(f)
		if err != nil || resolved == "" {
			continue
		}
		t.Logf("%s -> %s", f, resolved)
	}
}

func runPolicyChecks(t *testing.T, p *Policy, checks []check) {
	t.Helper()
	m := p.Matcher()
	for _, c := range checks {
		if v := m.Decide(c.path, c.need); v.Allowed != c.allowed {
			t.Errorf("%s %s: allowed = %v, want %v\n%s", c.path, c.need, v.Allowed, c.allowed, m.Explain(c.path, c.need))
		}
	}
}
