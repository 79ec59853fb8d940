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
	memset(info, 0, sizeof(*info));
	info->ttl = it->exptime == 0 ? -1 : (int64_t)it->exptime - now;
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

/* Decides the recache token for a live item: the first caller to find it
 * stale, or near its end under recache, wins; later ones see won_before. */
static void
mget_win(item_t *it, const struct store_mget_opts *o, uint32_t now,
    struct store_meta_info *info)
{
	if (item_has_bit(it, ITEM_WIN)) {
		info->won_before = true;
		return;
	}
	if (item_has_bit(it, ITEM_STALE) || (o->recache && it->exptime != 0 &&
	    (int64_t)it->exptime - now < o->recache_ttl)) {
		info->won = true;
		item_set_bit(it, ITEM_WIN);
	}
}

/* mg on a live item: info, the token, the hit, the touch. */
static void
mget_hit(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    const struct store_mget_opts *o, uint32_t exp, uint32_t now,
    struct store_meta_info *info)
{
	meta_info_fill(st, it, now, info);
	if (!o->peek)
		mget_win(it, o, now, info);
	if (!o->no_bump) {
		item_hit(it);
		item_mark(it, ITEM_FETCHED);
		item_set_atime(it, now);
	}
	item_ref(it);
	if (o->touch) {
		item_set_atime(it, now);
		item_retime(st, sh, it, hv, exp, now);
	}
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
			mget_hit(st, sh, it, hv, o, exp, now, info);
		} else if (!o->vivify) {
			rc = STORE_NOT_FOUND;
		} else if ((it = mget_vivify(st, sh, key, nkey, hv, o, viv,
		    now, &rc)) != NULL) {
			info->ttl = viv == 0 ? -1 : (int64_t)viv - now;
			info->total = item_cost(st, it);
			info->won = true;
		}
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY && retry_with_room(st, &tries, false,
	    ITEM_SIZE(nkey, 0)));
	*out = it;
	return rc;
}

/* ---- md ------------------------------------------------------------ */

/* md x: replaces the item by an empty value with its flags and exptime. */
static store_status_t
mdelete_value(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    uint64_t new_cas, uint32_t now)
{
	item_t *nit = item_new(st, item_key(it), item_nkey(it), it->flags,
	    it->exptime, 0);

	if (nit == NULL)
		return STORE_NO_MEMORY;
	item_replace_cas(st, sh, it, nit, hv, now, new_cas, NULL);
	return STORE_DELETED;
}

/* md I: marks the item stale with a new CAS (and exptime), keeps it; the
 * win bit goes so the next mg wins the recache. */
static void
mdelete_stale(store_t *st, struct shard *sh, item_t *it, uint64_t hv,
    const struct store_mdelete_opts *o, uint32_t exp, uint32_t now)
{
	item_set_bit(it, ITEM_STALE);
	item_clear_bit(it, ITEM_WIN);
	if (o->has_new_cas)
		item_set_cas_to(sh, it, o->new_cas);
	else
		item_set_cas(sh, it);
	if (o->touch)
		item_retime(st, sh, it, hv, exp, now);
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
			mdelete_stale(st, sh, it, hv, o, exp, now);
		else if (o->remove_value)
			rc = mdelete_value(st, sh, it, hv, new_cas, now);
		else
			item_unlink(st, sh, it, hv, UNLINK_DELETE);
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY && retry_with_room(st, &tries, false,
	    ITEM_SIZE(nkey, 0)));
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
    uint32_t viv, uint64_t *result, item_t **nit)
{
	if (old == NULL && !o->vivify)
		return STORE_NOT_FOUND;
	if (old != NULL && o->has_cas && o->cas != item_cas(old))
		return STORE_EXISTS;
	if (o->has_new_cas && !new_cas_ok(sh, o->new_cas))
		return STORE_NOT_STORED;
	if (old != NULL)
		return incr_build(st, old, o->incr, o->delta, result, nit);
	*result = o->initial;
	return marith_vivify(st, key, nkey, o, viv, nit);
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
		rc = marith_build(st, sh, old, key, nkey, o, viv, &v, &nit);
		if (rc == STORE_OK) {
			if (old != NULL)
				meta_info_fill(st, old, now, info);
			info->won = old == NULL;
			if (o->touch) {
				nit->exptime = exp;
				pool_note_exptime(&st->pool,
				    pool_seg_of(&st->pool, nit), exp);
			}
			info->ttl = nit->exptime == 0 ? -1 :
			    (int64_t)nit->exptime - now;
			info->total = item_cost(st, nit);
			item_ref(nit);	/* the caller's */
			item_replace_cas(st, sh, old, nit, hv, now,
			    o->has_new_cas ? o->new_cas : 0, NULL);
		}
		shard_unlock(sh);
	} while (rc == STORE_NO_MEMORY &&
	    retry_with_room(st, &tries, false, ITEM_SIZE(nkey, 20)));
	if (rc == STORE_OK) {
		*result = v;
		*out = nit;
	}
	return rc;
}
