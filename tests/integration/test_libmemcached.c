/*
 * test_libmemcached.c -- integration test of the real cached binary driven
 * by a real client library, libmemcached (ASCII protocol).
 *
 * Every test starts its own server on 127.0.0.1 with test_client_util's
 * tc_cached_start_args ("$CACHED -p 0 ... -o port_file=FILE -t 4 -m 64"
 * plus any flags the test needs), talks to it over loopback and finally
 * stops it with SIGTERM, which must make it exit with status 0 within a
 * few seconds.
 *
 * Covered: set/get of binary-safe values and 32-bit flags, add, replace,
 * append, prepend, cas, multi-get, delete, incr/decr, touch, expiry, large
 * values and the item size limit (-I), flush_all, stats, memory limit with
 * and without eviction (-m, -M), many threads and many connections.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libmemcached/memcached.h>

#include "test_client_util.h"

#define MAX_EXTRA_ARGS		8

#define LARGE_VALUE_LEN		1000000	/* fits the default -I 1m */
#define TOO_LARGE_VALUE_LEN	(2 * 1024 * 1024) /* does not */

#define MGET_KEYS		100
#define NTHREADS		8
#define OPS_PER_THREAD		2000
#define OWN_KEYS		16
#define SHARED_KEYS		8
#define NCLIENTS		200

/* -m 1 with values of this size: about a thousand fill the memory. */
#define FILL_VALUE_LEN		900
#define FILL_MAX_SETS		3000

struct fixture {
	struct tc_proc	 srv;
	memcached_st	*memc;
};

/* Asserts that a libmemcached call returned exactly `want`. */
#define assert_rc(m, rc, want) \
	check_rc((m), (rc), (want), __FILE__, __LINE__)
/* Asserts that key holds exactly (val, len) with flags. */
#define assert_value(m, key, val, len, flags) \
	check_value((m), (key), (val), (len), (flags), __FILE__, __LINE__)
/* Asserts that key holds the C string val with flags 0. */
#define assert_str(m, key, val) \
	check_value((m), (key), (val), strlen(val), 0, __FILE__, __LINE__)
/* Asserts that a get of key misses. */
#define assert_missing(m, key) \
	check_missing((m), (key), __FILE__, __LINE__)

/* Starts cached with this file's standard flags, then extra (may override). */
static bool
server_start(struct tc_proc *p, const char *const *extra)
{
	const char	*argv[4 + MAX_EXTRA_ARGS + 1] = {
		"-t", "4", "-m", "64"
	};
	size_t		 n = 4;

	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (i == MAX_EXTRA_ARGS) {
			print_error("too many extra server flags\n");
			return false;
		}
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	return tc_cached_start_args(p, 0, argv);
}

/* Creates an ASCII-protocol client of 127.0.0.1:port; NULL on error. */
static memcached_st *
client_new(unsigned port)
{
	char		 conf[64];
	int		 n;
	memcached_st	*m;

	n = snprintf(conf, sizeof conf, "--SERVER=127.0.0.1:%u", port);
	if ((m = memcached(conf, (size_t)n)) == NULL) {
		print_error("memcached(\"%s\") failed\n", conf);
		return NULL;
	}
	if (memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1) !=
	    MEMCACHED_SUCCESS) {
		print_error("cannot set TCP_NODELAY\n");
		memcached_free(m);
		return NULL;
	}
	return m;
}

/* Starts a fresh server with extra flags and a client for it. */
static int
fixture_up(void **state, const char *const *extra)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL)
		return -1;
	if (!server_start(&fx->srv, extra)) {
		tc_proc_cleanup(&fx->srv);
		free(fx);
		return -1;
	}
	if ((fx->memc = client_new(fx->srv.port)) == NULL) {
		tc_cached_stop(&fx->srv);
		tc_proc_cleanup(&fx->srv);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

/* Setup: a server with the standard flags only. */
static int
setup_default(void **state)
{
	return fixture_up(state, NULL);
}

/* Setup: values limited to 1 KiB. */
static int
setup_item_1k(void **state)
{
	static const char *const flags[] = { "-I", "1k", NULL };

	return fixture_up(state, flags);
}

/* Setup: 1 MB of memory, evicting when full. */
static int
setup_tiny_memory(void **state)
{
	static const char *const flags[] = { "-m", "1", "-I", "1k", NULL };

	return fixture_up(state, flags);
}

/* Setup: 1 MB of memory, refusing stores when full (-M). */
static int
setup_tiny_memory_no_evict(void **state)
{
	static const char *const flags[] = { "-m", "1", "-I", "1k", "-M",
	    NULL };

	return fixture_up(state, flags);
}

/* Teardown: frees the client, stops the server, fails unless it exits 0. */
static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	bool		 ok;

	memcached_free(fx->memc);
	ok = tc_cached_stop(&fx->srv);
	tc_proc_cleanup(&fx->srv);
	free(fx);
	return ok ? 0 : -1;
}

