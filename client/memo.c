/*
 * memo.c -- cc_memoize: return a deterministic function's result from the
 * cache, computing it at most once across every process that shares the
 * servers, and never failing because the cache did.
 *
 * Protocol (works on any memcached-compatible server and through
 * twemproxy, using only get, add, set, delete and incr):
 *
 *   1. get key.  A fresh envelope (envelope.c) is a hit: one round trip,
 *      and the buffer the reply was read into goes to the caller as is.
 *   2. Missing or stale: "add key:lock" with a TTL of lock_ttl_s.  Whoever
 *      adds it owns the computation: it looks once more (someone may have
 *      finished in between), computes, sets the value with hard TTL =
 *      soft TTL + grace, then deletes the lock.
 *   3. A caller that finds the lock taken is served the stale value if
 *      there is one; otherwise it polls (2 ms doubling to 50 ms) for up
 *      to lock_wait_ms, trying to take the lock again whenever the value
 *      is still missing, so a lock whose owner died (and that expired)
 *      is taken over.  Past the wait it computes by itself.
 *   4. Any cache failure (no connection set, get/add error, unreadable
 *      namespace version) computes the value and returns it: fail-open.
 *
 * The value is set before the lock is deleted, so a caller that sees the
 * lock gone and then looks again sees the value; the owner deletes the
 * lock only while it is surely still its own (less than lock_ttl_s - 1
 * seconds after taking it).
 *
 * Data structure: a struct memo on the caller's stack carries one call's
 * state.  Locking: none of its own; the connection set is borrowed from
 * the pool for the whole call.  Soft expiry uses the client's clock (which
 * tests inject); waiting uses the monotonic clock.
 */
#include "client_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_FIRST_MS	2
#define POLL_MAX_MS	50
#define MEMO_KEY_BUF	(MEMO_KEY_MAX + MEMO_LOCK_SUFFIX_LEN + 1)
#define NS_KEY_BUF	(MEMO_PREFIX_LEN + CC_NAME_MAX + 1)

enum look { LOOK_FRESH, LOOK_STALE, LOOK_MISS, LOOK_ERROR };
enum lock { LOCK_TAKEN, LOCK_BUSY, LOCK_ERROR };

struct memo {
	cc_client		*c;
	memcached_st		*m;	/* NULL: the cache is out of reach */
	const cc_arg		*args;
	size_t			 nargs;
	uint32_t		 ttl_s;
	cc_compute_fn		 compute;
	void			*ctx;
	struct cc_memo_result	*res;
	char			 key[MEMO_KEY_BUF];
	size_t			 key_len;
	char			 lock[MEMO_KEY_BUF];
	size_t			 lock_len;
	uint64_t		 locked_at;	/* monotonic ms */
	char			*buf;		/* last value read */
	struct envelope		 env;		/* its envelope */
};

