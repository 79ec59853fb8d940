/*
 * cachedclient.h -- libcachedclient: a client for cached and any other
 * memcached-compatible server, with a memoize helper that caches the
 * results of expensive deterministic functions.
 *
 * A client is an opaque handle made from a server list ("host:port,
 * host:port,/path/to/socket").  Keys are spread over the servers by
 * consistent hashing (ketama, compatible with libketama); a server that
 * keeps failing is ejected and retried later.  The library is built on
 * libmemcached, which never shows through this header.
 *
 * Thread safety: a cc_client may be used by any number of threads at once.
 * It holds a pool of connection sets (one libmemcached handle each, with
 * one connection per server); a call borrows one for its duration and
 * waits up to pool_wait_ms when all are busy.  cc_client_destroy must not
 * run while another thread is still using the client.  cc_errmsg() is per
 * thread.  The key functions need no client and are pure.
 *
 * Memory: every value the library hands back is allocated with malloc and
 * belongs to the caller, who releases it with free() (or cc_values_free
 * for a multi-get).  Nothing the caller passes in is retained after a call
 * returns, except what cc_client_create copies.
 *
 * Errors: calls return a cc_status; cc_strerror() names it and cc_errmsg()
 * describes the calling thread's last failure in more detail.  The library
 * never prints and never exits.
 *
 * The manual page libcachedclient(3) documents every function, the memoize
 * protocol and the exact key format.
 */
#ifndef CACHEDCLIENT_H
#define CACHEDCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CC_KEY_MAX	250	/* longest key the protocol carries */
#define CC_NAME_MAX	64	/* longest namespace or function name */
#define CC_TTL_MAX	2592000	/* 30 days: longest relative TTL */

typedef struct cc_client cc_client;

typedef enum cc_status {
	CC_OK = 0,
	CC_NOT_FOUND,		/* no such key */
	CC_NOT_STORED,		/* add: key exists; replace: key missing */
	CC_BAD_ARGUMENT,	/* invalid key, name, size, config or NULL */
	CC_NON_NUMERIC,		/* incr/decr of a value that is no number */
	CC_TOO_LARGE,		/* value over the server's item size limit */
	CC_NO_MEMORY,		/* allocation failed in the client */
	CC_TIMEOUT,		/* a server or the pool did not answer in time */
	CC_UNREACHABLE,		/* no connection: refused, dead or ejected */
	CC_SERVER_ERROR,	/* the server replied with an error */
	CC_PROTOCOL_ERROR,	/* the reply could not be understood */
	CC_COMPUTE_FAILED,	/* memoize: the compute callback failed */
	CC_ERROR		/* anything else */
} cc_status;

/* Returns the current time in milliseconds since the unix epoch. */
typedef uint64_t (*cc_clock_fn)(void *ctx);
/* Returns 64 uniformly random bits. */
typedef uint64_t (*cc_random_fn)(void *ctx);

/*
 * Configuration: fill with cc_config_init, then change what you need.
 * cc_client_create copies the server list, so the string need not outlive
 * the call.
 */
struct cc_config {
	const char	*servers;	/* "host:port,[::1]:port,/path.sock" */

	/* Connections. */
	unsigned	 connect_timeout_ms;	/* 250 */
	unsigned	 io_timeout_ms;		/* 250: each send or receive */
	unsigned	 retry_timeout_s;	/* 1: a failing server rests */
	unsigned	 failure_limit;		/* 2: failures before ejection */
	unsigned	 dead_timeout_s;	/* 5: an ejected server is retried */
	unsigned	 pool_size;		/* 16 connection sets at most */
	unsigned	 pool_wait_ms;		/* 1000: wait for a free set */

	/* Memoize. */
	unsigned	 jitter_pct;	/* 0: soft TTL shortened by 0..pct% */
	unsigned	 negative_ttl_s; /* 0: "not found" results not cached */
	unsigned	 stale_grace_s;	/* 60: stale values kept this long */
	unsigned	 lock_ttl_s;	/* 10: a compute lock lives at most */
	unsigned	 lock_wait_ms;	/* 2000: wait for another's compute */
	unsigned	 ns_refresh_ms;	/* 1000: namespace version cached */

