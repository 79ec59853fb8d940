/*
 * ops.c -- the thin operations: get, multi-get, set, add, replace, delete,
 * incr, decr and touch, each a single libmemcached call on a connection set
 * borrowed from the client's pool.
 *
 * Keys are checked here (length, no space or control byte) so a bad key is
 * CC_BAD_ARGUMENT before anything is sent.  Values come back in malloc'd
 * buffers the caller owns.  No state of its own, no locking beyond the
 * pool's.
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>

typedef memcached_return_t (*store_fn)(memcached_st *, const char *, size_t,
    const char *, size_t, time_t, uint32_t);

/* Checks the client and key arguments every operation shares. */
static cc_status
check_key(cc_client *c, const char *key, size_t *klen, const char *what)
{
	if (c == NULL)
		return client_err_set(CC_BAD_ARGUMENT, "%s: no client", what);
	if (!client_key_ok(key, klen))
		return client_err_set(CC_BAD_ARGUMENT,
		    "%s: key must be 1-%d bytes "
		    "with no space or control character", what, CC_KEY_MAX);
	return CC_OK;
}

/* Gets one key. */
cc_status
cc_get(cc_client *c, const char *key, void **value, size_t *len,
    uint32_t *flags)
{
	memcached_st		*m;
	memcached_return_t	 rc;
	cc_status		 st;
	size_t			 klen, vlen = 0;
	uint32_t		 fl = 0;
	char			*v;

	if ((st = check_key(c, key, &klen, "get")) != CC_OK)
		return st;
	if (value == NULL || len == NULL)
		return client_err_set(CC_BAD_ARGUMENT, "get: NULL output");
	if ((m = client_conn(c, &st)) == NULL)
		return st;
	v = memcached_get(m, key, klen, &vlen, &fl, &rc);
	if (rc == MEMCACHED_SUCCESS && v == NULL)
		v = calloc(1, 1);	/* an empty value is still a value */
	if (rc == MEMCACHED_SUCCESS && v == NULL)
		st = client_err_set(CC_NO_MEMORY, "get: out of memory");
	else if (rc != MEMCACHED_SUCCESS)
		st = rc == MEMCACHED_NOTFOUND ?
		    client_err_set(CC_NOT_FOUND, "get: not found") :
		    client_err_memc(m, rc, "get");
	client_release(c, m);
	if (st != CC_OK) {
		free(v);
		return st;
	}
	*value = v;
	*len = vlen;
	if (flags != NULL)
		*flags = fl;
	return CC_OK;
}

/* One requested key and its slot, sorted by key to match replies. */
struct slot {
	const char	*key;
	size_t		 index;
};

/* Orders slots by key. */
static int
cmp_slot(const void *a, const void *b)
{
	return strcmp(((const struct slot *)a)->key,
	    ((const struct slot *)b)->key);
}

/* Compares the NUL-terminated s with the counted k. */
static int
cmp_counted(const char *s, const char *k, size_t klen)
{
	int d = strncmp(s, k, klen);

	if (d != 0)
		return d;
	return s[klen] == '\0' ? 0 : 1;
}

/* Stores one reply into the first unfilled slot that asked for its key. */
static cc_status
mget_place(const struct slot *slots, size_t n, memcached_result_st *r,
    struct cc_value *out)
{
	const char	*k = memcached_result_key_value(r);
	size_t		 klen = memcached_result_key_length(r);
	size_t		 vlen = memcached_result_length(r);
	size_t		 lo = 0, hi = n;