/* The fixture's client. */
static memcached_st *
client_of(void **state)
{
	return ((struct fixture *)*state)->memc;
}

/* Writes a C-escaped, shortened copy of data[0 .. len) into out. */
static const char *
escaped(const void *data, size_t len, char *out, size_t cap)
{
	const unsigned char	*p = data;
	size_t			 o = 0;

	for (size_t i = 0; i < len && o + 8 < cap; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x",
			    p[i]);
	}
	if (o + 8 >= cap)
		o += (size_t)snprintf(out + o, cap - o, "...");
	out[o] = '\0';
	return out;
}

/* Fails at file:line unless rc == want. */
static void
check_rc(memcached_st *m, memcached_return_t rc, memcached_return_t want,
    const char *file, int line)
{
	if (rc == want)
		return;
	print_error("%s:%d: got %s (last error: %s), want %s\n", file, line,
	    memcached_strerror(m, rc), memcached_last_error_message(m),
	    memcached_strerror(m, want));
	_fail(file, line);
}

/* Fails at file:line unless key holds exactly want[0 .. len) and flags. */
static void
check_value(memcached_st *m, const char *key, const void *want,
    size_t want_len, uint32_t want_flags, const char *file, int line)
{
	memcached_return_t	 rc;
	size_t			 len = 0;
	uint32_t		 flags = 0;
	char			*got, e1[128], e2[128];
	bool			 ok;

	got = memcached_get(m, key, strlen(key), &len, &flags, &rc);
	ok = rc == MEMCACHED_SUCCESS && len == want_len &&
	    flags == want_flags &&
	    (len == 0 || (got != NULL && memcmp(got, want, len) == 0));
	if (!ok)
		print_error("%s:%d: get %s: %s, %zu bytes \"%s\" flags %" PRIu32
		    "; want %zu bytes \"%s\" flags %" PRIu32 "\n", file, line,
		    key, memcached_strerror(m, rc), len,
		    escaped(got, got != NULL ? len : 0, e1, sizeof e1),
		    flags, want_len, escaped(want, want_len, e2, sizeof e2),
		    want_flags);
	free(got);
	if (!ok)
		_fail(file, line);
}

/* Fails at file:line unless a get of key misses. */
static void
check_missing(memcached_st *m, const char *key, const char *file, int line)
{
	memcached_return_t	 rc;
	size_t			 len = 0;
	uint32_t		 flags;
	char			*got, e[128];

	got = memcached_get(m, key, strlen(key), &len, &flags, &rc);
	if (rc != MEMCACHED_NOTFOUND)
		print_error("%s:%d: get %s: %s, %zu bytes \"%s\"; want a "
		    "miss\n", file, line, key, memcached_strerror(m, rc), len,
		    escaped(got, got != NULL ? len : 0, e, sizeof e));
	free(got);
	if (rc != MEMCACHED_NOTFOUND)
		_fail(file, line);
}

/* memcached_set of a C string with the given flags and expiry. */
static memcached_return_t
set_str(memcached_st *m, const char *key, const char *val, time_t exp,
    uint32_t flags)
{
	return memcached_set(m, key, strlen(key), val, strlen(val), exp,
	    flags);
}

/* Fills buf[0 .. len) with a byte pattern that includes NUL, CR and LF. */
static void
fill_pattern(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((i * 31 + seed + (i >> 9)) & 0xff);
}

/* Reads the CAS of key through gets (mget with SUPPORT_CAS). */
static uint64_t
gets_cas(memcached_st *m, const char *key)
{
	const char		*keys[] = { key };
	size_t			 lens[] = { strlen(key) };
	memcached_result_st	 res, *r;
	memcached_return_t	 rc;
	uint64_t		 cas;

	assert_rc(m, memcached_mget(m, keys, lens, 1), MEMCACHED_SUCCESS);
	assert_non_null(memcached_result_create(m, &res));
	r = memcached_fetch_result(m, &res, &rc);
	assert_rc(m, rc, MEMCACHED_SUCCESS);
	assert_non_null(r);
	cas = memcached_result_cas(r);
	assert_null(memcached_fetch_result(m, &res, &rc));
	assert_rc(m, rc, MEMCACHED_END);
	memcached_result_free(&res);
	assert_true(cas != 0);
	return cas;
}

