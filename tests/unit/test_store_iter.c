/*
 * test_store_iter.c -- cmocka unit tests of the store's iteration API
 * (store_iter_init/store_iter_next, store/store_iter.c): what an entry
 * holds, dead items left out, and the guarantee that a key present and
 * unchanged for the whole walk is returned exactly once while the store
 * changes between steps.
 *
 * Interleavings are injected, not timed: the walk takes small batches
 * and between two calls the test grows the tables (inserts), shrinks
 * them (deletes plus expiry runs, which resize and rehash), moves items
 * to other segments (compaction), evicts and flushes.  One test runs a
 * writer thread against the walk for the real thing; it stops when the
 * walk is done, never after a time.
 */
#define _GNU_SOURCE
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

#define KB	1024u
#define MB	(1024u * 1024u)

/* Creates a store on a fake clock starting at T0. */
static store_t *
mk_store(struct fake_clock *fc, size_t limit, unsigned shards_log2)
{
	struct store_config cfg = {
		.mem_limit = limit,
		.item_size_max = MB,
		.shards_log2 = shards_log2,
		.clock = fake_now,
		.clock_ctx = fc,
	};
	store_t *st;

	atomic_store(&fc->now, T0);
	st = store_create(&cfg);
	assert_non_null(st);
	return st;
}

/* Sets key to a value of n bytes with flags and exptime. */
static store_status_t
put(store_t *st, const char *key, size_t n, uint32_t flags, int64_t exptime)
{
	item_t *it;
	store_status_t rc;

	rc = store_reserve(st, key, strlen(key), flags, exptime, n, &it);
	if (rc != STORE_OK)
		return rc;
	memset(item_value_mut(it), 'v', n);
	return store_commit(st, it, STORE_SET, 0, NULL);
}

/* Keys "s<i>" are the stable ones a test checks; any other key counts
 * only as "not listed twice". */
static void
skey(char *buf, size_t cap, int i)
{
	snprintf(buf, cap, "s%d", i);
}

/* Times each other key "n<i>" was listed: never more than once. */
#define NSEEN_MAX	200000
static unsigned nseen[NSEEN_MAX];

/* Tallies one entry: stable keys into seen[], others into *others (and
 * "n<i>" keys into nseen[], asserting none is listed twice). */
static void
tally(const struct store_iter_entry *e, unsigned *seen, int nstable,
    size_t *others)
{
	char buf[STORE_KEY_MAX + 1];
	char *end;
	long i;

	assert_true(e->nkey > 0 && e->nkey <= STORE_KEY_MAX);
	memcpy(buf, e->key, e->nkey);
	buf[e->nkey] = '\0';
	if (buf[0] != 's') {
		(*others)++;
		if (buf[0] == 'n') {
			i = strtol(buf + 1, &end, 10);
			assert_true(*end == '\0' && i >= 0 && i < NSEEN_MAX);
			if (++nseen[i] > 1)
				fail_msg("key %s listed twice", buf);
		}
		return;
	}
	i = strtol(buf + 1, &end, 10);
	assert_true(*end == '\0' && i >= 0 && i < nstable);
	seen[i]++;
}

/* Asserts every stable key was seen exactly once. */
static void
check_once(const unsigned *seen, int nstable)
{
	for (int i = 0; i < nstable; i++) {
		if (seen[i] != 1)
			fail_msg("stable key s%d listed %u times", i, seen[i]);
	}
}

/* Something a test does between two steps of a walk. */
typedef void (*between_fn)(store_t *st, void *ctx, unsigned step);

/* Walks the whole store in batches of max, calling between() after every
 * call; tallies the entries.  Returns the number of calls. */
static unsigned
walk(store_t *st, size_t max, unsigned *seen, int nstable, size_t *others,
    between_fn between, void *ctx)
{
	struct store_iter_entry *e = calloc(max, sizeof(*e));
	struct store_iter cur;
	unsigned calls = 0;
	size_t n;

	assert_non_null(e);
	memset(nseen, 0, sizeof(nseen));
	store_iter_init(&cur);
	while (!cur.done) {
		n = store_iter_next(st, &cur, e, max);
		assert_true(n <= max);
		for (size_t i = 0; i < n; i++)
			tally(&e[i], seen, nstable, others);
		calls++;
		assert_true(calls < 100000000u);
		if (between != NULL)
			between(st, ctx, calls);
	}
	/* Done stays done. */
	assert_int_equal(store_iter_next(st, &cur, e, max), 0);
	free(e);
	return calls;
}

/* Stores the stable keys s0 .. s<n-1>. */
static void
put_stable(store_t *st, int n)
{
	char key[32];

	for (int i = 0; i < n; i++) {
		skey(key, sizeof(key), i);
		assert_int_equal(put(st, key, 10, 0, 0), STORE_STORED);
	}
}

