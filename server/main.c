/*
 * main.c -- cached's entry point: parse options, bind, optionally
 * drop privileges and daemonize, start the store, the workers and the
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
#include <fcntl.h>
#include <grp.h>
#ifdef HAVE_MALLOC_H
#include <malloc.h>
#endif
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "auth.h"
#include "listener.h"
#include "log.h"
#include "options.h"
#include "server.h"
#include "tls.h"
#include "stats_detail.h"
#include "snapshot.h"
#include "watch.h"
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

/* -r: raises the core file size limit as far as allowed, as memcached
 * does, so a crash leaves a whole core. */
static void
enable_coredumps(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_CORE, &rl) != 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		log_msg(LOG_ERR, "warning: -r: cannot raise the core size "
		    "limit: %s", strerror(errno));
}

/* -k: locks all memory, now and later, in RAM; a failure (RLIMIT_MEMLOCK)
 * is a warning, with memcached's wording. */
static void
lock_memory(void)
{
	if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
		log_msg(LOG_ERR, "warning: -k invalid, mlockall() failed: %s",
		    strerror(errno));
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

/* Opens (creates) the -P pidfile, after privileges are dropped so the
 * user who must remove it at exit owns it; -1 after saying why. */
static int
pidfile_open(const char *path, const char *user)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0644);

	if (fd < 0 && user != NULL && errno == EACCES)
		fprintf(stderr, "cached: cannot write %s: %s (it is written "
		    "as user '%s' after -u: give it a directory that user can "
		    "write, such as /run/cached/)\n", path, strerror(errno),
		    user);
	else if (fd < 0)
		fprintf(stderr, "cached: cannot write %s: %s\n", path,
		    strerror(errno));
	return fd;
}

/* Detaches as daemon(1, 0) does, except that the parent does not exit at
 * once: it waits until the child calls daemon_ready() (exit status 0) or
 * dies first (status 1).  So "cached -d -P FILE" returns only when FILE
 * holds the daemon's pid, as an init script or a Type=forking unit reading
 * the pidfile after the start command expects, and a failure to write it
 * reaches the exit status.  Returns the fd to hand to daemon_ready(), -1
 * on failure. */
