/*
 * store.h -- the cache's item store: a sharded hash table of refcounted
 * items with per-key TTL, a memory limit enforced by eviction and a
 * background thread that reclaims expired items.
 *
 * Depends on libc and pthreads only; knows nothing of sockets or the wire
 * protocol.  Time comes from an injected clock so tests can advance it.
 *
 * Data structure: 2^shards_log2 shards, each with its own mutex and an
 * incrementally rehashed chained hash table; a key lives in the shard
 * chosen by the top bits of its hash.  Items live in log-structured
 * memory: small ones carved one after another from fixed-size segments,
 * large ones in allocations of their own (store_internal.h).
 *
 * Eviction: FIFO with a second chance, a segment at a time: the oldest
 * segment is emptied, its items that were hit since they were stored are
 * moved to a new segment, the rest evicted.  Expired items are unlinked
 * by the background thread within about 100 ms of their exptime.
 *
 * Ownership: an item_t handed out by store_get/store_gat/store_reserve
 * carries one reference owned by the caller, released with store_release
 * (or passed to store_commit, which consumes it).  An item stays readable
 * while referenced even if another thread replaces, deletes or evicts it.
 *
 * Lock order, for every lock the store has (the only statement of it):
 *
 *	flush_lock -> shard -> arena -> pool -> thr_lock
 *
 * A thread takes them in this order only, and at most one of each: one
 * shard lock at a time (eviction and expiry take the lock of each item
 * they look at in turn), one arena lock at a time.  flush_lock serializes
 * store_flush; a shard lock guards its table and the mutable fields of
 * its items; an arena lock its active segment; the pool lock the FIFO,
 * the free list, the segment states and the wait for room (room_cond);
 * thr_lock the expiry thread's sleep.  Debug builds (NDEBUG not defined)
 * assert the order at every acquisition (lock_take, store_internal.h).
 * The memory counter, refcounts and flag bits are atomic: no lock.
 */
#ifndef CACHED_STORE_H
#define CACHED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_MAX 250
/*
 * Allocations from this size up are costed as whole pages: the store takes
 * them to be served by mmap and handed back to the system when freed.  A
 * program using the store should make malloc do so (glibc: mallopt
 * M_MMAP_THRESHOLD to this value); glibc's default threshold slides up to
 * 32 MB, and freed large values then stay in its heaps, where a mix of
 * sizes fragments them until the process is far over the memory limit.
 */
#define STORE_LARGE_ALLOC (32 * 1024)
/* Relative expiry times are at most this many seconds (30 days). */
#define STORE_REALTIME_MAXDELTA (60 * 60 * 24 * 30)

typedef struct store store_t;
typedef struct item item_t;

/* An evicted item, as store_config.evicted hears of it. */
struct store_evicted {
	const char	*key;
	size_t		 nkey;
	size_t		 nbytes;
	bool		 fetched;	/* read since it was stored */
	int64_t		 ttl;		/* seconds it had left, -1: no exptime */
	uint32_t	 idle;		/* seconds since last accessed */
};

/* Returns the current unix time in seconds. */
typedef uint32_t (*store_clock_fn)(void *ctx);

struct store_config {
	size_t		mem_limit;	/* bytes, counting every item's full cost */
	size_t		item_size_max;	/* largest value (data bytes) accepted */
	unsigned	shards_log2;	/* 0 means the default (6) */
	bool		no_evict;	/* -M: fail stores instead of evicting */
	/* -L: map segment memory a huge page (2 MiB) at a time, advised
	 * MADV_HUGEPAGE and with its pages in place, as far as the limit
	 * allows: no page faults while segments are carved, fewer TLB
	 * misses.  Loose (large) items are unaffected. */
	bool		large_pages;
	store_clock_fn	clock;		/* NULL means time(NULL) */
	void	       *clock_ctx;
	/* Called for each item evicted, under its shard lock: must not call
	 * the store.  NULL: nothing is told. */
	void		(*evicted)(void *ctx, const struct store_evicted *e);
	void	       *evicted_ctx;
};

/* Each status maps one to one onto a wire reply. */
typedef enum store_status {
	STORE_OK = 0,		/* get hit, incr/decr done, reserve done */
	STORE_STORED,
	STORE_NOT_STORED,
	STORE_EXISTS,
	STORE_NOT_FOUND,
	STORE_DELETED,
	STORE_TOUCHED,
	STORE_NON_NUMERIC,	/* incr/decr on a value that is no number */
	STORE_TOO_LARGE,	/* larger than item_size_max */
	STORE_NO_MEMORY,	/* over the limit and no_evict, the memory held
				 * by referenced items, or malloc failed */
} store_status_t;

