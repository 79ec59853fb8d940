/*
 * test_proto_resp.c -- unit tests for the reply parser (cmocka).
 *
 * Every input is copied into a heap buffer of exactly its length before it
 * is parsed, so under AddressSanitizer a parser that reads one byte past
 * the end fails the test.
 *
 * Data structure: tables.  ok_cases lists valid reply elements with the
 * fields the parser should fill; each is parsed whole, split at every byte
 * (every proper prefix must be NEED_MORE), back to back with a second
 * element, and in head mode.  bad_cases lists elements the parser must
 * refuse, with the bytes it reports consumed.  bin_ok and test_bin_bad do
 * the same for binary-protocol reply heads (proto_resp_parse_bin_head).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto_resp.h"

struct ok_case {
	const char		*in;
	enum proto_resp_kind	 kind;
	const char		*key;	/* VALUE key, STAT name, meta k flag */
	uint32_t		 flags;
	uint32_t		 nbytes;
	int			 has_cas;
	uint64_t		 cas;
	const char		*data;	/* VALUE or VA data, or NULL */
	uint64_t		 number;
	const char		*text;	/* or NULL: not checked */
};

static const struct ok_case ok_cases[] = {
	{ "STORED\r\n", PROTO_RESP_STORED, NULL, 0, 0, 0, 0, NULL, 0, NULL },
	{ "NOT_STORED\r\n", PROTO_RESP_NOT_STORED, NULL, 0, 0, 0, 0, NULL, 0,
	    NULL },
	{ "EXISTS\r\n", PROTO_RESP_EXISTS, NULL, 0, 0, 0, 0, NULL, 0, NULL },
	{ "NOT_FOUND\r\n", PROTO_RESP_NOT_FOUND, NULL, 0, 0, 0, 0, NULL, 0,
	    NULL },
	{ "DELETED\r\n", PROTO_RESP_DELETED, NULL, 0, 0, 0, 0, NULL, 0, NULL },
	{ "TOUCHED\r\n", PROTO_RESP_TOUCHED, NULL, 0, 0, 0, 0, NULL, 0, NULL },
	{ "OK\r\n", PROTO_RESP_OK_LINE, NULL, 0, 0, 0, 0, NULL, 0, NULL },
	{ "END\r\n", PROTO_RESP_END, NULL, 0, 0, 0, 0, NULL, 0, NULL },
	{ "RESET\r\n", PROTO_RESP_RESET, NULL, 0, 0, 0, 0, NULL, 0, NULL },
	{ "VALUE k 0 1\r\nx\r\n", PROTO_RESP_VALUE, "k", 0, 1, 0, 0, "x", 0,
	    NULL },
	{ "VALUE key:1 4294967295 5 18446744073709551615\r\nhe\r\no\r\n",
	    PROTO_RESP_VALUE, "key:1", 4294967295u, 5, 1,
	    18446744073709551615u, "he\r\no", 0, NULL },
	{ "VALUE empty 7 0 0\r\n\r\n", PROTO_RESP_VALUE, "empty", 7, 0, 1, 0,
	    "", 0, NULL },
	{ "0\r\n", PROTO_RESP_NUMBER, NULL, 0, 0, 0, 0, NULL, 0, NULL },
	{ "18446744073709551615\r\n", PROTO_RESP_NUMBER, NULL, 0, 0, 0, 0,
	    NULL, 18446744073709551615u, NULL },
	{ "STAT pid 1234\r\n", PROTO_RESP_STAT, "pid", 0, 0, 0, 0, NULL, 0,
	    "1234" },
	{ "STAT rusage_user 0.1 2\r\n", PROTO_RESP_STAT, "rusage_user", 0, 0,
	    0, 0, NULL, 0, "0.1 2" },
	{ "VERSION 1.6.21\r\n", PROTO_RESP_VERSION, NULL, 0, 0, 0, 0, NULL,
	    0, "1.6.21" },
	{ "ERROR\r\n", PROTO_RESP_ERROR, NULL, 0, 0, 0, 0, NULL, 0, "" },
	{ "ERROR Too many open connections\r\n", PROTO_RESP_ERROR, NULL, 0,
	    0, 0, 0, NULL, 0, "Too many open connections" },
	{ "ERROR: shutdown not enabled\r\n", PROTO_RESP_ERROR, NULL, 0, 0, 0,
	    0, NULL, 0, "shutdown not enabled" },
	{ "CLIENT_ERROR bad data chunk\r\n", PROTO_RESP_CLIENT_ERROR, NULL,
	    0, 0, 0, 0, NULL, 0, "bad data chunk" },
	{ "SERVER_ERROR out of memory storing object\r\n",
	    PROTO_RESP_SERVER_ERROR, NULL, 0, 0, 0, 0, NULL, 0,
	    "out of memory storing object" },
	{ "SERVER_ERROR\r\n", PROTO_RESP_SERVER_ERROR, NULL, 0, 0, 0, 0, NULL,
	    0, "" },
	/* meta replies */
	{ "HD\r\n", PROTO_RESP_HD, NULL, 0, 0, 0, 0, NULL, 0, "" },
	{ "HD c42 kfoo O123 q\r\n", PROTO_RESP_HD, "foo", 0, 0, 1, 42, NULL,
	    0, "c42 kfoo O123 q" },
	{ "VA 3 f5\r\nabc\r\n", PROTO_RESP_VA, NULL, 5, 3, 0, 0, "abc", 0,
	    "f5" },
	{ "VA 2 f4294967295 kkey:1 c7 t-1\r\nhi\r\n", PROTO_RESP_VA, "key:1",
	    4294967295u, 2, 1, 7, "hi", 0, "f4294967295 kkey:1 c7 t-1" },
	{ "VA 0\r\n\r\n", PROTO_RESP_VA, NULL, 0, 0, 0, 0, "", 0, "" },
	{ "EN\r\n", PROTO_RESP_EN, NULL, 0, 0, 0, 0, NULL, 0, "" },
	{ "MN\r\n", PROTO_RESP_MN, NULL, 0, 0, 0, 0, NULL, 0, "" },
	{ "NS\r\n", PROTO_RESP_NS, NULL, 0, 0, 0, 0, NULL, 0, "" },
	{ "EX c1\r\n", PROTO_RESP_EX, NULL, 0, 0, 1, 1, NULL, 0, "c1" },
	{ "NF kgone\r\n", PROTO_RESP_NF, "gone", 0, 0, 0, 0, NULL, 0,
	    "kgone" },
};

