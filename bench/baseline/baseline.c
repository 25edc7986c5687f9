/*
 * baseline.c -- BENCHMARK BASELINE ONLY. NOT PART OF sandbox-exec.
 *
 * A small, faithful model of the designs sandbox-exec replaces, so that
 * `go run ./bench` can measure them side by side with the real broker on
 * the same machine in the same run. The bench compiles this file with the
 * system C compiler into a temporary directory at run time.
 *
 * Modes (one process tree each):
 *
 *   native  the worker loop, no sandbox: the C harness's own reference.
 *
 *   sigsys  the SIGSYS + socket + SCM_RIGHTS design of Chromium's
 *           sandbox::syscall_broker (BrokerProcess / BrokerClient /
 *           BrokerHost / BrokerSimpleMessage):
 *           - a broker process is forked before the worker is sandboxed
 *             and keeps one SOCK_SEQPACKET ipc channel to it;
 *           - the worker installs a seccomp filter that returns
 *             SECCOMP_RET_TRAP for openat and newfstatat;
 *           - the SIGSYS handler in the worker decodes the registers,
 *             checks the path against the client's copy of the allowlist
 *             (BrokerClient does that before any IPC), creates a fresh
 *             socketpair for the reply, sends the request with the reply
 *             socket attached (SCM_RIGHTS), and blocks in recvmsg on its
 *             end (MSG_CMSG_CLOEXEC for O_CLOEXEC opens), exactly as
 *             BrokerSimpleMessage::SendRecvMsgWithFlags does;
 *           - the broker receives, re-checks the path against the
 *             allowlist (BrokerPermissionList: absolute, no "..", exact
 *             file or recursive directory prefix), performs openat or
 *             stat itself, and answers on the reply socket: the fd with
 *             SCM_RIGHTS, or the struct stat bytes, or -errno;
 *           - the handler writes the result into the saved return
 *             register and returns; rt_sigreturn resumes the caller.
 *
 *   ptrace  SECCOMP_RET_TRACE for openat and newfstatat, a tracer that
 *           only continues (PTRACE_O_TRACESECCOMP, PTRACE_CONT).
 *
 * Usage: baseline MODE OP PATH WORKER_CPU BROKER_CPU BATCH_NS BATCHES
 *   OP is open (openat(AT_FDCWD, PATH, O_RDONLY|O_CLOEXEC) + close) or
 *   stat (newfstatat(AT_FDCWD, PATH, &st, 0)); a CPU of -1 means unpinned
 *   (the process keeps the affinity it was started with).
 * Output on stdout: "calls N", then "ns X" per batch (per-call time), the
 * same protocol as the Go worker of the bench.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a seccomp SIGSYS; older glibc lacks it */
#endif

#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#else
#error "unsupported architecture"
#endif

enum { OP_OPEN, OP_STAT };

static void die(const char *what) {
	fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu) {
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		die("sched_setaffinity");
}

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: not trapped */
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One measured call, as raw system calls so the trapped numbers are
 * exactly openat and newfstatat. */
static int do_call(int op, const char *path) {
	if (op == OP_OPEN) {
		long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		syscall(SYS_close, fd);
		return 0;
	}
	struct stat st;
	return syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) < 0 ? -1 : 0;
}

/* The number of calls that last about batch_ns, given that calls calls
 * took ns. */
static int64_t batch_size(int64_t batch_ns, int64_t ns, int64_t calls) {
	int64_t per = ns / calls;
	if (per < 1)
		per = 1;
	int64_t n = batch_ns / per;
	if (n < 20)
		n = 20;
	if (n > 2000000)
		n = 2000000;
	return n;
}

static void run_loop(int op, const char *path, int64_t batch_ns, int batches) {
	const int warm = 64;
	int64_t t0 = now_ns();
	for (int i = 0; i < warm; i++)
		if (do_call(op, path) < 0)
			die(path);
	int64_t n = batch_size(batch_ns, now_ns() - t0, warm);
	for (int b = -1; b < batches; b++) { /* batch -1 is a warm-up */
		int64_t s = now_ns();
		for (int64_t i = 0; i < n; i++)
			if (do_call(op, path) < 0)
				die(path);
		int64_t el = now_ns() - s;
		if (b < 0) {
			/* The first calls are the slowest (cold caches): size
			 * the timed batches from the warm-up batch. */
			n = batch_size(batch_ns, el, n);
			printf("calls %lld\n", (long long)n);
			continue;
		}
		printf("ns %.1f\n", (double)el / (double)n);
	}
	fflush(stdout);
}

/* A filter that sends openat and newfstatat to `action` and allows the
 * rest (after the architecture check every real filter has). */
static void install_filter(unsigned int action) {
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_newfstatat, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, action),
	};
	struct sock_fprog fprog = {.len = sizeof prog / sizeof prog[0], .filter = prog};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("prctl(NO_NEW_PRIVS)");
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
		die("seccomp");
}

/* ---------------------------------------------------------------- sigsys */

