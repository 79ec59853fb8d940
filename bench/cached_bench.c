/*
 * cached_bench.c -- cached-bench: a load generator for memcached-protocol
 * servers.  main, threads, the epoll loop, pacing and the report.
 *
 * Each thread owns a share of the connections, an epoll set, a timerfd for
 * pacing and its own counters (struct bench_stats); threads share only the
 * read-only configuration, an abort flag, and a barrier between the preload
 * phase and the measured run.  main merges their counters after joining.
 *
 * Closed loop (the default): every connection keeps `pipeline` requests in
 * flight; the replies parsed from one read are answered with the same
 * number of new requests sent in one write.  Open loop (--rate): each
 * connection sends on a fixed schedule, at most `pipeline` in flight, and
 * a request's latency counts from its scheduled time.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"

#define MAX_EVENTS	256
#define NS		1000000000.0

enum phase {
	PHASE_PRELOAD,
	PHASE_RUN
};

struct bench_thread {
	unsigned		 id;
	const struct bench_cfg	*cfg;
	const struct zipf	*zipf;
	pthread_barrier_t	*barrier;
	atomic_int		*abort;		/* set by the first failure */
	pthread_t		 tid;
	struct bench_conn	*conns;
	unsigned		 nconns;
	int			 epfd;
	int			 tfd;		/* pacing timer */
	struct bench_stats	 st;
	enum phase		 phase;
	int			 measuring;
	uint64_t		 quota;		/* requests to issue (-n) */
	uint64_t		 warm_quota;	/* of them, not measured */
	uint64_t		 issued;
	uint64_t		 seq;		/* -D sequential counter */
	uint64_t		 pre_next, pre_end;	/* preload key range */
	uint64_t		 pre_ns, pre_sets, pre_errors;
	uint64_t		 t_measure_at, t_measure, t_end, t_stop;
	uint64_t		 run_ns, wait_ns;	/* this thread, measured run */
	char			 err[200];
};

/* Records the thread's first failure and asks the others to stop. */
static void
fail(struct bench_thread *t, const char *why)
{
	if (t->err[0] == '\0')
		snprintf(t->err, sizeof t->err, "%s", why);
	atomic_store(t->abort, 1);
}

/* Connects to the server; returns a non-blocking fd or -1 with *why set. */
static int
dial(const struct bench_cfg *cfg, const char **why)
{
	struct addrinfo	 hints, *res, *ai;
	int		 fd = -1, one = 1, rc;

	if (cfg->host[0] == '/') {
		struct sockaddr_un	sun;

		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", cfg->host);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0 &&
		    connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			close(fd);
			fd = -1;
		}
	} else {
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		if ((rc = getaddrinfo(cfg->host, cfg->port, &hints, &res)) != 0) {
			*why = gai_strerror(rc);
			return -1;
		}
		for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype, 0);
			if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
				close(fd);
				fd = -1;
			}
		}
		freeaddrinfo(res);
		if (fd >= 0)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof one);
	}
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Returns the next key index for a request from connection c. */
static uint64_t
pick_key(struct bench_thread *t, struct bench_conn *c)
{
	const struct bench_cfg	*cfg = t->cfg;

	switch (cfg->dist) {
	case DIST_ZIPF:
		return bench_zipf_sample(t->zipf, &c->rng) - 1;
	case DIST_SEQUENTIAL:
		return (t->seq++ * cfg->threads + t->id) % cfg->key_space;
	default:
		return bench_rng_below(&c->rng, cfg->key_space);
	}
}

/* Zeroes the counters and starts the measured window at now. */
static void
start_measuring(struct bench_thread *t, uint64_t now)
{
	memset(&t->st, 0, sizeof t->st);
	t->measuring = 1;
	t->t_measure = now;
}