struct bad_case {
	const char	*in;
	size_t		 consumed;	/* (size_t)-1: the whole input */
};

#define ALL	((size_t)-1)
static const struct bad_case bad_cases[] = {
	{ "\r\n", ALL },
	{ "\n", ALL },
	{ "STORED\n", ALL },
	{ "STORED \r\n", ALL },
	{ "stored\r\n", ALL },
	{ "ENDX\r\n", ALL },
	{ "BOGUS\r\n", ALL },
	{ "12a\r\n", ALL },
	{ "18446744073709551616\r\n", ALL },
	{ "VALUE\r\n", ALL },
	{ "VALUE \r\n", ALL },
	{ "VALUE k\r\n", ALL },
	{ "VALUE k 0\r\n", ALL },
	{ "VALUE k 0 \r\n", ALL },
	{ "VALUE k  0 1\r\n", ALL },
	{ "VALUE k 4294967296 1\r\n", ALL },
	{ "VALUE k 0 2147483646\r\n", ALL },
	{ "VALUE k 0 1 \r\n", ALL },
	{ "VALUE k 0 1 2 3\r\n", ALL },
	{ "VALUE k 0 1 x\r\n", ALL },
	{ "VALUE k 0 -1\r\n", ALL },
	{ "VALUE k\x01 0 1\r\n", ALL },
	{ "VALUE k 0 1\r\nxy\r\n", 16 },	/* data not ended by CRLF */
	{ "STAT\r\n", ALL },
	{ "STAT \r\n", ALL },
	{ "STAT name\r\n", ALL },
	{ "ERRORS\r\n", ALL },
	{ "CLIENT_ERRORx\r\n", ALL },
	{ "VERSIONS\r\n", ALL },
	/* meta replies */
	{ "HDX\r\n", ALL },
	{ "HD \r\n", ALL },
	{ "HD  c1\r\n", ALL },
	{ "HD 5\r\n", ALL },
	{ "HD k\r\n", ALL },
	{ "HD c18446744073709551616\r\n", ALL },
	{ "HD c1x\r\n", ALL },
	{ "HD k\x01\r\n", ALL },
	{ "EN x\r\n", ALL },
	{ "MN \r\n", ALL },
	{ "hd\r\n", ALL },
	{ "VA\r\n", ALL },
	{ "VA x\r\n", ALL },
	{ "VA 1 \r\n", ALL },
	{ "VA 1  f0\r\n", ALL },
	{ "VA 1 f\r\n", ALL },
	{ "VA 1 f4294967296\r\n", ALL },
	{ "VA 2147483646\r\n", ALL },
	{ "VA 1 f0\r\nxy\r\n", 12 },	/* data not ended by CRLF */
};

