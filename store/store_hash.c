/*
 * store_hash.c -- the store's key hash and each shard's hash table.
 *
 * Hash: a small wyhash (Wang Yi, public domain) with a per-store random
 * seed, so keys cannot be chosen to collide; the top bits pick the shard,
 * the low bits the bucket.
 *
 * Data structure: a chained table per shard, grown (and shrunk) by
 * incremental rehash in the style of Redis dict.c: while ht[1] exists,
 * every operation moves a bucket or so from ht[0] (shard_enter) and the
 * expiry thread moves more (shard_upkeep), so no single operation
 * rehashes a whole table.  The only link is the item's h_link
 * (item_next/item_set_next: the pointer shares the word with the access
 * time, so every walk goes through them).
 *
 * Locking: every function here but the hash, ht_peek and peek_mark runs
 * under the lock of the shard whose table it touches; it takes no lock of
 * its own.  ht_peek reads a table without the lock, checked by the
 * shard's sequence count (shard_lock); for it no bucket array is freed
 * while the store lives (ht_array_retire).  peek_mark writes the marks of
 * a get into the item ht_peek found, with atomic operations, while its
 * thread's marking slot names the item's segment (peek_marks_wait).
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#define HT_MAX_LOG2		32
#define HT_MAX_LOAD		2	/* items per bucket before a grow */

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
uint64_t
key_hash(const store_t *st, const char *key, size_t nkey)
{
	return hash_bytes(st->seed, key, nkey);
}

/* Hashes an item's key. */
uint64_t
item_hash(const store_t *st, const item_t *it)
{
	return key_hash(st, item_key(it), item_nkey(it));
}

/* Picks a hash seed so keys cannot be chosen to collide. */
uint64_t
hash_seed(const store_t *st)
{
	struct timespec ts;
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
		return seed;
	clock_gettime(CLOCK_REALTIME, &ts);
	return mix((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)st,
	    (uint64_t)ts.tv_sec ^ WY0);
}

/* ---- hash table ---------------------------------------------------- */

/* Returns the bucket of a hash in one table. */
static item_t **
ht_bucket(const struct htable *t, uint64_t hv)
{
	return &t->b[hv & (((size_t)1 << t->log2) - 1)];
}

/* Compares an item's key. */
static bool
key_eq(const item_t *it, const char *key, size_t nkey)
{
	return item_nkey(it) == nkey && memcmp(item_key(it), key, nkey) == 0;
}

/* Publishes ht[0] for ht_prefetch_bucket (shard lock held). */
void
ht_hint_set(struct shard *sh)
{
	atomic_store_explicit(&sh->ht_hint, (uint64_t)sh->ht[0].log2 << 48 |
	    (uint64_t)(uintptr_t)sh->ht[0].b, memory_order_relaxed);
}

/* Asks the CPU for a hash's bucket in ht[0], without the shard lock: the
 * hint may name a table just freed, which a prefetch may touch (it never
 * faults) and nothing else does. */
void
ht_prefetch_bucket(const struct shard *sh, uint64_t hv)
{
	uint64_t h = atomic_load_explicit(&sh->ht_hint, memory_order_relaxed);
	item_t **b = (item_t **)(uintptr_t)(h & ITEM_LINK_MASK);

	if (b != NULL)
		__builtin_prefetch(&b[hv & (((size_t)1 << (h >> 48)) - 1)]);
}

/* Asks the CPU for the first item of a hash's chain in each table (its
 * header and key), shard lock held: a lookup that follows finds them in
 * the cache. */
void
ht_prefetch(const struct shard *sh, uint64_t hv)
{
	int i;

	for (i = 0; i < 2 && sh->ht[i].b != NULL; i++) {
		const item_t *it = *ht_bucket(&sh->ht[i], hv);

		if (it != NULL)
			__builtin_prefetch(it);
	}
}

