/*
 * envelope.c -- the trailer cc_memoize puts after every value it stores,
 * and the TTL arithmetic that fills it.
 *
 * Layout: the payload, then 16 bytes:
 *   0..7    soft expiry, unix milliseconds, big-endian
 *   8       flags: bit 0 = a cached "not found" result (no payload)
 *   9..11   zero
 *   12..14  magic "CCm"
 *   15      format version, 1
 *
 * A trailer, not a header: on a hit the caller gets the very buffer the
 * reply was read into, payload first, with nothing to move.  The soft
 * expiry is when the value stops being fresh.  The server keeps it longer
 * (the hard TTL = soft TTL + grace + 1 s), so that while one caller
 * recomputes an expired value the others can still be served the stale
 * one.  Pure functions, no locking.
 */
#include "client_internal.h"

#include <string.h>

#define MAGIC		"CCm"
#define MAGIC_LEN	3
#define MAGIC_AT	12
#define FORMAT_VERSION	1
#define KNOWN_FLAGS	ENVELOPE_NEGATIVE

/* Writes an envelope trailer. */
void
client_envelope_trailer(uint8_t out[ENVELOPE_LEN], uint64_t soft_expiry_ms,
    unsigned flags)
{
	int i;

	for (i = 0; i < 8; i++)
		out[i] = (uint8_t)(soft_expiry_ms >> (56 - 8 * i));
	out[8] = (uint8_t)flags;
	out[9] = out[10] = out[11] = 0;
	memcpy(out + MAGIC_AT, MAGIC, MAGIC_LEN);
	out[15] = FORMAT_VERSION;
}

/* Parses a stored value; false if it does not end in a valid trailer. */
bool
client_envelope_decode(const void *buf, size_t len, struct envelope *env)
{
	const uint8_t	*p;
	uint64_t	 t = 0;
	int		 i;

	if (buf == NULL || len < ENVELOPE_LEN)
		return false;
	p = (const uint8_t *)buf + len - ENVELOPE_LEN;
	if (memcmp(p + MAGIC_AT, MAGIC, MAGIC_LEN) != 0 ||
	    p[15] != FORMAT_VERSION || (p[8] & ~KNOWN_FLAGS) != 0 ||
	    p[9] != 0 || p[10] != 0 || p[11] != 0)
		return false;
	if ((p[8] & ENVELOPE_NEGATIVE) && len != ENVELOPE_LEN)
		return false;
	for (i = 0; i < 8; i++)
		t = t << 8 | p[i];
	env->soft_expiry_ms = t;
	env->flags = p[8];
	env->payload_len = len - ENVELOPE_LEN;
	return true;
}

/*
 * Plans a value stored at now_ms with a TTL of ttl_s seconds: jitter takes
 * a random 0..jitter_pct% off the soft TTL (never adds, so the value is
 * never older than ttl_s), and the server keeps it grace_s + 1 s longer,
 * the extra second covering servers that count expiry in whole seconds.
 */
void
client_ttl_plan(struct client_ttl_plan *out, uint32_t ttl_s,
    unsigned jitter_pct, unsigned grace_s, uint64_t rnd, uint64_t now_ms)
{
	uint64_t soft_ms, span, hard;

	if (ttl_s > CC_TTL_MAX)
		ttl_s = CC_TTL_MAX;
	if (jitter_pct > 100)
		jitter_pct = 100;
	soft_ms = (uint64_t)ttl_s * 1000;
	span = soft_ms * jitter_pct / 100;
	if (span > 0)
		soft_ms -= rnd % (span + 1);
	out->soft_expiry_ms = now_ms + soft_ms;
	hard = (soft_ms + 999) / 1000 + (uint64_t)grace_s + 1;
	out->hard_ttl_s = hard > CC_TTL_MAX ? CC_TTL_MAX : (uint32_t)hard;
}
