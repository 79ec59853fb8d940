/*
 * main.c -- cached's entry point: parse options, bind, optionally
 * daemonize and drop privileges, start the store, the workers and the
 * accept loop, and tear everything down on a stop signal or "shutdown".
 *
 * Order matters: sockets are bound before daemonizing so bind errors reach
 * the terminal and the exit status; threads start only after fork().
 * Signals are blocked in every thread but the main one, which handles
 * them through its event_base (signal_table says what each does).
 * Teardown: stop accepting, stop the workers, then free the listener
 * table that connections point into.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#ifdef HAVE_MALLOC_H
#include <malloc.h>
#endif
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "listener.h"
#include "log.h"
#include "options.h"
#include "server.h"
#include "snapshot.h"
#include "worker.h"

/* Asks the main loop to stop; safe from any thread. */
void
server_request_shutdown(struct server *srv)
{
	__atomic_store_n(&srv->shutdown_requested, 1, __ATOMIC_RELAXED);
	event_base_loopbreak(srv->main_base);
}

/* The store's clock: wall-clock seconds, coarse is precise enough. */
static uint32_t
wall_clock(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/* Raises the descriptor limit to fit -c connections plus our own. */
static void
raise_fd_limit(unsigned maxconns)
{
	struct rlimit	rl;
	rlim_t		want = (rlim_t)maxconns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		log_msg(LOG_ERR, "warning: cannot raise the descriptor limit "
		    "to %u; connections beyond %lu fail", (unsigned)want,
		    (unsigned long)rl.rlim_cur);
	}
}

/* Makes malloc serve large values from mmap, as the store's cost model
 * assumes, so memory freed by eviction goes back to the system instead of
 * fragmenting the heaps: without it a -m 64 cache under mixed value sizes
 * grew to 100-128 MB resident. */
static void
tune_malloc(void)
{
#if defined(HAVE_MALLOC_H) && defined(M_MMAP_THRESHOLD)
	mallopt(M_MMAP_THRESHOLD, STORE_LARGE_ALLOC);
#endif
}

/* Writes a small text file atomically enough for pid and port files. */
static int
write_number_file(const char *path, long value)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL) {
		fprintf(stderr, "cached: cannot write %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	fprintf(f, "%ld\n", value);
	return fclose(f) == 0 ? 0 : -1;
}

/* Switches to an unprivileged user when running as root with -u. */
static int
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user == NULL)
		return 0;
	if (getuid() != 0 && geteuid() != 0) {
		log_msg(LOG_INFO, "not root, -u %s ignored", user);
		return 0;
	}
	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "cached: unknown user '%s'\n", user);
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		fprintf(stderr, "cached: cannot switch to user '%s': %s\n",
		    user, strerror(errno));
		return -1;
	}
	return 0;
}

/* What a signal does.  memcached 1.6 stops on TERM and INT, stops
 * gracefully (saving for a warm restart) on USR1, keeps running on HUP
 * (reloading its TLS certificates) and dies of USR2 and ALRM; we stop
 * cleanly on those two instead, so the pidfile and socket file go too. */
enum sig_action { ACT_STOP, ACT_SAVE_STOP, ACT_RELOAD };

static const struct {
	int		 sig;
	const char	*name;
	enum sig_action	 action;
} signal_table[] = {
	{ SIGTERM, "SIGTERM", ACT_STOP },
	{ SIGINT, "SIGINT", ACT_STOP },
	{ SIGUSR1, "SIGUSR1", ACT_SAVE_STOP },
	{ SIGUSR2, "SIGUSR2", ACT_STOP },
	{ SIGALRM, "SIGALRM", ACT_STOP },
	{ SIGHUP, "SIGHUP", ACT_RELOAD },
};
#define NSIGNALS (sizeof signal_table / sizeof signal_table[0])

/* The signals the main loop handles. */
static const sigset_t *
handled_signals(void)
{
	static sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < NSIGNALS; i++)
		sigaddset(&set, signal_table[i].sig);
	return &set;
}

/* SIGHUP: reopens or reloads whatever can change under a running server.
 * Today there is nothing: logs go to stderr (the caller redirects it) and
 * there are no TLS certificates or auth file yet.  Reloading those belongs
 * here when they exist; a failed reload must keep the old ones. */
static void
reload(struct server *srv)
{
	(void)srv;
	log_msg(LOG_INFO, "SIGHUP received: nothing to reload, running on");
}

/* Signal callback, on the main thread: acts as signal_table says. */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	for (size_t i = 0; i < NSIGNALS; i++) {
		if (signal_table[i].sig != (int)sig)
			continue;
		switch (signal_table[i].action) {
		case ACT_RELOAD:
			reload(srv);
			return;
		case ACT_SAVE_STOP:
			/* memcached saves the cache for a warm restart here;
			 * cached saves it (with -e) on every clean stop. */
			log_msg(LOG_INFO, "%s received, shutting down%s",
			    signal_table[i].name, srv->snap != NULL ?
			    " (saving the snapshot)" : "");
			break;
		case ACT_STOP:
			log_msg(LOG_INFO, "%s received, shutting down",
			    signal_table[i].name);
			break;
		}
		server_request_shutdown(srv);
		return;
	}
}

