/*
 * watch_ring.h -- a bounded byte ring with one producer thread and one
 * consumer thread, no lock: what carries log lines from a worker to a
 * "watch" connection (watch.c).
 *
 * The producer appends whole lines or nothing: a line that does not fit
 * is lost and counted in `skipped`, and the next line that fits is
 * preceded by "skipped=N\n", as memcached tells a watcher what it missed.
 * The consumer reads what is there in at most two contiguous pieces.
 *
 * Data structure: a power-of-two byte array with free-running 64-bit
 * positions; `tail` is written only by the producer (release), `head`
 * only by the consumer (release), each reads the other's with acquire.
 * `skipped` belongs to the producer.  Producers of one ring must be
 * serialized by the caller.
 */
#ifndef CACHED_WATCH_RING_H
#define CACHED_WATCH_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct watch_ring {
	char			*buf;
	size_t			 cap;		/* a power of two */
	_Atomic uint64_t	 head;		/* consumer: next byte to read */
	_Atomic uint64_t	 tail;		/* producer: next byte to write */
	uint64_t		 skipped;	/* producer: lines lost since the
						 * last one that fitted */
};

/* Sets up a ring of cap bytes (rounded down to a power of two, at least
 * 256); false when out of memory. */
bool		watch_ring_init(struct watch_ring *r, size_t cap);
/* Frees the ring's memory. */
void		watch_ring_free(struct watch_ring *r);
/* Producer: appends [line, line + n), after "skipped=N\n" when lines were
 * lost before it; false (and the line counted in skipped) when it does
 * not fit. */
bool		watch_ring_push(struct watch_ring *r, const char *line,
		    size_t n);
/* Producer: bytes free now (at least that many stay free for it). */
size_t		watch_ring_room(struct watch_ring *r);
/* Producer: counts a line lost without trying to push it. */
void		watch_ring_skip(struct watch_ring *r);
/* Consumer: the next contiguous readable bytes at *p, their count (0:
 * empty). */
size_t		watch_ring_peek(struct watch_ring *r, const char **p);
/* Consumer: gives back n bytes read from watch_ring_peek. */
void		watch_ring_consume(struct watch_ring *r, size_t n);

#endif
