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
 * call), and shutdown's req->arg is its mode as sent.
 */
#include <stddef.h>
#include <stdlib.h>
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
static const char err_memlimit_small[] =
    "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n";
static const char err_memlimit_bytes[] =
    "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n";
static const char err_lru_pcts[] =
    "ERROR hot and warm pcts must not exceed 80\r\n";
static const char err_lru_factors[] =
    "ERROR hot/warm age factors must be greater than 0\r\n";

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

/* True for the bytes C's isspace() accepts: memcached's strtol family
 * skips them before a number and stops at them after one. */
static bool
c_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Reads token t the way memcached's safe_strtol/safe_strtoull do (strtol
 * and strtoull underneath): leading blanks, an optional sign, at least
 * one digit, then the token's end or a blank (anything after a blank is
 * ignored, as strtol leaves it).  *neg and *mag get the sign and the
 * magnitude; false when there is no number or it overflows 64 bits. */
static bool
c_number(const struct tok *t, bool *neg, uint64_t *mag)
{
	const char *p = t->p, *end = t->p + t->n, *d;

	while (p < end && c_space((unsigned char)*p))
		p++;
	*neg = p < end && *p == '-';
	if (p < end && (*p == '-' || *p == '+'))
		p++;
	for (d = p; p < end && *p >= '0' && *p <= '9'; p++)
		;
	if (p == d || (p < end && !c_space((unsigned char)*p)))
		return false;
	return proto_digits_u64(d, (size_t)(p - d), UINT64_MAX, mag);
}

/* An unsigned number as memcached's safe_strtoull reads it: '+' is fine,
 * a '-' is refused unless strtoull's wrapped result still looks
 * non-negative ("-0"); then at most max. */
static bool
parse_u64(const struct tok *t, uint64_t max, uint64_t *out)
{
	uint64_t mag, v;
	bool neg;

	if (!c_number(t, &neg, &mag))
		return false;
	v = neg ? (uint64_t)0 - mag : mag;
	if ((neg && (int64_t)v < 0) || v > max)
		return false;
	*out = v;
	return true;
}

/* A signed number as memcached's safe_strtol reads it (a long: 64 bits). */
static bool
parse_i64(const struct tok *t, int64_t *out)
{
	uint64_t mag;
	bool neg;

	if (!c_number(t, &neg, &mag) ||
	    mag > (uint64_t)INT64_MAX + (neg ? 1 : 0))
		return false;
	*out = !neg ? (int64_t)mag : mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
	return true;
}

/* Parses an exptime-like value.  memcached takes any long and then cuts
 * it to 32 bits, so 2147483648 (a 2038 date) becomes a time long past
 * and the item is lost on arrival; we keep the 64-bit value, which the
 * store reads as the absolute time it names. */
static bool
parse_time(const struct tok *t, int64_t *out)
{
	return parse_i64(t, out);
}

/* Parses a uint32 (flags, verbosity level).  memcached cuts larger flags
 * to 32 bits, handing back different flags than were stored; we refuse
 * them. */
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
 * sent some VALUEs by then).  An empty list is ERROR unless empty_ok. */
static enum proto_result
take_keys(const char *p, const char *end, struct proto_req *req,
    bool empty_ok)
{
	const char *last;

	if (!keys_ok(p, end, &last))
		return bad_format(req, 0);
	if (last == p && !empty_ok)
		return bad_error(req);
	req->keys = p;
	req->nkeys_bytes = (size_t)(last - p);
	return PROTO_OK;
}

/* get|gets <key>+ */
static enum proto_result
args_get(const struct args *a, struct proto_req *req)
{
	return take_keys(a->rest, a->end, req, false);
}

/* gat|gats <exptime> <key>*
 * memcached answers "gat <exptime>" with no keys by a bare END, and so
 * do we (the key list is then empty). */
