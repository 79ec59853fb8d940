/*
 * proto_reply.c -- the memcached text protocol's replies, composed.
 *
 * Fixed replies are constant strings with their lengths precomputed, so a
 * server can queue them for writev without strlen.  Variable lines (VALUE,
 * incr/decr results, STAT) are composed into caller buffers; no allocation,
 * no I/O, no snprintf.  proto_value_line() runs once per hit of every get,
 * so numbers are formatted by hand, two digits at a time.
 *
 * Data structure: replies[], indexed by enum proto_reply, and digit_pairs,
 * the 100 two-digit strings "00".."99" back to back.
 */
#include <string.h>

#include "proto.h"

struct reply_text {
	const char	*s;
	size_t		 n;
};

#define REPLY(text) { text "\r\n", sizeof(text "\r\n") - 1 }

static const struct reply_text replies[PROTO_R_COUNT] = {
	[PROTO_R_STORED]	 = REPLY("STORED"),
	[PROTO_R_NOT_STORED]	 = REPLY("NOT_STORED"),
	[PROTO_R_EXISTS]	 = REPLY("EXISTS"),
	[PROTO_R_NOT_FOUND]	 = REPLY("NOT_FOUND"),
	[PROTO_R_DELETED]	 = REPLY("DELETED"),
	[PROTO_R_TOUCHED]	 = REPLY("TOUCHED"),
	[PROTO_R_OK]		 = REPLY("OK"),
	[PROTO_R_END]		 = REPLY("END"),
	[PROTO_R_RESET]		 = REPLY("RESET"),
	[PROTO_R_ERROR]		 = REPLY("ERROR"),
	[PROTO_R_NON_NUMERIC]	 = REPLY("CLIENT_ERROR cannot increment or "
				       "decrement non-numeric value"),
	[PROTO_R_BAD_FORMAT]	 = REPLY("CLIENT_ERROR bad command line format"),
	[PROTO_R_BAD_CHUNK]	 = REPLY("CLIENT_ERROR bad data chunk"),
	[PROTO_R_TOO_LARGE]	 = REPLY("SERVER_ERROR object too large for cache"),
	[PROTO_R_NO_MEMORY]	 = REPLY("SERVER_ERROR out of memory storing "
				       "object"),
	[PROTO_R_TOO_MANY_CONNS] = REPLY("ERROR Too many open connections"),
	[PROTO_R_SHUTDOWN_OFF]	 = REPLY("ERROR: shutdown not enabled"),
	[PROTO_R_MISS]		 = REPLY("EN"),
	[PROTO_R_NOOP]		 = REPLY("MN"),
	/* as memcached's text-protocol authentication (-Y) words them */
	[PROTO_R_AUTH_OK]	 = REPLY("STORED"),
	[PROTO_R_AUTH_ERROR]	 = REPLY("CLIENT_ERROR authentication failure"),
	[PROTO_R_AUTH_MECHS]	 = REPLY("PLAIN"),
	[PROTO_R_FLUSH_OFF]	 = REPLY("CLIENT_ERROR flush_all not allowed"),
	[PROTO_R_SHUTDOWN_MODE]	 = REPLY("CLIENT_ERROR invalid shutdown mode"),
	[PROTO_R_MEMLIMIT_FAILED] = REPLY("MEMLIMIT_ADJUST_FAILED out of bounds "
	    "or unable to adjust"),
	[PROTO_R_SLABS_SAME]	 = REPLY("SAME src and dst class are identical"),
	[PROTO_R_SLABS_BADCLASS] = REPLY("BADCLASS invalid src or dst class id"),
	[PROTO_R_SLABS_NOSPARE]	 = REPLY("NOSPARE source class has no spare "
	    "pages"),
	[PROTO_R_UNAUTHENTICATED] = REPLY("CLIENT_ERROR unauthenticated"),
	[PROTO_R_AUTH_FORMAT]	 = REPLY("CLIENT_ERROR bad authentication token "
	    "format"),
	[PROTO_R_AUTH_BADTERM]	 = REPLY("CLIENT_ERROR bad command line "
	    "termination"),
};

#undef REPLY

