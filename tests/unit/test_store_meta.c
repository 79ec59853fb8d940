/*
 * test_store_meta.c -- unit tests of the store's meta operations
 * (store_mget, store_commit_meta, store_mdelete, store_marith) and of the
 * per-item meta state: stale and win bits, fetched, access time, TTL,
 * explicit CAS.  Expected behaviour is memcached 1.6.18's, observed.
 *
 * Data structure: a store per test on a fake clock (never sleeps); the
 * thread tests count winners among threads released together by a
 * barrier, no timing.  Locking: the fake clock is read under no lock and
 * only advanced while no other thread runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_clock.h"
#include "store.h"
#include "store_internal.h"

#define NTHREADS 32

/* Advances the fake clock. */
static void
tick(struct fake_clock *fc, uint32_t secs)
{
	atomic_fetch_add(&fc->now, secs);
}

/* Creates a store of 64 MB on a fake clock starting at T0. */
static store_t *
mk(struct fake_clock *fc)
{
	struct store_config cfg = {
		.mem_limit = 64u << 20,
		.shards_log2 = 2,
		.clock = fake_now,
		.clock_ctx = fc,
	};
	store_t *st;

	atomic_store(&fc->now, T0);
	st = store_create(&cfg);
	assert_non_null(st);
	return st;
}

/* Stores key = val with flags and a wire exptime through ms; the CAS. */
static uint64_t
put(store_t *st, const char *key, const char *val, uint32_t flags,
    int64_t exptime)
{
	struct store_mset_opts o = { 0 };
	uint64_t cas = 0;
	item_t *it;

	assert_int_equal(store_reserve(st, key, strlen(key), flags, exptime,
	    strlen(val), &it), STORE_OK);
	memcpy(item_value_mut(it), val, strlen(val));
	assert_int_equal(store_commit_meta(st, it, STORE_SET, &o, &cas),
	    STORE_STORED);
	return cas;
}

/* ms with options; returns the status, *cas the new CAS. */
static store_status_t
mset(store_t *st, const char *key, const char *val, store_mode_t mode,
    const struct store_mset_opts *o, uint64_t *cas)
{
	item_t *it;

	assert_int_equal(store_reserve(st, key, strlen(key), 0, 0,
	    strlen(val), &it), STORE_OK);
	memcpy(item_value_mut(it), val, strlen(val));
	return store_commit_meta(st, it, mode, o, cas);
}

/* mg with options; releases the item, keeps its CAS in *cas. */
static store_status_t
mget(store_t *st, const char *key, const struct store_mget_opts *o,
    struct store_meta_info *info, uint64_t *cas)
{
	store_status_t rc;
	item_t *it;

	rc = store_mget(st, key, strlen(key), o, &it, info);
	if (rc == STORE_OK) {
		assert_non_null(it);
		if (cas != NULL)
			*cas = item_cas(it);
		store_release(st, it);
	} else {
		assert_null(it);
	}
	return rc;
}

/* Asserts key holds val. */
static void
assert_value(store_t *st, const char *key, const char *val)
{
	item_t *it;

	assert_int_equal(store_get(st, key, strlen(key), &it), STORE_OK);
	assert_int_equal(item_nbytes(it), strlen(val));
	assert_memory_equal(item_value(it), val, strlen(val));
	store_release(st, it);
}

/* The item header stays 24 bytes with the meta state packed in. */
static void
test_header_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct item), 24);
	assert_int_equal(ITEM_REF_MASK & (ITEM_STALE | ITEM_WIN |
	    ITEM_FETCHED | ITEM_LOOSE | ITEM_ACCESSED | ITEM_LINKED |
	    ITEM_EVAC | ITEM_HAS_EXP | ITEM_HAS_FLAGS), 0);
}

