// helper.c: the parts of the escape suite's attacks that Go cannot carry
// out (int 0x80, x32 syscalls, signal handlers without SA_RESTART, execve
// from a raw fork). Built statically by TestMain with cc; one mode per
// argv[1]; prints one line.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ename(int e) {
	static char buf[32];
	const char *n = strerrorname_np(e);
	if (n) return n;
	snprintf(buf, sizeof buf, "errno%d", e);
	return buf;
}

static volatile sig_atomic_t alarms;
static void onalrm(int sig) { (void)sig; alarms++; }

static int count_fds(void) {
	int n = 0;
	for (int fd = 0; fd < 65536; fd++)
		if (fcntl(fd, F_GETFD) >= 0) n++;
	return n;
}

// sigstorm restart|norestart N PATH: SIGALRM every 50 us during N opens
// kept open; the worker's fd count must equal the successes.
static int sigstorm(int restart, int n, const char *path) {
	struct rlimit rl = {n + 256, n + 256};
	setrlimit(RLIMIT_NOFILE, &rl);
	struct sigaction sa = {0};
	sa.sa_handler = onalrm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	int base = count_fds();
	struct itimerval it = {{0, 50}, {0, 50}};
	setitimer(ITIMER_REAL, &it, NULL);
	int ok = 0, eintr = 0, other = 0, lasterr = 0;
	for (int i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) ok++;
		else if (errno == EINTR) eintr++;
		else { other++; lasterr = errno; }
	}
	struct itimerval off = {0};
	setitimer(ITIMER_REAL, &off, NULL);
	int fds = count_fds();
	printf("ok opened=%d eintr=%d other=%d leaked=%d alarms=%d%s%s\n", ok, eintr, other, fds - base - ok, (int)alarms,
	       other ? " last=" : "", other ? ename(lasterr) : "");
	return 0;
}

static char flipbuf[256];
static const char *flipa, *flipb;
static volatile int flipstop;
static void *flipper(void *arg) {
	(void)arg;
	size_t n = strlen(flipa);
	for (unsigned i = 0; !flipstop; i++)
		memcpy(flipbuf, (i & 1) ? flipb : flipa, n);
	return NULL;
}

// execflip N GOOD BAD: a thread flips the execve path; what ran?
static int execflip(int n, const char *good, const char *bad) {
	if (strlen(good) != strlen(bad)) { puts("lengths differ"); return 0; }
	flipa = good; flipb = bad;
	memcpy(flipbuf, good, strlen(good) + 1);
	pthread_t th;
	pthread_create(&th, NULL, flipper, NULL);
	int okran = 0, shran = 0, fail = 0, other = 0;
	for (int i = 0; i < n; i++) {
		int p[2];
		if (pipe(p)) { fail++; continue; }
		pid_t pid = syscall(SYS_fork);
		if (pid == 0) {
			dup2(p[1], 1);
			char *argv[] = {"ok", "-c", "echo SHELL-RAN", NULL};
			char *envp[] = {NULL};
			syscall(SYS_execve, flipbuf, argv, envp);
			_exit(99);
		}
		close(p[1]);
		char out[64] = {0};
		ssize_t k = read(p[0], out, sizeof out - 1);
		close(p[0]);
		int st;
		waitpid(pid, &st, 0);
		if (k > 0 && strstr(out, "SHELL-RAN")) shran++;
		else if (k > 0 && strncmp(out, "ok", 2) == 0) okran++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 99) fail++;
		else other++;
	}
	flipstop = 1;
	pthread_join(th, NULL);
	printf("ok okran=%d shell=%d denied=%d other=%d\n", okran, shran, fail, other);
	return 0;
}

static long int80(long nr, long a, long b, long c, long d) {
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
	return r;
}

