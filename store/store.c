/*
 * store.c -- the item store's core: create, destroy and configure it;
 * items' references, linking and unlinking; entering a shard (pending
 * flush_all, a rehash step); lookups that reap what is dead; stats; the
 * item accessors.  The rest of the store: store_hash.c (hash, tables),
 * store_cmd.c (the commands), store_evict.c (eviction, compaction,
 * making room), store_expiry.c (the expiry thread), store_seg.c (the
 * segment pool); shared declarations in store_internal.h.
 *
 * Data structure: 2^shards_log2 shards (struct shard, store_internal.h),
 * picked by the top bits of a 64-bit key hash, each with its own chained
 * hash table.  Items live in segments (store_seg.c, layout in
 * store_internal.h): 32 bytes of header and no per-item list links, which
 * is what lets a 64 MB cache hold a third more small items than one with
 * per-item LRU links and malloc'd items.
 *
 * Ownership: a linked item holds one reference for the table; get, gat and
 * reserve hand one to the caller.  Unlinking drops the table's reference.
 * An item's memory is reused only after its segment is evacuated and no
 * reference to any of its items is left (pins, store_seg.c), so a reply
 * can still be sent from an item that was replaced, deleted or evicted.
 *
 * flush_all: a global word (generation << 32 | due time).  The first
 * operation on a shard that sees a due flush it has not applied records
 * the shard's last CAS as a watermark; items with cas <= watermark are
 * dead, and leave curr_items at once; the expiry thread frees them.
 *
 * Locking: each shard's mutex guards everything in struct shard and the
 * mutable fields of the items linked in it; the functions here that take
 * a struct shard run under its lock.  The lock order is store.h's.
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SHARDS_LOG2	6
#define MAX_SHARDS_LOG2		16
#define DEFAULT_ITEM_SIZE_MAX	(1024 * 1024)
#define ITEM_SIZE_LIMIT		(UINT32_MAX / 2)
#define EXPTIME_PAST		1	/* an absolute time long gone */

/* ---- lock order --------------------------------------------------- */

#ifndef NDEBUG
/* Bit r set: this thread holds a store lock of rank r (lock_take). */
_Thread_local unsigned store_locks_held;
/* Locks of each rank this thread has taken (lock_take). */
_Thread_local uint64_t store_locks_taken[LOCK_RANKS];
#endif

/* Lock acquisitions that found the lock held, by rank (lock_take). */
_Atomic uint64_t store_lock_waits[LOCK_RANKS];

/* ---- references --------------------------------------------------- */

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
	if ((old & (ITEM_EVAC | ITEM_LOOSE)) == 0)
		return;
	/* The segment comes from the bits just taken, not from the item:
	 * without a pin, another thread may reuse its memory at once.  A pin
	 * (EVAC's, or a loose item's existence) keeps it until dropped. */
	s = pool_seg_at(&st->pool, it, (old & ITEM_LOOSE) != 0);
	if (old & ITEM_EVAC)
		pool_unpin(&st->pool, s);
	if (old & ITEM_LOOSE)
		pool_loose_gone(&st->pool, s);
}

/* ---- linking ------------------------------------------------------- */

/* Adds (or takes) an item's size to (from) its segment's live bytes. */
void
seg_live_add(store_t *st, const item_t *it, bool add)
{
	struct seg *s = pool_seg_of(&st->pool, it);
	uint32_t n = (uint32_t)item_size(it);

	if (add)
		atomic_fetch_add_explicit(&s->live, n, memory_order_relaxed);
	else
		pool_note_dead(&st->pool, s, atomic_fetch_sub_explicit(&s->live,
		    n, memory_order_relaxed), n);
}

/* Gives an item the shard's next CAS. */
void
item_set_cas(struct shard *sh, item_t *it)
{
	atomic_store_explicit(&it->casnk, (++sh->cas_last << ITEM_CAS_SHIFT) |
	    item_nkey(it), memory_order_relaxed);
}

/*
 * True if a client's explicit CAS (E) can be given to an item of this
 * shard: 1 to STORE_CAS_MAX, and above the watermark of a flush_all whose
 * items still await reaping (an item at or below it reads as flushed).
 * Every operation that takes an E calls shard_admit_cas first, which
 * reaps those items, so the watermark test only guards a caller that
 * forgot to.
 */
bool
new_cas_ok(const struct shard *sh, uint64_t cas)
{
	return cas != 0 && cas <= STORE_CAS_MAX &&
	    (sh->flushed_linked == 0 || cas > sh->flush_wm);
}

