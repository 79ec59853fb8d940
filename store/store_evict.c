/*
 * store_evict.c -- making room: eviction (FIFO with a second chance, a
 * segment at a time), compaction, and the bounded retry loop of an
 * operation that found the memory limit in the way.
 *
 * Eviction: when an allocation finds the limit in the way, the oldest
 * sealed segment is emptied ("evacuated"): each of its items that is still
 * linked is reaped if dead, moved to the evacuating thread's arena if it
 * was hit since it was stored or last moved (its ACCESSED bit, cleared by
 * the move), and evicted otherwise.  A loose item that earns a second
 * chance goes back to the FIFO tail without a copy.  FIFO with reinsertion
 * is CLOCK over memory order, as good as LRU on skewed workloads and with
 * no per-hit list work (a hit sets one bit).
 *
 * Compaction (no_evict, and the expiry thread's): every live item of a
 * segment is moved, none evicted.  Under no_evict only a segment with
 * dead items of at least the size wanted is compacted, so a compaction
 * reclaims dead bytes, which no later one can reclaim again, and an
 * operation tries a few times only: a store into a full cache with no
 * dead items is refused without moving any, after bounded work.
 *
 * Waiting: a thread that finds nothing to empty while others empty
 * segments sleeps on the pool's room_cond until one of them is done or
 * memory is freed (pool_wait_room), instead of spinning.
 *
 * Locking: called with no lock held; takes the shard lock of each item in
 * turn (the order is store.h's); a segment taken off the FIFO is the
 * taker's alone until it hands it back (pool_evac_done).
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <assert.h>
#include <string.h>

#define MAKE_ROOM_TRIES		10000	/* segments emptied (or waits for
					 * other threads to empty one) */
#define NOEVICT_ROOM_TRIES	4	/* the same under no_evict, where
					 * each compacts a segment at most
					 * half live or waits */

/* ---- evacuation ---------------------------------------------------- */

/* Copies an item (a filled reservation, or one being moved) into the
 * calling thread's arena with the given exptime, under the shard lock;
 * `reserve`: the last free segment may be taken.  NULL when there is no
 * room without evicting. */
item_t *
item_copy(store_t *st, const item_t *src, uint32_t exptime, bool reserve)
{
	item_t *it = pool_carve(&st->pool, item_key(src), item_nkey(src),
	    item_flags(src), exptime, src->nbytes, reserve);

	if (it != NULL)
		memcpy(item_value_mut(it), item_value(src), src->nbytes);
	return it;
}

/* Copies a linked item into the calling thread's arena (the last free
 * segment allowed) with the given exptime and links the copy in its
 * place, its CAS, access time and the flag bits in `keep` with it; NULL
 * if no room. */
static item_t *
item_relink(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    uint32_t exptime, uint32_t keep)
{
	item_t *n = item_copy(st, it, exptime, true);

	if (n == NULL)
		return NULL;
	atomic_store_explicit(&n->casnk, atomic_load_explicit(&it->casnk,
	    memory_order_relaxed), memory_order_relaxed);
	item_set_bit(n, ITEM_LINKED | (item_ref_word(it) & keep));
	ht_swap(sh, it, n, hv);
	sh->live_bytes += item_size(n) - item_size(it);
	seg_live_add(st, n, true);
	seg_live_add(st, it, false);
	item_clear_bit(it, ITEM_LINKED);
	store_release(st, it);
	return n;
}

/* Copies a linked item into the calling thread's arena and links the
 * copy in its place; false if no room.  The second chance is used up:
 * ACCESSED stays behind; the meta state (fetched, stale, win) moves with
 * the item. */
static bool
item_move(store_t *st, struct shard *sh, item_t *it, uint64_t hv)
{
	if (item_relink(st, sh, it, hv, item_exptime(it),
	    ITEM_FETCHED | ITEM_STALE | ITEM_WIN) == NULL)
		return false;
	atomic_fetch_add_explicit(&st->moved, 1, memory_order_relaxed);
	return true;
}

