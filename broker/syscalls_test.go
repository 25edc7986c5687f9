//go:build linux

package broker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// step is one worker command and its expected result (exact, or a prefix
// when it ends in "*"). ${T} is the fixture root.
type step struct{ cmd, want string }

func runSteps(t *testing.T, w *worker, T string, steps []step) {
	t.Helper()
	for _, s := range steps {
		w.expect(strings.ReplaceAll(s.cmd, "${T}", T), strings.ReplaceAll(s.want, "${T}", T))
	}
}

// setup starts a worker with cwd ${T}/ro under the test policy.
func setup(t *testing.T, extra string) (string, *worker) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, extra)})
	return T, startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
}

const deny = "EACCES"

func TestOpen(t *testing.T) {
	T, w := setup(t, "")
	cases := []struct {
		name  string
		steps []step
	}{
		{"absolute", []step{
			{"open a ${T}/ro/f O_RDONLY", "ok"}, {"read a", `data="RO"`}, {"cloexec a", "cloexec=false"}, {"close a", "ok"},
			{"open a ${T}/ro/f O_RDONLY|O_CLOEXEC", "ok"}, {"cloexec a", "cloexec=true"}, {"getfl a", "flags=0"},
			{"open a ${T}/ro/f O_RDONLY|O_NONBLOCK", "ok"}, {"getfl a", "flags=04000"},
			{"open a ${T}/ro O_RDONLY", "ok"}, {"getfl a", "flags=0"}, // a directory, no O_NONBLOCK left
			{"open a ${T}/ro/ O_RDONLY|O_NONBLOCK", "ok"}, {"getfl a", "flags=04000"},
			{"open a ${T}/ro/f/ O_RDONLY", "ENOTDIR"},
			{"open a ${T}/ro/missing O_RDONLY", "ENOENT"},
		}},
		{"relative and dirfd", []step{
			{"open a f O_RDONLY", "ok"}, {"read a", `data="RO"`},
			{"open a ./d/../f O_RDONLY", "ok"}, {"read a", `data="RO"`},
			{"open d ${T}/ro O_PATH|O_DIRECTORY", "ok"},
			{"openat a $d f O_RDONLY", "ok"}, {"read a", `data="RO"`},
			{"openat a $d ../out/secret O_RDONLY", deny}, // P-23
			{"openat a hi$d f O_RDONLY", "ok"},           // P-24: (1<<32)|dfd acts as dfd
			{"openat a 0x00000000FFFFFF9C f O_RDONLY", "ok"},
			{"open fa ${T}/ro/f O_RDONLY", "ok"},
			{"openat a $fa g O_RDONLY", "ENOTDIR"},
			{"openat a 9999 f O_RDONLY", "EBADF"},
			{"openat a 9999 ${T}/ro/f O_RDONLY", "ok"}, // absolute: dirfd ignored
			{"openat a $d '' O_RDONLY", "ENOENT"},      // P-26
			{"open a '' O_RDONLY", "ENOENT"},           // C-14
		}},
		{"denied", []step{
			{"open a ${T}/out/secret O_RDONLY", deny}, {"open a ${T}/out/missing O_RDONLY", deny}, // P-22
			{"open a ${T}/ro/../out/secret O_RDONLY", deny}, // P-01
			{"open a ${T}/ro/f O_RDWR", deny}, {"open a ${T}/ro/f O_WRONLY", deny},
			{"open a ${T}/out/secret O_PATH", deny}, // P-21
			{"open a ${T}/out O_DIRECTORY", deny},   // P-38
			{"open a ${T}/pq/x O_RDONLY", deny},
			{"open a ${T}/ro/missing O_RDONLY", "ENOENT"},
			{"open a ${T}/a/f O_RDONLY", "ENOENT"}, // C-02: exact rule, missing parent
			{"open a /etc/passwd O_RDONLY", deny},
		}},
		{"flags", []step{
			{"open a ${T}/ro/f 3", deny},                   // access mode 3
			{"open a ${T}/ro/f 0x40000000", deny},          // unknown bit
			{"open a ${T}/rw O_TMPFILE|O_RDWR 0600", deny}, // O_TMPFILE
			{"open a ${T}/ro/f O_RDONLY|O_ASYNC", deny},    // O_ASYNC
			{"open a ${T}/ro/f 0x100000000", "ok"},         // P-36: bits above 31 ignored
			{"open a ${T}/ro/f O_RDONLY|O_TRUNC", deny},    // P-35
			{"read a", `data="RO"`},
			{"open a ${T}/ro/f O_PATH", "ok"}, {"getfl a", "flags=0"}, // served as O_RDONLY
			{"open a ${T}/rw/private/f O_PATH", deny},
			{"open a ${T}/ro/f O_RDONLY|O_DIRECTORY", "ENOTDIR"},
			{"open a ${T}/rw/nd O_CREAT|O_DIRECTORY|O_RDONLY 0755", "EINVAL"},
			{"open a ${T}/ro/f O_RDONLY|O_NOATIME|O_LARGEFILE|O_SYNC|O_NOCTTY", "*"},
		}},
		{"paths", []step{
			{"open a /${T}//ro/./f O_RDONLY", "ok"}, {"read a", `data="RO"`}, // P-34
			{"open a ${T}/ro/..f O_RDONLY", "ok"}, {"read a", `data="DOTDOTF"`},
			{"open a ${T}/ro/f/ O_RDONLY", "ENOTDIR"}, // P-29
			{"open a ${T}/ro/ O_RDONLY", "ok"},
			{"open a ${T}/ro/. O_RDONLY", "ok"},
			{"open a ${T}/ro/f/. O_RDONLY", "ENOTDIR"},
			{"open a ${T}/t/good_extra/f O_RDONLY", deny}, // C-17
			{"open a ${T}/t/good/../good_extra/f O_CREAT|O_WRONLY 0644", deny},
		}},
		{"symlinks", []step{
			{"open a ${T}/rw/ok O_RDONLY", "ok"}, {"read a", `data="RO"`}, // P-04
			{"open a ${T}/rw/ok O_RDWR", deny},
			{"open a ${T}/rw/abs O_RDONLY", "ok"}, {"read a", `data="RO"`}, // P-05
			{"open a ${T}/rw/s O_RDONLY", deny},                  // P-02
			{"open a ${T}/rw/s2 O_RDONLY", deny},                 // P-03
			{"open a ${T}/rw/d/passwd O_RDONLY", deny},           // P-06
			{"open a ${T}/rw/ok O_RDONLY|O_NOFOLLOW", "ELOOP"},   // P-07
			{"open a ${T}/rw/ok O_PATH|O_NOFOLLOW", deny},        // ADDFD cannot install an O_PATH symlink
			{"open a ${T}/rw/x O_CREAT|O_WRONLY 0644", deny},     // P-09
			{"open a ${T}/rw/lnk/ O_NOFOLLOW|O_DIRECTORY", deny}, // P-29
			{"open a ${T}/rw/up/f O_RDONLY", "ok"}, {"read a", `data="RO"`},
			{"open a ${T}/rw/up/../out/secret O_RDONLY", deny},
			{"open a ${T}/rw/loop1 O_RDONLY", "ELOOP"},
			{"open a ${T}/rw/missing/../ok O_RDONLY", "ENOENT"},   // fails where stat is allowed
			{"open a ${T}/out/missing/../../ro/f O_RDONLY", deny}, // fails under no rule
			{"open a ${T}/rw/x O_RDONLY", deny},                   // dangling into out/: like a missing name there
			{"stat ${T}/rw/x", deny},
			{"lstat ${T}/rw/x", "ok * mode=0120777*"},
			{"open a ${T}/rw/ok/ O_RDONLY", "ENOTDIR"},
		}},
		{"devices and special files", []step{
			{"open n /dev/null O_RDWR", "ok"}, {"fstat n", "ok * rdev=0x103"}, // P-39
			{"open n ${T}/rw/n2 O_WRONLY", "ok"}, {"fstat n", "ok * rdev=0x103"},
			{"open n ${T}/rw/sda O_RDONLY", deny},
			{"open n /dev/sda O_RDONLY", deny},
			{"open n /dev/zero O_RDONLY", "ok"},
			{"open n /dev/full O_RDONLY", deny}, // a wildcard rule does not grant a device
			{"open n /dev/full O_PATH", deny},
			{"open n ${T}/ro/fifo O_RDONLY", deny}, // P-40
			{"open n ${T}/ro/fifo O_WRONLY", deny},
			{"open n ${T}/ro/fifo O_PATH", deny},
			{"open n ${T}/ro/zero O_RDONLY", "EACCES"}, // P-42: DAC as the worker, also as root
		}},
		{"create", []step{
			{"open c ${T}/rw/new O_CREAT|O_WRONLY 0666", "ok"}, {"write c hello", "ok 5"},
			{"fstat c", "ok * mode=0100644 size=5*"},
			{"open c2 ${T}/rw/new O_CREAT|O_EXCL|O_WRONLY 0644", "EEXIST"},
			{"open c2 ${T}/rw/new O_CREAT|O_RDWR 0644", "ok"}, {"read c2", `data="hello"`},
			{"open c3 ${T}/rw/new O_WRONLY|O_TRUNC", "ok"}, {"fstat c3", "ok * size=0*"}, // P-35
			{"open c ${T}/ro/new O_CREAT|O_WRONLY 0644", deny},
			{"open c ${T}/out/new O_CREAT|O_WRONLY 0644", deny},
			{"open c ${T}/rw/private/f O_CREAT|O_WRONLY 0644", deny}, // C-38
			{"open c ${T}/rw/private/f O_RDONLY", deny},
			{"open c ${T}/rw/new2/ O_CREAT|O_WRONLY 0644", "EISDIR"}, // P-29
			{"open c ${T}/rw/. O_CREAT|O_WRONLY 0644", "EISDIR"},
			{"open c ${T}/rw/nodir/f O_CREAT|O_WRONLY 0644", "ENOENT"},
			{"open c ${T}/rw/ok O_CREAT|O_RDONLY 0644", deny}, // through a link: the target's rights (no create)
			{"open c ${T}/rw/ok O_CREAT|O_EXCL|O_RDONLY 0644", "EEXIST"},
			{"umask 077", "ok"},
			{"open c ${T}/rw/m1 O_CREAT|O_WRONLY 0666", "ok"}, {"fstat c", "ok * mode=0100600*"}, // P-43
			{"open c ${T}/rw/m2 O_CREAT|O_WRONLY 04777", "ok"}, {"fstat c", "ok * mode=0100700*"},
			{"umask 022", "ok"},
			{"excl2 ${T}/rw/race", "EEXIST,ok"}, // P-10
			{"open c ${T}/t/good/n O_CREAT|O_RDWR 0644", "ok"},
			{"open c ${T}/t/good_extra/n O_CREAT|O_RDWR 0644", deny}, // C-35
			{"sysopen c ${T}/rw/legacy O_CREAT|O_WRONLY 0644", legacyWant("ok")},
			{"sysopen c ${T}/out/secret O_RDONLY", legacyWant(deny)},
			{"creat c ${T}/ro/f 0644", legacyWant(deny)},
			{"creat c ${T}/rw/legacy2 0600", legacyWant("ok")},
		}},
		{"directory listing", []step{
			{"open d ${T}/ro/d O_RDONLY|O_DIRECTORY", "ok"}, {"ls d", "names=g"},
		}},
		{"proc", []step{
			{"open s /proc/self/status O_RDONLY", "ok"},
			{"open s /proc/thread-self/status O_RDONLY", deny},
			{"open s /proc/self/environ O_RDONLY", deny},       // P-15
			{"open s /proc/self/root${T}/ro/f O_RDONLY", deny}, // P-16
			{"open s /proc/self/cwd/f O_RDONLY", deny},         // P-17
			{"open s /proc/1/root/etc/passwd O_RDONLY", deny},
			{"open s /proc/self/exe O_WRONLY", deny},            // P-19
			{"open s /proc/self/../self/status O_RDONLY", deny}, // would name the broker
			{"open s /proc/mounts O_RDONLY", deny},
		}},
		{"worker fds", []step{
			{"open a ${T}/ro/f O_RDONLY", "ok"},
			{"open b /proc/self/fd/{a} O_RDWR", deny}, // P-20
			{"open b /proc/self/fd/{a} O_RDONLY", "ok"}, {"read b", `data="RO"`},
			{"open b /dev/fd/{a} O_RDONLY", "ok"}, {"read b", `data="RO"`},
			{"open b /proc/thread-self/fd/{a} O_RDONLY", "ok"},
			{"open b /proc/self/fd/9999 O_RDONLY", "ENOENT"},
			{"open b /proc/self/fd/{a} O_RDONLY|O_NOFOLLOW", deny}, // the link itself: only stat is allowed
			{"open d ${T}/ro O_PATH|O_DIRECTORY", "ok"},
			{"open b /proc/self/fd/{d}/f O_RDONLY", "ok"}, {"read b", `data="RO"`},
			{"open b /dev/fd/{d}/../out/secret O_RDONLY", deny},
			{"open b /dev/fd/{a}/ O_RDONLY", "ENOTDIR"},
			{"open b /dev/fd/{d}/ O_RDONLY", "ok"},
			{"pipe pr pw", "ok"},
			{"open x /dev/fd/{pw} O_WRONLY", "ok"}, {"write x hi", "ok 2"}, {"readpipe pr", `data="hi"`},
			{"open x /dev/fd/{pr} O_WRONLY", deny},
			{"open x /dev/fd/{pr} O_RDONLY", "ok"},
			{"socket so", "ok"},
			{"open x /proc/self/fd/{so} O_RDWR", deny},
			{"open x /dev/stdin O_RDONLY", "ok"},
			{"open x /dev/stdin O_WRONLY", deny},
			{"open x /dev/stdout O_WRONLY", "ok"},
		}},
		{"openat2", []step{
			{"open d ${T}/ro O_PATH|O_DIRECTORY", "ok"},
			{"openat2 a $d f O_RDONLY 0 0", "ok"}, {"read a", `data="RO"`},
			{"openat2 a $d f O_RDONLY 0 0 8", "EINVAL"},    // P-37
			{"openat2 a $d f O_RDONLY 0 0 32 1", "E2BIG"},  // non-zero tail
			{"openat2 a $d f O_RDONLY 0 0 32", "ok"},       // zero tail
			{"openat2 a $d f O_RDONLY 0 0 8192", "E2BIG"},  // above a page
			{"openat2 a $d f 0x40000000 0 0", "EINVAL"},    // unknown flag
			{"openat2 a $d f 0x10000000000 0 0", "EINVAL"}, // upper 32 bits
			{"openat2 a $d f O_RDONLY 0 0x40", "EINVAL"},   // unknown resolve bit
			{"openat2 a $d f O_RDONLY 0644 0", "EINVAL"},   // mode without O_CREAT
			{"openat2 a $d f O_RDONLY 0 RESOLVE_BENEATH|RESOLVE_IN_ROOT", "EINVAL"},
			{"openat2 a $d f 3 0 0", deny},
			{"openat2 a $d ../out/secret O_RDONLY 0 RESOLVE_BENEATH", deny},
			{"openat2 a $d ../ro/f O_RDONLY 0 RESOLVE_BENEATH", deny},
			{"openat2 a $d /f O_RDONLY 0 RESOLVE_IN_ROOT", "ok"}, {"read a", `data="RO"`},
			{"openat2 a AT_FDCWD ${T}/rw/ok O_RDONLY 0 RESOLVE_NO_SYMLINKS", "ELOOP"},
			{"openat2 a AT_FDCWD ${T}/rw/c2 O_CREAT|O_RDWR 0600 0", "ok"},
			{"fstat a", "ok * mode=0100600*"},
		}},
		{"faults", []step{
			{"openptr 0 0", "EFAULT"},                  // C-18
			{"openptr 0xffffffff81000000 0", "EFAULT"}, // P-31
			{"openguard ${T}/ro/f nul", "ok"},
			{"openguard ${T}/ro/f nonul", "EFAULT"},
			{"openlong ${T}/ro 4095 f l", "ok"}, {"read l", `data="RO"`}, // P-30
			{"openlong ${T}/ro 4096 f l", "ENAMETOOLONG"},
			{"openlong ${T}/ro 5000 f l", "ENAMETOOLONG"}, // never truncated to an allowed prefix
			{"open a ${T}/ro/" + strings.Repeat("a", 256) + " O_RDONLY", "ENAMETOOLONG"},
			{"open a ${T}/ro/" + strings.Repeat("a", 255) + " O_RDONLY", "ENOENT"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSteps(t, w, T, c.steps) })
	}
	if _, err := os.Lstat(filepath.Join(T, "out/new")); err == nil {
		t.Errorf("P-09: %s/out/new was created through a dangling symlink", T)
	}
	if b, _ := os.ReadFile(filepath.Join(T, "ro/f")); string(b) != "RO" {
		t.Errorf("P-35: ro/f is %q", b)
	}
}

func TestStat(t *testing.T) {
	T, w := setup(t, "")
	ino := itoaT(inode(t, filepath.Join(T, "ro/f")))
	runSteps(t, w, T, []step{
		{"stat ${T}/ro/f", "ok ino=" + ino + " mode=0100644 size=2*"}, // C-25
		{"stat f", "ok ino=" + ino + "*"},
		{"stat ${T}/out/secret", deny}, {"stat ${T}/out/missing", deny}, // C-23
		{"stat ${T}/ro/missing", "ENOENT"}, {"stat ${T}/a/f", "ENOENT"}, // C-24
		{"lstat ${T}/rw/ok", "ok * mode=0120777*"},
		{"stat ${T}/rw/ok", "ok ino=" + ino + "*"},
		{"lstat ${T}/rw/s", "ok * mode=0120777*"}, // C-40: the link itself is in rw
		{"stat ${T}/rw/s", deny},
		{"stat ${T}", "ok*"},    // stat on the way to an allow rule
		{"stat ${T}/out", deny}, // not on the way
		{"sysstat ${T}/ro/f", legacyWant("ok ino=" + ino + "*")},
		{"syslstat ${T}/rw/ok", legacyWant("ok * mode=0120777*")},
		{"sysstat ${T}/out/secret", legacyWant(deny)},
		{"open a ${T}/ro/f O_RDONLY", "ok"},
		{"fstatat $a '' AT_EMPTY_PATH", "ok ino=" + ino + "*"}, // P-27
		{"fstatat $a - AT_EMPTY_PATH", "ok ino=" + ino + "*"},
		{"fstatat $a '' 0", "ENOENT"},
		{"fstatat 9999 '' AT_EMPTY_PATH", "EBADF"},
		{"fstatat AT_FDCWD '' AT_EMPTY_PATH", "ok ino=" + itoaT(inode(t, filepath.Join(T, "ro"))) + "*"}, // P-28
		{"fstatat AT_FDCWD f 0x80000", "EINVAL"},                                                         // C-27
		{"fstatat AT_FDCWD ${T}/rw/ok AT_SYMLINK_NOFOLLOW|AT_NO_AUTOMOUNT", "ok * mode=0120777*"},
		{"pipe pr pw", "ok"},
		{"fstatat $pr '' AT_EMPTY_PATH", "ok * mode=010600*"},
		{"stat /dev/fd/{pr}", "ok * mode=010600*"},
		{"statx AT_FDCWD ${T}/ro/f 0 STATX_BASIC_STATS", "ok ino=" + ino + " mode=0100644 size=2 mask=*"}, // C-28
		{"statx AT_FDCWD ${T}/out/secret 0 STATX_BASIC_STATS", deny},
		{"statx $a '' AT_EMPTY_PATH STATX_BASIC_STATS", "ok ino=" + ino + "*"}, // C-26
		{"statx AT_FDCWD '' AT_EMPTY_PATH STATX_INO", "ok*"},
		{"statx AT_FDCWD f 0x6000 STATX_INO", "EINVAL"},
		{"statx AT_FDCWD f 0 0x80000000", "EINVAL"},
		{"statfs ${T}/ro", "ok type=*"},
		{"statfs ${T}/out", deny},
		// fstat of the worker's fds of every kind (glibc's fstat is
		// newfstatat(fd, "", AT_EMPTY_PATH)), answered through
		// /proc/<tid>/fd/N: what the fd holds, as the kernel's fstat.
		{"open dd ${T}/ro/d O_RDONLY|O_DIRECTORY", "ok"},
		{"fstatat $dd '' AT_EMPTY_PATH", "ok ino=" + itoaT(inode(t, filepath.Join(T, "ro/d"))) + " mode=040*"},
		{"open c ${T}/rw/gone O_CREAT|O_WRONLY", "ok"},
		{"unlink ${T}/rw/gone", "ok"},
		{"fstatat $c '' AT_EMPTY_PATH", "ok * mode=0100* nlink=0*"}, // deleted: no name left
		{"statx $c '' AT_EMPTY_PATH STATX_BASIC_STATS", "ok * mode=0100*"},
		{"socket sk", "ok"},
		{"fstatat $sk '' AT_EMPTY_PATH", "ok * mode=0140777*"},
		{"fstatat $a ${T}/ro/f AT_EMPTY_PATH", "ok ino=" + ino + "*"}, // a path: an ordinary lookup
		{"fstatat $a ${T}/out/secret AT_EMPTY_PATH", deny},
	})
	// P-28 with a cwd under no rule.
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, "")})
	w2 := startWorker(t, b, workerOpts{dir: filepath.Join(T, "out")})
	runSteps(t, w2, T, []step{
		{"fstatat AT_FDCWD '' AT_EMPTY_PATH", deny},
		{"statx AT_FDCWD '' AT_EMPTY_PATH STATX_INO", deny},
		{"open a secret O_RDONLY", deny},
		{"open a ../ro/f O_RDONLY", deny}, // C-13: the anchor is under no rule
		{"open a ${T}/ro/f O_RDONLY", "ok"},
	})
}

