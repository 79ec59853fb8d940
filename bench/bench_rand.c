/*
 * bench_rand.c -- xoshiro256** (Blackman and Vigna) and the
 * rejection-inversion Zipf sampler of bench_rand.h.
 *
 * Zipf: P(k) is proportional to h(k) = k^-q for k in 1..n.  H is an
 * integral of h, so H(k + 0.5) - H(k - 0.5) approximates h(k); a uniform u
 * in (H(1.5) - 1, H(n + 0.5)] is mapped back through H^-1 and rounded to a
 * rank k, which is accepted when u falls in the part of k's interval that
 * matches h(k).  The helpers compute log1p(x)/x and expm1(x)/x without
 * cancellation near 0, which is what makes q = 1 work.  This follows the
 * sampler of Apache Commons RNG.
 */
#include "config.h"

#include <math.h>

#include "bench_rand.h"

/* Steps a splitmix64 state and returns its output. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Seeds r from one 64-bit number. */
void
bench_rng_seed(struct rng *r, uint64_t seed)
{
	int	i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

/* Rotates x left by k bits. */
static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Returns the next 64 random bits (xoshiro256**). */
uint64_t
bench_rng_next(struct rng *r)
{
	uint64_t	*s = r->s;
	uint64_t	 result = rotl(s[1] * 5, 7) * 9;
	uint64_t	 t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Returns a uniform double in [0, 1) with 53 random bits. */
double
bench_rng_double(struct rng *r)
{
	return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Returns a uniform integer in [0, n) without modulo bias (Lemire). */
uint64_t
bench_rng_below(struct rng *r, uint64_t n)
{
	unsigned __int128	m;
	uint64_t		lo, threshold;

	if (n == 0)
		return 0;
	m = (unsigned __int128)bench_rng_next(r) * n;
	lo = (uint64_t)m;
	if (lo < n) {
		threshold = -n % n;
		while (lo < threshold) {
			m = (unsigned __int128)bench_rng_next(r) * n;
			lo = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

/* Returns log1p(x) / x, accurate near 0. */
static double
helper1(double x)
{
	if (fabs(x) > 1e-8)
		return log1p(x) / x;
	return 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

/* Returns expm1(x) / x, accurate near 0. */
static double
helper2(double x)
{
	if (fabs(x) > 1e-8)
		return expm1(x) / x;
	return 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}

/* Returns h(x) = x^-q. */
static double
zh(const struct zipf *z, double x)
{
	return exp(-z->q * log(x));
}

/* Returns H(x) = (x^(1-q) - 1) / (1 - q), or log(x) when q = 1. */
static double
zH(const struct zipf *z, double x)
{
	double	lx = log(x);

	return helper2((1 - z->q) * lx) * lx;
}

/* Returns the inverse of H. */
static double
zHinv(const struct zipf *z, double x)
{
	double	t = x * (1 - z->q);

	if (t < -1)
		t = -1;
	return exp(helper1(t) * x);
}

/* Sets up z for ranks 1..n and skew q; -1 when n is 0 or q not > 0. */
int
bench_zipf_init(struct zipf *z, uint64_t n, double q)
{
	if (n == 0 || !(q > 0) || !isfinite(q))
		return -1;
	z->n = n;
	z->q = q;
	z->h_x1 = zH(z, 1.5) - 1;
	z->h_n = zH(z, (double)n + 0.5);
	z->s = 2 - zHinv(z, zH(z, 2.5) - zh(z, 2));
	return 0;
}

/* Returns a rank in 1..n; rank 1 is the most frequent. */
uint64_t
bench_zipf_sample(const struct zipf *z, struct rng *r)
{
	for (;;) {
		double		u, x;
		uint64_t	k;

		u = z->h_n + bench_rng_double(r) * (z->h_x1 - z->h_n);
		x = zHinv(z, u);
		k = x + 0.5 < 1 ? 1 : (uint64_t)(x + 0.5);
		if (k > z->n)
			k = z->n;
		if ((double)k - x <= z->s ||
		    u >= zH(z, (double)k + 0.5) - zh(z, (double)k))
			return k;
	}
}
