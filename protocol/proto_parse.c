/*
 * proto_parse.c -- the memcached text protocol's command lines, parsed.
 *
 * proto_parse() is a pure function over bytes, in the manner of
 * picohttpparser and pelikan's parse.c: it finds one line, splits off the
 * command name, looks the name up in cmd_table and hands the rest of the
 * line to that row's argument parser, which fills a struct proto_req whose
 * pointers borrow from the caller's buffer.  Nothing is allocated, nothing
 * is written but *req and *consumed, and no state survives a call, so a
 * caller that gets PROTO_NEED_MORE simply calls again with more bytes.
 *
 * Data structure: cmd_table, a constant array of rows { name, command,
 * argument-count bounds, argument parser }.  Rows with fixed arity get their
 * arguments pre-split into struct args (at most ARGS_MAX tokens); "raw" rows
 * (the multi-key reads, stats, version, ...) get the unsplit remainder of
 * the line instead, so a 1 MB multi-get is never tokenized into an array.
 * The meta commands (mg/ms/md/ma/mn/me) are raw rows whose arguments
 * proto_meta.c parses.
 *
 * Framing rules, summed up (memcached's, tightened where noted):
 *  - A line ends in "\n"; one "\r" before it is stripped.  Tokens are
 *    separated by runs of ' ' only; leading and trailing spaces are ignored.
 *  - A line may hold at most PROTO_LINE_MAX bytes before its "\n".  Longer
 *    lines close the connection without a reply (memcached does the same
 *    for lines it cannot buffer) unless the line starts with a command whose
 *    row allows long lines (get/gets/gat/gats), which may run to
 *    PROTO_GET_LINE_MAX.
 *  - Wrong argument counts answer "ERROR", like an unknown command.
 *  - Numbers are plain ASCII digits, range-checked; only exptime and the
 *    flush_all delay take a '-' sign.  memcached uses strtol/strtoul, which
 *    also accept '+', leading blanks and silently truncate out-of-range
 *    values; we refuse those rather than store something the client did
 *    not ask for.
 *
 * Beyond the fields proto.h documents: req->noreply is also set on
 * PROTO_BAD/PROTO_CLOSE when the line's last token is "noreply" (memcached
 * then leaves the error unsent; whether to do the same is the server's
 * call), and shutdown's req->arg is "" or "graceful".
 */
#include <stddef.h>
#include <string.h>

#include "proto.h"
#include "proto_meta.h"

/* More arguments than any fixed-arity command takes (cas: 6). */
#define ARGS_MAX	6
/* max_args of a row that wants the unsplit remainder of its line. */
#define ARGS_RAW	0xff

/* A token: a run of non-space bytes inside the line. */
struct tok {
	const char	*p;
	size_t		 n;
};

/* What an argument parser is given: the tokens after the command name, or
 * for raw rows the remainder [rest, end) with leading spaces skipped. */
struct args {
	struct tok	 t[ARGS_MAX + 1];
	size_t		 n;
	const char	*rest;
	const char	*end;
};

typedef enum proto_result (*args_fn)(const struct args *, struct proto_req *);

struct cmd_row {
	const char	*name;
	unsigned char	 nname;
	unsigned char	 min_args;
	unsigned char	 max_args;	/* ARGS_RAW: parser splits for itself */
	bool		 long_line;	/* may exceed PROTO_LINE_MAX */
	enum proto_cmd	 cmd;
	args_fn		 parse;
};

/* Error lines only the parser produces; the shared ones live in
 * proto_reply.c. */
static const char err_delta[] =
    "CLIENT_ERROR invalid numeric delta argument\r\n";
static const char err_exptime[] =
    "CLIENT_ERROR invalid exptime argument\r\n";
static const char err_delete[] =
    "CLIENT_ERROR bad command line format.  "
    "Usage: delete <key> [noreply]\r\n";
static const char err_shutdown[] =
    "CLIENT_ERROR invalid shutdown mode\r\n";

/* ---- results ---------------------------------------------------------- */

/* Ends a parse with PROTO_BAD: reply error, then drop swallow data bytes. */
static enum proto_result
bad(struct proto_req *req, const char *error, size_t swallow)
{
	req->error = error;
	req->swallow = swallow;
	return PROTO_BAD;
}

