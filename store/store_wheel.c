/*
 * store_wheel.c -- the per-shard hierarchical timing wheel that finds
 * expired items in time proportional to what expired, not to table size.
 *
 * Data structure (see store_internal.h): 4 levels x 64 slots of 1 s, 64 s,
 * 4096 s and 262144 s, an overflow list beyond 2^24 s, and a cursor `now`,
 * the next second to process.  Slot lists are intrusive (w_next/w_pprev).
 * occ[] has a bit per slot that is set on insert and cleared lazily, so
 * finding the next busy slot is a count-trailing-zeros, not a scan.
 *
 * Advancing is a sequence of small resumable steps, each one unit of work:
 * drain a cascade source slot one item at a time until it is empty, expire
 * the current level-0 slot one item at a time until it is empty, then jump
 * the cursor to the next second where something is filed.  Because a step
 * only ever moves items to lower levels (or out), "move until the slot is
 * empty" can stop at any budget and pick up where it left off.  The only
 * list that can refill itself is overflow, so it is first spliced whole
 * into `pending` and re-placed from there.
 *
 * Locking: none here; the caller holds the lock of the shard that owns the
 * wheel for every call.
 */
#include "store_internal.h"

#include <assert.h>

/* Returns the bit count of a level's slot span: 0, 6, 12, 18. */
static unsigned
level_shift(unsigned level)
{
	return level * WHEEL_BITS;
}

/* Pushes an item onto a slot list. */
static void
list_push(item_t **head, item_t *it)
{
	it->w_next = *head;
	if (*head != NULL)
		(*head)->w_pprev = &it->w_next;
	*head = it;
	it->w_pprev = head;
}

/* Unhooks an item from whatever slot list holds it. */
static void
list_unhook(item_t *it)
{
	*it->w_pprev = it->w_next;
	if (it->w_next != NULL)
		it->w_next->w_pprev = it->w_pprev;
	it->w_next = NULL;
	it->w_pprev = NULL;
}

/* Returns the slot list an expiry time belongs in, relative to the cursor;
 * marks the slot busy. */
static item_t **
slot_for(struct wheel *w, uint64_t e)
{
	uint64_t diff;
	unsigned level, idx;

	/* Already due (clock behind the cursor): the current slot. */
	if (e < w->now)
		e = w->now;
	diff = e ^ w->now;
	for (level = 0; level < WHEEL_LEVELS; level++) {
		if (diff < (UINT64_C(1) << level_shift(level + 1))) {
			idx = (e >> level_shift(level)) & (WHEEL_SLOTS - 1);
			w->occ[level] |= UINT64_C(1) << idx;
			return &w->slot[level][idx];
		}
	}
	return &w->overflow;
}

/* Sets up an empty wheel whose cursor starts at now. */
void
wheel_init(struct wheel *w, uint32_t now)
{
	*w = (struct wheel){ .now = now };
}

/* Files an item with a non-zero exptime. */
void
wheel_insert(struct wheel *w, item_t *it)
{
	assert(it->exptime != 0 && it->w_pprev == NULL);
	list_push(slot_for(w, it->exptime), it);
	w->count++;
}

/* Takes an item out of the wheel, wherever it is; its occ bit stays set
 * and is cleared when a search finds the slot empty. */
void
wheel_remove(struct wheel *w, item_t *it)
{
	assert(it->w_pprev != NULL && w->count > 0);
	list_unhook(it);
	w->count--;
}

/* True once every item due at or before now has been expired. */
bool
wheel_caught_up(const struct wheel *w, uint32_t now)
{
	return w->count == 0 || w->now > now;
}

/* Returns the first item of the slot being cascaded at the cursor, highest
 * level first, or NULL when no cascade work is left. */
static item_t *
cascade_source(const struct wheel *w)
{
	unsigned level, shift;
	item_t *it;

	if (w->pending != NULL)
		return w->pending;
	for (level = WHEEL_LEVELS - 1; level >= 1; level--) {
		shift = level_shift(level);
		/* Only a slot that starts exactly at the cursor cascades. */
		if ((w->now & ((UINT64_C(1) << shift) - 1)) != 0)
			continue;
		it = w->slot[level][(w->now >> shift) & (WHEEL_SLOTS - 1)];
		if (it != NULL)
			return it;
	}
	return NULL;
}

