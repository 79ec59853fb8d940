/*
 * test_proto.c -- unit tests for the protocol parser and composer (cmocka).
 *
 * Every input is copied into a heap buffer of exactly its length before it
 * is parsed, so under AddressSanitizer a parser that reads one byte past
 * the end (or leans on a NUL terminator) fails the test.
 *
 * Data structure: tables.  ok_cases lists valid requests with every field
 * the parser should fill; they are parsed whole, split at every byte and
 * pipelined back to back.  bad_cases lists malformed lines with their exact
 * result, reply and swallow count; num_cases sweeps bad and edge numbers
 * through every numeric position.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define ERR	"ERROR\r\n"
#define FMT	"CLIENT_ERROR bad command line format\r\n"
#define DELTA	"CLIENT_ERROR invalid numeric delta argument\r\n"
#define EXPT	"CLIENT_ERROR invalid exptime argument\r\n"
#define DELUSE	"CLIENT_ERROR bad command line format.  " \
		"Usage: delete <key> [noreply]\r\n"

/* ---- helpers ---------------------------------------------------------- */

/* One parse of an exact-size heap copy of some input. */
struct parsed {
	char			*buf;
	size_t			 len;
	struct proto_req	 req;
	size_t			 consumed;
	enum proto_result	 r;
};

/* Parses n bytes of s from an exact-size heap copy; checks the invariants
 * every result must keep. */
static enum proto_result
parse_n(struct parsed *ps, const char *s, size_t n)
{
	ps->buf = malloc(n > 0 ? n : 1);
	assert_non_null(ps->buf);
	memcpy(ps->buf, s, n);
	ps->len = n;
	ps->consumed = 12345;
	ps->r = proto_parse(ps->buf, n, &ps->req, &ps->consumed);
	switch (ps->r) {
	case PROTO_NEED_MORE:
		assert_int_equal(ps->consumed, 0);
		break;
	case PROTO_OK:
		assert_true(ps->consumed > 0 && ps->consumed <= n);
		assert_int_equal(ps->buf[ps->consumed - 1], '\n');
		assert_null(ps->req.error);
		assert_int_equal(ps->req.swallow, 0);
		break;
	case PROTO_BAD:
		assert_true(ps->consumed > 0 && ps->consumed <= n);
		assert_int_equal(ps->buf[ps->consumed - 1], '\n');
		assert_non_null(ps->req.error);
		break;
	case PROTO_CLOSE:
		assert_true(ps->consumed > 0 && ps->consumed <= n);
		break;
	default:
		fail_msg("result %d out of range", (int)ps->r);
	}
	return ps->r;
}

/* Parses a NUL-terminated string. */
static enum proto_result
parse_s(struct parsed *ps, const char *s)
{
	return parse_n(ps, s, strlen(s));
}

/* Renders n bytes of s printable (C escapes) for failure messages; the
 * result lives in a static buffer until the next call. */