/* The allowlist, shared by client and broker (Chromium builds one
 * BrokerPermissionList and gives both sides a copy). */
struct permission {
	const char *path;
	int recursive; /* path ends with '/' and allows everything beneath */
	int read_only;
};
static struct permission perms[4];
static int nperms;

/* BrokerFilePermission::CheckOpen/CheckStat, simplified to read-only. */
static int allowed(const char *path, int flags) {
	if (path[0] != '/')
		return 0;
	if (strstr(path, "/../") || (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")))
		return 0;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)))
		return 0;
	for (int i = 0; i < nperms; i++) {
		const struct permission *p = &perms[i];
		size_t n = strlen(p->path);
		if (p->recursive ? !strncmp(path, p->path, n) : !strcmp(path, p->path))
			return 1;
	}
	return 0;
}

enum { CMD_OPEN = 1, CMD_STAT = 2 };

struct request {
	int32_t cmd;
	int32_t flags;
	char path[4096];
};

struct reply {
	int32_t ret; /* >= 0 or -errno */
	struct stat st;
};

static int ipc_fd = -1; /* the worker's end of the channel to the broker */

/* BrokerSimpleMessage::SendRecvMsgWithFlags: a socketpair per call; the
 * request carries the write end, the reply comes back on the read end. */
static long broker_call(int cmd, const char *path, int flags, struct stat *st) {
	if (!allowed(path, flags)) /* BrokerClient checks before any IPC */
		return -EACCES;
	struct request rq;
	rq.cmd = cmd;
	rq.flags = flags;
	size_t len = strnlen(path, sizeof rq.path);
	if (len == sizeof rq.path)
		return -ENAMETOOLONG;
	memcpy(rq.path, path, len + 1);

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	struct iovec iov = {.iov_base = &rq, .iov_len = offsetof(struct request, path) + len + 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	memset(&c, 0, sizeof c);
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &sp[1], sizeof(int));
	if (sendmsg(ipc_fd, &m, MSG_NOSIGNAL) < 0) {
		long e = -errno;
		close(sp[0]);
		close(sp[1]);
		return e;
	}
	close(sp[1]);

	struct reply rp;
	struct iovec riov = {.iov_base = &rp, .iov_len = sizeof rp};
	memset(&c, 0, sizeof c);
	struct msghdr rm = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
	ssize_t n = recvmsg(sp[0], &rm, (flags & O_CLOEXEC) ? MSG_CMSG_CLOEXEC : 0);
	long e = -errno;
	close(sp[0]);
	if (n < 0)
		return e;
	if (n < (ssize_t)sizeof rp.ret)
		return -EIO;
	if (rp.ret < 0)
		return rp.ret;
	if (cmd == CMD_STAT) {
		if (n != sizeof rp)
			return -EIO;
		*st = rp.st;
		return 0;
	}
	struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
	if (!rc || rc->cmsg_type != SCM_RIGHTS || rc->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EIO;
	int fd;
	memcpy(&fd, CMSG_DATA(rc), sizeof fd);
	return fd;
}

#if defined(__x86_64__)
#define SC_ARG(uc, i) ((uc)->uc_mcontext.gregs[(int[]){REG_RDI, REG_RSI, REG_RDX, REG_R10}[i]])
#define SC_RET(uc) ((uc)->uc_mcontext.gregs[REG_RAX])
#else
#define SC_ARG(uc, i) ((uc)->uc_mcontext.regs[i])
#define SC_RET(uc) ((uc)->uc_mcontext.regs[0])
#endif

/* The SIGSYS handler: Chromium's Trap::SigSys -> SyscallBroker handlers. */
static void on_sigsys(int sig, siginfo_t *info, void *ctx) {
	(void)sig;
	int saved = errno;
	ucontext_t *uc = ctx;
	long ret;
	if (info->si_code != SYS_SECCOMP) {
		errno = saved;
		return;
	}
	int dirfd = (int)SC_ARG(uc, 0);
	const char *path = (const char *)SC_ARG(uc, 1);
	if (dirfd != AT_FDCWD) {
		ret = -EPERM; /* the broker only serves absolute paths */
	} else if (info->si_syscall == SYS_openat) {
		ret = broker_call(CMD_OPEN, path, (int)SC_ARG(uc, 2), NULL);
	} else if (info->si_syscall == SYS_newfstatat) {
		ret = broker_call(CMD_STAT, path, O_RDONLY, (struct stat *)SC_ARG(uc, 2));
	} else {
		ret = -ENOSYS;
	}
	SC_RET(uc) = ret;
	errno = saved;
}

/* BrokerHost::LoopAndHandleRequests. */
static void broker_loop(int fd) {
	for (;;) {
		struct request rq;
		struct iovec iov = {.iov_base = &rq, .iov_len = sizeof rq - 1};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} c;
		memset(&c, 0, sizeof c);
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
		ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
		if (n == 0)
			return; /* the worker is gone */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("broker recvmsg");
		}
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)) ||
		    n <= (ssize_t)offsetof(struct request, path))
			continue; /* malformed: drop it */
		int reply_fd;
		memcpy(&reply_fd, CMSG_DATA(cm), sizeof reply_fd);
		((char *)&rq)[n] = 0;

		struct reply rp;
		size_t rlen = sizeof rp.ret;
		int out_fd = -1;
		if (!allowed(rq.path, rq.flags)) {
			rp.ret = -EACCES;
		} else if (rq.cmd == CMD_OPEN) {
			out_fd = openat(AT_FDCWD, rq.path, rq.flags);
			rp.ret = out_fd < 0 ? -errno : 0;
		} else if (rq.cmd == CMD_STAT) {
			rp.ret = stat(rq.path, &rp.st) < 0 ? -errno : 0;
			if (rp.ret == 0)
				rlen = sizeof rp;
		} else {
			rp.ret = -ENOSYS;
		}
		struct iovec riov = {.iov_base = &rp, .iov_len = rlen};
		struct msghdr rm = {.msg_iov = &riov, .msg_iovlen = 1};
		if (out_fd >= 0) {
			memset(&c, 0, sizeof c);
			rm.msg_control = c.buf;
			rm.msg_controllen = sizeof c.buf;
			struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
			rc->cmsg_level = SOL_SOCKET;
			rc->cmsg_type = SCM_RIGHTS;
			rc->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(rc), &out_fd, sizeof(int));
		}
		sendmsg(reply_fd, &rm, MSG_NOSIGNAL);
		close(reply_fd);
		if (out_fd >= 0)
			close(out_fd);
	}
}

