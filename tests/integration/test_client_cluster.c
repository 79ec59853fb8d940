/*
 * test_client_cluster.c -- libcachedclient against three real cached
 * instances: keys spread over all three by ketama, one instance killed
 * mid-run (SIGKILL) while memoized values stay correct, the survivors
 * serving hits and the dead one's keys moving to them, then the instance
 * restarted on its port and taken back.  The same (spread, a stampede,
 * a kill) through nutcracker (twemproxy) in front of the three.
 *
 * Direct single-server clients tell which instance holds which key.
 * Every wait polls with a bounded deadline; every cached is stopped with
 * SIGTERM and must exit 0 (the killed one is restarted first).
 */
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
#include <unistd.h>

#include <cmocka.h>

#include "cachedclient.h"
#include "test_client_util.h"

#define NSERVERS	3
#define NKEYS		300
#define NTHREADS	16
#define SLOW_MS		300
#define SETTLE_MS	10000	/* deadline for failover and recovery */

struct cluster {
	struct tc_proc	 srv[NSERVERS];
	struct tc_proc	 proxy;
	cc_client	*direct[NSERVERS];	/* one client per instance */
	char		 list[NSERVERS * 40];	/* "a,b,c" */
};

/* How often the deterministic test function ran. */
struct fn {
	atomic_int	 calls;
	unsigned	 delay_ms;
};

/* Writes value(args) = "value of " arg, 1000 bytes long. */
static cc_compute
compute(void *ctx, const cc_arg *args, size_t nargs, void **value,
    size_t *len)
{
	struct fn	*fn = ctx;
	char		*buf;
	int		 n;

	atomic_fetch_add(&fn->calls, 1);
	if (fn->delay_ms > 0)
		tc_sleep_ms(fn->delay_ms);
	if (nargs != 1 || (buf = malloc(1000)) == NULL)
		return CC_COMPUTE_ERROR;
	n = snprintf(buf, 1000, "value of %.*s ", (int)args[0].len,
	    (const char *)args[0].data);
	memset(buf + n, '.', (size_t)(1000 - n));
	*value = buf;
	*len = 1000;
	return CC_COMPUTE_OK;
}

/* True if res holds exactly compute(arg). */
static bool
correct(const struct cc_memo_result *res, const char *arg)
{
	char	want[1000];
	int	n = snprintf(want, sizeof want, "value of %s ", arg);

	memset(want + n, '.', sizeof want - (size_t)n);
	return res->value != NULL && res->len == sizeof want &&
	    memcmp(res->value, want, sizeof want) == 0;
}

/* Memoizes every key once; returns the hits; fails on a wrong value. */
static int
pass(cc_client *c, struct fn *fn)
{
	struct cc_memo_result	res;
	char			arg[16];
	int			i, hits = 0;

	for (i = 0; i < NKEYS; i++) {
		cc_arg a = { arg, 0 };

		a.len = (size_t)snprintf(arg, sizeof arg, "k%d", i);
		assert_int_equal(cc_memoize(c, "cl", "f", &a, 1, 600, compute,
		    fn, &res), CC_OK);
		if (!correct(&res, arg))
			fail_msg("wrong value for %s", arg);
		hits += res.from_cache;
		free(res.value);
	}
	return hits;
}

/* Runs passes until one is all hits (bounded); returns passes needed. */
static int
until_all_hits(cc_client *c, struct fn *fn)
{
	uint64_t	deadline = tc_now_ms() + SETTLE_MS;
	int		n;

	for (n = 1; tc_now_ms() < deadline; n++) {
		if (pass(c, fn) == NKEYS)
			return n;
		tc_sleep_ms(100);
	}
	fail_msg("no pass of all hits within %d ms", SETTLE_MS);
	return -1;
}

/* Returns a bit mask of the live instances that hold key. */
static unsigned
holders_of(struct cluster *cl, const char *key)
{
	void		*v;
	size_t		 len;
	unsigned	 mask = 0;
	int		 i;

	for (i = 0; i < NSERVERS; i++) {
		if (cl->srv[i].pid <= 0 ||
		    cc_get(cl->direct[i], key, &v, &len, NULL) != CC_OK)
			continue;
		free(v);
		mask |= 1u << i;
	}
	return mask;
}

/*
 * Counts the memo entries of the test keys on each live instance.  After
 * a failover a key can be on two (its copy on the stand-in lives out its
 * TTL), so the counts may add up to more than NKEYS.
 */
