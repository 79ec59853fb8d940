/*
 * test_client.c -- libcachedclient against real cached processes on
 * loopback: the thin operations, then memoize: miss/compute/hit, soft and
 * hard TTL expiry, jitter, negative caching, stale serving, lock waits and
 * takeovers, 16 threads and 4 processes racing on one missing key (the
 * callback must run exactly once), fail-open with the server stopped,
 * frozen (SIGSTOP) and back again, invalidation of one call and of a
 * namespace, and the counters.
 *
 * Each test starts its own cached ("-p 0 -o port_file=", or a unix
 * socket) and stops it with SIGTERM, which must exit 0.  Soft expiry is
 * driven by an injected clock (no sleeping for TTLs); the few waits on
 * the server (hard expiry, restarts) poll with bounded deadlines.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cachedclient.h"
#include "test_client_util.h"

#define NTHREADS	16
#define NPROCS		4
#define PROC_THREADS	4
#define SLOW_MS		300	/* the "expensive" function */

struct fx {
	struct tc_proc	 srv;
	struct tc_clock	 clk;
	cc_client	*c;
};

/* What a compute callback does and how often it ran. */
struct fn {
	atomic_int	 calls;
	unsigned	 delay_ms;
	int		 result;	/* a cc_compute */
	size_t		 big;		/* > 0: return this many bytes */
	int		 log_fd;	/* >= 0: append a byte per call */
};

/* Writes f(args) = "f(" args joined by "|" ")#" generation. */
static cc_compute
compute(void *ctx, const cc_arg *args, size_t nargs, void **value,
    size_t *len)
{
	struct fn	*fn = ctx;
	int		 gen = atomic_fetch_add(&fn->calls, 1) + 1;
	size_t		 i, n = 16;
	char		*buf, *p;

	if (fn->log_fd >= 0 && write(fn->log_fd, "x", 1) != 1)
		return CC_COMPUTE_ERROR;
	if (fn->delay_ms > 0)
		tc_sleep_ms(fn->delay_ms);
	if (fn->result != CC_COMPUTE_OK)
		return (cc_compute)fn->result;
	if (fn->big > 0) {
		if ((buf = malloc(fn->big)) == NULL)
			return CC_COMPUTE_ERROR;
		for (i = 0; i < fn->big; i++)
			buf[i] = (char)(i * 7 + 3);
		*value = buf;
		*len = fn->big;
		return CC_COMPUTE_OK;
	}
	for (i = 0; i < nargs; i++)
		n += args[i].len + 1;
	if ((p = buf = malloc(n + 16)) == NULL)
		return CC_COMPUTE_ERROR;
	*p++ = 'f';
	*p++ = '(';
	for (i = 0; i < nargs; i++) {
		if (i > 0)
			*p++ = '|';
		memcpy(p, args[i].data, args[i].len);
		p += args[i].len;
	}
	p += sprintf(p, ")#%d", gen);
	*value = buf;
	*len = (size_t)(p - buf);
	return CC_COMPUTE_OK;
}

/* Initializes a callback description. */
static void
fn_init(struct fn *fn)
{
	memset(fn, 0, sizeof *fn);
	atomic_init(&fn->calls, 0);
	fn->result = CC_COMPUTE_OK;
	fn->log_fd = -1;
}

/* Memoizes ns/fn(arg) and asserts success. */
static void
memo(cc_client *c, const char *ns, const char *arg, uint32_t ttl,
    struct fn *fn, struct cc_memo_result *res)
{
	cc_arg		a = { arg, strlen(arg) };
	cc_status	st;

	st = cc_memoize(c, ns, "f", &a, 1, ttl, compute, fn, res);
	if (st != CC_OK)
		print_error("memoize: %s: %s\n", cc_strerror(st), cc_errmsg());
	assert_int_equal(st, CC_OK);
}

/* Asserts a memo result holds the C string want. */
static void
assert_result(struct cc_memo_result *res, const char *want)
{
	assert_false(res->not_found);
	assert_non_null(res->value);
	assert_int_equal(res->len, strlen(want));
	assert_memory_equal(res->value, want, res->len);
	free(res->value);
	res->value = NULL;
}

/* Starts cached and a client with an injected clock. */
static int
setup(void **state)
{
	struct fx		*fx = calloc(1, sizeof *fx);
	struct cc_config	 cfg;

	assert_non_null(fx);
	assert_true(tc_cached_start(&fx->srv, 0));
	tc_config(&cfg, fx->srv.addr);
	cfg.clock = tc_clock_read;
	cfg.clock_ctx = &fx->clk;
	fx->c = tc_client(&cfg);
	*state = fx;
	return 0;
}

/* Destroys the client and stops cached, which must exit 0. */
static int
teardown(void **state)
{
	struct fx	*fx = *state;
	bool		 ok;

	cc_client_destroy(fx->c);
	ok = fx->srv.pid <= 0 || tc_cached_stop(&fx->srv);
	tc_proc_cleanup(&fx->srv);
	free(fx);
	return ok ? 0 : -1;
}

/* Reads the raw stored value of ns/f(arg), NULL if absent. */
static char *
raw_entry(cc_client *c, const char *ns, const char *arg, size_t *len)
{
	char		 key[CC_MEMO_KEY_SIZE];
	cc_arg		 a = { arg, strlen(arg) };
	uint64_t	 ver;
	void		*v = NULL;

	assert_int_equal(cc_ns_version(c, ns, &ver), CC_OK);
	assert_int_equal(cc_memo_key(ns, ver, "f", &a, 1, key), CC_OK);
	if (cc_get(c, key, &v, len, NULL) != CC_OK)
		return NULL;
	return v;
}

