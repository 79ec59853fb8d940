/*
 * test_proto_meta.c -- unit tests for the meta commands' parser and
 * composers (protocol/proto_meta.c through proto_parse and proto_text).
 *
 * Every input is parsed from an exact-size heap copy, so AddressSanitizer
 * catches a read past the end.  Rows marked "1.6.18" copy what Debian's
 * memcached 1.6.18 was observed to answer to the same bytes; rows marked
 * "ours" are where we differ on purpose (see proto_meta.c's header) and
 * say why.
 *
 * Data structure: tables.  ok_cases are valid lines with the fields the
 * parser must fill, parsed whole and split at every byte; bad_cases are
 * malformed lines with their exact result, error and swallow count;
 * compose_cases are requests and outcomes with the exact bytes the codec
 * must produce, written into a capture proto_out (a growable buffer that
 * also counts the references handed back).
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

#define ERR	"ERROR\r\n"
#define FMT	"CLIENT_ERROR bad command line format\r\n"
#define DECODE	"CLIENT_ERROR error decoding key\r\n"
#define TOKEN	"CLIENT_ERROR bad token in command line format\r\n"
#define DUP	"CLIENT_ERROR duplicate flag\r\n"
#define INVAL	"CLIENT_ERROR invalid flag\r\n"
#define MLEN	"CLIENT_ERROR incorrect length for M token\r\n"
#define INIT	"CLIENT_ERROR invalid numeric initial value\r\n"
#define DELTA	"CLIENT_ERROR invalid numeric delta value\r\n"
#define OPAQUE	"CLIENT_ERROR opaque token too long\r\n"
#define MGLONG	"CLIENT_ERROR options flags are too long\r\n"
#define LONG	"CLIENT_ERROR options flags too long\r\n"
#define INVDUP	"CLIENT_ERROR invalid or duplicate flag\r\n"
#define MSMODE	"CLIENT_ERROR invalid mode for ms M token\r\n"
#define MAMODE	"CLIENT_ERROR invalid mode for ma M token\r\n"

/* 251 and 250 'a's. */
#define A10	"aaaaaaaaaa"
#define A50	A10 A10 A10 A10 A10
#define K250	A50 A50 A50 A50 A50
#define K251	K250 "a"

/* ---- helpers ---------------------------------------------------------- */

/* Parses n bytes of s from an exact-size heap copy into *req; *buf keeps
 * the copy (req points into it) for the caller to free. */
static enum proto_result
parse_n(const char *s, size_t n, struct proto_req *req, size_t *consumed,
    char **buf)
{
	enum proto_result r;

	*buf = malloc(n > 0 ? n : 1);
	assert_non_null(*buf);
	memcpy(*buf, s, n);
	*consumed = 12345;
	r = proto_parse(*buf, n, req, consumed);
	if (r == PROTO_NEED_MORE)
		assert_int_equal(*consumed, 0);
	else
		assert_true(*consumed >= 1 && *consumed <= n);
	if (r == PROTO_OK)
		assert_null(req->error);
	if (r == PROTO_BAD)
		assert_non_null(req->error);
	return r;
}

/* Every proper prefix of s wants more bytes. */
static void
check_prefixes(const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct proto_req req;
		size_t consumed;
		char *buf;

		if (parse_n(s, k, &req, &consumed, &buf) != PROTO_NEED_MORE)
			fail_msg("prefix %zu of \"%s\" did not want more", k,
			    s);
		free(buf);
	}
}

/* The bitmask of the letters in s. */
static uint64_t
mask_of(const char *s)
{
	uint64_t m = 0;

	for (; *s != '\0'; s++)
		m |= PROTO_MF(*s);
	return m;
}

/* ---- valid lines ------------------------------------------------------ */

struct ok_case {
	const char	*line;
	enum proto_cmd	 cmd;
	const char	*key;		/* NULL: none */
	size_t		 nkey;
	const char	*flags;		/* letters expected in meta.flags */
	const char	*ret;		/* expected meta.ret text, or NULL */
	uint32_t	 nbytes;
	bool		 noreply;
	const char	*opaque;
	uint64_t	 cas, new_cas, delta, initial;
	int64_t		 ttl, vivify_ttl, recache_ttl;
	uint32_t	 client_flags;
	char		 mode;
};