static const char *
esc(const char *s, size_t n)
{
	static char out[512];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 8 < sizeof(out); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			o += (size_t)snprintf(out + o, 8, "\\r");
		else if (c == '\n')
			o += (size_t)snprintf(out + o, 8, "\\n");
		else if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"')
			o += (size_t)snprintf(out + o, 8, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (o + 8 >= sizeof(out))
		o += (size_t)snprintf(out + o, 8, "...");
	out[o] = '\0';
	return out;
}

/* Fails the running test, naming the input that broke the condition. */
#define CHECK(cond, input, n) do {					\
	if (!(cond))							\
		fail_msg("%s:%d: %s, input \"%s\"", __FILE__, __LINE__,	\
		    #cond, esc((input), (n)));				\
} while (0)

/* True when [p, p + n) holds exactly the string want (NULL: p NULL). */
static bool
span_eq(const char *p, size_t n, const char *want)
{
	if (want == NULL)
		return p == NULL && n == 0;
	return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

/* Releases the heap copy. */
static void
parsed_free(struct parsed *ps)
{
	free(ps->buf);
	ps->buf = NULL;
}

/* Asserts that [p, p + n) holds exactly the string want (NULL: p NULL). */
static void
assert_span(const char *p, size_t n, const char *want)
{
	if (want == NULL) {
		assert_null(p);
		assert_int_equal(n, 0);
		return;
	}
	assert_non_null(p);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

/* Collects a multi-key request's keys, joined by single spaces, in out. */
static void
join_keys(const struct proto_req *req, char *out, size_t cap)
{
	size_t cursor = 0, nkey, used = 0;
	const char *key;

	out[0] = '\0';
	while (proto_next_key(req, &cursor, &key, &nkey)) {
		assert_true(nkey >= 1 && nkey <= PROTO_KEY_MAX);
		assert_true(used + nkey + 2 <= cap);
		if (used > 0)
			out[used++] = ' ';
		memcpy(out + used, key, nkey);
		used += nkey;
		out[used] = '\0';
	}
	assert_int_equal(cursor, req->nkeys_bytes);
}

/* ---- valid requests --------------------------------------------------- */

/* A valid request and every field the parser should fill.  keys is the key
 * list as proto_next_key yields it, joined by single spaces. */
struct ok_case {
	const char	*line;
	enum proto_cmd	 cmd;
	const char	*key;
	const char	*keys;
	uint32_t	 flags;
	int64_t		 exptime;
	uint32_t	 nbytes;
	uint64_t	 cas;
	uint64_t	 delta;
	int64_t		 delay;
	uint32_t	 level;
	bool		 noreply;
	const char	*arg;		/* NULL means "" */
	const char	*raw_keys;	/* req->keys span, if it differs */
};

static const struct ok_case ok_cases[] = {
	{ "get foo\r\n", PROTO_CMD_GET, .keys = "foo" },
	{ "get foo\n", PROTO_CMD_GET, .keys = "foo" },
	{ "get a b c\r\n", PROTO_CMD_GET, .keys = "a b c" },
	{ "get  a   b  \r\n", PROTO_CMD_GET, .keys = "a b",
	    .raw_keys = "a   b" },
	{ "  get foo\r\n", PROTO_CMD_GET, .keys = "foo" },
	{ "get \xc3\xa9t\xc3\xa9 \x80\xff\r\n", PROTO_CMD_GET,
	    .keys = "\xc3\xa9t\xc3\xa9 \x80\xff" },
	{ "get ~!@#$%^&*()_+{}|:\"<>?\r\n", PROTO_CMD_GET,
	    .keys = "~!@#$%^&*()_+{}|:\"<>?" },
	{ "gets foo bar\r\n", PROTO_CMD_GETS, .keys = "foo bar" },
	{ "gat 100 foo\r\n", PROTO_CMD_GAT, .exptime = 100, .keys = "foo" },
	{ "gat  0  foo  bar \r\n", PROTO_CMD_GAT, .keys = "foo bar",
	    .raw_keys = "foo  bar" },
	{ "gats -1 a b\r\n", PROTO_CMD_GATS, .exptime = -1, .keys = "a b" },
	{ "gats 2147483647 a\r\n", PROTO_CMD_GATS, .exptime = INT32_MAX,
	    .keys = "a" },
	{ "set foo 5 100 3\r\n", PROTO_CMD_SET, .key = "foo", .flags = 5,
	    .exptime = 100, .nbytes = 3 },
	{ "set foo 5 100 3 noreply\r\n", PROTO_CMD_SET, .key = "foo",
	    .flags = 5, .exptime = 100, .nbytes = 3, .noreply = true },
	{ "set foo 0 0 0\n", PROTO_CMD_SET, .key = "foo" },
	/* memcached ignores a last token that is not noreply */
	{ "set foo 1 2 3 junk\r\n", PROTO_CMD_SET, .key = "foo", .flags = 1,
	    .exptime = 2, .nbytes = 3 },
	{ "set  foo   4294967295  -2147483648  7 \r\n", PROTO_CMD_SET,
	    .key = "foo", .flags = UINT32_MAX, .exptime = INT32_MIN,
	    .nbytes = 7 },
	{ "add k 1 2 4\r\n", PROTO_CMD_ADD, .key = "k", .flags = 1,
	    .exptime = 2, .nbytes = 4 },
	{ "add k 1 2 4 noreply\r\n", PROTO_CMD_ADD, .key = "k", .flags = 1,
	    .exptime = 2, .nbytes = 4, .noreply = true },
	{ "replace k 0 -1 2\r\n", PROTO_CMD_REPLACE, .key = "k",
	    .exptime = -1, .nbytes = 2 },
	{ "replace k 0 -1 2 noreply\r\n", PROTO_CMD_REPLACE, .key = "k",
	    .exptime = -1, .nbytes = 2, .noreply = true },
	{ "append k 0 0 1\r\n", PROTO_CMD_APPEND, .key = "k", .nbytes = 1 },
	{ "append k 0 0 1 noreply\r\n", PROTO_CMD_APPEND, .key = "k",
	    .nbytes = 1, .noreply = true },
	{ "prepend k 9 9 9\r\n", PROTO_CMD_PREPEND, .key = "k", .flags = 9,
	    .exptime = 9, .nbytes = 9 },
	{ "prepend k 9 9 9 noreply\r\n", PROTO_CMD_PREPEND, .key = "k",
	    .flags = 9, .exptime = 9, .nbytes = 9, .noreply = true },
	{ "cas foo 1 2 3 99\r\n", PROTO_CMD_CAS, .key = "foo", .flags = 1,
	    .exptime = 2, .nbytes = 3, .cas = 99 },
	{ "cas foo 1 2 3 18446744073709551615 noreply\r\n", PROTO_CMD_CAS,
	    .key = "foo", .flags = 1, .exptime = 2, .nbytes = 3,
	    .cas = UINT64_MAX, .noreply = true },
	{ "delete foo\r\n", PROTO_CMD_DELETE, .key = "foo" },
	{ "delete foo noreply\r\n", PROTO_CMD_DELETE, .key = "foo",
	    .noreply = true },
	{ "delete foo 0\r\n", PROTO_CMD_DELETE, .key = "foo" },
	{ "delete foo 0 noreply\r\n", PROTO_CMD_DELETE, .key = "foo",
	    .noreply = true },
	{ "incr n 5\r\n", PROTO_CMD_INCR, .key = "n", .delta = 5 },
	{ "incr n 0 noreply\r\n", PROTO_CMD_INCR, .key = "n",
	    .noreply = true },
	{ "incr n 1 junk\r\n", PROTO_CMD_INCR, .key = "n", .delta = 1 },
	{ "decr n 18446744073709551615\r\n", PROTO_CMD_DECR, .key = "n",
	    .delta = UINT64_MAX },
	{ "decr n 7 noreply\r\n", PROTO_CMD_DECR, .key = "n", .delta = 7,
	    .noreply = true },
	{ "touch foo 60\r\n", PROTO_CMD_TOUCH, .key = "foo", .exptime = 60 },
	{ "touch foo -1 noreply\r\n", PROTO_CMD_TOUCH, .key = "foo",
	    .exptime = -1, .noreply = true },
	{ "flush_all\r\n", .cmd = PROTO_CMD_FLUSH_ALL },
	{ "flush_all 10\r\n", PROTO_CMD_FLUSH_ALL, .delay = 10 },
	{ "flush_all noreply\r\n", PROTO_CMD_FLUSH_ALL, .noreply = true },
	{ "flush_all 10 noreply\r\n", PROTO_CMD_FLUSH_ALL, .delay = 10,
	    .noreply = true },
	{ "flush_all -5\r\n", PROTO_CMD_FLUSH_ALL, .delay = -5 },
	{ "flush_all 10 20\r\n", PROTO_CMD_FLUSH_ALL, .delay = 10 },
	{ "version\r\n", .cmd = PROTO_CMD_VERSION },
	{ "version x\r\n", .cmd = PROTO_CMD_VERSION },
	{ "verbosity 1\r\n", PROTO_CMD_VERBOSITY, .level = 1 },
	{ "verbosity 4294967295 noreply\r\n", PROTO_CMD_VERBOSITY,
	    .level = UINT32_MAX, .noreply = true },
	{ "verbosity noreply\r\n", PROTO_CMD_VERBOSITY, .level = 0,
	    .noreply = true },
	{ "verbosity 2 junk\r\n", PROTO_CMD_VERBOSITY, .level = 2 },
	{ "quit\r\n", .cmd = PROTO_CMD_QUIT },
	{ "shutdown\r\n", .cmd = PROTO_CMD_SHUTDOWN },
	{ "shutdown graceful\r\n", PROTO_CMD_SHUTDOWN, .arg = "graceful" },
	/* the mode is dispatch's to check, after -A */
	{ "shutdown foo\r\n", PROTO_CMD_SHUTDOWN, .arg = "foo" },
	{ "shutdown  graceful x \r\n", PROTO_CMD_SHUTDOWN, .arg = "graceful x" },
	{ "stats\r\n", .cmd = PROTO_CMD_STATS },
	{ "stats   \r\n", .cmd = PROTO_CMD_STATS },
	{ "stats settings\r\n", PROTO_CMD_STATS, .arg = "settings" },
	{ "stats detail on\r\n", PROTO_CMD_STATS, .arg = "detail on" },
	{ "stats  items  \r\n", PROTO_CMD_STATS, .arg = "items" },
};

#define NOK (sizeof(ok_cases) / sizeof(ok_cases[0]))

/* Checks every field of req against c. */
static void
check_ok_fields(const struct ok_case *c, const struct proto_req *req)
{
	const char *in = c->line;
	size_t n = strlen(in);
	char joined[4096];

	CHECK(req->cmd == c->cmd, in, n);
	CHECK(span_eq(req->key, req->nkey, c->key), in, n);
	CHECK(span_eq(req->keys, req->nkeys_bytes,
	    c->raw_keys != NULL ? c->raw_keys : c->keys), in, n);
	if (c->keys != NULL) {
		join_keys(req, joined, sizeof(joined));
		CHECK(strcmp(joined, c->keys) == 0, in, n);
	}
	CHECK(req->flags == c->flags, in, n);
	CHECK(req->exptime == c->exptime, in, n);
	CHECK(req->nbytes == c->nbytes, in, n);
	CHECK(req->cas == c->cas, in, n);
	CHECK(req->delta == c->delta, in, n);
	CHECK(req->delay == c->delay, in, n);
	CHECK(req->level == c->level, in, n);
	CHECK(req->noreply == c->noreply, in, n);
	CHECK(span_eq(req->arg, req->narg, c->arg != NULL ? c->arg : ""),
	    in, n);
	CHECK(req->error == NULL, in, n);
	CHECK(req->swallow == 0, in, n);
}

/* Every valid request parses whole, with every field as expected. */
static void
test_ok_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < NOK; i++) {
		const struct ok_case *c = &ok_cases[i];
		struct parsed ps;

		CHECK(parse_s(&ps, c->line) == PROTO_OK, c->line,
		    strlen(c->line));
		CHECK(ps.consumed == strlen(c->line), c->line, strlen(c->line));
		check_ok_fields(c, &ps.req);
		parsed_free(&ps);
	}
}

/* Every valid request, cut at every byte, needs more until its "\n"; with
 * bytes after it, it consumes only its own line. */
static void
test_ok_split_every_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < NOK; i++) {
		const struct ok_case *c = &ok_cases[i];
		size_t n = strlen(c->line);
		char more[512];
		struct parsed ps;

		for (size_t cut = 0; cut < n; cut++) {
			CHECK(parse_n(&ps, c->line, cut) == PROTO_NEED_MORE,
			    c->line, cut);
			parsed_free(&ps);
		}
		CHECK(parse_n(&ps, c->line, n) == PROTO_OK, c->line, n);
		CHECK(ps.consumed == n, c->line, n);
		check_ok_fields(c, &ps.req);
		parsed_free(&ps);

		assert_true(n + 16 < sizeof(more));
		memcpy(more, c->line, n);
		memcpy(more + n, "get x\r\nset y 0", 14);
		CHECK(parse_n(&ps, more, n + 14) == PROTO_OK, more, n + 14);
		CHECK(ps.consumed == n, more, n + 14);
		check_ok_fields(c, &ps.req);
		parsed_free(&ps);
	}
}

/* All valid requests (storage ones with their data blocks) sent as one
 * stream parse back to back. */