/* Ends a parse with PROTO_BAD "ERROR": unknown command or wrong arity. */
static enum proto_result
bad_error(struct proto_req *req)
{
	return bad(req, proto_reply(PROTO_R_ERROR, NULL), 0);
}

/* Ends a parse with PROTO_BAD "CLIENT_ERROR bad command line format". */
static enum proto_result
bad_format(struct proto_req *req, size_t swallow)
{
	return bad(req, proto_reply(PROTO_R_BAD_FORMAT, NULL), swallow);
}

/* ---- lexical helpers -------------------------------------------------- */

/* Returns the first byte at or after p that is not a space. */
static const char *
skip_spaces(const char *p, const char *end)
{
	while (p < end && *p == ' ')
		p++;
	return p;
}

/* Returns the end of the token starting at p (the next space or end). */
static const char *
token_end(const char *p, const char *end)
{
	const char *sp = memchr(p, ' ', (size_t)(end - p));

	return sp != NULL ? sp : end;
}

/* Splits [p, end) into at most max tokens; returns how many it found, or
 * max + 1 when there are more (so the caller can reject without scanning
 * the rest of a long line). */
static size_t
tokenize(const char *p, const char *end, struct tok *t, size_t max)
{
	size_t n = 0;

	for (p = skip_spaces(p, end); p < end; p = skip_spaces(p, end)) {
		const char *e = token_end(p, end);

		if (n == max)
			return max + 1;
		t[n].p = p;
		t[n].n = (size_t)(e - p);
		n++;
		p = e;
	}
	return n;
}

/* True when token t is exactly the ns-byte word s. */
static bool
tok_is(const struct tok *t, const char *s, size_t ns)
{
	return t->n == ns && memcmp(t->p, s, ns) == 0;
}

/* True when the last of n tokens is "noreply" (memcached's
 * set_noreply_maybe: it looks only at the last token, even when the
 * line turns out to be malformed, so an error can then be left unsent). */
static bool
last_is_noreply(const struct tok *t, size_t n)
{
	return n > 0 && tok_is(&t[n - 1], "noreply", 7);
}

/* The parser's short name for proto_key_byte_ok(). */
static bool
key_byte_ok(unsigned char c)
{
	return proto_key_byte_ok(c);
}

/* True when t is a valid key: 1..PROTO_KEY_MAX allowed bytes. */
static bool
key_ok(const struct tok *t)
{
	if (t->n == 0 || t->n > PROTO_KEY_MAX)
		return false;
	for (size_t i = 0; i < t->n; i++)
		if (!key_byte_ok((unsigned char)t->p[i]))
			return false;
	return true;
}

/* Validates a space-separated key list [p, end) (p not on a space) in one
 * pass; *last gets the end of the last key so trailing spaces drop off.
 * False for a bad key; an empty list is the caller's to reject. */
static bool
keys_ok(const char *p, const char *end, const char **last)
{
	size_t run = 0;

	*last = p;
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == ' ') {
			run = 0;
			continue;
		}
		if (!key_byte_ok(c) || ++run > PROTO_KEY_MAX)
			return false;
		*last = p + 1;
	}
	return true;
}

/* Parses [p, p + n) as ASCII digits no greater than max.  No sign, no
 * blanks, no base prefix; leading zeros are harmless and accepted. */
