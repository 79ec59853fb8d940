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
 * Binary connections log as memcached's proto_bin.c does at -vv: each
 * request's header dumped four bytes a line and the command's own line
 * (conn_log_bin_request, from the raw bytes), each response's header and
 * an error's text (conn_log_bin_out, fed by the connection's proto_out,
 * which follows where one response ends and the next begins).
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

/* ---- the binary protocol ------------------------------------------- */

/* Big-endian fields of a binary header. */
static unsigned
be16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static unsigned long
be32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	    (unsigned long)p[2] << 8 | p[3];
}

static unsigned long long
be64(const unsigned char *p)
{
	return (unsigned long long)be32(p) << 32 | be32(p + 4);
}

/* memcached's dump of a 24-byte header: a title line, then four bytes a
 * line ("<fd    0x80 0x01 0x00 0x03" in, ">fd   0x81 ..." out). */
static void
log_bin_header(int fd, char dir, const unsigned char *h, const char *title,
    const char *pad)
{
	log_msg(LOG_DEBUG, "%c%d %s", dir, fd, title);
	for (int i = 0; i < PROTO_BIN_HDR; i += 4)
		log_msg(LOG_DEBUG, "%c%d%s 0x%02x 0x%02x 0x%02x 0x%02x", dir,
		    fd, pad, h[i], h[i + 1], h[i + 2], h[i + 3]);
}

/* The line memcached writes as it starts a binary command (after the
 * checks that fail it first), if any. */
static void
log_bin_command(int fd, const unsigned char *h, const char *key,
    size_t nkey, unsigned extlen, unsigned long bodylen)
{
	char		 k[LOG_LINE_MAX + 8];
	const unsigned char *ext = h + PROTO_BIN_HDR;

	switch (h[1]) {
	case BIN_GET: case BIN_GETQ: case BIN_GETK: case BIN_GETKQ:
		if (extlen == 0 && bodylen == nkey && nkey > 0)
			log_text('<', fd, "GET ", key, nkey);
		break;
	case BIN_TOUCH: case BIN_GAT: case BIN_GATQ: case BIN_GATK:
	case BIN_GATKQ:
		if (extlen == 4 && nkey != 0)
			log_text('<', fd, "TOUCH ", key, nkey);
		break;
	case BIN_SET: case BIN_SETQ: case BIN_ADD: case BIN_ADDQ:
	case BIN_REPLACE: case BIN_REPLACEQ:
		if (extlen == 8 && nkey != 0 && bodylen >= nkey + 8)
			log_msg(LOG_DEBUG, "<%d %s %s Value len is %lu", fd,
			    h[1] == BIN_SET || h[1] == BIN_SETQ ? "SET" :
			    h[1] == BIN_ADD || h[1] == BIN_ADDQ ? "ADD" :
			    "REPLACE",
			    escape(k, sizeof k, key, nkey),
			    bodylen - nkey - extlen);
		break;
	case BIN_APPEND: case BIN_APPENDQ: case BIN_PREPEND:
	case BIN_PREPENDQ:
		if (nkey > 0 && extlen == 0)
			log_msg(LOG_DEBUG, "Value len is %lu", bodylen - nkey);
		break;
	case BIN_DELETE: case BIN_DELETEQ:
		if (nkey > 0 && extlen == 0 && bodylen == nkey)
			log_msg(LOG_DEBUG, "Deleting %s",
			    escape(k, sizeof k, key, nkey));
		break;
	case BIN_INCR: case BIN_INCRQ: case BIN_DECR: case BIN_DECRQ:
		/* "incr" for decr too, as memcached */
		if (nkey > 0 && extlen == 20 && bodylen == nkey + extlen)
			log_msg(LOG_DEBUG, "incr %s %lld, %llu, %d",
			    escape(k, sizeof k, key, nkey),
			    (long long)be64(ext), be64(ext + 8),
			    (int)be32(ext + 16));
		break;
	case BIN_STAT:
		if (extlen == 0)
			log_text('<', fd, "STATS ", key, nkey);
		break;
	default:
		break;
	}
}

/* "<fd Read binary protocol data:" and the header, then the command's
 * own line, as memcached 1.6.18 logs a binary request at -vv; raw is the
 * header, extras and key.  auth: -1 without -S, else whether the
 * connection has authenticated (memcached then logs the check). */
void
conn_log_bin_request(int fd, const char *raw, size_t n, int auth)
{
	const unsigned char	*h = (const unsigned char *)raw;
	unsigned		 nkey, extlen;
	unsigned long		 bodylen;
	bool			 ok;

	if (n < PROTO_BIN_HDR)
		return;
	log_bin_header(fd, '<', h, "Read binary protocol data:", "   ");
	nkey = be16(h + 2);
	extlen = h[4];
	bodylen = be32(h + 8);
	if (h[0] != 0x80 || nkey + extlen > bodylen)
		return;
	if (auth >= 0) {
		ok = auth > 0 || h[1] == BIN_SASL_LIST ||
		    h[1] == BIN_SASL_AUTH || h[1] == BIN_SASL_STEP ||
		    h[1] == BIN_VERSION;
		log_msg(LOG_DEBUG, "authenticated() in cmd 0x%02x is %s", h[1],
		    ok ? "true" : "false");
		if (!ok)
			return;
	}
	if (nkey > 250 || n < PROTO_BIN_HDR + extlen + nkey)
		return;
	log_bin_command(fd, h, raw + PROTO_BIN_HDR + extlen, nkey, extlen,
	    bodylen);
}

/* ">fd Writing bin response:" and the header of each response that
 * starts in [p, p + n) (*left: bytes of the current response still to
 * come, 0 at a header), with memcached's ">fd Writing an error: TEXT"
 * before an error's.  Statistics are not dumped (memcached writes them
 * without that path). */
void
conn_log_bin_out(int fd, const char *p, size_t n, size_t *left)
{
	const unsigned char *h;

	while (n > 0) {
		size_t take;

		if (*left == 0) {
			unsigned status, nkey;
			unsigned long bodylen;

			if (n < PROTO_BIN_HDR)
				return;
			h = (const unsigned char *)p;
			status = be16(h + 6);
			nkey = be16(h + 2);
			bodylen = be32(h + 8);
			*left = PROTO_BIN_HDR + bodylen;
			/* an error's text is its body; a GETK miss carries
			 * the key instead, an AUTH_CONTINUE its challenge */
			if (status != 0 && status != 0x21 && nkey == 0 &&
			    h[4] == 0) {
				size_t nt = n - PROTO_BIN_HDR < bodylen ?
				    n - PROTO_BIN_HDR : bodylen;

				log_text('>', fd, "Writing an error: ",
				    p + PROTO_BIN_HDR, nt);
			}
			if (!(h[1] == BIN_STAT && status == 0))
				log_bin_header(fd, '>', h,
				    "Writing bin response:", "  ");
		}
		take = n < *left ? n : *left;
		*left -= take;
		p += take;
		n -= take;
	}
}

/* Counts n bytes of a binary response that went out as a value. */
void
conn_log_bin_value(size_t n, size_t *left)
{
	*left -= n < *left ? n : *left;
}