/* Gives an item an explicit CAS (new_cas_ok); the shard's counter moves
 * past it, so a later flush_all's watermark covers the item. */
void
item_set_cas_to(struct shard *sh, item_t *it, uint64_t cas)
{
	assert(new_cas_ok(sh, cas));
	if (cas > sh->cas_last)
		sh->cas_last = cas;
	atomic_store_explicit(&it->casnk, (cas << ITEM_CAS_SHIFT) |
	    item_nkey(it), memory_order_relaxed);
}

/* Returns the memory an item holds: its bytes in a segment, or what
 * malloc charges for a loose one with its segment header. */
size_t
item_cost(const store_t *st, const item_t *it)
{
	if (item_has_bit(it, ITEM_LOOSE))
		return pool_loose_cost(&st->pool, pool_seg_of(&st->pool, it));
	return item_size(it);
}

/* Links an item that has its CAS; the caller's reference becomes the
 * table's.  A loose item joins the FIFO as a segment of its own. */
static void
item_link(store_t *st, struct shard *sh, item_t *it, uint64_t hv)
{
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
		sh->stats.evicted_nonzero += item_exptime(it) != 0;
		break;
	case UNLINK_FLUSHED:	/* neither expired nor evicted */
	case UNLINK_DELETE:
		break;
	}
}

/* Unlinks an item whose key hashes to hv and drops the table's
 * reference. */
void
item_unlink(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    enum unlink_why why)
{
	assert(item_has_bit(it, ITEM_LINKED));
	count_unlink(sh, it, why);
	ht_remove(sh, it, hv);
	sh->live_bytes -= item_size(it);
	seg_live_add(st, it, false);
	item_clear_bit(it, ITEM_LINKED);
	/* curr_items counts visible items: flushed ones left it already.
	 * The last of them gone, no linked item is at or below the
	 * watermark (later ones have higher CAS): it can go, and lets
	 * explicit CAS values (E) be low again. */
	if (sh->flushed_linked > 0 && item_cas(it) <= sh->flush_wm) {
		if (--sh->flushed_linked == 0)
			sh->flush_wm = 0;
	} else
		sh->stats.curr_items--;
	store_release(st, it);
}

/* Says whether a linked item is live, expired or flushed. */
enum liveness
item_liveness(const struct shard *sh, const item_t *it, uint32_t now)
{
	if (item_cas(it) <= sh->flush_wm)
		return ITEM_FLUSHED;
	if (time_passed(item_exptime(it), now))
		return ITEM_EXPIRED;
	return ITEM_LIVE;
}

/* Unlinks a dead item for the reason it is dead. */
void
item_reap(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    enum liveness why)
{
	item_unlink(st, sh, it, hv,
	    why == ITEM_FLUSHED ? UNLINK_FLUSHED : UNLINK_EXPIRED);
}

/* Gives a linked item a new exptime; a time already past unlinks it.
 * Returns the item linked now: a copy, if it had no exptime field
 * (item_retime_copy); NULL if that found no room and not `force`. */
item_t *
item_retime(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    uint32_t exptime, uint32_t now, bool force)
{
	if (time_passed(exptime, now)) {
		if (item_exptime_fits(it, exptime))
			item_set_exptime(it, exptime);
		item_unlink(st, sh, it, hv, UNLINK_DELETE);
		return it;
	}
	if (!item_exptime_fits(it, exptime))
		return item_retime_copy(st, sh, it, hv, exptime, now, force);
	item_set_exptime(it, exptime);
	pool_note_exptime(&st->pool, pool_seg_of(&st->pool, it), exptime);
	return it;
}

/* Replaces old (may be NULL) by it, or only drops old if it is born
 * expired; consumes the caller's reference to it.  A key's standing (its
 * ACCESSED bit) survives an overwrite, incr or append. */
void
item_replace(store_t *st, struct shard *sh, item_t *old, item_t *it,
    uint64_t hv, uint32_t now, uint64_t *cas_out)
{
	item_replace_cas(st, sh, old, it, hv, now, 0, cas_out);
}

/* item_replace with an explicit CAS for the new item (new_cas_ok), or
 * the shard's next one for 0.  The store counts as an access. */