func TestAccess(t *testing.T) {
	T, w := setup(t, "")
	runSteps(t, w, T, []step{
		{"access ${T}/ro/f R_OK", "ok"}, {"access ${T}/ro/f F_OK", "ok"},
		{"access ${T}/ro/f W_OK", deny}, {"access ${T}/ro/f R_OK|W_OK", deny}, // C-03
		{"access ${T}/ro/f X_OK", deny},
		{"access ${T}/ro/d X_OK", "ok"}, // X_OK on a directory needs read
		{"access ${T}/ro/bin/ok X_OK", "ok"},
		{"access ${T}/out/secret F_OK", deny}, {"access ${T}/out/missing R_OK", deny}, // C-05
		{"access ${T}/a/f R_OK", "ENOENT"}, // C-02
		{"access ${T}/rw/ok R_OK", "ok"},
		{"access ${T}/ro/zero F_OK", "ok"}, {"access ${T}/ro/zero R_OK", "EACCES"}, // C-06
		{"access ${T}/ro/f 8", "EINVAL"},
		{"faccessat AT_FDCWD f R_OK", "ok"},
		{"faccessat2 AT_FDCWD f R_OK AT_EACCESS", "ok"},
		{"faccessat2 AT_FDCWD f R_OK 0x1", "EINVAL"},
		{"faccessat2 AT_FDCWD ${T}/rw/ok R_OK AT_SYMLINK_NOFOLLOW", "ok"},
		{"open a ${T}/ro/f O_RDONLY", "ok"},
		{"faccessat2 $a '' R_OK AT_EMPTY_PATH", "ok"},
		{"faccessat2 $a '' W_OK AT_EMPTY_PATH", deny},
		{"open c ${T}/rw/w O_CREAT|O_WRONLY 0644", "ok"},
		{"access ${T}/rw/w R_OK|W_OK", "ok"}, // C-04
	})
}

