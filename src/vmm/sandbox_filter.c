/* The VMM's seccomp allow-list (libseccomp): what the run loop, restarts and exit call. */
#include "vmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>

/* gcc defines __SANITIZE_ADDRESS__; clang has __has_feature(address_sanitizer). */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

/*
 * Found with `strace -f -qq` over the probe guest's tests under `cove run --sandbox` (every
 * exit path: poweroff, each reset, --on-reboot restart, Ctrl-A X, SIGTERM) and with
 * --seccomp-log; the virtio devices' calls (block I/O, taps, rng) from their code. How to
 * regenerate it: docs/sandbox.md. Restart rebuilds the VM inside the sandbox, hence
 * openat, the KVM setup ioctls and thread creation.
 */
static const int allowed[] = {
    /* I/O on descriptors opened before the filter */
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),
    SCMP_SYS(lseek),
    SCMP_SYS(close),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(fallocate),
    /* sockets (API, vsock, virtio-console); socket() itself is for AF_UNIX only, below */
    SCMP_SYS(accept4),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendto),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockopt),
    /* vsock connects to PATH_PORT for the guest's connections; vsock and virtio-console
     * make (restart) and remove (exit) their listening sockets: only in the jail's binds */
    SCMP_SYS(connect),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
    SCMP_SYS(unlink),
    /* the event loop */
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(poll), /* the API socket's server (libmicrohttpd) */
    SCMP_SYS(ppoll),
    SCMP_SYS(eventfd2),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(signalfd4),
    /* block I/O (io_uring; see docs/sandbox.md on what seccomp does not see there) */
    SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_register),
    /* threads, locks, time, signals (the vCPU kick is tgkill to this process only) */
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    /* memory (never executable) */
    SCMP_SYS(munmap),
    SCMP_SYS(madvise),
    SCMP_SYS(mremap),
    SCMP_SYS(brk),
    /* virtio-rng */
    SCMP_SYS(getrandom),
#ifdef SANDBOX_ASAN
    /* ASan's thread start (pthread_getattr_np); run ASan builds with detect_leaks=0 in the
     * sandbox: LeakSanitizer forks a ptrace tracer and reads /proc at exit. */
    SCMP_SYS(sched_getaffinity),
#endif
};

/* ioctl requests: the KVM ones a VMM uses (restart rebuilds the VM), the terminal's, taps'. */
static const unsigned long ioctls[] = {
    KVM_GET_API_VERSION,
    KVM_CHECK_EXTENSION,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_GET_SUPPORTED_CPUID,
    KVM_CREATE_VM,
    KVM_SET_IDENTITY_MAP_ADDR,
    KVM_SET_TSS_ADDR,
    KVM_SET_USER_MEMORY_REGION,
    KVM_CREATE_IRQCHIP,
    KVM_CREATE_PIT2,
    KVM_IRQ_LINE,
    KVM_IRQ_LINE_STATUS,
    KVM_IOEVENTFD,
    KVM_IRQFD,
    KVM_SET_GSI_ROUTING,
    KVM_SIGNAL_MSI,
    KVM_CREATE_VCPU,
    KVM_SET_CPUID2,
    KVM_SET_MSRS,
    KVM_GET_MSRS,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_SET_FPU,
    KVM_RUN,
    TCGETS,
    TCSETS,
    TCSETSW,
    TCSETSF,
    TIOCGWINSZ,
    FIONBIO,
    0x400454ca, /* TUNSETIFF (restart reopens taps) */
    0x400454d0, /* TUNSETOFFLOAD */
    0x400454d8, /* TUNSETVNETHDRSZ */
};

static const int fcntls[] = {F_GETFL, F_SETFL, F_GETFD, F_SETFD};

unsigned sandbox_filter_count(void)
{
	/* the plain rows, plus ioctl, fcntl, mmap, mprotect, clone, clone3, tgkill, openat,
	 * socket, setsockopt, prctl */
	return (unsigned)(sizeof(allowed) / sizeof(allowed[0])) + 11;
}

/* Whole comparisons (libseccomp's SCMP_An macros leave datum_b to the compiler's mercy). */
static struct scmp_arg_cmp arg_eq(unsigned arg, scmp_datum_t value)
{
	return (struct scmp_arg_cmp){.arg = arg, .op = SCMP_CMP_EQ, .datum_a = value, .datum_b = 0};
}

static struct scmp_arg_cmp arg_masked(unsigned arg, scmp_datum_t mask, scmp_datum_t value)
{
	return (struct scmp_arg_cmp){
	    .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = value};
}

static int build(scmp_filter_ctx *out, pid_t pid, bool log)
{
	scmp_filter_ctx ctx = seccomp_init(log ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	int r = 0;
	for (unsigned i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && !r; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	/* ioctl's request is an int: compare its low 32 bits only (no sign-extension trap). */
	for (unsigned i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]) && !r; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     arg_masked(1, 0xffffffffu, ioctls[i] & 0xffffffffu));
	for (unsigned i = 0; i < sizeof(fcntls) / sizeof(fcntls[0]) && !r; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
				     arg_eq(1, (scmp_datum_t)fcntls[i]));
	/* No executable memory, ever. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				     arg_masked(2, PROT_EXEC, 0));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     arg_masked(2, PROT_EXEC, 0));
	/* Threads only: no fork. clone3's flags are in memory seccomp cannot read, so it
	 * fails with ENOSYS and glibc falls back to clone. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				     arg_masked(0, CLONE_THREAD, CLONE_THREAD));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* Signals to this process's own threads only (vCPU kicks, raise). */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				     arg_eq(0, (scmp_datum_t)pid));
	/* Opening what the jail holds (/dev/kvm, disks on restart); creating files only to
	 * append to them (the API's log and metrics files), never truncating. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				     arg_masked(2, O_CREAT | O_TRUNC, 0));
	if (!r)
		r = seccomp_rule_add(
		    ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
		    arg_masked(2, O_CREAT | O_APPEND | O_TRUNC, O_CREAT | O_APPEND));
	/* Unix sockets only: no network, netlink or packet sockets. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, arg_eq(0, AF_UNIX));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 1,
				     arg_eq(1, SOL_SOCKET));
	/* Threads name themselves (pthread_setname_np on itself), nothing more of prctl. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				     arg_eq(0, PR_SET_NAME));
	/* Every thread gets the filter; a thread that cannot is an error, not a gap. */
	if (!r)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r) {
		seccomp_release(ctx);
		return r < 0 ? r : -EINVAL;
	}
	*out = ctx;
	return 0;
}

int sandbox_filter_export(int fd, pid_t pid, bool log)
{
	scmp_filter_ctx ctx;
	int r = build(&ctx, pid, log);
	if (r)
		return r;
	r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	return r;
}

int sandbox_filter_load(pid_t pid, bool log)
{
	scmp_filter_ctx ctx;
	int r = build(&ctx, pid, log);
	if (r)
		return r;
	r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}
