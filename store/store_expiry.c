/*
 * store_expiry.c -- the background expiry thread: frees expired and
 * flushed items, compacts segments left mostly dead, and does each
 * shard's idle table upkeep (resize, rehash).
 *
 * Expiry and compaction: each segment keeps the earliest exptime of its
 * items (min_exp) and its live bytes.  Every 100 ms the thread takes the
 * segments whose min_exp has passed off the pool's expiry heap (and looks
 * at the arenas' active segments), unlinking their dead items and
 * recomputing min_exp; items of like TTLs share segments (the arenas'
 * TTL buckets, store_seg.c), so a segment is scanned about once, when
 * its items expire, not again for every short-lived neighbour.  A sealed
 * segment less than half live, after a scan or from overwrites and
 * deletes, is evacuated with all its live items moved, so its memory is
 * free for new items and memory held stays near what the live items need
 * rather than growing to the limit; such segments are flagged as they
 * fall under half, and only then does a pass walk the FIFO for them.
 * After a flush_all comes due the next pass sweeps every segment (and the
 * one after it too, if it skipped a segment another pass was scanning:
 * tests run passes beside the thread's).  Items
 * carry their own exptime, so a get never returns an expired item, scan
 * or no scan.  Work is proportional to what is due (a pass with nothing
 * due pops nothing), and a shard lock is held for one item or `budget`
 * buckets at a time.
 *
 * Locking: thr_lock guards thr_stop, thr_kick and the thread's sleep; the scan
 * takes the shard lock of each item in turn.  The order is store.h's.
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <time.h>

#define EXPIRY_BUDGET		1000	/* rehash units per lock hold */
#define EXPIRY_PERIOD_NS	100000000L

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
	uint32_t min = 0, exp;
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
				sh->stats.crawler_reclaimed +=
				    l == ITEM_EXPIRED;
				item_reap(st, sh, it, hv, l);
				c->freed++;
			} else {
				live += item_size(it);
				exp = item_exptime(it);
				if (exp != 0 && (min == 0 || exp < min))
					min = exp;
			}
		}
		shard_unlock(sh);
	}
	atomic_fetch_add_explicit(&st->expire_units, n, memory_order_relaxed);
	pool_note_exptime(&st->pool, s, min);
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
	uint64_t visited = 0;
	unsigned i;
	bool busy;

	budget = budget == 0 ? 1 : budget;
	atomic_fetch_add_explicit(&st->expiry_runs, 1, memory_order_relaxed);
	pool_scan(&st->pool, c.now, all, scan_seg, &c, &visited, &busy);
	atomic_fetch_add_explicit(&st->expire_segs, visited,
	    memory_order_relaxed);
	/* Swept only if no segment was skipped for another pass's (one
	 * that began before the flush came due may have passed its items
	 * over): else the next pass sweeps again. */
	if (all && !busy)
		atomic_store_explicit(&st->flush_swept, w,
		    memory_order_relaxed);
	for (i = 0; i < st->nshards; i++)
		shard_upkeep(st, &st->shards[i], budget);
	return c.freed;
}

/* Sleeps up to one period or until stop or a pass is requested (kicked
 * set); true to go on. */
static bool
expiry_wait(store_t *st, bool *kicked)
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
	if (!st->thr_stop && !st->thr_kick)
		pthread_cond_timedwait(&st->thr_cond, &st->thr_lock, &ts);
	go = !st->thr_stop;
	*kicked = st->thr_kick;
	st->thr_kick = false;
	lock_drop(&st->thr_lock, LOCK_THREAD);
	return go;
}

/* Asks the expiry thread for a pass now. */
void
store_expiry_kick(store_t *st)
{
	lock_take(&st->thr_lock, LOCK_THREAD);
	st->thr_kick = true;
	pthread_cond_signal(&st->thr_cond);
	lock_drop(&st->thr_lock, LOCK_THREAD);
}

/* The expiry thread: a run every 100 ms (or when kicked) until stopped;
 * a run with nothing due costs the same in a store of any size. */
static void *
expiry_main(void *arg)
{
	store_t *st = arg;
	bool kicked = false;

	do
		store_expire_run(st, EXPIRY_BUDGET);
	while (expiry_wait(st, &kicked));
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