/* Returns the monotonic clock in milliseconds. */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps for ms milliseconds. */
static void
sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
	    (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Parses a namespace version: decimal, no sign, no overflow. */
static bool
parse_version(const char *s, size_t len, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	if (s == NULL || len == 0 || len > 20)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Reads the version stored under nskey; CC_NOT_FOUND if none. */
static cc_status
ns_read(memcached_st *mc, const char *nskey, size_t nslen, uint64_t *v)
{
	memcached_return_t	 rc;
	size_t			 len = 0;
	uint32_t		 flags;
	char			*s;
	bool			 ok;

	s = memcached_get(mc, nskey, nslen, &len, &flags, &rc);
	if (rc == MEMCACHED_NOTFOUND)
		return CC_NOT_FOUND;
	if (rc != MEMCACHED_SUCCESS) {
		free(s);
		return client_err_memc(mc, rc, "namespace version");
	}
	ok = parse_version(s, len, v);
	free(s);
	return ok ? CC_OK : client_err_set(CC_PROTOCOL_ERROR,
	    "namespace key %s holds no version", nskey);
}

/*
 * Adds a new namespace version.  It starts at the current time in
 * milliseconds (and past any version this client has seen), not at 1, so
 * a version key that was evicted (or lived on a server that died) never
 * comes back at a value whose entries are stale.
 */
static memcached_return_t
ns_add(cc_client *c, memcached_st *mc, const char *ns, const char *nskey,
    size_t nslen, uint64_t *v)
{
	memcached_return_t	rc;
	char			num[24];
	uint64_t		initial = client_now_ms(c), known;
	int			n;

	if (client_nscache_peek(c->ns, ns, &known) && known >= initial)
		initial = known + 1;
	if (initial == 0)
		initial = 1;
	n = snprintf(num, sizeof num, "%" PRIu64, initial);
	rc = memcached_add(mc, nskey, nslen, num, (size_t)n, 0, 0);
	if (rc == MEMCACHED_STORED || rc == MEMCACHED_SUCCESS) {
		*v = initial;
		return MEMCACHED_SUCCESS;
	}
	if (rc == MEMCACHED_DATA_EXISTS)
		rc = MEMCACHED_NOTSTORED;
	return rc;
}

/* Creates a missing namespace version, or reads the one that won. */
static cc_status
ns_create(cc_client *c, memcached_st *mc, const char *ns, const char *nskey,
    size_t nslen, uint64_t *v)
{
	memcached_return_t rc = ns_add(c, mc, ns, nskey, nslen, v);

	if (rc == MEMCACHED_SUCCESS)
		return CC_OK;
	if (rc == MEMCACHED_NOTSTORED)
		return ns_read(mc, nskey, nslen, v);
	return client_err_memc(mc, rc, "namespace version");
}

/* Reads the version of ns from the servers, creating it if missing. */
static cc_status
ns_fetch(cc_client *c, memcached_st *mc, const char *ns, uint64_t *v)
{
	char		nskey[NS_KEY_BUF];
	size_t		nslen = client_key_ns(ns, nskey);
	cc_status	st = ns_read(mc, nskey, nslen, v);

	if (st == CC_NOT_FOUND)
		st = ns_create(c, mc, ns, nskey, nslen, v);
	return st;
}

/* Returns the version of ns to use now, from the client's cache if fresh. */
static cc_status
ns_current(cc_client *c, memcached_st *mc, const char *ns, uint64_t *version)
{
	uint64_t	now = client_now_ms(c), v;
	cc_status	st;

	switch (client_nscache_lookup(c->ns, ns, now, version)) {
	case NS_HIT:
		return CC_OK;
	case NS_REFRESH:
		/* On failure keep using the version we know. */
		if (ns_fetch(c, mc, ns, &v) == CC_OK)
			*version = client_nscache_store(c->ns, ns, v, now);
		else
			client_nscache_failed(c->ns, ns, now);
		return CC_OK;
	case NS_UNKNOWN:
	default:
		if ((st = ns_fetch(c, mc, ns, &v)) != CC_OK)
			return st;
		*version = client_nscache_store(c->ns, ns, v, now);
		return CC_OK;
	}
}

/* Reads the value; keeps it in m->buf and classifies it. */
static enum look
memo_lookup(struct memo *m)
{
	memcached_return_t	 rc;
	size_t			 len = 0;
	uint32_t		 flags;
	char			*v;

	free(m->buf);
	m->buf = NULL;
	v = memcached_get(m->m, m->key, m->key_len, &len, &flags, &rc);
	if (rc == MEMCACHED_NOTFOUND)
		return LOOK_MISS;
	if (rc != MEMCACHED_SUCCESS) {
		free(v);
		client_err_memc(m->m, rc, "memoize get");
		client_count(&m->c->errors);
		return LOOK_ERROR;
	}
	if (!client_envelope_decode(v, len, &m->env)) {
		/* Not ours or damaged: recompute and overwrite it. */
		free(v);
		client_err_set(CC_PROTOCOL_ERROR,
		    "memoize: %s is no memo entry",
		    m->key);
		client_count(&m->c->errors);
		return LOOK_MISS;
	}
	m->buf = v;
	return m->env.soft_expiry_ms > client_now_ms(m->c) ? LOOK_FRESH :
	    LOOK_STALE;
}

/* Hands the value in m->buf to the caller. */
static cc_status
memo_deliver(struct memo *m, bool stale)
{
	struct cc_memo_result *res = m->res;

	res->from_cache = true;
	res->stale = stale;
	if (m->env.flags & ENVELOPE_NEGATIVE) {
		res->not_found = true;
		free(m->buf);
	} else {
		/* The payload is already first; the trailer just goes. */
		m->buf[m->env.payload_len] = '\0';
		res->value = m->buf;
		res->len = m->env.payload_len;
	}
	m->buf = NULL;
	client_count(stale ? &m->c->stale : &m->c->hits);
	return CC_OK;
}

/* Stores an envelope around payload with the planned TTLs. */
static cc_status
memo_write(struct memo *m, const void *payload, size_t len, unsigned flags,
    uint32_t ttl_s)
{
	cc_client		*c = m->c;
	struct client_ttl_plan		 plan;
	memcached_return_t	 rc;
	uint8_t			*buf;

	client_ttl_plan(&plan, ttl_s, c->cfg.jitter_pct, c->cfg.stale_grace_s,
	    client_random(c), client_now_ms(c));
	if ((buf = malloc(len + ENVELOPE_LEN)) == NULL)
		return client_err_set(CC_NO_MEMORY, "memoize: out of memory");
	if (len > 0)
		memcpy(buf, payload, len);
	client_envelope_trailer(buf + len, plan.soft_expiry_ms, flags);
	rc = memcached_set(m->m, m->key, m->key_len, (const char *)buf,
	    len + ENVELOPE_LEN, (time_t)plan.hard_ttl_s, 0);
	free(buf);
	if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_STORED)
		return client_err_memc(m->m, rc, "memoize set");
	return CC_OK;
}

/* Runs the compute callback; stores its result if `store`. */
static cc_status
memo_compute(struct memo *m, bool store)
{
	struct cc_memo_result	*res = m->res;
	cc_client		*c = m->c;
	void			*value = NULL;
	size_t			 len = 0;
	cc_compute		 r;

	client_count(&c->misses);
	r = m->compute(m->ctx, m->args, m->nargs, &value, &len);
	if (r == CC_COMPUTE_OK && value == NULL && len > 0)
		r = CC_COMPUTE_ERROR;
	if (r == CC_COMPUTE_OK && value == NULL &&
	    (value = calloc(1, 1)) == NULL)
		return client_err_set(CC_NO_MEMORY, "memoize: out of memory");
	if (r == CC_COMPUTE_NOT_FOUND) {
		free(value);
		res->not_found = true;
		if (store && c->cfg.negative_ttl_s > 0 &&
		    memo_write(m, NULL, 0, ENVELOPE_NEGATIVE,
		    c->cfg.negative_ttl_s) != CC_OK)
			client_count(&c->errors);
		return CC_OK;
	}
	if (r != CC_COMPUTE_OK) {
		free(value);
		return client_err_set(CC_COMPUTE_FAILED,
		    "memoize: compute callback "
		    "failed for %s", m->key[0] != '\0' ? m->key : "(no key)");
	}
	if (store && memo_write(m, value, len, 0, m->ttl_s) != CC_OK)
		client_count(&c->errors);
	res->value = value;
	res->len = len;
	return CC_OK;
}

/* Tries to take the compute lock of the key. */
static enum lock
lock_take(struct memo *m)
{
	memcached_return_t rc;

	rc = memcached_add(m->m, m->lock, m->lock_len, "1", 1,
	    (time_t)m->c->cfg.lock_ttl_s, 0);
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED) {
		m->locked_at = mono_ms();
		return LOCK_TAKEN;
	}
	if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
		return LOCK_BUSY;
	client_err_memc(m->m, rc, "memoize lock");
	client_count(&m->c->errors);
	return LOCK_ERROR;
}

