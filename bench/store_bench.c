/*
 * store_bench.c -- how the store scales with threads (issue 16): N
 * threads drive the store API directly, as the server's workers do, with
 * no sockets or protocol in the way.  Not a test.
 *
 *   store_bench [-t 1,2] [-d SECS] [-R REPEATS] [-K KEYS] [-m MB]
 *		 [-r 9:1,1:1] [-z 0,0.99] [-v 32-1000] [-n OPS] [-L] [-G] [-H]
 *
 For each mix (-r get:set) and key distribution (-z: 0 is uniform, else
 * the Zipf skew), REPEATS times (default 3): a new store (so a new hash
 * seed: where the hot keys fall, in which shards and chains, moves the
 * 2-thread/1-thread ratio by up to 0.2 from one seed to the next) is
 * preloaded with KEYS keys (default 100,000), values of a size drawn
 * uniformly from -v, then each thread count (-t) runs on it for SECS
 * seconds (default 2), interleaved: 1, 2, 1, 2...  A get is store_get_with and a copy of the
 * value out under the shard lock (as the server's get composes its
 * reply), or with -G the older store_get, copy and store_release (a
 * reference taken and dropped); a set is store_reserve_direct, a copy of
 * the value in (as the read buffer's) and store_commit, or with -L the
 * older store_reserve path (a loose item copied at commit): -G and -L give
 * a before/after within one build.  -n runs OPS operations per thread
 * instead of SECS seconds: a fixed load for instruction counts
 * (valgrind --tool=callgrind --toggle-collect=worker_main).  -H maps the
 * store's segments in huge pages, as the server's -L does
 * (store_config.large_pages): a store that grows into new memory then
 * takes a page fault per 2 MiB, not per 4 KiB.
 *
 * Reported per cell, medians of the repeats: ops/s (wall clock), CPU
 * seconds per million ops (the threads' own CPU time), how much CPU the
 * threads got (CPU s / wall s: on a shared machine a second thread may
 * not get a core), the share of gets answered without the shard lock
 * (ht_peek; the others found an item to mark), lock waits per thousand ops (store lock acquisitions
 * that found the lock held, store_debug), and for 2 threads and more:
 * the wall-clock ratio to 1 thread, and the CPU ratio, N x (1-thread CPU
 * per op / N-thread CPU per op): the speed-up N free cores would give,
 * which neighbours on the machine do not disturb.
 *
 * Links libstore (and libbench's generators); the clock is the wall
 * clock.  Memory (-m, default 1024 MB) is large enough that nothing is
 * evicted unless asked for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_rand.h"
#include "store.h"
#include "store_internal.h"

#define MAX_THREADS	16
#define MAX_LIST	8
#define KEY_LEN		32	/* "key:" and any uint64_t */
#define BATCH		256	/* ops between looks at the stop flag */

struct cell {
	unsigned	get, set;	/* mix */
	double		skew;		/* 0: uniform */
};

struct result {
	double		ops_s;
	double		cpu_per_mop;	/* CPU seconds per million ops */
	double		busy;		/* CPU s / wall s */
	double		shard_waits;	/* per thousand ops */
	double		pool_waits;	/* arena and pool locks */
	double		lockfree;	/* share of gets without the lock */
};

struct worker {
	pthread_t	 thr;
	unsigned	 id;
	const struct cell *cell;
	uint64_t	 ops;
	uint64_t	 gets;
	uint64_t	 peeks;		/* gets answered without the lock */
	double		 cpu;
	char		*buf;
};

static store_t		*st;
static char		(*keys)[KEY_LEN];
static uint64_t		 nkeys = 100000;
static size_t		 vmin = 32, vmax = 1000;
static bool		 loose;
static bool		 by_ref;	/* -G: gets by store_get, release */
static _Atomic bool	 go, stop;
static _Atomic unsigned	 ready;
static uint64_t		 run_seed = 1;
static uint64_t		 nops;		/* -n: ops per thread, else timed */