static const char digit_pairs[201] =
    "00010203040506070809" "10111213141516171819"
    "20212223242526272829" "30313233343536373839"
    "40414243444546474849" "50515253545556575859"
    "60616263646566676869" "70717273747576777879"
    "80818283848586878889" "90919293949596979899";

/* The reply text including "\r\n"; *len (if not NULL) gets its length.
 * An out-of-range code (a caller bug) gets "ERROR" rather than a crash. */
const char *
proto_reply(enum proto_reply r, size_t *len)
{
	const struct reply_text *t;

	if ((unsigned)r >= PROTO_R_COUNT)
		r = PROTO_R_ERROR;
	t = &replies[r];
	if (len != NULL)
		*len = t->n;
	return t->s;
}

/* Counts the decimal digits of v, four orders of magnitude per division. */
static size_t
u64_digits(uint64_t v)
{
	size_t n = 1;

	for (;;) {
		if (v < 10)
			return n;
		if (v < 100)
			return n + 1;
		if (v < 1000)
			return n + 2;
		if (v < 10000)
			return n + 3;
		v /= 10000;
		n += 4;
	}
}

/* Formats a decimal uint64 into out (>= 21 bytes), returns the length.
 * Writes right to left, two digits per division; no terminating NUL. */
size_t
proto_fmt_u64(char *out, uint64_t v)
{
	size_t n = u64_digits(v);
	char *p = out + n;

	while (v >= 100) {
		const char *d = &digit_pairs[(v % 100) * 2];

		v /= 100;
		*--p = d[1];
		*--p = d[0];
	}
	if (v >= 10) {
		*--p = digit_pairs[v * 2 + 1];
		*--p = digit_pairs[v * 2];
	} else {
		*--p = (char)('0' + v);
	}
	return n;
}

/* Appends n bytes of s at p; returns the new end. */
static char *
put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* Composes "VALUE <key> <flags> <bytes>[ <cas>]\r\n" into out (at least
 * PROTO_VALUE_LINE_MAX bytes); returns its length. */
size_t
proto_value_line(char *out, const char *key, size_t nkey, uint32_t flags,
    size_t nbytes, bool with_cas, uint64_t cas)
{
	char *p = out;

	p = put(p, "VALUE ", 6);
	p = put(p, key, nkey);
	*p++ = ' ';
	p += proto_fmt_u64(p, flags);
	*p++ = ' ';
	p += proto_fmt_u64(p, nbytes);
	if (with_cas) {
		*p++ = ' ';
		p += proto_fmt_u64(p, cas);
	}
	p = put(p, "\r\n", 2);
	return (size_t)(p - out);
}

/* Composes "<value>\r\n" for incr/decr into out (>= 23 bytes). */
size_t
proto_u64_line(char *out, uint64_t value)
{
	size_t n = proto_fmt_u64(out, value);

	memcpy(out + n, "\r\n", 2);
	return n + 2;
}

/* Composes "STAT <name> <value>\r\n" from a ready value string into out;
 * 0 when cap is too small, in which case nothing is written. */
size_t
proto_stat_line(char *out, size_t cap, const char *name, const char *value,
    size_t nvalue)
{
	size_t nname = strlen(name);
	char *p = out;

	/* Summed piecewise against cap so no addition can wrap. */
	if (cap < 5 + 1 + 2 || nname > cap - 8 || nvalue > cap - 8 - nname)
		return 0;
	p = put(p, "STAT ", 5);
	p = put(p, name, nname);
	*p++ = ' ';
	p = put(p, value, nvalue);
	p = put(p, "\r\n", 2);
	return (size_t)(p - out);
}

/* Composes "STAT <name> <value>\r\n" into out (cap bytes); returns the
 * length, or 0 when it does not fit. */
size_t
proto_stat_u64(char *out, size_t cap, const char *name, uint64_t value)
{
	char num[21];

	return proto_stat_line(out, cap, name, num, proto_fmt_u64(num, value));
}

/* As proto_stat_u64 for a string value; NULL prints as "(null)", which is
 * what memcached's printf shows for unset string settings. */
size_t
proto_stat_str(char *out, size_t cap, const char *name, const char *value)
{
	if (value == NULL)
		value = "(null)";
	return proto_stat_line(out, cap, name, value, strlen(value));
}
