/*
 * test_store.c -- cmocka unit tests of store/: command semantics, TTL,
 * flush_all, the segmented LRU and eviction under the memory limit,
 * refcounts, the expiry wheel (with a fake clock, never sleeping),
 * incremental rehash and a multi-threaded hammer, on a shared fast clock,
 * that checks invariants.
 *
 * The tests include store_internal.h for white-box checks: the item
 * header size, the work counters that show expiry costs what it reclaims,
 * which shard a key maps to and which LRU segment holds it.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "store.h"
#include "store_internal.h"

#define T0	1700000000u	/* the fake clock's start */
#define DAY	86400u
#define KB	1024u

struct fake_clock {
	uint32_t	now;
};

/* Reads the fake clock. */
static uint32_t
fake_now(void *ctx)
{
	return ((struct fake_clock *)ctx)->now;
}

/* Creates a store on a fake clock starting at T0. */
static store_t *
mk_store(struct fake_clock *fc, size_t limit, unsigned shards_log2,
    bool no_evict)
{
	struct store_config cfg = {
		.mem_limit = limit,
		.item_size_max = 1024 * KB,
		.shards_log2 = shards_log2,
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

/* Stores a string value with a mode; returns the status. */
static store_status_t
put_mode(store_t *st, const char *key, const char *val, uint32_t flags,
    int64_t exptime, store_mode_t mode, uint64_t cas, uint64_t *cas_out)
{
	size_t n = strlen(val);
	item_t *it;
	store_status_t rc;

	rc = store_reserve(st, key, strlen(key), flags, exptime, n, &it);
	if (rc != STORE_OK)
		return rc;
	memcpy(item_value_mut(it), val, n);
	memcpy(item_value_mut(it) + n, "\r\n", 2);
	return store_commit(st, it, mode, cas, cas_out);
}

/* Sets a string value. */
static store_status_t
put(store_t *st, const char *key, const char *val, int64_t exptime)
{
	return put_mode(st, key, val, 0, exptime, STORE_SET, 0, NULL);
}

/* Asserts a key holds exactly val (and its "\r\n"). */
static void
check_value(store_t *st, const char *key, const char *val)
{
	item_t *it;

	assert_int_equal(store_get(st, key, strlen(key), &it), STORE_OK);
	assert_int_equal(item_nkey(it), strlen(key));
	assert_memory_equal(item_key(it), key, strlen(key));
	assert_int_equal(item_nbytes(it), strlen(val));
	assert_memory_equal(item_value(it), val, strlen(val));
	assert_memory_equal(item_value(it) + strlen(val), "\r\n", 2);
	store_release(st, it);
}

/* Asserts a key is not visible. */
static void
check_missing(store_t *st, const char *key)
{
	item_t *it = (item_t *)1;

	assert_int_equal(store_get(st, key, strlen(key), &it),
	    STORE_NOT_FOUND);
	assert_null(it);
}

/* Returns the CAS of a key's current item. */
static uint64_t
cas_of(store_t *st, const char *key)
{
	item_t *it;
	uint64_t cas;

	assert_int_equal(store_get(st, key, strlen(key), &it), STORE_OK);
	cas = item_cas(it);
	store_release(st, it);
	return cas;
}

/* Returns the stats. */
static struct store_stats
stats(store_t *st)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s;
}

/* Returns the accounted cost of an item with this key/value size. */
static size_t
item_cost(size_t nkey, size_t nbytes)
{
	void *p = malloc(sizeof(struct item) + nkey + nbytes + 2);
	size_t c;

	assert_non_null(p);
	c = store_alloc_cost(p);
	free(p);
	return c;
}

/* Returns the summed cost of the live items among keys[0..n). */
static size_t
live_cost(store_t *st, const char *const *keys, int n)
{
	size_t sum = 0;
	item_t *it;
	int i;

	for (i = 0; i < n; i++) {
		if (store_get(st, keys[i], strlen(keys[i]), &it) != STORE_OK)
			continue;
		sum += store_alloc_cost(it);
		store_release(st, it);
	}
	return sum;
}

/* Returns the cost of one key's live item. */
static size_t
key_cost(store_t *st, const char *key)
{
	return live_cost(st, &key, 1);
}

/* Runs expiry until a run does no work; returns items freed. */
static size_t
expire_all(store_t *st, size_t budget)
{
	struct store_debug d0, d1;
	size_t freed = 0;
	int guard;

	for (guard = 0; guard < 100000; guard++) {
		store_debug_get(st, &d0);
		freed += store_expire_run(st, budget);
		store_debug_get(st, &d1);
		if (d1.expire_units == d0.expire_units)
			return freed;
	}
	fail_msg("expiry never caught up");
	return freed;
}

/* Fills buf with a key for i that lands in the given shard. */
static void
key_in_shard(store_t *st, unsigned shard, int *i, char *buf, size_t len)
{
	for (;; (*i)++) {
		snprintf(buf, len, "k%d", *i);
		if (store_key_shard(st, buf, strlen(buf)) == shard) {
			(*i)++;
			return;
		}
	}
}

/* Fills buf with a key "k%06d" (7 bytes, so all cost the same) for i
 * that lands in the given shard. */
static void
key7_in_shard(store_t *st, unsigned shard, int *i, char *buf, size_t len)
{
	for (;; (*i)++) {
		assert_true(*i < 1000000);
		snprintf(buf, len, "k%06d", *i);
		if (store_key_shard(st, buf, strlen(buf)) == shard) {
			(*i)++;
			return;
		}
	}
}

/* Returns a memory limit that holds n items of this cost and no more.
 * The slack of one byte short of an item absorbs glibc's rounding up of
 * a chunk now and then (16 bytes, depending on the heap's past). */
static size_t
limit_for(size_t n, size_t cost)
{
	return n * cost + cost - 1;
}

/* Returns a key's LRU segment without counting a hit (-1: absent). */
static int
seg_of(store_t *st, const char *key)
{
	return store_debug_segment(st, key, strlen(key));
}

#define PROBATION	0
#define PROTECTED	1

/* ---- layout and accounting ------------------------------------------ */

/* The header is 64 bytes and bytes counts the real allocation. */
static void
test_item_layout(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	char val[101];
	size_t cost = item_cost(10, 100);

	(void)state;
	assert_int_equal(sizeof(struct item), 64);
	memset(val, 'v', 100);
	val[100] = '\0';
	assert_int_equal(put(st, "0123456789", val, 0), STORE_STORED);
	assert_int_equal(stats(st).bytes, key_cost(st, "0123456789"));
	/* glibc: 64 + 10 + 102 = 176 bytes asked, a 192-byte chunk. */
	assert_true(cost >= 176 + sizeof(size_t));
	assert_int_equal(stats(st).curr_items, 1);
	assert_true(stats(st).hash_bytes > 0);
	print_message("item header %zu bytes; 10-byte key + 100-byte value "
	    "costs %zu bytes\n", sizeof(struct item), cost);
	assert_int_equal(store_delete(st, "0123456789", 10), STORE_DELETED);
	assert_int_equal(stats(st).bytes, 0);
	store_destroy(st);
}

/* ---- TTL ------------------------------------------------------------ */

/* Wire exptimes: 0, relative up to 30 days, absolute, negative. */
static void
test_exptime_conversion(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);

	(void)state;
	assert_int_equal(store_exptime(st, 0), 0);
	assert_int_equal(store_exptime(st, 1), T0 + 1);
	assert_int_equal(store_exptime(st, 2592000), T0 + 2592000);
	/* One more than 30 days is an absolute time: 1970-01-31. */
	assert_int_equal(store_exptime(st, 2592001), 2592001);
	assert_int_equal(store_exptime(st, T0 + 50), T0 + 50);
	assert_true(store_exptime(st, -1) != 0);
	assert_true(store_exptime(st, -1) <= T0);
	assert_int_equal(store_exptime(st, INT64_MAX), UINT32_MAX);
	store_destroy(st);
}

/* Each TTL form expires exactly when it should on the fake clock. */
static void
test_ttl_rules(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);

	(void)state;
	assert_int_equal(put(st, "never", "v", 0), STORE_STORED);
	assert_int_equal(put(st, "rel", "v", 100), STORE_STORED);
	assert_int_equal(put(st, "max", "v", 2592000), STORE_STORED);
	assert_int_equal(put(st, "abs1970", "v", 2592001), STORE_STORED);
	assert_int_equal(put(st, "abs", "v", T0 + 500), STORE_STORED);
	assert_int_equal(put(st, "past", "v", T0 - 1), STORE_STORED);
	assert_int_equal(put(st, "now", "v", T0), STORE_STORED);
	assert_int_equal(put(st, "neg", "v", -1), STORE_STORED);
	check_missing(st, "abs1970");
	check_missing(st, "past");
	check_missing(st, "now");
	check_missing(st, "neg");
	fc.now = T0 + 99;
	check_value(st, "rel", "v");
	fc.now = T0 + 100;
	check_missing(st, "rel");
	fc.now = T0 + 499;
	check_value(st, "abs", "v");
	fc.now = T0 + 500;
	check_missing(st, "abs");
	fc.now = T0 + 2592000 - 1;
	check_value(st, "max", "v");
	fc.now = T0 + 2592000;
	check_missing(st, "max");
	fc.now = T0 + 3650 * DAY;
	check_value(st, "never", "v");
	store_destroy(st);
}

