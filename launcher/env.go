//go:build linux

package launcher

import (
	"slices"
	"strings"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

// safeEnv names the variables a worker gets from the host when the policy
// has no `env` line: enough for a program to find its tools, locale,
// terminal and time zone, and nothing that configures a library to load
// code or reach a service (LD_*, DBUS_*, DISPLAY, SSH_AUTH_SOCK, ...).
var safeEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR"}

// workerEnv applies the policy's env lines to the host environment host
// (KEY=VALUE strings). Without `env clear` the worker starts from the safe
// set (plus every LC_* variable); `env pass` adds named variables;
// `env set` sets values. The result is sorted by name, one entry per name.
func workerEnv(pe policy.Env, host []string) []string {
	lookup := map[string]string{}
	for _, kv := range host {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			lookup[k] = v
		}
	}
	out := map[string]string{}
	pass := func(name string) {
		if v, ok := lookup[name]; ok {
			out[name] = v
		}
	}
	if !pe.Clear {
		for _, name := range safeEnv {
			pass(name)
		}
		for k := range lookup {
			if strings.HasPrefix(k, "LC_") {
				pass(k)
			}
		}
	}
	for _, name := range pe.Pass {
		pass(name)
	}
	for _, v := range pe.Set {
		out[v.Name] = v.Value
	}
	env := make([]string, 0, len(out))
	for k, v := range out {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}
