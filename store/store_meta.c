/*
 * store_meta.c -- the meta commands' store operations: mg (store_mget,
 * also me's lookup with no_bump), md (store_mdelete) and ma
 * (store_marith); ms is store_commit_meta in store_cmd.c, on the commit
 * path it shares.
 *
 * Data structure: no state of its own.  The per-item meta state is in the
 * item header (store_internal.h): the STALE and WIN bits of the ref word,
 * FETCHED, and the access time in the top bits of h_link.
 *
 * Locking: each operation decides and acts in one hold of its key's shard
 * lock (one per try when it has to make room), which guards the items'
 * flag bits, exptime and access time: of many concurrent callers exactly
 * one sees the win bit clear and sets it.  The lock order is store.h's.
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Fills info with a linked item's state at now (shard lock held). */
static void
meta_info_fill(const store_t *st, const item_t *it, uint32_t now,
    struct store_meta_info *info)
{
	uint32_t exp = item_exptime(it);

	memset(info, 0, sizeof(*info));
	info->ttl = exp == 0 ? -1 : (int64_t)exp - now;
	info->idle = item_idle(it, now);
	info->fetched = item_has_bit(it, ITEM_FETCHED);
	info->stale = item_has_bit(it, ITEM_STALE);
	info->total = item_cost(st, it);
}

/* True if an E value is one the store can keep at all. */
static bool
new_cas_valid(bool has, uint64_t cas)
{
	return !has || (cas != 0 && cas <= STORE_CAS_MAX);
}

/* ---- mg ------------------------------------------------------------ */

/* Decides the recache token for a live item, as it is before any touch:
 * the first caller to find it stale, or near its end under recache, wins
 * (true: the caller sets ITEM_WIN on the item linked then); later ones
 * see won_before. */
static bool
mget_win(const item_t *it, const struct store_mget_opts *o, uint32_t now,
    struct store_meta_info *info)
{
	uint32_t exp = item_exptime(it);

	if (item_has_bit(it, ITEM_WIN)) {
		info->won_before = true;
		return false;
	}
	if (item_has_bit(it, ITEM_STALE) || (o->recache && exp != 0 &&
	    (int64_t)exp - now < o->recache_ttl)) {
		info->won = true;
		return true;
	}
	return false;
}

/* mg on a live item: info and the token as it was, the caller's
 * reference, the touch, the hit.  False, with nothing changed but the
 * access time, if the touch found no room for a copy (item_retime). */
static bool
mget_hit(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    const struct store_mget_opts *o, uint32_t exp, uint32_t now, bool force,
    struct store_meta_info *info)
{
	item_t *lk = it;
	bool win;

	meta_info_fill(st, it, now, info);
	win = !o->peek && mget_win(it, o, now, info);
	item_ref(it);	/* first: a touch into the past unlinks it */
	if (o->touch) {
		item_set_atime(it, now);
		if ((lk = item_retime(st, sh, it, hv, exp, now, force)) ==
		    NULL) {
			store_release(st, it);
			return false;
		}
	}
	if (win)
		item_set_bit(lk, ITEM_WIN);
	if (!o->no_bump) {
		item_hit(lk);
		item_mark(lk, ITEM_FETCHED);
		item_set_atime(lk, now);
	}
	return true;
}

/* mg N on a miss: links an empty item that the caller wins; NULL with
 * *rc set when there is no room or E is refused. */
static item_t *
mget_vivify(store_t *st, struct shard *sh, const char *key, size_t nkey,
    uint64_t hv, const struct store_mget_opts *o, uint32_t exp,
    uint32_t now, store_status_t *rc)
{
	item_t *it;

	if (o->has_new_cas && !new_cas_ok(sh, o->new_cas)) {
		*rc = STORE_NOT_STORED;
		return NULL;
	}
	if ((it = item_new(st, key, nkey, 0, exp, 0)) == NULL) {
		*rc = STORE_NO_MEMORY;
		return NULL;
	}
	/* As in memcached, the placeholder counts as fetched already. */
	item_set_bit(it, ITEM_WIN | ITEM_FETCHED);
	item_ref(it);	/* the caller's; the one item_new gave is linked */
	item_replace_cas(st, sh, NULL, it, hv, now,
	    o->has_new_cas ? o->new_cas : 0, NULL);
	*rc = STORE_OK;
	return it;
}