/* Seconds of a clock. */
static double
clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Stores key i with a value of n bytes; false for no memory. */
static bool
do_set(uint64_t i, const char *src, size_t n)
{
	item_t *it;
	store_status_t rc;

	rc = loose ? store_reserve(st, keys[i], strlen(keys[i]), 0, 0, n,
	    &it) : store_reserve_direct(st, keys[i], strlen(keys[i]), 0, 0,
	    n, &it);
	if (rc != STORE_OK)
		return false;
	memcpy(item_value_mut(it), src, n);
	return store_commit(st, it, STORE_SET, 0, NULL) == STORE_STORED;
}

/* Copies a visited item's value out (store_get_with's visitor). */
static void
copy_out(void *dst, item_t *it)
{
	memcpy(dst, item_value(it), item_nbytes(it));
}

/* Reads key i and copies its value out; false on a miss. */
static bool
do_get(uint64_t i, char *dst)
{
	item_t *it;

	if (!by_ref)
		return store_get_with(st, keys[i], strlen(keys[i]),
		    store_key_hash(st, keys[i], strlen(keys[i])), copy_out,
		    dst) == STORE_OK;
	if (store_get(st, keys[i], strlen(keys[i]), &it) != STORE_OK)
		return false;
	memcpy(dst, item_value(it), item_nbytes(it));
	store_release(st, it);
	return true;
}

/* A value size drawn from [vmin, vmax]. */
static size_t
vsize(struct rng *r)
{
	return vmin + (size_t)bench_rng_below(r, vmax - vmin + 1);
}

/* One thread's loop: ops until told to stop, CPU time measured around
 * it. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	const struct cell *c = w->cell;
	struct zipf z;
	struct rng r;
	uint64_t k, ops = 0, gets = 0, peek0;
	double cpu0;
	unsigned i;

	bench_rng_seed(&r, run_seed * 7919 + w->id);
	if (c->skew > 0)
		bench_zipf_init(&z, nkeys, c->skew);
	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&go, memory_order_acquire))
		;
	peek0 = store_debug_peek_hits();
	cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	while (!atomic_load_explicit(&stop, memory_order_relaxed) &&
	    (nops == 0 || ops < nops)) {
		for (i = 0; i < BATCH; i++) {
			k = c->skew > 0 ? bench_zipf_sample(&z, &r) - 1 :
			    bench_rng_below(&r, nkeys);
			if (bench_rng_below(&r, c->get + c->set) < c->get) {
				(void)do_get(k, w->buf);
				gets++;
			} else
				(void)do_set(k, w->buf, vsize(&r));
		}
		ops += BATCH;
	}
	w->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	w->ops = ops;
	w->gets = gets;
	w->peeks = store_debug_peek_hits() - peek0;
	return NULL;
}

/* The store's lock waits: of shard locks, and of the arena and pool
 * locks (the memory's). */
static void
lock_waits(uint64_t *shard, uint64_t *pool)
{
	struct store_debug d;

	store_debug_get(st, &d);
	*shard = d.lock_waits[LOCK_SHARD];
	*pool = d.lock_waits[LOCK_ARENA] + d.lock_waits[LOCK_POOL];
}

