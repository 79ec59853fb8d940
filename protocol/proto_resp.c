/*
 * proto_resp.c -- parses memcached text-protocol replies (proto_resp.h).
 *
 * A reply line is found first (it must end in "\r\n" within
 * PROTO_RESP_LINE_MAX bytes), then classified: fixed status words through
 * a table, a line of digits as an incr/decr number, and the lines that
 * carry fields (VALUE, STAT, VERSION, the three errors) by their keyword;
 * a meta reply by its two-letter code, then its return flags token by
 * token.  A VALUE or VA header is checked field by field with single
 * spaces, as servers write it; in whole mode its data block and "\r\n"
 * must follow.
 *
 * Data structure: the tables of fixed words and meta codes below; no
 * state, no allocation.
 */
#include "proto_resp.h"

#include <string.h>

struct word {
	const char		*text;
	size_t			 len;
	enum proto_resp_kind	 kind;
};

#define W(s, k)	{ s, sizeof(s) - 1, k }
static const struct word fixed_words[] = {
	W("STORED", PROTO_RESP_STORED),
	W("NOT_STORED", PROTO_RESP_NOT_STORED),
	W("EXISTS", PROTO_RESP_EXISTS),
	W("NOT_FOUND", PROTO_RESP_NOT_FOUND),
	W("DELETED", PROTO_RESP_DELETED),
	W("TOUCHED", PROTO_RESP_TOUCHED),
	W("OK", PROTO_RESP_OK_LINE),
	W("END", PROTO_RESP_END),
	W("RESET", PROTO_RESP_RESET),
};

/* Meta reply codes; flags says whether return flags may follow. */
static const struct meta_code {
	char			 code[3];
	bool			 flags;
	enum proto_resp_kind	 kind;
} meta_codes[] = {
	{ "HD", true, PROTO_RESP_HD },
	{ "VA", true, PROTO_RESP_VA },
	{ "EN", false, PROTO_RESP_EN },
	{ "MN", false, PROTO_RESP_MN },
	{ "NS", true, PROTO_RESP_NS },
	{ "EX", true, PROTO_RESP_EX },
	{ "NF", true, PROTO_RESP_NF },
};

/* Keywords of the kinds, in enum order. */
static const char *const kind_names[PROTO_RESP_KIND_COUNT] = {
	"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED",
	"OK", "END", "RESET", "VALUE", "number", "STAT", "VERSION", "HD", "VA",
	"EN", "MN", "NS", "EX", "NF", "ERROR", "CLIENT_ERROR", "SERVER_ERROR"
};

/* The keyword of a kind. */
const char *
proto_resp_kind_name(enum proto_resp_kind kind)
{
	if ((unsigned)kind >= PROTO_RESP_KIND_COUNT)
		return "?";
	return kind_names[kind];
}

/* True for the three error kinds. */
bool
proto_resp_is_error(enum proto_resp_kind kind)
{
	return kind == PROTO_RESP_ERROR || kind == PROTO_RESP_CLIENT_ERROR ||
	    kind == PROTO_RESP_SERVER_ERROR;
}

/* True when the line is word w alone or w, sep and a text, set in *r. */
static bool
word_text(const char *p, size_t len, const char *w, char sep,
    struct proto_resp *r)
{
	size_t n = strlen(w);

	if (len < n || memcmp(p, w, n) != 0)
		return false;
	if (len == n) {
		r->text = p + n;
		r->ntext = 0;
		return true;
	}
	if (p[n] != ' ' && p[n] != sep)
		return false;
	for (n++; n < len && p[n] == ' '; n++)
		;
	r->text = p + n;
	r->ntext = len - n;
	return true;
}

