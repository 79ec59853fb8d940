/*
 * memoize_bench.c -- what a memoize hit costs next to a bare memcached_get
 * of the same key over the same kind of connection.
 *
 *   memoize_bench [-n ops] [-r repeats] [-s value_bytes] servers
 *   e.g. cached -p 11311 &  build/bench/memoize_bench 127.0.0.1:11311
 *
 * One thread.  The memoize side is cc_memoize() with the default client
 * settings (namespace version cached for ns_refresh_ms, so a hit is one
 * round trip); the bare side is memcached_get() on a libmemcached handle
 * configured the way libcachedclient configures its own (ketama, TCP
 * no-delay, the same timeouts and failure settings), fetching the very
 * key memoize uses.  Each repeat times `ops` calls of each, alternating
 * which goes first; the report gives every repeat, the medians and the
 * ratio of the medians, for wall time (what a caller waits) and for the
 * client's own CPU time (what the library adds, less disturbed by other
 * load on the machine).  Every memoize call must be a hit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "cachedclient.h"

#define MAX_REPEATS	101

/* One timed run: wall and client CPU nanoseconds per call. */
struct sample {
	double	wall, cpu;
};

struct bench {
	cc_client	*c;
	memcached_st	*m;
	char		 key[CC_MEMO_KEY_SIZE];
	size_t		 key_len, value_size;
	long		 ops;
	long		 not_hits;
};

/* Returns a clock in nanoseconds. */
static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Starts timing a run. */
static void
sample_start(struct sample *s)
{
	s->wall = (double)clock_ns(CLOCK_MONOTONIC);
	s->cpu = (double)clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Ends timing a run of ops calls. */
static void
sample_end(struct sample *s, long ops)
{
	s->wall = ((double)clock_ns(CLOCK_MONOTONIC) - s->wall) / (double)ops;
	s->cpu = ((double)clock_ns(CLOCK_THREAD_CPUTIME_ID) - s->cpu) /
	    (double)ops;
}

/* The benchmarked function: never called once the value is cached. */
static cc_compute
make_value(void *ctx, const cc_arg *args, size_t nargs, void **value,
    size_t *len)
{
	struct bench *b = ctx;

	(void)args;
	(void)nargs;
	if ((*value = malloc(b->value_size)) == NULL)
		return CC_COMPUTE_ERROR;
	memset(*value, 'v', b->value_size);
	*len = b->value_size;
	return CC_COMPUTE_OK;
}

/* Times ops memoize hits. */
static struct sample
run_memoize(struct bench *b)
{
	struct cc_memo_result	res;
	struct sample		s;
	cc_arg			arg = { "bench-arg", 9 };
	long			i;

	sample_start(&s);
	for (i = 0; i < b->ops; i++) {
		if (cc_memoize(b->c, "bench", "f", &arg, 1, 3600, make_value,
		    b, &res) != CC_OK || !res.from_cache)
			b->not_hits++;
		free(res.value);
	}
	sample_end(&s, b->ops);
	return s;
}

/* Times ops bare memcached_get calls. */
static struct sample
run_bare(struct bench *b)
{
	memcached_return_t	 rc;
	struct sample		 s;
	size_t			 len;
	uint32_t		 flags;
	char			*v;
	long			 i;

	sample_start(&s);
	for (i = 0; i < b->ops; i++) {
		v = memcached_get(b->m, b->key, b->key_len, &len, &flags, &rc);
		if (rc != MEMCACHED_SUCCESS) {
			fprintf(stderr, "memcached_get: %s\n",
			    memcached_strerror(b->m, rc));
			exit(1);
		}
		free(v);
	}
	sample_end(&s, b->ops);
	return s;
}

/* Makes a libmemcached handle set up as libcachedclient sets up its own. */
static memcached_st *
bare_handle(const char *servers, const struct cc_config *cfg)
{
	memcached_st		*m = memcached_create(NULL);
	memcached_server_st	*list;
	memcached_return_t	 rc;

	if (m == NULL)
		return NULL;
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    cfg->connect_timeout_ms);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    cfg->io_timeout_ms);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT,
	    cfg->failure_limit);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT,
	    cfg->retry_timeout_s);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT,
	    cfg->dead_timeout_s);
	if (servers[0] == '/')
		rc = memcached_server_add_unix_socket(m, servers);
	else {
		list = memcached_servers_parse(servers);
		rc = memcached_server_push(m, list);
		memcached_server_list_free(list);
	}
	if (rc != MEMCACHED_SUCCESS) {
		memcached_free(m);
		return NULL;
	}
	return m;
}

