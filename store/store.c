/*
 * store.c -- the item store: sharded hash table, refcounted items,
 * segmented LRU, memory limit with eviction, TTL, flush_all and the expiry
 * thread.
 *
 * Data structure: 2^shards_log2 shards, picked by the top bits of a 64-bit
 * key hash.  Each shard has a chained hash table indexed by the low bits,
 * grown (and shrunk) by incremental rehash in the style of Redis dict.c:
 * while ht[1] exists, every operation moves a bucket or so from ht[0], and
 * the expiry thread moves more, so no single operation rehashes a whole
 * table.  Each shard also has a segmented LRU, a timing wheel of items
 * that expire (store_wheel.c) and a CAS counter.  Items are one malloc
 * each (store_internal.h).
 *
 * Segmented LRU (SLRU, Karedla et al. 1994): two doubly linked lists per
 * shard (head = most recently used), told apart by the item's PROTECTED
 * bit.  A new key enters the probation head; a hit (get, gat, touch, a
 * failed add) on a probation item promotes it to the protected head, a
 * hit on a protected item moves it to that head.  An overwrite, append or
 * incr puts the new item in the head of the old one's segment.  While the
 * protected segment holds more than SLRU_PROTECTED_PCT of the shard's
 * bytes, its tail is demoted to the probation head, a few per operation.
 * Eviction takes the probation tail, and the protected tail only when
 * probation is empty.  Keys read again thus stay apart from keys set once
 * and never read, which a plain LRU lets push them out (a Zipf replay
 * with a set after each miss missed 11 to 12 % less often than under
 * plain LRU; docs/benchmarks.md).  Every step is O(1) under the shard
 * lock, and the segment costs no memory: it is one bit of the ref word.
 *
 * Ownership: a linked item holds one reference for the table; get, gat and
 * reserve hand one to the caller.  Unlinking drops the table's reference;
 * whoever drops the last one frees the memory, so a reply can still be
 * sent from an item that another thread has replaced or deleted.
 *
 * Memory: `bytes` counts malloc_usable_size + the allocator's size word
 * for every live item, linked or merely referenced.  A reservation charges
 * an upper-bound estimate first (compare-and-swap, only if it fits), so
 * the counter never passes the limit; when it does not fit, items are
 * evicted (a dead one within EVICT_TAIL_SEARCH of either segment's tail
 * first, then the probation tail), the key's own shard first, then the
 * others round-robin.
 *
 * flush_all: a global word (generation << 32 | due time).  The first
 * operation on a shard that sees a due flush it has not applied records
 * the shard's last CAS as a watermark; items with cas <= watermark are
 * dead, and leave curr_items at once.  Dead items are never hit, new
 * ones enter at the probation head, and a dead protected tail is freed
 * rather than demoted, so the dead items form the tail of each segment,
 * which store_expire_run frees in bounded batches.
 *
 * Locking: each shard's mutex guards everything in struct shard and the
 * mutable fields of the items linked in it.  A thread holds at most one
 * shard lock (asserted in debug builds), so eviction, which visits other
 * shards, runs with no lock held.  `bytes`, the flush word and item
 * refcounts are atomics.  flush_lock serializes store_flush and is taken
 * before (never while holding) a shard lock.  thr_lock guards the expiry
 * thread's stop flag.
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SHARDS_LOG2	6
#define MAX_SHARDS_LOG2		16
#define DEFAULT_ITEM_SIZE_MAX	(1024 * 1024)
#define ITEM_SIZE_LIMIT		(UINT32_MAX / 2)
#define HT_MIN_LOG2		8
#define HT_MAX_LOG2		32
#define REHASH_EMPTY_VISITS	10	/* buckets looked at per op, as Redis */
#define EXPIRY_BUDGET		1000	/* units per lock hold, thread */
#define EXPIRY_PERIOD_NS	100000000L
#define EXPIRE_MAX_ROUNDS	64	/* lock holds per shard per run */
#define EVICT_TAIL_SEARCH	5	/* tail items checked for a dead one */
#define SLRU_PROTECTED_PCT	80	/* protected share of a shard's bytes */
#define SLRU_DEMOTE_MAX		4	/* demotions per operation */
#define EXPTIME_PAST		1	/* an absolute time long gone */
#define LARGE_ALLOC		STORE_LARGE_ALLOC	/* mmapped */

struct htable {
	item_t		**b;		/* NULL when unused */
	size_t		  used;
	unsigned	  log2;
};

/* The two segments of a shard's LRU; an item's segment is its
 * ITEM_PROTECTED bit. */
enum segment {
	SEG_PROBATION,		/* new items, hit at most once since */
	SEG_PROTECTED,		/* items hit again while in probation */
	SEG_COUNT,
};

/* One LRU list: head = most recently used. */
struct lru {
	item_t		*head;
	item_t		*tail;
};

struct shard_stats {
	uint64_t	curr_items;
	uint64_t	total_items;
	uint64_t	evictions;
	uint64_t	evicted_unfetched;
	uint64_t	expired_unfetched;
	uint64_t	reclaimed;
	uint64_t	get_expired;
	uint64_t	get_flushed;
};

struct shard {
	pthread_mutex_t		lock;
	struct htable		ht[2];		/* ht[1] set while rehashing */
	size_t			rehash_idx;	/* next ht[0] bucket to move */
	struct lru		seg[SEG_COUNT];	/* probation, protected */
	size_t			lru_bytes;	/* item_size() of all linked */
	size_t			prot_bytes;	/* ... of the protected ones */
	uint64_t		cas_last;	/* last CAS handed out */
	uint64_t		flush_seen;	/* flush word last looked at */
	uint64_t		flush_wm;	/* cas <= this: flushed */
	uint64_t		flushed_linked;	/* linked, cas <= flush_wm */
	bool			flush_applied;
	bool			flush_sweep;	/* dead items at seg tails */
	size_t			hash_bytes;
	struct shard_stats	stats;
	struct wheel		wheel;
} __attribute__((aligned(64)));

struct store {
	struct shard	       *shards;
	unsigned		shards_log2;
	unsigned		nshards;
	size_t			mem_limit;
	size_t			item_size_max;
	size_t			page_size;
	bool			no_evict;
	store_clock_fn		clock;
	void		       *clock_ctx;
	uint64_t		seed;
	/* Read by every operation: kept off the line `bytes` bounces on. */
	_Atomic uint64_t	flush_word;	/* generation << 32 | due */
	_Alignas(64) _Atomic uint64_t bytes;
	_Atomic uint64_t	expiry_runs;
	_Atomic uint64_t	expire_units;
	_Atomic uint64_t	max_hold_units;
	pthread_mutex_t		flush_lock;
	pthread_mutex_t		thr_lock;
	pthread_cond_t		thr_cond;
	pthread_t		thr;
	bool			thr_running;
	bool			thr_stop;
};

enum unlink_why {
	UNLINK_DELETE,		/* delete, replace, touched into the past */
	UNLINK_EXPIRED,
	UNLINK_FLUSHED,
	UNLINK_EVICTED,
};

enum liveness {
	ITEM_LIVE,
	ITEM_EXPIRED,
	ITEM_FLUSHED,
};

/* Context handed through the wheel to expire_one. */
struct expire_ctx {
	store_t		*st;
	struct shard	*sh;
	size_t		*freed;
};

/* ---- lock order --------------------------------------------------- */

#ifndef NDEBUG
static _Thread_local const struct shard *held_shard;
#endif