void
item_replace_cas(store_t *st, struct shard *sh, item_t *old, item_t *it,
    uint64_t hv, uint32_t now, uint64_t new_cas, uint64_t *cas_out)
{
	if (old != NULL) {
		if (item_has_bit(old, ITEM_ACCESSED))
			item_set_bit(it, ITEM_ACCESSED);
		item_unlink(st, sh, old, hv, UNLINK_DELETE);
	}
	if (new_cas != 0)
		item_set_cas_to(sh, it, new_cas);
	else
		item_set_cas(sh, it);
	if (cas_out != NULL)
		*cas_out = item_cas(it);
	if (time_passed(item_exptime(it), now)) {
		/* STORED but never visible: no point in linking it. */
		store_release(st, it);
		return;
	}
	item_set_atime(it, now);
	item_link(st, sh, it, hv);
}

/* ---- shard entry --------------------------------------------------- */

/* Applies a due flush_all the shard has not applied yet. */
void
flush_sync(const store_t *st, struct shard *sh, uint32_t now)
{
	uint64_t w = atomic_load_explicit(&st->flush_word,
	    memory_order_acquire);

	if (w != sh->flush_seen) {
		/* A newer flush replaces a pending one. */
		sh->flush_seen = w;
		sh->flush_applied = false;
	}
	if (flush_due(w, sh->flush_applied, now)) {
		/* Every linked item has a CAS <= cas_last: all are dead. */
		sh->flushed_linked += sh->stats.curr_items;
		sh->stats.curr_items = 0;
		/* With nothing linked to hide, no watermark: it would only
		 * hide a later item given a low explicit CAS (E). */
		sh->flush_wm = sh->flushed_linked > 0 ? sh->cas_last : 0;
		sh->flush_applied = true;
	}
}

/* Locks the shard of a hash and does the per-operation upkeep: pending
 * flush, one rehash step. */
struct shard *
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
struct shard *
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
item_t *
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

/* Seconds an item given wire exptime now would have left, -1 for never. */
int64_t
store_ttl_of(store_t *st, int64_t exptime)
{
	uint32_t abs = store_exptime(st, exptime), now = store_now(st);

	if (abs == 0)
		return -1;
	return abs > now ? (int64_t)(abs - now) : 0;
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
	out->evicted_nonzero += s->evicted_nonzero;
	out->crawler_reclaimed += s->crawler_reclaimed;
	out->hash_bytes += sh->hash_bytes;
	if (log2 > out->hash_power_level)
		out->hash_power_level = log2;
	if (ht_rehashing(sh))
		out->hash_is_expanding = 1;
}

/* Reads a work counter less its "stats reset" baseline. */
static uint64_t
since_reset(_Atomic uint64_t *v, _Atomic uint64_t *base)
{
	return atomic_load_explicit(v, memory_order_relaxed) -
	    atomic_load_explicit(base, memory_order_relaxed);
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
	out->limit_maxbytes = atomic_load_explicit(&st->pool.limit,
	    memory_order_relaxed);
	out->expiry_runs = atomic_load_explicit(&st->expiry_runs,
	    memory_order_relaxed);
	out->evicted_time = atomic_load_explicit(&st->evicted_time,
	    memory_order_relaxed);
	out->crawler_items_checked = since_reset(&st->expire_units,
	    &st->base_expire_units);
	out->moved = since_reset(&st->moved, &st->base_moved);
	out->direct_reclaims = since_reset(&st->room_tries,
	    &st->base_room_tries);
	out->seg_size = st->pool.seg_size;
	pool_counts(&st->pool, &out->segs_held, &out->segs_free);
	out->oldest_age = pool_oldest_age(&st->pool, store_now(st));
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
	atomic_store_explicit(&st->evicted_time, 0, memory_order_relaxed);
	/* The work counters stay whole for store_debug_get: a baseline. */
	atomic_store_explicit(&st->base_expire_units, atomic_load_explicit(
	    &st->expire_units, memory_order_relaxed), memory_order_relaxed);
	atomic_store_explicit(&st->base_moved, atomic_load_explicit(
	    &st->moved, memory_order_relaxed), memory_order_relaxed);
	atomic_store_explicit(&st->base_room_tries, atomic_load_explicit(
	    &st->room_tries, memory_order_relaxed), memory_order_relaxed);
}

/* Gives every free segment back to the system. */
static void
trim_all(struct pool *p)
{
	while (pool_trim(p))
		;
}