/* An exact-size heap copy of n bytes of s. */
static char *
dup_n(const char *s, size_t n)
{
	char *b = malloc(n > 0 ? n : 1);

	assert_non_null(b);
	memcpy(b, s, n);
	return b;
}

/* Parses n bytes of s (exact-size copy) in whole or head mode. */
static enum proto_resp_result
parse_n(const char *s, size_t n, int head, struct proto_resp *r,
    size_t *consumed)
{
	char			*b = dup_n(s, n);
	enum proto_resp_result	 res;

	*consumed = 12345;
	res = head ? proto_resp_parse_head(b, n, r, consumed) :
	    proto_resp_parse(b, n, r, consumed);
	if (res == PROTO_RESP_NEED_MORE)
		assert_int_equal(*consumed, 0);
	/* pointers into a freed copy must not be followed: rebase them */
	if (r->key != NULL)
		r->key = s + (r->key - b);
	if (r->data != NULL)
		r->data = s + (r->data - b);
	if (r->text != NULL)
		r->text = s + (r->text - b);
	free(b);
	return res;
}

/* Checks the fields of a parsed element against its case. */
static void
check_fields(const struct ok_case *c, const struct proto_resp *r, int head)
{
	assert_int_equal(r->kind, c->kind);
	if (c->key != NULL) {
		assert_int_equal(r->nkey, strlen(c->key));
		assert_memory_equal(r->key, c->key, r->nkey);
	}
	if (c->kind == PROTO_RESP_VALUE || c->kind == PROTO_RESP_VA) {
		assert_int_equal(r->flags, c->flags);
		assert_int_equal(r->nbytes, c->nbytes);
		assert_int_equal(r->has_cas, c->has_cas);
		assert_true(r->cas == c->cas);
		if (head)
			assert_null(r->data);
		else
			assert_memory_equal(r->data, c->data, c->nbytes);
	} else {
		assert_int_equal(r->has_cas, c->has_cas);
		assert_true(r->cas == c->cas);
		if (c->key == NULL)
			assert_null(r->key);
	}
	if (c->kind == PROTO_RESP_NUMBER)
		assert_true(r->number == c->number);
	if (c->text != NULL) {
		assert_int_equal(r->ntext, strlen(c->text));
		assert_memory_equal(r->text, c->text, r->ntext);
	}
}

/* The length of a case's header line with its "\r\n". */
static size_t
head_len(const char *in)
{
	return (size_t)(strchr(in, '\n') - in) + 1;
}

/* Every valid element parses whole, with every field. */
static void
test_ok_whole(void **state)
{
	struct proto_resp	r;
	size_t			i, consumed, n;

	(void)state;
	for (i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
		n = strlen(ok_cases[i].in);
		assert_int_equal(parse_n(ok_cases[i].in, n, 0, &r, &consumed),
		    PROTO_RESP_OK);
		assert_int_equal(consumed, n);
		check_fields(&ok_cases[i], &r, 0);
	}
}

/* Every proper prefix of every valid element is NEED_MORE. */
static void
test_ok_split(void **state)
{
	struct proto_resp	r;
	size_t			i, k, consumed, n, end;
	int			head;

	(void)state;
	for (head = 0; head <= 1; head++)
		for (i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
			n = strlen(ok_cases[i].in);
			end = head ? head_len(ok_cases[i].in) : n;
			for (k = 0; k < end; k++)
				assert_int_equal(parse_n(ok_cases[i].in, k,
				    head, &r, &consumed),
				    PROTO_RESP_NEED_MORE);
			assert_int_equal(parse_n(ok_cases[i].in, end, head,
			    &r, &consumed), PROTO_RESP_OK);
			assert_int_equal(consumed, end);
			check_fields(&ok_cases[i], &r, head);
		}
}