/* Finds a key in a shard's tables, live or not. */
item_t *
ht_find(const struct shard *sh, uint64_t hv, const char *key, size_t nkey)
{
	item_t *it;
	int i;

	for (i = 0; i < 2 && sh->ht[i].b != NULL; i++)
		for (it = *ht_bucket(&sh->ht[i], hv); it; it = item_next(it))
			if (key_eq(it, key, nkey))
				return it;
	return NULL;
}

/* True if a table of 2^log2 buckets holding `used` items is due a grow
 * (past load factor HT_MAX_LOAD) or a shrink (below 1/8). */
static inline bool
ht_grow_due(unsigned log2, size_t used)
{
	return used > ((size_t)1 << log2) * HT_MAX_LOAD && log2 < HT_MAX_LOG2;
}

static inline bool
ht_shrink_due(unsigned log2, size_t used)
{
	return log2 > HT_MIN_LOG2 && used < ((size_t)1 << log2) / 8;
}

/*
 * A get without the shard lock: the reader's side of a sequence lock.
 * The shard's count is even and unchanged from before the first read to
 * after the last one, or the answer is PEEK_LOCK; the count is read again
 * before each pointer read is followed, so a pointer followed was in the
 * table when read, and points into memory that stays mapped: a segment
 * (no loose item is linked in the shard, or the answer is PEEK_LOCK) or a
 * bucket array (see ht_array_retire).  Reads stay within the segment the
 * item lies in (segments are aligned to their size), whatever a torn read
 * gave.  A hit is copied whole into buf and checked against what the
 * locked path would do: it answers instead when it would write (an item
 * dead to reap, a flush to apply, a rehash step or resize to make); an
 * access bit not set or the access second moved is PEEK_MARK, with where
 * the item is in *at, for peek_mark to write them.
 *
 * Every read here races with writers under the lock, by design:
 * ThreadSanitizer cannot see a sequence lock, so the reader is kept out of
 * its instrumentation (and, in its builds, copies and compares with
 * volatile loops, as libc's would be intercepted); the hammers check
 * what this returns under ASan instead.
 */
#if defined(__SANITIZE_THREAD__)
#define PEEK_TSAN	1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PEEK_TSAN	1
#endif
#endif
#ifdef PEEK_TSAN
#define PEEK_NO_TSAN	__attribute__((no_sanitize("thread")))
#else
#define PEEK_NO_TSAN
#endif

#define PEEK_HOPS	8	/* longer chains take the lock */
/* What a get sets on a hit: item_hit's bit, and a visited get's. */
#define PEEK_MARKS	(ITEM_ACCESSED | ITEM_FETCHED)

/* The copy and the key's compare: libc's, but for ThreadSanitizer, which
 * intercepts them and would see their reads. */
#ifdef PEEK_TSAN
PEEK_NO_TSAN static void
peek_copy(uint64_t *buf, uintptr_t p, size_t n)
{
	size_t i;

	for (i = 0; i < n / 8; i++)
		buf[i] = ((const volatile uint64_t *)p)[i];
}

PEEK_NO_TSAN static bool
peek_key_eq(uintptr_t p, const char *key, size_t n)
{
	size_t i;

	for (i = 0; i < n && ((const volatile char *)p)[i] == key[i]; i++)
		;
	return i == n;
}
#define PEEK_COPY(buf, p, n)	peek_copy(buf, p, n)
#define PEEK_KEY_EQ(p, key, n)	peek_key_eq(p, key, n)
#else
#define PEEK_COPY(buf, p, n)	memcpy(buf, (const void *)(p), n)
#define PEEK_KEY_EQ(p, key, n)	(memcmp((const void *)(p), key, n) == 0)
#endif

/* True if the count is still s after every read before. */
static inline bool
seq_same(const struct shard *sh, uint32_t s)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&sh->seq, memory_order_relaxed) == s;
}

