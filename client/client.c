/*
 * client.c -- the cc_client handle: configuration, the server list, the
 * libmemcached settings every connection set shares, and the counters.
 *
 * Data structure: struct cc_client (client_internal.h) holds a copy of the
 * configuration, a pool of libmemcached handles cloned from one master
 * (ketama distribution with MD5, as libketama; failed servers ejected
 * after failure_limit failures and retried after dead_timeout_s) and the
 * namespace version cache.
 *
 * Locking: the handle is read-only after creation; the pool and the
 * namespace cache lock themselves; counters and the random state are
 * atomics.
 */
#include "client_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT		11211
#define MAX_JITTER_PCT		50
#define MIN_LOCK_TTL_S		2

/* Fills cfg with the defaults. */
void
cc_config_init(struct cc_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->connect_timeout_ms = 250;
	cfg->io_timeout_ms = 250;
	cfg->retry_timeout_s = 1;
	cfg->failure_limit = 2;
	cfg->dead_timeout_s = 5;
	cfg->pool_size = 16;
	cfg->pool_wait_ms = 1000;
	cfg->jitter_pct = 0;
	cfg->negative_ttl_s = 0;
	cfg->stale_grace_s = 60;
	cfg->lock_ttl_s = 10;
	cfg->lock_wait_ms = 2000;
	cfg->ns_refresh_ms = 1000;
}

/* Checks the numeric settings; records why one is bad. */
static cc_status
config_check(const struct cc_config *cfg)
{
	if (cfg->servers == NULL || cfg->servers[0] == '\0')
		return client_err_set(CC_BAD_ARGUMENT, "config: no servers");
	if (cfg->connect_timeout_ms == 0 || cfg->io_timeout_ms == 0 ||
	    cfg->failure_limit == 0 || cfg->dead_timeout_s == 0 ||
	    cfg->pool_size == 0)
		return client_err_set(CC_BAD_ARGUMENT, "config: timeouts, "
		    "failure_limit, dead_timeout_s and pool_size must be "
		    "positive (start from cc_config_init)");
	if (cfg->connect_timeout_ms > INT_MAX || cfg->io_timeout_ms > INT_MAX)
		return client_err_set(CC_BAD_ARGUMENT,
		    "config: timeout too large");
	if (cfg->jitter_pct > MAX_JITTER_PCT)
		return client_err_set(CC_BAD_ARGUMENT,
		    "config: jitter_pct %u over %d",
		    cfg->jitter_pct, MAX_JITTER_PCT);
	if (cfg->lock_ttl_s < MIN_LOCK_TTL_S || cfg->lock_ttl_s > CC_TTL_MAX)
		return client_err_set(CC_BAD_ARGUMENT,
		    "config: lock_ttl_s must be "
		    "%d to %d", MIN_LOCK_TTL_S, CC_TTL_MAX);
	if (cfg->negative_ttl_s > CC_TTL_MAX || cfg->stale_grace_s > CC_TTL_MAX)
		return client_err_set(CC_BAD_ARGUMENT,
		    "config: TTL over 30 days");
	return CC_OK;
}

/* Parses a port number; -1 if bad. */
static int
parse_port(const char *s)
{
	char	*end;
	long	 v;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < 1 || v > 65535)
		return -1;
	return (int)v;
}

