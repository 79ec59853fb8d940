/*
 * snap_bench.c -- how fast the store's snapshots (issue 15,
 * store/store_snap.c) are written and loaded, and what a snapshot
 * running in the background does to writers' latency.  Not a test.
 *
 *   snap_bench [-kL] [-d DIR] [-r REPEATS] [-T LOAD_THREADS] [-t WRITERS]
 *       [-o OPS] SIZE_GB...
 *
 * For each size: fills a store with items of 100..2000-byte values
 * (uniform, ~1 KB mean) until their keys and values hold SIZE_GB GiB,
 * then REPEATS times (default 1): writes the snapshot to
 * DIR/snap_bench.snap (fsync included) and loads the file (now in the
 * page cache) into a new store; prints seconds, CPU seconds (user +
 * system, all threads) and GB/s of key+value bytes for each, and their
 * medians.  Then, on the last store loaded, unless OPS is 0: WRITERS
 * threads (default 2) each do OPS sets (default 500,000) of random
 * existing keys, once alone and once while a thread writes snapshots
 * back to back; prints the writers' p50, p99, p99.9 and max set latency
 * for both.
 *
 * -T sets the threads a load uses (default: one per CPU).
 * -k keeps the last file (DIR/snap_bench.snap) for loads by hand.
 * -L only loads that kept file REPEATS times (for perf stat / record:
 * the process does little else).
 * Links libstore only; the clock is the wall clock.
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "store_snap.h"

#define GiB	(1024.0 * 1024.0 * 1024.0)

static const char *dir = "/tmp";
static char path[512];
static unsigned nwriters = 2;
static unsigned long ops = 500000;
static int keep;

/* Seconds of the monotonic clock. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of the process so far: on a shared
 * machine wall time says more about the neighbours than about us. */
static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A small fast PRNG (xorshift64*). */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* Sets key i to a value of n bytes. */
static void
put(store_t *st, uint64_t i, size_t n)
{
	char key[32], *v;
	item_t *it;
	int nk = snprintf(key, sizeof key, "key:%llu", (unsigned long long)i);

	if (store_reserve(st, key, (size_t)nk, 0, 0, n, &it) != STORE_OK)
		return;
	v = item_value_mut(it);
	for (size_t j = 0; j < n; j += 64)
		v[j] = (char)(i + j);
	memset(v, 'v', n < 16 ? n : 16);
	store_commit(st, it, STORE_SET, 0, NULL);
}

/* Creates a store for about bytes of items. */
static store_t *
mk(double bytes)
{
	struct store_config cfg = {
		.mem_limit = (size_t)(bytes * 1.6) + (256u << 20),
		.item_size_max = 1u << 20,
	};

	return store_create(&cfg);
}

/* Fills st with items of ~1 KB until gb GiB of keys and values. */
static uint64_t
fill(store_t *st, double gb, uint64_t *nitems)
{
	uint64_t s = 42, bytes = 0, i = 0;

	while ((double)bytes < gb * GiB) {
		size_t n = 100 + rnd(&s) % 1901;

		put(st, i, n);
		bytes += n + 12;
		i++;
	}
	*nitems = i;
	return bytes;
}

struct lat {
	store_t		*st;
	uint64_t	 nkeys;
	uint64_t	 seed;
	double		*us;		/* ops latencies, microseconds */
};

/* A writer: ops sets of random existing keys, each timed. */
static void *
writer_main(void *arg)
{
	struct lat *l = arg;

	for (unsigned long k = 0; k < ops; k++) {
		uint64_t i = rnd(&l->seed) % l->nkeys;
		size_t n = 100 + rnd(&l->seed) % 1901;
		double t0 = now_s();

		put(l->st, i, n);
		l->us[k] = (now_s() - t0) * 1e6;
	}
	return NULL;
}

static atomic_bool snap_stop;
static atomic_uint snaps_done;