// iouring PATH: io_uring_setup, then IORING_OP_OPENAT of PATH.
static int iouring(const char *path) {
	struct io_uring_params p = {0};
	int fd = syscall(SYS_io_uring_setup, 4, &p);
	if (fd < 0) { printf("setup:%s\n", ename(errno)); return 0; }
	size_t sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(0, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	char *cq = mmap(0, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) { printf("mmap:%s\n", ename(errno)); return 0; }
	unsigned *tail = (unsigned *)(sq + p.sq_off.tail), *mask = (unsigned *)(sq + p.sq_off.ring_mask), *array = (unsigned *)(sq + p.sq_off.array);
	unsigned idx = *tail & *mask;
	memset(&sqes[idx], 0, sizeof sqes[idx]);
	sqes[idx].opcode = IORING_OP_OPENAT;
	sqes[idx].fd = AT_FDCWD;
	sqes[idx].addr = (unsigned long)path;
	sqes[idx].open_flags = O_RDONLY;
	array[idx] = idx;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	int r = syscall(SYS_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	if (r < 0) { printf("enter:%s\n", ename(errno)); return 0; }
	unsigned *chead = (unsigned *)(cq + p.cq_off.head), *cmask = (unsigned *)(cq + p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	int res = cqes[*chead & *cmask].res;
	if (res < 0) printf("openat:%s\n", ename(-res));
	else {
		char b[32] = {0};
		read(res, b, sizeof b - 1);
		printf("OPENED %s\n", b);
	}
	return 0;
}

// dirtyrecv: N-04. A listener of our own on getppid; RECV with a dirty
// buffer must fail EINVAL, and a zeroed one (sized by GET_NOTIF_SIZES)
// then succeeds: the loop recovers.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
static int dirtyrecv(void) {
	struct seccomp_notif_sizes sz;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz)) { printf("sizes:%s\n", ename(errno)); return 0; }
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {4, f};
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	int lfd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (lfd < 0) { printf("filter:%s\n", ename(errno)); return 0; }
	pid_t pid = fork();
	if (pid == 0) { long r = syscall(SYS_getppid); _exit(r == 4242 ? 0 : 1); }
	size_t n = sz.seccomp_notif > sizeof(struct seccomp_notif) ? sz.seccomp_notif : sizeof(struct seccomp_notif);
	struct seccomp_notif *req = malloc(n);
	memset(req, 0xff, n);
	usleep(100000);
	int dirty = ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req);
	int dirtyErr = errno;
	memset(req, 0, n);
	int clean = ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req);
	struct seccomp_notif_resp resp = {0};
	resp.id = req->id;
	resp.val = 4242;
	int sent = ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	int st = 0;
	waitpid(pid, &st, 0);
	printf("dirty=%s clean=%d send=%d child=%d sizes=%u/%zu\n", dirty < 0 ? ename(dirtyErr) : "ok", clean, sent,
	       WIFEXITED(st) ? WEXITSTATUS(st) : -1, sz.seccomp_notif, sizeof(struct seccomp_notif));
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2 || strcmp(argv[1], "ok") == 0 || strcmp(argv[0], "ok") == 0) { puts("ok"); return 0; }
	const char *m = argv[1];
	if (!strcmp(m, "euid")) { printf("ok euid=%d uid=%d\n", (int)geteuid(), (int)getuid()); return 0; }
	if (!strcmp(m, "x32")) {
		long r = syscall(0x40000000 | 257, AT_FDCWD, argv[2], O_RDONLY);
		printf("survived r=%ld %s\n", r, r < 0 ? ename(errno) : "");
		return 0;
	}
	if (!strcmp(m, "int80")) {
		// The string must be addressable with 32 bits.
		char *low = mmap((void *)0x10000, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (low == MAP_FAILED) { printf("mmap:%s\n", ename(errno)); return 0; }
		strcpy(low, argv[2]);
		long nr = atol(argv[3]);
		long r = nr == 5 ? int80(5, (long)low, O_RDONLY, 0, 0) : int80(nr, -100, (long)low, O_RDONLY, 0);
		printf("survived r=%ld\n", r);
		return 0;
	}
	if (!strcmp(m, "sigstorm")) return sigstorm(!strcmp(argv[2], "restart"), atoi(argv[3]), argv[4]);
	if (!strcmp(m, "execflip")) return execflip(atoi(argv[2]), argv[3], argv[4]);
	if (!strcmp(m, "iouring")) return iouring(argv[2]);
	if (!strcmp(m, "dirtyrecv")) return dirtyrecv();
	printf("unknown mode %s\n", m);
	return 2;
}
