/*
 * test_store.c -- cmocka unit tests of store/: command semantics, TTL,
 * flush_all, eviction under the memory limit (FIFO over log-structured
 * segments with a second chance for items hit since stored), compaction
 * under no_evict and of segments left mostly dead by overwrites, large
 * "loose" items, references that keep an item's
 * memory, expiry by segment (with a fake clock, never sleeping),
 * incremental rehash and a multi-threaded hammer, on a shared fast clock,
 * that checks invariants.
 *
 * The tests include store_internal.h for white-box checks: the item
 * layout and ITEM_SIZE, the pool's segment size and free list, the work
 * counters that show expiry costs what is due and eviction moves what was
 * hit, and the items in the segments themselves, looked at (peek) without
 * counting a hit as store_get would.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_clock.h"
#include "store.h"
#include "store_internal.h"

#define DAY	86400u
#define KB	1024u
/* 32 segments of the smallest size, 4 KiB: the eviction tests' limit. */
#define SMALL_LIMIT	(128 * KB)
/* The eviction tests' value: ITEM_SIZE(7, 100) is 136, 29 a segment. */
#define VLEN	100

/* Creates a store on a fake clock starting at T0; large_pages is -L. */
static store_t *
mk_store_lp(struct fake_clock *fc, size_t limit, unsigned shards_log2,
    bool no_evict, bool large_pages)
{
	struct store_config cfg = {
		.mem_limit = limit,
		.item_size_max = 1024 * KB,
		.shards_log2 = shards_log2,
		.no_evict = no_evict,
		.large_pages = large_pages,
		.clock = fake_now,
		.clock_ctx = fc,
	};
	store_t *st;

	fc->now = T0;
	st = store_create(&cfg);
	assert_non_null(st);
	return st;
}

/* The same in small pages. */
static store_t *
mk_store(struct fake_clock *fc, size_t limit, unsigned shards_log2,
    bool no_evict)
{
	return mk_store_lp(fc, limit, shards_log2, no_evict, false);
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
	return store_commit(st, it, mode, cas, cas_out);
}

/* Sets a string value. */
static store_status_t
put(store_t *st, const char *key, const char *val, int64_t exptime)
{
	return put_mode(st, key, val, 0, exptime, STORE_SET, 0, NULL);
}

/* Asserts a key holds exactly val (a get: counts a hit). */
static void
check_value(store_t *st, const char *key, const char *val)
{
	item_t *it;

	assert_int_equal(store_get(st, key, strlen(key), &it), STORE_OK);
	assert_int_equal(item_nkey(it), strlen(key));
	assert_memory_equal(item_key(it), key, strlen(key));
	assert_int_equal(item_nbytes(it), strlen(val));
	assert_memory_equal(item_value(it), val, strlen(val));
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

/* Returns the work counters. */
static struct store_debug
debug(store_t *st)
{
	struct store_debug d;

	store_debug_get(st, &d);
	return d;
}

/* Returns the bytes a key with this value takes (what `bytes` counts). */
static size_t
isize(const char *key, const char *val)
{
	return ITEM_SIZE(strlen(key), strlen(val));
}

/* Runs expiry until a run looks at no item; returns items freed. */
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

/* Returns an item's ref word: refcount and flag bits. */
static uint32_t
ref_word(const item_t *it)
{
	return atomic_load_explicit(&it->ref, memory_order_relaxed);
}

/* Looks for a linked item with key among the items carved in one segment
 * (or its one loose item) and records it in *found; a second linked copy
 * of the key fails the test. */
static void
seg_find(const struct seg *s, const char *key, item_t **found)
{
	size_t nkey = strlen(key);
	const char *p;
	item_t *it;

	for (p = s->mem; p < s->mem + s->used;
	    p += item_size(it)) {
		it = (item_t *)(uintptr_t)p;
		if (!(ref_word(it) & ITEM_LINKED) || item_nkey(it) != nkey ||
		    memcmp(item_key(it), key, nkey) != 0)
			continue;
		if (*found != NULL)
			fail_msg("key %s linked twice", key);
		*found = it;
	}
}

/*
 * Returns the linked item of a key, or NULL, without counting a hit (a
 * store_get would, and so give the item a second chance): walks the
 * sealed segments in FIFO order and the arenas' active ones.  Expired and
 * flushed items not yet unlinked count as linked.  Single-threaded use.
 */
static item_t *
peek(store_t *st, const char *key)
{
	struct pool *p = store_debug_pool(st);
	item_t *found = NULL;
	const struct seg *s;
	int a, b;

	for (s = p->head; s != NULL; s = s->next)
		seg_find(s, key, &found);
	for (a = 0; a < NARENAS; a++)
		for (b = 0; b < NTTL; b++)
			if (p->arena[a].active[b] != NULL)
				seg_find(p->arena[a].active[b], key, &found);
	return found;
}

/* True if a key is linked (peek: no hit counted). */
static bool
present(store_t *st, const char *key)
{
	return peek(st, key) != NULL;
}

/* Writes key c%06d: 7 bytes, so all items with the same value length
 * have the same size. */
static const char *
key7(char *buf, char c, int i)
{
	snprintf(buf, 16, "%c%06d", c, i);
	return buf;
}

/* Sets key c%06d to a value of VLEN bytes of v. */
static void
set7(store_t *st, char c, int i, char v, int64_t exptime)
{
	char key[16], val[VLEN + 1];

	memset(val, v, VLEN);
	val[VLEN] = '\0';
	assert_int_equal(put(st, key7(key, c, i), val, exptime),
	    STORE_STORED);
}

/* Returns how many items of this key and value length, with neither
 * exptime nor flags, a segment holds (under no_evict every item has both
 * fields). */
static size_t
per_seg(store_t *st, size_t nkey, size_t nbytes)
{
	struct pool *p = store_debug_pool(st);

	return (p->seg_size - SEG_HDR) /
	    ITEM_SIZE_X(nkey, nbytes, p->full_hdr ? 8 : 0);
}

/* Returns the most items of this size the limit can hold: every one of
 * its segments full. */
static size_t
capacity(store_t *st, size_t nkey, size_t nbytes)
{
	struct pool *p = store_debug_pool(st);

	return p->limit / p->seg_size * per_seg(st, nkey, nbytes);
}

/* Asserts memory and item accounting after an operation: mem_bytes
 * within the limit and at least bytes. */
static void
check_mem(store_t *st)
{
	struct store_stats s = stats(st);

	assert_true(s.mem_bytes <= s.limit_maxbytes);
	assert_true(s.bytes <= s.mem_bytes);
}

/* ---- layout and accounting ------------------------------------------ */

/* The header is 24 bytes with key and value right behind it (no "\r\n"),
 * bytes is the sum of ITEM_SIZE over linked items, and mem_bytes counts
 * whole segments plus what a loose item's own allocation costs.  An
 * exptime and flags that are not 0 take 4 bytes each between header and
 * key; a loose item always has both. */
static void
test_item_layout(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 1024 * KB, 0, false);
	struct pool *p = store_debug_pool(st);
	char key[16], val[301], *big;
	size_t sum = 0, nb, mem;
	item_t *it;
	int i;

	(void)state;
	assert_int_equal(sizeof(struct item), 24);
	assert_int_equal(ITEM_SIZE(10, 100), 136);
	assert_int_equal(ITEM_SIZE(11, 100), 136);
	assert_int_equal(ITEM_SIZE(1, 0), 32);
	assert_int_equal(ITEM_SIZE(0, 0), 24);
	assert_int_equal(ITEM_SIZE_X(10, 100, ITEM_EXT(0, 5)), 144);
	assert_int_equal(ITEM_SIZE_X(10, 100, ITEM_EXT(7, 5)), 144);
	assert_int_equal(ITEM_SIZE_X(4, 100, ITEM_EXT(7, 0)), 136);
	assert_int_equal(ITEM_SIZE_UP(4, 100), 136);
	/* 1 MB: the biggest power of two that fits 32 times. */
	assert_int_equal(p->seg_size, 32 * KB);
	assert_true(p->small_max <= (p->seg_size - SEG_HDR) / 4);
	memset(val, 'v', 300);
	val[100] = '\0';
	assert_int_equal(put(st, "0123456789", val, 0), STORE_STORED);
	it = peek(st, "0123456789");
	assert_non_null(it);
	assert_ptr_equal(item_key(it), (const char *)it + 24);
	assert_ptr_equal(item_value(it), item_key(it) + 10);
	assert_int_equal((uintptr_t)it % 8, 0);
	assert_false(ref_word(it) & (ITEM_LOOSE | ITEM_HAS_EXP |
	    ITEM_HAS_FLAGS));
	assert_int_equal(item_flags(it), 0);
	assert_int_equal(item_exptime(it), 0);
	assert_int_equal(stats(st).bytes, 136);
	assert_int_equal(stats(st).curr_items, 1);
	assert_true(stats(st).hash_bytes > 0);
	/* One segment; the reservation the value was read into is gone. */
	assert_int_equal(stats(st).mem_bytes, p->seg_size);
	print_message("item header %zu bytes; 10-byte key + 100-byte value "
	    "takes %zu bytes\n", sizeof(struct item), ITEM_SIZE(10, 100));
	/* Every length from 0 to 299: exact sums, whole segments. */
	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "s%d", i);
		val[i] = '\0';
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
		val[i] = 'v';
		sum += ITEM_SIZE(strlen(key), (size_t)i);
		assert_int_equal(stats(st).bytes, 136 + sum);
		assert_int_equal(stats(st).mem_bytes % p->seg_size, 0);
		check_mem(st);
	}
	assert_true(stats(st).mem_bytes >= 2 * p->seg_size);
	/* The largest carved item, then one byte more: loose. */
	nb = p->small_max - sizeof(struct item) - 8 - 3;
	assert_int_equal(ITEM_SIZE_UP(3, nb), p->small_max);
	big = malloc(nb + 2);
	assert_non_null(big);
	memset(big, 'b', nb + 1);
	big[nb] = '\0';
	assert_int_equal(put(st, "top", big, 0), STORE_STORED);
	assert_false(ref_word(peek(st, "top")) & ITEM_LOOSE);
	assert_int_equal(stats(st).mem_bytes % p->seg_size, 0);
	sum += ITEM_SIZE(3, nb);
	mem = stats(st).mem_bytes;
	big[nb] = 'b';
	big[nb + 1] = '\0';
	assert_int_equal(put(st, "big", big, 0), STORE_STORED);
	it = peek(st, "big");
	assert_non_null(it);
	assert_true(ref_word(it) & ITEM_LOOSE);
	assert_true(ref_word(it) & ITEM_HAS_EXP);
	assert_true(ref_word(it) & ITEM_HAS_FLAGS);
	assert_ptr_equal(item_value(it), (const char *)it + 32 + 3);
	assert_int_equal(stats(st).bytes, 136 + sum + ITEM_SIZE_UP(3, nb + 1));
	/* Its own allocation: a segment header, the item, malloc's due. */
	assert_true(stats(st).mem_bytes >= mem + SEG_HDR + 32 + 3 + nb + 1);
	assert_true(stats(st).mem_bytes <= mem + SEG_HDR + 32 + 3 + nb + 64);
	check_value(st, "big", big);
	assert_int_equal(store_delete(st, "big", 3), STORE_DELETED);
	assert_int_equal(stats(st).mem_bytes, mem);
	assert_int_equal(stats(st).bytes, 136 + sum);
	/* Deleted small items stay in their segments until evacuated. */
	assert_int_equal(store_delete(st, "top", 3), STORE_DELETED);
	assert_int_equal(store_delete(st, "0123456789", 10), STORE_DELETED);
	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "s%d", i);
		assert_int_equal(store_delete(st, key, strlen(key)),
		    STORE_DELETED);
	}
	assert_int_equal(stats(st).bytes, 0);
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).mem_bytes, mem);
	free(big);
	store_destroy(st);
}

/* Checks a linked key's optional-field bits, exptime, flags and value;
 * returns the item. */
static item_t *
check_fields(store_t *st, const char *key, uint32_t bits, uint32_t exptime,
    uint32_t flags, const char *val)
{
	item_t *it = peek(st, key);

	assert_non_null(it);
	assert_int_equal(ref_word(it) & (ITEM_HAS_EXP | ITEM_HAS_FLAGS),
	    bits);
	assert_int_equal(item_exptime(it), exptime);
	assert_int_equal(item_flags(it), flags);
	assert_ptr_equal(item_key(it), (const char *)it + 24 +
	    ((bits & ITEM_HAS_EXP) ? 4 : 0) +
	    ((bits & ITEM_HAS_FLAGS) ? 4 : 0));
	assert_memory_equal(item_key(it), key, strlen(key));
	assert_int_equal(item_nbytes(it), strlen(val));
	assert_memory_equal(item_value(it), val, strlen(val));
	return it;
}

/*
 * An item has an exptime field and a flags field only where they are not
 * 0.  An exptime set later on an item without the field (touch, gat)
 * moves it to a copy that has one, with its CAS, access time and bits; on
 * one with the field, or to 0, it changes in place.  The byte count
 * follows the sizes.
 */
