/*
 * warm_main.c -- cached-warm, the pre-warmer cron runs: fills cached (or
 * any memcached-compatible servers) with literal and computed entries so
 * the first users of the day find a warm cache.  See cached-warm(1).
 *
 * main() does the set-up in the order the exit statuses promise: options
 * (64), manifests opened (66), the lock (75), a client and a probe that
 * some server answers (69), then the run (warm_run.c) and the summary.
 * The lock is flock(2) on a file, held by an open descriptor until the
 * process ends, so a crashed run never leaves a stale lock behind.
 *
 * State: locals of main only; no locking before the run starts threads.
 */
#include "config.h"

#include "warm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define EXIT_CANTCREAT	73	/* EX_CANTCREAT: the lock file won't open */
#define PROBE_KEYS	8
#define IO_TIMEOUT_MS	1000

/* Makes sure fds 0, 1 and 2 are open, so no pipe or socket lands there. */
static void
std_fds(void)
{
	int fd;

	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return;
}

/* Ignores SIGPIPE and blocks the stop signals (the monitor reads them). */
static void
signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Opens the manifests (stdin when there are none). */
static int
open_inputs(const struct warm_opts *o, struct warm_input *in)
{
	static char *const	 dash[] = { "-" };
	char *const		*names = o->ninputs > 0 ? o->inputs : dash;
	size_t			 i, n = o->ninputs > 0 ? o->ninputs : 1;
	struct stat		 sb;

	for (i = 0; i < n; i++) {
		in[i].name = names[i];
		in[i].fd = strcmp(names[i], "-") == 0 ? STDIN_FILENO :
		    open(names[i], O_RDONLY | O_CLOEXEC);
		if (in[i].fd < 0 || fstat(in[i].fd, &sb) < 0) {
			fprintf(stderr, "cached-warm: %s: %s\n", names[i],
			    strerror(errno));
			return -1;
		}
		in[i].regular = S_ISREG(sb.st_mode);
		in[i].size = in[i].regular ? (uint64_t)sb.st_size : 0;
	}
	return (int)n;
}

/* Says who holds the lock, from the pid written in the file. */
static void
lock_busy(int fd, const char *path)
{
	char	buf[32];
	ssize_t	n = pread(fd, buf, sizeof buf - 1, 0);
	long	pid = 0;

	if (n > 0) {
		buf[n] = '\0';
		pid = strtol(buf, NULL, 10);
	}
	if (pid > 0)
		fprintf(stderr, "cached-warm: another run (pid %ld) holds %s\n",
		    pid, path);
	else
		fprintf(stderr, "cached-warm: another run holds %s\n", path);
}

/* Takes the lock file; returns 0 or an exit status. */
static int
lock_take(const char *path)
{
	struct stat	sb;
	char		pid[24];
	int		fd, n;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "cached-warm: lock file %s: %s\n", path,
		    fd < 0 ? strerror(errno) : "not a regular file");
		return EXIT_CANTCREAT;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			fprintf(stderr, "cached-warm: lock file %s: %s\n",
			    path, strerror(errno));
			return EXIT_CANTCREAT;
		}
		lock_busy(fd, path);
		return WARM_EXIT_TEMPFAIL;
	}
	/* The descriptor stays open (and locked) until we exit. */
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (sb.st_uid == geteuid() && ftruncate(fd, 0) == 0 &&
	    pwrite(fd, pid, (size_t)n, 0) != n)
		fprintf(stderr, "cached-warm: lock file %s: cannot write the "
		    "pid\n", path);
	return 0;
}

/* Creates the client; returns 0 or an exit status. */
static int
client_open(const struct warm_opts *o, cc_client **c)
{
	struct cc_config	cfg;
	cc_status		st;

	cc_config_init(&cfg);
	cfg.servers = o->servers;
	cfg.pool_size = o->jobs + 1;
	cfg.io_timeout_ms = IO_TIMEOUT_MS;
	if ((st = cc_client_create(&cfg, c)) == CC_OK)
		return 0;
	fprintf(stderr, "cached-warm: --servers %s: %s\n", o->servers,
	    cc_errmsg());
	return st == CC_BAD_ARGUMENT ? WARM_EXIT_USAGE : WARM_EXIT_SOFTWARE;
}

/* Connects to one server of the list ("host:port", "[v6]:port", "host"
 * or "/unix.sock") within timeout_ms; 0, or an errno (ETIMEDOUT when no
 * answer came), or -1 with *gai set when the name does not resolve. */
static int
try_connect(char *entry, int timeout_ms, int *gai)
{
	struct addrinfo		 hints, *res = NULL, *ai;
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
	char			*host = entry, *port = NULL, *close_br;
	int			 fd, err = ECONNREFUSED;
	socklen_t		 elen = sizeof err;

	if (entry[0] == '/') {
		if (strlen(entry) >= sizeof sun.sun_path)
			return ENAMETOOLONG;
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		strcpy(sun.sun_path, entry);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			return errno;
		err = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 ?
		    0 : errno;
		close(fd);
		return err;
	}
	if (entry[0] == '[' && (close_br = strchr(entry, ']')) != NULL) {
		host = entry + 1;
		*close_br = '\0';
		if (close_br[1] == ':')
			port = close_br + 2;
	} else if ((port = strrchr(entry, ':')) != NULL)
		*port++ = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if ((*gai = getaddrinfo(host, port != NULL ? port : "11211", &hints,
	    &res)) != 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			err = 0;
		else if (errno != EINPROGRESS)
			err = errno;
		else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) <= 0)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
			    &elen) != 0)
				err = errno;
		}
		close(fd);
		if (err == 0)
			break;
	}
	freeaddrinfo(res);
	return err;
}

