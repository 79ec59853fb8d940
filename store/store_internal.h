/*
 * store_internal.h -- private to store/: the lock ranks and their
 * wrappers, the item layout, the segment pool (store_seg.c), the shard
 * and store structures, and the functions the store's files share
 * (store.c, store_hash.c, store_cmd.c, store_evict.c, store_expiry.c).
 * The server never includes this; unit tests may, for white-box checks.
 *
 * Item: a 24-byte header, the exptime and the client's flags where they
 * are not 0 (4 bytes each: most items have neither), then the key, then
 * the value (no "\r\n"), rounded up to 8 bytes.  Under no_evict, and in
 * loose items, both fields are always there, so either can change in
 * place; else an exptime set on an item without the field moves it to a
 * copy with one (item_retime).  The only link is the hash chain;
 * eviction and expiry work on the memory the items sit in, not on
 * per-item lists.
 *
 * Segments (log-structured memory, after Segcache, Yang et al., NSDI '21):
 * items up to `small_max` bytes are carved, one after the other, from
 * segments of `seg_size` bytes (aligned to their size, so an item finds
 * its segment by masking its address).  Each thread carves from one of
 * NARENAS arenas, each with one active segment per TTL bucket (items of
 * like TTLs share segments, so a segment falls due about once: Segcache's
 * TTL buckets, as many as the limit affords, NTTL at most); a full one is
 * sealed onto the tail of the store's FIFO.  Larger items, and
 * reservations a client may still be filling (store_reserve), are
 * "loose": a malloc of their own with a segment header in front; a loose
 * item that gets linked joins the FIFO as a segment of one.  A
 * reservation whose value is at hand (store_reserve_direct) is carved like
 * any small item: unlinked until its commit, dead bytes if released
 * instead.  Memory is freed a segment at a time, from the
 * FIFO head (store.c: evacuation).
 *
 * Locking: the links, the access time, exptime and the flag bits may
 * change while an item is shared and are guarded by the lock of the
 * item's shard.  Key, nbytes and flags are written before the item is
 * linked and never again, so a reference holder reads them without a
 * lock; cas too, but for md with I, which gives a linked item a new one
 * under the shard lock (atomic, so a holder reads one or the other); header and key of a
 * carved item are written under its arena's lock, so a thread that finds
 * the item through the FIFO sees them.  The refcount lives in the same
 * atomic word as the flag bits; only atomic operations touch that word.
 *
 * Lock order: the one in store.h, asserted by lock_take() below.
 */
#ifndef CACHED_STORE_INTERNAL_H
#define CACHED_STORE_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

/*
 * Every mutex of the store has a rank; a thread takes locks in rising rank
 * order only, and at most one of each rank (store.h states the order).
 * Debug builds (no NDEBUG) keep the ranks a thread holds in a thread-local
 * bitmask and assert the order at every acquisition.
 */
enum lock_rank {
	LOCK_FLUSH,	/* store: flush_lock, serializes store_flush */
	LOCK_SHARD,	/* store: one shard's table and its items */
	LOCK_ARENA,	/* pool: one arena's active segment */
	LOCK_POOL,	/* pool: FIFO, free list, room_cond */
	LOCK_THREAD,	/* store: the expiry thread's sleep (thr_lock) */
};

#define LOCK_RANKS	(LOCK_THREAD + 1)

#ifndef NDEBUG
/* Bit r set: the thread holds a lock of rank r (store.c). */
extern _Thread_local unsigned store_locks_held;
/* Locks of each rank this thread has taken (store.c): tests count what
 * an operation takes.  Thread-local, so counting shares no line. */
extern _Thread_local uint64_t store_locks_taken[LOCK_RANKS];
#endif

/* Acquisitions of a lock of each rank that found it held, every store of
 * the process together (store.c; store_debug_get reads them): what
 * threads wait for.  Written only when a thread is about to wait. */
extern _Atomic uint64_t store_lock_waits[LOCK_RANKS];

/*
 * Initializes a store mutex.  Critical sections are short (a lookup, a
 * link, a carve), so a thread that finds the lock held spins briefly
 * before it sleeps (glibc's adaptive mutex): a futex wait and wake cost
 * more than the section.  store_bench's 2-thread runs find the lock held
 * on 1-2.5 % of their operations; what spinning gained there was
 * within the machine's noise.
 */
static inline void
lock_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

/* Takes a store mutex of rank r; asserts no lock of rank >= r is held. */
static inline void
lock_take(pthread_mutex_t *m, enum lock_rank r)
{
#ifndef NDEBUG
	assert((store_locks_held >> r) == 0 && "store lock order");
#endif
	if (pthread_mutex_trylock(m) != 0) {
		atomic_fetch_add_explicit(&store_lock_waits[r], 1,
		    memory_order_relaxed);
		pthread_mutex_lock(m);
	}
#ifndef NDEBUG
	store_locks_held |= 1u << r;
	store_locks_taken[r]++;
#endif
}

