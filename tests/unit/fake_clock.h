/*
 * fake_clock.h -- the injected clock of the store's unit tests: a store
 * created with .clock = fake_now, .clock_ctx = &fc reads fc.now, which a
 * test moves by hand (atomic: some tests read it from several threads).
 */
#ifndef CACHED_TESTS_FAKE_CLOCK_H
#define CACHED_TESTS_FAKE_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#define T0	1700000000u	/* the fake clock's start */

struct fake_clock {
	_Atomic uint32_t now;
};

/* Reads the fake clock (a store_clock_fn). */
static inline uint32_t
fake_now(void *ctx)
{
	return atomic_load(&((struct fake_clock *)ctx)->now);
}

#endif