/* A set born expired is STORED, invisible, and removes the old value. */
static void
test_set_expired_replaces_old(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);

	(void)state;
	assert_int_equal(put(st, "k", "old", 0), STORE_STORED);
	assert_int_equal(put(st, "k", "new", -1), STORE_STORED);
	check_missing(st, "k");
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).bytes, 0);
	assert_int_equal(put(st, "k", "old", 0), STORE_STORED);
	assert_int_equal(put(st, "k", "new", T0 - 10), STORE_STORED);
	check_missing(st, "k");
	store_destroy(st);
}

/* No command sees an expired item; add treats it as absent. */
static void
test_expired_never_returned(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	item_t *it;
	uint64_t v;

	(void)state;
	assert_int_equal(put(st, "k", "5", 5), STORE_STORED);
	fc.now = T0 + 5;
	assert_int_equal(store_gat(st, "k", 1, 100, &it), STORE_NOT_FOUND);
	assert_int_equal(store_touch(st, "k", 1, 100), STORE_NOT_FOUND);
	assert_int_equal(store_incr(st, "k", 1, true, 1, &v),
	    STORE_NOT_FOUND);
	assert_int_equal(put_mode(st, "k", "x", 0, 0, STORE_APPEND, 0, NULL),
	    STORE_NOT_STORED);
	assert_int_equal(put_mode(st, "k", "x", 0, 0, STORE_REPLACE, 0,
	    NULL), STORE_NOT_STORED);
	assert_int_equal(put_mode(st, "k", "x", 0, 0, STORE_CAS, 1, NULL),
	    STORE_NOT_FOUND);
	assert_int_equal(store_delete(st, "k", 1), STORE_NOT_FOUND);
	check_missing(st, "k");
	assert_int_equal(put_mode(st, "k", "a", 0, 0, STORE_ADD, 0, NULL),
	    STORE_STORED);
	check_value(st, "k", "a");
	store_destroy(st);
}

/* touch and gat move the expiry and keep the CAS. */
static void
test_touch_and_gat(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	item_t *it;
	uint64_t cas = 0;

	(void)state;
	assert_int_equal(put_mode(st, "k", "v", 0, 10, STORE_SET, 0, &cas),
	    STORE_STORED);
	assert_int_equal(store_touch(st, "k", 1, 100), STORE_TOUCHED);
	assert_int_equal(store_touch(st, "nope", 4, 100), STORE_NOT_FOUND);
	fc.now = T0 + 50;
	check_value(st, "k", "v");
	assert_int_equal(store_gat(st, "k", 1, 0, &it), STORE_OK);
	assert_memory_equal(item_value(it), "v\r\n", 3);
	assert_int_equal(item_cas(it), cas);	/* touch keeps the CAS */
	store_release(st, it);
	fc.now = T0 + 5000;
	check_value(st, "k", "v");
	/* gat into the past: returned this once, then gone. */
	assert_int_equal(store_gat(st, "k", 1, -1, &it), STORE_OK);
	assert_memory_equal(item_value(it), "v\r\n", 3);
	check_missing(st, "k");
	assert_memory_equal(item_value(it), "v\r\n", 3);
	store_release(st, it);
	assert_int_equal(stats(st).bytes, 0);
	store_destroy(st);
}

/* ---- storage commands ---------------------------------------------- */

/* set, add and replace against present and absent keys. */
static void
test_set_add_replace(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	item_t *it;

	(void)state;
	assert_int_equal(put_mode(st, "k", "r", 0, 0, STORE_REPLACE, 0, NULL),
	    STORE_NOT_STORED);
	check_missing(st, "k");
	assert_int_equal(put_mode(st, "k", "a", 3, 0, STORE_ADD, 0, NULL),
	    STORE_STORED);
	assert_int_equal(put_mode(st, "k", "b", 0, 0, STORE_ADD, 0, NULL),
	    STORE_NOT_STORED);
	check_value(st, "k", "a");
	assert_int_equal(put_mode(st, "k", "c", 4, 0, STORE_REPLACE, 0, NULL),
	    STORE_STORED);
	check_value(st, "k", "c");
	assert_int_equal(put_mode(st, "k", "d", 5, 0, STORE_SET, 0, NULL),
	    STORE_STORED);
	assert_int_equal(store_get(st, "k", 1, &it), STORE_OK);
	assert_int_equal(item_flags(it), 5);
	store_release(st, it);
	assert_int_equal(put(st, "empty", "", 0), STORE_STORED);
	check_value(st, "empty", "");
	assert_int_equal(store_delete(st, "k", 1), STORE_DELETED);
	assert_int_equal(store_delete(st, "k", 1), STORE_NOT_FOUND);
	assert_int_equal(stats(st).curr_items, 1);
	assert_int_equal(stats(st).total_items, 4);
	store_destroy(st);
}

/* append/prepend need the key and keep its flags and exptime. */
static void
test_append_prepend(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	uint64_t cas0, cas1 = 0;
	item_t *it;

	(void)state;
	assert_int_equal(put_mode(st, "k", "x", 0, 0, STORE_APPEND, 0, NULL),
	    STORE_NOT_STORED);
	assert_int_equal(put_mode(st, "k", "x", 0, 0, STORE_PREPEND, 0, NULL),
	    STORE_NOT_STORED);
	check_missing(st, "k");
	assert_int_equal(put_mode(st, "k", "mid", 7, 100, STORE_SET, 0, &cas0),
	    STORE_STORED);
	assert_int_equal(put_mode(st, "k", "End", 9, 0, STORE_APPEND, 0,
	    &cas1), STORE_STORED);
	assert_true(cas1 != cas0);
	assert_int_equal(put_mode(st, "k", "Start", 9, 0, STORE_PREPEND, 0,
	    NULL), STORE_STORED);
	check_value(st, "k", "StartmidEnd");
	assert_int_equal(store_get(st, "k", 1, &it), STORE_OK);
	assert_int_equal(item_flags(it), 7);	/* the old item's flags */
	store_release(st, it);
	fc.now = T0 + 99;
	check_value(st, "k", "StartmidEnd");
	fc.now = T0 + 100;		/* and the old item's exptime */
	check_missing(st, "k");
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).bytes, 0);
	store_destroy(st);
}

/* cas: NOT_FOUND, EXISTS on a mismatch, STORED with a new CAS. */
static void
test_cas(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	uint64_t cas, cas2 = 0;

	(void)state;
	assert_int_equal(put_mode(st, "k", "v", 0, 0, STORE_CAS, 1, NULL),
	    STORE_NOT_FOUND);
	assert_int_equal(put_mode(st, "k", "v1", 0, 0, STORE_SET, 0, &cas),
	    STORE_STORED);
	assert_int_equal(cas_of(st, "k"), cas);
	assert_int_equal(put_mode(st, "k", "v2", 0, 0, STORE_CAS, cas + 1,
	    NULL), STORE_EXISTS);
	assert_int_equal(put_mode(st, "k", "v2", 0, 0, STORE_CAS, 0, NULL),
	    STORE_EXISTS);
	check_value(st, "k", "v1");
	assert_int_equal(put_mode(st, "k", "v3", 0, 0, STORE_CAS, cas, &cas2),
	    STORE_STORED);
	assert_true(cas2 != cas);
	assert_int_equal(cas_of(st, "k"), cas2);
	check_value(st, "k", "v3");
	assert_int_equal(put_mode(st, "k", "v4", 0, 0, STORE_CAS, cas, NULL),
	    STORE_EXISTS);
	store_destroy(st);
}

/* A key deleted, flushed and stored again never reuses a CAS. */
static void
test_cas_unique_across_readd(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	uint64_t seen[64];
	int i, j;

	(void)state;
	for (i = 0; i < 64; i++) {
		if (i % 2 == 0) {
			store_delete(st, "k", 1);
			assert_int_equal(put_mode(st, "k", "v", 0, 0,
			    STORE_ADD, 0, &seen[i]), STORE_STORED);
		} else {
			assert_int_equal(put_mode(st, "k", "v", 0, 0,
			    STORE_SET, 0, &seen[i]), STORE_STORED);
		}
		assert_int_equal(cas_of(st, "k"), seen[i]);
		for (j = 0; j < i; j++)
			assert_true(seen[j] != seen[i]);
		if (i % 3 == 0)
			assert_int_equal(store_delete(st, "k", 1),
			    STORE_DELETED);
		if (i % 7 == 0)
			store_flush(st, 0);
	}
	/* A stale CAS from before a delete must not match the new item. */
	store_delete(st, "k", 1);
	assert_int_equal(put(st, "k", "v", 0), STORE_STORED);
	for (j = 0; j < 64; j++)
		assert_int_equal(put_mode(st, "k", "x", 0, 0, STORE_CAS,
		    seen[j], NULL), STORE_EXISTS);
	store_destroy(st);
}

