/*
 * store_internal.h -- private to store/: the item layout and the per-shard
 * hierarchical timing wheel that store.c and store_wheel.c share.  The
 * server never includes this; unit tests may, for white-box checks.
 *
 * Item: one malloc holding this 64-byte header, then the key, then the
 * value and its trailing "\r\n".  The header carries three intrusive links:
 * the hash chain (singly linked), the shard's LRU segment, probation or
 * protected (doubly linked; the PROTECTED bit says which), and the expiry
 * wheel (next + pointer to the previous next field, so a slot head is one
 * pointer and removal needs no knowledge of the slot).
 *
 * Locking: the links, exptime and the flag bits may change while an item
 * is shared and are guarded by the lock of the item's shard.  Key, value,
 * nbytes, flags and cas are written before the item is linked and never
 * again, so a reference holder reads them without a lock.  The
 * refcount lives in the same atomic word as the flag bits; only atomic
 * operations touch that word.
 */
#ifndef CACHED_STORE_INTERNAL_H
#define CACHED_STORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The atomic `ref` word: low 29 bits count references, three flag bits. */
#define ITEM_REF_MASK	0x1fffffffu
#define ITEM_PROTECTED	0x20000000u	/* in the protected LRU segment */
#define ITEM_LINKED	0x40000000u	/* in its shard's hash, LRU, wheel */
#define ITEM_FETCHED	0x80000000u	/* read by a get since it was stored */

/* casnk packs the 56-bit CAS over the 8-bit key length. */
#define ITEM_CAS_SHIFT	8

struct item {
	item_t		 *h_next;	/* hash chain */
	item_t		 *lru_prev;	/* towards the most recently used */
	item_t		 *lru_next;	/* towards the least recently used */
	item_t		 *w_next;	/* wheel slot list */
	item_t		**w_pprev;	/* NULL when not in the wheel */
	uint64_t	  casnk;	/* cas << 8 | nkey */
	uint32_t	  exptime;	/* absolute unix time, 0 = never */
	uint32_t	  flags;	/* the client's opaque flags */
	uint32_t	  nbytes;	/* value length without "\r\n" */
	_Atomic uint32_t  ref;		/* refcount | flag bits */
	char		  data[];	/* key, value, "\r\n" */
};

_Static_assert(sizeof(struct item) == 64, "item header must stay 64 bytes");

/*
 * Timing wheel: WHEEL_LEVELS levels of WHEEL_SLOTS slots; a slot at level L
 * spans 64^L seconds.  An item with expiry e sits at the lowest level L at
 * which e and the cursor agree on every bit above 6(L+1), in slot
 * (e >> 6L) & 63; items beyond the top level wait in `overflow`.  Whenever
 * the cursor reaches the start of a higher-level slot, that slot is drained
 * into lower levels (cascade), so level 0 always holds exactly the items
 * due in the cursor's current 64-second block.
 */
#define WHEEL_BITS	6
#define WHEEL_SLOTS	(1u << WHEEL_BITS)
#define WHEEL_LEVELS	4
#define WHEEL_SPAN_BITS	(WHEEL_BITS * WHEEL_LEVELS)

struct wheel {
	item_t		*slot[WHEEL_LEVELS][WHEEL_SLOTS];
	item_t		*overflow;	/* expiring beyond the top level */
	item_t		*pending;	/* overflow being re-placed */
	uint64_t	 occ[WHEEL_LEVELS]; /* bit set: slot may be non-empty */
	uint64_t	 now;		/* next second to process */
	size_t		 count;		/* items in slots, overflow, pending */
	bool		 cascaded;	/* cascade for `now` has started */
};

/* Called for each item the wheel expires, already out of the wheel. */
typedef void (*wheel_expire_fn)(item_t *it, void *ctx);

/* Sets up an empty wheel whose cursor starts at now. */
void	wheel_init(struct wheel *w, uint32_t now);
/* Files an item with a non-zero exptime. */
void	wheel_insert(struct wheel *w, item_t *it);
/* Takes an item out of the wheel, wherever it is. */
void	wheel_remove(struct wheel *w, item_t *it);
/* Expires items due at or before now, at most budget units of work;
 * returns the units used. */
size_t	wheel_advance(struct wheel *w, uint32_t now, size_t budget,
	    wheel_expire_fn fn, void *ctx);
/* True once every item due at or before now has been expired. */
bool	wheel_caught_up(const struct wheel *w, uint32_t now);

/* Work counters for tests: proportionality and lock hold bounds. */
struct store_debug {
	uint64_t	expire_units;	/* units spent by store_expire_run */
	uint64_t	max_hold_units;	/* most units in one lock hold */
};

/* Copies the work counters. */
void	store_debug_get(store_t *st, struct store_debug *out);
/* Returns the shard index a key maps to. */
unsigned store_key_shard(store_t *st, const char *key, size_t nkey);
/* Returns the full accounted cost of one allocation. */
size_t	store_alloc_cost(const void *p);
/* Returns the LRU segment of a key's live item without counting a hit:
 * 0 probation, 1 protected, -1 if there is none. */
int	store_debug_segment(store_t *st, const char *key, size_t nkey);

#endif