/* Two elements back to back: the first is parsed alone, then the second. */
static void
test_ok_pipelined(void **state)
{
	struct proto_resp	r;
	size_t			i, j, consumed, na, nb;
	char			buf[256];

	(void)state;
	for (i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++)
		for (j = 0; j < sizeof ok_cases / sizeof ok_cases[0]; j++) {
			na = strlen(ok_cases[i].in);
			nb = strlen(ok_cases[j].in);
			assert_true(na + nb <= sizeof buf);
			memcpy(buf, ok_cases[i].in, na);
			memcpy(buf + na, ok_cases[j].in, nb);
			assert_int_equal(parse_n(buf, na + nb, 0, &r,
			    &consumed), PROTO_RESP_OK);
			assert_int_equal(consumed, na);
			check_fields(&ok_cases[i], &r, 0);
			assert_int_equal(parse_n(buf + na, nb, 0, &r,
			    &consumed), PROTO_RESP_OK);
			assert_int_equal(consumed, nb);
			check_fields(&ok_cases[j], &r, 0);
		}
}

/* Malformed elements are refused with the consumed count documented. */
static void
test_bad(void **state)
{
	struct proto_resp	r;
	size_t			i, consumed, n, want;

	(void)state;
	for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		n = strlen(bad_cases[i].in);
		want = bad_cases[i].consumed == ALL ? n :
		    bad_cases[i].consumed;
		if (parse_n(bad_cases[i].in, n, 0, &r, &consumed) !=
		    PROTO_RESP_BAD)
			fail_msg("accepted: %s", bad_cases[i].in);
		assert_int_equal(consumed, want);
	}
}

/* A line over PROTO_RESP_LINE_MAX is refused before its "\n" arrives;
 * one of exactly that length is accepted. */
static void
test_line_max(void **state)
{
	struct proto_resp	 r;
	size_t			 consumed, n = PROTO_RESP_LINE_MAX + 2;
	char			*b = malloc(n + 1);

	(void)state;
	assert_non_null(b);
	memcpy(b, "SERVER_ERROR ", 13);
	memset(b + 13, 'x', n - 13);
	assert_int_equal(parse_n(b, n - 1, 0, &r, &consumed),
	    PROTO_RESP_NEED_MORE);
	assert_int_equal(parse_n(b, n, 0, &r, &consumed), PROTO_RESP_BAD);
	assert_int_equal(consumed, 0);
	b[n - 2] = '\r';
	b[n - 1] = '\n';
	assert_int_equal(parse_n(b, n, 0, &r, &consumed), PROTO_RESP_OK);
	assert_int_equal(r.kind, PROTO_RESP_SERVER_ERROR);
	assert_int_equal(consumed, n);
	free(b);
}

/* Kind names and the error predicate. */
static void
test_kinds(void **state)
{
	(void)state;
	assert_string_equal(proto_resp_kind_name(PROTO_RESP_STORED),
	    "STORED");
	assert_string_equal(proto_resp_kind_name(PROTO_RESP_SERVER_ERROR),
	    "SERVER_ERROR");
	assert_string_equal(proto_resp_kind_name(PROTO_RESP_KIND_COUNT), "?");
	assert_true(proto_resp_is_error(PROTO_RESP_ERROR));
	assert_true(proto_resp_is_error(PROTO_RESP_CLIENT_ERROR));
	assert_true(proto_resp_is_error(PROTO_RESP_SERVER_ERROR));
	assert_false(proto_resp_is_error(PROTO_RESP_NOT_STORED));
	assert_string_equal(proto_resp_kind_name(PROTO_RESP_HD), "HD");
	assert_string_equal(proto_resp_kind_name(PROTO_RESP_NF), "NF");
	assert_false(proto_resp_is_error(PROTO_RESP_NS));
}

/* Binary replies: header bytes, then extras, key and value. */
struct bin_case {
	const char	*bytes;		/* header + body */
	size_t		 len;
	uint8_t		 opcode;
	uint16_t	 status;
	uint32_t	 opaque;
	uint64_t	 cas;
	const char	*key;
	uint32_t	 nvalue;
	int		 has_flags;
	uint32_t	 flags;
};

