/*
 * test_dump.c -- cmocka unit tests of server/dump.c through the real
 * dispatch: "lru_crawler metadump" and "stats cachedump" as resumable
 * requests over a real store, their lines composed by protocol/
 * proto_dump.c, without sockets.
 *
 * Data structure: a capture output (a growable buffer) whose full() says
 * yes once a step has written `step_max` bytes, so a dump is answered
 * over many dispatch_request calls (AGAIN), as the server answers it to a
 * client that reads slowly; between two calls a test may change the
 * store (inject writes), as other clients would.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "proto.h"
#include "proto_dump.h"
#include "stats.h"
#include "store.h"

#define T0	1700000000u

struct capture {
	struct proto_out	 out;		/* first: found by a cast */
	char			*buf;
	size_t			 len;
	size_t			 cap;
	size_t			 step_start;	/* len when the step began */
	size_t			 step_max;	/* 0: never full */
};

struct rig {
	uint32_t		 now;
	store_t			*st;
	struct thread_stats	 ts;
	struct capture		 cap;
	struct reply_sink	 sink;
	struct dispatch_env	 env;
	bool			 crawler_on;
	unsigned		 steps;
};

/* The store's clock. */
static uint32_t
rig_clock(void *ctx)
{
	return ((struct rig *)ctx)->now;
}

/* proto_out: room for n more bytes. */
static char *
cap_space(struct proto_out *o, size_t n)
{
	struct capture *c = (struct capture *)(void *)o;

	if (c->len + n + 1 > c->cap) {
		c->cap = (c->len + n + 1) * 2;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	return c->buf + c->len;
}

/* proto_out: keeps `used` bytes. */
static void
cap_commit(struct proto_out *o, size_t used)
{
	struct capture *c = (struct capture *)(void *)o;

	c->len += used;
	c->buf[c->len] = '\0';
}

/* proto_out: no values in dumps. */
static void
cap_value(struct proto_out *o, const char *data, size_t n, void *ref)
{
	(void)o;
	(void)data;
	(void)n;
	(void)ref;
	fail_msg("a dump sent a value");
}

/* proto_out: full once the step wrote step_max bytes. */
static bool
cap_full(const struct proto_out *o)
{
	const struct capture *c = (const struct capture *)(const void *)o;

	return c->step_max != 0 && c->len - c->step_start >= c->step_max;
}

/* A rig: a store on the fake clock, the capture, the environment. */
static int
setup(void **state)
{
	struct rig		*t = calloc(1, sizeof *t);
	struct store_config	 cfg = {
		.mem_limit = 64 * 1024 * 1024, .item_size_max = 1024,
		.shards_log2 = 2, .clock = rig_clock,
	};

	assert_non_null(t);
	t->now = T0;
	cfg.clock_ctx = t;
	t->st = store_create(&cfg);
	assert_non_null(t->st);
	t->cap.out = (struct proto_out){ .space = cap_space,
	    .commit = cap_commit, .value = cap_value, .full = cap_full };
	cap_space(&t->cap.out, 0);
	cap_commit(&t->cap.out, 0);
	t->sink = (struct reply_sink){ &proto_text, &t->cap.out };
	t->crawler_on = true;
	t->env = (struct dispatch_env){ .store = t->st, .stats = &t->ts,
	    .crawler_on = &t->crawler_on };
	*state = t;
	return 0;
}

/* Frees the rig. */
static int
teardown(void **state)
{
	struct rig *t = *state;

	store_destroy(t->st);
	free(t->cap.buf);
	free(t);
	return 0;
}

/* Empties the capture. */
static void
cap_reset(struct rig *t)
{
	t->cap.len = 0;
	t->cap.buf[0] = '\0';
}

/* Sets key to a value of n bytes. */
static void
put(struct rig *t, const char *key, size_t n, int64_t exptime)
{
	item_t *it;

	assert_int_equal(store_reserve(t->st, key, strlen(key), 0, exptime, n,
	    &it), STORE_OK);
	memset(item_value_mut(it), 'v', n);
	assert_int_equal(store_commit(t->st, it, STORE_SET, 0, NULL),
	    STORE_STORED);
}

/* Runs one request line to its end; between two steps calls between()
 * (if any).  Returns the number of dispatch_request calls. */
static unsigned
run(struct rig *t, const char *line, void (*between)(struct rig *, unsigned))
{
	struct proto_req	req;
	struct dispatch_state	ds;
	size_t			consumed;
	enum dispatch_next	next;
	unsigned		steps = 0;

	assert_int_equal(proto_text.parse(line, strlen(line), &req,
	    &consumed), PROTO_OK);
	memset(&ds, 0, sizeof ds);
	do {
		t->cap.step_start = t->cap.len;
		assert_true(++steps < 1000000);
		next = dispatch_request(&t->env, &req, &ds, &t->sink);
		if (next == DISPATCH_AGAIN && between != NULL)
			between(t, steps);
	} while (next == DISPATCH_AGAIN);
	assert_int_equal(next, DISPATCH_DONE);
	return steps;
}

/* Runs a line and checks its whole reply. */
static void
expect(struct rig *t, const char *line, const char *want)
{
	run(t, line, NULL);
	assert_string_equal(t->cap.buf, want);
	cap_reset(t);
}

/* Between steps: stores new keys "n<i>" and deletes "d<i>". */
static void
churn(struct rig *t, unsigned step)
{
	char key[32];

	for (unsigned i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "n%u", step * 20 + i);
		put(t, key, 3, 0);
		snprintf(key, sizeof(key), "d%u", step * 20 + i);
		(void)store_delete(t->st, key, strlen(key));
	}
}