static void
test_ok_pipelined(void **state)
{
	size_t cap = 0, len = 0, off = 0;
	char *stream;

	(void)state;
	for (size_t i = 0; i < NOK; i++)
		cap += strlen(ok_cases[i].line) + ok_cases[i].nbytes + 2;
	stream = malloc(cap);
	assert_non_null(stream);
	for (size_t i = 0; i < NOK; i++) {
		const struct ok_case *c = &ok_cases[i];
		size_t n = strlen(c->line);

		memcpy(stream + len, c->line, n);
		len += n;
		if (c->cmd >= PROTO_CMD_SET && c->cmd <= PROTO_CMD_CAS) {
			memset(stream + len, 'v', c->nbytes);
			memcpy(stream + len + c->nbytes, "\r\n", 2);
			len += c->nbytes + 2;
		}
	}
	for (size_t i = 0; i < NOK; i++) {
		const struct ok_case *c = &ok_cases[i];
		struct proto_req req;
		size_t consumed;

		CHECK(proto_parse(stream + off, len - off, &req,
		    &consumed) == PROTO_OK, c->line, strlen(c->line));
		CHECK(consumed == strlen(c->line), c->line, strlen(c->line));
		check_ok_fields(c, &req);
		off += consumed;
		if (c->cmd >= PROTO_CMD_SET && c->cmd <= PROTO_CMD_CAS) {
			assert_true(proto_data_end_ok(stream + off +
			    req.nbytes));
			off += (size_t)req.nbytes + 2;
		}
	}
	assert_int_equal(off, len);
	free(stream);
}

/* ---- keys ------------------------------------------------------------- */

/* Builds "<prefix><n x 'k'><suffix>" into a fresh heap string. */
static char *
line_with_key(const char *prefix, size_t n, const char *suffix)
{
	size_t np = strlen(prefix), ns = strlen(suffix);
	char *s = malloc(np + n + ns + 1);

	assert_non_null(s);
	memcpy(s, prefix, np);
	memset(s + np, 'k', n);
	memcpy(s + np + n, suffix, ns + 1);
	return s;
}

/* A 250-byte key is fine everywhere a key goes; 251 bytes is not. */
static void
test_key_length_limit(void **state)
{
	static const struct {
		const char	*prefix, *suffix;
		enum proto_result bad_r;
		const char	*bad_err;
		size_t		 bad_swallow;
	} forms[] = {
		{ "get ", "\r\n", PROTO_BAD, FMT, 0 },
		{ "get a ", " b\r\n", PROTO_BAD, FMT, 0 },
		{ "gets ", "\r\n", PROTO_BAD, FMT, 0 },
		{ "gat 1 ", "\r\n", PROTO_BAD, FMT, 0 },
		{ "gats 1 a ", "\r\n", PROTO_BAD, FMT, 0 },
		{ "set ", " 0 0 5\r\n", PROTO_BAD, FMT, 7 },
		{ "cas ", " 0 0 5 1\r\n", PROTO_BAD, FMT, 7 },
		{ "delete ", "\r\n", PROTO_BAD, FMT, 0 },
		{ "incr ", " 1\r\n", PROTO_BAD, FMT, 0 },
		{ "touch ", " 1\r\n", PROTO_BAD, FMT, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char *ok = line_with_key(forms[i].prefix, PROTO_KEY_MAX,
		    forms[i].suffix);
		char *bad = line_with_key(forms[i].prefix, PROTO_KEY_MAX + 1,
		    forms[i].suffix);
		struct parsed ps;

		CHECK(parse_s(&ps, ok) == PROTO_OK, ok, strlen(ok));
		CHECK(ps.consumed == strlen(ok), ok, strlen(ok));
		CHECK(ps.req.key == NULL || ps.req.nkey == PROTO_KEY_MAX, ok,
		    strlen(ok));
		parsed_free(&ps);

		CHECK(parse_s(&ps, bad) == forms[i].bad_r, bad, strlen(bad));
		CHECK(ps.consumed == strlen(bad), bad, strlen(bad));
		CHECK(strcmp(ps.req.error, forms[i].bad_err) == 0, bad,
		    strlen(bad));
		CHECK(ps.req.swallow == forms[i].bad_swallow, bad, strlen(bad));
		parsed_free(&ps);
		free(ok);
		free(bad);
	}
}

/* proto_next_key walks keys separated by runs of spaces and stops. */
static void
test_next_key(void **state)
{
	const char *keys = "a  bb   ccc d";
	struct proto_req req = { .keys = keys, .nkeys_bytes = strlen(keys) };
	const char *want[] = { "a", "bb", "ccc", "d" };
	size_t cursor = 0, nkey = 99;
	const char *key = NULL;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		assert_true(proto_next_key(&req, &cursor, &key, &nkey));
		assert_span(key, nkey, want[i]);
	}
	assert_false(proto_next_key(&req, &cursor, &key, &nkey));
	/* and stays finished */
	assert_false(proto_next_key(&req, &cursor, &key, &nkey));

	/* a request with no key list yields nothing */
	memset(&req, 0, sizeof(req));
	cursor = 0;
	assert_false(proto_next_key(&req, &cursor, &key, &nkey));
}

/* The keys of a parsed multi-get, walked straight out of the buffer. */
static void
test_next_key_parsed(void **state)
{
	struct parsed ps;
	size_t cursor = 0, nkey;
	const char *key;

	(void)state;
	assert_int_equal(parse_s(&ps, "gets   k1 k2     k3   \r\nget z\r\n"),
	    PROTO_OK);
	assert_int_equal(ps.consumed, 24);
	assert_true(proto_next_key(&ps.req, &cursor, &key, &nkey));
	assert_span(key, nkey, "k1");
	assert_ptr_equal(key, ps.buf + 7);
	assert_true(proto_next_key(&ps.req, &cursor, &key, &nkey));
	assert_span(key, nkey, "k2");
	assert_true(proto_next_key(&ps.req, &cursor, &key, &nkey));
	assert_span(key, nkey, "k3");
	assert_false(proto_next_key(&ps.req, &cursor, &key, &nkey));
	parsed_free(&ps);
}

/* ---- malformed lines -------------------------------------------------- */

/* A malformed single line: its exact result, reply, swallow count and
 * noreply flag.  n is the line's length when it holds a NUL (else 0). */
struct bad_case {
	const char		*line;
	enum proto_result	 r;
	const char		*error;
	size_t			 swallow;
	bool			 noreply;
	size_t			 n;
};

