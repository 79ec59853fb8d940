/*
 * test_watch_ring.c -- cmocka unit tests of server/watch_ring.c, the
 * single-producer single-consumer ring of "watch" lines: whole lines or
 * nothing, wrap-around, the "skipped=N" line once room is back, and a
 * producer and a consumer thread moving a million lines without loss or
 * tearing (run under TSan by the sanitizer build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watch_ring.h"

/* Reads everything the ring holds into buf (NUL-terminated). */
static size_t
drain(struct watch_ring *r, char *buf, size_t cap)
{
	const char	*p;
	size_t		 n, got = 0;

	while ((n = watch_ring_peek(r, &p)) > 0) {
		assert_true(got + n < cap);
		memcpy(buf + got, p, n);
		got += n;
		watch_ring_consume(r, n);
	}
	buf[got] = '\0';
	return got;
}

/* The size rounds down to a power of two, never under 256. */
static void
test_sizes(void **state)
{
	struct watch_ring r;

	(void)state;
	assert_true(watch_ring_init(&r, 1000));
	assert_int_equal(r.cap, 512);
	watch_ring_free(&r);
	assert_true(watch_ring_init(&r, 10));
	assert_int_equal(r.cap, 256);
	watch_ring_free(&r);
}

/* A full ring refuses a whole line, counts it, and prefixes the next
 * one that fits with how many were lost. */
static void
test_skipped(void **state)
{
	struct watch_ring	r;
	char			line[100], out[1024];

	(void)state;
	assert_true(watch_ring_init(&r, 256));
	memset(line, 'a', sizeof line);
	line[99] = '\n';
	assert_int_equal(watch_ring_room(&r), 256);
	assert_true(watch_ring_push(&r, line, 100));
	assert_true(watch_ring_push(&r, line, 100));
	assert_int_equal(watch_ring_room(&r), 56);
	assert_false(watch_ring_push(&r, line, 100));	/* 56 left */
	/* "x\n" fits after "skipped=1\n" in the 56 bytes left */
	assert_true(watch_ring_push(&r, "x\n", 2));
	assert_int_equal(r.skipped, 0);
	assert_int_equal(drain(&r, out, sizeof out), 212);
	assert_memory_equal(out + 200, "skipped=1\nx\n", 12);
	/* nothing is lost when there is room */
	assert_true(watch_ring_push(&r, "y\n", 2));
	assert_int_equal(drain(&r, out, sizeof out), 2);
	assert_string_equal(out, "y\n");
	watch_ring_free(&r);
}

/* Several refusals add up; a line that wraps the array reads back in
 * two pieces, intact. */
static void
test_wrap(void **state)
{
	struct watch_ring	r;
	char			line[200], out[1024];

	(void)state;
	assert_true(watch_ring_init(&r, 256));
	memset(line, 'b', sizeof line);
	assert_true(watch_ring_push(&r, line, 200));
	for (int i = 0; i < 3; i++)
		assert_false(watch_ring_push(&r, line, 200));
	watch_ring_skip(&r);		/* lost untried: counted alike */
	assert_int_equal(r.skipped, 4);
	assert_int_equal(drain(&r, out, sizeof out), 200);
	for (int i = 0; i < 200; i++)
		line[i] = (char)('A' + i % 26);
	assert_true(watch_ring_push(&r, line, 200));	/* wraps at 256 */
	assert_int_equal(drain(&r, out, sizeof out), 10 + 200);
	assert_memory_equal(out, "skipped=4\n", 10);
	assert_memory_equal(out + 10, line, 200);
	watch_ring_free(&r);
}

#define LINES	1000000

struct pc {
	struct watch_ring	ring;
	uint64_t		pushed;
	uint64_t		skipped;
};

/* Producer: numbered lines, as fast as it can. */
static void *
producer(void *arg)
{
	struct pc *pc = arg;
	char line[32];

	for (uint64_t i = 0; i < LINES; i++) {
		int n = snprintf(line, sizeof line, "n=%llu\n",
		    (unsigned long long)i);

		if (watch_ring_push(&pc->ring, line, (size_t)n))
			pc->pushed++;
		else
			pc->skipped++;
	}
	/* the end marker waits for room: it must arrive */
	while (!watch_ring_push(&pc->ring, "end\n", 4))
		pc->skipped++;
	return NULL;
}

/* Lines pushed by one thread come out whole, in order, and what was
 * lost is exactly what the skipped= lines say. */
static void
test_threads(void **state)
{
	struct pc	 pc;
	pthread_t	 t;
	char		 acc[512];
	size_t		 have = 0;
	uint64_t	 seen = 0, told = 0, next = 0;
	bool		 end = false;

	(void)state;
	memset(&pc, 0, sizeof pc);
	assert_true(watch_ring_init(&pc.ring, 4096));
	assert_int_equal(pthread_create(&t, NULL, producer, &pc), 0);
	while (!end) {
		const char *p;
		size_t n = watch_ring_peek(&pc.ring, &p);
		char *nl;

		if (n > sizeof acc - have)
			n = sizeof acc - have;
		memcpy(acc + have, p, n);
		have += n;
		watch_ring_consume(&pc.ring, n);
		while (!end && (nl = memchr(acc, '\n', have)) != NULL) {
			unsigned long long v;

			*nl = '\0';
			if (strcmp(acc, "end") == 0)
				end = true;
			else if (sscanf(acc, "skipped=%llu", &v) == 1)
				told += v;
			else {
				assert_int_equal(sscanf(acc, "n=%llu", &v), 1);
				assert_true(v >= next);	/* in order */
				next = v + 1;
				seen++;
			}
			have -= (size_t)(nl + 1 - acc);
			memmove(acc, nl + 1, have);
		}
	}
	pthread_join(t, NULL);
	/* every line pushed arrived; every refusal (the end marker's
	 * included) was told in a skipped= line */
	assert_int_equal(seen, pc.pushed);
	assert_int_equal(told, pc.skipped);
	assert_int_equal(pc.ring.skipped, 0);
	watch_ring_free(&pc.ring);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_skipped),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
