/* cgroup v2 device rules: a BPF_PROG_TYPE_CGROUP_DEVICE program built from the OCI rules. */
#include "oci/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(d, s, o)	 INSN(BPF_LDX | BPF_W | BPF_MEM, d, s, o, 0)
#define MOV_REG(d, s)	 INSN(BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i)	 INSN(BPF_ALU | BPF_MOV | BPF_K, d, 0, 0, i)
#define AND_IMM(d, i)	 INSN(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, i)
#define RSH_IMM(d, i)	 INSN(BPF_ALU | BPF_RSH | BPF_K, d, 0, 0, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define EXIT()		 INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static const struct oci_dev_rule default_allow[] = {
    {true, 'c', 1, 3, "rwm"},	{true, 'c', 1, 5, "rwm"}, {true, 'c', 1, 7, "rwm"},
    {true, 'c', 1, 8, "rwm"},	{true, 'c', 1, 9, "rwm"}, {true, 'c', 5, 0, "rwm"},
    {true, 'c', 5, 1, "rwm"},	{true, 'c', 5, 2, "rwm"}, {true, 'c', 136, -1, "rwm"},
    {true, 'c', 10, 200, "rwm"}};

static unsigned access_bits(const char *a)
{
	unsigned bits = 0;
	for (; *a; a++)
		bits |= *a == 'm'   ? BPF_DEVCG_ACC_MKNOD
			: *a == 'r' ? BPF_DEVCG_ACC_READ
				    : BPF_DEVCG_ACC_WRITE;
	return bits;
}

/* One rule: if it matches, return its verdict; else fall through to the next block. */
static size_t emit_rule(struct bpf_insn *p, const struct oci_dev_rule *r, bool *terminal)
{
	struct bpf_insn blk[12];
	size_t n = 0;
	unsigned acc = access_bits(r->access);
	/* r2 = type, r3 = access, r4 = major, r5 = minor (set in the prologue) */
	if (r->type != 'a')
		blk[n++] = JNE_IMM(2, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0);
	if (acc != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
		/* every requested access must be in the rule: (r3 & ~acc) == 0 */
		blk[n++] = MOV_REG(1, 3);
		blk[n++] = AND_IMM(1, (int)~acc & 7);
		blk[n++] = JNE_IMM(1, 0, 0);
	}
	if (r->major >= 0)
		blk[n++] = JNE_IMM(4, (int)r->major, 0);
	if (r->minor >= 0)
		blk[n++] = JNE_IMM(5, (int)r->minor, 0);
	*terminal = n == 0; /* matches everything: later blocks would be unreachable */
	blk[n++] = MOV_IMM(0, r->allow ? 1 : 0);
	blk[n++] = EXIT();
	/* Jumps that miss go past the block's end. */
	for (size_t i = 0; i < n; i++)
		if (BPF_CLASS(blk[i].code) == BPF_JMP && BPF_OP(blk[i].code) == BPF_JNE)
			blk[i].off = (short)(n - i - 1);
	memcpy(p, blk, n * sizeof(*blk));
	return n;
}

int oci_devfilter_attach(int cgfd, const struct oci_resources *r, struct cove_err *err)
{
	size_t nrules = r->n_devices + sizeof(default_allow) / sizeof(default_allow[0]);
	struct bpf_insn *prog = calloc(8 + nrules * 12, sizeof(*prog));
	if (!prog)
		return cove_err_set(err, -ENOMEM, "out of memory");
	size_t n = 0;
	prog[n++] = LDX_W(2, 1, 0); /* access_type */
	prog[n++] = MOV_REG(3, 2);
	prog[n++] = AND_IMM(2, 0xffff);
	prog[n++] = RSH_IMM(3, 16);
	prog[n++] = LDX_W(4, 1, 4);
	prog[n++] = LDX_W(5, 1, 8);
	/* The last matching rule wins, as with the v1 lists: emit them in reverse. */
	bool done = false;
	for (size_t i = sizeof(default_allow) / sizeof(default_allow[0]); i-- > 0 && !done;)
		n += emit_rule(prog + n, &default_allow[i], &done);
	for (size_t i = r->n_devices; i-- > 0 && !done;)
		n += emit_rule(prog + n, &r->devices[i], &done);
	if (!done) {
		prog[n++] = MOV_IMM(0, 1); /* no rule matched: allowed, as v1's default */
		prog[n++] = EXIT();
	}

	static char log[65536];
	bool want_log = getenv("COVE_OCI_BPF_LOG") != NULL;
	union bpf_attr la;
	memset(&la, 0, sizeof(la));
	la.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	la.insns = (uint64_t)(uintptr_t)prog;
	la.insn_cnt = (uint32_t)n;
	la.license = (uint64_t)(uintptr_t) "Apache-2.0";
	if (want_log) { /* COVE_OCI_BPF_LOG=1: the verifier's log on stderr */
		la.log_buf = (uint64_t)(uintptr_t)log;
		la.log_size = sizeof(log);
		la.log_level = 1;
	}
	int pfd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &la, sizeof(la));
	free(prog);
	if (pfd < 0) {
		int e = errno;
		if (want_log)
			fprintf(stderr, "%s\n", log);
		return cove_err_set(err, -e,
				    "linux.resources.devices: loading the BPF device filter: %s",
				    strerror(e));
	}
	union bpf_attr aa;
	memset(&aa, 0, sizeof(aa));
	aa.target_fd = (uint32_t)cgfd;
	aa.attach_bpf_fd = (uint32_t)pfd;
	aa.attach_type = BPF_CGROUP_DEVICE;
	aa.attach_flags = BPF_F_ALLOW_MULTI;
	int rc = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &aa, sizeof(aa));
	int e = errno;
	close(pfd);
	if (rc < 0)
		return cove_err_set(err, -e,
				    "linux.resources.devices: attaching the BPF device "
				    "filter: %s",
				    strerror(e));
	return 0;
}