/* Deletes the lock if it cannot have expired and passed to another. */
static void
lock_release(struct memo *m)
{
	uint64_t safe_ms = ((uint64_t)m->c->cfg.lock_ttl_s - 1) * 1000;

	if (mono_ms() - m->locked_at < safe_ms)
		(void)memcached_delete(m->m, m->lock, m->lock_len, 0);
}

/* Holding the lock: look once more, else compute and store. */
static cc_status
memo_locked(struct memo *m)
{
	enum look	look = memo_lookup(m);
	cc_status	st;

	if (look == LOOK_FRESH)
		st = memo_deliver(m, false);
	else
		st = memo_compute(m, look != LOOK_ERROR);
	lock_release(m);
	return st;
}

/* The value is missing or stale: compute it under the lock, or wait. */
static cc_status
memo_contend(struct memo *m, enum look look)
{
	uint64_t	deadline = mono_ms() + m->c->cfg.lock_wait_ms, now;
	uint64_t	delay = POLL_FIRST_MS;
	bool		waited = false;

	for (;;) {
		switch (lock_take(m)) {
		case LOCK_TAKEN:
			return memo_locked(m);
		case LOCK_ERROR:
			return memo_compute(m, true);
		case LOCK_BUSY:
			break;
		}
		if (look == LOOK_STALE)
			return memo_deliver(m, true);
		if (!waited) {
			client_count(&m->c->lock_waits);
			waited = true;
		}
		if ((now = mono_ms()) >= deadline)
			return memo_compute(m, true);
		sleep_ms(delay < deadline - now ? delay : deadline - now);
		if ((delay *= 2) > POLL_MAX_MS)
			delay = POLL_MAX_MS;
		look = memo_lookup(m);
		if (look == LOOK_FRESH)
			return memo_deliver(m, false);
		if (look == LOOK_ERROR)
			return memo_compute(m, false);
	}
}