typedef enum store_mode {
	STORE_SET,
	STORE_ADD,
	STORE_REPLACE,
	STORE_APPEND,
	STORE_PREPEND,
	STORE_CAS,
} store_mode_t;

struct store_stats {
	uint64_t	curr_items;	/* linked items */
	uint64_t	total_items;	/* items ever linked by a store */
	uint64_t	bytes;		/* header + key + value of linked items */
	uint64_t	mem_bytes;	/* memory held for items (<= limit) */
	uint64_t	limit_maxbytes;
	uint64_t	evictions;	/* live items removed to make room */
	uint64_t	evicted_unfetched;
	uint64_t	expired_unfetched;
	uint64_t	reclaimed;	/* expired items freed (thread or lazily) */
	uint64_t	get_expired;	/* lookups that found an expired item */
	uint64_t	get_flushed;	/* lookups that found a flushed item */
	uint64_t	hash_bytes;	/* memory of the hash tables */
	uint64_t	hash_power_level; /* log2 of the largest shard table */
	uint64_t	hash_is_expanding;
	uint64_t	expiry_runs;	/* passes of the expiry thread */
	/* What memcached's "stats items"/"stats slabs" ask about, in the
	 * store's terms (man/cached.1 has the mapping): */
	uint64_t	evicted_nonzero; /* evictions of items with an exptime */
	uint64_t	evicted_time;	/* seconds the last evicted item had
					 * been idle */
	uint64_t	crawler_reclaimed; /* expired items the expiry thread
					 * freed (a part of reclaimed) */
	uint64_t	crawler_items_checked; /* items it looked at */
	uint64_t	moved;		/* live items moved to a new segment
					 * (second chance, compaction) */
	uint64_t	direct_reclaims; /* times a store had to make room */
	uint64_t	seg_size;	/* bytes per segment */
	uint64_t	segs_held;	/* small segments allocated */
	uint64_t	segs_free;	/* of those, empty and free */
	uint64_t	oldest_age;	/* seconds since the oldest segment in
					 * the FIFO began taking items */
};

/* Creates a store; returns NULL on allocation failure or bad config. */
store_t	*store_create(const struct store_config *cfg);
/* Stops the expiry thread if running and frees everything.  Items still
 * referenced by callers must have been released first. */
void	 store_destroy(store_t *st);

/* Starts the background expiry thread (wakes every 100 ms); 0 or errno. */
int	 store_expiry_start(store_t *st);
/* Stops and joins the expiry thread. */
void	 store_expiry_stop(store_t *st);
/* Frees expired and flushed items up to the clock's now, at most `budget`
 * units of work per shard lock hold; returns items freed.  The expiry
 * thread calls this; tests call it directly with a fake clock. */
size_t	 store_expire_run(store_t *st, size_t budget);

/* Converts a wire exptime (0 never, <=30 days relative, larger absolute
 * unix time, negative already expired) to the store's absolute form. */
uint32_t store_exptime(store_t *st, int64_t exptime);
/* Seconds an item given wire exptime now would have left, -1 for never
 * (what a meta reply's t shows after a T). */
int64_t	 store_ttl_of(store_t *st, int64_t exptime);

/*
 * Allocates an unlinked item for key with room for nbytes of value; the
 * caller fills item_value_mut(it)[0 .. nbytes) and then calls
 * store_commit, or store_release to abandon it.  May evict.
 * Returns STORE_OK, STORE_TOO_LARGE or STORE_NO_MEMORY.
 */
store_status_t store_reserve(store_t *st, const char *key, size_t nkey,
	    uint32_t flags, int64_t exptime, size_t nbytes, item_t **out);
/*
 * store_reserve for a value the caller already has whole (in its read
 * buffer) and commits right away: a small item is carved from the
 * calling thread's segment, so the one copy of the value is to its final
 * place and the commit links it there, with no malloc and no store-wide
 * lock.  Until committed or released the reservation keeps its segment
 * from reuse should it be evicted: the caller must not wait for anything
 * (I/O) in between.  Best for sets: a refused add, replace or cas leaves
 * its bytes dead in the segment until evicted.  Same returns.
 */
store_status_t store_reserve_direct(store_t *st, const char *key,
	    size_t nkey, uint32_t flags, int64_t exptime, size_t nbytes,
	    item_t **out);
/*
 * Links a reserved item according to mode; consumes the caller's reference.
 * For STORE_CAS, cas is the client's value.  On success *cas_out (if not
 * NULL) receives the new item's CAS.  Returns STORE_STORED, STORE_NOT_STORED,
 * STORE_EXISTS, STORE_NOT_FOUND or STORE_NO_MEMORY/TOO_LARGE (append).
 */