static const struct bad_case bad_cases[] = {
	/* run-time tuning, as memcached 1.6.18 answers (probed) */
	{ "cache_memlimit\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "cache_memlimit abc\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "cache_memlimit -5\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "cache_memlimit 7\r\n", PROTO_BAD,
	    "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n", .swallow = 0 },
	{ "cache_memlimit 0 noreply\r\n", PROTO_BAD,
	    "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
	    .swallow = 0, .noreply = true },
	{ "cache_memlimit 1000000001\r\n", PROTO_BAD,
	    "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n", .swallow = 0 },
	{ "slabs\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "slabs foo\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "slabs automove\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "slabs automove 3\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "slabs automove x\r\n", PROTO_BAD, FMT, .swallow = 0 },
	{ "slabs automove ratio\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "slabs reassign\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "slabs reassign a b\r\n", PROTO_BAD, FMT, .swallow = 0 },
	/* memcached answers ERROR even to noreply here (test_stats.py) */
	{ "slabs reassign 1 2 noreply\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru foo\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru tune 10 25\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru tune 10 25 x 2\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru tune 50 40 0.1 2\r\n", PROTO_BAD,
	    "ERROR hot and warm pcts must not exceed 80\r\n", .swallow = 0 },
	{ "lru tune 10 25 0 2\r\n", PROTO_BAD,
	    "ERROR hot/warm age factors must be greater than 0\r\n", .swallow = 0 },
	{ "lru mode\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru mode x\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru temp_ttl\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru temp_ttl x\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "lru_maintainer\r\n", PROTO_BAD, ERR, .swallow = 0 },
	/* empty lines, unknown commands; command names are case-sensitive */
	{ "\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "   \r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "\r\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "bogus\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "GET foo\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "Get foo\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "SET foo 0 0 1\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "getx foo\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "ge foo\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "get\tfoo\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "get\0 foo\r\n", PROTO_BAD, ERR, 0, false, 10 },
	{ "mx foo v\r\n", PROTO_BAD, ERR, .swallow = 0 },

	/* retrieval: no keys, bad keys, bad exptime */
	{ "get\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "get\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "get    \r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "gets\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "gat\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "gats\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "gat 1a foo\r\n", PROTO_BAD, EXPT, .swallow = 0 },
	{ "gat 1a\r\n", PROTO_BAD, EXPT, .swallow = 0 },
	{ "gat - foo\r\n", PROTO_BAD, EXPT, .swallow = 0 },
	{ "get a\0b\r\n", PROTO_BAD, FMT, 0, false, 9 },

	/* storage: wrong counts answer ERROR; with a readable length the
	 * data block is skipped (memcached would run it as a command) */
	{ "set\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "set foo\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "set foo 0 0\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "set foo 0  5\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "set foo 0 0 5 noreply extra\r\n", PROTO_BAD, ERR, .swallow = 7 },
	{ "add foo 0 0 5 1 2\r\n", PROTO_BAD, ERR, .swallow = 7 },
	{ "cas foo 0 0 5\r\n", PROTO_BAD, ERR, .swallow = 7 },
	{ "cas foo 0 0 5 1 noreply x\r\n", PROTO_BAD, ERR, .swallow = 7 },
	/* storage: a bad length loses framing */
	{ "set foo 0 0 -1\r\n", PROTO_CLOSE, FMT, .swallow = 0 },
	{ "set foo 0 0 1a\r\n", PROTO_CLOSE, FMT, .swallow = 0 },
	{ "set foo 0 0 0x10\r\n", PROTO_CLOSE, FMT, .swallow = 0 },
	{ "set foo 0 0 2147483646\r\n", PROTO_CLOSE, FMT, .swallow = 0 },
	{ "set foo 0 0 4294967296\r\n", PROTO_CLOSE, FMT, .swallow = 0 },
	{ "set foo 0 0 18446744073709551616\r\n", PROTO_CLOSE, FMT, .swallow = 0 },
	{ "set foo 0 0 noreply\r\n", PROTO_CLOSE, FMT, 0, .noreply = true },
	{ "cas foo 0 0 -1 5\r\n", PROTO_CLOSE, FMT, .swallow = 0 },
	{ "set fo\x01o -1 x -1\r\n", PROTO_CLOSE, FMT, .swallow = 0 },
	/* storage: length known, another field bad: skip the data block */
	{ "set fo\0o 0 0 5\r\n", PROTO_BAD, FMT, 7, false, 16 },
	{ "set foo -1 0 5\r\n", PROTO_BAD, FMT, .swallow = 7 },
	{ "set foo 4294967296 0 5\r\n", PROTO_BAD, FMT, .swallow = 7 },
	{ "set foo 0 --1 5 noreply\r\n", PROTO_BAD, FMT, 7, .noreply = true },
	{ "prepend foo 1a 0 2147483645\r\n", PROTO_BAD, FMT, .swallow = 2147483647 },
	{ "cas foo 0 0 5 -1\r\n", PROTO_BAD, FMT, .swallow = 7 },
	{ "cas foo 0 0 5 18446744073709551616\r\n", PROTO_BAD, FMT, .swallow = 7 },
	{ "cas foo 0 0 5 x noreply\r\n", PROTO_BAD, FMT, 7, .noreply = true },

	/* delete */
	{ "delete\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "delete a 0 noreply x\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "delete a 1\r\n", PROTO_BAD, DELUSE, .swallow = 0 },
	{ "delete a 00\r\n", PROTO_BAD, DELUSE, .swallow = 0 },
	{ "delete a x\r\n", PROTO_BAD, DELUSE, .swallow = 0 },
	{ "delete a 0 x\r\n", PROTO_BAD, DELUSE, .swallow = 0 },
	{ "delete a 1 noreply\r\n", PROTO_BAD, DELUSE, 0, .noreply = true },
	{ "delete a noreply noreply\r\n", PROTO_BAD, DELUSE, 0, .noreply = true },
	{ "delete a\0\r\n", PROTO_BAD, FMT, 0, false, 11 },

	/* incr / decr */
	{ "incr\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "incr a\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "incr a 1 noreply x\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "incr a -1\r\n", PROTO_BAD, DELTA, .swallow = 0 },
	{ "incr a 1a\r\n", PROTO_BAD, DELTA, .swallow = 0 },
	{ "incr a 18446744073709551616\r\n", PROTO_BAD, DELTA, .swallow = 0 },
	{ "decr a noreply\r\n", PROTO_BAD, DELTA, 0, .noreply = true },

	/* touch */
	{ "touch\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "touch a\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "touch a 1 noreply x\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "touch a 1a\r\n", PROTO_BAD, EXPT, .swallow = 0 },

	/* flush_all */
	{ "flush_all 1a\r\n", PROTO_BAD, EXPT, .swallow = 0 },
	{ "flush_all x\r\n", PROTO_BAD, EXPT, .swallow = 0 },
	{ "flush_all noreply noreply\r\n", PROTO_BAD, EXPT, 0, .noreply = true },
	{ "flush_all 1 2 3\r\n", PROTO_BAD, ERR, .swallow = 0 },

	/* verbosity */
	{ "verbosity\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "verbosity 1 2 3\r\n", PROTO_BAD, ERR, .swallow = 0 },
	{ "verbosity x\r\n", PROTO_BAD, FMT, .swallow = 0 },
	{ "verbosity -1\r\n", PROTO_BAD, FMT, .swallow = 0 },

	/* shutdown */
};

/* Every malformed line gets its exact result, reply and swallow count,
 * whole and split at every byte. */
static void
test_bad_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t n = c->n != 0 ? c->n : strlen(c->line);
		struct parsed ps;

		for (size_t cut = 0; cut < n; cut++) {
			CHECK(parse_n(&ps, c->line, cut) == PROTO_NEED_MORE,
			    c->line, cut);
			parsed_free(&ps);
		}
		CHECK(parse_n(&ps, c->line, n) == c->r, c->line, n);
		CHECK(ps.consumed == n, c->line, n);
		CHECK(ps.req.error != NULL, c->line, n);
		CHECK(strcmp(ps.req.error, c->error) == 0, c->line, n);
		CHECK(ps.req.swallow == c->swallow, c->line, n);
		CHECK(ps.req.noreply == c->noreply, c->line, n);
		parsed_free(&ps);
	}
}

/* An unknown command whose last token starts "HTTP/" closes silently, as
 * in memcached; known commands and other unknown lines do not. */
static void
test_http_closes(void **state)
{
	static const struct {
		const char		*line;
		enum proto_result	 r;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n", PROTO_CLOSE },
		{ "POST /x HTTP/1.0\r\n", PROTO_CLOSE },
		{ "foo HTTP/\r\n", PROTO_CLOSE },
		{ "foo bar  HTTP/2 \r\n", PROTO_CLOSE },
		{ "foo bar http/1.1\r\n", PROTO_BAD },
		{ "foo bar HTTP/1.1 x\r\n", PROTO_BAD },
		{ "HTTP/1.1\r\n", PROTO_CLOSE },
		{ "foo HTTP\r\n", PROTO_BAD },
		{ "get k HTTP/1.1\r\n", PROTO_OK },
	};
	struct parsed ps;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = strlen(cases[i].line);

		CHECK(parse_s(&ps, cases[i].line) == cases[i].r,
		    cases[i].line, n);
		CHECK(ps.consumed == n, cases[i].line, n);
		if (cases[i].r == PROTO_CLOSE)
			CHECK(ps.req.error == NULL, cases[i].line, n);
		parsed_free(&ps);
	}
}

/* After a bad line, the next line in the buffer parses normally. */
static void
test_bad_then_good(void **state)
{
	static const char s[] = "bogus\r\nset k 1a 0 1\r\nX\r\nget k\r\n";
	struct parsed ps;
	struct proto_req req;
	size_t off, consumed;

	(void)state;
	assert_int_equal(parse_s(&ps, s), PROTO_BAD);
	off = ps.consumed;
	assert_int_equal(off, 7);
	assert_int_equal(proto_parse(ps.buf + off, ps.len - off, &req,
	    &consumed), PROTO_BAD);
	assert_int_equal(req.swallow, 3);
	off += consumed + req.swallow;
	assert_int_equal(proto_parse(ps.buf + off, ps.len - off, &req,
	    &consumed), PROTO_OK);
	assert_int_equal(req.cmd, PROTO_CMD_GET);
	assert_int_equal(off + consumed, ps.len);
	parsed_free(&ps);
}

/* Keys may hold any byte but space and NUL, as memcached's tokenizer
 * allows (memcaslap's keys hold 0x10); "gat <exptime>" with no key is a
 * request for nothing (memcached answers END). */
static void
test_memcached_keys(void **state)
{
	static const char line[] = "get a\x10" "b c\td \x7f\xff e\rf\r\n";
	struct parsed ps;
	size_t cursor = 0, nkey;
	const char *key;

	(void)state;
	assert_int_equal(parse_s(&ps, line), PROTO_OK);
	assert_true(proto_next_key(&ps.req, &cursor, &key, &nkey));
	assert_int_equal(nkey, 3);
	assert_memory_equal(key, "a\x10" "b", 3);
	assert_true(proto_next_key(&ps.req, &cursor, &key, &nkey));
	assert_memory_equal(key, "c\td", 3);
	assert_true(proto_next_key(&ps.req, &cursor, &key, &nkey));
	assert_memory_equal(key, "\x7f\xff", 2);
	assert_true(proto_next_key(&ps.req, &cursor, &key, &nkey));
	assert_int_equal(nkey, 3);
	assert_memory_equal(key, "e\rf", 3);
	assert_false(proto_next_key(&ps.req, &cursor, &key, &nkey));
	parsed_free(&ps);

	assert_int_equal(parse_s(&ps, "set k\x01\t 0 0 1\r\n"), PROTO_OK);
	assert_int_equal(ps.req.nkey, 3);
	parsed_free(&ps);

	assert_int_equal(parse_s(&ps, "gats 10  \r\n"), PROTO_OK);
	assert_int_equal(ps.req.nkeys_bytes, 0);
	cursor = 0;
	assert_false(proto_next_key(&ps.req, &cursor, &key, &nkey));
	parsed_free(&ps);
}

/* ---- numbers at every numeric position -------------------------------- */

enum num_kind { K_U32, K_TIME, K_NBYTES, K_U64 };
enum num_field { F_FLAGS, F_EXPTIME, F_NBYTES, F_CAS, F_DELTA, F_DELAY,
	F_LEVEL };

/* A line with one number in it ("%s"), the field it lands in, and what a
 * bad value there yields. */
static const struct num_case {
	const char		*fmt;
	enum num_kind		 kind;
	enum num_field		 field;
	enum proto_result	 bad_r;
	const char		*bad_err;
	size_t			 bad_swallow;
} num_cases[] = {
	{ "set k %s 0 5\r\n", K_U32, F_FLAGS, PROTO_BAD, FMT, 7 },
	{ "set k 0 %s 5\r\n", K_TIME, F_EXPTIME, PROTO_BAD, FMT, 7 },
	{ "set k 0 0 %s\r\n", K_NBYTES, F_NBYTES, PROTO_CLOSE, FMT, 0 },
	{ "add k %s 0 5 noreply\r\n", K_U32, F_FLAGS, PROTO_BAD, FMT, 7 },
	{ "replace k 0 %s 5\r\n", K_TIME, F_EXPTIME, PROTO_BAD, FMT, 7 },
	{ "append k 0 0 %s noreply\r\n", K_NBYTES, F_NBYTES, PROTO_CLOSE,
	    FMT, 0 },
	{ "prepend k 0 0 %s\r\n", K_NBYTES, F_NBYTES, PROTO_CLOSE, FMT, 0 },
	{ "cas k %s 0 5 1\r\n", K_U32, F_FLAGS, PROTO_BAD, FMT, 7 },
	{ "cas k 0 %s 5 1\r\n", K_TIME, F_EXPTIME, PROTO_BAD, FMT, 7 },
	{ "cas k 0 0 %s 1\r\n", K_NBYTES, F_NBYTES, PROTO_CLOSE, FMT, 0 },
	{ "cas k 0 0 5 %s\r\n", K_U64, F_CAS, PROTO_BAD, FMT, 7 },
	{ "cas k 0 0 5 %s noreply\r\n", K_U64, F_CAS, PROTO_BAD, FMT, 7 },
	{ "incr k %s\r\n", K_U64, F_DELTA, PROTO_BAD, DELTA, 0 },
	{ "decr k %s noreply\r\n", K_U64, F_DELTA, PROTO_BAD, DELTA, 0 },
	{ "touch k %s\r\n", K_TIME, F_EXPTIME, PROTO_BAD, EXPT, 0 },
	{ "gat %s k\r\n", K_TIME, F_EXPTIME, PROTO_BAD, EXPT, 0 },
	{ "gats %s k j\r\n", K_TIME, F_EXPTIME, PROTO_BAD, EXPT, 0 },
	{ "flush_all %s\r\n", K_TIME, F_DELAY, PROTO_BAD, EXPT, 0 },
	{ "flush_all %s noreply\r\n", K_TIME, F_DELAY, PROTO_BAD, EXPT, 0 },
	{ "verbosity %s\r\n", K_U64, F_LEVEL, PROTO_BAD, FMT, 0 },
	{ "verbosity %s noreply\r\n", K_U64, F_LEVEL, PROTO_BAD, FMT, 0 },
};

/* Edge and bad numbers, and for each kind whether it is valid. */
static const struct num_value {
	const char	*text;
	bool		 valid[4];	/* by enum num_kind */
} num_values[] = {
	/* memcached reads numbers with strtol/strtoull: blanks before,
	 * a sign, a blank after (and anything past it) are all fine.
	 *				   U32    TIME   NBYTES U64 */
	{ "0",				{ true,  true,  true,  true  } },
	{ "00",				{ true,  true,  true,  true  } },
	{ "7",				{ true,  true,  true,  true  } },
	{ "-0",				{ true,  true,  true,  true  } },
	{ "-1",				{ false, true,  false, false } },
	{ "2147483645",			{ true,  true,  true,  true  } },
	{ "2147483646",			{ true,  true,  false, true  } },
	{ "2147483647",			{ true,  true,  false, true  } },
	{ "2147483648",			{ true,  true,  false, true  } },
	{ "-2147483648",		{ false, true,  false, false } },
	{ "-2147483649",		{ false, true,  false, false } },
	{ "4294967295",			{ true,  true,  false, true  } },
	{ "4294967296",			{ false, true,  false, true  } },
	{ "9223372036854775807",	{ false, true,  false, true  } },
	{ "-9223372036854775808",	{ false, true,  false, false } },
	{ "-9223372036854775809",	{ false, false, false, true  } },
	{ "18446744073709551615",	{ false, false, false, true  } },
	{ "-18446744073709551615",	{ true,  false, true,  true  } },
	{ "18446744073709551616",	{ false, false, false, false } },
	{ "99999999999999999999",	{ false, false, false, false } },
	{ "000000000000000000000000001", { true, true,  true,  true  } },
	{ "+1",				{ true,  true,  true,  true  } },
	{ "\t5",			{ true,  true,  true,  true  } },
	{ "5\t",			{ true,  true,  true,  true  } },
	{ "5\tx",			{ true,  true,  true,  true  } },
	{ "\v+5\f",			{ true,  true,  true,  true  } },
	{ "1a",				{ false, false, false, false } },
	{ "a1",				{ false, false, false, false } },
	{ "--1",			{ false, false, false, false } },
	{ "+-1",			{ false, false, false, false } },
	{ "-",				{ false, false, false, false } },
	{ "+",				{ false, false, false, false } },
	{ "\t",			{ false, false, false, false } },
	{ "0x10",			{ false, false, false, false } },
	{ "1.5",			{ false, false, false, false } },
	{ "1e3",			{ false, false, false, false } },
	{ "\xd9\xa1",			{ false, false, false, false } },
};

/* True when field f of req holds the (valid, plain) number text. */
static bool
num_field_eq(const struct proto_req *req, enum num_field f,
    const char *text)
{
	long long sv = strtoll(text, NULL, 10);
	unsigned long long uv = strtoull(text, NULL, 10);

	switch (f) {
	case F_EXPTIME:
		return req->exptime == sv;
	case F_DELAY:
		return req->delay == sv;
	case F_FLAGS:
		return req->flags == uv;
	case F_NBYTES:
		return req->nbytes == uv;
	case F_CAS:
		return req->cas == uv;
	case F_DELTA:
		return req->delta == uv;
	case F_LEVEL:	/* memcached cuts the level to 32 bits */
		return req->level == (uint32_t)uv;
	}
	return false;
}

/* Every edge or bad number at every numeric position: valid ones land in
 * their field, bad ones give that position's exact error. */
static void
test_numbers_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(num_cases) / sizeof(num_cases[0]); i++) {
		const struct num_case *c = &num_cases[i];

		for (size_t j = 0;
		    j < sizeof(num_values) / sizeof(num_values[0]); j++) {
			const struct num_value *v = &num_values[j];
			char line[256];
			struct parsed ps;
			int n;

			n = snprintf(line, sizeof(line), c->fmt, v->text);
			assert_true(n > 0 && (size_t)n < sizeof(line));
			if (v->valid[c->kind]) {
				CHECK(parse_s(&ps, line) == PROTO_OK, line,
				    (size_t)n);
				CHECK(num_field_eq(&ps.req, c->field, v->text),
				    line, (size_t)n);
			} else {
				CHECK(parse_s(&ps, line) == c->bad_r, line,
				    (size_t)n);
				CHECK(strcmp(ps.req.error, c->bad_err) == 0,
				    line, (size_t)n);
				CHECK(ps.req.swallow == c->bad_swallow, line,
				    (size_t)n);
			}
			CHECK(ps.consumed == (size_t)n, line, (size_t)n);
			parsed_free(&ps);
		}
	}
}