PEEK_NO_TSAN enum peek
ht_peek(const store_t *st, const struct shard *sh, uint64_t hv,
    const char *key, size_t nkey, uint32_t now, uint64_t *buf, size_t cap,
    struct peek_at *at)
{
	const volatile struct shard *vs = sh;
	const volatile uint64_t *w;
	uint32_t s, nk = 0, log2;
	uintptr_t p, end = 0;
	uint64_t fw, wm, casnk;
	size_t used, n, ext = 0;
	item_t *copy;
	unsigned hops;
	uint32_t ref;

	s = atomic_load_explicit(&sh->seq, memory_order_acquire);
	if (s & 1)
		return PEEK_LOCK;
	fw = atomic_load_explicit(&st->flush_word, memory_order_acquire);
	if (vs->ht[1].b != NULL || vs->loose_linked != 0 ||
	    fw != vs->flush_seen || flush_due(fw, vs->flush_applied, now))
		return PEEK_LOCK;		/* or flush_sync would write */
	log2 = vs->ht[0].log2;
	used = vs->ht[0].used;
	if (ht_grow_due(log2, used) || ht_shrink_due(log2, used))
		return PEEK_LOCK;		/* shard_enter would resize */
	wm = vs->flush_wm;
	p = (uintptr_t)vs->ht[0].b;
	if (!seq_same(sh, s))
		return PEEK_LOCK;
	p = (uintptr_t)((item_t *const volatile *)p)[hv &
	    (((size_t)1 << log2) - 1)];
	for (hops = 0;; hops++) {
		if (!seq_same(sh, s))
			return PEEK_LOCK;
		if (p == 0)
			return PEEK_MISS;
		if (hops == PEEK_HOPS)
			return PEEK_LOCK;
		end = (p | (st->pool.seg_size - 1)) + 1;
		w = (const volatile uint64_t *)p;
		casnk = w[1];
		nk = (uint32_t)(casnk & 0xff);
		if (nk == nkey) {
			/* the ref word: the high half of word 2 */
			ext = item_ext_of((uint32_t)(w[2] >> 32));
			if (p + sizeof(struct item) + ext + nk > end)
				return PEEK_LOCK;
			if (PEEK_KEY_EQ(p + sizeof(struct item) + ext, key,
			    nk))
				break;
		}
		p = (uintptr_t)(w[0] & ITEM_LINK_MASK);
	}
	n = ITEM_SIZE_X(nk, (uint32_t)w[2], ext);	/* nbytes */
	if (n > cap || p + n > end)
		return PEEK_LOCK;
	PEEK_COPY(buf, p, n);
	if (!seq_same(sh, s))
		return PEEK_LOCK;
	copy = (item_t *)(void *)buf;
	ref = atomic_load_explicit(&copy->ref, memory_order_relaxed);
	if ((ref & ITEM_LOOSE) != 0 || item_cas(copy) <= wm ||
	    time_passed(item_exptime_r(copy, ref), now))
		return PEEK_LOCK;
	if ((ref & PEEK_MARKS) == PEEK_MARKS && item_atime_is(copy, now))
		return PEEK_HIT;
	if (st->no_evict)
		return PEEK_LOCK;	/* see peek_mark */
	at->it = (item_t *)p;
	at->seq = s;
	return PEEK_MARK;
}

/*
 * Marking slots: one per thread that marks (peek_mark), each on a line of
 * its own, naming the segment whose item the thread is writing, 0 when
 * none.  A thread takes a free slot at its first mark and gives it back
 * when it exits (a thread-specific key's destructor); with all taken, its
 * marks take the lock.  Process-wide: segment addresses do not collide.
 */
#define MARK_SLOTS	256

struct mark_slot {
	_Atomic uintptr_t	seg;
	_Atomic bool		taken;
} __attribute__((aligned(64)));