static int run_sigsys(int op, const char *path, int wcpu, int bcpu, int64_t batch_ns, int batches) {
	/* Allow the file and its directory, recursively (a typical entry). */
	static char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return fprintf(stderr, "baseline: path must be absolute\n"), 1;
	slash[1] = 0;
	perms[nperms++] = (struct permission){"/etc/ld.so.cache", 0, 1};
	perms[nperms++] = (struct permission){path, 0, 1};
	perms[nperms++] = (struct permission){dir, 1, 1};

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	fflush(stdout);
	pid_t broker = fork();
	if (broker < 0)
		die("fork");
	if (broker == 0) {
		close(sv[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pin(bcpu);
		broker_loop(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	ipc_fd = sv[0];
	pin(wcpu);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		die("sigaction");
	install_filter(SECCOMP_RET_TRAP);
	run_loop(op, path, batch_ns, batches);
	close(ipc_fd);
	int st;
	waitpid(broker, &st, 0);
	return 0;
}

/* ---------------------------------------------------------------- ptrace */

static int run_ptrace(int op, const char *path, int wcpu, int bcpu, int64_t batch_ns, int batches) {
	fflush(stdout);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
			die("PTRACE_TRACEME");
		raise(SIGSTOP);
		pin(wcpu);
		install_filter(SECCOMP_RET_TRACE);
		run_loop(op, path, batch_ns, batches);
		_exit(0);
	}
	pin(bcpu);
	int st;
	if (waitpid(child, &st, 0) < 0 || !WIFSTOPPED(st))
		die("waitpid (initial stop)");
	if (ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL) < 0)
		die("PTRACE_SETOPTIONS");
	if (ptrace(PTRACE_CONT, child, 0, 0) < 0)
		die("PTRACE_CONT");
	for (;;) {
		if (waitpid(child, &st, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			die("waitpid");
		}
		if (WIFEXITED(st))
			return WEXITSTATUS(st);
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
		int sig = 0;
		if (WIFSTOPPED(st) && st >> 8 != (SIGTRAP | (PTRACE_EVENT_SECCOMP << 8)))
			sig = WSTOPSIG(st); /* a real signal: deliver it */
		ptrace(PTRACE_CONT, child, 0, sig);
	}
}

int main(int argc, char **argv) {
	if (argc != 8) {
		fprintf(stderr, "usage: baseline native|sigsys|ptrace open|stat PATH WORKER_CPU BROKER_CPU BATCH_NS BATCHES\n");
		return 2;
	}
	const char *mode = argv[1];
	int op = !strcmp(argv[2], "stat") ? OP_STAT : OP_OPEN;
	const char *path = argv[3];
	int wcpu = atoi(argv[4]), bcpu = atoi(argv[5]);
	int64_t batch_ns = atoll(argv[6]);
	int batches = atoi(argv[7]);
	if (!strcmp(mode, "native")) {
		pin(wcpu);
		run_loop(op, path, batch_ns, batches);
		return 0;
	}
	if (!strcmp(mode, "sigsys"))
		return run_sigsys(op, path, wcpu, bcpu, batch_ns, batches);
	if (!strcmp(mode, "ptrace"))
		return run_ptrace(op, path, wcpu, bcpu, batch_ns, batches);
	fprintf(stderr, "baseline: unknown mode %s\n", mode);
	return 2;
}
