/* Unit tests of the split virtqueue walk over a fake guest memory: layouts, indirect tables,
 * and every rule a hostile driver can break. */
#include "devices/virtio/virtq.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define RAM   (1u << 20)
#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000
#define QSZ   16

static uint8_t *ram;
static struct guest_mem mem;
static struct virtq vq;
static struct virtq_chain chain;

static int setup(void **state)
{
	ram = calloc(1, RAM);
	mem = (struct guest_mem){.host = ram, .map_len = RAM, .low_size = RAM};
	memset(&vq, 0, sizeof(vq));
	vq.size = QSZ;
	vq.desc_gpa = DESC;
	vq.avail_gpa = AVAIL;
	vq.used_gpa = USED;
	vq.indirect = true;
	vq.enabled = true;
	return virtq_start(&vq, &mem);
}

static int teardown(void **state)
{
	free(ram);
	return 0;
}

static void desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	struct virtq_desc d = {addr, len, flags, next};
	memcpy(ram + table + 16 * i, &d, 16);
}

static void post(uint16_t head)
{
	uint16_t idx;
	memcpy(&idx, ram + AVAIL + 2, 2);
	memcpy(ram + AVAIL + 4 + 2 * (idx % QSZ), &head, 2);
	idx++;
	memcpy(ram + AVAIL + 2, &idx, 2);
}

static int pop(const char **why)
{
	return virtq_pop(&vq, &chain, why);
}

static void test_empty(void **state)
{
	const char *why;
	assert_int_equal(pop(&why), 0);
}

static void test_spread_layout(void **state)
{
	/* Header split over two descriptors, data in three, status alone. */
	const char *why;
	uint8_t hdr[16] = {1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0};
	memcpy(ram + 0x10000, hdr, 5);
	memcpy(ram + 0x11000, hdr + 5, 11);
	desc_at(DESC, 0, 0x10000, 5, VIRTQ_DESC_F_NEXT, 3);
	desc_at(DESC, 3, 0x11000, 11, VIRTQ_DESC_F_NEXT, 5);
	desc_at(DESC, 5, 0x20000, 100, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 6);
	desc_at(DESC, 6, 0x30000, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 7);
	desc_at(DESC, 7, 0x40000, 412, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 8);
	desc_at(DESC, 8, 0x50000, 1, VIRTQ_DESC_F_WRITE, 0);
	post(0);
	assert_int_equal(pop(&why), 1);
	assert_int_equal(chain.head, 0);
	assert_int_equal(chain.nout, 2);
	assert_int_equal(chain.nin, 3); /* the empty descriptor is skipped */
	assert_int_equal(chain.out_len, 16);
	assert_int_equal(chain.in_len, 513);
	uint8_t got[16];
	assert_int_equal(virtq_chain_read(&chain, 0, got, 16), 16);
	assert_memory_equal(got, hdr, 16);
	uint8_t fill[513];
	memset(fill, 0xAB, sizeof(fill));
	assert_int_equal(virtq_chain_write(&chain, 0, fill, sizeof(fill)), 513);
	assert_int_equal(ram[0x20000 + 99], 0xAB);
	assert_int_equal(ram[0x40000], 0xAB);
	assert_int_equal(ram[0x50000], 0xAB);
	struct iovec iov[4];
	assert_int_equal(virtq_chain_slice(&chain, true, 50, 100, iov, 4), 2);
	assert_int_equal(iov[0].iov_len, 50);
	assert_int_equal(iov[1].iov_len, 50);
	assert_int_equal(virtq_chain_slice(&chain, true, 0, 600, iov, 4), 0);
	virtq_push(&vq, chain.head, 513);
	uint16_t used_idx;
	uint32_t elem[2];
	memcpy(&used_idx, ram + USED + 2, 2);
	memcpy(elem, ram + USED + 4, 8);
	assert_int_equal(used_idx, 1);
	assert_int_equal(elem[0], 0);
	assert_int_equal(elem[1], 513);
	assert_int_equal(pop(&why), 0);
}

static void test_header_and_data_in_one(void **state)
{
	const char *why;
	desc_at(DESC, 2, 0x10000, 16 + 4096, VIRTQ_DESC_F_NEXT, 9);
	desc_at(DESC, 9, 0x20000, 1, VIRTQ_DESC_F_WRITE, 0);
	post(2);
	assert_int_equal(pop(&why), 1);
	assert_int_equal(chain.nout, 1);
	assert_int_equal(chain.out_len, 4112);
	assert_int_equal(chain.in_len, 1);
}