static const struct ok_case ok_cases[] = {
	{ "mg foo\r\n", PROTO_CMD_MG, "foo", 3, "", NULL, .delta = 1 },
	{ "mg foo v\r\n", PROTO_CMD_MG, "foo", 3, "v", "v", .delta = 1 },
	{ "mg foo v\n", PROTO_CMD_MG, "foo", 3, "v", "v", .delta = 1 },
	{ "  mg   foo   v   k  \r\n", PROTO_CMD_MG, "foo", 3, "vk", "v   k",
	    .delta = 1 },
	/* every flag the spec lists for mg, and P L (ignored) */
	{ "mg Zm9v b c f h k l Oab q s t u v P/x Lfoo\r\n",
	    PROTO_CMD_MG, "foo", 3, "bcfhklOqstuvPL", NULL,
	    .noreply = true, .opaque = "ab", .delta = 1 },
	{ "mg foo E7 N30 R5 T-1 C9\r\n", PROTO_CMD_MG, "foo", 3, "ENRTC",
	    "E7 N30 R5 T-1 C9", .cas = 9, .new_cas = 7, .ttl = -1,
	    .vivify_ttl = 30, .recache_ttl = 5, .delta = 1 },
	/* only the first byte names a flag (1.6.18: "vxyz kabc" is v k) */
	{ "mg foo vxyz kabc\r\n", PROTO_CMD_MG, "foo", 3, "vk", NULL,
	    .delta = 1 },
	/* base64 keys */
	{ "mg Zm9v b\r\n", PROTO_CMD_MG, "foo", 3, "b", NULL, .delta = 1 },
	{ "mg Zm9vYQ== b k\r\n", PROTO_CMD_MG, "fooa", 4, "bk", NULL,
	    .delta = 1 },
	{ "mg Zm8= k b\r\n", PROTO_CMD_MG, "fo", 2, "bk", NULL, .delta = 1 },
	{ "mg AP8A b\r\n", PROTO_CMD_MG, "\0\xff\0", 3, "b", NULL,
	    .delta = 1 },
	{ "mg +/+/ b\r\n", PROTO_CMD_MG, "\xfb\xff\xbf", 3, "b", NULL,
	    .delta = 1 },
	/* the longest key; opaque of 31 bytes (1.6.18 counts the 'O' in
	 * its 32-byte limit) */
	{ "mg " K250 " O1234567890123456789012345678901\r\n", PROTO_CMD_MG,
	    K250, 250, "O", NULL, .opaque = "1234567890123456789012345678901",
	    .delta = 1 },
	{ "mg foo O\r\n", PROTO_CMD_MG, "foo", 3, "O", NULL, .opaque = "",
	    .delta = 1 },
	/* 17 flags after the key is the most (1.6.18) */
	{ "mg foo c f h k l O1 v u q E1 T0 N0 R0 P L s t\r\n", PROTO_CMD_MG,
	    "foo", 3, "cfhklOvuqETNRPLst", NULL, .noreply = true,
	    .opaque = "1", .new_cas = 1, .delta = 1 },
	/* the numbers at their bounds */
	{ "mg foo T2147483647 N-2147483648 R0\r\n", PROTO_CMD_MG, "foo", 3,
	    "TNR", NULL, .ttl = 2147483647, .vivify_ttl = -2147483648LL,
	    .delta = 1 },
	/* mg takes M with any one character and ignores it (1.6.18) */
	{ "mg foo Mx\r\n", PROTO_CMD_MG, "foo", 3, "M", NULL, .mode = 'x',
	    .delta = 1 },
	/* ms: every flag the spec lists */
	{ "ms foo 2\r\n", PROTO_CMD_MS, "foo", 3, "", NULL, .nbytes = 2,
	    .mode = 'S', .delta = 1 },
	{ "ms Zm9v 0 b c C5 E6 F4294967295 I k O9 q s T30 MA N60\r\n",
	    PROTO_CMD_MS, "foo", 3, NULL, NULL, .nbytes = 0 },
	{ "ms Zm9v 5 b F1 T-1 ME\r\n", PROTO_CMD_MS, "foo", 3, "bFTM",
	    "b F1 T-1 ME", .nbytes = 5, .client_flags = 1, .ttl = -1,
	    .mode = 'E', .delta = 1 },
	{ "ms foo 2147483645 MP\r\n", PROTO_CMD_MS, "foo", 3, "M", "MP",
	    .nbytes = 2147483645u, .mode = 'P', .delta = 1 },
	{ "ms foo 007 MR\r\n", PROTO_CMD_MS, "foo", 3, "M", NULL,
	    .nbytes = 7, .mode = 'R', .delta = 1 },
	/* ms accepts (and ignores) the other shared flags (1.6.18) */
	{ "ms foo 1 f h l t u v P L D5 J6 R7\r\n", PROTO_CMD_MS, "foo", 3,
	    "fhltuvPLDJR", NULL, .nbytes = 1, .mode = 'S', .delta = 5,
	    .initial = 6, .recache_ttl = 7 },
	/* 16 flags after the datalen is the most for ms (1.6.18) */
	{ "ms foo 2 c f h k l O1 q s t u v I P L T0 F0\r\n", PROTO_CMD_MS,
	    "foo", 3, "cfhklOqstuvIPLTF", NULL, .nbytes = 2, .noreply = true,
	    .opaque = "1", .mode = 'S', .delta = 1 },
	/* md: every flag the spec lists (x and E are newer than 1.6.18) */
	{ "md Zm9v b\r\n", PROTO_CMD_MD, "foo", 3, NULL, NULL, .delta = 1 },
	{ "md foo C1 E2 I k Ox q T9 x\r\n", PROTO_CMD_MD, "foo", 3,
	    "CEIkOqTx", NULL, .noreply = true, .opaque = "x", .cas = 1,
	    .new_cas = 2, .ttl = 9, .delta = 1 },
	/* ma: every flag the spec lists */
	{ "ma foo\r\n", PROTO_CMD_MA, "foo", 3, "", NULL, .mode = 'I',
	    .delta = 1 },
	{ "ma foo C1 E2 N3 J4 D5 T6 MD O7 q t c v k\r\n", PROTO_CMD_MA,
	    "foo", 3, "CENJDTMOqtcvk", NULL, .noreply = true, .opaque = "7",
	    .cas = 1, .new_cas = 2, .vivify_ttl = 3, .initial = 4, .delta = 5,
	    .ttl = 6, .mode = 'D' },
	{ "ma foo M+\r\n", PROTO_CMD_MA, "foo", 3, "M", NULL, .mode = 'I',
	    .delta = 1 },
	{ "ma foo M-\r\n", PROTO_CMD_MA, "foo", 3, "M", NULL, .mode = 'D',
	    .delta = 1 },
	{ "ma foo MI D18446744073709551615 J0\r\n", PROTO_CMD_MA, "foo", 3,
	    "MDJ", NULL, .mode = 'I', .delta = UINT64_MAX },
	{ "ma Y250 b\r\n", PROTO_CMD_MA, "cnt", 3, "b", NULL, .mode = 'I',
	    .delta = 1 },
	/* mn ignores anything after it (1.6.18) */
	{ "mn\r\n", PROTO_CMD_MN, NULL, 0, "", NULL, .delta = 1 },
	{ "mn foo bar baz\r\n", PROTO_CMD_MN, NULL, 0, "", NULL, .delta = 1 },
	/* me: a second token of exactly "b" means base64; others are
	 * ignored (1.6.18) */
	{ "me foo\r\n", PROTO_CMD_ME, "foo", 3, "", NULL, .delta = 1 },
	{ "me Zm9v b\r\n", PROTO_CMD_ME, "foo", 3, "b", NULL, .delta = 1 },
	{ "me Zm9v x b\r\n", PROTO_CMD_ME, "Zm9v", 4, "", NULL, .delta = 1 },
	{ "me foo a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n",
	    PROTO_CMD_ME, "foo", 3, "", NULL, .delta = 1 },
};

