/*
 * client_internal.h -- what the files of libcachedclient share and nothing
 * outside the library sees: the client record, the connection pool, the
 * namespace version cache, key derivation, the value envelope and error
 * reporting.
 *
 * Locking: a cc_client is immutable after cc_client_create except for its
 * pool (pool.c, one mutex), its namespace cache (nscache.c, one mutex) and
 * its counters and random state (atomics).  No function holds the pool lock
 * and the namespace cache lock at the same time, and neither is held
 * across network I/O.
 */
#ifndef CC_CLIENT_INTERNAL_H
#define CC_CLIENT_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmemcached/memcached.h>

#include "cachedclient.h"

/* ---- key.c: key checks and the memo key format ---- */

#define MEMO_PREFIX		"memo1:"
#define MEMO_PREFIX_LEN		(sizeof MEMO_PREFIX - 1)
#define MEMO_LOCK_SUFFIX	":lock"
#define MEMO_LOCK_SUFFIX_LEN	(sizeof MEMO_LOCK_SUFFIX - 1)
#define MEMO_HASH_HEX_LEN	64
/* Longest memo key: prefix, ns, version (20 digits), fn, hash, 3 colons. */
#define MEMO_KEY_MAX		(MEMO_PREFIX_LEN + CC_NAME_MAX + 20 + \
				 CC_NAME_MAX + MEMO_HASH_HEX_LEN + 3)

/* True if name is a valid namespace or function name. */
bool	client_key_name_ok(const char *name);
/* True if key is a valid protocol key; its length goes to *len. */
bool	client_key_ok(const char *key, size_t *len);
/* True if the argument list is well formed (no NULL data with a length). */
bool	client_key_args_ok(const cc_arg *args, size_t nargs);
/* Hashes the canonical encoding of args into out. */
void	client_key_args_digest(const cc_arg *args, size_t nargs,
	    uint8_t out[32]);
/* Writes the memo key of validated inputs to out; returns its length. */
size_t	client_key_memo(const char *ns, uint64_t version, const char *fn,
	    const cc_arg *args, size_t nargs, char *out);
/* Writes the namespace version key "memo1:<ns>" to out; returns length. */
size_t	client_key_ns(const char *ns, char *out);

/* ---- envelope.c: the stored value's trailer and TTL arithmetic ---- */

#define ENVELOPE_LEN		16
#define ENVELOPE_NEGATIVE	0x01	/* a cached "not found" result */

struct envelope {
	uint64_t	 soft_expiry_ms;	/* fresh before, stale after */
	unsigned	 flags;			/* ENVELOPE_* */
	size_t		 payload_len;	/* the payload comes first */
};

/* Writes an envelope trailer. */
void	client_envelope_trailer(uint8_t out[ENVELOPE_LEN],
	    uint64_t soft_expiry_ms, unsigned flags);
/* Parses a stored value; false if it is not a valid envelope. */
bool	client_envelope_decode(const void *buf, size_t len,
	    struct envelope *env);

struct client_ttl_plan {
	uint64_t	 soft_expiry_ms;	/* absolute, unix milliseconds */
	uint32_t	 hard_ttl_s;		/* TTL to send to the server */
};
/* Plans the soft expiry and the server TTL of a value stored now. */
void	client_ttl_plan(struct client_ttl_plan *out, uint32_t ttl_s,
	    unsigned jitter_pct, unsigned grace_s, uint64_t rnd,
	    uint64_t now_ms);

/* ---- nscache.c: namespace versions cached in the client ---- */

struct nscache;

enum ns_lookup {
	NS_HIT,		/* *version is current enough */
	NS_REFRESH,	/* *version is usable but this caller must refresh */
	NS_UNKNOWN	/* no version known: this caller must fetch it */
};

/* Creates an empty cache whose entries are fresh for refresh_ms. */
struct nscache	*client_nscache_create(unsigned refresh_ms);
/* Frees the cache. */
void		 client_nscache_destroy(struct nscache *nc);
/* Looks ns up at time now_ms. */
enum ns_lookup	 client_nscache_lookup(struct nscache *nc, const char *ns,
		    uint64_t now_ms, uint64_t *version);
/* Records a version read or written at now_ms; versions never go back. */
uint64_t	 client_nscache_store(struct nscache *nc, const char *ns,
		    uint64_t version, uint64_t now_ms);
/* Copies the version known for ns, if any. */
bool		 client_nscache_peek(struct nscache *nc, const char *ns,
		    uint64_t *version);
/* Records a failed refresh: keep the old version, retry a period later. */
void		 client_nscache_failed(struct nscache *nc, const char *ns,
		    uint64_t now_ms);

/* ---- pool.c: connection sets shared by threads ---- */

struct pool;

/* Creates a pool of at most max clones of master (which it takes over). */
struct pool	*client_pool_create(memcached_st *master, unsigned max);
/* Frees the pool, its master and every idle clone. */
void		 client_pool_destroy(struct pool *p);
/* Borrows a connection set, waiting up to wait_ms; NULL on timeout. */
memcached_st	*client_pool_get(struct pool *p, unsigned wait_ms);
/* Returns a borrowed connection set. */
void		 client_pool_put(struct pool *p, memcached_st *memc);

/* ---- error.c: status mapping and the per-thread message ---- */

/* Records a formatted message for the calling thread and returns st. */
cc_status	 client_err_set(cc_status st, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
/* Maps a libmemcached result onto a status. */
cc_status	 client_err_map(memcached_return_t rc);
/* Records libmemcached's message for a failed `what` and returns it mapped. */
cc_status	 client_err_memc(memcached_st *memc, memcached_return_t rc,
		    const char *what);

/* ---- client.c: the handle ---- */

struct cc_client {
	struct pool		*pool;
	struct nscache		*ns;
	struct cc_config	 cfg;	/* cfg.servers points at `servers` */
	char			*servers;
	_Atomic uint64_t	 rng;	/* state of the default generator */
	_Atomic uint64_t	 hits, misses, stale, lock_waits, errors;
};

/* Returns the client's notion of now, unix milliseconds. */
uint64_t	 client_now_ms(cc_client *c);
/* Returns 64 random bits from the client's generator. */
uint64_t	 client_random(cc_client *c);
/* Borrows a connection set or records why not (status in *st). */
memcached_st	*client_conn(cc_client *c, cc_status *st);
/* Returns a connection set. */
void		 client_release(cc_client *c, memcached_st *memc);
/* Adds one to a counter. */
static inline void
client_count(_Atomic uint64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

#endif