/* Access time bits leave the chain pointer alone, and back. */
static void
test_link_packing(void **state)
{
	struct item a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	item_set_next(&a, &b);
	item_set_atime(&a, T0 + 70000);
	assert_ptr_equal(item_next(&a), &b);
	assert_int_equal(item_idle(&a, T0 + 70000), 0);
	assert_int_equal(item_idle(&a, T0 + 70123), 123);
	assert_int_equal(item_idle(&a, T0 + 70000 + 65535), 65535);
	item_set_next(&a, NULL);
	assert_null(item_next(&a));
	assert_int_equal(item_idle(&a, T0 + 70005), 5);
}

/* mg N on a miss creates an empty item and wins; later mg see Z. */
static void
test_mget_vivify(void **state)
{
	struct store_mget_opts o = { .vivify = true, .vivify_ttl = 30 };
	struct store_mget_opts plain = { 0 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	item_t *it;

	(void)state;
	assert_int_equal(mget(st, "k", &plain, &in, NULL), STORE_NOT_FOUND);
	assert_int_equal(store_mget(st, "k", 1, &o, &it, &in), STORE_OK);
	assert_int_equal(item_nbytes(it), 0);
	assert_int_equal(item_flags(it), 0);
	store_release(st, it);
	assert_true(in.won);
	assert_false(in.won_before);
	assert_false(in.stale);
	assert_int_equal(in.ttl, 30);
	assert_true(in.total >= sizeof(struct item) + 1);
	tick(&fc, 4);
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_OK);
	assert_false(in.won);
	assert_true(in.won_before);
	assert_int_equal(in.ttl, 26);
	assert_int_equal(mget(st, "k", &plain, &in, NULL), STORE_OK);
	assert_true(in.won_before);
	/* A new value clears the win bit. */
	put(st, "k", "v", 0, 0);
	assert_int_equal(mget(st, "k", &plain, &in, NULL), STORE_OK);
	assert_false(in.won_before);
	assert_false(in.won);
	assert_int_equal(in.ttl, -1);
	/* The placeholder expires with vivify_ttl. */
	assert_int_equal(mget(st, "e", &o, &in, NULL), STORE_OK);
	tick(&fc, 30);
	assert_int_equal(mget(st, "e", &plain, &in, NULL), STORE_NOT_FOUND);
	store_destroy(st);
}

/* h, l and t: fetched and idle are the state before the command. */
static void
test_mget_fetched_idle_ttl(void **state)
{
	struct store_mget_opts o = { 0 }, nb = { .no_bump = true };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);

	(void)state;
	put(st, "k", "abc", 5, 100);
	tick(&fc, 7);
	assert_int_equal(mget(st, "k", &nb, &in, NULL), STORE_OK);
	assert_false(in.fetched);
	assert_int_equal(in.idle, 7);	/* since the store */
	assert_int_equal(in.ttl, 93);
	/* no_bump: neither fetched nor accessed. */
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_OK);
	assert_false(in.fetched);
	assert_int_equal(in.idle, 7);
	tick(&fc, 3);
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_OK);
	assert_true(in.fetched);
	assert_int_equal(in.idle, 3);
	assert_int_equal(in.ttl, 90);
	/* get and touch are accesses too. */
	tick(&fc, 2);
	assert_value(st, "k", "abc");
	tick(&fc, 1);
	assert_int_equal(mget(st, "k", &nb, &in, NULL), STORE_OK);
	assert_int_equal(in.idle, 1);
	assert_int_equal(store_touch(st, "k", 1, 50), STORE_TOUCHED);
	tick(&fc, 4);
	assert_int_equal(mget(st, "k", &nb, &in, NULL), STORE_OK);
	assert_int_equal(in.idle, 4);
	assert_int_equal(in.ttl, 46);
	/* A new value is not fetched, idle from its store. */
	put(st, "k", "x", 0, 0);
	tick(&fc, 2);
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_OK);
	assert_false(in.fetched);
	assert_int_equal(in.idle, 2);
	assert_int_equal(in.ttl, -1);
	store_destroy(st);
}