/* Checks the fields of one parsed ok case. */
static void
check_ok_fields(const struct ok_case *c, const struct proto_req *req)
{
	const struct proto_meta *m = &req->meta;

	assert_int_equal(req->cmd, c->cmd);
	if (c->key == NULL) {
		assert_null(req->key);
	} else {
		assert_int_equal(req->nkey, c->nkey);
		assert_memory_equal(req->key, c->key, c->nkey);
	}
	if (c->flags == NULL)
		return;		/* a row that only checks acceptance */
	assert_int_equal(m->flags, mask_of(c->flags));
	if (c->ret != NULL) {
		assert_int_equal(m->nret, strlen(c->ret));
		assert_memory_equal(m->ret, c->ret, m->nret);
	}
	assert_int_equal(req->nbytes, c->nbytes);
	assert_int_equal(req->noreply, c->noreply);
	assert_int_equal(req->swallow, 0);
	if (c->opaque != NULL) {
		assert_int_equal(m->nopaque, strlen(c->opaque));
		assert_memory_equal(m->opaque, c->opaque, m->nopaque);
	}
	assert_true(m->cas == c->cas && m->new_cas == c->new_cas);
	assert_true(m->ttl == c->ttl && m->vivify_ttl == c->vivify_ttl &&
	    m->recache_ttl == c->recache_ttl);
	assert_true(m->delta == c->delta && m->initial == c->initial);
	assert_int_equal(m->client_flags, c->client_flags);
	assert_int_equal(m->mode, c->mode);
}

/* Every ok case parses to its fields, whole and after any split. */
static void
test_ok_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];
		size_t n = strlen(c->line), consumed;
		struct proto_req req;
		char *buf;

		if (parse_n(c->line, n, &req, &consumed, &buf) != PROTO_OK)
			fail_msg("\"%s\" did not parse: %s", c->line,
			    req.error != NULL ? req.error : "(close)");
		assert_int_equal(consumed, n);
		check_ok_fields(c, &req);
		free(buf);
		check_prefixes(c->line, n);
	}
}

/* Each command accepts each flag the spec lists for it, alone, with an
 * argument where it takes one. */