bool
proto_digits_u64(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)((unsigned char)p[i] - '0');

		if (d > 9 || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Parses [p, p + n) as an optionally '-'-signed decimal within [min, max]
 * (min < 0). */
bool
proto_digits_i64(const char *p, size_t n, int64_t min, int64_t max,
    int64_t *out)
{
	bool neg = n > 0 && p[0] == '-';
	uint64_t mag;

	if (!proto_digits_u64(p + neg, n - neg,
	    neg ? (uint64_t)-(min + 1) + 1 : (uint64_t)max, &mag))
		return false;
	/* mag - 1 keeps the negation in range even for INT64_MIN. */
	*out = !neg ? (int64_t)mag : mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
	return true;
}

/* Parses token t as proto_digits_u64() does. */
static bool
parse_u64(const struct tok *t, uint64_t max, uint64_t *out)
{
	return proto_digits_u64(t->p, t->n, max, out);
}

/* Parses token t as proto_digits_i64() does. */
static bool
parse_i64(const struct tok *t, int64_t min, int64_t max, int64_t *out)
{
	return proto_digits_i64(t->p, t->n, min, max, out);
}

/* Parses an exptime-like value: memcached keeps them in an int32. */
static bool
parse_time(const struct tok *t, int64_t *out)
{
	return parse_i64(t, INT32_MIN, INT32_MAX, out);
}

/* Parses a uint32 (flags, verbosity level). */
static bool
parse_u32(const struct tok *t, uint32_t *out)
{
	uint64_t v;

	if (!parse_u64(t, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Points req->key at token t. */
static void
set_key(struct proto_req *req, const struct tok *t)
{
	req->key = t->p;
	req->nkey = t->n;
}

/* Points req->arg at [p, end) with trailing spaces trimmed. */
static void
set_arg(struct proto_req *req, const char *p, const char *end)
{
	while (end > p && end[-1] == ' ')
		end--;
	req->arg = p;
	req->narg = (size_t)(end - p);
}

/* ---- per-command argument parsers ------------------------------------- */

/* Stores the key list [p, end) for get/gets/gat/gats.  One bad key fails
 * the whole line before anything is looked up (memcached may already have
 * sent some VALUEs by then). */
static enum proto_result
take_keys(const char *p, const char *end, struct proto_req *req)
{
	const char *last;

	if (!keys_ok(p, end, &last))
		return bad_format(req, 0);
	if (last == p)
		return bad_error(req);
	req->keys = p;
	req->nkeys_bytes = (size_t)(last - p);
	return PROTO_OK;
}

/* get|gets <key>+ */
static enum proto_result
args_get(const struct args *a, struct proto_req *req)
{
	return take_keys(a->rest, a->end, req);
}

/* gat|gats <exptime> <key>+
 * memcached answers "gat <exptime>" with no keys by a bare END; proto.h
 * promises at least one key, so we answer ERROR as for a bare "get". */
static enum proto_result
args_gat(const struct args *a, struct proto_req *req)
{
	const char *e = token_end(a->rest, a->end);
	struct tok t = { a->rest, (size_t)(e - a->rest) };

	if (t.n == 0)
		return bad_error(req);
	if (!parse_time(&t, &req->exptime))
		return bad(req, err_exptime, 0);
	return take_keys(skip_spaces(e, a->end), a->end, req);
}

/* set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]
 * cas <key> <flags> <exptime> <bytes> <cas> [noreply]
 * The bytes field is checked first: if it is bad we cannot know where the
 * next command starts, so the connection closes (memcached would read the
 * data block as commands).  With bytes known, any other bad field skips the
 * data block.  A last token other than noreply is ignored, as memcached
 * does. */
static enum proto_result
args_store(const struct args *a, struct proto_req *req)
{
	bool is_cas = req->cmd == PROTO_CMD_CAS;
	uint64_t nbytes;

	req->noreply = last_is_noreply(a->t, a->n);
	if (!parse_u64(&a->t[3], PROTO_NBYTES_MAX, &nbytes)) {
		req->error = proto_reply(PROTO_R_BAD_FORMAT, NULL);
		return PROTO_CLOSE;
	}
	req->nbytes = (uint32_t)nbytes;
	set_key(req, &a->t[0]);
	if (!key_ok(&a->t[0]) || !parse_u32(&a->t[1], &req->flags) ||
	    !parse_time(&a->t[2], &req->exptime) ||
	    (is_cas && !parse_u64(&a->t[4], UINT64_MAX, &req->cas)))
		return bad_format(req, (size_t)nbytes + 2);
	return PROTO_OK;
}

/* delete <key> [0] [noreply]
 * The legacy hold time is accepted only as the literal "0", like
 * memcached, which answers anything else with its usage line. */
static enum proto_result
args_delete(const struct args *a, struct proto_req *req)
{
	req->noreply = last_is_noreply(a->t, a->n);
	if (a->n > 1) {
		bool zero = tok_is(&a->t[1], "0", 1);
		bool valid = (a->n == 2 && (zero || req->noreply)) ||
		    (a->n == 3 && zero && req->noreply);

		if (!valid)
			return bad(req, err_delete, 0);
	}
	if (!key_ok(&a->t[0]))
		return bad_format(req, 0);
	set_key(req, &a->t[0]);
	return PROTO_OK;
}

/* incr|decr <key> <delta> [noreply]  (a third token other than noreply is
 * ignored, as memcached does) */
static enum proto_result
args_arith(const struct args *a, struct proto_req *req)
{
	req->noreply = last_is_noreply(a->t, a->n);
	if (!key_ok(&a->t[0]))
		return bad_format(req, 0);
	set_key(req, &a->t[0]);
	if (!parse_u64(&a->t[1], UINT64_MAX, &req->delta))
		return bad(req, err_delta, 0);
	return PROTO_OK;
}

/* touch <key> <exptime> [noreply] */
static enum proto_result
args_touch(const struct args *a, struct proto_req *req)
{
	req->noreply = last_is_noreply(a->t, a->n);
	if (!key_ok(&a->t[0]))
		return bad_format(req, 0);
	set_key(req, &a->t[0]);
	if (!parse_time(&a->t[1], &req->exptime))
		return bad(req, err_exptime, 0);
	return PROTO_OK;
}

/* flush_all [delay] [noreply]
 * memcached reads the delay from the first argument unless the only
 * argument is noreply, and ignores a second argument that is not noreply
 * ("flush_all 10 20" flushes in 10 s); so do we.  Negative delays mean
 * now. */
static enum proto_result
args_flush(const struct args *a, struct proto_req *req)
{
	req->noreply = last_is_noreply(a->t, a->n);
	if (a->n > (req->noreply ? 1u : 0u) &&
	    !parse_time(&a->t[0], &req->delay))
		return bad(req, err_exptime, 0);
	return PROTO_OK;
}

/* verbosity <level> [noreply]  (a second token other than noreply is
 * ignored, as memcached does; "verbosity noreply" sets level 0 silently,
 * as memcached 1.6 does and libmemcached's memcapable checks) */
static enum proto_result
args_verbosity(const struct args *a, struct proto_req *req)
{
	req->noreply = last_is_noreply(a->t, a->n);
	if (req->noreply && a->n == 1) {
		req->level = 0;
		return PROTO_OK;
	}
	if (!parse_u32(&a->t[0], &req->level))
		return bad_format(req, 0);
	return PROTO_OK;
}

/* stats [<sub> [args]]: req->arg is the remainder, trimmed; the server
 * dispatches on it. */
static enum proto_result
args_stats(const struct args *a, struct proto_req *req)
{
	set_arg(req, a->rest, a->end);
	return PROTO_OK;
}

/* version, quit: memcached ignores any arguments, and so do we. */
static enum proto_result
args_none(const struct args *a, struct proto_req *req)
{
	(void)a;
	(void)req;
	return PROTO_OK;
}

/* shutdown [graceful]: req->arg is "" or "graceful".  Whether shutdown is
 * enabled (-A) is the server's call; memcached checks that first, so with
 * it disabled "shutdown foo" there answers "ERROR: shutdown not enabled"
 * where we answer the invalid-mode error. */
static enum proto_result
args_shutdown(const struct args *a, struct proto_req *req)
{
	set_arg(req, a->rest, a->end);
	if (req->narg != 0 && !(req->narg == 8 &&
	    memcmp(req->arg, "graceful", 8) == 0))
		return bad(req, err_shutdown, 0);
	return PROTO_OK;
}

/* mg|ms|md|ma|mn|me ...: the meta commands split their own lines
 * (proto_meta.c). */
static enum proto_result
args_meta(const struct args *a, struct proto_req *req)
{
	return proto_meta_args(a->rest, a->end, req);
}

/* ---- the command table ------------------------------------------------ */

#define ROW(name, cmd, min, max, lng, fn) \
	{ name, sizeof(name) - 1, min, max, lng, cmd, fn }

/* Ordered by how often a cache sees each command: the lookup is linear. */
static const struct cmd_row cmd_table[] = {
	ROW("get",	 PROTO_CMD_GET,	      0, ARGS_RAW, true,  args_get),
	ROW("set",	 PROTO_CMD_SET,	      4, 5,	   false, args_store),
	ROW("gets",	 PROTO_CMD_GETS,      0, ARGS_RAW, true,  args_get),
	ROW("delete",	 PROTO_CMD_DELETE,    1, 3,	   false, args_delete),
	ROW("incr",	 PROTO_CMD_INCR,      2, 3,	   false, args_arith),
	ROW("decr",	 PROTO_CMD_DECR,      2, 3,	   false, args_arith),
	ROW("touch",	 PROTO_CMD_TOUCH,     2, 3,	   false, args_touch),
	ROW("mg",	 PROTO_CMD_MG,	      0, ARGS_RAW, false, args_meta),
	ROW("ms",	 PROTO_CMD_MS,	      0, ARGS_RAW, false, args_meta),
	ROW("md",	 PROTO_CMD_MD,	      0, ARGS_RAW, false, args_meta),
	ROW("ma",	 PROTO_CMD_MA,	      0, ARGS_RAW, false, args_meta),
	ROW("mn",	 PROTO_CMD_MN,	      0, ARGS_RAW, false, args_meta),
	ROW("me",	 PROTO_CMD_ME,	      0, ARGS_RAW, false, args_meta),
	ROW("gat",	 PROTO_CMD_GAT,	      0, ARGS_RAW, true,  args_gat),
	ROW("gats",	 PROTO_CMD_GATS,      0, ARGS_RAW, true,  args_gat),
	ROW("add",	 PROTO_CMD_ADD,	      4, 5,	   false, args_store),
	ROW("replace",	 PROTO_CMD_REPLACE,   4, 5,	   false, args_store),
	ROW("append",	 PROTO_CMD_APPEND,    4, 5,	   false, args_store),
	ROW("prepend",	 PROTO_CMD_PREPEND,   4, 5,	   false, args_store),
	ROW("cas",	 PROTO_CMD_CAS,	      5, 6,	   false, args_store),
	ROW("stats",	 PROTO_CMD_STATS,     0, ARGS_RAW, false, args_stats),
	ROW("version",	 PROTO_CMD_VERSION,   0, ARGS_RAW, false, args_none),
	ROW("flush_all", PROTO_CMD_FLUSH_ALL, 0, 2,	   false, args_flush),
	ROW("verbosity", PROTO_CMD_VERBOSITY, 1, 2,	   false, args_verbosity),
	ROW("quit",	 PROTO_CMD_QUIT,      0, ARGS_RAW, false, args_none),
	ROW("shutdown",	 PROTO_CMD_SHUTDOWN,  0, ARGS_RAW, false, args_shutdown),
};

#undef ROW

/* Finds the row named exactly [p, p + n), or NULL. */
static const struct cmd_row *
cmd_lookup(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++) {
		const struct cmd_row *row = &cmd_table[i];

		if (row->nname == n && memcmp(row->name, p, n) == 0)
			return row;
	}
	return NULL;
}

/* ---- framing ---------------------------------------------------------- */

/* True when buf, which has no "\n" in its first PROTO_LINE_MAX + 1 bytes,
 * starts with a command whose lines may be long.  The name must be
 * followed by a space: "get" then 2 KB of letters is no multi-get. */
static bool
long_line_allowed(const char *buf, size_t len)
{
	const char *end = buf + len;
	const char *p = skip_spaces(buf, end);
	const char *e = token_end(p, end);
	const struct cmd_row *row;

	if (e == end)
		return false;
	row = cmd_lookup(p, (size_t)(e - p));
	return row != NULL && row->long_line;
}

/* Finds the "\n" ending the first line.  Returns PROTO_OK with *nl its
 * offset, PROTO_NEED_MORE, or PROTO_CLOSE when the line is too long.  The
 * first PROTO_LINE_MAX + 1 bytes are searched once; only a multi-get goes
 * on to search further. */
static enum proto_result
find_line(const char *buf, size_t len, size_t *nl)
{
	size_t win = len < PROTO_LINE_MAX + 1 ? len : PROTO_LINE_MAX + 1;
	const char *p;

	/* memchr must not see the NULL an empty buffer may come as. */
	if (len == 0)
		return PROTO_NEED_MORE;
	p = memchr(buf, '\n', win);
	if (p == NULL) {
		if (len <= PROTO_LINE_MAX)
			return PROTO_NEED_MORE;
		if (!long_line_allowed(buf, len))
			return PROTO_CLOSE;
		win = len < PROTO_GET_LINE_MAX + 1 ? len :
		    PROTO_GET_LINE_MAX + 1;
		p = memchr(buf + PROTO_LINE_MAX + 1, '\n',
		    win - (PROTO_LINE_MAX + 1));
		if (p == NULL)
			return len <= PROTO_GET_LINE_MAX ? PROTO_NEED_MORE :
			    PROTO_CLOSE;
	}
	*nl = (size_t)(p - buf);
	return PROTO_OK;
}

/* True when an unknown command line ends in a token starting "HTTP/"
 * (the command itself counts, as in memcached):
 * an HTTP request sent to the cache, maybe by a browser tricked into it
 * (cross-protocol scripting).  memcached closes on these without a reply,
 * so nothing of the page's request is ever run as a command. */
static bool
http_request_line(const char *p, const char *end)
{
	const char *last = NULL, *e;

	for (; (p = skip_spaces(p, end)) < end; p = e) {
		e = token_end(p, end);
		last = p;
	}
	return last != NULL && end - last >= 5 && memcmp(last, "HTTP/", 5) == 0;
}

/* Splits the arguments after the command name for row, checks their count
 * and runs the row's parser. */
static enum proto_result
parse_args(const struct cmd_row *row, const char *p, const char *end,
    struct proto_req *req)
{
	struct args a;

	req->cmd = row->cmd;
	a.rest = skip_spaces(p, end);
	a.end = end;
	a.n = 0;
	if (row->max_args != ARGS_RAW) {
		a.n = tokenize(a.rest, end, a.t, row->max_args);
		if (a.n < row->min_args || a.n > row->max_args)
			return bad_error(req);
	}
	return row->parse(&a, req);
}

/* Parses one command line from buf[0 .. len). */
enum proto_result
proto_parse(const char *buf, size_t len, struct proto_req *req,
    size_t *consumed)
{
	const struct cmd_row *row;
	const char *p, *e, *end;
	enum proto_result r;
	size_t nl = 0;

	/* The meta part (over 300 bytes, most of it a key buffer) is set by
	 * the meta parser; zeroing it for every classic request would cost
	 * more than the parse. */
	memset(req, 0, offsetof(struct proto_req, meta));
	req->meta.flags = 0;
	req->arg = "";
	*consumed = 0;
	r = find_line(buf, len, &nl);
	if (r == PROTO_NEED_MORE)
		return r;
	if (r == PROTO_CLOSE) {
		/* No line to speak of: everything buffered is forfeit. */
		*consumed = len;
		return r;
	}
	*consumed = nl + 1;
	end = buf + nl;
	if (end > buf && end[-1] == '\r')
		end--;
	p = skip_spaces(buf, end);
	e = token_end(p, end);
	/* A line past PROTO_LINE_MAX only gets here when find_line() found
	 * this same row allowing it. */
	row = cmd_lookup(p, (size_t)(e - p));
	if (row == NULL && http_request_line(p, end))
		return PROTO_CLOSE;
	if (row == NULL)
		return bad_error(req);
	return parse_args(row, e, end, req);
}

/* True for the commands that take a list of keys. */
bool
proto_is_multikey(enum proto_cmd cmd)
{
	return cmd == PROTO_CMD_GET || cmd == PROTO_CMD_GETS ||
	    cmd == PROTO_CMD_GAT || cmd == PROTO_CMD_GATS;
}

/* Walks a multi-key request's keys: *cursor starts at 0; returns false
 * after the last key. */
bool
proto_next_key(const struct proto_req *req, size_t *cursor,
    const char **key, size_t *nkey)
{
	const char *end, *p, *e;

	if (req->keys == NULL && req->key != NULL) {
		/* a single-key retrieval (binary get): its key as it is */
		if (*cursor > 0)
			return false;
		*key = req->key;
		*nkey = req->nkey;
		*cursor = 1;
		return true;
	}
	if (req->keys == NULL || *cursor >= req->nkeys_bytes)
		return false;
	end = req->keys + req->nkeys_bytes;
	p = skip_spaces(req->keys + *cursor, end);
	if (p == end) {
		*cursor = req->nkeys_bytes;
		return false;
	}
	e = token_end(p, end);
	*key = p;
	*nkey = (size_t)(e - p);
	*cursor = (size_t)(e - req->keys);
	return true;
}

/* True when the two bytes ending a data block are "\r\n". */
bool
proto_data_end_ok(const char *end2)
{
	return end2[0] == '\r' && end2[1] == '\n';
}
