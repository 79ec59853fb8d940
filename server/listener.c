/*
 * listener.c -- binds the listening sockets and accepts connections on the
 * main thread, handing each to a worker round-robin.
 *
 * Connection limit: curr_conns is raised atomically before a socket is
 * handed over; past -c the new client gets "ERROR Too many open
 * connections" and is closed, and nobody else notices.  When accept()
 * runs out of descriptors the listener pauses for 100 ms rather than
 * spinning.
 *
 * Teardown: listeners_close() stops accepting and removes the unix socket
 * file only if it is still the inode we bound; the table (whose names the
 * connections point at) is freed by listeners_free() once the workers and
 * their connections are gone.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "listener.h"
#include "log.h"
#include "server.h"
#include "worker.h"

#define MAX_LISTENERS	16
#define ACCEPTS_PER_EVENT 64

struct listener {
	int		 fd;
	struct event	*ev;
	struct event	*pause_ev;
	struct server	*srv;
	bool		 tls;		/* -Z and not "notls:" */
	char		 name[128];	/* "tcp:127.0.0.1:11211" */
};

struct listeners {
	struct listener	 l[MAX_LISTENERS];
	int		 n;
	bool		 closed;
	const char	*unix_path;	/* set once we bound it */
	dev_t		 unix_dev;	/* the socket file we created, */
	ino_t		 unix_ino;	/* so exit removes only that one */
};

/* Makes a socket non-blocking and close-on-exec. */
static int
set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Records a bound socket under its printable name. */
static void
add_listener(struct listeners *ls, int fd, const struct sockaddr *sa,
    bool tls)
{
	struct listener	*l = &ls->l[ls->n++];
	char		 host[INET6_ADDRSTRLEN] = "?";

	l->fd = fd;
	l->tls = tls;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(l->name, sizeof l->name, "tcp:%s:%d", host,
		    ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(l->name, sizeof l->name, "tcp6:[%s]:%d", host,
		    ntohs(in6->sin6_port));
	}
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port" in place. */
static void
split_host_port(char *spec, char **host, char **port)
{
	char *colon;

	*port = NULL;
	if (spec[0] == '[' && (colon = strchr(spec, ']')) != NULL) {
		*host = spec + 1;
		*colon = '\0';
		if (colon[1] == ':')
			*port = colon + 2;
		return;
	}
	*host = spec;
	colon = strchr(spec, ':');
	/* A single colon separates a port; more mean a bare IPv6 address. */
	if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		*colon = '\0';
		*port = colon + 1;
	}
}

/* Binds one "host[:port]"; *port0 carries a kernel-chosen port on to the
 * next addresses.  Returns 0 or -1 after printing why. */
