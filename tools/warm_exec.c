/*
 * warm_exec.c -- runs one generator command and captures its stdout.
 *
 * The command is "/bin/sh -c CMD", started with posix_spawn in a process
 * group of its own (so a timeout kills everything it started: SIGKILL to
 * the group), stdin from /dev/null, stdout into a pipe, stderr inherited
 * so its messages reach cron's mail.  Signals blocked in cached-warm's
 * threads are unblocked and reset to default for the child.  Every fd of
 * ours is close-on-exec, so a child never holds a pipe or the lock file.
 *
 * Data structure: the output buffer grows by doubling up to max_out + 1
 * bytes (one byte more tells "too large").  Waiting is poll(2) on the
 * pipe and the run's stop descriptor, bounded by the deadline; the child
 * is always reaped.  No shared state, no locking: each worker runs its
 * own commands.
 */
#include "config.h"

#include "warm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHELL		"/bin/sh"
#define FIRST_BUF	4096
#define WAIT_FIRST_MS	1
#define WAIT_MAX_MS	50

/* One running command. */
struct child {
	pid_t		 pid;
	int		 fd;		/* read end of its stdout */
	int		 stop_fd;
	uint64_t	 deadline;	/* monotonic ms */
	size_t		 max_out;
	char		*buf;
	size_t		 len, cap;
};

/* Returns the monotonic clock in milliseconds. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Returns the length of word quoted for sh, or 0 if it holds a NUL. */
static size_t
quoted_len(const cc_arg *w)
{
	size_t i, n = 2;

	for (i = 0; i < w->len; i++) {
		char c = ((const char *)w->data)[i];

		if (c == '\0')
			return 0;
		n += c == '\'' ? 4 : 1;
	}
	return n;
}

/* Writes word in single quotes ('\'' for a quote); returns the end. */
static char *
put_quoted(char *o, const cc_arg *w)
{
	size_t i;

	*o++ = '\'';
	for (i = 0; i < w->len; i++) {
		char c = ((const char *)w->data)[i];

		if (c == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else
			*o++ = c;
	}
	*o++ = '\'';
	return o;
}

/* Returns the command: tmpl with {} replaced by the quoted words. */
char *
warm_exec_expand(const char *tmpl, const cc_arg *words, size_t n)
{
	size_t		 i, wlen = 0, holes = 0, q;
	const char	*s;
	char		*cmd, *o;

	for (i = 0; i < n; i++) {
		if ((q = quoted_len(&words[i])) == 0)
			return NULL;
		wlen += q + 1;
	}
	for (s = tmpl; (s = strstr(s, "{}")) != NULL; s += 2)
		holes++;
	if ((cmd = malloc(strlen(tmpl) + holes * wlen + 1)) == NULL)
		return NULL;
	for (o = cmd, s = tmpl; *s != '\0';) {
		if (s[0] != '{' || s[1] != '}') {
			*o++ = *s++;
			continue;
		}
		for (i = 0; i < n; i++) {
			if (i > 0)
				*o++ = ' ';
			o = put_quoted(o, &words[i]);
		}
		s += 2;
	}
	*o = '\0';
	return cmd;
}

/* Starts the shell for cmd with its stdout on a new pipe. */
static int
spawn(struct child *ch, const char *cmd, char *const envp[])
{
	posix_spawn_file_actions_t	 fa;
	posix_spawnattr_t		 at;
	sigset_t			 none, dflt;
	char				*argv[] = { "sh", "-c", (char *)cmd, NULL };
	int				 p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return errno;
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGQUIT);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	rc = posix_spawn(&ch->pid, SHELL, &fa, &at, argv, envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		return rc;
	}
	ch->fd = p[0];
	return 0;
}

/* Kills the child's whole process group. */
static void
kill_group(struct child *ch)
{
	(void)kill(-ch->pid, SIGKILL);
}

/* Reaps the child; its wait status goes to *status. */
static void
reap(struct child *ch, int *status)
{
	while (waitpid(ch->pid, status, 0) < 0 && errno == EINTR)
		;
}

/* Appends what the pipe holds: 0 more to come, 1 end of file, 2 over the
 * limit, -1 out of memory. */