func TestReadlink(t *testing.T) {
	T, w := setup(t, "")
	pid := strings.TrimPrefix(w.do("getpid"), "pid=")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runSteps(t, w, T, []step{
		{"readlink ${T}/rw/ok 100", "ok 7 ../ro/f"},
		{"readlink ${T}/rw/ok 3", "ok 3 ../"},
		{"readlink ${T}/rw/ok 0", "EINVAL"},
		{"readlink ${T}/rw/ok -1", "EINVAL"},
		{"readlink ${T}/ro/f 100", "EINVAL"},
		{"readlink ${T}/ro/missing 100", "ENOENT"},
		{"readlink ${T}/out/secret 100", deny}, {"readlink ${T}/out/missing 100", deny},
		{"readlink /proc/self 64", "ok " + strconv.Itoa(len(pid)) + " " + pid},
		{"readlink /proc/self/exe 4096", "ok " + strconv.Itoa(len(exe)) + " " + exe},
		{"open a ${T}/ro/f O_RDONLY", "ok"},
		{"readlink /proc/self/fd/{a} 4096", "ok * ${T}/ro/f"},
		{"readlink /proc/self/cwd 4096", deny},
		{"open d ${T}/rw O_PATH|O_DIRECTORY", "ok"},
		{"readlinkat $d ok 100", "ok 7 ../ro/f"},
		{"readlinkat $d '' 100", "ENOENT"},
		{"readlinkat AT_FDCWD '' 100", "ENOENT"},
	})
}