/* Takes a shard lock; asserts the thread holds no other. */
static void
shard_lock(struct shard *sh)
{
#ifndef NDEBUG
	assert(held_shard == NULL);
#endif
	pthread_mutex_lock(&sh->lock);
#ifndef NDEBUG
	held_shard = sh;
#endif
}

/* Drops a shard lock. */
static void
shard_unlock(struct shard *sh)
{
#ifndef NDEBUG
	assert(held_shard == sh);
	held_shard = NULL;
#endif
	pthread_mutex_unlock(&sh->lock);
}

/* ---- hashing ------------------------------------------------------ */

/*
 * A small hash after wyhash (Wang Yi, public domain): 64x64->128 multiply
 * mixing, 16 bytes per round.  Keys are at most 250 bytes, so the 48-byte
 * three-lane loop of the original is left out.
 */
#define WY0	UINT64_C(0xa0761d6478bd642f)
#define WY1	UINT64_C(0xe7037ed1a0b428db)

/* Multiplies to 128 bits and folds the halves together. */
static uint64_t
mix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Multiplies to 128 bits, leaving the low half in a, the high in b. */
static void
mum(uint64_t *a, uint64_t *b)
{
	__uint128_t r = (__uint128_t)*a * *b;

	*a = (uint64_t)r;
	*b = (uint64_t)(r >> 64);
}

/* Reads 8 unaligned bytes. */
static uint64_t
rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Reads 4 unaligned bytes. */
static uint64_t
rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Hashes a key of any length with the store's seed. */
static uint64_t
hash_bytes(uint64_t seed, const void *key, size_t n)
{
	const uint8_t *p = key;
	uint64_t a = 0, b = 0;
	size_t i, q;

	seed ^= mix(seed ^ WY0, WY1);
	if (n > 16) {
		for (i = n; i > 16; i -= 16, p += 16)
			seed = mix(rd64(p) ^ WY1, rd64(p + 8) ^ seed);
		/* The last 16 bytes, overlapping the previous round. */
		a = rd64(p + i - 16);
		b = rd64(p + i - 8);
	} else if (n >= 4) {
		/* Two overlapping 4-byte reads from each end cover 4..16. */
		q = (n >> 3) << 2;
		a = (rd32(p) << 32) | rd32(p + q);
		b = (rd32(p + n - 4) << 32) | rd32(p + n - 4 - q);
	} else if (n > 0) {
		a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) |
		    p[n - 1];
	}
	a ^= WY1;
	b ^= seed;
	mum(&a, &b);
	return mix(a ^ WY0 ^ n, b ^ WY1);
}

/* Hashes a key. */
static uint64_t
key_hash(const store_t *st, const char *key, size_t nkey)
{
	return hash_bytes(st->seed, key, nkey);
}

/* Returns the shard index for a hash: its top bits. */
static unsigned
shard_index(const store_t *st, uint64_t hv)
{
	return (unsigned)(hv >> (64 - st->shards_log2));
}

/* Hashes an item's key. */
static uint64_t
item_hash(const store_t *st, const item_t *it)
{
	return key_hash(st, item_key(it), item_nkey(it));
}

/* ---- memory ------------------------------------------------------- */

/* Returns the full accounted cost of one allocation. */
size_t
store_alloc_cost(const void *p)
{
	return malloc_usable_size((void *)p) + sizeof(size_t);
}

/* Rounds n up to a multiple of the power of two a. */
static size_t
round_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

/* Returns an upper bound of what malloc(n) will cost (glibc: 16-byte
 * chunks with one size word; large ones mmapped, page-rounded). */
static size_t
cost_estimate(const store_t *st, size_t n)
{
	size_t c = round_up(n + sizeof(size_t), 16);

	if (n >= LARGE_ALLOC)
		return round_up(n + 4 * sizeof(size_t), st->page_size);
	return c < 32 ? 32 : c;
}

/* Charges est bytes if that keeps the total within the limit. */
static bool
mem_try_charge(store_t *st, size_t est)
{
	uint64_t cur = atomic_load_explicit(&st->bytes, memory_order_relaxed);

	do {
		if (cur + est > st->mem_limit)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&st->bytes, &cur,
	    cur + est, memory_order_relaxed, memory_order_relaxed));
	return true;
}

/* Returns charged bytes to the counter. */
static void
mem_uncharge(store_t *st, size_t n)
{
	atomic_fetch_sub_explicit(&st->bytes, n, memory_order_relaxed);
}

/* Frees an unreferenced item and uncharges its cost. */
static void
item_free(store_t *st, item_t *it)
{
	size_t cost = store_alloc_cost(it);

	free(it);
	mem_uncharge(st, cost);
}

/* ---- item references and flag bits -------------------------------- */

/* Takes a reference; the caller holds the item's shard lock. */
static void
item_ref(item_t *it)
{
	atomic_fetch_add_explicit(&it->ref, 1, memory_order_relaxed);
}

/* Sets a flag bit in the ref word. */
static void
item_set_bit(item_t *it, uint32_t bit)
{
	atomic_fetch_or_explicit(&it->ref, bit, memory_order_relaxed);
}

/* Clears a flag bit in the ref word. */
static void
item_clear_bit(item_t *it, uint32_t bit)
{
	atomic_fetch_and_explicit(&it->ref, ~bit, memory_order_relaxed);
}

/* Tests a flag bit in the ref word. */
static bool
item_has_bit(const item_t *it, uint32_t bit)
{
	return (atomic_load_explicit(&it->ref, memory_order_relaxed) & bit) !=
	    0;
}

/* Drops a reference; the item is freed once unlinked and unreferenced. */
void
store_release(store_t *st, item_t *it)
{
	uint32_t old;

	if (it == NULL)
		return;
	/* acq_rel: the last holder must see every other holder's writes. */
	old = atomic_fetch_sub_explicit(&it->ref, 1, memory_order_acq_rel);
	assert((old & ITEM_REF_MASK) != 0);
	if ((old & ITEM_REF_MASK) == 1) {
		assert((old & ITEM_LINKED) == 0);
		item_free(st, it);
	}
}

/* Notes that a get read the item; skips the write if already noted. */
static void
item_mark_fetched(item_t *it)
{
	if (!item_has_bit(it, ITEM_FETCHED))
		item_set_bit(it, ITEM_FETCHED);
}

/* ---- hash table ---------------------------------------------------- */

/* Returns the bucket of a hash in one table. */
static item_t **
ht_bucket(const struct htable *t, uint64_t hv)
{
	return &t->b[hv & (((size_t)1 << t->log2) - 1)];
}

/* True while a shard moves its items from ht[0] to ht[1]. */
static bool
ht_rehashing(const struct shard *sh)
{
	return sh->ht[1].b != NULL;
}

/* Compares an item's key. */
static bool
key_eq(const item_t *it, const char *key, size_t nkey)
{
	return item_nkey(it) == nkey && memcmp(item_key(it), key, nkey) == 0;
}

/* Finds a key in a shard's tables, live or not. */
static item_t *
ht_find(const struct shard *sh, uint64_t hv, const char *key, size_t nkey)
{
	item_t *it;
	int i;

	for (i = 0; i < 2 && sh->ht[i].b != NULL; i++)
		for (it = *ht_bucket(&sh->ht[i], hv); it; it = it->h_next)
			if (key_eq(it, key, nkey))
				return it;
	return NULL;
}

