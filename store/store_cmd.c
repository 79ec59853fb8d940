/*
 * store_cmd.c -- the store's commands: reserve and commit (set, add,
 * replace, append, prepend, cas, and ms's store_commit_meta, which shares
 * the commit path), get, gat, touch, delete, incr/decr and flush_all.
 * The other meta commands are in store_meta.c.
 *
 * Reservations: store_reserve hands out a loose item, so a client that
 * sends its value slowly pins only that much memory; store_commit copies
 * a small value into a segment under the shard lock and links the copy.
 * store_reserve_direct, for a set whose value the caller has whole at
 * hand, carves a small item straight from the calling thread's segment:
 * the value is copied once, into its final place, and the commit links
 * it there (no malloc, no pool lock; a copy only if eviction emptied
 * the segment meanwhile, which it marks under the shard lock).
 * Appends and incr build the new item under the same lock hold.  Memory
 * is never taken while holding a shard lock if that would need eviction:
 * the operation drops the lock, makes room (store_evict.c), and starts
 * over.  Under no_evict a set with no room may write a value of the same
 * length over the old one in place; a set refused for want of memory
 * unlinks the old value, as memcached does.
 *
 * Locking: each command holds the lock of its key's shard, one hold per
 * try; store_flush holds flush_lock and visits the shards one at a time.
 * The order is store.h's.
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- allocation ---------------------------------------------------- */

/* True if an item of this size is carved from a segment. */
bool
item_carved(const store_t *st, size_t nkey, size_t nbytes)
{
	return ITEM_SIZE_UP(nkey, nbytes) <= st->pool.small_max;
}

/* Allocates an unlinked item to be linked right away, without evicting:
 * carved if small, else loose.  NULL when there is no room. */
item_t *
item_new(store_t *st, const char *key, size_t nkey, uint32_t flags,
    uint32_t exptime, size_t nbytes)
{
	if (item_carved(st, nkey, nbytes))
		return pool_carve(&st->pool, key, nkey, flags, exptime,
		    nbytes, false);
	return pool_loose(&st->pool, key, nkey, flags, exptime, nbytes);
}

/* Reserves a loose item for the caller to fill, evicting when the limit
 * is in the way. */
store_status_t
store_reserve(store_t *st, const char *key, size_t nkey, uint32_t flags,
    int64_t exptime, size_t nbytes, item_t **out)
{
	uint32_t exp = store_exptime(st, exptime);
	unsigned tries = 0;

	*out = NULL;
	if (nkey > STORE_KEY_MAX || nbytes > st->item_size_max)
		return STORE_TOO_LARGE;
	if (!pool_loose_fits(&st->pool, nkey, nbytes))
		return STORE_NO_MEMORY;
	while ((*out = pool_loose(&st->pool, key, nkey, flags, exp,
	    nbytes)) == NULL)
		if (!retry_with_room(st, &tries, true,
		    ITEM_SIZE_UP(nkey, nbytes)))
			return STORE_NO_MEMORY;
	return STORE_OK;
}

/*
 * Reserves a small item in the calling thread's segment for a value the
 * caller has whole and commits at once; other sizes take store_reserve's
 * loose path.  Makes room (evicts, or under no_evict compacts: the items
 * moved land in this thread's segment, so the carve that follows fits
 * beside them) when the limit is in the way; under no_evict a store that
 * still finds none takes the loose path too, which keeps the in-place
 * overwrite of a full cache.
 */
store_status_t
store_reserve_direct(store_t *st, const char *key, size_t nkey,
    uint32_t flags, int64_t exptime, size_t nbytes, item_t **out)
{
	unsigned tries = 0;
	uint32_t exp;

	if (nkey > STORE_KEY_MAX || nbytes > st->item_size_max ||
	    !item_carved(st, nkey, nbytes))
		return store_reserve(st, key, nkey, flags, exptime, nbytes,
		    out);
	exp = store_exptime(st, exptime);
	while ((*out = pool_carve(&st->pool, key, nkey, flags, exp, nbytes,
	    false)) == NULL)
		if (!retry_with_room(st, &tries, false,
		    ITEM_SIZE_UP(nkey, nbytes)))
			return st->no_evict ? store_reserve(st, key, nkey,
			    flags, exptime, nbytes, out) : STORE_NO_MEMORY;
	return STORE_OK;
}