/* mg: looks a key up, hands out the recache token, vivifies a miss. */
store_status_t
store_mget(store_t *st, const char *key, size_t nkey,
    const struct store_mget_opts *o, item_t **out,
    struct store_meta_info *info)
{
	uint32_t exp = o->touch ? store_exptime(st, o->ttl) : 0;
	uint32_t viv = o->vivify ? store_exptime(st, o->vivify_ttl) : 0;
	uint64_t hv = key_hash(st, key, nkey);
	unsigned tries = 0;
	bool force = false;
	store_status_t rc;
	struct shard *sh;
	uint32_t now;
	item_t *it;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	if (nkey > STORE_KEY_MAX)
		return STORE_NOT_FOUND;
	if (o->vivify && !new_cas_valid(o->has_new_cas, o->new_cas))
		return STORE_NOT_STORED;
	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		shard_admit_cas(st, sh, o->has_new_cas, o->new_cas);
		it = lookup_live(st, sh, hv, key, nkey, now);
		rc = STORE_OK;
		if (it != NULL) {
			if (!mget_hit(st, sh, it, hv, o, exp, now, force,
			    info)) {
				rc = STORE_NO_MEMORY;
				it = NULL;
			}
		} else if (!o->vivify) {
			rc = STORE_NOT_FOUND;
		} else if ((it = mget_vivify(st, sh, key, nkey, hv, o, viv,
		    now, &rc)) != NULL) {
			info->ttl = viv == 0 ? -1 : (int64_t)viv - now;
			info->total = item_cost(st, it);
			info->won = true;
		}
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY && retry_or_force(st, &tries,
	    ITEM_SIZE_UP(nkey, 0), &force));
	*out = it;
	return rc;
}

/* ---- md ------------------------------------------------------------ */

/* md x: replaces the item by an empty value with its flags and exptime. */
static store_status_t
mdelete_value(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    uint64_t new_cas, uint32_t now)
{
	item_t *nit = item_new(st, item_key(it), item_nkey(it),
	    item_flags(it), item_exptime(it), 0);

	if (nit == NULL)
		return STORE_NO_MEMORY;
	item_replace_cas(st, sh, it, nit, hv, now, new_cas, NULL);
	return STORE_DELETED;
}

/* md I: marks the item stale with a new CAS (and exptime), keeps it; the
 * win bit goes so the next mg wins the recache.  STORE_NO_MEMORY, with
 * nothing changed, if the exptime found no room for a copy
 * (item_retime); a time already past unlinks it last. */
static store_status_t
mdelete_stale(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    const struct store_mdelete_opts *o, uint32_t exp, uint32_t now,
    bool force)
{
	bool gone = o->touch && time_passed(exp, now);

	if (o->touch && !gone &&
	    (it = item_retime(st, sh, it, hv, exp, now, force)) == NULL)
		return STORE_NO_MEMORY;
	item_set_bit(it, ITEM_STALE);
	item_clear_bit(it, ITEM_WIN);
	if (o->has_new_cas)
		item_set_cas_to(sh, it, o->new_cas);
	else
		item_set_cas(sh, it);
	if (gone)
		item_retime(st, sh, it, hv, exp, now, force);
	return STORE_DELETED;
}

/* md: deletes, invalidates (I) or empties (x) a key. */
store_status_t
store_mdelete(store_t *st, const char *key, size_t nkey,
    const struct store_mdelete_opts *o)
{
	uint32_t exp = o->touch ? store_exptime(st, o->ttl) : 0;
	uint64_t hv = key_hash(st, key, nkey);
	uint64_t new_cas = o->has_new_cas ? o->new_cas : 0;
	unsigned tries = 0;
	bool force = false;
	store_status_t rc;
	struct shard *sh;
	uint32_t now;
	item_t *it;

	if (nkey > STORE_KEY_MAX)
		return STORE_NOT_FOUND;
	if (!new_cas_valid(o->has_new_cas, o->new_cas))
		return STORE_NOT_STORED;
	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		shard_admit_cas(st, sh, o->has_new_cas, o->new_cas);
		it = lookup_live(st, sh, hv, key, nkey, now);
		rc = STORE_DELETED;
		if (it == NULL)
			rc = STORE_NOT_FOUND;
		else if (o->has_cas && o->cas != item_cas(it))
			rc = STORE_EXISTS;
		else if (new_cas != 0 && (o->invalidate || o->remove_value) &&
		    !new_cas_ok(sh, new_cas))
			rc = STORE_NOT_STORED;
		else if (o->invalidate)
			rc = mdelete_stale(st, sh, it, hv, o, exp, now,
			    force);
		else if (o->remove_value)
			rc = mdelete_value(st, sh, it, hv, new_cas, now);
		else
			item_unlink(st, sh, it, hv, UNLINK_DELETE);
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY && retry_or_force(st, &tries,
	    ITEM_SIZE_UP(nkey, 0), &force));
	return rc;
}

