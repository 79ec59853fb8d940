/*
 * test_dispatch.c -- cmocka unit tests of server/dispatch.c: text
 * protocol lines parsed with proto_text.parse and run through the real
 * dispatch against a real store on a fake clock, as server/conn.c runs
 * them, with the replies composed by the real text codec into a capture
 * output instead of an output queue.
 *
 * Data structure: `struct rig` holds the store, the calling thread's
 * counters, the dispatch environment with fake stats/shutdown hooks, and
 * the capture: a growable buffer space()/commit()/value() append to
 * (value() copies and releases the item at once) and a full() that says
 * never, always, or "after a hit in this step", which makes a multi-key
 * get answer one hit per dispatch_request call.
 *
 * What is checked: the reply bytes of every command, noreply leaving out
 * outcomes but not errors, a bad data terminator closing, a refused set
 * swallowing its data and deleting the old value, a multi-key get resumed
 * over many calls answering each hit once and END once, and the counters
 * in thread_stats moving as memcached's do.  The binary protocol (issue
 * 12) runs through the same dispatch with proto_bin: bare values, exact
 * skips, per-key misses, incr with an initial value, the SASL gate.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "log.h"
#include "proto.h"
#include "stats.h"
#include "store.h"
#include "version.h"

#define T0		1700000000u
#define ITEM_MAX	1024

enum full_mode { FULL_NEVER, FULL_ALWAYS, FULL_AFTER_HIT };

struct capture {
	struct proto_out	 out;		/* first: the capture is found
						 * from it by a cast */
	store_t			*st;
	char			*buf;		/* NUL-terminated */
	size_t			 len;
	size_t			 cap;
	enum full_mode		 full;
	unsigned		 step_hits;	/* hits this step */
	unsigned		 values;	/* hits in all ("VALUE " lines) */
};

struct rig {
	uint32_t		 now;
	store_t			*st;
	struct thread_stats	 ts;
	struct capture		 cap;
	struct reply_sink	 sink;
	struct dispatch_env	 env;
	unsigned		 stats_calls;
	unsigned		 shutdown_calls;
	bool			 allow_shutdown;
	/* what the last run saw */
	bool			 closed;
	size_t			 swallowed;
	unsigned		 steps;
};

/* The store's clock. */
static uint32_t
rig_clock(void *ctx)
{
	return ((struct rig *)ctx)->now;
}

/* proto_out: room for n more bytes at the end of the capture. */
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

/* proto_out: keeps the first `used` bytes of the space; a text hit's
 * line counts a hit (a get copies its value under the store lock, with
 * no reference, so value() and release() do not see every hit). */
static void
cap_commit(struct proto_out *o, size_t used)
{
	struct capture *c = (struct capture *)(void *)o;

	if (used >= 6 && memcmp(c->buf + c->len, "VALUE ", 6) == 0) {
		c->step_hits++;
		c->values++;
	}
	c->len += used;
	c->buf[c->len] = '\0';
}

/* proto_out: copies a value and gives the item back at once. */
static void
cap_value(struct proto_out *o, const char *data, size_t n, void *ref)
{
	struct capture *c = (struct capture *)(void *)o;

	memcpy(cap_space(o, n), data, n);
	cap_commit(o, n);
	store_release(c->st, ref);
}

/* proto_out: gives back the item of a value the composer copied. */
static void
cap_release(struct proto_out *o, void *ref)
{
	struct capture *c = (struct capture *)(void *)o;

	store_release(c->st, ref);
}

/* proto_out: full as the test says. */
static bool
cap_full(const struct proto_out *o)
{
	const struct capture *c = (const struct capture *)(const void *)o;

	return c->full == FULL_ALWAYS ||
	    (c->full == FULL_AFTER_HIT && c->step_hits > 0);
}

/* dispatch: "stats" answers one line; "stats <anything>" is unknown. */
static bool
fake_stats(void *ctx, const struct proto_req *req,
    const struct reply_sink *sink)
{
	struct rig *t = ctx;

	t->stats_calls++;
	if (req->narg != 0)
		return false;
	sink->codec->stat(sink->out, req, "pid", "42", 2);
	sink->codec->end(sink->out, req);
	return true;
}

/* dispatch: "shutdown" as the test allows. */
static bool
fake_shutdown(void *ctx)
{
	struct rig *t = ctx;

	t->shutdown_calls++;
	return t->allow_shutdown;
}

/* Sets up a rig: a store on the fake clock, the capture, the env.
 * Every test runs twice: with values handed to value() one by one, and
 * (setup_copy) with small ones copied by the composer itself. */
static int
setup(void **state)
{
	struct rig		*t = calloc(1, sizeof *t);
	struct store_config	 cfg = {
		.mem_limit = 4 * 1024 * 1024, .item_size_max = ITEM_MAX,
		.shards_log2 = 2, .clock = rig_clock,
	};

	assert_non_null(t);
	t->now = T0;
	cfg.clock_ctx = t;
	t->st = store_create(&cfg);
	assert_non_null(t->st);
	t->cap.out = (struct proto_out){ .space = cap_space,
	    .commit = cap_commit, .value = cap_value, .full = cap_full };
	t->cap.st = t->st;
	cap_space(&t->cap.out, 0);
	cap_commit(&t->cap.out, 0);
	t->sink = (struct reply_sink){ &proto_text, &t->cap.out };
	t->env = (struct dispatch_env){ .store = t->st, .stats = &t->ts,
	    .stats_reply = fake_stats, .shutdown = fake_shutdown, .ctx = t,
	    .shutdown_enabled = true };
	*state = t;
	return 0;
}

