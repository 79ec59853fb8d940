/*
 * server.h -- the server's shared context: configuration, store, workers
 * and the process-wide counters.  One instance lives in main(); every
 * worker and connection points at it.
 *
 * Locking: opts, store pointer, workers array and started are set before
 * the workers start and read-only afterwards.  Connection counters are
 * atomics.  stats_lock guards stats_base (the "stats reset" baseline).
 */
#ifndef CACHED_SERVER_H
#define CACHED_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "options.h"
#include "stats.h"
#include "store.h"

struct auth_db;
struct event_base;
struct tls_server;
struct snapshotter;
struct worker;
struct stats_detail;

/*
 * memcached settings a client may change at run time ("slabs automove",
 * "lru tune|mode|temp_ttl", "stats detail on|off") that tune machinery the
 * store does not have (slab classes, a segmented LRU): accepted as
 * memcached accepts them and shown by "stats settings", else unused
 * (man/cached.1).  Guarded by stats_lock.
 */
struct server_tunables {
	unsigned	 slab_automove;		/* 0, 1, 2 */
	double		 slab_automove_ratio;
	int		 hot_lru_pct;
	int		 warm_lru_pct;
	double		 hot_max_factor;
	double		 warm_max_factor;
	int		 lru_segmented;
	int		 temp_lru;
	int		 temporary_ttl;
};

struct server {
	const struct options	*opts;
	store_t			*store;
	struct worker		*workers;
	unsigned		 nworkers;
	struct event_base	*main_base;
	time_t			 started;
	int			 tcp_port;	/* bound TCP port, for stats */
	unsigned		 next_worker;	/* main thread only */
	/* -S / -Y: the users; atomic, SIGHUP swaps in a new list (read it
	 * with server_auth); the lists it replaced stay allocated until
	 * exit, as a connection may still be checking against one */
	struct auth_db		*auth;
	struct auth_db		**auth_old;	/* main thread only */
	size_t			 nauth_old;
	struct tls_server	*tls;		/* -Z; NULL without (tls.h) */

	/* atomics */
	uint64_t		 curr_conns;
	uint64_t		 total_conns;
	uint64_t		 rejected_conns;
	uint64_t		 listen_disabled;
	int			 shutdown_requested;
	bool			 crawler_on;	/* lru_crawler enable/disable */
	struct snapshotter	*snap;		/* issue 15: NULL without -e */

	pthread_mutex_t		 stats_lock;
	struct thread_stats	 stats_base;
	uint64_t		 total_conns_base;
	uint64_t		 rejected_conns_base;
	struct server_tunables	 tun;
	/* "stats detail": per-prefix counters (stats_detail.c); NULL until
	 * first turned on.  detail_on is atomic, read by every request. */
	struct stats_detail	*detail;
	int			 detail_on;
};

/* The tunables' start values: memcached 1.6.18's defaults. */
#define SERVER_TUNABLES_DEFAULT { .slab_automove = 1,			\
	.slab_automove_ratio = 0.8, .hot_lru_pct = 20, .warm_lru_pct = 40,	\
	.hot_max_factor = 0.2, .warm_max_factor = 2.0, .lru_segmented = 1,	\
	.temp_lru = 0, .temporary_ttl = 61 }

/* Asks the main loop to stop; safe from any thread. */
void	server_request_shutdown(struct server *srv);

/* The current user list (-S / -Y); NULL without authentication. */
static inline struct auth_db *
server_auth(struct server *srv)
{
	return __atomic_load_n(&srv->auth, __ATOMIC_ACQUIRE);
}

#endif