/* ---- line length limits ----------------------------------------------- */

/* Fills a fresh buffer of n bytes: prefix, then pad bytes. */
static char *
padded(const char *prefix, char pad, size_t n)
{
	size_t np = strlen(prefix);
	char *s = malloc(n);

	assert_non_null(s);
	assert_true(np <= n);
	memcpy(s, prefix, np);
	memset(s + np, pad, n - np);
	return s;
}

/* Up to PROTO_LINE_MAX bytes without "\n" is a line still arriving; one
 * more and the connection closes, with no reply. */
static void
test_line_max(void **state)
{
	static const char *prefixes[] = { "set k 0 0 5", "x", " ", "getx",
	    "get", "version ", "stats ", "\r" };
	struct parsed ps;

	(void)state;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		char *s = padded(prefixes[i], 'a', PROTO_LINE_MAX + 1);

		assert_int_equal(parse_n(&ps, s, PROTO_LINE_MAX),
		    PROTO_NEED_MORE);
		parsed_free(&ps);
		assert_int_equal(parse_n(&ps, s, PROTO_LINE_MAX + 1),
		    PROTO_CLOSE);
		assert_null(ps.req.error);
		assert_int_equal(ps.consumed, PROTO_LINE_MAX + 1);
		parsed_free(&ps);
		free(s);
	}
}