static void
spread(struct cluster *cl, cc_client *c, int count[NSERVERS])
{
	char		key[CC_MEMO_KEY_SIZE], arg[16];
	uint64_t	ver;
	unsigned	mask;
	int		i, j;

	memset(count, 0, NSERVERS * sizeof count[0]);
	assert_int_equal(cc_ns_version(c, "cl", &ver), CC_OK);
	for (i = 0; i < NKEYS; i++) {
		cc_arg a = { arg, 0 };

		a.len = (size_t)snprintf(arg, sizeof arg, "k%d", i);
		assert_int_equal(cc_memo_key("cl", ver, "f", &a, 1, key), CC_OK);
		mask = holders_of(cl, key);
		assert_true(mask != 0);
		for (j = 0; j < NSERVERS; j++)
			count[j] += (mask >> j) & 1;
	}
}

/* Picks an instance to kill that does not hold the namespace version. */
static int
pick_victim(struct cluster *cl)
{
	unsigned	mask = holders_of(cl, "memo1:cl");
	int		owner;

	for (owner = 0; owner < NSERVERS; owner++)
		if (mask == 1u << owner)
			return (owner + 1) % NSERVERS;
	fail_msg("namespace key on instances 0x%x", mask);
	return -1;
}

/* Starts three instances and a direct client for each. */
static int
setup(void **state)
{
	struct cluster	*cl = calloc(1, sizeof *cl);
	size_t		 off = 0;
	int		 i;

	assert_non_null(cl);
	cl->proxy.pid = -1;
	for (i = 0; i < NSERVERS; i++) {
		assert_true(tc_cached_start(&cl->srv[i], 0));
		cl->direct[i] = tc_client_for(cl->srv[i].addr);
		off += (size_t)snprintf(cl->list + off, sizeof cl->list - off,
		    "%s%s", i > 0 ? "," : "", cl->srv[i].addr);
	}
	*state = cl;
	return 0;
}

/* Stops everything; every cached must exit 0. */
static int
teardown(void **state)
{
	struct cluster	*cl = *state;
	bool		 ok = true;
	int		 i;

	if (cl->proxy.pid > 0)
		ok = tc_proc_stop(&cl->proxy);
	tc_proc_cleanup(&cl->proxy);
	for (i = 0; i < NSERVERS; i++) {
		cc_client_destroy(cl->direct[i]);
		if (cl->srv[i].pid > 0 && !tc_cached_stop(&cl->srv[i]))
			ok = false;
		tc_proc_cleanup(&cl->srv[i]);
	}
	free(cl);
	return ok ? 0 : -1;
}

/* Ketama over three instances: spread, kill one, recover it. */
static void
test_cluster_kill_and_recover(void **state)
{
	struct cluster	*cl = *state;
	struct fn	 fn = { 0, 0 };
	int		 count[NSERVERS], after[NSERVERS], victim, i, hits;
	unsigned	 port;
	uint64_t	 deadline;
	cc_client	*c = tc_client_for(cl->list);

	assert_int_equal(pass(c, &fn), 0);
	assert_int_equal(atomic_load(&fn.calls), NKEYS);
	assert_int_equal(pass(c, &fn), NKEYS);
	spread(cl, c, count);
	for (i = 0; i < NSERVERS; i++) {
		print_message("instance %d holds %d keys\n", i, count[i]);
		assert_true(count[i] >= NKEYS / 10);
	}
	assert_int_equal(count[0] + count[1] + count[2], NKEYS);

	victim = pick_victim(cl);
	port = cl->srv[victim].port;
	tc_proc_kill(&cl->srv[victim]);
	/* The survivors' keys stay hits; the victim's are computed. */
	hits = pass(c, &fn);
	assert_true(hits >= NKEYS - count[victim]);
	print_message("after the kill: %d hits, %d passes to all hits\n",
	    hits, until_all_hits(c, &fn));
	spread(cl, c, after);
	assert_int_equal(after[0] + after[1] + after[2], NKEYS);

	/* Back on its port, the instance gets its share of keys again. */
	tc_proc_cleanup(&cl->srv[victim]);
	assert_true(tc_cached_start(&cl->srv[victim], port));
	deadline = tc_now_ms() + SETTLE_MS;
	do {
		assert_true(tc_now_ms() < deadline);
		tc_sleep_ms(200);
		pass(c, &fn);
		spread(cl, c, after);
	} while (after[victim] < count[victim]);
	assert_int_equal(after[victim], count[victim]);
	cc_client_destroy(c);
}