/* Reads one general stat of the server as a malloc'ed string. */
static char *
stat_value(memcached_st *m, const char *name)
{
	memcached_return_t	 rc;
	memcached_stat_st	*st;
	char			*v;

	st = memcached_stat(m, NULL, &rc);
	assert_rc(m, rc, MEMCACHED_SUCCESS);
	assert_non_null(st);
	v = memcached_stat_get_value(m, st, name, &rc);
	assert_rc(m, rc, MEMCACHED_SUCCESS);
	assert_non_null(v);
	memcached_stat_free(m, st);
	return v;
}

/* Reads one numeric general stat of the server. */
static unsigned long long
stat_number(memcached_st *m, const char *name)
{
	char			*v = stat_value(m, name), *end;
	unsigned long long	 n = strtoull(v, &end, 10);

	if (end == v || *end != '\0')
		fail_msg("stat %s is \"%s\", not a number", name, v);
	free(v);
	return n;
}

/* Asserts that the stat `name` is exactly `want`. */
static void
assert_stat(memcached_st *m, const char *name, unsigned long long want)
{
	unsigned long long got = stat_number(m, name);

	if (got != want)
		fail_msg("stat %s is %llu, want %llu", name, got, want);
}

/* Round trip of text, binary-safe and empty values and 32-bit flags. */
static void
test_set_get(void **state)
{
	memcached_st		*m = client_of(state);
	static const char	 bin[] = "a\0b\r\nc\r\n\0\nEND\r\n";
	static const uint32_t	 flags[] = { 0, 1, 0x7fffffffu,
				     0x80000000u, 0xffffffffu };
	char			 key[32];

	assert_rc(m, set_str(m, "hello", "world", 0, 0), MEMCACHED_SUCCESS);
	assert_str(m, "hello", "world");
	assert_rc(m, set_str(m, "hello", "again", 0, 0), MEMCACHED_SUCCESS);
	assert_str(m, "hello", "again");

	assert_rc(m, memcached_set(m, "bin", 3, bin, sizeof bin, 0, 0),
	    MEMCACHED_SUCCESS);
	assert_value(m, "bin", bin, sizeof bin, 0);

	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		snprintf(key, sizeof key, "flags-%zu", i);
		assert_rc(m, set_str(m, key, "f", 0, flags[i]),
		    MEMCACHED_SUCCESS);
		assert_value(m, key, "f", 1, flags[i]);
	}

	assert_rc(m, memcached_set(m, "empty", 5, "", 0, 0, 7),
	    MEMCACHED_SUCCESS);
	assert_value(m, "empty", "", 0, 7);
	assert_missing(m, "never-set");
}

/* add only creates, replace only overwrites, append/prepend extend. */
static void
test_add_replace_append_prepend(void **state)
{
	memcached_st *m = client_of(state);

	assert_rc(m, set_str(m, "k", "two", 0, 0), MEMCACHED_SUCCESS);
	assert_rc(m, memcached_add(m, "k", 1, "three", 5, 0, 0),
	    MEMCACHED_NOTSTORED);
	assert_str(m, "k", "two");
	assert_rc(m, memcached_add(m, "new", 3, "fresh", 5, 0, 5),
	    MEMCACHED_SUCCESS);
	assert_value(m, "new", "fresh", 5, 5);

	assert_rc(m, memcached_replace(m, "nope", 4, "x", 1, 0, 0),
	    MEMCACHED_NOTSTORED);
	assert_missing(m, "nope");
	assert_rc(m, memcached_replace(m, "k", 1, "four", 4, 0, 9),
	    MEMCACHED_SUCCESS);
	assert_value(m, "k", "four", 4, 9);

	assert_rc(m, set_str(m, "ap", "middle", 0, 42), MEMCACHED_SUCCESS);
	assert_rc(m, memcached_append(m, "ap", 2, "-end", 4, 0, 7),
	    MEMCACHED_SUCCESS);
	assert_rc(m, memcached_prepend(m, "ap", 2, "start-", 6, 0, 7),
	    MEMCACHED_SUCCESS);
	assert_value(m, "ap", "start-middle-end", 16, 42);
	assert_rc(m, memcached_append(m, "gone", 4, "x", 1, 0, 0),
	    MEMCACHED_NOTSTORED);
	assert_rc(m, memcached_prepend(m, "gone", 4, "x", 1, 0, 0),
	    MEMCACHED_NOTSTORED);
	assert_missing(m, "gone");
}