/* Runs one memoized call with a connection set and a key. */
static cc_status
memo_run(struct memo *m)
{
	enum look look = memo_lookup(m);

	if (look == LOOK_FRESH)
		return memo_deliver(m, false);
	if (look == LOOK_ERROR)
		return memo_compute(m, false);
	return memo_contend(m, look);
}

/* Checks the arguments every memo entry point shares. */
static cc_status
memo_check(cc_client *c, const char *ns, const char *fn, const cc_arg *args,
    size_t nargs, const char *what)
{
	if (c == NULL)
		return client_err_set(CC_BAD_ARGUMENT, "%s: no client", what);
	if (!client_key_name_ok(ns) || !client_key_name_ok(fn))
		return client_err_set(CC_BAD_ARGUMENT,
		    "%s: namespace and function "
		    "names must be 1-%d printable bytes without space or ':'",
		    what, CC_NAME_MAX);
	if (!client_key_args_ok(args, nargs))
		return client_err_set(CC_BAD_ARGUMENT,
		    "%s: argument with a length but no data", what);
	return CC_OK;
}

/* Derives the key and the lock key of m under version. */
static void
memo_keys(struct memo *m, const char *ns, uint64_t version, const char *fn)
{
	m->key_len = client_key_memo(ns, version, fn, m->args, m->nargs,
	    m->key);
	memcpy(m->lock, m->key, m->key_len);
	memcpy(m->lock + m->key_len, MEMO_LOCK_SUFFIX,
	    MEMO_LOCK_SUFFIX_LEN + 1);
	m->lock_len = m->key_len + MEMO_LOCK_SUFFIX_LEN;
}

/* Returns the memoized result of compute(args). */
cc_status
cc_memoize(cc_client *c, const char *ns, const char *fn, const cc_arg *args,
    size_t nargs, uint32_t ttl_s, cc_compute_fn compute, void *ctx,
    struct cc_memo_result *res)
{
	struct memo	m;
	cc_status	st;
	uint64_t	version;

	if (res != NULL)
		memset(res, 0, sizeof *res);
	if ((st = memo_check(c, ns, fn, args, nargs, "memoize")) != CC_OK)
		return st;
	if (compute == NULL || res == NULL || ttl_s == 0 || ttl_s > CC_TTL_MAX)
		return client_err_set(CC_BAD_ARGUMENT,
		    "memoize: needs a compute "
		    "callback, a result and a TTL of 1 to %d s", CC_TTL_MAX);
	memset(&m, 0, sizeof m);
	m.c = c;
	m.args = args;
	m.nargs = nargs;
	m.ttl_s = ttl_s;
	m.compute = compute;
	m.ctx = ctx;
	m.res = res;
	if ((m.m = client_pool_get(c->pool, c->cfg.pool_wait_ms)) == NULL) {
		client_count(&c->errors);
		return memo_compute(&m, false);
	}
	if (ns_current(c, m.m, ns, &version) != CC_OK) {
		client_count(&c->errors);
		st = memo_compute(&m, false);
	} else {
		memo_keys(&m, ns, version, fn);
		st = memo_run(&m);
	}
	client_release(c, m.m);
	free(m.buf);
	return st;
}

