/*
 * test_store_direct.c -- the one-copy small set (issue 16):
 * store_reserve_direct carves the item in the calling thread's segment
 * and the commit links it where it is.  Checks that a set so made takes
 * no pool lock and no loose allocation and is not copied again, gets one
 * CAS; that a reservation whose segment eviction empties before the
 * commit is copied out (not linked in memory about to be freed); that
 * its exptime still reaches its segment after an expiry scan skipped it;
 * that a refused add leaves the value alone; that a reader keeps its
 * value while the key is replaced; and that under no_evict a set into a
 * full cache ends stored or with the old value gone, after bounded work.
 * Fake clock; no sleeps.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fake_clock.h"
#include "store.h"
#include "store_internal.h"

#define KB	1024u

/* Creates a store on a fake clock starting at T0. */
static store_t *
mk_store(struct fake_clock *fc, size_t limit, bool no_evict)
{
	struct store_config cfg = {
		.mem_limit = limit,
		.item_size_max = 1024 * KB,
		.no_evict = no_evict,
		.clock = fake_now,
		.clock_ctx = fc,
	};
	store_t *st;

	fc->now = T0;
	st = store_create(&cfg);
	assert_non_null(st);
	return st;
}

/* Reserves key directly with a value of n bytes of c; returns the item. */
static item_t *
reserve(store_t *st, const char *key, char c, size_t n, int64_t exptime)
{
	item_t *it = NULL;

	assert_int_equal(store_reserve_direct(st, key, strlen(key), 7,
	    exptime, n, &it), STORE_OK);
	memset(item_value_mut(it), c, n);
	return it;
}

/* Sets key directly; returns the status of the commit. */
static store_status_t
dset(store_t *st, const char *key, char c, size_t n, int64_t exptime,
    uint64_t *cas)
{
	item_t *it;

	if (store_reserve_direct(st, key, strlen(key), 7, exptime, n, &it) !=
	    STORE_OK)
		return STORE_NO_MEMORY;
	memset(item_value_mut(it), c, n);
	return store_commit(st, it, STORE_SET, 0, cas);
}

/* True if eviction marked the item's segment as being emptied. */
static bool
ref_has_evac(const item_t *it)
{
	return (atomic_load(&it->ref) & ITEM_EVAC) != 0;
}

/* Returns the item linked for key (a reference the caller releases). */
static item_t *
lookup(store_t *st, const char *key)
{
	item_t *it = NULL;

	assert_int_equal(store_get(st, key, strlen(key), &it), STORE_OK);
	return it;
}

/* Asserts key holds n bytes of c. */
static void
check(store_t *st, const char *key, char c, size_t n)
{
	item_t *it = lookup(st, key);
	size_t i;

	assert_int_equal(item_nbytes(it), n);
	for (i = 0; i < n; i++)
		assert_int_equal(item_value(it)[i], c);
	store_release(st, it);
}

/* A small set: carved, linked where carved, one CAS; no loose item (the
 * memory counter does not move once the segment is there) and, in debug
 * builds, no pool lock; the loose path takes it, so the count can fail. */
static void
test_direct_one_copy(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * 1024 * KB, false);
	struct pool *p = store_debug_pool(st);
	uint64_t mem, cas1 = 0, cas2 = 0;
	item_t *it, *got;
	char key[32];
	int i;
#ifndef NDEBUG
	uint64_t pool0, pool1;
#endif

	(void)state;
	assert_int_equal(dset(st, "first", 'f', 100, 0, NULL), STORE_STORED);
	mem = atomic_load(&p->mem);
#ifndef NDEBUG
	pool0 = store_locks_taken[LOCK_POOL];