/* cas succeeds with the current CAS and fails with a stale one. */
static void
test_cas(void **state)
{
	memcached_st	*m = client_of(state);
	uint64_t	 cas1, cas2;

	assert_rc(m, memcached_behavior_set(m,
	    MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1), MEMCACHED_SUCCESS);
	assert_rc(m, set_str(m, "c", "v1", 0, 3), MEMCACHED_SUCCESS);
	cas1 = gets_cas(m, "c");
	assert_int_equal(gets_cas(m, "c"), cas1);

	assert_rc(m, memcached_cas(m, "c", 1, "v2", 2, 0, 4, cas1),
	    MEMCACHED_SUCCESS);
	assert_value(m, "c", "v2", 2, 4);
	cas2 = gets_cas(m, "c");
	assert_int_not_equal(cas2, cas1);

	assert_rc(m, memcached_cas(m, "c", 1, "v3", 2, 0, 0, cas1),
	    MEMCACHED_DATA_EXISTS);
	assert_value(m, "c", "v2", 2, 4);
	assert_rc(m, memcached_cas(m, "missing", 7, "v", 1, 0, 0, cas2),
	    MEMCACHED_NOTFOUND);
	assert_missing(m, "missing");
}

/* One multi-get of 100 keys returns exactly the 50 that exist. */
static void
test_multi_get(void **state)
{
	memcached_st		*m = client_of(state);
	char			 names[MGET_KEYS][16], val[32];
	const char		*keys[MGET_KEYS];
	size_t			 lens[MGET_KEYS];
	bool			 seen[MGET_KEYS] = { false };
	memcached_result_st	 res;
	memcached_return_t	 rc;
	unsigned		 hits = 0;

	for (unsigned i = 0; i < MGET_KEYS; i++) {
		snprintf(names[i], sizeof names[i], "mkey-%03u", i);
		keys[i] = names[i];
		lens[i] = strlen(names[i]);
		if (i % 2 != 0)
			continue;
		snprintf(val, sizeof val, "value-%u", i);
		assert_rc(m, set_str(m, names[i], val, 0, i),
		    MEMCACHED_SUCCESS);
	}

	assert_rc(m, memcached_mget(m, keys, lens, MGET_KEYS),
	    MEMCACHED_SUCCESS);
	assert_non_null(memcached_result_create(m, &res));
	while (memcached_fetch_result(m, &res, &rc) != NULL) {
		const char	*k = memcached_result_key_value(&res);
		size_t		 klen = memcached_result_key_length(&res);
		unsigned	 i = MGET_KEYS;

		assert_rc(m, rc, MEMCACHED_SUCCESS);
		if (klen != 8 || sscanf(k, "mkey-%3u", &i) != 1 ||
		    i >= MGET_KEYS || strncmp(k, names[i], klen) != 0)
			fail_msg("unexpected key \"%.*s\"", (int)klen, k);
		if (i % 2 != 0 || seen[i])
			fail_msg("key %s %s", names[i], seen[i] ?
			    "returned twice" : "was never set");
		seen[i] = true;
		hits++;
		snprintf(val, sizeof val, "value-%u", i);
		assert_int_equal(memcached_result_length(&res), strlen(val));
		assert_memory_equal(memcached_result_value(&res), val,
		    strlen(val));
		assert_int_equal(memcached_result_flags(&res), i);
	}
	assert_rc(m, rc, MEMCACHED_END);
	memcached_result_free(&res);
	assert_int_equal(hits, MGET_KEYS / 2);
}

/* delete hits once, then misses. */
static void
test_delete(void **state)
{
	memcached_st *m = client_of(state);

	assert_rc(m, set_str(m, "d", "x", 0, 0), MEMCACHED_SUCCESS);
	assert_rc(m, set_str(m, "keep", "y", 0, 0), MEMCACHED_SUCCESS);
	assert_rc(m, memcached_delete(m, "d", 1, 0), MEMCACHED_SUCCESS);
	assert_missing(m, "d");
	assert_rc(m, memcached_delete(m, "d", 1, 0), MEMCACHED_NOTFOUND);
	assert_rc(m, memcached_delete(m, "never", 5, 0), MEMCACHED_NOTFOUND);
	assert_str(m, "keep", "y");
}

/* Runs incr (or decr) by delta on key; asserts the status and result. */
static void
assert_incr(memcached_st *m, const char *key, bool incr, uint32_t delta,
    memcached_return_t want_rc, uint64_t want)
{
	uint64_t		value = 0;
	memcached_return_t	rc;

	rc = incr ? memcached_increment(m, key, strlen(key), delta, &value) :
	    memcached_decrement(m, key, strlen(key), delta, &value);
	assert_rc(m, rc, want_rc);
	if (rc == MEMCACHED_SUCCESS && value != want)
		fail_msg("%s %s %" PRIu32 " gave %" PRIu64 ", want %" PRIu64,
		    incr ? "incr" : "decr", key, delta, value, want);
}