/* Writes the lock key of ns/f(arg) into lock. */
static void
lock_key(cc_client *c, const char *ns, const char *arg, char *lock)
{
	char		key[CC_MEMO_KEY_SIZE];
	cc_arg		a = { arg, strlen(arg) };
	uint64_t	ver;

	assert_int_equal(cc_ns_version(c, ns, &ver), CC_OK);
	assert_int_equal(cc_memo_key(ns, ver, "f", &a, 1, key), CC_OK);
	assert_true(strlen(key) + 5 <= CC_KEY_MAX);
	memcpy(lock, key, strlen(key));
	memcpy(lock + strlen(key), ":lock", 6);
}

/* ---- thin operations ---- */

/* set/get are binary-safe and keep 32-bit flags; add/replace/delete. */
static void
test_ops_basic(void **state)
{
	struct fx	*fx = *state;
	cc_client	*c = fx->c;
	const char	 bin[] = { 'a', 0, 'b', '\r', '\n', (char)0xff };
	void		*v;
	size_t		 len;
	uint32_t	 flags;

	assert_int_equal(cc_set(c, "k1", bin, sizeof bin, 0xdeadbeef, 0),
	    CC_OK);
	assert_int_equal(cc_get(c, "k1", &v, &len, &flags), CC_OK);
	assert_int_equal(len, sizeof bin);
	assert_memory_equal(v, bin, len);
	assert_int_equal(((char *)v)[len], '\0');	/* as documented */
	assert_int_equal(flags, 0xdeadbeef);
	free(v);
	assert_int_equal(cc_get(c, "nope", &v, &len, &flags), CC_NOT_FOUND);
	assert_int_equal(cc_add(c, "k1", "x", 1, 0, 0), CC_NOT_STORED);
	assert_int_equal(cc_add(c, "k2", "x", 1, 0, 0), CC_OK);
	assert_int_equal(cc_replace(c, "k3", "y", 1, 0, 0), CC_NOT_STORED);
	assert_int_equal(cc_replace(c, "k2", "yy", 2, 7, 0), CC_OK);
	assert_int_equal(cc_get(c, "k2", &v, &len, &flags), CC_OK);
	assert_int_equal(len, 2);
	assert_memory_equal(v, "yy", 2);
	assert_int_equal(flags, 7);
	free(v);
	assert_int_equal(cc_delete(c, "k2"), CC_OK);
	assert_int_equal(cc_delete(c, "k2"), CC_NOT_FOUND);
	/* An empty value is a value. */
	assert_int_equal(cc_set(c, "empty", NULL, 0, 0, 0), CC_OK);
	assert_int_equal(cc_get(c, "empty", &v, &len, NULL), CC_OK);
	assert_non_null(v);
	assert_int_equal(len, 0);
	free(v);
}

/* incr/decr/touch, and the errors of each. */
static void
test_ops_arith_touch(void **state)
{
	struct fx	*fx = *state;
	cc_client	*c = fx->c;
	uint64_t	 n = 0;

	assert_int_equal(cc_incr(c, "ctr", 1, &n), CC_NOT_FOUND);
	assert_int_equal(cc_set(c, "ctr", "10", 2, 0, 0), CC_OK);
	assert_int_equal(cc_incr(c, "ctr", 5, &n), CC_OK);
	assert_int_equal(n, 15);
	assert_int_equal(cc_incr(c, "ctr", 5000000000ULL, &n), CC_OK);
	assert_int_equal(n, 5000000015ULL);
	assert_int_equal(cc_decr(c, "ctr", 6000000000ULL, &n), CC_OK);
	assert_int_equal(n, 0);
	assert_int_equal(cc_set(c, "word", "abc", 3, 0, 0), CC_OK);
	assert_int_equal(cc_incr(c, "word", 1, NULL), CC_NON_NUMERIC);
	assert_int_equal(cc_touch(c, "word", 100), CC_OK);
	assert_int_equal(cc_touch(c, "absent", 100), CC_NOT_FOUND);
}

