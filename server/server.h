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

struct event_base;
struct snapshotter;
struct worker;

struct server {
	const struct options	*opts;
	store_t			*store;
	struct worker		*workers;
	unsigned		 nworkers;
	struct event_base	*main_base;
	time_t			 started;
	int			 tcp_port;	/* bound TCP port, for stats */
	unsigned		 next_worker;	/* main thread only */

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
};

/* Asks the main loop to stop; safe from any thread. */
void	server_request_shutdown(struct server *srv);

#endif