/* ---- storage commands ---------------------------------------------- */

/*
 * Picks what to link for a filled reservation, under its key's shard
 * lock: a carved one where it is, unless its segment is being emptied
 * (evac_item sets EVAC under this lock, and the segment goes once the
 * reservation is released), and a loose one of a large value as it is;
 * else a copy in the calling thread's segment.  NULL when there is no
 * room for the copy.
 */
static item_t *
commit_place(store_t *st, item_t *it)
{
	if (item_has_bit(it, ITEM_LOOSE)) {
		if (!item_carved(st, item_nkey(it), it->nbytes))
			return it;
	} else if (!item_has_bit(it, ITEM_EVAC)) {
		/* An expiry scan of the segment since the carve may have
		 * dropped the note of its exptime: it skips unlinked items. */
		pool_note_exptime(&st->pool, pool_seg_of(&st->pool, it),
		    item_exptime(it));
		return it;
	}
	return item_copy(st, it, item_exptime(it), false);
}

/* Decides a set/add/replace/cas against the current live item. */
static store_status_t
commit_check(store_mode_t mode, const item_t *old, uint64_t cas)
{
	switch (mode) {
	case STORE_ADD:
		return old == NULL ? STORE_STORED : STORE_NOT_STORED;
	case STORE_REPLACE:
		return old != NULL ? STORE_STORED : STORE_NOT_STORED;
	case STORE_CAS:
		if (old == NULL)
			return STORE_NOT_FOUND;
		return item_cas(old) == cas ? STORE_STORED : STORE_EXISTS;
	default:
		return STORE_STORED;
	}
}

/* Builds old's value with add's appended or prepended, under the lock;
 * STORE_NO_MEMORY when there is no room without evicting. */
static store_status_t
concat_build(store_t *st, const item_t *old, const item_t *add,
    bool prepend, item_t **out)
{
	size_t n = (size_t)old->nbytes + add->nbytes;
	const item_t *first = prepend ? add : old;
	const item_t *second = prepend ? old : add;
	char *v;

	if (n > st->item_size_max)
		return STORE_TOO_LARGE;
	*out = item_new(st, item_key(old), item_nkey(old), item_flags(old),
	    item_exptime(old), n);
	if (*out == NULL)
		return STORE_NO_MEMORY;
	v = item_value_mut(*out);
	memcpy(v, item_value(first), first->nbytes);
	memcpy(v + first->nbytes, item_value(second), second->nbytes);
	return STORE_OK;
}

/* Links a filled reservation as a new item (copied into a segment if
 * small); sets *it to NULL if the table took the caller's reference. */
static store_status_t
commit_fresh(store_t *st, struct shard *sh, item_t **it, uint64_t hv,
    uint32_t now, uint64_t new_cas, uint64_t *cas_out)
{
	item_t *fin = commit_place(st, *it);

	if (fin == NULL)
		return STORE_NO_MEMORY;
	if (fin == *it)
		*it = NULL;
	item_replace_cas(st, sh, NULL, fin, hv, now, new_cas, cas_out);
	return STORE_STORED;
}

/* Decides an append/prepend against the live item (o: the meta options,
 * NULL for the classic commands) and builds the combined item. */
static store_status_t
concat_decide(store_t *st, const struct shard *sh, const item_t *old,
    item_t *add, bool prepend, const struct store_mset_opts *o,
    item_t **nit)
{
	if (old == NULL)
		return STORE_NOT_STORED;
	/* As memcached: C0 compares nothing. */
	if (o != NULL && o->has_cas && o->cas != 0 && o->cas != item_cas(old))
		return STORE_EXISTS;
	if (o != NULL && o->has_new_cas && !new_cas_ok(sh, o->new_cas))
		return STORE_NOT_STORED;
	return concat_build(st, old, add, prepend, nit);
}