/* Bad keys and values are refused before anything is sent. */
static void
test_ops_bad_arguments(void **state)
{
	struct fx	*fx = *state;
	cc_client	*c = fx->c;
	char		 big[CC_KEY_MAX + 2];
	void		*v;
	size_t		 len;

	memset(big, 'k', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(cc_set(c, big, "x", 1, 0, 0), CC_BAD_ARGUMENT);
	assert_non_null(strstr(cc_errmsg(), "key"));
	assert_int_equal(cc_get(c, "a b", &v, &len, NULL), CC_BAD_ARGUMENT);
	assert_int_equal(cc_delete(c, ""), CC_BAD_ARGUMENT);
	assert_int_equal(cc_set(c, "k", NULL, 3, 0, 0), CC_BAD_ARGUMENT);
	assert_int_equal(cc_get(NULL, "k", &v, &len, NULL), CC_BAD_ARGUMENT);
	big[CC_KEY_MAX] = '\0';	/* exactly 250 bytes is fine */
	assert_int_equal(cc_set(c, big, "x", 1, 0, 0), CC_OK);
}

/* Large values go through; values over the server's -I are refused. */
static void
test_ops_large_values(void **state)
{
	struct fx	*fx = *state;
	size_t		 n = 900 * 1024, len;
	char		*big = malloc(2 * 1024 * 1024);
	void		*v;
	size_t		 i;

	assert_non_null(big);
	for (i = 0; i < 2 * 1024 * 1024; i++)
		big[i] = (char)(i % 253);
	assert_int_equal(cc_set(fx->c, "big", big, n, 0, 0), CC_OK);
	assert_int_equal(cc_get(fx->c, "big", &v, &len, NULL), CC_OK);
	assert_int_equal(len, n);
	assert_memory_equal(v, big, n);
	free(v);
	assert_int_equal(cc_set(fx->c, "huge", big, 2 * 1024 * 1024, 0, 0),
	    CC_TOO_LARGE);
	/* The connection is still good afterwards. */
	assert_int_equal(cc_set(fx->c, "after", "ok", 2, 0, 0), CC_OK);
	free(big);
}

/* Multi-get returns hits and misses in request order, duplicates too. */
static void
test_ops_mget(void **state)
{
	struct fx	*fx = *state;
	const char	*keys[60];
	char		 names[60][16], want[16];
	struct cc_value	 out[60];
	size_t		 i;

	for (i = 0; i < 50; i++) {
		snprintf(names[i], sizeof names[i], "m%zu", i);
		keys[i] = names[i];
		if (i % 2 == 0)
			assert_int_equal(cc_set(fx->c, names[i], names[i],
			    strlen(names[i]), (uint32_t)i, 0), CC_OK);
	}
	for (i = 50; i < 60; i++)
		keys[i] = names[(i - 50) * 2];	/* duplicates of hits */
	assert_int_equal(cc_mget(fx->c, keys, 60, out), CC_OK);
	for (i = 0; i < 60; i++) {
		size_t j = i < 50 ? i : (i - 50) * 2;

		assert_int_equal(out[i].found, j % 2 == 0);
		if (!out[i].found) {
			assert_null(out[i].value);
			continue;
		}
		snprintf(want, sizeof want, "m%zu", j);
		assert_int_equal(out[i].len, strlen(want));
		assert_memory_equal(out[i].value, want, out[i].len);
		assert_int_equal(out[i].flags, j);
	}
	cc_values_free(out, 60);
	assert_null(out[0].value);
	assert_int_equal(cc_mget(fx->c, keys, 0, out), CC_OK);
}

/* A server on a unix socket, and a mixed TCP + unix server list. */
static void
test_ops_unix_socket(void **state)
{
	struct fx	*fx = *state;
	struct tc_proc	 us;
	char		 path[128], list[320];
	cc_client	*c;
	void		*v;
	size_t		 len;
	int		 i, hits = 0;

	snprintf(path, sizeof path, "%s/sock", fx->srv.dir);
	memset(&us, 0, sizeof us);
	assert_true(tc_cached_start_unix(&us, path));
	c = tc_client_for(path);
	assert_int_equal(cc_set(c, "u", "unix", 4, 0, 0), CC_OK);
	assert_int_equal(cc_get(c, "u", &v, &len, NULL), CC_OK);
	assert_memory_equal(v, "unix", 4);
	free(v);
	cc_client_destroy(c);
	snprintf(list, sizeof list, "%s, %s", fx->srv.addr, path);
	c = tc_client_for(list);
	for (i = 0; i < 40; i++) {
		char k[16];

		snprintf(k, sizeof k, "mix%d", i);
		assert_int_equal(cc_set(c, k, k, strlen(k), 0, 0), CC_OK);
		if (cc_get(fx->c, k, &v, &len, NULL) == CC_OK) {
			hits++;	/* this key went to the TCP server */
			free(v);
		}
	}
	assert_true(hits > 0 && hits < 40);
	cc_client_destroy(c);
	assert_true(tc_cached_stop(&us));
}

/* Bad configurations are refused with a message. */
static void
test_config_errors(void **state)
{
	static const char *const bad[] = { "", " , ", "127.0.0.1:0",
	    "127.0.0.1:65536", "127.0.0.1:x1", "[::1", "[::1]x", ":11211" };
	struct cc_config	 cfg;
	cc_client		*c = NULL;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tc_config(&cfg, bad[i]);
		assert_int_equal(cc_client_create(&cfg, &c), CC_BAD_ARGUMENT);
		assert_null(c);
	}
	memset(&cfg, 0, sizeof cfg);	/* forgot cc_config_init */
	cfg.servers = "127.0.0.1:1";
	assert_int_equal(cc_client_create(&cfg, &c), CC_BAD_ARGUMENT);
	assert_non_null(strstr(cc_errmsg(), "cc_config_init"));
	tc_config(&cfg, "127.0.0.1:1");
	cfg.jitter_pct = 80;
	assert_int_equal(cc_client_create(&cfg, &c), CC_BAD_ARGUMENT);
	tc_config(&cfg, "127.0.0.1:1");
	cfg.lock_ttl_s = 1;
	assert_int_equal(cc_client_create(&cfg, &c), CC_BAD_ARGUMENT);
	tc_config(&cfg, "localhost, 127.0.0.1:2,[::1]:3,/tmp/none.sock");
	assert_int_equal(cc_client_create(&cfg, &c), CC_OK);
	cc_client_destroy(c);
	cc_client_destroy(NULL);
}

/* ---- memoize ---- */

