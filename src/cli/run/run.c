/* `cove run`: options and config file, the kernel files, and the machine's run/restart loop. */
#include "cli/commands.h"
#include "cli/run/api_glue.h"
#include "cli/run/console.h"
#include "cli/run/pvm_warn.h"
#include "util/log.h"
#include "vmm/config.h"
#include "vmm/machine.h"
#include "vmm/sandbox.h"

#include <cove/block.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef COVE_HAVE_PROBE
extern const unsigned char cove_probe_pvh[];
extern const unsigned long cove_probe_pvh_size;
#endif

#define MAX_KERNEL_SIZE (256ULL << 20)

static void usage(FILE *out)
{
	fputs("usage: cove run [OPTIONS]\n"
	      "\n"
	      "Boots a virtual machine on KVM. With no --kernel, boots the built-in probe guest,\n"
	      "which shows what it finds (pass --cmdline probe=TEST,... to run its tests).\n"
	      "\n"
	      "  --kernel PATH       bzImage, or ELF32/ELF64 kernel with a PVH note\n"
	      "  --initrd PATH       initial ramdisk\n"
	      "  --cmdline STR       kernel command line\n"
	      "  --boot MODE         auto (default): a bzImage whose kernel has a PVH note boots\n"
	      "                      by PVH, decompressed by cove (faster; no KASLR of the\n"
	      "                      kernel image); linux: the bzImage boot protocol (the\n"
	      "                      kernel decompresses itself, with KASLR); pvh: PVH or fail\n"
	      "  --cpus N            vCPUs, 1 to 255 (default 1)\n"
	      "  --memory SIZE       RAM, like 512M or 4G; a bare number is MiB (default 256M)\n"
	      "  --console KIND      stdio (default), none, or file:PATH\n"
	      "  --config FILE.json  the same settings as JSON; options override it\n"
	      "  --on-reboot ACTION  exit (default) or restart when the guest resets\n"
	      "  --log-level LEVEL   error, warn (default), info or debug\n"
	      "  --hugepages         back guest RAM with huge pages\n"
	      "  --sandbox           confine the VMM (as root; docs/sandbox.md)\n"
	      "  --sandbox-uid USER  its user (default: a free uid from 64000)\n"
	      "  --sandbox-gid GROUP its group (default: the user's)\n"
	      "  --jail-dir DIR      its jail's mount point (default /run/cove/jail)\n"
	      "  --seccomp           only the system-call allow-list (process confined by caller)\n"
	      "  --seccomp-log       log forbidden system calls, do not kill\n"
	      "  --api-sock PATH     serve the Firecracker-compatible API on this Unix socket;\n"
	      "                      with no machine settings (--kernel, --cpus, --config...),\n"
	      "                      wait for the API to configure it and send InstanceStart\n"
	      "  --disk path=P[,format=raw|qcow2][,readonly=on|off][,id=S][,cache=none|writeback]\n"
	      "       [,queues=N][,aio=io_uring|sync][,bps=N][,iops=N]\n"
	      "                      a virtio-blk disk (raw or qcow2 image, probed unless\n"
	      "                      format= is given); repeat for more\n"
	      "  --net tap=NAME[,mac=xx:xx:xx:xx:xx:xx][,queues=N][,bps=N][,pps=N][,rx_bps=N]\n"
	      "       [,rx_pps=N]\n"
	      "                      virtio-net on a tap; queues: queue pairs, 1 to 16 (more\n"
	      "                      than 1 need a multi_queue tap); limits in bytes and frames\n"
	      "                      per second on transmit (bps, pps) and receive (rx_bps,\n"
	      "                      rx_pps)\n"
	      "  --vsock cid=N,uds=PATH  virtio-vsock, host side on a Unix socket\n"
	      "  --rng               virtio-rng (host getrandom)\n"
	      "  --balloon [amount_mib=N][,deflate_on_oom=on|off][,stats_polling_interval_s=N]\n"
	      "                      virtio-balloon: the target it starts with (MiB), whether\n"
	      "                      the guest may deflate under memory pressure (default on),\n"
	      "                      how often its statistics are refreshed (0: never)\n"
	      "  --hvc uds=PATH|file=PATH[,drop_after_ms=N]\n"
	      "                      virtio-console (hvc0) on a Unix socket or to a file; output\n"
	      "                      the peer takes none of for N ms (default 2000) is dropped\n"
	      "\n"
	      "Ctrl-A X quits (stdin on a terminal). Exit status: 0 after the guest powers off or\n"
	      "resets or a stop by signal, 1 on errors.\n",
	      out);
}