/* Runs one cell with n threads for secs seconds. */
static struct result
run_cell(const struct cell *c, unsigned n, double secs)
{
	struct worker w[MAX_THREADS];
	struct result res;
	uint64_t ops = 0, gets = 0, peeks = 0, sw0, pw0, sw1, pw1;
	double t0, wall, cpu = 0;
	unsigned i;

	atomic_store(&go, false);
	atomic_store(&stop, false);
	atomic_store(&ready, 0);
	run_seed++;
	for (i = 0; i < n; i++) {
		w[i] = (struct worker){ .id = i, .cell = c };
		w[i].buf = malloc(vmax);
		memset(w[i].buf, 'a' + (int)i, vmax);
		pthread_create(&w[i].thr, NULL, worker_main, &w[i]);
	}
	while (atomic_load(&ready) < n)
		usleep(1000);
	lock_waits(&sw0, &pw0);
	t0 = clock_s(CLOCK_MONOTONIC);
	atomic_store_explicit(&go, true, memory_order_release);
	if (nops == 0) {
		usleep((useconds_t)(secs * 1e6));
		atomic_store(&stop, true);
	}
	for (i = 0; i < n; i++) {
		pthread_join(w[i].thr, NULL);
		ops += w[i].ops;
		gets += w[i].gets;
		peeks += w[i].peeks;
		cpu += w[i].cpu;
		free(w[i].buf);
	}
	wall = clock_s(CLOCK_MONOTONIC) - t0;
	res.ops_s = (double)ops / wall;
	res.cpu_per_mop = cpu / ((double)ops / 1e6);
	res.busy = cpu / wall;
	res.lockfree = gets > 0 ? (double)peeks / (double)gets : 0;
	lock_waits(&sw1, &pw1);
	res.shard_waits = (double)(sw1 - sw0) / ((double)ops / 1e3);
	res.pool_waits = (double)(pw1 - pw0) / ((double)ops / 1e3);
	return res;
}