/* Starts the cascade at the cursor: at a 2^24 boundary the overflow list
 * moves whole into pending, so re-placing cannot refill what it drains. */
static void
cascade_begin(struct wheel *w)
{
	uint64_t top = UINT64_C(1) << WHEEL_SPAN_BITS;

	w->cascaded = true;
	if ((w->now & (top - 1)) != 0 || w->overflow == NULL)
		return;
	assert(w->pending == NULL);
	w->pending = w->overflow;
	w->pending->w_pprev = &w->pending;
	w->overflow = NULL;
}

/* Returns the start of the next busy slot after the cursor at one level,
 * or 0 if none; clears the occ bits of slots found empty. */
static uint64_t
next_busy_at(struct wheel *w, unsigned level)
{
	unsigned shift = level_shift(level);
	unsigned cur = (w->now >> shift) & (WHEEL_SLOTS - 1);
	uint64_t bits, base;
	unsigned idx;

	/* Slots at or below the cursor's index are spent at every level. */
	bits = cur == WHEEL_SLOTS - 1 ? 0 :
	    w->occ[level] & ~((UINT64_C(2) << cur) - 1);
	while (bits != 0) {
		idx = (unsigned)__builtin_ctzll(bits);
		if (w->slot[level][idx] != NULL) {
			base = (w->now >> (shift + WHEEL_BITS)) <<
			    (shift + WHEEL_BITS);
			return base + ((uint64_t)idx << shift);
		}
		w->occ[level] &= ~(UINT64_C(1) << idx);
		bits &= bits - 1;
	}
	return 0;
}

/* Returns the next second after the cursor at which anything is filed; the
 * cursor may skip to it because every slot in between is empty. */
static uint64_t
next_event(struct wheel *w)
{
	unsigned level;
	uint64_t t;

	for (level = 0; level < WHEEL_LEVELS; level++) {
		t = next_busy_at(w, level);
		if (t != 0)
			return t;
	}
	/* Only overflow is left: its cascade is at the next 2^24 boundary. */
	return ((w->now >> WHEEL_SPAN_BITS) + 1) << WHEEL_SPAN_BITS;
}

/* Moves the cursor past the finished second, as far as it may skip. */
static void
cursor_advance(struct wheel *w, uint32_t now)
{
	uint64_t t = next_event(w);

	w->now = t < (uint64_t)now + 1 ? t : (uint64_t)now + 1;
	w->cascaded = false;
}

/* Jumps the cursor of an empty wheel to now; nothing can be skipped over. */
static void
cursor_reset(struct wheel *w, uint32_t now)
{
	unsigned level;

	if (w->now < now) {
		w->now = now;
		w->cascaded = false;
	}
	for (level = 0; level < WHEEL_LEVELS; level++)
		w->occ[level] = 0;
}

/* Does one unit of work toward catching up with now; false when caught
 * up. */
static bool
wheel_step(struct wheel *w, uint32_t now, wheel_expire_fn fn, void *ctx)
{
	item_t *it;
	item_t **cur;

	if (w->count == 0) {
		cursor_reset(w, now);
		return false;
	}
	if (w->now > now)
		return false;
	if (!w->cascaded)
		cascade_begin(w);
	if ((it = cascade_source(w)) != NULL) {
		list_unhook(it);
		list_push(slot_for(w, it->exptime), it);
		return true;
	}
	cur = &w->slot[0][w->now & (WHEEL_SLOTS - 1)];
	if ((it = *cur) != NULL) {
		assert(it->exptime <= now);
		wheel_remove(w, it);
		fn(it, ctx);
		return true;
	}
	cursor_advance(w, now);
	return true;
}

/* Expires items due at or before now, at most budget units of work;
 * returns the units used. */
size_t
wheel_advance(struct wheel *w, uint32_t now, size_t budget,
    wheel_expire_fn fn, void *ctx)
{
	size_t used = 0;

	while (used < budget && wheel_step(w, now, fn, ctx))
		used++;
	return used;
}