/* ---- incr/decr ----------------------------------------------------- */

/* Runs an incr or decr and checks the status, result and stored text. */
static void
check_incr(store_t *st, const char *start, bool incr, uint64_t delta,
    store_status_t want, uint64_t want_v, const char *want_text)
{
	uint64_t v = 0;

	assert_int_equal(put(st, "n", start, 0), STORE_STORED);
	assert_int_equal(store_incr(st, "n", 1, incr, delta, &v), want);
	if (want == STORE_OK) {
		assert_int_equal(v, want_v);
		check_value(st, "n", want_text);
	} else {
		check_value(st, "n", start);
	}
}

/* incr/decr: wrap, floor, what counts as a number, length changes. */
static void
test_incr_decr(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	uint64_t v, cas, cas2;
	item_t *it;

	(void)state;
	assert_int_equal(store_incr(st, "n", 1, true, 1, &v),
	    STORE_NOT_FOUND);
	check_incr(st, "0", true, 1, STORE_OK, 1, "1");
	check_incr(st, "18446744073709551615", true, 1, STORE_OK, 0, "0");
	check_incr(st, "18446744073709551615", true, 2, STORE_OK, 1, "1");
	check_incr(st, "1", true, UINT64_MAX, STORE_OK, 0, "0");
	check_incr(st, "5", false, 10, STORE_OK, 0, "0");
	check_incr(st, "5", false, 5, STORE_OK, 0, "0");
	check_incr(st, "0", false, 1, STORE_OK, 0, "0");
	check_incr(st, "99", true, 1, STORE_OK, 100, "100");
	check_incr(st, "100", false, 1, STORE_OK, 99, "99");
	check_incr(st, "12   ", true, 1, STORE_OK, 13, "13");
	check_incr(st, "00000000000000000001", true, 1, STORE_OK, 2, "2");
	check_incr(st, "18446744073709551614", true, 1, STORE_OK,
	    UINT64_MAX, "18446744073709551615");
	check_incr(st, "12a", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "abc", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, " 12", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "-1", false, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "1 2", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "   ", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "18446744073709551616", true, 1, STORE_NON_NUMERIC, 0,
	    NULL);
	check_incr(st, "99999999999999999999", true, 1, STORE_NON_NUMERIC, 0,
	    NULL);
	check_incr(st, "000000000000000000001", true, 1, STORE_NON_NUMERIC, 0,
	    NULL);
	/* The result is a new item: new CAS, same flags and exptime. */
	assert_int_equal(put_mode(st, "n", "41", 77, 100, STORE_SET, 0, &cas),
	    STORE_STORED);
	assert_int_equal(store_incr(st, "n", 1, true, 1, &v), STORE_OK);
	assert_int_equal(v, 42);
	assert_int_equal(store_get(st, "n", 1, &it), STORE_OK);
	cas2 = item_cas(it);
	assert_true(cas2 != cas);
	assert_int_equal(item_flags(it), 77);
	assert_int_equal(item_nbytes(it), 2);
	store_release(st, it);
	fc.now = T0 + 100;
	check_missing(st, "n");
	assert_int_equal(stats(st).bytes, 0);
	store_destroy(st);
}

/* ---- LRU, eviction, memory limit ------------------------------------- */

/* The least recently used item of the key's shard goes first (the same
 * under plain LRU and the segmented one). */
static void
test_lru_order(void **state)
{
	struct fake_clock fc;
	size_t cost = item_cost(3, 100);
	store_t *st = mk_store(&fc, 4 * cost + cost / 2, 1, false);
	char val[101], a[16], b[16], c[16], d[16], x[16];
	int i = 10;
	unsigned s;
	item_t *it;

	(void)state;
	memset(val, 'v', 100);
	val[100] = '\0';
	/* a, b, c, d in one shard; x, the oldest of all, in the other. */
	key_in_shard(st, 0, &i, a, sizeof(a));
	s = store_key_shard(st, a, strlen(a));
	key_in_shard(st, s, &i, b, sizeof(b));
	key_in_shard(st, s, &i, c, sizeof(c));
	key_in_shard(st, s, &i, d, sizeof(d));
	key_in_shard(st, s ^ 1, &i, x, sizeof(x));
	assert_int_equal(strlen(a) + strlen(b) + strlen(c) + strlen(d) +
	    strlen(x), 15);
	assert_int_equal(put(st, x, val, 0), STORE_STORED);
	assert_int_equal(put(st, a, val, 0), STORE_STORED);
	assert_int_equal(put(st, b, val, 0), STORE_STORED);
	assert_int_equal(put(st, c, val, 0), STORE_STORED);
	assert_int_equal(stats(st).evictions, 0);
	assert_int_equal(store_get(st, a, strlen(a), &it), STORE_OK);
	store_release(st, it);
	assert_int_equal(put(st, d, val, 0), STORE_STORED);
	/* b was least recently used in d's shard; a, hit by the get, moved
	 * to the protected segment. */
	check_missing(st, b);
	check_value(st, a, val);
	check_value(st, c, val);
	check_value(st, d, val);
	check_value(st, x, val);
	assert_int_equal(stats(st).evictions, 1);
	assert_int_equal(stats(st).evicted_unfetched, 1);
	assert_true(stats(st).bytes <= 4 * cost + cost / 2);
	store_destroy(st);
}

/* Eviction takes a dead item near the LRU tail first, as reclaimed. */
static void
test_evict_prefers_expired(void **state)
{
	struct fake_clock fc;
	size_t cost = item_cost(3, 100);
	store_t *st = mk_store(&fc, 3 * cost + cost / 2, 1, false);
	char val[101], a[16], b[16], c[16], d[16];
	struct store_stats s;
	unsigned sh;
	int i = 10;

	(void)state;
	memset(val, 'v', 100);
	val[100] = '\0';
	key_in_shard(st, 0, &i, a, sizeof(a));
	sh = store_key_shard(st, a, strlen(a));
	key_in_shard(st, sh, &i, b, sizeof(b));
	key_in_shard(st, sh, &i, c, sizeof(c));
	key_in_shard(st, sh, &i, d, sizeof(d));
	assert_int_equal(strlen(a) + strlen(b) + strlen(c) + strlen(d), 12);
	assert_int_equal(put(st, a, val, 0), STORE_STORED);
	assert_int_equal(put(st, b, val, 10), STORE_STORED);
	assert_int_equal(put(st, c, val, 0), STORE_STORED);
	fc.now = T0 + 10;
	/* a is the tail but live; b, next to it, expired: b goes. */
	assert_int_equal(put(st, d, val, 0), STORE_STORED);
	s = stats(st);
	assert_int_equal(s.evictions, 0);
	assert_int_equal(s.reclaimed, 1);
	assert_int_equal(s.expired_unfetched, 1);
	assert_int_equal(s.get_expired, 0);
	check_value(st, a, val);
	check_value(st, c, val);
	check_value(st, d, val);
	store_destroy(st);
}

/* Many random inserts never push bytes over the limit. */
static void
test_eviction_keeps_limit(void **state)
{
	struct fake_clock fc;
	const size_t limit = 64 * KB;
	store_t *st = mk_store(&fc, limit, 2, false);
	char key[32], val[2000];
	struct store_stats s;
	size_t sum = 0, found = 0;
	item_t *it;
	int i;

	(void)state;
	memset(val, 'q', sizeof(val));
	srand(1);
	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand() % 1500);

		snprintf(key, sizeof(key), "key:%d", i);
		val[n] = '\0';
		assert_int_equal(put(st, key, val, rand() % 3 ? 0 : 1000),
		    STORE_STORED);
		val[n] = 'q';
		assert_true(stats(st).bytes <= limit);
		if (i % 10 == 0) {
			snprintf(key, sizeof(key), "key:%d", rand() % (i + 1));
			if (store_get(st, key, strlen(key), &it) == STORE_OK)
				store_release(st, it);
		}
	}
	s = stats(st);
	assert_true(s.evictions > 1000);
	assert_true(s.bytes > limit / 2);
	/* Exact accounting: bytes is the sum of the live items' costs. */
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		if (store_get(st, key, strlen(key), &it) != STORE_OK)
			continue;
		sum += store_alloc_cost(it);
		found++;
		store_release(st, it);
	}
	s = stats(st);
	assert_int_equal(s.bytes, sum);
	assert_int_equal(s.curr_items, found);
	store_destroy(st);
}