/* incr/decr arithmetic, clamping at 0, wrap at 2^64 and bad values. */
static void
test_incr_decr(void **state)
{
	memcached_st *m = client_of(state);

	assert_rc(m, set_str(m, "n", "10", 0, 5), MEMCACHED_SUCCESS);
	assert_incr(m, "n", true, 5, MEMCACHED_SUCCESS, 15);
	assert_value(m, "n", "15", 2, 5);
	assert_incr(m, "n", false, 3, MEMCACHED_SUCCESS, 12);
	assert_incr(m, "n", false, 100, MEMCACHED_SUCCESS, 0);
	assert_incr(m, "n", false, 1, MEMCACHED_SUCCESS, 0);
	assert_incr(m, "n", true, 7, MEMCACHED_SUCCESS, 7);

	assert_rc(m, set_str(m, "big", "18446744073709551615", 0, 0),
	    MEMCACHED_SUCCESS);
	assert_incr(m, "big", true, 2, MEMCACHED_SUCCESS, 1);
	assert_incr(m, "big", true, 10, MEMCACHED_SUCCESS, 11);

	assert_incr(m, "absent", true, 1, MEMCACHED_NOTFOUND, 0);
	assert_incr(m, "absent", false, 1, MEMCACHED_NOTFOUND, 0);
	assert_missing(m, "absent");

	assert_rc(m, set_str(m, "text", "abc", 0, 0), MEMCACHED_SUCCESS);
	assert_incr(m, "text", true, 1, MEMCACHED_CLIENT_ERROR, 0);
	assert_incr(m, "text", false, 1, MEMCACHED_CLIENT_ERROR, 0);
	assert_str(m, "text", "abc");
	assert_incr(m, "n", true, 1, MEMCACHED_SUCCESS, 8);
}

/* touch finds existing keys, misses absent ones and sets the expiry. */
static void
test_touch(void **state)
{
	memcached_st	*m = client_of(state);
	time_t		 past = time(NULL) - 3600;

	assert_rc(m, set_str(m, "t", "v", 0, 0), MEMCACHED_SUCCESS);
	assert_rc(m, memcached_touch(m, "t", 1, 3600), MEMCACHED_SUCCESS);
	assert_str(m, "t", "v");
	assert_rc(m, memcached_touch(m, "absent", 6, 3600),
	    MEMCACHED_NOTFOUND);
	assert_missing(m, "absent");
	assert_rc(m, memcached_touch(m, "t", 1, past), MEMCACHED_SUCCESS);
	assert_missing(m, "t");
	assert_rc(m, memcached_touch(m, "t", 1, 3600), MEMCACHED_NOTFOUND);
}

/* An absolute expiry in the past makes an item invisible at once. */
static void
test_expiry(void **state)
{
	memcached_st	*m = client_of(state);
	time_t		 now = time(NULL);

	assert_rc(m, set_str(m, "past", "v", now - 3600, 0),
	    MEMCACHED_SUCCESS);
	assert_missing(m, "past");
	assert_rc(m, memcached_add(m, "past", 4, "w", 1, 0, 0),
	    MEMCACHED_SUCCESS);
	assert_str(m, "past", "w");

	assert_rc(m, set_str(m, "future", "v", now + 3600, 0),
	    MEMCACHED_SUCCESS);
	assert_str(m, "future", "v");
	assert_rc(m, set_str(m, "relative", "v", 3600, 0),
	    MEMCACHED_SUCCESS);
	assert_str(m, "relative", "v");
	assert_rc(m, set_str(m, "relative", "v", now - 1, 0),
	    MEMCACHED_SUCCESS);
	assert_missing(m, "relative");
}

/* 1,000,000 bytes round trip; too large is refused on a still-usable link. */
static void
test_large_value(void **state)
{
	memcached_st		*m = client_of(state);
	char			*big = malloc(TOO_LARGE_VALUE_LEN);
	unsigned long long	 conns;

	assert_non_null(big);
	fill_pattern(big, LARGE_VALUE_LEN, 1);
	assert_rc(m, memcached_set(m, "large", 5, big, LARGE_VALUE_LEN, 0, 9),
	    MEMCACHED_SUCCESS);
	assert_value(m, "large", big, LARGE_VALUE_LEN, 9);

	conns = stat_number(m, "total_connections");
	fill_pattern(big, TOO_LARGE_VALUE_LEN, 2);
	assert_rc(m, memcached_set(m, "large", 5, big, TOO_LARGE_VALUE_LEN, 0,
	    0), MEMCACHED_E2BIG);
	assert_missing(m, "large");
	assert_rc(m, set_str(m, "after", "ok", 0, 0), MEMCACHED_SUCCESS);
	assert_str(m, "after", "ok");
	assert_stat(m, "total_connections", conns);
	free(big);
}