/* Drops a store mutex of rank r. */
static inline void
lock_drop(pthread_mutex_t *m, enum lock_rank r)
{
#ifdef NDEBUG
	(void)r;
#else
	assert((store_locks_held & (1u << r)) != 0);
	store_locks_held &= ~(1u << r);
#endif
	pthread_mutex_unlock(m);
}

/* The atomic `ref` word: low 23 bits count references, nine flag bits.
 * STALE and WIN are the meta commands' state (store.h), guarded by the
 * shard lock like the others.  HAS_EXP and HAS_FLAGS say which optional
 * fields follow the header; set when the item is made, never changed. */
#define ITEM_REF_MASK	0x007fffffu
#define ITEM_HAS_EXP	0x00800000u	/* an exptime field follows */
#define ITEM_HAS_FLAGS	0x01000000u	/* a flags field follows */
#define ITEM_STALE	0x02000000u	/* invalidated (md I, ms I): X */
#define ITEM_WIN	0x04000000u	/* a recache token was handed out */
#define ITEM_LOOSE	0x08000000u	/* own allocation, not in a segment */
#define ITEM_ACCESSED	0x10000000u	/* hit since stored or moved */
#define ITEM_LINKED	0x20000000u	/* in its shard's hash table */
#define ITEM_FETCHED	0x40000000u	/* read by a get since it was stored */
#define ITEM_EVAC	0x80000000u	/* its segment is being emptied */

/* casnk packs the 56-bit CAS over the 8-bit key length; atomic (relaxed)
 * because the CAS is set under the shard lock while a scan may read the
 * key length without it. */
#define ITEM_CAS_SHIFT	8

/*
 * h_link packs the hash chain's next pointer (low 48 bits: user-space
 * addresses on x86-64 Linux use 47) under the last access time, in
 * seconds modulo 65536 (top 16 bits): an idle time is exact up to 18.2
 * hours, then wraps.  Only the functions below touch it: under the shard
 * lock, but for item_touch_atime (a get that read without the lock), so
 * every access is atomic (relaxed: plain loads and stores).
 */
#define ITEM_LINK_BITS	48
#define ITEM_LINK_MASK	((UINT64_C(1) << ITEM_LINK_BITS) - 1)
_Static_assert(sizeof(uintptr_t) == 8, "h_link needs 64-bit pointers");

struct item {
	_Atomic uint64_t  h_link;	/* next in chain | access time << 48 */
	_Atomic uint64_t  casnk;	/* cas << 8 | nkey */
	uint32_t	  nbytes;	/* value length */
	_Atomic uint32_t  ref;		/* refcount | flag bits */
	/* Then, each only where its ITEM_HAS_ bit is set: the exptime
	 * (absolute unix time) and the client's flags, 4 bytes each; then
	 * the key and the value. */
	char		  data[];
};

_Static_assert(sizeof(struct item) == 24, "item header must stay 24 bytes");
/* ht_peek reads nbytes (low half) and ref (high half) as one word. */
_Static_assert(offsetof(struct item, nbytes) == 16 &&
    offsetof(struct item, ref) == 20 &&
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "item word 2 layout");

/* Bytes of the optional fields an item of this exptime and flags has. */
#define ITEM_EXT(flags, exptime) \
	(((exptime) != 0 ? 4u : 0u) + ((flags) != 0 ? 4u : 0u))

/* Bytes an item of this key and value length, and ext bytes of optional
 * fields, takes in a segment. */
#define ITEM_SIZE_X(nkey, nbytes, ext) \
	((sizeof(struct item) + (ext) + (nkey) + (nbytes) + 7) & ~(size_t)7)
/* The same with neither exptime nor flags. */
#define ITEM_SIZE(nkey, nbytes)	ITEM_SIZE_X(nkey, nbytes, 0)
/* The most an item of this key and value length takes, with both
 * optional fields: what a retry makes room for. */
#define ITEM_SIZE_UP(nkey, nbytes)	ITEM_SIZE_X(nkey, nbytes, 8)
/* A loose item's header: both optional fields are always there. */
#define LOOSE_HDR	(sizeof(struct item) + 8)

enum seg_state {
	SEG_FREE,	/* on the free list */
	SEG_LOOSE,	/* a loose item not linked (yet) */
	SEG_ACTIVE,	/* an arena carves from it */
	SEG_SEALED,	/* in the FIFO */
	SEG_EVAC,	/* taken off the FIFO to be emptied */
};