/* -M: stores fail with NO_MEMORY and old data stays. */
static void
test_no_evict(void **state)
{
	struct fake_clock fc;
	size_t cost = item_cost(6, 1000);
	store_t *st = mk_store(&fc, 10 * cost + cost / 2, 0, true);
	char key[16], val[1001], big[2001];
	int i, stored = 0;

	(void)state;
	memset(val, 'm', 1000);
	val[1000] = '\0';
	memset(big, 'b', 2000);
	big[2000] = '\0';
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "key:%02d", i);
		if (put(st, key, val, 0) == STORE_STORED)
			stored++;
		else
			assert_int_equal(put(st, key, val, 0),
			    STORE_NO_MEMORY);
	}
	assert_int_equal(stored, 10);
	assert_int_equal(stats(st).evictions, 0);
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "key:%02d", i);
		check_value(st, key, val);
	}
	/* A failed overwrite keeps the old value. */
	assert_int_equal(put(st, "key:00", big, 0), STORE_NO_MEMORY);
	check_value(st, "key:00", val);
	assert_int_equal(put_mode(st, "key:00", "x", 0, 0, STORE_APPEND, 0,
	    NULL), STORE_NO_MEMORY);
	check_value(st, "key:00", val);
	store_destroy(st);
}

/* Values over item_size_max, keys over 250 bytes, bad configs. */
static void
test_too_large(void **state)
{
	struct fake_clock fc;
	struct store_config cfg = {
		.mem_limit = 1024 * KB, .item_size_max = 100,
		.clock = fake_now, .clock_ctx = &fc,
	};
	store_t *st;
	char key[300], val[101];
	item_t *it = (item_t *)1;

	(void)state;
	fc.now = T0;
	st = store_create(&cfg);
	assert_non_null(st);
	assert_int_equal(store_reserve(st, "k", 1, 0, 0, 101, &it),
	    STORE_TOO_LARGE);
	assert_null(it);
	memset(key, 'k', sizeof(key));
	assert_int_equal(store_reserve(st, key, 251, 0, 0, 1, &it),
	    STORE_TOO_LARGE);
	key[250] = '\0';
	assert_int_equal(put(st, key, "longest key", 0), STORE_STORED);
	check_value(st, key, "longest key");
	memset(val, 'x', 100);
	val[100] = '\0';
	assert_int_equal(put(st, "k", val, 0), STORE_STORED);
	assert_int_equal(put_mode(st, "k", "y", 0, 0, STORE_APPEND, 0, NULL),
	    STORE_TOO_LARGE);
	check_value(st, "k", val);
	/* Bigger than the whole memory limit. */
	cfg.item_size_max = 2048 * KB;
	store_destroy(st);
	st = store_create(&cfg);
	assert_int_equal(store_reserve(st, "k", 1, 0, 0, 1500 * KB, &it),
	    STORE_NO_MEMORY);
	store_destroy(st);
	/* Bad configs. */
	cfg.shards_log2 = 17;
	assert_null(store_create(&cfg));
}

/* ---- segmented LRU -------------------------------------------------- */

/* Makes a 100-byte value. */
static void
val100(char *val)
{
	memset(val, 'v', 100);
	val[100] = '\0';
}

/* An item hit twice outlives newcomers set once, where a plain LRU would
 * have evicted it after as many newcomers as the shard holds. */
static void
test_slru_one_hit_evicted_first(void **state)
{
	struct fake_clock fc;
	size_t cost = item_cost(7, 100);
	store_t *st = mk_store(&fc, limit_for(4, cost), 1, false);
	char val[101], h[16], n[7][16];
	int i = 0, j;

	(void)state;
	val100(val);
	key7_in_shard(st, 0, &i, h, sizeof(h));
	for (j = 1; j <= 6; j++)
		key7_in_shard(st, 0, &i, n[j], sizeof(n[j]));
	assert_int_equal(put(st, h, val, 0), STORE_STORED);
	assert_int_equal(put(st, n[1], val, 0), STORE_STORED);
	assert_int_equal(put(st, n[2], val, 0), STORE_STORED);
	assert_int_equal(seg_of(st, h), PROBATION);
	check_value(st, h, val);
	check_value(st, h, val);
	assert_int_equal(seg_of(st, h), PROTECTED);
	/* Four newcomers after h's last hit: under plain LRU h, older than
	 * all of them, would be the fourth to go. */
	for (j = 3; j <= 6; j++)
		assert_int_equal(put(st, n[j], val, 0), STORE_STORED);
	assert_int_equal(stats(st).evictions, 3);
	assert_int_equal(stats(st).evicted_unfetched, 3);
	for (j = 1; j <= 3; j++)
		assert_int_equal(seg_of(st, n[j]), -1);
	for (j = 4; j <= 6; j++)
		assert_int_equal(seg_of(st, n[j]), PROBATION);
	assert_int_equal(seg_of(st, h), PROTECTED);
	check_value(st, h, val);
	store_destroy(st);
}

/* A scan of many new keys, each set once, leaves a hot set alone. */
static void
test_slru_scan_resistant(void **state)
{
	enum { CAP = 40, HOT = 16, SCAN = 400 };
	struct fake_clock fc;
	size_t cost = item_cost(7, 100);
	store_t *st = mk_store(&fc, limit_for(CAP, cost), 1, false);
	char val[101], hot[HOT][16], key[16];
	int i = 0, j;

	(void)state;
	val100(val);
	for (j = 0; j < HOT; j++) {
		key7_in_shard(st, 0, &i, hot[j], sizeof(hot[j]));
		assert_int_equal(put(st, hot[j], val, 0), STORE_STORED);
	}
	for (j = HOT; j < CAP; j++) {
		key7_in_shard(st, 0, &i, key, sizeof(key));
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
	}
	assert_int_equal(stats(st).evictions, 0);
	for (j = 0; j < HOT; j++)
		check_value(st, hot[j], val);
	for (j = 0; j < SCAN; j++) {
		key7_in_shard(st, 0, &i, key, sizeof(key));
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
		assert_true(stats(st).bytes <= limit_for(CAP, cost));
	}
	/* Every scanned key took the place of a one-hit item. */
	assert_true(stats(st).evictions >= SCAN);
	assert_true(stats(st).curr_items > HOT);
	for (j = 0; j < HOT; j++)
		assert_int_equal(seg_of(st, hot[j]), PROTECTED);
	for (j = 0; j < HOT; j++)
		check_value(st, hot[j], val);
	store_destroy(st);
}

/* Past its share (80 % of the shard's bytes) the protected segment
 * demotes its tail to the probation head, a few items per operation. */
static void
test_slru_demotion(void **state)
{
	struct fake_clock fc;
	size_t cost = item_cost(7, 100);
	store_t *st = mk_store(&fc, limit_for(10, cost), 1, false);
	char val[101], k[10][16], n1[16], n2[16];
	int i = 0, j;

	(void)state;
	val100(val);
	for (j = 0; j < 10; j++) {
		key7_in_shard(st, 0, &i, k[j], sizeof(k[j]));
		assert_int_equal(put(st, k[j], val, 0), STORE_STORED);
	}
	key7_in_shard(st, 0, &i, n1, sizeof(n1));
	key7_in_shard(st, 0, &i, n2, sizeof(n2));
	/* 8 of 10 protected is the share exactly: no demotion yet. */
	for (j = 0; j < 8; j++)
		check_value(st, k[j], val);
	for (j = 0; j < 8; j++)
		assert_int_equal(seg_of(st, k[j]), PROTECTED);
	/* The ninth promotion pushes the protected tail, k0, back. */
	check_value(st, k[8], val);
	assert_int_equal(seg_of(st, k[0]), PROBATION);
	for (j = 1; j < 9; j++)
		assert_int_equal(seg_of(st, k[j]), PROTECTED);
	assert_int_equal(seg_of(st, k[9]), PROBATION);
	/* k0 went to the probation head: k9, at the tail, goes first. */
	assert_int_equal(put(st, n1, val, 0), STORE_STORED);
	assert_int_equal(seg_of(st, k[9]), -1);
	assert_int_equal(seg_of(st, k[0]), PROBATION);
	assert_int_equal(put(st, n2, val, 0), STORE_STORED);
	assert_int_equal(seg_of(st, k[0]), -1);
	for (j = 1; j < 9; j++)
		assert_int_equal(seg_of(st, k[j]), PROTECTED);
	assert_int_equal(stats(st).evictions, 2);
	store_destroy(st);
}

/* One big promotion demotes at most four items per operation; later
 * operations work off the rest. */
static void
test_slru_demotion_bounded(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	char val[101], k[20][16], big[16], *bv;
	size_t nbig;
	int i = 0, j, prot;

	(void)state;
	val100(val);
	for (j = 0; j < 20; j++) {
		key7_in_shard(st, 0, &i, k[j], sizeof(k[j]));
		assert_int_equal(put(st, k[j], val, 0), STORE_STORED);
	}
	for (j = 0; j < 20; j++)
		check_value(st, k[j], val);
	/* 16 of the 20 fit the 80 % share; the first four went back. */
	for (j = 0; j < 20; j++)
		assert_int_equal(seg_of(st, k[j]), j < 4 ? PROBATION :
		    PROTECTED);
	/* A value weighing as much as 40 small items: 56 protected of 60
	 * wants 8 demotions, four per operation. */
	nbig = 40 * (sizeof(struct item) + 7 + 102) - (sizeof(struct item) +
	    7 + 2);
	bv = malloc(nbig + 1);
	assert_non_null(bv);
	memset(bv, 'b', nbig);
	bv[nbig] = '\0';
	key7_in_shard(st, 0, &i, big, sizeof(big));
	assert_int_equal(put(st, big, bv, 0), STORE_STORED);
	check_value(st, big, bv);
	assert_int_equal(seg_of(st, big), PROTECTED);
	for (prot = 0, j = 0; j < 20; j++)
		prot += seg_of(st, k[j]) == PROTECTED;
	assert_int_equal(prot, 12);
	check_value(st, big, bv);
	for (prot = 0, j = 0; j < 20; j++)
		prot += seg_of(st, k[j]) == PROTECTED;
	assert_int_equal(prot, 8);
	/* At the share exactly now: another hit demotes nothing. */
	check_value(st, big, bv);
	for (prot = 0, j = 0; j < 20; j++)
		prot += seg_of(st, k[j]) == PROTECTED;
	assert_int_equal(prot, 8);
	/* The oldest protected items went first. */
	for (j = 4; j < 12; j++)
		assert_int_equal(seg_of(st, k[j]), PROBATION);
	free(bv);
	store_destroy(st);
}

