package seccomp

// Kernel constants this package needs. The package builds on every OS, so it
// cannot take them from golang.org/x/sys/unix; consts_linux_test.go checks
// each of them against x/sys/unix. All values are the same on amd64 and arm64
// (both use the asm-generic errno, ioctl and socket numbering).

// Audit architectures (linux/audit.h) that only appear in tests and the
// disassembler; the supported ones are the Arch constants.
const (
	auditArchI386 = 0x40000003 // int 0x80 on x86-64 reports this arch
	auditArchARM  = 0x40000028 // aarch32 compat tasks on arm64
)

// x32Bit is __X32_SYSCALL_BIT: x32 syscalls arrive on x86-64 with this bit set
// in nr and the AUDIT_ARCH_X86_64 arch, so the arch check alone lets them in.
const x32Bit = 0x40000000

// struct seccomp_data layout (linux/seccomp.h). The 64-bit fields are in the
// task's byte order; amd64 and arm64 are little-endian, so the low 32 bits of
// args[i] are at offArgs+8*i and the high 32 bits four bytes later.
const (
	offNr       = 0
	offArch     = 4
	offIP       = 8
	offArgs     = 16
	seccompData = 64 // sizeof(struct seccomp_data)
)

// SECCOMP_RET_* (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
	retActionFull  = 0xffff0000
	retData        = 0x0000ffff
)

// Errno numbers (asm-generic/errno-base.h, asm-generic/errno.h).
const (
	errEPERM        = 1
	errENOENT       = 2
	errEACCES       = 13
	errEINVAL       = 22
	errENOSYS       = 38
	errEAFNOSUPPORT = 97
	maxErrno        = 4095 // MAX_ERRNO: the kernel clamps SECCOMP_RET_ERRNO data to it
)

// clone(2) and unshare(2) flags (linux/sched.h).
const (
	cloneFS        = 0x00000200
	cloneFiles     = 0x00000400
	cloneNewNS     = 0x00020000
	cloneSysVSem   = 0x00040000
	cloneNewCgroup = 0x02000000
	cloneNewUTS    = 0x04000000
	cloneNewIPC    = 0x08000000
	cloneNewUser   = 0x10000000
	cloneNewPID    = 0x20000000
	cloneNewNet    = 0x40000000
	cloneNewTime   = 0x00000080 // clone3 and unshare only: in clone(2) this bit belongs to the exit signal

	// cloneNewMask is every CLONE_NEW* flag clone(2) can carry in its low
	// 32 bits. CLONE_NEWTIME is left out: clone(2) reads bits 0-7 as the
	// exit signal (kernel_clone_args.exit_signal = flags & CSIGNAL).
	cloneNewMask = cloneNewNS | cloneNewCgroup | cloneNewUTS | cloneNewIPC | cloneNewUser | cloneNewPID | cloneNewNet
	// unshareOK is what unshare(2) may carry: process-private copies of
	// the fd table, fs_struct and SysV semaphore undo list. Everything
	// else is a namespace (or needs one).
	unshareOK = cloneFS | cloneFiles | cloneSysVSem
)

// ioctl requests (asm-generic/ioctls.h, linux/fs.h). The kernel declares the
// request as unsigned int, so only the low 32 bits are compared.
const (
	ioctlTIOCSTI         = 0x5412
	ioctlTIOCLINUX       = 0x541c
	ioctlFSIOCSETFLAGS   = 0x40086602 // _IOW('f', 2, long)
	ioctlFSIOCFSSETXATTR = 0x401c5820 // _IOW('X', 32, struct fsxattr)
)

// prctl(2) options and values (linux/prctl.h).
const (
	prSetDumpable        = 4
	prSetSeccomp         = 22
	prSetMM              = 35
	prCapAmbient         = 47
	prCapAmbientRaise    = 2
	prSetSpeculationCtrl = 53
	prSpecEnable         = 2
	prSetPtracer         = 0x59616d61
	personalityLinux     = 0          // PER_LINUX
	personalityQuery     = 0xffffffff // personality(0xffffffff) only reads
	fcntlSetLease        = 1024       // F_SETLEASE
	fcntlNotify          = 1026       // F_NOTIFY
	seccompFlagSpecAllow = 4          // SECCOMP_FILTER_FLAG_SPEC_ALLOW
	seccompFlagNewListen = 8          // SECCOMP_FILTER_FLAG_NEW_LISTENER
	mfdExec              = 0x10       // MFD_EXEC
	modeSetIDSticky      = 0o7000     // S_ISUID | S_ISGID | S_ISVTX
	afUnix               = 1
	afInet               = 2
	afInet6              = 10
	afNetlink            = 16
	sockStream           = 1
	sockDgram            = 2
	sockRaw              = 3
	sockSeqpacket        = 5
	sockTypeMask         = 0xf // SOCK_TYPE_MASK: the rest of type is SOCK_NONBLOCK | SOCK_CLOEXEC
	netlinkRoute         = 0
)

// Classic BPF opcodes (linux/bpf_common.h). Only these appear in programs
// this package assembles; all of them pass seccomp_check_filter and the
// kernel's constant-action emulation (seccomp_is_const_allow) understands
// every one of them.
const (
	opLdAbsW  = 0x00 | 0x00 | 0x20 // BPF_LD | BPF_W | BPF_ABS
	opAndK    = 0x04 | 0x50 | 0x00 // BPF_ALU | BPF_AND | BPF_K
	opJa      = 0x05 | 0x00        // BPF_JMP | BPF_JA
	opJeqK    = 0x05 | 0x10 | 0x00 // BPF_JMP | BPF_JEQ | BPF_K
	opJgtK    = 0x05 | 0x20 | 0x00 // BPF_JMP | BPF_JGT | BPF_K
	opJgeK    = 0x05 | 0x30 | 0x00 // BPF_JMP | BPF_JGE | BPF_K
	opJsetK   = 0x05 | 0x40 | 0x00 // BPF_JMP | BPF_JSET | BPF_K
	opRetK    = 0x06 | 0x00        // BPF_RET | BPF_K
	maxInsns  = 4096               // BPF_MAXINSNS
	maxJumpOf = 255                // jt/jf are 8 bits
)
