/*
 * test_outq.c -- cmocka unit tests of server/outq.c, the output queue,
 * without sockets: outq_flush writes through a fake writer that takes at
 * most `per_call` bytes a call and `budget` bytes in all before it says
 * EAGAIN (or fails, or is interrupted), and keeps every byte it took.
 *
 * Data structure: `struct rig` is the fake writer's record (the bytes
 * written, in order, and its limits) plus a table of reference tokens:
 * for each, how often it was released and the stream offset its bytes
 * end at, so a release can be checked to come only after those bytes
 * were written (or from outq_free / a failed queue, which drop them).
 *
 * What is checked: copies coalesce into one iovec; references are
 * released exactly once, after their last byte is written, also when a
 * write splits their iovec; writev batches of at most 1024 iovecs; the
 * soft limit; the reset keeping the first chunk; zero-length references;
 * the failed state after an allocation failure; and, for random
 * interleavings of copy / ref / space+commit with random write sizes
 * (fixed seed), that the bytes written are everything queued, in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"

#define NTOK		20000
#define WRITEV_MAX	1024	/* what outq must not pass to one writev */

struct rig {
	/* the fake writer */
	char		*out;
	size_t		 len;
	size_t		 cap;
	size_t		 per_call;	/* bytes taken per call at most */
	size_t		 budget;	/* bytes until EAGAIN */
	int		 fail_errno;	/* nonzero: every call fails so */
	int		 eintr;		/* calls still to interrupt */
	unsigned	 calls;
	int		 max_cnt;
	/* the references */
	int		 tok[NTOK];
	unsigned	 released[NTOK];
	size_t		 end[NTOK];	/* stream offset its bytes end at */
	bool		 dropping;	/* outq_free: unsent ones go too */
	size_t		 queued;	/* bytes queued so far */
	struct outq	 q;
};

/* ASan would abort on the huge allocation the failure test makes. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* The release callback: counts, and checks the bytes went out first. */
static void
rig_release(void *ctx, void *ref)
{
	struct rig	*r = ctx;
	size_t		 i = (size_t)((int *)ref - r->tok);

	assert_true(i < NTOK);
	r->released[i]++;
	if (!r->dropping && !r->q.failed)
		assert_true(r->len >= r->end[i]);
}

/* The fake writev: takes what per_call and budget allow. */
static ssize_t
rig_write(void *ctx, const struct iovec *iov, int cnt)
{
	struct rig	*r = ctx;
	size_t		 want, took = 0;

	r->calls++;
	assert_true(cnt > 0 && cnt <= WRITEV_MAX);
	if (cnt > r->max_cnt)
		r->max_cnt = cnt;
	if (r->eintr > 0) {
		r->eintr--;
		errno = EINTR;
		return -1;
	}
	if (r->fail_errno != 0) {
		errno = r->fail_errno;
		return -1;
	}
	if (r->budget == 0) {
		errno = EAGAIN;
		return -1;
	}
	want = r->per_call < r->budget ? r->per_call : r->budget;
	for (int i = 0; i < cnt && took < want; i++) {
		size_t n = iov[i].iov_len;

		assert_true(n > 0);
		if (n > want - took)
			n = want - took;
		if (r->len + n > r->cap) {
			r->cap = (r->len + n) * 2;
			r->out = realloc(r->out, r->cap);
			assert_non_null(r->out);
		}
		memcpy(r->out + r->len, iov[i].iov_base, n);
		r->len += n;
		took += n;
	}
	r->budget -= took;
	return (ssize_t)took;
}

/* A fresh rig with an unlimited writer. */
static struct rig *
rig_new(void)
{
	struct rig *r = calloc(1, sizeof *r);

	assert_non_null(r);
	r->per_call = SIZE_MAX;
	r->budget = SIZE_MAX;
	outq_init(&r->q, rig_release, r);
	return r;
}

/* Frees the queue (dropping what is unsent) and the rig. */
static void
rig_free(struct rig *r)
{
	r->dropping = true;
	outq_free(&r->q);
	free(r->out);
	free(r);
}

/* Queues a copy and records it in the expected stream. */
static void
put_copy(struct rig *r, const char *s, size_t n)
{
	assert_true(outq_copy(&r->q, s, n));
	r->queued += n;
}