static int
bind_tcp(struct listeners *ls, struct server *srv, char *spec, int *port0)
{
	struct addrinfo	 hints, *res, *ai;
	char		*host, *port, portbuf[16];
	int		 fd, one = 1, err, bound = 0;
	bool		 tls = srv->opts->ssl_enabled;

	/* memcached's per-listener opt-out of -Z: "notls:ADDR[:PORT]". */
	if (strncmp(spec, "notls:", 6) == 0) {
		spec += 6;
		tls = false;
	}
	split_host_port(spec, &host, &port);
	if (port == NULL) {
		snprintf(portbuf, sizeof portbuf, "%d", *port0);
		port = portbuf;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((err = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "cached: cannot resolve '%s': %s\n", host,
		    gai_strerror(err));
		return -1;
	}
	for (ai = res; ai != NULL && ls->n < MAX_LISTENERS; ai = ai->ai_next) {
		struct sockaddr_storage	ss;
		socklen_t		len = sizeof ss;

		if ((fd = socket(ai->ai_family, ai->ai_socktype, 0)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    listen(fd, srv->opts->backlog) != 0 || set_flags(fd) != 0 ||
		    getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
			fprintf(stderr, "cached: cannot listen on %s port %s: "
			    "%s\n", host, port, strerror(errno));
			close(fd);
			freeaddrinfo(res);
			return -1;
		}
		add_listener(ls, fd, (struct sockaddr *)&ss, tls);
		if (*port0 == 0)
			*port0 = ntohs(ss.ss_family == AF_INET6 ?
			    ((struct sockaddr_in6 *)&ss)->sin6_port :
			    ((struct sockaddr_in *)&ss)->sin_port);
		if (srv->tcp_port == 0)
			srv->tcp_port = *port0;
		bound++;
	}
	freeaddrinfo(res);
	if (bound == 0) {
		fprintf(stderr, "cached: no usable address for '%s'\n", host);
		return -1;
	}
	return 0;
}

/* Removes the unix socket file if it is still the one we bound: not a
 * file another instance (or the operator) has put at the path since. */
static void
unlink_own_socket(const struct listeners *ls)
{
	struct stat st;

	if (ls->unix_path == NULL || lstat(ls->unix_path, &st) != 0)
		return;
	if (S_ISSOCK(st.st_mode) && st.st_dev == ls->unix_dev &&
	    st.st_ino == ls->unix_ino)
		unlink(ls->unix_path);
	else
		log_msg(LOG_INFO, "%s is no longer our socket, left in place",
		    ls->unix_path);
}

/* Binds the unix socket with the -a permissions. */
static int
bind_unix(struct listeners *ls, struct server *srv)
{
	const char		*path = srv->opts->unix_path;
	struct sockaddr_un	 sun;
	struct stat		 st;
	mode_t			 old_mask;
	int			 fd, err;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		fprintf(stderr, "cached: unix socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	/* A socket file already there is replaced, as memcached does, even if
	 * another instance still listens on it (that one then leaves our file
	 * alone when it exits); anything else is left alone (bind fails). */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	/* The file is made with its final mode (as memcached does), so no
	 * one sees it, or connects, with the default one before chmod. */
	old_mask = umask(~srv->opts->unix_mask & 0777);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		err = errno;
		umask(old_mask);
		fprintf(stderr, "cached: cannot listen on unix socket %s: %s\n",
		    path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old_mask);
	/* From here the file is ours: remember which inode it is, since
	 * another instance may replace it while we run (as we replace a
	 * stale one above) and must not lose it when we exit. */
	if (lstat(path, &st) == 0) {
		ls->unix_path = path;
		ls->unix_dev = st.st_dev;
		ls->unix_ino = st.st_ino;
	}
	if (chmod(path, srv->opts->unix_mask) != 0 ||
	    listen(fd, srv->opts->backlog) != 0 || set_flags(fd) != 0) {
		fprintf(stderr, "cached: cannot listen on unix socket %s: %s\n",
		    path, strerror(errno));
		close(fd);
		unlink_own_socket(ls);
		ls->unix_path = NULL;
		return -1;
	}
	ls->l[ls->n].fd = fd;
	snprintf(ls->l[ls->n].name, sizeof ls->l[0].name, "unix:%s", path);
	ls->n++;
	return 0;
}

/* Binds every configured address. */
struct listeners *
listeners_open(struct server *srv)
{
	struct listeners	*ls;
	char			*list, *spec, *save = NULL;
	int			 port0 = srv->opts->port, rc = 0;

	if ((ls = calloc(1, sizeof *ls)) == NULL)
		return NULL;
	if (srv->opts->unix_path != NULL)
		rc = bind_unix(ls, srv);
	else {
		if ((list = strdup(srv->opts->listen)) == NULL) {
			free(ls);
			return NULL;
		}
		for (spec = strtok_r(list, ",", &save); spec != NULL && rc == 0;
		    spec = strtok_r(NULL, ",", &save))
			rc = bind_tcp(ls, srv, spec, &port0);
		free(list);
	}
	if (rc != 0 || ls->n == 0) {
		listeners_free(ls);
		return NULL;
	}
	return ls;
}

/* Turns away a client over the connection limit with memcached's words. */
static void
reject(struct server *srv, int fd)
{
	static const char msg[] = "ERROR Too many open connections\r\n";

	/* Counted first: once the client sees the close, a "stats" it
	 * sends next must already count it (test_hostile flaked on this). */
	__atomic_fetch_add(&srv->rejected_conns, 1, __ATOMIC_RELAXED);
	(void)!write(fd, msg, sizeof msg - 1);
	close(fd);
	log_msg(LOG_INFO, "connection limit reached, rejected a client");
}

/* Re-enables a listener paused after running out of descriptors. */
static void
resume_accept(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	event_add(l->ev, NULL);
}

/* Stops accepting for 100 ms (out of descriptors). */
static void
pause_accept(struct listener *l)
{
	struct timeval tv = { 0, 100 * 1000 };

	__atomic_fetch_add(&l->srv->listen_disabled, 1, __ATOMIC_RELAXED);
	event_del(l->ev);
	event_add(l->pause_ev, &tv);
}

/* Accept callback: takes the waiting connections and hands them out. */
static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct listener		*l = arg;
	struct server		*srv = l->srv;
	struct worker		*w;
	int			 fd;

	(void)what;
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				pause_accept(l);
			return;
		}
		if (__atomic_add_fetch(&srv->curr_conns, 1, __ATOMIC_RELAXED) >
		    srv->opts->maxconns) {
			__atomic_fetch_sub(&srv->curr_conns, 1,
			    __ATOMIC_RELAXED);
			reject(srv, fd);
			continue;
		}
		__atomic_fetch_add(&srv->total_conns, 1, __ATOMIC_RELAXED);
		w = &srv->workers[srv->next_worker++ % srv->nworkers];
		if (worker_dispatch(w, fd, l->name, l->tls) != 0) {
			close(fd);
			__atomic_fetch_sub(&srv->curr_conns, 1,
			    __ATOMIC_RELAXED);
		}
	}
}

/* Starts accepting on the main base. */
int
listeners_start(struct listeners *ls, struct server *srv)
{
	for (int i = 0; i < ls->n; i++) {
		struct listener *l = &ls->l[i];

		l->srv = srv;
		l->ev = event_new(srv->main_base, l->fd, EV_READ | EV_PERSIST,
		    on_accept, l);
		l->pause_ev = evtimer_new(srv->main_base, resume_accept, l);
		if (l->ev == NULL || l->pause_ev == NULL ||
		    event_add(l->ev, NULL) != 0)
			return -1;
		log_msg(LOG_INFO, "listening on %s", l->name);
		log_msg(LOG_DEBUG, "<%d server listening (auto-negotiate)",
		    l->fd);
	}
	return 0;
}

/* Stops accepting: closes the sockets and removes our unix socket file.
 * The table itself, and the names connections point at, stay valid until
 * listeners_free(). */
void
listeners_close(struct listeners *ls)
{
	if (ls == NULL || ls->closed)
		return;
	ls->closed = true;
	for (int i = 0; i < ls->n; i++) {
		if (ls->l[i].ev != NULL)
			event_free(ls->l[i].ev);
		if (ls->l[i].pause_ev != NULL)
			event_free(ls->l[i].pause_ev);
		ls->l[i].ev = ls->l[i].pause_ev = NULL;
		close(ls->l[i].fd);
	}
	unlink_own_socket(ls);
}

/* Closes the listeners if still open and frees the table; call only once
 * no connection that names a listener is left. */
void
listeners_free(struct listeners *ls)
{
	if (ls == NULL)
		return;
	listeners_close(ls);
	free(ls);
}
