/*
 * warm_run.c -- one run of cached-warm: the main thread reads and checks
 * the manifests and feeds jobs to the workers; the workers compute and
 * store; a monitor thread draws the progress bar and turns SIGINT,
 * SIGTERM and SIGHUP into a clean stop (running commands killed, queued
 * entries counted failed, summary printed).
 *
 * Jobs: literal plain entries are packed into a batch (up to --batch
 * entries or BATCH_BYTES of keys and values) stored pipelined; a memo
 * entry or an entry to compute is a job of its own.  A job owns copies of
 * its bytes, since the reader's buffer moves on.  The queue holds at most
 * QUEUE_PER_WORKER jobs per worker, so memory stays bounded however long
 * the manifest is.
 *
 * With --strict, regular files are checked in a first pass and nothing is
 * stored if any line is bad; a pipe cannot be read twice, so there the
 * run stops at the first bad line (entries before it are stored whole).
 *
 * Locking: the queue's (warm_queue.c) and the report's; the producer's
 * state is its own thread's.  The monitor only reads counters and sets
 * run->stopping.
 */
#include "config.h"

#include "warm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define BATCH_BYTES		(256 * 1024)
#define QUEUE_PER_WORKER	2
#define LINE_SLACK		65536	/* room for words besides the value */
#define TICK_MS			200
#define ENV_PREFIX		"CACHED_WARM_"

extern char **environ;

enum job_kind { JOB_BATCH, JOB_ENTRY };

struct job {
	enum job_kind		 kind;
	struct warm_batch	 batch;		/* JOB_BATCH */
	char			*arena;		/* its keys and values */
	size_t			*koff, *voff;	/* offsets into arena */
	size_t			 used, cap;
	struct warm_entry	*entry;		/* JOB_ENTRY */
};

/* The reading side of a run. */
struct producer {
	struct warm_run		*run;
	const struct warm_opts	*opts;
	struct wq		*q;		/* NULL: dry run or check pass */
	bool			 check_only;	/* --strict first pass */
	struct job		*cur;		/* batch being filled */
	uint64_t		 rng;
	uint64_t		 in_total, in_base;
	size_t			 max_line;
	unsigned long		 bad;		/* bad lines seen */
	bool			 aborted;	/* --strict stopped the run */
	bool			 oom;		/* out of memory: stopped */
	bool			 io_error;
};

/* The monitor thread's state. */
struct monitor {
	struct warm_run	*run;
	int		 sigfd;
	int		 done[2];	/* written when the run ends */
	int		 stop[2];	/* written when a signal stops it */
	pthread_t	 tid;
	bool		 started;
};

/* Returns 64 random bits (splitmix64). */
static uint64_t
next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * Takes a random 0..span seconds off ttl, never to zero: a TTL only
 * shortens, so no value outlives its maximum age.  An absolute TTL (a
 * unix time) is jittered on the time left.
 */
static uint32_t
jitter(struct producer *p, uint32_t ttl)
{
	const struct warm_opts	*o = p->opts;
	uint64_t		 left = ttl, span, now;
	uint32_t		 out;

	if (ttl == 0 || o->jitter == 0)
		return ttl;
	if (ttl > CC_TTL_MAX) {
		now = (uint64_t)time(NULL);
		if (ttl <= now + 1)
			return ttl;
		left = ttl - now;
	}
	span = o->jitter_pct ? left * o->jitter / 100 : o->jitter;
	if (span >= left)
		span = left - 1;
	out = ttl - (uint32_t)(next_random(&p->rng) % (span + 1));
	return ttl > CC_TTL_MAX && out <= CC_TTL_MAX ? ttl : out;
}

/* Frees a job and what it owns. */
static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->batch.items);
	free(j->batch.srcs);
	free(j->arena);
	free(j->koff);
	free(j->voff);
	free(j->entry);
	free(j);
}

/* Creates an empty batch job for up to n entries. */
static struct job *
batch_new(size_t n)
{
	struct job *j = calloc(1, sizeof *j);

	if (j == NULL)
		return NULL;
	j->kind = JOB_BATCH;
	j->batch.items = calloc(n, sizeof *j->batch.items);
	j->batch.srcs = calloc(n, sizeof *j->batch.srcs);
	j->koff = calloc(n, sizeof *j->koff);
	j->voff = calloc(n, sizeof *j->voff);
	if (j->batch.items == NULL || j->batch.srcs == NULL ||
	    j->koff == NULL || j->voff == NULL) {
		job_free(j);
		return NULL;
	}
	return j;
}