func TestChdir(t *testing.T) {
	T, w := setup(t, "")
	runSteps(t, w, T, []step{
		{"chdir ${T}/out", deny}, // P-25
		{"chdir ${T}/ro/f", "ENOTDIR"},
		{"chdir ${T}/ro/missing", "ENOENT"},
		{"chdir ${T}/ro/d", "ok"},
		{"getcwd", "cwd=${T}/ro/d"},
		{"open a g O_RDONLY", "ok"}, {"read a", `data="G"`},
		{"open a ../f O_RDONLY", "ok"}, {"read a", `data="RO"`},
		{"open a ../../out/secret O_RDONLY", deny},
		{"chdir ..", "ok"},
		{"getcwd", "cwd=${T}/ro"},
		{"open d ${T}/ro O_PATH|O_DIRECTORY", "ok"},
		{"chdir /", "ok"},
		{"fchdir d", "ok"},
		{"open a ../out/secret O_RDONLY", deny},
		{"open a f O_RDONLY", "ok"}, {"read a", `data="RO"`},
	})
}

func TestCreateRemove(t *testing.T) {
	T, w := setup(t, "")
	runSteps(t, w, T, []step{
		{"mkdir ${T}/rw/nd 0777", "ok"},
		{"stat ${T}/rw/nd", "ok * mode=040755*"},
		{"mkdir ${T}/rw/nd 0755", "EEXIST"},
		{"mkdir ${T}/rw/nd2/ 01777", "ok"},
		{"stat ${T}/rw/nd2", "ok * mode=040755*"}, // never sticky
		{"mkdir ${T}/ro/nd 0755", deny}, {"mkdir ${T}/out/nd 0755", deny}, {"mkdir ${T}/out/secret 0755", deny},
		{"mkdir ${T}/rw/missing/nd 0755", "ENOENT"},
		{"mkdir ${T}/rw/. 0755", "EEXIST"},
		{"open d ${T}/rw O_PATH|O_DIRECTORY", "ok"},
		{"mkdirat $d sub 0700", "ok"}, {"stat ${T}/rw/sub", "ok * mode=040700*"},
		{"rmdir ${T}/rw/nd", "ok"}, {"rmdir ${T}/rw/nd", "ENOENT"},
		{"rmdir ${T}/ro/d", deny},
		{"rmdir ${T}/rw/.", "EINVAL"},
		{"unlinkat AT_FDCWD ${T}/rw/nd2 AT_REMOVEDIR", "ok"}, // C-29
		{"unlinkat AT_FDCWD ${T}/rw/sub 0x1", "EINVAL"},
		{"unlink ''", "ENOENT"},
		{"unlink ${T}/ro/f", deny}, // C-32
		{"unlink ${T}/out/secret", deny}, {"unlink ${T}/out/missing", deny},
		{"unlink ${T}/rw/missing", "ENOENT"},
		{"unlink ${T}/rw/private/f", deny},
		{"open c ${T}/rw/u O_CREAT|O_EXCL|O_RDWR 0644", "ok"}, {"write c data", "ok 4"}, // C-21
		{"unlink ${T}/rw/u", "ok"}, {"read c", `data="data"`}, {"stat ${T}/rw/u", "ENOENT"},
		{"unlink ${T}/rw/s", "ok"}, // removes the link, not /etc/passwd
		{"unlink ${T}/rw/up/", "ENOTDIR"},
		// rename: write and create on both ends (C-31).
		{"open c ${T}/rw/r1 O_CREAT|O_WRONLY 0644", "ok"},
		{"rename ${T}/rw/r1 ${T}/rw/r2", "ok"},
		{"stat ${T}/rw/r1", "ENOENT"}, {"stat ${T}/rw/r2", "ok*"},
		{"rename ${T}/ro/f ${T}/rw/f", deny}, // P-13
		{"rename ${T}/rw/r2 ${T}/out/r2", deny},
		{"rename ${T}/rw/r2 ${T}/ro/r2", deny},
		{"open c ${T}/rw/exist O_CREAT|O_WRONLY 0644", "ok"},
		{"renameat2 AT_FDCWD ${T}/rw/r2 AT_FDCWD ${T}/rw/exist RENAME_NOREPLACE", "EEXIST"}, // C-30
		{"renameat2 AT_FDCWD ${T}/rw/r2 AT_FDCWD ${T}/rw/exist RENAME_WHITEOUT", "EINVAL"},
		{"renameat2 AT_FDCWD ${T}/rw/r2 AT_FDCWD ${T}/rw/exist 8", "EINVAL"},
		{"renameat2 AT_FDCWD ${T}/rw/r2 AT_FDCWD ${T}/rw/exist RENAME_EXCHANGE", "ok"},
		{"rename ${T}/rw/. ${T}/rw/zz", "EBUSY"},
		{"renameat $d r2 $d r3", "ok"}, {"renameat $d r3 AT_FDCWD ${T}/out/r3", deny},
		{"renameat AT_FDCWD ${T}/rw/private/f $d pf", deny},
		// symlink: create on the new name; the target grants nothing (C-39).
		{"symlink /etc/passwd ${T}/rw/l", "ok"},
		{"open a ${T}/rw/l O_RDONLY", deny},
		{"lstat ${T}/rw/l", "ok * mode=0120777*"},
		{"symlink x ${T}/ro/l", deny}, {"symlink x ${T}/out/l", deny},
		{"symlink '' ${T}/rw/l3", "ENOENT"},
		{"symlink x ${T}/rw/l", "EEXIST"},
		{"symlinkat ../ro/f $d l4", "ok"}, {"open a ${T}/rw/l4 O_RDONLY", "ok"}, {"read a", `data="RO"`},
		{"symlinkat x AT_FDCWD ${T}/rw/private/l", deny},
	})
	for _, p := range []string{"ro/f", "out/secret", "rw/private/f"} {
		if _, err := os.Stat(filepath.Join(T, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("/etc/passwd: %v", err)
	}
}

func TestMetadata(t *testing.T) {
	T, w := setup(t, "")
	if err := os.WriteFile(filepath.Join(T, "rw/f"), []byte("RW"), 0o644); err != nil {
		t.Fatal(err)
	}
	runSteps(t, w, T, []step{
		{"chmod ${T}/rw/f 04755", "ok"}, {"stat ${T}/rw/f", "ok * mode=0100755*"}, // C-39
		{"chmod ${T}/ro/f 0777", deny}, {"chmod ${T}/out/secret 0777", deny},
		{"fchmodat2 AT_FDCWD ${T}/rw/f 0600 AT_SYMLINK_NOFOLLOW", "ok"}, {"stat ${T}/rw/f", "ok * mode=0100600*"},
		{"fchmodat2 AT_FDCWD ${T}/rw/ok 0600 AT_SYMLINK_NOFOLLOW", "ENOTSUP"},
		{"fchmodat2 AT_FDCWD ${T}/rw/f 0600 0x1", "EINVAL"},
		{"fchmodat AT_FDCWD ${T}/rw/f 06644", "ok"}, {"stat ${T}/rw/f", "ok * mode=0100644*"},
		{"fchmodat AT_FDCWD ${T}/ro/f 0600", deny},
		{"truncate ${T}/rw/f 1", "ok"}, {"stat ${T}/rw/f", "ok * size=1*"},
		{"truncate ${T}/ro/f 0", deny}, {"truncate ${T}/rw/f -1", "EINVAL"},
		{"truncate ${T}/rw/missing 0", "ENOENT"},
		{"utimensat AT_FDCWD ${T}/rw/f 0 100 0 200 0", "ok"}, {"mtime ${T}/rw/f", "mtime=200"},
		{"utimensat AT_FDCWD ${T}/ro/f 0", deny},
		{"utimensat AT_FDCWD ${T}/out/secret 0 0 0x3ffffffe 0 0x3ffffffe", "ok"}, // both UTIME_OMIT: 0 before any lookup
		{"utimensat AT_FDCWD ${T}/rw/f 0 0 1000000000 0 0", "EINVAL"},
		{"open a ${T}/rw/f O_WRONLY", "ok"},
		{"utimensat $a - 0 300 0 400 0", "ok"}, {"mtime ${T}/rw/f", "mtime=400"},
		{"utimensat AT_FDCWD - 0", "EFAULT"},
		{"utimensat $a - AT_SYMLINK_NOFOLLOW", "EINVAL"},
		{"utimensat AT_FDCWD ${T}/rw/f 0x1", "EINVAL"},
		{"open r ${T}/ro/f O_RDONLY", "ok"},
		{"utimensat $r - 0", deny},
		{"utimes ${T}/rw/f", legacyWant("ok")}, {"utimes ${T}/ro/f", legacyWant(deny)},
		{"utime ${T}/rw/f", legacyWant("ok")}, {"utime ${T}/out/secret", legacyWant(deny)},
		{"futimesat AT_FDCWD ${T}/rw/f", legacyWant("ok")}, {"futimesat $r -", legacyWant(deny)},
		{"futimesat $a -", legacyWant("ok")},
		{"getxattr ${T}/out/secret user.x 64", deny},
		{"listxattr ${T}/out/secret 64", deny},
		{"listxattr ${T}/ro/f 0", "ok*"},
		{"getxattr ${T}/ro/f user.nothing 64", "ENODATA"},
		{"lgetxattr ${T}/rw/ok user.nothing", "*"},
	})
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(T, "ro/f"), &st); err != nil || st.Mode&0o777 != 0o644 {
		t.Errorf("ro/f changed: %v %o", err, st.Mode)
	}
}

func TestInotify(t *testing.T) {
	T, w := setup(t, "")
	runSteps(t, w, T, []step{
		{"inotify i ${T}/ro/d IN_CREATE", "ok wd=1"}, // C-33
		{"inotify j ${T}/out IN_CREATE", deny},       // C-34
		{"inotify j ${T} IN_CREATE", deny},           // stat-only ancestor
		{"inotify j ${T}/out/missing IN_CREATE", deny},
		{"inotify j ${T}/ro/f IN_CREATE|IN_ONLYDIR", "ENOTDIR"},
		{"inotifyfd 9999 ${T}/ro/d IN_CREATE", "EBADF"},
		{"open a ${T}/ro/f O_RDONLY", "ok"},
		{"inotifyfd {a} ${T}/ro/d IN_CREATE", "EINVAL"},
	})
	if err := os.WriteFile(filepath.Join(T, "ro/d/new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.expect("inotifyread i", "event mask=0x100 name=new")
}

func TestProcSelfStatus(t *testing.T) {
	T, w := setup(t, "")
	pid := strings.TrimPrefix(w.do("getpid"), "pid=")
	w.expect("open s /proc/self/status O_RDONLY", "ok")
	got := w.do("read s")
	if !strings.Contains(got, `\nPid:\t`+pid+`\n`) {
		t.Errorf("P-14: /proc/self/status is not the worker's (pid %s): %s", pid, got)
	}
	w.expect("open s /proc/"+pid+"/status O_RDONLY", "ok")
	w.expect("fstat s", "ok ino="+itoaT(inode(t, "/proc/"+pid+"/status"))+"*") // C-36
	self := strconv.Itoa(os.Getpid())
	w.expect("inthread open s /proc/self/status O_RDONLY", "ok")
	if got := w.do("read s"); !strings.Contains(got, `\nPid:\t`+pid+`\n`) {
		t.Errorf("/proc/self/status from another thread: %s", got)
	}
	tid := strings.TrimPrefix(w.do("inthread gettid"), "tid=")
	runSteps(t, w, T, []step{
		{"inthread open a f O_RDONLY", "ok"}, {"read a", `data="RO"`}, // anchor /proc/<tid>/cwd
		{"inthread open b /proc/thread-self/fd/{a} O_RDONLY", "ok"},
		{"inthread open b /proc/" + pid + "/fd/{a} O_RDONLY", "ok"},
		{"inthread fstatat $a '' AT_EMPTY_PATH", "ok*"},
		{"inthread readlink /proc/thread-self 64", "ok * " + pid + "/task/*"},
		{"readlink /proc/thread-self 64", "ok * " + pid + "/task/" + pid},
		{"inthread open c /proc/thread-self/comm O_RDONLY", "ok"},
		{"open c /proc/thread-self/status O_RDONLY", deny},
		{"open b /proc/" + pid + "/task/" + tid + "/fd/{a} O_RDONLY", deny}, // another thread's table: not followed
	})
	runSteps(t, w, T, []step{
		{"open s /proc/" + self + "/status O_RDONLY", deny}, // P-18
		{"open s /proc/" + self + "/environ O_RDONLY", deny},
		{"open s /proc/" + self + "/fd/0 O_RDONLY", deny},
		{"stat /proc/" + self, deny},
		{"readlink /proc/" + self + "/exe 4096", deny},
	})
}

// TestDenyErrno checks C-44: every denial returns the configured errno
// while errors of allowed paths stay the kernel's.
func TestDenyErrno(t *testing.T) {
	T := newFixture(t)
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), DenyErrno: int(unix.ENOENT)})
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro")})
	runSteps(t, w, T, []step{
		{"open a ${T}/out/secret O_RDONLY", "ENOENT"},
		{"open a ${T}/ro/f O_RDWR", "ENOENT"},
		{"stat ${T}/out/secret", "ENOENT"},
		{"access ${T}/out/secret F_OK", "ENOENT"},
		{"open a ${T}/ro/zero O_RDONLY", "EACCES"}, // allowed: the kernel's answer
		{"open a ${T}/ro/f/ O_RDONLY", "ENOTDIR"},
	})
}