/* Queues the next request on c if one is due; returns 1 if it did. */
static int
issue(struct bench_thread *t, struct bench_conn *c, uint64_t t_sent,
    uint64_t now)
{
	const struct bench_cfg	*cfg = t->cfg;
	uint64_t		 keys[BENCH_MAX_KPG], k;
	unsigned		 i;

	if (t->phase == PHASE_PRELOAD) {
		if (t->pre_next >= t->pre_end)
			return 0;
		bench_conn_put_set(c, t->pre_next++, REQ_PRELOAD, t_sent);
		return 1;
	}
	if (cfg->miss_set && bench_conn_pop_miss(c, &k) == 0) {
		bench_conn_put_set(c, k, REQ_MISS_SET, t_sent);
		return 1;
	}
	if (cfg->has_requests) {
		if (t->issued >= t->quota)
			return 0;
		if (!t->measuring && t->issued == t->warm_quota)
			start_measuring(t, now);
	}
	t->issued++;
	if (cfg->set_weight == 0 || (cfg->get_weight > 0 &&
	    bench_rng_below(&c->rng, cfg->get_weight + cfg->set_weight) <
	    cfg->get_weight)) {
		for (i = 0; i < cfg->keys_per_get; i++)
			keys[i] = pick_key(t, c);
		bench_conn_put_get(c, keys, cfg->keys_per_get, t_sent);
	} else
		bench_conn_put_set(c, pick_key(t, c), REQ_SET, t_sent);
	return 1;
}

/* Fills c's pipeline with what is due now. */
static void
top_up(struct bench_thread *t, struct bench_conn *c, uint64_t now)
{
	int	paced = t->phase == PHASE_RUN && t->cfg->rate > 0;

	while (c->count < c->depth) {
		uint64_t	ts = 0;

		if (paced) {
			if (c->next_due > now)
				break;
			ts = c->next_due;
		}
		if (!issue(t, c, ts, now))
			break;
		if (paced)
			c->next_due += c->interval;
	}
}

