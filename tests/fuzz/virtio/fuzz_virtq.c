/* libFuzzer target: the split-virtqueue walk over guest memory the fuzzer writes (descriptor
 * table at 0, avail ring at 0x1000, used ring at 0x2000), with the chain copy helpers. */
#include "devices/virtio/virtq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RAM (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[RAM];
	static struct virtq_chain chain;
	if (size < 2)
		return 0;
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data + 2, size - 2 < RAM ? size - 2 : RAM);
	struct guest_mem mem = {.host = ram, .map_len = RAM, .low_size = RAM};
	struct virtq vq = {
	    .size = (uint16_t)(1u << (data[0] % 9)),
	    .desc_gpa = 0,
	    .avail_gpa = 0x1000,
	    .used_gpa = 0x2000,
	    .enabled = true,
	};
	if (virtq_start(&vq, &mem))
		return 0;
	vq.indirect = data[1] & 1;
	vq.event_idx = data[1] & 2;
	uint8_t buf[4096];
	for (int i = 0; i < 64; i++) {
		const char *why;
		int r = virtq_pop(&vq, &chain, &why);
		if (r <= 0)
			break;
		uint64_t n = chain.out_len < sizeof(buf) ? chain.out_len : sizeof(buf);
		if (virtq_chain_read(&chain, 0, buf, n) != n)
			abort();
		struct iovec iov[16];
		virtq_chain_slice(&chain, true, data[1], chain.in_len / 2, iov, 16);
		uint64_t w = virtq_chain_write(&chain, 1, buf, n);
		virtq_push(&vq, chain.head, (uint32_t)w);
		virtq_should_notify(&vq);
		virtq_enable_notify(&vq);
	}
	return 0;
}