/* A complete line of exactly PROTO_LINE_MAX bytes before "\n" is parsed;
 * one byte more closes. */
static void
test_line_max_complete(void **state)
{
	struct parsed ps;
	char *s;

	(void)state;
	s = padded("version", ' ', PROTO_LINE_MAX + 2);
	s[PROTO_LINE_MAX - 1] = '\r';
	s[PROTO_LINE_MAX] = '\n';
	assert_int_equal(parse_n(&ps, s, PROTO_LINE_MAX + 1), PROTO_OK);
	assert_int_equal(ps.req.cmd, PROTO_CMD_VERSION);
	assert_int_equal(ps.consumed, PROTO_LINE_MAX + 1);
	parsed_free(&ps);

	s[PROTO_LINE_MAX - 1] = ' ';
	s[PROTO_LINE_MAX] = '\r';
	s[PROTO_LINE_MAX + 1] = '\n';
	assert_int_equal(parse_n(&ps, s, PROTO_LINE_MAX + 2), PROTO_CLOSE);
	assert_null(ps.req.error);
	parsed_free(&ps);
	free(s);
}

/* Builds a multi-key get line of n bytes before "\r\n" (n >= 8), keys of
 * up to 9 bytes; returns the buffer, len n + 2 (terminated or not). */
static char *
long_get(const char *cmd, size_t n, bool terminated, size_t *len)
{
	size_t np = strlen(cmd);
	char *s = malloc(n + 2);

	assert_non_null(s);
	memcpy(s, cmd, np);
	for (size_t i = np; i < n; i++)
		s[i] = ((i - np) % 10 == 9) ? ' ' : (char)('a' + i % 26);
	if (s[n - 1] == ' ')
		s[n - 1] = 'z';
	memcpy(s + n, "\r\n", 2);
	*len = terminated ? n + 2 : n;
	return s;
}

/* get/gets/gat/gats lines may run past PROTO_LINE_MAX up to
 * PROTO_GET_LINE_MAX; past that the connection closes. */
static void
test_long_get_lines(void **state)
{
	static const char *cmds[] = { "get ", "gets ", "gat 10 ", "gats 0 ",
	    "   get " };
	struct parsed ps;

	(void)state;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		size_t len, cursor = 0, nkey, count = 0;
		const char *key;
		char *s;

		/* 4000 bytes without "\n": keep reading */
		s = long_get(cmds[i], 4000, false, &len);
		assert_int_equal(parse_n(&ps, s, len), PROTO_NEED_MORE);
		parsed_free(&ps);
		/* with it: a request whose keys all walk */
		len += 2;
		assert_int_equal(parse_n(&ps, s, len), PROTO_OK);
		assert_int_equal(ps.consumed, len);
		while (proto_next_key(&ps.req, &cursor, &key, &nkey))
			count++;
		assert_true(count > 350);
		parsed_free(&ps);
		free(s);

		/* exactly PROTO_GET_LINE_MAX bytes before "\n" */
		s = long_get(cmds[i], PROTO_GET_LINE_MAX - 1, true, &len);
		assert_int_equal(parse_n(&ps, s, len - 2), PROTO_NEED_MORE);
		parsed_free(&ps);
		assert_int_equal(parse_n(&ps, s, len - 1), PROTO_NEED_MORE);
		parsed_free(&ps);
		assert_int_equal(parse_n(&ps, s, len), PROTO_OK);
		assert_int_equal(ps.consumed, PROTO_GET_LINE_MAX + 1);
		parsed_free(&ps);
		free(s);

		/* one byte more: close, no reply */
		s = long_get(cmds[i], PROTO_GET_LINE_MAX, true, &len);
		assert_int_equal(parse_n(&ps, s, PROTO_GET_LINE_MAX),
		    PROTO_NEED_MORE);
		parsed_free(&ps);
		assert_int_equal(parse_n(&ps, s, PROTO_GET_LINE_MAX + 1),
		    PROTO_CLOSE);
		assert_null(ps.req.error);
		parsed_free(&ps);
		assert_int_equal(parse_n(&ps, s, len), PROTO_CLOSE);
		parsed_free(&ps);
		free(s);
	}
}

/* A long multi-get with one bad key, or a long line of another command,
 * is rejected; "get" glued to junk is no multi-get. */
static void
test_long_line_others(void **state)
{
	struct parsed ps;
	size_t len;
	char *s;

	(void)state;
	s = long_get("get ", 5000, true, &len);
	s[3000] = '\0';
	assert_int_equal(parse_n(&ps, s, len), PROTO_BAD);
	assert_string_equal(ps.req.error, FMT);
	assert_int_equal(ps.consumed, len);
	parsed_free(&ps);
	free(s);

	s = long_get("delete ", 5000, true, &len);
	assert_int_equal(parse_n(&ps, s, len), PROTO_CLOSE);
	parsed_free(&ps);
	free(s);

	s = long_get("getfoo ", 5000, true, &len);
	assert_int_equal(parse_n(&ps, s, len), PROTO_CLOSE);
	parsed_free(&ps);
	free(s);

	s = padded("get", 'a', 5000);
	assert_int_equal(parse_n(&ps, s, 5000), PROTO_CLOSE);
	parsed_free(&ps);
	free(s);

	/* "get" as the last bytes buffered is not yet known to be "get " */
	s = padded("", ' ', PROTO_LINE_MAX + 1);
	memcpy(s + PROTO_LINE_MAX - 2, "get", 3);
	assert_int_equal(parse_n(&ps, s, PROTO_LINE_MAX + 1), PROTO_CLOSE);
	parsed_free(&ps);
	free(s);
}

/* ---- odds and ends ---------------------------------------------------- */

/* The data block must end in exactly "\r\n". */
static void
test_data_end(void **state)
{
	(void)state;
	assert_true(proto_data_end_ok("\r\n"));
	assert_false(proto_data_end_ok("\n\r"));
	assert_false(proto_data_end_ok("\r\r"));
	assert_false(proto_data_end_ok("\n\n"));
	assert_false(proto_data_end_ok("ab"));
	assert_false(proto_data_end_ok("\r\0"));
}

/* Nothing buffered, or only part of a line, is NEED_MORE and leaves the
 * request blank. */
static void
test_need_more_blank(void **state)
{
	struct proto_req req;
	size_t consumed = 99;

	(void)state;
	assert_int_equal(proto_parse(NULL, 0, &req, &consumed),
	    PROTO_NEED_MORE);
	assert_int_equal(consumed, 0);
	assert_int_equal(proto_parse("", 0, &req, &consumed),
	    PROTO_NEED_MORE);
	assert_int_equal(consumed, 0);
	assert_int_equal(proto_parse("get foo", 7, &req, &consumed),
	    PROTO_NEED_MORE);
	assert_int_equal(consumed, 0);
}

