/*
 * test_bench.c -- cmocka unit tests of the load generator's numerics:
 * the log-linear latency histogram (bucket bounds, percentiles against
 * exact answers, merging) and the random streams (determinism, bounded
 * integers, and the rejection-inversion Zipf sampler against the exact
 * probabilities).  No sockets, no clock; every seed is fixed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_hist.h"
#include "bench_rand.h"

/* Allocates an empty histogram (they are too big for the stack). */
static struct hist *
new_hist(void)
{
	struct hist	*h = malloc(sizeof *h);

	assert_non_null(h);
	bench_hist_reset(h);
	return h;
}

/* Values below HIST_SUB have a bucket each. */
static void
test_hist_small_values_exact(void **state)
{
	uint64_t	v;

	(void)state;
	for (v = 0; v < HIST_SUB; v++) {
		assert_int_equal(bench_hist_index(v), v);
		assert_int_equal(bench_hist_lowest(v), v);
		assert_int_equal(bench_hist_highest(v), v);
	}
}

/* Checks that v's bucket holds v and is at most 1/HIST_HALF wide. */
static void
check_bucket(uint64_t v)
{
	size_t		i = bench_hist_index(v);
	uint64_t	lo = bench_hist_lowest(i), hi = bench_hist_highest(i);

	assert_true(i < HIST_BUCKETS);
	assert_true(lo <= v);
	assert_true(v <= hi);
	if (v >= HIST_SUB)
		assert_true((double)(hi - lo + 1) <= (double)lo / HIST_HALF);
}

/* Bucket bounds hold at every power of two, its neighbours, and at
 * random; indexes grow with the value and end at the last bucket. */
