/*
 * test_client_util.c -- process and time helpers for libcachedclient's
 * integration tests (see test_client_util.h).  Every wait is bounded: a
 * process that does not come up or go away fails the test instead of
 * hanging it.
 */
#include "test_client_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define START_TIMEOUT_MS	10000
#define STOP_TIMEOUT_MS		5000
#define POLL_MS			10
#define NUTCRACKER		"/usr/sbin/nutcracker"
#define PROBE_LO		20000	/* below Linux's ephemeral range */
#define PROBE_HI		32000
#define NUTCRACKER_TRIES	5
#define MAX_EXTRA_ARGS		16	/* for tc_cached_start_args */

/* Returns the monotonic clock in milliseconds. */
uint64_t
tc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds. */
void
tc_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Returns real time plus the clock's offset, in unix milliseconds. */
uint64_t
tc_clock_read(void *ctx)
{
	struct tc_clock	*clk = ctx;
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 +
	    atomic_load(&clk->offset_ms);
}

/* Moves the clock forward. */
void
tc_clock_advance(struct tc_clock *clk, uint64_t ms)
{
	atomic_fetch_add(&clk->offset_ms, ms);
}

/* Makes the process's private directory. */
static bool
make_dir(struct tc_proc *p)
{
	snprintf(p->dir, sizeof p->dir, "/tmp/cc-test.XXXXXX");
	if (mkdtemp(p->dir) == NULL) {
		print_error("mkdtemp: %s\n", strerror(errno));
		return false;
	}
	return true;
}

/* Removes the files a test process may have left and its directory. */
void
tc_proc_cleanup(struct tc_proc *p)
{
	static const char *const names[] = { "port", "sock", "nc.yml",
	    "nc.pid", "nc.log", "computed" };
	char	path[256];
	size_t	i;

	if (p->dir[0] == '\0')
		return;
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", p->dir, names[i]);
		unlink(path);
	}
	rmdir(p->dir);
	p->dir[0] = '\0';
}

/* Describes a wait status ("exit status 1", "signal 11") into buf. */
static const char *
describe_status(int status, char *buf, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(buf, cap, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, cap, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, cap, "wait status 0x%x", (unsigned)status);
	return buf;
}

/* Waits up to ms for pid to exit; true with *status if it did. */
static bool
wait_exit(pid_t pid, unsigned ms, int *status)
{
	uint64_t deadline = tc_now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return false;
		if (tc_now_ms() >= deadline)
			return false;
		tc_sleep_ms(POLL_MS);
	}
}

/* Forks and execs argv; the child's stdin is /dev/null. */
static pid_t
spawn(const char *const *argv)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		print_error("fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd >= 0) {
			dup2(fd, 0);
			close(fd);
		}
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot exec %s: %s\n", argv[0],
		    strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Reads a complete "<port>\n" file: the port, 0 if not yet, -1 if bad. */
static long
read_port(const char *path)
{
	char	 buf[32], *end;
	size_t	 n;
	long	 v;
	FILE	*f = fopen(path, "r");

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	if (n == 0 || buf[n - 1] != '\n')
		return 0;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || *end != '\n' || v < 1 || v > 65535)
		return -1;
	return v;
}

/* Returns the cached binary under test. */
static const char *
cached_bin(void)
{
	const char *bin = getenv("CACHED");

	if (bin == NULL || *bin == '\0')
		print_error("CACHED is not set (make check sets it)\n");
	return bin;
}

/* Starts cached on 127.0.0.1 and waits for the port it bound. */
bool
tc_cached_start(struct tc_proc *p, unsigned port)
{
	return tc_cached_start_args(p, port, NULL);
}