/* Miss, compute, hit: the callback runs once; the entry is an envelope. */
static void
test_memo_miss_then_hit(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct cc_stats		 st;
	struct fn		 fn;
	char			*raw;
	size_t			 len;

	fn_init(&fn);
	memo(fx->c, "t", "x", 60, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#1");
	memo(fx->c, "t", "x", 60, &fn, &res);
	assert_true(res.from_cache);
	assert_false(res.stale);
	assert_result(&res, "f(x)#1");
	memo(fx->c, "t", "y", 60, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(y)#2");
	assert_int_equal(atomic_load(&fn.calls), 2);
	cc_client_stats(fx->c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.stale + st.lock_waits + st.errors, 0);
	raw = raw_entry(fx->c, "t", "x", &len);
	assert_non_null(raw);
	assert_int_equal(len, strlen("f(x)#1") + 16);
	assert_memory_equal(raw, "f(x)#1", 6);
	assert_memory_equal(raw + len - 4, "CCm\x01", 4);
	free(raw);
}

/* Several binary arguments; the split between them matters. */
static void
test_memo_arguments(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct fn		 fn;
	cc_arg			 ab_c[2] = { { "ab", 2 }, { "c", 1 } };
	cc_arg			 a_bc[2] = { { "a", 1 }, { "bc", 2 } };
	cc_arg			 nul[1] = { { "\0\1", 2 } };

	fn_init(&fn);
	assert_int_equal(cc_memoize(fx->c, "t", "f", ab_c, 2, 60, compute,
	    &fn, &res), CC_OK);
	assert_result(&res, "f(ab|c)#1");
	assert_int_equal(cc_memoize(fx->c, "t", "f", a_bc, 2, 60, compute,
	    &fn, &res), CC_OK);
	assert_false(res.from_cache);
	assert_result(&res, "f(a|bc)#2");
	assert_int_equal(cc_memoize(fx->c, "t", "f", nul, 1, 60, compute,
	    &fn, &res), CC_OK);
	assert_int_equal(res.len, 7);
	free(res.value);
	assert_int_equal(cc_memoize(fx->c, "t", "f", nul, 1, 60, compute,
	    &fn, &res), CC_OK);
	assert_true(res.from_cache);
	assert_memory_equal(res.value, "f(\0\1)#3", 7);
	free(res.value);
	assert_int_equal(cc_memoize(fx->c, "t", "f", NULL, 0, 60, compute,
	    &fn, &res), CC_OK);
	assert_result(&res, "f()#4");
}

/* Past its TTL (injected clock) the value is computed again. */
static void
test_memo_soft_expiry(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct fn		 fn;

	fn_init(&fn);
	memo(fx->c, "t", "x", 10, &fn, &res);
	assert_result(&res, "f(x)#1");
	tc_clock_advance(&fx->clk, 9000);
	memo(fx->c, "t", "x", 10, &fn, &res);
	assert_true(res.from_cache);
	assert_result(&res, "f(x)#1");
	tc_clock_advance(&fx->clk, 1500);
	memo(fx->c, "t", "x", 10, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#2");
	memo(fx->c, "t", "x", 10, &fn, &res);
	assert_true(res.from_cache);
	assert_result(&res, "f(x)#2");
}

/* The server drops the entry at soft TTL + grace + 1 s (real time). */
static void
test_memo_hard_expiry(void **state)
{
	struct fx		*fx = *state;
	struct cc_config	 cfg;
	struct cc_memo_result	 res;
	struct fn		 fn;
	cc_client		*c;
	uint64_t		 start, deadline;
	char			*raw;
	size_t			 len;

	tc_config(&cfg, fx->srv.addr);
	cfg.stale_grace_s = 0;
	c = tc_client(&cfg);
	fn_init(&fn);
	memo(c, "t", "x", 1, &fn, &res);
	assert_result(&res, "f(x)#1");
	start = tc_now_ms();
	deadline = start + 5000;
	while ((raw = raw_entry(c, "t", "x", &len)) != NULL) {
		free(raw);
		assert_true(tc_now_ms() < deadline);
		tc_sleep_ms(50);
	}
	/* Hard TTL 2 s: gone after more than 1 s, well before 5. */
	assert_true(tc_now_ms() - start >= 900);
	memo(c, "t", "x", 1, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#2");
	cc_client_destroy(c);
}

/* With jitter, entries written together get different soft expiries. */
static void
test_memo_jitter(void **state)
{
	struct fx		*fx = *state;
	struct cc_config	 cfg;
	struct cc_memo_result	 res;
	struct fn		 fn;
	cc_client		*c;
	uint64_t		 now, t, lo = UINT64_MAX, hi = 0;
	char			 arg[16], *raw;
	size_t			 len;
	int			 i, j;

	tc_config(&cfg, fx->srv.addr);
	cfg.jitter_pct = 50;
	c = tc_client(&cfg);
	fn_init(&fn);
	now = tc_clock_read(&(struct tc_clock){ 0 });
	for (i = 0; i < 30; i++) {
		snprintf(arg, sizeof arg, "j%d", i);
		memo(c, "jit", arg, 1000, &fn, &res);
		free(res.value);
		raw = raw_entry(c, "jit", arg, &len);
		assert_non_null(raw);
		assert_true(len >= 16);
		for (t = 0, j = 0; j < 8; j++)	/* trailer bytes 0..7 */
			t = t << 8 | (uint8_t)raw[len - 16 + j];
		free(raw);
		assert_true(t >= now + 500000 && t <= now + 1000000 + 5000);
		lo = t < lo ? t : lo;
		hi = t > hi ? t : hi;
	}
	assert_true(hi - lo > 100000);	/* spread over minutes, not ms */
	cc_client_destroy(c);
}

/* "Not found" results: recomputed by default, cached with negative_ttl. */
static void
test_memo_negative(void **state)
{
	struct fx		*fx = *state;
	struct cc_config	 cfg;
	struct cc_memo_result	 res;
	struct fn		 fn;
	cc_client		*c;

	fn_init(&fn);
	fn.result = CC_COMPUTE_NOT_FOUND;
	memo(fx->c, "neg", "x", 60, &fn, &res);
	assert_true(res.not_found);
	assert_null(res.value);
	memo(fx->c, "neg", "x", 60, &fn, &res);
	assert_true(res.not_found);
	assert_false(res.from_cache);
	assert_int_equal(atomic_load(&fn.calls), 2);

	tc_config(&cfg, fx->srv.addr);
	cfg.negative_ttl_s = 30;
	c = tc_client(&cfg);
	memo(c, "neg", "y", 60, &fn, &res);
	assert_true(res.not_found);
	assert_false(res.from_cache);
	memo(c, "neg", "y", 60, &fn, &res);
	assert_true(res.not_found);
	assert_true(res.from_cache);
	assert_null(res.value);
	assert_int_equal(atomic_load(&fn.calls), 3);
	cc_client_destroy(c);
}

/* A failing callback caches nothing; empty and large results work. */
static void
test_memo_results(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct cc_stats		 st;
	struct fn		 fn;
	cc_arg			 a = { "e", 1 };
	size_t			 i;

	fn_init(&fn);
	fn.result = CC_COMPUTE_ERROR;
	assert_int_equal(cc_memoize(fx->c, "r", "f", &a, 1, 60, compute, &fn,
	    &res), CC_COMPUTE_FAILED);
	assert_null(res.value);
	fn.result = CC_COMPUTE_OK;
	memo(fx->c, "r", "e", 60, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(e)#2");

	fn.big = 600 * 1024;
	memo(fx->c, "r", "big", 60, &fn, &res);
	free(res.value);
	memo(fx->c, "r", "big", 60, &fn, &res);
	assert_true(res.from_cache);
	assert_int_equal(res.len, fn.big);
	for (i = 0; i < fn.big; i++)
		assert_int_equal((uint8_t)((char *)res.value)[i],
		    (uint8_t)(char)(i * 7 + 3));
	free(res.value);

	/* Over the server's 1 MB limit: not cached, still returned. */
	fn.big = 1536 * 1024;
	memo(fx->c, "r", "huge", 60, &fn, &res);
	assert_int_equal(res.len, fn.big);
	free(res.value);
	cc_client_stats(fx->c, &st);
	assert_int_equal(st.errors, 1);
}

/* Bad arguments are refused without calling the function. */
static void
test_memo_bad_arguments(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct fn		 fn;
	cc_arg			 a = { "x", 1 }, bad = { NULL, 1 };

	fn_init(&fn);
	assert_int_equal(cc_memoize(fx->c, "t", "f", &a, 1, 0, compute, &fn,
	    &res), CC_BAD_ARGUMENT);
	assert_int_equal(cc_memoize(fx->c, "t", "f", &a, 1, CC_TTL_MAX + 1,
	    compute, &fn, &res), CC_BAD_ARGUMENT);
	assert_int_equal(cc_memoize(fx->c, "t", "f", &a, 1, 60, NULL, &fn,
	    &res), CC_BAD_ARGUMENT);
	assert_int_equal(cc_memoize(fx->c, "t:x", "f", &a, 1, 60, compute,
	    &fn, &res), CC_BAD_ARGUMENT);
	assert_int_equal(cc_memoize(fx->c, "t", "f g", &a, 1, 60, compute,
	    &fn, &res), CC_BAD_ARGUMENT);
	assert_int_equal(cc_memoize(fx->c, "t", "f", &bad, 1, 60, compute,
	    &fn, &res), CC_BAD_ARGUMENT);
	assert_int_equal(cc_memoize(fx->c, "t", "f", &a, 1, 60, compute,
	    &fn, NULL), CC_BAD_ARGUMENT);
	assert_int_equal(atomic_load(&fn.calls), 0);
}

/* Past the TTL while another caller holds the lock: served stale. */
static void
test_memo_stale_served(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct cc_stats		 st;
	struct fn		 fn;
	char			 lock[CC_KEY_MAX + 1];

	fn_init(&fn);
	memo(fx->c, "s", "x", 10, &fn, &res);
	assert_result(&res, "f(x)#1");
	tc_clock_advance(&fx->clk, 11000);
	lock_key(fx->c, "s", "x", lock);
	assert_int_equal(cc_add(fx->c, lock, "1", 1, 0, 30), CC_OK);
	memo(fx->c, "s", "x", 10, &fn, &res);
	assert_true(res.from_cache);
	assert_true(res.stale);
	assert_result(&res, "f(x)#1");
	assert_int_equal(atomic_load(&fn.calls), 1);
	assert_int_equal(cc_delete(fx->c, lock), CC_OK);
	memo(fx->c, "s", "x", 10, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#2");
	/* The recompute released its lock. */
	assert_int_equal(cc_add(fx->c, lock, "1", 1, 0, 30), CC_OK);
	cc_client_stats(fx->c, &st);
	assert_int_equal(st.stale, 1);
}

struct later {
	cc_client	*c;
	const char	*lock;
	unsigned	 after_ms;
	bool		 store;		/* store the value, else drop the lock */
};

/* After a delay, stores the value the waiter waits for, or drops the lock. */
static void *
later_main(void *arg)
{
	struct later	*l = arg;
	cc_arg		 a = { "x", 1 };

	tc_sleep_ms(l->after_ms);
	if (l->store)
		assert_int_equal(cc_memo_store(l->c, "w", "f", &a, 1,
		    "from elsewhere", 14, 60), CC_OK);
	else
		assert_int_equal(cc_delete(l->c, l->lock), CC_OK);
	return NULL;
}

/* A missing key under someone's lock: wait for their value. */
static void
test_memo_lock_wait(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct cc_stats		 st;
	struct fn		 fn;
	char			 lock[CC_KEY_MAX + 1];
	struct later		 l = { fx->c, lock, 300, true };
	pthread_t		 t;
	uint64_t		 start = tc_now_ms();

	fn_init(&fn);
	lock_key(fx->c, "w", "x", lock);
	assert_int_equal(cc_add(fx->c, lock, "1", 1, 0, 30), CC_OK);
	assert_int_equal(pthread_create(&t, NULL, later_main, &l), 0);
	memo(fx->c, "w", "x", 60, &fn, &res);
	pthread_join(t, NULL);
	assert_true(res.from_cache);
	assert_result(&res, "from elsewhere");
	assert_int_equal(atomic_load(&fn.calls), 0);
	assert_true(tc_now_ms() - start >= 250);
	cc_client_stats(fx->c, &st);
	assert_int_equal(st.lock_waits, 1);
	assert_int_equal(st.hits, 1);
}

/* The lock goes away without a value (owner died): take over, compute. */
static void
test_memo_lock_takeover(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct fn		 fn;
	char			 lock[CC_KEY_MAX + 1];
	struct later		 l = { fx->c, lock, 200, false };
	pthread_t		 t;

	fn_init(&fn);
	lock_key(fx->c, "w", "x", lock);
	assert_int_equal(cc_add(fx->c, lock, "1", 1, 0, 30), CC_OK);
	assert_int_equal(pthread_create(&t, NULL, later_main, &l), 0);
	memo(fx->c, "w", "x", 60, &fn, &res);
	pthread_join(t, NULL);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#1");
	assert_int_equal(atomic_load(&fn.calls), 1);
}

/* A lock nobody releases: compute after lock_wait_ms, not forever. */
static void
test_memo_lock_wait_bounded(void **state)
{
	struct fx		*fx = *state;
	struct cc_config	 cfg;
	struct cc_memo_result	 res;
	struct fn		 fn;
	char			 lock[CC_KEY_MAX + 1];
	cc_client		*c;
	uint64_t		 start, took;

	tc_config(&cfg, fx->srv.addr);
	cfg.lock_wait_ms = 300;
	c = tc_client(&cfg);
	fn_init(&fn);
	lock_key(c, "w", "x", lock);
	assert_int_equal(cc_add(c, lock, "1", 1, 0, 30), CC_OK);
	start = tc_now_ms();
	memo(c, "w", "x", 60, &fn, &res);
	took = tc_now_ms() - start;
	assert_result(&res, "f(x)#1");
	assert_true(took >= 290 && took < 2000);
	cc_client_destroy(c);
}

struct racer {
	cc_client		*c;
	pthread_barrier_t	*go;
	struct fn		*fn;
	cc_status		 st;
	struct cc_memo_result	 res;
};

/* Waits for the start signal, then memoizes the hot key. */
static void *
racer_main(void *arg)
{
	struct racer	*r = arg;
	cc_arg		 a = { "hot", 3 };

	pthread_barrier_wait(r->go);
	r->st = cc_memoize(r->c, "race", "f", &a, 1, 60, compute, r->fn,
	    &r->res);
	return NULL;
}

/* Runs n racing threads on c; returns how many results were wrong. */
static int
race(cc_client *c, struct fn *fn, int n)
{
	struct racer		r[NTHREADS];
	pthread_t		t[NTHREADS];
	pthread_barrier_t	go;
	int			i, bad = 0;

	pthread_barrier_init(&go, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		r[i] = (struct racer){ c, &go, fn, CC_ERROR, { 0 } };
		if (pthread_create(&t[i], NULL, racer_main, &r[i]) != 0)
			return n;
	}
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		/* Everyone gets the one computation's result. */
		if (r[i].st != CC_OK || r[i].res.len != 8 ||
		    memcmp(r[i].res.value, "f(hot)#1", 8) != 0)
			bad++;
		free(r[i].res.value);
	}
	pthread_barrier_destroy(&go);
	return bad;
}

/* 16 threads on one missing key: the function runs exactly once. */
static void
test_memo_stampede_threads(void **state)
{
	struct fx	*fx = *state;
	struct cc_stats	 st;
	struct fn	 fn;

	fn_init(&fn);
	fn.delay_ms = SLOW_MS;
	assert_int_equal(race(fx->c, &fn, NTHREADS), 0);
	assert_int_equal(atomic_load(&fn.calls), 1);
	cc_client_stats(fx->c, &st);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, NTHREADS - 1);
	assert_true(st.lock_waits >= 1);
	assert_int_equal(st.errors, 0);
}

/* A child process: its own client, PROC_THREADS racers, exit 0 if good. */
static void
racer_process(const char *servers, int ready_fd, int go_fd, int log_fd)
{
	struct cc_config	 cfg;
	struct fn		 fn;
	cc_client		*c = NULL;
	char			 b;
	int			 bad;

	tc_config(&cfg, servers);
	if (cc_client_create(&cfg, &c) != CC_OK)
		_exit(2);
	fn_init(&fn);
	fn.delay_ms = SLOW_MS;
	fn.log_fd = log_fd;
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &b, 1) != 0)
		_exit(3);
	bad = race(c, &fn, PROC_THREADS);
	cc_client_destroy(c);
	_exit(bad == 0 ? 0 : 1);
}

/* 4 processes x 4 threads on one missing key: exactly one computation. */
static void
test_memo_stampede_processes(void **state)
{
	struct fx	*fx = *state;
	char		 logpath[128], b;
	int		 ready[2], go[2], log_fd, i, status;
	pid_t		 pids[NPROCS];
	struct stat	 sb;

	snprintf(logpath, sizeof logpath, "%s/computed", fx->srv.dir);
	log_fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0600);
	assert_true(log_fd >= 0);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	for (i = 0; i < NPROCS; i++) {
		fflush(NULL);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			racer_process(fx->srv.addr, ready[1], go[0], log_fd);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (i = 0; i < NPROCS; i++)
		assert_int_equal(read(ready[0], &b, 1), 1);
	close(go[1]);		/* every child's read returns: go */
	for (i = 0; i < NPROCS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	close(ready[0]);
	close(log_fd);
	assert_int_equal(stat(logpath, &sb), 0);
	assert_int_equal(sb.st_size, 1);	/* computed exactly once */
	unlink(logpath);
}

/* Memoizes until a call is served from the cache (bounded); true if so. */
static bool
until_cached(cc_client *c, const char *arg, struct fn *fn)
{
	struct cc_memo_result	res;
	uint64_t		deadline = tc_now_ms() + 10000;

	while (tc_now_ms() < deadline) {
		memo(c, "fo", arg, 60, fn, &res);
		free(res.value);
		if (res.from_cache)
			return true;
		tc_sleep_ms(100);
	}
	return false;
}

/* Server stopped: values are computed, fast; back again: cached again. */
static void
test_memo_fail_open_stopped(void **state)
{
	struct fx		*fx = *state;
	struct tc_proc		 us;
	struct cc_memo_result	 res;
	struct cc_stats		 st;
	struct fn		 fn;
	char			 path[128];
	cc_client		*c;
	uint64_t		 start;
	int			 i;

	snprintf(path, sizeof path, "%s/sock", fx->srv.dir);
	memset(&us, 0, sizeof us);
	assert_true(tc_cached_start_unix(&us, path));
	c = tc_client_for(path);
	fn_init(&fn);
	memo(c, "fo", "x", 60, &fn, &res);
	assert_result(&res, "f(x)#1");
	assert_true(tc_cached_stop(&us));

	start = tc_now_ms();
	for (i = 0; i < 20; i++) {
		memo(c, "fo", "x", 60, &fn, &res);
		assert_false(res.from_cache);
		free(res.value);
	}
	memo(c, "fo", "new", 60, &fn, &res);
	assert_result(&res, "f(new)#22");
	assert_true(tc_now_ms() - start < 3000);
	cc_client_stats(c, &st);
	assert_true(st.errors >= 21);
	assert_int_equal(cc_set(c, "k", "v", 1, 0, 0), CC_UNREACHABLE);

	assert_true(tc_cached_start_unix(&us, path));
	assert_true(until_cached(c, "again", &fn));
	cc_client_destroy(c);
	assert_true(tc_cached_stop(&us));
}

/* Waits (bounded) until pid is stopped: SIGSTOP takes effect later. */
static bool
wait_stopped(pid_t pid)
{
	char		 path[64], buf[256], *p;
	uint64_t	 deadline = tc_now_ms() + 5000;
	FILE		*f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	while (tc_now_ms() < deadline) {
		if ((f = fopen(path, "r")) == NULL)
			return false;
		p = fgets(buf, sizeof buf, f);
		fclose(f);
		/* "pid (comm) S ...": the state follows the last ')'. */
		if (p != NULL && (p = strrchr(buf, ')')) != NULL &&
		    p[1] == ' ' && (p[2] == 'T' || p[2] == 't'))
			return true;
		tc_sleep_ms(5);
	}
	return false;
}

/* Server frozen (SIGSTOP): calls time out into computed values. */
static void
test_memo_fail_open_slow(void **state)
{
	struct fx		*fx = *state;
	struct cc_config	 cfg;
	struct cc_memo_result	 res;
	struct fn		 fn;
	cc_client		*c;
	uint64_t		 start, took;

	tc_config(&cfg, fx->srv.addr);
	cfg.io_timeout_ms = 200;
	cfg.connect_timeout_ms = 200;
	c = tc_client(&cfg);
	fn_init(&fn);
	memo(c, "fo", "x", 60, &fn, &res);
	assert_result(&res, "f(x)#1");
	assert_int_equal(kill(fx->srv.pid, SIGSTOP), 0);
	assert_true(wait_stopped(fx->srv.pid));
	start = tc_now_ms();
	memo(c, "fo", "x", 60, &fn, &res);
	took = tc_now_ms() - start;
	assert_int_equal(kill(fx->srv.pid, SIGCONT), 0);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#2");
	assert_true(took >= 150 && took < 2000);
	assert_true(until_cached(c, "x", &fn));
	cc_client_destroy(c);
}

/* Forgetting one call recomputes it and only it. */
static void
test_memo_forget(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct fn		 fn;
	cc_arg			 x = { "x", 1 };

	fn_init(&fn);
	memo(fx->c, "inv", "x", 60, &fn, &res);
	assert_result(&res, "f(x)#1");
	memo(fx->c, "inv", "y", 60, &fn, &res);
	assert_result(&res, "f(y)#2");
	assert_int_equal(cc_memo_forget(fx->c, "inv", "f", &x, 1), CC_OK);
	assert_int_equal(cc_memo_forget(fx->c, "inv", "f", &x, 1),
	    CC_NOT_FOUND);
	memo(fx->c, "inv", "x", 60, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#3");
	memo(fx->c, "inv", "y", 60, &fn, &res);
	assert_true(res.from_cache);
	assert_result(&res, "f(y)#2");
}

/* A namespace bump: at once for its client, within ns_refresh_ms for others. */
static void
test_memo_namespace_bump(void **state)
{
	struct fx		*fx = *state;
	struct cc_config	 cfg;
	struct cc_memo_result	 res;
	struct tc_clock		 bclk = { 0 };
	struct fn		 fn;
	cc_client		*b;
	uint64_t		 v1, v2;

	tc_config(&cfg, fx->srv.addr);
	cfg.clock = tc_clock_read;
	cfg.clock_ctx = &bclk;
	cfg.ns_refresh_ms = 1000;
	b = tc_client(&cfg);
	fn_init(&fn);
	memo(fx->c, "bump", "x", 600, &fn, &res);
	assert_result(&res, "f(x)#1");
	memo(b, "bump", "x", 600, &fn, &res);
	assert_true(res.from_cache);
	assert_result(&res, "f(x)#1");
	assert_int_equal(cc_ns_version(fx->c, "bump", &v1), CC_OK);

	assert_int_equal(cc_ns_invalidate(fx->c, "bump"), CC_OK);
	assert_int_equal(cc_ns_version(fx->c, "bump", &v2), CC_OK);
	assert_int_equal(v2, v1 + 1);
	memo(fx->c, "bump", "x", 600, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#2");
	/* b still uses the version it knows, within the refresh bound... */
	memo(b, "bump", "x", 600, &fn, &res);
	assert_result(&res, "f(x)#1");
	/* ...and follows the bump once the refresh interval has passed. */
	tc_clock_advance(&bclk, 1000);
	memo(b, "bump", "x", 600, &fn, &res);
	assert_true(res.from_cache);
	assert_result(&res, "f(x)#2");
	assert_int_equal(atomic_load(&fn.calls), 2);
	cc_client_destroy(b);
}

/* A missing namespace key (evicted, flushed) comes back as a new version. */
static void
test_memo_namespace_lost(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct fn		 fn;
	uint64_t		 v1, v2;

	fn_init(&fn);
	memo(fx->c, "lost", "x", 600, &fn, &res);
	assert_result(&res, "f(x)#1");
	assert_int_equal(cc_ns_version(fx->c, "lost", &v1), CC_OK);
	assert_int_equal(cc_delete(fx->c, "memo1:lost"), CC_OK);
	assert_int_equal(cc_ns_invalidate(fx->c, "lost"), CC_OK);
	assert_int_equal(cc_ns_version(fx->c, "lost", &v2), CC_OK);
	assert_true(v2 > v1);
	memo(fx->c, "lost", "x", 600, &fn, &res);
	assert_false(res.from_cache);
	assert_result(&res, "f(x)#2");
}

/* Pre-warmed entries (cc_memo_store) are hits for cc_memoize. */
static void
test_memo_prewarm(void **state)
{
	struct fx		*fx = *state;
	struct cc_memo_result	 res;
	struct fn		 fn;
	cc_arg			 a = { "p", 1 };

	fn_init(&fn);
	assert_int_equal(cc_memo_store(fx->c, "pre", "f", &a, 1, "warm", 4,
	    3600), CC_OK);
	memo(fx->c, "pre", "p", 3600, &fn, &res);
	assert_true(res.from_cache);
	assert_result(&res, "warm");
	assert_int_equal(atomic_load(&fn.calls), 0);
}

struct mixer {
	cc_client	*c;
	struct fn	*fn;
	int		 id, bad;
};

/* Memoizes and sets keys in a loop, checking every value. */
static void *
mixer_main(void *arg)
{
	struct mixer		*m = arg;
	struct cc_memo_result	 res;
	char			 a[16], k[32], want[32];
	void			*v;
	size_t			 len;
	int			 i;

	for (i = 0; i < 300; i++) {
		cc_arg ca = { a, 0 };

		ca.len = (size_t)snprintf(a, sizeof a, "m%d", (i * 7 + m->id) % 40);
		if (cc_memoize(m->c, "mix", "f", &ca, 1, 600, compute, m->fn,
		    &res) != CC_OK || res.len < ca.len + 3 ||
		    memcmp(res.value, "f(", 2) != 0 ||
		    memcmp((char *)res.value + 2, a, ca.len) != 0)
			m->bad++;
		free(res.value);
		snprintf(k, sizeof k, "own-%d-%d", m->id, i % 10);
		snprintf(want, sizeof want, "%d:%d", m->id, i);
		if (cc_set(m->c, k, want, strlen(want), 0, 0) != CC_OK ||
		    cc_get(m->c, k, &v, &len, NULL) != CC_OK ||
		    len != strlen(want) || memcmp(v, want, len) != 0)
			m->bad++;
		free(v);
		v = NULL;
	}
	return NULL;
}

/* One client, eight threads, memoize and thin operations mixed. */
static void
test_threads_mixed(void **state)
{
	struct fx	*fx = *state;
	struct mixer	 m[8];
	pthread_t	 t[8];
	struct fn	 fn;
	int		 i;

	fn_init(&fn);
	for (i = 0; i < 8; i++) {
		m[i] = (struct mixer){ fx->c, &fn, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, mixer_main, &m[i]),
		    0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(m[i].bad, 0);
	}
	assert_true(atomic_load(&fn.calls) >= 40);
	assert_true(atomic_load(&fn.calls) < 80);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ops_basic),
		T(test_ops_arith_touch),
		T(test_ops_bad_arguments),
		T(test_ops_large_values),
		T(test_ops_mget),
		T(test_ops_unix_socket),
		cmocka_unit_test(test_config_errors),
		T(test_memo_miss_then_hit),
		T(test_memo_arguments),
		T(test_memo_soft_expiry),
		T(test_memo_hard_expiry),
		T(test_memo_jitter),
		T(test_memo_negative),
		T(test_memo_results),
		T(test_memo_bad_arguments),
		T(test_memo_stale_served),
		T(test_memo_lock_wait),
		T(test_memo_lock_takeover),
		T(test_memo_lock_wait_bounded),
		T(test_memo_stampede_threads),
		T(test_memo_stampede_processes),
		T(test_memo_fail_open_stopped),
		T(test_memo_fail_open_slow),
		T(test_memo_forget),
		T(test_memo_namespace_bump),
		T(test_memo_namespace_lost),
		T(test_memo_prewarm),
		T(test_threads_mixed),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
