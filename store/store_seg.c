/*
 * store_seg.c -- the segment pool: memory for items, carved in order from
 * fixed-size segments, plus loose allocations for large items and for
 * reservations; the FIFO of sealed segments that eviction empties from
 * its head; pins that keep a segment's memory while an item in it is
 * still referenced.  Knows nothing of keys' hash tables: what happens to
 * the items of a segment taken off the FIFO is store.c's business.
 *
 * Waiting for room: room_gen counts evacuations ended and segments
 * freed, under the pool lock; a thread that finds nothing to empty while
 * others empty segments sleeps on room_cond until it moves.
 *
 * TTL buckets: an arena keeps an active segment per bucket of remaining
 * TTL (powers of 8 seconds; items with no TTL have their own), so items
 * that expire at about the same time share segments and a segment falls
 * due about once, as in Segcache.  A small limit affords fewer buckets:
 * the open segments take at most 1/TTL_OPEN_SHARE of it.
 *
 * Expiry heap: every sealed segment with a min_exp sits in a binary
 * min-heap by it, so an expiry pass pops just the due segments and costs
 * nothing while none is due; a note that lowers a sealed segment's
 * min_exp (touch) moves it up.  Compaction candidates are flagged when a
 * sealed segment's live bytes fall under COMPACT_LIVE_PCT (or it is
 * sealed so), and only then does a pass walk the FIFO for them.
 *
 * Small segments stay mapped for the store's life: one given back to
 * the system (pool_trim) loses its pages (MADV_DONTNEED) and waits on the
 * released list to be reused, since a get reading without the shard lock
 * (ht_peek) may still read an item that was in it.
 *
 * Locking: the pool lock guards the FIFO, the free and released lists,
 * the segment states, the heap and room_gen; an arena's lock guards its
 * active segments.  The order is store.h's (arena before pool).
 *
 * Large loose items (STORE_LARGE_ALLOC up) are blocks of their own
 * mmapped in size classes (16 to a power of two, whole pages, populated
 * at once), and a freed block is kept on its class's list for the next
 * item of that class, up to 1/LOOSE_CACHE_SHARE of the limit (and
 * LOOSE_CACHE_MAX): a set of a
 * large value then costs no mmap, munmap or page faults (each took a
 * fresh mmap before, and faulting it in was most of a 64 KiB set's CPU).
 * Kept blocks go back to the system first when memory is wanted.
 *
 * Memory accounting: `mem` counts every small segment held (free or not)
 * at seg_size, every large block (in use or kept) at its mapped size, and
 * every other loose item at what malloc charges for it, and is raised by
 * compare-and-swap only when that keeps it within the limit.
 *
 * Bulk loads (pool_prefault: a snapshot being loaded), and every store
 * under -L (store_config.large_pages, pool.huge), map segments a
 * transparent huge page's worth at a time with their pages in place,
 * the rest of the chunk going to the free list (charged: `mem` counts
 * them as held).  Near the limit, where a whole chunk no longer fits,
 * segments come one at a time, populated but in small pages.
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <assert.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SEG_SIZE_MIN	(4 * 1024)
#define SEG_SIZE_MAX	(256 * 1024)
#define SEGS_PER_LIMIT	32	/* a limit holds at least this many */
#define FREE_RESERVE	1	/* free segments kept for evacuation */

/* The arena a thread carves from: threads are dealt out round-robin. */
static _Atomic unsigned arena_next;
static _Thread_local unsigned arena_mine = UINT32_MAX;

static struct arena *
my_arena(struct pool *p)
{
	if (arena_mine == UINT32_MAX)
		arena_mine = atomic_fetch_add_explicit(&arena_next, 1,
		    memory_order_relaxed) % NARENAS;
	return &p->arena[arena_mine];
}

/* Rounds n up to a multiple of the power of two a. */
static size_t
round_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

/* ---- memory counter ------------------------------------------------ */

/* Charges n bytes if that leaves at least `keep` bytes below the limit. */
static bool
mem_try_charge(struct pool *p, size_t n, size_t keep)
{
	uint64_t cur = atomic_load_explicit(&p->mem, memory_order_relaxed);

	do {
		if (cur + n + keep > p->limit)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&p->mem, &cur,
	    cur + n, memory_order_relaxed, memory_order_relaxed));
	return true;
}

/*
 * Bytes an allocation other than evacuation must leave below the limit:
 * evacuation always finds a segment to move items to, a free one or room
 * for a new one, or it could only evict what it should move.
 */
static size_t
headroom(const struct pool *p)
{
	size_t nfree = atomic_load_explicit(&p->nfree, memory_order_relaxed);

	return nfree >= FREE_RESERVE ? 0 : (FREE_RESERVE - nfree) *
	    p->seg_size;
}

/* Returns charged bytes. */
static void
mem_uncharge(struct pool *p, size_t n)
{
	atomic_fetch_sub_explicit(&p->mem, n, memory_order_relaxed);
}

/* Returns floor(log2(n)), n > 0. */
static unsigned
log2_floor(size_t n)
{
	return (unsigned)(63 - __builtin_clzll((unsigned long long)n));
}

/* The step between large size classes at 2^k: a 16th of it, at least a
 * page. */
static size_t
lclass_step(const struct pool *p, unsigned k)
{
	size_t step = (size_t)1 << (k - 4);

	return step < p->page_size ? p->page_size : step;
}

/* The size of the large block an allocation of n bytes (n at least
 * STORE_LARGE_ALLOC) takes: n rounded up to its class. */
static size_t
lclass_size(const struct pool *p, size_t n)
{
	return round_up(n, lclass_step(p, log2_floor(n)));
}