/* Queues n bytes by reference under token i. */
static void
put_ref(struct rig *r, unsigned i, const char *data, size_t n)
{
	r->queued += n;
	r->end[i] = n > 0 ? r->queued : 0;	/* empty: goes back at once */
	outq_ref(&r->q, data, n, &r->tok[i]);
}

/* Flushes with a byte budget; returns what outq_flush said. */
static bool
flush_budget(struct rig *r, size_t per_call, size_t budget)
{
	r->per_call = per_call;
	r->budget = budget;
	return outq_flush(&r->q, rig_write, r);
}

/* Copies, and text composed in outq_space, coalesce into one iovec. */
static void
test_copies_coalesce(void **state)
{
	struct rig	*r = rig_new();
	char		*p;

	(void)state;
	put_copy(r, "VALUE ", 6);
	put_copy(r, "k 0 1\r\n", 7);
	p = outq_space(&r->q, 64);
	assert_non_null(p);
	memcpy(p, "v\r\nEND\r\nunused", 14);
	outq_commit(&r->q, 8);
	r->queued += 8;
	outq_commit(&r->q, 0);
	assert_int_equal(r->q.n, 1);
	assert_int_equal(r->q.iov[0].iov_len, 21);
	assert_int_equal(r->q.pending, 21);
	assert_false(outq_empty(&r->q));
	assert_true(flush_budget(r, SIZE_MAX, SIZE_MAX));
	assert_int_equal(r->calls, 1);
	assert_int_equal(r->len, 21);
	assert_memory_equal(r->out, "VALUE k 0 1\r\nv\r\nEND\r\n", 21);
	assert_true(outq_empty(&r->q));
	assert_int_equal(r->q.pending, 0);
	assert_int_equal(r->q.written, 21);
	rig_free(r);
}

/* A reference goes back once its last byte is written, not before, even
 * when writes split its iovec; exactly once. */
static void
test_ref_released_after_written(void **state)
{
	struct rig	*r = rig_new();
	static const char value[] = "0123456789abcdefghij";

	(void)state;
	put_copy(r, "HDR\r\n", 5);
	put_ref(r, 0, value, 20);
	put_copy(r, "\r\n", 2);
	put_ref(r, 1, value, 3);
	assert_int_equal(r->q.n, 4);	/* a ref breaks the coalescing */
	/* 3 bytes a call, 10 in all: the first value half written. */
	assert_true(flush_budget(r, 3, 10));
	assert_int_equal(r->len, 10);
	assert_int_equal(r->released[0], 0);
	assert_false(outq_empty(&r->q));
	/* Up to the value's last byte but one. */
	assert_true(flush_budget(r, 7, 14));
	assert_int_equal(r->len, 24);
	assert_int_equal(r->released[0], 0);
	/* Its last byte. */
	assert_true(flush_budget(r, 1, 1));
	assert_int_equal(r->released[0], 1);
	assert_int_equal(r->released[1], 0);
	/* The rest. */
	assert_true(flush_budget(r, 4, SIZE_MAX));
	assert_true(outq_empty(&r->q));
	assert_int_equal(r->released[0], 1);
	assert_int_equal(r->released[1], 1);
	assert_int_equal(r->len, 30);
	assert_memory_equal(r->out, "HDR\r\n0123456789abcdefghij\r\n012", 30);
	rig_free(r);
}

/* outq_free releases every reference not yet written, once; a failing
 * writer leaves them queued; EINTR is retried. */
static void
test_free_releases_unsent(void **state)
{
	struct rig	*r = rig_new();
	static const char value[] = "xxxxxxxxxx";
	unsigned	 rel[4];

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		put_ref(r, i, value, 10);
		put_copy(r, "\r\n", 2);
	}
	r->eintr = 2;
	assert_true(flush_budget(r, SIZE_MAX, 15));	/* ref 0 done */
	assert_int_equal(r->eintr, 0);
	assert_int_equal(r->released[0], 1);
	r->fail_errno = EPIPE;
	assert_false(flush_budget(r, SIZE_MAX, SIZE_MAX));
	assert_int_equal(errno, EPIPE);
	assert_int_equal(r->released[1], 0);
	r->dropping = true;
	outq_free(&r->q);
	memcpy(rel, r->released, sizeof rel);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(rel[i], 1);
	free(r->out);
	free(r);
}