/* As setup, with the composer's copy of values up to 1 KiB. */
static int
setup_copy(void **state)
{
	struct rig *t;

	setup(state);
	t = *state;
	t->cap.out.copy_max = 1024;
	t->cap.out.release = cap_release;
	return 0;
}

/* Frees the rig; every item reference must be back by now. */
static int
teardown(void **state)
{
	struct rig *t = *state;

	store_destroy(t->st);
	free(t->cap.buf);
	free(t);
	return 0;
}

/* Runs a byte stream as conn.c does: parse a line, dispatch it (again
 * while it says AGAIN), stream a value in and complete it, swallow a
 * refused one, stop at CLOSE.  Returns the last dispatch result. */
static enum dispatch_next
run(struct rig *t, const char *in, size_t len)
{
	enum dispatch_next	next = DISPATCH_DONE;
	size_t			pos = 0;

	t->closed = false;
	t->swallowed = 0;
	t->steps = 0;
	while (pos < len) {
		struct proto_req	req;
		struct dispatch_state	ds;
		size_t			consumed = 0;
		enum proto_result	r;

		r = proto_text.parse(in + pos, len - pos, &req, &consumed);
		assert_int_not_equal(r, PROTO_NEED_MORE);
		pos += consumed;
		if (r != PROTO_OK) {
			if (req.error != NULL)
				proto_out_copy(&t->cap.out, req.error,
				    strlen(req.error));
			if (r == PROTO_CLOSE) {
				t->closed = true;
				return DISPATCH_CLOSE;
			}
			pos += req.swallow;
			continue;
		}
		memset(&ds, 0, sizeof ds);
		do {
			assert_true(t->steps < 100000);
			t->cap.step_hits = 0;
			t->steps++;
			next = dispatch_request(&t->env, &req, &ds, &t->sink);
		} while (next == DISPATCH_AGAIN);
		if (next == DISPATCH_VALUE) {
			size_t n = item_nbytes(ds.it);

			assert_true(pos + n + 2 <= len);
			memcpy(item_value_mut(ds.it), in + pos, n);
			next = dispatch_value(&t->env, &req, &ds, in + pos + n,
			    &t->sink);
			assert_null(ds.it);
			pos += n + 2;
		} else if (next == DISPATCH_SWALLOW) {
			t->swallowed = ds.swallow;
			pos += ds.swallow;
		}
		if (next == DISPATCH_CLOSE) {
			t->closed = true;
			break;
		}
	}
	return next;
}

/* Runs a stream and checks the replies are exactly `want`. */
static void
expect(struct rig *t, const char *in, const char *want)
{
	run(t, in, strlen(in));
	assert_string_equal(t->cap.buf, want);
	t->cap.len = 0;
	t->cap.buf[0] = '\0';
}

/* The CAS of a stored key (without counting a hit in our counters). */
static uint64_t
cas_of(struct rig *t, const char *key)
{
	item_t		*it;
	uint64_t	 cas;

	assert_int_equal(store_get(t->st, key, strlen(key), &it), STORE_OK);
	cas = item_cas(it);
	store_release(t->st, it);
	return cas;
}