/* Pushes an item onto a table's bucket. */
static void
ht_push(struct htable *t, item_t *it, uint64_t hv)
{
	item_t **b = ht_bucket(t, hv);

	it->h_next = *b;
	*b = it;
	t->used++;
}

/* Adds an item to the table new items go to. */
static void
ht_insert(struct shard *sh, item_t *it, uint64_t hv)
{
	ht_push(&sh->ht[ht_rehashing(sh) ? 1 : 0], it, hv);
}

/* Removes an item from whichever table holds it. */
static void
ht_remove(struct shard *sh, item_t *it, uint64_t hv)
{
	item_t **pp;
	int i;

	for (i = 0; i < 2 && sh->ht[i].b != NULL; i++) {
		for (pp = ht_bucket(&sh->ht[i], hv); *pp; pp = &(*pp)->h_next) {
			if (*pp == it) {
				*pp = it->h_next;
				it->h_next = NULL;
				sh->ht[i].used--;
				return;
			}
		}
	}
	assert(false && "item not in its shard's table");
}

/* Allocates a bucket array as ht[1] and starts moving items into it. */
static void
ht_resize(struct shard *sh, unsigned log2)
{
	item_t **b = calloc((size_t)1 << log2, sizeof(*b));

	if (b == NULL)
		return;		/* longer chains until a later try works */
	sh->ht[1] = (struct htable){ .b = b, .log2 = log2 };
	sh->rehash_idx = 0;
	sh->hash_bytes += store_alloc_cost(b);
}

/* Starts a grow at load factor 1, or a shrink below 1/8. */
static void
ht_maybe_resize(struct shard *sh)
{
	const struct htable *t = &sh->ht[0];
	size_t size = (size_t)1 << t->log2;
	unsigned log2;

	if (t->used > size && t->log2 < HT_MAX_LOG2) {
		ht_resize(sh, t->log2 + 1);
	} else if (t->log2 > HT_MIN_LOG2 && t->used < size / 8) {
		/* Down to load 1/2, so a shrink is not undone right away. */
		for (log2 = HT_MIN_LOG2; ((size_t)1 << log2) < t->used * 2;)
			log2++;
		ht_resize(sh, log2);
	}
}

/* Moves one ht[0] chain into ht[1]. */
static void
ht_move_bucket(const store_t *st, struct shard *sh, item_t **b)
{
	item_t *it, *next;

	for (it = *b; it != NULL; it = next) {
		next = it->h_next;
		ht_push(&sh->ht[1], it, item_hash(st, it));
		sh->ht[0].used--;
	}
	*b = NULL;
}

/* Makes ht[1] the table once ht[0] is empty. */
static void
ht_finish_rehash(struct shard *sh)
{
	sh->hash_bytes -= store_alloc_cost(sh->ht[0].b);
	free(sh->ht[0].b);
	sh->ht[0] = sh->ht[1];
	sh->ht[1] = (struct htable){ 0 };
	sh->rehash_idx = 0;
}

/* Moves up to `moves` chains, looking at no more than `visits` buckets;
 * returns the buckets looked at. */
static size_t
ht_rehash_step(const store_t *st, struct shard *sh, size_t moves,
    size_t visits)
{
	size_t seen = 0;
	item_t **b;

	while (moves > 0 && seen < visits && sh->ht[0].used > 0) {
		b = &sh->ht[0].b[sh->rehash_idx++];
		seen++;
		if (*b != NULL) {
			ht_move_bucket(st, sh, b);
			moves--;
		}
	}
	if (sh->ht[0].used == 0)
		ht_finish_rehash(sh);
	return seen;
}

/* ---- segmented LRU ------------------------------------------------- */

/* Returns the bytes an item weighs in its segment's share. */
static size_t
item_size(const item_t *it)
{
	return sizeof(*it) + item_nkey(it) + it->nbytes + 2;
}

/* Returns the segment an item is in. */
static enum segment
item_segment(const item_t *it)
{
	return item_has_bit(it, ITEM_PROTECTED) ? SEG_PROTECTED :
	    SEG_PROBATION;
}

/* Puts an item at the most recently used end of a list. */
static void
lru_push(struct lru *l, item_t *it)
{
	it->lru_prev = NULL;
	it->lru_next = l->head;
	if (l->head != NULL)
		l->head->lru_prev = it;
	else
		l->tail = it;
	l->head = it;
}

/* Takes an item out of a list. */
static void
lru_unhook(struct lru *l, item_t *it)
{
	if (it->lru_prev != NULL)
		it->lru_prev->lru_next = it->lru_next;
	else
		l->head = it->lru_next;
	if (it->lru_next != NULL)
		it->lru_next->lru_prev = it->lru_prev;
	else
		l->tail = it->lru_prev;
	it->lru_prev = it->lru_next = NULL;
}

/* Puts a new item at the head of a segment. */
static void
seg_insert(struct shard *sh, item_t *it, enum segment seg)
{
	size_t size = item_size(it);

	assert(!item_has_bit(it, ITEM_PROTECTED));
	sh->lru_bytes += size;
	if (seg == SEG_PROTECTED) {
		item_set_bit(it, ITEM_PROTECTED);
		sh->prot_bytes += size;
	}
	lru_push(&sh->seg[seg], it);
}

/* Takes an item out of its segment. */
static void
seg_remove(struct shard *sh, item_t *it)
{
	enum segment seg = item_segment(it);
	size_t size = item_size(it);

	sh->lru_bytes -= size;
	if (seg == SEG_PROTECTED)
		sh->prot_bytes -= size;
	lru_unhook(&sh->seg[seg], it);
}

/* Moves an item to the head of a segment, the same or the other; the
 * flag word and the byte count change only with the segment. */
static void
seg_move(struct shard *sh, item_t *it, enum segment to)
{
	enum segment from = item_segment(it);

	if (from == to && sh->seg[to].head == it)
		return;
	lru_unhook(&sh->seg[from], it);
	lru_push(&sh->seg[to], it);
	if (from == to)
		return;
	if (to == SEG_PROTECTED) {
		item_set_bit(it, ITEM_PROTECTED);
		sh->prot_bytes += item_size(it);
	} else {
		item_clear_bit(it, ITEM_PROTECTED);
		sh->prot_bytes -= item_size(it);
	}
}

/* True while the protected segment holds more than its share. */
static bool
seg_protected_over(const struct shard *sh)
{
	return (uint64_t)sh->prot_bytes * 100 >
	    (uint64_t)sh->lru_bytes * SLRU_PROTECTED_PCT;
}

/* ---- linking ------------------------------------------------------- */

/* Gives an item the shard's next CAS. */
static void
item_set_cas(struct shard *sh, item_t *it)
{
	it->casnk = (++sh->cas_last << ITEM_CAS_SHIFT) | item_nkey(it);
}

/* Links an item at the head of a segment; the caller's reference
 * becomes the table's. */
static void
item_link(struct shard *sh, item_t *it, uint64_t hv, enum segment seg)
{
	item_set_cas(sh, it);
	item_set_bit(it, ITEM_LINKED);
	ht_insert(sh, it, hv);
	seg_insert(sh, it, seg);
	if (it->exptime != 0)
		wheel_insert(&sh->wheel, it);
	sh->stats.curr_items++;
	sh->stats.total_items++;
}