/* Gives an append's data the exptime its item takes if it is stored
 * on a miss (N): in place, or in a copy if it has no exptime field (the
 * original released).  Else STORE_NO_MEMORY, *add released. */
static store_status_t
concat_vivify_exptime(store_t *st, item_t **add, uint32_t exptime)
{
	unsigned tries = 0;
	item_t *c;

	if (item_exptime_fits(*add, exptime)) {
		item_set_exptime(*add, exptime);
		return STORE_OK;
	}
	while ((c = item_copy(st, *add, exptime, false)) == NULL)
		if (!retry_with_room(st, &tries, false,
		    ITEM_SIZE_UP(item_nkey(*add), (*add)->nbytes))) {
			store_release(st, *add);
			return STORE_NO_MEMORY;
		}
	store_release(st, *add);
	*add = c;
	return STORE_OK;
}

/* append/prepend: the combined item is built and linked in one hold of
 * the key's shard lock; without room, the lock goes, room is made, and
 * the command starts over.  Meta options (o, may be NULL): C compares,
 * E sets the CAS, N stores the data as a new item on a miss. */
static store_status_t
commit_concat(store_t *st, item_t *add, bool prepend,
    const struct store_mset_opts *o, uint64_t *cas_out)
{
	uint64_t hv = item_hash(st, add);
	uint64_t new_cas = o != NULL && o->has_new_cas ? o->new_cas : 0;
	unsigned tries = 0;
	store_status_t rc;
	struct shard *sh;
	item_t *old, *nit;
	uint32_t now;
	size_t need;
	bool loose;

	if (o != NULL && o->vivify && (rc = concat_vivify_exptime(st, &add,
	    store_exptime(st, o->vivify_ttl))) != STORE_OK)
		return rc;
	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		if (o != NULL)
			shard_admit_cas(st, sh, o->has_new_cas, o->new_cas);
		old = lookup_live(st, sh, hv, item_key(add), item_nkey(add),
		    now);
		rc = concat_decide(st, sh, old, add, prepend, o, &nit);
		need = (old != NULL ? old->nbytes : 0) + (size_t)add->nbytes;
		loose = !item_carved(st, item_nkey(add), need);
		need = ITEM_SIZE_UP(item_nkey(add), need);
		if (rc == STORE_OK) {
			item_replace_cas(st, sh, old, nit, hv, now, new_cas,
			    cas_out);
			rc = STORE_STORED;
		} else if (old == NULL && o != NULL && o->vivify &&
		    (new_cas == 0 || new_cas_ok(sh, new_cas))) {
			rc = commit_fresh(st, sh, &add, hv, now, new_cas,
			    cas_out);
		}
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY &&
	    retry_with_room(st, &tries, loose, need));
	store_release(st, add);
	return rc;
}

/*
 * Under no_evict with no room for a copy: writes a new value of the same
 * length over old in place, a new CAS and all, if no one else holds old
 * (only the table's reference: a new one needs this shard lock) and the
 * new value is not born expired.  A segment walker reads the key and the
 * length without the lock, and neither changes.  True if done.
 */
static bool
item_overwrite(store_t *st, struct shard *sh, item_t *old,
    const item_t *it, uint32_t now, uint64_t new_cas, uint64_t *cas_out)
{
	uint32_t exp = item_exptime(it), flags = item_flags(it);

	/* Carved with both optional fields (pool.full_hdr). */
	assert(st->pool.full_hdr);
	if (old == NULL || item_has_bit(old, ITEM_LOOSE) ||
	    old->nbytes != it->nbytes || time_passed(exp, now) ||
	    (atomic_load_explicit(&old->ref, memory_order_acquire) &
	    ITEM_REF_MASK) != 1)
		return false;
	memcpy(item_value_mut(old), item_value(it), it->nbytes);
	item_set_exptime(old, exp);
	memcpy(old->data + sizeof(exp), &flags, sizeof(flags));
	item_clear_bit(old, ITEM_FETCHED | ITEM_STALE | ITEM_WIN);
	if (item_has_bit(it, ITEM_STALE))	/* ms I, older CAS */
		item_set_bit(old, ITEM_STALE);
	item_set_atime(old, now);
	if (new_cas != 0)
		item_set_cas_to(sh, old, new_cas);
	else
		item_set_cas(sh, old);
	pool_note_exptime(&st->pool, pool_seg_of(&st->pool, old), exp);
	sh->stats.total_items++;
	if (cas_out != NULL)
		*cas_out = item_cas(old);
	return true;
}

