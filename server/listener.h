/*
 * listener.h -- listening sockets (TCP addresses or one unix socket) and
 * the accept loop on the main thread's event_base.
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
/* Closes the sockets (and removes the unix socket file). */
void	listeners_close(struct listeners *ls);

#endif