#endif
	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		it = reserve(st, key, (char)('a' + i % 26), 32 + (size_t)i * 19,
		    0);
		assert_true(item_in_segment(it));
		assert_int_equal(store_commit(st, it, STORE_SET, 0, NULL),
		    STORE_STORED);
		got = lookup(st, key);
		assert_ptr_equal(got, it);	/* no second copy */
		store_release(st, got);
		check(st, key, (char)('a' + i % 26), 32 + (size_t)i * 19);
	}
	assert_int_equal(atomic_load(&p->mem), mem);
#ifndef NDEBUG
	pool1 = store_locks_taken[LOCK_POOL];
	assert_int_equal(pool1, pool0);
	/* The loose path takes the pool lock: the count can fail. */
	assert_int_equal(store_reserve(st, "loose", 5, 0, 0, 100, &it),
	    STORE_OK);
	memset(item_value_mut(it), 'l', 100);
	assert_int_equal(store_commit(st, it, STORE_SET, 0, NULL),
	    STORE_STORED);
	assert_true(store_locks_taken[LOCK_POOL] > pool1);
#endif
	/* One CAS per store: two sets of a key in a row, consecutive. */
	assert_int_equal(dset(st, "c", 'x', 10, 0, &cas1), STORE_STORED);
	assert_int_equal(dset(st, "c", 'y', 10, 0, &cas2), STORE_STORED);
	assert_int_equal(cas2, cas1 + 1);
	store_destroy(st);
}

/* Eviction empties the reservation's segment before the commit: the
 * commit copies the value out, and the emptied segment is free once the
 * reservation is let go (linked in place, it would stay pinned and off
 * the FIFO for good, its item in memory the pool thinks is going). */
static void
test_direct_segment_evacuated(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * 1024 * KB, false);
	struct pool *p = store_debug_pool(st);
	uint64_t nsegs, nfree0, nfree1;
	item_t *it, *got;
	struct seg *s;

	(void)state;
	assert_int_equal(dset(st, "other", 'o', 50, 0, NULL), STORE_STORED);
	it = reserve(st, "r", 'r', 200, 0);
	/* Nothing sealed yet: this seals the active segment and takes it. */
	s = pool_pop_oldest(p);
	assert_non_null(s);
	assert_ptr_equal(s, pool_seg_of(p, it));
	seg_evacuate(st, s, false);
	assert_true(ref_has_evac(it));
	pool_counts(p, &nsegs, &nfree0);
	assert_int_equal(store_commit(st, it, STORE_SET, 0, NULL),
	    STORE_STORED);
	got = lookup(st, "r");
	assert_ptr_not_equal(got, it);
	assert_ptr_not_equal(pool_seg_of(p, got), s);
	store_release(st, got);
	check(st, "r", 'r', 200);
	pool_counts(p, &nsegs, &nfree1);
	assert_int_equal(nfree1, nfree0 + 1);
	store_destroy(st);
}

/* An expiry scan between the carve and the commit skips the unlinked
 * reservation and resets its segment's earliest exptime: the commit
 * notes it again, so the item is reclaimed once expired. */
static void
test_direct_exptime_after_scan(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * 1024 * KB, false);
	struct store_stats s0, s1;
	item_t *it;

	(void)state;
	assert_int_equal(dset(st, "short", 's', 40, 1, NULL), STORE_STORED);
	it = reserve(st, "long", 'l', 40, 100);
	fc.now += 2;
	assert_int_equal(store_expire_run(st, 1000), 1);	/* "short" */
	assert_int_equal(store_commit(st, it, STORE_SET, 0, NULL),
	    STORE_STORED);
	check(st, "long", 'l', 40);
	fc.now += 200;
	store_get_stats(st, &s0);
	assert_int_equal(store_expire_run(st, 1000), 1);	/* "long" */
	store_get_stats(st, &s1);
	assert_int_equal(s1.curr_items, s0.curr_items - 1);
	store_destroy(st);
}

/* A refused add of a direct reservation changes nothing visible; a
 * reader holding the old item keeps its bytes while a direct set
 * replaces the key. */