/* -I 1k: a 1024-byte value fits, 1025 bytes are refused. */
static void
test_item_size_limit(void **state)
{
	memcached_st	*m = client_of(state);
	char		 buf[1025];

	fill_pattern(buf, sizeof buf, 3);
	assert_rc(m, memcached_set(m, "fit", 3, buf, 1024, 0, 0),
	    MEMCACHED_SUCCESS);
	assert_value(m, "fit", buf, 1024, 0);
	assert_rc(m, memcached_set(m, "over", 4, buf, 1025, 0, 0),
	    MEMCACHED_E2BIG);
	assert_missing(m, "over");
	assert_rc(m, memcached_append(m, "fit", 3, "x", 1, 0, 0),
	    MEMCACHED_E2BIG);
	assert_value(m, "fit", buf, 1024, 0);
	assert_rc(m, set_str(m, "small", "ok", 0, 0), MEMCACHED_SUCCESS);
	assert_str(m, "small", "ok");
}

/* flush_all hides everything stored before it, not what comes after. */
static void
test_flush(void **state)
{
	memcached_st	*m = client_of(state);
	char		 key[16];

	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "f%d", i);
		assert_rc(m, set_str(m, key, "v", 0, 0), MEMCACHED_SUCCESS);
	}
	assert_rc(m, memcached_flush(m, 0), MEMCACHED_SUCCESS);
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "f%d", i);
		assert_missing(m, key);
	}
	assert_rc(m, set_str(m, "f0", "new", 0, 0), MEMCACHED_SUCCESS);
	assert_str(m, "f0", "new");
	assert_rc(m, memcached_add(m, "f1", 2, "added", 5, 0, 0),
	    MEMCACHED_SUCCESS);
	assert_str(m, "f1", "added");
}

/* Returns "<version>" as printed by "$CACHED -V" ("cached <version>"). */
static char *
binary_version(void)
{
	char	 cmd[4096], line[256], *v = NULL;
	FILE	*p;

	snprintf(cmd, sizeof cmd, "'%s' -V", getenv("CACHED"));
	assert_non_null(p = popen(cmd, "r"));
	if (fgets(line, sizeof line, p) != NULL &&
	    strncmp(line, "cached ", 7) == 0) {
		line[strcspn(line, "\r\n")] = '\0';
		v = strdup(line + 7);
	}
	assert_int_equal(pclose(p), 0);
	if (v == NULL)
		fail_msg("\"%s\" did not print \"cached <version>\"", cmd);
	return v;
}

/* stats reports curr_items and the same version as "version" and -V. */
static void
test_stats(void **state)
{
	memcached_st			*m = client_of(state);
	const memcached_instance_st	*inst;
	char				 want[128], *version, *own;

	assert_stat(m, "curr_items", 0);
	assert_rc(m, set_str(m, "s1", "a", 0, 0), MEMCACHED_SUCCESS);
	assert_rc(m, set_str(m, "s2", "b", 0, 0), MEMCACHED_SUCCESS);
	assert_rc(m, set_str(m, "s3", "c", 0, 0), MEMCACHED_SUCCESS);
	assert_rc(m, set_str(m, "s3", "d", 0, 0), MEMCACHED_SUCCESS);
	assert_stat(m, "curr_items", 3);
	assert_rc(m, memcached_delete(m, "s1", 2, 0), MEMCACHED_SUCCESS);
	assert_stat(m, "curr_items", 2);
	assert_stat(m, "threads", 4);
	assert_stat(m, "limit_maxbytes", 64ULL * 1024 * 1024);
	assert_int_equal(stat_number(m, "pid"),
	    ((struct fixture *)*state)->srv.pid);

	assert_rc(m, memcached_version(m), MEMCACHED_SUCCESS);
	assert_non_null(inst = memcached_server_instance_by_position(m, 0));
	own = binary_version();
	snprintf(want, sizeof want, "%u.%u.%u-cached-%s",
	    memcached_server_major_version(inst),
	    memcached_server_minor_version(inst),
	    memcached_server_micro_version(inst), own);
	version = stat_value(m, "version");
	if (strcmp(version, want) != 0)
		fail_msg("stats version \"%s\", want \"%s\"", version, want);
	free(version);
	free(own);
}

