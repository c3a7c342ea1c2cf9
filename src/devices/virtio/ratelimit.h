/* Token-bucket rate limits for bytes and operations (disks and NICs). */
#ifndef COVE_DEVICES_VIRTIO_RATELIMIT_H
#define COVE_DEVICES_VIRTIO_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_MAX 10000000000ULL /* rates above this are "unlimited" */

struct token_bucket {
	uint64_t rate;	 /* tokens per second; 0: unlimited */
	uint64_t burst;	 /* capacity: 100 ms worth, at least one largest request */
	uint64_t tokens; /* available now */
	uint64_t last_ns;
};

struct rate_limiter {
	struct token_bucket bytes, ops;
};

/* Sets both rates (0: unlimited); the buckets start full. Safe to call at run time. */
void ratelimit_set(struct rate_limiter *rl, uint64_t bytes_per_s, uint64_t ops_per_s,
		   uint64_t now_ns);
/*
 * Takes bytes and one operation if both buckets hold enough; otherwise takes nothing and
 * returns false with *wait_ns set to when to try again. A request larger than a bucket's
 * burst is let through once the bucket is full (it never waits forever).
 */
bool ratelimit_take(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns, uint64_t *wait_ns);
bool ratelimit_active(const struct rate_limiter *rl);

#endif