/* Tells store_config.evicted of an item about to be evicted. */
static void
tell_evicted(store_t *st, const item_t *it, uint32_t now)
{
	uint32_t exp = item_exptime(it);
	struct store_evicted e = {
		.key = item_key(it), .nkey = item_nkey(it),
		.nbytes = item_nbytes(it),
		.fetched = item_has_bit(it, ITEM_FETCHED),
		.ttl = exp == 0 ? -1 : (int64_t)exp - (int64_t)now,
		.idle = item_idle(it, now),
	};

	st->evicted(st->evicted_ctx, &e);
}

/* Evicts a linked item: records and tells it, and unlinks it. */
static void
item_evict(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    uint32_t now)
{
	atomic_store_explicit(&st->evicted_time, item_idle(it, now),
	    memory_order_relaxed);
	if (st->evicted != NULL)
		tell_evicted(st, it, now);
	item_unlink(st, sh, it, hv, UNLINK_EVICTED);
}

/*
 * Gives a linked item without an exptime field a copy with one, set to
 * exptime (not passed), linked in its place with its CAS, access time and
 * every flag bit: an exptime set on such an item (touch, gat, mg T, md I
 * T).  NULL if there is no room for the copy (the last free segment
 * allowed): the caller drops the lock, makes room and tries again
 * (retry_or_force); with `force`, when no room could be made, the item is
 * evicted instead, as making room would have evicted something.  Returns
 * the item now linked, or the evicted one.
 */
item_t *
item_retime_copy(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    uint32_t exptime, uint32_t now, bool force)
{
	item_t *n = item_relink(st, sh, it, hv, exptime,
	    ITEM_ACCESSED | ITEM_FETCHED | ITEM_STALE | ITEM_WIN);

	if (n != NULL || !force)
		return n;
	item_evict(st, sh, it, hv, now);
	return it;
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
			item_evict(st, sh, it, hv, now);
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
void
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

/* Frees memory after an allocation of `need` bytes found no room: a large
 * block kept for reuse goes back to the system first, and for a loose
 * item a free segment; else the
 * oldest segment is emptied, or under no_evict one with no live item or
 * with at least `need` bytes of dead items, its live items moved, not
 * evicted (compacting one without would free nothing).  With nothing to
 * empty while other threads empty segments, sleeps until one of them is
 * done.  Called with no lock held; false if nothing can be freed. */
static bool
make_room(store_t *st, bool loose, size_t need)
{
	struct seg *s;

	atomic_fetch_add_explicit(&st->room_tries, 1, memory_order_relaxed);
	if (pool_trim_loose(&st->pool) || (loose && pool_trim(&st->pool)))
		return true;
	s = st->no_evict ? pool_pop_emptiest(&st->pool, need) :
	    pool_pop_oldest(&st->pool);
	if (s == NULL)
		return pool_wait_room(&st->pool);
	seg_evacuate(st, s, st->no_evict);
	return true;
}

/* After an operation dropped its lock for want of `need` bytes: makes
 * room and says whether to try again.  Under no_evict a few tries only:
 * a store that finds the cache full is refused at once, as memcached's
 * is. */
bool
retry_with_room(store_t *st, unsigned *tries, bool loose, size_t need)
{
	unsigned max = st->no_evict ? NOEVICT_ROOM_TRIES : MAKE_ROOM_TRIES;

	return (*tries)++ < max && make_room(st, loose, need);
}

/* After a try that found no room (no lock held): makes room and says
 * whether to try again; when none can be made, sets *force for one last
 * try (item_retime evicts then rather than fail). */
bool
retry_or_force(store_t *st, unsigned *tries, size_t need, bool *force)
{
	if (retry_with_room(st, tries, false, need))
		return true;
	if (*force)
		return false;
	*force = true;
	return true;
}