/* Installs the signal events on the main base; 0 or -1. */
static int
signals_add(struct server *srv, struct event **evs)
{
	for (size_t i = 0; i < NSIGNALS; i++) {
		evs[i] = evsignal_new(srv->main_base, signal_table[i].sig,
		    on_signal, srv);
		if (evs[i] == NULL || evsignal_add(evs[i], NULL) != 0)
			return -1;
	}
	return 0;
}

/* Starts store, workers and listeners, then runs until told to stop. */
static int
run(struct server *srv, struct listeners *ls)
{
	struct store_config	 sc;
	struct event		*sigevs[NSIGNALS] = { NULL };
	int			 rc = 1;

	memset(&sc, 0, sizeof sc);
	sc.mem_limit = srv->opts->mem_limit;
	sc.item_size_max = srv->opts->item_size_max;
	sc.no_evict = srv->opts->no_evict;
	sc.clock = wall_clock;
	if ((srv->store = store_create(&sc)) == NULL) {
		fprintf(stderr, "cached: cannot create the store\n");
		return 1;
	}
	/* issue 15: warm restart, before anything is served. */
	if (srv->opts->snapshot_path != NULL) {
		srv->snap = snapshot_create(srv->store,
		    srv->opts->snapshot_path, srv->opts->snapshot_interval);
		if (srv->snap == NULL) {
			fprintf(stderr, "cached: out of memory\n");
			store_destroy(srv->store);
			return 1;
		}
		snapshot_load(srv->snap);
	}
	if (signals_add(srv, sigevs) != 0)
		fprintf(stderr, "cached: cannot install signal handlers\n");
	else if (store_expiry_start(srv->store) != 0)
		fprintf(stderr, "cached: cannot start the expiry thread\n");
	else if (workers_init(srv, srv->opts->threads) != 0 ||
	    workers_start(srv) != 0)
		fprintf(stderr, "cached: cannot start worker threads\n");
	else if (listeners_start(ls, srv) != 0)
		fprintf(stderr, "cached: cannot start accepting\n");
	else if (srv->snap != NULL && snapshot_start(srv->snap) != 0)
		fprintf(stderr, "cached: cannot start the snapshot thread\n");
	else {
		/* Signals held back since start-up are handled from here on. */
		pthread_sigmask(SIG_UNBLOCK, handled_signals(), NULL);
		event_base_dispatch(srv->main_base);
		rc = 0;
	}
	/* Stop accepting, stop the workers and free their connections, and
	 * only then the listener table their listen_addr points into. */
	listeners_close(ls);
	workers_stop(srv);
	listeners_free(ls);
	/* issue 15: no client is left, the snapshot is of a still store. */
	if (srv->snap != NULL) {
		if (rc == 0 && snapshot_stop_and_save(srv->snap) != 0)
			rc = 1;
		snapshot_free(srv->snap);
	}
	store_destroy(srv->store);
	for (size_t i = 0; i < NSIGNALS; i++)
		if (sigevs[i] != NULL)
			event_free(sigevs[i]);
	return rc;
}

int
main(int argc, char **argv)
{
	struct options		 opts;
	struct server		 srv;
	struct listeners	*ls;
	int			 rc;

	switch (options_parse(&opts, argc, argv)) {
	case OPTIONS_EXIT_OK:
		return 0;
	case OPTIONS_EXIT_USAGE:
		return EXIT_USAGE;
	case OPTIONS_RUN:
		break;
	}
	log_set_level(opts.verbose);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(opts.maxconns);
	tune_malloc();

	memset(&srv, 0, sizeof srv);
	srv.opts = &opts;
	srv.started = time(NULL);
	srv.crawler_on = true;
	pthread_mutex_init(&srv.stats_lock, NULL);
	/* A signal that arrives before the loop runs (a script may send one
	 * as soon as the port file appears) waits until it can be handled
	 * cleanly; threads inherit the mask, so the main thread takes it. */
	pthread_sigmask(SIG_BLOCK, handled_signals(), NULL);
	if ((ls = listeners_open(&srv)) == NULL)
		return 1;
	if (opts.port_file != NULL && opts.unix_path == NULL &&
	    write_number_file(opts.port_file, srv.tcp_port) != 0)
		return 1;
	if (opts.daemonize && daemon(1, 0) != 0) {
		fprintf(stderr, "cached: cannot daemonize: %s\n",
		    strerror(errno));
		return 1;
	}
	if (opts.pidfile != NULL &&
	    write_number_file(opts.pidfile, (long)getpid()) != 0)
		return 1;
	if (drop_privileges(opts.user) != 0)
		return 1;
	if (evthread_use_pthreads() != 0 ||
	    (srv.main_base = event_base_new()) == NULL) {
		fprintf(stderr, "cached: cannot initialise libevent\n");
		return 1;
	}
	rc = run(&srv, ls);
	event_base_free(srv.main_base);
	libevent_global_shutdown();
	if (opts.pidfile != NULL)
		unlink(opts.pidfile);
	pthread_mutex_destroy(&srv.stats_lock);
	return rc;
}