/* Says, for each server, why it did not answer, in plain words:
 * "cached-warm: 127.0.0.1:11211: connection refused". */
static void
explain_unreachable(const char *servers, cc_status st)
{
	char		*copy, *entry, *save = NULL, *label, msg[128];
	int		 err, gai = 0;

	if ((copy = strdup(servers)) == NULL)
		return;
	for (entry = strtok_r(copy, ", \t", &save); entry != NULL;
	    entry = strtok_r(NULL, ", \t", &save)) {
		if ((label = strdup(entry)) == NULL)
			break;
		err = try_connect(entry, IO_TIMEOUT_MS, &gai);
		if (err == 0)
			snprintf(msg, sizeof msg, "accepts connections but "
			    "does not answer (%s)", cc_strerror(st));
		else if (err < 0)
			snprintf(msg, sizeof msg, "cannot resolve: %s",
			    gai_strerror(gai));
		else if (err == ETIMEDOUT)
			snprintf(msg, sizeof msg, "no answer within %d ms",
			    IO_TIMEOUT_MS);
		else
			snprintf(msg, sizeof msg, "%s", strerror(err));
		/* strerror's "Connection refused" reads "connection
		 * refused" in the middle of a line. */
		if (isupper((unsigned char)msg[0]) &&
		    islower((unsigned char)msg[1]))
			msg[0] = (char)tolower((unsigned char)msg[0]);
		fprintf(stderr, "cached-warm: %s: %s\n", label, msg);
		free(label);
	}
	free(copy);
}

/*
 * Checks that some server answers: gets of a few probe keys, which spread
 * over the servers; any reply (even "not found") will do.
 */
static int
probe(const struct warm_opts *o, cc_client *c)
{
	char		 key[32];
	void		*v;
	size_t		 len;
	cc_status	 st = CC_ERROR;
	int		 i;

	for (i = 0; i < PROBE_KEYS; i++) {
		snprintf(key, sizeof key, "cached-warm:probe:%d", i);
		v = NULL;
		st = cc_get(c, key, &v, &len, NULL);
		free(v);
		if (st == CC_OK || st == CC_NOT_FOUND)
			return 0;
	}
	explain_unreachable(o->servers, st);
	fprintf(stderr, "cached-warm: no server reachable (%s)\n",
	    o->servers);
	return WARM_EXIT_UNAVAILABLE;
}

/* Prints the summary and returns the final exit status. */
static int
finish(const struct warm_opts *o, struct warm_report *report, int rc)
{
	struct warm_totals	t;
	double			elapsed = warm_report_finish(report, &t);
	char			line[256];

	if (rc == 0 && t.failed > 0)
		rc = WARM_EXIT_FAILED;
	if (!o->quiet || rc != 0) {
		warm_report_summary(line, sizeof line, &t, elapsed, o->dry_run);
		printf("%s\n", line);
		fflush(stdout);
	}
	return rc;
}

/* Parses the command line; returns -1 to go on, else an exit status. */
static int
options(struct warm_opts *o, int argc, char **argv)
{
	char err[WARM_ERR_MAX];

	switch (warm_opts_parse(o, argc, argv, err, sizeof err)) {
	case WARM_OPTS_HELP:
		fputs(warm_usage(), stdout);
		return 0;
	case WARM_OPTS_VERSION:
		printf("cached-warm %s\n", PACKAGE_VERSION);
		return 0;
	case WARM_OPTS_ERROR:
		fprintf(stderr, "cached-warm: %s (cached-warm -h lists the "
		    "options)\n", err);
		return WARM_EXIT_USAGE;
	case WARM_OPTS_RUN:
	default:
		return -1;
	}
}

/* Sets up, runs, and reports; every path out frees what it made. */
static int
warm(struct warm_opts *o, struct warm_input *in)
{
	struct warm_run	run;
	int		rc, nin;

	if ((nin = open_inputs(o, in)) < 0)
		return WARM_EXIT_NOINPUT;
	if (o->progress < 0)
		o->progress = isatty(STDERR_FILENO);
	memset(&run, 0, sizeof run);
	run.opts = o;
	run.stop_fd = -1;
	if (!o->dry_run && o->lock_path != NULL &&
	    (rc = lock_take(o->lock_path)) != 0)
		return rc;
	if (!o->dry_run && ((rc = client_open(o, &run.client)) != 0 ||
	    (rc = probe(o, run.client)) != 0)) {
		cc_client_destroy(run.client);
		return rc;
	}
	if ((run.report = warm_report_create(o->progress > 0)) == NULL) {
		cc_client_destroy(run.client);
		return WARM_EXIT_SOFTWARE;
	}
	rc = warm_run(&run, in, (size_t)nin);
	rc = finish(o, run.report, rc);
	warm_report_destroy(run.report);
	cc_client_destroy(run.client);
	return rc;
}

int
main(int argc, char **argv)
{
	struct warm_opts	 o;
	struct warm_input	*in;
	int			 rc;

	if ((rc = options(&o, argc, argv)) >= 0)
		return rc;
	std_fds();
	signals();
	if ((in = calloc(o.ninputs + 1, sizeof *in)) == NULL)
		return WARM_EXIT_SOFTWARE;
	rc = warm(&o, in);
	free(in);
	return rc;
}