/* -m 1 with eviction: stores succeed, old keys go, a hot key survives. */
static void
test_eviction(void **state)
{
	memcached_st	*m = client_of(state);
	char		 val[FILL_VALUE_LEN], key[32];

	fill_pattern(val, sizeof val, 4);
	assert_rc(m, memcached_set(m, "hot", 3, val, sizeof val, 0, 0),
	    MEMCACHED_SUCCESS);
	for (int i = 0; i < FILL_MAX_SETS; i++) {
		snprintf(key, sizeof key, "fill-%d", i);
		assert_rc(m, memcached_set(m, key, strlen(key), val,
		    sizeof val, 0, 0), MEMCACHED_SUCCESS);
		if (i % 20 == 0)
			assert_value(m, "hot", val, sizeof val, 0);
	}
	assert_missing(m, "fill-0");
	assert_value(m, "fill-2999", val, sizeof val, 0);
	assert_value(m, "hot", val, sizeof val, 0);
	assert_true(stat_number(m, "evictions") > 0);
	assert_true(stat_number(m, "curr_items") < FILL_MAX_SETS);
}

/* With -m 1 -M, a full cache refuses stores and keeps every item. */
static void
test_no_evict(void **state)
{
	memcached_st		*m = client_of(state);
	char			 val[FILL_VALUE_LEN], key[32];
	memcached_return_t	 rc = MEMCACHED_SUCCESS;
	int			 stored;

	fill_pattern(val, sizeof val, 5);
	for (stored = 0; stored < FILL_MAX_SETS; stored++) {
		snprintf(key, sizeof key, "fill-%d", stored);
		rc = memcached_set(m, key, strlen(key), val, sizeof val, 0, 0);
		if (rc != MEMCACHED_SUCCESS)
			break;
	}
	assert_rc(m, rc, MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE);
	if (stored < 500)
		fail_msg("only %d values of %d bytes fit in 1 MB", stored,
		    FILL_VALUE_LEN);
	assert_missing(m, key);
	for (int i = 0; i < stored; i++) {
		snprintf(key, sizeof key, "fill-%d", i);
		assert_value(m, key, val, sizeof val, 0);
	}
	assert_stat(m, "evictions", 0);
	assert_stat(m, "curr_items", (unsigned long long)stored);
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "fill-%d", i);
		assert_rc(m, memcached_delete(m, key, strlen(key), 0),
		    MEMCACHED_SUCCESS);
	}
	assert_rc(m, memcached_set(m, "room", 4, val, sizeof val, 0, 0),
	    MEMCACHED_SUCCESS);
	assert_value(m, "room", val, sizeof val, 0);
}

struct worker {
	memcached_st	*memc;
	pthread_t	 tid;
	unsigned	 id;
	unsigned	 failures;
	char		 first_failure[256];
};

/* Records a worker's failure (cmocka asserts are not thread-safe). */
static void
worker_fail(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	if (w->failures++ > 0)
		return;
	va_start(ap, fmt);
	vsnprintf(w->first_failure, sizeof w->first_failure, fmt, ap);
	va_end(ap);
}

/* Gets key as a malloc'ed C string (NULL on miss), status in *rc. */
static char *
worker_get(memcached_st *m, const char *key, memcached_return_t *rc)
{
	size_t		 len;
	uint32_t	 flags;
	char		*v, *copy;

	v = memcached_get(m, key, strlen(key), &len, &flags, rc);
	if (v == NULL)
		return NULL;
	copy = strndup(v, len);
	free(v);
	return copy;
}

/* Sets key to val in a worker, recording a failure. */
static void
worker_set(struct worker *w, const char *key, const char *val, uint32_t flags)
{
	memcached_return_t rc = set_str(w->memc, key, val, 0, flags);

	if (rc != MEMCACHED_SUCCESS)
		worker_fail(w, "set %s: %s", key,
		    memcached_strerror(w->memc, rc));
}