/* More iovecs than one writev takes go out in batches of at most 1024. */
static void
test_writev_batches(void **state)
{
	struct rig	*r = rig_new();
	static char	 pool[NTOK];
	size_t		 n = 3000;
	char		*want;

	(void)state;
	for (size_t i = 0; i < NTOK; i++)
		pool[i] = (char)('a' + i % 26);
	want = malloc(2 * n);
	assert_non_null(want);
	for (size_t i = 0; i < n; i++) {
		put_ref(r, (unsigned)i, pool + i, 1);
		put_copy(r, "-", 1);
		want[2 * i] = pool[i];
		want[2 * i + 1] = '-';
	}
	assert_int_equal(r->q.n, 2 * n);
	assert_true(flush_budget(r, SIZE_MAX, SIZE_MAX));
	assert_int_equal(r->max_cnt, WRITEV_MAX);
	assert_int_equal(r->calls, (2 * n + WRITEV_MAX - 1) / WRITEV_MAX);
	assert_int_equal(r->len, 2 * n);
	assert_memory_equal(r->out, want, 2 * n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(r->released[i], 1);
	free(want);
	rig_free(r);
}

/* outq_full: at the soft limit of bytes queued and not sent, and no
 * longer once some went out. */
static void
test_soft_limit(void **state)
{
	struct rig	*r = rig_new();
	static char	 big[64 * 1024];
	size_t		 left = OUTQ_SOFT_LIMIT - 1;
	unsigned	 i = 0;

	(void)state;
	assert_false(outq_full(&r->q));
	while (left > 0) {
		size_t n = left < sizeof big ? left : sizeof big;

		put_ref(r, i++, big, n);
		left -= n;
	}
	assert_false(outq_full(&r->q));
	put_copy(r, "x", 1);
	assert_true(outq_full(&r->q));
	assert_int_equal(r->q.pending, OUTQ_SOFT_LIMIT);
	assert_true(flush_budget(r, SIZE_MAX, 1));
	assert_false(outq_full(&r->q));
	put_copy(r, "y", 1);
	assert_true(outq_full(&r->q));
	assert_true(flush_budget(r, 4096, SIZE_MAX));
	assert_false(outq_full(&r->q));
	assert_true(outq_empty(&r->q));
	assert_int_equal(r->len, OUTQ_SOFT_LIMIT + 1);
	rig_free(r);
}

/* Once all is written the queue starts over in its first chunk: a
 * connection answering small requests allocates nothing per request. */
static void
test_reset_keeps_first_chunk(void **state)
{
	struct rig	*r = rig_new();
	static char	 big[40 * 1024];
	char		*first, *p;

	(void)state;
	first = outq_space(&r->q, 10);
	assert_non_null(first);
	outq_commit(&r->q, 0);
	put_copy(r, "hello\r\n", 7);
	assert_true(flush_budget(r, SIZE_MAX, SIZE_MAX));
	assert_ptr_equal(outq_space(&r->q, 10), first);
	/* Several chunks' worth, half sent: the first chunk is still busy. */
	for (int i = 0; i < 3; i++)
		put_copy(r, big, sizeof big);
	assert_true(flush_budget(r, SIZE_MAX, 5));
	p = outq_space(&r->q, 10);
	assert_ptr_not_equal(p, first);
	assert_true(flush_budget(r, SIZE_MAX, SIZE_MAX));
	assert_true(outq_empty(&r->q));
	assert_int_equal(r->q.n, 0);
	assert_ptr_equal(outq_space(&r->q, 10), first);
	assert_ptr_equal(r->q.cur, r->q.head);
	assert_int_equal(r->len, 7 + 3 * sizeof big);
	rig_free(r);
}

/* A zero-length reference is released at once and queues nothing. */
static void
test_zero_length_ref(void **state)
{
	struct rig	*r = rig_new();

	(void)state;
	put_copy(r, "a", 1);
	put_ref(r, 0, "", 0);
	assert_int_equal(r->released[0], 1);
	put_copy(r, "b", 1);
	assert_int_equal(r->q.n, 1);		/* a and b still coalesce */
	assert_int_equal(r->q.pending, 2);
	assert_true(flush_budget(r, SIZE_MAX, SIZE_MAX));
	assert_int_equal(r->released[0], 1);
	assert_memory_equal(r->out, "ab", 2);
	rig_free(r);
}

/* After memory ran out the queue is failed: it takes nothing more and
 * releases references at once; those queued before still go back once. */
static void
test_failed_after_alloc_failure(void **state)
{
	struct rig	*r = rig_new();
	static const char value[] = "value";

	(void)state;
	put_copy(r, "x", 1);
	put_ref(r, 0, value, 5);
	assert_false(r->q.failed);
	/* More than any malloc gives, without overflowing its size. */
	assert_null(outq_space(&r->q, (size_t)1 << 60));
	assert_true(r->q.failed);
	assert_false(outq_copy(&r->q, "y", 1));
	assert_null(outq_space(&r->q, 1));
	outq_commit(&r->q, 1);
	put_ref(r, 1, value, 5);
	assert_int_equal(r->released[1], 1);
	assert_int_equal(r->released[0], 0);
	assert_int_equal(r->q.n, 2);
	r->dropping = true;
	outq_free(&r->q);
	assert_int_equal(r->released[0], 1);
	assert_int_equal(r->released[1], 1);
	free(r->out);
	free(r);
}

/* xorshift64*: the random tests' fixed-seed generator. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* A random number in [0, n). */
static size_t
rnd_below(uint64_t *s, size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd(s) % n);
}