static void
test_item_optional_fields(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 1024 * KB, 0, false);
	uint64_t cas, cas2, bytes;
	item_t *it, *n, *got;
	const char *v;

	(void)state;
	assert_int_equal(put_mode(st, "plain", "abc", 0, 0, STORE_SET, 0,
	    NULL), STORE_STORED);
	assert_int_equal(put_mode(st, "fl", "abc", 7, 0, STORE_SET, 0, NULL),
	    STORE_STORED);
	assert_int_equal(put_mode(st, "ex", "abc", 0, 100, STORE_SET, 0,
	    NULL), STORE_STORED);
	assert_int_equal(put_mode(st, "both", "abc", 9, 100, STORE_SET, 0,
	    NULL), STORE_STORED);
	check_fields(st, "plain", 0, 0, 0, "abc");
	check_fields(st, "fl", ITEM_HAS_FLAGS, 0, 7, "abc");
	check_fields(st, "ex", ITEM_HAS_EXP, T0 + 100, 0, "abc");
	check_fields(st, "both", ITEM_HAS_EXP | ITEM_HAS_FLAGS, T0 + 100, 9,
	    "abc");
	/* The direct reservation (the server's path) is carved the same. */
	assert_int_equal(store_reserve_direct(st, "dx", 2, 0, 100, 1, &it),
	    STORE_OK);
	memcpy(item_value_mut(it), "d", 1);
	assert_int_equal(store_commit(st, it, STORE_SET, 0, NULL),
	    STORE_STORED);
	check_fields(st, "dx", ITEM_HAS_EXP, T0 + 100, 0, "d");
	bytes = ITEM_SIZE(5, 3) + ITEM_SIZE_X(2, 3, 4) +
	    ITEM_SIZE_X(2, 3, 4) + ITEM_SIZE_X(4, 3, 8) +
	    ITEM_SIZE_X(2, 1, 4);
	assert_int_equal(stats(st).bytes, bytes);

	/* A touch of an item without the field: a copy, the same CAS, its
	 * hit bits kept. */
	assert_int_equal(store_get(st, "plain", 5, &got), STORE_OK);
	cas = item_cas(got);
	store_release(st, got);
	it = peek(st, "plain");
	atomic_store(&fc.now, T0 + 5);
	assert_int_equal(store_touch(st, "plain", 5, 50), STORE_TOUCHED);
	n = check_fields(st, "plain", ITEM_HAS_EXP, T0 + 55, 0, "abc");
	assert_ptr_not_equal(n, it);
	assert_int_equal(item_cas(n), cas);
	assert_true(ref_word(n) & ITEM_FETCHED);
	assert_true(ref_word(n) & ITEM_ACCESSED);
	assert_false(ref_word(it) & ITEM_LINKED);
	assert_int_equal(item_idle(n, T0 + 5), 0);
	bytes += ITEM_SIZE_X(5, 3, 4) - ITEM_SIZE(5, 3);
	assert_int_equal(stats(st).bytes, bytes);
	assert_int_equal(stats(st).curr_items, 5);
	assert_int_equal(stats(st).evictions, 0);
	/* With the field: in place, to 0 too, the field kept. */
	assert_int_equal(store_touch(st, "plain", 5, 0), STORE_TOUCHED);
	assert_ptr_equal(check_fields(st, "plain", ITEM_HAS_EXP, 0, 0, "abc"),
	    n);
	it = peek(st, "ex");
	assert_int_equal(store_touch(st, "ex", 2, 10), STORE_TOUCHED);
	assert_ptr_equal(check_fields(st, "ex", ITEM_HAS_EXP, T0 + 15, 0,
	    "abc"), it);
	/* To 0 on an item without the field: nothing to write. */
	it = peek(st, "fl");
	assert_int_equal(store_touch(st, "fl", 2, 0), STORE_TOUCHED);
	assert_ptr_equal(check_fields(st, "fl", ITEM_HAS_FLAGS, 0, 7, "abc"),
	    it);
	/* gat hands out the item it found; the copy is what stays. */
	assert_int_equal(store_gat(st, "fl", 2, 30, &got), STORE_OK);
	assert_ptr_equal(got, it);
	v = item_value(got);
	assert_memory_equal(v, "abc", 3);
	assert_int_equal(item_flags(got), 7);
	store_release(st, got);
	n = check_fields(st, "fl", ITEM_HAS_EXP | ITEM_HAS_FLAGS, T0 + 35, 7,
	    "abc");
	assert_ptr_not_equal(n, it);
	cas2 = item_cas(n);
	/* A touch into the past removes it. */
	assert_int_equal(store_touch(st, "fl", 2, -1), STORE_TOUCHED);
	assert_null(peek(st, "fl"));
	assert_int_not_equal(cas2, 0);
	/* An exptime in the field expires the item as always. */
	atomic_store(&fc.now, T0 + 15);
	check_missing(st, "ex");
	assert_int_equal(store_touch(st, "ex", 2, 10), STORE_NOT_FOUND);
	check_value(st, "plain", "abc");
	store_destroy(st);
}

/* A touch or gat into the past removes a loose item (a malloc of its
 * own at this size, freed with the table's reference) and touches it no
 * more: ASan's check. */
static void
test_touch_past_loose(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 1024 * KB, 0, false);
	char big[10001];
	item_t *it;

	(void)state;
	memset(big, 'b', 10000);
	big[10000] = '\0';
	assert_true(10000 < STORE_LARGE_ALLOC);
	assert_int_equal(put(st, "big", big, 0), STORE_STORED);
	assert_true(ref_word(peek(st, "big")) & ITEM_LOOSE);
	assert_int_equal(store_touch(st, "big", 3, -1), STORE_TOUCHED);
	check_missing(st, "big");
	assert_int_equal(put(st, "big", big, 0), STORE_STORED);
	assert_int_equal(store_gat(st, "big", 3, -1, &it), STORE_OK);
	assert_int_equal(item_nbytes(it), 10000);
	store_release(st, it);
	check_missing(st, "big");
	assert_int_equal(stats(st).curr_items, 0);
	store_destroy(st);
}

/* Under no_evict every item has both fields, so a touch or an overwrite
 * in place never needs a copy. */
static void
test_item_fields_no_evict(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 1024 * KB, 0, true);
	item_t *it;

	(void)state;
	assert_int_equal(put(st, "k", "abc", 0), STORE_STORED);
	it = check_fields(st, "k", ITEM_HAS_EXP | ITEM_HAS_FLAGS, 0, 0,
	    "abc");
	assert_int_equal(stats(st).bytes, ITEM_SIZE_UP(1, 3));
	assert_int_equal(store_touch(st, "k", 1, 100), STORE_TOUCHED);
	assert_ptr_equal(check_fields(st, "k", ITEM_HAS_EXP | ITEM_HAS_FLAGS,
	    T0 + 100, 0, "abc"), it);
	store_destroy(st);
}

/*
 * Touches of items without an exptime field in a full cache: each copy
 * takes room, made as a set makes it (the oldest segment evicted, each
 * eviction told to the evicted hook).  Every touched key keeps its value
 * and gets its new exptime, and the memory stays within the limit.
 */
static int retime_evicted;

static void
count_evicted(void *ctx, const struct store_evicted *e)
{
	(void)ctx;
	assert_int_equal(e->ttl, -1);	/* none touched */
	retime_evicted++;
}

static void
test_retime_no_room(void **state)
{
	enum { N = 2000 };
	struct fake_clock fc;
	struct store_config cfg = {
		.mem_limit = SMALL_LIMIT, .item_size_max = 1024 * KB,
		.clock = fake_now, .clock_ctx = &fc,
		.evicted = count_evicted,
	};
	struct store_stats s0, s;
	char key[16];
	store_t *st;
	int i, gone;
	item_t *it;

	(void)state;
	fc.now = T0;
	st = store_create(&cfg);
	assert_non_null(st);
	for (i = 0; i < N; i++)
		set7(st, 'k', i, 'v', 0);
	s0 = stats(st);
	assert_true(s0.evictions > 0);
	retime_evicted = 0;
	/* Touch the newest keys, which are all still there. */
	for (i = N - 1; i >= N - 200; i--) {
		key7(key, 'k', i);
		assert_int_equal(store_touch(st, key, 7, 1000), STORE_TOUCHED);
		check_mem(st);
	}
	for (i = N - 1; i >= N - 200; i--) {
		it = peek(st, key7(key, 'k', i));
		assert_non_null(it);
		assert_int_equal(item_exptime(it), T0 + 1000);
		assert_int_equal(item_nbytes(it), VLEN);
		assert_memory_equal(item_value(it), "vvvv", 4);
	}
	s = stats(st);
	gone = (int)(s.evictions - s0.evictions);
	print_message("200 touches in a full cache evicted %d other items\n",
	    gone);
	assert_true(gone > 0);
	assert_int_equal(retime_evicted, gone);
	assert_int_equal(s.curr_items, s0.curr_items - (uint64_t)gone);
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
	assert_memory_equal(item_value(it), "v", 1);
	assert_int_equal(item_cas(it), cas);	/* touch keeps the CAS */
	store_release(st, it);
	fc.now = T0 + 5000;
	check_value(st, "k", "v");
	/* gat into the past: returned this once, then gone. */
	assert_int_equal(store_gat(st, "k", 1, -1, &it), STORE_OK);
	assert_memory_equal(item_value(it), "v", 1);
	check_missing(st, "k");
	assert_memory_equal(item_value(it), "v", 1);
	store_release(st, it);
	assert_int_equal(stats(st).bytes, 0);
	store_destroy(st);
}

/* ---- storage commands ---------------------------------------------- */

/* set, add and replace against present and absent keys. */
/* store_get_with's visitor: records what it saw, and the item's refcount
 * while the store shows it (only the table's: none is taken for it). */
struct visit_rec {
	unsigned	 calls;
	char		 val[64];
	size_t		 n;
	uint32_t	 refs;
	bool		 fetched;
};

static void
visit_rec(void *ctx, item_t *it)
{
	struct visit_rec *v = ctx;

	v->calls++;
	v->n = item_nbytes(it);
	assert_true(v->n < sizeof v->val);
	memcpy(v->val, item_value(it), v->n);
	v->refs = ref_word(it) & ITEM_REF_MASK;
	v->fetched = (ref_word(it) & ITEM_FETCHED) != 0;
}

/* A get by visit sees what store_get sees, takes no reference, marks the
 * item fetched, and skips expired items; prefetch hints, given while
 * tables grow and are swapped (their hint then names a freed array), and
 * for keys never stored, change nothing. */
static void
test_get_with_and_prefetch(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * 1024 * KB, 1, false);
	struct visit_rec v = { 0 };
	char key[32], val[32];
	uint64_t hv;
	int i, j;

	(void)state;
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(val, sizeof val, "v%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
		for (j = i; j > i - 4 && j >= 0; j--) {
			snprintf(key, sizeof key, "k%d", j * 7 % (i + 1));
			hv = store_key_hash(st, key, strlen(key));
			store_prefetch(st, hv, false);
			store_prefetch(st, hv, true);
		}
		store_prefetch(st, store_key_hash(st, "never", 5), true);
	}
	for (i = 0; i < 20000; i += 97) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(val, sizeof val, "v%d", i);
		memset(&v, 0, sizeof v);
		assert_int_equal(store_get_with(st, key, strlen(key),
		    store_key_hash(st, key, strlen(key)), visit_rec, &v),
		    STORE_OK);
		assert_int_equal(v.calls, 1);
		assert_int_equal(v.n, strlen(val));
		assert_memory_equal(v.val, val, v.n);
		assert_int_equal(v.refs, 1);	/* the table's own */
		assert_true(v.fetched);
	}
	memset(&v, 0, sizeof v);
	assert_int_equal(store_get_with(st, "never", 5,
	    store_key_hash(st, "never", 5), visit_rec, &v), STORE_NOT_FOUND);
	assert_int_equal(v.calls, 0);
	assert_int_equal(put(st, "short", "x", 5), STORE_STORED);
	fc.now += 5;
	assert_int_equal(store_get_with(st, "short", 5,
	    store_key_hash(st, "short", 5), visit_rec, &v), STORE_NOT_FOUND);
	assert_int_equal(v.calls, 0);
	store_destroy(st);
}

/* Gets key by visit into v; the status. */
static store_status_t
get_visit(store_t *st, const char *key, struct visit_rec *v)
{
	memset(v, 0, sizeof(*v));
	return store_get_with(st, key, strlen(key), store_key_hash(st, key,
	    strlen(key)), visit_rec, v);
}

/* Gets key by visit: found with value val, and whether the get was
 * answered without the shard lock. */
static bool
get_visit_lockfree(store_t *st, const char *key, const char *val)
{
	uint64_t before = store_debug_peek_hits();
	struct visit_rec v;

	assert_int_equal(get_visit(st, key, &v), STORE_OK);
	assert_int_equal(v.calls, 1);
	assert_int_equal(v.n, strlen(val));
	assert_memory_equal(v.val, val, v.n);
	assert_true(v.fetched);
	return store_debug_peek_hits() == before + 1;
}