/* Copies len bytes into the job's arena; returns their offset. */
static int
arena_put(struct job *j, const void *data, size_t len, size_t *off)
{
	size_t	 ncap = j->cap > 0 ? j->cap : 4096;
	char	*na;

	while (ncap < j->used + len)
		ncap *= 2;
	if (ncap != j->cap) {
		if ((na = realloc(j->arena, ncap)) == NULL)
			return -1;
		j->arena = na;
		j->cap = ncap;
	}
	if (len > 0)
		memcpy(j->arena + j->used, data, len);
	*off = j->used;
	j->used += len;
	return 0;
}

/* Sends the batch being filled to the workers. */
static void
batch_flush(struct producer *p)
{
	struct job	*j = p->cur;
	size_t		 i;

	if (j == NULL || j->batch.n == 0)
		return;
	for (i = 0; i < j->batch.n; i++) {
		j->batch.items[i].key = j->arena + j->koff[i];
		j->batch.items[i].value = j->arena + j->voff[i];
	}
	p->cur = NULL;
	warm_queue_push(p->q, j);
}

/* Adds a literal plain entry to the batch being filled. */
static int
batch_add(struct producer *p, const struct warm_src *src,
    const struct wm_entry *e, uint32_t ttl, uint32_t flags)
{
	struct job	*j;
	size_t		 n;

	if (p->cur == NULL && (p->cur = batch_new(p->opts->batch)) == NULL)
		return -1;
	j = p->cur;
	n = j->batch.n;
	if (arena_put(j, e->key, strlen(e->key) + 1, &j->koff[n]) < 0 ||
	    arena_put(j, e->value, e->value_len, &j->voff[n]) < 0)
		return -1;
	j->batch.items[n].len = e->value_len;
	j->batch.items[n].flags = flags;
	j->batch.items[n].ttl = ttl;
	j->batch.srcs[n] = *src;
	j->batch.n++;
	j->batch.bytes += e->value_len;
	if (j->batch.n == p->opts->batch || j->used >= BATCH_BYTES)
		batch_flush(p);
	return 0;
}

/* Makes a job owning a copy of one memo or computed entry. */
static struct job *
entry_job(const struct warm_src *src, const struct wm_entry *e,
    uint32_t ttl, uint32_t flags)
{
	struct warm_entry	*w;
	struct job		*j;
	size_t			 size = sizeof *w + e->nargs * sizeof(cc_arg) +
				    e->value_len, i;
	char			*o;

	for (i = 0; i < e->nargs; i++)
		size += e->args[i].len;
	if ((j = calloc(1, sizeof *j)) == NULL ||
	    (w = j->entry = calloc(1, size)) == NULL) {
		free(j);
		return NULL;
	}
	j->kind = JOB_ENTRY;
	w->src = *src;
	w->memo = e->kind == WM_MEMO;
	w->computed = e->computed;
	w->ttl = ttl;
	w->flags = flags;
	if (w->memo) {
		snprintf(w->ns, sizeof w->ns, "%s", e->ns);
		snprintf(w->fn, sizeof w->fn, "%s", e->fn);
	} else
		snprintf(w->key, sizeof w->key, "%s", e->key);
	w->args = (cc_arg *)(w + 1);
	w->nargs = e->nargs;
	o = (char *)(w->args + e->nargs);
	for (i = 0; i < e->nargs; i++) {
		if (e->args[i].len > 0)
			memcpy(o, e->args[i].data, e->args[i].len);
		w->args[i] = (cc_arg){ o, e->args[i].len };
		o += e->args[i].len;
	}
	if (e->value_len > 0)
		memcpy(o, e->value, e->value_len);
	w->value = o;
	w->len = e->value_len;
	return j;
}