/* Counts an unlink by its cause. */
static void
count_unlink(struct shard *sh, const item_t *it, enum unlink_why why)
{
	bool fetched = item_has_bit(it, ITEM_FETCHED);

	switch (why) {
	case UNLINK_EXPIRED:
		sh->stats.reclaimed++;
		sh->stats.expired_unfetched += !fetched;
		break;
	case UNLINK_EVICTED:
		sh->stats.evictions++;
		sh->stats.evicted_unfetched += !fetched;
		break;
	case UNLINK_FLUSHED:	/* neither expired nor evicted */
	case UNLINK_DELETE:
		break;
	}
}

/* Unlinks an item and drops the table's reference. */
static void
item_unlink(store_t *st, struct shard *sh, item_t *it, enum unlink_why why)
{
	assert(item_has_bit(it, ITEM_LINKED));
	count_unlink(sh, it, why);
	ht_remove(sh, it, item_hash(st, it));
	seg_remove(sh, it);
	if (it->w_pprev != NULL)
		wheel_remove(&sh->wheel, it);
	item_clear_bit(it, ITEM_LINKED);
	/* curr_items counts visible items: flushed ones left it already. */
	if (item_cas(it) <= sh->flush_wm)
		sh->flushed_linked--;
	else
		sh->stats.curr_items--;
	store_release(st, it);
}

/* True if an absolute exptime has passed. */
static bool
time_passed(uint32_t exptime, uint32_t now)
{
	return exptime != 0 && exptime <= now;
}

/* Says whether a linked item is live, expired or flushed. */
static enum liveness
item_liveness(const struct shard *sh, const item_t *it, uint32_t now)
{
	if (item_cas(it) <= sh->flush_wm)
		return ITEM_FLUSHED;
	if (time_passed(it->exptime, now))
		return ITEM_EXPIRED;
	return ITEM_LIVE;
}

/* Unlinks a dead item for the reason it is dead. */
static void
item_reap(store_t *st, struct shard *sh, item_t *it, enum liveness why)
{
	item_unlink(st, sh, it,
	    why == ITEM_FLUSHED ? UNLINK_FLUSHED : UNLINK_EXPIRED);
}

/*
 * Demotes protected tails to the probation head while the protected
 * segment is over its share, at most SLRU_DEMOTE_MAX per call so a lock
 * hold stays bounded (any excess goes on the next call).  A dead tail is
 * freed instead of demoted: flushed items must stay behind every live
 * item of their segment for the sweep (see flush_sweep).
 */
static void
seg_balance(store_t *st, struct shard *sh, uint32_t now)
{
	enum liveness l;
	item_t *it;
	int n;

	for (n = 0; n < SLRU_DEMOTE_MAX && seg_protected_over(sh); n++) {
		it = sh->seg[SEG_PROTECTED].tail;
		if ((l = item_liveness(sh, it, now)) != ITEM_LIVE)
			item_reap(st, sh, it, l);
		else
			seg_move(sh, it, SEG_PROBATION);
	}
}

/* Records a hit on a live item: from probation it is promoted, in
 * protected it moves to the head.  Any hit rebalances, so an excess left
 * by a big promotion or by evictions shrinking the shard is worked off. */
static void
item_hit(store_t *st, struct shard *sh, item_t *it, uint32_t now)
{
	seg_move(sh, it, SEG_PROTECTED);
	if (seg_protected_over(sh))
		seg_balance(st, sh, now);
}

/* Gives a linked item a new exptime and refiles it in the wheel; a time
 * already past unlinks it. */
static void
item_retime(store_t *st, struct shard *sh, item_t *it, uint32_t exptime,
    uint32_t now)
{
	if (it->w_pprev != NULL)
		wheel_remove(&sh->wheel, it);
	it->exptime = exptime;
	if (time_passed(exptime, now))
		item_unlink(st, sh, it, UNLINK_DELETE);
	else if (exptime != 0)
		wheel_insert(&sh->wheel, it);
}

/* Replaces old (may be NULL) by it, or only drops old if it is born
 * expired; consumes the caller's reference to it.  The new item takes
 * old's segment: a key's standing survives an overwrite, incr or append,
 * while a key new to the cache starts in probation. */
static void
item_replace(store_t *st, struct shard *sh, item_t *old, item_t *it,
    uint64_t hv, uint32_t now, uint64_t *cas_out)
{
	enum segment seg = SEG_PROBATION;

	if (old != NULL) {
		seg = item_segment(old);
		item_unlink(st, sh, old, UNLINK_DELETE);
	}
	if (time_passed(it->exptime, now)) {
		/* STORED but never visible: no point in linking it. */
		item_set_cas(sh, it);
		if (cas_out != NULL)
			*cas_out = item_cas(it);
		store_release(st, it);
		return;
	}
	item_link(sh, it, hv, seg);
	if (seg == SEG_PROTECTED)
		seg_balance(st, sh, now);
	if (cas_out != NULL)
		*cas_out = item_cas(it);
}

/* ---- shard entry --------------------------------------------------- */

/* Reads the injected clock. */
static uint32_t
store_now(const store_t *st)
{
	return st->clock(st->clock_ctx);
}

/* Applies a due flush_all the shard has not applied yet. */
static void
flush_sync(const store_t *st, struct shard *sh, uint32_t now)
{
	uint64_t w = atomic_load_explicit(&st->flush_word,
	    memory_order_acquire);

	if (w != sh->flush_seen) {
		/* A newer flush replaces a pending one. */
		sh->flush_seen = w;
		sh->flush_applied = false;
	}
	if (w != 0 && !sh->flush_applied && (uint32_t)w <= now) {
		/* Every linked item has a CAS <= cas_last: all are dead. */
		sh->flush_wm = sh->cas_last;
		sh->flushed_linked += sh->stats.curr_items;
		sh->stats.curr_items = 0;
		sh->flush_applied = true;
		sh->flush_sweep = sh->seg[SEG_PROBATION].tail != NULL ||
		    sh->seg[SEG_PROTECTED].tail != NULL;
	}
}

/* Locks the shard of a hash and does the per-operation upkeep: pending
 * flush, one rehash step. */
static struct shard *
shard_enter(store_t *st, uint64_t hv, uint32_t now)
{
	struct shard *sh = &st->shards[shard_index(st, hv)];

	shard_lock(sh);
	flush_sync(st, sh, now);
	if (ht_rehashing(sh))
		ht_rehash_step(st, sh, 1, REHASH_EMPTY_VISITS);
	else
		ht_maybe_resize(sh);
	return sh;
}

/* Finds a live item; reaps a dead one found instead. */
static item_t *
lookup_live(store_t *st, struct shard *sh, uint64_t hv, const char *key,
    size_t nkey, uint32_t now)
{
	item_t *it = ht_find(sh, hv, key, nkey);
	enum liveness l;

	if (it == NULL)
		return NULL;
	l = item_liveness(sh, it, now);
	if (l == ITEM_LIVE)
		return it;
	if (l == ITEM_EXPIRED)
		sh->stats.get_expired++;
	else
		sh->stats.get_flushed++;
	item_reap(st, sh, it, l);
	return NULL;
}

/* ---- eviction ------------------------------------------------------ */

/* Returns a dead item near the tail of one segment, or NULL. */
static item_t *
seg_tail_dead(const struct shard *sh, enum segment seg, uint32_t now,
    enum liveness *why)
{
	item_t *it = sh->seg[seg].tail;
	int n;

	for (n = 0; it != NULL && n < EVICT_TAIL_SEARCH; n++) {
		*why = item_liveness(sh, it, now);
		if (*why != ITEM_LIVE)
			return it;
		it = it->lru_prev;
	}
	return NULL;
}