/* An empty store: the walk ends with nothing. */
static void
test_empty(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * MB, 6);
	size_t others = 0;

	(void)state;
	walk(st, 16, NULL, 0, &others, NULL, NULL);
	assert_int_equal(others, 0);
	store_destroy(st);
}

/* Every field of an entry, and dead items left out. */
static void
test_entry_fields(void **state)
{
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * MB, 2);
	struct store_iter_entry e[8];
	struct store_iter cur;
	item_t *it;
	uint64_t cas;
	size_t n, total = 0;
	bool saw_a = false, saw_b = false;

	(void)state;
	assert_int_equal(put(st, "a", 3, 7, 100), STORE_STORED);
	assert_int_equal(put(st, "b", 5, 0, 0), STORE_STORED);
	assert_int_equal(put(st, "dead", 5, 0, 10), STORE_STORED);
	assert_int_equal(put(st, "gone", 5, 0, 0), STORE_STORED);
	assert_int_equal(store_delete(st, "gone", 4), STORE_DELETED);
	assert_int_equal(store_get(st, "a", 1, &it), STORE_OK);
	cas = item_cas(it);
	store_release(st, it);
	atomic_store(&fc.now, T0 + 20);	/* "dead" expired, a idle 20 s */
	assert_int_equal(store_get(st, "b", 1, &it), STORE_OK);
	store_release(st, it);
	store_iter_init(&cur);
	while (!cur.done) {
		n = store_iter_next(st, &cur, e, 8);
		for (size_t i = 0; i < n; i++, total++) {
			if (e[i].nkey == 1 && e[i].key[0] == 'a') {
				saw_a = true;
				assert_int_equal(e[i].exptime, T0 + 100);
				assert_int_equal(e[i].flags, 7);
				assert_int_equal(e[i].nbytes, 3);
				assert_int_equal(e[i].cas, cas);
				assert_true(e[i].fetched);
				assert_int_equal(e[i].atime, T0);
				/* With its exptime and flags. */
				assert_int_equal(e[i].size,
				    ITEM_SIZE_X(1, 3, 8));
			} else {
				assert_int_equal(e[i].nkey, 1);
				assert_int_equal(e[i].key[0], 'b');
				saw_b = true;
				assert_int_equal(e[i].exptime, 0);
				assert_int_equal(e[i].atime, T0 + 20);
			}
		}
	}
	assert_true(saw_a && saw_b);
	assert_int_equal(total, 2);
	/* A flush_all hides everything. */
	store_flush(st, 0);
	store_iter_init(&cur);
	while (!cur.done)
		assert_int_equal(store_iter_next(st, &cur, e, 8), 0);
	store_destroy(st);
}

/* A quiet store, every batch size from 1 up: each key once (batch 1 and 2
 * take the partial-range path, chains hold two on average). */
static void
test_batches(void **state)
{
	enum { N = 3000 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 64 * MB, 3);
	static unsigned seen[N];
	size_t sizes[] = { 1, 2, 3, 7, 64, 1000, 5000 }, others;

	(void)state;
	put_stable(st, N);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		memset(seen, 0, sizeof(seen));
		others = 0;
		walk(st, sizes[s], seen, N, &others, NULL, NULL);
		check_once(seen, N);
		assert_int_equal(others, 0);
	}
	store_destroy(st);
}

/* Between steps: inserts fresh keys, growing (and rehashing) the tables. */
struct grow_ctx {
	int		next;
	int		per_step;
	bool		saw_rehash;
	uint64_t	level0;
};

static void
grow_between(store_t *st, void *arg, unsigned step)
{
	struct grow_ctx *g = arg;
	struct store_stats s;
	char key[32];

	(void)step;
	for (int i = 0; i < g->per_step; i++) {
		snprintf(key, sizeof(key), "n%d", g->next++);
		assert_int_equal(put(st, key, 10, 0, 0), STORE_STORED);
	}
	store_get_stats(st, &s);
	g->saw_rehash |= s.hash_is_expanding != 0;
}

/* Tables grow four times over during the walk. */
static void
test_grow_during_walk(void **state)
{
	enum { N = 4000 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 256 * MB, 1);
	static unsigned seen[N];
	struct grow_ctx g = { .per_step = 10 };
	struct store_stats s0, s1;
	size_t others = 0;

	(void)state;
	put_stable(st, N);
	store_get_stats(st, &s0);
	walk(st, 4, seen, N, &others, grow_between, &g);
	check_once(seen, N);
	store_get_stats(st, &s1);
	assert_true(g.saw_rehash);
	assert_true(s1.hash_power_level >= s0.hash_power_level + 2);
	/* Fresh keys: at most once each (tally checks). */
	assert_true(others <= (size_t)g.next);
	store_destroy(st);
}

/* Between steps: deletes a slice of the other keys and lets the expiry
 * pass resize and rehash, a few buckets at a time. */
struct shrink_ctx {
	int		next;
	int		total;
	int		per_step;
	bool		saw_rehash;
};