/* Whether key's item was fetched, and its idle seconds, read without
 * touching it (mg u). */
static bool
fetched_idle(store_t *st, const char *key, uint32_t *idle)
{
	struct store_mget_opts o = { .no_bump = true };
	struct store_meta_info in;
	item_t *it;

	assert_int_equal(store_mget(st, key, strlen(key), &o, &it, &in),
	    STORE_OK);
	store_release(st, it);
	*idle = in.idle;
	return in.fetched;
}

/* A visited get is answered without the shard lock (ht_peek) but when
 * the locked path would do more than mark the item (peek_mark: its
 * fetched and access bits, its access second): an expired or flushed item
 * to reap, a loose item linked in the shard, a store under no_evict
 * (item_overwrite). */
static void
test_get_lockfree(void **state)
{
	static char big[70001];
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * 1024 * KB, 0, false);
	struct visit_rec v;
	uint32_t idle;
	char lk[16];
	int i;

	(void)state;
	assert_int_equal(put(st, "a", "va", 0), STORE_STORED);
	fc.now += 2;
	assert_false(fetched_idle(st, "a", &idle));
	assert_int_equal(idle, 2);
	assert_true(get_visit_lockfree(st, "a", "va"));	/* marks it */
	assert_true(fetched_idle(st, "a", &idle));
	assert_int_equal(idle, 0);
	assert_true(get_visit_lockfree(st, "a", "va"));
	assert_int_equal(get_visit(st, "zz", &v), STORE_NOT_FOUND);
	assert_int_equal(v.calls, 0);
	/* a new second is recorded as well */
	fc.now += 3;
	assert_true(fetched_idle(st, "a", &idle));
	assert_int_equal(idle, 3);
	assert_true(get_visit_lockfree(st, "a", "va"));
	assert_true(fetched_idle(st, "a", &idle));
	assert_int_equal(idle, 0);
	/* a new value is a new item, not yet marked */
	assert_int_equal(put(st, "a", "vb", 0), STORE_STORED);
	assert_false(fetched_idle(st, "a", &idle));
	assert_true(get_visit_lockfree(st, "a", "vb"));
	assert_true(fetched_idle(st, "a", &idle));
	/* an expired item is reaped under the lock */
	assert_int_equal(put(st, "t", "x", 5), STORE_STORED);
	assert_true(get_visit_lockfree(st, "t", "x"));
	assert_int_equal(stats(st).curr_items, 2);
	fc.now += 5;
	assert_int_equal(get_visit(st, "t", &v), STORE_NOT_FOUND);
	assert_int_equal(v.calls, 0);
	assert_int_equal(stats(st).curr_items, 1);
	/* a loose item linked in the key's shard: the lock */
	assert_true(get_visit_lockfree(st, "a", "vb"));	/* new second */
	memset(big, 'b', sizeof(big) - 1);
	for (i = 0; snprintf(lk, sizeof lk, "L%d", i), store_key_shard(st, lk,
	    strlen(lk)) != store_key_shard(st, "a", 1); i++)
		;
	assert_int_equal(put(st, lk, big, 0), STORE_STORED);
	assert_false(get_visit_lockfree(st, "a", "vb"));
	assert_false(get_visit_lockfree(st, "a", "vb"));
	assert_int_equal(store_delete(st, lk, strlen(lk)), STORE_DELETED);
	assert_true(get_visit_lockfree(st, "a", "vb"));
	/* flushed: not found, by either path */
	store_flush(st, 0);
	assert_int_equal(get_visit(st, "a", &v), STORE_NOT_FOUND);
	assert_int_equal(v.calls, 0);
	store_destroy(st);

	/* no_evict: a full cache may write a new value over an item in
	 * place, so the lock marks it */
	st = mk_store(&fc, 64 * 1024 * KB, 0, true);
	assert_int_equal(put(st, "a", "va", 0), STORE_STORED);
	assert_false(get_visit_lockfree(st, "a", "va"));
	assert_true(fetched_idle(st, "a", &idle));
	assert_true(get_visit_lockfree(st, "a", "va"));
	fc.now++;
	assert_false(get_visit_lockfree(st, "a", "va"));
	assert_true(get_visit_lockfree(st, "a", "va"));
	store_destroy(st);
}

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

/* Runs an incr or decr and checks the status, result and stored text:
 * the digits, padded with spaces to the old length when shorter, as
 * memcached leaves them. */
static void
check_incr(store_t *st, const char *start, bool incr, uint64_t delta,
    store_status_t want, uint64_t want_v, const char *want_text)
{
	char padded[64];
	uint64_t v = 0;

	assert_int_equal(put(st, "n", start, 0), STORE_STORED);
	assert_int_equal(store_incr(st, "n", 1, incr, delta, &v), want);
	if (want == STORE_OK) {
		assert_int_equal(v, want_v);
		snprintf(padded, sizeof padded, "%-*s", (int)strlen(start),
		    want_text);
		check_value(st, "n", padded);
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
	check_incr(st, "-1", false, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "-5", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "+", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "   ", true, 1, STORE_NON_NUMERIC, 0, NULL);
	check_incr(st, "18446744073709551616", true, 1, STORE_NON_NUMERIC, 0,
	    NULL);
	check_incr(st, "99999999999999999999", true, 1, STORE_NON_NUMERIC, 0,
	    NULL);
	/* What memcached's safe_strtoull takes: leading white space, a
	 * sign, any number of digits, then white space or a NUL and anything
	 * after it; "-0" and a minus that wraps to 63 bits pass. */
	check_incr(st, " 12", true, 1, STORE_OK, 13, "13");
	check_incr(st, "\t\v1", true, 1, STORE_OK, 2, "2");
	check_incr(st, "1 2", true, 1, STORE_OK, 2, "2");
	check_incr(st, "7\f", true, 1, STORE_OK, 8, "8");
	check_incr(st, "+5", true, 1, STORE_OK, 6, "6");
	check_incr(st, "-0", true, 1, STORE_OK, 1, "1");
	check_incr(st, "-18446744073709551615", true, 1, STORE_OK, 2, "2");
	check_incr(st, "000000000000000000001", true, 1, STORE_OK, 2, "2");
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

/* ---- eviction: FIFO with a second chance ----------------------------- */

/* Counts a hit on a key that must be there (store_get and release). */
static void
hit(store_t *st, const char *key)
{
	item_t *it;

	assert_int_equal(store_get(st, key, strlen(key), &it), STORE_OK);
	store_release(st, it);
}

/* Returns the index of the first of keys c%06d, 0 <= i < n, that is
 * linked (n if none) and asserts every later one is linked too: what
 * a FIFO leaves of keys set in order and never read. */
static int
check_suffix(store_t *st, char c, int n)
{
	char key[16];
	int first, i;

	for (first = 0; first < n && !present(st, key7(key, c, first));)
		first++;
	for (i = first; i < n; i++)
		assert_true(present(st, key7(key, c, i)));
	return first;
}

/* Never-read keys leave in the order they came, a whole segment at a
 * time, counted as evictions; mem_bytes never passes the limit. */
static void
test_fifo_order(void **state)
{
	enum { N = 3000 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 1, false);
	struct pool *p = store_debug_pool(st);
	size_t ps = per_seg(st, 7, VLEN);
	struct store_stats s;
	char key[16], val[VLEN + 1];
	int i, first;

	(void)state;
	memset(val, 'v', VLEN);
	val[VLEN] = '\0';
	assert_int_equal(p->seg_size, 4 * KB);
	assert_int_equal(ps, 29);
	for (i = 0; i < N; i++) {
		set7(st, 'k', i, 'v', 0);
		check_mem(st);
		s = stats(st);
		/* Every set is a new key, none read, none expired. */
		assert_int_equal(s.evictions + s.curr_items, (uint64_t)i + 1);
		assert_int_equal(s.evicted_unfetched, s.evictions);
		assert_int_equal(s.reclaimed, 0);
		assert_int_equal(s.evictions % ps, 0);
	}
	s = stats(st);
	assert_true(s.evictions >= N - capacity(st, 7, VLEN));
	assert_int_equal(debug(st).evacuated, s.evictions / ps);
	assert_int_equal(debug(st).moved, 0);
	first = check_suffix(st, 'k', N);
	assert_int_equal(s.curr_items, N - first);
	/* Of the limit's 32 segments one's room is kept for evacuation to
	 * move items to, one makes room for the reservation a value is read
	 * into, one is filling. */
	assert_true(s.curr_items >= (p->limit / p->seg_size - 3) * ps);
	print_message("fifo: %" PRIu64 " of %d items held, %" PRIu64
	    " evicted, %zu segments free\n", s.curr_items, N, s.evictions,
	    p->nfree);
	check_missing(st, key7(key, 'k', 0));
	check_missing(st, key7(key, 'k', first - 1));
	check_value(st, key7(key, 'k', first), val);
	store_destroy(st);
}

/*
 * A key read once before its segment reaches the FIFO head is moved, not
 * evicted, and outlives the key set right after it in the same segment
 * by about a turnover of the memory; with no further hit it goes the
 * next time round.
 */
static void
test_second_chance(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 1, false);
	int ps = (int)per_seg(st, 7, VLEN), nb = 4 * ps;
	int cap = (int)capacity(st, 7, VLEN);
	int i, n, r_gone = -1, u_gone = -1, u_all = -1, turnover = 0;
	char key[16];

	(void)state;
	/* Four segments of b keys; the even ones are read once. */
	for (i = 0; i < nb; i++)
		set7(st, 'b', i, 'b', 0);
	for (i = 0; i < nb; i += 2)
		hit(st, key7(key, 'b', i));
	for (n = 0; n < 4 * cap && r_gone < 0; n++) {
		set7(st, 'n', n, 'n', 0);
		check_mem(st);
		if (u_gone < 0 && !present(st, key7(key, 'b', 1))) {
			u_gone = n;
			turnover = (int)stats(st).curr_items;
		}
		if (u_all < 0 && !present(st, key7(key, 'b', nb - 1))) {
			/* Every unread b key went, every read one stayed. */
			u_all = n;
			for (i = 0; i < nb; i++)
				assert_int_equal(present(st,
				    key7(key, 'b', i)), i % 2 == 0);
			assert_int_equal(debug(st).moved, nb / 2);
		}
		if (r_gone < 0 && !present(st, key7(key, 'b', 0)))
			r_gone = n;
	}
	print_message("second chance: unread b1 gone after %d sets, read b0 "
	    "after %d; %d items held\n", u_gone, r_gone, turnover);
	/* b1 went within one capacity of sets; b0 needed one more
	 * turnover, less the room the moved copies took and a segment
	 * (eviction goes a segment at a time). */
	assert_true(u_gone >= 0 && u_gone < cap);
	assert_true(u_all > u_gone);
	assert_true(r_gone >= u_gone + turnover - nb / 2 - ps);
	/* Only once: the move used the hit up. */
	for (; n < r_gone + cap; n++)
		set7(st, 'n', n, 'n', 0);
	for (i = 0; i < nb; i++)
		assert_false(present(st, key7(key, 'b', i)));
	assert_int_equal(debug(st).moved, nb / 2);
	assert_int_equal(stats(st).evicted_unfetched, stats(st).evictions -
	    nb / 2);
	store_destroy(st);
}

/*
 * A hot set read every round survives a stream of keys set once and
 * never read, many times the memory's size.  Each round sets 4 segments
 * of new keys, far less than the 25 or more a turnover takes, so every
 * hot key has been hit again by the time its segment reaches the head:
 * it is moved, never evicted, and every read hits.  A plain FIFO would
 * evict each hot key once a turnover and miss about one read in seven;
 * the cold twins, set alongside the hot keys and never read, show it.
 */
static void
test_scan_resistant(void **state)
{
	enum { ROUNDS = 60 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 1, false);
	int ps = (int)per_seg(st, 7, VLEN), hot = 3 * ps, round = 4 * ps;
	int cap = (int)capacity(st, 7, VLEN);
	int hits = 0, misses = 0, n = 0, r, j;
	struct store_stats s;
	item_t *it;
	char key[16];

	(void)state;
	for (j = 0; j < hot; j++) {
		set7(st, 'h', j, 'h', 0);
		set7(st, 'c', j, 'c', 0);
	}
	for (r = 0; r < ROUNDS; r++) {
		for (j = 0; j < round; j++)
			set7(st, 's', n++, 's', 0);
		for (j = 0; j < hot; j++) {
			key7(key, 'h', j);
			if (store_get(st, key, 7, &it) == STORE_OK) {
				hits++;
				store_release(st, it);
			} else {
				misses++;
				set7(st, 'h', j, 'h', 0);
			}
		}
		check_mem(st);
	}
	s = stats(st);
	print_message("scan: %d of %d hot reads hit over %d one-time sets "
	    "(%.1f turnovers), %" PRIu64 " moves\n", hits, hits + misses, n,
	    (double)n / cap, debug(st).moved);
	assert_int_equal(misses, 0);
	for (j = 0; j < hot; j++)
		assert_false(present(st, key7(key, 'c', j)));
	assert_true(s.evictions >= (uint64_t)(n - cap));
	assert_true(s.curr_items <= (uint64_t)cap);
	/* Each pass of a hot key through the head is a move: at least one
	 * each `cap` sets after its first. */
	assert_true(debug(st).moved >= (uint64_t)(hot * (n / cap - 1)));
	store_destroy(st);
}

/* Returns a linked key's ACCESSED and FETCHED bits (peek: no hit). */
static uint32_t
standing(store_t *st, const char *key)
{
	item_t *it = peek(st, key);

	assert_non_null(it);
	return ref_word(it) & (ITEM_ACCESSED | ITEM_FETCHED);
}

/* What counts as a hit (ACCESSED: a second chance) and as a fetch
 * (FETCHED: not evicted_unfetched); a key's hit survives an overwrite,
 * append, incr or cas, not a delete. */
static void
test_hit_standing(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	const uint32_t both = ITEM_ACCESSED | ITEM_FETCHED;
	uint64_t v, cas;
	item_t *it;

	(void)state;
	assert_int_equal(put(st, "a", "1", 0), STORE_STORED);
	assert_int_equal(put(st, "b", "1", 0), STORE_STORED);
	assert_int_equal(put(st, "c", "1", 0), STORE_STORED);
	assert_int_equal(put(st, "d", "1", 0), STORE_STORED);
	assert_int_equal(put_mode(st, "e", "1", 0, 0, STORE_SET, 0, &cas),
	    STORE_STORED);
	assert_int_equal(standing(st, "a"), 0);
	hit(st, "a");
	assert_int_equal(standing(st, "a"), both);
	/* A new value is unread, but the key keeps its hit. */
	assert_int_equal(put(st, "a", "2", 0), STORE_STORED);
	assert_int_equal(standing(st, "a"), ITEM_ACCESSED);
	assert_int_equal(put_mode(st, "a", "0", 0, 0, STORE_APPEND, 0, NULL),
	    STORE_STORED);
	assert_int_equal(standing(st, "a"), ITEM_ACCESSED);
	assert_int_equal(store_incr(st, "a", 1, true, 1, &v), STORE_OK);
	assert_int_equal(v, 21);
	assert_int_equal(standing(st, "a"), ITEM_ACCESSED);
	assert_int_equal(put_mode(st, "a", "3", 0, 0, STORE_REPLACE, 0,
	    NULL), STORE_STORED);
	assert_int_equal(standing(st, "a"), ITEM_ACCESSED);
	/* A key never hit stays so when overwritten. */
	assert_int_equal(put(st, "b", "2", 0), STORE_STORED);
	assert_int_equal(standing(st, "b"), 0);
	/* A failed add and a touch are hits, not fetches; gat is both. */
	assert_int_equal(put_mode(st, "c", "2", 0, 0, STORE_ADD, 0, NULL),
	    STORE_NOT_STORED);
	assert_int_equal(standing(st, "c"), ITEM_ACCESSED);
	assert_int_equal(store_touch(st, "d", 1, 100), STORE_TOUCHED);
	assert_int_equal(standing(st, "d"), ITEM_ACCESSED);
	assert_int_equal(put_mode(st, "e", "2", 0, 0, STORE_CAS, cas, NULL),
	    STORE_STORED);
	assert_int_equal(standing(st, "e"), 0);
	assert_int_equal(store_gat(st, "e", 1, 100, &it), STORE_OK);
	store_release(st, it);
	assert_int_equal(standing(st, "e"), both);
	assert_int_equal(put_mode(st, "e", "3", 0, 0, STORE_CAS,
	    cas_of(st, "e"), NULL), STORE_STORED);
	assert_int_equal(standing(st, "e"), ITEM_ACCESSED);
	/* Deleted and set again: new to the cache. */
	assert_int_equal(store_delete(st, "a", 1), STORE_DELETED);
	assert_int_equal(put(st, "a", "4", 0), STORE_STORED);
	assert_int_equal(standing(st, "a"), 0);
	store_destroy(st);
}

/* Items dead when their segment is emptied are reclaimed, not evicted,
 * and never moved, hit or not; no expiry pass needed. */
static void
test_evict_reaps_dead(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 1, false);
	int ps = (int)per_seg(st, 7, VLEN);
	int cap = (int)capacity(st, 7, VLEN), i, n;
	struct store_stats s;
	char key[16];

	(void)state;
	for (i = 0; i < 2 * ps; i++)
		set7(st, 'e', i, 'e', 10);
	for (i = 0; i < 2 * ps; i += 2)
		hit(st, key7(key, 'e', i));
	fc.now = T0 + 10;
	for (n = 0; n < cap; n++) {
		set7(st, 'n', n, 'n', 0);
		check_mem(st);
	}
	s = stats(st);
	assert_int_equal(s.reclaimed, 2 * ps);
	assert_int_equal(s.expired_unfetched, ps);
	assert_int_equal(s.get_expired, 0);
	assert_true(s.evictions > 0);
	assert_int_equal(s.evictions, (uint64_t)n - s.curr_items);
	assert_int_equal(s.evicted_unfetched, s.evictions);
	assert_int_equal(debug(st).moved, 0);
	assert_int_equal(s.expiry_runs, 0);
	for (i = 0; i < 2 * ps; i++)
		assert_false(present(st, key7(key, 'e', i)));
	store_destroy(st);
}