/* Segment header: the first 64 bytes of every segment and loose item. */
struct seg {
	struct seg	 *prev;		/* FIFO (pool lock) */
	struct seg	 *next;		/* FIFO or free list (pool lock) */
	char		 *mem;		/* first item */
	uint32_t	  cap;		/* bytes for items */
	uint32_t	  used;		/* bytes carved (arena lock while
					 * active, then fixed) */
	_Atomic uint32_t  min_exp;	/* no item expires before, 0: none */
	_Atomic uint32_t  pins;		/* holders that delay its reuse */
	_Atomic uint32_t  live;		/* ITEM_SIZE of its linked items */
	uint32_t	  scan_gen;	/* pool_scan pass that saw it (lock) */
	uint8_t		  state;	/* enum seg_state (pool lock) */
	bool		  loose;
	uint32_t	  born;		/* clock when it began taking items
					 * (set before it is shared) */
	uint32_t	  heap_idx;	/* in the expiry heap, or HEAP_NONE,
					 * HEAP_SCAN (pool lock) */
};

#define SEG_HDR		64
_Static_assert(sizeof(struct seg) <= SEG_HDR, "segment header too big");

#define NARENAS		4
/* What a bulk load, and -L, map at once: one transparent huge page on
 * x86-64 and most others. */
#define PREFAULT_CHUNK	(2 * 1024 * 1024)
/* TTL buckets an arena may keep an active segment for: no TTL, then
 * remaining TTLs of 1-7 s, 8-63 s, ... (powers of 8), 262144 s and up. */
#define NTTL		8
/* Open segments (NARENAS * buckets) take at most this share of the
 * limit: a small limit has fewer buckets, down to one. */
#define TTL_OPEN_SHARE	8
/* Large loose blocks (STORE_LARGE_ALLOC up) are mmapped in size classes
 * of 16 a power of two (whole pages), so a freed one can be reused; the
 * pool keeps freed ones up to this share of the limit. */
#define NLCLASS		(17 * 16)
#define LOOSE_CACHE_SHARE 8
#define LOOSE_CACHE_MAX	(64u << 20)
/* seg->heap_idx when it is not in the expiry heap, and while a pass
 * scans it (the pass puts it back). */
#define HEAP_NONE	UINT32_MAX
#define HEAP_SCAN	(UINT32_MAX - 1)
/* A sealed segment with less than this share of live bytes is compacted
 * (its live items moved) by the expiry thread when there is room. */
#define COMPACT_LIVE_PCT	50

struct arena {
	pthread_mutex_t	 lock;
	struct seg	*active[NTTL];	/* by TTL bucket (pool.nttl used) */
} __attribute__((aligned(64)));

/* An entry of the expiry heap: a sealed segment and its min_exp when
 * put there (at most its min_exp now: notes only lower it). */
struct heap_ent {
	uint32_t	 key;
	struct seg	*s;
};

struct pool {
	pthread_mutex_t	 lock;
	struct seg	*head;		/* oldest sealed segment */
	struct seg	*tail;
	struct seg	*free;		/* free small segments */
	_Atomic size_t	 nfree;
	/* Small segments given back (MADV_DONTNEED, uncharged) but kept
	 * mapped for the store's life, so a get that reads without the
	 * shard lock never touches an unmapped page; reused first (lock). */
	struct seg	**released;
	size_t		 nreleased;
	size_t		 nreleasing;	/* popped, being given back */
	size_t		 released_cap;
	size_t		 nsegs;		/* small segments held */
	_Atomic size_t	 nsegs_pub;	/* the same, read without the lock */
	_Atomic size_t	 nwalking;	/* segments being emptied */
	size_t		 seg_size;	/* power of two */
	size_t		 small_max;	/* largest carved item */
	_Atomic size_t	 limit;		/* store_set_limit may move it */
	size_t		 page_size;
	store_clock_fn	 clock;		/* stamps seg->born */
	void		*clock_ctx;
	bool		 full_hdr;	/* carve both optional fields
					 * always (no_evict; set before
					 * use) */
	_Atomic bool	 prefault;	/* map new segments populated, a
					 * huge page's worth at once */
	bool		 huge;		/* map them so always (-L; set
					 * before use) */
	_Atomic uint64_t mem;		/* segments held + loose items */
	uint32_t	 scan_gen;	/* pool_scan passes (lock) */
	uint64_t	 room_gen;	/* evacuations ended + frees (lock) */
	pthread_cond_t	 room_cond;	/* room_gen moved (with lock) */
	unsigned	 nttl;		/* TTL buckets in use, 1..NTTL */
	/* The expiry heap (lock): every sealed segment with a min_exp,
	 * earliest first, so a pass looks at the due ones only. */
	struct heap_ent	*heap;
	uint32_t	 heap_n;
	uint32_t	 heap_cap;
	bool		 heap_lost;	/* a grow failed: passes walk the
					 * FIFO until it is rebuilt */
	/* A sealed segment fell under COMPACT_LIVE_PCT live: the next pass
	 * walks the FIFO for segments to compact. */
	_Atomic bool	 compact_due;
	/* Freed large loose blocks kept for reuse, by size class (lock),
	 * still charged to mem; at most limit / LOOSE_CACHE_SHARE bytes,
	 * and LOOSE_CACHE_MAX. */
	struct seg	*lfree[NLCLASS];
	size_t		 lcached;	/* bytes in lfree (lock) */
	_Atomic uint64_t lmapped;	/* large blocks mapped, for tests */
	_Atomic uint64_t lreused;	/* ... and taken from lfree */
	struct arena	 arena[NARENAS];
};