struct racer {
	cc_client		*c;
	pthread_barrier_t	*go;
	struct fn		*fn;
	bool			 ok;
};

/* Waits for the start signal, then memoizes the hot key. */
static void *
racer_main(void *arg)
{
	struct racer		*r = arg;
	struct cc_memo_result	 res;
	cc_arg			 a = { "hot", 3 };

	pthread_barrier_wait(r->go);
	r->ok = cc_memoize(r->c, "cl", "f", &a, 1, 600, compute, r->fn,
	    &res) == CC_OK && correct(&res, "hot");
	free(res.value);
	return NULL;
}

/* NTHREADS threads on one missing key; asserts one computation. */
static void
stampede(cc_client *c)
{
	struct racer		r[NTHREADS];
	pthread_t		t[NTHREADS];
	pthread_barrier_t	go;
	struct fn		fn = { 0, SLOW_MS };
	int			i;

	pthread_barrier_init(&go, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		r[i] = (struct racer){ c, &go, &fn, false };
		assert_int_equal(pthread_create(&t[i], NULL, racer_main, &r[i]),
		    0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		assert_true(r[i].ok);
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(atomic_load(&fn.calls), 1);
}

/* Thin operations through the proxy. */
static void
proxy_ops(cc_client *c)
{
	const char	*keys[] = { "p1", "p2", "p3" };
	struct cc_value	 out[3];
	uint64_t	 n;
	void		*v;
	size_t		 len;

	assert_int_equal(cc_set(c, "p1", "one", 3, 5, 0), CC_OK);
	assert_int_equal(cc_add(c, "p1", "x", 1, 0, 0), CC_NOT_STORED);
	assert_int_equal(cc_add(c, "p2", "two", 3, 0, 0), CC_OK);
	assert_int_equal(cc_replace(c, "p9", "x", 1, 0, 0), CC_NOT_STORED);
	assert_int_equal(cc_get(c, "p1", &v, &len, NULL), CC_OK);
	assert_memory_equal(v, "one", 3);
	free(v);
	assert_int_equal(cc_mget(c, keys, 3, out), CC_OK);
	assert_true(out[0].found && out[1].found && !out[2].found);
	assert_int_equal(out[0].flags, 5);
	cc_values_free(out, 3);
	assert_int_equal(cc_set(c, "n", "41", 2, 0, 0), CC_OK);
	assert_int_equal(cc_incr(c, "n", 1, &n), CC_OK);
	assert_int_equal(n, 42);
	assert_int_equal(cc_decr(c, "n", 2, &n), CC_OK);
	assert_int_equal(n, 40);
	assert_int_equal(cc_touch(c, "n", 60), CC_OK);
	assert_int_equal(cc_delete(c, "p2"), CC_OK);
	assert_int_equal(cc_delete(c, "p2"), CC_NOT_FOUND);
}

/* The same through nutcracker: ops, spread, a stampede, a kill. */
static void
test_twemproxy(void **state)
{
	struct cluster	*cl = *state;
	struct fn	 fn = { 0, 0 };
	int		 count[NSERVERS], victim, i, hits;
	cc_client	*c;

	assert_true(tc_nutcracker_start(&cl->proxy, cl->srv, NSERVERS));
	c = tc_client_for(cl->proxy.addr);
	proxy_ops(c);
	stampede(c);
	assert_int_equal(pass(c, &fn), 0);
	assert_int_equal(pass(c, &fn), NKEYS);
	spread(cl, c, count);
	for (i = 0; i < NSERVERS; i++) {
		print_message("instance %d holds %d keys\n", i, count[i]);
		assert_true(count[i] >= NKEYS / 10);
	}
	assert_int_equal(count[0] + count[1] + count[2], NKEYS);

	victim = pick_victim(cl);
	tc_proc_kill(&cl->srv[victim]);
	hits = pass(c, &fn);
	assert_true(hits >= NKEYS - count[victim]);
	print_message("after the kill: %d hits, %d passes to all hits\n",
	    hits, until_all_hits(c, &fn));
	cc_client_destroy(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cluster_kill_and_recover,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_twemproxy, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
