/*
 * test_proto_bin.c -- unit tests for the binary protocol's parser and
 * composers (protocol/proto_bin.c).
 *
 * Every request is built byte by byte here and parsed from an exact-size
 * heap copy, so AddressSanitizer catches a read past the end.  Expected
 * response bytes follow what Debian's memcached 1.6.18 was observed to
 * send (status codes, error texts, opaque and opcode echoed, CAS, flags
 * as extras, key echo); rows marked "ours" are where we differ on purpose
 * (see proto_bin.c's header).
 *
 * Data structure: a small request builder (struct breq), a table of one
 * request per opcode with the neutral fields the parser must fill, and a
 * capture proto_out (a growable buffer that counts references handed
 * back).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define OPAQUE	0xdeadbeefu

/* ---- building requests ------------------------------------------------ */

struct breq {
	uint8_t		 magic;
	uint8_t		 opcode;
	const char	*key;
	size_t		 nkey;
	const char	*ext;
	size_t		 next;
	const char	*val;
	size_t		 nval;
	uint32_t	 bodylen;	/* with set_bodylen, else the sum */
	bool		 set_bodylen;
	uint16_t	 keylen;	/* with set_keylen, else nkey */
	bool		 set_keylen;
	uint64_t	 cas;
};

static void
be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* Writes request r into out (room for 24 + parts); returns its length. */
static size_t
build(const struct breq *r, char *out)
{
	unsigned char	*h = (unsigned char *)out;
	size_t		 body = r->next + r->nkey + r->nval;

	h[0] = r->magic != 0 ? r->magic : 0x80;
	h[1] = r->opcode;
	be(h + 2, r->set_keylen ? r->keylen : r->nkey, 2);
	h[4] = (unsigned char)r->next;
	h[5] = 0;
	be(h + 6, 0, 2);
	be(h + 8, r->set_bodylen ? r->bodylen : body, 4);
	be(h + 12, OPAQUE, 4);
	be(h + 16, r->cas, 8);
	if (r->next > 0)
		memcpy(out + 24, r->ext, r->next);
	if (r->nkey > 0)
		memcpy(out + 24 + r->next, r->key, r->nkey);
	if (r->nval > 0)
		memcpy(out + 24 + r->next + r->nkey, r->val, r->nval);
	return 24 + body;
}

#define REQ(...)	((struct breq){ __VA_ARGS__ })
#define BODYLEN(n)	.bodylen = (n), .set_bodylen = true
#define KEYLEN(n)	.keylen = (n), .set_keylen = true
#define KEY(s)		.key = (s), .nkey = sizeof(s) - 1
#define EXT(s)		.ext = (s), .next = sizeof(s) - 1
#define VAL(s)		.val = (s), .nval = sizeof(s) - 1

/* Parses n bytes of s from an exact-size heap copy; *buf keeps it. */
static enum proto_result
parse_n(const char *s, size_t n, struct proto_req *req, size_t *consumed,
    char **buf)
{
	enum proto_result r;

	*buf = malloc(n > 0 ? n : 1);
	assert_non_null(*buf);
	memcpy(*buf, s, n);
	*consumed = 12345;
	r = proto_bin.parse(*buf, n, req, consumed);
	if (r == PROTO_NEED_MORE)
		assert_int_equal(*consumed, 12345);
	else
		assert_true(*consumed >= 1 && *consumed <= n);
	if (r == PROTO_BAD)
		assert_non_null(req->error);
	return r;
}

/* The 24-byte response header expected for status st, key/extras/body
 * lengths and cas, for a request with opcode op. */
static void
want_header(char *p, uint8_t op, uint16_t st, size_t nkey, size_t next,
    size_t nbody, uint64_t cas)
{
	unsigned char *h = (unsigned char *)p;

	h[0] = 0x81;
	h[1] = op;
	be(h + 2, nkey, 2);
	h[4] = (unsigned char)next;
	h[5] = 0;
	be(h + 6, st, 2);
	be(h + 8, nbody, 4);
	be(h + 12, OPAQUE, 4);
	be(h + 16, cas, 8);
}

/* ---- parsing: one request per opcode ----------------------------------- */

static const char ext_set[8] = { 0, 0, 0, 5, 0, 0, 0, 30 };	/* flags 5, 30 s */
static const char ext_touch[4] = { 0, 0, 0, 60 };
static const char ext_arith[20] = { 0, 0, 0, 0, 0, 0, 0, 3,	/* delta 3 */
	0, 0, 0, 0, 0, 0, 0, 9,					/* initial 9 */
	0, 0, 0, 40 };						/* exptime 40 */
static const char ext_arith_nocreate[20] = { 0, 0, 0, 0, 0, 0, 0, 1,
	0, 0, 0, 0, 0, 0, 0, 0, (char)0xff, (char)0xff, (char)0xff,
	(char)0xff };

struct op_case {
	struct breq	 r;
	enum proto_result res;
	enum proto_cmd	 cmd;
	bool		 quiet;
	size_t		 consumed;	/* 0: the whole request */
};

