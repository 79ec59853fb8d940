/*
 * memoize.c -- example: cache the result of an expensive deterministic
 * function in cached with libcachedclient.
 *
 *   cc -o memoize memoize.c $(pkg-config --cflags --libs libcachedclient)
 *   ./memoize 127.0.0.1:11211 2000000
 *
 * The first run computes and stores the answer; runs within the next
 * minute get it from the cache.  With the server down it still answers:
 * memoize computes instead of failing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cachedclient.h>

/* The expensive function: how many primes are below n (a sieve). */
static cc_compute
count_primes(void *ctx, const cc_arg *args, size_t nargs, void **value,
    size_t *len)
{
	unsigned long	 n, i, j, count = 0;
	char		 num[24], *sieve, *out;

	(void)ctx;
	if (nargs != 1 || args[0].len == 0 || args[0].len >= sizeof num)
		return CC_COMPUTE_ERROR;
	memcpy(num, args[0].data, args[0].len);	/* arguments are bytes */
	num[args[0].len] = '\0';
	n = strtoul(num, NULL, 10);
	if ((sieve = calloc(n + 1, 1)) == NULL)
		return CC_COMPUTE_ERROR;
	for (i = 2; i < n; i++) {
		if (sieve[i])
			continue;
		count++;
		for (j = i * i; j < n; j += i)
			sieve[j] = 1;
	}
	free(sieve);
	if ((out = malloc(24)) == NULL)
		return CC_COMPUTE_ERROR;
	*len = (size_t)snprintf(out, 24, "%lu", count);
	*value = out;		/* ownership passes to the library */
	return CC_COMPUTE_OK;
}

int
main(int argc, char **argv)
{
	struct cc_config	 cfg;
	struct cc_memo_result	 res;
	struct cc_stats		 st;
	cc_client		*c;
	cc_status		 s;
	const char		*n = argc > 2 ? argv[2] : "2000000";
	cc_arg			 arg = { n, strlen(n) };

	cc_config_init(&cfg);
	cfg.servers = argc > 1 ? argv[1] : "127.0.0.1:11211";
	cfg.jitter_pct = 10;	/* entries written together expire apart */
	if ((s = cc_client_create(&cfg, &c)) != CC_OK) {
		fprintf(stderr, "memoize: %s: %s\n", cc_strerror(s),
		    cc_errmsg());
		return 1;
	}
	s = cc_memoize(c, "examples", "count_primes", &arg, 1, 60,
	    count_primes, NULL, &res);
	if (s != CC_OK) {
		fprintf(stderr, "memoize: %s: %s\n", cc_strerror(s),
		    cc_errmsg());
		cc_client_destroy(c);
		return 1;
	}
	printf("primes below %s: %.*s (%s)\n", n, (int)res.len,
	    (const char *)res.value, res.from_cache ? "from cache" :
	    "computed");
	free(res.value);	/* the caller owns the value */
	cc_client_stats(c, &st);
	printf("hits %" PRIu64 ", misses %" PRIu64 ", errors %" PRIu64 "\n",
	    st.hits, st.misses, st.errors);
	cc_client_destroy(c);
	return 0;
}