static void
test_every_flag(void **state)
{
	static const struct {
		const char	*prefix;
		const char	*flags[20];
	} cmds[] = {
		{ "mg foo", { "b", "c", "C1", "f", "h", "k", "l", "O1", "q",
		    "s", "t", "u", "v", "E1", "N1", "R1", "T1", "P", "L" } },
		{ "ms foo 1", { "b", "c", "C1", "E1", "F1", "I", "k", "O1",
		    "q", "s", "T1", "ME", "MA", "MP", "MR", "MS", "N1", "P",
		    "L" } },
		{ "md foo", { "b", "C1", "E1", "I", "k", "O1", "q", "T1", "x",
		    "P", "L" } },
		{ "ma foo", { "b", "C1", "E1", "N1", "J1", "D1", "T1", "MI",
		    "M+", "MD", "M-", "O1", "q", "t", "c", "v", "k", "P",
		    "L" } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		for (size_t j = 0; cmds[i].flags[j] != NULL; j++) {
			char line[64];
			struct proto_req req;
			size_t consumed, n;
			char *buf;
			const char *f = cmds[i].flags[j];
			/* b needs a base64 key: "foo" is not one */
			const char *p = cmds[i].prefix;

			n = (size_t)snprintf(line, sizeof(line), "%s%s %s\r\n",
			    f[0] == 'b' ? "" : p, f[0] == 'b' ?
			    (p[1] == 's' ? "ms Zm9v 1" : p[1] == 'g' ?
			    "mg Zm9v" : p[1] == 'd' ? "md Zm9v" : "ma Zm9v") :
			    "", f);
			if (parse_n(line, n, &req, &consumed, &buf) !=
			    PROTO_OK)
				fail_msg("%s: %s", line, req.error);
			assert_true(req.meta.flags & PROTO_MF(f[0]));
			free(buf);
		}
	}
}

/* ---- malformed lines -------------------------------------------------- */

struct bad_case {
	const char		*line;
	enum proto_result	 r;
	const char		*error;	/* NULL: no reply */
	size_t			 swallow;
};

static const struct bad_case bad_cases[] = {
	/* no key: 1.6.18 answers ERROR as for an unknown command */
	{ "mg\r\n", PROTO_BAD, ERR, 0 },
	{ "mg \r\n", PROTO_BAD, ERR, 0 },
	{ "ms\r\n", PROTO_BAD, ERR, 0 },
	{ "md\r\n", PROTO_BAD, ERR, 0 },
	{ "ma\r\n", PROTO_BAD, ERR, 0 },
	/* ... but me says format (1.6.18) */
	{ "me\r\n", PROTO_BAD, FMT, 0 },
	{ "me \r\n", PROTO_BAD, FMT, 0 },
	/* 2-letter names that are not meta commands */
	{ "mx foo v\r\n", PROTO_BAD, ERR, 0 },
	{ "MG foo v\r\n", PROTO_BAD, ERR, 0 },
	/* key too long (1.6.18), checked before the flags */
	{ "mg " K251 " v\r\n", PROTO_BAD, FMT, 0 },
	{ "mg " K251 " k k Tx\r\n", PROTO_BAD, FMT, 0 },
	{ "md " K251 "\r\n", PROTO_BAD, FMT, 0 },
	{ "ma " K251 "\r\n", PROTO_BAD, FMT, 0 },
	{ "me " K251 "\r\n", PROTO_BAD, FMT, 0 },
	/* ours: 1.6.18 then runs the data block as commands; we skip it */
	{ "ms " K251 " 2\r\n", PROTO_BAD, FMT, 4 },
	/* flags: the first byte must be a known letter (1.6.18) */
	{ "mg foo Z\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo W\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo X\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo x\r\n", PROTO_BAD, INVAL, 0 },	/* x is md's alone */
	{ "ms foo 2 x\r\n", PROTO_BAD, INVAL, 4 },
	{ "mg foo 1\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo !\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo \x01\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo a\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo S100\r\n", PROTO_BAD, INVAL, 0 },
	/* a first byte >= 127 is a "duplicate" (1.6.18) */
	{ "mg foo \xff\r\n", PROTO_BAD, DUP, 0 },
	{ "mg foo \x7f\r\n", PROTO_BAD, DUP, 0 },
	{ "mg foo v v\r\n", PROTO_BAD, DUP, 0 },
	{ "mg foo k s t c f h l O1 O2\r\n", PROTO_BAD, DUP, 0 },
	{ "mg foo T1 T2\r\n", PROTO_BAD, DUP, 0 },
	/* bad arguments (1.6.18 texts) */
	{ "mg foo Tabc\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo T\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo Nx\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo Rx\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo C\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo C-1\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo C18446744073709551616\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo Ex\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo D\r\n", PROTO_BAD, DELTA, 0 },
	{ "mg foo J\r\n", PROTO_BAD, INIT, 0 },
	{ "mg foo M\r\n", PROTO_BAD, MLEN, 0 },
	{ "mg foo MII\r\n", PROTO_BAD, MLEN, 0 },
	/* F has no text of its own: the default format error (1.6.18) */
	{ "mg foo F\r\n", PROTO_BAD, FMT, 0 },
	{ "mg foo Fx\r\n", PROTO_BAD, FMT, 0 },
	{ "mg foo F-1\r\n", PROTO_BAD, FMT, 0 },
	/* ours: out of range refused, 1.6.18 truncates silently (F to
	 * uint32, T/N/R to int32) and reads a '+' */
	{ "mg foo F4294967296\r\n", PROTO_BAD, FMT, 0 },
	{ "mg foo T2147483648\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo N-2147483649\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo T+5\r\n", PROTO_BAD, TOKEN, 0 },
	/* an unknown or repeated flag stops at once; a bad argument goes
	 * on and a later one's text replaces it (1.6.18) */
	{ "mg foo Tx Zq\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo Zq Tx\r\n", PROTO_BAD, INVAL, 0 },
	{ "mg foo Tx k k\r\n", PROTO_BAD, DUP, 0 },
	{ "mg foo Tx Dx\r\n", PROTO_BAD, DELTA, 0 },
	{ "mg foo Dx Tx\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo Tx Fx\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo Fx Tx\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo Mxx Tx\r\n", PROTO_BAD, TOKEN, 0 },
	{ "mg foo Tx Mxx\r\n", PROTO_BAD, MLEN, 0 },
	{ "mg foo Tx O123456789012345678901234567890123\r\n", PROTO_BAD,
	    TOKEN, 0 },
	/* opaque: at most 32 bytes counting the 'O' (1.6.18) */
	{ "mg foo O12345678901234567890123456789012\r\n", PROTO_BAD, OPAQUE,
	    0 },
	{ "md foo O12345678901234567890123456789012 q\r\n", PROTO_BAD,
	    OPAQUE, 0 },
	{ "ma foo O12345678901234567890123456789012\r\n", PROTO_BAD, OPAQUE,
	    0 },
	{ "ms foo 2 O12345678901234567890123456789012\r\n", PROTO_BAD,
	    OPAQUE, 4 },
	/* too many tokens: 18 flags after the key (mg md ma), 17 after
	 * ms's datalen; mg's text has an "are" (1.6.18) */
	{ "mg foo c f h k l O1 v u q E1 T0 N0 R0 P L s t b\r\n", PROTO_BAD,
	    MGLONG, 0 },
	{ "mg foo a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n",
	    PROTO_BAD, MGLONG, 0 },
	{ "md foo a b c d e f g h i j k l m n o p q r\r\n", PROTO_BAD, LONG,
	    0 },
	{ "ma foo a b c d e f g h i j k l m n o p q r\r\n", PROTO_BAD, LONG,
	    0 },
	/* ours: 1.6.18 runs the data block as commands; we skip it */
	{ "ms foo 2 c f h k l O1 q s t u v I P L T0 F0 C0\r\n", PROTO_BAD,
	    LONG, 4 },
	/* md and ma answer every flag error with one text (1.6.18) */
	{ "md foo a\r\n", PROTO_BAD, INVDUP, 0 },
	{ "md foo k k\r\n", PROTO_BAD, INVDUP, 0 },
	{ "md foo Tx\r\n", PROTO_BAD, INVDUP, 0 },
	{ "md foo M\r\n", PROTO_BAD, INVDUP, 0 },
	{ "md foo b\r\n", PROTO_BAD, INVDUP, 0 },
	{ "md foo Ox Y\r\n", PROTO_BAD, INVDUP, 0 },
	{ "ma foo Y O1\r\n", PROTO_BAD, INVDUP, 0 },
	{ "ma foo D\r\n", PROTO_BAD, INVDUP, 0 },
	{ "ma foo D-1\r\n", PROTO_BAD, INVDUP, 0 },
	{ "ma foo D18446744073709551616\r\n", PROTO_BAD, INVDUP, 0 },
	{ "ma foo J\r\n", PROTO_BAD, INVDUP, 0 },
	{ "ma foo Fx\r\n", PROTO_BAD, INVDUP, 0 },
	/* modes: ms takes E A P R S, ma I + D - (1.6.18) */
	{ "ma foo Mi\r\n", PROTO_BAD, MAMODE, 0 },
	{ "ma foo Md\r\n", PROTO_BAD, MAMODE, 0 },
	{ "ma foo M1\r\n", PROTO_BAD, MAMODE, 0 },
	{ "ma foo MX O123456789012345678901234567890123\r\n", PROTO_BAD,
	    MAMODE, 0 },
	{ "ms foo 2 MX\r\n", PROTO_BAD, MSMODE, 4 },
	{ "ms foo 2 Me\r\n", PROTO_BAD, MSMODE, 4 },
	{ "ms foo 2 Ms\r\n", PROTO_BAD, MSMODE, 4 },
	{ "ms foo 2 O123456789012345678901234567890123 MX\r\n", PROTO_BAD,
	    MSMODE, 4 },
	/* ms flag errors skip the data block (1.6.18) */
	{ "ms foo 2 c c\r\n", PROTO_BAD, DUP, 4 },
	{ "ms foo 2 Tx\r\n", PROTO_BAD, TOKEN, 4 },
	{ "ms foo 2 Fx\r\n", PROTO_BAD, FMT, 4 },
	{ "ms foo 2 C\r\n", PROTO_BAD, TOKEN, 4 },
	{ "ms foo 2 Z\r\n", PROTO_BAD, INVAL, 4 },
	{ "ms foo 2147483645 Z\r\n", PROTO_BAD, INVAL, 2147483647u },
	{ "ms foo 0 Z\r\n", PROTO_BAD, INVAL, 2 },
	{ "ms foo 2 b\r\n", PROTO_BAD, DECODE, 4 },
	{ "ms Zm9 2 b Tx\r\n", PROTO_BAD, TOKEN, 4 },
	{ "ms Zm9 2 Tx b\r\n", PROTO_BAD, DECODE, 4 },
	/* ms without a datalen: no block is known to follow (1.6.18) */
	{ "ms foo\r\n", PROTO_BAD, FMT, 0 },
	/* ms with a bad datalen: where the data ends is unknown, so close
	 * (1.6.18 sends the same line, then runs the data as commands) */
	{ "ms foo x\r\n", PROTO_CLOSE, FMT, 0 },
	{ "ms foo -1\r\n", PROTO_CLOSE, FMT, 0 },
	{ "ms foo 2x\r\n", PROTO_CLOSE, FMT, 0 },
	{ "ms foo 2147483646\r\n", PROTO_CLOSE, FMT, 0 },
	{ "ms foo +2\r\n", PROTO_CLOSE, FMT, 0 },
	{ "ms foo x T1\r\n", PROTO_CLOSE, FMT, 0 },
	{ "ms " K251 " x\r\n", PROTO_CLOSE, FMT, 0 },
	{ "ms foo x c f h k l O1 q s t u v I P L T0 F0 C0\r\n", PROTO_CLOSE,
	    LONG, 0 },
	/* base64 keys: strict; the encoded form counts for length */
	{ "mg Zm9 b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zm9vYQ b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zm9vYQ= b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zm9vY b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zm9v!Q== b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg ==== b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Z=== b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zm-v b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zm_v b\r\n", PROTO_BAD, DECODE, 0 },
	/* ours: 1.6.18 decodes these leniently ("fo", "f", "fooa") */
	{ "mg Zm9= b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zh== b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zm9vYQ==YQ== b\r\n", PROTO_BAD, DECODE, 0 },
	{ "mg Zg=a b\r\n", PROTO_BAD, DECODE, 0 },
	/* 252 base64 bytes decode to 189, but the key token is over 250
	 * (1.6.18 checks the encoded length) */
	{ "mg " A50 A50 A50 A50 A50 "aa b\r\n", PROTO_BAD, FMT, 0 },
	{ "me Zm9 b\r\n", PROTO_BAD, FMT, 0 },
};

/* Every bad case gives its exact result, reply and swallow count, and
 * every prefix of it wants more. */
static void
test_bad_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]);
	    i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t n = strlen(c->line), consumed;
		struct proto_req req;
		enum proto_result r;
		char *buf;

		r = parse_n(c->line, n, &req, &consumed, &buf);
		if (r != c->r)
			fail_msg("\"%s\": result %d, want %d", c->line, r,
			    c->r);
		assert_int_equal(consumed, n);
		if (c->error == NULL)
			assert_null(req.error);
		else if (req.error == NULL || strcmp(req.error, c->error))
			fail_msg("\"%s\": error %s, want %s", c->line,
			    req.error != NULL ? req.error : "(none)",
			    c->error);
		if (r == PROTO_BAD)
			assert_int_equal(req.swallow, c->swallow);
		/* errors are sent even with q */
		assert_false(req.noreply);
		free(buf);
		check_prefixes(c->line, n);
	}
}