static int
daemonize(void)
{
	int	p[2], null;
	pid_t	pid;
	char	c;
	ssize_t	n;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	if (setsid() < 0)
		return -1;
	if ((null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return p[1];
}

/* Lets the waiting parent of daemonize() exit with status 0. */
static void
daemon_ready(int fd)
{
	if (fd >= 0) {
		(void)!write(fd, "", 1);
		close(fd);
	}
}

/* Writes our pid (after daemonize(), so the daemon's) into the open
 * pidfile. */
static int
pidfile_write(int fd, const char *path)
{
	char	buf[24];
	int	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());

	if (write(fd, buf, (size_t)n) != n || close(fd) != 0) {
		log_msg(LOG_ERR, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Tells systemd (a Type=notify unit) how we are: one datagram to the unix
 * socket named by $NOTIFY_SOCKET ("@name" is in the abstract namespace),
 * which is all sd_notify(3) does; no libsystemd needed.  Best effort. */
static void
notify_systemd(const char *state)
{
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sa;
	size_t			 len;
	int			 fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    (len = strlen(path)) >= sizeof sa.sun_path)
		return;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_msg(LOG_ERR, "cannot notify systemd (%s): %s", path,
		    strerror(errno));
	if (fd >= 0)
		close(fd);
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

/* SIGHUP: re-reads the auth file (-S / -Y).  A new list is swapped in
 * atomically for new logins (connections already in stay in); the old
 * one is kept until exit, since a worker may be checking against it
 * right now.  A file that fails to load leaves the old list in place. */
static void
reload_auth(struct server *srv)
{
	char		 err[256];
	struct auth_db	*db, *old, **keep;

	if ((db = auth_load(srv->opts->auth_file, err, sizeof err)) == NULL) {
		log_msg(LOG_ERR, "SIGHUP received: auth file not reloaded, "
		    "old list kept: %s", err);
		return;
	}
	keep = realloc(srv->auth_old, (srv->nauth_old + 1) * sizeof *keep);
	if (keep == NULL) {
		auth_free(db);
		log_msg(LOG_ERR, "SIGHUP received: auth file not reloaded, "
		    "old list kept: out of memory");
		return;
	}
	srv->auth_old = keep;
	old = __atomic_exchange_n(&srv->auth, db, __ATOMIC_ACQ_REL);
	srv->auth_old[srv->nauth_old++] = old;
	log_msg(LOG_INFO, "SIGHUP received: auth file reloaded, %zu users",
	    auth_count(db));
}

/* SIGHUP: reloads what can change under a running server: the auth
 * file and the TLS certificates (a failed reload keeps the old ones and
 * says why).  Logs go to stderr, which the caller redirects; there is
 * nothing to reopen. */
static void
reload(struct server *srv)
{
	char err[768];

	if (srv->opts->auth_file != NULL)
		reload_auth(srv);
	if (srv->tls == NULL) {
		if (srv->opts->auth_file == NULL)
			log_msg(LOG_INFO, "SIGHUP received: nothing to "
			    "reload, running on");
		return;
	}
	if (tls_server_reload(srv->tls, err, sizeof err))
		log_msg(LOG_INFO, "SIGHUP received: TLS certificates reloaded");
	else
		log_msg(LOG_ERR, "SIGHUP received: TLS certificates not "
		    "reloaded, old ones kept: %.*s", (int)strcspn(err, "\r"),
		    err);
}

/* Loads the TLS certificates of -Z before anything binds; exits with
 * EXIT_CONFIG (78) when they cannot be used, so a server never runs that
 * would fail every handshake. */
static void
tls_setup(struct server *srv)
{
	char err[768];

	if (!srv->opts->ssl_enabled)
		return;
	if ((srv->tls = tls_server_create(srv->opts, err, sizeof err)) ==
	    NULL) {
		fprintf(stderr, "cached: %.*s\n", (int)strcspn(err, "\r"), err);
		exit(EXIT_CONFIG);
	}
	if (srv->opts->ssl_kernel_tls)
		log_msg(LOG_ERR, "warning: ssl_kernel_tls is not supported, "
		    "TLS runs in user space");
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
	sc.large_pages = srv->opts->large_pages;
	sc.clock = wall_clock;
	sc.evicted = watch_evicted;
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
	else if (!watch_init(srv->opts->threads,
	    srv->opts->worker_logbuf_size) ||
	    workers_init(srv, srv->opts->threads) != 0 ||
	    workers_start(srv) != 0)
		fprintf(stderr, "cached: cannot start worker threads\n");
	else if (listeners_start(ls, srv) != 0)
		fprintf(stderr, "cached: cannot start accepting\n");
	else if (srv->snap != NULL && snapshot_start(srv->snap) != 0)
		fprintf(stderr, "cached: cannot start the snapshot thread\n");
	else {
		/* Signals held back since start-up are handled from here on. */
		pthread_sigmask(SIG_UNBLOCK, handled_signals(), NULL);
		notify_systemd("READY=1");
		event_base_dispatch(srv->main_base);
		notify_systemd("STOPPING=1");
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
	int			 rc, pidfd = -1, readyfd = -1;

	switch (options_parse(&opts, argc, argv)) {
	case OPTIONS_EXIT_OK:
		return 0;
	case OPTIONS_EXIT_USAGE:
		return EXIT_USAGE;
	case OPTIONS_RUN:
		break;
	}
	log_set_level(opts.verbose);
	/* As memcached: -L where huge pages cannot be had is an error. */
	if (opts.large_pages && !options_thp_usable(OPTIONS_THP_PATH))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(opts.maxconns);
	if (opts.enable_coredumps)
		enable_coredumps();
	if (opts.lock_memory)
		lock_memory();
	tune_malloc();

	memset(&srv, 0, sizeof srv);
	srv.opts = &opts;
	srv.started = time(NULL);
	srv.crawler_on = true;
	srv.tun = (struct server_tunables)SERVER_TUNABLES_DEFAULT;
	/* -D turns per-prefix stats on from the start, as in memcached. */
	if (opts.detail_enabled) {
		if ((srv.detail = stats_detail_new(opts.prefix_delimiter)) ==
		    NULL) {
			fprintf(stderr, "cached: out of memory\n");
			return 1;
		}
		srv.detail_on = 1;
	}
	pthread_mutex_init(&srv.stats_lock, NULL);
	if (opts.auth_file != NULL) {
		char err[256];

		/* read before privileges are dropped, like the port */
		if ((srv.auth = auth_load(opts.auth_file, err,
		    sizeof err)) == NULL) {
			fprintf(stderr, "cached: %s file: %s\n", opts.sasl ?
			    "SASL password" : "auth", err);
			return 1;
		}
	}
	/* A signal that arrives before the loop runs (a script may send one
	 * as soon as the port file appears) waits until it can be handled
	 * cleanly; threads inherit the mask, so the main thread takes it. */
	pthread_sigmask(SIG_BLOCK, handled_signals(), NULL);
	tls_setup(&srv);
	if ((ls = listeners_open(&srv)) == NULL)
		return 1;
	if (opts.port_file != NULL && opts.unix_path == NULL &&
	    write_number_file(opts.port_file, srv.tcp_port) != 0)
		return 1;
	/* The pidfile is created as the -u user, so that user can remove it
	 * at exit, and before daemon() so errors reach the terminal. */
	if (drop_privileges(opts.user) != 0)
		return 1;
	if (opts.pidfile != NULL &&
	    (pidfd = pidfile_open(opts.pidfile, opts.user)) < 0)
		return 1;
	if (opts.daemonize && (readyfd = daemonize()) < 0) {
		fprintf(stderr, "cached: cannot daemonize: %s\n",
		    strerror(errno));
		return 1;
	}
	if (pidfd >= 0 && pidfile_write(pidfd, opts.pidfile) != 0)
		return 1;
	daemon_ready(readyfd);
	if (evthread_use_pthreads() != 0 ||
	    (srv.main_base = event_base_new()) == NULL) {
		fprintf(stderr, "cached: cannot initialise libevent\n");
		return 1;
	}
	rc = run(&srv, ls);
	tls_server_free(srv.tls);
	event_base_free(srv.main_base);
	libevent_global_shutdown();
	if (opts.pidfile != NULL && unlink(opts.pidfile) != 0)
		log_msg(LOG_ERR, "cannot remove %s: %s", opts.pidfile,
		    strerror(errno));
	pthread_mutex_destroy(&srv.stats_lock);
	auth_free(srv.auth);
	for (size_t i = 0; i < srv.nauth_old; i++)
		auth_free(srv.auth_old[i]);
	free(srv.auth_old);
	stats_detail_free(srv.detail);
	return rc;
}