/* Reports a bad line; returns -1 if it ends the run (--strict). */
static int __attribute__((format(printf, 3, 4)))
bad_line(struct producer *p, const struct warm_src *src, const char *fmt,
    ...)
{
	char	msg[WARM_ERR_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p->bad++;
	if (p->check_only)
		warm_report_log(p->run->report, "%s:%lu: %s", src->file, src->line,
		    msg);
	else {
		warm_report_read(p->run->report);
		warm_store_fail(p->run, src, "%s", msg);
	}
	if (p->opts->strict && !p->check_only) {
		p->aborted = true;
		return -1;
	}
	return 0;
}

/* True if some argument holds a NUL byte (no shell word can carry it). */
static bool
args_have_nul(const struct wm_entry *e)
{
	size_t i;

	for (i = 0; i < e->nargs; i++)
		if (memchr(e->args[i].data, '\0', e->args[i].len) != NULL)
			return true;
	return false;
}

/* Checks what the parser cannot know: defaults, --exec, NUL arguments. */
static int
check_entry(struct producer *p, const struct warm_src *src,
    const struct wm_entry *e)
{
	const struct warm_opts *o = p->opts;

	if (e->kind == WM_MEMO && !e->has_ttl &&
	    (o->ttl == 0 || o->ttl > CC_TTL_MAX))
		return bad_line(p, src, "memo entries need a TTL of 1 to %d "
		    "s, and --ttl is %lu", CC_TTL_MAX, (unsigned long)o->ttl);
	if (e->computed && o->exec == NULL)
		return bad_line(p, src, "no value, and no --exec to compute "
		    "one");
	if (e->computed && args_have_nul(e))
		return bad_line(p, src, "an argument holds a NUL byte, which "
		    "no command line can carry");
	return 1;
}

/* Queues (or on a dry run counts) one checked entry. */
static int
take_entry(struct producer *p, const struct warm_src *src,
    const struct wm_entry *e)
{
	const struct warm_opts	*o = p->opts;
	size_t			 limit = o->item_max;
	uint32_t		 ttl = e->has_ttl ? e->ttl : o->ttl;
	uint32_t		 flags = e->has_flags ? e->flags : o->flags;
	struct job		*j;

	warm_report_read(p->run->report);
	if (e->kind == WM_MEMO)
		limit = limit > WARM_MEMO_OVERHEAD ?
		    limit - WARM_MEMO_OVERHEAD : 0;
	if (!e->computed && e->value_len > limit) {
		warm_store_fail(p->run, src, "value of %zu bytes is over the item "
		    "limit of %zu; not sent", e->value_len, limit);
		return 0;
	}
	if (o->dry_run) {
		warm_report_outcome(p->run->report, WARM_STORED, e->value_len);
		return 0;
	}
	ttl = jitter(p, ttl);
	if (e->kind == WM_PLAIN && !e->computed)
		return batch_add(p, src, e, ttl, flags);
	if ((j = entry_job(src, e, ttl, flags)) == NULL)
		return -1;
	warm_queue_push(p->q, j);
	return 0;
}

/* Handles one line; returns -1 to end the run. */
static int
handle_line(struct producer *p, const struct warm_src *src, char *line,
    size_t len)
{
	struct wm_entry	e;
	char		err[WARM_ERR_MAX];
	int		rc;

	if (warm_manifest_parse(line, len, &e, err, sizeof err) < 0)
		return bad_line(p, src, "%s", err);
	if (e.kind == WM_BLANK)
		return 0;
	if ((rc = check_entry(p, src, &e)) <= 0)
		return rc;
	if (p->check_only)
		return 0;
	if (take_entry(p, src, &e) < 0) {
		warm_report_log(p->run->report, "out of memory");
		p->oom = true;
		return -1;
	}
	return 0;
}

/* Reads one manifest; returns -1 to end the run. */
static int
read_input(struct producer *p, const struct warm_input *in)
{
	struct wi_reader	*r;
	struct warm_src		 src = { in->name, 0 };
	enum wi_status		 st;
	char			*line;
	size_t			 len;
	int			 rc = 0;

	if ((r = warm_input_open(in->fd, p->max_line)) == NULL)
		return -1;
	while (rc == 0 && !atomic_load(&p->run->stopping) &&
	    (st = warm_input_next(r, &line, &len, &src.line)) != WI_EOF) {
		if (st == WI_LINE)
			rc = handle_line(p, &src, line, len);
		else if (st == WI_TOO_LONG)
			rc = bad_line(p, &src, "line longer than %zu bytes",
			    p->max_line);
		else if (st == WI_NO_NEWLINE)
			rc = bad_line(p, &src, "last line has no newline, as "
			    "if cut short: not stored");
		else {
			warm_report_log(p->run->report, "%s: %s", in->name,
			    strerror(errno));
			p->io_error = true;
			break;
		}
		if (!p->check_only)
			warm_report_input(p->run->report, p->in_total,
			    p->in_base + warm_input_offset(r));
	}
	p->in_base += warm_input_offset(r);
	warm_input_close(r);
	return rc;
}

/*
 * --strict: checks every regular file before anything is stored.
 * Returns the number of bad lines (each reported).
 */
static unsigned long
check_pass(struct producer *p, const struct warm_input *in, size_t nin)
{
	size_t i;

	p->check_only = true;
	for (i = 0; i < nin; i++) {
		if (!in[i].regular)
			continue;
		(void)read_input(p, &in[i]);
		if (lseek(in[i].fd, 0, SEEK_SET) < 0)
			p->io_error = true;
	}
	p->check_only = false;
	p->in_base = 0;
	return p->bad;
}

/* Builds a command's environment: ours plus CACHED_WARM_KEY/NS/FN. */
static char **
exec_env(const struct warm_entry *e, char **mine)
{
	size_t	  n = 0, i, k = 0;
	char	**env;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 3, sizeof *env)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
			env[k++] = environ[i];
	if (e->memo) {
		if (asprintf(&mine[0], ENV_PREFIX "NS=%s", e->ns) < 0 ||
		    asprintf(&mine[1], ENV_PREFIX "FN=%s", e->fn) < 0)
			mine[0] = mine[1] = NULL;
	} else if (asprintf(&mine[0], ENV_PREFIX "KEY=%s", e->key) < 0)
		mine[0] = NULL;
	for (i = 0; i < 2 && mine[i] != NULL; i++)
		env[k++] = mine[i];
	env[k] = NULL;
	return env;
}