/* Small deterministic PRNG so the fuzz loop is reproducible. */
static uint32_t
xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random lines built from protocol fragments never break an invariant:
 * results in range, consumed within the buffer, OK keys valid. */
static void
test_fuzz_invariants(void **state)
{
	static const char *frags[] = { "get", "gets", "gat", "gats", "set",
	    "add", "cas", "delete", "incr", "decr", "touch", "flush_all",
	    "stats", "verbosity", "version", "quit", "shutdown", "noreply",
	    " ", " ", " ", "  ", "0", "1", "-1", "5", "4294967296", "k",
	    "key", "\r", "\n", "\r\n", "\x01", "\x7f", "\xff", "graceful" };
	const size_t nfrags = sizeof(frags) / sizeof(frags[0]);
	uint32_t seed = 0x12345678;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		char line[128];
		size_t n = 0, parts = 1 + xorshift(&seed) % 8;
		struct parsed ps;

		for (size_t p = 0; p < parts; p++) {
			const char *f = frags[xorshift(&seed) % nfrags];
			size_t nf = strlen(f);

			if (n + nf + 1 > sizeof(line))
				break;
			memcpy(line + n, f, nf);
			n += nf;
			if (xorshift(&seed) % 2 && n + 1 < sizeof(line))
				line[n++] = ' ';
		}
		if (xorshift(&seed) % 4 != 0)
			line[n++] = '\n';
		parse_n(&ps, line, n);
		if (ps.r == PROTO_OK) {
			size_t cursor = 0, nkey;
			const char *key;

			if (ps.req.key != NULL) {
				assert_true(ps.req.nkey >= 1 &&
				    ps.req.nkey <= PROTO_KEY_MAX);
				for (size_t i = 0; i < ps.req.nkey; i++)
					assert_true(ps.req.key[i] != ' ' &&
					    ps.req.key[i] != '\0');
			}
			while (proto_next_key(&ps.req, &cursor, &key, &nkey))
				for (size_t i = 0; i < nkey; i++)
					assert_true(key[i] != ' ' &&
					    key[i] != '\0');
			assert_true(ps.req.nbytes <= PROTO_NBYTES_MAX);
		}
		if (ps.r == PROTO_BAD && ps.req.swallow != 0)
			assert_int_equal(ps.req.swallow,
			    (size_t)ps.req.nbytes + 2);
		parsed_free(&ps);
	}
}

/* ---- composer --------------------------------------------------------- */

/* Every fixed reply has its exact text and length. */
static void
test_replies(void **state)
{
	static const char *want[PROTO_R_COUNT] = {
		[PROTO_R_STORED] = "STORED\r\n",
		[PROTO_R_NOT_STORED] = "NOT_STORED\r\n",
		[PROTO_R_EXISTS] = "EXISTS\r\n",
		[PROTO_R_NOT_FOUND] = "NOT_FOUND\r\n",
		[PROTO_R_DELETED] = "DELETED\r\n",
		[PROTO_R_TOUCHED] = "TOUCHED\r\n",
		[PROTO_R_OK] = "OK\r\n",
		[PROTO_R_END] = "END\r\n",
		[PROTO_R_RESET] = "RESET\r\n",
		[PROTO_R_ERROR] = "ERROR\r\n",
		[PROTO_R_NON_NUMERIC] = "CLIENT_ERROR cannot increment or "
		    "decrement non-numeric value\r\n",
		[PROTO_R_BAD_FORMAT] = "CLIENT_ERROR bad command line "
		    "format\r\n",
		[PROTO_R_BAD_CHUNK] = "CLIENT_ERROR bad data chunk\r\n",
		[PROTO_R_TOO_LARGE] = "SERVER_ERROR object too large for "
		    "cache\r\n",
		[PROTO_R_NO_MEMORY] = "SERVER_ERROR out of memory storing "
		    "object\r\n",
		[PROTO_R_TOO_MANY_CONNS] = "ERROR Too many open "
		    "connections\r\n",
		[PROTO_R_SHUTDOWN_OFF] = "ERROR: shutdown not enabled\r\n",
		[PROTO_R_FLUSH_OFF] = "CLIENT_ERROR flush_all not allowed\r\n",
		[PROTO_R_SHUTDOWN_MODE] = "CLIENT_ERROR invalid shutdown mode\r\n",
		[PROTO_R_MISS] = "EN\r\n",
		[PROTO_R_NOOP] = "MN\r\n",
		[PROTO_R_AUTH_OK] = "STORED\r\n",
		[PROTO_R_AUTH_ERROR] = "CLIENT_ERROR authentication "
		    "failure\r\n",
		[PROTO_R_AUTH_MECHS] = "PLAIN\r\n",
		[PROTO_R_MEMLIMIT_FAILED] = "MEMLIMIT_ADJUST_FAILED out of "
		    "bounds or unable to adjust\r\n",
		[PROTO_R_SLABS_SAME] = "SAME src and dst class are "
		    "identical\r\n",
		[PROTO_R_SLABS_BADCLASS] = "BADCLASS invalid src or dst class "
		    "id\r\n",
		[PROTO_R_SLABS_NOSPARE] = "NOSPARE source class has no spare "
		    "pages\r\n",
		[PROTO_R_UNAUTHENTICATED] = "CLIENT_ERROR unauthenticated\r\n",
		[PROTO_R_AUTH_FORMAT] = "CLIENT_ERROR bad authentication token "
		    "format\r\n",
		[PROTO_R_AUTH_BADTERM] = "CLIENT_ERROR bad command line "
		    "termination\r\n",
	};

	(void)state;
	for (int r = 0; r < PROTO_R_COUNT; r++) {
		size_t len = 0;
		const char *s = proto_reply((enum proto_reply)r, &len);

		assert_non_null(want[r]);
		assert_non_null(s);
		assert_string_equal(s, want[r]);
		assert_int_equal(len, strlen(want[r]));
		assert_ptr_equal(proto_reply((enum proto_reply)r, NULL), s);
	}
	assert_string_equal(proto_reply(PROTO_R_COUNT, NULL), "ERROR\r\n");
}

/* Value lines come out byte for byte, with and without cas. */
static void
test_value_line(void **state)
{
	char out[PROTO_VALUE_LINE_MAX + 8];
	char key[PROTO_KEY_MAX], want[512];
	size_t n;

	(void)state;
	n = proto_value_line(out, "foo", 3, 5, 3, false, 0);
	assert_int_equal(n, 15);
	assert_memory_equal(out, "VALUE foo 5 3\r\n", 15);

	n = proto_value_line(out, "foo", 3, 0, 0, true, 0);
	assert_int_equal(n, 17);
	assert_memory_equal(out, "VALUE foo 0 0 0\r\n", 17);

	n = proto_value_line(out, "k", 1, 123456, 1048576, true, 987654321);
	assert_int_equal(n, strlen("VALUE k 123456 1048576 987654321\r\n"));
	assert_memory_equal(out, "VALUE k 123456 1048576 987654321\r\n", n);

	/* the widest line: 250-byte key, every number at its maximum */
	memset(key, 'x', sizeof(key));
	memset(out, '#', sizeof(out));
	n = proto_value_line(out, key, sizeof(key), UINT32_MAX, SIZE_MAX,
	    true, UINT64_MAX);
	snprintf(want, sizeof(want), "VALUE %.*s %" PRIu32 " %zu %" PRIu64
	    "\r\n", PROTO_KEY_MAX, key, UINT32_MAX, SIZE_MAX, UINT64_MAX);
	assert_int_equal(n, strlen(want));
	assert_true(n <= PROTO_VALUE_LINE_MAX);
	assert_memory_equal(out, want, n);
	for (size_t i = n; i < sizeof(out); i++)
		assert_int_equal(out[i], '#');

	n = proto_value_line(out, key, sizeof(key), UINT32_MAX, 7, false,
	    UINT64_MAX);
	snprintf(want, sizeof(want), "VALUE %.*s 4294967295 7\r\n",
	    PROTO_KEY_MAX, key);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
}