// TestOtherUid runs the worker as nobody: the broker checks DAC as the
// worker's uid (R39) and can still read its memory.
func TestOtherUid(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a worker as another uid")
	}
	T := newFixture(t)
	if err := os.WriteFile(filepath.Join(T, "ro/rootonly"), []byte("R"), 0o600); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	b := newTestBroker(t, Options{Matcher: testMatcher(t, T, ""), Uid: nobody, Gid: nobody, Groups: []int{}})
	w := startWorker(t, b, workerOpts{dir: filepath.Join(T, "ro"), cred: &syscall.Credential{Uid: nobody, Gid: nobody}, exe: copyExe(t, T)})
	runSteps(t, w, T, []step{
		{"open a ${T}/ro/f O_RDONLY", "ok"}, {"read a", `data="RO"`},
		{"open a ${T}/ro/rootonly O_RDONLY", "EACCES"},
		{"access ${T}/ro/rootonly R_OK", "EACCES"},
		{"open c ${T}/rw/mine O_CREAT|O_WRONLY 0644", "ok"},
		{"fstat c", "ok * uid=65534*"},
		{"chmod ${T}/ro/f 0777", deny},
		{"open s /proc/self/status O_RDONLY", "ok"},
	})
}

// copyExe copies the test binary where another uid may run it.
func copyExe(t *testing.T, T string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(T, "worker.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// legacyWant is want where the architecture has the legacy call (x86-64)
// and "skip" elsewhere.
func legacyWant(want string) string {
	if haveLegacy {
		return want
	}
	return "skip"
}
