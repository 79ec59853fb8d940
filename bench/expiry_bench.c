/*
 * expiry_bench.c -- what the store's expiry thread (store_expiry.c)
 * costs when nothing is due, and how soon memory comes back once items
 * expire (issue 16).  Not a test.
 *
 *   expiry_bench [-n ITEMS] [-m MB] [-v VLEN] [-p PASSES]
 *
 * Fills a store of MB megabytes (default 2048) with ITEMS items (default
 * 10,000,000) of VLEN-byte values (default 32), their TTLs dealt in turn
 * from 60 s, 300 s, 3600 s, 86400 s, none, and a spread of 100 s to
 * 30 days, so items of every TTL share the store's segments as they
 * arrive.  The clock is a fake one, held still: nothing falls due.  Then
 * it starts the expiry thread, waits for PASSES passes (default 50) and
 * prints the thread's CPU seconds over them, per pass and as a share of
 * one CPU over the wall time taken.
 *
 * Then the clock moves 61 seconds on, so the 60 s items (a sixth) are
 * expired, and it prints the wall time until the expiry thread has
 * unlinked all of them (stats `reclaimed`) and what memory (`bytes`,
 * the memory held) looks like then.
 *
 * Links libstore only and uses only store.h, so the same file measures
 * an older store for a before/after.  The expiry thread's CPU is the
 * process's (getrusage) less the main thread's, which only sleeps.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

static _Atomic uint32_t fake_now;

/* The store's clock: moves only when the bench moves it. */
static uint32_t
bench_clock(void *ctx)
{
	(void)ctx;
	return atomic_load_explicit(&fake_now, memory_order_relaxed);
}

/* Seconds of the monotonic clock. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of the process or of this thread. */
static double
cpu_s(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of every thread but this one (which only sleeps). */
static double
others_cpu_s(void)
{
	return cpu_s(RUSAGE_SELF) - cpu_s(RUSAGE_THREAD);
}

static struct store_stats
stats(store_t *st)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s;
}

/* Sleeps ms milliseconds. */
static void
nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int
main(int argc, char **argv)
{
	static const int64_t ttls[] = { 60, 300, 3600, 86400, 0, -1 };
	unsigned long n = 10000000, i, n60 = 0;
	unsigned long passes = 50;
	size_t mb = 2048, vlen = 32;
	struct store_config cfg = { 0 };
	struct store_stats s0, s1;
	double t0, c0, t1, c1;
	uint64_t runs0, rec0;
	char key[32], *val;
	int64_t ttl;
	store_t *st;
	item_t *it;
	int opt;

	while ((opt = getopt(argc, argv, "n:m:v:p:")) != -1) {
		switch (opt) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'm': mb = strtoul(optarg, NULL, 10); break;
		case 'v': vlen = strtoul(optarg, NULL, 10); break;
		case 'p': passes = strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: expiry_bench [-n ITEMS] "
			    "[-m MB] [-v VLEN] [-p PASSES]\n");
			return 64;
		}
	}
	atomic_store(&fake_now, (uint32_t)time(NULL));
	cfg.mem_limit = mb * 1024 * 1024;
	cfg.item_size_max = 1024 * 1024;
	cfg.clock = bench_clock;
	if ((st = store_create(&cfg)) == NULL || (val = malloc(vlen)) == NULL)
		return 1;
	memset(val, 'v', vlen);
	srandom(1);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		ttl = ttls[i % 6];
		if (ttl < 0)
			ttl = 100 + random() % (2592000 - 100);
		n60 += ttl == 60;
		snprintf(key, sizeof(key), "key:%lu", i);
		if (store_reserve(st, key, strlen(key), 0, ttl, vlen, &it) !=
		    STORE_OK)
			return 1;
		memcpy(item_value_mut(it), val, vlen);
		store_commit(st, it, STORE_SET, 0, NULL);
	}
	s0 = stats(st);
	printf("filled %lu items (%zu-byte values) in %.1f s: %llu linked, "
	    "%.0f MB held in %llu segments of %llu KiB, %llu evicted\n", n,
	    vlen, now_s() - t0, (unsigned long long)s0.curr_items,
	    s0.mem_bytes / 1048576.0, (unsigned long long)s0.segs_held,
	    (unsigned long long)s0.seg_size / 1024,
	    (unsigned long long)s0.evictions);
	/* Let table upkeep after the fill settle before measuring. */
	while (stats(st).hash_is_expanding)
		store_expire_run(st, 100000);

	if (store_expiry_start(st) != 0)
		return 1;
	nap(300);
	runs0 = stats(st).expiry_runs;
	t0 = now_s();
	c0 = others_cpu_s();
	while (stats(st).expiry_runs < runs0 + passes)
		nap(20);
	t1 = now_s();
	c1 = others_cpu_s();
	s1 = stats(st);
	printf("nothing due: %llu passes in %.2f s, expiry thread %.4f CPU s "
	    "(%.3f ms a pass, %.3f %% of a CPU), %llu items looked at\n",
	    (unsigned long long)(s1.expiry_runs - runs0), t1 - t0, c1 - c0,
	    (c1 - c0) * 1e3 / (double)(s1.expiry_runs - runs0),
	    (c1 - c0) * 100 / (t1 - t0),
	    (unsigned long long)(s1.crawler_items_checked -
	    s0.crawler_items_checked));

	rec0 = s1.reclaimed;
	c0 = others_cpu_s();
	t0 = now_s();
	atomic_fetch_add(&fake_now, 61);
	while (stats(st).reclaimed < rec0 + n60 && now_s() - t0 < 60)
		nap(1);
	t1 = now_s();
	c1 = others_cpu_s();
	s1 = stats(st);
	printf("%lu items of 60 s expired: all reclaimed %.3f s later "
	    "(%.3f CPU s), bytes %.0f -> %.0f MB, held %.0f -> %.0f MB, "
	    "%llu items looked at\n", n60, t1 - t0, c1 - c0,
	    s0.bytes / 1048576.0, s1.bytes / 1048576.0,
	    s0.mem_bytes / 1048576.0, s1.mem_bytes / 1048576.0,
	    (unsigned long long)(s1.crawler_items_checked -
	    s0.crawler_items_checked));
	store_expiry_stop(st);
	store_destroy(st);
	free(val);
	return 0;
}