/* Writes c's output and keeps EPOLLOUT registered only while it is stuck. */
static void
flush(struct bench_thread *t, struct bench_conn *c)
{
	int			was = c->want_out;
	struct epoll_event	ev;

	if (bench_conn_flush(c) != 0) {
		fail(t, c->err);
		return;
	}
	if (was != c->want_out) {
		ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
		ev.data.ptr = c;
		epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

/* Handles one readiness event of a connection or of the pacing timer. */
static void
handle_event(struct bench_thread *t, const struct epoll_event *ev,
    uint64_t now)
{
	struct bench_conn	*c = ev->data.ptr;
	uint64_t		 ticks;

	if (c == NULL) {
		if (read(t->tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
			fail(t, "timerfd read failed");
		return;
	}
	if ((ev->events & EPOLLIN) && bench_conn_read(c) < 0) {
		fail(t, c->err);
		return;
	}
	if ((ev->events & (EPOLLERR | EPOLLHUP)) && !(ev->events & EPOLLIN)) {
		fail(t, "connection error");
		return;
	}
	top_up(t, c, now);
	flush(t, c);
}

/* Arms the pacing timer for the earliest connection that can send. */
static void
arm_timer(struct bench_thread *t)
{
	struct itimerspec	its;
	uint64_t		due = UINT64_MAX;
	unsigned		i;

	for (i = 0; i < t->nconns; i++)
		if (t->conns[i].count < t->conns[i].depth &&
		    t->conns[i].next_due < due)
			due = t->conns[i].next_due;
	if (due == UINT64_MAX)
		return;
	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = (time_t)(due / 1000000000u);
	its.it_value.tv_nsec = (long)(due % 1000000000u);
	timerfd_settime(t->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Says whether the current phase has finished. */
static int
phase_done(struct bench_thread *t, uint64_t now)
{
	unsigned	i;

	if (t->phase == PHASE_RUN && !t->cfg->has_requests)
		return now >= t->t_end;
	if (t->phase == PHASE_PRELOAD ? t->pre_next < t->pre_end :
	    t->issued < t->quota)
		return 0;
	for (i = 0; i < t->nconns; i++)
		if (t->conns[i].count > 0)
			return 0;
	return 1;
}

/* Returns how long epoll_wait may sleep, in ms. */
static int
wait_ms(const struct bench_thread *t, uint64_t now)
{
	uint64_t	until = now + 100000000u;

	if (t->cfg->busy_poll)
		return 0;
	if (t->phase == PHASE_RUN && !t->cfg->has_requests) {
		if (!t->measuring && t->t_measure_at < until)
			until = t->t_measure_at;
		if (t->t_end < until)
			until = t->t_end;
	}
	return until <= now ? 0 : (int)((until - now + 999999) / 1000000);
}

/* Prepares the connections and clocks for a phase starting at now. */
static void
setup_phase(struct bench_thread *t, enum phase phase, uint64_t now)
{
	const struct bench_cfg	*cfg = t->cfg;
	unsigned		 i;

	t->phase = phase;
	for (i = 0; i < t->nconns; i++) {
		struct bench_conn *c = &t->conns[i];

		c->depth = phase == PHASE_PRELOAD ? c->cap : cfg->pipeline;
		if (phase == PHASE_RUN && cfg->rate > 0) {
			c->interval = (uint64_t)(NS * cfg->conns / cfg->rate);
			if (c->interval == 0)
				c->interval = 1;
			c->next_due = now + bench_rng_below(&c->rng, c->interval);
		}
	}
	if (phase == PHASE_RUN) {
		memset(&t->st, 0, sizeof t->st);
		t->t_measure = now;
		t->t_measure_at = now + (uint64_t)(cfg->warmup * NS);
		t->t_end = t->t_measure_at + (uint64_t)(cfg->duration * NS);
		t->measuring = cfg->has_requests ? t->warm_quota == 0 :
		    cfg->warmup == 0;
	}
}

/* Runs one phase to its end, or until some thread fails. */
static void
run_phase(struct bench_thread *t, enum phase phase)
{
	struct epoll_event	evs[MAX_EVENTS];
	uint64_t		now = bench_now();
	unsigned		i;
	int			n, paced = phase == PHASE_RUN && t->cfg->rate > 0;

	setup_phase(t, phase, now);
	for (i = 0; i < t->nconns; i++) {
		top_up(t, &t->conns[i], now);
		flush(t, &t->conns[i]);
	}
	while (!atomic_load(t->abort) && !phase_done(t, now)) {
		if (paced && !t->cfg->busy_poll)
			arm_timer(t);
		n = epoll_wait(t->epfd, evs, MAX_EVENTS, wait_ms(t, now));
		if (n < 0 && errno != EINTR) {
			fail(t, "epoll_wait failed");
			break;
		}
		now = bench_now();
		for (i = 0; i < (unsigned)(n > 0 ? n : 0); i++)
			handle_event(t, &evs[i], now);
		for (i = 0; paced && i < t->nconns; i++) {
			top_up(t, &t->conns[i], now);
			flush(t, &t->conns[i]);
		}
		if (phase == PHASE_RUN && !t->measuring &&
		    !t->cfg->has_requests && now >= t->t_measure_at)
			start_measuring(t, now);
	}
	t->t_stop = now;
}

/* Registers the thread's sockets and timer with a new epoll set. */
static int
setup_epoll(struct bench_thread *t)
{
	struct epoll_event	ev;
	unsigned		i;

	if ((t->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (t->tfd = timerfd_create(CLOCK_MONOTONIC,
	    TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
		return -1;
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->tfd, &ev) != 0)
		return -1;
	for (i = 0; i < t->nconns; i++) {
		ev.data.ptr = &t->conns[i];
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->conns[i].fd, &ev) != 0)
			return -1;
	}
	return 0;
}

/*
 * Reads this thread's time on a CPU and time spent runnable but waiting
 * for one (/proc/thread-self/schedstat); zeros where there is no such file.
 * The wait shows a generator starved by other work on its CPU.
 */
static void
sched_ns(uint64_t *run, uint64_t *wait)
{
	unsigned long long	 r = 0, w = 0;
	FILE			*f = fopen("/proc/thread-self/schedstat", "r");

	if (f != NULL) {
		if (fscanf(f, "%llu %llu", &r, &w) != 2)
			r = w = 0;
		fclose(f);
	}
	*run = r;
	*wait = w;
}

/* A thread: preload its share of the keys, wait for the others, run. */
static void *
thread_main(void *arg)
{
	struct bench_thread	*t = arg;
	const struct bench_cfg	*cfg = t->cfg;
	uint64_t		 t0;

	if (setup_epoll(t) != 0)
		fail(t, "epoll setup failed");
	if (cfg->rate > 0)
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (cfg->preload && !atomic_load(t->abort)) {
		t0 = bench_now();
		run_phase(t, PHASE_PRELOAD);
		t->pre_ns = t->t_stop - t0;
		t->pre_sets = t->st.preloads;
		t->pre_errors = t->st.errors + t->st.not_stored;
	}
	pthread_barrier_wait(t->barrier);
	if (!(cfg->has_requests && cfg->requests == 0) &&
	    !atomic_load(t->abort)) {
		uint64_t	run0, wait0;

		sched_ns(&run0, &wait0);
		run_phase(t, PHASE_RUN);
		sched_ns(&t->run_ns, &t->wait_ns);
		t->run_ns -= run0;
		t->wait_ns -= wait0;
	}
	return NULL;
}

/* Splits n into `parts` near-equal shares; returns share i. */
static uint64_t
share(uint64_t n, unsigned parts, unsigned i)
{
	return n / parts + (i < n % parts ? 1 : 0);
}

/* Connects the connections and hands each thread its share of the work. */
static int
setup_threads(const struct bench_cfg *cfg, struct bench_thread *th,
    struct bench_conn *conns, const struct zipf *z, pthread_barrier_t *bar,
    atomic_int *abort_flag)
{
	unsigned	 i, j = 0, depth;
	const char	*why = "";

	depth = cfg->pipeline > BENCH_PRELOAD_DEPTH ? cfg->pipeline :
	    BENCH_PRELOAD_DEPTH;
	for (i = 0; i < cfg->conns; i++) {
		bench_conn_init(&conns[i], cfg, NULL, depth,
		    cfg->seed ^ (UINT64_C(0x9e3779b97f4a7c15) * (i + 1)));
		if ((conns[i].fd = dial(cfg, &why)) < 0 ||
		    (cfg->tls && bench_conn_tls(&conns[i], &why) != 0)) {
			fprintf(stderr, "cached-bench: connect to %s%s%s: %s\n",
			    cfg->host, cfg->host[0] == '/' ? "" : ":",
			    cfg->host[0] == '/' ? "" : cfg->port, why);
			return -1;
		}
	}
	for (i = 0; i < cfg->threads; i++) {
		struct bench_thread *t = &th[i];

		t->id = i;
		t->cfg = cfg;
		t->zipf = z;
		t->barrier = bar;
		t->abort = abort_flag;
		t->conns = &conns[j];
		t->nconns = (unsigned)share(cfg->conns, cfg->threads, i);
		for (; j < (unsigned)(t->conns - conns) + t->nconns; j++)
			conns[j].st = &t->st;
		t->pre_next = cfg->key_space / cfg->threads * i +
		    (i < cfg->key_space % cfg->threads ? i :
		    cfg->key_space % cfg->threads);
		t->pre_end = t->pre_next + share(cfg->key_space, cfg->threads, i);
		t->warm_quota = share(cfg->warmup_requests, cfg->threads, i);
		t->quota = t->warm_quota + share(cfg->requests, cfg->threads, i);
	}
	return 0;
}

struct totals {
	struct bench_stats	st;
	struct hist		lat_all;
	double			window_s;	/* measured seconds */
	double			pre_s;
	uint64_t		pre_sets, pre_errors;
	double			cpu_s;		/* generator threads on a CPU */
	double			wait_s;		/* runnable, waiting for one */
};

/* Merges the threads' counters into tot. */
static void
merge(const struct bench_cfg *cfg, struct bench_thread *th,
    struct totals *tot)
{
	struct bench_stats	*s = &tot->st;
	unsigned		 i;

	memset(tot, 0, sizeof *tot);
	for (i = 0; i < cfg->threads; i++) {
		const struct bench_stats *o = &th[i].st;
		double w = (double)(th[i].t_stop - th[i].t_measure) / NS;

		s->gets += o->gets;
		s->get_keys += o->get_keys;
		s->hits += o->hits;
		s->sets += o->sets;
		s->miss_sets += o->miss_sets;
		s->not_stored += o->not_stored;
		s->errors += o->errors;
		bench_hist_merge(&s->lat_get, &o->lat_get);
		bench_hist_merge(&s->lat_set, &o->lat_set);
		bench_hist_merge(&s->lag, &o->lag);
		if (w > tot->window_s)
			tot->window_s = w;
		if ((double)th[i].pre_ns / NS > tot->pre_s)
			tot->pre_s = (double)th[i].pre_ns / NS;
		tot->pre_sets += th[i].pre_sets;
		tot->cpu_s += (double)th[i].run_ns / NS;
		tot->wait_s += (double)th[i].wait_ns / NS;
		tot->pre_errors += th[i].pre_errors;
	}
	bench_hist_merge(&tot->lat_all, &s->lat_get);
	bench_hist_merge(&tot->lat_all, &s->lat_set);
}

/* Returns percentile p of h in microseconds. */
static double
pct_us(const struct hist *h, double p)
{
	return (double)bench_hist_percentile(h, p) / 1000.0;
}

/* Prints one latency line of the text report. */
static void
text_latency(const char *name, const struct hist *h)
{
	if (h->total == 0)
		return;
	printf("%-10s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f us"
	    "  (%llu)\n", name, pct_us(h, 50), pct_us(h, 90), pct_us(h, 99),
	    pct_us(h, 99.9), pct_us(h, 100), (unsigned long long)h->total);
}

/* Returns the distribution's name. */
static const char *
dist_name(enum bench_dist d)
{
	return d == DIST_ZIPF ? "zipf" : d == DIST_SEQUENTIAL ? "sequential" :
	    "uniform";
}

/* Prints the human-readable report. */
static void
report_text(const struct bench_cfg *cfg, const struct totals *tot)
{
	const struct bench_stats *s = &tot->st;
	uint64_t ops = s->gets + s->sets + s->miss_sets;
	uint64_t keys = s->get_keys + s->sets + s->miss_sets;
	double	 w = tot->window_s > 0 ? tot->window_s : 1;

	printf("server     %s%s%s  %s  %u conns  %u threads  pipeline %u  "
	    "keys/get %u  get:set %u:%u%s\n", cfg->host,
	    cfg->host[0] == '/' ? "" : ":", cfg->host[0] == '/' ? "" :
	    cfg->port, bench_protocol_name(cfg), cfg->conns, cfg->threads,
	    cfg->pipeline, cfg->keys_per_get, cfg->get_weight, cfg->set_weight,
	    cfg->miss_set ? "  miss-set" : "");
	if (cfg->preload)
		printf("preload    %llu sets in %.2f s, %llu errors\n",
		    (unsigned long long)tot->pre_sets, tot->pre_s,
		    (unsigned long long)tot->pre_errors);
	if (cfg->has_requests && cfg->requests == 0)
		return;
	printf("keys       %llu %s", (unsigned long long)cfg->key_space,
	    dist_name(cfg->dist));
	if (cfg->dist == DIST_ZIPF)
		printf(" (skew %.2f)", cfg->skew);
	printf("  values %u-%u B  seed %llu\n", cfg->vmin, cfg->vmax,
	    (unsigned long long)cfg->seed);
	printf("measured   %.3f s%s\n", tot->window_s,
	    cfg->rate > 0 ? "  (paced)" : "");
	printf("ops/s      %.0f  (gets %.0f, sets %.0f, sets after miss %.0f)\n",
	    (double)ops / w, (double)s->gets / w, (double)s->sets / w,
	    (double)s->miss_sets / w);
	printf("keys/s     %.0f\n", (double)keys / w);
	printf("hit ratio  %.4f  (%llu hits of %llu keys)\n",
	    s->get_keys ? (double)s->hits / (double)s->get_keys : 0,
	    (unsigned long long)s->hits, (unsigned long long)s->get_keys);
	printf("errors     %llu  not stored %llu\n",
	    (unsigned long long)s->errors, (unsigned long long)s->not_stored);
	text_latency("latency", &tot->lat_all);
	text_latency("  get", &s->lat_get);
	text_latency("  set", &s->lat_set);
	if (cfg->rate > 0)
		text_latency("send lag", &s->lag);
	printf("generator  %.2f s on CPU, %.2f s waiting for a CPU\n",
	    tot->cpu_s, tot->wait_s);
}

/* Prints a latency object of the JSON report. */
static void
json_latency(const char *name, const struct hist *h)
{
	printf("\"%s\":{\"count\":%llu,\"p50\":%.2f,\"p90\":%.2f,"
	    "\"p99\":%.2f,\"p99_9\":%.2f,\"min\":%.2f,\"max\":%.2f}", name,
	    (unsigned long long)h->total, pct_us(h, 50), pct_us(h, 90),
	    pct_us(h, 99), pct_us(h, 99.9), pct_us(h, 0), pct_us(h, 100));
}

/* Prints the report as one JSON object (latencies in microseconds). */
static void
report_json(const struct bench_cfg *cfg, const struct totals *tot)
{
	const struct bench_stats *s = &tot->st;
	uint64_t ops = s->gets + s->sets + s->miss_sets;
	uint64_t keys = s->get_keys + s->sets + s->miss_sets;
	double	 w = tot->window_s > 0 ? tot->window_s : 1;

	printf("{\"protocol\":\"%s\",\"connections\":%u,\"threads\":%u,\"pipeline\":%u,"
	    "\"keys_per_get\":%u,\"get_weight\":%u,\"set_weight\":%u,"
	    "\"key_space\":%llu,\"distribution\":\"%s\",\"skew\":%g,"
	    "\"value_min\":%u,\"value_max\":%u,\"rate\":%g,\"seed\":%llu,",
	    bench_protocol_name(cfg), cfg->conns, cfg->threads,
	    cfg->pipeline, cfg->keys_per_get, cfg->get_weight, cfg->set_weight,
	    (unsigned long long)cfg->key_space, dist_name(cfg->dist),
	    cfg->dist == DIST_ZIPF ? cfg->skew : 0, cfg->vmin, cfg->vmax,
	    cfg->rate, (unsigned long long)cfg->seed);
	printf("\"preload_sets\":%llu,\"preload_s\":%.4f,\"preload_errors\":%llu,"
	    "\"seconds\":%.4f,\"ops\":%llu,\"keys\":%llu,\"ops_per_s\":%.1f,"
	    "\"keys_per_s\":%.1f,\"gets\":%llu,\"get_keys\":%llu,\"hits\":%llu,"
	    "\"misses\":%llu,\"hit_ratio\":%.6f,\"sets\":%llu,"
	    "\"miss_sets\":%llu,\"not_stored\":%llu,\"errors\":%llu,"
	    "\"client_cpu_s\":%.4f,\"client_wait_s\":%.4f,",
	    (unsigned long long)tot->pre_sets, tot->pre_s,
	    (unsigned long long)tot->pre_errors, tot->window_s,
	    (unsigned long long)ops, (unsigned long long)keys,
	    (double)ops / w, (double)keys / w, (unsigned long long)s->gets,
	    (unsigned long long)s->get_keys, (unsigned long long)s->hits,
	    (unsigned long long)(s->get_keys - s->hits),
	    s->get_keys ? (double)s->hits / (double)s->get_keys : 0,
	    (unsigned long long)s->sets, (unsigned long long)s->miss_sets,
	    (unsigned long long)s->not_stored, (unsigned long long)s->errors,
	    tot->cpu_s, tot->wait_s);
	json_latency("latency_us", &tot->lat_all);
	putchar(',');
	json_latency("get_latency_us", &s->lat_get);
	putchar(',');
	json_latency("set_latency_us", &s->lat_set);
	putchar(',');
	json_latency("send_lag_us", &s->lag);
	printf("}\n");
}

/* Fills the shared value buffer with printable, not all-equal bytes. */
static char *
make_value(uint32_t n)
{
	static const char	alphabet[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char			*v = malloc(n ? n : 1);
	uint32_t		 i;

	if (v == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		v[i] = alphabet[(i * 7 + i / 61) % (sizeof alphabet - 1)];
	return v;
}

/* Runs the threads to the end; 0 on success. */
static int
run(struct bench_cfg *cfg, struct bench_thread *th, struct totals *tot)
{
	unsigned	i;
	int		rc = 0;

	for (i = 0; i < cfg->threads; i++)
		if (pthread_create(&th[i].tid, NULL, thread_main, &th[i]) != 0) {
			fputs("cached-bench: cannot start threads\n", stderr);
			exit(2);
		}
	for (i = 0; i < cfg->threads; i++)
		pthread_join(th[i].tid, NULL);
	for (i = 0; i < cfg->threads; i++)
		if (th[i].err[0] != '\0') {
			fprintf(stderr, "cached-bench: thread %u: %s\n", i,
			    th[i].err);
			rc = -1;
		}
	merge(cfg, th, tot);
	return rc;
}

/* Parses the command line, connects, runs and reports. */
int
main(int argc, char **argv)
{
	struct bench_cfg	 cfg;
	struct bench_thread	*th;
	struct bench_conn	*conns;
	struct zipf		 z;
	struct totals		 tot;
	pthread_barrier_t	 bar;
	atomic_int		 abort_flag = 0;
	unsigned		 i;
	int			 rc;

	if ((rc = bench_opts_parse(&cfg, argc, argv)) != 0)
		return rc > 0 ? 0 : 64;
	if (cfg.dist == DIST_ZIPF && bench_zipf_init(&z, cfg.key_space, cfg.skew)) {
		fputs("cached-bench: bad Zipf parameters\n", stderr);
		return 64;
	}
	th = calloc(cfg.threads, sizeof *th);
	conns = calloc(cfg.conns, sizeof *conns);
	if (th == NULL || conns == NULL ||
	    (cfg.value = make_value(cfg.vmax)) == NULL) {
		fputs("cached-bench: out of memory\n", stderr);
		return 2;
	}
	if (cfg.tls && bench_tls_init() != 0) {
		fputs("cached-bench: cannot set up TLS\n", stderr);
		return 1;
	}
	if (setup_threads(&cfg, th, conns, &z, &bar, &abort_flag) != 0)
		return 1;
	pthread_barrier_init(&bar, NULL, cfg.threads);
	if (!cfg.quiet)
		fprintf(stderr, "cached-bench: %s%s\n", cfg.preload ?
		    "preloading, then " : "", cfg.has_requests ? "counting "
		    "requests" : "running");
	rc = run(&cfg, th, &tot);
	if (cfg.json)
		report_json(&cfg, &tot);
	else
		report_text(&cfg, &tot);
	for (i = 0; i < cfg.conns; i++)
		bench_conn_free(&conns[i]);
	pthread_barrier_destroy(&bar);
	free(cfg.value);
	free(conns);
	free(th);
	return rc == 0 ? 0 : 1;
}