/* Median of n doubles (sorts them). */
static double
median(double *v, unsigned n)
{
	unsigned i, j;
	double t;

	for (i = 1; i < n; i++)
		for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
			t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Parses a comma-separated list of up to MAX_LIST numbers. */
static unsigned
parse_list(const char *s, double *out)
{
	unsigned n = 0;
	char *end;

	while (*s != '\0' && n < MAX_LIST) {
		out[n++] = strtod(s, &end);
		if (end == s)
			return 0;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

/* Parses "9:1,1:1" into mixes. */
static unsigned
parse_mixes(const char *s, unsigned mix[][2])
{
	unsigned n = 0, g, w;
	int used;

	while (*s != '\0' && n < MAX_LIST) {
		if (sscanf(s, "%u:%u%n", &g, &w, &used) != 2 || g + w == 0)
			return 0;
		mix[n][0] = g;
		mix[n][1] = w;
		n++;
		s += used;
		if (*s == ',')
			s++;
	}
	return n;
}

/* A new store (and with it a new hash seed) filled with every key. */
static void
preload(const struct store_config *cfg)
{
	char *buf = malloc(vmax);
	struct rng r;
	uint64_t i;

	if (st != NULL)
		store_destroy(st);
	if ((st = store_create(cfg)) == NULL) {
		fprintf(stderr, "store_bench: store_create failed\n");
		exit(1);
	}
	memset(buf, 'p', vmax);
	bench_rng_seed(&r, 42);
	for (i = 0; i < nkeys; i++) {
		if (!do_set(i, buf, vsize(&r))) {
			fprintf(stderr, "store_bench: preload failed\n");
			exit(1);
		}
	}
	free(buf);
}

static void
usage(void)
{
	fprintf(stderr, "usage: store_bench [-L] [-G] [-H] [-t 1,2] [-d secs] "
	    "[-R repeats] [-K keys] [-m MB] [-r 9:1,1:1] [-z 0,0.99] "
	    "[-v 32-1000] [-n ops]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	double threads[MAX_LIST] = { 1, 2 }, skews[MAX_LIST] = { 0, 0.99 };
	unsigned mixes[MAX_LIST][2] = { { 9, 1 }, { 1, 1 } };
	unsigned nthreads = 2, nskews = 2, nmixes = 2, repeats = 3;
	double secs = 2, mb = 1024;
	double ops[MAX_LIST][16], cpu[MAX_LIST][16], busy[MAX_LIST][16];
	double swaits[MAX_LIST][16], pwaits[MAX_LIST][16];
	double lfree[MAX_LIST][16];
	char label[32];
	struct store_config cfg = { 0 };
	struct result r;
	struct cell c;
	unsigned m, z, t, rep;
	uint64_t k;
	double o1 = 0, c1 = 0, om, cm;
	int opt;

	while ((opt = getopt(argc, argv, "LGHt:d:R:K:m:r:z:v:n:")) != -1) {
		switch (opt) {
		case 'L':
			loose = true;
			break;
		case 'H':
			cfg.large_pages = true;
			break;
		case 'G':
			by_ref = true;
			break;
		case 't':
			nthreads = parse_list(optarg, threads);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		case 'n':
			nops = strtoull(optarg, NULL, 10);
			break;
		case 'R':
			repeats = (unsigned)atoi(optarg);
			break;
		case 'K':
			nkeys = strtoull(optarg, NULL, 10);
			break;
		case 'm':
			mb = atof(optarg);
			break;
		case 'r':
			nmixes = parse_mixes(optarg, mixes);
			break;
		case 'z':
			nskews = parse_list(optarg, skews);
			break;
		case 'v':
			if (sscanf(optarg, "%zu-%zu", &vmin, &vmax) != 2)
				usage();
			break;
		default:
			usage();
		}
	}
	if (nthreads == 0 || nskews == 0 || nmixes == 0 || repeats == 0 ||
	    repeats > 16 || nkeys == 0 || vmin > vmax || secs <= 0)
		usage();
	for (t = 0; t < nthreads; t++)
		if (threads[t] < 1 || threads[t] > MAX_THREADS)
			usage();
	cfg.mem_limit = (size_t)(mb * 1024 * 1024);
	cfg.item_size_max = vmax > 1024 * 1024 ? vmax : 1024 * 1024;
	keys = calloc(nkeys, KEY_LEN);
	for (k = 0; k < nkeys; k++)
		snprintf(keys[k], KEY_LEN, "key:%" PRIu64, k);
	printf("store_bench: %" PRIu64 " keys, values %zu-%zu B, -m %.0f, "
	    "%s sets, %s gets, %.1f s x %u repeats, %ld CPUs online\n\n",
	    nkeys, vmin, vmax, mb, loose ? "loose (-L)" : "direct",
	    by_ref ? "by reference (-G)" : "visited", secs, repeats,
	    sysconf(_SC_NPROCESSORS_ONLN));
	printf("| mix | keys | threads | ops/s | CPU s / M ops | CPU busy "
	    "| gets without the lock | shard lock waits / k ops "
	    "| arena+pool lock waits / k ops | wall ratio | CPU ratio |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (m = 0; m < nmixes; m++) {
		for (z = 0; z < nskews; z++) {
			c = (struct cell){ mixes[m][0], mixes[m][1],
			    skews[z] };
			for (rep = 0; rep < repeats; rep++) {
				preload(&cfg);
				for (t = 0; t < nthreads; t++) {
					r = run_cell(&c, (unsigned)threads[t],
					    secs);
					ops[t][rep] = r.ops_s;
					cpu[t][rep] = r.cpu_per_mop;
					busy[t][rep] = r.busy;
					swaits[t][rep] = r.shard_waits;
					pwaits[t][rep] = r.pool_waits;
					lfree[t][rep] = r.lockfree;
				}
			}
			for (t = 0; t < nthreads; t++) {
				om = median(ops[t], repeats);
				cm = median(cpu[t], repeats);
				if (t == 0) {
					o1 = om;
					c1 = cm;
				}
				if (c.skew > 0)
					snprintf(label, sizeof(label),
					    "Zipf %.2g", c.skew);
				else
					snprintf(label, sizeof(label),
					    "uniform");
				printf("| %u:%u | %s | %.0f | %.0f | %.3f | "
				    "%.2f | %.1f%% | %.3f | %.3f |", c.get, c.set,
				    label, threads[t], om, cm,
				    median(busy[t], repeats),
				    100 * median(lfree[t], repeats),
				    median(swaits[t], repeats),
				    median(pwaits[t], repeats));
				if (t == 0)
					printf(" | |\n");
				else
					printf(" %.2f | %.2f |\n", om / o1,
					    threads[t] * c1 / cm);
				fflush(stdout);
			}
		}
	}
	store_destroy(st);
	free(keys);
	return 0;
}