/* An overwrite, append or incr keeps the key's segment; a failed add and
 * a touch count as hits; a new key starts in probation. */
static void
test_slru_overwrite_keeps_segment(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	char key[32];
	uint64_t v;
	int i;

	(void)state;
	/* Enough bystanders that the protected share is never reached. */
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "other:%d", i);
		assert_int_equal(put(st, key, "x", 0), STORE_STORED);
	}
	assert_int_equal(put(st, "a", "1", 0), STORE_STORED);
	assert_int_equal(put(st, "b", "1", 0), STORE_STORED);
	assert_int_equal(put(st, "c", "1", 0), STORE_STORED);
	assert_int_equal(put(st, "d", "1", 0), STORE_STORED);
	assert_int_equal(seg_of(st, "a"), PROBATION);
	check_value(st, "a", "1");
	assert_int_equal(seg_of(st, "a"), PROTECTED);
	assert_int_equal(put(st, "a", "2", 0), STORE_STORED);
	assert_int_equal(seg_of(st, "a"), PROTECTED);
	assert_int_equal(put_mode(st, "a", "0", 0, 0, STORE_APPEND, 0, NULL),
	    STORE_STORED);
	assert_int_equal(seg_of(st, "a"), PROTECTED);
	assert_int_equal(store_incr(st, "a", 1, true, 1, &v), STORE_OK);
	assert_int_equal(v, 21);
	assert_int_equal(seg_of(st, "a"), PROTECTED);
	/* A probation key overwritten stays in probation. */
	assert_int_equal(put(st, "b", "2", 0), STORE_STORED);
	assert_int_equal(seg_of(st, "b"), PROBATION);
	assert_int_equal(put_mode(st, "c", "2", 0, 0, STORE_ADD, 0, NULL),
	    STORE_NOT_STORED);
	assert_int_equal(seg_of(st, "c"), PROTECTED);
	assert_int_equal(store_touch(st, "d", 1, 100), STORE_TOUCHED);
	assert_int_equal(seg_of(st, "d"), PROTECTED);
	/* Deleted and set again: new to the cache. */
	assert_int_equal(store_delete(st, "a", 1), STORE_DELETED);
	assert_int_equal(put(st, "a", "3", 0), STORE_STORED);
	assert_int_equal(seg_of(st, "a"), PROBATION);
	store_destroy(st);
}

/* Eviction reaps a dead item near the protected tail before it evicts
 * the live probation tail. */
static void
test_slru_evict_prefers_expired_protected(void **state)
{
	struct fake_clock fc;
	size_t cost = item_cost(7, 100);
	store_t *st = mk_store(&fc, limit_for(6, cost), 1, false);
	char val[101], e[16], p[16], f[4][16], n[16];
	struct store_stats s;
	int i = 0, j;

	(void)state;
	val100(val);
	key7_in_shard(st, 0, &i, e, sizeof(e));
	key7_in_shard(st, 0, &i, p, sizeof(p));
	key7_in_shard(st, 0, &i, n, sizeof(n));
	assert_int_equal(put(st, e, val, 10), STORE_STORED);
	assert_int_equal(put(st, p, val, 0), STORE_STORED);
	for (j = 0; j < 4; j++) {
		key7_in_shard(st, 0, &i, f[j], sizeof(f[j]));
		assert_int_equal(put(st, f[j], val, 0), STORE_STORED);
	}
	check_value(st, e, val);
	check_value(st, p, val);
	assert_int_equal(seg_of(st, e), PROTECTED);
	fc.now = T0 + 10;
	/* Probation (f3 .. f0) is all live; e, at the protected tail, is
	 * expired and goes instead of f0. */
	assert_int_equal(put(st, n, val, 0), STORE_STORED);
	s = stats(st);
	assert_int_equal(s.evictions, 0);
	assert_int_equal(s.reclaimed, 1);
	assert_int_equal(s.get_expired, 0);
	for (j = 0; j < 4; j++)
		assert_int_equal(seg_of(st, f[j]), PROBATION);
	assert_int_equal(seg_of(st, p), PROTECTED);
	assert_int_equal(seg_of(st, n), PROBATION);
	store_destroy(st);
}

/* Sets keys and hits every third, so both segments hold items. */
static void
fill_both_segments(store_t *st, const char *fmt, int n, int64_t ttl)
{
	char key[32];
	int i, seg[2] = { 0, 0 };

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), fmt, i);
		assert_int_equal(put(st, key, "value", ttl), STORE_STORED);
	}
	for (i = 0; i < n; i += 3) {
		snprintf(key, sizeof(key), fmt, i);
		check_value(st, key, "value");
	}
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), fmt, i);
		seg[seg_of(st, key)]++;
	}
	assert_true(seg[PROBATION] > n / 2);
	assert_true(seg[PROTECTED] > n / 4);
}

/* flush_all: the sweep frees dead items from both segments, in bounded
 * holds, while new items are set and promoted over them. */
static void
test_slru_flush_sweeps_both(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	struct store_debug d;
	const char *keys[50];
	char key[50][16], old[16];
	int i;

	(void)state;
	fill_both_segments(st, "old:%d", 600, 0);
	store_flush(st, 0);
	assert_int_equal(stats(st).curr_items, 0);
	/* New items go to probation heads, promoted ones to protected heads,
	 * in front of the dead. */
	for (i = 0; i < 50; i++) {
		snprintf(key[i], sizeof(key[i]), "new:%d", i);
		keys[i] = key[i];
		assert_int_equal(put(st, keys[i], "v", 0), STORE_STORED);
		if (i % 2 == 0)
			check_value(st, keys[i], "v");
	}
	assert_int_equal(expire_all(st, 7), 600);
	store_debug_get(st, &d);
	assert_true(d.max_hold_units <= 7);
	assert_int_equal(stats(st).curr_items, 50);
	assert_int_equal(stats(st).bytes, live_cost(st, keys, 50));
	for (i = 0; i < 600; i++) {
		snprintf(old, sizeof(old), "old:%d", i);
		check_missing(st, old);
	}
	assert_int_equal(stats(st).get_flushed, 0);
	/* Again with everything live in both segments. */
	store_flush(st, 0);
	assert_int_equal(expire_all(st, 7), 50);
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).bytes, 0);
	store_destroy(st);
}

/* A promotion that pushes dead items out of protected frees them: were
 * they demoted, they would sit in front of live probation items, out of
 * the flush sweep's reach. */
static void
test_slru_demote_frees_flushed(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	char val[101], o[5][16], n[8][16], p[16];
	const char *live[9];
	size_t o4_cost, b1;
	item_t *it;
	int i = 0, j;

	(void)state;
	val100(val);
	for (j = 0; j < 5; j++) {
		key7_in_shard(st, 0, &i, o[j], sizeof(o[j]));
		assert_int_equal(put(st, o[j], val, 0), STORE_STORED);
	}
	/* Hit o0..o3, noting their costs: o4's is what is left. */
	o4_cost = stats(st).bytes;
	for (j = 0; j < 4; j++) {
		assert_int_equal(store_get(st, o[j], 7, &it), STORE_OK);
		o4_cost -= store_alloc_cost(it);
		store_release(st, it);
	}
	for (j = 0; j < 5; j++)
		assert_int_equal(seg_of(st, o[j]), j < 4 ? PROTECTED :
		    PROBATION);
	store_flush(st, 0);
	/* A live probation item, then eight promotions: from the fifth on,
	 * each pushes the protected share over 80 % and the dead tail out. */
	key7_in_shard(st, 0, &i, p, sizeof(p));
	assert_int_equal(put(st, p, val, 0), STORE_STORED);
	live[8] = p;
	for (j = 0; j < 8; j++) {
		key7_in_shard(st, 0, &i, n[j], sizeof(n[j]));
		live[j] = n[j];
		assert_int_equal(put(st, n[j], val, 0), STORE_STORED);
		check_value(st, n[j], val);
	}
	assert_int_equal(stats(st).curr_items, 9);
	/* The sweep gets o4, behind p, and only o4: o0..o3 were freed. */
	b1 = stats(st).bytes;
	assert_int_equal(expire_all(st, 100), 1);
	assert_int_equal(b1 - stats(st).bytes, o4_cost);
	assert_int_equal(seg_of(st, p), PROBATION);
	for (j = 0; j < 8; j++)
		assert_int_equal(seg_of(st, n[j]), PROTECTED);
	assert_int_equal(stats(st).bytes, live_cost(st, live, 9));
	store_destroy(st);
}