/* Reads a decimal number at *p (before end) no greater than max. */
static bool
read_u64(const char **p, const char *end, uint64_t max, uint64_t *out)
{
	const char	*s = *p;
	uint64_t	 v = 0;

	if (s == end || *s < '0' || *s > '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return true;
}

/* True for a byte a key may hold. */
static bool
key_byte(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

/* Parses "VALUE <key> <flags> <bytes>[ <cas>]" (without CRLF). */
static bool
value_line(const char *p, size_t len, struct proto_resp *r)
{
	const char	*s = p + 6, *end = p + len;
	uint64_t	 v;

	r->key = s;
	while (s < end && key_byte((unsigned char)*s))
		s++;
	r->nkey = (size_t)(s - r->key);
	if (r->nkey == 0 || r->nkey > PROTO_RESP_KEY_MAX)
		return false;
	if (s == end || *s++ != ' ' || !read_u64(&s, end, UINT32_MAX, &v))
		return false;
	r->flags = (uint32_t)v;
	if (s == end || *s++ != ' ' ||
	    !read_u64(&s, end, PROTO_RESP_NBYTES_MAX, &v))
		return false;
	r->nbytes = (uint32_t)v;
	if (s == end)
		return true;
	if (*s++ != ' ' || !read_u64(&s, end, UINT64_MAX, &r->cas))
		return false;
	r->has_cas = true;
	return s == end;
}

/* Parses "STAT <name> <value>" (without CRLF). */
static bool
stat_line(const char *p, size_t len, struct proto_resp *r)
{
	const char *s = p + 5, *end = p + len;

	r->key = s;
	while (s < end && *s != ' ')
		s++;
	r->nkey = (size_t)(s - r->key);
	if (r->nkey == 0 || s == end)
		return false;
	r->text = s + 1;
	r->ntext = (size_t)(end - r->text);
	return true;
}

/* Parses meta return flags at s (before end): " <letter><bytes>" tokens;
 * f, c and k are decoded into *r as well as left whole in its text. */
static bool
meta_flags(const char *s, const char *end, struct proto_resp *r)
{
	const char	*tok;
	uint64_t	 v;

	r->text = s < end ? s + 1 : s;
	r->ntext = (size_t)(end - r->text);
	while (s < end) {
		if (*s++ != ' ' || s == end || !((*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z')))
			return false;
		tok = s++;
		while (s < end && key_byte((unsigned char)*s))
			s++;
		if (s < end && *s != ' ')
			return false;
		if (*tok == 'f') {
			tok++;
			if (!read_u64(&tok, end, UINT32_MAX, &v) || tok != s)
				return false;
			r->flags = (uint32_t)v;
		} else if (*tok == 'c') {
			tok++;
			if (!read_u64(&tok, end, UINT64_MAX, &r->cas) ||
			    tok != s)
				return false;
			r->has_cas = true;
		} else if (*tok == 'k') {
			r->key = tok + 1;
			r->nkey = (size_t)(s - r->key);
			if (r->nkey == 0 || r->nkey > PROTO_RESP_KEY_MAX)
				return false;
		}
	}
	return true;
}

/* Parses a meta reply line (without CRLF) whose code is known to be
 * m->code: "VA <size>" first, then the return flags if m allows them. */
static bool
meta_line(const char *p, size_t len, const struct meta_code *m,
    struct proto_resp *r)
{
	const char	*s = p + 2, *end = p + len;
	uint64_t	 v;

	r->kind = m->kind;
	if (m->kind == PROTO_RESP_VA) {
		if (s == end || *s++ != ' ' ||
		    !read_u64(&s, end, PROTO_RESP_NBYTES_MAX, &v))
			return false;
		r->nbytes = (uint32_t)v;
	}
	if (!m->flags) {
		r->text = s;
		return s == end;
	}
	return meta_flags(s, end, r);
}

/* Classifies one reply line (without CRLF) into *r. */
static bool
classify(const char *p, size_t len, struct proto_resp *r)
{
	size_t		i;
	const char	*s = p;

	for (i = 0; i < sizeof fixed_words / sizeof fixed_words[0]; i++)
		if (len == fixed_words[i].len &&
		    memcmp(p, fixed_words[i].text, len) == 0) {
			r->kind = fixed_words[i].kind;
			return true;
		}
	if (len > 0 && *p >= '0' && *p <= '9') {
		r->kind = PROTO_RESP_NUMBER;
		return read_u64(&s, p + len, UINT64_MAX, &r->number) &&
		    s == p + len;
	}
	if (len > 6 && memcmp(p, "VALUE ", 6) == 0) {
		r->kind = PROTO_RESP_VALUE;
		return value_line(p, len, r);
	}
	if (len >= 2 && (len == 2 || p[2] == ' '))
		for (i = 0; i < sizeof meta_codes / sizeof meta_codes[0]; i++)
			if (memcmp(p, meta_codes[i].code, 2) == 0)
				return meta_line(p, len, &meta_codes[i], r);
	if (len > 5 && memcmp(p, "STAT ", 5) == 0) {
		r->kind = PROTO_RESP_STAT;
		return stat_line(p, len, r);
	}
	r->kind = PROTO_RESP_VERSION;
	if (word_text(p, len, "VERSION", ' ', r))
		return true;
	r->kind = PROTO_RESP_ERROR;
	if (word_text(p, len, "ERROR", ':', r))
		return true;
	r->kind = PROTO_RESP_CLIENT_ERROR;
	if (word_text(p, len, "CLIENT_ERROR", ' ', r))
		return true;
	r->kind = PROTO_RESP_SERVER_ERROR;
	return word_text(p, len, "SERVER_ERROR", ' ', r);
}

/* Parses one element; whole says whether a VALUE includes its data. */
static enum proto_resp_result
parse(const char *buf, size_t len, struct proto_resp *r, size_t *consumed,
    bool whole)
{
	const char	*nl;
	size_t		 scan, line, total;

	memset(r, 0, sizeof *r);
	*consumed = 0;
	scan = len < PROTO_RESP_LINE_MAX + 2 ? len : PROTO_RESP_LINE_MAX + 2;
	if ((nl = memchr(buf, '\n', scan)) == NULL)
		return len < PROTO_RESP_LINE_MAX + 2 ? PROTO_RESP_NEED_MORE :
		    PROTO_RESP_BAD;
	line = (size_t)(nl - buf);
	if (line == 0 || buf[line - 1] != '\r' ||
	    !classify(buf, line - 1, r)) {
		*consumed = line + 1;
		return PROTO_RESP_BAD;
	}
	total = line + 1;
	if ((r->kind == PROTO_RESP_VALUE || r->kind == PROTO_RESP_VA) &&
	    whole) {
		if (len - total < (size_t)r->nbytes + 2) {
			memset(r, 0, sizeof *r);
			return PROTO_RESP_NEED_MORE;
		}
		r->data = buf + total;
		total += (size_t)r->nbytes + 2;
		if (buf[total - 2] != '\r' || buf[total - 1] != '\n') {
			*consumed = total;
			return PROTO_RESP_BAD;
		}
	}
	*consumed = total;
	return PROTO_RESP_OK;
}

/* Parses one whole reply element from buf[0 .. len). */
enum proto_resp_result
proto_resp_parse(const char *buf, size_t len, struct proto_resp *r,
    size_t *consumed)
{
	return parse(buf, len, r, consumed, true);
}

/* Parses one reply element, a VALUE only up to its header line. */
enum proto_resp_result
proto_resp_parse_head(const char *buf, size_t len, struct proto_resp *r,
    size_t *consumed)
{
	return parse(buf, len, r, consumed, false);
}