/* Prepares m for a memo entry point that talks to the servers. */
static cc_status
memo_open(struct memo *m, cc_client *c, const char *ns, const char *fn,
    const cc_arg *args, size_t nargs, const char *what)
{
	uint64_t	version;
	cc_status	st;

	if ((st = memo_check(c, ns, fn, args, nargs, what)) != CC_OK)
		return st;
	memset(m, 0, sizeof *m);
	m->c = c;
	m->args = args;
	m->nargs = nargs;
	if ((m->m = client_conn(c, &st)) == NULL)
		return st;
	if ((st = ns_current(c, m->m, ns, &version)) != CC_OK) {
		client_release(c, m->m);
		return st;
	}
	memo_keys(m, ns, version, fn);
	return CC_OK;
}

/* Stores a result as cc_memoize would. */
cc_status
cc_memo_store(cc_client *c, const char *ns, const char *fn,
    const cc_arg *args, size_t nargs, const void *value, size_t len,
    uint32_t ttl_s)
{
	struct memo	m;
	cc_status	st;

	if ((value == NULL && len > 0) || ttl_s == 0 || ttl_s > CC_TTL_MAX)
		return client_err_set(CC_BAD_ARGUMENT,
		    "memo store: NULL value or "
		    "TTL not 1 to %d s", CC_TTL_MAX);
	if ((st = memo_open(&m, c, ns, fn, args, nargs, "memo store")) != CC_OK)
		return st;
	st = memo_write(&m, value, len, 0, ttl_s);
	client_release(c, m.m);
	return st;
}

/* Forgets one memoized call. */
cc_status
cc_memo_forget(cc_client *c, const char *ns, const char *fn,
    const cc_arg *args, size_t nargs)
{
	struct memo		m;
	memcached_return_t	rc;
	cc_status		st;

	if ((st = memo_open(&m, c, ns, fn, args, nargs, "memo forget")) !=
	    CC_OK)
		return st;
	rc = memcached_delete(m.m, m.key, m.key_len, 0);
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_DELETED)
		st = CC_OK;
	else if (rc == MEMCACHED_NOTFOUND)
		st = client_err_set(CC_NOT_FOUND, "memo forget: not cached");
	else
		st = client_err_memc(m.m, rc, "memo forget");
	client_release(c, m.m);
	return st;
}

/* Reads the current version of ns from the servers. */
cc_status
cc_ns_version(cc_client *c, const char *ns, uint64_t *version)
{
	memcached_st	*mc;
	cc_status	 st;
	uint64_t	 v;

	if (c == NULL || version == NULL || !client_key_name_ok(ns))
		return client_err_set(CC_BAD_ARGUMENT,
		    "ns version: bad argument");
	if ((mc = client_conn(c, &st)) == NULL)
		return st;
	if ((st = ns_fetch(c, mc, ns, &v)) == CC_OK)
		*version = client_nscache_store(c->ns, ns, v, client_now_ms(c));
	client_release(c, mc);
	return st;
}

/*
 * Moves ns to a new version: incr it, or, if it is missing, add a fresh
 * time-based one.  If another client adds it first, incr that one: a
 * version someone else just created may already hold entries computed
 * before this call.
 */
static cc_status
ns_bump(cc_client *c, memcached_st *mc, const char *ns, uint64_t *v)
{
	char			nskey[NS_KEY_BUF];
	size_t			nslen = client_key_ns(ns, nskey);
	memcached_return_t	rc;
	int			tries;

	for (tries = 0; tries < 3; tries++) {
		rc = memcached_increment_by_key(mc, nskey, nslen, nskey, nslen,
		    1, v);
		if (rc == MEMCACHED_NOTFOUND)
			rc = ns_add(c, mc, ns, nskey, nslen, v);
		if (rc == MEMCACHED_SUCCESS)
			return CC_OK;
		if (rc != MEMCACHED_NOTSTORED)
			return client_err_memc(mc, rc, "ns invalidate");
	}
	return client_err_set(CC_ERROR, "ns invalidate: %s keeps changing",
	    nskey);
}

/* Forgets a whole namespace by moving it to a new version. */
cc_status
cc_ns_invalidate(cc_client *c, const char *ns)
{
	memcached_st	*mc;
	cc_status	 st;
	uint64_t	 v;

	if (c == NULL || !client_key_name_ok(ns))
		return client_err_set(CC_BAD_ARGUMENT,
		    "ns invalidate: bad argument");
	if ((mc = client_conn(c, &st)) == NULL)
		return st;
	if ((st = ns_bump(c, mc, ns, &v)) == CC_OK)
		client_nscache_store(c->ns, ns, v, client_now_ms(c));
	client_release(c, mc);
	return st;
}