/* Items with a TTL in both segments all expire: nothing left. */
static void
test_slru_expiry_both(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);

	(void)state;
	fill_both_segments(st, "t:%d", 300, 5);
	fc.now = T0 + 5;
	assert_int_equal(expire_all(st, 10), 300);
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).bytes, 0);
	assert_int_equal(stats(st).reclaimed, 300);
	store_destroy(st);
}

/* ---- refcounts ------------------------------------------------------ */

/* A referenced item outlives delete and replace. */
static void
test_ref_survives_delete_replace(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	item_t *a, *b;
	size_t one;

	(void)state;
	assert_int_equal(put(st, "k", "first", 0), STORE_STORED);
	one = stats(st).bytes;
	assert_int_equal(store_get(st, "k", 1, &a), STORE_OK);
	assert_int_equal(store_delete(st, "k", 1), STORE_DELETED);
	check_missing(st, "k");
	assert_memory_equal(item_value(a), "first\r\n", 7);
	assert_int_equal(stats(st).bytes, one);	/* still counted */
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(put(st, "k", "second", 0), STORE_STORED);
	assert_int_equal(store_get(st, "k", 1, &b), STORE_OK);
	assert_int_equal(put(st, "k", "third", 0), STORE_STORED);
	assert_int_equal(put_mode(st, "k", "+", 0, 0, STORE_APPEND, 0, NULL),
	    STORE_STORED);
	assert_memory_equal(item_value(a), "first\r\n", 7);
	assert_memory_equal(item_value(b), "second\r\n", 8);
	check_value(st, "k", "third+");
	store_release(st, a);
	store_release(st, b);
	assert_int_equal(stats(st).bytes, key_cost(st, "k"));
	store_destroy(st);
}

/* A referenced item outlives eviction; its memory returns on release. */
static void
test_ref_survives_eviction(void **state)
{
	struct fake_clock fc;
	size_t cost = item_cost(6, 200), limit = 20 * cost;
	store_t *st = mk_store(&fc, limit, 1, false);
	char key[16], val[201];
	item_t *held;
	int i;

	(void)state;
	memset(val, 'e', 200);
	val[200] = '\0';
	assert_int_equal(put(st, "held", val, 0), STORE_STORED);
	assert_int_equal(store_get(st, "held", 4, &held), STORE_OK);
	/* Each key is hit too: the get moved "held" to the protected
	 * segment, and only hit items push it out of there. */
	for (i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key:%02d", i % 100);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
		check_value(st, key, val);
		assert_true(stats(st).bytes <= limit);
	}
	check_missing(st, "held");
	assert_int_equal(item_nbytes(held), 200);
	assert_memory_equal(item_value(held), val, 200);
	i = (int)(stats(st).bytes - store_alloc_cost(held));
	store_release(st, held);
	assert_int_equal(stats(st).bytes, (size_t)i);
	store_destroy(st);
}

/* ---- flush_all ------------------------------------------------------ */

/* flush_all hides everything at once; the sweep frees it in batches. */
static void
test_flush_now(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	char key[16];
	uint64_t bytes;
	int i;

	(void)state;
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put(st, key, "v", 0), STORE_STORED);
	}
	bytes = stats(st).bytes;
	store_flush(st, 0);
	/* Invisible at once, memory back when the sweep gets to them. */
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).bytes, bytes);
	check_missing(st, "k0");
	assert_int_equal(stats(st).get_flushed, 1);
	assert_int_equal(put_mode(st, "k1", "x", 0, 0, STORE_REPLACE, 0, NULL),
	    STORE_NOT_STORED);
	assert_int_equal(put_mode(st, "k2", "a", 0, 0, STORE_ADD, 0, NULL),
	    STORE_STORED);
	assert_int_equal(put(st, "k3", "s", 0), STORE_STORED);
	check_value(st, "k2", "a");
	check_value(st, "k3", "s");
	/* k0..k3 were reaped when looked up; the expiry pass reclaims the
	 * rest from the LRU tails. */
	assert_int_equal(expire_all(st, 7), 496);
	assert_int_equal(stats(st).curr_items, 2);
	assert_int_equal(stats(st).bytes, key_cost(st, "k2") +
	    key_cost(st, "k3"));
	for (i = 4; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		check_missing(st, key);
	}
	check_value(st, "k2", "a");
	store_destroy(st);
}

/* A delayed flush hits items stored before its due time only. */
static void
test_flush_delayed(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);

	(void)state;
	assert_int_equal(put(st, "before", "v", 0), STORE_STORED);
	store_flush(st, 10);
	fc.now = T0 + 5;
	assert_int_equal(put(st, "during", "v", 0), STORE_STORED);
	fc.now = T0 + 9;
	check_value(st, "before", "v");
	check_value(st, "during", "v");
	fc.now = T0 + 10;
	assert_int_equal(put(st, "after", "v", 0), STORE_STORED);
	check_missing(st, "before");
	check_missing(st, "during");
	check_value(st, "after", "v");
	fc.now = T0 + 11;
	assert_int_equal(put(st, "later", "v", 0), STORE_STORED);
	check_value(st, "after", "v");
	check_value(st, "later", "v");
	store_destroy(st);
}

/* A flush_all time over 30 days is an absolute unix time, as exptimes
 * are (memcached's realtime() rule). */
static void
test_flush_absolute(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);

	(void)state;
	assert_int_equal(put(st, "before", "v", 0), STORE_STORED);
	store_flush(st, (int64_t)T0 + 20);
	fc.now = T0 + 19;
	check_value(st, "before", "v");
	fc.now = T0 + 20;
	check_missing(st, "before");
	store_destroy(st);
}

/* A flush_all whose absolute time has already passed is a flush now:
 * nothing stays counted as an item, even in shards not touched since. */
static void
test_flush_absolute_past(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	char key[16];
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put(st, key, "v", 0), STORE_STORED);
	}
	store_flush(st, (int64_t)T0 - 100);
	assert_int_equal(stats(st).curr_items, 0);
	check_missing(st, "k0");
	assert_int_equal(put(st, "after", "v", 0), STORE_STORED);
	check_value(st, "after", "v");
	assert_int_equal(stats(st).curr_items, 1);
	store_destroy(st);
}

/* A new flush replaces a pending one but never a due one. */
static void
test_flush_replaces_pending(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	char key[16];
	int i;

	(void)state;
	assert_int_equal(put(st, "a", "v", 0), STORE_STORED);
	store_flush(st, 10);
	store_flush(st, 100);		/* replaces the one due at +10 */
	fc.now = T0 + 50;
	check_value(st, "a", "v");
	fc.now = T0 + 100;
	check_missing(st, "a");

	/* A flush that came due must not be lost to a newer pending one,
	 * even in shards that saw no operation since. */
	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put(st, key, "v", 0), STORE_STORED);
	}
	store_flush(st, 10);
	fc.now += 10;
	store_flush(st, 1000);
	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		check_missing(st, key);
	}
	/* And flush now then a delayed one: the first already happened. */
	assert_int_equal(put(st, "b", "v", 0), STORE_STORED);
	store_flush(st, 0);
	store_flush(st, 500);
	check_missing(st, "b");
	store_destroy(st);
}

/* ---- expiry -------------------------------------------------------- */

/* The expiry pass frees what expired, and only that. */
static void
test_expire_reclaims(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	char key[30][16];
	const char *keys[30];
	item_t *it;
	struct store_stats s;
	int i;

	(void)state;
	for (i = 0; i < 30; i++) {
		snprintf(key[i], sizeof(key[i]), "k%02d", i);
		keys[i] = key[i];
		assert_int_equal(put(st, keys[i], "value", i < 10 ? 5 :
		    i < 20 ? 0 : 100), STORE_STORED);
	}
	assert_int_equal(store_get(st, "k00", 3, &it), STORE_OK);
	store_release(st, it);
	fc.now = T0 + 4;
	assert_int_equal(expire_all(st, 100), 0);
	assert_int_equal(stats(st).curr_items, 30);
	fc.now = T0 + 5;
	assert_int_equal(store_expire_run(st, 100), 10);
	s = stats(st);
	assert_int_equal(s.curr_items, 20);
	assert_int_equal(s.reclaimed, 10);
	assert_int_equal(s.expired_unfetched, 9);
	assert_int_equal(s.get_expired, 0);
	assert_int_equal(s.bytes, live_cost(st, keys + 10, 20));
	fc.now = T0 + 100;
	assert_int_equal(store_expire_run(st, 100), 10);
	assert_int_equal(stats(st).curr_items, 10);
	assert_true(stats(st).expiry_runs >= 3);
	store_destroy(st);
}

