/*
 * watch_ring.c -- a single-producer single-consumer byte ring for log
 * lines (watch_ring.h), lock-free: positions grow forever, masked into
 * the array; acquire/release on them orders the bytes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watch_ring.h"

#define RING_MIN	256

/* Sets up a ring of cap bytes, rounded down to a power of two. */
bool
watch_ring_init(struct watch_ring *r, size_t cap)
{
	size_t c = RING_MIN;

	while (c * 2 <= cap)
		c *= 2;
	memset(r, 0, sizeof *r);
	if ((r->buf = malloc(c)) == NULL)
		return false;
	r->cap = c;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return true;
}

/* Frees the ring's memory. */
void
watch_ring_free(struct watch_ring *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Copies n bytes to position pos, wrapping at the end of the array. */
static void
ring_put(struct watch_ring *r, uint64_t pos, const char *p, size_t n)
{
	size_t off = (size_t)(pos & (r->cap - 1));
	size_t first = r->cap - off < n ? r->cap - off : n;

	memcpy(r->buf + off, p, first);
	memcpy(r->buf, p + first, n - first);
}

/* Producer: appends a line, after a "skipped=N" line when some were
 * lost; false when it does not fit. */
bool
watch_ring_push(struct watch_ring *r, const char *line, size_t n)
{
	uint64_t	tail = atomic_load_explicit(&r->tail,
			    memory_order_relaxed);
	uint64_t	head = atomic_load_explicit(&r->head,
			    memory_order_acquire);
	size_t		room = r->cap - (size_t)(tail - head);
	char		skip[32];
	size_t		ns = 0;

	/* "skipped=" and 20 digits at most: no formatting while full */
	if (n + (r->skipped > 0 ? 30 : 0) > room) {
		r->skipped++;
		return false;
	}
	if (r->skipped > 0)
		ns = (size_t)snprintf(skip, sizeof skip, "skipped=%llu\n",
		    (unsigned long long)r->skipped);
	if (ns + n > room) {
		r->skipped++;
		return false;
	}
	if (ns > 0) {
		ring_put(r, tail, skip, ns);
		tail += ns;
		r->skipped = 0;
	}
	ring_put(r, tail, line, n);
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return true;
}

/* Producer: bytes free now. */
size_t
watch_ring_room(struct watch_ring *r)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	return r->cap - (size_t)(tail - head);
}

/* Producer: a line lost untried. */
void
watch_ring_skip(struct watch_ring *r)
{
	r->skipped++;
}

/* Consumer: the next contiguous readable piece. */
size_t
watch_ring_peek(struct watch_ring *r, const char **p)
{
	uint64_t	head = atomic_load_explicit(&r->head,
			    memory_order_relaxed);
	uint64_t	tail = atomic_load_explicit(&r->tail,
			    memory_order_acquire);
	size_t		off = (size_t)(head & (r->cap - 1));
	size_t		n = (size_t)(tail - head);

	if (n > r->cap - off)
		n = r->cap - off;
	*p = r->buf + off;
	return n;
}

/* Consumer: frees n bytes for the producer. */
void
watch_ring_consume(struct watch_ring *r, size_t n)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	atomic_store_explicit(&r->head, head + n, memory_order_release);
}
