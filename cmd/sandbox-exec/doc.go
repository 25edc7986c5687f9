// Command sandbox-exec runs a program under a sandbox-exec policy: its file
// system calls are brokered through seccomp user notification and checked
// against the policy's allowlist.
//
//	sandbox-exec [-f FILE]... [-p TEXT] [-D NAME=VALUE]... [options] [--] CMD [ARG]...
//	sandbox-exec check FILE...
//	sandbox-exec explain -f FILE [-D NAME=VALUE]... [-r RIGHT] PATH...
//
// With neither -f nor -p the built-in default policy applies: read-only
// system directories and the current directory, no writes, no network.
//
// Exit status: the worker's; 128+N when signal N killed it; 125 when
// sandbox-exec itself failed (bad policy, missing kernel feature, setup
// error); 126 when the program was found but could not be executed; 127
// when it was not found.
package main