/* The free list index of a large block of a class size. */
static unsigned
lclass_idx(const struct pool *p, size_t size)
{
	unsigned k = log2_floor(size);

	return (k - 15) * 16 + (unsigned)((size - ((size_t)1 << k)) /
	    lclass_step(p, k));
}

_Static_assert(STORE_LARGE_ALLOC == 1 << 15, "classes start at 2^15");

/* What an allocation of n bytes for a loose item costs at most: a large
 * block's class size; for malloc (glibc) 16-byte chunks with one size
 * word. */
static size_t
loose_cost_bound(const struct pool *p, size_t n)
{
	size_t c = round_up(n + sizeof(size_t), 16);

	if (n >= STORE_LARGE_ALLOC)
		return lclass_size(p, n);
	return c < 32 ? 32 : c;
}

/* What malloc charges for an allocation once made. */
size_t
pool_malloc_cost(const void *m)
{
	return malloc_usable_size((void *)m) + sizeof(size_t);
}

/* The bytes a loose segment's allocation holds: the header and the
 * item (cap) decide whether it is a large block. */
static size_t
loose_alloc_size(const struct seg *s)
{
	return SEG_HDR + (size_t)s->cap;
}

/* What a loose item's allocation is charged. */
size_t
pool_loose_cost(const struct pool *p, const struct seg *s)
{
	size_t n = loose_alloc_size(s);

	return n >= STORE_LARGE_ALLOC ? lclass_size(p, n) :
	    pool_malloc_cost(s);
}

/* ---- set up -------------------------------------------------------- */

/* Sets up an empty pool: segments of a power of two between 4 KiB and
 * 256 KiB, at least SEGS_PER_LIMIT of them within the limit, and as many
 * TTL buckets as keep the open segments within their share of it. */
void
pool_init(struct pool *p, size_t limit, size_t page_size)
{
	size_t seg = SEG_SIZE_MAX;
	int i;

	memset(p, 0, sizeof(*p));
	while (seg > SEG_SIZE_MIN && seg * SEGS_PER_LIMIT > limit)
		seg /= 2;
	p->seg_size = seg;
	p->small_max = (seg - SEG_HDR) / 4;
	if (p->small_max > STORE_LARGE_ALLOC - SEG_HDR)
		p->small_max = STORE_LARGE_ALLOC - SEG_HDR;
	p->limit = limit;
	p->page_size = page_size;
	p->nttl = (unsigned)(limit / seg / (TTL_OPEN_SHARE * NARENAS));
	p->nttl = p->nttl < 1 ? 1 : p->nttl > NTTL ? NTTL : p->nttl;
	lock_init(&p->lock);
	pthread_cond_init(&p->room_cond, NULL);
	for (i = 0; i < NARENAS; i++)
		lock_init(&p->arena[i].lock);
}

/*
 * Maps a segment (or a chunk of them) aligned to its size.  Not
 * posix_memalign: glibc serves that from an mmapped chunk whose header
 * sits in the page before the aligned address, which costs a resident
 * page per segment.  prefault: a chunk of PREFAULT_CHUNK bytes asks for
 * a transparent huge page (where the system's policy is "madvise"), and
 * the pages are put in place at once.
 */
static void *
seg_map(size_t size, bool prefault)
{
	char *m = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (m == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)m + size - 1) & ~(uintptr_t)(size - 1);
	if (a > (uintptr_t)m)
		munmap(m, a - (uintptr_t)m);
	if (a + size < (uintptr_t)m + 2 * size)
		munmap((void *)(a + size), (uintptr_t)m + size - a);
#ifdef MADV_HUGEPAGE
	if (prefault && size == PREFAULT_CHUNK)
		madvise((void *)a, size, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
	/* Before Linux 5.14 this fails, and the pages fault in as used. */
	if (prefault)
		madvise((void *)a, size, MADV_POPULATE_WRITE);
#else
	(void)prefault;
#endif
	return (void *)a;
}

/* Returns a segment's memory to the system and uncharges it. */
static void
seg_release_mem(struct pool *p, struct seg *s)
{
	size_t cost = s->loose ? pool_loose_cost(p, s) : p->seg_size;

	if (!s->loose)
		munmap(s, p->seg_size);
	else if (loose_alloc_size(s) >= STORE_LARGE_ALLOC)
		munmap(s, cost);
	else
		free(s);
	mem_uncharge(p, cost);
}

/* A loose segment is no longer used: a large block is kept on its class's
 * list while they hold less than their share of the limit, else (and any
 * other) it goes back to the system. */
static void
loose_let_go(struct pool *p, struct seg *s)
{
	size_t size = pool_loose_cost(p, s), cap;
	bool keep = false;
	unsigned c;

	if (loose_alloc_size(s) >= STORE_LARGE_ALLOC) {
		c = lclass_idx(p, size);
		lock_take(&p->lock, LOCK_POOL);
		cap = atomic_load_explicit(&p->limit, memory_order_relaxed) /
		    LOOSE_CACHE_SHARE;
		cap = cap < LOOSE_CACHE_MAX ? cap : LOOSE_CACHE_MAX;
		if ((keep = p->lcached + size <= cap)) {
			s->state = SEG_FREE;
			s->next = p->lfree[c];
			p->lfree[c] = s;
			p->lcached += size;
		}
		lock_drop(&p->lock, LOCK_POOL);
	}
	if (!keep)
		seg_release_mem(p, s);
}

/* Frees a list linked through next. */
static void
free_list(struct pool *p, struct seg *s)
{
	struct seg *next;

	for (; s != NULL; s = next) {
		next = s->next;
		seg_release_mem(p, s);
	}
}