/* Sets up an empty pool for a memory limit. */
void	 pool_init(struct pool *p, size_t limit, size_t page_size);
/* What malloc charges for an allocation: usable size + its size word. */
size_t	 pool_malloc_cost(const void *m);
/* What a loose item's allocation (with its header) is charged. */
size_t	 pool_loose_cost(const struct pool *p, const struct seg *s);
/* Frees every segment and loose item still in the FIFO. */
void	 pool_fini(struct pool *p);
/*
 * Carves an item of ITEM_SIZE(nkey, nbytes) bytes from the calling
 * thread's arena and writes its header (one reference) and key.  Never
 * evicts: returns NULL when the arena's segment is full and no segment is
 * free or can be allocated within the limit (`reserve`: the last free
 * segment may be taken too, as evacuation does to move items).
 */
item_t	*pool_carve(struct pool *p, const char *key, size_t nkey,
	    uint32_t flags, uint32_t exptime, size_t nbytes, bool reserve);
/* Allocates a loose item the same way; NULL when over the limit. */
item_t	*pool_loose(struct pool *p, const char *key, size_t nkey,
	    uint32_t flags, uint32_t exptime, size_t nbytes);
/* Puts a loose item that was linked at the FIFO tail. */
void	 pool_loose_sealed(struct pool *p, item_t *it);
/* Returns the segment an item lives in; pool_seg_at when the caller
 * knows whether it is loose and may no longer read it. */
struct seg *pool_seg_of(const struct pool *p, const item_t *it);
struct seg *pool_seg_at(const struct pool *p, const item_t *it,
	    bool loose);
/* With on, new segments are mapped with their pages already in place
 * (one system call rather than a page fault per page): for bulk loads,
 * which fill every segment they take at once.  Off by default: a set
 * that takes a new segment would wait for all of its pages. */
void	 pool_prefault(struct pool *p, bool on);
/* Lowers a segment's min_exp to exptime (0 is ignored), and its place
 * in the expiry heap if sealed. */
void	 pool_note_exptime(struct pool *p, struct seg *s, uint32_t exptime);
/* An item of n bytes left a segment whose live bytes were old: flags
 * the segment for compaction if that took it under COMPACT_LIVE_PCT. */
void	 pool_note_dead(struct pool *p, const struct seg *s, uint32_t old,
	    uint32_t n);
/*
 * Takes the oldest sealed segment off the FIFO, state SEG_EVAC, pinned
 * once for the caller; seals a non-empty arena segment first when the
 * FIFO is empty.  NULL if there is nothing to take.
 */
struct seg *pool_pop_oldest(struct pool *p);
/* Waits, without spinning, until an evacuation under way ends or memory
 * is freed; false at once if no segment is being emptied. */
bool	 pool_wait_room(struct pool *p);
/* Ends the emptying of a taken segment and drops the taker's pin. */
void	 pool_evac_done(struct pool *p, struct seg *s);
/* Takes a given sealed segment off the FIFO for emptying, pinned once;
 * false if it is not sealed any more. */
bool	 pool_take(struct pool *p, struct seg *s);
/* Puts a segment taken off the FIFO back at its tail (a second chance for
 * a loose item); consumes the caller's pin. */
void	 pool_requeue(struct pool *p, struct seg *s);
/* Pins a segment; the caller knows it cannot be reused meanwhile. */
void	 pool_pin(struct seg *s);
/* Drops a pin; the last pin of an evacuated segment frees it. */
void	 pool_unpin(struct pool *p, struct seg *s);
/* Called when a loose item's last reference goes: a loose segment holds
 * a pin for its item's existence, dropped here. */
void	 pool_loose_gone(struct pool *p, struct seg *s);
/* Takes a sealed segment off the FIFO, pinned once, if emptying it gains
 * room: one with no live item, else the small one with the most dead
 * bytes (carved, no longer linked) if they are at least `need` and a free
 * segment can take its live items.  Its unused tail does not count: the
 * items moved leave one of their own.  NULL if there is none. */
struct seg *pool_pop_emptiest(struct pool *p, size_t need);
/* Gives one kept large block or free small segment back to the system;
 * false if none. */
bool	 pool_trim(struct pool *p);
/* Gives one kept large block back to the system; false if none. */
bool	 pool_trim_loose(struct pool *p);
/* True if a loose item of this key and value length can fit within the
 * limit at all (with everything else evicted). */