/* Runs the generator for e and stores its output. */
static void
compute(struct warm_run *run, const struct warm_entry *e)
{
	const struct warm_opts	*o = run->opts;
	cc_arg			 keyarg = { e->key, strlen(e->key) };
	struct we_output	 out;
	enum we_result		 r;
	size_t			 max = o->item_max;
	char			*cmd, **env, *mine[2] = { NULL, NULL };
	char			 why[96];

	if (e->memo)
		max = max > WARM_MEMO_OVERHEAD ? max - WARM_MEMO_OVERHEAD : 0;
	cmd = e->memo ? warm_exec_expand(o->exec, e->args, e->nargs) :
	    warm_exec_expand(o->exec, &keyarg, 1);
	env = exec_env(e, mine);
	if (cmd == NULL || env == NULL) {
		warm_store_fail(run, &e->src, "out of memory");
		goto done;
	}
	r = warm_exec_run(cmd, env, o->timeout_ms, max, run->stop_fd, &out);
	if (r != WE_OK) {
		warm_exec_describe(r, &out, why, sizeof why);
		warm_store_fail(run, &e->src, "command %s", why);
		goto done;
	}
	warm_store_entry(run, e, out.data, out.len);
	free(out.data);
done:
	free(cmd);
	free(env);
	free(mine[0]);
	free(mine[1]);
}

/* Counts every entry of a job failed because the run is stopping. */
static void
drop_job(struct warm_run *run, struct job *j)
{
	static const char why[] = "not stored: cached-warm was interrupted";
	size_t i;

	if (j->kind == JOB_ENTRY) {
		warm_store_fail(run, &j->entry->src, "%s", why);
		return;
	}
	for (i = 0; i < j->batch.n; i++)
		warm_store_fail(run, &j->batch.srcs[i], "%s", why);
}

/* The worker context. */
struct worker_arg {
	struct warm_run	*run;
	struct wq	*q;
};

/* A worker: takes jobs until the queue is closed and empty. */
static void *
worker(void *arg)
{
	struct worker_arg	*w = arg;
	struct job		*j;

	while ((j = warm_queue_pop(w->q)) != NULL) {
		if (atomic_load(&w->run->stopping))
			drop_job(w->run, j);
		else if (j->kind == JOB_BATCH)
			warm_store_batch(w->run, &j->batch);
		else if (j->entry->computed)
			compute(w->run, j->entry);
		else
			warm_store_entry(w->run, j->entry, j->entry->value,
			    j->entry->len);
		job_free(j);
	}
	return NULL;
}

/* Writes one byte to a notification pipe. */
static void
poke(int fd)
{
	ssize_t n = write(fd, "x", 1);

	(void)n;
}