/* A metadump answered over many steps while the store changes lists each
 * key that stays exactly once, each other at most once, then END once. */
static void
test_metadump_resumes(void **state)
{
	enum { N = 4000 };
	struct rig *t = *state;
	static unsigned seen[N];
	char key[32], *p, *nl;
	unsigned steps, others = 0;

	for (unsigned i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "s%u", i);
		put(t, key, 5, 0);
		snprintf(key, sizeof(key), "d%u", i);
		put(t, key, 5, 0);
	}
	t->cap.step_max = 700;
	steps = run(t, "lru_crawler metadump all\r\n", churn);
	assert_true(steps > 50);
	p = t->cap.buf;
	for (; (nl = strchr(p, '\n')) != NULL && strncmp(p, "END", 3) != 0;
	    p = nl + 1) {
		unsigned i;

		assert_memory_equal(p, "key=", 4);
		if (p[4] == 's') {
			assert_int_equal(sscanf(p + 5, "%u", &i), 1);
			assert_true(i < N);
			seen[i]++;
		} else
			others++;
		assert_non_null(strstr(p, " exp=-1 la="));
		assert_non_null(strstr(p, " fetch=no cls=1 size="));
	}
	assert_string_equal(p, "END\r\n");
	for (unsigned i = 0; i < N; i++)
		if (seen[i] != 1)
			fail_msg("s%u listed %u times", i, seen[i]);
	assert_true(others > 0);
}

/* cachedump with a limit, resumed over steps: exactly `limit` lines. */
static void
test_cachedump_limit(void **state)
{
	struct rig *t = *state;
	char key[32];
	size_t lines = 0;

	for (unsigned i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		put(t, key, 7, 1000);
	}
	t->cap.step_max = 100;
	assert_true(run(t, "stats cachedump 1 321\r\n", NULL) > 10);
	for (char *p = t->cap.buf; (p = strstr(p, "ITEM k")) != NULL; p++) {
		assert_non_null(strstr(p, " [7 b; 1700001000 s]\r\n"));
		lines++;
	}
	assert_int_equal(lines, 321);
	assert_string_equal(t->cap.buf + t->cap.len - 5, "END\r\n");
	cap_reset(t);
	t->cap.step_max = 0;
	expect(t, "stats cachedump 2 0\r\n", "END\r\n");
	expect(t, "stats cachedump 64 0\r\n",
	    "CLIENT_ERROR Illegal slab id\r\n");
}

/* One item's lines, exactly. */
static void
test_lines(void **state)
{
	struct rig *t = *state;
	item_t *it;

	put(t, "a/%", 2, 0);
	assert_int_equal(store_get(t->st, "a/%", 3, &it), STORE_OK);
	store_release(t->st, it);
	expect(t, "lru_crawler metadump 1\r\n",
	    "key=a%2F%25 exp=-1 la=1700000000 cas=1 fetch=yes cls=1 "
	    "size=32\nEND\r\n");
	expect(t, "stats cachedump 1 0\r\n", "ITEM a/% [2 b; 0 s]\r\nEND\r\n");
	expect(t, "lru_crawler metadump 2,3\r\n", "END\r\n");
}

/* The switches, -X, and what a disabled crawler answers. */
static void
test_switches(void **state)
{
	struct rig *t = *state;

	expect(t, "lru_crawler enable\r\n",
	    "ERROR failed to start lru crawler thread\r\n");
	expect(t, "lru_crawler disable\r\n", "OK\r\n");
	expect(t, "lru_crawler metadump all\r\n",
	    "CLIENT_ERROR lru crawler disabled\r\n");
	expect(t, "lru_crawler crawl all\r\n",
	    "CLIENT_ERROR lru crawler disabled\r\n");
	expect(t, "lru_crawler enable\r\n", "OK\r\n");
	expect(t, "lru_crawler crawl all\r\n", "OK\r\n");
	t->env.no_dump = true;
	expect(t, "lru_crawler metadump all\r\n",
	    "ERROR metadump not allowed\r\n");
	expect(t, "stats cachedump 1 0\r\n",
	    "CLIENT_ERROR stats cachedump not allowed\r\n");
	expect(t, "lru_crawler metadump\r\n", "ERROR\r\n");
}

/* The class lists proto_dump_classes reads. */
static void
test_class_lists(void **state)
{
	static const struct {
		const char		*s;
		enum proto_classes	 want;
		bool			 ours;
	} cases[] = {
		{ "all", PROTO_CLASSES_SOME, true },
		{ "hash", PROTO_CLASSES_HASH, false },
		{ "1", PROTO_CLASSES_SOME, true },
		{ "001", PROTO_CLASSES_SOME, true },
		{ "2,63", PROTO_CLASSES_SOME, false },
		{ ",,1,", PROTO_CLASSES_SOME, true },
		{ ",", PROTO_CLASSES_NONE, false },
		{ "", PROTO_CLASSES_NONE, false },
		{ "0", PROTO_CLASSES_BAD, false },
		{ "64", PROTO_CLASSES_BAD, false },
		{ "000", PROTO_CLASSES_BAD, false },
		{ "1,x", PROTO_CLASSES_BAD, false },
		{ "+1", PROTO_CLASSES_BAD, false },
		{ "4294967297", PROTO_CLASSES_BAD, false },
		{ "ALL", PROTO_CLASSES_BAD, false },
	};
	bool ours;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(proto_dump_classes(cases[i].s,
		    strlen(cases[i].s), &ours), cases[i].want);
		if (cases[i].want == PROTO_CLASSES_SOME)
			assert_int_equal(ours, cases[i].ours);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metadump_resumes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cachedump_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_switches, setup,
		    teardown),
		cmocka_unit_test(test_class_lists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