/* Starts cached with the defaults, then extra, and waits for its port. */
bool
tc_cached_start_args(struct tc_proc *p, unsigned port,
    const char *const *extra)
{
	const char	*bin = cached_bin(), *argv[16 + MAX_EXTRA_ARGS];
	char		 portfile[128], portopt[160], portarg[16], why[64];
	uint64_t	 deadline;
	long		 got;
	int		 status;
	size_t		 i, n = 0;

	memset(p, 0, sizeof *p);
	p->pid = -1;
	if (bin == NULL || !make_dir(p))
		return false;
	snprintf(portfile, sizeof portfile, "%s/port", p->dir);
	snprintf(portopt, sizeof portopt, "port_file=%s", portfile);
	snprintf(portarg, sizeof portarg, "%u", port);
	argv[n++] = bin;
	argv[n++] = "-U"; argv[n++] = "0";
	argv[n++] = "-l"; argv[n++] = "127.0.0.1";
	argv[n++] = "-p"; argv[n++] = portarg;
	argv[n++] = "-t"; argv[n++] = "2";
	argv[n++] = "-o"; argv[n++] = portopt;
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (i == MAX_EXTRA_ARGS) {
			print_error("too many extra cached flags\n");
			return false;
		}
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	if ((p->pid = spawn(argv)) < 0)
		return false;
	for (deadline = tc_now_ms() + START_TIMEOUT_MS;
	    tc_now_ms() < deadline; tc_sleep_ms(POLL_MS)) {
		if ((got = read_port(portfile)) > 0) {
			p->port = (unsigned)got;
			snprintf(p->addr, sizeof p->addr, "127.0.0.1:%u",
			    p->port);
			return true;
		}
		if (got < 0) {
			print_error("cached wrote a bad port to %s\n",
			    portfile);
			tc_proc_kill(p);
			return false;
		}
		if (wait_exit(p->pid, 0, &status)) {
			print_error("cached exited at start-up: %s\n",
			    describe_status(status, why, sizeof why));
			p->pid = -1;
			return false;
		}
	}
	print_error("cached wrote no port within %d ms\n", START_TIMEOUT_MS);
	tc_proc_kill(p);
	return false;
}

/* True if something accepts connections at the unix socket path. */
static bool
unix_accepts(const char *path)
{
	struct sockaddr_un	sun;
	size_t			len = strlen(path);
	int			fd;
	bool			ok;

	if (len >= sizeof sun.sun_path ||
	    (fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return false;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, len);
	ok = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
	close(fd);
	return ok;
}

/* True if something accepts connections on 127.0.0.1:port. */
static bool
tcp_accepts(unsigned port)
{
	struct sockaddr_in	sin;
	int			fd = socket(AF_INET, SOCK_STREAM, 0);
	bool			ok;

	if (fd < 0)
		return false;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
	close(fd);
	return ok;
}

/* Waits until the process accepts connections; false if it died. */
static bool
wait_accepting(struct tc_proc *p, const char *what)
{
	uint64_t	deadline = tc_now_ms() + START_TIMEOUT_MS;
	char		why[64];
	int		status;

	for (; tc_now_ms() < deadline; tc_sleep_ms(POLL_MS)) {
		if (p->sock[0] != '\0' ? unix_accepts(p->sock) :
		    tcp_accepts(p->port))
			return true;
		if (wait_exit(p->pid, 0, &status)) {
			print_error("%s exited at start-up: %s\n", what,
			    describe_status(status, why, sizeof why));
			p->pid = -1;
			return false;
		}
	}
	print_error("%s did not accept within %d ms\n", what,
	    START_TIMEOUT_MS);
	tc_proc_kill(p);
	return false;
}

/* Starts cached on a unix socket and waits until it accepts. */
bool
tc_cached_start_unix(struct tc_proc *p, const char *path)
{
	const char *bin = cached_bin(), *argv[12];
	size_t n = 0;

	p->pid = -1;
	p->port = 0;
	snprintf(p->sock, sizeof p->sock, "%s", path);
	snprintf(p->addr, sizeof p->addr, "%s", path);
	if (bin == NULL)
		return false;
	argv[n++] = bin;
	argv[n++] = "-U"; argv[n++] = "0";
	argv[n++] = "-s"; argv[n++] = path;
	argv[n++] = "-t"; argv[n++] = "2";
	argv[n] = NULL;
	if ((p->pid = spawn(argv)) < 0)
		return false;
	return wait_accepting(p, "cached");
}

/* Kills a process with SIGKILL and reaps it. */
void
tc_proc_kill(struct tc_proc *p)
{
	int status;

	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	p->pid = -1;
}

/* Sends SIGTERM and waits for the exit; status into *status. */
static bool
term_wait(struct tc_proc *p, int *status)
{
	if (p->pid <= 0)
		return false;
	if (kill(p->pid, SIGTERM) != 0) {
		print_error("kill %d: %s\n", (int)p->pid, strerror(errno));
		return false;
	}
	if (!wait_exit(p->pid, STOP_TIMEOUT_MS, status)) {
		print_error("process %d ignored SIGTERM for %d ms\n",
		    (int)p->pid, STOP_TIMEOUT_MS);
		tc_proc_kill(p);
		return false;
	}
	p->pid = -1;
	return true;
}

/* Sends SIGTERM; true if cached exited with status 0 in time. */
bool
tc_cached_stop(struct tc_proc *p)
{
	char	why[64];
	int	status;

	if (!term_wait(p, &status))
		return false;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_error("cached ended with %s after SIGTERM, want exit "
		    "status 0\n", describe_status(status, why, sizeof why));
		return false;
	}
	return true;
}

