/* The warning a PVM host gives for a kernel that is not built as a PVM guest. */
#include "cli/run/pvm_warn.h"
#include "util/log.h"
#include "vmm/loader.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Kernel-mode code runs natively on PVM only in kernels built as PVM guests. No header field
 * says so; the PVM guest code's message prefix "pvm-guest: " is taken as the marker (in an
 * ELF vmlinux as it is, in a bzImage once its payload is decompressed). The probe guest
 * (built-in, or as a file: it carries its banner) is written for emulated CPL0 and is never
 * warned about.
 */
static const char pvm_marker[] = "pvm-guest: ";
static const char probe_banner[] = "Cove probe guest";

static void say(int found)
{
	if (found == 1)
		return;
	log_warn("this host's KVM is PVM: the guest's kernel-mode code is emulated instruction by "
		 "instruction and may fail or be slow unless the kernel is a PVM guest kernel%s",
		 found < 0 ? " (this kernel's compression could not be read to tell)" : "");
}

struct scan_job {
	uint8_t *kernel; /* a copy: the thread may outlive the caller's buffer */
	size_t len;
};

static void *scan_thread(void *arg)
{
	struct scan_job *job = arg;
	say(kernel_find_marker(job->kernel, job->len, pvm_marker));
	free(job->kernel);
	free(job);
	return NULL;
}

/* A VM shorter than the scan must still get its warning: exit waits for the thread. */
static pthread_t scanner;

static void wait_scanner(void)
{
	pthread_join(scanner, NULL);
}

void pvm_warn_once(const uint8_t *kernel, size_t len, bool background)
{
	if (access("/sys/module/kvm_pvm", F_OK) != 0)
		return;
	if (memmem(kernel, len, probe_banner, sizeof(probe_banner) - 1) ||
	    memmem(kernel, len, pvm_marker, sizeof(pvm_marker) - 1))
		return;
	if (kernel_detect(kernel, len) != KERNEL_BZIMAGE) {
		say(0);
		return;
	}
	if (!background) {
		say(kernel_find_marker(kernel, len, pvm_marker));
		return;
	}
	/* Decompressing a bzImage takes up to a few hundred ms: boot meanwhile, warn when known
	 * (and at the latest before exit). */
	struct scan_job *job = malloc(sizeof(*job));
	uint8_t *copy = job ? malloc(len) : NULL;
	if (!copy) {
		free(job);
		say(-ENOMEM);
		return;
	}
	memcpy(copy, kernel, len);
	*job = (struct scan_job){copy, len};
	if (pthread_create(&scanner, NULL, scan_thread, job)) {
		free(copy);
		free(job);
		say(-EAGAIN);
		return;
	}
	atexit(wait_scanner);
}