/* T sets a new exptime after reporting the old TTL. */
static void
test_mget_touch(void **state)
{
	struct store_mget_opts o = { .touch = true, .ttl = 60 };
	struct store_mget_opts plain = { 0 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);

	(void)state;
	put(st, "k", "abc", 0, 10);
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_OK);
	assert_int_equal(in.ttl, 10);
	assert_int_equal(mget(st, "k", &plain, &in, NULL), STORE_OK);
	assert_int_equal(in.ttl, 60);
	tick(&fc, 59);
	assert_int_equal(mget(st, "k", &plain, &in, NULL), STORE_OK);
	tick(&fc, 1);
	assert_int_equal(mget(st, "k", &plain, &in, NULL), STORE_NOT_FOUND);
	store_destroy(st);
}

/* R: below recache_ttl the first caller wins, later ones Z; never for an
 * item without exptime; exactly at the threshold, no win. */
static void
test_mget_recache(void **state)
{
	struct store_mget_opts r30 = { .recache = true, .recache_ttl = 30 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);

	(void)state;
	put(st, "k", "v", 0, 40);
	put(st, "n", "v", 0, 0);
	assert_int_equal(mget(st, "n", &r30, &in, NULL), STORE_OK);
	assert_false(in.won);
	assert_int_equal(mget(st, "k", &r30, &in, NULL), STORE_OK);
	assert_false(in.won);		/* 40 left */
	tick(&fc, 10);
	assert_int_equal(mget(st, "k", &r30, &in, NULL), STORE_OK);
	assert_false(in.won);		/* 30 left: not below */
	tick(&fc, 1);
	assert_int_equal(mget(st, "k", &r30, &in, NULL), STORE_OK);
	assert_true(in.won);
	assert_false(in.won_before);
	assert_false(in.stale);
	assert_int_equal(mget(st, "k", &r30, &in, NULL), STORE_OK);
	assert_false(in.won);
	assert_true(in.won_before);
	put(st, "k", "new", 0, 20);
	assert_int_equal(mget(st, "k", &r30, &in, NULL), STORE_OK);
	assert_true(in.won);
	store_destroy(st);
}

/* md I: stale, new CAS, T, kept; one winner, then Z; a store clears. */
static void
test_mdelete_invalidate(void **state)
{
	struct store_mdelete_opts d = { .invalidate = true, .touch = true,
	    .ttl = 30 };
	struct store_mget_opts o = { 0 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	uint64_t c0, c1;

	(void)state;
	c0 = put(st, "k", "abc", 9, 100);
	/* A win handed out before the invalidation does not count. */
	put(st, "w", "x", 0, 5);
	assert_int_equal(store_mdelete(st, "k", 1, &d), STORE_DELETED);
	assert_int_equal(mget(st, "k", &o, &in, &c1), STORE_OK);
	assert_true(c1 > c0);
	assert_true(in.stale);
	assert_true(in.won);
	assert_int_equal(in.ttl, 30);
	assert_value(st, "k", "abc");
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_OK);
	assert_true(in.stale);
	assert_false(in.won);
	assert_true(in.won_before);
	/* md I again: the next caller wins again. */
	d.touch = false;
	assert_int_equal(store_mdelete(st, "k", 1, &d), STORE_DELETED);
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_OK);
	assert_true(in.won);
	assert_int_equal(in.ttl, 30);
	put(st, "k", "new", 0, 0);
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_OK);
	assert_false(in.stale);
	assert_false(in.won);
	assert_false(in.won_before);
	/* I on a missing key. */
	assert_int_equal(store_mdelete(st, "zz", 2, &d), STORE_NOT_FOUND);
	store_destroy(st);
}

