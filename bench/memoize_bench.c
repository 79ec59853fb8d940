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
 * key memoize uses.  Each repeat times `ops` calls of each, interleaved
 * in chunks of CHUNK calls (alternating which goes first) so that both
 * see the same load on a busy machine; the report gives every repeat, the
 * medians and the ratio of the medians, for wall time (what a caller
 * waits) and for the client's own CPU time (what the library adds).
 * Every memoize call must be a hit.
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
#define CHUNK		500

/* One timed run: wall and client CPU nanoseconds per call. */
struct sample {
	double	wall, cpu;
};

struct bench {
	cc_client	*c;
	cc_arg		 arg;		/* "size=<value_size>": one key per size */
	char		 argbuf[32];
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

/* Starts timing a chunk. */
static void
sample_start(struct sample *s)
{
	s->wall = (double)clock_ns(CLOCK_MONOTONIC);
	s->cpu = (double)clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Ends timing a chunk, adding its nanoseconds to *total. */
static void
sample_end(struct sample *s, struct sample *total)
{
	total->wall += (double)clock_ns(CLOCK_MONOTONIC) - s->wall;
	total->cpu += (double)clock_ns(CLOCK_THREAD_CPUTIME_ID) - s->cpu;
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

/* Times n memoize hits into *total. */
static void
run_memoize(struct bench *b, long n, struct sample *total)
{
	struct cc_memo_result	res;
	struct sample		s;
	long			i;

	sample_start(&s);
	for (i = 0; i < n; i++) {
		if (cc_memoize(b->c, "bench", "f", &b->arg, 1, 3600,
		    make_value, b, &res) != CC_OK || !res.from_cache)
			b->not_hits++;
		free(res.value);
	}
	sample_end(&s, total);
}

/* Times n bare memcached_get calls into *total. */
static void
run_bare(struct bench *b, long n, struct sample *total)
{
	memcached_return_t	 rc;
	struct sample		 s;
	size_t			 len;
	uint32_t		 flags;
	char			*v;
	long			 i;

	sample_start(&s);
	for (i = 0; i < n; i++) {
		v = memcached_get(b->m, b->key, b->key_len, &len, &flags, &rc);
		if (rc != MEMCACHED_SUCCESS) {
			fprintf(stderr, "memcached_get: %s\n",
			    memcached_strerror(b->m, rc));
			exit(1);
		}
		free(v);
	}
	sample_end(&s, total);
}

/* One repeat: ops calls of each kind, interleaved in chunks. */
static void
run_repeat(struct bench *b, int r, struct sample *bare, struct sample *memo)
{
	long done, n;

	memset(bare, 0, sizeof *bare);
	memset(memo, 0, sizeof *memo);
	for (done = 0; done < b->ops; done += n) {
		n = b->ops - done < CHUNK ? b->ops - done : CHUNK;
		if (((done / CHUNK) + r) % 2 == 0) {
			run_bare(b, n, bare);
			run_memoize(b, n, memo);
		} else {
			run_memoize(b, n, memo);
			run_bare(b, n, bare);
		}
	}
	bare->wall /= (double)b->ops;
	bare->cpu /= (double)b->ops;
	memo->wall /= (double)b->ops;
	memo->cpu /= (double)b->ops;
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
	uint64_t		 ver;

	b->arg.len = (size_t)snprintf(b->argbuf, sizeof b->argbuf, "size=%zu",
	    b->value_size);
	b->arg.data = b->argbuf;
	cc_config_init(&cfg);
	cfg.servers = servers;
	if (cc_client_create(&cfg, &b->c) != CC_OK ||
	    (b->m = bare_handle(servers, &cfg)) == NULL) {
		fprintf(stderr, "memoize_bench: cannot set up: %s\n",
		    cc_errmsg());
		exit(1);
	}
	if (cc_memoize(b->c, "bench", "f", &b->arg, 1, 3600, make_value, b,
	    &res) != CC_OK || cc_ns_version(b->c, "bench", &ver) != CC_OK ||
	    cc_memo_key("bench", ver, "f", &b->arg, 1, b->key) != CC_OK) {
		fprintf(stderr, "memoize_bench: %s\n", cc_errmsg());
		exit(1);
	}
	if (res.len != b->value_size) {
		fprintf(stderr, "memoize_bench: cached value has %zu bytes\n",
		    res.len);
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
	run_bare(&b, b.ops / 10, &sb);		/* warm up both paths */
	run_memoize(&b, b.ops / 10, &sm);
	b.not_hits = 0;
	printf("%ld ops per run, %zu-byte values, key %s\n", b.ops,
	    b.value_size, b.key);
	for (r = 0; r < repeats; r++) {
		run_repeat(&b, r, &sb, &sm);
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
