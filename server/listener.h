/*
 * listener.h -- listening sockets (TCP addresses or one unix socket) and
 * the accept loop on the main thread's event_base.
 *
 * Ownership: the table owns the listener names ("tcp:127.0.0.1:11211")
 * that every connection's listen_addr points at, so it is freed only after
 * the workers and their connections (listeners_close, workers_stop,
 * listeners_free).
 */
#ifndef CACHED_LISTENER_H
#define CACHED_LISTENER_H

struct server;
struct listeners;

/* Binds every configured address; prints why and returns NULL on error.
 * Runs before daemonizing so that errors reach the terminal. */
struct listeners *listeners_open(struct server *srv);
/* Starts accepting on the main base; 0 or -1. */
int	listeners_start(struct listeners *ls, struct server *srv);
/* Stops accepting: closes the sockets and removes the unix socket file if
 * it is still the one we bound.  The listener names handed to workers stay
 * valid until listeners_free(). */
void	listeners_close(struct listeners *ls);
/* Closes (if still open) and frees the table; only once every connection
 * is gone, since connections point at their listener's name. */
void	listeners_free(struct listeners *ls);

#endif