/* proto_fmt_u64 agrees with printf across every digit-count boundary. */
static void
test_fmt_u64(void **state)
{
	char out[32], want[32];
	uint64_t p = 1;
	uint32_t seed = 99;

	(void)state;
	for (int d = 0; d < 20; d++, p *= d < 20 ? 10 : 1) {
		uint64_t vals[] = { p - 1, p, p + 1, p + p / 2 };

		for (size_t i = 0; i < 4; i++) {
			size_t n;

			memset(out, '#', sizeof(out));
			n = proto_fmt_u64(out, vals[i]);
			snprintf(want, sizeof(want), "%" PRIu64, vals[i]);
			assert_int_equal(n, strlen(want));
			assert_memory_equal(out, want, n);
			assert_int_equal(out[n], '#');
		}
	}
	for (int i = 0; i < 100000; i++) {
		uint64_t v = ((uint64_t)xorshift(&seed) << 32 |
		    xorshift(&seed)) >> (xorshift(&seed) % 64);
		size_t n = proto_fmt_u64(out, v);

		snprintf(want, sizeof(want), "%" PRIu64, v);
		assert_int_equal(n, strlen(want));
		assert_memory_equal(out, want, n);
	}
	assert_int_equal(proto_fmt_u64(out, UINT64_MAX), 20);
	assert_memory_equal(out, "18446744073709551615", 20);
	assert_int_equal(proto_fmt_u64(out, 0), 1);
	assert_int_equal(out[0], '0');
}

/* incr/decr result lines. */
static void
test_u64_line(void **state)
{
	char out[23];

	(void)state;
	assert_int_equal(proto_u64_line(out, 0), 3);
	assert_memory_equal(out, "0\r\n", 3);
	assert_int_equal(proto_u64_line(out, 42), 4);
	assert_memory_equal(out, "42\r\n", 4);
	assert_int_equal(proto_u64_line(out, UINT64_MAX), 22);
	assert_memory_equal(out, "18446744073709551615\r\n", 22);
}

/* STAT lines: exact bytes, exact fit, one byte short gives 0 and writes
 * nothing. */
static void
test_stat_lines(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	n = proto_stat_u64(out, sizeof(out), "curr_items", 12345);
	assert_int_equal(n, strlen("STAT curr_items 12345\r\n"));
	assert_memory_equal(out, "STAT curr_items 12345\r\n", n);

	n = proto_stat_u64(out, sizeof(out), "cas", UINT64_MAX);
	assert_memory_equal(out, "STAT cas 18446744073709551615\r\n", n);
	assert_int_equal(n, 31);
	assert_int_equal(proto_stat_u64(out, 31, "cas", UINT64_MAX), 31);
	memset(out, '#', sizeof(out));
	assert_int_equal(proto_stat_u64(out, 30, "cas", UINT64_MAX), 0);
	assert_int_equal(out[0], '#');
	assert_int_equal(proto_stat_u64(out, 0, "cas", 1), 0);
	assert_int_equal(proto_stat_u64(out, 7, "", 1), 0);
	assert_int_equal(proto_stat_u64(out, 9, "", 1), 9);
	assert_memory_equal(out, "STAT  1\r\n", 9);

	n = proto_stat_str(out, sizeof(out), "version", "1.0.0");
	assert_int_equal(n, strlen("STAT version 1.0.0\r\n"));
	assert_memory_equal(out, "STAT version 1.0.0\r\n", n);
	assert_int_equal(proto_stat_str(out, n, "version", "1.0.0"), n);
	memset(out, '#', sizeof(out));
	assert_int_equal(proto_stat_str(out, n - 1, "version", "1.0.0"), 0);
	assert_int_equal(out[0], '#');
	n = proto_stat_str(out, sizeof(out), "evictions", "on");
	assert_memory_equal(out, "STAT evictions on\r\n", n);
	n = proto_stat_str(out, sizeof(out), "domain_socket", "");
	assert_memory_equal(out, "STAT domain_socket \r\n", n);
	n = proto_stat_str(out, sizeof(out), "ssl_key", NULL);
	assert_memory_equal(out, "STAT ssl_key (null)\r\n", n);
	assert_int_equal(proto_stat_str(out, SIZE_MAX, "a", "b"), 10);
}

/* cache_memlimit, slabs and lru lines parse into req->admin. */
static void
test_admin_lines(void **state)
{
	static const struct {
		const char		*line;
		enum proto_cmd		 cmd;
		enum proto_admin_sub	 sub;
		int64_t			 n1, n2;
		double			 f1, f2;
		bool			 noreply;
	} cases[] = {
		{ "cache_memlimit 8\r\n", PROTO_CMD_CACHE_MEMLIMIT,
		    PROTO_ADMIN_MEMLIMIT, 8, 0, 0, 0, false },
		{ "cache_memlimit 100 200\r\n", PROTO_CMD_CACHE_MEMLIMIT,
		    PROTO_ADMIN_MEMLIMIT, 100, 0, 0, 0, false },
		{ "cache_memlimit 1000000000 noreply\r\n",
		    PROTO_CMD_CACHE_MEMLIMIT, PROTO_ADMIN_MEMLIMIT,
		    1000000000, 0, 0, 0, true },
		{ "slabs automove 2\r\n", PROTO_CMD_SLABS,
		    PROTO_ADMIN_AUTOMOVE, 2, 0, 0, 0, false },
		{ "slabs automove 0 noreply\r\n", PROTO_CMD_SLABS,
		    PROTO_ADMIN_AUTOMOVE, 0, 0, 0, 0, true },
		{ "slabs automove ratio 0.5\r\n", PROTO_CMD_SLABS,
		    PROTO_ADMIN_AUTOMOVE_RATIO, 0, 0, 0.5, 0, false },
		{ "slabs reassign -1 7\r\n", PROTO_CMD_SLABS,
		    PROTO_ADMIN_REASSIGN, -1, 7, 0, 0, false },
		{ "lru tune 10 25 0.1 2.0\r\n", PROTO_CMD_LRU,
		    PROTO_ADMIN_LRU_TUNE, 10, 25, 0.1, 2.0, false },
		{ "lru tune -5 85 1 1 noreply\r\n", PROTO_CMD_LRU,
		    PROTO_ADMIN_LRU_TUNE, -5, 85, 1, 1, true },
		{ "lru mode flat\r\n", PROTO_CMD_LRU, PROTO_ADMIN_LRU_MODE,
		    0, 0, 0, 0, false },
		{ "lru mode segmented\r\n", PROTO_CMD_LRU,
		    PROTO_ADMIN_LRU_MODE, 1, 0, 0, 0, false },
		{ "lru temp_ttl -1\r\n", PROTO_CMD_LRU,
		    PROTO_ADMIN_LRU_TEMP_TTL, -1, 0, 0, 0, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = strlen(cases[i].line);
		struct parsed ps;

		CHECK(parse_n(&ps, cases[i].line, n) == PROTO_OK,
		    cases[i].line, n);
		CHECK(ps.req.cmd == cases[i].cmd, cases[i].line, n);
		CHECK(ps.req.admin.sub == cases[i].sub, cases[i].line, n);
		CHECK(ps.req.admin.n1 == cases[i].n1, cases[i].line, n);
		CHECK(ps.req.admin.n2 == cases[i].n2, cases[i].line, n);
		CHECK(ps.req.admin.f1 == cases[i].f1, cases[i].line, n);
		CHECK(ps.req.admin.f2 == cases[i].f2, cases[i].line, n);
		CHECK(ps.req.noreply == cases[i].noreply, cases[i].line, n);
		parsed_free(&ps);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_cases),
		cmocka_unit_test(test_ok_split_every_byte),
		cmocka_unit_test(test_ok_pipelined),
		cmocka_unit_test(test_key_length_limit),
		cmocka_unit_test(test_next_key),
		cmocka_unit_test(test_next_key_parsed),
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_admin_lines),
		cmocka_unit_test(test_bad_then_good),
		cmocka_unit_test(test_http_closes),
		cmocka_unit_test(test_numbers_everywhere),
		cmocka_unit_test(test_memcached_keys),
		cmocka_unit_test(test_line_max),
		cmocka_unit_test(test_line_max_complete),
		cmocka_unit_test(test_long_get_lines),
		cmocka_unit_test(test_long_line_others),
		cmocka_unit_test(test_data_end),
		cmocka_unit_test(test_need_more_blank),
		cmocka_unit_test(test_fuzz_invariants),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_value_line),
		cmocka_unit_test(test_fmt_u64),
		cmocka_unit_test(test_u64_line),
		cmocka_unit_test(test_stat_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