/*
 * Sets a new memory limit.  Shrinking evicts (oldest segments first, as
 * eviction always does) and gives free segments back until the memory
 * held is within the new limit.  A segment a reader still holds (pinned)
 * frees its memory only when released: its bytes count as going, or the
 * loop would go on evicting the whole cache for them while the other
 * threads, under the new limit, found no room.  Under no_evict nothing is
 * evicted; stores fail until deletes and expiry bring the memory down.
 * False, with nothing changed, for a limit below two segments.
 */
bool
store_set_limit(store_t *st, size_t limit)
{
	struct pool *p = &st->pool;
	uint64_t guard, pending = 0, before;
	struct seg *s;
	size_t cost;

	if (limit < 2 * p->seg_size)
		return false;
	atomic_store_explicit(&p->limit, limit, memory_order_relaxed);
	trim_all(p);
	/* Bounded all the same, as clients keep storing meanwhile. */
	guard = 2 * (atomic_load_explicit(&p->mem, memory_order_relaxed) /
	    p->seg_size + 1);
	while (!st->no_evict && guard-- > 0 && (before = atomic_load_explicit(
	    &p->mem, memory_order_relaxed)) > limit + pending) {
		if ((s = pool_pop_oldest(p)) == NULL)
			break;
		cost = s->loose ? pool_loose_cost(p, s) : p->seg_size;
		seg_evacuate(st, s, false);
		trim_all(p);
		if (atomic_load_explicit(&p->mem, memory_order_relaxed) >=
		    before)
			pending += cost;
	}
	return true;
}

/* ---- debug hooks for tests ------------------------------------------ */

/* Copies the work counters. */
void
store_debug_get(store_t *st, struct store_debug *out)
{
	int r;

	out->expire_units = atomic_load_explicit(&st->expire_units,
	    memory_order_relaxed);
	out->expire_segs = atomic_load_explicit(&st->expire_segs,
	    memory_order_relaxed);
	out->max_hold_units = atomic_load_explicit(&st->max_hold_units,
	    memory_order_relaxed);
	out->evacuated = atomic_load_explicit(&st->evacuated,
	    memory_order_relaxed);
	out->moved = atomic_load_explicit(&st->moved, memory_order_relaxed);
	out->room_tries = atomic_load_explicit(&st->room_tries,
	    memory_order_relaxed);
	for (r = 0; r < LOCK_RANKS; r++)
		out->lock_waits[r] = atomic_load_explicit(
		    &store_lock_waits[r], memory_order_relaxed);
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

/* Sets up one shard; false on allocation failure. */
static bool
shard_init(struct shard *sh)
{
	memset(sh, 0, sizeof(*sh));
	if (!ht_init(sh))
		return false;
	lock_init(&sh->lock);
	return true;
}

/* Frees a shard's tables (its items live in the pool). */
static void
shard_free(struct shard *sh)
{
	ht_arrays_free(sh);
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
	st->evicted = cfg->evicted;
	st->evicted_ctx = cfg->evicted_ctx;
	pool_init(&st->pool, st->mem_limit, page > 0 ? (size_t)page : 4096);
	st->pool.clock = st->clock;
	st->pool.clock_ctx = st->clock_ctx;
	/* item_overwrite and item_retime change both fields in place. */
	st->pool.full_hdr = st->no_evict;
	st->pool.huge = cfg->large_pages;
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
	st->seed = hash_seed(st);
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
	return item_key_at(it);
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
	return item_key_at(it) + item_nkey(it);
}

/* Returns the value for the reserving caller to fill. */
char *
item_value_mut(item_t *it)
{
	return item_key_at(it) + item_nkey(it);
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
	return item_flags_r(it, item_ref_word(it));
}

/* Fills v with the key, value, lengths, flags and CAS: one read of each
 * header word. */
void
item_view(const item_t *it, struct item_view *v)
{
	uint32_t r = item_ref_word(it);
	uint64_t cn = atomic_load_explicit(&it->casnk, memory_order_relaxed);

	v->nkey = (size_t)(cn & ((1u << ITEM_CAS_SHIFT) - 1));
	v->cas = cn >> ITEM_CAS_SHIFT;
	v->key = it->data + item_ext_of(r);
	v->value = v->key + v->nkey;
	v->nbytes = it->nbytes;
	v->flags = item_flags_r(it, r);
}

/* Returns the CAS unique. */
uint64_t
item_cas(const item_t *it)
{
	return atomic_load_explicit(&it->casnk, memory_order_relaxed) >>
	    ITEM_CAS_SHIFT;
}