/* Expiry work follows what expired, not how much is stored. */
static void
test_expire_proportional(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	struct store_debug d0, d1;
	char key[32];
	size_t bytes;
	int i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "long:%d", i);
		assert_int_equal(put(st, key, "v", 3600), STORE_STORED);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "short:%d", i);
		assert_int_equal(put(st, key, "v", 5), STORE_STORED);
	}
	while (stats(st).hash_is_expanding)
		store_expire_run(st, 1000);
	bytes = stats(st).bytes;
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "short:%d", i);
		bytes -= key_cost(st, key);
	}
	fc.now = T0 + 6;
	store_debug_get(st, &d0);
	assert_int_equal(store_expire_run(st, 1000), 1000);
	store_debug_get(st, &d1);
	/* About one unit per freed item plus a few per shard; a scan would
	 * cost over 100000. */
	assert_true(d1.expire_units - d0.expire_units < 1000 + 64 * 16);
	assert_true(d1.max_hold_units <= 1000);
	assert_int_equal(stats(st).curr_items, 100000);
	assert_int_equal(stats(st).bytes, bytes);
	for (i = 0; i < 1000; i += 97) {
		snprintf(key, sizeof(key), "long:%d", i);
		check_value(st, key, "v");
	}
	fc.now = T0 + 3599;
	assert_int_equal(expire_all(st, 1000), 0);
	assert_int_equal(stats(st).curr_items, 100000);
	fc.now = T0 + 3600;
	assert_int_equal(expire_all(st, 1000), 100000);
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).bytes, 0);
	store_destroy(st);
}

/* A jump of months costs work per item, in bounded holds. */
static void
test_large_clock_jump(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	struct store_debug d0, d1;
	char key[32];
	int i, n = 0;

	(void)state;
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		/* Spread over every wheel level and the overflow list. */
		assert_int_equal(put(st, key, "v", i % 5 == 0 ?
		    (int64_t)(T0 + 400 * DAY + (uint32_t)i) :
		    1 + (i * 7919) % 2592000), STORE_STORED);
		n += i % 5 == 0;
	}
	assert_int_equal(put(st, "never", "v", 0), STORE_STORED);
	fc.now = T0 + 31 * DAY;
	store_debug_get(st, &d0);
	assert_int_equal(expire_all(st, 8), 2000 - n);
	store_debug_get(st, &d1);
	/* Bounded holds and work by what is filed, not by seconds passed. */
	assert_true(d1.max_hold_units <= 8);
	assert_true(d1.expire_units - d0.expire_units < 2000 * 8);
	assert_int_equal(stats(st).curr_items, n + 1);
	fc.now = T0 + 399 * DAY;
	assert_int_equal(expire_all(st, 8), 0);
	fc.now = T0 + 400 * DAY + 1000;
	assert_int_equal(expire_all(st, 8), 1000 / 5 + 1);
	fc.now = UINT32_MAX;
	assert_int_equal(expire_all(st, 3), n - 201);
	assert_int_equal(stats(st).curr_items, 1);
	check_value(st, "never", "v");
	store_destroy(st);
}

/* Checks that the store holds exactly the keys not yet due. */
static void
check_wheel_model(store_t *st, const uint32_t *exp, int n, uint32_t now)
{
	char key[32];
	item_t *it;
	int i, k, live = 0;

	for (i = 0; i < n; i++)
		live += exp[i] > now;
	assert_int_equal(stats(st).curr_items, live);
	for (k = 0; k < 50; k++) {
		i = rand() % n;
		snprintf(key, sizeof(key), "w%d", i);
		assert_int_equal(store_get(st, key, strlen(key), &it),
		    exp[i] > now ? STORE_OK : STORE_NOT_FOUND);
		store_release(st, it);
	}
}

/* Random TTLs, touches and clock steps against a model. */
static void
test_wheel_random(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	enum { N = 3000 };
	uint32_t *exp = calloc(N, sizeof(*exp)), ttl;
	char key[32];
	int i, round, k;
	uint64_t r;

	(void)state;
	assert_non_null(exp);
	srand(7);
	for (round = 0; round < 300; round++) {
		for (k = 0; k < 20; k++) {
			i = rand() % N;
			snprintf(key, sizeof(key), "w%d", i);
			r = (uint64_t)rand();
			ttl = (uint32_t)(r % 5 == 0 ? r % 20 + 1 :
			    r % 5 == 1 ? r % 5000 + 1 :
			    r % 5 == 2 ? r % 300000 + 1 : r % 2592000 + 1);
			if (exp[i] != 0 && exp[i] > fc.now && r % 3 == 0) {
				assert_int_equal(store_touch(st, key,
				    strlen(key), ttl), STORE_TOUCHED);
			} else {
				assert_int_equal(put(st, key, "v", ttl),
				    STORE_STORED);
			}
			exp[i] = fc.now + ttl;
		}
		r = (uint64_t)rand();
		fc.now += (uint32_t)(r % 10 == 0 ? r % 1000000 :
		    r % 10 < 4 ? r % 100 : r % 5);
		expire_all(st, 1 + (size_t)(r % 13));
		check_wheel_model(st, exp, N, fc.now);
	}
	free(exp);
	store_destroy(st);
}

/* The expiry thread starts, refuses a second start and stops. */
static void
test_expiry_thread_start_stop(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);

	(void)state;
	assert_int_equal(store_expiry_start(st), 0);
	assert_int_not_equal(store_expiry_start(st), 0);
	store_expiry_stop(st);
	store_expiry_stop(st);
	assert_int_equal(store_expiry_start(st), 0);
	store_destroy(st);		/* stops it */
}

/* ---- stats ---------------------------------------------------------- */

/* reset zeroes the counters but not curr_items or bytes. */
static void
test_stats_reset(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	struct store_stats s;

	(void)state;
	assert_int_equal(put(st, "a", "v", 1), STORE_STORED);
	assert_int_equal(put(st, "b", "v", 0), STORE_STORED);
	fc.now = T0 + 1;
	check_missing(st, "a");
	s = stats(st);
	assert_int_equal(s.get_expired, 1);
	assert_int_equal(s.reclaimed, 1);
	assert_int_equal(s.total_items, 2);
	store_reset_stats(st);
	s = stats(st);
	assert_int_equal(s.get_expired, 0);
	assert_int_equal(s.reclaimed, 0);
	assert_int_equal(s.total_items, 0);
	assert_int_equal(s.curr_items, 1);
	assert_int_equal(s.bytes, key_cost(st, "b"));
	assert_int_equal(s.limit_maxbytes, SIZE_MAX / 2);
	assert_int_equal(s.hash_power_level, 8);
	store_destroy(st);
}

/* ---- incremental rehash -------------------------------------------- */

/* 200k keys stay reachable while tables grow, and shrink after. */
static void
test_rehash(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	enum { N = 200000 };
	char key[32], val[32];
	bool saw_expanding = false;
	uint64_t hb;
	int i, j;

	(void)state;
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "val:%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
		if (i % 1000 == 0) {
			saw_expanding |= stats(st).hash_is_expanding != 0;
			for (j = 0; j < 20; j++) {
				int k = rand() % (i + 1);

				snprintf(key, sizeof(key), "key:%d", k);
				snprintf(val, sizeof(val), "val:%d", k);
				check_value(st, key, val);
			}
		}
	}
	assert_true(saw_expanding);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "val:%d", i);
		check_value(st, key, val);
	}
	while (stats(st).hash_is_expanding)
		store_expire_run(st, 100);
	assert_true(stats(st).hash_power_level >= 17);
	assert_int_equal(stats(st).curr_items, N);
	hb = stats(st).hash_bytes;
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		assert_int_equal(store_delete(st, key, strlen(key)),
		    STORE_DELETED);
	}
	/* At least one expiry run: a shrink that finished within the last
	 * delete leaves the next one for the expiry thread to start. */
	do
		store_expire_run(st, 100);
	while (stats(st).hash_is_expanding);
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).hash_power_level, 8);
	assert_true(stats(st).hash_bytes < hb / 100);
	store_destroy(st);
}

/* ---- multi-threaded hammer ------------------------------------------ */

#define HAMMER_THREADS	4
#define HAMMER_KEYS	256
#define HAMMER_OPS	30000
#define HAMMER_HELD	4
#define HAMMER_LIMIT	(24 * KB)

/* Written before the threads start, read-only after. */
static char hammer_keys[HAMMER_KEYS][16];

struct hammer {
	store_t		*st;
	unsigned	 seed;
	int		 bad;		/* broken invariants seen */
};

/* Operations so far; the hammer's clock runs one second per 256, so TTLs
 * of a few seconds expire while the threads run. */
static _Atomic uint32_t hammer_ops;

/* The hammer's shared clock. */
static uint32_t
hammer_now(void *ctx)
{
	(void)ctx;
	return T0 + atomic_load(&hammer_ops) / 256;
}

