/*
 * store.c -- the item store: sharded hash table, refcounted items in
 * log-structured memory, the memory limit, TTL, flush_all and the expiry
 * thread.
 *
 * Data structure: 2^shards_log2 shards, picked by the top bits of a 64-bit
 * key hash.  Each shard has a chained hash table indexed by the low bits,
 * grown (and shrunk) by incremental rehash in the style of Redis dict.c:
 * while ht[1] exists, every operation moves a bucket or so from ht[0], and
 * the expiry thread moves more, so no single operation rehashes a whole
 * table.  Items live in segments (store_seg.c, layout in
 * store_internal.h): 32 bytes of header and no per-item list links, which
 * is what lets a 64 MB cache hold a third more small items than one with
 * per-item LRU links and malloc'd items.
 *
 * Eviction: FIFO with a second chance, a segment at a time.  When an
 * allocation finds the limit in the way, the oldest sealed segment is
 * emptied ("evacuated"): each of its items that is still linked is
 * reaped if dead, moved to the evacuating thread's arena if it was hit
 * since it was stored or last moved (its ACCESSED bit, cleared by the
 * move), and evicted otherwise.  A loose item that earns a second chance
 * goes back to the FIFO tail without a copy.  FIFO with reinsertion is
 * CLOCK over memory order, as good as LRU on skewed workloads and with no
 * per-hit list work (a hit sets one bit).
 *
 * Expiry and compaction: each segment keeps the earliest exptime of its
 * items (min_exp) and its live bytes.  Every 100 ms (less often in a store
 * of over 4096 segments) the expiry thread walks the segment headers and
 * scans the segments whose min_exp has passed, unlinking their dead items
 * and recomputing min_exp; a sealed segment less than half live, after a
 * scan or from overwrites and deletes, is evacuated with all its live
 * items moved, so its memory is free for new items and memory held stays
 * near what the live items need rather than growing to the limit.  After
 * a flush_all comes due the next pass scans every segment.  Items carry
 * their own exptime, so a get never returns an expired item, scan or no
 * scan.
 *
 * Ownership: a linked item holds one reference for the table; get, gat and
 * reserve hand one to the caller.  Unlinking drops the table's reference.
 * An item's memory is reused only after its segment is evacuated and no
 * reference to any of its items is left (pins, store_seg.c), so a reply
 * can still be sent from an item that was replaced, deleted or evicted.
 *
 * Reservations: store_reserve hands out a loose item, so a client that
 * sends its value slowly pins only that much memory; store_commit copies
 * a small value into a segment under the shard lock and links the copy.
 * Appends and incr build the new item under the same lock hold.  Memory
 * is never taken while holding a shard lock if that would need eviction:
 * the operation drops the lock, makes room, and starts over.
 *
 * flush_all: a global word (generation << 32 | due time).  The first
 * operation on a shard that sees a due flush it has not applied records
 * the shard's last CAS as a watermark; items with cas <= watermark are
 * dead, and leave curr_items at once; the expiry thread frees them.
 *
 * Locking: each shard's mutex guards everything in struct shard and the
 * mutable fields of the items linked in it.  A thread holds at most one
 * shard lock (asserted in debug builds); evacuation takes the shard lock
 * of each item in turn.  Lock order: flush_lock -> shard -> arena -> pool.
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
#define HT_MAX_LOAD		2	/* items per bucket before a grow */
#define REHASH_EMPTY_VISITS	10	/* buckets looked at per op, as Redis */
#define EXPIRY_BUDGET		1000	/* rehash units per lock hold */
#define EXPIRY_PERIOD_NS	100000000L
#define MAKE_ROOM_TRIES		10000	/* segments emptied (or waits for
					 * other threads to empty one) */
#define NOEVICT_ROOM_TRIES	4	/* the same under no_evict, where
					 * each compacts a segment at most
					 * half live or waits */
#define EXPTIME_PAST		1	/* an absolute time long gone */

struct htable {
	item_t		**b;		/* NULL when unused */
	size_t		  used;
	unsigned	  log2;
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
	size_t			live_bytes;	/* ITEM_SIZE of linked items */
	uint64_t		cas_last;	/* last CAS handed out */
	uint64_t		flush_seen;	/* flush word last looked at */
	uint64_t		flush_wm;	/* cas <= this: flushed */
	uint64_t		flushed_linked;	/* linked, cas <= flush_wm */
	bool			flush_applied;
	size_t			hash_bytes;
	struct shard_stats	stats;
} __attribute__((aligned(64)));