/* A bad ms followed by its data block and a good line: the swallow count
 * lands the next parse exactly on the good line. */
static void
test_ms_swallow_lands(void **state)
{
	static const char in[] = "ms foo 11 Tx\r\ndelete keep\r\nmn\r\n";
	struct proto_req req;
	size_t consumed;
	char *buf;

	(void)state;
	assert_int_equal(parse_n(in, sizeof(in) - 1, &req, &consumed, &buf),
	    PROTO_BAD);
	assert_int_equal(consumed + req.swallow, strlen("ms foo 11 Tx\r\n"
	    "delete keep\r\n"));
	free(buf);
	assert_int_equal(parse_n(in + consumed + req.swallow,
	    sizeof(in) - 1 - consumed - req.swallow, &req, &consumed, &buf),
	    PROTO_OK);
	assert_int_equal(req.cmd, PROTO_CMD_MN);
	free(buf);
}

/* A meta line longer than PROTO_LINE_MAX closes like any non-get line. */
static void
test_long_meta_line(void **state)
{
	size_t n = PROTO_LINE_MAX + 10;
	char *line = malloc(n);
	struct proto_req req;
	size_t consumed;
	char *buf;

	(void)state;
	assert_non_null(line);
	memcpy(line, "mg foo ", 7);
	memset(line + 7, 'P', n - 7);
	assert_int_equal(parse_n(line, PROTO_LINE_MAX, &req, &consumed,
	    &buf), PROTO_NEED_MORE);
	free(buf);
	assert_int_equal(parse_n(line, n, &req, &consumed, &buf),
	    PROTO_CLOSE);
	free(buf);
	free(line);
}