/* Worker body: mixed set/get of own and shared keys; own keys must match. */
static void *
worker_run(void *arg)
{
	struct worker		*w = arg;
	char			 last[OWN_KEYS][48], key[32], val[48], *got;
	memcached_return_t	 rc;
	unsigned		 t, op;

	memset(last, 0, sizeof last);
	for (unsigned i = 0; i < OPS_PER_THREAD; i++) {
		unsigned round = i / 4, k = round % OWN_KEYS;

		switch (i % 4) {
		case 0:		/* set an own key */
			snprintf(key, sizeof key, "own-%u-%u", w->id, k);
			snprintf(last[k], sizeof last[k], "t%u-k%u-i%u",
			    w->id, k, i);
			worker_set(w, key, last[k], w->id);
			break;
		case 1:		/* read back another own key */
			k = (k + OWN_KEYS / 2) % OWN_KEYS;
			snprintf(key, sizeof key, "own-%u-%u", w->id, k);
			got = worker_get(w->memc, key, &rc);
			if (last[k][0] == '\0' ? rc != MEMCACHED_NOTFOUND :
			    rc != MEMCACHED_SUCCESS || got == NULL ||
			    strcmp(got, last[k]) != 0)
				worker_fail(w, "get %s: %s \"%s\", want "
				    "\"%s\"", key, memcached_strerror(w->memc,
				    rc), got != NULL ? got : "",
				    last[k][0] ? last[k] : "(miss)");
			free(got);
			break;
		case 2:		/* overwrite a shared key */
			snprintf(key, sizeof key, "shared-%u",
			    round % SHARED_KEYS);
			snprintf(val, sizeof val, "shared-%u-%u", w->id, i);
			worker_set(w, key, val, 0);
			break;
		default:	/* read a shared key: any writer's value */
			snprintf(key, sizeof key, "shared-%u",
			    (round + 3) % SHARED_KEYS);
			got = worker_get(w->memc, key, &rc);
			if (rc != MEMCACHED_SUCCESS || got == NULL ||
			    sscanf(got, "shared-%u-%u", &t, &op) != 2 ||
			    t >= NTHREADS || op >= OPS_PER_THREAD)
				worker_fail(w, "get %s: %s \"%s\"", key,
				    memcached_strerror(w->memc, rc),
				    got != NULL ? got : "");
			free(got);
			break;
		}
	}
	return NULL;
}

/* 8 threads, one cloned client each, 2000 mixed ops per thread. */
static void
test_concurrency(void **state)
{
	memcached_st	*m = client_of(state);
	struct worker	 w[NTHREADS];
	char		 key[32], val[48];

	for (unsigned i = 0; i < SHARED_KEYS; i++) {
		snprintf(key, sizeof key, "shared-%u", i);
		assert_rc(m, set_str(m, key, "shared-0-0", 0, 0),
		    MEMCACHED_SUCCESS);
	}
	memset(w, 0, sizeof w);
	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i].id = i;
		assert_non_null(w[i].memc = memcached_clone(NULL, m));
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&w[i].tid, NULL, worker_run,
		    &w[i]), 0);
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	for (unsigned i = 0; i < NTHREADS; i++)
		memcached_free(w[i].memc);
	for (unsigned i = 0; i < NTHREADS; i++)
		if (w[i].failures > 0)
			fail_msg("thread %u: %u failures, first: %s", i,
			    w[i].failures, w[i].first_failure);
	/* Own key k was last set at op 4 * j, j the last round with
	 * j % OWN_KEYS == k. */
	for (unsigned t = 0; t < NTHREADS; t++)
		for (unsigned k = 0; k < OWN_KEYS; k++) {
			unsigned last = OPS_PER_THREAD / 4 - 1;
			unsigned i = 4 * (last - (last - k) % OWN_KEYS);

			snprintf(key, sizeof key, "own-%u-%u", t, k);
			snprintf(val, sizeof val, "t%u-k%u-i%u", t, k, i);
			assert_value(m, key, val, strlen(val), t);
		}
}

/* 200 clients connected at the same time each set and get their key. */
static void
test_many_connections(void **state)
{
	memcached_st	*m = client_of(state);
	memcached_st	*c[NCLIENTS];
	char		 key[32];

	assert_rc(m, set_str(m, "probe", "x", 0, 0), MEMCACHED_SUCCESS);
	for (int i = 0; i < NCLIENTS; i++) {
		assert_non_null(c[i] = memcached_clone(NULL, m));
		snprintf(key, sizeof key, "conn-%d", i);
		assert_rc(c[i], set_str(c[i], key, key, 0, (uint32_t)i),
		    MEMCACHED_SUCCESS);
	}
	assert_stat(m, "curr_connections", NCLIENTS + 1);
	for (int i = 0; i < NCLIENTS; i++) {
		snprintf(key, sizeof key, "conn-%d", i);
		assert_value(c[i], key, key, strlen(key), (uint32_t)i);
	}
	for (int i = 0; i < NCLIENTS; i++)
		memcached_free(c[i]);
	assert_stat(m, "total_connections", NCLIENTS + 1);
}

/* Runs every test, each against a fresh server. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_set_get, setup_default),
		T(test_add_replace_append_prepend, setup_default),
		T(test_cas, setup_default),
		T(test_multi_get, setup_default),
		T(test_delete, setup_default),
		T(test_incr_decr, setup_default),
		T(test_touch, setup_default),
		T(test_expiry, setup_default),
		T(test_large_value, setup_default),
		T(test_item_size_limit, setup_item_1k),
		T(test_flush, setup_default),
		T(test_stats, setup_default),
		T(test_eviction, setup_tiny_memory),
		T(test_no_evict, setup_tiny_memory_no_evict),
		T(test_concurrency, setup_default),
		T(test_many_connections, setup_default),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