static const struct option options[] = {
    {"kernel", required_argument, NULL, 'k'},
    {"initrd", required_argument, NULL, 'i'},
    {"cmdline", required_argument, NULL, 'c'},
    {"boot", required_argument, NULL, 'b'},
    {"cpus", required_argument, NULL, 'n'},
    {"memory", required_argument, NULL, 'm'},
    {"console", required_argument, NULL, 'o'},
    {"config", required_argument, NULL, 'f'},
    {"on-reboot", required_argument, NULL, 'r'},
    {"log-level", required_argument, NULL, 'l'},
    {"hugepages", no_argument, NULL, 'H'},
    {"sandbox", no_argument, NULL, 'S'},
    {"seccomp", no_argument, NULL, 'Q'},
    {"sandbox-uid", required_argument, NULL, 'U'},
    {"sandbox-gid", required_argument, NULL, 'G'},
    {"jail-dir", required_argument, NULL, 'J'},
    {"seccomp-log", no_argument, NULL, 'X'},
    {"api-sock", required_argument, NULL, 'A'},
    {"disk", required_argument, NULL, 'D'},
    {"net", required_argument, NULL, 'N'},
    {"vsock", required_argument, NULL, 'V'},
    {"rng", no_argument, NULL, 'R'},
    {"balloon", optional_argument, NULL, 'B'},
    {"hvc", required_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Reads a whole regular file of at most max bytes. Returns 0 or -errno with err set. */
static int read_file(const char *what, const char *path, uint64_t max, uint8_t **data, size_t *len,
		     struct cove_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cove_err_set(err, -errno, "%s %s: %s", what, path, strerror(errno));
	struct stat st;
	int ret = 0;
	if (fstat(fd, &st) < 0) {
		ret = cove_err_set(err, -errno, "%s %s: %s", what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = cove_err_set(err, -EINVAL, "%s %s: not a regular file", what, path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		ret = cove_err_set(err, -EFBIG, "%s %s: too big (%llu MiB; at most %llu MiB)", what,
				   path, (unsigned long long)st.st_size >> 20,
				   (unsigned long long)max >> 20);
		goto out;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		ret = cove_err_set(err, -ENOMEM, "%s %s: out of memory", what, path);
		goto out;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = cove_err_set(err, r < 0 ? -errno : -EIO, "%s %s: %s", what, path,
					   r < 0 ? strerror(errno) : "file shrank while read");
			free(buf);
			goto out;
		}
		got += (size_t)r;
	}
	*data = buf;
	*len = n;
out:
	close(fd);
	return ret;
}

static int load_config_file(struct run_config *cfg, const char *path, struct cove_err *err)
{
	uint8_t *text;
	size_t len;
	int ret = read_file("config", path, 1 << 20, &text, &len, err);
	if (ret)
		return ret;
	if (api_glue_is_fc_config((const char *)text, len)) /* Firecracker's --config-file */
		ret = api_glue_load_fc_config(cfg, (const char *)text, len, err);
	else
		ret = run_config_parse_json(cfg, (const char *)text, len, err);
	free(text);
	if (ret)
		cove_err_prefix(err, "%s", path);
	return ret;
}

static const char *api_sock; /* --api-sock PATH, or NULL */
static bool machine_opts;    /* the command line sets up the machine (--api-sock: boot now) */

/* --balloon's settings may follow as the next word (--balloon amount_mib=64): a key=value
 * there is taken as its value in both passes. */
static bool balloon_words(int argc, char **argv)
{
	return !optarg && optind < argc && argv[optind][0] != '-' && strchr(argv[optind], '=');
}

/* Options in two passes: --config first, then every option over it. Returns 0, 1 (help), -1. */
static int parse_args(int argc, char **argv, struct run_config *cfg)
{
	struct cove_err err = {0};
	const char *config = NULL;
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (c == 'f')
			config = optarg;
		if (c == 'B' && balloon_words(argc, argv))
			optind++;
	}
	machine_opts = config != NULL;
	if (config && load_config_file(cfg, config, &err)) {
		log_error("%s", err.msg);
		return -1;
	}
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		const char *key = NULL;
		switch (c) {
		case 'h':
			usage(stdout);
			return 1;
		case 'f':
			continue;
		case 'H':
			cfg->hugepages = true;
			machine_opts = true;
			continue;
		case 'A': /* api socket */
			api_sock = optarg;
			continue;
		case '?':
			if (optopt)
				log_error("option -%c: unknown or missing its value (see cove run "
					  "--help)",
					  optopt);
			else
				log_error("option %s: unknown or missing its value (see cove run "
					  "--help)",
					  argv[optind - 1]);
			return -1;
		default:
			for (const struct option *o = options; o->name; o++)
				if (o->val == c)
					key = o->name;
			break;
		}
		if (key && strcmp(key, "console") && strcmp(key, "log-level") &&
		    strcmp(key, "on-reboot") && strcmp(key, "boot") && !sandbox_opts_is_key(key))
			machine_opts = true;
		const char *value = optarg;
		if (c == 'B' && !value && balloon_words(argc, argv))
			value = argv[optind++];
		if (key && run_config_set(cfg, key, value ? value : "on", &err)) {
			log_error("--%s", err.msg);
			return -1;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s' (see cove run --help)", argv[optind]);
		return -1;
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int open_console(const struct run_config *cfg, struct cove_err *err)
{
	switch (cfg->console) {
	case CONSOLE_STDIO:
		return STDOUT_FILENO;
	case CONSOLE_NONE:
		return -1;
	case CONSOLE_FILE: {
		int fd = open(cfg->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return cove_err_set(err, -errno, "console file %s: %s", cfg->console_path,
					    strerror(errno));
		return fd;
	}
	}
	return -1;
}

/*
 * The host kernel takes 10-20 ms to tear a VM down here (PVM), and nothing needs to wait
 * for it: a child holding the last references to the VM's file descriptors lets go of them
 * only when cove has exited (the pipe's write end closes). Guest RAM is not forked
 * (MADV_DONTFORK). Without a child, the teardown simply happens here.
 */
/* The jail needs a qcow2 disk's backing files too (read-only): their names come from the
 * images, opened now; chain[] keeps them open, and the names valid, until the jail is set up. */
static int sandbox_backing(struct sandbox_needs *needs, const struct virtio_opts *v,
			   struct blk **chain, struct cove_err *err)
{
	for (unsigned i = 0; i < v->ndisks; i++) {
		struct blk_open_opts o = {.format = v->disk[i].format, .readonly = true};
		int r = blk_open(v->disk[i].path, &o, &chain[i], err);
		if (r)
			return r;
		for (struct blk *b = blk_backing(chain[i]); b; b = blk_backing(b))
			if ((r = sandbox_needs_add(needs, blk_filename(b), SANDBOX_BIND_RO)))
				return cove_err_set(err, r, "sandbox: too many files to bind");
	}
	return 0;
}

static void destroy_in_background(struct machine *m, bool sandboxed)
{
	int p[2];
	if (!sandboxed && pipe2(p, O_CLOEXEC) == 0) { /* sandbox: no fork in the sandbox */
		pid_t pid = fork();
		if (pid == 0) {
			/* Let go of stdio at once, so that nobody reading cove's output waits. */
			close(STDIN_FILENO);
			close(STDOUT_FILENO);
			close(STDERR_FILENO);
			close(p[1]);
			char c;
			while (read(p[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		close(p[0]);
		if (pid < 0)
			close(p[1]);
		/* else p[1] stays open until cove exits */
	}
	machine_destroy(m);
}

/* Says at info level how the kernel was booted, and what decompressing it here cost. */
static void log_boot(const struct boot_report *r, enum boot_choice mode)
{
	switch (r->path) {
	case BOOT_PATH_PVH_UNPACKED:
		log_info("kernel: bzImage booted by PVH: its %s payload (%.1f MiB) decompressed "
			 "into guest RAM in %.1f ms (%.1f MiB vmlinux, segments placed in %.1f ms)",
			 kernel_payload_name(r->payload), r->packed_len / 1048576.0,
			 r->unpack_ns / 1e6, r->unpacked_len / 1048576.0, r->place_ns / 1e6);
		break;
	case BOOT_PATH_PVH:
		log_info("kernel: ELF booted by PVH");
		break;
	case BOOT_PATH_LINUX:
		if (mode == BOOT_CHOICE_LINUX)
			log_info(
			    "kernel: bzImage booted by the Linux boot protocol (--boot linux)");
		else
			log_info("kernel: bzImage booted by the Linux boot protocol, not PVH: %s",
				 r->no_pvh);
		break;
	}
}

/* Boots the machine, again after each reset with --on-reboot restart. Returns exit status. */
static int run_machine(const struct run_config *cfg, struct machine_config *mc,
		       struct api_glue *glue, struct sandbox *sb)
{
	bool input = cfg->console == CONSOLE_STDIO;
	bool raw = input && term_raw_enter();
	bool warned = false;
	for (;;) {
		struct cove_err err = {0};
		struct machine m;
		if (machine_create(&m, mc, &err)) {
			api_glue_stopped(glue);
			term_restore();
			log_error("%s", err.msg);
			return 1;
		}
		log_boot(&m.boot, mc->boot);
		if (!warned) {
			pvm_warn_once(mc->kernel, mc->kernel_len, true);
			warned = true;
		}
		/* sandbox: the VM is built; drop privileges, then seccomp, before it runs. */
		if (sb && !sb->locked && sandbox_lock(sb, &err)) {
			machine_destroy(&m);
			term_restore();
			log_error("%s", err.msg);
			return 1;
		}
		struct event_loop *loop = event_loop_start(&m, input, raw);
		if (!loop) {
			api_glue_stopped(glue);
			machine_destroy(&m);
			term_restore();
			log_error("cannot start the event loop: %s", strerror(errno));
			return 1;
		}
		api_glue_attach(glue, &m, mc->console_fd);
		int stop = machine_run(&m);
		api_glue_detach(glue);
		int sig = event_loop_stop(loop);
		uint64_t unclaimed = bus_unclaimed_count(m.vm.pio) + bus_unclaimed_count(m.vm.mmio);
		char msg[sizeof(m.vm.stop_msg)];
		snprintf(msg, sizeof(msg), "%s", m.vm.stop_msg);
		bool again = stop == VM_RESET && cfg->on_reboot == ON_REBOOT_RESTART && !sig;
		if (again)
			machine_destroy(&m);
		else
			destroy_in_background(&m, sb != NULL);
		if (unclaimed)
			log_info("%llu accesses to unclaimed ports or addresses were ignored",
				 (unsigned long long)unclaimed);
		/* A signal that raced with a guest reset still stops. */
		if (sig)
			stop = VM_STOPPED;
		if (stop == VM_RESET && cfg->on_reboot == ON_REBOOT_RESTART) {
			log_info("%s: restarting", msg);
			continue;
		}
		term_restore();
		api_glue_stopped(glue);
		switch (stop) {
		case VM_POWEROFF:
			log_info("guest powered off");
			return 0;
		case VM_RESET:
			fprintf(stderr, "cove: %s\n", msg);
			return 0;
		case VM_STOPPED:
			if (sig)
				log_info("stopped by %s", strsignal(sig));
			else if (msg[0])
				fprintf(stderr, "\ncove: %s\n", msg);
			return 0;
		default:
			log_error("%s", msg[0] ? msg : "the machine stopped unexpectedly");
			return 1;
		}
	}
}

int cli_run_main(int argc, char **argv)
{
	uint64_t start = now_ns();
	struct run_config cfg;
	run_config_init(&cfg);
	int status = 1;
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_len = 0, initrd_len = 0;
	int console_fd = -1;
	struct cove_err err = {0};
	struct api_glue *glue = NULL;

	int r = parse_args(argc, argv, &cfg);
	if (r) {
		status = r > 0 ? 0 : 2;
		goto out;
	}
	if (cfg.log_level >= 0)
		log_set_level((enum log_level)cfg.log_level);
	/* The jail is entered by a process with one thread; the API server's threads start
	 * first, and its paths arrive later (docs/sandbox.md). */
	if (api_sock && cfg.sandbox.enabled) {
		log_error("--sandbox cannot be combined with --api-sock yet: confine the VMM "
			  "yourself and pass --seccomp, as coved --confine does");
		status = 2;
		goto out;
	}

	/* SIGINT/SIGTERM/SIGHUP go to the event loop's signalfd: block them in every
	 * thread (the API socket's threads too). */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* --api-sock: serve it. With no machine settings on the command line (--kernel, --cpus,
	 * --config...), wait for the API's InstanceStart to fill cfg, as Firecracker does. */
	if (api_sock) {
		if (api_glue_start(api_sock, &cfg, start, &glue))
			goto out; /* logged */
		if (!machine_opts) {
			r = api_glue_wait_start(glue);
			if (r) {
				if (r > 0)
					log_info("stopped by %s before InstanceStart",
						 strsignal(r));
				else
					log_error("waiting for InstanceStart: %s", strerror(-r));
				status = r > 0 ? 0 : 1;
				goto out;
			}
		} else {
			api_glue_booted(glue, &cfg);
		}
	}

	struct machine_config mc = {
	    .ncpus = cfg.cpus,
	    .mem_size = cfg.memory,
	    .hugepages = cfg.hugepages,
	    .cmdline = cfg.cmdline,
	    .boot = cfg.boot,
	    .start_ns = start,
	    .virtio = &cfg.virtio,
	};
	if (cfg.kernel) {
		if (read_file("kernel", cfg.kernel, MAX_KERNEL_SIZE, &kernel, &kernel_len, &err))
			goto fail;
		mc.kernel = kernel;
		mc.kernel_len = kernel_len;
	} else {
#ifdef COVE_HAVE_PROBE
		mc.kernel = cove_probe_pvh;
		mc.kernel_len = cove_probe_pvh_size;
#else
		log_error("no --kernel given and this cove was built without the probe guest");
		goto out;
#endif
	}
	if (cfg.initrd) {
		if (read_file("initrd", cfg.initrd, cfg.memory, &initrd, &initrd_len, &err)) {
			if (err.code == -EFBIG) {
				cove_err_clear(&err);
				cove_err_set(&err, -EFBIG,
					     "initrd %s is too big for %llu MiB of guest memory",
					     cfg.initrd, (unsigned long long)(cfg.memory >> 20));
			}
			goto fail;
		}
		mc.initrd = initrd;
		mc.initrd_len = initrd_len;
	}
	console_fd = open_console(&cfg, &err);
	if (console_fd < -1 || err.code)
		goto fail;
	mc.console_fd = console_fd;
	/* sandbox: into the jail before the VM is built (it opens /dev/kvm there). */
	struct sandbox sb;
	if (cfg.sandbox.enabled) {
		/* /sys is not in the jail: warn now (it stays silent later), on this thread */
		pvm_warn_once(mc.kernel, mc.kernel_len, false);
		struct sandbox_needs needs = {0}; /* its kernel (and disks, sockets) by path */
		if (cfg.kernel)
			sandbox_needs_add(&needs, cfg.kernel, SANDBOX_BIND_RO);
		if (cfg.initrd)
			sandbox_needs_add(&needs, cfg.initrd, SANDBOX_BIND_RO);
		for (unsigned i = 0; i < cfg.virtio.ndisks; i++) /* virtio: disks, sockets, taps */
			sandbox_needs_add(&needs, cfg.virtio.disk[i].path,
					  cfg.virtio.disk[i].readonly ? SANDBOX_BIND_RO : 0);
		if (cfg.virtio.vsock_uds)
			sandbox_needs_add(&needs, cfg.virtio.vsock_uds, SANDBOX_BIND_DIR_OF);
		if (cfg.virtio.hvc_uds)
			sandbox_needs_add(&needs, cfg.virtio.hvc_uds, SANDBOX_BIND_DIR_OF);
		if (cfg.virtio.hvc_file)
			sandbox_needs_add(&needs, cfg.virtio.hvc_file, SANDBOX_BIND_DIR_OF);
		needs.tun = cfg.virtio.nnics > 0;
		struct blk *chains[VIRTIO_MAX_DISKS] = {0};
		r = sandbox_backing(&needs, &cfg.virtio, chains, &err);
		if (!r)
			r = sandbox_enter(&sb, &cfg.sandbox, &needs, &console_fd, console_fd >= 0,
					  &err);
		for (unsigned i = 0; i < cfg.virtio.ndisks; i++)
			blk_close(chains[i]);
		if (r)
			goto fail;
		mc.kvm_path = SANDBOX_KVM_PATH;
	} else if (cfg.sandbox.seccomp_only &&
		   sandbox_enter_seccomp_only(&sb, &cfg.sandbox, &console_fd, console_fd >= 0,
					      &err)) {
		goto fail;
	}

	status = run_machine(&cfg, &mc, glue,
			     cfg.sandbox.enabled || cfg.sandbox.seccomp_only ? &sb : NULL);
	goto out;
fail:
	log_error("%s", err.msg);
	status = 1;
out:
	api_glue_free(glue);
	if (console_fd > STDERR_FILENO)
		close(console_fd);
	free(kernel);
	free(initrd);
	run_config_free(&cfg);
	return status;
}