/* Round trip: every decoded length 1..186 (the most a 250-byte token
 * holds) of every byte value decodes to what was encoded. */
static void
test_base64_lengths(void **state)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
	    "nopqrstuvwxyz0123456789+/";

	(void)state;
	for (size_t len = 1; len <= 187; len++) {
		char raw[192], line[300];
		size_t n = 3, consumed;
		struct proto_req req;
		enum proto_result r;
		char *buf;

		for (size_t i = 0; i < len; i++)
			raw[i] = (char)(i * 37 + len);
		memcpy(line, "mg ", 3);
		for (size_t i = 0; i < len; i += 3) {
			uint32_t w = (uint32_t)(unsigned char)raw[i] << 16;

			if (i + 1 < len)
				w |= (uint32_t)(unsigned char)raw[i + 1] << 8;
			if (i + 2 < len)
				w |= (unsigned char)raw[i + 2];
			line[n++] = tab[w >> 18 & 63];
			line[n++] = tab[w >> 12 & 63];
			line[n++] = i + 1 < len ? tab[w >> 6 & 63] : '=';
			line[n++] = i + 2 < len ? tab[w & 63] : '=';
		}
		memcpy(line + n, " b k\r\n", 6);
		n += 6;
		r = parse_n(line, n, &req, &consumed, &buf);
		if (len <= 186) {
			assert_int_equal(r, PROTO_OK);
			assert_int_equal(req.nkey, len);
			assert_memory_equal(req.key, raw, len);
			assert_ptr_equal(req.key, req.meta.key);
		} else {
			/* 188 encoded bytes' worth: 252 > 250 */
			assert_int_equal(r, PROTO_BAD);
			assert_string_equal(req.error, FMT);
		}
		free(buf);
	}
}

/* q is noreply for every meta command that takes it. */
static void
test_quiet(void **state)
{
	static const char *lines[] = { "mg foo q\r\n", "ms foo 1 q\r\n",
	    "md foo q\r\n", "ma foo q\r\n" };

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		struct proto_req req;
		size_t consumed;
		char *buf;

		assert_int_equal(parse_n(lines[i], strlen(lines[i]), &req,
		    &consumed, &buf), PROTO_OK);
		assert_true(req.noreply);
		free(buf);
	}
}

/* ---- composers -------------------------------------------------------- */

/* A proto_out writing into a growable buffer; value() copies and counts
 * the references it was given back. */
struct capture {
	struct proto_out	 out;	/* first: found from it by a cast */
	char			*buf;
	size_t			 len, cap;
	unsigned		 refs;
};

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

/* proto_out: keeps the first used bytes of the space. */
static void
cap_commit(struct proto_out *o, size_t used)
{
	struct capture *c = (struct capture *)(void *)o;

	c->len += used;
	c->buf[c->len] = '\0';
}

/* proto_out: copies the value, counts the reference. */
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

/* proto_out: never full. */
static bool
cap_full(const struct proto_out *o)
{
	(void)o;
	return false;
}

/* Starts an empty capture. */
static void
cap_init(struct capture *c)
{
	*c = (struct capture){ .out = { .space = cap_space,
	    .commit = cap_commit, .value = cap_value, .full = cap_full } };
	cap_space(&c->out, 1);
	c->buf[0] = '\0';
}

/* What a composer is asked to write. */
enum what { W_STATUS, W_HIT, W_NUMBER, W_END };

struct compose_case {
	const char	*line;		/* the request */
	enum what	 what;
	enum proto_reply r;		/* W_STATUS */
	struct proto_hit h;		/* W_HIT */
	uint64_t	 v;		/* W_NUMBER */
	const char	*want;		/* exact bytes */
};

static int ref_token;
#define REF	(&ref_token)

/* Most hits below are "foo" = "hi": cas 7, flags 5, ttl -1, idle 3,
 * fetched, a reference to give back. */

