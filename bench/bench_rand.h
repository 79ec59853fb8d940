/*
 * bench_rand.h -- deterministic random numbers for the load generator:
 * xoshiro256** seeded through splitmix64, unbiased bounded integers, and
 * a Zipf sampler over ranks 1..n by rejection-inversion (Hormann and
 * Derflinger, 1996), which needs O(1) memory and O(1) expected time for
 * any key space and any skew > 0, including exactly 1.
 *
 * All records are plain and owned by the caller; nothing is shared, so
 * each connection carries its own struct rng and the same seed gives the
 * same request stream.
 */
#ifndef BENCH_RAND_H
#define BENCH_RAND_H

#include <stdint.h>

struct rng {
	uint64_t	s[4];
};

/* Constants of one Zipf distribution, set by bench_zipf_init(). */
struct zipf {
	uint64_t	n;		/* ranks 1..n */
	double		q;		/* the skew (exponent) */
	double		h_x1;		/* H(1.5) - 1 */
	double		h_n;		/* H(n + 0.5) */
	double		s;		/* acceptance shortcut */
};

void		bench_rng_seed(struct rng *, uint64_t);
uint64_t	bench_rng_next(struct rng *);
double		bench_rng_double(struct rng *);
uint64_t	bench_rng_below(struct rng *, uint64_t);
int		bench_zipf_init(struct zipf *, uint64_t, double);
uint64_t	bench_zipf_sample(const struct zipf *, struct rng *);

#endif