/*
 * Values past small_max live in allocations of their own that join the
 * FIFO when linked: they leave it in order, counted as evictions as
 * small items are, and one hit gives them a second chance too, without
 * a copy.  mem_bytes stays within the limit and no segment is taken.
 */
static void
test_loose_items(void **state)
{
	enum { LV = 1500, N = 500 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 1, false);
	struct pool *p = store_debug_pool(st);
	int n, r_gone = -1, u_gone = -1, turnover = 0, first;
	struct store_stats s;
	char key[16], val[LV + 1];
	item_t *it;

	(void)state;
	assert_true(ITEM_SIZE_UP(7, LV) > p->small_max);
	memset(val, 'L', LV);
	val[LV] = '\0';
	assert_int_equal(put(st, key7(key, 'l', 0), val, 0), STORE_STORED);
	assert_int_equal(put(st, key7(key, 'l', 1), val, 0), STORE_STORED);
	hit(st, key7(key, 'l', 0));
	it = peek(st, key);
	assert_true(ref_word(it) & ITEM_LOOSE);
	for (n = 0; n < N; n++) {
		assert_int_equal(put(st, key7(key, 'm', n), val, 0),
		    STORE_STORED);
		check_mem(st);
		s = stats(st);
		assert_int_equal(s.evictions + s.curr_items, (uint64_t)n + 3);
		assert_int_equal(s.bytes, s.curr_items * ITEM_SIZE_UP(7, LV));
		if (u_gone < 0 && !present(st, key7(key, 'l', 1))) {
			u_gone = n;
			turnover = (int)s.curr_items;
		}
		if (r_gone < 0 && !present(st, key7(key, 'l', 0)))
			r_gone = n;
	}
	s = stats(st);
	print_message("loose: %" PRIu64 " items of %zu bytes held in %"
	    PRIu64 " bytes; read l0 outlived l1 by %d sets\n", s.curr_items,
	    ITEM_SIZE_UP(7, LV), s.mem_bytes, r_gone - u_gone);
	/* Each costs a segment header, the item and malloc's due, and one
	 * segment's room stays free for evacuation to move items to. */
	assert_true(s.curr_items >= (SMALL_LIMIT - p->seg_size) / (SEG_HDR +
	    LOOSE_HDR + 7 + LV + 32));
	assert_int_equal(p->nsegs, 0);
	assert_true(u_gone >= 0 && r_gone > u_gone);
	assert_true(r_gone >= u_gone + turnover - 2);
	assert_int_equal(debug(st).moved, 0);
	assert_int_equal(s.evicted_unfetched, s.evictions - 1);
	first = check_suffix(st, 'm', N);
	assert_int_equal(s.curr_items, N - first);
	store_destroy(st);
}

/* Random sizes on both sides of small_max, some hits: mem_bytes never
 * passes the limit and bytes is exactly the linked items' sizes. */
static void
test_mixed_sizes_keep_limit(void **state)
{
	struct fake_clock fc;
	const size_t limit = 64 * KB;
	store_t *st = mk_store(&fc, limit, 2, false);
	struct pool *p = store_debug_pool(st);
	char key[32], val[2000];
	struct store_stats s;
	size_t sum = 0, found = 0, loose = 0;
	item_t *it;
	int i;

	(void)state;
	assert_true(p->small_max < 1500);
	memset(val, 'q', sizeof(val));
	srand(1);
	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand() % 1500);

		snprintf(key, sizeof(key), "key:%d", i);
		val[n] = '\0';
		assert_int_equal(put(st, key, val, rand() % 3 ? 0 : 1000),
		    STORE_STORED);
		val[n] = 'q';
		check_mem(st);
		if (i % 10 == 0) {
			snprintf(key, sizeof(key), "key:%d", rand() % (i + 1));
			if (store_get(st, key, strlen(key), &it) == STORE_OK)
				store_release(st, it);
		}
	}
	s = stats(st);
	assert_true(s.evictions > 1000);
	assert_true(s.bytes > limit / 2);
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		if (store_get(st, key, strlen(key), &it) != STORE_OK)
			continue;
		sum += item_size(it);
		loose += (ref_word(it) & ITEM_LOOSE) != 0;
		found++;
		store_release(st, it);
	}
	print_message("mixed: %zu items (%zu loose) in %" PRIu64 " bytes of "
	    "%" PRIu64 " held\n", found, loose, s.bytes, s.mem_bytes);
	assert_true(loose > 0 && loose < found);
	s = stats(st);
	assert_int_equal(s.bytes, sum);
	assert_int_equal(s.curr_items, found);
	assert_int_equal(s.evictions + s.curr_items, 20000);
	store_destroy(st);
}

/* ---- no_evict (-M) ---------------------------------------------------- */

/* Sets keys key:%04d from `from` until one fails; asserts it failed with
 * NO_MEMORY and returns how many were stored. */
static int
fill_no_evict(store_t *st, const char *val, int from)
{
	char key[16];
	store_status_t rc;
	int i;

	for (i = from;; i++) {
		assert_true(i < 100000);
		snprintf(key, sizeof(key), "key:%04d", i);
		rc = put(st, key, val, 0);
		check_mem(st);
		if (rc != STORE_STORED)
			break;
	}
	assert_int_equal(rc, STORE_NO_MEMORY);
	return i - from;
}

/* -M: once the memory is full stores fail with NO_MEMORY, nothing is
 * evicted, and every stored key keeps its value. */
static void
test_no_evict(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 0, true);
	struct pool *p = store_debug_pool(st);
	size_t ps = per_seg(st, 8, VLEN);
	char key[16], val[VLEN + 1], *big;
	int i, stored;

	(void)state;
	memset(val, 'm', VLEN);
	val[VLEN] = '\0';
	stored = fill_no_evict(st, val, 0);
	/* All but a segment's room kept for compaction to move items to,
	 * and one for the reservation a value is read into. */
	assert_true((size_t)stored >= (p->limit / p->seg_size - 2) * ps);
	/* Full stays full. */
	for (i = stored; i < stored + 100; i++) {
		snprintf(key, sizeof(key), "key:%04d", i);
		assert_int_equal(put(st, key, val, 0), STORE_NO_MEMORY);
	}
	assert_int_equal(stats(st).evictions, 0);
	assert_int_equal(stats(st).curr_items, stored);
	assert_int_equal(debug(st).moved, 0);
	for (i = 0; i < stored; i++) {
		snprintf(key, sizeof(key), "key:%04d", i);
		check_value(st, key, val);
	}
	/* A failed overwrite keeps the old value: a loose one bigger than
	 * what is left, and an append. */
	big = malloc(8 * KB + 1);
	assert_non_null(big);
	memset(big, 'b', 8 * KB);
	big[8 * KB] = '\0';
	assert_int_equal(put(st, "key:0000", big, 0), STORE_NO_MEMORY);
	check_value(st, "key:0000", val);
	assert_int_equal(put_mode(st, "key:0000", "x", 0, 0, STORE_APPEND, 0,
	    NULL), STORE_NO_MEMORY);
	check_value(st, "key:0000", val);
	assert_int_equal(stats(st).evictions, 0);
	free(big);
	store_destroy(st);
}

/* Asserts keys key:%04d for i in [0, n) are there with val if
 * keep(i, n), gone if not. */
static void
check_kept(store_t *st, const char *val, int n, bool (*keep)(int, int))
{
	char key[16];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "key:%04d", i);
		if (keep(i, n))
			check_value(st, key, val);
		else
			check_missing(st, key);
	}
}

/* Keeps the newest quarter of n keys. */
static bool
keep_newest(int i, int n)
{
	return i >= n - n / 4;
}

/* Keeps one key in four, so every segment keeps some. */
static bool
keep_one_in_four(int i, int n)
{
	(void)n;
	return i % 4 == 0;
}

/*
 * -M, full, then most keys deleted: new sets succeed again, and no key
 * left is lost: segments with no live item are emptied and reused, or,
 * when every segment keeps some live items, the one with the fewest is
 * compacted (its live items moved) to free it.
 */