/* ---- ma ------------------------------------------------------------ */

/* ma N on a miss: builds the item holding the initial value. */
static store_status_t
marith_vivify(store_t *st, const char *key, size_t nkey,
    const struct store_marith_opts *o, uint32_t exp, item_t **out)
{
	char buf[24];
	int len = snprintf(buf, sizeof(buf), "%" PRIu64, o->initial);

	*out = item_new(st, key, nkey, 0, exp, (size_t)len);
	if (*out == NULL)
		return STORE_NO_MEMORY;
	memcpy(item_value_mut(*out), buf, (size_t)len);
	return STORE_OK;
}

/* Decides an ma against the live item (or its absence) and builds the
 * new item; *result gets the value it holds. */
static store_status_t
marith_build(store_t *st, const struct shard *sh, const item_t *old,
    const char *key, size_t nkey, const struct store_marith_opts *o,
    uint32_t exp, uint32_t viv, uint64_t *result, item_t **nit)
{
	if (old == NULL && !o->vivify)
		return STORE_NOT_FOUND;
	if (old != NULL && o->has_cas && o->cas != item_cas(old))
		return STORE_EXISTS;
	if (o->has_new_cas && !new_cas_ok(sh, o->new_cas))
		return STORE_NOT_STORED;
	if (old != NULL)
		return incr_build(st, old, o->touch ? exp : item_exptime(old),
		    o->incr, o->delta, result, nit);
	*result = o->initial;
	return marith_vivify(st, key, nkey, o, o->touch ? exp : viv, nit);
}

/* ma: incr/decr with the meta options, in one lock hold per try. */
store_status_t
store_marith(store_t *st, const char *key, size_t nkey,
    const struct store_marith_opts *o, uint64_t *result, item_t **out,
    struct store_meta_info *info)
{
	uint32_t exp = o->touch ? store_exptime(st, o->ttl) : 0;
	uint32_t viv = o->vivify ? store_exptime(st, o->vivify_ttl) : 0;
	uint64_t hv = key_hash(st, key, nkey), v = 0;
	unsigned tries = 0;
	store_status_t rc;
	struct shard *sh;
	item_t *old, *nit = NULL;
	uint32_t now;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	if (nkey > STORE_KEY_MAX)
		return STORE_NOT_FOUND;
	if (!new_cas_valid(o->has_new_cas, o->new_cas))
		return STORE_NOT_STORED;
	do {
		now = store_now(st);
		sh = shard_enter(st, hv, now);
		shard_admit_cas(st, sh, o->has_new_cas, o->new_cas);
		old = lookup_live(st, sh, hv, key, nkey, now);
		rc = marith_build(st, sh, old, key, nkey, o, exp, viv, &v,
		    &nit);
		if (rc == STORE_OK) {
			if (old != NULL)
				meta_info_fill(st, old, now, info);
			info->won = old == NULL;
			info->ttl = item_exptime(nit) == 0 ? -1 :
			    (int64_t)item_exptime(nit) - now;
			info->total = item_cost(st, nit);
			item_ref(nit);	/* the caller's */
			item_replace_cas(st, sh, old, nit, hv, now,
			    o->has_new_cas ? o->new_cas : 0, NULL);
		}
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY &&
	    retry_with_room(st, &tries, false, ITEM_SIZE_UP(nkey, 20)));
	if (rc == STORE_OK) {
		*result = v;
		*out = nit;
	}
	return rc;
}