/* Frees everything; no item may still be referenced. */
void
pool_fini(struct pool *p)
{
	unsigned b;
	int i;

	for (i = 0; i < NARENAS; i++) {
		for (b = 0; b < NTTL; b++)
			if (p->arena[i].active[b] != NULL)
				seg_release_mem(p, p->arena[i].active[b]);
		pthread_mutex_destroy(&p->arena[i].lock);
	}
	free_list(p, p->head);
	free_list(p, p->free);
	for (i = 0; i < NLCLASS; i++)
		free_list(p, p->lfree[i]);
	while (p->nreleased > 0)
		munmap(p->released[--p->nreleased], p->seg_size);
	free(p->released);
	free(p->heap);
	pthread_cond_destroy(&p->room_cond);
	pthread_mutex_destroy(&p->lock);
}

/* True if a segment is free or can be allocated within the limit; pool
 * lock held. */
static bool
room_locked(const struct pool *p)
{
	return p->nfree > 0 || atomic_load_explicit(&p->mem,
	    memory_order_relaxed) + p->seg_size <= p->limit;
}

/* Wakes the threads waiting for room; pool lock held. */
static void
room_signal_locked(struct pool *p)
{
	p->room_gen++;
	pthread_cond_broadcast(&p->room_cond);
}

/* Wakes the threads waiting for room. */
static void
room_signal(struct pool *p)
{
	lock_take(&p->lock, LOCK_POOL);
	room_signal_locked(p);
	lock_drop(&p->lock, LOCK_POOL);
}

/* ---- expiry heap (pool lock held) ---------------------------------- */

/* Puts an entry at heap index i. */
static void
heap_set(struct pool *p, uint32_t i, struct heap_ent e)
{
	p->heap[i] = e;
	e.s->heap_idx = i;
}

/* Moves the entry at i up to its place; returns where it went. */
static uint32_t
heap_up(struct pool *p, uint32_t i)
{
	struct heap_ent e = p->heap[i];
	uint32_t up;

	for (; i > 0; i = up) {
		up = (i - 1) / 2;
		if (p->heap[up].key <= e.key)
			break;
		heap_set(p, i, p->heap[up]);
	}
	heap_set(p, i, e);
	return i;
}

/* Moves the entry at i down to its place. */
static void
heap_down(struct pool *p, uint32_t i)
{
	struct heap_ent e = p->heap[i];
	uint32_t c;

	for (; (c = 2 * i + 1) < p->heap_n; i = c) {
		if (c + 1 < p->heap_n && p->heap[c + 1].key < p->heap[c].key)
			c++;
		if (e.key <= p->heap[c].key)
			break;
		heap_set(p, i, p->heap[c]);
	}
	heap_set(p, i, e);
}

/* Adds a sealed segment under key; if the heap cannot grow it is lost,
 * and passes walk the FIFO until it is rebuilt. */
static void
heap_add(struct pool *p, struct seg *s, uint32_t key)
{
	struct heap_ent *h;
	uint32_t cap;

	if (p->heap_lost)
		return;
	if (p->heap_n == p->heap_cap) {
		cap = p->heap_cap < 64 ? 64 : p->heap_cap * 2;
		if (cap <= p->heap_cap || (h = realloc(p->heap,
		    cap * sizeof(*h))) == NULL) {
			p->heap_lost = true;
			return;
		}
		p->heap = h;
		p->heap_cap = cap;
	}
	p->heap[p->heap_n] = (struct heap_ent){ key, s };
	heap_up(p, p->heap_n++);
}

/* Takes a segment out of the heap. */
static void
heap_del(struct pool *p, struct seg *s)
{
	uint32_t i = s->heap_idx;

	assert(i < p->heap_n && p->heap[i].s == s);
	s->heap_idx = HEAP_NONE;
	if (--p->heap_n == i)
		return;
	heap_set(p, i, p->heap[p->heap_n]);
	heap_down(p, heap_up(p, i));
}

/* ---- FIFO (pool lock held) ----------------------------------------- */

/* Seals a segment at the FIFO tail, into the heap if it has a min_exp,
 * flagged for compaction if it is sealed mostly dead. */
static void
fifo_append(struct pool *p, struct seg *s)
{
	uint32_t e = atomic_load_explicit(&s->min_exp, memory_order_relaxed);

	s->next = NULL;
	s->prev = p->tail;
	if (p->tail != NULL)
		p->tail->next = s;
	else
		p->head = s;
	p->tail = s;
	s->state = SEG_SEALED;
	/* One being scanned goes back when the scan is done. */
	if (e != 0 && s->heap_idx == HEAP_NONE)
		heap_add(p, s, e);
	if (!s->loose && (uint64_t)atomic_load_explicit(&s->live,
	    memory_order_relaxed) * 100 < (uint64_t)s->cap * COMPACT_LIVE_PCT)
		atomic_store_explicit(&p->compact_due, true,
		    memory_order_relaxed);
}