/* Returns a dead item near a segment tail, probation first, or NULL. */
static item_t *
tail_dead(const struct shard *sh, uint32_t now, enum liveness *why)
{
	item_t *it = seg_tail_dead(sh, SEG_PROBATION, now, why);

	return it != NULL ? it : seg_tail_dead(sh, SEG_PROTECTED, now, why);
}

/* Returns the live item to evict: the probation tail, or the protected
 * tail once probation is empty; NULL if the shard is empty. */
static item_t *
evict_victim(const struct shard *sh)
{
	item_t *it = sh->seg[SEG_PROBATION].tail;

	return it != NULL ? it : sh->seg[SEG_PROTECTED].tail;
}

/* Frees one item from a shard's segment tails, preferring a dead one
 * (counted as reclaimed, not evicted); false if the shard is empty. */
static bool
evict_one(store_t *st, struct shard *sh)
{
	uint32_t now = store_now(st);
	enum liveness why;
	item_t *it;

	shard_lock(sh);
	flush_sync(st, sh, now);
	if ((it = tail_dead(sh, now, &why)) != NULL)
		item_reap(st, sh, it, why);
	else if ((it = evict_victim(sh)) != NULL)
		item_unlink(st, sh, it, UNLINK_EVICTED);
	shard_unlock(sh);
	return it != NULL;
}

/* Charges est bytes, evicting round-robin from shard `first` on when the
 * limit is in the way; STORE_OK or STORE_NO_MEMORY. */
static store_status_t
mem_reserve(store_t *st, size_t est, unsigned first)
{
	size_t tries, max_tries = 4 * (size_t)st->nshards + est / 32;
	unsigned idle = 0, s = first;

	if (est > st->mem_limit)
		return STORE_NO_MEMORY;
	for (tries = 0; !mem_try_charge(st, est); tries++) {
		if (st->no_evict || tries >= max_tries || idle >= st->nshards)
			return STORE_NO_MEMORY;
		/* An evicted item still referenced frees nothing yet. */
		idle = evict_one(st, &st->shards[s]) ? 0 : idle + 1;
		s = (s + 1) & (st->nshards - 1);
	}
	return STORE_OK;
}

/* ---- allocation ---------------------------------------------------- */

/* Allocates an unlinked item with one reference, within the limit. */
static store_status_t
item_alloc(store_t *st, unsigned shard, const char *key, size_t nkey,
    uint32_t flags, uint32_t exptime, size_t nbytes, item_t **out)
{
	size_t size, est, cost;
	store_status_t rc;
	item_t *it;

	*out = NULL;
	if (nkey > STORE_KEY_MAX || nbytes > st->item_size_max)
		return STORE_TOO_LARGE;
	size = sizeof(item_t) + nkey + nbytes + 2;
	est = cost_estimate(st, size);
	if ((rc = mem_reserve(st, est, shard)) != STORE_OK)
		return rc;
	if ((it = malloc(size)) == NULL) {
		mem_uncharge(st, est);
		return STORE_NO_MEMORY;
	}
	/* Settle the estimate to the real cost: glibc hands out up to 16
	 * bytes more when the rest of a free chunk would be too small. */
	cost = store_alloc_cost(it);
	if (cost < est) {
		mem_uncharge(st, est - cost);
	} else if (cost > est && mem_reserve(st, cost - est, shard) !=
	    STORE_OK) {
		free(it);
		mem_uncharge(st, est);
		return STORE_NO_MEMORY;
	}
	memset(it, 0, sizeof(*it));
	it->casnk = nkey;
	it->exptime = exptime;
	it->flags = flags;
	it->nbytes = (uint32_t)nbytes;
	atomic_init(&it->ref, 1);
	memcpy(it->data, key, nkey);
	*out = it;
	return STORE_OK;
}

/* Allocates an unlinked item for key; the caller fills the value. */
store_status_t
store_reserve(store_t *st, const char *key, size_t nkey, uint32_t flags,
    int64_t exptime, size_t nbytes, item_t **out)
{
	uint64_t hv = key_hash(st, key, nkey);

	return item_alloc(st, shard_index(st, hv), key, nkey, flags,
	    store_exptime(st, exptime), nbytes, out);
}

/* ---- storage commands ---------------------------------------------- */

/* Decides a set/add/replace/cas against the current live item. */
static store_status_t
commit_check(store_mode_t mode, const item_t *old, uint64_t cas)
{
	switch (mode) {
	case STORE_ADD:
		return old == NULL ? STORE_STORED : STORE_NOT_STORED;
	case STORE_REPLACE:
		return old != NULL ? STORE_STORED : STORE_NOT_STORED;
	case STORE_CAS:
		if (old == NULL)
			return STORE_NOT_FOUND;
		return item_cas(old) == cas ? STORE_STORED : STORE_EXISTS;
	default:
		return STORE_STORED;
	}
}

/* Copies old's value and the new data into a fresh item for
 * append/prepend; called without a lock. */
static store_status_t
concat_build(store_t *st, unsigned shard, const item_t *old,
    const item_t *add, bool prepend, item_t **out)
{
	size_t n = (size_t)old->nbytes + add->nbytes;
	const item_t *first = prepend ? add : old;
	const item_t *second = prepend ? old : add;
	store_status_t rc;
	char *v;

	if (n > st->item_size_max)
		return STORE_TOO_LARGE;
	rc = item_alloc(st, shard, item_key(old), item_nkey(old), old->flags,
	    0, n, out);
	if (rc != STORE_OK)
		return rc;
	v = item_value_mut(*out);
	memcpy(v, item_value(first), first->nbytes);
	memcpy(v + first->nbytes, item_value(second), second->nbytes);
	memcpy(v + n, "\r\n", 2);
	return STORE_OK;
}

/* Links nit in place of old if old is still the key's live item, keeping
 * old's current exptime; on success consumes nit. */
static bool
swap_if_current(store_t *st, item_t *old, item_t *nit, uint64_t hv,
    uint64_t *cas_out)
{
	uint32_t now = store_now(st);
	struct shard *sh = shard_enter(st, hv, now);
	bool ok;

	ok = lookup_live(st, sh, hv, item_key(old), item_nkey(old), now) ==
	    old;
	if (ok) {
		nit->exptime = old->exptime;
		item_replace(st, sh, old, nit, hv, now, cas_out);
	}
	shard_unlock(sh);
	return ok;
}

/* Returns the live item for key with a reference, or NULL. */
static item_t *
get_ref(store_t *st, uint64_t hv, const char *key, size_t nkey)
{
	uint32_t now = store_now(st);
	struct shard *sh = shard_enter(st, hv, now);
	item_t *it = lookup_live(st, sh, hv, key, nkey, now);

	if (it != NULL)
		item_ref(it);
	shard_unlock(sh);
	return it;
}

/*
 * append/prepend, optimistically: reference the old item under the lock,
 * build the combined item without a lock (allocation may evict, which
 * takes other shard locks), then link it only if old is still current,
 * else start over.  A retry means another writer got in, so the loop
 * always makes progress somewhere.
 */