/* A set refused for want of memory removes the key's old value, as
 * memcached's does: no client may read a value it failed to replace. */
static void
commit_refused(store_t *st, const item_t *it, uint64_t hv)
{
	uint32_t now = store_now(st);
	struct shard *sh = shard_enter(st, hv, now);
	item_t *old = lookup_live(st, sh, hv, item_key(it), item_nkey(it),
	    now);

	if (old != NULL)
		item_unlink(st, sh, old, hv, UNLINK_DELETE);
	shard_unlock(sh);
}

/* Decides a set/add/replace/cas, the meta options (o, may be NULL) and
 * all; *stale: the value is stored but invalidated (ms I, older CAS). */
static store_status_t
commit_decide(const struct shard *sh, store_mode_t mode, const item_t *old,
    uint64_t cas, const struct store_mset_opts *o, bool *stale)
{
	store_status_t rc = commit_check(mode, old, cas);

	*stale = false;
	if (rc == STORE_EXISTS && o != NULL && o->invalidate && cas != 0 &&
	    cas < item_cas(old)) {
		*stale = true;
		rc = STORE_STORED;
	}
	if (rc == STORE_STORED && o != NULL && o->has_new_cas &&
	    !new_cas_ok(sh, o->new_cas))
		rc = STORE_NOT_STORED;
	return rc;
}

/* Links a reserved item according to mode; consumes the reference.  A
 * small loose value is copied into a segment; a carved one and a large
 * one are linked as they are (commit_place).  o: the meta options, NULL
 * for the classic commands. */
static store_status_t
commit_do(store_t *st, item_t *it, store_mode_t mode, uint64_t cas,
    const struct store_mset_opts *o, uint64_t *cas_out)
{
	bool stale;
	uint64_t new_cas = o != NULL && o->has_new_cas ? o->new_cas : 0;
	uint64_t hv = item_hash(st, it);
	unsigned tries = 0;
	store_status_t rc;
	struct shard *sh;
	item_t *old, *fin;
	uint32_t now;

	assert(!item_has_bit(it, ITEM_LINKED));
	if (mode == STORE_APPEND || mode == STORE_PREPEND)
		return commit_concat(st, it, mode == STORE_PREPEND, o,
		    cas_out);
	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		if (o != NULL)
			shard_admit_cas(st, sh, o->has_new_cas, o->new_cas);
		old = lookup_live(st, sh, hv, item_key(it), item_nkey(it),
		    now);
		rc = commit_decide(sh, mode, old, cas, o, &stale);
		if (rc == STORE_STORED) {
			if (stale)
				item_set_bit(it, ITEM_STALE);
			fin = commit_place(st, it);
			if (fin == NULL && !(st->no_evict &&
			    item_overwrite(st, sh, old, it, now, new_cas,
			    cas_out)))
				rc = STORE_NO_MEMORY;
			else if (fin == it)
				it = NULL;	/* the table's reference now */
			if (fin != NULL) {
				if (stale)
					item_set_bit(fin, ITEM_STALE);
				item_replace_cas(st, sh, old, fin, hv, now,
				    new_cas, cas_out);
			}
		} else if (old != NULL && mode == STORE_ADD) {
			item_hit(old);	/* as memcached's add */
		}
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY && retry_with_room(st, &tries, false,
	    ITEM_SIZE_UP(item_nkey(it), it->nbytes)));
	if (rc == STORE_NO_MEMORY && mode == STORE_SET)
		commit_refused(st, it, hv);
	store_release(st, it);
	return rc;
}