static void test_indirect(void **state)
{
	const char *why;
	uint64_t t = 0x60000;
	desc_at(t, 0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 1);
	desc_at(t, 1, 0x20000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	desc_at(t, 2, 0x30000, 1, VIRTQ_DESC_F_WRITE, 0);
	desc_at(DESC, 4, t, 48, VIRTQ_DESC_F_INDIRECT, 0);
	post(4);
	assert_int_equal(pop(&why), 1);
	assert_int_equal(chain.head, 4);
	assert_int_equal(chain.nout, 1);
	assert_int_equal(chain.nin, 2);
}

static void expect_broken(const char *want)
{
	const char *why = NULL;
	assert_int_equal(pop(&why), -EIO);
	assert_non_null(why);
	assert_non_null(strstr(why, want));
}

static void test_loop(void **state)
{
	desc_at(DESC, 0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 1);
	desc_at(DESC, 1, 0x10000, 16, VIRTQ_DESC_F_NEXT, 0);
	post(0);
	expect_broken("loops");
}

static void test_indirect_loop(void **state)
{
	uint64_t t = 0x60000;
	desc_at(t, 0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 1);
	desc_at(t, 1, 0x10000, 16, VIRTQ_DESC_F_NEXT, 0);
	desc_at(DESC, 0, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	post(0);
	expect_broken("loops");
}

static void test_outside_ram(void **state)
{
	desc_at(DESC, 0, RAM - 8, 16, 0, 0);
	post(0);
	expect_broken("outside guest RAM");
}

static void test_huge_length(void **state)
{
	desc_at(DESC, 0, 0x1000, 0xFFFFFFFFu, 0, 0);
	post(0);
	expect_broken("outside guest RAM");
}

static void test_address_wraps(void **state)
{
	desc_at(DESC, 0, UINT64_MAX - 4, 16, 0, 0);
	post(0);
	expect_broken("outside guest RAM");
}

static void test_next_out_of_range(void **state)
{
	desc_at(DESC, 0, 0x10000, 16, VIRTQ_DESC_F_NEXT, QSZ);
	post(0);
	expect_broken("index out of range");
}

static void test_head_out_of_range(void **state)
{
	post(QSZ + 3);
	expect_broken("index out of range");
}

static void test_avail_runs_ahead(void **state)
{
	uint16_t idx = QSZ + 1;
	memcpy(ram + AVAIL + 2, &idx, 2);
	expect_broken("ran ahead");
}

static void test_read_after_write(void **state)
{
	desc_at(DESC, 0, 0x10000, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc_at(DESC, 1, 0x10000, 16, 0, 0);
	post(0);
	expect_broken("readable descriptor after");
}

static void test_nested_indirect(void **state)
{
	uint64_t t = 0x60000;
	desc_at(t, 0, 0x70000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc_at(DESC, 0, t, 16, VIRTQ_DESC_F_INDIRECT, 0);
	post(0);
	expect_broken("indirect");
}

static void test_indirect_not_negotiated(void **state)
{
	vq.indirect = false;
	desc_at(DESC, 0, 0x60000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	post(0);
	expect_broken("indirect");
}

static void test_indirect_bad_len(void **state)
{
	desc_at(DESC, 0, 0x60000, 20, VIRTQ_DESC_F_INDIRECT, 0);
	post(0);
	expect_broken("indirect table length");
}

static void test_start_checks(void **state)
{
	struct virtq q = {.size = 3, .desc_gpa = DESC, .avail_gpa = AVAIL, .used_gpa = USED};
	assert_int_equal(virtq_start(&q, &mem), -EINVAL); /* not a power of two */
	q.size = 16;
	q.desc_gpa = RAM - 16;
	assert_int_equal(virtq_start(&q, &mem), -EINVAL); /* table past the end of RAM */
	q.desc_gpa = DESC + 8;
	assert_int_equal(virtq_start(&q, &mem), -EINVAL); /* misaligned */
	q.desc_gpa = DESC;
	q.size = 2048;
	assert_int_equal(virtq_start(&q, &mem), -EINVAL); /* over VIRTQ_MAX_SIZE */
}

static void test_event_idx(void **state)
{
	vq.event_idx = true;
	/* First push always notifies; then only when used_event is crossed. */
	virtq_push(&vq, 0, 1);
	assert_true(virtq_should_notify(&vq));
	uint16_t used_event = 5; /* driver: tell me when used idx passes 5 */
	memcpy(ram + AVAIL + 4 + 2 * QSZ, &used_event, 2);
	for (int i = 0; i < 4; i++) { /* used idx 2..5 */
		virtq_push(&vq, 0, 1);
		assert_false(virtq_should_notify(&vq));
	}
	virtq_push(&vq, 0, 1); /* 6: crosses 5 */
	assert_true(virtq_should_notify(&vq));
	/* The device asks for a kick after what it has taken. */
	post(0);
	desc_at(DESC, 0, 0x10000, 16, 0, 0);
	const char *why;
	assert_int_equal(pop(&why), 1);
	assert_false(virtq_enable_notify(&vq));
	uint16_t avail_event;
	memcpy(&avail_event, ram + USED + 4 + 8 * QSZ, 2);
	assert_int_equal(avail_event, 1);
	post(0);
	assert_true(virtq_enable_notify(&vq)); /* arrived meanwhile: pop again */
	/* A queue NEEDS_RESET stopped: pop gives nothing, so neither may these (a caller
	 * looping on them would spin). */
	vq.enabled = false;
	assert_int_equal(pop(&why), 0);
	assert_false(virtq_has_avail(&vq));
	assert_false(virtq_enable_notify(&vq));
}

static void test_no_interrupt_flag(void **state)
{
	uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	memcpy(ram + AVAIL, &flags, 2);
	virtq_push(&vq, 0, 1);
	assert_false(virtq_should_notify(&vq));
	flags = 0;
	memcpy(ram + AVAIL, &flags, 2);
	assert_true(virtq_should_notify(&vq));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_empty),
	    T(test_spread_layout),
	    T(test_header_and_data_in_one),
	    T(test_indirect),
	    T(test_loop),
	    T(test_indirect_loop),
	    T(test_outside_ram),
	    T(test_huge_length),
	    T(test_address_wraps),
	    T(test_next_out_of_range),
	    T(test_head_out_of_range),
	    T(test_avail_runs_ahead),
	    T(test_read_after_write),
	    T(test_nested_indirect),
	    T(test_indirect_not_negotiated),
	    T(test_indirect_bad_len),
	    T(test_start_checks),
	    T(test_event_idx),
	    T(test_no_interrupt_flag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