static struct mark_slot	 mark_slots[MARK_SLOTS];
static _Atomic unsigned	 mark_slots_hwm;	/* slots ever taken */
static pthread_once_t	 mark_once = PTHREAD_ONCE_INIT;
static pthread_key_t	 mark_key;
static _Thread_local struct mark_slot *mark_mine;
static _Thread_local bool mark_none;		/* none was free */
static _Atomic uint64_t	 mark_waits;		/* frees that waited */

static void
mark_slot_give_back(void *slot)
{
	atomic_store_explicit(&((struct mark_slot *)slot)->taken, false,
	    memory_order_release);
}

static void
mark_init(void)
{
	if (pthread_key_create(&mark_key, mark_slot_give_back) != 0)
		mark_none = true;
}

/* The calling thread's slot, NULL if it has none. */
static struct mark_slot *
mark_slot(void)
{
	unsigned i, hwm;
	bool f;

	if (mark_mine != NULL || mark_none)
		return mark_mine;
	pthread_once(&mark_once, mark_init);
	for (i = 0; i < MARK_SLOTS && !mark_none; i++) {
		f = false;
		if (!atomic_compare_exchange_strong(&mark_slots[i].taken, &f,
		    true))
			continue;
		if (pthread_setspecific(mark_key, &mark_slots[i]) != 0) {
			mark_slot_give_back(&mark_slots[i]);
			break;
		}
		hwm = atomic_load(&mark_slots_hwm);
		while (hwm < i + 1 && !atomic_compare_exchange_weak(
		    &mark_slots_hwm, &hwm, i + 1))
			;
		return mark_mine = &mark_slots[i];
	}
	mark_none = true;
	return NULL;
}

/*
 * Marks an item ht_peek found (PEEK_MARK) as a get under the lock does:
 * its access and fetched bits, its access second.  Without the lock the
 * item's memory must stay the item's while written: the thread's slot
 * names the item's segment, then the shard's count is read again, with a
 * sequentially consistent fence between (and one in peek_marks_wait,
 * before the segment is freed): either the count has not moved, the item
 * was linked when the slot was set, and the segment is not freed before
 * the slot is cleared; or it moved, nothing is written, and the caller
 * asks under the lock.  A linked item's key, value and CAS never change,
 * but for item_overwrite (under no_evict only, where ht_peek asks for the
 * lock instead), so the marks land on the very item copied; if it was
 * unlinked meanwhile, on a dead one, as a get under the lock just before
 * would have.  The bits are set with an atomic or, the time with a
 * compare-and-swap that keeps the link (item_touch_atime).  The copy gets
 * the same marks.  Nothing shared is written but the item: a segment pin
 * instead cost a cache miss on most marks (the segment's header).
 */
