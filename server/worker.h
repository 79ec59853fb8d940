/*
 * worker.h -- worker threads: each runs its own libevent event_base and
 * owns the connections handed to it by the listener.
 *
 * Locking: `lock` guards the hand-off queue of new sockets and the list of
 * connections (the list is written by the owning worker, read by "stats
 * conns" from other workers).  Everything else of a connection is touched
 * only by its worker.
 */
#ifndef CACHED_WORKER_H
#define CACHED_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "stats.h"

struct event;
struct event_base;
struct conn;
struct server;

struct new_conn {
	int			 fd;
	const char		*listen_addr;	/* "tcp:127.0.0.1:11211", owned
						 * by the listener table */
	bool			 tls;		/* start a TLS session */
	struct new_conn		*next;
};

/* Event priorities of a worker's base: events get the middle one
 * (libevent's default, npriorities / 2); the last runs only when nothing
 * else is ready (a key dump's next step, conn.c). */
#define WORKER_PRIORITIES	3
#define WORKER_PRIO_IDLE	(WORKER_PRIORITIES - 1)

struct worker {
	unsigned		 id;
	struct server		*srv;
	pthread_t		 thread;
	struct event_base	*base;
	struct event		*notify_ev;
	struct thread_stats	 stats;

	pthread_mutex_t		 lock;
	struct new_conn		*queue_head;
	struct new_conn		*queue_tail;
	struct conn		*conns;
};

/* Creates n workers' bases and events (threads not started); 0 or -1. */
int	workers_init(struct server *srv, unsigned n);
/* Starts every worker thread; 0 or -1. */
int	workers_start(struct server *srv);
/* Stops all workers, closes their connections and frees them. */
void	workers_stop(struct server *srv);
/* Hands an accepted socket to worker w (thread-safe); 0 or -1. */
int	worker_dispatch(struct worker *w, int fd, const char *listen_addr,
	    bool tls);

#endif