bool	 pool_loose_fits(const struct pool *p, size_t nkey, size_t nbytes);
/* True if a segment is free or can be allocated within the limit. */
bool	 pool_has_room(struct pool *p);
/*
 * Calls fn(s, used, ctx) for every sealed or active segment whose min_exp
 * is set and at most `upto` (the sealed ones from the expiry heap, so
 * segments not due cost nothing), every sealed one under COMPACT_LIVE_PCT
 * live while a segment is free or can be had (walking the FIFO only when
 * one was flagged since the last walk), and every non-empty one when
 * `all`; one at a time and pinned for the call (pinning them all up front
 * would keep the memory of every segment evicted meanwhile until the pass
 * ends), with `used` read and min_exp reset to 0 under the lock that
 * orders them against carving: fn recomputes min_exp from the items up to
 * `used`, and items carved later note their own exptime.  A sealed
 * segment another pass is scanning is skipped, and *busy set (so an `all`
 * pass knows it did not see every segment).  Adds the segment headers
 * looked at to *visited.  Returns the number of calls.
 */
size_t	 pool_scan(struct pool *p, uint32_t upto, bool all,
	    void (*fn)(struct seg *s, uint32_t used, void *ctx), void *ctx,
	    uint64_t *visited, bool *busy);

/* ---- the store: shards, and what its files share --------------------- */

#define HT_MIN_LOG2		8
#define REHASH_EMPTY_VISITS	10	/* buckets looked at per op, as Redis */

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
	uint64_t	evicted_nonzero;	/* evicted with an exptime */
	uint64_t	crawler_reclaimed;	/* expired, freed by the thread */
};

/* One shard: its lock guards every field and the mutable fields of the
 * items linked in its table; ht_peek reads them without it, under the
 * sequence count. */