static enum proto_result
args_gat(const struct args *a, struct proto_req *req)
{
	const char *e = token_end(a->rest, a->end);
	struct tok t = { a->rest, (size_t)(e - a->rest) };

	if (t.n == 0)
		return bad_error(req);
	if (!parse_time(&t, &req->exptime))
		return bad(req, err_exptime, 0);
	return take_keys(skip_spaces(e, a->end), a->end, req, true);
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
	uint64_t level;

	req->noreply = last_is_noreply(a->t, a->n);
	if (req->noreply && a->n == 1) {
		req->level = 0;
		return PROTO_OK;
	}
	/* memcached's safe_strtoul: a long, cut to 32 bits */
	if (!parse_u64(&a->t[0], UINT64_MAX, &level))
		return bad_format(req, 0);
	req->level = (uint32_t)level;
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

/* shutdown [mode]: req->arg is the rest of the line.  Dispatch checks
 * that shutdown is enabled (-A) before the mode, as memcached does, so
 * with it disabled "shutdown foo" answers "ERROR: shutdown not enabled". */
static enum proto_result
args_shutdown(const struct args *a, struct proto_req *req)
{
	set_arg(req, a->rest, a->end);
	return PROTO_OK;
}

/* refresh_certs [...] [noreply]: memcached ignores other arguments. */
static enum proto_result
args_refresh_certs(const struct args *a, struct proto_req *req)
{
	set_arg(req, a->rest, a->end);
	req->noreply = req->narg >= 7 &&
	    memcmp(req->arg + req->narg - 7, "noreply", 7) == 0 &&
	    (req->narg == 7 || req->arg[req->narg - 8] == ' ');
	return PROTO_OK;
}

/* ---- run-time tuning: cache_memlimit, slabs, lru --------------------
 * As memcached 1.6.18 answers them, probed: a bad number is "ERROR"
 * (except where it says CLIENT_ERROR), and a last token "noreply"
 * silences the reply. */

/* cache_memlimit <megabytes> [noreply]: 8 MB at least.  memcached reads
 * the number into 32 bits (so 4294967296 is 0 there, too small); every
 * number above 10^9 gets its "megabytes not bytes" answer here. */
static enum proto_result
args_memlimit(const struct args *a, struct proto_req *req)
{
	uint64_t mb;

	req->noreply = last_is_noreply(a->t, a->n);
	if (!parse_u64(&a->t[0], UINT64_MAX, &mb))
		return bad_error(req);
	if (mb < 8)
		return bad(req, err_memlimit_small, 0);
	if (mb > 1000000000)
		return bad(req, err_memlimit_bytes, 0);
	req->admin.sub = PROTO_ADMIN_MEMLIMIT;
	req->admin.n1 = (int64_t)mb;
	return PROTO_OK;
}

/* Parses a decimal fraction token ("0.8", "2"); false if it is none. */
static bool
parse_double(const struct tok *t, double *out)
{
	char	 buf[64], *end;

	if (t->n == 0 || t->n >= sizeof buf)
		return false;
	memcpy(buf, t->p, t->n);
	buf[t->n] = '\0';
	*out = strtod(buf, &end);
	return end == buf + t->n;
}

/* Parses a signed 32-bit token, as memcached's safe_strtol. */
static bool
parse_int(const struct tok *t, int64_t *out)
{
	return parse_i64(t, out) && *out >= INT32_MIN && *out <= INT32_MAX;
}

/* slabs automove <0|1|2> | slabs automove ratio <r> |
 * slabs reassign <src> <dst>   (exactly; noreply there is an ERROR) */
static enum proto_result
args_slabs(const struct args *a, struct proto_req *req)
{
	struct proto_admin	*ad = &req->admin;
	uint64_t		 level;

	if (tok_is(&a->t[0], "reassign", 8)) {
		/* any other arity, a noreply too, is memcached's ERROR */
		if (a->n != 3)
			return bad_error(req);
		if (!parse_int(&a->t[1], &ad->n1) ||
		    !parse_int(&a->t[2], &ad->n2))
			return bad_format(req, 0);
		ad->sub = PROTO_ADMIN_REASSIGN;
		return PROTO_OK;
	}
	req->noreply = last_is_noreply(a->t, a->n);
	if (!tok_is(&a->t[0], "automove", 8) || a->n < 2)
		return bad_error(req);
	if (tok_is(&a->t[1], "ratio", 5)) {
		if (a->n < 3 || !parse_double(&a->t[2], &ad->f1))
			return bad_error(req);
		ad->sub = PROTO_ADMIN_AUTOMOVE_RATIO;
		return PROTO_OK;
	}
	if (!parse_u64(&a->t[1], UINT32_MAX, &level))
		return bad_format(req, 0);
	if (level > 2)
		return bad_error(req);
	ad->sub = PROTO_ADMIN_AUTOMOVE;
	ad->n1 = (int64_t)level;
	return PROTO_OK;
}

/* lru tune <hot pct> <warm pct> <hot factor> <warm factor> |
 * lru mode <flat|segmented> | lru temp_ttl <seconds> */
static enum proto_result
args_lru(const struct args *a, struct proto_req *req)
{
	struct proto_admin *ad = &req->admin;

	req->noreply = last_is_noreply(a->t, a->n);
	if (tok_is(&a->t[0], "tune", 4) && a->n >= 5) {
		if (!parse_int(&a->t[1], &ad->n1) ||
		    !parse_int(&a->t[2], &ad->n2) ||
		    !parse_double(&a->t[3], &ad->f1) ||
		    !parse_double(&a->t[4], &ad->f2))
			return bad_error(req);
		if (ad->n1 + ad->n2 > 80)
			return bad(req, err_lru_pcts, 0);
		if (ad->f1 <= 0 || ad->f2 <= 0)
			return bad(req, err_lru_factors, 0);
		ad->sub = PROTO_ADMIN_LRU_TUNE;
		return PROTO_OK;
	}
	if (tok_is(&a->t[0], "mode", 4) && a->n >= 2) {
		if (tok_is(&a->t[1], "flat", 4))
			ad->n1 = 0;
		else if (tok_is(&a->t[1], "segmented", 9))
			ad->n1 = 1;
		else
			return bad_error(req);
		ad->sub = PROTO_ADMIN_LRU_MODE;
		return PROTO_OK;
	}
	if (tok_is(&a->t[0], "temp_ttl", 8) && a->n >= 2) {
		if (!parse_int(&a->t[1], &ad->n1))
			return bad_error(req);
		ad->sub = PROTO_ADMIN_LRU_TEMP_TTL;
		return PROTO_OK;
	}
	return bad_error(req);
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
	ROW("refresh_certs", PROTO_CMD_REFRESH_CERTS, 0, ARGS_RAW, false,
	    args_refresh_certs),
	ROW("lru_crawler", PROTO_CMD_LRU_CRAWLER, 0, ARGS_RAW, false, args_stats),
	ROW("cache_memlimit", PROTO_CMD_CACHE_MEMLIMIT, 1, 2, false,
	    args_memlimit),
	ROW("slabs",	 PROTO_CMD_SLABS,     1, 5,	   false, args_slabs),
	ROW("lru",	 PROTO_CMD_LRU,	      1, 6,	   false, args_lru),
	ROW("watch",	 PROTO_CMD_WATCH,     0, ARGS_RAW, false, args_stats),
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

/* True when memcached 1.6.18 would look for "HTTP/" at all on an unknown
 * command line: it does not when the command is a single byte, starts
 * with a letter of its a/c/d/g/i/s/t command families, or is a two-byte
 * m... (a meta command); those answer ERROR. */
static bool
http_checked(const char *p, const char *e)
{
	size_t n = (size_t)(e - p);

	return n > 1 && memchr("acdgist", *p, 7) == NULL &&
	    !(*p == 'm' && n == 2);
}

/* A line with too few or too many arguments: ERROR, as in memcached.  For
 * a storage command whose length field is readable (set k 0 0 5 x y, or
 * cas k 0 0 5 with no CAS) the data block is skipped, where memcached
 * would run it as a command line: value bytes are never commands. */
static enum proto_result
bad_arity(const struct cmd_row *row, const struct args *a,
    struct proto_req *req)
{
	uint64_t nbytes;

	if (row->parse == args_store && a->n >= 4) {
		if (parse_u64(&a->t[3], PROTO_NBYTES_MAX, &nbytes)) {
			req->nbytes = (uint32_t)nbytes;
			return bad(req, proto_reply(PROTO_R_ERROR, NULL),
			    (size_t)nbytes + 2);
		}
	}
	return bad_error(req);
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
			return bad_arity(row, &a, req);
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
	if (row == NULL && http_checked(p, e) && http_request_line(p, end))
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