/* Writes snapshots back to back until told to stop. */
static void *
snapper_main(void *arg)
{
	store_t *st = arg;
	char msg[256];

	while (!atomic_load(&snap_stop)) {
		if (store_snap_write(st, path, NULL, NULL, NULL, msg,
		    sizeof msg) != 0) {
			fprintf(stderr, "snapshot: %s\n", msg);
			break;
		}
		atomic_fetch_add(&snaps_done, 1);
	}
	return NULL;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Runs the writers, with or without snapshots meanwhile; prints. */
static void
latency(store_t *st, uint64_t nkeys, int with_snap)
{
	pthread_t w[64], sn;
	struct lat l[64];
	double *all;
	size_t n = (size_t)nwriters * ops;

	all = malloc(sizeof *all * n);
	atomic_store(&snap_stop, 0);
	atomic_store(&snaps_done, 0);
	if (with_snap)
		pthread_create(&sn, NULL, snapper_main, st);
	for (unsigned i = 0; i < nwriters; i++) {
		l[i] = (struct lat){ st, nkeys, 7 + i, all + i * ops };
		pthread_create(&w[i], NULL, writer_main, &l[i]);
	}
	for (unsigned i = 0; i < nwriters; i++)
		pthread_join(w[i], NULL);
	if (with_snap) {
		atomic_store(&snap_stop, 1);
		pthread_join(sn, NULL);
	}
	qsort(all, n, sizeof *all, cmp_d);
	printf("writers %u x %lu sets, %-22s p50 %.1f us  p99 %.1f us  "
	    "p99.9 %.1f us  max %.0f us  (snapshots finished: %u)\n",
	    nwriters, ops, with_snap ? "snapshots running:" : "no snapshot:",
	    all[n / 2], all[n * 99 / 100], all[n * 999 / 1000], all[n - 1],
	    atomic_load(&snaps_done));
	free(all);
}

/* Median of n values (sorts them). */
static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Loads path into a new store of about gb GiB, timed; the store is
 * returned for the latency runs or freed (st_out NULL). */
static int
load_once(double gb, double *wall, double *cpu, double *gbps,
    store_t **st_out)
{
	struct snap_result r;
	char msg[256];
	store_t *ld;
	double c0;

	if ((ld = mk(gb * GiB)) == NULL)
		return -1;
	c0 = cpu_s();
	if (store_snap_load(ld, path, &r, msg, sizeof msg) != SNAP_LOADED) {
		fprintf(stderr, "load: %s\n", msg);
		return -1;
	}
	*cpu = cpu_s() - c0;
	*wall = (double)r.usec / 1e6;
	*gbps = (double)r.value_bytes / 1e9 / *wall;
	printf("  load:  %.2f s (cpu %.2f s), %.2f GB/s, %llu items, "
	    "%.1f ns/item\n", *wall, *cpu, *gbps, (unsigned long long)r.items,
	    *cpu * 1e9 / (double)(r.items ? r.items : 1));
	if (st_out != NULL)
		*st_out = ld;
	else
		store_destroy(ld);
	return 0;
}

/* Writes st to path, timed. */
static int
write_once(store_t *st, double *wall, double *cpu, double *gbps)
{
	struct snap_result r;
	char msg[256];
	double c0 = cpu_s();

	if (store_snap_write(st, path, NULL, NULL, &r, msg, sizeof msg) != 0) {
		fprintf(stderr, "write: %s\n", msg);
		return -1;
	}
	*cpu = cpu_s() - c0;
	*wall = (double)r.usec / 1e6;
	*gbps = (double)r.value_bytes / 1e9 / *wall;
	printf("  write: %.2f s (cpu %.2f s), %.2f GB/s, file %.2f GiB, "
	    "%llu items\n", *wall, *cpu, *gbps, (double)r.bytes / GiB,
	    (unsigned long long)r.items);
	return 0;
}

#define MAXREP	64

static void
usage(void)
{
	fprintf(stderr, "usage: snap_bench [-kL] [-d DIR] [-r REPEATS] "
	    "[-T LOAD_THREADS] [-t WRITERS] [-o OPS] SIZE_GB...\n");
	exit(64);
}

int
main(int argc, char **argv)
{
	store_t *st = NULL, *ld = NULL;
	uint64_t nkeys = 0;
	int ch, reps = 1, load_only = 0;

	while ((ch = getopt(argc, argv, "d:t:o:r:T:kL")) != -1)
		switch (ch) {
		case 'T': store_snap_load_threads((unsigned)atoi(optarg));
			break;
		case 'd': dir = optarg; break;
		case 't': nwriters = (unsigned)atoi(optarg); break;
		case 'o': ops = strtoul(optarg, NULL, 10); break;
		case 'r': reps = atoi(optarg); break;
		case 'k': keep = 1; break;
		case 'L': load_only = 1; keep = 1; break;
		default:
			usage();
		}
	if (optind == argc || nwriters < 1 || nwriters > 64 || reps < 1 ||
	    reps > MAXREP)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);	/* lines as they come */
	snprintf(path, sizeof path, "%s/snap_bench.snap", dir);
	for (int a = optind; a < argc; a++) {
		double gb = atof(argv[a]), t0;
		double ww[MAXREP], wc[MAXREP], wg[MAXREP];
		double lw[MAXREP], lc[MAXREP], lg[MAXREP];
		uint64_t bytes;
		bool last = a + 1 == argc;

		if (load_only) {
			/* The kept file, loaded again and again (perf). */
			printf("%.0f GiB: loading %s\n", gb, path);
			for (int i = 0; i < reps; i++)
				if (load_once(gb, &lw[i], &lc[i], &lg[i],
				    NULL) != 0)
					return 1;
			printf("  load medians of %d: %.2f s, cpu %.2f s, "
			    "%.2f GB/s\n", reps, median(lw, reps),
			    median(lc, reps), median(lg, reps));
			continue;
		}
		if ((st = mk(gb * GiB)) == NULL)
			return 1;
		t0 = now_s();
		bytes = fill(st, gb, &nkeys);
		printf("%.0f GiB: %llu items, %.2f GiB of keys+values, filled "
		    "in %.1f s\n", gb, (unsigned long long)nkeys,
		    (double)bytes / GiB, now_s() - t0);
		/* Writes and loads interleaved, so a neighbour's burst hits
		 * both alike. */
		for (int i = 0; i < reps; i++) {
			if (write_once(st, &ww[i], &wc[i], &wg[i]) != 0)
				return 1;
			if (load_once(gb, &lw[i], &lc[i], &lg[i],
			    last && i + 1 == reps ? &ld : NULL) != 0)
				return 1;
		}
		store_destroy(st);
		st = NULL;
		if (reps > 1)
			printf("  medians of %d: write %.2f s, cpu %.2f s, "
			    "%.2f GB/s; load %.2f s, cpu %.2f s, %.2f GB/s\n",
			    reps, median(ww, reps), median(wc, reps),
			    median(wg, reps), median(lw, reps),
			    median(lc, reps), median(lg, reps));
	}
	if (ld != NULL && ops > 0) {
		latency(ld, nkeys, 0);
		latency(ld, nkeys, 1);
	}
	store_destroy(ld);
	if (!keep)
		unlink(path);
	return 0;
}