static store_status_t
commit_concat(store_t *st, item_t *add, bool prepend, uint64_t *cas_out)
{
	uint64_t hv = item_hash(st, add);
	store_status_t rc;
	item_t *old, *nit;
	bool done;

	for (;;) {
		old = get_ref(st, hv, item_key(add), item_nkey(add));
		if (old == NULL) {
			rc = STORE_NOT_STORED;
			break;
		}
		rc = concat_build(st, shard_index(st, hv), old, add, prepend,
		    &nit);
		done = rc == STORE_OK &&
		    swap_if_current(st, old, nit, hv, cas_out);
		if (rc == STORE_OK && !done)
			store_release(st, nit);
		store_release(st, old);
		if (rc != STORE_OK || done) {
			rc = rc == STORE_OK ? STORE_STORED : rc;
			break;
		}
	}
	store_release(st, add);
	return rc;
}

/* Links a reserved item according to mode; consumes the reference. */
store_status_t
store_commit(store_t *st, item_t *it, store_mode_t mode, uint64_t cas,
    uint64_t *cas_out)
{
	uint64_t hv;
	uint32_t now;
	struct shard *sh;
	store_status_t rc;
	item_t *old;

	assert(!item_has_bit(it, ITEM_LINKED));
	if (mode == STORE_APPEND || mode == STORE_PREPEND)
		return commit_concat(st, it, mode == STORE_PREPEND, cas_out);
	hv = item_hash(st, it);
	now = store_now(st);
	sh = shard_enter(st, hv, now);
	old = lookup_live(st, sh, hv, item_key(it), item_nkey(it), now);
	rc = commit_check(mode, old, cas);
	if (rc == STORE_STORED)
		item_replace(st, sh, old, it, hv, now, cas_out);
	else if (old != NULL && mode == STORE_ADD)
		item_hit(st, sh, old, now);	/* as memcached's add */
	shard_unlock(sh);
	if (rc != STORE_STORED)
		store_release(st, it);
	return rc;
}

/* ---- retrieval and per-key commands -------------------------------- */

/* Finds a live item, counts a hit on it, and optionally sets a new
 * exptime and hands out a reference; false if absent. */
static bool
item_access(store_t *st, const char *key, size_t nkey, bool retime,
    int64_t exptime, item_t **out)
{
	uint32_t exp = retime ? store_exptime(st, exptime) : 0;
	uint64_t hv = key_hash(st, key, nkey);
	uint32_t now = store_now(st);
	struct shard *sh;
	item_t *it;

	if (out != NULL)
		*out = NULL;
	if (nkey > STORE_KEY_MAX)
		return false;
	sh = shard_enter(st, hv, now);
	it = lookup_live(st, sh, hv, key, nkey, now);
	if (it != NULL) {
		item_hit(st, sh, it, now);
		if (out != NULL) {
			item_ref(it);
			item_mark_fetched(it);
			*out = it;
		}
		if (retime)
			item_retime(st, sh, it, exp, now);
	}
	shard_unlock(sh);
	return it != NULL;
}

/* Looks up a live item and counts a hit on it; STORE_OK or NOT_FOUND. */
store_status_t
store_get(store_t *st, const char *key, size_t nkey, item_t **out)
{
	return item_access(st, key, nkey, false, 0, out) ? STORE_OK :
	    STORE_NOT_FOUND;
}

/* Like store_get, and also sets a new exptime. */
store_status_t
store_gat(store_t *st, const char *key, size_t nkey, int64_t exptime,
    item_t **out)
{
	return item_access(st, key, nkey, true, exptime, out) ? STORE_OK :
	    STORE_NOT_FOUND;
}

/* Sets a new exptime; STORE_TOUCHED or STORE_NOT_FOUND. */
store_status_t
store_touch(store_t *st, const char *key, size_t nkey, int64_t exptime)
{
	return item_access(st, key, nkey, true, exptime, NULL) ?
	    STORE_TOUCHED : STORE_NOT_FOUND;
}

/* Unlinks a key; STORE_DELETED or STORE_NOT_FOUND. */
store_status_t
store_delete(store_t *st, const char *key, size_t nkey)
{
	uint64_t hv = key_hash(st, key, nkey);
	uint32_t now = store_now(st);
	struct shard *sh;
	item_t *it;

	if (nkey > STORE_KEY_MAX)
		return STORE_NOT_FOUND;
	sh = shard_enter(st, hv, now);
	it = lookup_live(st, sh, hv, key, nkey, now);
	if (it != NULL)
		item_unlink(st, sh, it, UNLINK_DELETE);
	shard_unlock(sh);
	return it != NULL ? STORE_DELETED : STORE_NOT_FOUND;
}

/* ---- incr/decr ----------------------------------------------------- */

/* Parses 1..20 decimal digits, then only spaces, without overflow. */
static bool
parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0, d;
	size_t i;

	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		d = (uint64_t)(s[i] - '0');
		if (i == 20 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (i == 0)
		return false;
	while (i < n && s[i] == ' ')
		i++;
	*out = v;
	return i == n;
}

/* Applies an incr (wrapping) or decr (stopping at 0). */
static uint64_t
apply_delta(uint64_t v, bool incr, uint64_t delta)
{
	if (incr)
		return v + delta;
	return v > delta ? v - delta : 0;
}

/* Builds the item holding the decimal result of incr/decr on old. */
static store_status_t
incr_build(store_t *st, unsigned shard, const item_t *old, bool incr,
    uint64_t delta, uint64_t *result, item_t **out)
{
	char buf[24];
	uint64_t v;
	int len;
	store_status_t rc;

	*out = NULL;
	if (!parse_u64(item_value(old), old->nbytes, &v))
		return STORE_NON_NUMERIC;
	*result = apply_delta(v, incr, delta);
	len = snprintf(buf, sizeof(buf), "%" PRIu64, *result);
	rc = item_alloc(st, shard, item_key(old), item_nkey(old), old->flags,
	    0, (size_t)len, out);
	if (rc != STORE_OK)
		return rc;
	memcpy(item_value_mut(*out), buf, (size_t)len);
	memcpy(item_value_mut(*out) + len, "\r\n", 2);
	return STORE_OK;
}

/* Adds or subtracts delta, storing the result as a new item with a new
 * CAS; same optimistic scheme as append. */
store_status_t
store_incr(store_t *st, const char *key, size_t nkey, bool incr,
    uint64_t delta, uint64_t *result)
{
	uint64_t hv = key_hash(st, key, nkey), v = 0;
	store_status_t rc;
	item_t *old, *nit;
	bool done;

	if (nkey > STORE_KEY_MAX)
		return STORE_NOT_FOUND;
	for (;;) {
		if ((old = get_ref(st, hv, key, nkey)) == NULL)
			return STORE_NOT_FOUND;
		rc = incr_build(st, shard_index(st, hv), old, incr, delta, &v,
		    &nit);
		done = rc == STORE_OK && swap_if_current(st, old, nit, hv,
		    NULL);
		if (rc == STORE_OK && !done)
			store_release(st, nit);
		store_release(st, old);
		if (rc != STORE_OK)
			return rc;
		if (done)
			break;
	}
	if (result != NULL)
		*result = v;
	return STORE_OK;
}

/* ---- flush_all ----------------------------------------------------- */

/* Applies any due flush in every shard, one lock at a time. */
static void
flush_sync_all(store_t *st)
{
	unsigned i;

	for (i = 0; i < st->nshards; i++) {
		shard_lock(&st->shards[i]);
		flush_sync(st, &st->shards[i], store_now(st));
		shard_unlock(&st->shards[i]);
	}
}