static void
run_no_evict_refill(bool (*keep)(int, int))
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 0, true);
	char key[16], val[VLEN + 1];
	int i, stored, kept = 0, again;

	memset(val, 'm', VLEN);
	val[VLEN] = '\0';
	stored = fill_no_evict(st, val, 0);
	assert_true(stored > 100);
	for (i = 0; i < stored; i++) {
		snprintf(key, sizeof(key), "key:%04d", i);
		if (keep(i, stored))
			kept++;
		else
			assert_int_equal(store_delete(st, key, strlen(key)),
			    STORE_DELETED);
	}
	/* Three quarters of the memory is dead: at least half of it comes
	 * back for new keys. */
	again = fill_no_evict(st, val, stored);
	print_message("no_evict: %d stored, %d kept, %d more stored; %"
	    PRIu64 " segments emptied, %" PRIu64 " items moved\n", stored,
	    kept, again, debug(st).evacuated, debug(st).moved);
	assert_true(again >= (stored - kept) / 2);
	assert_int_equal(stats(st).evictions, 0);
	assert_int_equal(stats(st).curr_items, kept + again);
	assert_true(debug(st).evacuated > 0);
	check_kept(st, val, stored, keep);
	for (i = stored; i < stored + again; i++) {
		snprintf(key, sizeof(key), "key:%04d", i);
		check_value(st, key, val);
	}
	store_destroy(st);
}

/* -M: deleting the oldest keys frees whole segments for new ones. */
static void
test_no_evict_reuses_empty(void **state)
{
	(void)state;
	run_no_evict_refill(keep_newest);
}

/* -M: deleting keys all over leaves no segment empty: the store must
 * compact to take new keys. */
static void
test_no_evict_compacts(void **state)
{
	(void)state;
	run_no_evict_refill(keep_one_in_four);
}

/* A value length that leaves slack at the end of every segment:
 * ITEM_SIZE(8, 90) is 136, 29 in a 4 KiB segment with 88 bytes over. */
#define ODD_VLEN	90

/*
 * -M, full, with values that leave a little room at the end of every
 * segment: a refused store gives up after a bounded amount of work.  It
 * used to compact one nearly full segment after another into the
 * reserve one, each freeing next to nothing, up to 10,000 times per
 * store.  Work is counted, not timed.
 */
static void
test_no_evict_refusal_bounded(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 0, true);
	struct store_debug d0, d1;
	char key[32], val[ODD_VLEN + 1];
	int i, stored, refused = 50;

	(void)state;
	memset(val, 'r', ODD_VLEN);
	val[ODD_VLEN] = '\0';
	stored = fill_no_evict(st, val, 0);
	d0 = debug(st);
	for (i = 0; i < refused; i++) {
		snprintf(key, sizeof(key), "new:%04d", i);
		assert_int_equal(put(st, key, val, 0), STORE_NO_MEMORY);
	}
	d1 = debug(st);
	print_message("refused: %d stores, %" PRIu64 " items moved, %" PRIu64
	    " segments emptied, %" PRIu64 " make_room calls\n", refused,
	    d1.moved - d0.moved, d1.evacuated - d0.evacuated,
	    d1.room_tries - d0.room_tries);
	/* No segment is under half live: nothing is worth compacting. */
	assert_int_equal(d1.moved - d0.moved, 0);
	assert_int_equal(d1.evacuated - d0.evacuated, 0);
	/* A try or so each for the reservation and the commit. */
	assert_true(d1.room_tries - d0.room_tries <= (uint64_t)refused * 2);
	assert_int_equal(stats(st).evictions, 0);
	assert_int_equal(stats(st).curr_items, stored);
	for (i = 0; i < stored; i++) {
		snprintf(key, sizeof(key), "key:%04d", i);
		check_value(st, key, val);
	}
	/* One dead item: at most one compaction reclaims it, and no store
	 * after that compacts again for nothing. */
	assert_int_equal(store_delete(st, "key:0000", 8), STORE_DELETED);
	d0 = debug(st);
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "dead:%04d", i);
		(void)put(st, key, val, 0);
	}
	d1 = debug(st);
	assert_true(d1.evacuated - d0.evacuated <= 1);
	assert_true(d1.moved - d0.moved <= per_seg(st, 8, ODD_VLEN));
	assert_int_equal(stats(st).evictions, 0);
	store_destroy(st);
}

/* Reserves and fills a value; asserts the reservation succeeds. */
static item_t *
reserve_val(store_t *st, const char *key, const char *val)
{
	item_t *it;

	assert_int_equal(store_reserve(st, key, strlen(key), 7, 0,
	    strlen(val), &it), STORE_OK);
	memcpy(item_value_mut(it), val, strlen(val));
	return it;
}

/*
 * -M, full: a same-size overwrite reuses the memory of the value it
 * replaces (memcached stores most of them; we stored none), and a set
 * refused at commit leaves no old value to read: not when the old one is
 * referenced (no reuse in place then), nor when the new value's size
 * differs.
 */
static void
test_no_evict_refused_overwrite(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 0, true);
	char val[VLEN + 1], val2[VLEN + 1], big[VLEN + 41];
	uint64_t cas0, cas1;
	item_t *it, *held;
	int stored;

	(void)state;
	memset(val, 'o', VLEN);
	val[VLEN] = '\0';
	memset(val2, 'n', VLEN);
	val2[VLEN] = '\0';
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	stored = fill_no_evict(st, val, 0);
	assert_true(stored > 100);
	/* Same size, no other holder: stored in the old value's place. */
	assert_int_equal(store_get(st, "key:0000", 8, &it), STORE_OK);
	cas0 = item_cas(it);
	store_release(st, it);
	it = reserve_val(st, "key:0000", val2);
	assert_int_equal(store_commit(st, it, STORE_SET, 0, &cas1),
	    STORE_STORED);
	assert_true(cas1 > cas0);
	check_value(st, "key:0000", val2);
	assert_int_equal(store_get(st, "key:0000", 8, &it), STORE_OK);
	assert_int_equal(item_flags(it), 7);
	assert_int_equal(item_cas(it), cas1);
	store_release(st, it);
	/* add/replace/cas refused keep the old value (memcached: only a
	 * set drops it). */
	it = reserve_val(st, "key:0003", big);
	assert_int_equal(store_commit(st, it, STORE_REPLACE, 0, NULL),
	    STORE_NO_MEMORY);
	check_value(st, "key:0003", val);
	/* Same size, but a reader holds the old value: refused, and the
	 * key is gone; the reader's copy stays intact. */
	assert_int_equal(store_get(st, "key:0001", 8, &held), STORE_OK);
	it = reserve_val(st, "key:0001", val2);
	assert_int_equal(store_commit(st, it, STORE_SET, 0, NULL),
	    STORE_NO_MEMORY);
	check_missing(st, "key:0001");
	assert_memory_equal(item_value(held), val, VLEN);
	store_release(st, held);
	/* A larger value refused at commit (the one dead item is too small
	 * to be worth a compaction): the old one goes too. */
	it = reserve_val(st, "key:0002", big);
	assert_int_equal(store_commit(st, it, STORE_SET, 0, NULL),
	    STORE_NO_MEMORY);
	check_missing(st, "key:0002");
	assert_int_equal(stats(st).evictions, 0);
	assert_int_equal(stats(st).curr_items, stored - 2);
	check_mem(st);
	store_destroy(st);
}

/* ---- lock order ------------------------------------------------------ */

/* Debug builds assert store.h's lock order at every acquisition: locks
 * taken in rank order pass, a shard lock taken under the pool lock (or a
 * second shard lock) aborts. */
static void
test_lock_order_asserted(void **state)
{
#ifndef NDEBUG
	pthread_mutex_t m[3] = { PTHREAD_MUTEX_INITIALIZER,
	    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER };
	enum lock_rank bad[2][2] = { { LOCK_POOL, LOCK_SHARD },
	    { LOCK_SHARD, LOCK_SHARD } };
	int i, status;
	pid_t pid;

	(void)state;
	lock_take(&m[0], LOCK_FLUSH);
	lock_take(&m[1], LOCK_SHARD);
	lock_take(&m[2], LOCK_POOL);
	lock_drop(&m[2], LOCK_POOL);
	lock_drop(&m[1], LOCK_SHARD);
	lock_drop(&m[0], LOCK_FLUSH);
	assert_int_equal(store_locks_held, 0);
	for (i = 0; i < 2; i++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* Just the abort: no cmocka handler, no message. */
			signal(SIGABRT, SIG_DFL);
			dup2(open("/dev/null", O_WRONLY), STDERR_FILENO);
			lock_take(&m[0], bad[i][0]);
			lock_take(&m[1], bad[i][1]);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGABRT);
	}
#else
	(void)state;
	skip();
#endif
}

/* ---- references ------------------------------------------------------ */

/* A referenced item outlives delete and replace; bytes counts linked
 * items only, the memory stays held. */
static void
test_ref_survives_delete_replace(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	item_t *a, *b;
	size_t mem;

	(void)state;
	assert_int_equal(put(st, "k", "first", 0), STORE_STORED);
	assert_int_equal(stats(st).bytes, isize("k", "first"));
	mem = stats(st).mem_bytes;
	assert_int_equal(store_get(st, "k", 1, &a), STORE_OK);
	assert_int_equal(store_delete(st, "k", 1), STORE_DELETED);
	check_missing(st, "k");
	assert_int_equal(item_nbytes(a), 5);
	assert_memory_equal(item_value(a), "first", 5);
	assert_int_equal(stats(st).bytes, 0);	/* linked items only */
	assert_int_equal(stats(st).mem_bytes, mem);	/* still held */
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(put(st, "k", "second", 0), STORE_STORED);
	assert_int_equal(store_get(st, "k", 1, &b), STORE_OK);
	assert_int_equal(put(st, "k", "third", 0), STORE_STORED);
	assert_int_equal(put_mode(st, "k", "+", 0, 0, STORE_APPEND, 0, NULL),
	    STORE_STORED);
	assert_memory_equal(item_value(a), "first", 5);
	assert_int_equal(item_nbytes(b), 6);
	assert_memory_equal(item_value(b), "second", 6);
	check_value(st, "k", "third+");
	store_release(st, a);
	store_release(st, b);
	assert_int_equal(stats(st).bytes, isize("k", "third+"));
	store_destroy(st);
}

/*
 * A reference keeps an item intact while its segment is emptied, the item
 * moved (it was hit) and the copy evicted later, and memory turns over
 * four times around it: the segment is not reused until the reference
 * goes, and then it is free again.  The same for a loose item, given its
 * second chance in place.
 */
static void
test_ref_survives_eviction(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 1, false);
	struct pool *p = store_debug_pool(st);
	int cap = (int)capacity(st, 7, VLEN), n;
	char hv[201], lv[1501];
	item_t *h, *l;
	size_t nfree, mem;

	(void)state;
	memset(hv, 'H', 200);
	hv[200] = '\0';
	memset(lv, 'L', 1500);
	lv[1500] = '\0';
	assert_int_equal(put(st, "held", hv, 0), STORE_STORED);
	assert_int_equal(put(st, "loose", lv, 0), STORE_STORED);
	assert_int_equal(store_get(st, "held", 4, &h), STORE_OK);
	assert_int_equal(store_get(st, "loose", 5, &l), STORE_OK);
	assert_false(ref_word(h) & ITEM_LOOSE);
	assert_true(ref_word(l) & ITEM_LOOSE);
	for (n = 0; n < 4 * cap; n++) {
		set7(st, 'x', n, 'x', 0);
		check_mem(st);
	}
	check_missing(st, "held");
	check_missing(st, "loose");
	assert_true(debug(st).moved >= 1);
	assert_int_equal(item_nkey(h), 4);
	assert_memory_equal(item_key(h), "held", 4);
	assert_int_equal(item_nbytes(h), 200);
	assert_memory_equal(item_value(h), hv, 200);
	assert_int_equal(item_nkey(l), 5);
	assert_memory_equal(item_key(l), "loose", 5);
	assert_int_equal(item_nbytes(l), 1500);
	assert_memory_equal(item_value(l), lv, 1500);
	/* The last reference frees the segment, the loose allocation. */
	nfree = p->nfree;
	store_release(st, h);
	assert_int_equal(p->nfree, nfree + 1);
	mem = stats(st).mem_bytes;
	store_release(st, l);
	assert_true(stats(st).mem_bytes <= mem - 1500);
	check_mem(st);
	set7(st, 'x', n, 'x', 0);
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
	/* k0..k3 were reaped when looked up; the first expiry pass after
	 * the flush scans every segment and reclaims the rest. */
	assert_int_equal(expire_all(st, 7), 496);
	assert_int_equal(stats(st).curr_items, 2);
	assert_int_equal(stats(st).bytes, isize("k2", "a") +
	    isize("k3", "s"));
	for (i = 4; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		check_missing(st, key);
	}
	check_value(st, "k2", "a");
	store_destroy(st);
}

/* Marks the FIFO's first segment as scanned by another pass (busy) or
 * not, as pool_scan's scan_one does; returns it. */