store_status_t store_commit(store_t *st, item_t *it, store_mode_t mode,
	    uint64_t cas, uint64_t *cas_out);
/* Drops a reference; the item is freed once unlinked and unreferenced. */
void	 store_release(store_t *st, item_t *it);

/* Looks up a live item and counts a hit on it; STORE_OK or NOT_FOUND. */
store_status_t store_get(store_t *st, const char *key, size_t nkey,
	    item_t **out);
/*
 * Like store_get without a reference, for a key whose hash hv the caller
 * has from store_key_hash: calls fn(ctx, it) with the item's shard
 * locked, or, when the get could be answered without the lock (hits on
 * items of 1,280 bytes or less, outside a flush or a resize, with no
 * large value linked in the shard, and not under no_evict if the item is
 * yet to be marked fetched or accessed this second), with a private copy
 * of the item, marked as the lock would have.  fn must copy what it needs
 * and must not call into the store; it may take a reference with
 * store_ref only on an item not in a segment (item_in_segment false: a
 * large value), which is never a copy.  A hit answered without the lock
 * writes nothing other threads read but the item's marks, when they
 * change: not the lock's line.
 */
typedef void (*store_visit_fn)(void *ctx, item_t *it);
store_status_t store_get_with(store_t *st, const char *key, size_t nkey,
	    uint64_t hv, store_visit_fn fn, void *ctx);
/* The key's hash, as store_get_with and store_prefetch take it. */
uint64_t store_key_hash(const store_t *st, const char *key, size_t nkey);
/*
 * A hint that a lookup of the key of hash hv is coming: starts loading
 * its bucket (without a lock), or with item the first item of its chain
 * (a moment of the shard lock, to read the bucket).  A multi-key get asks
 * for the bucket two keys ahead and the item one key ahead, so the
 * lookups find both in the cache.
 */
void	 store_prefetch(store_t *st, uint64_t hv, bool item);
/* Takes another reference to an item the caller has in hand (a visitor,
 * or a holder of a reference). */
void	 store_ref(item_t *it);
/* Like store_get, and also sets a new exptime. */
store_status_t store_gat(store_t *st, const char *key, size_t nkey,
	    int64_t exptime, item_t **out);
/* Sets a new exptime; STORE_TOUCHED or STORE_NOT_FOUND. */
store_status_t store_touch(store_t *st, const char *key, size_t nkey,
	    int64_t exptime);
/* Unlinks a key; STORE_DELETED or STORE_NOT_FOUND. */
store_status_t store_delete(store_t *st, const char *key, size_t nkey);
/*
 * Adds (incr) or subtracts (decr) delta to a decimal value: incr wraps at
 * 2^64, decr stops at 0.  STORE_OK with *result set, STORE_NOT_FOUND,
 * STORE_NON_NUMERIC or STORE_NO_MEMORY.
 */
store_status_t store_incr(store_t *st, const char *key, size_t nkey,
	    bool incr, uint64_t delta, uint64_t *result);
/* Invalidates every item stored before the flush takes effect: now for
 * delay <= 0, after delay seconds up to 30 days, at a larger delay read as
 * an absolute unix time (as exptimes are).  A later flush replaces a
 * pending delayed one. */
void	 store_flush(store_t *st, int64_t delay);

/*
 * The meta commands (mg ms md ma me).  Each runs in one shard lock hold,
 * so exactly one of many concurrent callers wins a recache token.
 *
 * Per-item meta state lives in the 32-byte header: a stale bit (set by md
 * with I, or by ms with I and an older CAS), a win bit (a recache token
 * was handed out), the fetched bit and the last access time.  A new
 * value (any store, incr, append) starts with neither stale nor win.
 *
 * Access time: set on a hit (mg without no_bump, get, gat), on a store
 * and on a touch; kept in seconds modulo 65536, so `idle` is exact up to
 * 65535 seconds (18.2 hours) and wraps after that.
 *
 * Explicit CAS (E): the store keeps 56-bit CAS values; an E of 0 or above
 * STORE_CAS_MAX is refused: the command changes nothing and returns
 * STORE_NOT_STORED (dispatch had better reject it as a bad token first).
 * The CAS values a flush_all covered are how the store knows what it
 * invalidated: an E at or below them, before the expiry thread reaped
 * those items, first reaps the flushed items of its shard on the spot.
 * A shard's CAS counter moves past an E given, so later CAS values of
 * that shard are higher.
 */