/* Adds one server entry ("host:port", "[v6]:port", "host", "/path"). */
static cc_status
add_server(memcached_st *m, char *entry)
{
	memcached_return_t	 rc;
	char			*host = entry, *colon;
	int			 port = DEFAULT_PORT;

	if (entry[0] == '/') {
		rc = memcached_server_add_unix_socket(m, entry);
		return rc == MEMCACHED_SUCCESS ? CC_OK :
		    client_err_memc(m, rc, entry);
	}
	if (entry[0] == '[') {
		char *close = strchr(entry, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return client_err_set(CC_BAD_ARGUMENT,
			    "bad server \"%s\"",
			    entry);
		host = entry + 1;
		*close = '\0';
		colon = close[1] == ':' ? close + 1 : NULL;
	} else
		colon = strrchr(entry, ':');
	if (colon != NULL) {
		*colon = '\0';
		if ((port = parse_port(colon + 1)) < 0)
			return client_err_set(CC_BAD_ARGUMENT,
			    "bad port in \"%s\"",
			    colon + 1);
	}
	if (host[0] == '\0')
		return client_err_set(CC_BAD_ARGUMENT,
		    "empty host in server list");
	rc = memcached_server_add(m, host, (in_port_t)port);
	return rc == MEMCACHED_SUCCESS ? CC_OK : client_err_memc(m, rc, host);
}

/* Adds every comma-separated server of list to m. */
static cc_status
add_servers(memcached_st *m, const char *list)
{
	char		*copy, *entry, *save = NULL;
	cc_status	 st = CC_OK;
	size_t		 n = 0;

	if ((copy = strdup(list)) == NULL)
		return client_err_set(CC_NO_MEMORY, "out of memory");
	for (entry = strtok_r(copy, ", \t", &save); entry != NULL &&
	    st == CC_OK; entry = strtok_r(NULL, ", \t", &save)) {
		st = add_server(m, entry);
		n++;
	}
	free(copy);
	if (st == CC_OK && n == 0)
		st = client_err_set(CC_BAD_ARGUMENT, "config: no servers");
	return st;
}

/* Applies one behaviour; records the failure. */
static cc_status
behave(memcached_st *m, memcached_behavior_t flag, uint64_t value)
{
	memcached_return_t rc = memcached_behavior_set(m, flag, value);

	return rc == MEMCACHED_SUCCESS ? CC_OK :
	    client_err_memc(m, rc, "memcached_behavior_set");
}

/* Makes the master handle every pooled connection set is cloned from. */
static cc_status
make_master(const struct cc_config *cfg, memcached_st **out)
{
	memcached_st	*m = memcached_create(NULL);
	cc_status	 st;

	if (m == NULL)
		return client_err_set(CC_NO_MEMORY, "out of memory");
	/* KETAMA_WEIGHTED: ketama with MD5 keys, as libketama does. */
	if ((st = behave(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1)) ||
	    (st = behave(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1)) ||
	    (st = behave(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    cfg->connect_timeout_ms)) ||
	    (st = behave(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    cfg->io_timeout_ms)) ||
	    (st = behave(m, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1)) ||
	    (st = behave(m, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT,
	    cfg->failure_limit)) ||
	    (st = behave(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT,
	    cfg->retry_timeout_s)) ||
	    /* Without a dead timeout an ejected server never comes back. */
	    (st = behave(m, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT,
	    cfg->dead_timeout_s)) ||
	    (st = add_servers(m, cfg->servers))) {
		memcached_free(m);
		return st;
	}
	*out = m;
	return CC_OK;
}

/* Creates a client from cfg. */
cc_status
cc_client_create(const struct cc_config *cfg, cc_client **out)
{
	cc_client	*c;
	memcached_st	*master = NULL;
	cc_status	 st;

	if (out == NULL || cfg == NULL)
		return client_err_set(CC_BAD_ARGUMENT,
		    "cc_client_create: NULL");
	*out = NULL;
	if ((st = config_check(cfg)) != CC_OK)
		return st;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return client_err_set(CC_NO_MEMORY, "out of memory");
	c->cfg = *cfg;
	if ((c->servers = strdup(cfg->servers)) == NULL) {
		free(c);
		return client_err_set(CC_NO_MEMORY, "out of memory");
	}
	c->cfg.servers = c->servers;
	if ((st = make_master(cfg, &master)) != CC_OK) {
		cc_client_destroy(c);
		return st;
	}
	if ((c->pool = client_pool_create(master, cfg->pool_size)) == NULL) {
		memcached_free(master);
		cc_client_destroy(c);
		return client_err_set(CC_NO_MEMORY, "out of memory");
	}
	if ((c->ns = client_nscache_create(cfg->ns_refresh_ms)) == NULL) {
		cc_client_destroy(c);
		return client_err_set(CC_NO_MEMORY, "out of memory");
	}
	atomic_init(&c->rng, (uint64_t)time(NULL) ^
	    (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)c);
	*out = c;
	return CC_OK;
}

/* Frees the client. */
void
cc_client_destroy(cc_client *c)
{
	if (c == NULL)
		return;
	client_pool_destroy(c->pool);
	client_nscache_destroy(c->ns);
	free(c->servers);
	free(c);
}

/* Returns now in unix milliseconds, from the injected clock if any. */
uint64_t
client_now_ms(cc_client *c)
{
	struct timespec ts;

	if (c->cfg.clock != NULL)
		return c->cfg.clock(c->cfg.clock_ctx);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Returns 64 random bits: the injected source, else splitmix64. */
uint64_t
client_random(cc_client *c)
{
	uint64_t z;

	if (c->cfg.random != NULL)
		return c->cfg.random(c->cfg.random_ctx);
	z = atomic_fetch_add_explicit(&c->rng, 0x9e3779b97f4a7c15ULL,
	    memory_order_relaxed) + 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Borrows a connection set or records why not. */
memcached_st *
client_conn(cc_client *c, cc_status *st)
{
	memcached_st *m = client_pool_get(c->pool, c->cfg.pool_wait_ms);

	if (m == NULL)
		*st = client_err_set(CC_TIMEOUT,
		    "no free connection within %u ms",
		    c->cfg.pool_wait_ms);
	return m;
}

/* Returns a connection set. */
void
client_release(cc_client *c, memcached_st *memc)
{
	client_pool_put(c->pool, memc);
}

/* Copies the memoize counters. */
void
cc_client_stats(cc_client *c, struct cc_stats *out)
{
	if (c == NULL || out == NULL)
		return;
	out->hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
	out->misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
	out->stale = atomic_load_explicit(&c->stale, memory_order_relaxed);
	out->lock_waits = atomic_load_explicit(&c->lock_waits,
	    memory_order_relaxed);
	out->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
}