static struct seg *
fifo_head_busy(store_t *st, bool busy)
{
	struct seg *s;

	lock_take(&st->pool.lock, LOCK_POOL);
	s = st->pool.head;
	assert_non_null(s);
	assert_int_equal(s->heap_idx, busy ? HEAP_NONE : HEAP_SCAN);
	s->heap_idx = busy ? HEAP_SCAN : HEAP_NONE;
	lock_drop(&st->pool.lock, LOCK_POOL);
	return s;
}

/* A flush's sweep that meets a segment another pass is scanning (two
 * callers of store_expire_run at once: the expiry thread and a test, or
 * the fuzzer's drain) leaves the flush to be swept again: once that pass
 * is done, the next one frees the segment's flushed items too.  It used
 * to mark the flush swept, and they stayed linked, memory and `bytes`
 * held, until evicted (found by fuzz_store). */
static void
test_flush_sweep_waits_for_busy(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 0, false);
	char key[16], val[VLEN + 1];
	struct seg *busy;
	int i;

	(void)state;
	memset(val, 'v', VLEN);
	val[VLEN] = '\0';
	for (i = 0; i < 100; i++) {		/* 3 sealed segments */
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
	}
	store_flush(st, 0);
	busy = fifo_head_busy(st, true);
	store_expire_run(st, 1000);
	/* Only the busy segment's items are left. */
	assert_int_not_equal(stats(st).bytes, 0);
	assert_int_equal(stats(st).bytes, atomic_load(&busy->live));
	fifo_head_busy(st, false);
	expire_all(st, 1000);
	assert_int_equal(stats(st).bytes, 0);
	assert_int_equal(stats(st).curr_items, 0);
	check_missing(st, "k0");
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

/* flush_all, then one expiry pass: every segment is scanned, bytes drops
 * to 0 and the sealed segments are free for new keys, which then need no
 * eviction. */
static void
test_flush_drains(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 1, false);
	struct pool *p = store_debug_pool(st);
	int ps = (int)per_seg(st, 7, VLEN), n = 15 * ps, i;
	struct store_debug d0, d1;
	struct store_stats s;
	char key[16];
	size_t mem;

	(void)state;
	for (i = 0; i < n; i++)
		set7(st, 'o', i, 'o', i % 2 ? 0 : 1000);
	for (i = 0; i < n; i += 3)
		hit(st, key7(key, 'o', i));
	store_flush(st, 0);
	assert_int_equal(stats(st).curr_items, 0);
	assert_int_equal(stats(st).bytes, (size_t)n * ITEM_SIZE(7, VLEN));
	d0 = debug(st);
	assert_int_equal(store_expire_run(st, 100), n);
	d1 = debug(st);
	s = stats(st);
	assert_int_equal(s.bytes, 0);
	assert_int_equal(s.curr_items, 0);
	assert_int_equal(s.get_flushed, 0);
	assert_int_equal(s.reclaimed, 0);	/* flushed, not expired */
	assert_int_equal(d1.expire_units - d0.expire_units, n);
	/* All but the arena's active segment, which is still filling. */
	assert_int_equal(d1.evacuated - d0.evacuated, 14);
	assert_int_equal(d1.moved, 0);
	assert_int_equal(p->nfree, 14);
	/* Again with nothing due: nothing looked at. */
	assert_int_equal(store_expire_run(st, 100), 0);
	assert_int_equal(debug(st).expire_units, d1.expire_units);
	mem = s.mem_bytes;
	for (i = 0; i < n; i++)
		set7(st, 'n', i, 'n', 0);
	s = stats(st);
	assert_int_equal(s.evictions, 0);
	assert_int_equal(debug(st).evacuated, d1.evacuated);
	/* 13 of the 14 free segments reused (one stays free for moves),
	 * 2 new ones: 15 hold the new keys. */
	assert_true(s.mem_bytes <= mem + 2 * p->seg_size);
	assert_int_equal(s.curr_items, n);
	for (i = 0; i < n; i++)
		check_missing(st, key7(key, 'o', i));
	store_destroy(st);
}

/* Sets key to a value of n bytes of c; returns the status. */
static store_status_t
put_big(store_t *st, const char *key, size_t n, char c)
{
	item_t *it;
	store_status_t rc;

	rc = store_reserve(st, key, strlen(key), 0, 0, n, &it);
	if (rc != STORE_OK)
		return rc;
	memset(item_value_mut(it), c, n);
	return store_commit(st, it, STORE_SET, 0, NULL);
}

/* Asserts key holds n bytes of c. */
static void
check_big(store_t *st, const char *key, size_t n, char c)
{
	item_t *it;
	size_t i;

	assert_int_equal(store_get(st, key, strlen(key), &it), STORE_OK);
	assert_int_equal(item_nbytes(it), n);
	for (i = 0; i < n; i += 4093)
		assert_int_equal(item_value(it)[i], c);
	store_release(st, it);
}

/* Pages of [p, p + n) the system has in place (mincore). */
static size_t
resident_pages(const void *p, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), i, in = 0;
	unsigned char *v = malloc(n / page);

	assert_non_null(v);
	assert_int_equal(mincore((void *)(uintptr_t)p, n, v), 0);
	for (i = 0; i < n / page; i++)
		in += v[i] & 1;
	free(v);
	return in;
}

/* True if this kernel puts pages in place on MADV_POPULATE_WRITE. */
static bool
populate_works(void)
{
	bool ok = false;
#ifdef MADV_POPULATE_WRITE
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *m = mmap(NULL, page, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	ok = madvise(m, page, MADV_POPULATE_WRITE) == 0;
	munmap(m, page);
#endif
	if (!ok)
		print_message("no MADV_POPULATE_WRITE: residency not checked\n");
	return ok;
}

/*
 * -L (store_config.large_pages): segments come a huge page's worth at a
 * time (PREFAULT_CHUNK), their pages in place, the chunk's other
 * segments on the free list and charged; a filling store takes no page
 * fault per 4 KiB.  Without it, one segment at a time, its pages faulted
 * in as items are carved.  The limit holds through eviction either way,
 * and where a whole chunk does not fit in the limit, segments come one at
 * a time.
 */
static void
test_large_pages(void **state)
{
	struct fake_clock fc;
	size_t limit = 8 * PREFAULT_CHUNK, chunk;
	store_t *st = mk_store_lp(&fc, limit, 1, false, true), *plain;
	struct pool *p = store_debug_pool(st);
	char key[32], val[VLEN + 1];
	int i;

	(void)state;
	memset(val, 'v', VLEN);
	val[VLEN] = '\0';
	chunk = PREFAULT_CHUNK / p->seg_size;
	assert_true(chunk > 1);
	assert_int_equal(put(st, "k0", val, 0), STORE_STORED);
	assert_int_equal(p->nsegs, chunk);
	assert_int_equal(p->nfree, chunk - 1);
	assert_int_equal(stats(st).mem_bytes, PREFAULT_CHUNK);
	/* The chunk's pages are in place (MADV_POPULATE_WRITE: Linux 5.14
	 * on; before, they fault in as used). */
	if (populate_works())
		assert_int_equal(resident_pages(p->free, p->seg_size),
		    p->seg_size / (size_t)sysconf(_SC_PAGESIZE));

	/* Without: one segment at a time. */
	plain = mk_store(&fc, limit, 1, false);
	assert_int_equal(put(plain, "k0", val, 0), STORE_STORED);
	assert_int_equal(store_debug_pool(plain)->nsegs, 1);
	assert_int_equal(stats(plain).mem_bytes,
	    store_debug_pool(plain)->seg_size);
	store_destroy(plain);

	/* Filled three times over: the limit holds, the newest are there. */
	for (i = 1; (size_t)i * ITEM_SIZE(7, VLEN) < 3 * limit; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
		check_mem(st);
	}
	assert_true(stats(st).evictions > 0);
	assert_true(p->nsegs * p->seg_size <= limit);
	check_value(st, key, val);
	store_destroy(st);

	/* A limit smaller than a chunk: one segment at a time, populated. */
	st = mk_store_lp(&fc, PREFAULT_CHUNK / 2, 1, false, true);
	p = store_debug_pool(st);
	assert_int_equal(put(st, "k0", val, 0), STORE_STORED);
	assert_int_equal(p->nsegs, 1);
	for (i = 1; (size_t)i * ITEM_SIZE(7, VLEN) < PREFAULT_CHUNK; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
		check_mem(st);
	}
	assert_true(stats(st).evictions > 0);
	check_value(st, key, val);
	store_destroy(st);
}

/* The memory held by segments and kept large blocks, with every loose
 * item gone: mem_bytes must be exactly that. */
static uint64_t
held_idle(store_t *st)
{
	struct pool *p = store_debug_pool(st);

	return (uint64_t)p->nsegs * p->seg_size + p->lcached;
}

/*
 * Large values (issue 16): each used to be an mmap of its own, faulted in
 * as it was written and unmapped when evicted, which was most of the CPU
 * of a 64 KiB set.  A freed large block is kept for the next value of its
 * size class: under eviction at a steady size almost every set reuses
 * one.  Kept blocks stay charged, the limit holds throughout, and they go
 * back to the system first when small items need the memory.
 */
static void
test_large_blocks_reused(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 4096 * KB, 1, false);
	struct pool *p = store_debug_pool(st);
	enum { N = 400 };
	size_t per = (4096 * KB) / (64 * KB);
	uint64_t mapped;
	char key[32];
	int i;

	(void)state;
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "big%d", i);
		assert_int_equal(put_big(st, key, 64 * KB, (char)('a' + i % 26)),
		    STORE_STORED);
		check_mem(st);
	}
	mapped = atomic_load(&p->lmapped);
	print_message("%d sets of 64 KiB values in a 4 MiB cache: %" PRIu64
	    " blocks mapped, %" PRIu64 " reused\n", N, mapped,
	    (uint64_t)atomic_load(&p->lreused));
	assert_true(stats(st).evictions > N / 2);
	/* The cache's worth of blocks, not one per set. */
	assert_true(mapped <= per + 2);
	assert_true(atomic_load(&p->lreused) >= N - per - 2);
	for (i = N - 10; i < N; i++) {
		snprintf(key, sizeof(key), "big%d", i);
		check_big(st, key, 64 * KB, (char)('a' + i % 26));
	}
	/* Deleted, their blocks are kept up to an eighth of the limit, and
	 * the memory held is exactly the segments and the kept blocks. */
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "big%d", i);
		store_delete(st, key, strlen(key));
	}
	store_expire_run(st, 1000);
	assert_true(p->lcached > 0 && p->lcached <= 4096 * KB / 8);
	assert_int_equal(stats(st).mem_bytes, held_idle(st));
	/* Small items take the memory back: the kept blocks go first. */
	for (i = 0; i < 40000; i++)
		set7(st, 's', i, 's', 0);
	assert_true(stats(st).evictions > 0);
	assert_int_equal(p->lcached, 0);
	check_mem(st);
	store_destroy(st);
}

/* Large values of mixed sizes (their classes differ): the limit holds,
 * values stay intact, and the memory accounting is exact once they are
 * gone. */
static void
test_large_mixed_sizes(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 8192 * KB, 1, false);
	enum { N = 600 };
	size_t len[N];
	char key[32];
	int i;

	(void)state;
	srand(11);
	for (i = 0; i < N; i++) {
		len[i] = 30000 + (size_t)rand() % (1024 * KB - 30000);
		snprintf(key, sizeof(key), "mix%d", i);
		assert_int_equal(put_big(st, key, len[i], (char)('A' + i % 26)),
		    STORE_STORED);
		check_mem(st);
		if (i % 50 == 49)
			check_big(st, key, len[i], (char)('A' + i % 26));
	}
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "mix%d", i);
		store_delete(st, key, strlen(key));
	}
	store_expire_run(st, 1000);
	assert_int_equal(stats(st).mem_bytes, held_idle(st));
	assert_int_equal(stats(st).bytes, 0);
	store_destroy(st);
}

/* ---- expiry -------------------------------------------------------- */

/*
 * An expiry pass frees what expired, and only that, without any get: it
 * scans just the segments whose earliest exptime has passed, and empties
 * those left with nothing live, so later sets reuse their memory instead
 * of evicting.
 */