/* True if v is digits and "<cc..c>" runs, each run one lowercase letter. */
static bool
well_formed(const char *v, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		if (v[i] >= '0' && v[i] <= '9') {
			i++;
			continue;
		}
		if (v[i] != '<' || i + 2 >= n || v[i + 1] < 'a' ||
		    v[i + 1] > 'z')
			return false;
		for (j = i + 1; j < n && v[j] == v[i + 1]; j++)
			;
		if (j >= n || v[j] != '>')
			return false;
		i = j + 1;
	}
	return v[n] == '\r' && v[n + 1] == '\n';
}

/* True if an item is well-formed for the key it was fetched by. */
static bool
item_ok(const item_t *it, const char *key)
{
	return item_nkey(it) == strlen(key) &&
	    memcmp(item_key(it), key, strlen(key)) == 0 &&
	    item_nbytes(it) <= 2048 && well_formed(item_value(it),
	    item_nbytes(it));
}

/* Builds a "<ccc>" segment or a number. */
static void
make_value(unsigned *seed, char *buf, size_t cap)
{
	size_t n = (size_t)(rand_r(seed) % 150) + 1;

	if (rand_r(seed) % 4 == 0) {
		snprintf(buf, cap, "%d", rand_r(seed) % 1000);
		return;
	}
	buf[0] = '<';
	memset(buf + 1, 'a' + rand_r(seed) % 26, n);
	buf[n + 1] = '>';
	buf[n + 2] = '\0';
}

/* Gets a key and keeps the reference in a random slot, checking and
 * releasing the one it displaces. */
static void
hammer_hold(struct hammer *h, item_t **held, const char **held_key,
    const char *key)
{
	item_t *it;
	int slot;

	if (store_get(h->st, key, strlen(key), &it) != STORE_OK)
		return;
	h->bad += !item_ok(it, key);
	slot = rand_r(&h->seed) % HAMMER_HELD;
	if (held[slot] != NULL) {
		h->bad += !item_ok(held[slot], held_key[slot]);
		store_release(h->st, held[slot]);
	}
	held[slot] = it;
	held_key[slot] = key;
}

/* Returns a TTL: mostly none, sometimes a few seconds. */
static int64_t
hammer_ttl(struct hammer *h)
{
	return rand_r(&h->seed) % 3 == 0 ? rand_r(&h->seed) % 4 + 1 : 0;
}

/* The rare operations: flush_all, an expiry pass racing the thread, or
 * a look at the memory counter, which may never pass the limit. */
static void
hammer_rare(struct hammer *h)
{
	struct store_stats s;
	int op = rand_r(&h->seed) % 20;

	if (op == 0) {
		store_flush(h->st, rand_r(&h->seed) % 3);
	} else if (op < 10) {
		store_expire_run(h->st, 4);
	} else {
		store_get_stats(h->st, &s);
		h->bad += s.bytes > HAMMER_LIMIT;
	}
}

/* One random operation of the hammer. */
static void
hammer_op(struct hammer *h, item_t **held, const char **held_key,
    const char *key)
{
	store_t *st = h->st;
	size_t nk = strlen(key);
	char val[200];
	item_t *it;
	uint64_t v;
	int op = rand_r(&h->seed) % 100;

	atomic_fetch_add(&hammer_ops, 1);
	make_value(&h->seed, val, sizeof(val));
	if (op < 28) {
		put(st, key, val, hammer_ttl(h));
	} else if (op < 52) {
		hammer_hold(h, held, held_key, key);
	} else if (op < 61) {
		store_delete(st, key, nk);
	} else if (op < 70) {
		store_incr(st, key, nk, op % 2, (uint64_t)rand_r(&h->seed),
		    &v);
	} else if (op < 77) {
		store_touch(st, key, nk, hammer_ttl(h));
	} else if (op < 81) {
		if (store_gat(st, key, nk, hammer_ttl(h), &it) == STORE_OK) {
			h->bad += !item_ok(it, key);
			store_release(st, it);
		}
	} else if (op < 93) {
		put_mode(st, key, val, 0, 0, op % 2 ? STORE_APPEND :
		    STORE_PREPEND, 0, NULL);
	} else if (op < 97) {
		put_mode(st, key, val, 0, 0, STORE_CAS,
		    (uint64_t)rand_r(&h->seed) % 10000, NULL);
	} else if (op < 99) {
		put_mode(st, key, val, 0, hammer_ttl(h), op % 2 ? STORE_ADD :
		    STORE_REPLACE, 0, NULL);
	} else {
		hammer_rare(h);
	}
}

/* A hammer thread: random operations on shared keys. */
static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	item_t *held[HAMMER_HELD] = { 0 };
	const char *held_key[HAMMER_HELD] = { 0 };
	int i;

	for (i = 0; i < HAMMER_OPS; i++)
		hammer_op(h, held, held_key,
		    hammer_keys[rand_r(&h->seed) % HAMMER_KEYS]);
	for (i = 0; i < HAMMER_HELD; i++) {
		if (held[i] != NULL) {
			h->bad += !item_ok(held[i], held_key[i]);
			store_release(h->st, held[i]);
		}
	}
	return NULL;
}

/* Four threads on shared keys with the expiry thread: invariants hold. */
static void
test_hammer(void **state)
{
	struct store_config cfg = {
		.mem_limit = HAMMER_LIMIT, .item_size_max = 2048,
		.shards_log2 = 2, .clock = hammer_now,
	};
	struct hammer h[HAMMER_THREADS];
	pthread_t t[HAMMER_THREADS];
	struct store_stats s;
	size_t sum = 0, found = 0;
	store_t *st;
	item_t *it;
	int i;

	(void)state;
	st = store_create(&cfg);
	assert_non_null(st);
	assert_int_equal(store_expiry_start(st), 0);
	for (i = 0; i < HAMMER_THREADS; i++) {
		h[i] = (struct hammer){ .st = st, .seed = (unsigned)i + 1 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main,
		    &h[i]), 0);
	}
	for (i = 0; i < HAMMER_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(h[i].bad, 0);
	}
	store_expiry_stop(st);
	s = stats(st);
	print_message("hammer: %" PRIu64 " evictions, %" PRIu64 " reclaimed, "
	    "%" PRIu64 " items, %" PRIu64 " bytes\n", s.evictions, s.reclaimed,
	    s.curr_items, s.bytes);
	assert_true(s.bytes <= HAMMER_LIMIT);
	assert_true(s.evictions > 0);
	assert_true(s.reclaimed > 0);
	/* Every reference is back: bytes is exactly the linked items. */
	for (i = 0; i < HAMMER_KEYS; i++) {
		if (store_get(st, hammer_keys[i], strlen(hammer_keys[i]),
		    &it) != STORE_OK)
			continue;
		assert_true(item_ok(it, hammer_keys[i]));
		sum += store_alloc_cost(it);
		found++;
		store_release(st, it);
	}
	s = stats(st);
	assert_int_equal(s.bytes, sum);
	assert_int_equal(s.curr_items, found);
	store_destroy(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_item_layout),
		cmocka_unit_test(test_exptime_conversion),
		cmocka_unit_test(test_ttl_rules),
		cmocka_unit_test(test_set_expired_replaces_old),
		cmocka_unit_test(test_expired_never_returned),
		cmocka_unit_test(test_touch_and_gat),
		cmocka_unit_test(test_set_add_replace),
		cmocka_unit_test(test_append_prepend),
		cmocka_unit_test(test_cas),
		cmocka_unit_test(test_cas_unique_across_readd),
		cmocka_unit_test(test_incr_decr),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_evict_prefers_expired),
		cmocka_unit_test(test_eviction_keeps_limit),
		cmocka_unit_test(test_no_evict),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_slru_one_hit_evicted_first),
		cmocka_unit_test(test_slru_scan_resistant),
		cmocka_unit_test(test_slru_demotion),
		cmocka_unit_test(test_slru_demotion_bounded),
		cmocka_unit_test(test_slru_overwrite_keeps_segment),
		cmocka_unit_test(test_slru_evict_prefers_expired_protected),
		cmocka_unit_test(test_slru_flush_sweeps_both),
		cmocka_unit_test(test_slru_demote_frees_flushed),
		cmocka_unit_test(test_slru_expiry_both),
		cmocka_unit_test(test_ref_survives_delete_replace),
		cmocka_unit_test(test_ref_survives_eviction),
		cmocka_unit_test(test_flush_now),
		cmocka_unit_test(test_flush_delayed),
		cmocka_unit_test(test_flush_replaces_pending),
		cmocka_unit_test(test_flush_absolute),
		cmocka_unit_test(test_flush_absolute_past),
		cmocka_unit_test(test_expire_reclaims),
		cmocka_unit_test(test_expire_proportional),
		cmocka_unit_test(test_large_clock_jump),
		cmocka_unit_test(test_wheel_random),
		cmocka_unit_test(test_expiry_thread_start_stop),
		cmocka_unit_test(test_stats_reset),
		cmocka_unit_test(test_rehash),
		cmocka_unit_test(test_hammer),
	};
	int i;

	for (i = 0; i < HAMMER_KEYS; i++)
		snprintf(hammer_keys[i], sizeof(hammer_keys[i]), "hk:%d", i);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
