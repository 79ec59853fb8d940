/*
 * warm_manifest.c -- the manifest line format of cached-warm, parsed in
 * place.  cached-warm(1) is the reference; in short:
 *
 *   # comment                       (first non-blank byte is '#')
 *   KEY [TTL FLAGS [VALUE]]          plain entry; no VALUE: --exec computes
 *   memo NS FN TTL VALUE [ARG ...]   entry under libcachedclient's memo key
 *
 * Words are separated by spaces or tabs.  A word is bare (no space, tab
 * or '"') or "double quoted" (spaces allowed); both take the C escapes
 * \\ \" \' \? \a \b \f \n \r \t \v \xHH (two digits) \OOO (octal, <= 377),
 * and no raw control byte.  A bare VALUE or ARG "b64:..." is base64
 * (RFC 4648, padded).  A bare "-" for TTL or FLAGS means the command
 * line's default and for VALUE "computed"; quote it ("-") to mean the
 * byte.  Likewise only a bare first word "memo" starts a memo line.  A
 * carriage return before the newline is ignored (CRLF files).
 *
 * Data structure: a small array of word spans over the caller's line.
 * Each word is decoded onto its own first byte (output never outgrows
 * input), so the parser allocates nothing and the entry borrows the line.
 * Pure: no I/O, no state, no locking.
 */
#include "config.h"

#include "warm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define WORDS_MAX	(5 + WM_ARGS_MAX)
#define B64_PREFIX	"b64:"
#define B64_PREFIX_LEN	4

/* One word of the line: raw bytes [raw, raw + rawlen), then decoded. */
struct word {
	char	*raw;
	size_t	 rawlen;
	bool	 quoted;
	char	*out;		/* decoded bytes: out[0..len-1] */
	size_t	 len;
};

/* What the parser works on. */
struct parse {
	char		*line;
	size_t		 len;
	struct word	 w[WORDS_MAX];
	size_t		 n;
	char		*err;
	size_t		 errlen;
};