/* The monitor: redraws the bar, and turns a signal into a stop. */
static void *
monitor_main(void *arg)
{
	struct monitor		*m = arg;
	struct signalfd_siginfo	 si;
	struct pollfd		 pfd[2];

	for (;;) {
		pfd[0] = (struct pollfd){ .fd = m->sigfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = m->done[0], .events = POLLIN };
		if (poll(pfd, 2, TICK_MS) > 0 && pfd[1].revents != 0)
			break;
		if ((pfd[0].revents & POLLIN) &&
		    read(m->sigfd, &si, sizeof si) == (ssize_t)sizeof si &&
		    !atomic_exchange(&m->run->stopping, true)) {
			warm_report_log(m->run->report, "caught signal %u: "
			    "stopping", si.ssi_signo);
			poke(m->stop[1]);
		}
		warm_report_tick(m->run->report);
	}
	return NULL;
}

/* Starts the monitor; the stop signals are blocked in every thread. */
static int
monitor_start(struct monitor *m, struct warm_run *run)
{
	sigset_t set;

	memset(m, 0, sizeof *m);
	m->run = run;
	m->done[0] = m->done[1] = m->stop[0] = m->stop[1] = -1;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if ((m->sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 ||
	    pipe2(m->done, O_CLOEXEC) < 0 || pipe2(m->stop, O_CLOEXEC) < 0)
		return -1;
	run->stop_fd = m->stop[0];
	if (pthread_create(&m->tid, NULL, monitor_main, m) != 0)
		return -1;
	m->started = true;
	return 0;
}

/* Stops the monitor and closes its descriptors. */
static void
monitor_stop(struct monitor *m)
{
	int i;

	if (m->started) {
		poke(m->done[1]);
		pthread_join(m->tid, NULL);
	}
	if (m->sigfd >= 0)
		close(m->sigfd);
	for (i = 0; i < 2; i++) {
		if (m->done[i] >= 0)
			close(m->done[i]);
		if (m->stop[i] >= 0)
			close(m->stop[i]);
	}
}

/* Reads every input into the queue (or, on a dry run, just checks). */
static void
produce(struct producer *p, const struct warm_input *in, size_t nin)
{
	size_t i;

	for (i = 0; i < nin && !atomic_load(&p->run->stopping); i++)
		if (read_input(p, &in[i]) < 0)
			break;
	if (p->q != NULL)
		batch_flush(p);
	else {
		job_free(p->cur);
		p->cur = NULL;
	}
}

/* Reads, queues and stores with the workers; returns 0 or an exit code. */
static int
store_all(struct producer *p, const struct warm_input *in, size_t nin)
{
	struct worker_arg	w = { p->run, NULL };
	unsigned		jobs = p->opts->jobs;

	if ((w.q = p->q = warm_queue_create((size_t)jobs * QUEUE_PER_WORKER)) == NULL)
		return WARM_EXIT_SOFTWARE;
	if (warm_queue_start(w.q, jobs, worker, &w) == 0) {
		warm_queue_destroy(w.q);
		return WARM_EXIT_SOFTWARE;
	}
	produce(p, in, nin);
	warm_queue_close(w.q);
	warm_queue_join(w.q);
	warm_queue_destroy(w.q);
	p->q = NULL;
	return 0;
}

/* Runs the whole warm. */
int
warm_run(struct warm_run *run, const struct warm_input *in, size_t nin)
{
	struct producer	p;
	struct monitor	m;
	size_t		i;
	bool		known = true;
	int		rc = 0;

	memset(&p, 0, sizeof p);
	p.run = run;
	p.opts = run->opts;
	p.rng = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	p.max_line = 4 * run->opts->item_max + LINE_SLACK;
	for (i = 0; i < nin; i++) {
		known = known && in[i].regular;
		p.in_total += in[i].size;
	}
	if (!known)
		p.in_total = 0;
	if (monitor_start(&m, run) < 0) {
		monitor_stop(&m);
		return WARM_EXIT_SOFTWARE;
	}
	if (run->opts->strict && check_pass(&p, in, nin) > 0)
		rc = WARM_EXIT_DATAERR;
	else if (run->opts->dry_run)
		produce(&p, in, nin);
	else
		rc = store_all(&p, in, nin);
	monitor_stop(&m);
	if (rc != 0)
		return rc;
	if (p.oom)
		return WARM_EXIT_SOFTWARE;
	if (p.aborted)
		return WARM_EXIT_DATAERR;
	return p.io_error || atomic_load(&run->stopping) ? WARM_EXIT_FAILED : 0;
}