static void
test_expire_reclaims(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, SMALL_LIMIT, 1, false);
	struct pool *p = store_debug_pool(st);
	int ps = (int)per_seg(st, 7, VLEN), i;
	int ne = 10 * ps, np = 10 * ps, nq = 2 * ps;
	struct store_debug d0, d1;
	struct store_stats s;
	char key[16];
	size_t mem;

	(void)state;
	/* Whole segments each: e expire at +5, p never, q at +100. */
	for (i = 0; i < ne; i++)
		set7(st, 'e', i, 'e', 5);
	for (i = 0; i < np; i++)
		set7(st, 'p', i, 'p', 0);
	for (i = 0; i < nq; i++)
		set7(st, 'q', i, 'q', 100);
	hit(st, key7(key, 'e', 0));
	fc.now = T0 + 4;
	assert_int_equal(expire_all(st, 100), 0);
	assert_int_equal(stats(st).curr_items, ne + np + nq);
	assert_int_equal(debug(st).expire_units, 0);
	fc.now = T0 + 5;
	d0 = debug(st);
	assert_int_equal(store_expire_run(st, 100), ne);
	d1 = debug(st);
	s = stats(st);
	assert_int_equal(s.curr_items, np + nq);
	assert_int_equal(s.reclaimed, ne);
	assert_int_equal(s.expired_unfetched, ne - 1);
	assert_int_equal(s.get_expired, 0);
	assert_int_equal(s.evictions, 0);
	assert_int_equal(s.bytes, (size_t)(np + nq) * ITEM_SIZE(7, VLEN));
	/* Only the e segments were looked at, and all of them emptied. */
	assert_int_equal(d1.expire_units - d0.expire_units, ne);
	assert_int_equal(d1.evacuated - d0.evacuated, ne / ps);
	assert_int_equal(d1.moved, 0);
	assert_int_equal(p->nfree, ne / ps);
	for (i = 0; i < ne; i++)
		assert_false(present(st, key7(key, 'e', i)));
	/* The freed segments take as many new keys with no eviction and at
	 * most one new segment (one free segment stays for moves). */
	mem = s.mem_bytes;
	for (i = 0; i < ne; i++)
		set7(st, 'f', i, 'f', 0);
	s = stats(st);
	assert_int_equal(s.evictions, 0);
	assert_int_equal(debug(st).evacuated, d1.evacuated);
	assert_true(s.mem_bytes <= mem + p->seg_size);
	fc.now = T0 + 100;
	d0 = debug(st);
	assert_int_equal(store_expire_run(st, 100), nq);
	d1 = debug(st);
	assert_int_equal(d1.expire_units - d0.expire_units, nq);
	assert_int_equal(stats(st).curr_items, np + ne);
	assert_int_equal(stats(st).reclaimed, ne + nq);
	assert_true(stats(st).expiry_runs >= 3);
	for (i = 0; i < np; i += 7)
		assert_true(present(st, key7(key, 'p', i)));
	store_destroy(st);
}

/*
 * Overwrites leave dead copies behind in the log; without compaction a
 * cache whose keys are rewritten grows to its limit however little it
 * holds (so did a 1 GB cache holding 14 MB: RSS and cache misses grew
 * with it).  The expiry pass compacts sealed segments under half live,
 * so memory held stays within a few segments of the live bytes.
 */
static void
test_overwrites_compacted(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 4096 * KB, 1, false);
	struct pool *p = store_debug_pool(st);
	size_t live = 100 * ITEM_SIZE(7, VLEN), peak = 0;
	struct store_stats s;
	int i;

	(void)state;
	for (i = 0; i < 40000; i++) {
		set7(st, 'w', i % 100, 'a' + i % 26, 0);
		if (i % 1000 == 999) {
			store_expire_run(st, 100);
			s = stats(st);
			peak = s.mem_bytes > peak ? s.mem_bytes : peak;
		}
	}
	s = stats(st);
	print_message("100 keys rewritten 400 times: %zu bytes live, at most "
	    "%zu held (%zu-byte segments), %" PRIu64 " moved\n", live, peak,
	    p->seg_size, debug(st).moved);
	assert_int_equal(s.curr_items, 100);
	assert_int_equal(s.evictions, 0);
	/* 40,000 sets wrote 5.4 MB of items into a 4 MB cache. */
	assert_true(peak <= live + 8 * p->seg_size);
	assert_true(debug(st).evacuated > 0);
	for (i = 0; i < 100; i++)
		assert_non_null(peek(st, key7((char[16]){ 0 }, 'w', i)));
	store_destroy(st);
}

/*
 * Expiry work follows the segments due, not how much is stored: 100000
 * items expiring in an hour, then 1000 in 5 seconds.  The short ones sit
 * in at most two segments (one shared with long ones), so a pass looks
 * at no more than two segments' items; a scan of all would look at
 * 101000.
 */
static void
test_expire_proportional(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 0, false);
	size_t most = per_seg(st, 6, 1);	/* the smallest items here */
	struct store_debug d0, d1;
	char key[32];
	size_t bytes;
	int i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "long:%d", i);
		assert_int_equal(put(st, key, "v", 3600), STORE_STORED);
	}
	bytes = stats(st).bytes;
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "short:%d", i);
		assert_int_equal(put(st, key, "v", 5), STORE_STORED);
	}
	while (stats(st).hash_is_expanding)
		store_expire_run(st, 1000);
	fc.now = T0 + 6;
	d0 = debug(st);
	assert_int_equal(store_expire_run(st, 1000), 1000);
	d1 = debug(st);
	print_message("expiry: %" PRIu64 " items looked at to free 1000 of "
	    "101000\n", d1.expire_units - d0.expire_units);
	assert_true(d1.expire_units - d0.expire_units <= 2 * most);
	assert_true((d1.expire_units - d0.expire_units) * 5 < 101000);
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

/*
 * Checks the expiry heap against the FIFO (single-threaded, no pass
 * under way): every sealed segment with a min_exp is in the heap at a key
 * no later than it, no other segment is, and each parent's key is at most
 * its children's.
 */
static void
check_heap(store_t *st)
{
	struct pool *p = store_debug_pool(st);
	const struct seg *s;
	uint32_t i, n = 0, e;

	if (p->heap_lost)
		return;
	for (s = p->head; s != NULL; s = s->next) {
		e = atomic_load_explicit(&s->min_exp, memory_order_relaxed);
		if (e == 0) {
			assert_int_equal(s->heap_idx, HEAP_NONE);
			continue;
		}
		assert_true(s->heap_idx < p->heap_n);
		assert_ptr_equal(p->heap[s->heap_idx].s, s);
		assert_true(p->heap[s->heap_idx].key <= e);
		n++;
	}
	assert_int_equal(n, p->heap_n);
	for (i = 1; i < p->heap_n; i++)
		assert_true(p->heap[(i - 1) / 2].key <= p->heap[i].key);
}

/* Returns the sealed segments in the FIFO. */
static size_t
fifo_len(store_t *st)
{
	const struct seg *s;
	size_t n = 0;

	for (s = store_debug_pool(st)->head; s != NULL; s = s->next)
		n++;
	return n;
}

/*
 * With nothing due a pass looks at no item and at no sealed segment's
 * header, however many there are: only the arenas' active segments
 * (issue 16; a pass used to walk every header, here over 300 of them).
 */
static void
test_expire_nothing_due(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	struct store_debug d0, d1;
	char key[32], val[1000];
	int i, k;

	(void)state;
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	for (i = 0; i < 80000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put(st, key, val,
		    (int64_t[]){ 60, 300, 3600, 86400, 0 }[i % 5]),
		    STORE_STORED);
	}
	expire_all(st, 1000);		/* table upkeep after the fill */
	assert_true(fifo_len(st) > 300);
	check_heap(st);
	for (k = 0; k < 50; k++) {
		fc.now = T0 + (uint32_t)k;
		d0 = debug(st);
		assert_int_equal(store_expire_run(st, 1000), 0);
		d1 = debug(st);
		assert_int_equal(d1.expire_units, d0.expire_units);
		assert_true(d1.expire_segs - d0.expire_segs <= NARENAS * NTTL);
	}
	assert_int_equal(stats(st).curr_items, 80000);
	store_destroy(st);
}

/*
 * Items of different TTLs stored one after the other land in different
 * segments (the arenas' TTL buckets), so the pass at 60 s looks at the
 * 60 s items and the segments holding them, not at the long-lived items
 * they arrived with (with one segment for all it looked at every item).
 * What falls due is reclaimed on that pass, whole segments emptied.
 */
static void
test_expire_ttl_buckets(void **state)
{
	static const int64_t ttls[] = { 60, 3600, 86400, 0 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	struct pool *p = store_debug_pool(st);
	size_t per = per_seg(st, 7, VLEN);
	int n = (int)(40 * per), i, n60 = 0;
	struct store_debug d0, d1;
	char key[16];

	(void)state;
	assert_true(p->nttl >= 4);
	for (i = 0; i < n; i++) {
		set7(st, 't', i, 't', ttls[i % 4]);
		n60 += i % 4 == 0;
	}
	expire_all(st, 1000);
	fc.now = T0 + 59;
	assert_int_equal(expire_all(st, 1000), 0);
	fc.now = T0 + 60;
	d0 = debug(st);
	assert_int_equal(store_expire_run(st, 1000), n60);
	d1 = debug(st);
	print_message("60 s of mixed TTLs: %" PRIu64 " items and %" PRIu64
	    " headers looked at to free %d of %d\n",
	    d1.expire_units - d0.expire_units, d1.expire_segs - d0.expire_segs,
	    n60, n);
	assert_int_equal(d1.expire_units - d0.expire_units, n60);
	assert_true(d1.expire_segs - d0.expire_segs <=
	    (uint64_t)(n60 / per + 1 + NARENAS * NTTL));
	/* The 60 s segments held nothing else: emptied, not compacted. */
	assert_true(d1.evacuated - d0.evacuated >= (uint64_t)(n60 / per - 1));
	assert_int_equal(d1.moved, d0.moved);
	assert_int_equal(stats(st).curr_items, n - n60);
	for (i = 0; i < n; i += 9)
		assert_int_equal(present(st, key7(key, 't', i)), i % 4 != 0);
	check_heap(st);
	fc.now = T0 + 3600;
	d0 = debug(st);
	assert_int_equal(store_expire_run(st, 1000), n / 4);
	assert_int_equal(debug(st).expire_units - d0.expire_units, n / 4);
	store_destroy(st);
}

/*
 * A touch into the near future of an item in a sealed segment that was
 * due in a day moves the segment up the expiry heap: the pass at the new
 * time reclaims it, looking at that segment alone.
 */
static void
test_expire_touch_earlier(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 0, 1, false);
	size_t per = per_seg(st, 7, VLEN);
	int n = (int)(20 * per), i;
	struct store_debug d0, d1;
	char key[16];

	(void)state;
	for (i = 0; i < n; i++)
		set7(st, 'h', i, 'h', DAY);
	expire_all(st, 1000);
	assert_int_equal(store_touch(st, key7(key, 'h', 5), 7, 10),
	    STORE_TOUCHED);
	assert_int_equal(store_touch(st, key7(key, 'h', n / 2), 7, 20),
	    STORE_TOUCHED);
	check_heap(st);
	fc.now = T0 + 10;
	d0 = debug(st);
	assert_int_equal(store_expire_run(st, 1000), 1);
	d1 = debug(st);
	assert_true(d1.expire_units - d0.expire_units <= per);
	assert_false(present(st, key7(key, 'h', 5)));
	check_heap(st);
	fc.now = T0 + 20;
	assert_int_equal(store_expire_run(st, 1000), 1);
	assert_false(present(st, key7(key, 'h', n / 2)));
	assert_int_equal(stats(st).curr_items, n - 2);
	check_heap(st);
	store_destroy(st);
}

/*
 * With every TTL bucket open, a cache filled three times over with
 * mixed TTLs stays within its limit, evicts, reclaims what expires, and
 * flush_all still empties it.
 */