static const struct compose_case compose_cases[] = {
	/* mg hits echo in request order (1.6.18:
	 * "VA 2 s2 c1 f0 kfoo O1 t-1 l1 h1") */
	{ "mg foo s v c f k O1 t l h\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true, .with_value = true },
	    .want = "VA 2 s2 c7 f5 kfoo O1 t-1 l3 h1\r\nhi\r\n" },
	{ "mg foo h l\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = false },
	    .want = "HD h0 l3\r\n" },
	{ "mg foo\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true }, .want = "HD\r\n" },
	{ "mg foo t\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = 30, .idle = 3, .fetched = true },
	    .want = "HD t30\r\n" },
	/* flags that echo nothing on mg: b v q u E N R T C P L */
	{ "mg foo q u E1 N1 R1 T1 C1 P L\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true },
	    .want = "HD\r\n" },
	/* q leaves mg's hits alone (1.6.18 sends "HD" for "mg foo q") */
	{ "mg foo q k\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true }, .want = "HD kfoo\r\n" },
	{ "mg foo q v\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true, .with_value = true },
	    .want = "VA 2\r\nhi\r\n" },
	/* base64: k re-encodes, " b" follows it; b alone echoes nothing
	 * (1.6.18 "HD kZm9v b", "HD") */
	{ "mg Zm9v b k v O1\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true, .with_value = true },
	    .want = "VA 2 kZm9v b O1\r\nhi\r\n" },
	{ "mg Zm9v k b v O1\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true, .with_value = true },
	    .want = "VA 2 kZm9v b O1\r\nhi\r\n" },
	{ "mg Zm9v b\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true }, .want = "HD\r\n" },
	/* W X Z after the flags, in the order Z X W (1.6.18:
	 * "HD kst O2 c520 X W", "VA 2 kst O3 Z X", "HD kviv ... s0 W") */
	{ "mg st k O2 c\r\n", W_HIT, .h = { .key = "st", .nkey = 2, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true, .stale = true, .won = true }, .want = "HD kst O2 c7 X W\r\n" },
	{ "mg st k O3 v\r\n", W_HIT, .h = { .key = "st", .nkey = 2, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true, .stale = true, .won_before = true, .with_value = true },
	    .want = "VA 2 kst O3 Z X\r\nhi\r\n" },
	{ "mg foo N30 s\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "", .nbytes = 0, .ref = REF, .ttl = -1, .idle = 3, .fetched = true, .won = true }, .want = "HD s0 W\r\n" },
	{ "mg foo N30 v\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "", .nbytes = 0, .ref = REF, .ttl = -1, .idle = 3, .fetched = true, .won = true, .with_value = true }, .want = "VA 0 W\r\n\r\n" },
	{ "mg foo R30 t\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = 10, .idle = 3, .fetched = true, .won_before = true }, .want = "HD t10 Z\r\n" },
	/* a hit with no reference to give back */
	{ "mg foo v\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = NULL, .ttl = -1, .idle = 3, .fetched = true, .with_value = true }, .want = "VA 2\r\nhi\r\n" },
	/* mg misses: EN echoes k (b) and O only; q hides it (1.6.18:
	 * "EN kmissing O9", "EN kZm9vYQ== b") */
	{ "mg missing v k O9 s t c\r\n", W_STATUS, PROTO_R_MISS,
	    .want = "EN kmissing O9\r\n" },
	{ "mg Zm9vYQ== b k v\r\n", W_STATUS, PROTO_R_MISS,
	    .want = "EN kZm9vYQ== b\r\n" },
	{ "mg missing v k O9 q\r\n", W_STATUS, PROTO_R_MISS, .want = "" },
	{ "mg foo\r\n", W_END, .want = "" },
	{ "mg foo\r\n", W_STATUS, PROTO_R_END, .want = "" },
	/* errors go out even with q */
	{ "mg foo q\r\n", W_STATUS, PROTO_R_NO_MEMORY,
	    .want = "SERVER_ERROR out of memory storing object\r\n" },
	/* ms stored: c k O b echo; s, f and t are taken but not echoed
	 * (1.6.18 "HD kfoo O1 c503") */
	{ "ms foo 2 k O1 c s f t\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true },
	    .want = "HD kfoo O1 c7\r\n" },
	{ "ms Zm9v 2 b k c O1\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true },
	    .want = "HD kZm9v b c7 O1\r\n" },
	{ "ms foo 2\r\n", W_STATUS, PROTO_R_STORED, .want = "HD\r\n" },
	/* q hides ms's HD only (1.6.18) */
	{ "ms foo 2 q k O3\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 7, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = true }, .want = "" },
	{ "ms foo 2 q k O3\r\n", W_STATUS, PROTO_R_STORED, .want = "" },
	/* ms failures echo c as 0, k, O (1.6.18 "NS c0 kfoo O3") */
	{ "ms foo 2 ME c k O3 q\r\n", W_STATUS, PROTO_R_NOT_STORED,
	    .want = "NS c0 kfoo O3\r\n" },
	{ "ms foo 2 C1 c k O3 q\r\n", W_STATUS, PROTO_R_EXISTS,
	    .want = "EX c0 kfoo O3\r\n" },
	{ "ms nope 2 C5 c k O3\r\n", W_STATUS, PROTO_R_NOT_FOUND,
	    .want = "NF c0 knope O3\r\n" },
	{ "ms foo 2 q\r\n", W_STATUS, PROTO_R_BAD_CHUNK,
	    .want = "CLIENT_ERROR bad data chunk\r\n" },
	{ "ms foo 2 q\r\n", W_STATUS, PROTO_R_TOO_LARGE,
	    .want = "SERVER_ERROR object too large for cache\r\n" },
	/* md: HD NF EX echo k (b) O only; q hides HD only (1.6.18
	 * "HD kd1 O1", "NF kmissing O5" even with q) */
	{ "md d1 k O1 c t v s\r\n", W_STATUS, PROTO_R_DELETED,
	    .want = "HD kd1 O1\r\n" },
	{ "md d1 k O1 q\r\n", W_STATUS, PROTO_R_DELETED, .want = "" },
	{ "md missing k O5 q\r\n", W_STATUS, PROTO_R_NOT_FOUND,
	    .want = "NF kmissing O5\r\n" },
	{ "md foo C1 k O3 q\r\n", W_STATUS, PROTO_R_EXISTS,
	    .want = "EX kfoo O3\r\n" },
	{ "md Zm9v b k O1\r\n", W_STATUS, PROTO_R_NOT_FOUND,
	    .want = "NF kZm9v b O1\r\n" },
	/* ma: the hit's value is the number's digits (1.6.18
	 * "VA 2 kcnt2 O5 t-1 c510", "HD kcnt2 O5 t-1 c511") */
	{ "ma cnt2 k O5 t c v\r\n", W_HIT, .h = { .key = "cnt2", .nkey = 4,
	    .cas = 510, .value = "14", .nbytes = 2, .ttl = -1,
	    .with_value = true }, .want = "VA 2 kcnt2 O5 t-1 c510\r\n14\r\n" },
	{ "ma cnt2 k O5 t c\r\n", W_HIT, .h = { .key = "cnt2", .nkey = 4,
	    .cas = 511, .value = "15", .nbytes = 2, .ttl = 90, .ref = REF },
	    .want = "HD kcnt2 O5 t90 c511\r\n" },
	{ "ma Y250 b N0 k v O1 t c\r\n", W_HIT, .h = { .key = "cnt",
	    .nkey = 3, .cas = 500, .value = "0", .nbytes = 1, .ttl = -1,
	    .with_value = true }, .want = "VA 1 kY250 b O1 t-1 c500\r\n0\r\n" },
	/* q hides ma's HD and VA (1.6.18: "ma cnt2 q v" sends nothing) */
	{ "ma cnt2 q k O5 t c v\r\n", W_HIT, .h = { .key = "cnt2",
	    .nkey = 4, .value = "14", .nbytes = 2, .ref = REF,
	    .with_value = true }, .want = "" },
	/* but not when it created the item (1.6.18: "ma n N30 J5 q" sends
	 * "HD") */
	{ "ma cnt3 N30 J5 q\r\n", W_HIT, .h = { .key = "cnt3",
	    .nkey = 4, .value = "5", .nbytes = 1, .ref = REF,
	    .won = true }, .want = "HD\r\n" },
	/* ma failures echo k O only, even with q (1.6.18
	 * "NF knocnt O5", "EX kcnt2 O5") */
	{ "ma nocnt k O5 t c v q\r\n", W_STATUS, PROTO_R_NOT_FOUND,
	    .want = "NF knocnt O5\r\n" },
	{ "ma cnt2 k O5 C1 t c v q\r\n", W_STATUS, PROTO_R_EXISTS,
	    .want = "EX kcnt2 O5\r\n" },
	{ "ma foo N0 q\r\n", W_STATUS, PROTO_R_NOT_STORED, .want = "NS\r\n" },
	{ "ma foo q\r\n", W_STATUS, PROTO_R_NON_NUMERIC,
	    .want = "CLIENT_ERROR cannot increment or decrement non-numeric "
	    "value\r\n" },
	/* ma through number(): no t or c to give */
	{ "ma cnt k v O2 t c\r\n", W_NUMBER, .v = 18446744073709551615u,
	    .want = "VA 20 kcnt O2\r\n18446744073709551615\r\n" },
	{ "ma cnt k\r\n", W_NUMBER, .v = 5, .want = "HD kcnt\r\n" },
	{ "ma cnt v q\r\n", W_NUMBER, .v = 5, .want = "" },
	/* me (1.6.18: "ME foo exp=-1 la=3 cas=3 fetch=no cls=1 size=64";
	 * we have no slab classes and always say cls=1) */
	{ "me foo\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 3, .value = "hi", .nbytes = 2, .ref = REF, .ttl = -1, .idle = 3, .fetched = false, .total = 64 },
	    .want = "ME foo exp=-1 la=3 cas=3 fetch=no cls=1 size=64\r\n" },
	{ "me Zm9v b\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .flags = 5, .cas = 516, .value = "hi", .nbytes = 2, .ref = REF, .ttl = 100, .idle = 0, .fetched = true, .total = 63 },
	    .want = "ME Zm9v exp=-100 la=0 cas=516 fetch=yes cls=1 "
	    "size=63\r\n" },
	/* exp is memcached's now - exptime: 0 s left prints 0 */
	{ "me foo\r\n", W_HIT, .h = { .key = "foo", .nkey = 3, .cas = 3, .value = "hi", .nbytes = 2, .ref = REF, .ttl = 0, .total = 64 },
	    .want = "ME foo exp=0 la=0 cas=3 fetch=no cls=1 size=64\r\n" },
	{ "me foo\r\n", W_STATUS, PROTO_R_MISS, .want = "EN\r\n" },
	/* mn */
	{ "mn\r\n", W_STATUS, PROTO_R_NOOP, .want = "MN\r\n" },
	{ "mn\r\n", W_END, .want = "MN\r\n" },
};

/* Every compose case writes exactly its bytes and hands back the hit's
 * reference exactly once. */
static void
test_compose_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(compose_cases) /
	    sizeof(compose_cases[0]); i++) {
		const struct compose_case *c = &compose_cases[i];
		struct proto_req req;
		struct capture cap;
		size_t consumed;
		char *buf;

		assert_int_equal(parse_n(c->line, strlen(c->line), &req,
		    &consumed, &buf), PROTO_OK);
		cap_init(&cap);
		switch (c->what) {
		case W_STATUS:
			proto_text.status(&cap.out, &req, c->r);
			break;
		case W_HIT:
			proto_text.hit(&cap.out, &req, &c->h);
			break;
		case W_NUMBER:
			proto_text.number(&cap.out, &req, c->v);
			break;
		case W_END:
			proto_text.end(&cap.out, &req);
			break;
		}
		if (cap.len != strlen(c->want) ||
		    memcmp(cap.buf, c->want, cap.len) != 0)
			fail_msg("case %zu \"%s\": got \"%s\", want \"%s\"", i,
			    c->line, cap.buf, c->want);
		assert_int_equal(cap.refs, c->what == W_HIT &&
		    c->h.ref != NULL ? 1 : 0);
		free(cap.buf);
		free(buf);
	}
}

/* The longest line a composer can build fits: a 250-byte binary key
 * echoed with every mg return flag at its widest. */
static void
test_compose_widest(void **state)
{
	char line[400], key[PROTO_KEY_MAX];
	struct proto_req req;
	struct capture cap;
	struct proto_hit h = { .key = key, .nkey = sizeof(key), .flags =
	    UINT32_MAX, .cas = UINT64_MAX, .value = "", .nbytes = SIZE_MAX,
	    .ttl = INT64_MIN, .idle = UINT32_MAX, .fetched = true, .won = true,
	    .stale = true, .won_before = true };
	size_t consumed;
	char *buf;
	int n;

	(void)state;
	memset(key, 0xff, sizeof(key));
	n = snprintf(line, sizeof(line), "mg Zm9v b c f h k l s t "
	    "O1234567890123456789012345678901\r\n");
	assert_int_equal(parse_n(line, (size_t)n, &req, &consumed, &buf),
	    PROTO_OK);
	cap_init(&cap);
	proto_text.hit(&cap.out, &req, &h);
	assert_true(cap.len > 336 + 100);
	assert_memory_equal(cap.buf + cap.len - 8, " Z X W\r\n", 8);
	assert_non_null(strstr(cap.buf, " t-9223372036854775808 "));
	free(cap.buf);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_cases),
		cmocka_unit_test(test_every_flag),
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_ms_swallow_lands),
		cmocka_unit_test(test_long_meta_line),
		cmocka_unit_test(test_base64_lengths),
		cmocka_unit_test(test_quiet),
		cmocka_unit_test(test_compose_cases),
		cmocka_unit_test(test_compose_widest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