static void
fifo_remove(struct pool *p, struct seg *s)
{
	if (s->heap_idx < HEAP_SCAN)
		heap_del(p, s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		p->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		p->tail = s->prev;
	s->prev = s->next = NULL;
}

/* ---- small segments ------------------------------------------------ */

/* Readies a segment's header for carving. */
static void
seg_reset(struct seg *s, size_t seg_size)
{
	s->prev = s->next = NULL;
	s->mem = (char *)s + SEG_HDR;
	s->cap = (uint32_t)(seg_size - SEG_HDR);
	s->used = 0;
	atomic_store_explicit(&s->min_exp, 0, memory_order_relaxed);
	atomic_store_explicit(&s->pins, 0, memory_order_relaxed);
	atomic_store_explicit(&s->live, 0, memory_order_relaxed);
	s->state = SEG_ACTIVE;
	s->loose = false;
	s->heap_idx = HEAP_NONE;
}

/* Gets an empty segment: a free one, or a new one within the limit. */
static struct seg *
seg_get(struct pool *p, bool reserve)
{
	struct seg *s = NULL;
	bool prefault;
	size_t n;
	void *m;

	/* The last free segment is kept for evacuation, unless there is
	 * nothing to evacuate. */
	lock_take(&p->lock, LOCK_POOL);
	if (p->free != NULL && (reserve || p->nfree > FREE_RESERVE ||
	    atomic_load_explicit(&p->mem, memory_order_relaxed) +
	    FREE_RESERVE * p->seg_size <= p->limit ||
	    (p->head == NULL && p->nwalking == 0))) {
		s = p->free;
		p->free = s->next;
		p->nfree--;
	}
	if (s == NULL && p->nreleased > 0 && mem_try_charge(p, p->seg_size,
	    reserve ? 0 : headroom(p))) {
		/* Mapped already, its pages given back: they come back
		 * zeroed as they are touched. */
		s = p->released[--p->nreleased];
		p->nsegs++;
		atomic_store_explicit(&p->nsegs_pub, p->nsegs,
		    memory_order_relaxed);
	}
	lock_drop(&p->lock, LOCK_POOL);
	if (s == NULL) {
		prefault = p->huge || atomic_load_explicit(&p->prefault,
		    memory_order_relaxed);
		/* Under -L, and in a bulk load, a huge page's worth of
		 * segments comes at once, if the limit allows; all but one
		 * go to the free list. */
		n = prefault && p->seg_size < PREFAULT_CHUNK ?
		    PREFAULT_CHUNK / p->seg_size : 1;
		if (n > 1 && !mem_try_charge(p, n * p->seg_size,
		    reserve ? 0 : headroom(p)))
			n = 1;
		if (n == 1 && !mem_try_charge(p, p->seg_size,
		    reserve ? 0 : headroom(p)))
			return NULL;
		if ((m = seg_map(n * p->seg_size, prefault)) == NULL) {
			mem_uncharge(p, n * p->seg_size);
			return NULL;
		}
		s = m;
		lock_take(&p->lock, LOCK_POOL);
		p->nsegs += n;
		atomic_store_explicit(&p->nsegs_pub, p->nsegs,
		    memory_order_relaxed);
		for (size_t i = 1; i < n; i++) {
			struct seg *f = (struct seg *)(void *)((char *)m +
			    i * p->seg_size);

			f->state = SEG_FREE;
			f->loose = false;
			f->next = p->free;
			p->free = f;
			p->nfree++;
		}
		lock_drop(&p->lock, LOCK_POOL);
	}
	seg_reset(s, p->seg_size);
	s->born = p->clock != NULL ? p->clock(p->clock_ctx) : 0;
	return s;
}

/* Seals an arena's active segment of bucket b onto the FIFO; arena lock
 * held. */
static void
arena_seal(struct pool *p, struct arena *a, unsigned b)
{
	lock_take(&p->lock, LOCK_POOL);
	fifo_append(p, a->active[b]);
	lock_drop(&p->lock, LOCK_POOL);
	a->active[b] = NULL;
}

/* Maps new segments populated, or not. */
void
pool_prefault(struct pool *p, bool on)
{
	atomic_store_explicit(&p->prefault, on, memory_order_relaxed);
}

/* Returns the TTL bucket of an item expiring at exptime: 0 for none,
 * else by the log8 of its remaining TTL, folded onto the nttl buckets
 * this limit affords. */
static unsigned
ttl_bucket(const struct pool *p, uint32_t exptime)
{
	uint32_t now, ttl;
	unsigned b;

	if (exptime == 0 || p->nttl == 1)
		return 0;
	now = p->clock != NULL ? p->clock(p->clock_ctx) : 0;
	ttl = exptime > now ? exptime - now : 1;
	b = 1 + (unsigned)(31 - __builtin_clz(ttl)) / 3;
	if (b > NTTL - 1)
		b = NTTL - 1;
	return 1 + (b - 1) * (p->nttl - 1) / (NTTL - 1);
}

/* Lowers a segment's min_exp to exptime (0 is ignored); true if it did. */
static bool
seg_lower_min(struct seg *s, uint32_t exptime)
{
	uint32_t cur = atomic_load_explicit(&s->min_exp, memory_order_relaxed);

	while (exptime != 0 && (cur == 0 || exptime < cur))
		if (atomic_compare_exchange_weak_explicit(&s->min_exp, &cur,
		    exptime, memory_order_relaxed, memory_order_relaxed))
			return true;
	return false;
}

/*
 * Lowers a segment's min_exp, and its key in the heap if it is sealed:
 * the state is read under the pool lock after the lowering, and sealing
 * reads min_exp under the same lock, so one of the two sees the other.
 * A segment being scanned goes back into the heap when its scan ends.
 */
void
pool_note_exptime(struct pool *p, struct seg *s, uint32_t exptime)
{
	if (!seg_lower_min(s, exptime))
		return;
	lock_take(&p->lock, LOCK_POOL);
	if (s->state == SEG_SEALED) {
		if (s->heap_idx == HEAP_NONE) {
			heap_add(p, s, exptime);
		} else if (s->heap_idx != HEAP_SCAN &&
		    p->heap[s->heap_idx].key > exptime) {
			p->heap[s->heap_idx].key = exptime;
			heap_up(p, s->heap_idx);
		}
	}
	lock_drop(&p->lock, LOCK_POOL);
}

/* Flags compaction when an unlink takes a segment's live bytes under
 * COMPACT_LIVE_PCT of its capacity (an active one's too: a needless walk
 * at worst); segments sealed so are flagged by fifo_append. */
void
pool_note_dead(struct pool *p, const struct seg *s, uint32_t old, uint32_t n)
{
	uint64_t line = (uint64_t)s->cap * COMPACT_LIVE_PCT;

	if (!s->loose && (uint64_t)old * 100 >= line &&
	    (uint64_t)(old - n) * 100 < line)
		atomic_store_explicit(&p->compact_due, true,
		    memory_order_relaxed);
}

/* The optional-field bits of a new item: the fields that are not 0, or
 * both with `full`. */
static uint32_t
item_ext_bits(uint32_t flags, uint32_t exptime, bool full)
{
	return (full || exptime != 0 ? ITEM_HAS_EXP : 0) |
	    (full || flags != 0 ? ITEM_HAS_FLAGS : 0);
}

/* Writes a new item's header, optional fields (`bits`: ITEM_HAS_ ones and
 * any other flag bits) and key. */
static item_t *
item_init(void *m, const char *key, size_t nkey, uint32_t flags,
    uint32_t exptime, size_t nbytes, uint32_t bits)
{
	item_t *it = m;
	char *p = it->data;

	atomic_init(&it->h_link, 0);
	atomic_init(&it->casnk, nkey);
	it->nbytes = (uint32_t)nbytes;
	atomic_init(&it->ref, 1 | bits);
	if ((bits & ITEM_HAS_EXP) != 0) {
		memcpy(p, &exptime, sizeof(exptime));
		p += sizeof(exptime);
	}
	if ((bits & ITEM_HAS_FLAGS) != 0) {
		memcpy(p, &flags, sizeof(flags));
		p += sizeof(flags);
	}
	memcpy(p, key, nkey);
	return it;
}

/* Carves an item from the calling thread's arena. */
item_t *
pool_carve(struct pool *p, const char *key, size_t nkey, uint32_t flags,
    uint32_t exptime, size_t nbytes, bool reserve)
{
	uint32_t bits = item_ext_bits(flags, exptime, p->full_hdr);
	size_t size = ITEM_SIZE_X(nkey, nbytes, item_ext_of(bits));
	struct arena *a = my_arena(p);
	unsigned b = ttl_bucket(p, exptime);
	struct seg *s, *fresh;
	item_t *it;

	assert(size <= p->small_max);
	lock_take(&a->lock, LOCK_ARENA);
	s = a->active[b];
	if (s == NULL || s->used + size > s->cap) {
		if ((fresh = seg_get(p, reserve)) == NULL) {
			lock_drop(&a->lock, LOCK_ARENA);
			return NULL;
		}
		if (s != NULL)
			arena_seal(p, a, b);
		a->active[b] = s = fresh;
	}
	it = item_init(s->mem + s->used, key, nkey, flags, exptime, nbytes,
	    bits);
	s->used += (uint32_t)size;
	/* Not in the heap while active: the pass looks at it directly. */
	seg_lower_min(s, exptime);
	lock_drop(&a->lock, LOCK_ARENA);
	return it;
}

/* ---- loose items --------------------------------------------------- */

/* Allocates a loose item; NULL when over the limit. */
item_t *
pool_loose(struct pool *p, const char *key, size_t nkey, uint32_t flags,
    uint32_t exptime, size_t nbytes)
{
	size_t n = SEG_HDR + LOOSE_HDR + nkey + nbytes;
	size_t est = loose_cost_bound(p, n), cost;
	struct seg *s = NULL;
	unsigned c;
	void *m;

	if (n >= STORE_LARGE_ALLOC) {
		/* A kept block of the class is charged already. */
		c = lclass_idx(p, est);
		lock_take(&p->lock, LOCK_POOL);
		if ((s = p->lfree[c]) != NULL) {
			p->lfree[c] = s->next;
			p->lcached -= est;
		}
		lock_drop(&p->lock, LOCK_POOL);
		if (s != NULL) {
			atomic_fetch_add_explicit(&p->lreused, 1,
			    memory_order_relaxed);
		} else {
			if (!mem_try_charge(p, est, headroom(p)))
				return NULL;
			/* Populated: the value is written right away, and
			 * one call faults the pages in for less. */
			m = mmap(NULL, est, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			if (m == MAP_FAILED) {
				mem_uncharge(p, est);
				return NULL;
			}
			s = m;
			atomic_fetch_add_explicit(&p->lmapped, 1,
			    memory_order_relaxed);
		}
	} else {
		if (!mem_try_charge(p, est, headroom(p)))
			return NULL;
		if ((s = malloc(n)) == NULL) {
			mem_uncharge(p, est);
			return NULL;
		}
		/* Settle to the real cost: glibc may hand out a little
		 * more. */
		cost = pool_malloc_cost(s);
		if (cost < est) {
			mem_uncharge(p, est - cost);
		} else if (cost > est && !mem_try_charge(p, cost - est, 0)) {
			free(s);
			mem_uncharge(p, est);
			return NULL;
		}
	}
	memset(s, 0, sizeof(*s));
	s->mem = (char *)s + SEG_HDR;
	s->cap = s->used = (uint32_t)(n - SEG_HDR);
	s->state = SEG_LOOSE;
	s->loose = true;
	s->heap_idx = HEAP_NONE;
	s->born = p->clock != NULL ? p->clock(p->clock_ctx) : 0;
	atomic_init(&s->pins, 1);	/* the item's existence */
	return item_init(s->mem, key, nkey, flags, exptime, nbytes,
	    ITEM_LOOSE | ITEM_HAS_EXP | ITEM_HAS_FLAGS);
}

/* Returns the segment an item lives in, told whether it is loose: for a
 * caller that may no longer read the item. */
struct seg *
pool_seg_at(const struct pool *p, const item_t *it, bool loose)
{
	if (loose)
		return (struct seg *)(void *)((char *)(uintptr_t)it - SEG_HDR);
	return (struct seg *)((uintptr_t)it & ~(uintptr_t)(p->seg_size - 1));
}

/* Returns the segment an item lives in. */
struct seg *
pool_seg_of(const struct pool *p, const item_t *it)
{
	return pool_seg_at(p, it, (atomic_load_explicit(&it->ref,
	    memory_order_relaxed) & ITEM_LOOSE) != 0);
}

/* Puts a linked loose item at the FIFO tail. */
void
pool_loose_sealed(struct pool *p, item_t *it)
{
	struct seg *s = pool_seg_of(p, it);

	atomic_store_explicit(&s->min_exp, item_exptime(it),
	    memory_order_relaxed);
	lock_take(&p->lock, LOCK_POOL);
	assert(s->state == SEG_LOOSE);
	fifo_append(p, s);
	lock_drop(&p->lock, LOCK_POOL);
}

/* A loose item's last reference is gone: off the FIFO with it, and the
 * pin its existence held goes; whoever drops the last pin frees it. */
void
pool_loose_gone(struct pool *p, struct seg *s)
{
	lock_take(&p->lock, LOCK_POOL);
	if (s->state == SEG_SEALED)
		fifo_remove(p, s);
	s->state = SEG_EVAC;
	lock_drop(&p->lock, LOCK_POOL);
	pool_unpin(p, s);
}

/* ---- emptying segments --------------------------------------------- */

/* Takes a sealed segment off the FIFO; pool lock held. */
static void
take_locked(struct pool *p, struct seg *s)
{
	fifo_remove(p, s);
	s->state = SEG_EVAC;
	p->nwalking++;
	atomic_fetch_add_explicit(&s->pins, 1, memory_order_relaxed);
}

/* Seals the first non-empty arena segment; false if all are empty. */
static bool
seal_any(struct pool *p)
{
	struct arena *a;
	bool done = false;
	unsigned b;
	int i;

	for (i = 0; i < NARENAS && !done; i++) {
		a = &p->arena[i];
		lock_take(&a->lock, LOCK_ARENA);
		for (b = 0; b < p->nttl && !done; b++) {
			if (a->active[b] != NULL && a->active[b]->used > 0) {
				arena_seal(p, a, b);
				done = true;
			}
		}
		lock_drop(&a->lock, LOCK_ARENA);
	}
	return done;
}

/* Takes the oldest sealed segment off the FIFO, pinned once. */
struct seg *
pool_pop_oldest(struct pool *p)
{
	struct seg *s;
	int round;

	for (round = 0; round < 2; round++) {
		lock_take(&p->lock, LOCK_POOL);
		if ((s = p->head) != NULL)
			take_locked(p, s);
		lock_drop(&p->lock, LOCK_POOL);
		if (s != NULL || !seal_any(p))
			return s;
	}
	return NULL;
}

/* Takes a dead segment, or the one with the most dead bytes (at least
 * need), if that gains. */
struct seg *
pool_pop_emptiest(struct pool *p, size_t need)
{
	struct seg *s, *best = NULL;
	uint32_t live, dead, most = 0;
	bool room;

	lock_take(&p->lock, LOCK_POOL);
	room = room_locked(p);
	for (s = p->head; s != NULL; s = s->next) {
		live = atomic_load_explicit(&s->live, memory_order_relaxed);
		if (live == 0) {
			best = s;	/* nothing to move */
			break;
		}
		/* A sealed segment's `used` is fixed. */
		dead = s->used - live;
		if (!s->loose && room && dead >= need && dead > most) {
			most = dead;
			best = s;
		}
	}
	if (best != NULL)
		take_locked(p, best);
	lock_drop(&p->lock, LOCK_POOL);
	return best;
}

/* Sleeps until an evacuation ends or memory is freed; false at once if
 * no segment is being emptied. */
bool
pool_wait_room(struct pool *p)
{
	uint64_t gen;
	bool busy;

	lock_take(&p->lock, LOCK_POOL);
	gen = p->room_gen;
	busy = p->nwalking > 0;
	/* Each ending of an evacuation moves room_gen under this lock, so
	 * while one is under way a wakeup is on its way. */
	while (p->nwalking > 0 && p->room_gen == gen)
		pthread_cond_wait(&p->room_cond, &p->lock);
	lock_drop(&p->lock, LOCK_POOL);
	return busy;
}

/* Ends the emptying of a taken segment; drops the taker's pin. */
void
pool_evac_done(struct pool *p, struct seg *s)
{
	lock_take(&p->lock, LOCK_POOL);
	p->nwalking--;
	room_signal_locked(p);
	lock_drop(&p->lock, LOCK_POOL);
	pool_unpin(p, s);
}

/* Takes a given segment off the FIFO if it is still sealed. */
bool
pool_take(struct pool *p, struct seg *s)
{
	bool ok;

	lock_take(&p->lock, LOCK_POOL);
	if ((ok = s->state == SEG_SEALED))
		take_locked(p, s);
	lock_drop(&p->lock, LOCK_POOL);
	return ok;
}

/* Puts a taken segment back at the FIFO tail; consumes the pin. */
void
pool_requeue(struct pool *p, struct seg *s)
{
	lock_take(&p->lock, LOCK_POOL);
	assert(s->state == SEG_EVAC);
	p->nwalking--;
	fifo_append(p, s);
	room_signal_locked(p);
	lock_drop(&p->lock, LOCK_POOL);
	pool_unpin(p, s);
}

/* Pins a segment. */
void
pool_pin(struct seg *s)
{
	atomic_fetch_add_explicit(&s->pins, 1, memory_order_relaxed);
}

/* A segment's last pin went: an emptied one is free now, once no get is
 * still marking an item of it (peek_marks_wait).  Pool lock held; returns
 * a loose one for the caller to release after unlocking. */
static struct seg *
seg_unpinned_locked(struct pool *p, struct seg *s)
{
	if (s->state != SEG_EVAC)
		return NULL;
	if (s->loose)
		return s;
	peek_marks_wait(s);
	s->state = SEG_FREE;
	s->next = p->free;
	p->free = s;
	p->nfree++;
	room_signal_locked(p);
	return NULL;
}

/* Drops a pin; the last pin of an emptied segment frees it. */
void
pool_unpin(struct pool *p, struct seg *s)
{
	struct seg *release;

	/* acq_rel: whoever frees must see every other holder's reads done. */
	if (atomic_fetch_sub_explicit(&s->pins, 1, memory_order_acq_rel) != 1)
		return;
	lock_take(&p->lock, LOCK_POOL);
	release = seg_unpinned_locked(p, s);
	lock_drop(&p->lock, LOCK_POOL);
	/* Once on the free list the segment is another thread's to touch. */
	if (release != NULL) {
		loose_let_go(p, release);
		room_signal(p);
	}
}

/* Drops a pin with the pool lock held; returns a loose segment to be
 * released once the lock is dropped. */
static struct seg *
unpin_locked(struct pool *p, struct seg *s)
{
	if (atomic_fetch_sub_explicit(&s->pins, 1, memory_order_acq_rel) != 1)
		return NULL;
	return seg_unpinned_locked(p, s);
}

/* Gives one kept large block back to the system: the largest class
 * first, as one of those frees the most. */
bool
pool_trim_loose(struct pool *p)
{
	struct seg *s = NULL;
	int c;

	lock_take(&p->lock, LOCK_POOL);
	for (c = NLCLASS - 1; c >= 0 && p->lcached > 0; c--) {
		if ((s = p->lfree[c]) != NULL) {
			p->lfree[c] = s->next;
			p->lcached -= pool_loose_cost(p, s);
			break;
		}
	}
	lock_drop(&p->lock, LOCK_POOL);
	if (s != NULL)
		seg_release_mem(p, s);
	return s != NULL;
}

/* Makes sure the released list has a slot for one more segment beyond
 * those being given back; pool lock held.  False if it cannot grow. */
static bool
released_room(struct pool *p)
{
	struct seg **r;
	size_t cap;

	if (p->nreleased + p->nreleasing < p->released_cap)
		return true;
	cap = p->released_cap ? 2 * p->released_cap : 16;
	if ((r = realloc(p->released, cap * sizeof(*r))) == NULL)
		return false;
	p->released = r;
	p->released_cap = cap;
	return true;
}

/* Gives one kept large block or free small segment back to the system: a
 * small segment's pages only, as it stays mapped. */
bool
pool_trim(struct pool *p)
{
	struct seg *s;

	if (pool_trim_loose(p))
		return true;
	lock_take(&p->lock, LOCK_POOL);
	if ((s = p->free) != NULL && released_room(p)) {
		p->free = s->next;
		p->nfree--;
		p->nsegs--;
		p->nreleasing++;
		atomic_store_explicit(&p->nsegs_pub, p->nsegs,
		    memory_order_relaxed);
	} else {
		s = NULL;
	}
	lock_drop(&p->lock, LOCK_POOL);
	if (s == NULL)
		return false;
	/* Its pages go back; the mapping stays (see released). */
	madvise(s, p->seg_size, MADV_DONTNEED);
	lock_take(&p->lock, LOCK_POOL);
	p->nreleasing--;
	p->released[p->nreleased++] = s;
	lock_drop(&p->lock, LOCK_POOL);
	mem_uncharge(p, p->seg_size);
	return true;
}

/* True if a loose item of this size can fit within the limit at all. */
bool
pool_loose_fits(const struct pool *p, size_t nkey, size_t nbytes)
{
	return loose_cost_bound(p, SEG_HDR + LOOSE_HDR + nkey +
	    nbytes) <= p->limit;
}

/* Seconds since the FIFO's oldest segment began taking items. */
uint32_t
pool_oldest_age(struct pool *p, uint32_t now)
{
	uint32_t age = 0;

	lock_take(&p->lock, LOCK_POOL);
	if (p->head != NULL && now > p->head->born)
		age = now - p->head->born;
	lock_drop(&p->lock, LOCK_POOL);
	return age;
}

/* Small segments held, and of those free. */
void
pool_counts(struct pool *p, uint64_t *nsegs, uint64_t *nfree)
{
	lock_take(&p->lock, LOCK_POOL);
	*nsegs = p->nsegs;
	*nfree = p->nfree;
	lock_drop(&p->lock, LOCK_POOL);
}

/* True if a segment is free or can be allocated within the limit. */
bool
pool_has_room(struct pool *p)
{
	bool room;

	lock_take(&p->lock, LOCK_POOL);
	room = room_locked(p);
	lock_drop(&p->lock, LOCK_POOL);
	return room;
}

/* ---- scanning ------------------------------------------------------ */

/* True if a segment is due for a scan: its min_exp passed, or (compact)
 * it is under COMPACT_LIVE_PCT live, or (all) it holds anything. */
static bool
scan_due(struct seg *s, uint32_t upto, bool all, bool compact)
{
	uint32_t e = atomic_load_explicit(&s->min_exp, memory_order_relaxed);
	uint64_t live = atomic_load_explicit(&s->live, memory_order_relaxed);

	if (all)
		return s->used > 0;
	return (e != 0 && e <= upto) || (compact && s->used > 0 &&
	    live * 100 < (uint64_t)s->cap * COMPACT_LIVE_PCT);
}

/*
 * Scans one sealed segment, pool lock held (dropped meanwhile): out of
 * the heap, pinned, min_exp reset; fn; then back into the heap if it is
 * still sealed with a min_exp.  True if it is still in the FIFO, so a
 * walk may go on from its successor.
 */
static bool
scan_one(struct pool *p, struct seg *s,
    void (*fn)(struct seg *s, uint32_t used, void *ctx), void *ctx)
{
	struct seg *release;
	uint32_t e;
	bool sealed;

	if (s->heap_idx < HEAP_SCAN)
		heap_del(p, s);
	s->heap_idx = HEAP_SCAN;
	pool_pin(s);
	atomic_store_explicit(&s->min_exp, 0, memory_order_relaxed);
	lock_drop(&p->lock, LOCK_POOL);
	/* A sealed segment's `used` is fixed. */
	fn(s, s->used, ctx);
	lock_take(&p->lock, LOCK_POOL);
	s->heap_idx = HEAP_NONE;
	sealed = s->state == SEG_SEALED;
	e = atomic_load_explicit(&s->min_exp, memory_order_relaxed);
	if (sealed && e != 0)
		heap_add(p, s, e);
	release = unpin_locked(p, s);
	if (release != NULL) {
		lock_drop(&p->lock, LOCK_POOL);
		loose_let_go(p, release);
		lock_take(&p->lock, LOCK_POOL);
		room_signal_locked(p);
	}
	return sealed;
}

/* Rebuilds a lost heap from the FIFO if it can have room for all of it
 * now; pool lock held. */
static void
heap_rebuild(struct pool *p)
{
	struct heap_ent *h;
	struct seg *s;
	uint32_t n = 0, i, e;

	for (s = p->head; s != NULL; s = s->next)
		n++;
	if (n > p->heap_cap) {
		if ((h = realloc(p->heap, n * sizeof(*h))) == NULL)
			return;
		p->heap = h;
		p->heap_cap = n;
	}
	for (i = 0; i < p->heap_n; i++)
		p->heap[i].s->heap_idx = HEAP_NONE;
	p->heap_n = 0;
	p->heap_lost = false;
	for (s = p->head; s != NULL; s = s->next) {
		e = atomic_load_explicit(&s->min_exp, memory_order_relaxed);
		if (e != 0 && s->heap_idx == HEAP_NONE)
			heap_add(p, s, e);
	}
}

/* Calls fn for each due sealed or active segment, pinned meanwhile. */
size_t
pool_scan(struct pool *p, uint32_t upto, bool all,
    void (*fn)(struct seg *s, uint32_t used, void *ctx), void *ctx,
    uint64_t *visited, bool *busy)
{
	struct seg *s, *due[NTTL];
	uint32_t gen, used[NTTL];
	size_t calls = 0;
	unsigned b, nd, k;
	bool walk, room, missed = false;
	int a;

	*busy = false;
	lock_take(&p->lock, LOCK_POOL);
	gen = ++p->scan_gen;
	/* The heap: just the segments due, earliest first.  One seen in this
	 * pass already waits for the next (a touch into the past may make it
	 * due again at once). */
	while (p->heap_n > 0 && p->heap[0].key <= upto &&
	    p->heap[0].s->scan_gen != gen) {
		s = p->heap[0].s;
		s->scan_gen = gen;
		(*visited)++;
		scan_one(p, s, fn, ctx);
		calls++;
	}
	if (p->heap_lost)
		heap_rebuild(p);
	/* The FIFO, when a flush came due, a segment was flagged for
	 * compaction, or the heap could not be kept (that is every pass
	 * until it is rebuilt): after each call, go on from the segment's
	 * successor if it is still in the FIFO, else from the head, skipping
	 * the segments this pass has seen. */
	walk = all || p->heap_lost || atomic_exchange_explicit(
	    &p->compact_due, false, memory_order_relaxed);
	for (s = walk ? p->head : NULL;;) {
		/* Compaction needs a segment to move live items to. */
		room = room_locked(p);
		/* One another pass is scanning (HEAP_SCAN) is skipped. */
		for (; s != NULL && (s->scan_gen == gen ||
		    s->heap_idx == HEAP_SCAN ||
		    !scan_due(s, upto, all, room && !s->loose)); s = s->next) {
			(*visited)++;
			*busy |= s->heap_idx == HEAP_SCAN;
			missed |= !room && !s->loose &&
			    scan_due(s, upto, false, true);
		}
		if (s == NULL)
			break;
		(*visited)++;
		s->scan_gen = gen;
		s = scan_one(p, s, fn, ctx) ? s->next : p->head;
		calls++;
	}
	/* Candidates left for want of room: look again next pass. */
	if (missed)
		atomic_store_explicit(&p->compact_due, true,
		    memory_order_relaxed);
	lock_drop(&p->lock, LOCK_POOL);
	/* The arenas' active segments: not in the heap, looked at each
	 * pass (NARENAS times the TTL buckets at most). */
	for (a = 0; a < NARENAS; a++) {
		nd = 0;
		lock_take(&p->arena[a].lock, LOCK_ARENA);
		for (b = 0; b < p->nttl; b++) {
			if ((s = p->arena[a].active[b]) == NULL)
				continue;
			(*visited)++;
			if (!scan_due(s, upto, all, false))
				continue;
			pool_pin(s);
			atomic_store_explicit(&s->min_exp, 0,
			    memory_order_relaxed);
			due[nd] = s;
			used[nd++] = s->used;
		}
		lock_drop(&p->arena[a].lock, LOCK_ARENA);
		for (k = 0; k < nd; k++) {
			fn(due[k], used[k], ctx);
			pool_unpin(p, due[k]);
			calls++;
		}
	}
	return calls;
}