/* Records an error message and returns -1. */
static int __attribute__((format(printf, 2, 3)))
fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	if (p->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Returns the 1-based column of byte s. */
static size_t
column(const struct parse *p, const char *s)
{
	return (size_t)(s - p->line) + 1;
}

/* True for a byte that separates words. */
static bool
is_sep(char c)
{
	return c == ' ' || c == '\t';
}

/* True for a byte that may not appear raw (tab only as a separator). */
static bool
is_control(char c)
{
	unsigned char b = (unsigned char)c;

	return b < 0x20 || b == 0x7f;
}

/* Scans a quoted word starting at s; returns its end or NULL. */
static char *
scan_quoted(struct parse *p, char *s, char *end)
{
	char *q;

	for (q = s + 1; q < end && *q != '"'; q++) {
		if (*q == '\\' && q + 1 < end)
			q++;
		else if (is_control(*q)) {
			fail(p, "column %zu: control byte 0x%02x in a word "
			    "(write it as an escape)", column(p, q),
			    (unsigned char)*q);
			return NULL;
		}
	}
	if (q >= end) {
		fail(p, "column %zu: quote not closed", column(p, s));
		return NULL;
	}
	q++;
	if (q < end && !is_sep(*q)) {
		fail(p, "column %zu: text right after a closing quote",
		    column(p, q));
		return NULL;
	}
	return q;
}

/* Scans a bare word starting at s; returns its end or NULL. */
static char *
scan_bare(struct parse *p, char *s, char *end)
{
	char *q;

	for (q = s; q < end && !is_sep(*q); q++) {
		if (*q == '"') {
			fail(p, "column %zu: quote inside a word (quote the "
			    "whole word, or write \\\")", column(p, q));
			return NULL;
		}
		if (is_control(*q)) {
			fail(p, "column %zu: control byte 0x%02x in a word "
			    "(write it as an escape)", column(p, q),
			    (unsigned char)*q);
			return NULL;
		}
		if (*q == '\\' && q + 1 < end && is_sep(q[1])) {
			fail(p, "column %zu: backslash before a blank (write "
			    "\\x20, or quote the word)", column(p, q));
			return NULL;
		}
		if (*q == '\\' && q + 1 < end && !is_control(q[1]))
			q++;
	}
	return q;
}

/* Splits the line into words. */
static int
split(struct parse *p)
{
	char *s = p->line, *end = p->line + p->len, *e;

	p->n = 0;
	for (;;) {
		while (s < end && is_sep(*s))
			s++;
		if (s >= end)
			return 0;
		if (p->n == WORDS_MAX)
			return fail(p, "column %zu: more than %d words",
			    column(p, s), WORDS_MAX);
		e = *s == '"' ? scan_quoted(p, s, end) : scan_bare(p, s, end);
		if (e == NULL)
			return -1;
		p->w[p->n].raw = s;
		p->w[p->n].rawlen = (size_t)(e - s);
		p->w[p->n].quoted = *s == '"';
		p->n++;
		s = e;
	}
}

/* Returns the value of hex digit c, or -1. */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Single-letter escapes and what they stand for. */
static const char simple_escapes[][2] = {
	{ '\\', '\\' }, { '"', '"' }, { '\'', '\'' }, { '?', '?' },
	{ 'a', '\a' }, { 'b', '\b' }, { 'f', '\f' }, { 'n', '\n' },
	{ 'r', '\r' }, { 't', '\t' }, { 'v', '\v' },
};

/* Decodes the escape at s[0] == '\\' into *out; returns bytes eaten or 0. */
static size_t
unescape(struct parse *p, const char *s, const char *end, char *out)
{
	size_t	i, n;
	int	hi, lo, v;

	if (s + 1 >= end) {
		fail(p, "column %zu: backslash at the end of a word",
		    column(p, s));
		return 0;
	}
	for (i = 0; i < sizeof simple_escapes / sizeof simple_escapes[0]; i++)
		if (s[1] == simple_escapes[i][0]) {
			*out = simple_escapes[i][1];
			return 2;
		}
	if (s[1] == 'x') {
		if (s + 3 >= end || (hi = hex_value(s[2])) < 0 ||
		    (lo = hex_value(s[3])) < 0) {
			fail(p, "column %zu: \\x needs two hex digits",
			    column(p, s));
			return 0;
		}
		*out = (char)(hi << 4 | lo);
		return 4;
	}
	if (s[1] >= '0' && s[1] <= '7') {
		for (n = 1, v = 0; n <= 3 && s + n < end && s[n] >= '0' &&
		    s[n] <= '7'; n++)
			v = v * 8 + (s[n] - '0');
		if (v > 0377) {
			fail(p, "column %zu: octal escape over \\377",
			    column(p, s));
			return 0;
		}
		*out = (char)v;
		return n;
	}
	fail(p, "column %zu: unknown escape \\%c", column(p, s), s[1]);
	return 0;
}

/* Decodes escapes of word w onto its first byte. */
static int
decode_escaped(struct parse *p, struct word *w)
{
	const char	*s = w->raw, *end = w->raw + w->rawlen;
	char		*o = w->raw;
	size_t		 k;

	if (w->quoted) {
		s++;
		end--;
	}
	while (s < end) {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		if ((k = unescape(p, s, end, o)) == 0)
			return -1;
		s += k;
		o++;
	}
	w->out = w->raw;
	w->len = (size_t)(o - w->raw);
	return 0;
}

/* Returns the 6-bit value of base64 digit c, or -1. */
static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes one group of four base64 digits (pad = 0, 1 or 2) into o. */
static int
b64_group(struct parse *p, const char *s, size_t pad, char *o)
{
	uint32_t	v = 0;
	int		i, d;

	for (i = 0; i < 4; i++) {
		if (i >= 4 - (int)pad) {
			v <<= 6;
			continue;
		}
		if ((d = b64_value(s[i])) < 0)
			return fail(p, "column %zu: '%c' is not base64",
			    column(p, s + i), s[i]);
		v = v << 6 | (uint32_t)d;
	}
	if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
		return fail(p, "column %zu: base64 with stray bits",
		    column(p, s));
	o[0] = (char)(v >> 16);
	if (pad < 2)
		o[1] = (char)(v >> 8);
	if (pad < 1)
		o[2] = (char)v;
	return 0;
}

/* Decodes a bare "b64:..." word onto its first byte. */
static int
decode_b64(struct parse *p, struct word *w)
{
	const char	*s = w->raw + B64_PREFIX_LEN;
	size_t		 n = w->rawlen - B64_PREFIX_LEN, i, pad = 0;
	char		*o = w->raw;

	if (n % 4 != 0)
		return fail(p, "column %zu: base64 length %zu is not a "
		    "multiple of 4", column(p, s), n);
	if (n > 0 && s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n; i += 4) {
		size_t gpad = i + 4 == n ? pad : 0;

		if (b64_group(p, s + i, gpad, o) < 0)
			return -1;
		o += 3 - gpad;
	}
	w->out = w->raw;
	w->len = (size_t)(o - w->raw);
	return 0;
}

/* True if w is the bare word "-". */
static bool
is_dash(const struct word *w)
{
	return !w->quoted && w->rawlen == 1 && w->raw[0] == '-';
}

/* True if w is a bare word starting with "b64:". */
static bool
is_b64(const struct word *w)
{
	return !w->quoted && w->rawlen >= B64_PREFIX_LEN &&
	    memcmp(w->raw, B64_PREFIX, B64_PREFIX_LEN) == 0;
}

/* Decodes a byte-string word (value or argument): b64 or escapes. */
static int
decode_bytes(struct parse *p, struct word *w)
{
	return is_b64(w) ? decode_b64(p, w) : decode_escaped(p, w);
}

/* Decodes a name-like word and NUL-terminates it. */
static int
decode_text(struct parse *p, struct word *w)
{
	if (decode_escaped(p, w) < 0)
		return -1;
	w->out[w->len] = '\0';
	return 0;
}

/* Parses a decimal number word into *v, at most max. */
static int
parse_u32(struct parse *p, struct word *w, const char *what, uint32_t max,
    uint32_t *v)
{
	uint64_t	x = 0;
	size_t		i;

	if (decode_escaped(p, w) < 0)
		return -1;
	for (i = 0; i < w->len; i++) {
		if (w->out[i] < '0' || w->out[i] > '9')
			break;
		x = x * 10 + (uint64_t)(w->out[i] - '0');
		if (x > max)
			break;
	}
	if (w->len == 0 || i < w->len)
		return fail(p, "column %zu: %s must be a number from 0 to %lu",
		    column(p, w->raw), what, (unsigned long)max);
	*v = (uint32_t)x;
	return 0;
}

/* Parses an optional number word: a bare "-" leaves *has false. */
static int
parse_opt_u32(struct parse *p, struct word *w, const char *what,
    uint32_t max, bool *has, uint32_t *v)
{
	*has = !is_dash(w);
	if (!*has)
		return 0;
	return parse_u32(p, w, what, max, v);
}

/* Decodes and checks a key. */
static int
parse_key(struct parse *p, struct word *w, const char **key)
{
	size_t i;

	if (decode_text(p, w) < 0)
		return -1;
	if (w->len == 0 || w->len > CC_KEY_MAX)
		return fail(p, "column %zu: key must be 1 to %d bytes (is %zu)",
		    column(p, w->raw), CC_KEY_MAX, w->len);
	for (i = 0; i < w->len; i++) {
		unsigned char b = (unsigned char)w->out[i];

		if (b <= 0x20 || b == 0x7f)
			return fail(p, "column %zu: key holds a space or "
			    "control byte (0x%02x)", column(p, w->raw), b);
	}
	*key = w->out;
	return 0;
}

/* Decodes and checks a namespace or function name. */
static int
parse_name(struct parse *p, struct word *w, const char *what,
    const char **name)
{
	size_t i;

	if (decode_text(p, w) < 0)
		return -1;
	if (w->len == 0 || w->len > CC_NAME_MAX)
		return fail(p, "column %zu: %s must be 1 to %d bytes",
		    column(p, w->raw), what, CC_NAME_MAX);
	for (i = 0; i < w->len; i++) {
		unsigned char b = (unsigned char)w->out[i];

		if (b <= 0x20 || b >= 0x7f || b == ':')
			return fail(p, "column %zu: %s must be printable "
			    "ASCII without space or ':'", column(p, w->raw),
			    what);
	}
	*name = w->out;
	return 0;
}

/* Parses a value word: a bare "-" means computed. */
static int
parse_value(struct parse *p, struct word *w, struct wm_entry *e)
{
	if (is_dash(w)) {
		e->computed = true;
		return 0;
	}
	if (decode_bytes(p, w) < 0)
		return -1;
	e->value = w->out;
	e->value_len = w->len;
	return 0;
}

/* KEY [TTL FLAGS [VALUE]] */
static int
parse_plain(struct parse *p, struct wm_entry *e)
{
	e->kind = WM_PLAIN;
	if (p->n == 2 || p->n > 4)
		return fail(p, "expected KEY [TTL FLAGS [VALUE]], found %zu "
		    "words", p->n);
	if (parse_key(p, &p->w[0], &e->key) < 0)
		return -1;
	e->computed = p->n < 4;
	if (p->n == 1)
		return 0;
	if (parse_opt_u32(p, &p->w[1], "TTL", UINT32_MAX, &e->has_ttl,
	    &e->ttl) < 0 ||
	    parse_opt_u32(p, &p->w[2], "FLAGS", UINT32_MAX, &e->has_flags,
	    &e->flags) < 0)
		return -1;
	return p->n == 4 ? parse_value(p, &p->w[3], e) : 0;
}

/* memo NS FN TTL VALUE [ARG ...] */
static int
parse_memo(struct parse *p, struct wm_entry *e)
{
	size_t i;

	e->kind = WM_MEMO;
	if (p->n < 5)
		return fail(p, "expected memo NS FN TTL VALUE [ARG ...], "
		    "found %zu words", p->n);
	if (parse_name(p, &p->w[1], "namespace", &e->ns) < 0 ||
	    parse_name(p, &p->w[2], "function name", &e->fn) < 0 ||
	    parse_opt_u32(p, &p->w[3], "memo TTL", CC_TTL_MAX, &e->has_ttl,
	    &e->ttl) < 0)
		return -1;
	if (e->has_ttl && e->ttl == 0)
		return fail(p, "column %zu: memo TTL must be 1 to %d",
		    column(p, p->w[3].raw), CC_TTL_MAX);
	if (parse_value(p, &p->w[4], e) < 0)
		return -1;
	for (i = 5; i < p->n; i++) {
		if (decode_bytes(p, &p->w[i]) < 0)
			return -1;
		e->args[e->nargs].data = p->w[i].out;
		e->args[e->nargs].len = p->w[i].len;
		e->nargs++;
	}
	return 0;
}

/* True if the line is a comment: '#' is its first non-blank byte. */
static bool
is_comment(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && is_sep(line[i]))
		i++;
	return i < len && line[i] == '#';
}

/* Parses one manifest line into e. */
int
warm_manifest_parse(char *line, size_t len, struct wm_entry *e, char *err,
    size_t errlen)
{
	struct parse p;

	memset(e, 0, sizeof *e);
	e->kind = WM_BLANK;
	if (errlen > 0)
		err[0] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		len--;		/* a CRLF file */
	if (is_comment(line, len))
		return 0;
	p.line = line;
	p.len = len;
	p.err = err;
	p.errlen = errlen;
	if (split(&p) < 0)
		return -1;
	if (p.n == 0)
		return 0;
	if (!p.w[0].quoted && p.w[0].rawlen == 4 &&
	    memcmp(p.w[0].raw, "memo", 4) == 0)
		return parse_memo(&p, e);
	return parse_plain(&p, e);
}