static void
test_hist_bucket_bounds(void **state)
{
	struct rng	r;
	uint64_t	v;
	int		e, i;

	(void)state;
	for (e = 0; e < 64; e++) {
		v = UINT64_C(1) << e;
		check_bucket(v);
		check_bucket(v - 1);
		check_bucket(v + 1);
		if (v > 1)
			assert_true(bench_hist_index(v - 1) < bench_hist_index(v));
	}
	check_bucket(UINT64_MAX);
	assert_int_equal(bench_hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	assert_true(bench_hist_highest(HIST_BUCKETS - 1) == UINT64_MAX);
	bench_rng_seed(&r, 42);
	for (i = 0; i < 100000; i++) {
		v = bench_rng_next(&r) >> (bench_rng_next(&r) % 64);
		check_bucket(v);
		assert_true(bench_hist_index(v) <= bench_hist_index(v + (v < UINT64_MAX)));
	}
	/* Adjacent buckets tile the number line with no gap. */
	for (i = 0; i + 1 < (int)HIST_BUCKETS; i++)
		assert_true(bench_hist_highest((size_t)i) + 1 ==
		    bench_hist_lowest((size_t)i + 1));
}

/* Asserts that got is the exact answer or at most one bucket above. */
static void
assert_close_above(uint64_t got, uint64_t exact)
{
	assert_true(got >= exact);
	assert_true((double)got <= (double)exact * (1.0 + 1.0 / HIST_HALF));
}

/* Percentiles of 1..100000 recorded once each. */
static void
test_hist_percentiles_uniform(void **state)
{
	struct hist	*h = new_hist();
	uint64_t	 v;

	(void)state;
	for (v = 1; v <= 100000; v++)
		bench_hist_record(h, v);
	assert_int_equal(h->total, 100000);
	assert_close_above(bench_hist_percentile(h, 50), 50000);
	assert_close_above(bench_hist_percentile(h, 90), 90000);
	assert_close_above(bench_hist_percentile(h, 99), 99000);
	assert_close_above(bench_hist_percentile(h, 99.9), 99900);
	assert_int_equal(bench_hist_percentile(h, 100), 100000);
	assert_int_equal(bench_hist_percentile(h, 0), 1);
	free(h);
}

/* A long tail moves p99.9 but not p50: percentiles, not an average. */
static void
test_hist_percentiles_tail(void **state)
{
	struct hist	*h = new_hist();
	int		 i;

	(void)state;
	for (i = 0; i < 9990; i++)
		bench_hist_record(h, 100);
	for (i = 0; i < 10; i++)
		bench_hist_record(h, 5000000);
	assert_int_equal(bench_hist_percentile(h, 50), 100);
	assert_int_equal(bench_hist_percentile(h, 99), 100);
	assert_int_equal(bench_hist_percentile(h, 99.9), 100);
	assert_int_equal(bench_hist_percentile(h, 99.91), 5000000);
	assert_int_equal(bench_hist_percentile(h, 100), 5000000);
	/* 1000 values: p99.9 is the 999th, not the 1000th. */
	bench_hist_reset(h);
	for (i = 1; i <= 1000; i++)
		bench_hist_record(h, i < 1000 ? 10 : 200);
	assert_int_equal(bench_hist_percentile(h, 99.9), 10);
	free(h);
}

/* An empty histogram answers 0; merging equals recording everything. */
static void
test_hist_empty_and_merge(void **state)
{
	struct hist	*a = new_hist(), *b = new_hist(), *all = new_hist();
	struct rng	 r;
	uint64_t	 v;
	int		 i;

	(void)state;
	assert_int_equal(bench_hist_percentile(a, 50), 0);
	assert_int_equal(bench_hist_percentile(a, 99.9), 0);
	bench_rng_seed(&r, 7);
	for (i = 0; i < 50000; i++) {
		v = 1000 + bench_rng_below(&r, 1000000);
		bench_hist_record(i % 2 ? a : b, v);
		bench_hist_record(all, v);
	}
	bench_hist_merge(a, b);
	assert_int_equal(a->total, all->total);
	assert_int_equal(a->min, all->min);
	assert_int_equal(a->max, all->max);
	assert_memory_equal(a->counts, all->counts, sizeof a->counts);
	assert_int_equal(bench_hist_percentile(a, 99), bench_hist_percentile(all, 99));
	free(a);
	free(b);
	free(all);
}

/* Equal seeds give equal streams; different seeds do not. */
static void
test_rng_deterministic(void **state)
{
	struct rng	a, b, c;
	int		i, same = 0;

	(void)state;
	bench_rng_seed(&a, 1);
	bench_rng_seed(&b, 1);
	bench_rng_seed(&c, 2);
	for (i = 0; i < 1000; i++) {
		uint64_t x = bench_rng_next(&a);

		assert_true(x == bench_rng_next(&b));
		same += x == bench_rng_next(&c);
	}
	assert_int_equal(same, 0);
}

/* bench_rng_below stays in range and is flat; bench_rng_double is in [0, 1). */
static void
test_rng_below_uniform(void **state)
{
	struct rng	r;
	unsigned	counts[6] = { 0 };
	int		i;
	double		d;

	(void)state;
	bench_rng_seed(&r, 3);
	for (i = 0; i < 600000; i++) {
		uint64_t x = bench_rng_below(&r, 6);

		assert_true(x < 6);
		counts[x]++;
		d = bench_rng_double(&r);
		assert_true(d >= 0 && d < 1);
	}
	for (i = 0; i < 6; i++)
		assert_true(abs((int)counts[i] - 100000) < 1500);
	assert_int_equal(bench_rng_below(&r, 1), 0);
}

/* Compares sampled frequencies over ranks 1..n with the exact pmf. */
static void
check_zipf(uint64_t n, double q, uint64_t seed, int draws, double tol)
{
	struct zipf	 z;
	struct rng	 r;
	unsigned	*counts = calloc(n + 1, sizeof *counts);
	double		 norm = 0;
	uint64_t	 k;
	int		 i;

	assert_non_null(counts);
	assert_int_equal(bench_zipf_init(&z, n, q), 0);
	bench_rng_seed(&r, seed);
	for (i = 0; i < draws; i++) {
		k = bench_zipf_sample(&z, &r);
		assert_true(k >= 1 && k <= n);
		counts[k]++;
	}
	for (k = 1; k <= n; k++)
		norm += pow((double)k, -q);
	for (k = 1; k <= n; k++) {
		double want = pow((double)k, -q) / norm;
		double got = (double)counts[k] / draws;

		if (fabs(got - want) > tol)
			fail_msg("n=%llu q=%.2f rank %llu: %.5f, want %.5f",
			    (unsigned long long)n, q, (unsigned long long)k,
			    got, want);
	}
	free(counts);
}

/* The sampler matches the Zipf law at the skews the benchmarks use,
 * including exactly 1, where the closed forms have a removable pole. */
static void
test_zipf_matches_pmf(void **state)
{
	(void)state;
	check_zipf(10, 1.0, 11, 1000000, 0.002);
	check_zipf(10, 0.8, 12, 1000000, 0.002);
	check_zipf(1000, 0.99, 13, 1000000, 0.0015);
	check_zipf(50, 2.5, 14, 1000000, 0.002);
	check_zipf(1, 1.0, 15, 1000, 0.0);
}

/* Huge key spaces need no table: ranks stay in range and the top two keep
 * the ratio 2^q. */
static void
test_zipf_huge_space(void **state)
{
	struct zipf	z;
	struct rng	r;
	uint64_t	k, n = UINT64_C(1) << 40;
	unsigned	one = 0, two = 0;
	int		i;
	double		ratio;

	(void)state;
	assert_int_equal(bench_zipf_init(&z, n, 1.0), 0);
	bench_rng_seed(&r, 5);
	for (i = 0; i < 2000000; i++) {
		k = bench_zipf_sample(&z, &r);
		assert_true(k >= 1 && k <= n);
		one += k == 1;
		two += k == 2;
	}
	ratio = (double)one / two;
	assert_true(ratio > 1.9 && ratio < 2.1);
}

/* Bad parameters are refused. */
static void
test_zipf_rejects_bad(void **state)
{
	struct zipf	z;

	(void)state;
	assert_int_equal(bench_zipf_init(&z, 0, 1.0), -1);
	assert_int_equal(bench_zipf_init(&z, 10, 0.0), -1);
	assert_int_equal(bench_zipf_init(&z, 10, -1.0), -1);
	assert_int_equal(bench_zipf_init(&z, 10, NAN), -1);
}

/* Runs every test above. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_small_values_exact),
		cmocka_unit_test(test_hist_bucket_bounds),
		cmocka_unit_test(test_hist_percentiles_uniform),
		cmocka_unit_test(test_hist_percentiles_tail),
		cmocka_unit_test(test_hist_empty_and_merge),
		cmocka_unit_test(test_rng_deterministic),
		cmocka_unit_test(test_rng_below_uniform),
		cmocka_unit_test(test_zipf_matches_pmf),
		cmocka_unit_test(test_zipf_huge_space),
		cmocka_unit_test(test_zipf_rejects_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