#define SET_EXT		.ext = ext_set, .next = 8
#define TOUCH_EXT	.ext = ext_touch, .next = 4
#define ARITH_EXT	.ext = ext_arith, .next = 20

static const struct op_case op_cases[] = {
	{ REQ(.opcode = 0x00, KEY("foo")), PROTO_OK, PROTO_CMD_GET, false, 0 },
	{ REQ(.opcode = 0x09, KEY("foo")), PROTO_OK, PROTO_CMD_GET, true, 0 },
	{ REQ(.opcode = 0x0c, KEY("foo")), PROTO_OK, PROTO_CMD_GET, false, 0 },
	{ REQ(.opcode = 0x0d, KEY("foo")), PROTO_OK, PROTO_CMD_GET, true, 0 },
	/* stores: the value is left to the caller */
	{ REQ(.opcode = 0x01, KEY("foo"), SET_EXT, VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, false, 24 + 8 + 3 },
	{ REQ(.opcode = 0x11, KEY("foo"), SET_EXT, VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, true, 24 + 8 + 3 },
	{ REQ(.opcode = 0x02, KEY("foo"), SET_EXT, VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, false, 24 + 8 + 3 },
	{ REQ(.opcode = 0x12, KEY("foo"), SET_EXT, VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, true, 24 + 8 + 3 },
	{ REQ(.opcode = 0x03, KEY("foo"), SET_EXT, VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, false, 24 + 8 + 3 },
	{ REQ(.opcode = 0x13, KEY("foo"), SET_EXT, VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, true, 24 + 8 + 3 },
	{ REQ(.opcode = 0x0e, KEY("foo"), VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, false, 24 + 3 },
	{ REQ(.opcode = 0x19, KEY("foo"), VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, true, 24 + 3 },
	{ REQ(.opcode = 0x0f, KEY("foo"), VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, false, 24 + 3 },
	{ REQ(.opcode = 0x1a, KEY("foo"), VAL("bar")), PROTO_OK,
	    PROTO_CMD_MS, true, 24 + 3 },
	{ REQ(.opcode = 0x04, KEY("foo")), PROTO_OK, PROTO_CMD_MD, false, 0 },
	{ REQ(.opcode = 0x14, KEY("foo")), PROTO_OK, PROTO_CMD_MD, true, 0 },
	{ REQ(.opcode = 0x05, KEY("n"), ARITH_EXT), PROTO_OK, PROTO_CMD_MA,
	    false, 0 },
	{ REQ(.opcode = 0x15, KEY("n"), ARITH_EXT), PROTO_OK, PROTO_CMD_MA,
	    true, 0 },
	{ REQ(.opcode = 0x06, KEY("n"), ARITH_EXT), PROTO_OK, PROTO_CMD_MA,
	    false, 0 },
	{ REQ(.opcode = 0x16, KEY("n"), ARITH_EXT), PROTO_OK, PROTO_CMD_MA,
	    true, 0 },
	{ REQ(.opcode = 0x07), PROTO_CLOSE, PROTO_CMD_QUIT, false, 0 },
	{ REQ(.opcode = 0x17), PROTO_CLOSE, PROTO_CMD_QUIT, true, 0 },
	{ REQ(.opcode = 0x08), PROTO_OK, PROTO_CMD_FLUSH_ALL, false, 0 },
	{ REQ(.opcode = 0x18, TOUCH_EXT), PROTO_OK, PROTO_CMD_FLUSH_ALL, true,
	    0 },
	{ REQ(.opcode = 0x0a), PROTO_OK, PROTO_CMD_MN, false, 0 },
	{ REQ(.opcode = 0x0b), PROTO_OK, PROTO_CMD_VERSION, false, 0 },
	{ REQ(.opcode = 0x10), PROTO_OK, PROTO_CMD_STATS, false, 0 },
	{ REQ(.opcode = 0x10, KEY("settings")), PROTO_OK, PROTO_CMD_STATS,
	    false, 0 },
	{ REQ(.opcode = 0x1b, TOUCH_EXT), PROTO_OK, PROTO_CMD_VERBOSITY,
	    false, 0 },
	{ REQ(.opcode = 0x1c, KEY("foo"), TOUCH_EXT), PROTO_OK, PROTO_CMD_GAT,
	    false, 0 },
	{ REQ(.opcode = 0x1d, KEY("foo"), TOUCH_EXT), PROTO_OK, PROTO_CMD_GAT,
	    false, 0 },
	{ REQ(.opcode = 0x1e, KEY("foo"), TOUCH_EXT), PROTO_OK, PROTO_CMD_GAT,
	    true, 0 },
	{ REQ(.opcode = 0x23, KEY("foo"), TOUCH_EXT), PROTO_OK, PROTO_CMD_GAT,
	    false, 0 },
	{ REQ(.opcode = 0x24, KEY("foo"), TOUCH_EXT), PROTO_OK, PROTO_CMD_GAT,
	    true, 0 },
	{ REQ(.opcode = 0x20), PROTO_OK, PROTO_CMD_SASL_LIST, false, 0 },
	/* SASL data is read whole */
	{ REQ(.opcode = 0x21, KEY("PLAIN"), VAL("\0u\0p")), PROTO_OK,
	    PROTO_CMD_SASL_AUTH, false, 0 },
	{ REQ(.opcode = 0x22, KEY("PLAIN"), VAL("xyz")), PROTO_OK,
	    PROTO_CMD_SASL_STEP, false, 0 },
};

/* Every opcode parses to its neutral command, whole and at once; the
 * header fields replies echo are kept. */
static void
test_every_opcode(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof op_cases / sizeof op_cases[0]; i++) {
		const struct op_case	*c = &op_cases[i];
		struct proto_req	 req;
		char			 in[600], *buf;
		size_t			 n = build(&c->r, in), consumed;
		enum proto_result	 r;

		r = parse_n(in, n, &req, &consumed, &buf);
		if (r != c->res)
			fail_msg("opcode 0x%02x: result %d", c->r.opcode, r);
		assert_int_equal(consumed, c->consumed ? c->consumed : n);
		assert_int_equal(req.bin.opcode, c->r.opcode);
		assert_memory_equal(&req.bin.opaque, in + 12, 4);
		if (r == PROTO_OK) {
			assert_int_equal(req.cmd, c->cmd);
			assert_int_equal(req.noreply, c->quiet);
			if (c->r.nkey > 0 && c->cmd != PROTO_CMD_STATS) {
				assert_int_equal(req.nkey, c->r.nkey);
				assert_memory_equal(req.key, c->r.key,
				    c->r.nkey);
			}
		}
		free(buf);
	}
}

/* Parses request r whole into req (buf keeps the bytes). */
static enum proto_result
parse_req(const struct breq *r, struct proto_req *req, char **buf)
{
	char	in[600];
	size_t	consumed;

	return parse_n(in, build(r, in), req, &consumed, buf);
}

/* The fields of each kind of request, as dispatch reads them. */
static void
test_fields(void **state)
{
	struct proto_req	 req;
	char			*buf;

	(void)state;
	/* set: an ms with flags, TTL, the value left to stream */
	assert_int_equal(parse_req(&REQ(.opcode = 0x01, KEY("foo"), SET_EXT,
	    VAL("bar")), &req, &buf), PROTO_OK);
	assert_int_equal(req.meta.mode, 'S');
	assert_int_equal(req.meta.client_flags, 5);
	assert_int_equal(req.meta.ttl, 30);
	assert_true(req.meta.flags & PROTO_MF('T'));
	assert_false(req.meta.flags & PROTO_MF('C'));
	assert_int_equal(req.nbytes, 3);
	assert_true(req.bare_value);
	free(buf);
	/* add with a CAS is a compare-and-swap, as in memcached */
	assert_int_equal(parse_req(&REQ(.opcode = 0x02, KEY("foo"), SET_EXT,
	    VAL("bar"), .cas = 77), &req, &buf), PROTO_OK);
	assert_int_equal(req.meta.mode, 'S');
	assert_true(req.meta.flags & PROTO_MF('C'));
	assert_int_equal(req.meta.cas, 77);
	free(buf);
	assert_int_equal(parse_req(&REQ(.opcode = 0x03, KEY("foo"), SET_EXT),
	    &req, &buf), PROTO_OK);
	assert_int_equal(req.meta.mode, 'R');
	assert_int_equal(req.nbytes, 0);
	free(buf);
	assert_int_equal(parse_req(&REQ(.opcode = 0x19, KEY("foo"), VAL("xy"),
	    .cas = 5), &req, &buf), PROTO_OK);
	assert_int_equal(req.meta.mode, 'A');
	assert_int_equal(req.meta.cas, 5);
	assert_int_equal(req.nbytes, 2);
	free(buf);
	/* incr: delta, initial, create on a miss */
	assert_int_equal(parse_req(&REQ(.opcode = 0x05, KEY("n"), ARITH_EXT),
	    &req, &buf), PROTO_OK);
	assert_int_equal(req.meta.mode, 'I');
	assert_int_equal(req.meta.delta, 3);
	assert_int_equal(req.meta.initial, 9);
	assert_true(req.meta.flags & PROTO_MF('N'));
	assert_int_equal(req.meta.vivify_ttl, 40);
	free(buf);
	/* exptime 0xffffffff: do not create */
	assert_int_equal(parse_req(&REQ(.opcode = 0x06, KEY("n"),
	    .ext = ext_arith_nocreate, .next = 20), &req, &buf), PROTO_OK);
	assert_int_equal(req.meta.mode, 'D');
	assert_false(req.meta.flags & PROTO_MF('N'));
	free(buf);
	/* delete with a CAS */
	assert_int_equal(parse_req(&REQ(.opcode = 0x04, KEY("foo"),
	    .cas = 9), &req, &buf), PROTO_OK);
	assert_true(req.meta.flags & PROTO_MF('C'));
	assert_int_equal(req.meta.cas, 9);
	free(buf);
	/* touch and gat: one key, no key list */
	assert_int_equal(parse_req(&REQ(.opcode = 0x1d, KEY("a b"),
	    TOUCH_EXT), &req, &buf), PROTO_OK);
	assert_int_equal(req.exptime, 60);
	assert_null(req.keys);
	{
		size_t		 cursor = 0, nkey;
		const char	*key;

		/* a binary key may hold a space: it stays one key */
		assert_true(proto_next_key(&req, &cursor, &key, &nkey));
		assert_int_equal(nkey, 3);
		assert_memory_equal(key, "a b", 3);
		assert_false(proto_next_key(&req, &cursor, &key, &nkey));
	}
	free(buf);
	/* flush with and without a delay */
	assert_int_equal(parse_req(&REQ(.opcode = 0x08, TOUCH_EXT), &req,
	    &buf), PROTO_OK);
	assert_int_equal(req.delay, 60);
	free(buf);
	assert_int_equal(parse_req(&REQ(.opcode = 0x08), &req, &buf),
	    PROTO_OK);
	assert_int_equal(req.delay, 0);
	free(buf);
	/* stat: the group is the key */
	assert_int_equal(parse_req(&REQ(.opcode = 0x10, KEY("items")), &req,
	    &buf), PROTO_OK);
	assert_int_equal(req.narg, 5);
	assert_memory_equal(req.arg, "items", 5);
	free(buf);
	assert_int_equal(parse_req(&REQ(.opcode = 0x10), &req, &buf),
	    PROTO_OK);
	assert_int_equal(req.narg, 0);
	assert_non_null(req.arg);
	free(buf);
	/* sasl: mechanism and data */
	assert_int_equal(parse_req(&REQ(.opcode = 0x21, KEY("PLAIN"),
	    VAL("\0u\0p")), &req, &buf), PROTO_OK);
	assert_int_equal(req.nkey, 5);
	assert_int_equal(req.narg, 4);
	assert_memory_equal(req.arg, "\0u\0p", 4);
	free(buf);
	/* verbosity */
	assert_int_equal(parse_req(&REQ(.opcode = 0x1b, TOUCH_EXT), &req,
	    &buf), PROTO_OK);
	assert_int_equal(req.level, 60);
	free(buf);
}

/* Every proper prefix of every request wants more bytes; the parse
 * then completes with the same result. */
static void
test_short_reads(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof op_cases / sizeof op_cases[0]; i++) {
		const struct op_case	*c = &op_cases[i];
		struct proto_req	 req;
		char			 in[600], *buf;
		size_t			 n = build(&c->r, in), consumed;
		size_t			 whole = c->consumed ? c->consumed : n;

		for (size_t k = 0; k < whole; k++) {
			if (parse_n(in, k, &req, &consumed, &buf) !=
			    PROTO_NEED_MORE)
				fail_msg("opcode 0x%02x: prefix %zu not "
				    "NEED_MORE", c->r.opcode, k);
			free(buf);
		}
		assert_int_equal(parse_n(in, whole, &req, &consumed, &buf),
		    c->res);
		free(buf);
	}
}

/* An error response as the parser leaves it in req. */
static void
check_error(const struct proto_req *req, uint8_t op, uint16_t st,
    const char *msg)
{
	char	want[PROTO_BIN_RESP_MAX];
	size_t	n = strlen(msg);

	want_header(want, op, st, 0, 0, n, 0);
	memcpy(want + 24, msg, n);
	assert_non_null(req->error);
	assert_int_equal(req->nerror, 24 + n);
	assert_memory_equal(req->error, want, 24 + n);
}

/* Lengths that disagree: memcached's replies, and the connection closed
 * where framing is lost. */
static void
test_bad_lengths(void **state)
{
	struct proto_req	 req;
	char			 in[600], *buf, *huge;
	size_t			 n, consumed;

	(void)state;
	/* keylen + extlen > bodylen: Unknown command, close */
	n = build(&REQ(.opcode = 0x00, KEY("foo"), BODYLEN(2)), in);
	assert_int_equal(parse_n(in, 24, &req, &consumed, &buf), PROTO_CLOSE);
	check_error(&req, 0x00, 0x81, "Unknown command");
	free(buf);
	n = build(&REQ(.opcode = 0x01, KEY("foo"), SET_EXT, BODYLEN(10)),
	    in);
	assert_int_equal(parse_n(in, n, &req, &consumed, &buf), PROTO_CLOSE);
	check_error(&req, 0x01, 0x81, "Unknown command");
	free(buf);
	/* a key over 250 bytes: Invalid arguments, close, decided from the
	 * header alone */
	n = build(&REQ(.opcode = 0x00, KEYLEN(251), BODYLEN(251)), in);
	assert_int_equal(parse_n(in, n, &req, &consumed, &buf), PROTO_CLOSE);
	assert_int_equal(consumed, 24);
	check_error(&req, 0x00, 0x04, "Invalid arguments");
	free(buf);
	/* lengths wrong for the opcode: Invalid arguments, close */
	{
		static const struct breq bad[] = {
			REQ(.opcode = 0x00, KEY("foo"), TOUCH_EXT),
			REQ(.opcode = 0x00),
			REQ(.opcode = 0x00, KEY("foo"), VAL("x")),
			REQ(.opcode = 0x01, KEY("foo"), TOUCH_EXT, VAL("x")),
			REQ(.opcode = 0x01, SET_EXT, VAL("x")),
			REQ(.opcode = 0x0e, KEY("foo"), TOUCH_EXT),
			REQ(.opcode = 0x04, KEY("foo"), VAL("x")),
			REQ(.opcode = 0x05, KEY("n"), TOUCH_EXT),
			REQ(.opcode = 0x05, KEY("n"), ARITH_EXT, VAL("x")),
			REQ(.opcode = 0x0a, VAL("x")),
			REQ(.opcode = 0x0b, KEY("x")),
			REQ(.opcode = 0x07, TOUCH_EXT),
			REQ(.opcode = 0x08, KEY("x")),
			REQ(.opcode = 0x08, EXT("ab")),
			REQ(.opcode = 0x1c, KEY("foo")),
			/* ours: surplus body bytes would run as commands */
			REQ(.opcode = 0x1c, KEY("foo"), TOUCH_EXT, VAL("x")),
			REQ(.opcode = 0x10, KEY("foo"), VAL("x")),
			REQ(.opcode = 0x21, VAL("x")),
			REQ(.opcode = 0x20, KEY("x")),
			REQ(.opcode = 0x1b),
		};

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			n = build(&bad[i], in);
			if (parse_n(in, n, &req, &consumed, &buf) !=
			    PROTO_CLOSE)
				fail_msg("bad case %zu not closed", i);
			assert_int_equal(consumed, 24);
			check_error(&req, bad[i].opcode, 0x04,
			    "Invalid arguments");
			free(buf);
		}
	}
	/* an unknown opcode: Unknown command, its whole body skipped
	 * (ours: memcached skips bodylen bytes after the key), and the
	 * connection goes on */
	n = build(&REQ(.opcode = 0x50, KEY("ab"), VAL("xyz")), in);
	assert_int_equal(parse_n(in, 24, &req, &consumed, &buf), PROTO_BAD);
	assert_int_equal(consumed, 24);
	assert_int_equal(req.swallow, 5);
	check_error(&req, 0x50, 0x81, "Unknown command");
	free(buf);
	/* ... unless its body is absurd */
	n = build(&REQ(.opcode = 0x50, BODYLEN(0x7fffffff)), in);
	assert_int_equal(parse_n(in, n, &req, &consumed, &buf), PROTO_CLOSE);
	check_error(&req, 0x50, 0x81, "Unknown command");
	free(buf);
	/* a set promising 2 GB parses (the caller refuses the size) without
	 * waiting for, or buffering, any of the value */
	n = build(&REQ(.opcode = 0x01, KEY("k"), SET_EXT,
	    BODYLEN(0x7fffffff)), in);
	assert_int_equal(parse_n(in, n, &req, &consumed, &buf), PROTO_OK);
	assert_int_equal(consumed, 24 + 8 + 1);
	assert_int_equal(req.nbytes, 0x7fffffff - 9);
	free(buf);
	/* SASL data over 1024 bytes: close (ours) */
	huge = calloc(1, 24 + 5 + 1025);
	assert_non_null(huge);
	n = build(&REQ(.opcode = 0x21, KEY("PLAIN"), BODYLEN(5 + 1025)),
	    huge);
	assert_int_equal(parse_n(huge, 24 + 5 + 1025, &req, &consumed, &buf),
	    PROTO_CLOSE);
	free(buf);
	free(huge);
	/* not binary: closed without a reply, from the first byte */
	assert_int_equal(parse_n("g", 1, &req, &consumed, &buf), PROTO_CLOSE);
	assert_null(req.error);
	free(buf);
	n = build(&REQ(.magic = 0x81, .opcode = 0x0a), in);
	assert_int_equal(parse_n(in, n, &req, &consumed, &buf), PROTO_CLOSE);
	assert_null(req.error);
	free(buf);
	assert_int_equal(parse_n("", 0, &req, &consumed, &buf),
	    PROTO_NEED_MORE);
	free(buf);
}

/* quit answers and closes; quitq closes without a word. */
static void
test_quit(void **state)
{
	struct proto_req	 req;
	char			*buf, want[24];

	(void)state;
	assert_int_equal(parse_req(&REQ(.opcode = 0x07), &req, &buf),
	    PROTO_CLOSE);
	want_header(want, 0x07, 0, 0, 0, 0, 0);
	assert_int_equal(req.nerror, 24);
	assert_memory_equal(req.error, want, 24);
	free(buf);
	assert_int_equal(parse_req(&REQ(.opcode = 0x17), &req, &buf),
	    PROTO_CLOSE);
	assert_null(req.error);
	free(buf);
}

/* Several requests back to back parse one after the other. */
static void
test_pipeline(void **state)
{
	struct proto_req	 req;
	char			 in[600], *buf;
	size_t			 n = 0, pos = 0, consumed;
	static const uint8_t	 want[] = { 0x0a, 0x0d, 0x0b, 0x04 };

	(void)state;
	n += build(&REQ(.opcode = 0x0a), in + n);
	n += build(&REQ(.opcode = 0x0d, KEY("k1")), in + n);
	n += build(&REQ(.opcode = 0x0b), in + n);
	n += build(&REQ(.opcode = 0x04, KEY("k2")), in + n);
	for (size_t i = 0; i < sizeof want; i++) {
		assert_int_equal(parse_n(in + pos, n - pos, &req, &consumed,
		    &buf), PROTO_OK);
		assert_int_equal(req.bin.opcode, want[i]);
		pos += consumed;
		free(buf);
	}
	assert_int_equal(pos, n);
}

/* ---- composing ---------------------------------------------------------- */

struct capture {
	struct proto_out out;
	char		*buf;
	size_t		 len;
	size_t		 cap;
	int		 refs;
};

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

static void
cap_commit(struct proto_out *o, size_t used)
{
	((struct capture *)(void *)o)->len += used;
}

static void
cap_value(struct proto_out *o, const char *data, size_t n, void *ref)
{
	struct capture *c = (struct capture *)(void *)o;

	assert_non_null(ref);
	if (n > 0)
		memcpy(cap_space(o, n), data, n);
	cap_commit(o, n);
	c->refs++;
}

static void
cap_release(struct proto_out *o, void *ref)
{
	assert_non_null(ref);
	((struct capture *)(void *)o)->refs++;
}

static bool
cap_full(const struct proto_out *o)
{
	(void)o;
	return false;
}

/* Starts an empty capture; copy_max > 0 gives it a release(). */
static void
cap_init(struct capture *c, size_t copy_max)
{
	*c = (struct capture){ .out = { .space = cap_space,
	    .commit = cap_commit, .value = cap_value, .full = cap_full,
	    .copy_max = copy_max,
	    .release = copy_max > 0 ? cap_release : NULL } };
}

/* A request for composer tests: opcode op, key "foo". */
static struct proto_req
mkreq(uint8_t op, enum proto_cmd cmd, bool quiet)
{
	struct proto_req req;

	memset(&req, 0, sizeof req);
	req.cmd = cmd;
	req.noreply = quiet;
	req.key = "foo";
	req.nkey = 3;
	req.bin.opcode = op;
	req.bin.opaque = 0;
	memcpy(&req.bin.opaque, "\xde\xad\xbe\xef", 4);
	return req;
}

/* The capture holds exactly want[0 .. n). */
static void
check_cap(struct capture *c, const char *want, size_t n)
{
	assert_int_equal(c->len, n);
	if (n > 0)
		assert_memory_equal(c->buf, want, n);
	free(c->buf);
}

/* Appends an error response to want at *n. */
static void
add_error(char *want, size_t *n, uint8_t op, uint16_t st, const char *msg)
{
	size_t m = strlen(msg);

	want_header(want + *n, op, st, 0, 0, m, 0);
	memcpy(want + *n + 24, msg, m);
	*n += 24 + m;
}

/* Statuses map onto memcached's codes and texts by opcode. */
static void
test_status(void **state)
{
	static const struct {
		uint8_t		 op;
		enum proto_cmd	 cmd;
		enum proto_reply r;
		uint16_t	 st;
		const char	*msg;
	} rows[] = {
		{ 0x02, PROTO_CMD_MS, PROTO_R_NOT_STORED, 0x02,
		    "Data exists for key." },
		{ 0x03, PROTO_CMD_MS, PROTO_R_NOT_STORED, 0x01, "Not found" },
		{ 0x0e, PROTO_CMD_MS, PROTO_R_NOT_STORED, 0x05, "Not stored." },
		{ 0x01, PROTO_CMD_MS, PROTO_R_EXISTS, 0x02,
		    "Data exists for key." },
		{ 0x01, PROTO_CMD_MS, PROTO_R_NOT_FOUND, 0x01, "Not found" },
		{ 0x01, PROTO_CMD_MS, PROTO_R_TOO_LARGE, 0x03, "Too large." },
		{ 0x01, PROTO_CMD_MS, PROTO_R_NO_MEMORY, 0x82,
		    "Out of memory" },
		{ 0x04, PROTO_CMD_MD, PROTO_R_NOT_FOUND, 0x01, "Not found" },
		{ 0x05, PROTO_CMD_MA, PROTO_R_NON_NUMERIC, 0x06,
		    "Non-numeric server-side value for incr or decr" },
		{ 0x10, PROTO_CMD_STATS, PROTO_R_ERROR, 0x01, "Not found" },
		{ 0x20, PROTO_CMD_SASL_LIST, PROTO_R_ERROR, 0x81,
		    "Unknown command" },
		{ 0x21, PROTO_CMD_SASL_AUTH, PROTO_R_AUTH_ERROR, 0x20,
		    "Auth failure." },
		/* errors go out for quiet requests too */
		{ 0x14, PROTO_CMD_MD, PROTO_R_NOT_FOUND, 0x01, "Not found" },
		{ 0x12, PROTO_CMD_MS, PROTO_R_NOT_STORED, 0x02,
		    "Data exists for key." },
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct proto_req	req = mkreq(rows[i].op, rows[i].cmd,
					    rows[i].op == 0x14 ||
					    rows[i].op == 0x12);
		struct capture		c;
		char			want[200];
		size_t			n = 0;

		cap_init(&c, 0);
		proto_bin.status(&c.out, &req, rows[i].r);
		add_error(want, &n, rows[i].op, rows[i].st, rows[i].msg);
		check_cap(&c, want, n);
	}
}

/* Successes: an empty response, a body for SASL; nothing when quiet. */
static void
test_success(void **state)
{
	struct proto_req	 req;
	struct capture		 c;
	char			 want[100];

	(void)state;
	req = mkreq(0x04, PROTO_CMD_MD, false);
	cap_init(&c, 0);
	proto_bin.status(&c.out, &req, PROTO_R_DELETED);
	want_header(want, 0x04, 0, 0, 0, 0, 0);
	check_cap(&c, want, 24);
	req = mkreq(0x14, PROTO_CMD_MD, true);
	cap_init(&c, 0);
	proto_bin.status(&c.out, &req, PROTO_R_DELETED);
	check_cap(&c, want, 0);
	req = mkreq(0x18, PROTO_CMD_FLUSH_ALL, true);
	cap_init(&c, 0);
	proto_bin.status(&c.out, &req, PROTO_R_OK);
	check_cap(&c, want, 0);
	req = mkreq(0x0a, PROTO_CMD_MN, false);
	cap_init(&c, 0);
	proto_bin.status(&c.out, &req, PROTO_R_NOOP);
	want_header(want, 0x0a, 0, 0, 0, 0, 0);
	check_cap(&c, want, 24);
	req = mkreq(0x21, PROTO_CMD_SASL_AUTH, false);
	cap_init(&c, 0);
	proto_bin.status(&c.out, &req, PROTO_R_AUTH_OK);
	want_header(want, 0x21, 0, 0, 0, 13, 0);
	memcpy(want + 24, "Authenticated", 13);
	check_cap(&c, want, 24 + 13);
	req = mkreq(0x20, PROTO_CMD_SASL_LIST, false);
	cap_init(&c, 0);
	proto_bin.status(&c.out, &req, PROTO_R_AUTH_MECHS);
	want_header(want, 0x20, 0, 0, 0, 5, 0);
	memcpy(want + 24, "PLAIN", 5);
	check_cap(&c, want, 24 + 5);
	/* stats reset: just the terminating empty response */
	req = mkreq(0x10, PROTO_CMD_STATS, false);
	cap_init(&c, 0);
	proto_bin.status(&c.out, &req, PROTO_R_RESET);
	want_header(want, 0x10, 0, 0, 0, 0, 0);
	check_cap(&c, want, 24);
}

static int ref_token;

/* Get hits: flags as extras, key for the K opcodes, value but for touch,
 * the item's CAS; the reference always comes back, copied or not. */
static void
test_hits(void **state)
{
	static const struct {
		uint8_t	op;
		bool	key;
		bool	value;
	} rows[] = {
		{ 0x00, false, true }, { 0x09, false, true },
		{ 0x0c, true, true }, { 0x0d, true, true },
		{ 0x1d, false, true }, { 0x1e, false, true },
		{ 0x23, true, true }, { 0x24, true, true },
		{ 0x1c, false, false },
	};
	struct proto_hit h = { .key = "foo", .nkey = 3, .flags = 0x01020304,
	    .cas = 0x1122334455667788ULL, .value = "hello", .nbytes = 5,
	    .ref = &ref_token };

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		for (size_t copy = 0; copy <= 64; copy += 64) {
			struct proto_req req = mkreq(rows[i].op, PROTO_CMD_GET,
			    false);
			struct capture	 c;
			char		 want[100];
			size_t		 nk = rows[i].key ? 3 : 0;
			size_t		 nv = rows[i].value ? 5 : 0;

			cap_init(&c, copy);
			proto_bin.hit(&c.out, &req, &h);
			want_header(want, rows[i].op, 0, nk, 4, 4 + nk + nv,
			    h.cas);
			memcpy(want + 24, "\x01\x02\x03\x04", 4);
			memcpy(want + 28, "foo", nk);
			memcpy(want + 28 + nk, "hello", nv);
			assert_int_equal(c.refs, 1);
			check_cap(&c, want, 28 + nk + nv);
		}
	}
}

/* Misses: "Not found", the key alone for the K opcodes, nothing when
 * quiet. */
static void
test_misses(void **state)
{
	struct proto_req	 req;
	struct capture		 c;
	char			 want[100];
	size_t			 n = 0;

	(void)state;
	req = mkreq(0x00, PROTO_CMD_GET, false);
	cap_init(&c, 0);
	proto_bin.miss(&c.out, &req);
	add_error(want, &n, 0x00, 0x01, "Not found");
	check_cap(&c, want, n);
	req = mkreq(0x0c, PROTO_CMD_GET, false);
	cap_init(&c, 0);
	proto_bin.miss(&c.out, &req);
	want_header(want, 0x0c, 0x01, 3, 0, 3, 0);
	memcpy(want + 24, "foo", 3);
	check_cap(&c, want, 27);
	req = mkreq(0x23, PROTO_CMD_GAT, false);
	cap_init(&c, 0);
	proto_bin.miss(&c.out, &req);
	want_header(want, 0x23, 0x01, 3, 0, 3, 0);
	check_cap(&c, want, 27);
	req = mkreq(0x09, PROTO_CMD_GET, true);
	cap_init(&c, 0);
	proto_bin.miss(&c.out, &req);
	check_cap(&c, want, 0);
	req = mkreq(0x0d, PROTO_CMD_GET, true);
	cap_init(&c, 0);
	proto_bin.miss(&c.out, &req);
	check_cap(&c, want, 0);
	/* a get has no end marker */
	req = mkreq(0x00, PROTO_CMD_GET, false);
	cap_init(&c, 0);
	proto_bin.end(&c.out, &req);
	check_cap(&c, want, 0);
}

/* A store's success carries the new CAS; incr its value as 8 bytes. */
static void
test_store_and_arith(void **state)
{
	struct proto_req	 req;
	struct capture		 c;
	char			 want[100];
	struct proto_hit	 stored = { .key = "foo", .nkey = 3,
				    .cas = 42 };
	struct proto_hit	 num = { .key = "n", .nkey = 1, .cas = 43,
				    .value = "1234", .nbytes = 4,
				    .ref = &ref_token };

	(void)state;
	req = mkreq(0x01, PROTO_CMD_MS, false);
	cap_init(&c, 0);
	proto_bin.hit(&c.out, &req, &stored);
	want_header(want, 0x01, 0, 0, 0, 0, 42);
	check_cap(&c, want, 24);
	req = mkreq(0x11, PROTO_CMD_MS, true);
	cap_init(&c, 0);
	proto_bin.hit(&c.out, &req, &stored);
	check_cap(&c, want, 0);
	req = mkreq(0x05, PROTO_CMD_MA, false);
	cap_init(&c, 64);
	proto_bin.hit(&c.out, &req, &num);
	want_header(want, 0x05, 0, 0, 0, 8, 43);
	memcpy(want + 24, "\0\0\0\0\0\0\x04\xd2", 8);
	assert_int_equal(c.refs, 1);
	check_cap(&c, want, 32);
	req = mkreq(0x16, PROTO_CMD_MA, true);
	cap_init(&c, 0);
	proto_bin.hit(&c.out, &req, &num);
	assert_int_equal(c.refs, 1);
	check_cap(&c, want, 0);
	req = mkreq(0x06, PROTO_CMD_DECR, false);
	cap_init(&c, 0);
	proto_bin.number(&c.out, &req, 1234);
	want_header(want, 0x06, 0, 0, 0, 8, 0);
	check_cap(&c, want, 32);
}

/* Stats: one response per statistic, an empty one at the end; version
 * as the body. */
static void
test_stat_version(void **state)
{
	struct proto_req	 req = mkreq(0x10, PROTO_CMD_STATS, false);
	struct capture		 c;
	char			 want[100];

	(void)state;
	cap_init(&c, 0);
	proto_bin.stat(&c.out, &req, "pid", "42", 2);
	proto_bin.end(&c.out, &req);
	want_header(want, 0x10, 0, 3, 0, 5, 0);
	memcpy(want + 24, "pid42", 5);
	want_header(want + 29, 0x10, 0, 0, 0, 0, 0);
	check_cap(&c, want, 53);
	req = mkreq(0x0b, PROTO_CMD_VERSION, false);
	cap_init(&c, 0);
	proto_bin.version(&c.out, &req, "1.6.18");
	want_header(want, 0x0b, 0, 0, 0, 6, 0);
	memcpy(want + 24, "1.6.18", 6);
	check_cap(&c, want, 30);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_opcode),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_short_reads),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_quit),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_hits),
		cmocka_unit_test(test_misses),
		cmocka_unit_test(test_store_and_arith),
		cmocka_unit_test(test_stat_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