/* Invalidates every item stored before now + delay (delay <= 0: now). */
void
store_flush(store_t *st, int64_t delay)
{
	uint64_t w, gen, due;
	uint32_t now;

	pthread_mutex_lock(&st->flush_lock);
	/* A flush that came due must take effect everywhere before a new
	 * word can replace it in shards that have not looked yet. */
	flush_sync_all(st);
	now = store_now(st);
	if (delay <= 0)
		due = now;
	else if (delay > STORE_REALTIME_MAXDELTA)
		due = (uint64_t)delay;	/* absolute, like an exptime */
	else
		due = (uint64_t)now + (uint64_t)delay;
	if (due > UINT32_MAX)
		due = UINT32_MAX;
	w = atomic_load_explicit(&st->flush_word, memory_order_relaxed);
	gen = ((w >> 32) + 1) & UINT32_MAX;
	gen = gen == 0 ? 1 : gen;
	atomic_store_explicit(&st->flush_word, gen << 32 | due,
	    memory_order_release);
	/* Due already (now, or an absolute time gone by): apply it now. */
	if (due <= now)
		flush_sync_all(st);
	pthread_mutex_unlock(&st->flush_lock);
}

/* ---- expiry -------------------------------------------------------- */

/* Wheel callback: unlinks an expired item. */
static void
expire_one(item_t *it, void *arg)
{
	struct expire_ctx *ctx = arg;

	item_unlink(ctx->st, ctx->sh, it, UNLINK_EXPIRED);
	(*ctx->freed)++;
}

/* Returns a flushed item at a segment tail, or NULL once both tails are
 * live or empty. */
static item_t *
flushed_tail(const struct shard *sh)
{
	item_t *it;
	int seg;

	for (seg = 0; seg < SEG_COUNT; seg++) {
		it = sh->seg[seg].tail;
		if (it != NULL && item_cas(it) <= sh->flush_wm)
			return it;
	}
	return NULL;
}

/* Frees flushed items from the segment tails; returns units used. */
static size_t
flush_sweep(store_t *st, struct shard *sh, size_t budget, size_t *freed)
{
	size_t used = 0;
	item_t *it;

	while (sh->flush_sweep && used < budget) {
		if ((it = flushed_tail(sh)) == NULL) {
			sh->flush_sweep = false;
			break;
		}
		item_unlink(st, sh, it, UNLINK_FLUSHED);
		(*freed)++;
		used++;
	}
	return used;
}

/* Records the units of one lock hold for the debug counters. */
static void
note_hold(store_t *st, size_t used)
{
	uint64_t max = atomic_load_explicit(&st->max_hold_units,
	    memory_order_relaxed);

	atomic_fetch_add_explicit(&st->expire_units, used,
	    memory_order_relaxed);
	while (used > max && !atomic_compare_exchange_weak_explicit(
	    &st->max_hold_units, &max, used, memory_order_relaxed,
	    memory_order_relaxed))
		;
}

/* One bounded lock hold of expiry work on a shard: flushed items, the
 * wheel, then rehash; true if work is left. */
static bool
shard_expire(store_t *st, struct shard *sh, size_t budget, size_t *freed)
{
	uint32_t now = store_now(st);
	struct expire_ctx ctx = { st, sh, freed };
	size_t used;
	bool more;

	shard_lock(sh);
	flush_sync(st, sh, now);
	used = flush_sweep(st, sh, budget, freed);
	used += wheel_advance(&sh->wheel, now, budget - used, expire_one,
	    &ctx);
	/* An idle table also shrinks after a mass expiry, step by step. */
	if (!ht_rehashing(sh))
		ht_maybe_resize(sh);
	if (ht_rehashing(sh) && used < budget) {
		used += ht_rehash_step(st, sh, budget - used, budget - used);
		if (!ht_rehashing(sh))
			ht_maybe_resize(sh);
	}
	more = sh->flush_sweep || !wheel_caught_up(&sh->wheel, now) ||
	    ht_rehashing(sh);
	shard_unlock(sh);
	note_hold(st, used);
	return more;
}

/* Frees expired and flushed items up to now, at most `budget` units of
 * work per shard lock hold; returns items freed. */
size_t
store_expire_run(store_t *st, size_t budget)
{
	size_t freed = 0;
	unsigned round, i;
	bool more = true;

	budget = budget == 0 ? 1 : budget;
	atomic_fetch_add_explicit(&st->expiry_runs, 1, memory_order_relaxed);
	/* Round-robin holds so one busy shard does not starve the rest. */
	for (round = 0; more && round < EXPIRE_MAX_ROUNDS; round++) {
		more = false;
		for (i = 0; i < st->nshards; i++)
			more |= shard_expire(st, &st->shards[i], budget,
			    &freed);
	}
	return freed;
}

/* Sleeps up to one period or until stop is requested; true to go on. */
static bool
expiry_wait(store_t *st)
{
	struct timespec ts;
	bool go;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += EXPIRY_PERIOD_NS;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&st->thr_lock);
	/* A spurious wakeup only means an early pass. */
	if (!st->thr_stop)
		pthread_cond_timedwait(&st->thr_cond, &st->thr_lock, &ts);
	go = !st->thr_stop;
	pthread_mutex_unlock(&st->thr_lock);
	return go;
}

/* The expiry thread: a run every 100 ms until stopped. */
static void *
expiry_main(void *arg)
{
	store_t *st = arg;

	do {
		store_expire_run(st, EXPIRY_BUDGET);
	} while (expiry_wait(st));
	return NULL;
}

/* Starts the background expiry thread; 0 or errno. */
int
store_expiry_start(store_t *st)
{
	int rc;

	if (st->thr_running)
		return EBUSY;
	st->thr_stop = false;
	rc = pthread_create(&st->thr, NULL, expiry_main, st);
	st->thr_running = rc == 0;
	return rc;
}

/* Stops and joins the expiry thread. */
void
store_expiry_stop(store_t *st)
{
	if (!st->thr_running)
		return;
	pthread_mutex_lock(&st->thr_lock);
	st->thr_stop = true;
	pthread_cond_signal(&st->thr_cond);
	pthread_mutex_unlock(&st->thr_lock);
	pthread_join(st->thr, NULL);
	st->thr_running = false;
}

/* Converts a wire exptime to the store's absolute form. */
uint32_t
store_exptime(store_t *st, int64_t exptime)
{
	uint64_t abs;

	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return EXPTIME_PAST;
	if (exptime <= STORE_REALTIME_MAXDELTA)
		abs = (uint64_t)store_now(st) + (uint64_t)exptime;
	else
		abs = (uint64_t)exptime;
	return abs > UINT32_MAX ? UINT32_MAX : (uint32_t)abs;
}

/* ---- stats --------------------------------------------------------- */

/* Adds one shard's numbers to the totals; the caller holds its lock. */
static void
stats_add(const struct shard *sh, struct store_stats *out)
{
	const struct shard_stats *s = &sh->stats;
	unsigned log2 = sh->ht[ht_rehashing(sh) ? 1 : 0].log2;

	out->curr_items += s->curr_items;
	out->total_items += s->total_items;
	out->evictions += s->evictions;
	out->evicted_unfetched += s->evicted_unfetched;
	out->expired_unfetched += s->expired_unfetched;
	out->reclaimed += s->reclaimed;
	out->get_expired += s->get_expired;
	out->get_flushed += s->get_flushed;
	out->hash_bytes += sh->hash_bytes;
	if (log2 > out->hash_power_level)
		out->hash_power_level = log2;
	if (ht_rehashing(sh))
		out->hash_is_expanding = 1;
}