/* set/add/replace/append/prepend/cas: hit, miss and mismatch replies. */
static void
test_storage_replies(void **state)
{
	struct rig	*t = *state;
	char		 line[256], want[256];
	uint64_t	 cas;

	expect(t, "set a 5 0 3\r\nabc\r\n", "STORED\r\n");
	expect(t, "get a\r\n", "VALUE a 5 3\r\nabc\r\nEND\r\n");
	cas = cas_of(t, "a");
	snprintf(want, sizeof want, "VALUE a 5 3 %" PRIu64 "\r\nabc\r\nEND\r\n",
	    cas);
	expect(t, "gets a\r\n", want);
	expect(t, "add a 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	expect(t, "add b 0 0 1\r\nx\r\n", "STORED\r\n");
	expect(t, "replace c 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	expect(t, "replace b 7 0 2\r\nyy\r\n", "STORED\r\n");
	expect(t, "get b c\r\n", "VALUE b 7 2\r\nyy\r\nEND\r\n");
	expect(t, "append a 0 0 2\r\nde\r\n", "STORED\r\n");
	expect(t, "prepend a 0 0 2\r\nzz\r\n", "STORED\r\n");
	expect(t, "get a\r\n", "VALUE a 5 7\r\nzzabcde\r\nEND\r\n");
	expect(t, "append nope 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	expect(t, "prepend nope 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	expect(t, "set e 0 0 0\r\n\r\n", "STORED\r\n");
	expect(t, "get e\r\n", "VALUE e 0 0\r\n\r\nEND\r\n");
	cas = cas_of(t, "a");
	snprintf(line, sizeof line, "cas a 3 0 1 %" PRIu64 "\r\nq\r\n", cas);
	expect(t, line, "STORED\r\n");
	expect(t, line, "EXISTS\r\n");
	expect(t, "get a\r\n", "VALUE a 3 1\r\nq\r\nEND\r\n");
	expect(t, "cas nope 0 0 1 1\r\nq\r\n", "NOT_FOUND\r\n");
}

/* delete, incr/decr, touch, gat/gats, flush_all, version, verbosity. */
static void
test_other_replies(void **state)
{
	struct rig	*t = *state;
	char		 want[256];

	expect(t, "set a 0 0 1\r\nx\r\ndelete a\r\ndelete a\r\n",
	    "STORED\r\nDELETED\r\nNOT_FOUND\r\n");
	expect(t, "set n 9 0 2\r\n10\r\nincr n 5\r\ndecr n 20\r\n",
	    "STORED\r\n15\r\n0\r\n");
	expect(t, "incr n 18446744073709551615\r\n",
	    "18446744073709551615\r\n");
	expect(t, "incr n 2\r\n", "1\r\n");	/* wraps at 2^64 */
	expect(t, "incr nope 1\r\ndecr nope 1\r\n",
	    "NOT_FOUND\r\nNOT_FOUND\r\n");
	expect(t, "set s 0 0 3\r\nabc\r\nincr s 1\r\ndecr s 1\r\n",
	    "STORED\r\n"
	    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
	expect(t, "touch s 10\r\ntouch nope 10\r\n", "TOUCHED\r\nNOT_FOUND\r\n");
	t->now += 11;
	expect(t, "get s\r\n", "END\r\n");
	expect(t, "set g 4 0 2\r\nhi\r\ngat 100 g nope\r\n",
	    "STORED\r\nVALUE g 4 2\r\nhi\r\nEND\r\n");
	snprintf(want, sizeof want, "VALUE g 4 2 %" PRIu64 "\r\nhi\r\nEND\r\n",
	    cas_of(t, "g"));
	expect(t, "gats 100 g\r\n", want);
	t->now += 100;
	expect(t, "get g\r\ngat 0 g\r\n", "END\r\nEND\r\n");
	expect(t, "set f 0 0 1\r\nx\r\nflush_all\r\nget f\r\n",
	    "STORED\r\nOK\r\nEND\r\n");
	expect(t, "set f 0 0 1\r\nx\r\nflush_all 10\r\nget f\r\n",
	    "STORED\r\nOK\r\nVALUE f 0 1\r\nx\r\nEND\r\n");
	t->now += 10;
	expect(t, "get f\r\n", "END\r\n");
	expect(t, "version\r\n", "VERSION " CACHED_WIRE_VERSION "\r\n");
	expect(t, "verbosity 1\r\nverbosity 0\r\n", "OK\r\nOK\r\n");
	assert_false(log_enabled(LOG_INFO));
}

/* stats through the hook, shutdown allowed or not, quit. */
static void
test_stats_shutdown_quit(void **state)
{
	struct rig *t = *state;

	expect(t, "stats\r\n", "STAT pid 42\r\nEND\r\n");
	assert_int_equal(t->stats_calls, 1);
	expect(t, "stats bogus\r\n", "ERROR\r\n");
	assert_int_equal(t->stats_calls, 2);
	t->env.stats_reply = NULL;
	expect(t, "stats\r\n", "ERROR\r\n");
	t->env.stats_reply = fake_stats;

	expect(t, "shutdown\r\nversion\r\n",
	    "ERROR: shutdown not enabled\r\nVERSION " CACHED_WIRE_VERSION
	    "\r\n");
	assert_int_equal(t->shutdown_calls, 1);
	assert_false(t->closed);
	t->env.shutdown = NULL;
	expect(t, "shutdown\r\n", "ERROR: shutdown not enabled\r\n");
	t->env.shutdown = fake_shutdown;
	/* -A off: refused whatever the mode, as memcached does */
	t->env.shutdown_enabled = false;
	expect(t, "shutdown foo\r\n", "ERROR: shutdown not enabled\r\n");
	t->env.shutdown_enabled = true;
	expect(t, "shutdown foo\r\n", "CLIENT_ERROR invalid shutdown mode\r\n");
	assert_int_equal(t->shutdown_calls, 1);
	t->allow_shutdown = true;
	expect(t, "shutdown\r\nversion\r\n", "");
	assert_true(t->closed);
	assert_int_equal(t->shutdown_calls, 2);

	expect(t, "quit\r\nversion\r\n", "");
	assert_true(t->closed);
	expect(t, "version\r\n", "VERSION " CACHED_WIRE_VERSION "\r\n");
	assert_false(t->closed);
}

/* The last tunable dispatch handed to the env's tune hook. */
static struct proto_admin last_tune;
static unsigned tune_calls;

/* A fake tune hook: records what it was given. */
static void
fake_tune(void *ctx, const struct proto_admin *a)
{
	(void)ctx;
	last_tune = *a;
	tune_calls++;
}

/* Key operations the fake detail hook saw, by enum stats_detail_op. */
static unsigned detail_calls[3];

/* A fake detail hook: counts per operation. */
static void
fake_detail(void *ctx, int op, const char *key, size_t nkey, bool hit)
{
	(void)ctx;
	(void)key;
	(void)nkey;
	(void)hit;
	detail_calls[op]++;
}

/* cache_memlimit resizes the store; slabs and lru answer as memcached
 * and hand their values to the tune hook; detail counts only while on. */
static void
test_tuning_commands(void **state)
{
	struct rig		*t = *state;
	struct store_stats	 ss;
	int			 on = 0;

	expect(t, "cache_memlimit 8\r\n", "OK\r\n");
	store_get_stats(t->st, &ss);
	assert_int_equal(ss.limit_maxbytes, 8u << 20);
	expect(t, "cache_memlimit 9 noreply\r\nversion\r\n",
	    "VERSION " CACHED_WIRE_VERSION "\r\n");
	store_get_stats(t->st, &ss);
	assert_int_equal(ss.limit_maxbytes, 9u << 20);
	expect(t, "slabs reassign 1 1\r\n",
	    "SAME src and dst class are identical\r\n");
	expect(t, "slabs reassign 1 0\r\n",
	    "NOSPARE source class has no spare pages\r\n");
	expect(t, "slabs reassign 1 2\r\n",
	    "BADCLASS invalid src or dst class id\r\n");
	expect(t, "slabs reassign -1 1\r\n",
	    "BADCLASS invalid src or dst class id\r\n");
	/* without a hook: accepted, not kept */
	expect(t, "slabs automove 2\r\n", "OK\r\n");
	t->env.tune = fake_tune;
	tune_calls = 0;
	expect(t, "slabs automove 2\r\n", "OK\r\n");
	assert_int_equal(last_tune.sub, PROTO_ADMIN_AUTOMOVE);
	assert_int_equal(last_tune.n1, 2);
	expect(t, "lru tune 10 25 0.5 3\r\n", "OK\r\n");
	assert_int_equal(last_tune.sub, PROTO_ADMIN_LRU_TUNE);
	assert_true(last_tune.f1 == 0.5 && last_tune.f2 == 3.0);
	expect(t, "lru mode flat\r\nlru temp_ttl 5 noreply\r\n", "OK\r\n");
	assert_int_equal(last_tune.sub, PROTO_ADMIN_LRU_TEMP_TTL);
	assert_int_equal(tune_calls, 4);
	expect(t, "slabs reassign 1 0\r\n",
	    "NOSPARE source class has no spare pages\r\n");
	assert_int_equal(tune_calls, 4);

	t->env.detail = fake_detail;
	t->env.detail_on = &on;
	memset(detail_calls, 0, sizeof detail_calls);
	expect(t, "set a:1 0 0 1\r\nx\r\nget a:1\r\n",
	    "STORED\r\nVALUE a:1 0 1\r\nx\r\nEND\r\n");
	assert_int_equal(detail_calls[0] + detail_calls[1] + detail_calls[2],
	    0);
	on = 1;
	expect(t, "set a:1 0 0 1\r\nx\r\nget a:1 b:2\r\ndelete a:1\r\n",
	    "STORED\r\nVALUE a:1 0 1\r\nx\r\nEND\r\nDELETED\r\n");
	assert_int_equal(detail_calls[0], 2);	/* STATS_DETAIL_GET */
	assert_int_equal(detail_calls[1], 1);	/* STATS_DETAIL_SET */
	assert_int_equal(detail_calls[2], 1);	/* STATS_DETAIL_DEL */
	t->env.detail = NULL;
	t->env.tune = NULL;
}

/* noreply leaves out every outcome but errors. */
static void
test_noreply(void **state)
{
	struct rig	*t = *state;
	char		 big[2 * ITEM_MAX + 64];
	int		 n;

	expect(t,
	    "set a 0 0 1 noreply\r\nx\r\n"
	    "add a 0 0 1 noreply\r\nx\r\n"
	    "replace nope 0 0 1 noreply\r\nx\r\n"
	    "append a 0 0 1 noreply\r\ny\r\n"
	    "prepend a 0 0 1 noreply\r\nw\r\n"
	    "cas a 0 0 1 1 noreply\r\nz\r\n"
	    "set n 0 0 1 noreply\r\n5\r\n"
	    "incr n 1 noreply\r\n"
	    "decr n 1 noreply\r\n"
	    "incr nope 1 noreply\r\n"
	    "touch a 0 noreply\r\n"
	    "touch nope 0 noreply\r\n"
	    "delete n noreply\r\n"
	    "delete n noreply\r\n"
	    "verbosity 0 noreply\r\n", "");
	expect(t, "get a\r\n", "VALUE a 0 3\r\nwxy\r\nEND\r\n");
	/* errors too: memcached 1.6.18 leaves out every reply to noreply */
	expect(t, "incr a 1 noreply\r\n", "");
	n = snprintf(big, sizeof big, "set a 0 0 %d noreply\r\n", ITEM_MAX + 1);
	memset(big + n, 'v', ITEM_MAX + 1);
	memcpy(big + n + ITEM_MAX + 1, "\r\n", 3);
	expect(t, big, "");
	expect(t, "set b 0 0 1 noreply\r\nxyz", "");
	assert_true(t->closed);
	expect(t, "flush_all noreply\r\nget a b\r\n", "END\r\n");
}

/* A value not followed by "\r\n": an error, nothing stored, close. */
static void
test_bad_chunk(void **state)
{
	struct rig		*t = *state;
	struct store_stats	 s;

	expect(t, "set a 0 0 3\r\nabcXYget a\r\n",
	    "CLIENT_ERROR bad data chunk\r\n");
	assert_true(t->closed);
	expect(t, "get a\r\n", "END\r\n");
	store_get_stats(t->st, &s);
	assert_int_equal(s.curr_items, 0);
	assert_int_equal(s.mem_bytes, 0);	/* the reserved item is freed */
}

/* A set refused at reserve swallows nbytes + 2 and deletes the old value;
 * add/replace/append/prepend/cas leave it. */
static void
test_refused_set(void **state)
{
	struct rig	*t = *state;
	char		 big[ITEM_MAX + 128];
	struct proto_req req;
	struct dispatch_state ds;
	size_t		 consumed;
	static const char *const cmds[] = { "add", "replace", "append",
	    "prepend", "cas" };

	expect(t, "set a 0 0 3\r\nold\r\n", "STORED\r\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int n = snprintf(big, sizeof big, "%s a 0 0 %d%s\r\n",
		    cmds[i], ITEM_MAX + 1, i == 4 ? " 1" : "");

		memset(big + n, 'v', ITEM_MAX + 1);
		memcpy(big + n + ITEM_MAX + 1, "\r\n", 3);
		expect(t, big, "SERVER_ERROR object too large for cache\r\n");
		assert_int_equal(t->swallowed, ITEM_MAX + 3);
		expect(t, "get a\r\n", "VALUE a 0 3\r\nold\r\nEND\r\n");
	}
	/* dispatch_request alone: SWALLOW with the data and its CRLF. */
	snprintf(big, sizeof big, "set a 0 0 %d\r\n", ITEM_MAX + 1);
	assert_int_equal(proto_text.parse(big, strlen(big), &req, &consumed),
	    PROTO_OK);
	memset(&ds, 0, sizeof ds);
	assert_int_equal(dispatch_request(&t->env, &req, &ds, &t->sink),
	    DISPATCH_SWALLOW);
	assert_int_equal(ds.swallow, (size_t)ITEM_MAX + 3);
	assert_null(ds.it);
	assert_string_equal(t->cap.buf,
	    "SERVER_ERROR object too large for cache\r\n");
	t->cap.len = 0;
	expect(t, "get a\r\n", "END\r\n");
	assert_int_equal(t->ts.store_too_large, 6);
}

/* A multi-key get whose output is full after every hit: each call with
 * the same state answers one more hit; every hit once, in order, and END
 * once, at the end. */
static void
test_multiget_resumes(void **state)
{
	struct rig		*t = *state;
	static const char	 line[] = "get k1 k2 nope k3 k4 nope2 k5 k1\r\n";
	struct proto_req	 req;
	struct dispatch_state	 ds;
	size_t			 consumed;
	enum dispatch_next	 next;
	unsigned		 calls = 0, hits_before;

	expect(t,
	    "set k1 1 0 2\r\nv1\r\nset k2 2 0 2\r\nv2\r\n"
	    "set k3 3 0 2\r\nv3\r\nset k4 4 0 2\r\nv4\r\n"
	    "set k5 5 0 2\r\nv5\r\n",
	    "STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n");
	assert_int_equal(proto_text.parse(line, sizeof line - 1, &req,
	    &consumed), PROTO_OK);
	memset(&ds, 0, sizeof ds);

	/* Full before it starts: nothing done, nothing counted. */
	t->cap.full = FULL_ALWAYS;
	assert_int_equal(dispatch_request(&t->env, &req, &ds, &t->sink),
	    DISPATCH_AGAIN);
	assert_int_equal(t->cap.len, 0);
	assert_int_equal(t->ts.cmd_get, 0);

	t->cap.full = FULL_AFTER_HIT;
	for (;;) {
		hits_before = t->cap.values;
		t->cap.step_hits = 0;
		next = dispatch_request(&t->env, &req, &ds, &t->sink);
		calls++;
		assert_true(calls <= 7);
		if (next == DISPATCH_DONE)
			break;
		assert_int_equal(next, DISPATCH_AGAIN);
		assert_int_equal(t->cap.values, hits_before + 1);
		assert_null(strstr(t->cap.buf, "END"));
	}
	/* Six hits, one a call, and a last call that finds the end. */
	assert_int_equal(calls, 7);
	assert_int_equal(t->cap.values, 6);
	assert_string_equal(t->cap.buf,
	    "VALUE k1 1 2\r\nv1\r\nVALUE k2 2 2\r\nv2\r\n"
	    "VALUE k3 3 2\r\nv3\r\nVALUE k4 4 2\r\nv4\r\n"
	    "VALUE k5 5 2\r\nv5\r\nVALUE k1 1 2\r\nv1\r\nEND\r\n");
	assert_int_equal(t->ts.cmd_get, 8);
	assert_int_equal(t->ts.get_hits, 6);
	assert_int_equal(t->ts.get_misses, 2);
	t->cap.len = 0;
	t->cap.buf[0] = '\0';

	/* The same through the conn.c-style driver. */
	expect(t, "get nope k2 k3\r\n",
	    "VALUE k2 2 2\r\nv2\r\nVALUE k3 3 2\r\nv3\r\nEND\r\n");
	assert_int_equal(t->steps, 3);
}

/* The counters of thread_stats, command by command. */
static void
test_counters(void **state)
{
	struct rig		*t = *state;
	struct thread_stats	 z;
	char			 line[128];

	memset(&z, 0, sizeof z);
	expect(t, "set a 0 0 1\r\n1\r\nadd a 0 0 1\r\n1\r\n"
	    "append a 0 0 1\r\n2\r\n", "STORED\r\nNOT_STORED\r\nSTORED\r\n");
	assert_int_equal(t->ts.cmd_set, 3);
	expect(t, "get a nope a\r\ngets nope\r\n",
	    "VALUE a 0 2\r\n12\r\nVALUE a 0 2\r\n12\r\nEND\r\nEND\r\n");
	assert_int_equal(t->ts.cmd_get, 4);
	assert_int_equal(t->ts.get_hits, 2);
	assert_int_equal(t->ts.get_misses, 2);
	snprintf(line, sizeof line, "cas a 0 0 1 %" PRIu64 "\r\nx\r\n",
	    cas_of(t, "a"));
	expect(t, line, "STORED\r\n");
	expect(t, line, "EXISTS\r\n");
	expect(t, "cas nope 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n");
	assert_int_equal(t->ts.cas_hits, 1);
	assert_int_equal(t->ts.cas_badval, 1);
	assert_int_equal(t->ts.cas_misses, 1);
	assert_int_equal(t->ts.cmd_set, 6);
	expect(t, "set n 0 0 1\r\n5\r\nincr n 1\r\nincr n 1\r\nincr nope 1\r\n"
	    "decr n 1\r\ndecr nope 1\r\ndecr nope 1\r\n",
	    "STORED\r\n6\r\n7\r\nNOT_FOUND\r\n6\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
	assert_int_equal(t->ts.incr_hits, 2);
	assert_int_equal(t->ts.incr_misses, 1);
	assert_int_equal(t->ts.decr_hits, 1);
	assert_int_equal(t->ts.decr_misses, 2);
	expect(t, "touch n 0\r\ntouch nope 0\r\ntouch nope 0\r\n",
	    "TOUCHED\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
	assert_int_equal(t->ts.cmd_touch, 3);
	assert_int_equal(t->ts.touch_hits, 1);
	assert_int_equal(t->ts.touch_misses, 2);
	expect(t, "delete n\r\ndelete n\r\n", "DELETED\r\nNOT_FOUND\r\n");
	assert_int_equal(t->ts.delete_hits, 1);
	assert_int_equal(t->ts.delete_misses, 1);
	expect(t, "flush_all\r\nflush_all 0 noreply\r\n", "OK\r\n");
	assert_int_equal(t->ts.cmd_flush, 2);
	/* What these did not touch. */
	assert_int_equal(t->ts.cmd_get, 4);
	assert_int_equal(t->ts.store_too_large, 0);
	assert_int_equal(t->ts.store_no_memory, 0);
	assert_int_equal(t->ts.bytes_read, 0);
}

/* gat/gats count as memcached counts them (proto_text.c,
 * process_get_command): a touch per key, touch_hits or touch_misses, and
 * neither cmd_get nor get_hits/get_misses. */
static void
test_gat_counters_as_memcached(void **state)
{
	struct rig *t = *state;

	expect(t, "set a 0 0 1\r\nx\r\n", "STORED\r\n");
	expect(t, "gat 0 a nope\r\ngats 0 nope\r\n",
	    "VALUE a 0 1\r\nx\r\nEND\r\nEND\r\n");
	assert_int_equal(t->ts.cmd_touch, 3);
	assert_int_equal(t->ts.touch_hits, 1);
	assert_int_equal(t->ts.touch_misses, 2);
	assert_int_equal(t->ts.cmd_get, 0);
	assert_int_equal(t->ts.get_hits, 0);
	assert_int_equal(t->ts.get_misses, 0);
}

/* A storage command refused before its data arrived is not a cmd_set in
 * memcached (set_cmds counts in complete_nread_ascii, once the value is
 * in); it counts store_too_large only. */
static void
test_refused_set_counters_as_memcached(void **state)
{
	struct rig	*t = *state;
	char		 big[ITEM_MAX + 64];
	int		 n;

	n = snprintf(big, sizeof big, "set a 0 0 %d\r\n", ITEM_MAX + 1);
	memset(big + n, 'v', ITEM_MAX + 1);
	memcpy(big + n + ITEM_MAX + 1, "\r\n", 3);
	expect(t, big, "SERVER_ERROR object too large for cache\r\n");
	assert_int_equal(t->ts.store_too_large, 1);
	assert_int_equal(t->ts.store_no_memory, 0);
	assert_int_equal(t->ts.cmd_set, 0);
}

/* ---- the binary protocol through the same dispatch (issue 12) ---- */

/* Appends a binary request to buf at *n. */
static void
bin_put(char *buf, size_t *n, uint8_t op, const char *key, const void *ext,
    size_t next, const char *val, size_t nval, uint64_t cas)
{
	unsigned char	*h = (unsigned char *)buf + *n;
	size_t		 nkey = key != NULL ? strlen(key) : 0;
	uint32_t	 body = (uint32_t)(next + nkey + nval);

	memset(h, 0, 24);
	h[0] = 0x80;
	h[1] = op;
	h[2] = (unsigned char)(nkey >> 8);
	h[3] = (unsigned char)nkey;
	h[4] = (unsigned char)next;
	for (int i = 0; i < 4; i++)
		h[8 + i] = (unsigned char)(body >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		h[16 + i] = (unsigned char)(cas >> (56 - 8 * i));
	memcpy(h + 12, "OPAQ", 4);
	if (next > 0)
		memcpy(h + 24, ext, next);
	if (nkey > 0)
		memcpy(h + 24 + next, key, nkey);
	if (nval > 0)
		memcpy(h + 24 + next + nkey, val, nval);
	*n += 24 + body;
}

/* Runs a binary stream as conn.c does: values are bare (no "\r\n"),
 * parser errors carry their length. */
static enum dispatch_next
run_bin(struct rig *t, const char *in, size_t len)
{
	enum dispatch_next	next = DISPATCH_DONE;
	size_t			pos = 0;

	t->sink.codec = &proto_bin;
	t->closed = false;
	t->swallowed = 0;
	while (pos < len) {
		struct proto_req	req;
		struct dispatch_state	ds;
		size_t			consumed = 0;
		enum proto_result	r;

		r = proto_bin.parse(in + pos, len - pos, &req, &consumed);
		assert_int_not_equal(r, PROTO_NEED_MORE);
		pos += consumed;
		if (r != PROTO_OK) {
			if (req.error != NULL)
				proto_out_copy(&t->cap.out, req.error,
				    req.nerror);
			if (r == PROTO_CLOSE) {
				t->closed = true;
				return DISPATCH_CLOSE;
			}
			pos += req.swallow;
			continue;
		}
		memset(&ds, 0, sizeof ds);
		next = dispatch_request(&t->env, &req, &ds, &t->sink);
		assert_int_not_equal(next, DISPATCH_AGAIN);
		if (next == DISPATCH_VALUE) {
			size_t n = item_nbytes(ds.it);

			assert_true(req.bare_value);
			assert_true(pos + n <= len);
			memcpy(item_value_mut(ds.it), in + pos, n);
			next = dispatch_value(&t->env, &req, &ds, "\r\n",
			    &t->sink);
			pos += n;
		} else if (next == DISPATCH_SWALLOW) {
			t->swallowed = ds.swallow;
			pos += ds.swallow;
		}
		if (next == DISPATCH_CLOSE) {
			t->closed = true;
			break;
		}
	}
	return next;
}

/* The status and body of the i-th response in the capture; -1 when
 * there are fewer. */
static int
bin_status(struct rig *t, int i, const char **body, size_t *nbody)
{
	const unsigned char	*p = (const unsigned char *)t->cap.buf;
	size_t			 off = 0;

	for (;;) {
		size_t blen;

		if (off + 24 > t->cap.len)
			return -1;
		assert_int_equal(p[off], 0x81);
		assert_memory_equal(p + off + 12, "OPAQ", 4);
		blen = (size_t)p[off + 8] << 24 | (size_t)p[off + 9] << 16 |
		    (size_t)p[off + 10] << 8 | p[off + 11];
		if (i-- == 0) {
			if (body != NULL) {
				*body = t->cap.buf + off + 24;
				*nbody = blen;
			}
			return p[off + 6] << 8 | p[off + 7];
		}
		off += 24 + blen;
	}
}

/* Empties the capture. */
static void
cap_reset(struct rig *t)
{
	t->cap.len = 0;
	t->cap.buf[0] = '\0';
}

/* A refused binary store skips exactly its value (no "\r\n" after it),
 * deletes the old value as memcached does, and the next request runs. */
static void
test_bin_refused_set(void **state)
{
	struct rig		*t = *state;
	static char		 in[ITEM_MAX * 3];
	static const char	 ext[8] = { 0 };
	static char		 big[ITEM_MAX + 10];
	size_t			 n = 0;
	const char		*body;
	size_t			 nbody;

	memset(big, 'v', sizeof big);
	bin_put(in, &n, 0x01, "k", ext, 8, "old", 3, 0);
	bin_put(in, &n, 0x01, "k", ext, 8, big, sizeof big, 0);
	bin_put(in, &n, 0x00, "k", NULL, 0, NULL, 0, 0);
	run_bin(t, in, n);
	assert_false(t->closed);
	assert_int_equal(t->swallowed, sizeof big);
	assert_int_equal(bin_status(t, 0, NULL, NULL), 0);
	assert_int_equal(bin_status(t, 1, &body, &nbody), 0x03);
	assert_int_equal(nbody, 10);
	assert_memory_equal(body, "Too large.", 10);
	assert_int_equal(bin_status(t, 2, &body, &nbody), 0x01);
	assert_memory_equal(body, "Not found", 9);
	assert_int_equal(bin_status(t, 3, NULL, NULL), -1);
	assert_int_equal(t->ts.store_too_large, 1);
	assert_int_equal(t->ts.cmd_set, 1);
}

/* Gets: misses reported per key through the codec's miss(), quiet
 * misses left out, counted as memcached counts them. */
static void
test_bin_get(void **state)
{
	struct rig		*t = *state;
	static const char	 ext[8] = { 0, 0, 0, 9, 0, 0, 0, 0 };
	static const char	 texp[4] = { 0 };
	char			 in[512];
	size_t			 n = 0, nbody;
	const char		*body;

	bin_put(in, &n, 0x01, "a b", ext, 8, "val", 3, 0);
	bin_put(in, &n, 0x0c, "a b", NULL, 0, NULL, 0, 0);
	bin_put(in, &n, 0x09, "nope", NULL, 0, NULL, 0, 0);
	bin_put(in, &n, 0x0c, "nope", NULL, 0, NULL, 0, 0);
	bin_put(in, &n, 0x1c, "a b", texp, 4, NULL, 0, 0);
	bin_put(in, &n, 0x1d, "nope", texp, 4, NULL, 0, 0);
	run_bin(t, in, n);
	/* getk: flags, the key (holding a space: one key), the value */
	assert_int_equal(bin_status(t, 1, &body, &nbody), 0);
	assert_int_equal(nbody, 4 + 3 + 3);
	assert_memory_equal(body, "\0\0\0\x09" "a bval", 10);
	/* getq's miss: nothing; getk's miss: the key */
	assert_int_equal(bin_status(t, 2, &body, &nbody), 0x01);
	assert_int_equal(nbody, 4);
	assert_memory_equal(body, "nope", 4);
	/* touch: flags, no value */
	assert_int_equal(bin_status(t, 3, &body, &nbody), 0);
	assert_int_equal(nbody, 4);
	assert_int_equal(bin_status(t, 4, &body, &nbody), 0x01);
	assert_int_equal(bin_status(t, 5, NULL, NULL), -1);
	assert_int_equal(t->ts.cmd_get, 3);
	assert_int_equal(t->ts.get_hits, 1);
	assert_int_equal(t->ts.get_misses, 2);
	assert_int_equal(t->ts.cmd_touch, 2);
	assert_int_equal(t->ts.touch_hits, 1);
	assert_int_equal(t->ts.touch_misses, 1);
}

/* incr/decr: created with the initial value unless the expiration is
 * 0xffffffff, a CAS with the new value, non-numeric refused. */
static void
test_bin_arith(void **state)
{
	struct rig		*t = *state;
	static const char	 create[20] = { [7] = 5, [15] = 100 };
	static const char	 nocreate[20] = { [7] = 5, [16] = (char)0xff,
				    [17] = (char)0xff, [18] = (char)0xff,
				    [19] = (char)0xff };
	static const char	 ext[8] = { 0 };
	char			 in[512];
	size_t			 n = 0, nbody;
	const char		*body;

	bin_put(in, &n, 0x05, "n", nocreate, 20, NULL, 0, 0);
	bin_put(in, &n, 0x05, "n", create, 20, NULL, 0, 0);
	bin_put(in, &n, 0x05, "n", create, 20, NULL, 0, 0);
	bin_put(in, &n, 0x06, "n", create, 20, NULL, 0, 0);
	bin_put(in, &n, 0x01, "s", ext, 8, "abc", 3, 0);
	bin_put(in, &n, 0x05, "s", create, 20, NULL, 0, 0);
	run_bin(t, in, n);
	assert_int_equal(bin_status(t, 0, NULL, NULL), 0x01);
	assert_int_equal(bin_status(t, 1, &body, &nbody), 0);
	assert_memory_equal(body, "\0\0\0\0\0\0\0\x64", 8);
	assert_int_equal(bin_status(t, 2, &body, &nbody), 0);
	assert_memory_equal(body, "\0\0\0\0\0\0\0\x69", 8);
	assert_int_equal(bin_status(t, 3, &body, &nbody), 0);
	assert_memory_equal(body, "\0\0\0\0\0\0\0\x64", 8);
	assert_int_equal(bin_status(t, 5, &body, &nbody), 0x06);
	assert_int_equal(t->ts.incr_misses, 1);
	assert_int_equal(t->ts.incr_hits, 1);
	assert_int_equal(t->ts.decr_hits, 1);
}

/* A fake user list: "user"/"pass". */
static bool
fake_plain(void *ctx, const char *msg, size_t n)
{
	(void)ctx;
	return n == 10 && memcmp(msg, "\0user\0pass", 10) == 0;
}

/* With SASL on, only the SASL commands and version run before login;
 * anything else is refused and closes. */
static void
test_bin_auth(void **state)
{
	struct rig	*t = *state;
	bool		 authed = false;
	char		 in[512];
	size_t		 n = 0;

	t->env.sasl_plain = fake_plain;
	t->env.authenticated = &authed;
	bin_put(in, &n, 0x0b, NULL, NULL, 0, NULL, 0, 0);
	bin_put(in, &n, 0x20, NULL, NULL, 0, NULL, 0, 0);
	bin_put(in, &n, 0x21, "PLAIN", NULL, 0, "\0user\0nope", 10, 0);
	bin_put(in, &n, 0x0a, NULL, NULL, 0, NULL, 0, 0);
	bin_put(in, &n, 0x0b, NULL, NULL, 0, NULL, 0, 0);
	assert_int_equal(run_bin(t, in, n), DISPATCH_CLOSE);
	assert_int_equal(bin_status(t, 0, NULL, NULL), 0);
	assert_int_equal(bin_status(t, 1, NULL, NULL), 0);
	assert_int_equal(bin_status(t, 2, NULL, NULL), 0x20);
	assert_int_equal(bin_status(t, 3, NULL, NULL), 0x20);
	assert_int_equal(bin_status(t, 4, NULL, NULL), -1);
	assert_false(authed);
	cap_reset(t);
	n = 0;
	bin_put(in, &n, 0x21, "PLAIN", NULL, 0, "\0user\0pass", 10, 0);
	bin_put(in, &n, 0x0a, NULL, NULL, 0, NULL, 0, 0);
	assert_int_equal(run_bin(t, in, n), DISPATCH_DONE);
	assert_true(authed);
	assert_int_equal(bin_status(t, 0, NULL, NULL), 0);
	assert_int_equal(bin_status(t, 1, NULL, NULL), 0);
	assert_int_equal(t->ts.auth_cmds, 2);
	assert_int_equal(t->ts.auth_errors, 1);
}

/* A fake text login: "user pass" only; 2 (format) without a space. */
static int
fake_login(void *ctx, const char *data, size_t n)
{
	(void)ctx;
	if (memchr(data, ' ', n) == NULL)
		return 2;
	return n == 9 && memcmp(data, "user pass", 9) == 0 ? 0 : 1;
}

/* -Y text login: before it every request is refused and the connection
 * stays open; a set is the login, its value never stored, its scratch
 * item freed; noreply is not honoured. */
static void
test_text_login(void **state)
{
	struct rig		*t = *state;
	struct store_stats	 s;
	bool			 authed = false;

	t->env.login = fake_login;
	t->env.authenticated = &authed;
	expect(t, "get a\r\nversion\r\nmn\r\nadd a 0 0 1 noreply\r\n",
	    "CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR unauthenticated\r\n"
	    "CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR unauthenticated\r\n");
	assert_false(t->closed);
	expect(t, "set a 0 0 9 noreply\r\nuser nope\r\n"
	    "set a 0 0 8\r\nuserpass\r\nset a 0 0 4\r\nuserXY",
	    "CLIENT_ERROR authentication failure\r\n"
	    "CLIENT_ERROR bad authentication token format\r\n"
	    "CLIENT_ERROR bad command line termination\r\n");
	assert_false(authed);
	assert_false(t->closed);
	expect(t, "set a 0 0 9\r\nuser pass\r\nget a\r\n",
	    "STORED\r\nEND\r\n");
	assert_true(authed);
	assert_int_equal(t->ts.auth_cmds, 2);
	assert_int_equal(t->ts.auth_errors, 1);
	store_get_stats(t->st, &s);
	assert_int_equal(s.curr_items, 0);
	assert_int_equal(s.mem_bytes, 0);
	expect(t, "set a 0 0 1 noreply\r\nx\r\nget a\r\n",
	    "VALUE a 0 1\r\nx\r\nEND\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_storage_replies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_other_replies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stats_shutdown_quit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tuning_commands, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_noreply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_chunk, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_text_login, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused_set, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_multiget_resumes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_counters, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_gat_counters_as_memcached,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_refused_set_counters_as_memcached, setup, teardown),
	
		cmocka_unit_test_setup_teardown(test_storage_replies, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_other_replies, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stats_shutdown_quit, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tuning_commands, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_noreply, setup_copy, teardown),
		cmocka_unit_test_setup_teardown(test_bad_chunk, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused_set, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_multiget_resumes, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_counters, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_gat_counters_as_memcached,
		    setup_copy, teardown),
		cmocka_unit_test_setup_teardown(
		    test_refused_set_counters_as_memcached, setup_copy, teardown),
		cmocka_unit_test_setup_teardown(test_bin_refused_set, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bin_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bin_get, setup_copy,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bin_arith, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bin_auth, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
