/*
 * worker.c -- worker threads, each running its own event_base.
 *
 * The listener pushes accepted sockets onto a worker's queue (under
 * w->lock) and wakes the worker with event_active() on its notify event,
 * which libevent makes thread-safe once evthread_use_pthreads() ran.  The
 * worker drains the queue and creates the connections; from then on only
 * that worker touches them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "conn.h"
#include "log.h"
#include "server.h"
#include "watch.h"
#include "worker.h"

/* Describes the peer of connection c as "tcp:1.2.3.4:5" / "unix:" for
 * stats conns, and keeps its address for the watch lines. */
static void
peer_name(struct conn *c)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof ss;
	char			host[INET6_ADDRSTRLEN] = "?";
	char			*out = c->addr;
	size_t			 cap = sizeof c->addr;
	int			port = 0;

	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0) {
		snprintf(out, cap, "unknown");
		return;
	}
	c->peer = ss;
	c->peer_len = len;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
		snprintf(out, cap, "tcp:%s:%d", host, port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
		snprintf(out, cap, "tcp6:[%s]:%d", host, port);
	} else
		snprintf(out, cap, "unix:");
}

/* Turns one queued socket into a connection on this worker. */
static void
worker_adopt(struct worker *w, struct new_conn *nc)
{
	struct conn	*c;
	int		 one = 1;

	/* Replies leave in one writev per pass; Nagle would only delay them.
	 * Fails harmlessly on unix sockets. */
	(void)setsockopt(nc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if ((c = conn_new(w, nc->fd, nc->listen_addr,
	    nc->tls ? w->srv->tls : NULL)) == NULL) {
		log_msg(LOG_ERR, "out of memory for a new connection");
		close(nc->fd);
		__atomic_fetch_sub(&w->srv->curr_conns, 1, __ATOMIC_RELAXED);
		return;
	}
	peer_name(c);
	if (watch_wants(WATCH_CONNEVENTS))
		watch_conn_event(true, (struct sockaddr *)&c->peer,
		    c->peer_len, c->fd, WATCH_CLOSE_NORMAL);
	log_msg(LOG_DEBUG, "<%d new auto-negotiating client connection",
	    nc->fd);
	pthread_mutex_lock(&w->lock);
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	pthread_mutex_unlock(&w->lock);
}

/* Notify callback: adopts every socket queued for this worker. */
static void
worker_notified(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct new_conn	*nc, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->lock);
	nc = w->queue_head;
	w->queue_head = w->queue_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	for (; nc != NULL; nc = next) {
		next = nc->next;
		worker_adopt(w, nc);
		free(nc);
	}
}

/* Hands an accepted socket to worker w; 0 or -1. */
int
worker_dispatch(struct worker *w, int fd, const char *listen_addr, bool tls)
{
	struct new_conn *nc;

	if ((nc = malloc(sizeof *nc)) == NULL)
		return -1;
	nc->fd = fd;
	nc->listen_addr = listen_addr;
	nc->tls = tls;
	nc->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->queue_tail != NULL)
		w->queue_tail->next = nc;
	else
		w->queue_head = nc;
	w->queue_tail = nc;
	pthread_mutex_unlock(&w->lock);
	event_active(w->notify_ev, EV_READ, 0);
	return 0;
}

/* Thread body: runs the worker's loop until the server stops. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	watch_thread_slot(w->id);	/* its own rings to each watcher */
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* Creates n workers' bases and events (threads not started). */
int
workers_init(struct server *srv, unsigned n)
{
	if ((srv->workers = calloc(n, sizeof *srv->workers)) == NULL)
		return -1;
	srv->nworkers = n;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &srv->workers[i];

		w->id = i;
		w->srv = srv;
		pthread_mutex_init(&w->lock, NULL);
		if ((w->base = event_base_new()) == NULL ||
		    event_base_priority_init(w->base, WORKER_PRIORITIES) != 0)
			return -1;
		w->notify_ev = event_new(w->base, -1, EV_READ | EV_PERSIST,
		    worker_notified, w);
		if (w->notify_ev == NULL)
			return -1;
	}
	return 0;
}

/* Starts every worker thread. */
int
workers_start(struct server *srv)
{
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];

		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return -1;
	}
	return 0;
}

/* Stops all workers, closes their connections and frees them. */
void
workers_stop(struct server *srv)
{
	struct new_conn *nc, *next;

	if (srv->workers == NULL)
		return;
	/* loopexit, not loopbreak: a break sent before the worker entered
	 * its loop would be forgotten when the loop starts. */
	for (unsigned i = 0; i < srv->nworkers; i++)
		if (srv->workers[i].thread != 0)
			event_base_loopexit(srv->workers[i].base, NULL);
	/* Every thread is joined before any connection is freed: until then
	 * a worker may be walking another worker's list for "stats conns". */
	for (unsigned i = 0; i < srv->nworkers; i++)
		if (srv->workers[i].thread != 0)
			pthread_join(srv->workers[i].thread, NULL);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];

		while (w->conns != NULL) {
			struct conn *c = w->conns;

			w->conns = c->next;
			conn_free(c);
		}
		for (nc = w->queue_head; nc != NULL; nc = next) {
			next = nc->next;
			close(nc->fd);
			free(nc);
		}
		if (w->notify_ev != NULL)
			event_free(w->notify_ev);
		if (w->base != NULL)
			event_base_free(w->base);
		pthread_mutex_destroy(&w->lock);
	}
	free(srv->workers);
	srv->workers = NULL;
}
