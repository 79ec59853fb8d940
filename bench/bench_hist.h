/*
 * bench_hist.h -- a log-linear latency histogram in the manner of
 * HdrHistogram: values below HIST_SUB are counted exactly; above, each
 * power of two is split into HIST_HALF equal buckets, so a bucket is never
 * wider than 1/HIST_HALF of the values it holds (under 0.8 % with 8 bits).
 * Percentiles are read from the counts, never from an average.
 *
 * A struct hist is a plain record the caller owns: one per thread, no
 * locks; threads' histograms are merged with bench_hist_merge() at the end.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS	8
#define HIST_SUB	(1u << HIST_SUB_BITS)	/* values counted exactly */
#define HIST_HALF	(HIST_SUB >> 1)		/* buckets per power of two */
#define HIST_BUCKETS	(HIST_SUB + (64 - HIST_SUB_BITS) * HIST_HALF)

struct hist {
	uint64_t	total;		/* values recorded */
	uint64_t	min;		/* exact smallest value, if total > 0 */
	uint64_t	max;		/* exact largest value */
	uint64_t	counts[HIST_BUCKETS];
};

void		bench_hist_reset(struct hist *);
void		bench_hist_record(struct hist *, uint64_t);
void		bench_hist_merge(struct hist *, const struct hist *);
uint64_t	bench_hist_percentile(const struct hist *, double);
size_t		bench_hist_index(uint64_t);
uint64_t	bench_hist_lowest(size_t);
uint64_t	bench_hist_highest(size_t);

#endif