struct store {
	struct shard	       *shards;
	unsigned		shards_log2;
	unsigned		nshards;
	size_t			mem_limit;
	size_t			item_size_max;
	bool			no_evict;
	store_clock_fn		clock;
	void		       *clock_ctx;
	uint64_t		seed;
	/* Read by every operation: kept off the lines the pool writes. */
	_Atomic uint64_t	flush_word;	/* generation << 32 | due */
	_Atomic uint64_t	flush_swept;	/* flush word last swept */
	_Alignas(64) struct pool pool;
	_Atomic uint64_t	expiry_runs;
	_Atomic uint64_t	expire_units;
	_Atomic uint64_t	max_hold_units;
	_Atomic uint64_t	evacuated;
	_Atomic uint64_t	moved;
	_Atomic uint64_t	room_tries;
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

/* ---- lock order --------------------------------------------------- */

#ifndef NDEBUG
_Thread_local unsigned store_locks_held;
#endif

/* Takes a shard lock (the order is store.h's, asserted by lock_take). */
static void
shard_lock(struct shard *sh)
{
	lock_take(&sh->lock, LOCK_SHARD);
}

/* Drops a shard lock. */
static void
shard_unlock(struct shard *sh)
{
	lock_drop(&sh->lock, LOCK_SHARD);
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

/* ---- item references and flag bits -------------------------------- */

/* Takes a reference; the caller holds the item's shard lock. */
static void
item_ref(item_t *it)
{
	atomic_fetch_add_explicit(&it->ref, 1, memory_order_relaxed);
}

/* Sets flag bits in the ref word. */
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

/* Sets a flag bit; skips the write (and the cache line) if it is set. */
static void
item_mark(item_t *it, uint32_t bit)
{
	if (!item_has_bit(it, bit))
		item_set_bit(it, bit);
}

/* Drops a reference.  The last one of an unlinked item lets go of its
 * memory: a loose item is freed, an item in a segment being emptied
 * unpins it; an item in a live segment stays as dead bytes until its
 * segment is evacuated. */
void
store_release(store_t *st, item_t *it)
{
	struct seg *s;
	uint32_t old;

	if (it == NULL)
		return;
	/* acq_rel: the last holder must see every other holder's writes. */
	old = atomic_fetch_sub_explicit(&it->ref, 1, memory_order_acq_rel);
	assert((old & ITEM_REF_MASK) != 0);
	if ((old & ITEM_REF_MASK) != 1)
		return;
	assert((old & ITEM_LINKED) == 0);
	/* Still ours to read: a pin (EVAC's, or a loose item's existence)
	 * keeps the memory until dropped below. */
	s = pool_seg_of(&st->pool, it);
	if (old & ITEM_EVAC)
		pool_unpin(&st->pool, s);
	if (old & ITEM_LOOSE)
		pool_loose_gone(&st->pool, s);
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
	sh->hash_bytes += pool_malloc_cost(b);
}

/* Starts a grow past load factor HT_MAX_LOAD, or a shrink below 1/8.
 * Chains of up to two on average cost a get about half a cache miss more
 * than chains of one, and save 4 bytes of table per item (a quarter of
 * the memory that is not charged to -m at 100-byte values). */
static void
ht_maybe_resize(struct shard *sh)
{
	const struct htable *t = &sh->ht[0];
	size_t size = (size_t)1 << t->log2;
	unsigned log2;

	if (t->used > size * HT_MAX_LOAD && t->log2 < HT_MAX_LOG2) {
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
	sh->hash_bytes -= pool_malloc_cost(sh->ht[0].b);
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

/* Puts n in o's place in its chain: n is a moved copy of o. */
static void
ht_swap(struct shard *sh, item_t *o, item_t *n, uint64_t hv)
{
	item_t **pp;
	int i;

	for (i = 0; i < 2 && sh->ht[i].b != NULL; i++) {
		for (pp = ht_bucket(&sh->ht[i], hv); *pp; pp = &(*pp)->h_next) {
			if (*pp == o) {
				n->h_next = o->h_next;
				*pp = n;
				o->h_next = NULL;
				return;
			}
		}
	}
	assert(false && "item not in its shard's table");
}

/* ---- linking ------------------------------------------------------- */

/* Returns the bytes an item takes in a segment. */
static size_t
item_size(const item_t *it)
{
	return ITEM_SIZE(item_nkey(it), it->nbytes);
}

/* Adds (or takes) an item's size to (from) its segment's live bytes. */
static void
seg_live_add(store_t *st, const item_t *it, bool add)
{
	struct seg *s = pool_seg_of(&st->pool, it);
	uint32_t n = (uint32_t)item_size(it);

	if (add)
		atomic_fetch_add_explicit(&s->live, n, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&s->live, n, memory_order_relaxed);
}

/* Gives an item the shard's next CAS. */
static void
item_set_cas(struct shard *sh, item_t *it)
{
	atomic_store_explicit(&it->casnk, (++sh->cas_last << ITEM_CAS_SHIFT) |
	    item_nkey(it), memory_order_relaxed);
}

/* Links an item; the caller's reference becomes the table's.  A loose
 * item joins the FIFO as a segment of its own. */
static void
item_link(store_t *st, struct shard *sh, item_t *it, uint64_t hv)
{
	item_set_cas(sh, it);
	item_set_bit(it, ITEM_LINKED);
	ht_insert(sh, it, hv);
	sh->live_bytes += item_size(it);
	seg_live_add(st, it, true);
	sh->stats.curr_items++;
	sh->stats.total_items++;
	if (item_has_bit(it, ITEM_LOOSE))
		pool_loose_sealed(&st->pool, it);
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

/* Unlinks an item whose key hashes to hv and drops the table's
 * reference. */
static void
item_unlink(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    enum unlink_why why)
{
	assert(item_has_bit(it, ITEM_LINKED));
	count_unlink(sh, it, why);
	ht_remove(sh, it, hv);
	sh->live_bytes -= item_size(it);
	seg_live_add(st, it, false);
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
item_reap(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    enum liveness why)
{
	item_unlink(st, sh, it, hv,
	    why == ITEM_FLUSHED ? UNLINK_FLUSHED : UNLINK_EXPIRED);
}

/* Records a hit: the item earns a second chance at eviction. */
static void
item_hit(item_t *it)
{
	item_mark(it, ITEM_ACCESSED);
}

/* Gives a linked item a new exptime; a time already past unlinks it. */
static void
item_retime(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    uint32_t exptime, uint32_t now)
{
	it->exptime = exptime;
	if (time_passed(exptime, now))
		item_unlink(st, sh, it, hv, UNLINK_DELETE);
	else
		pool_note_exptime(pool_seg_of(&st->pool, it), exptime);
}

/* Replaces old (may be NULL) by it, or only drops old if it is born
 * expired; consumes the caller's reference to it.  A key's standing (its
 * ACCESSED bit) survives an overwrite, incr or append. */
static void
item_replace(store_t *st, struct shard *sh, item_t *old, item_t *it,
    uint64_t hv, uint32_t now, uint64_t *cas_out)
{
	if (old != NULL) {
		if (item_has_bit(old, ITEM_ACCESSED))
			item_set_bit(it, ITEM_ACCESSED);
		item_unlink(st, sh, old, hv, UNLINK_DELETE);
	}
	item_set_cas(sh, it);
	if (cas_out != NULL)
		*cas_out = item_cas(it);
	if (time_passed(it->exptime, now)) {
		/* STORED but never visible: no point in linking it. */
		store_release(st, it);
		return;
	}
	item_link(st, sh, it, hv);
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

/* Locks the shard an item's key maps to, for work on that item. */
static struct shard *
shard_of_item(store_t *st, const item_t *it, uint64_t *hv, uint32_t now)
{
	struct shard *sh;

	*hv = item_hash(st, it);
	sh = &st->shards[shard_index(st, *hv)];
	shard_lock(sh);
	flush_sync(st, sh, now);
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
	item_reap(st, sh, it, hv, l);
	return NULL;
}

/* ---- evacuation ---------------------------------------------------- */

/* Copies an item (a filled reservation, or one being moved) into the
 * calling thread's arena, under the shard lock; `reserve`: the last free
 * segment may be taken.  NULL when there is no room without evicting. */
static item_t *
item_copy(store_t *st, const item_t *src, bool reserve)
{
	item_t *it = pool_carve(&st->pool, item_key(src), item_nkey(src),
	    src->flags, src->exptime, src->nbytes, reserve);

	if (it != NULL)
		memcpy(item_value_mut(it), item_value(src), src->nbytes);
	return it;
}

/* Copies a linked item into the calling thread's arena (the last free
 * segment allowed) and links the copy in its place; false if no room. */
static bool
item_move(store_t *st, struct shard *sh, item_t *it, uint64_t hv)
{
	item_t *n = item_copy(st, it, true);

	if (n == NULL)
		return false;
	atomic_store_explicit(&n->casnk, atomic_load_explicit(&it->casnk,
	    memory_order_relaxed), memory_order_relaxed);
	/* The second chance is used up: ACCESSED stays behind. */
	item_set_bit(n, ITEM_LINKED | (atomic_load_explicit(&it->ref,
	    memory_order_relaxed) & ITEM_FETCHED));
	ht_swap(sh, it, n, hv);
	seg_live_add(st, n, true);
	seg_live_add(st, it, false);
	item_clear_bit(it, ITEM_LINKED);
	store_release(st, it);
	atomic_fetch_add_explicit(&st->moved, 1, memory_order_relaxed);
	return true;
}

/*
 * Empties one item of a segment being evacuated: reaps it if dead, moves
 * it if it was hit since it was stored (or always, when compacting), and
 * evicts it otherwise.  Then a reference still held to it pins the
 * segment until let go (store_release sees ITEM_EVAC).
 */
static void
evac_item(store_t *st, struct seg *s, item_t *it, bool compact)
{
	uint32_t now = store_now(st), old;
	struct shard *sh;
	enum liveness l;
	uint64_t hv;

	sh = shard_of_item(st, it, &hv, now);
	if (item_has_bit(it, ITEM_LINKED)) {
		l = item_liveness(sh, it, now);
		if (l != ITEM_LIVE)
			item_reap(st, sh, it, hv, l);
		else if (s->loose || !(compact ||
		    item_has_bit(it, ITEM_ACCESSED)) ||
		    !item_move(st, sh, it, hv))
			item_unlink(st, sh, it, hv, UNLINK_EVICTED);
	}
	/* Pin before the bit: a holder letting go right after unpins. */
	pool_pin(s);
	old = atomic_fetch_or_explicit(&it->ref, ITEM_EVAC,
	    memory_order_acq_rel);
	if ((old & ITEM_REF_MASK) == 0)
		pool_unpin(&st->pool, s);	/* the taker's pin remains */
	shard_unlock(sh);
}

/* A loose item hit since it joined the FIFO goes back to its tail, bit
 * cleared, without a copy; true if so (the taker's pin is consumed). */
static bool
loose_second_chance(store_t *st, struct seg *s)
{
	item_t *it = (item_t *)(void *)s->mem;
	uint32_t now = store_now(st);
	struct shard *sh;
	uint64_t hv;
	bool keep;

	sh = shard_of_item(st, it, &hv, now);
	keep = item_has_bit(it, ITEM_LINKED) &&
	    item_has_bit(it, ITEM_ACCESSED) &&
	    item_liveness(sh, it, now) == ITEM_LIVE;
	if (keep) {
		item_clear_bit(it, ITEM_ACCESSED);
		pool_requeue(&st->pool, s);
	}
	shard_unlock(sh);
	return keep;
}

/* Empties a segment taken off the FIFO and drops the taker's pin: the
 * segment is free once no reference to its items is left. */
static void
seg_evacuate(store_t *st, struct seg *s, bool compact)
{
	item_t *it;
	char *p;

	if (s->loose && !compact && loose_second_chance(st, s))
		return;
	for (p = s->mem; p < s->mem + s->used; p += item_size(it)) {
		it = (item_t *)(void *)p;
		evac_item(st, s, it, compact);
	}
	atomic_fetch_add_explicit(&st->evacuated, 1, memory_order_relaxed);
	pool_evac_done(&st->pool, s);
}

/* Frees memory after an allocation found no room: for a loose item a
 * free segment goes back to the system first; else the oldest segment is
 * emptied, or under no_evict one with no live item or less than
 * COMPACT_LIVE_PCT live, its live items moved, not evicted (a fuller one
 * would free next to nothing).  With nothing to empty while other threads
 * empty segments, sleeps until one of them is done.  Called with no lock
 * held; false if nothing can be freed. */
static bool
make_room(store_t *st, bool loose)
{
	struct seg *s;

	atomic_fetch_add_explicit(&st->room_tries, 1, memory_order_relaxed);
	if (loose && pool_trim(&st->pool))
		return true;
	s = st->no_evict ? pool_pop_emptiest(&st->pool) :
	    pool_pop_oldest(&st->pool);
	if (s == NULL)
		return pool_wait_room(&st->pool);
	seg_evacuate(st, s, st->no_evict);
	return true;
}

/* After an operation dropped its lock for want of room: makes room and
 * says whether to try again.  Under no_evict a few tries only: a store
 * that finds the cache full is refused at once, as memcached's is. */
static bool
retry_with_room(store_t *st, unsigned *tries, bool loose)
{
	unsigned max = st->no_evict ? NOEVICT_ROOM_TRIES : MAKE_ROOM_TRIES;

	return (*tries)++ < max && make_room(st, loose);
}

/* ---- allocation ---------------------------------------------------- */

/* True if an item of this size is carved from a segment. */
static bool
item_carved(const store_t *st, size_t nkey, size_t nbytes)
{
	return ITEM_SIZE(nkey, nbytes) <= st->pool.small_max;
}

/* Allocates an unlinked item to be linked right away, without evicting:
 * carved if small, else loose.  NULL when there is no room. */
static item_t *
item_new(store_t *st, const char *key, size_t nkey, uint32_t flags,
    uint32_t exptime, size_t nbytes)
{
	if (item_carved(st, nkey, nbytes))
		return pool_carve(&st->pool, key, nkey, flags, exptime,
		    nbytes, false);
	return pool_loose(&st->pool, key, nkey, flags, exptime, nbytes);
}

/* Reserves a loose item for the caller to fill, evicting when the limit
 * is in the way. */
store_status_t
store_reserve(store_t *st, const char *key, size_t nkey, uint32_t flags,
    int64_t exptime, size_t nbytes, item_t **out)
{
	uint32_t exp = store_exptime(st, exptime);
	unsigned tries = 0;

	*out = NULL;
	if (nkey > STORE_KEY_MAX || nbytes > st->item_size_max)
		return STORE_TOO_LARGE;
	if (!pool_loose_fits(&st->pool, nkey, nbytes))
		return STORE_NO_MEMORY;
	while ((*out = pool_loose(&st->pool, key, nkey, flags, exp,
	    nbytes)) == NULL)
		if (!retry_with_room(st, &tries, true))
			return STORE_NO_MEMORY;
	return STORE_OK;
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

/* Builds old's value with add's appended or prepended, under the lock;
 * STORE_NO_MEMORY when there is no room without evicting. */
static store_status_t
concat_build(store_t *st, const item_t *old, const item_t *add,
    bool prepend, item_t **out)
{
	size_t n = (size_t)old->nbytes + add->nbytes;
	const item_t *first = prepend ? add : old;
	const item_t *second = prepend ? old : add;
	char *v;

	if (n > st->item_size_max)
		return STORE_TOO_LARGE;
	*out = item_new(st, item_key(old), item_nkey(old), old->flags,
	    old->exptime, n);
	if (*out == NULL)
		return STORE_NO_MEMORY;
	v = item_value_mut(*out);
	memcpy(v, item_value(first), first->nbytes);
	memcpy(v + first->nbytes, item_value(second), second->nbytes);
	return STORE_OK;
}

/* append/prepend: the combined item is built and linked in one hold of
 * the key's shard lock; without room, the lock goes, room is made, and
 * the command starts over. */
static store_status_t
commit_concat(store_t *st, item_t *add, bool prepend, uint64_t *cas_out)
{
	uint64_t hv = item_hash(st, add);
	unsigned tries = 0;
	store_status_t rc;
	struct shard *sh;
	item_t *old, *nit;
	uint32_t now;
	bool loose;

	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		old = lookup_live(st, sh, hv, item_key(add), item_nkey(add),
		    now);
		rc = old == NULL ? STORE_NOT_STORED :
		    concat_build(st, old, add, prepend, &nit);
		loose = old != NULL && !item_carved(st, item_nkey(old),
		    (size_t)old->nbytes + add->nbytes);
		if (rc == STORE_OK) {
			item_replace(st, sh, old, nit, hv, now, cas_out);
			rc = STORE_STORED;
		}
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY && retry_with_room(st, &tries, loose));
	store_release(st, add);
	return rc;
}

/*
 * Under no_evict with no room for a copy: writes a new value of the same
 * length over old in place, a new CAS and all, if no one else holds old
 * (only the table's reference: a new one needs this shard lock) and the
 * new value is not born expired.  A segment walker reads the key and the
 * length without the lock, and neither changes.  True if done.
 */
static bool
item_overwrite(store_t *st, struct shard *sh, item_t *old,
    const item_t *it, uint32_t now, uint64_t *cas_out)
{
	if (old == NULL || item_has_bit(old, ITEM_LOOSE) ||
	    old->nbytes != it->nbytes || time_passed(it->exptime, now) ||
	    (atomic_load_explicit(&old->ref, memory_order_acquire) &
	    ITEM_REF_MASK) != 1)
		return false;
	memcpy(item_value_mut(old), item_value(it), it->nbytes);
	old->flags = it->flags;
	old->exptime = it->exptime;
	item_clear_bit(old, ITEM_FETCHED);
	item_set_cas(sh, old);
	pool_note_exptime(pool_seg_of(&st->pool, old), it->exptime);
	sh->stats.total_items++;
	if (cas_out != NULL)
		*cas_out = item_cas(old);
	return true;
}

/* A set refused for want of memory removes the key's old value, as
 * memcached's does: no client may read a value it failed to replace. */
static void
commit_refused(store_t *st, const item_t *it, uint64_t hv)
{
	uint32_t now = store_now(st);
	struct shard *sh = shard_enter(st, hv, now);
	item_t *old = lookup_live(st, sh, hv, item_key(it), item_nkey(it),
	    now);

	if (old != NULL)
		item_unlink(st, sh, old, hv, UNLINK_DELETE);
	shard_unlock(sh);
}

/* Links a reserved item according to mode; consumes the reference.  A
 * small value is copied into a segment, a large one linked as it is. */
store_status_t
store_commit(store_t *st, item_t *it, store_mode_t mode, uint64_t cas,
    uint64_t *cas_out)
{
	bool copy = item_carved(st, item_nkey(it), it->nbytes);
	uint64_t hv = item_hash(st, it);
	unsigned tries = 0;
	store_status_t rc;
	struct shard *sh;
	item_t *old, *fin;
	uint32_t now;

	assert(!item_has_bit(it, ITEM_LINKED));
	if (mode == STORE_APPEND || mode == STORE_PREPEND)
		return commit_concat(st, it, mode == STORE_PREPEND, cas_out);
	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		old = lookup_live(st, sh, hv, item_key(it), item_nkey(it),
		    now);
		rc = commit_check(mode, old, cas);
		if (rc == STORE_STORED) {
			fin = copy ? item_copy(st, it, false) : it;
			if (fin == NULL && !(st->no_evict &&
			    item_overwrite(st, sh, old, it, now, cas_out)))
				rc = STORE_NO_MEMORY;
			else if (fin == it)
				it = NULL;	/* the table's reference now */
			if (fin != NULL)
				item_replace(st, sh, old, fin, hv, now,
				    cas_out);
		} else if (old != NULL && mode == STORE_ADD) {
			item_hit(old);	/* as memcached's add */
		}
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY && retry_with_room(st, &tries, false));
	if (rc == STORE_NO_MEMORY && mode == STORE_SET)
		commit_refused(st, it, hv);
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
		item_hit(it);
		if (out != NULL) {
			item_ref(it);
			item_mark(it, ITEM_FETCHED);
			*out = it;
		}
		if (retime)
			item_retime(st, sh, it, hv, exp, now);
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
		item_unlink(st, sh, it, hv, UNLINK_DELETE);
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

/* Builds the item holding the decimal result of incr/decr on old, under
 * the lock; STORE_NO_MEMORY when there is no room without evicting. */
static store_status_t
incr_build(store_t *st, const item_t *old, bool incr, uint64_t delta,
    uint64_t *result, item_t **out)
{
	char buf[24];
	uint64_t v;
	int len;

	if (!parse_u64(item_value(old), old->nbytes, &v))
		return STORE_NON_NUMERIC;
	*result = apply_delta(v, incr, delta);
	len = snprintf(buf, sizeof(buf), "%" PRIu64, *result);
	*out = item_new(st, item_key(old), item_nkey(old), old->flags,
	    old->exptime, (size_t)len);
	if (*out == NULL)
		return STORE_NO_MEMORY;
	memcpy(item_value_mut(*out), buf, (size_t)len);
	return STORE_OK;
}

/* Adds or subtracts delta, storing the result as a new item with a new
 * CAS, in one lock hold as append does. */
store_status_t
store_incr(store_t *st, const char *key, size_t nkey, bool incr,
    uint64_t delta, uint64_t *result)
{
	uint64_t hv = key_hash(st, key, nkey), v = 0;
	unsigned tries = 0;
	store_status_t rc;
	struct shard *sh;
	item_t *old, *nit;
	uint32_t now;

	if (nkey > STORE_KEY_MAX)
		return STORE_NOT_FOUND;
	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		old = lookup_live(st, sh, hv, key, nkey, now);
		rc = old == NULL ? STORE_NOT_FOUND :
		    incr_build(st, old, incr, delta, &v, &nit);
		if (rc == STORE_OK)
			item_replace(st, sh, old, nit, hv, now, NULL);
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY && retry_with_room(st, &tries, false));
	if (rc == STORE_OK && result != NULL)
		*result = v;
	return rc;
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

	lock_take(&st->flush_lock, LOCK_FLUSH);
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
	lock_drop(&st->flush_lock, LOCK_FLUSH);
}


/* ---- expiry -------------------------------------------------------- */

/* What a pass of the expiry thread carries through pool_scan. */
struct scan_ctx {
	store_t		*st;
	uint32_t	 now;
	size_t		 freed;
};

/*
 * pool_scan callback: unlinks the dead items of one segment (its
 * min_exp was reset to 0 under the lock that orders it against new
 * items, which lower it again themselves) and sets min_exp to the
 * earliest exptime left.  A sealed segment left less than half live is
 * evacuated, its live items moved, when there is room to move them to.
 */
static void
scan_seg(struct seg *s, uint32_t used, void *arg)
{
	struct scan_ctx *c = arg;
	store_t *st = c->st;
	uint32_t min = 0;
	size_t live = 0, n = 0;
	struct shard *sh;
	enum liveness l;
	uint64_t hv;
	item_t *it;
	char *p;

	for (p = s->mem; p < s->mem + used; p += item_size(it), n++) {
		it = (item_t *)(void *)p;
		sh = shard_of_item(st, it, &hv, c->now);
		if (item_has_bit(it, ITEM_LINKED)) {
			l = item_liveness(sh, it, c->now);
			if (l != ITEM_LIVE) {
				item_reap(st, sh, it, hv, l);
				c->freed++;
			} else {
				live += item_size(it);
				if (it->exptime != 0 &&
				    (min == 0 || it->exptime < min))
					min = it->exptime;
			}
		}
		shard_unlock(sh);
	}
	atomic_fetch_add_explicit(&st->expire_units, n, memory_order_relaxed);
	pool_note_exptime(s, min);
	if (live * 100 < (size_t)s->cap * COMPACT_LIVE_PCT &&
	    (live == 0 || pool_has_room(&st->pool)) && pool_take(&st->pool, s))
		seg_evacuate(st, s, true);
}

/* Records the units of one lock hold for the debug counters. */
static void
note_hold(store_t *st, size_t used)
{
	uint64_t max = atomic_load_explicit(&st->max_hold_units,
	    memory_order_relaxed);

	while (used > max && !atomic_compare_exchange_weak_explicit(
	    &st->max_hold_units, &max, used, memory_order_relaxed,
	    memory_order_relaxed))
		;
}

/* Grows, shrinks or rehashes an idle shard's table, `budget` buckets per
 * lock hold, up to 64 holds. */
static void
shard_upkeep(store_t *st, struct shard *sh, size_t budget)
{
	size_t used;
	int round;

	for (round = 0; round < 64; round++) {
		used = 0;
		shard_lock(sh);
		flush_sync(st, sh, store_now(st));
		if (!ht_rehashing(sh))
			ht_maybe_resize(sh);
		if (ht_rehashing(sh)) {
			used = ht_rehash_step(st, sh, budget, budget);
			if (!ht_rehashing(sh))
				ht_maybe_resize(sh);
		}
		shard_unlock(sh);
		note_hold(st, used);
		if (used == 0)
			break;
	}
}

/* Frees expired and flushed items up to now: the segments whose min_exp
 * has passed, or all of them once after a flush_all came due; then table
 * upkeep, `budget` buckets per lock hold.  Returns items freed. */
size_t
store_expire_run(store_t *st, size_t budget)
{
	struct scan_ctx c = { st, store_now(st), 0 };
	uint64_t w = atomic_load_explicit(&st->flush_word,
	    memory_order_acquire);
	bool all = w != 0 && (uint32_t)w <= c.now &&
	    w != atomic_load_explicit(&st->flush_swept, memory_order_relaxed);
	unsigned i;

	budget = budget == 0 ? 1 : budget;
	atomic_fetch_add_explicit(&st->expiry_runs, 1, memory_order_relaxed);
	pool_scan(&st->pool, c.now, all, scan_seg, &c);
	if (all)
		atomic_store_explicit(&st->flush_swept, w,
		    memory_order_relaxed);
	for (i = 0; i < st->nshards; i++)
		shard_upkeep(st, &st->shards[i], budget);
	return c.freed;
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
	lock_take(&st->thr_lock, LOCK_THREAD);
	/* A spurious wakeup only means an early pass. */
	if (!st->thr_stop)
		pthread_cond_timedwait(&st->thr_cond, &st->thr_lock, &ts);
	go = !st->thr_stop;
	lock_drop(&st->thr_lock, LOCK_THREAD);
	return go;
}

/*
 * The expiry thread: a run every 100 ms until stopped, or less often in a
 * big store, where a run's walk over every segment header costs more:
 * every (1 + segments / 4096) periods, at most every second.
 */
static void *
expiry_main(void *arg)
{
	store_t *st = arg;
	unsigned long tick = 0;
	size_t stride;

	do {
		stride = 1 + atomic_load_explicit(&st->pool.nsegs_pub,
		    memory_order_relaxed) / 4096;
		if (tick++ % (stride < 10 ? stride : 10) == 0)
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
	lock_take(&st->thr_lock, LOCK_THREAD);
	st->thr_stop = true;
	pthread_cond_signal(&st->thr_cond);
	lock_drop(&st->thr_lock, LOCK_THREAD);
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
	out->bytes += sh->live_bytes;
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
	out->mem_bytes = atomic_load_explicit(&st->pool.mem,
	    memory_order_relaxed);
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
	out->evacuated = atomic_load_explicit(&st->evacuated,
	    memory_order_relaxed);
	out->moved = atomic_load_explicit(&st->moved, memory_order_relaxed);
	out->room_tries = atomic_load_explicit(&st->room_tries,
	    memory_order_relaxed);
}

/* Returns the shard index a key maps to. */
unsigned
store_key_shard(store_t *st, const char *key, size_t nkey)
{
	return shard_index(st, key_hash(st, key, nkey));
}

/* Returns the pool, for white-box tests. */
struct pool *
store_debug_pool(store_t *st)
{
	return &st->pool;
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
shard_init(struct shard *sh)
{
	memset(sh, 0, sizeof(*sh));
	sh->ht[0].b = calloc((size_t)1 << HT_MIN_LOG2, sizeof(item_t *));
	if (sh->ht[0].b == NULL)
		return false;
	sh->ht[0].log2 = HT_MIN_LOG2;
	sh->hash_bytes = pool_malloc_cost(sh->ht[0].b);
	pthread_mutex_init(&sh->lock, NULL);
	return true;
}

/* Frees a shard's tables (its items live in the pool). */
static void
shard_free(struct shard *sh)
{
	free(sh->ht[0].b);
	free(sh->ht[1].b);
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
	pool_init(&st->pool, st->mem_limit, page > 0 ? (size_t)page : 4096);
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
	store_t *st;
	unsigned i;

	if (posix_memalign((void **)&st, 64, sizeof(*st)) != 0)
		return NULL;
	memset(st, 0, sizeof(*st));
	if (!store_configure(st, cfg) || posix_memalign((void **)&st->shards,
	    64, st->nshards * sizeof(struct shard)) != 0) {
		free(st);
		return NULL;
	}
	for (i = 0; i < st->nshards; i++) {
		if (!shard_init(&st->shards[i])) {
			while (i-- > 0)
				shard_free(&st->shards[i]);
			free(st->shards);
			pool_fini(&st->pool);
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
		shard_free(&st->shards[i]);
	free(st->shards);
	pool_fini(&st->pool);
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
	return (size_t)(atomic_load_explicit(&it->casnk,
	    memory_order_relaxed) & ((1u << ITEM_CAS_SHIFT) - 1));
}

/* Returns the value: item_nbytes bytes, no terminator. */
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

/* Returns the value length. */
size_t
item_nbytes(const item_t *it)
{
	return it->nbytes;
}

/* True if a reference to the item pins a segment shared with others. */
bool
item_in_segment(const item_t *it)
{
	return !item_has_bit(it, ITEM_LOOSE);
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
	return atomic_load_explicit(&it->casnk, memory_order_relaxed) >>
	    ITEM_CAS_SHIFT;
}