	cc_clock_fn	 clock;		/* NULL: the system clock */
	void		*clock_ctx;
	cc_random_fn	 random;	/* NULL: an internal generator */
	void		*random_ctx;
};

/* Fills cfg with the defaults above and no servers. */
void		 cc_config_init(struct cc_config *cfg);
/* Creates a client; on success *out owns it until cc_client_destroy. */
cc_status	 cc_client_create(const struct cc_config *cfg,
		    cc_client **out);
/* Closes every connection and frees the client; NULL is ignored. */
void		 cc_client_destroy(cc_client *c);

/* Returns a short static description of a status. */
const char	*cc_strerror(cc_status status);
/* Returns the calling thread's last error message (static, per thread). */
const char	*cc_errmsg(void);

/*
 * Thin operations.  Keys are NUL-terminated, 1 to CC_KEY_MAX bytes with no
 * space or control character.  Values are binary-safe.  ttl follows
 * memcached: 0 never expires, up to CC_TTL_MAX is relative seconds, more
 * is an absolute unix time.
 */

/* Gets key; on CC_OK *value (malloc'd, NUL-terminated past *len) is yours. */
cc_status	 cc_get(cc_client *c, const char *key, void **value,
		    size_t *len, uint32_t *flags);

/* One slot of a multi-get; value is malloc'd and owned by the caller. */
struct cc_value {
	void		*value;	/* NULL unless found */
	size_t		 len;
	uint32_t	 flags;
	bool		 found;
};
/* Gets n keys in one round trip per server into out[0..n-1]. */
cc_status	 cc_mget(cc_client *c, const char *const *keys, size_t n,
		    struct cc_value *out);
/* Frees the values of a multi-get and clears the slots. */
void		 cc_values_free(struct cc_value *v, size_t n);

/* Stores key unconditionally. */
cc_status	 cc_set(cc_client *c, const char *key, const void *value,
		    size_t len, uint32_t flags, uint32_t ttl);
/* Stores key only if it does not exist (else CC_NOT_STORED). */
cc_status	 cc_add(cc_client *c, const char *key, const void *value,
		    size_t len, uint32_t flags, uint32_t ttl);
/* Stores key only if it exists (else CC_NOT_STORED). */
cc_status	 cc_replace(cc_client *c, const char *key, const void *value,
		    size_t len, uint32_t flags, uint32_t ttl);
/* Deletes key (CC_NOT_FOUND if it was not there). */
cc_status	 cc_delete(cc_client *c, const char *key);
/* Adds delta to a decimal value; the result goes to *value if not NULL. */
cc_status	 cc_incr(cc_client *c, const char *key, uint64_t delta,
		    uint64_t *value);
/* Subtracts delta, stopping at 0; the result goes to *value if not NULL. */
cc_status	 cc_decr(cc_client *c, const char *key, uint64_t delta,
		    uint64_t *value);
/* Sets a new ttl on key without fetching it. */
cc_status	 cc_touch(cc_client *c, const char *key, uint32_t ttl);

/*
 * Memoize.  A memoized call is named by a namespace, a function name and
 * an ordered list of argument byte strings.  Names are 1 to CC_NAME_MAX
 * printable ASCII bytes other than space and ':'.
 */

/* One argument: len bytes at data (data may be NULL when len is 0). */
typedef struct cc_arg {
	const void	*data;
	size_t		 len;
} cc_arg;

typedef enum cc_compute {
	CC_COMPUTE_OK = 0,	/* *value (malloc'd) and *len hold the result */
	CC_COMPUTE_NOT_FOUND,	/* no result; cached for negative_ttl_s */
	CC_COMPUTE_ERROR	/* failed; nothing is cached */
} cc_compute;

/*
 * Computes the function for args.  On CC_COMPUTE_OK it stores a malloc'd
 * buffer in *value (NULL allowed only when *len is 0) whose ownership
 * passes to the library.  May be called from any thread that memoizes.
 */