/* Sends SIGTERM; true if the process exited in time. */
bool
tc_proc_stop(struct tc_proc *p)
{
	int status;

	return term_wait(p, &status);
}

/* Returns a port in [PROBE_LO, PROBE_HI) that is free right now, or 0. */
static unsigned
probe_port(unsigned avoid)
{
	static unsigned	seed;
	unsigned	i, port;

	if (seed == 0)
		seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	for (i = 0; i < 200; i++) {
		struct sockaddr_in	sin;
		int			fd, ok;

		seed = seed * 1103515245u + 12345u;
		port = PROBE_LO + (seed >> 8) % (PROBE_HI - PROBE_LO);
		if (port == avoid || (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			continue;
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return 0;
}

/* Writes nutcracker's configuration for the backends. */
static bool
write_nutcracker_conf(const char *path, unsigned port,
    const struct tc_proc *backends, size_t n)
{
	FILE	*f = fopen(path, "w");
	size_t	 i;

	if (f == NULL) {
		print_error("%s: %s\n", path, strerror(errno));
		return false;
	}
	fprintf(f, "cc:\n"
	    "  listen: 127.0.0.1:%u\n"
	    "  hash: fnv1a_64\n"
	    "  distribution: ketama\n"
	    "  timeout: 1000\n"
	    "  auto_eject_hosts: true\n"
	    "  server_retry_timeout: 1000\n"
	    "  server_failure_limit: 1\n"
	    "  servers:\n", port);
	for (i = 0; i < n; i++)
		fprintf(f, "   - 127.0.0.1:%u:1\n", backends[i].port);
	return fclose(f) == 0;
}

/* Starts nutcracker on probed free ports, retrying if one was taken. */
bool
tc_nutcracker_start(struct tc_proc *p, const struct tc_proc *backends,
    size_t n)
{
	char		conf[128], pidf[128], logf[128], sport[16];
	const char	*argv[16];
	int		try;

	memset(p, 0, sizeof *p);
	p->pid = -1;
	if (access(NUTCRACKER, X_OK) != 0) {
		print_error("%s is not installed\n", NUTCRACKER);
		return false;
	}
	if (!make_dir(p))
		return false;
	snprintf(conf, sizeof conf, "%s/nc.yml", p->dir);
	snprintf(pidf, sizeof pidf, "%s/nc.pid", p->dir);
	snprintf(logf, sizeof logf, "%s/nc.log", p->dir);
	for (try = 0; try < NUTCRACKER_TRIES; try++) {
		unsigned stats;
		size_t k = 0;

		if ((p->port = probe_port(0)) == 0 ||
		    (stats = probe_port(p->port)) == 0)
			continue;
		snprintf(sport, sizeof sport, "%u", stats);
		if (!write_nutcracker_conf(conf, p->port, backends, n))
			return false;
		argv[k++] = NUTCRACKER;
		argv[k++] = "-c"; argv[k++] = conf;
		argv[k++] = "-p"; argv[k++] = pidf;
		argv[k++] = "-o"; argv[k++] = logf;
		argv[k++] = "-s"; argv[k++] = sport;
		argv[k++] = "-a"; argv[k++] = "127.0.0.1";
		argv[k] = NULL;
		if ((p->pid = spawn(argv)) < 0)
			return false;
		if (wait_accepting(p, "nutcracker")) {
			snprintf(p->addr, sizeof p->addr, "127.0.0.1:%u",
			    p->port);
			return true;
		}
		/* Most likely a port was taken meanwhile: try others. */
	}
	print_error("nutcracker did not start; see %s\n", logf);
	return false;
}

/* Fills cfg with defaults tuned for fast, bounded tests. */
void
tc_config(struct cc_config *cfg, const char *servers)
{
	cc_config_init(cfg);
	cfg->servers = servers;
	cfg->connect_timeout_ms = 500;
	cfg->io_timeout_ms = 1000;
	cfg->retry_timeout_s = 1;
	cfg->failure_limit = 1;
	cfg->dead_timeout_s = 1;
	cfg->lock_wait_ms = 5000;
	cfg->ns_refresh_ms = 1000;
}

/* Creates a client or fails the test. */
cc_client *
tc_client(const struct cc_config *cfg)
{
	cc_client	*c = NULL;
	cc_status	 st = cc_client_create(cfg, &c);

	if (st != CC_OK)
		print_error("cc_client_create(%s): %s: %s\n", cfg->servers,
		    cc_strerror(st), cc_errmsg());
	assert_int_equal(st, CC_OK);
	return c;
}

/* Creates a client for one server list with tc_config settings. */
cc_client *
tc_client_for(const char *servers)
{
	struct cc_config cfg;

	tc_config(&cfg, servers);
	return tc_client(&cfg);
}