/* Links a reserved item according to mode; consumes the reference. */
store_status_t
store_commit(store_t *st, item_t *it, store_mode_t mode, uint64_t cas,
    uint64_t *cas_out)
{
	return commit_do(st, it, mode, cas, NULL, cas_out);
}

/* ms: store_commit with the meta options.  C upgrades set and replace to
 * cas (as memcached's mset; add ignores it, append/prepend compare). */
store_status_t
store_commit_meta(store_t *st, item_t *it, store_mode_t mode,
    const struct store_mset_opts *o, uint64_t *cas_out)
{
	if (o->has_new_cas && (o->new_cas == 0 ||
	    o->new_cas > STORE_CAS_MAX)) {
		store_release(st, it);
		return STORE_NOT_STORED;
	}
	if (o->has_cas && (mode == STORE_SET || mode == STORE_REPLACE))
		mode = STORE_CAS;
	return commit_do(st, it, mode, o->cas, o, cas_out);
}

/* ---- retrieval and per-key commands -------------------------------- */

/* Gets ht_peek answered, in this thread (a shared counter would be the
 * shared write the lock-free get is there to avoid). */
static _Thread_local uint64_t peek_hits;

/* The calling thread's gets answered without the shard lock. */
uint64_t
store_debug_peek_hits(void)
{
	return peek_hits;
}

/* What item_access does with a live item found. */
struct access {
	bool		 retime;	/* sets exptime */
	uint32_t	 exptime;	/* absolute */
	item_t		**out;		/* hands out a reference */
	store_visit_fn	 fn;		/* or shows it under the lock */
	void		*ctx;
};

/* Finds a live item, counts a hit on it, and does what a says; false if
 * absent. */
static bool
item_access(store_t *st, const char *key, size_t nkey, uint64_t hv,
    const struct access *a)
{
	uint32_t now = store_now(st);
	unsigned tries = 0;
	bool force = false;
	struct shard *sh;
	item_t *it, *lk = NULL;

	/* A retime into the past may free the item before fn sees it. */
	assert(!(a->retime && a->fn != NULL));
	if (a->out != NULL)
		*a->out = NULL;
	if (nkey > STORE_KEY_MAX)
		return false;
	if (a->fn != NULL && a->out == NULL) {
		/* A visited get first tries without the lock (ht_peek). */
		uint64_t buf[PEEK_MAX / 8];
		struct peek_at at;

		sh = &st->shards[shard_index(st, hv)];
		switch (ht_peek(st, sh, hv, key, nkey, now, buf, sizeof(buf),
		    &at)) {
		case PEEK_MARK:
			if (!peek_mark(st, sh, &at, (item_t *)(void *)buf,
			    now))
				break;
			/* FALLTHROUGH */
		case PEEK_HIT:
			peek_hits++;
			a->fn(a->ctx, (item_t *)(void *)buf);
			return true;
		case PEEK_MISS:
			return false;
		case PEEK_LOCK:
			break;
		}
	}
	for (;;) {
		sh = shard_enter(st, hv, now);
		if ((it = lookup_live(st, sh, hv, key, nkey, now)) == NULL)
			break;
		/* All before a retime, which may unlink it (and free a
		 * loose one) or move it to a copy (which takes the bits). */
		item_hit(it);
		item_set_atime(it, now);
		if (a->out != NULL || a->fn != NULL)
			item_mark(it, ITEM_FETCHED);
		if (a->out != NULL) {
			item_ref(it);
			*a->out = it;
		}
		lk = it;
		if (a->retime && (lk = item_retime(st, sh, it, hv, a->exptime,
		    now, force)) == NULL) {
			/* No room for a copy with an exptime field. */
			if (a->out != NULL) {
				*a->out = NULL;
				store_release(st, it);
			}
			shard_unlock(sh);
			/* Room made, or force set: the next try evicts
			 * the item if there is still none. */
			(void)retry_or_force(st, &tries, 0, &force);
			now = store_now(st);
			continue;
		}
		if (a->fn != NULL)
			a->fn(a->ctx, lk);
		break;
	}
	shard_unlock(sh);
	return it != NULL;
}