	while (lo < hi) {	/* first slot whose key is >= k */
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_counted(slots[mid].key, k, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && cmp_counted(slots[lo].key, k, klen) == 0; lo++) {
		struct cc_value *v = &out[slots[lo].index];

		if (v->found)
			continue;
		if ((v->value = malloc(vlen + 1)) == NULL)
			return client_err_set(CC_NO_MEMORY,
			    "mget: out of memory");
		memcpy(v->value, memcached_result_value(r), vlen);
		((char *)v->value)[vlen] = '\0';
		v->len = vlen;
		v->flags = memcached_result_flags(r);
		v->found = true;
		break;
	}
	return CC_OK;
}

/* Sends the multi-get and collects every reply into out. */
static cc_status
mget_run(memcached_st *m, const char *const *keys, const size_t *lens,
    const struct slot *slots, size_t n, struct cc_value *out)
{
	memcached_result_st	 result, *r;
	memcached_return_t	 rc, frc;
	cc_status		 st = CC_OK;

	rc = memcached_mget(m, keys, lens, n);
	if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_SOME_ERRORS)
		return client_err_memc(m, rc, "mget");
	if (memcached_result_create(m, &result) == NULL)
		return client_err_set(CC_NO_MEMORY, "mget: out of memory");
	while ((r = memcached_fetch_result(m, &result, &frc)) != NULL)
		if (st == CC_OK)
			st = mget_place(slots, n, r, out);
	memcached_result_free(&result);
	if (st != CC_OK)
		return st;
	if (frc != MEMCACHED_END && frc != MEMCACHED_SUCCESS &&
	    frc != MEMCACHED_NOTFOUND)
		return client_err_memc(m, frc, "mget");
	if (rc == MEMCACHED_SOME_ERRORS)
		return client_err_set(CC_UNREACHABLE,
		    "mget: some servers could not be asked");
	return CC_OK;
}

/* Gets n keys; values found are filled in even if the status is not OK. */
cc_status
cc_mget(cc_client *c, const char *const *keys, size_t n,
    struct cc_value *out)
{
	memcached_st	*m;
	struct slot	*slots = NULL;
	size_t		*lens = NULL, i;
	cc_status	 st = CC_OK;

	if (c == NULL || (n > 0 && (keys == NULL || out == NULL)))
		return client_err_set(CC_BAD_ARGUMENT, "mget: NULL argument");
	if (n == 0)
		return CC_OK;
	memset(out, 0, n * sizeof *out);
	if ((slots = calloc(n, sizeof *slots)) == NULL ||
	    (lens = calloc(n, sizeof *lens)) == NULL) {
		st = client_err_set(CC_NO_MEMORY, "mget: out of memory");
		goto out;
	}
	for (i = 0; i < n && st == CC_OK; i++) {
		st = check_key(c, keys[i], &lens[i], "mget");
		slots[i].key = keys[i];
		slots[i].index = i;
	}
	if (st != CC_OK)
		goto out;
	qsort(slots, n, sizeof *slots, cmp_slot);
	if ((m = client_conn(c, &st)) == NULL)
		goto out;
	st = mget_run(m, keys, lens, slots, n, out);
	client_release(c, m);
out:
	free(slots);
	free(lens);
	return st;
}

/* Frees the values of a multi-get. */
void
cc_values_free(struct cc_value *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(v[i].value);
		memset(&v[i], 0, sizeof v[i]);
	}
}

/* Runs one storage command. */
static cc_status
store(cc_client *c, store_fn fn, const char *what, const char *key,
    const void *value, size_t len, uint32_t flags, uint32_t ttl)
{
	memcached_st		*m;
	memcached_return_t	 rc;
	cc_status		 st;
	size_t			 klen;

	if ((st = check_key(c, key, &klen, what)) != CC_OK)
		return st;
	if (value == NULL && len > 0)
		return client_err_set(CC_BAD_ARGUMENT, "%s: NULL value", what);
	if ((m = client_conn(c, &st)) == NULL)
		return st;
	rc = fn(m, key, klen, value != NULL ? value : "", len, (time_t)ttl,
	    flags);
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED)
		st = CC_OK;
	else if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
		st = client_err_set(CC_NOT_STORED, "%s: not stored", what);
	else
		st = client_err_memc(m, rc, what);
	client_release(c, m);
	return st;
}