bool
peek_mark(store_t *st, const struct shard *sh, const struct peek_at *at,
    item_t *copy, uint32_t now)
{
	struct mark_slot *m = mark_slot();
	uint32_t ref;
	bool ok;

	if (m == NULL)
		return false;
	atomic_store_explicit(&m->seg,
	    (uintptr_t)pool_seg_at(&st->pool, at->it, false),
	    memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	ok = atomic_load_explicit(&sh->seq, memory_order_relaxed) == at->seq;
	if (ok) {
		ref = atomic_load_explicit(&at->it->ref, memory_order_relaxed);
		if ((ref & PEEK_MARKS) != PEEK_MARKS)
			item_set_bit(at->it, PEEK_MARKS);
		item_touch_atime(at->it, now);
		/* The visitor sees the item as marked, as under the lock. */
		item_set_bit(copy, PEEK_MARKS);
		item_set_atime(copy, now);
	}
	atomic_store_explicit(&m->seg, 0, memory_order_release);
	return ok;
}

/* Waits until no thread is marking an item of segment s (peek_mark):
 * called before s is freed, every item in it unlinked already. */
void
peek_marks_wait(const struct seg *s)
{
	unsigned i, n;

	atomic_thread_fence(memory_order_seq_cst);
	n = atomic_load_explicit(&mark_slots_hwm, memory_order_relaxed);
	for (i = 0; i < n; i++) {
		if (atomic_load_explicit(&mark_slots[i].seg,
		    memory_order_acquire) != (uintptr_t)s)
			continue;
		atomic_fetch_add_explicit(&mark_waits, 1,
		    memory_order_relaxed);
		while (atomic_load_explicit(&mark_slots[i].seg,
		    memory_order_acquire) == (uintptr_t)s)
			sched_yield();
	}
}

/* Sets the calling thread's marking slot to seg (NULL clears it), as
 * peek_mark does around its writes; false if the thread has no slot. */
bool
store_debug_marking(const void *seg)
{
	struct mark_slot *m = mark_slot();

	if (m == NULL)
		return false;
	atomic_store(&m->seg, (uintptr_t)seg);
	return true;
}

/* Segment frees that found a thread marking one of its items. */
uint64_t
store_debug_mark_waits(void)
{
	return atomic_load(&mark_waits);
}

/* Pushes an item onto a table's bucket. */
static void
ht_push(struct htable *t, item_t *it, uint64_t hv)
{
	item_t **b = ht_bucket(t, hv);

	item_set_next(it, *b);
	*b = it;
	t->used++;
}

/* Adds an item to the table new items go to. */
void
ht_insert(struct shard *sh, item_t *it, uint64_t hv)
{
	sh->loose_linked += item_is_loose(it);
	ht_push(&sh->ht[ht_rehashing(sh) ? 1 : 0], it, hv);
}

/* Removes an item from whichever table holds it. */
void
ht_remove(struct shard *sh, item_t *it, uint64_t hv)
{
	item_t **b, *prev, *cur;
	int i;

	for (i = 0; i < 2 && sh->ht[i].b != NULL; i++) {
		b = ht_bucket(&sh->ht[i], hv);
		for (prev = NULL, cur = *b; cur; prev = cur,
		    cur = item_next(cur)) {
			if (cur != it)
				continue;
			if (prev == NULL)
				*b = item_next(it);
			else
				item_set_next(prev, item_next(it));
			item_set_next(it, NULL);
			sh->ht[i].used--;
			sh->loose_linked -= item_is_loose(it);
			return;
		}
	}
	assert(false && "item not in its shard's table");
}

/*
 * Bucket arrays.  A get that reads without the shard lock (ht_peek) may
 * still be reading an array a rehash has just retired, so no array is
 * freed while the store lives: a retired one goes on its shard's spares,
 * with the link written into its first buckets (a reader that reads them
 * finds the shard's count moved before it follows one), and is reused
 * for the next array of its size.  Arrays of HT_MAP_MIN bytes (a page)
 * and more are mapped, and give their pages back when retired; smaller
 * ones are malloc'ed.  A shard holds at most two arrays at once, so its
 * spares stay within twice its largest, and those of a page and more
 * hold no memory: at -m 64 with 32-byte values (64 shards of 8,192
 * buckets) the malloc'ed spares of arrays up to 64 KiB, the threshold
 * before, kept 3 MiB (RSS 76.0 MiB, now 73.0).
 */
#define HT_MAP_MIN	((size_t)4096)

struct ht_spare {
	struct ht_spare	*next;
	unsigned	 log2;
};

/* Bytes of an array of 2^log2 buckets. */
static size_t
ht_array_bytes(unsigned log2)
{
	return sizeof(item_t *) << log2;
}

/* What an array is charged in hash_bytes. */
static size_t
ht_array_cost(item_t **b, unsigned log2)
{
	return ht_array_bytes(log2) >= HT_MAP_MIN ? ht_array_bytes(log2) :
	    pool_malloc_cost(b);
}

/* An empty array of 2^log2 buckets, a spare if the shard has one; NULL
 * when there is no memory. */
static item_t **
ht_array_new(struct shard *sh, unsigned log2)
{
	size_t n = ht_array_bytes(log2);
	struct ht_spare **pp, *sp;
	void *m;

	for (pp = &sh->spares; (sp = *pp) != NULL; pp = &sp->next) {
		if (sp->log2 != log2)
			continue;
		*pp = sp->next;
		/* A mapped one's pages came back zeroed but for the link's. */
		memset(sp, 0, n >= HT_MAP_MIN ? sizeof(*sp) : n);
		return (item_t **)(void *)sp;
	}
	if (n < HT_MAP_MIN)
		return calloc((size_t)1 << log2, sizeof(item_t *));
	m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

/* Retires an array no table uses any more (see above). */
static void
ht_array_retire(struct shard *sh, item_t **b, unsigned log2)
{
	struct ht_spare *sp = (struct ht_spare *)(void *)b;

	if (ht_array_bytes(log2) >= HT_MAP_MIN)
		madvise(b, ht_array_bytes(log2), MADV_DONTNEED);
	sp->log2 = log2;
	sp->next = sh->spares;
	sh->spares = sp;
}

/* Frees a shard's arrays, its spares among them, when the store goes. */
void
ht_arrays_free(struct shard *sh)
{
	struct ht_spare *sp;
	int i;

	for (i = 0; i < 2; i++)
		if (sh->ht[i].b != NULL)
			ht_array_retire(sh, sh->ht[i].b, sh->ht[i].log2);
	while ((sp = sh->spares) != NULL) {
		sh->spares = sp->next;
		if (ht_array_bytes(sp->log2) >= HT_MAP_MIN)
			munmap(sp, ht_array_bytes(sp->log2));
		else
			free(sp);
	}
}

/* Makes an array ht[i] of a shard, with its cost counted. */
static void
ht_array_set(struct shard *sh, int i, item_t **b, unsigned log2)
{
	sh->ht[i] = (struct htable){ .b = b, .log2 = log2 };
	sh->hash_bytes += ht_array_cost(b, log2);
}

/* Retires ht[0]'s array and uncounts it. */
static void
ht_array_drop0(struct shard *sh)
{
	sh->hash_bytes -= ht_array_cost(sh->ht[0].b, sh->ht[0].log2);
	ht_array_retire(sh, sh->ht[0].b, sh->ht[0].log2);
}

/* Sets up a shard's first array; false when there is no memory. */
bool
ht_init(struct shard *sh)
{
	item_t **b = ht_array_new(sh, HT_MIN_LOG2);

	if (b == NULL)
		return false;
	ht_array_set(sh, 0, b, HT_MIN_LOG2);
	ht_hint_set(sh);
	return true;
}

/* Allocates a bucket array as ht[1] and starts moving items into it. */
static void
ht_resize(struct shard *sh, unsigned log2)
{
	item_t **b = ht_array_new(sh, log2);

	if (b == NULL)
		return;		/* longer chains until a later try works */
	ht_array_set(sh, 1, b, log2);
	sh->rehash_idx = 0;
}

/* Starts a grow past load factor HT_MAX_LOAD, or a shrink below 1/8.
 * Chains of up to two on average cost a get about half a cache miss more
 * than chains of one, and save 4 bytes of table per item (a quarter of
 * the memory that is not charged to -m at 100-byte values). */
void
ht_maybe_resize(struct shard *sh)
{
	const struct htable *t = &sh->ht[0];
	unsigned log2;

	if (ht_grow_due(t->log2, t->used)) {
		ht_resize(sh, t->log2 + 1);
	} else if (ht_shrink_due(t->log2, t->used)) {
		/* Down to load 1/2, so a shrink is not undone right away. */
		for (log2 = HT_MIN_LOG2; ((size_t)1 << log2) < t->used * 2;)
			log2++;
		ht_resize(sh, log2);
	}
}

/* Starts a grow past load factor HT_MAX_LOAD, never a shrink: for a
 * bulk load into a presized table, empty at first. */
void
ht_maybe_grow(struct shard *sh)
{
	const struct htable *t = &sh->ht[0];

	if (ht_grow_due(t->log2, t->used))
		ht_resize(sh, t->log2 + 1);
}

/* Sizes an empty shard's table for `items` about to be added, as growing
 * would have sized it, so a bulk load (a snapshot's) never rehashes. */
void
ht_presize(struct shard *sh, size_t items)
{
	unsigned log2 = sh->ht[0].log2;
	item_t **b;

	if (ht_rehashing(sh) || sh->ht[0].used != 0)
		return;
	while (((size_t)1 << log2) * HT_MAX_LOAD < items &&
	    log2 < HT_MAX_LOG2)
		log2++;
	if (log2 == sh->ht[0].log2 || (b = ht_array_new(sh, log2)) == NULL)
		return;
	ht_array_drop0(sh);
	ht_array_set(sh, 0, b, log2);
	ht_hint_set(sh);
}

/* Moves one ht[0] chain into ht[1]. */
static void
ht_move_bucket(const store_t *st, struct shard *sh, item_t **b)
{
	item_t *it, *next;

	for (it = *b; it != NULL; it = next) {
		next = item_next(it);
		ht_push(&sh->ht[1], it, item_hash(st, it));
		sh->ht[0].used--;
	}
	*b = NULL;
}

/* Makes ht[1] the table once ht[0] is empty. */
static void
ht_finish_rehash(struct shard *sh)
{
	ht_array_drop0(sh);
	sh->ht[0] = sh->ht[1];
	sh->ht[1] = (struct htable){ 0 };
	ht_hint_set(sh);
	sh->rehash_idx = 0;
}

/* Moves up to `moves` chains, looking at no more than `visits` buckets;
 * returns the buckets looked at. */
size_t
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
void
ht_swap(struct shard *sh, item_t *o, item_t *n, uint64_t hv)
{
	item_t **b, *prev, *cur;
	int i;

	for (i = 0; i < 2 && sh->ht[i].b != NULL; i++) {
		b = ht_bucket(&sh->ht[i], hv);
		for (prev = NULL, cur = *b; cur; prev = cur,
		    cur = item_next(cur)) {
			if (cur != o)
				continue;
			/* The copy takes the access time too. */
			atomic_store_explicit(&n->h_link, item_link_word(o),
			    memory_order_relaxed);
			if (prev == NULL)
				*b = n;
			else
				item_set_next(prev, n);
			item_set_next(o, NULL);
			sh->loose_linked += item_is_loose(n);
			sh->loose_linked -= item_is_loose(o);
			return;
		}
	}
	assert(false && "item not in its shard's table");
}

/*
 * Unlinks a shard's flushed items at once when a client asks for an
 * explicit CAS (E) at or below the shard's flush watermark: until those
 * items are reaped (the expiry thread does it within about a second) an
 * item with such a CAS would read as flushed too.  Once none is left the
 * watermark goes (item_unlink).  Work is the shard's table and items, at
 * most once per flush_all and shard, and only for E requests.
 */
void
shard_admit_cas(store_t *st, struct shard *sh, bool has, uint64_t cas)
{
	item_t *it, *next;

	if (!has || sh->flushed_linked == 0 || cas > sh->flush_wm)
		return;
	for (int i = 0; i < 2; i++) {
		struct htable *t = &sh->ht[i];

		for (size_t b = 0; t->b != NULL && sh->flushed_linked > 0 &&
		    b < ((size_t)1 << t->log2); b++)
			for (it = t->b[b]; it != NULL; it = next) {
				next = item_next(it);
				if (item_cas(it) <= sh->flush_wm)
					item_reap(st, sh, it,
					    item_hash(st, it), ITEM_FLUSHED);
			}
	}
}