/* Looks up a live item and counts a hit on it; STORE_OK or NOT_FOUND. */
store_status_t
store_get(store_t *st, const char *key, size_t nkey, item_t **out)
{
	struct access a = { .out = out };

	return item_access(st, key, nkey, key_hash(st, key, nkey), &a) ?
	    STORE_OK : STORE_NOT_FOUND;
}

/* Looks up a live item, counts a hit and shows it to fn under the shard
 * lock, without a reference. */
store_status_t
store_get_with(store_t *st, const char *key, size_t nkey, uint64_t hv,
    store_visit_fn fn, void *ctx)
{
	struct access a = { .fn = fn, .ctx = ctx };

	return item_access(st, key, nkey, hv, &a) ? STORE_OK :
	    STORE_NOT_FOUND;
}

/* Like store_get, and also sets a new exptime. */
store_status_t
store_gat(store_t *st, const char *key, size_t nkey, int64_t exptime,
    item_t **out)
{
	struct access a = { .retime = true,
	    .exptime = store_exptime(st, exptime), .out = out };

	return item_access(st, key, nkey, key_hash(st, key, nkey), &a) ?
	    STORE_OK : STORE_NOT_FOUND;
}

/* Sets a new exptime; STORE_TOUCHED or STORE_NOT_FOUND. */
store_status_t
store_touch(store_t *st, const char *key, size_t nkey, int64_t exptime)
{
	struct access a = { .retime = true,
	    .exptime = store_exptime(st, exptime) };

	return item_access(st, key, nkey, key_hash(st, key, nkey), &a) ?
	    STORE_TOUCHED : STORE_NOT_FOUND;
}

/* Returns the hash store_get_with and store_prefetch take. */
uint64_t
store_key_hash(const store_t *st, const char *key, size_t nkey)
{
	return key_hash(st, key, nkey);
}

/* Starts loading a hash's bucket (no lock) or, with item, the first item
 * of its chain (a moment of the shard lock). */
void
store_prefetch(store_t *st, uint64_t hv, bool item)
{
	struct shard *sh = &st->shards[shard_index(st, hv)];

	if (!item) {
		ht_prefetch_bucket(sh, hv);
		return;
	}
	shard_lock(sh);
	ht_prefetch(sh, hv);
	shard_unlock(sh);
}

/* Takes another reference to an item in hand. */
void
store_ref(item_t *it)
{
	item_ref(it);
}

/* Unlinks a key; STORE_DELETED or STORE_NOT_FOUND. */
store_status_t
store_delete(store_t *st, const char *key, size_t nkey)
{
	uint64_t hv = key_hash(st, key, nkey);
	uint32_t now = store_now(st);
	struct shard *sh;
	item_t *it;

	if (nkey > STORE_KEY_MAX)
		return STORE_NOT_FOUND;
	sh = shard_enter(st, hv, now);
	it = lookup_live(st, sh, hv, key, nkey, now);
	if (it != NULL)
		item_unlink(st, sh, it, hv, UNLINK_DELETE);
	shard_unlock(sh);
	return it != NULL ? STORE_DELETED : STORE_NOT_FOUND;
}

/* ---- incr/decr ----------------------------------------------------- */