static void
test_direct_refused_and_held(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * 1024 * KB, false);
	struct store_stats s0, s1;
	item_t *it, *held;
	size_t i;

	(void)state;
	assert_int_equal(dset(st, "k", 'a', 300, 0, NULL), STORE_STORED);
	store_get_stats(st, &s0);
	it = reserve(st, "k", 'b', 300, 0);
	assert_int_equal(store_commit(st, it, STORE_ADD, 0, NULL),
	    STORE_NOT_STORED);
	store_get_stats(st, &s1);
	assert_int_equal(s1.bytes, s0.bytes);
	check(st, "k", 'a', 300);

	held = lookup(st, "k");
	assert_int_equal(dset(st, "k", 'c', 300, 0, NULL), STORE_STORED);
	check(st, "k", 'c', 300);
	for (i = 0; i < 300; i++)
		assert_int_equal(item_value(held)[i], 'a');
	store_release(st, held);
	store_destroy(st);
}

/* Under no_evict, a cache filled with direct sets stays within its
 * limit; a set of an existing key then ends stored, or refused with the
 * old value gone (never the old value kept after a failure), with a
 * bounded number of tries to make room. */
static void
test_direct_no_evict(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 128 * KB, true);
	struct pool *p = store_debug_pool(st);
	struct store_debug d0, d1;
	store_status_t rc;
	item_t *it;
	char key[32];
	int i, stored = 0;

	(void)state;
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		if (dset(st, key, 'v', 100, 0, NULL) == STORE_STORED)
			stored = i + 1;
		else
			break;
		assert_true(atomic_load(&p->mem) <= 128 * KB);
	}
	assert_true(stored > 100 && stored < 5000);
	store_debug_get(st, &d0);
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		rc = dset(st, key, 'w', 100 + (size_t)i, 0, NULL);
		if (rc == STORE_STORED) {
			check(st, key, 'w', 100 + (size_t)i);
		} else {
			assert_int_equal(rc, STORE_NO_MEMORY);
			/* the dispatch deletes on a refused reserve */
			store_delete(st, key, strlen(key));
			it = NULL;
			assert_int_equal(store_get(st, key, strlen(key), &it),
			    STORE_NOT_FOUND);
		}
		assert_true(atomic_load(&p->mem) <= 128 * KB);
	}
	store_debug_get(st, &d1);
	/* a few tries per reserve and per commit at most */
	assert_true(d1.room_tries - d0.room_tries <= 20 * 8);
	store_destroy(st);
}

/* Under no_evict, a cache filled to refusal with direct sets takes a
 * new value once deletes made room (compaction moves the live items of
 * a segment with dead ones): what memcached -M does (test_libmemcached's
 * test_no_evict, at -m 1 with 900-byte values). */
static void
test_direct_no_evict_deletes_make_room(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 1024 * KB, true);
	char key[32];
	int i, stored;

	(void)state;
	for (stored = 0; stored < 5000; stored++) {
		snprintf(key, sizeof(key), "fill-%d", stored);
		if (dset(st, key, 'v', 900, 0, NULL) != STORE_STORED)
			break;
	}
	assert_true(stored > 500 && stored < 5000);
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "fill-%d", i);
		assert_int_equal(store_delete(st, key, strlen(key)),
		    STORE_DELETED);
	}
	assert_int_equal(dset(st, "room", 'r', 900, 0, NULL), STORE_STORED);
	check(st, "room", 'r', 900);
	for (i = 10; i < stored; i++) {
		snprintf(key, sizeof(key), "fill-%d", i);
		check(st, key, 'v', 900);
	}
	store_destroy(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_one_copy),
		cmocka_unit_test(test_direct_segment_evacuated),
		cmocka_unit_test(test_direct_exptime_after_scan),
		cmocka_unit_test(test_direct_refused_and_held),
		cmocka_unit_test(test_direct_no_evict),
		cmocka_unit_test(test_direct_no_evict_deletes_make_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