#define STORE_CAS_MAX	((UINT64_C(1) << 55) - 1)

/* An item's state as a meta command found it, before it changed it, and
 * the recache outcome the command reports.  For ma, ttl is the new
 * item's (after T), as memcached's ma t reports. */
struct store_meta_info {
	int64_t		ttl;		/* seconds left, -1 for never */
	uint32_t	idle;		/* seconds since last access */
	bool		fetched;	/* read before */
	bool		stale;		/* X */
	bool		won;		/* W: this caller is to recache (ma:
					 * the command created the item) */
	bool		won_before;	/* Z: another caller won already */
	size_t		total;		/* bytes the item takes in memory */
};

/* mg's options; the has_ fields say which flags were given. */
struct store_mget_opts {
	bool		touch;		/* T: set a new exptime */
	int64_t		ttl;
	bool		vivify;		/* N: on a miss create an empty item */
	int64_t		vivify_ttl;
	bool		recache;	/* R: win when fewer seconds are left */
	int64_t		recache_ttl;
	bool		no_bump;	/* u (and me): not a hit, no access */
	bool		peek;		/* me: hand out no recache token */
	bool		has_new_cas;	/* E: the CAS of an item it creates */
	uint64_t	new_cas;
};

/*
 * mg: looks key up; with vivify, a miss creates an empty item (flags 0)
 * with vivify_ttl and wins it (info: ttl the new one's, idle 0).  A stale
 * item, or with recache one that has an exptime and fewer than
 * recache_ttl seconds left, wins the first caller (won, the win bit set)
 * and tells every later one won_before, until a new value is stored or
 * md I clears the bit.  touch sets the new exptime after info is read
 * (memcached's mg t reports the old TTL).  Without no_bump a hit sets
 * fetched and the access time.  *info gets the state before the command.
 * STORE_OK with a reference in *out, STORE_NOT_FOUND, STORE_NO_MEMORY
 * (vivifying failed) or STORE_NOT_STORED (E refused, see above).
 */
store_status_t store_mget(store_t *st, const char *key, size_t nkey,
	    const struct store_mget_opts *o, item_t **out,
	    struct store_meta_info *info);

/* ms's options beyond the mode. */
struct store_mset_opts {
	bool		has_cas;	/* C: compare */
	uint64_t	cas;
	bool		invalidate;	/* I: with C, an older CAS stores the
					 * value as stale instead of EXISTS */
	bool		has_new_cas;	/* E */
	uint64_t	new_cas;
	bool		vivify;		/* N: append/prepend on a miss stores
					 * the data as a new item */
	int64_t		vivify_ttl;
};

/*
 * ms: store_commit with a mode and the meta options; same returns, and
 * STORE_NOT_STORED for a refused E.  C turns set and replace into cas (as
 * memcached's ms), add ignores it, append/prepend answer STORE_EXISTS to a
 * C that differs (C0 compares nothing).  I with C lower than the item's
 * CAS stores the value marked stale, STORE_STORED (memcached: HD), with a
 * new CAS; a higher C is STORE_EXISTS.  N with append/prepend stores the
 * data as a new item with vivify_ttl on a miss (memcached 1.6.18 answers
 * NS there: it predates that flag).
 */
store_status_t store_commit_meta(store_t *st, item_t *it, store_mode_t mode,
	    const struct store_mset_opts *o, uint64_t *cas_out);

/* md's options. */
struct store_mdelete_opts {
	bool		has_cas;	/* C: only if the CAS matches */
	uint64_t	cas;
	bool		invalidate;	/* I: mark stale with a new CAS, keep */
	bool		touch;		/* T (with I): new exptime */
	int64_t		ttl;
	bool		has_new_cas;	/* E */
	uint64_t	new_cas;
	bool		remove_value;	/* x: keep the item, empty its value */
};

/*
 * md: with I marks the item stale, clears its win bit (the next mg wins),
 * gives it a new CAS (or E) and with touch the new exptime, and keeps it;
 * else with remove_value replaces it by an empty value, same flags and
 * exptime, new CAS (or E), neither stale nor won; else unlinks it.
 * STORE_DELETED, STORE_NOT_FOUND, STORE_EXISTS (C differs), or
 * STORE_NOT_STORED (E refused) or STORE_NO_MEMORY (remove_value).
 */
store_status_t store_mdelete(store_t *st, const char *key, size_t nkey,
	    const struct store_mdelete_opts *o);