#define BIN(s)	s, sizeof(s) - 1
static const struct bin_case bin_ok[] = {
	/* GET hit: flags 5, value "hello", CAS 0x0102030405060708 */
	{ BIN("\x81\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x09"
	    "\x00\x00\x00\x07\x01\x02\x03\x04\x05\x06\x07\x08"
	    "\x00\x00\x00\x05hello"), 0x00, 0, 7, 0x0102030405060708u, "",
	    5, 1, 5 },
	/* GETKQ hit: flags 0xffffffff, key "k1", empty value */
	{ BIN("\x81\x0d\x00\x02\x04\x00\x00\x00\x00\x00\x00\x06"
	    "\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x01"
	    "\xff\xff\xff\xffk1"), 0x0d, 0, 0xffffffffu, 1, "k1", 0, 1,
	    0xffffffffu },
	/* GETK miss: status 1, the key echoed */
	{ BIN("\x81\x0c\x00\x03\x00\x00\x00\x01\x00\x00\x00\x03"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" "abc"),
	    0x0c, 1, 0, 0, "abc", 0, 0, 0 },
	/* NOOP */
	{ BIN("\x81\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
	    0x0a, 0, 0, 0, "", 0, 0, 0 },
	/* SET error: status 3 and its text */
	{ BIN("\x81\x01\x00\x00\x00\x00\x00\x03\x00\x00\x00\x0a"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	    "Too large."), 0x01, 3, 0, 0, "", 10, 0, 0 },
	/* STAT pid 42 */
	{ BIN("\x81\x10\x00\x03\x00\x00\x00\x00\x00\x00\x00\x05"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00pid42"),
	    0x10, 0, 0, 0, "pid", 2, 0, 0 },
};

/* Each binary reply whole, then every proper prefix of its head. */
static void
test_bin_ok(void **state)
{
	struct proto_resp_bin	r;
	size_t			i, n, consumed, head;

	(void)state;
	for (i = 0; i < sizeof bin_ok / sizeof bin_ok[0]; i++) {
		const struct bin_case *c = &bin_ok[i];
		char *b = malloc(c->len);

		memcpy(b, c->bytes, c->len);
		assert_int_equal(proto_resp_parse_bin_head(b, c->len, &r,
		    &consumed), PROTO_RESP_OK);
		head = c->len - c->nvalue;
		assert_int_equal(consumed, head);
		assert_int_equal(r.opcode, c->opcode);
		assert_int_equal(r.status, c->status);
		assert_int_equal(r.opaque, c->opaque);
		assert_true(r.cas == c->cas);
		assert_int_equal(r.keylen, strlen(c->key));
		assert_memory_equal(r.key, c->key, r.keylen);
		assert_int_equal(r.nvalue, c->nvalue);
		assert_int_equal(r.has_flags, c->has_flags);
		assert_int_equal(r.flags, c->flags);
		free(b);
		for (n = 0; n < head; n++) {
			b = malloc(n ? n : 1);
			memcpy(b, c->bytes, n);
			assert_int_equal(proto_resp_parse_bin_head(b, n, &r,
			    &consumed), PROTO_RESP_NEED_MORE);
			assert_int_equal(consumed, 0);
			free(b);
		}
	}
}

/* A wrong magic or extras and key longer than the body: BAD. */
static void
test_bin_bad(void **state)
{
	static const char *bad[] = {
		/* request magic */
		"\x80\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		/* text */
		"END\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		/* key 3 > body 2 */
		"\x81\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x02"
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		/* extras 4 + key 1 > body 4 */
		"\x81\x00\x00\x01\x04\x00\x00\x00\x00\x00\x00\x04"
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	};
	struct proto_resp_bin	r;
	size_t			i, consumed;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *b = malloc(24);

		memcpy(b, bad[i], 24);
		assert_int_equal(proto_resp_parse_bin_head(b, 24, &r,
		    &consumed), PROTO_RESP_BAD);
		assert_int_equal(consumed, 0);
		/* the magic alone is enough to refuse */
		if (i < 2)
			assert_int_equal(proto_resp_parse_bin_head(b, 1, &r,
			    &consumed), PROTO_RESP_BAD);
		free(b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_whole),
		cmocka_unit_test(test_ok_split),
		cmocka_unit_test(test_ok_pipelined),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_line_max),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_bin_ok),
		cmocka_unit_test(test_bin_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