static int
drain(struct child *ch)
{
	ssize_t	 n;
	size_t	 ncap;
	char	*nbuf;

	if (ch->len == ch->cap) {
		ncap = ch->cap == 0 ? FIRST_BUF : ch->cap * 2;
		if (ncap > ch->max_out + 1)
			ncap = ch->max_out + 1;
		if ((nbuf = realloc(ch->buf, ncap)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		ch->buf = nbuf;
		ch->cap = ncap;
	}
	n = read(ch->fd, ch->buf + ch->len, ch->cap - ch->len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		return 1;
	ch->len += (size_t)n;
	return ch->len > ch->max_out ? 2 : 0;
}

/* Waits for fd (or -1: nothing) or the stop fd until the deadline. */
static enum we_result
wait_ready(struct child *ch, int fd, uint64_t cap_ms, bool *ready)
{
	struct pollfd	pfd[2];
	uint64_t	now = now_ms(), left;
	int		n = 0, rc;

	*ready = false;
	if (now >= ch->deadline)
		return WE_TIMEOUT;
	left = ch->deadline - now;
	if (cap_ms > 0 && left > cap_ms)
		left = cap_ms;
	if (fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (ch->stop_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = ch->stop_fd, .events = POLLIN };
	rc = poll(pfd, (nfds_t)n, (int)left);
	if (rc < 0 && errno != EINTR)
		return WE_ERROR;
	if (rc > 0 && ch->stop_fd >= 0 && pfd[n - 1].revents != 0)
		return WE_STOPPED;
	*ready = rc > 0 && fd >= 0 && pfd[0].revents != 0;
	return WE_OK;
}

/* Reads stdout to its end. */
static enum we_result
read_output(struct child *ch)
{
	enum we_result	r;
	bool		ready;
	int		d;

	for (;;) {
		if ((r = wait_ready(ch, ch->fd, 0, &ready)) != WE_OK)
			return r;
		if (!ready)
			continue;
		if ((d = drain(ch)) < 0)
			return WE_ERROR;
		if (d == 2)
			return WE_TOO_LARGE;
		if (d == 1)
			return WE_OK;
	}
}

/* Waits for the child to exit; WE_OK with its status in *status. */
static enum we_result
wait_exit(struct child *ch, int *status)
{
	enum we_result	r;
	uint64_t	delay = WAIT_FIRST_MS;
	bool		ready;
	pid_t		p;

	for (;;) {
		p = waitpid(ch->pid, status, WNOHANG);
		if (p == ch->pid)
			return WE_OK;
		if (p < 0 && errno != EINTR)
			return WE_ERROR;
		if ((r = wait_ready(ch, -1, delay, &ready)) != WE_OK)
			return r;
		if ((delay *= 2) > WAIT_MAX_MS)
			delay = WAIT_MAX_MS;
	}
}

/* Turns a wait status into the result. */
static enum we_result
exit_result(int status, struct we_output *out)
{
	if (WIFEXITED(status)) {
		out->status = WEXITSTATUS(status);
		return out->status == 0 ? WE_OK : WE_EXIT;
	}
	out->status = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	return WE_SIGNAL;
}

/* Runs cmd and captures its stdout. */
enum we_result
warm_exec_run(const char *cmd, char *const envp[], unsigned timeout_ms,
    size_t max_out, int stop_fd, struct we_output *out)
{
	struct child	ch = { .stop_fd = stop_fd, .max_out = max_out };
	enum we_result	r;
	int		status = 0, rc, saved;

	memset(out, 0, sizeof *out);
	ch.deadline = now_ms() + timeout_ms;
	if ((rc = spawn(&ch, cmd, envp)) != 0) {
		out->status = rc;
		return WE_ERROR;
	}
	r = read_output(&ch);
	if (r == WE_OK)
		r = wait_exit(&ch, &status);
	saved = errno;
	close(ch.fd);
	if (r != WE_OK) {
		kill_group(&ch);
		reap(&ch, &status);
		free(ch.buf);
		out->status = r == WE_ERROR ? saved : 0;
		return r;
	}
	if ((r = exit_result(status, out)) != WE_OK) {
		free(ch.buf);
		return r;
	}
	out->data = ch.buf != NULL ? ch.buf : calloc(1, 1);
	out->len = ch.len;
	if (out->data == NULL) {
		out->status = ENOMEM;
		return WE_ERROR;
	}
	return WE_OK;
}

/* Describes a result. */
void
warm_exec_describe(enum we_result r, const struct we_output *out, char *buf,
    size_t len)
{
	switch (r) {
	case WE_OK:
		snprintf(buf, len, "succeeded");
		break;
	case WE_EXIT:
		snprintf(buf, len, "exited with status %d", out->status);
		break;
	case WE_SIGNAL:
		snprintf(buf, len, "killed by signal %d (SIG%s)", out->status,
		    sigabbrev_np(out->status) != NULL ?
		    sigabbrev_np(out->status) : "?");
		break;
	case WE_TIMEOUT:
		snprintf(buf, len, "timed out (killed)");
		break;
	case WE_TOO_LARGE:
		snprintf(buf, len, "wrote more than the item limit (killed)");
		break;
	case WE_STOPPED:
		snprintf(buf, len, "stopped: cached-warm was interrupted");
		break;
	case WE_ERROR:
	default:
		snprintf(buf, len, "could not run: %s", strerror(out->status));
		break;
	}
}
