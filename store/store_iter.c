/*
 * store_iter.c -- walks every live item of the store a bounded step at a
 * time, for key dumps (lru_crawler metadump, stats cachedump).
 *
 * Data structure: a cursor (struct store_iter, store.h) of a shard index
 * and a position in that shard's "reversed hash space": an item's
 * position is its 64-bit key hash with the bits reversed.  A table of 2^L
 * buckets puts an item in bucket (hash mod 2^L), its low L bits, which
 * are the top L bits of the position reversed: every bucket of every
 * table, whatever its size, holds exactly the items of one contiguous
 * range of positions, and a bigger table splits each range of a smaller
 * one into finer ones (Redis's SCAN cursor rests on the same property).
 *
 * A step takes the shard lock, looks at up to STORE_ITER_RANGES ranges of
 * the finest table in use (ht[1] while growing, ht[0] while shrinking)
 * starting at the cursor, collects from both tables the live items whose
 * position falls in each range, copies out what the caller needs, moves
 * the cursor past the ranges done and drops the lock.
 *
 * Guarantee: a key that is linked and live from the start of a dump to
 * its end, and never deleted or replaced meanwhile, is listed exactly
 * once.  Its hash never changes, so its position does not either, while
 * the ranges the cursor passes are disjoint and cover the whole space in
 * increasing order; whatever happens between steps (a table grows,
 * shrinks or rehashes, an item is moved to another segment by eviction's
 * second chance or by compaction, other keys come and go) the item is
 * looked at in exactly the one step whose range holds its position, and
 * that step sees it in whichever table holds it then.  Keys added,
 * replaced or deleted during the dump may or may not be listed, at most
 * once per version.  The one exception: should more than `max` (the
 * caller's batch) distinct keys of a shard share all 64 bits of their
 * hash, the ones past the batch would be skipped (with a random seed this
 * does not happen).
 *
 * Locking: one shard lock per step, for at most STORE_ITER_RANGES bucket
 * walks of each table and `max` copies; nothing is held between steps,
 * and no item reference outlives a step, but for the ones
 * store_iter_next_refs hands its caller (snapshots, store_snap.c: they
 * copy the values out and release them before the next step).
 */
#include "store_internal.h"
#include "store_snap.h"

#include <string.h>

/* Fine ranges a step looks at, at most, per lock hold. */
#define STORE_ITER_RANGES	64
/* Lock holds one call may take while it finds nothing (empty shards). */
#define STORE_ITER_HOLDS	16

/* Reverses the bits of a 64-bit word. */
static uint64_t
rev64(uint64_t v)
{
	v = ((v >> 1) & UINT64_C(0x5555555555555555)) |
	    ((v & UINT64_C(0x5555555555555555)) << 1);
	v = ((v >> 2) & UINT64_C(0x3333333333333333)) |
	    ((v & UINT64_C(0x3333333333333333)) << 2);
	v = ((v >> 4) & UINT64_C(0x0f0f0f0f0f0f0f0f)) |
	    ((v & UINT64_C(0x0f0f0f0f0f0f0f0f)) << 4);
	return __builtin_bswap64(v);
}

/* Starts a cursor at the beginning of the store. */
void
store_iter_init(struct store_iter *cur)
{
	*cur = (struct store_iter){ 0 };
}

/* One step's context: the shard, the range [lo, hi] being walked. */
struct step {
	store_t		*st;
	struct shard	*sh;
	uint32_t	 now;
	uint64_t	 lo;
	uint64_t	 hi;		/* inclusive: the last range ends at
					 * UINT64_MAX */
};

/* Returns the bucket of table t that holds position pos. */
static item_t *
range_chain(const struct htable *t, uint64_t pos)
{
	/* The top log2 bits of the position, reversed, are the bucket. */
	return t->b[rev64(pos) & (((size_t)1 << t->log2) - 1)];
}

/* Calls fn for every live item of both tables whose position is in
 * [s->lo, s->hi]; returns how many there were. */
static size_t
range_walk(const struct step *s, void (*fn)(const struct step *, item_t *,
    uint64_t, void *), void *ctx)
{
	size_t n = 0;
	uint64_t p;
	item_t *it;

	for (int i = 0; i < 2 && s->sh->ht[i].b != NULL; i++)
		for (it = range_chain(&s->sh->ht[i], s->lo); it != NULL;
		    it = item_next(it)) {
			p = rev64(item_hash(s->st, it));
			if (p < s->lo || p > s->hi ||
			    item_liveness(s->sh, it, s->now) != ITEM_LIVE)
				continue;
			n++;
			if (fn != NULL)
				fn(s, it, p, ctx);
		}
	return n;
}

/* Copies what a dump shows of an item. */
static void
entry_fill(const struct step *s, const item_t *it,
    struct store_iter_entry *e)
{
	e->nkey = item_nkey(it);
	memcpy(e->key, item_key(it), e->nkey);
	e->exptime = item_exptime(it);
	e->atime = s->now - item_idle(it, s->now);
	e->cas = item_cas(it);
	e->flags = item_flags(it);
	e->nbytes = it->nbytes;
	e->size = item_cost(s->st, it);
	e->fetched = item_has_bit(it, ITEM_FETCHED);
}