/* Random sizes: mostly small, sometimes a chunk or more. */
static size_t
rnd_size(uint64_t *s)
{
	switch (rnd_below(s, 8)) {
	case 0:
		return rnd_below(s, 40 * 1024);
	case 1:
		return 0;
	default:
		return rnd_below(s, 200);
	}
}

/* Random interleavings of copy, ref and space+commit with random partial
 * flushes: the bytes written are exactly everything queued, in order, and
 * each reference goes back once, after its bytes. */
static void
test_random_interleavings(void **state)
{
	static char	 pool[64 * 1024];
	uint64_t	 seed = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (size_t i = 0; i < sizeof pool; i++)
		pool[i] = (char)rnd(&seed);
	for (int iter = 0; iter < 300; iter++) {
		struct rig	*r = rig_new();
		char		*want = NULL;
		size_t		 nwant = 0, capwant = 0;
		unsigned	 ntok = 0;
		int		 nops = 1 + (int)rnd_below(&seed, 400);

		for (int op = 0; op < nops; op++) {
			size_t		 n = rnd_size(&seed);
			size_t		 off = rnd_below(&seed,
					     sizeof pool - n + 1);
			const char	*src = pool + off;
			char		*p;
			size_t		 used;

			if (nwant + n > capwant) {
				capwant = (nwant + n) * 2;
				want = realloc(want, capwant);
				assert_non_null(want);
			}
			switch (rnd_below(&seed, 4)) {
			case 0:
				put_copy(r, src, n);
				break;
			case 1:
				assert_true(ntok < NTOK);
				put_ref(r, ntok++, src, n);
				break;
			case 2:
				p = outq_space(&r->q, n);
				assert_non_null(p);
				used = rnd_below(&seed, n + 1);
				memcpy(p, src, used);
				/* Scribble past what is committed. */
				memset(p + used, '#', n - used);
				outq_commit(&r->q, used);
				r->queued += used;
				n = used;
				break;
			default:
				assert_true(flush_budget(r,
				    1 + rnd_below(&seed, 3000),
				    rnd_below(&seed, 8000)));
				r->eintr = (int)rnd_below(&seed, 2);
				n = 0;
				break;
			}
			if (n > 0)
				memcpy(want + nwant, src, n);
			nwant += n;
			assert_int_equal(r->q.pending + r->len, nwant);
		}
		assert_true(flush_budget(r, 1 + rnd_below(&seed, 70000),
		    SIZE_MAX));
		assert_true(outq_empty(&r->q));
		assert_int_equal(r->len, nwant);
		assert_int_equal(r->q.written, nwant);
		if (nwant > 0)
			assert_memory_equal(r->out, want, nwant);
		for (unsigned i = 0; i < ntok; i++)
			assert_int_equal(r->released[i], 1);
		free(want);
		rig_free(r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copies_coalesce),
		cmocka_unit_test(test_ref_released_after_written),
		cmocka_unit_test(test_free_releases_unsent),
		cmocka_unit_test(test_writev_batches),
		cmocka_unit_test(test_soft_limit),
		cmocka_unit_test(test_reset_keeps_first_chunk),
		cmocka_unit_test(test_zero_length_ref),
		cmocka_unit_test(test_failed_after_alloc_failure),
		cmocka_unit_test(test_random_interleavings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