/* Stores key unconditionally. */
cc_status
cc_set(cc_client *c, const char *key, const void *value, size_t len,
    uint32_t flags, uint32_t ttl)
{
	return store(c, memcached_set, "set", key, value, len, flags, ttl);
}

/* Stores key if it does not exist. */
cc_status
cc_add(cc_client *c, const char *key, const void *value, size_t len,
    uint32_t flags, uint32_t ttl)
{
	return store(c, memcached_add, "add", key, value, len, flags, ttl);
}

/* Stores key if it exists. */
cc_status
cc_replace(cc_client *c, const char *key, const void *value, size_t len,
    uint32_t flags, uint32_t ttl)
{
	return store(c, memcached_replace, "replace", key, value, len, flags,
	    ttl);
}

/* Deletes key. */
cc_status
cc_delete(cc_client *c, const char *key)
{
	memcached_st		*m;
	memcached_return_t	 rc;
	cc_status		 st;
	size_t			 klen;

	if ((st = check_key(c, key, &klen, "delete")) != CC_OK)
		return st;
	if ((m = client_conn(c, &st)) == NULL)
		return st;
	rc = memcached_delete(m, key, klen, 0);
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_DELETED)
		st = CC_OK;
	else if (rc == MEMCACHED_NOTFOUND)
		st = client_err_set(CC_NOT_FOUND, "delete: not found");
	else
		st = client_err_memc(m, rc, "delete");
	client_release(c, m);
	return st;
}

/* Runs incr (up) or decr. */
static cc_status
arith(cc_client *c, bool up, const char *key, uint64_t delta,
    uint64_t *value)
{
	const char		*what = up ? "incr" : "decr";
	memcached_st		*m;
	memcached_return_t	 rc;
	cc_status		 st;
	size_t			 klen;
	uint64_t		 v = 0;

	if ((st = check_key(c, key, &klen, what)) != CC_OK)
		return st;
	if ((m = client_conn(c, &st)) == NULL)
		return st;
	rc = up ? memcached_increment_by_key(m, key, klen, key, klen, delta,
	    &v) : memcached_decrement_by_key(m, key, klen, key, klen, delta,
	    &v);
	if (rc == MEMCACHED_SUCCESS) {
		st = CC_OK;
		if (value != NULL)
			*value = v;
	} else if (rc == MEMCACHED_NOTFOUND)
		st = client_err_set(CC_NOT_FOUND, "%s: not found", what);
	else if ((st = client_err_memc(m, rc, what)) == CC_PROTOCOL_ERROR &&
	    rc == MEMCACHED_CLIENT_ERROR)
		st = CC_NON_NUMERIC;	/* the key was valid: it is the value */
	client_release(c, m);
	return st;
}

/* Adds delta to a decimal value. */
cc_status
cc_incr(cc_client *c, const char *key, uint64_t delta, uint64_t *value)
{
	return arith(c, true, key, delta, value);
}

/* Subtracts delta from a decimal value, stopping at 0. */
cc_status
cc_decr(cc_client *c, const char *key, uint64_t delta, uint64_t *value)
{
	return arith(c, false, key, delta, value);
}

/* Sets a new TTL on key. */
cc_status
cc_touch(cc_client *c, const char *key, uint32_t ttl)
{
	memcached_st		*m;
	memcached_return_t	 rc;
	cc_status		 st;
	size_t			 klen;

	if ((st = check_key(c, key, &klen, "touch")) != CC_OK)
		return st;
	if ((m = client_conn(c, &st)) == NULL)
		return st;
	rc = memcached_touch(m, key, klen, (time_t)ttl);
	if (rc == MEMCACHED_SUCCESS)
		st = CC_OK;
	else if (rc == MEMCACHED_NOTFOUND)
		st = client_err_set(CC_NOT_FOUND, "touch: not found");
	else
		st = client_err_memc(m, rc, "touch");
	client_release(c, m);
	return st;
}
