/*
 * conn_log.c -- memcached's -vv / -vvv lines for a connection: every
 * command line as "<fd line", every reply as ">fd REPLY" (">fd NOREPLY
 * REPLY" for a quiet one), each hit as ">fd sending key KEY", and state
 * changes at -vvv as "fd: going from conn_a to conn_b".
 *
 * The reply lines come from a codec that wraps the connection's real one
 * (conn_log_codec): it logs, then composes through the real codec.  A
 * connection takes the wrapper only when -vv is on as it opens, so with
 * logging off the request path pays nothing; "verbosity 0" quiets the
 * lines of open connections at once (each checks the level), "verbosity
 * 2" takes effect on connections opened after it.
 *
 * What is logged follows memcached 1.6.18: text replies, the MN and error
 * lines of meta commands (not their HD/VA/EN/NF...), nothing for STAT
 * lines.  Unlike memcached, bytes below 0x20 and 0x7f (keys may hold them)
 * are written as \xNN, so a key cannot put terminal escapes or a carriage
 * return into the log.
 *
 * Data structure: none; the wrapper codec is a constant table.  Logging
 * goes through log.c, one write(2) per line.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "conn_log.h"
#include "log.h"

/* Longest line logged; longer ones (a 1 MB multi-get) are cut. */
#define LOG_LINE_MAX	1000

/* The connection whose output interface is o. */
static const struct conn *
conn_of(const struct proto_out *o)
{
	return (const struct conn *)(const void *)((const char *)o -
	    offsetof(struct conn, out));
}

/* Copies [p, p + n) into buf (cap bytes, NUL-terminated), control bytes
 * as \xNN, cut at LOG_LINE_MAX; returns buf. */
static const char *
escape(char *buf, size_t cap, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;

	for (size_t i = 0; i < n && j + 5 < cap; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f) {
			buf[j++] = '\\';
			buf[j++] = 'x';
			buf[j++] = hex[c >> 4];
			buf[j++] = hex[c & 15];
		} else
			buf[j++] = (char)c;
	}
	buf[j] = '\0';
	return buf;
}

/* Logs "<dir><fd> <prefix><text>" with text escaped. */
static void
log_text(char dir, int fd, const char *prefix, const char *p, size_t n)
{
	char buf[LOG_LINE_MAX + 8];

	log_msg(LOG_DEBUG, "%c%d %s%s", dir, fd, prefix,
	    escape(buf, sizeof buf, p, n));
}

/* Logs a fixed reply line (its "\r\n" left out). */
static void
log_reply(int fd, const char *s, size_t n, bool noreply)
{
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	log_text('>', fd, noreply ? "NOREPLY " : "", s, n);
}

/* True for the replies memcached logs for a meta command: MN and the
 * error lines. */
static bool
meta_logged(enum proto_reply r)
{
	switch (r) {
	case PROTO_R_NOOP:
	case PROTO_R_ERROR:
	case PROTO_R_NON_NUMERIC:
	case PROTO_R_BAD_FORMAT:
	case PROTO_R_BAD_CHUNK:
	case PROTO_R_TOO_LARGE:
	case PROTO_R_NO_MEMORY:
		return true;
	default:
		return false;
	}
}

/* status: ">fd STORED", ">fd NOREPLY STORED", ">fd END"... */
static void
log_status(struct proto_out *o, const struct proto_req *req,
    enum proto_reply r)
{
	const struct conn *c = conn_of(o);

	if (log_enabled(LOG_DEBUG) && r != PROTO_R_MISS &&
	    (!PROTO_CMD_IS_META(req->cmd) || meta_logged(r))) {
		size_t n;
		const char *s = proto_reply(r, &n);

		log_reply(c->fd, s, n, req->noreply &&
		    !PROTO_CMD_IS_META(req->cmd));
	}
	c->codec->status(o, req, r);
}

/* hit: ">fd sending key KEY" for the text retrievals. */
static void
log_hit(struct proto_out *o, const struct proto_req *req,
    const struct proto_hit *h)
{
	const struct conn *c = conn_of(o);

	if (log_enabled(LOG_DEBUG) && !PROTO_CMD_IS_META(req->cmd))
		log_text('>', c->fd, "sending key ", h->key, h->nkey);
	c->codec->hit(o, req, h);
}

/* number: ">fd 11" after incr/decr. */
static void
log_number(struct proto_out *o, const struct proto_req *req, uint64_t v)
{
	const struct conn *c = conn_of(o);

	if (log_enabled(LOG_DEBUG) && !PROTO_CMD_IS_META(req->cmd)) {
		char num[24];
		size_t n = proto_fmt_u64(num, v);

		log_text('>', c->fd, req->noreply ? "NOREPLY " : "", num, n);
	}
	c->codec->number(o, req, v);
}

/* stat: not logged (memcached logs no STAT lines). */
static void
log_stat(struct proto_out *o, const struct proto_req *req,
    const char *name, const char *value, size_t nvalue)
{
	conn_of(o)->codec->stat(o, req, name, value, nvalue);
}

/* end: ">fd END" after a retrieval (not after stats, as memcached). */
static void
log_end(struct proto_out *o, const struct proto_req *req)
{
	const struct conn *c = conn_of(o);

	if (log_enabled(LOG_DEBUG) && req->cmd != PROTO_CMD_STATS &&
	    !PROTO_CMD_IS_META(req->cmd))
		log_text('>', c->fd, "", "END", 3);
	c->codec->end(o, req);
}

/* version: ">fd VERSION x". */
static void
log_version(struct proto_out *o, const struct proto_req *req,
    const char *version)
{
	const struct conn *c = conn_of(o);

	if (log_enabled(LOG_DEBUG))
		log_msg(LOG_DEBUG, ">%d VERSION %s", c->fd, version);
	c->codec->version(o, req, version);
}

static const struct proto_codec logged_text = {
	.name = "ascii",
	.parse = proto_parse,
	.status = log_status,
	.hit = log_hit,
	.number = log_number,
	.stat = log_stat,
	.end = log_end,
	.version = log_version,
};

/* The codec replies of a connection go through: the logging wrapper when
 * -vv is on and codec is the text one, else codec itself. */
const struct proto_codec *
conn_log_codec(const struct proto_codec *codec)
{
	if (codec == &proto_text && log_enabled(LOG_DEBUG))
		return &logged_text;
	return codec;
}

/* "<fd line": a command line as received, without its line end. */
void
conn_log_line(int fd, const char *line, size_t n)
{
	while (n > 0 && line[n - 1] == '\n')
		n--;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	log_text('<', fd, "", line, n);
}

/* ">fd ERROR": the error reply of a refused line (parse errors do not go
 * through the codec). */
void
conn_log_error(int fd, const char *error, bool noreply)
{
	log_reply(fd, error, strlen(error), noreply);
}