/* Sums the shards' counters (takes each shard lock briefly). */
void
store_get_stats(store_t *st, struct store_stats *out)
{
	unsigned i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < st->nshards; i++) {
		shard_lock(&st->shards[i]);
		stats_add(&st->shards[i], out);
		shard_unlock(&st->shards[i]);
	}
	out->bytes = atomic_load_explicit(&st->bytes, memory_order_relaxed);
	out->limit_maxbytes = st->mem_limit;
	out->expiry_runs = atomic_load_explicit(&st->expiry_runs,
	    memory_order_relaxed);
}

/* Zeroes the resettable counters (total_items, evictions, ...). */
void
store_reset_stats(store_t *st)
{
	struct shard_stats *s;
	unsigned i;

	for (i = 0; i < st->nshards; i++) {
		shard_lock(&st->shards[i]);
		s = &st->shards[i].stats;
		*s = (struct shard_stats){ .curr_items = s->curr_items };
		shard_unlock(&st->shards[i]);
	}
}

/* ---- debug hooks for tests ------------------------------------------ */

/* Copies the work counters. */
void
store_debug_get(store_t *st, struct store_debug *out)
{
	out->expire_units = atomic_load_explicit(&st->expire_units,
	    memory_order_relaxed);
	out->max_hold_units = atomic_load_explicit(&st->max_hold_units,
	    memory_order_relaxed);
}

/* Returns the shard index a key maps to. */
unsigned
store_key_shard(store_t *st, const char *key, size_t nkey)
{
	return shard_index(st, key_hash(st, key, nkey));
}

/* Returns a key's LRU segment without counting a hit, or -1. */
int
store_debug_segment(store_t *st, const char *key, size_t nkey)
{
	uint64_t hv = key_hash(st, key, nkey);
	uint32_t now = store_now(st);
	struct shard *sh = shard_enter(st, hv, now);
	item_t *it = lookup_live(st, sh, hv, key, nkey, now);
	int seg = it != NULL ? (int)item_segment(it) : -1;

	shard_unlock(sh);
	return seg;
}

/* ---- create / destroy ---------------------------------------------- */

/* The clock used when the config gives none. */
static uint32_t
default_clock(void *ctx)
{
	(void)ctx;
	return (uint32_t)time(NULL);
}

/* Picks a hash seed so keys cannot be chosen to collide. */
static uint64_t
make_seed(const store_t *st)
{
	struct timespec ts;
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
		return seed;
	clock_gettime(CLOCK_REALTIME, &ts);
	return mix((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)st,
	    (uint64_t)ts.tv_sec ^ WY0);
}

/* Sets up one shard; false on allocation failure. */
static bool
shard_init(struct shard *sh, uint32_t now)
{
	memset(sh, 0, sizeof(*sh));
	sh->ht[0].b = calloc((size_t)1 << HT_MIN_LOG2, sizeof(item_t *));
	if (sh->ht[0].b == NULL)
		return false;
	sh->ht[0].log2 = HT_MIN_LOG2;
	sh->hash_bytes = store_alloc_cost(sh->ht[0].b);
	wheel_init(&sh->wheel, now);
	pthread_mutex_init(&sh->lock, NULL);
	return true;
}

/* Frees every item of one table; none may still be referenced. */
static void
table_free(store_t *st, struct htable *t)
{
	size_t i;
	item_t *it, *next;

	for (i = 0; t->b != NULL && i < ((size_t)1 << t->log2); i++) {
		for (it = t->b[i]; it != NULL; it = next) {
			next = it->h_next;
			assert((atomic_load(&it->ref) & ITEM_REF_MASK) == 1);
			item_free(st, it);
		}
	}
	free(t->b);
}

/* Frees a shard's items and tables. */
static void
shard_free(store_t *st, struct shard *sh)
{
	table_free(st, &sh->ht[0]);
	table_free(st, &sh->ht[1]);
	pthread_mutex_destroy(&sh->lock);
}

/* Checks the config and fills in defaults; false if it is bad. */
static bool
store_configure(store_t *st, const struct store_config *cfg)
{
	long page = sysconf(_SC_PAGESIZE);

	st->shards_log2 = cfg->shards_log2 ? cfg->shards_log2 :
	    DEFAULT_SHARDS_LOG2;
	st->item_size_max = cfg->item_size_max ? cfg->item_size_max :
	    DEFAULT_ITEM_SIZE_MAX;
	if (st->shards_log2 > MAX_SHARDS_LOG2 ||
	    st->item_size_max > ITEM_SIZE_LIMIT)
		return false;
	st->nshards = 1u << st->shards_log2;
	st->mem_limit = cfg->mem_limit ? cfg->mem_limit : SIZE_MAX / 2;
	st->no_evict = cfg->no_evict;
	st->clock = cfg->clock ? cfg->clock : default_clock;
	st->clock_ctx = cfg->clock_ctx;
	st->page_size = page > 0 ? (size_t)page : 4096;
	return true;
}

/* Initializes the store-wide locks and the expiry thread's condvar. */
static void
sync_init(store_t *st)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&st->flush_lock, NULL);
	pthread_mutex_init(&st->thr_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->thr_cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* Creates a store; returns NULL on allocation failure or bad config. */
store_t *
store_create(const struct store_config *cfg)
{
	store_t *st = calloc(1, sizeof(*st));
	uint32_t now;
	unsigned i;

	if (st == NULL)
		return NULL;
	if (!store_configure(st, cfg) || posix_memalign((void **)&st->shards,
	    64, st->nshards * sizeof(struct shard)) != 0) {
		free(st);
		return NULL;
	}
	now = store_now(st);
	for (i = 0; i < st->nshards; i++) {
		if (!shard_init(&st->shards[i], now)) {
			while (i-- > 0)
				shard_free(st, &st->shards[i]);
			free(st->shards);
			free(st);
			return NULL;
		}
	}
	st->seed = make_seed(st);
	sync_init(st);
	return st;
}

/* Stops the expiry thread if running and frees everything. */
void
store_destroy(store_t *st)
{
	unsigned i;

	if (st == NULL)
		return;
	store_expiry_stop(st);
	for (i = 0; i < st->nshards; i++)
		shard_free(st, &st->shards[i]);
	free(st->shards);
	pthread_mutex_destroy(&st->flush_lock);
	pthread_mutex_destroy(&st->thr_lock);
	pthread_cond_destroy(&st->thr_cond);
	free(st);
}

/* ---- item accessors ------------------------------------------------ */

/* Returns the key (not NUL-terminated). */
const char *
item_key(const item_t *it)
{
	return it->data;
}

/* Returns the key length. */
size_t
item_nkey(const item_t *it)
{
	return (size_t)(it->casnk & ((1u << ITEM_CAS_SHIFT) - 1));
}

/* Returns the value, followed by "\r\n". */
const char *
item_value(const item_t *it)
{
	return it->data + item_nkey(it);
}

/* Returns the value for the reserving caller to fill. */
char *
item_value_mut(item_t *it)
{
	return it->data + item_nkey(it);
}

/* Returns the value length without the "\r\n". */
size_t
item_nbytes(const item_t *it)
{
	return it->nbytes;
}

/* Returns the client's flags. */
uint32_t
item_flags(const item_t *it)
{
	return it->flags;
}

/* Returns the CAS unique. */
uint64_t
item_cas(const item_t *it)
{
	return it->casnk >> ITEM_CAS_SHIFT;
}