typedef cc_compute (*cc_compute_fn)(void *ctx, const cc_arg *args,
    size_t nargs, void **value, size_t *len);

struct cc_memo_result {
	void		*value;		/* malloc'd, caller frees; NULL if not_found */
	size_t		 len;
	bool		 from_cache;	/* true unless computed by this call */
	bool		 stale;		/* served past its TTL during a recompute */
	bool		 not_found;	/* the function's "not found" result */
};

/*
 * Returns the function's result for args, at most ttl_s seconds old
 * (plus stale_grace_s while another caller recomputes it).  Never returns
 * a cache error: if the cache fails, the value is computed.  Returns
 * CC_OK, CC_BAD_ARGUMENT, CC_COMPUTE_FAILED or CC_NO_MEMORY.
 */
cc_status	 cc_memoize(cc_client *c, const char *ns, const char *fn,
		    const cc_arg *args, size_t nargs, uint32_t ttl_s,
		    cc_compute_fn compute, void *ctx,
		    struct cc_memo_result *res);

/* Buffer size for a memo key, its terminating NUL included. */
#define CC_MEMO_KEY_SIZE	(CC_KEY_MAX + 1)
/*
 * Writes the key of a memoized call under namespace version `version`
 * into out (CC_MEMO_KEY_SIZE bytes):
 *   "memo1:" ns ":" version ":" fn ":" hex(SHA-256(be64(nargs) ||
 *   be64(len_1) || arg_1 || ... || be64(len_n) || arg_n))
 */
cc_status	 cc_memo_key(const char *ns, uint64_t version, const char *fn,
		    const cc_arg *args, size_t nargs, char *out);
/* Reads (creating it if missing) the current version of namespace ns. */
cc_status	 cc_ns_version(cc_client *c, const char *ns,
		    uint64_t *version);
/* Stores a result as cc_memoize would (for pre-warming), with jitter. */
cc_status	 cc_memo_store(cc_client *c, const char *ns, const char *fn,
		    const cc_arg *args, size_t nargs, const void *value,
		    size_t len, uint32_t ttl_s);
/* Forgets one memoized call (CC_NOT_FOUND if it was not cached). */
cc_status	 cc_memo_forget(cc_client *c, const char *ns, const char *fn,
		    const cc_arg *args, size_t nargs);
/* Forgets a whole namespace by moving it to a new version. */
cc_status	 cc_ns_invalidate(cc_client *c, const char *ns);

/* Memoize counters, totals since the client was created. */
struct cc_stats {
	uint64_t	 hits;		/* fresh value (or cached "not found") */
	uint64_t	 misses;	/* the compute callback ran */
	uint64_t	 stale;		/* stale value served during a recompute */
	uint64_t	 lock_waits;	/* waited for another caller's compute */
	uint64_t	 errors;	/* cache failures that were failed open */
};
/* Copies the client's memoize counters into out. */
void		 cc_client_stats(cc_client *c, struct cc_stats *out);

/*
 * Batch stores (client/batch.c, added for cached-warm).  The stores go
 * out pipelined, each server's share in one stream, so a batch costs about
 * one round trip per server instead of one per item, and every item still
 * gets its server's own answer.
 */
typedef enum cc_store_mode {
	CC_STORE_SET = 0,	/* store unconditionally */
	CC_STORE_ADD,		/* only if missing, else CC_NOT_STORED */
	CC_STORE_REPLACE	/* only if present, else CC_NOT_STORED */
} cc_store_mode;

/* One store of a batch; cc_store_many fills in status. */
struct cc_item {
	const char	*key;
	const void	*value;
	size_t		 len;
	uint32_t	 flags;
	uint32_t	 ttl;
	cc_status	 status;	/* out */
};
/*
 * Stores items[0..n-1], routed like every other call.  Returns CC_OK if
 * every item's status is CC_OK, else the status of the first that is not.
 */
cc_status	 cc_store_many(cc_client *c, cc_store_mode mode,
		    struct cc_item *items, size_t n);

#ifdef __cplusplus
}
#endif

#endif