/* Where a step puts its entries. */
struct sink {
	struct store_iter_entry	*out;
	size_t			 n;
	size_t			 max;
	uint64_t		 only;	/* partial range: this position only */
	uint64_t		 next;	/* partial range: least position above
					 * `only` (UINT64_MAX: none) */
	bool			 any_next;
	item_t			**refs;	/* not NULL: a reference to each */
};

/* Copies an item into the next entry of a sink (and references it). */
static void
sink_take(const struct step *s, struct sink *k, item_t *it)
{
	if (k->refs != NULL) {
		item_ref(it);
		k->refs[k->n] = it;
	}
	entry_fill(s, it, &k->out[k->n++]);
}

/* range_walk callback: copies every item. */
static void
take_all(const struct step *s, item_t *it, uint64_t p, void *ctx)
{
	struct sink *k = ctx;

	(void)p;
	sink_take(s, k, it);
}

/* range_walk callback: finds the least position at or above `only`. */
static void
find_least(const struct step *s, item_t *it, uint64_t p, void *ctx)
{
	struct sink *k = ctx;

	(void)s;
	(void)it;
	if (p >= k->only && (!k->any_next || p < k->next)) {
		k->next = p;
		k->any_next = true;
	}
}

/* range_walk callback: copies the items at position `only`, while room
 * lasts. */
static void
take_one_pos(const struct step *s, item_t *it, uint64_t p, void *ctx)
{
	struct sink *k = ctx;

	if (p == k->only && k->n < k->max)
		sink_take(s, k, it);
}

/* Counts the items at one position. */
static void
count_pos(const struct step *s, item_t *it, uint64_t p, void *ctx)
{
	struct sink *k = ctx;

	(void)s;
	(void)it;
	if (p == k->only)
		k->n++;
}

/*
 * A range holding more items than the batch has room for (only with an
 * empty batch): copies them in position order, whole positions at a
 * time.  True when the range is done; else *at is where to resume.  A
 * single position with more items than the batch is cut (the documented
 * exception).
 */
static bool
range_partial(const struct step *s, struct sink *k, uint64_t *at)
{
	uint64_t from = s->lo, pos;
	struct sink probe;

	for (;;) {
		probe = (struct sink){ .only = from };
		range_walk(s, find_least, &probe);
		if (!probe.any_next)
			return true;
		pos = probe.next;
		probe = (struct sink){ .only = pos };
		range_walk(s, count_pos, &probe);
		if (k->n > 0 && k->n + probe.n > k->max) {
			*at = pos;
			return false;
		}
		k->only = pos;
		range_walk(s, take_one_pos, k);
		if (pos == s->hi)
			return true;
		from = pos + 1;
		if (k->n == k->max) {
			*at = from;
			return false;
		}
	}
}

/*
 * One lock hold on the cursor's shard: walks ranges from the cursor until
 * STORE_ITER_RANGES are done or the batch is full; moves the cursor.
 */
static void
iter_step(store_t *st, struct store_iter *cur, struct sink *k)
{
	struct shard *sh = &st->shards[cur->shard];
	struct step s = { .st = st, .sh = sh, .now = store_now(st) };
	unsigned log2, ranges;
	uint64_t width, at;
	size_t n;

	shard_lock(sh);
	flush_sync(st, sh, s.now);
	log2 = sh->ht[0].log2;
	if (sh->ht[1].b != NULL && sh->ht[1].log2 > log2)
		log2 = sh->ht[1].log2;
	width = UINT64_MAX >> log2;	/* a fine range is width + 1 wide */
	for (ranges = 0; ranges < STORE_ITER_RANGES && k->n < k->max;
	    ranges++) {
		s.lo = cur->pos;
		s.hi = s.lo | width;
		n = range_walk(&s, NULL, NULL);
		if (n <= k->max - k->n) {
			range_walk(&s, take_all, k);
		} else if (k->n > 0) {
			break;		/* the next call, with an empty batch */
		} else if (!range_partial(&s, k, &at)) {
			cur->pos = at;
			break;
		}
		if (s.hi == UINT64_MAX) {
			cur->pos = 0;
			cur->shard++;
			break;
		}
		cur->pos = s.hi + 1;
	}
	shard_unlock(sh);
	if (cur->shard >= st->nshards)
		cur->done = true;
}

/*
 * Copies up to max live items into out and moves the cursor past them;
 * returns how many.  Takes a shard lock a bounded number of times; a
 * call may return 0 before the end (empty stretches): the dump is over
 * when cur->done is set.
 */
size_t
store_iter_next(store_t *st, struct store_iter *cur,
    struct store_iter_entry *out, size_t max)
{
	return store_iter_next_refs(st, cur, out, NULL, max);
}

/* As store_iter_next; refs (if not NULL) gets a reference to each item,
 * taken under its shard lock (snapshots copy the values from them). */
size_t
store_iter_next_refs(store_t *st, struct store_iter *cur,
    struct store_iter_entry *out, item_t **refs, size_t max)
{
	struct sink k = { .out = out, .max = max, .refs = refs };

	for (unsigned holds = 0; !cur->done && max > 0 &&
	    holds < STORE_ITER_HOLDS && k.n == 0; holds++)
		iter_step(st, cur, &k);
	return k.n;
}