struct shard {
	/* What ht_peek reads, on lines of their own: the lock's holders
	 * write the mutex and the counters below on every operation, and a
	 * set then makes a reader on another CPU miss only the line of the
	 * count.  The count is odd while the lock is held: bumped by
	 * shard_lock and shard_unlock, so a get that reads without the
	 * lock sees whether anything changed meanwhile. */
	_Atomic uint32_t	seq;
	uint32_t		loose_linked;	/* linked loose items */
	struct htable		ht[2];		/* ht[1] set while rehashing */
	uint64_t		flush_seen;	/* flush word last looked at */
	/* Written at a flush or a resize only. */
	uint64_t		flush_wm;	/* cas <= this: flushed */
	bool			flush_applied;
	/* ht[0] for prefetches that take no lock: log2 << 48 | bucket
	 * array (ht_hint_set); may be stale, so only ever prefetched. */
	_Atomic uint64_t	ht_hint;
	size_t			hash_bytes;
	struct ht_spare	       *spares;		/* retired bucket arrays */
	/* Written by every operation under the lock. */
	pthread_mutex_t		lock __attribute__((aligned(64)));
	size_t			rehash_idx;	/* next ht[0] bucket to move */
	size_t			live_bytes;	/* ITEM_SIZE of linked items */
	uint64_t		cas_last;	/* last CAS handed out */
	uint64_t		flushed_linked;	/* linked, cas <= flush_wm */
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
	void			(*evicted)(void *ctx,
				    const struct store_evicted *e);
	void		       *evicted_ctx;
	uint64_t		seed;
	/* Read by every operation: kept off the lines the pool writes. */
	_Atomic uint64_t	flush_word;	/* generation << 32 | due */
	_Atomic uint64_t	flush_swept;	/* flush word last swept */
	_Alignas(64) struct pool pool;
	_Atomic uint64_t	expiry_runs;
	_Atomic uint64_t	expire_units;
	_Atomic uint64_t	expire_segs;	/* headers looked at */
	_Atomic uint64_t	max_hold_units;
	_Atomic uint64_t	evacuated;
	_Atomic uint64_t	moved;
	_Atomic uint64_t	room_tries;
	_Atomic uint32_t	evicted_time;	/* idle secs of the last evicted */
	/* "stats reset" baselines of the work counters above */
	_Atomic uint64_t	base_expire_units;
	_Atomic uint64_t	base_moved;
	_Atomic uint64_t	base_room_tries;
	pthread_mutex_t		flush_lock;	/* LOCK_FLUSH */
	pthread_mutex_t		thr_lock;	/* LOCK_THREAD */
	pthread_cond_t		thr_cond;
	pthread_t		thr;
	bool			thr_running;
	bool			thr_stop;
	bool			thr_kick;	/* a pass asked for (thr_lock) */
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

/* Takes a shard lock and makes its count odd; the release fence orders
 * the count before every write made under the lock. */
static inline void
shard_lock(struct shard *sh)
{
	lock_take(&sh->lock, LOCK_SHARD);
	atomic_store_explicit(&sh->seq, atomic_load_explicit(&sh->seq,
	    memory_order_relaxed) + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

/* Makes a shard's count even again, after every write made under the
 * lock, and drops the lock. */
static inline void
shard_unlock(struct shard *sh)
{
	atomic_store_explicit(&sh->seq, atomic_load_explicit(&sh->seq,
	    memory_order_relaxed) + 1, memory_order_release);
	lock_drop(&sh->lock, LOCK_SHARD);
}

/* True if flush word w (flush_sync) is due at now and not applied yet. */
static inline bool
flush_due(uint64_t w, bool applied, uint32_t now)
{
	return w != 0 && !applied && (uint32_t)w <= now;
}

/* Reads the injected clock. */
static inline uint32_t
store_now(const store_t *st)
{
	return st->clock(st->clock_ctx);
}

/* True if an absolute exptime has passed. */
static inline bool
time_passed(uint32_t exptime, uint32_t now)
{
	return exptime != 0 && exptime <= now;
}

/* Returns the shard index for a hash: its top bits. */
static inline unsigned
shard_index(const store_t *st, uint64_t hv)
{
	return (unsigned)(hv >> (64 - st->shards_log2));
}

/* True while a shard moves its items from ht[0] to ht[1]. */
static inline bool
ht_rehashing(const struct shard *sh)
{
	return sh->ht[1].b != NULL;
}

/* Returns the ref word: the refcount and the flag bits. */
static inline uint32_t
item_ref_word(const item_t *it)
{
	return atomic_load_explicit(&it->ref, memory_order_relaxed);
}

/* Bytes of optional fields after the header of an item whose ref word
 * is r. */
static inline size_t
item_ext_of(uint32_t r)
{
	_Static_assert(ITEM_HAS_EXP == 1u << 23 && ITEM_HAS_FLAGS == 1u << 24,
	    "4 bytes for each bit, without a branch");
	return ((r >> 21) & 4u) + ((r >> 22) & 4u);
}

/* Returns the key: after the header and the optional fields. */
static inline char *
item_key_at(const item_t *it)
{
	return (char *)it->data + item_ext_of(item_ref_word(it));
}

/* Returns the exptime of an item whose ref word is r, 0 (never) for one
 * without the field. */
static inline uint32_t
item_exptime_r(const item_t *it, uint32_t r)
{
	uint32_t e = 0;

	if ((r & ITEM_HAS_EXP) != 0)
		memcpy(&e, it->data, sizeof(e));
	return e;
}

/* Returns the client's flags of an item whose ref word is r, 0 for one
 * without the field (it follows the exptime's, if any). */
static inline uint32_t
item_flags_r(const item_t *it, uint32_t r)
{
	uint32_t f = 0;

	if ((r & ITEM_HAS_FLAGS) != 0)
		memcpy(&f, it->data + ((r & ITEM_HAS_EXP) != 0 ? 4 : 0),
		    sizeof(f));
	return f;
}

/* Returns the exptime, 0 (never) for an item without the field. */
static inline uint32_t
item_exptime(const item_t *it)
{
	return item_exptime_r(it, item_ref_word(it));
}

/* True if the item can take exptime e in place. */
static inline bool
item_exptime_fits(const item_t *it, uint32_t e)
{
	return e == 0 || (item_ref_word(it) & ITEM_HAS_EXP) != 0;
}

/* Sets the exptime of an item that has the field, or to 0 (shard lock
 * held, or the item unshared). */
static inline void
item_set_exptime(item_t *it, uint32_t e)
{
	assert(item_exptime_fits(it, e));
	if ((item_ref_word(it) & ITEM_HAS_EXP) != 0)
		memcpy((char *)it->data, &e, sizeof(e));
}

/* Returns the bytes an item takes in a segment. */
static inline size_t
item_size(const item_t *it)
{
	return ITEM_SIZE_X(item_nkey(it), it->nbytes,
	    item_ext_of(item_ref_word(it)));
}

/* Returns the word of the chain link and the access time. */
static inline uint64_t
item_link_word(const item_t *it)
{
	return atomic_load_explicit(&it->h_link, memory_order_relaxed);
}

/* Returns the next item in the hash chain. */
static inline item_t *
item_next(const item_t *it)
{
	return (item_t *)(uintptr_t)(item_link_word(it) & ITEM_LINK_MASK);
}

/* Sets the next item in the hash chain; keeps the access time (unless
 * item_touch_atime sets it meanwhile: that access time is lost). */
static inline void
item_set_next(item_t *it, const item_t *next)
{
	uint64_t p = (uint64_t)(uintptr_t)next;

	assert((p & ~ITEM_LINK_MASK) == 0 && "pointer wider than 48 bits");
	atomic_store_explicit(&it->h_link,
	    (item_link_word(it) & ~ITEM_LINK_MASK) | p, memory_order_relaxed);
}

/* The link word with the access time set to now (modulo 65536). */
static inline uint64_t
link_at(uint64_t w, uint32_t now)
{
	return (w & ITEM_LINK_MASK) | ((uint64_t)(now & 0xffffu) <<
	    ITEM_LINK_BITS);
}

/* True if the access time is now's second already. */
static inline bool
item_atime_is(const item_t *it, uint32_t now)
{
	return item_link_word(it) >> ITEM_LINK_BITS == (now & 0xffffu);
}

/* Records an access at unix time now; shard lock held. */
static inline void
item_set_atime(item_t *it, uint32_t now)
{
	uint64_t w = item_link_word(it);

	/* Most hits land in the second of the last one: a read, not a
	 * write, keeps a hot item's line shared between CPUs. */
	if (w != link_at(w, now))
		atomic_store_explicit(&it->h_link, link_at(w, now),
		    memory_order_relaxed);
}

/* Records an access without the shard lock: the link is never changed,
 * as the exchange fails if a holder of the lock changed it first. */
static inline void
item_touch_atime(item_t *it, uint32_t now)
{
	uint64_t w = item_link_word(it);

	while (w != link_at(w, now) &&
	    !atomic_compare_exchange_weak_explicit(&it->h_link, &w,
	    link_at(w, now), memory_order_relaxed, memory_order_relaxed))
		;
}

/* Returns the seconds since the last access, modulo 65536. */
static inline uint32_t
item_idle(const item_t *it, uint32_t now)
{
	return (uint16_t)(now - (uint32_t)(item_link_word(it) >>
	    ITEM_LINK_BITS));
}

/* Takes a reference; the caller holds the item's shard lock. */
static inline void
item_ref(item_t *it)
{
	atomic_fetch_add_explicit(&it->ref, 1, memory_order_relaxed);
}

/* Sets flag bits in the ref word. */
static inline void
item_set_bit(item_t *it, uint32_t bit)
{
	atomic_fetch_or_explicit(&it->ref, bit, memory_order_relaxed);
}

/* Clears a flag bit in the ref word. */
static inline void
item_clear_bit(item_t *it, uint32_t bit)
{
	atomic_fetch_and_explicit(&it->ref, ~bit, memory_order_relaxed);
}

/* Tests a flag bit in the ref word. */
static inline bool
item_has_bit(const item_t *it, uint32_t bit)
{
	return (atomic_load_explicit(&it->ref, memory_order_relaxed) & bit) !=
	    0;
}

/* Sets a flag bit; skips the write (and the cache line) if it is set. */
static inline void
item_mark(item_t *it, uint32_t bit)
{
	if (!item_has_bit(it, bit))
		item_set_bit(it, bit);
}

/* 1 if an item is loose (its own allocation), else 0. */
static inline unsigned
item_is_loose(const item_t *it)
{
	return item_has_bit(it, ITEM_LOOSE) ? 1 : 0;
}

/* Records a hit: the item earns a second chance at eviction. */
static inline void
item_hit(item_t *it)
{
	item_mark(it, ITEM_ACCESSED);
}

/* store_hash.c: the key hash and the shard tables (shard lock held). */
uint64_t hash_seed(const store_t *st);
uint64_t key_hash(const store_t *st, const char *key, size_t nkey);
uint64_t item_hash(const store_t *st, const item_t *it);
item_t	*ht_find(const struct shard *sh, uint64_t hv, const char *key,
	    size_t nkey);
void	 ht_prefetch(const struct shard *sh, uint64_t hv);
void	 ht_prefetch_bucket(const struct shard *sh, uint64_t hv);
void	 ht_hint_set(struct shard *sh);
bool	 ht_init(struct shard *sh);
void	 ht_arrays_free(struct shard *sh);

/* ht_peek's answers. */
enum peek {
	PEEK_HIT,	/* the item, copied whole into the buffer */
	PEEK_MARK,	/* the same, but the item is to be marked (peek_mark) */
	PEEK_MISS,	/* the key is not in the table */
	PEEK_LOCK,	/* ask again under the shard lock */
};
/* Where a PEEK_MARK item lies, and the shard's count it was read at. */
struct peek_at {
	item_t		*it;
	uint32_t	 seq;
};
/* Largest item ht_peek copies: larger ones take the lock. */
#define PEEK_MAX	1280
enum peek ht_peek(const store_t *st, const struct shard *sh, uint64_t hv,
	    const char *key, size_t nkey, uint32_t now, uint64_t *buf,
	    size_t cap, struct peek_at *at);
bool	 peek_mark(store_t *st, const struct shard *sh,
	    const struct peek_at *at, item_t *copy, uint32_t now);
void	 peek_marks_wait(const struct seg *s);
void	 ht_insert(struct shard *sh, item_t *it, uint64_t hv);
void	 ht_remove(struct shard *sh, item_t *it, uint64_t hv);
void	 ht_swap(struct shard *sh, item_t *o, item_t *n, uint64_t hv);
void	 ht_maybe_resize(struct shard *sh);
void	 ht_maybe_grow(struct shard *sh);
void	 ht_presize(struct shard *sh, size_t items);
size_t	 ht_rehash_step(const store_t *st, struct shard *sh, size_t moves,
	    size_t visits);

/* store.c: linking and shard entry (shard lock held, but shard_enter and
 * shard_of_item, which take it). */
void	 seg_live_add(store_t *st, const item_t *it, bool add);
void	 item_set_cas(struct shard *sh, item_t *it);
void	 item_unlink(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
	    enum unlink_why why);
enum liveness item_liveness(const struct shard *sh, const item_t *it,
	    uint32_t now);
void	 item_reap(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
	    enum liveness why);
item_t	*item_retime(store_t *st, struct shard *sh, item_t *it,
	    uint64_t hv, uint32_t exptime, uint32_t now, bool force);
void	 item_replace(store_t *st, struct shard *sh, item_t *old, item_t *it,
	    uint64_t hv, uint32_t now, uint64_t *cas_out);
void	 item_replace_cas(store_t *st, struct shard *sh, item_t *old,
	    item_t *it, uint64_t hv, uint32_t now, uint64_t new_cas,
	    uint64_t *cas_out);
void	 item_set_cas_to(struct shard *sh, item_t *it, uint64_t cas);
bool	 new_cas_ok(const struct shard *sh, uint64_t cas);
/* Reaps a shard's flushed items now if an explicit CAS (has, cas) is at
 * or below its flush watermark, so new_cas_ok can take it. */
void	 shard_admit_cas(store_t *st, struct shard *sh, bool has,
	    uint64_t cas);
size_t	 item_cost(const store_t *st, const item_t *it);
void	 flush_sync(const store_t *st, struct shard *sh, uint32_t now);
struct shard *shard_enter(store_t *st, uint64_t hv, uint32_t now);
struct shard *shard_of_item(store_t *st, const item_t *it, uint64_t *hv,
	    uint32_t now);
item_t	*lookup_live(store_t *st, struct shard *sh, uint64_t hv,
	    const char *key, size_t nkey, uint32_t now);

/* store_cmd.c: shared with store_meta.c (shard lock held). */
item_t	*item_new(store_t *st, const char *key, size_t nkey, uint32_t flags,
	    uint32_t exptime, size_t nbytes);
bool	 item_carved(const store_t *st, size_t nkey, size_t nbytes);
store_status_t incr_build(store_t *st, const item_t *old, uint32_t exptime,
	    bool incr, uint64_t delta, uint64_t *result, item_t **out);

/* store_evict.c: making room (no lock held but item_copy's shard lock). */
item_t	*item_copy(store_t *st, const item_t *src, uint32_t exptime,
	    bool reserve);
item_t	*item_retime_copy(store_t *st, struct shard *sh, item_t *it,
	    uint64_t hv, uint32_t exptime, uint32_t now, bool force);
void	 seg_evacuate(store_t *st, struct seg *s, bool compact);
bool	 retry_with_room(store_t *st, unsigned *tries, bool loose,
	    size_t need);
bool	 retry_or_force(store_t *st, unsigned *tries, size_t need,
	    bool *force);

/* Work counters for tests: proportionality and lock hold bounds. */
struct store_debug {
	uint64_t	expire_units;	/* items looked at by store_expire_run */
	uint64_t	expire_segs;	/* segment headers it looked at */
	uint64_t	max_hold_units;	/* most units in one lock hold */
	uint64_t	evacuated;	/* segments emptied */
	uint64_t	moved;		/* items moved by evacuation */
	uint64_t	room_tries;	/* make_room calls (an eviction,
					 * compaction or wait each) */
	uint64_t	lock_waits[LOCK_RANKS]; /* store_lock_waits, by rank
					 * (every store of the process) */
};

/* Seconds since the oldest segment in the FIFO began taking items; 0
 * when the FIFO is empty (store_seg.c). */
uint32_t pool_oldest_age(struct pool *p, uint32_t now);
/* Small segments held, and of those free (store_seg.c). */
void	 pool_counts(struct pool *p, uint64_t *nsegs, uint64_t *nfree);

/* Copies the work counters. */
void	store_debug_get(store_t *st, struct store_debug *out);
/* The calling thread's visited gets answered without the shard lock
 * (ht_peek). */
uint64_t store_debug_peek_hits(void);
/* Sets the calling thread's marking slot to seg, NULL to clear it, as
 * peek_mark does; false if the thread got no slot.  With the frees that
 * waited for a slot (peek_marks_wait): for tests. */
bool	 store_debug_marking(const void *seg);
uint64_t store_debug_mark_waits(void);
/* Returns the shard index a key maps to. */
unsigned store_key_shard(store_t *st, const char *key, size_t nkey);
/* Returns the pool, for white-box tests. */
struct pool *store_debug_pool(store_t *st);

#endif
