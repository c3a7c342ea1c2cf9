/* Token buckets: refilled by elapsed time, capped at their burst, overflow-safe. */
#include "devices/virtio/ratelimit.h"

static void bucket_set(struct token_bucket *b, uint64_t rate, uint64_t min_burst, uint64_t now)
{
	b->rate = rate;
	b->burst = rate / 10 > min_burst ? rate / 10 : min_burst; /* 100 ms worth */
	b->tokens = b->burst;
	b->last_ns = now;
}

void ratelimit_set(struct rate_limiter *rl, uint64_t bytes_per_s, uint64_t ops_per_s,
		   uint64_t now_ns)
{
	/* Above RATELIMIT_MAX a limit means nothing here (and the arithmetic stays in range). */
	if (bytes_per_s > RATELIMIT_MAX)
		bytes_per_s = 0;
	if (ops_per_s > RATELIMIT_MAX)
		ops_per_s = 0;
	bucket_set(&rl->bytes, bytes_per_s, 1u << 20, now_ns); /* one 1 MiB request at least */
	bucket_set(&rl->ops, ops_per_s, 1, now_ns);
}

bool ratelimit_active(const struct rate_limiter *rl)
{
	return rl->bytes.rate || rl->ops.rate;
}

static void refill(struct token_bucket *b, uint64_t now)
{
	if (!b->rate || now <= b->last_ns)
		return;
	uint64_t dt = now - b->last_ns;
	/* tokens += rate * dt / 1e9 without overflow: whole seconds, then the rest. */
	uint64_t add = (dt / 1000000000ULL) * b->rate;
	uint64_t rem = dt % 1000000000ULL;
	if (b->rate <= UINT64_MAX / 1000000000ULL)
		add += b->rate * rem / 1000000000ULL;
	else
		add += (b->rate / 1000000000ULL) * rem;
	if (add == 0)
		return; /* keep last_ns so small steps accumulate */
	b->tokens = add > b->burst - b->tokens ? b->burst : b->tokens + add;
	b->last_ns = now;
}

/* Nanoseconds until the bucket holds need tokens (0 if it does). */
static uint64_t wait_for(const struct token_bucket *b, uint64_t need)
{
	if (!b->rate)
		return 0;
	if (need > b->burst)
		need = b->burst;
	if (b->tokens >= need)
		return 0;
	uint64_t missing = need - b->tokens;
	return missing / b->rate * 1000000000ULL + (missing % b->rate) * 1000000000ULL / b->rate +
	       1;
}

bool ratelimit_take(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns, uint64_t *wait_ns)
{
	refill(&rl->bytes, now_ns);
	refill(&rl->ops, now_ns);
	uint64_t wb = wait_for(&rl->bytes, bytes), wo = wait_for(&rl->ops, 1);
	if (wb || wo) {
		*wait_ns = wb > wo ? wb : wo;
		return false;
	}
	if (rl->bytes.rate)
		rl->bytes.tokens -= bytes > rl->bytes.tokens ? rl->bytes.tokens : bytes;
	if (rl->ops.rate)
		rl->ops.tokens -= 1;
	*wait_ns = 0;
	return true;
}