static void
shrink_between(store_t *st, void *arg, unsigned step)
{
	struct shrink_ctx *c = arg;
	struct store_stats s;
	char key[32];

	(void)step;
	for (int i = 0; i < c->per_step && c->next < c->total; i++) {
		snprintf(key, sizeof(key), "n%d", c->next++);
		assert_int_equal(store_delete(st, key, strlen(key)),
		    STORE_DELETED);
	}
	store_expire_run(st, 4);
	store_get_stats(st, &s);
	c->saw_rehash |= s.hash_is_expanding != 0;
}

/* Tables shrink (and rehash from a big table into a small one) during
 * the walk. */
static void
test_shrink_during_walk(void **state)
{
	enum { N = 500, OTHERS = 60000 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 256 * MB, 1);
	static unsigned seen[N];
	struct shrink_ctx c = { .total = OTHERS, .per_step = 400 };
	struct store_stats s0, s1;
	size_t others = 0;
	char key[32];

	(void)state;
	put_stable(st, N);
	for (int i = 0; i < OTHERS; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		assert_int_equal(put(st, key, 10, 0, 0), STORE_STORED);
	}
	do
		store_expire_run(st, 1000);
	while (store_get_stats(st, &s0), s0.hash_is_expanding);
	walk(st, 2, seen, N, &others, shrink_between, &c);
	check_once(seen, N);
	store_get_stats(st, &s1);
	assert_true(c.saw_rehash);
	assert_true(s1.hash_power_level < s0.hash_power_level);
	store_destroy(st);
}

/* Between steps: overwrites other keys so their segments go mostly dead,
 * then runs expiry, which compacts them: stable keys in those segments
 * move. */
struct move_ctx {
	int		others;
	int		round;
};

static void
move_between(store_t *st, void *arg, unsigned step)
{
	struct move_ctx *c = arg;
	char key[32];

	if (step % 8 != 0)
		return;
	for (int i = 0; i < c->others; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		assert_int_equal(put(st, key, 40 + (c->round % 3), 0, 0),
		    STORE_STORED);
	}
	c->round++;
	store_expire_run(st, 1000);
}

/* Items move to other segments (compaction, eviction's second chance)
 * during the walk. */
static void
test_moves_during_walk(void **state)
{
	enum { N = 2000 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 8 * MB, 2);
	static unsigned seen[N];
	struct move_ctx c = { .others = 6000 };
	struct store_debug d0, d1;
	size_t others = 0;
	char key[32];

	(void)state;
	/* Stable keys interleaved with the others, in the same segments. */
	for (int i = 0; i < N; i++) {
		skey(key, sizeof(key), i);
		assert_int_equal(put(st, key, 40, 0, 0), STORE_STORED);
		for (int j = i * 3; j < i * 3 + 3; j++) {
			snprintf(key, sizeof(key), "n%d", j);
			assert_int_equal(put(st, key, 40, 0, 0),
			    STORE_STORED);
		}
	}
	store_debug_get(st, &d0);
	walk(st, 5, seen, N, &others, move_between, &c);
	check_once(seen, N);
	store_debug_get(st, &d1);
	assert_true(d1.moved > d0.moved);
	store_destroy(st);
}

/* ---- a real writer thread ------------------------------------------ */

struct writer {
	store_t		*st;
	_Atomic bool	 stop;
	unsigned long	 ops;
};

/* Sets and deletes keys of its own until told to stop. */
static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	char key[32];
	unsigned long i = 0;

	while (!atomic_load(&w->stop)) {
		snprintf(key, sizeof(key), "w%lu", i % 50000);
		if ((i / 50000) % 2 == 0)
			(void)put(w->st, key, 10, 0, 0);
		else
			(void)store_delete(w->st, key, strlen(key));
		if (i % 1000 == 0)
			store_expire_run(w->st, 16);
		i++;
	}
	w->ops = i;
	return NULL;
}

/* Between steps: makes sure the writer got going before the walk ends
 * (a yield, not a wait for time). */
static void
writer_between(store_t *st, void *arg, unsigned step)
{
	(void)st;
	(void)arg;
	(void)step;
	sched_yield();
}

/* A writer thread adds and deletes other keys (growing and shrinking the
 * tables) for the whole walk. */
static void
test_concurrent_writer(void **state)
{
	enum { N = 8000 };
	struct fake_clock fc;
	store_t *st = mk_store(&fc, 256 * MB, 2);
	static unsigned seen[N];
	struct writer w = { .st = st };
	size_t others = 0;
	pthread_t t;

	(void)state;
	put_stable(st, N);
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	walk(st, 8, seen, N, &others, writer_between, NULL);
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	check_once(seen, N);
	store_destroy(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_entry_fields),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_grow_during_walk),
		cmocka_unit_test(test_shrink_during_walk),
		cmocka_unit_test(test_moves_during_walk),
		cmocka_unit_test(test_concurrent_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
