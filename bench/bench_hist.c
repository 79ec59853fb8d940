/*
 * bench_hist.c -- the log-linear histogram of bench_hist.h.
 *
 * Bucket layout: index v for v < HIST_SUB; for larger v with top bit e,
 * shift = e - HIST_SUB_BITS + 1 keeps the HIST_SUB_BITS leading bits of v,
 * whose value m lies in [HIST_HALF, HIST_SUB), and the index is
 * HIST_SUB + (shift - 1) * HIST_HALF + (m - HIST_HALF).  The buckets of
 * consecutive shifts are adjacent, so the array is dense and ordered.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "bench_hist.h"

/* Empties h. */
void
bench_hist_reset(struct hist *h)
{
	memset(h, 0, sizeof *h);
}

/* Returns the bucket that counts value v. */
size_t
bench_hist_index(uint64_t v)
{
	unsigned	e, shift;

	if (v < HIST_SUB)
		return (size_t)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	shift = e - HIST_SUB_BITS + 1;
	return HIST_SUB + (size_t)(shift - 1) * HIST_HALF +
	    (size_t)((v >> shift) - HIST_HALF);
}

/* Returns the smallest value bucket idx counts. */
uint64_t
bench_hist_lowest(size_t idx)
{
	size_t	j;
	unsigned shift;

	if (idx < HIST_SUB)
		return idx;
	j = idx - HIST_SUB;
	shift = (unsigned)(j / HIST_HALF) + 1;
	return (uint64_t)(j % HIST_HALF + HIST_HALF) << shift;
}

/* Returns the largest value bucket idx counts. */
uint64_t
bench_hist_highest(size_t idx)
{
	unsigned shift;

	if (idx < HIST_SUB)
		return idx;
	shift = (unsigned)((idx - HIST_SUB) / HIST_HALF) + 1;
	return bench_hist_lowest(idx) + ((UINT64_C(1) << shift) - 1);
}

/* Counts one value. */
void
bench_hist_record(struct hist *h, uint64_t v)
{
	if (h->total == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->total++;
	h->counts[bench_hist_index(v)]++;
}

/* Adds the counts of src to dst. */
void
bench_hist_merge(struct hist *dst, const struct hist *src)
{
	size_t	i;

	if (src->total == 0)
		return;
	if (dst->total == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->total += src->total;
	for (i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
}

/*
 * Returns the value at percentile p (0..100): the highest value of the
 * bucket holding the ceil(p% * total)-th smallest value, capped by the
 * exact maximum, so the answer is never below the true percentile and at
 * most one bucket width above it.  0 when nothing was recorded.
 */
uint64_t
bench_hist_percentile(const struct hist *h, double p)
{
	uint64_t	rank, seen = 0, v;
	double		x;
	size_t		i;

	if (h->total == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	/* The epsilon keeps 99.9 % of 1000 at rank 999, not 1000. */
	x = (double)h->total * p / 100.0;
	rank = (uint64_t)ceil(x - x * 1e-12);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			break;
	}
	if (i == HIST_BUCKETS)
		return h->max;
	v = bench_hist_highest(i);
	if (v > h->max)
		v = h->max;
	if (v < h->min)
		v = h->min;
	return v;
}