/* md C compares; x empties the value and keeps flags and exptime. */
static void
test_mdelete_cas_and_x(void **state)
{
	struct store_mdelete_opts d = { .has_cas = true };
	struct store_mdelete_opts x = { .remove_value = true };
	struct store_mget_opts o = { 0 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	uint64_t c0, c1;
	item_t *it;

	(void)state;
	c0 = put(st, "k", "abc", 0, 0);
	d.cas = c0 + 1;
	assert_int_equal(store_mdelete(st, "k", 1, &d), STORE_EXISTS);
	assert_value(st, "k", "abc");
	d.cas = c0;
	assert_int_equal(store_mdelete(st, "k", 1, &d), STORE_DELETED);
	assert_int_equal(mget(st, "k", &o, &in, NULL), STORE_NOT_FOUND);
	assert_int_equal(store_mdelete(st, "k", 1, &d), STORE_NOT_FOUND);

	c0 = put(st, "x", "abcdef", 77, 50);
	assert_int_equal(store_mdelete(st, "x", 1, &x), STORE_DELETED);
	assert_int_equal(store_mget(st, "x", 1, &o, &it, &in), STORE_OK);
	assert_int_equal(item_nbytes(it), 0);
	assert_int_equal(item_flags(it), 77);
	c1 = item_cas(it);
	store_release(st, it);
	assert_true(c1 > c0);
	assert_int_equal(in.ttl, 50);
	/* Plain md removes. */
	d = (struct store_mdelete_opts){ 0 };
	assert_int_equal(store_mdelete(st, "x", 1, &d), STORE_DELETED);
	assert_int_equal(mget(st, "x", &o, &in, NULL), STORE_NOT_FOUND);
	store_destroy(st);
}

/* ms C and I: match stores, higher is EXISTS, lower with I stores as
 * stale with a new CAS; set/replace with C on a miss: NOT_FOUND. */
static void
test_mset_cas_invalidate(void **state)
{
	struct store_mset_opts o = { .has_cas = true };
	struct store_mget_opts g = { 0 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	uint64_t c0, c1 = 0, c2;

	(void)state;
	c0 = put(st, "k", "abc", 0, 0);
	o.cas = c0 + 5;
	assert_int_equal(mset(st, "k", "hi", STORE_SET, &o, NULL),
	    STORE_EXISTS);
	o.invalidate = true;
	assert_int_equal(mset(st, "k", "hi", STORE_SET, &o, NULL),
	    STORE_EXISTS);
	o.invalidate = false;
	o.cas = c0;
	assert_int_equal(mset(st, "k", "v1", STORE_SET, &o, &c1),
	    STORE_STORED);
	assert_true(c1 > c0);
	o.cas = c0;		/* older now */
	assert_int_equal(mset(st, "k", "v2", STORE_SET, &o, NULL),
	    STORE_EXISTS);
	o.invalidate = true;
	assert_int_equal(mset(st, "k", "old", STORE_SET, &o, &c2),
	    STORE_STORED);
	assert_true(c2 > c1);
	assert_int_equal(mget(st, "k", &g, &in, NULL), STORE_OK);
	assert_true(in.stale);
	assert_true(in.won);
	assert_value(st, "k", "old");
	o.invalidate = false;
	assert_int_equal(mset(st, "nx", "v", STORE_SET, &o, NULL),
	    STORE_NOT_FOUND);
	assert_int_equal(mset(st, "nx", "v", STORE_REPLACE, &o, NULL),
	    STORE_NOT_FOUND);
	/* add ignores C. */
	assert_int_equal(mset(st, "nx", "v", STORE_ADD, &o, NULL),
	    STORE_STORED);
	store_destroy(st);
}

/* ms E sets the CAS; refused values; N with append vivifies. */
static void
test_mset_explicit_cas_vivify(void **state)
{
	struct store_mset_opts o = { .has_new_cas = true, .new_cas = 12345 };
	struct store_mget_opts g = { 0 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	uint64_t cas = 0, c2;

	(void)state;
	assert_int_equal(mset(st, "k", "v", STORE_SET, &o, &cas),
	    STORE_STORED);
	assert_int_equal(cas, 12345);
	assert_int_equal(mget(st, "k", &g, &in, &cas), STORE_OK);
	assert_int_equal(cas, 12345);
	/* The shard's counter moved past it. */
	c2 = put(st, "k", "w", 0, 0);
	assert_true(c2 > 12345);
	o.new_cas = STORE_CAS_MAX + 1;
	assert_int_equal(mset(st, "k", "z", STORE_SET, &o, NULL),
	    STORE_NOT_STORED);
	o.new_cas = 0;
	assert_int_equal(mset(st, "k", "z", STORE_SET, &o, NULL),
	    STORE_NOT_STORED);
	assert_value(st, "k", "w");
	/* Append: a miss is NOT_STORED, with N it stores the data. */
	o = (struct store_mset_opts){ 0 };
	assert_int_equal(mset(st, "a", "xy", STORE_APPEND, &o, NULL),
	    STORE_NOT_STORED);
	o.vivify = true;
	o.vivify_ttl = 20;
	assert_int_equal(mset(st, "a", "xy", STORE_APPEND, &o, NULL),
	    STORE_STORED);
	assert_int_equal(mget(st, "a", &g, &in, NULL), STORE_OK);
	assert_int_equal(in.ttl, 20);
	assert_int_equal(mset(st, "a", "<", STORE_PREPEND, &o, &cas),
	    STORE_STORED);
	assert_value(st, "a", "<xy");
	/* Append with C: a different CAS is EXISTS. */
	o.has_cas = true;
	o.cas = cas + 1;
	assert_int_equal(mset(st, "a", "!", STORE_APPEND, &o, NULL),
	    STORE_EXISTS);
	o.cas = cas;
	assert_int_equal(mset(st, "a", "!", STORE_APPEND, &o, NULL),
	    STORE_STORED);
	assert_value(st, "a", "<xy!");
	store_destroy(st);
}

/* An E at or below a flush's watermark is taken at once: the shard's
 * flushed items are reaped on the spot (they used to be refused with
 * NOT_STORED until the expiry thread came by), and the item stays
 * readable until a later flush covers it. */
static void
test_explicit_cas_after_flush(void **state)
{
	struct store_mset_opts o = { .has_new_cas = true, .new_cas = 1 };
	struct store_mget_opts g = { 0 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	struct store_stats ss;
	uint64_t cas = 0;
	int i;
	char k[16];

	(void)state;
	/* f0 and another key of its shard, both flushed and not reaped. */
	put(st, "f0", "v", 0, 0);
	for (i = 1;; i++) {
		snprintf(k, sizeof(k), "f%d", i);
		if (store_key_shard(st, k, strlen(k)) ==
		    store_key_shard(st, "f0", 2))
			break;
	}
	put(st, k, "v", 0, 0);
	store_flush(st, 0);
	assert_int_equal(mset(st, "f0", "v", STORE_SET, &o, &cas),
	    STORE_STORED);
	assert_int_equal(cas, 1);
	assert_int_equal(mget(st, "f0", &g, &in, &cas), STORE_OK);
	assert_int_equal(cas, 1);
	assert_int_equal(mget(st, k, &g, &in, NULL), STORE_NOT_FOUND);
	store_get_stats(st, &ss);
	assert_int_equal(ss.curr_items, 1);
	/* A later flush covers it. */
	store_flush(st, 0);
	assert_int_equal(mget(st, "f0", &g, &in, NULL), STORE_NOT_FOUND);
	store_destroy(st);
}

/* A flush of a shard that held nothing leaves no watermark behind: an
 * item given a low explicit CAS afterwards is stored and stays readable
 * (it was answered STORED, then read as flushed). */
static void
test_explicit_cas_after_empty_flush(void **state)
{
	struct store_mset_opts o = { .has_new_cas = true, .new_cas = 1 };
	struct store_mget_opts g = { 0 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	uint64_t cas = 0;
	char k[16];
	int i;

	(void)state;
	/* Raise the CAS counter of every shard, then empty the store. */
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "w%d", i);
		put(st, k, "v", 0, 0);
		assert_int_equal(store_delete(st, k, strlen(k)),
		    STORE_DELETED);
	}
	store_flush(st, 0);
	assert_int_equal(mset(st, "e0", "v", STORE_SET, &o, &cas),
	    STORE_STORED);
	assert_int_equal(mget(st, "e0", &g, &in, &cas), STORE_OK);
	assert_int_equal(cas, 1);
	store_destroy(st);
}

/* ma: C, N with J (returns J), T, E, non-numeric, the item handed out. */
static void
test_marith(void **state)
{
	struct store_marith_opts o = { .incr = true, .delta = 1 };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	uint64_t v = 0, c0;
	item_t *it;

	(void)state;
	assert_int_equal(store_marith(st, "n", 1, &o, &v, &it, &in),
	    STORE_NOT_FOUND);
	assert_null(it);
	o.vivify = true;
	o.vivify_ttl = 0;
	o.initial = 13;
	assert_int_equal(store_marith(st, "n", 1, &o, &v, &it, &in),
	    STORE_OK);
	assert_int_equal(v, 13);
	assert_int_equal(item_nbytes(it), 2);
	assert_memory_equal(item_value(it), "13", 2);
	assert_int_equal(in.ttl, -1);
	c0 = item_cas(it);
	store_release(st, it);
	assert_int_equal(store_marith(st, "n", 1, &o, &v, &it, &in),
	    STORE_OK);
	assert_int_equal(v, 14);
	assert_true(item_cas(it) > c0);
	c0 = item_cas(it);
	store_release(st, it);
	/* Decr with vivify on a miss returns J too. */
	o.incr = false;
	o.delta = 5;
	o.vivify_ttl = 30;
	assert_int_equal(store_marith(st, "d", 1, &o, &v, &it, &in),
	    STORE_OK);
	assert_int_equal(v, 13);
	assert_int_equal(in.ttl, 30);
	store_release(st, it);
	/* C: mismatch before the number is read. */
	o.has_cas = true;
	o.cas = c0 + 100;
	o.vivify = false;
	assert_int_equal(store_marith(st, "n", 1, &o, &v, &it, &in),
	    STORE_EXISTS);
	put(st, "s", "ab", 0, 0);
	assert_int_equal(store_marith(st, "s", 1, &o, &v, &it, &in),
	    STORE_EXISTS);
	o.has_cas = false;
	assert_int_equal(store_marith(st, "s", 1, &o, &v, &it, &in),
	    STORE_NON_NUMERIC);
	o.has_cas = true;
	o.cas = c0;
	o.touch = true;
	o.ttl = 9;
	o.has_new_cas = true;
	o.new_cas = 999999;
	assert_int_equal(store_marith(st, "n", 1, &o, &v, &it, &in),
	    STORE_OK);
	assert_int_equal(v, 9);
	assert_int_equal(in.ttl, 9);
	assert_int_equal(item_cas(it), 999999);
	store_release(st, it);
	tick(&fc, 9);
	assert_int_equal(store_get(st, "n", 1, &it), STORE_NOT_FOUND);
	store_destroy(st);
}

/* me-style lookups with no_bump leave fetched and idle alone; total is
 * the item's memory cost. */
static void
test_total(void **state)
{
	struct store_mget_opts nb = { .no_bump = true };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);
	char *big = malloc(100000);

	(void)state;
	put(st, "k", "abc", 0, 0);
	assert_int_equal(mget(st, "k", &nb, &in, NULL), STORE_OK);
	assert_int_equal(in.total, ITEM_SIZE(1, 3));
	memset(big, 'a', 99999);
	big[99999] = '\0';
	put(st, "b", big, 0, 0);
	assert_int_equal(mget(st, "b", &nb, &in, NULL), STORE_OK);
	assert_true(in.total >= sizeof(struct item) + 1 + 99999);
	free(big);
	store_destroy(st);
}

/* A peek (me) at a stale item takes no recache token: the next mg still
 * wins it (me used to take the token, so no client recached). */
static void
test_peek_takes_no_token(void **state)
{
	struct store_mget_opts peek = { .no_bump = true, .peek = true };
	struct store_mget_opts g = { 0 };
	struct store_mdelete_opts inval = { .invalidate = true };
	struct store_meta_info in;
	struct fake_clock fc;
	store_t *st = mk(&fc);

	(void)state;
	put(st, "k", "abc", 0, 0);
	assert_int_equal(store_mdelete(st, "k", 1, &inval), STORE_DELETED);
	assert_int_equal(mget(st, "k", &peek, &in, NULL), STORE_OK);
	assert_true(in.stale && !in.won && !in.won_before);
	assert_int_equal(mget(st, "k", &g, &in, NULL), STORE_OK);
	assert_true(in.stale && in.won && !in.won_before);
	assert_int_equal(mget(st, "k", &g, &in, NULL), STORE_OK);
	assert_true(in.won_before && !in.won);
	store_destroy(st);
}

/* ---- concurrency: exactly one winner --------------------------------- */

struct race {
	store_t			*st;
	pthread_barrier_t	 go;
	_Atomic unsigned	 won, won_before, hits;
};

/* One racer: mg N30 on the shared key; counts the outcome. */
static void *
racer(void *arg)
{
	struct store_mget_opts o = { .vivify = true, .vivify_ttl = 30 };
	struct store_meta_info in;
	struct race *r = arg;
	item_t *it;

	pthread_barrier_wait(&r->go);
	if (store_mget(r->st, "hot", 3, &o, &it, &in) == STORE_OK) {
		atomic_fetch_add(&r->hits, 1);
		atomic_fetch_add(&r->won, in.won);
		atomic_fetch_add(&r->won_before, in.won_before);
		store_release(r->st, it);
	}
	return NULL;
}

/* Runs NTHREADS racers at once and returns the winners. */
static unsigned
race_once(struct race *r)
{
	pthread_t t[NTHREADS];
	int i;

	atomic_store(&r->won, 0);
	atomic_store(&r->won_before, 0);
	atomic_store(&r->hits, 0);
	pthread_barrier_init(&r->go, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, racer, r), 0);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&r->go);
	assert_int_equal(atomic_load(&r->hits), NTHREADS);
	assert_int_equal(atomic_load(&r->won) + atomic_load(&r->won_before),
	    NTHREADS);
	return atomic_load(&r->won);
}