static void
test_ttl_buckets_keep_limit(void **state)
{
	static const int64_t ttls[] = { 5, 60, 3600, 86400, 0, 100000 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * 1024 * KB, 1, false);
	struct pool *p = store_debug_pool(st);
	char key[32], val[1000];
	struct store_stats s;
	int i;

	(void)state;
	assert_int_equal(p->nttl, NTTL);
	memset(val, 'x', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	for (i = 0; i < 200000; i++) {
		snprintf(key, sizeof(key), "b%d", i);
		assert_int_equal(put(st, key, val, ttls[i % 6]), STORE_STORED);
		if (i % 1000 == 0) {
			check_mem(st);
			fc.now++;
			store_expire_run(st, 1000);
		}
	}
	s = stats(st);
	check_mem(st);
	assert_true(s.evictions > 0);
	assert_true(s.crawler_reclaimed > 0);
	check_heap(st);
	store_flush(st, 0);
	store_expire_run(st, 1000);
	s = stats(st);
	assert_int_equal(s.curr_items, 0);
	assert_int_equal(s.bytes, 0);
	assert_int_equal(p->heap_n, 0);
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
		/* From a second to 30 days away, and over a year. */
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
	/* Bounded holds, and work by the items in segments due, not by
	 * seconds passed. */
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
check_expiry_model(store_t *st, const uint32_t *exp, int n, uint32_t now)
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
test_expiry_random(void **state)
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
		check_expiry_model(st, exp, N, fc.now);
		check_heap(st);
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
	assert_int_equal(s.bytes, isize("b", "v"));
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
	/* 100000 keys a shard: 2^16 buckets or more, at most two a bucket
	 * (whatever load factor the tables grow at, up to 2). */
	assert_true(stats(st).hash_power_level >= 16);
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
/* 12 segments of 4 KiB.  The threads' 16 held references can pin as many
 * segments as they hold items, so most sets still find no room, yet TTL'd
 * items live long enough to expire: at 24 KiB a run under TSan and two CPU
 * hogs once reclaimed none (at 48 KiB: 216 and more in 20 such runs). */
#define HAMMER_LIMIT	(48 * KB)

/* Written before the threads start, read-only after. */
static char hammer_keys[HAMMER_KEYS][16];

struct hammer {
	store_t		*st;
	unsigned	 seed;
	int		 bad;		/* broken invariants seen */
	int		 sets;		/* plain sets tried */
	int		 nomem;		/* of them, failed NO_MEMORY */
	uint64_t	 peeks;		/* gets answered without the lock */
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

/* True if v is digits and "<cc..c>" runs, each run one lowercase letter;
 * digits may be followed by spaces (an incr result padded to the old
 * length). */
static bool
well_formed(const char *v, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		if ((v[i] >= '0' && v[i] <= '9') || (v[i] == ' ' && i > 0 &&
		    (v[i - 1] == ' ' || (v[i - 1] >= '0' && v[i - 1] <= '9')))) {
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
	return true;
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

/* store_get_with's visitor in the hammer: the item shown (a copy when
 * read without the lock) is well-formed for the key. */
struct hammer_seen {
	const char	*key;
	int		 bad;
};

static void
hammer_seen(void *ctx, item_t *it)
{
	struct hammer_seen *v = ctx;

	v->bad += !item_ok(it, v->key);
}

/* Gets a key by visit, twice (the second is more likely to be answered
 * without the lock), checking what is shown. */
static void
hammer_visit(struct hammer *h, const char *key)
{
	struct hammer_seen v = { key, 0 };
	uint64_t hv = store_key_hash(h->st, key, strlen(key));

	(void)store_get_with(h->st, key, strlen(key), hv, hammer_seen, &v);
	(void)store_get_with(h->st, key, strlen(key), hv, hammer_seen, &v);
	h->bad += v.bad;
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
		h->bad += s.mem_bytes > HAMMER_LIMIT;
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
		h->sets++;
		h->nomem += put(st, key, val, hammer_ttl(h)) ==
		    STORE_NO_MEMORY;
	} else if (op < 40) {
		hammer_hold(h, held, held_key, key);
	} else if (op < 52) {
		hammer_visit(h, key);
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
	h->peeks = store_debug_peek_hits();
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
	uint64_t peeks = 0;
	int sets = 0, nomem = 0;
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
		sets += h[i].sets;
		peeks += h[i].peeks;
		nomem += h[i].nomem;
	}
	store_expiry_stop(st);
	s = stats(st);
	print_message("hammer: %" PRIu64 " evictions, %" PRIu64 " reclaimed, "
	    "%" PRIu64 " items, %" PRIu64 " bytes; %d of %d sets NO_MEMORY; "
	    "%" PRIu64 " gets without the lock\n", s.evictions, s.reclaimed,
	    s.curr_items, s.bytes, nomem, sets, peeks);
	assert_true(s.mem_bytes <= HAMMER_LIMIT);
	assert_true(s.bytes <= s.mem_bytes);
	assert_true(s.evictions > 0);
	assert_true(s.reclaimed > 0);
	/* Every reference is back: bytes is exactly the linked items. */
	for (i = 0; i < HAMMER_KEYS; i++) {
		if (store_get(st, hammer_keys[i], strlen(hammer_keys[i]),
		    &it) != STORE_OK)
			continue;
		assert_true(item_ok(it, hammer_keys[i]));
		sum += item_size(it);
		found++;
		store_release(st, it);
	}
	s = stats(st);
	assert_int_equal(s.bytes, sum);
	assert_int_equal(s.curr_items, found);
	store_destroy(st);
}

/* The hammer's four threads while this one resizes the limit (as
 * cache_memlimit does) between two thirds of it and all of it: no torn
 * value, the memory never over the larger limit, every reference back,
 * bytes exact at the end.  Stores refused meanwhile are no failure here:
 * the limit drops under them (tests/tsan/run.sh runs this under TSan). */
static void
test_hammer_resize(void **state)
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
		h[i] = (struct hammer){ .st = st, .seed = (unsigned)i + 7 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main,
		    &h[i]), 0);
	}
	for (i = 0; i < 300; i++) {
		assert_true(store_set_limit(st, HAMMER_LIMIT * 2 / 3));
		assert_true(store_set_limit(st, HAMMER_LIMIT));
	}
	for (i = 0; i < HAMMER_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(h[i].bad, 0);
	}
	store_expiry_stop(st);
	s = stats(st);
	assert_true(s.mem_bytes <= HAMMER_LIMIT);
	assert_int_equal(s.limit_maxbytes, HAMMER_LIMIT);
	for (i = 0; i < HAMMER_KEYS; i++) {
		if (store_get(st, hammer_keys[i], strlen(hammer_keys[i]),
		    &it) != STORE_OK)
			continue;
		assert_true(item_ok(it, hammer_keys[i]));
		sum += item_size(it);
		found++;
		store_release(st, it);
	}
	s = stats(st);
	assert_int_equal(s.bytes, sum);
	assert_int_equal(s.curr_items, found);
	store_destroy(st);
}

/* store_set_limit: shrinking evicts oldest-first down to the new limit
 * and gives the freed segments back; growing lets the cache fill again;
 * below two segments is refused.  The stats the pseudo slab class shows
 * (segments held and free, oldest age, evicted_time) follow. */
static void
test_set_limit(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 4 * SMALL_LIMIT, 0, false);
	char key[32], val[VLEN + 1];
	struct store_stats s;
	int i, n = 0;

	(void)state;
	memset(val, 'v', VLEN);
	val[VLEN] = '\0';
	/* fill to the limit, a second per 100 items */
	for (i = 0; stats(st).evictions == 0; i++) {
		if (i % 100 == 0)
			fc.now++;
		snprintf(key, sizeof key, "k:%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
		n++;
	}
	s = stats(st);
	assert_true(s.mem_bytes <= 4 * SMALL_LIMIT);
	assert_int_equal(s.limit_maxbytes, 4 * SMALL_LIMIT);
	assert_true(s.segs_held > 1);
	assert_int_equal(s.seg_size * s.segs_held, s.mem_bytes);
	assert_true(s.oldest_age > 0 && s.oldest_age <= fc.now - T0);
	fc.now += 10;
	assert_false(store_set_limit(st, 2 * s.seg_size - 1));
	assert_int_equal(stats(st).limit_maxbytes, 4 * SMALL_LIMIT);
	assert_true(store_set_limit(st, SMALL_LIMIT));
	s = stats(st);
	assert_int_equal(s.limit_maxbytes, SMALL_LIMIT);
	assert_true(s.mem_bytes <= SMALL_LIMIT);
	assert_true(s.evictions > 1);
	assert_true(s.evicted_time >= 10);
	assert_true(s.curr_items < (uint64_t)n);
	/* the newest items stayed, the oldest went */
	snprintf(key, sizeof key, "k:%d", n - 1);
	check_value(st, key, val);
	check_missing(st, "k:0");
	/* still stores within the new limit */
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof key, "n:%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
	}
	assert_true(stats(st).mem_bytes <= SMALL_LIMIT);
	/* grown back, it holds more again */
	assert_true(store_set_limit(st, 4 * SMALL_LIMIT));
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof key, "m:%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
	}
	assert_true(stats(st).mem_bytes > SMALL_LIMIT);
	store_destroy(st);
}

/* A get that read an item without the lock names the item's segment in
 * its thread's marking slot while it writes the item's marks (peek_mark):
 * a free of that segment waits until the slot is cleared.  Here this
 * thread holds the slot while another shrinks the limit, which evicts
 * the oldest segment and frees it. */
struct shrink_arg {
	store_t		*st;
	_Atomic bool	 done;
};

static void *
shrink_main(void *arg)
{
	struct shrink_arg *a = arg;

	assert_true(store_set_limit(a->st, 8 * SMALL_LIMIT));
	atomic_store(&a->done, true);
	return NULL;
}

static void
test_mark_wait(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * SMALL_LIMIT, 0, false);
	struct pool *p = store_debug_pool(st);
	struct shrink_arg a = { .st = st };
	char key[32], val[VLEN + 1];
	uint64_t waits;
	pthread_t thr;
	struct seg *g;
	int i;

	(void)state;
	memset(val, 'v', VLEN);
	val[VLEN] = '\0';
	for (i = 0; stats(st).evictions == 0; i++) {
		snprintf(key, sizeof key, "k:%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
	}
	g = p->head;			/* the oldest: evicted first */
	assert_true(store_debug_marking(g));
	waits = store_debug_mark_waits();
	assert_int_equal(pthread_create(&thr, NULL, shrink_main, &a), 0);
	while (store_debug_mark_waits() == waits && !atomic_load(&a.done))
		sched_yield();
	assert_false(atomic_load(&a.done));	/* the free waits */
	assert_true(store_debug_marking(NULL));
	assert_int_equal(pthread_join(thr, NULL), 0);
	assert_true(atomic_load(&a.done));
	assert_int_equal(g->state, SEG_FREE);	/* or given back: zeroed */
	assert_true(stats(st).mem_bytes <= 8 * SMALL_LIMIT);
	store_destroy(st);
}

/* Under no_evict, shrinking keeps the items and refuses new stores. */
static void
test_set_limit_no_evict(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 4 * SMALL_LIMIT, 0, true);
	char key[32], val[VLEN + 1];
	uint64_t items;
	int i;

	(void)state;
	memset(val, 'v', VLEN);
	val[VLEN] = '\0';
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "k:%d", i);
		assert_int_equal(put(st, key, val, 0), STORE_STORED);
	}
	items = stats(st).curr_items;
	assert_true(store_set_limit(st, SMALL_LIMIT / 2));
	assert_int_equal(stats(st).curr_items, items);
	assert_int_equal(stats(st).evictions, 0);
	assert_int_equal(put(st, "new", val, 0), STORE_NO_MEMORY);
	store_destroy(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_item_layout),
		cmocka_unit_test(test_item_optional_fields),
		cmocka_unit_test(test_item_fields_no_evict),
		cmocka_unit_test(test_touch_past_loose),
		cmocka_unit_test(test_retime_no_room),
		cmocka_unit_test(test_exptime_conversion),
		cmocka_unit_test(test_ttl_rules),
		cmocka_unit_test(test_set_expired_replaces_old),
		cmocka_unit_test(test_expired_never_returned),
		cmocka_unit_test(test_touch_and_gat),
		cmocka_unit_test(test_get_with_and_prefetch),
		cmocka_unit_test(test_get_lockfree),
		cmocka_unit_test(test_mark_wait),
		cmocka_unit_test(test_set_add_replace),
		cmocka_unit_test(test_append_prepend),
		cmocka_unit_test(test_cas),
		cmocka_unit_test(test_cas_unique_across_readd),
		cmocka_unit_test(test_incr_decr),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_fifo_order),
		cmocka_unit_test(test_second_chance),
		cmocka_unit_test(test_scan_resistant),
		cmocka_unit_test(test_hit_standing),
		cmocka_unit_test(test_evict_reaps_dead),
		cmocka_unit_test(test_loose_items),
		cmocka_unit_test(test_mixed_sizes_keep_limit),
		cmocka_unit_test(test_no_evict),
		cmocka_unit_test(test_no_evict_reuses_empty),
		cmocka_unit_test(test_no_evict_compacts),
		cmocka_unit_test(test_no_evict_refusal_bounded),
		cmocka_unit_test(test_no_evict_refused_overwrite),
		cmocka_unit_test(test_lock_order_asserted),
		cmocka_unit_test(test_ref_survives_delete_replace),
		cmocka_unit_test(test_ref_survives_eviction),
		cmocka_unit_test(test_flush_now),
		cmocka_unit_test(test_flush_sweep_waits_for_busy),
		cmocka_unit_test(test_flush_delayed),
		cmocka_unit_test(test_flush_replaces_pending),
		cmocka_unit_test(test_flush_absolute),
		cmocka_unit_test(test_flush_absolute_past),
		cmocka_unit_test(test_flush_drains),
		cmocka_unit_test(test_large_blocks_reused),
		cmocka_unit_test(test_large_pages),
		cmocka_unit_test(test_large_mixed_sizes),
		cmocka_unit_test(test_expire_reclaims),
		cmocka_unit_test(test_expire_proportional),
		cmocka_unit_test(test_expire_nothing_due),
		cmocka_unit_test(test_expire_ttl_buckets),
		cmocka_unit_test(test_expire_touch_earlier),
		cmocka_unit_test(test_ttl_buckets_keep_limit),
		cmocka_unit_test(test_overwrites_compacted),
		cmocka_unit_test(test_large_clock_jump),
		cmocka_unit_test(test_expiry_random),
		cmocka_unit_test(test_expiry_thread_start_stop),
		cmocka_unit_test(test_stats_reset),
		cmocka_unit_test(test_rehash),
		cmocka_unit_test(test_hammer),
		cmocka_unit_test(test_hammer_resize),
		cmocka_unit_test(test_set_limit),
		cmocka_unit_test(test_set_limit_no_evict),
	};
	int i;

	for (i = 0; i < HAMMER_KEYS; i++)
		snprintf(hammer_keys[i], sizeof(hammer_keys[i]), "hk:%d", i);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