/* Orders doubles for qsort. */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Returns the median of n values (sorts them). */
static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Prepares the client, the bare handle and the cached value. */
static void
setup(struct bench *b, const char *servers)
{
	struct cc_config	 cfg;
	struct cc_memo_result	 res;
	cc_arg			 arg = { "bench-arg", 9 };
	uint64_t		 ver;

	cc_config_init(&cfg);
	cfg.servers = servers;
	if (cc_client_create(&cfg, &b->c) != CC_OK ||
	    (b->m = bare_handle(servers, &cfg)) == NULL) {
		fprintf(stderr, "memoize_bench: cannot set up: %s\n",
		    cc_errmsg());
		exit(1);
	}
	if (cc_memoize(b->c, "bench", "f", &arg, 1, 3600, make_value, b,
	    &res) != CC_OK || cc_ns_version(b->c, "bench", &ver) != CC_OK ||
	    cc_memo_key("bench", ver, "f", &arg, 1, b->key) != CC_OK) {
		fprintf(stderr, "memoize_bench: %s\n", cc_errmsg());
		exit(1);
	}
	free(res.value);
	b->key_len = strlen(b->key);
}

/* Prints the medians of one measure and their ratio. */
static void
report(const char *what, double *bare, double *memo, int n)
{
	double mb = median(bare, n), mm = median(memo, n);

	printf("median of %d, %s: memcached_get %.0f ns/op, cc_memoize hit "
	    "%.0f ns/op, ratio %.3f\n", n, what, mb, mm, mm / mb);
}

int
main(int argc, char **argv)
{
	struct bench	b = { .ops = 20000, .value_size = 100 };
	struct sample	sb, sm;
	double		bw[MAX_REPEATS], mw[MAX_REPEATS];
	double		bc[MAX_REPEATS], mc[MAX_REPEATS];
	int		repeats = 7, ch, r;

	while ((ch = getopt(argc, argv, "n:r:s:")) != -1) {
		switch (ch) {
		case 'n': b.ops = atol(optarg); break;
		case 'r': repeats = atoi(optarg); break;
		case 's': b.value_size = (size_t)atol(optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || b.ops < 10 || repeats < 1 ||
	    repeats > MAX_REPEATS)
		goto usage;
	setup(&b, argv[optind]);
	b.ops /= 10;			/* warm up both paths */
	run_bare(&b);
	run_memoize(&b);
	b.ops *= 10;
	b.not_hits = 0;
	printf("%ld ops per run, %zu-byte values, key %s\n", b.ops,
	    b.value_size, b.key);
	for (r = 0; r < repeats; r++) {
		if (r % 2 == 0) {
			sb = run_bare(&b);
			sm = run_memoize(&b);
		} else {
			sm = run_memoize(&b);
			sb = run_bare(&b);
		}
		bw[r] = sb.wall;
		mw[r] = sm.wall;
		bc[r] = sb.cpu;
		mc[r] = sm.cpu;
		printf("repeat %d: memcached_get %.0f ns (cpu %.0f), cc_memoize "
		    "hit %.0f ns (cpu %.0f), wall x%.3f\n", r + 1, sb.wall,
		    sb.cpu, sm.wall, sm.cpu, sm.wall / sb.wall);
	}
	report("wall", bw, mw, repeats);
	report("client cpu", bc, mc, repeats);
	if (b.not_hits > 0)
		printf("WARNING: %ld memoize calls were not hits\n", b.not_hits);
	memcached_free(b.m);
	cc_client_destroy(b.c);
	return b.not_hits > 0;
usage:
	fprintf(stderr, "usage: memoize_bench [-n ops] [-r repeats] "
	    "[-s value_bytes] servers\n");
	return 64;
}
