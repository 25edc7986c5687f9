package seccomp

import "testing"

// BenchmarkInit measures the tables this package builds on first use: the
// derived syscall table of each architecture and the catalogue. Until they
// were made lazy, package init built all three, so every process linking
// the package paid the "all" figure at start (twice per sandbox-exec run,
// counting the init-stage re-exec), filter or not. Now a filter build pays
// its native table and the catalogue once; other processes pay nothing.
//
// What init still costs (the generated map literals) shows in
//
//	go build -o /tmp/se ./cmd/sandbox-exec
//	GODEBUG=inittrace=1 /tmp/se -- /bin/true 2>&1 | grep sandbox/seccomp
func BenchmarkInit(b *testing.B) {
	for _, bc := range []struct {
		name  string
		build func()
	}{
		{"table=amd64", func() { newSysTable(syscallsAMD64) }},
		{"table=arm64", func() { newSysTable(syscallsARM64) }},
		{"catalog", func() { buildCatalog() }},
		{"all", func() {
			newSysTable(syscallsAMD64)
			newSysTable(syscallsARM64)
			buildCatalog()
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.build()
			}
		})
	}
}