/* 32 threads mg N30 a missing key: one wins; after md I, one again. */
static void
test_race_one_winner(void **state)
{
	struct store_mdelete_opts d = { .invalidate = true };
	struct fake_clock fc;
	struct race r = { .st = mk(&fc) };
	int round;

	(void)state;
	for (round = 0; round < 20; round++) {
		assert_int_equal(race_once(&r), 1);
		assert_int_equal(store_mdelete(r.st, "hot", 3, &d),
		    STORE_DELETED);
		assert_int_equal(race_once(&r), 1);
		assert_int_equal(store_delete(r.st, "hot", 3), STORE_DELETED);
	}
	store_destroy(r.st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_layout),
		cmocka_unit_test(test_link_packing),
		cmocka_unit_test(test_mget_vivify),
		cmocka_unit_test(test_mget_fetched_idle_ttl),
		cmocka_unit_test(test_mget_touch),
		cmocka_unit_test(test_mget_recache),
		cmocka_unit_test(test_mdelete_invalidate),
		cmocka_unit_test(test_mdelete_cas_and_x),
		cmocka_unit_test(test_mset_cas_invalidate),
		cmocka_unit_test(test_mset_explicit_cas_vivify),
		cmocka_unit_test(test_explicit_cas_after_flush),
		cmocka_unit_test(test_explicit_cas_after_empty_flush),
		cmocka_unit_test(test_peek_takes_no_token),
		cmocka_unit_test(test_marith),
		cmocka_unit_test(test_total),
		cmocka_unit_test(test_race_one_winner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