/* ma's options. */
struct store_marith_opts {
	bool		incr;		/* else decr */
	uint64_t	delta;
	bool		has_cas;	/* C */
	uint64_t	cas;
	bool		has_new_cas;	/* E */
	uint64_t	new_cas;
	bool		vivify;		/* N: on a miss create with initial */
	int64_t		vivify_ttl;
	uint64_t	initial;	/* J */
	bool		touch;		/* T: on success, a new exptime */
	int64_t		ttl;
};

/*
 * ma: incr/decr as store_incr with the meta options; C is compared before
 * the value is parsed (memcached: EX before the non-numeric error).  With
 * vivify a miss creates an item holding `initial` in decimal (flags 0,
 * vivify_ttl) and returns initial itself, no delta applied (memcached).
 * touch gives the new item its exptime.  STORE_OK with the new value in
 * *result and a reference to the new item in *out (for its CAS and
 * value; info->ttl is its TTL), STORE_NOT_FOUND, STORE_NOT_STORED (E
 * refused), STORE_EXISTS (CAS mismatch), STORE_NON_NUMERIC or
 * STORE_NO_MEMORY.
 */
store_status_t store_marith(store_t *st, const char *key, size_t nkey,
	    const struct store_marith_opts *o, uint64_t *result, item_t **out,
	    struct store_meta_info *info);

/*
 * Iteration, for key dumps (store_iter.c): a cursor walks every live
 * item, a bounded step (one shard lock hold) at a time, copying out what
 * a dump line needs; no lock or reference is held between calls, so a
 * dump of millions of keys neither blocks writers nor pins memory.
 * Guarantee: a key linked and live for the whole walk, never deleted or
 * replaced meanwhile, is returned exactly once, whatever table resizes,
 * rehashes, evictions' moves or compactions happen between steps; keys
 * changed during the walk are returned at most once per version.  The
 * order is the hash's, not insertion's.  store_iter_next_refs
 * (store_snap.h) also hands out a reference to each item, for snapshots.
 */
struct store_iter {
	unsigned	shard;		/* shard being walked */
	uint64_t	pos;		/* next position in it (bit-reversed
					 * hash, store_iter.c) */
	bool		done;		/* every shard walked */
};

/* One item as a dump shows it. */
struct store_iter_entry {
	char		key[STORE_KEY_MAX];
	size_t		nkey;
	uint32_t	exptime;	/* absolute unix time, 0 never */
	uint32_t	atime;		/* last access, unix time (exact for
					 * 18.2 hours, see store_mget) */
	uint64_t	cas;
	uint32_t	flags;
	uint32_t	nbytes;		/* value length */
	size_t		size;		/* bytes it takes in memory */
	bool		fetched;
};

/* Sets a cursor to the start of the store. */
void	 store_iter_init(struct store_iter *cur);
/* Copies up to max live items into out and moves past them; returns how
 * many.  May return 0 before the end: the walk is over once cur->done. */
size_t	 store_iter_next(store_t *st, struct store_iter *cur,
	    struct store_iter_entry *out, size_t max);
/* Asks the expiry thread for a pass now (lru_crawler crawl); no-op when
 * it is not running. */
void	 store_expiry_kick(store_t *st);

/* Sums the shards' counters (takes each shard lock briefly). */
void	 store_get_stats(store_t *st, struct store_stats *out);
/* Zeroes the resettable counters (total_items, evictions, ...). */
void	 store_reset_stats(store_t *st);
/* Sets a new memory limit (bytes) at run time; shrinking evicts down to
 * it (not under no_evict).  False for a limit below two segments. */
bool	 store_set_limit(store_t *st, size_t limit);

/*
 * True if the item shares its memory with others: a reference to it keeps
 * its whole segment (up to 256 KiB) from reuse until released, so a
 * caller that would hold it for long (a reply a client is slow to read)
 * should copy the value and release it.  False for large values, which
 * have memory of their own.
 */
bool		 item_in_segment(const item_t *it);

/* Item accessors; valid while the caller holds a reference. */
const char	*item_key(const item_t *it);
size_t		 item_nkey(const item_t *it);
/* The value: item_nbytes(it) bytes, no terminator. */
const char	*item_value(const item_t *it);
char		*item_value_mut(item_t *it);
size_t		 item_nbytes(const item_t *it);
uint32_t	 item_flags(const item_t *it);
uint64_t	 item_cas(const item_t *it);

/* What the accessors above return, read at once (each accessor reads
 * the item's header words again). */
struct item_view {
	const char	*key;
	const char	*value;
	size_t		 nkey;
	size_t		 nbytes;
	uint32_t	 flags;
	uint64_t	 cas;
};
void		 item_view(const item_t *it, struct item_view *v);

#endif