/* True for the bytes C's isspace() takes in the "C" locale. */
static bool
is_cspace(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * Reads a stored value as a number the way memcached's safe_strtoull
 * does, so incr/decr accept and refuse the same values: leading white
 * space, an optional sign, decimal digits without overflow, then the end
 * of the value, a NUL or white space (anything may follow that).  A minus
 * sign is refused unless the negated number still fits in 63 bits ("-0"
 * is 0), as strtoull's wrap-around makes it there.
 */
static bool
parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t	v = 0, d;
	size_t		i = 0, digits;
	bool		neg = false;

	while (i < n && is_cspace(s[i]))
		i++;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	for (digits = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (i == digits || (i < n && s[i] != '\0' && !is_cspace(s[i])))
		return false;
	if (neg) {
		v = -v;
		if ((int64_t)v < 0)
			return false;
	}
	*out = v;
	return true;
}

/* Applies an incr (wrapping) or decr (stopping at 0). */
static uint64_t
apply_delta(uint64_t v, bool incr, uint64_t delta)
{
	if (incr)
		return v + delta;
	return v > delta ? v - delta : 0;
}

/* Builds the item holding the decimal result of incr/decr on old, under
 * the lock; STORE_NO_MEMORY when there is no room without evicting. */
store_status_t
incr_build(store_t *st, const item_t *old, uint32_t exptime, bool incr,
    uint64_t delta, uint64_t *result, item_t **out)
{
	char buf[24];
	uint64_t v;
	size_t n;
	int len;

	if (!parse_u64(item_value(old), old->nbytes, &v))
		return STORE_NON_NUMERIC;
	*result = apply_delta(v, incr, delta);
	len = snprintf(buf, sizeof(buf), "%" PRIu64, *result);
	/* A shorter result keeps the old length, padded with spaces, as
	 * memcached's in-place update leaves it ("100" decr 95 is "5  "):
	 * clients that read the value back see the same bytes. */
	n = (size_t)len < old->nbytes ? old->nbytes : (size_t)len;
	*out = item_new(st, item_key(old), item_nkey(old), item_flags(old),
	    exptime, n);
	if (*out == NULL)
		return STORE_NO_MEMORY;
	memcpy(item_value_mut(*out), buf, (size_t)len);
	memset(item_value_mut(*out) + len, ' ', n - (size_t)len);
	return STORE_OK;
}

/* Adds or subtracts delta, storing the result as a new item with a new
 * CAS, in one lock hold as append does. */
store_status_t
store_incr(store_t *st, const char *key, size_t nkey, bool incr,
    uint64_t delta, uint64_t *result)
{
	uint64_t hv = key_hash(st, key, nkey), v = 0;
	unsigned tries = 0;
	store_status_t rc;
	struct shard *sh;
	item_t *old, *nit;
	uint32_t now;

	if (nkey > STORE_KEY_MAX)
		return STORE_NOT_FOUND;
	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		old = lookup_live(st, sh, hv, key, nkey, now);
		rc = old == NULL ? STORE_NOT_FOUND :
		    incr_build(st, old, item_exptime(old), incr, delta, &v,
		    &nit);
		if (rc == STORE_OK)
			item_replace(st, sh, old, nit, hv, now, NULL);
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY &&
	    retry_with_room(st, &tries, false, ITEM_SIZE_UP(nkey, 20)));
	if (rc == STORE_OK && result != NULL)
		*result = v;
	return rc;
}

/* ---- flush_all ----------------------------------------------------- */

/* Applies any due flush in every shard, one lock at a time. */
static void
flush_sync_all(store_t *st)
{
	unsigned i;

	for (i = 0; i < st->nshards; i++) {
		shard_lock(&st->shards[i]);
		flush_sync(st, &st->shards[i], store_now(st));
		shard_unlock(&st->shards[i]);
	}
}

/* Invalidates every item stored before now + delay (delay <= 0: now). */
void
store_flush(store_t *st, int64_t delay)
{
	uint64_t w, gen, due;
	uint32_t now;

	lock_take(&st->flush_lock, LOCK_FLUSH);
	/* A flush that came due must take effect everywhere before a new
	 * word can replace it in shards that have not looked yet. */
	flush_sync_all(st);
	now = store_now(st);
	if (delay <= 0)
		due = now;
	else if (delay > STORE_REALTIME_MAXDELTA)
		due = (uint64_t)delay;	/* absolute, like an exptime */
	else
		due = (uint64_t)now + (uint64_t)delay;
	if (due > UINT32_MAX)
		due = UINT32_MAX;
	w = atomic_load_explicit(&st->flush_word, memory_order_relaxed);
	gen = ((w >> 32) + 1) & UINT32_MAX;
	gen = gen == 0 ? 1 : gen;
	atomic_store_explicit(&st->flush_word, gen << 32 | due,
	    memory_order_release);
	/* Due already (now, or an absolute time gone by): apply it now. */
	if (due <= now)
		flush_sync_all(st);
	lock_drop(&st->flush_lock, LOCK_FLUSH);
}
