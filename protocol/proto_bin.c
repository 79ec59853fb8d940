/*
 * proto_bin.c -- memcached's binary protocol as a codec: a parser of the
 * 24-byte request header, its extras and its key into a neutral
 * struct proto_req, and composers of binary responses, pure functions
 * over bytes like the rest of protocol/.
 *
 * Parsing: a request is header + extras + key + value.  The parser
 * consumes the header, extras and key (at most 24 + 255 + 250 bytes, so
 * the input buffer never grows for a header promising gigabytes); a
 * storage command's value is left for the caller to stream into the
 * reserved item as text values are (req->nbytes, req->bare_value: no
 * "\r\n" follows it).  SASL data, the one other body, is small and
 * parsed whole.  The checks and their order are memcached 1.6.18's
 * (proto_bin.c: try_read_command_binary, dispatch_bin_command):
 *   magic not 0x80                    close, no reply
 *   keylen + extlen > bodylen         "Unknown command", close
 *   keylen > 250                      "Invalid arguments", close
 *   unknown opcode                    "Unknown command", skip the body
 *   lengths wrong for the opcode      "Invalid arguments", close
 * Binary commands map onto the neutral operations dispatch already runs:
 * get/getk/gat/touch onto get and gat (one key), stores onto ms (mode,
 * C for a nonzero CAS, T for the expiration), delete onto md, incr and
 * decr onto ma (N and J for the initial value unless the expiration is
 * 0xffffffff), noop onto mn.  quit answers from the parser (PROTO_CLOSE
 * with the reply as req->error).
 *
 * Where we differ from memcached 1.6.18, on purpose:
 *  - an unknown opcode's body is skipped exactly (memcached skips
 *    bodylen bytes after the extras and key, eating the next request's
 *    first bytes); bodies over UNKNOWN_BODY_MAX close the connection;
 *  - VERBOSITY is served (memcached 1.6.18 answers "Unknown command");
 *  - stat, touch and gat with more body than their key and extras are
 *    refused as malformed: memcached would run the extra bytes as the
 *    next request;
 *  - SASL data over SASL_BODY_MAX bytes closes the connection.
 *
 * Composing: magic 0x81, the request's opcode and opaque echoed, the
 * status codes and error texts memcached sends, the item's CAS in every
 * store, get and incr reply, flags as 4 bytes of extras in get replies,
 * the key in GETK/GETKQ/GATK/GATKQ replies.  Quiet commands drop what
 * memcached drops: misses of quiet gets, successes of quiet stores,
 * deletes, incr/decr, flush; errors always go out.
 *
 * Data structure: ops[], a row per opcode (the neutral command, the
 * shape its lengths must have, quiet or not, the store mode).  No locks,
 * no allocation, no state between calls.
 */
#include <stddef.h>
#include <string.h>

#include "proto.h"

#define MAGIC_REQ	0x80
#define MAGIC_RES	0x81

/* Largest unknown-command body skipped; larger ones close. */
#define UNKNOWN_BODY_MAX	(1024 * 1024)
/* Largest SASL mechanism name (memcached's MAX_SASL_MECH_LEN) and
 * body. */
#define SASL_MECH_MAX	32
#define SASL_BODY_MAX	1024

enum bin_status {
	ST_OK = 0x00,
	ST_ENOENT = 0x01,
	ST_EEXISTS = 0x02,
	ST_E2BIG = 0x03,
	ST_EINVAL = 0x04,
	ST_NOT_STORED = 0x05,
	ST_DELTA_BADVAL = 0x06,
	ST_AUTH_ERROR = 0x20,
	ST_UNKNOWN = 0x81,
	ST_ENOMEM = 0x82
};

/* How a request's extras, key and body must look for its opcode. */
enum shape {
	SH_UNKNOWN = 0,	/* not an opcode we serve */
	SH_EMPTY,	/* nothing: noop, version, quit, sasl list */
	SH_FLUSH,	/* extras 0 or 4, no key */
	SH_STORE,	/* extras 8 (flags, exptime), key, value */
	SH_CONCAT,	/* key, value */
	SH_GET,		/* key */
	SH_TOUCH,	/* extras 4 (exptime), key */
	SH_DELETE,	/* key */
	SH_ARITH,	/* extras 20 (delta, initial, exptime), key */
	SH_STAT,	/* an optional key: the stats group */
	SH_SASL,	/* key (mechanism), data */
	SH_VERBOSITY	/* extras 4 (level) */
};

struct opdef {
	enum shape	shape;
	enum proto_cmd	cmd;
	bool		quiet;
	char		mode;	/* ms: S E R A P; ma: I D */
};

static const struct opdef ops[256] = {
	[BIN_GET] =	{ SH_GET, PROTO_CMD_GET, false, 0 },
	[BIN_GETQ] =	{ SH_GET, PROTO_CMD_GET, true, 0 },
	[BIN_GETK] =	{ SH_GET, PROTO_CMD_GET, false, 0 },
	[BIN_GETKQ] =	{ SH_GET, PROTO_CMD_GET, true, 0 },
	[BIN_SET] =	{ SH_STORE, PROTO_CMD_MS, false, 'S' },
	[BIN_SETQ] =	{ SH_STORE, PROTO_CMD_MS, true, 'S' },
	[BIN_ADD] =	{ SH_STORE, PROTO_CMD_MS, false, 'E' },
	[BIN_ADDQ] =	{ SH_STORE, PROTO_CMD_MS, true, 'E' },
	[BIN_REPLACE] =	{ SH_STORE, PROTO_CMD_MS, false, 'R' },
	[BIN_REPLACEQ] =	{ SH_STORE, PROTO_CMD_MS, true, 'R' },
	[BIN_APPEND] =	{ SH_CONCAT, PROTO_CMD_MS, false, 'A' },
	[BIN_APPENDQ] =	{ SH_CONCAT, PROTO_CMD_MS, true, 'A' },
	[BIN_PREPEND] =	{ SH_CONCAT, PROTO_CMD_MS, false, 'P' },
	[BIN_PREPENDQ] =	{ SH_CONCAT, PROTO_CMD_MS, true, 'P' },
	[BIN_DELETE] =	{ SH_DELETE, PROTO_CMD_MD, false, 0 },
	[BIN_DELETEQ] =	{ SH_DELETE, PROTO_CMD_MD, true, 0 },
	[BIN_INCR] =	{ SH_ARITH, PROTO_CMD_MA, false, 'I' },
	[BIN_INCRQ] =	{ SH_ARITH, PROTO_CMD_MA, true, 'I' },
	[BIN_DECR] =	{ SH_ARITH, PROTO_CMD_MA, false, 'D' },
	[BIN_DECRQ] =	{ SH_ARITH, PROTO_CMD_MA, true, 'D' },
	[BIN_QUIT] =	{ SH_EMPTY, PROTO_CMD_QUIT, false, 0 },
	[BIN_QUITQ] =	{ SH_EMPTY, PROTO_CMD_QUIT, true, 0 },
	[BIN_FLUSH] =	{ SH_FLUSH, PROTO_CMD_FLUSH_ALL, false, 0 },
	[BIN_FLUSHQ] =	{ SH_FLUSH, PROTO_CMD_FLUSH_ALL, true, 0 },
	[BIN_NOOP] =	{ SH_EMPTY, PROTO_CMD_MN, false, 0 },
	[BIN_VERSION] =	{ SH_EMPTY, PROTO_CMD_VERSION, false, 0 },
	[BIN_STAT] =	{ SH_STAT, PROTO_CMD_STATS, false, 0 },
	[BIN_VERBOSITY] = { SH_VERBOSITY, PROTO_CMD_VERBOSITY, false, 0 },
	[BIN_TOUCH] =	{ SH_TOUCH, PROTO_CMD_GAT, false, 0 },
	[BIN_GAT] =	{ SH_TOUCH, PROTO_CMD_GAT, false, 0 },
	[BIN_GATQ] =	{ SH_TOUCH, PROTO_CMD_GAT, true, 0 },
	[BIN_GATK] =	{ SH_TOUCH, PROTO_CMD_GAT, false, 0 },
	[BIN_GATKQ] =	{ SH_TOUCH, PROTO_CMD_GAT, true, 0 },
	[BIN_SASL_LIST] = { SH_EMPTY, PROTO_CMD_SASL_LIST, false, 0 },
	[BIN_SASL_AUTH] = { SH_SASL, PROTO_CMD_SASL_AUTH, false, 0 },
	[BIN_SASL_STEP] = { SH_SASL, PROTO_CMD_SASL_STEP, false, 0 },
};

/* ---- byte order ------------------------------------------------------ */

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void
put16(char *p, uint16_t v)
{
	p[0] = (char)(v >> 8);
	p[1] = (char)v;
}

static void
put32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

static void
put64(char *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* Writes a response header answering req into p. */
static void
put_header(char *p, const struct proto_req *req, uint16_t status,
    size_t nkey, size_t next, size_t nbody, uint64_t cas)
{
	p[0] = (char)MAGIC_RES;
	p[1] = (char)req->bin.opcode;
	put16(p + 2, (uint16_t)nkey);
	p[4] = (char)next;
	p[5] = 0;
	put16(p + 6, status);
	put32(p + 8, (uint32_t)nbody);
	memcpy(p + 12, &req->bin.opaque, 4);
	put64(p + 16, cas);
}

/* The text memcached sends with an error status. */
static const char *
status_text(uint16_t status)
{
	switch (status) {
	case ST_ENOENT:
		return "Not found";
	case ST_EEXISTS:
		return "Data exists for key.";
	case ST_E2BIG:
		return "Too large.";
	case ST_EINVAL:
		return "Invalid arguments";
	case ST_NOT_STORED:
		return "Not stored.";
	case ST_DELTA_BADVAL:
		return "Non-numeric server-side value for incr or decr";
	case ST_AUTH_ERROR:
		return "Auth failure.";
	case ST_ENOMEM:
		return "Out of memory";
	case ST_UNKNOWN:
	default:
		return "Unknown command";
	}
}

/* ---- parsing ----------------------------------------------------------- */

/* Builds the error response for status into req->bin.resp. */
static void
set_error(struct proto_req *req, uint16_t status)
{
	const char	*msg = status_text(status);
	size_t		 n = strlen(msg);

	put_header(req->bin.resp, req, status, 0, 0, n, 0);
	memcpy(req->bin.resp + PROTO_BIN_HDR, msg, n);
	req->error = req->bin.resp;
	req->nerror = PROTO_BIN_HDR + n;
}

/* Ends a parse with an error response, then a closed connection. */
static enum proto_result
fail_close(struct proto_req *req, uint16_t status)
{
	set_error(req, status);
	return PROTO_CLOSE;
}

/* True when the lengths fit the opcode's shape, as memcached checks them
 * (stricter where memcached would run body bytes as commands). */
static bool
shape_ok(enum shape sh, size_t nkey, size_t next, size_t nbody)
{
	switch (sh) {
	case SH_EMPTY:
		return nbody == 0;
	case SH_FLUSH:
		return nkey == 0 && nbody == next && (next == 0 || next == 4);
	case SH_STORE:
		return next == 8 && nkey > 0;
	case SH_CONCAT:
		return next == 0 && nkey > 0;
	case SH_GET:
	case SH_DELETE:
		return next == 0 && nkey > 0 && nbody == nkey;
	case SH_TOUCH:
		return next == 4 && nkey > 0 && nbody == nkey + 4;
	case SH_ARITH:
		return next == 20 && nkey > 0 && nbody == nkey + 20;
	case SH_STAT:
		return next == 0 && nbody == nkey;
	case SH_SASL:
		return next == 0 && nkey > 0 && nkey <= SASL_MECH_MAX &&
		    nbody <= SASL_BODY_MAX;
	case SH_VERBOSITY:
		return next == 4 && nkey == 0 && nbody == 4;
	case SH_UNKNOWN:
	default:
		return false;
	}
}

/* Fills req for a storage opcode: an ms with the binary's fields. */
static void
parse_store(struct proto_req *req, const struct opdef *d,
    const unsigned char *ext, uint64_t cas)
{
	struct proto_meta *m = &req->meta;

	m->mode = d->mode;
	if (d->shape == SH_STORE) {
		req->flags = m->client_flags = get32(ext);
		req->exptime = m->ttl = get32(ext + 4);
		m->flags |= PROTO_MF('T') | PROTO_MF('F');
		/* memcached: add or replace with a CAS is a compare-and-swap */
		if (cas != 0)
			m->mode = 'S';
	}
	if (cas != 0) {
		m->flags |= PROTO_MF('C');
		m->cas = cas;
	}
}

/* Fills req for incr/decr: an ma that creates the item holding the
 * initial value on a miss, unless the expiration is 0xffffffff. */
static void
parse_arith(struct proto_req *req, const struct opdef *d,
    const unsigned char *ext, uint64_t cas)
{
	struct proto_meta	*m = &req->meta;
	uint32_t		 exp = get32(ext + 16);

	m->mode = d->mode;
	m->delta = req->delta = get64(ext);
	m->initial = get64(ext + 8);
	if (exp != 0xffffffffu) {
		m->flags |= PROTO_MF('N') | PROTO_MF('J');
		m->vivify_ttl = exp;
	}
	if (cas != 0) {
		m->flags |= PROTO_MF('C');
		m->cas = cas;
	}
}

/* Parses one binary request from buf[0 .. len). */
static enum proto_result
bin_parse(const char *buf, size_t len, struct proto_req *req,
    size_t *consumed)
{
	const unsigned char	*h = (const unsigned char *)buf;
	const unsigned char	*ext;
	const struct opdef	*d;
	size_t			 nkey, next, nbody, need;
	uint64_t		 cas;

	if (len == 0)
		return PROTO_NEED_MORE;
	memset(req, 0, offsetof(struct proto_req, meta));
	memset(&req->meta, 0, offsetof(struct proto_meta, key));
	if (h[0] != MAGIC_REQ) {
		/* not binary: nothing to answer in, framing is gone */
		*consumed = len;
		return PROTO_CLOSE;
	}
	if (len < PROTO_BIN_HDR)
		return PROTO_NEED_MORE;
	req->bin.opcode = h[1];
	memcpy(&req->bin.opaque, h + 12, 4);
	nkey = get16(h + 2);
	next = h[4];
	nbody = get32(h + 8);
	cas = get64(h + 16);
	d = &ops[h[1]];
	/* Errors are found in the header alone: the body is never read. */
	if (nkey + next > nbody) {
		*consumed = PROTO_BIN_HDR;
		return fail_close(req, ST_UNKNOWN);
	}
	if (nkey > PROTO_KEY_MAX) {
		*consumed = PROTO_BIN_HDR;
		return fail_close(req, ST_EINVAL);
	}
	if (d->shape == SH_UNKNOWN) {
		*consumed = PROTO_BIN_HDR;
		if (nbody > UNKNOWN_BODY_MAX)
			return fail_close(req, ST_UNKNOWN);
		set_error(req, ST_UNKNOWN);
		req->swallow = nbody;
		return PROTO_BAD;
	}
	if (!shape_ok(d->shape, nkey, next, nbody)) {
		*consumed = PROTO_BIN_HDR;
		return fail_close(req, ST_EINVAL);
	}
	need = PROTO_BIN_HDR + next + nkey;
	if (d->shape == SH_SASL)
		need = PROTO_BIN_HDR + nbody;
	if (len < need)
		return PROTO_NEED_MORE;
	*consumed = need;
	ext = h + PROTO_BIN_HDR;
	req->cmd = d->cmd;
	req->noreply = d->quiet;
	if (nkey > 0) {
		req->key = buf + PROTO_BIN_HDR + next;
		req->nkey = nkey;
	}
	switch (d->shape) {
	case SH_EMPTY:
		if (d->cmd == PROTO_CMD_QUIT) {
			/* quit answers (quitq does not), then closes */
			if (!d->quiet) {
				put_header(req->bin.resp, req, ST_OK, 0, 0, 0,
				    0);
				req->error = req->bin.resp;
				req->nerror = PROTO_BIN_HDR;
			}
			return PROTO_CLOSE;
		}
		break;
	case SH_STORE:
	case SH_CONCAT:
		parse_store(req, d, ext, cas);
		req->nbytes = (uint32_t)(nbody - nkey - next);
		req->bare_value = true;
		break;
	case SH_DELETE:
		if (cas != 0) {
			req->meta.flags |= PROTO_MF('C');
			req->meta.cas = cas;
		}
		break;
	case SH_ARITH:
		parse_arith(req, d, ext, cas);
		break;
	case SH_TOUCH:
		req->exptime = get32(ext);
		break;
	case SH_FLUSH:
		req->delay = next == 4 ? get32(ext) : 0;
		break;
	case SH_STAT:
		req->arg = req->key != NULL ? req->key : "";
		req->narg = nkey;
		req->key = NULL;
		req->nkey = 0;
		break;
	case SH_SASL:
		req->arg = buf + PROTO_BIN_HDR + nkey;
		req->narg = nbody - nkey;
		break;
	case SH_VERBOSITY:
		req->level = get32(ext);
		break;
	case SH_GET:
	case SH_UNKNOWN:
		break;
	}
	return PROTO_OK;
}

/* ---- composing --------------------------------------------------------- */

/* Queues a response: header, extras, key and body as given. */
static void
put_response(struct proto_out *o, const struct proto_req *req,
    uint16_t status, const char *ext, size_t next, const char *key,
    size_t nkey, const char *body, size_t nbody, uint64_t cas)
{
	size_t	 n = PROTO_BIN_HDR + next + nkey + nbody;
	char	*p;

	if ((p = o->space(o, n)) == NULL)
		return;
	put_header(p, req, status, nkey, next, next + nkey + nbody, cas);
	if (next > 0)
		memcpy(p + PROTO_BIN_HDR, ext, next);
	if (nkey > 0)
		memcpy(p + PROTO_BIN_HDR + next, key, nkey);
	if (nbody > 0)
		memcpy(p + PROTO_BIN_HDR + next + nkey, body, nbody);
	o->commit(o, n);
}

/* Queues an error response with memcached's text for it. */
static void
put_error(struct proto_out *o, const struct proto_req *req, uint16_t status)
{
	const char *msg = status_text(status);

	put_response(o, req, status, NULL, 0, NULL, 0, msg, strlen(msg), 0);
}

/* True for the opcodes whose replies echo the key. */
static bool
echoes_key(uint8_t opcode)
{
	return opcode == BIN_GETK || opcode == BIN_GETKQ || opcode == BIN_GATK ||
	    opcode == BIN_GATKQ;
}

/* The binary status for a neutral result, by the request's opcode. */
static uint16_t
status_of(const struct proto_req *req, enum proto_reply r)
{
	uint8_t op = req->bin.opcode;

	switch (r) {
	case PROTO_R_STORED:
	case PROTO_R_DELETED:
	case PROTO_R_TOUCHED:
	case PROTO_R_OK:
	case PROTO_R_RESET:
	case PROTO_R_END:
	case PROTO_R_NOOP:
	case PROTO_R_AUTH_OK:
	case PROTO_R_AUTH_MECHS:
		return ST_OK;
	case PROTO_R_NOT_STORED:
		/* as memcached words a refused add, replace, append */
		if (op == BIN_ADD || op == BIN_ADDQ)
			return ST_EEXISTS;
		if (op == BIN_REPLACE || op == BIN_REPLACEQ)
			return ST_ENOENT;
		return ST_NOT_STORED;
	case PROTO_R_EXISTS:
		return ST_EEXISTS;
	case PROTO_R_NOT_FOUND:
	case PROTO_R_MISS:
		return ST_ENOENT;
	case PROTO_R_NON_NUMERIC:
		return ST_DELTA_BADVAL;
	case PROTO_R_TOO_LARGE:
		return ST_E2BIG;
	case PROTO_R_NO_MEMORY:
		return ST_ENOMEM;
	case PROTO_R_BAD_FORMAT:
	case PROTO_R_BAD_CHUNK:
		return ST_EINVAL;
	case PROTO_R_AUTH_ERROR:
		return ST_AUTH_ERROR;
	case PROTO_R_ERROR:
		/* an unknown stats group is "Not found" */
		return op == BIN_STAT ? ST_ENOENT : ST_UNKNOWN;
	case PROTO_R_TOO_MANY_CONNS:
	case PROTO_R_SHUTDOWN_OFF:
	case PROTO_R_COUNT:
	default:
		return ST_UNKNOWN;
	}
}

/* A fixed outcome; quiet requests drop successes. */
static void
bin_status(struct proto_out *o, const struct proto_req *req,
    enum proto_reply r)
{
	uint16_t	 st = status_of(req, r);
	const char	*body = "";

	if (st != ST_OK) {
		put_error(o, req, st);
		return;
	}
	if (req->noreply)
		return;
	if (r == PROTO_R_AUTH_OK)
		body = "Authenticated";
	else if (r == PROTO_R_AUTH_MECHS)
		body = "PLAIN";
	put_response(o, req, ST_OK, NULL, 0, NULL, 0, body, strlen(body), 0);
}

/* Gives back a hit's reference without sending its value. */
static void
drop_ref(struct proto_out *o, const struct proto_hit *h)
{
	if (h->ref == NULL)
		return;
	if (o->release != NULL)
		o->release(o, h->ref);
	else
		o->value(o, h->value, 0, h->ref);
}

/* A get, getk, gat or touch hit: flags as extras, the key for the K
 * opcodes, the value except for touch, the item's CAS. */
static void
get_hit(struct proto_out *o, const struct proto_req *req,
    const struct proto_hit *h)
{
	bool	 with_key = echoes_key(req->bin.opcode);
	size_t	 nkey = with_key ? h->nkey : 0;
	size_t	 nval = req->bin.opcode == BIN_TOUCH ? 0 : h->nbytes;
	size_t	 head = PROTO_BIN_HDR + 4 + nkey;
	char	*p;

	if (o->release != NULL && nval <= o->copy_max) {
		/* Small: the whole response in one piece of space. */
		if ((p = o->space(o, head + nval)) != NULL) {
			put_header(p, req, ST_OK, nkey, 4, 4 + nkey + nval,
			    h->cas);
			put32(p + PROTO_BIN_HDR, h->flags);
			if (nkey > 0)
				memcpy(p + PROTO_BIN_HDR + 4, h->key, nkey);
			if (nval > 0)
				memcpy(p + head, h->value, nval);
			o->commit(o, head + nval);
		}
		drop_ref(o, h);
		return;
	}
	if ((p = o->space(o, head)) != NULL) {
		put_header(p, req, ST_OK, nkey, 4, 4 + nkey + nval, h->cas);
		put32(p + PROTO_BIN_HDR, h->flags);
		if (nkey > 0)
			memcpy(p + PROTO_BIN_HDR + 4, h->key, nkey);
		o->commit(o, head);
	}
	if (h->ref != NULL)
		o->value(o, h->value, nval, h->ref);
	else if (nval > 0)
		proto_out_copy(o, h->value, nval);
}

/* The decimal value of an incr/decr item. */
static uint64_t
decimal(const char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	return v;
}

/* One hit: a get's item, a store's new CAS (ms), incr's new value (ma). */
static void
bin_hit(struct proto_out *o, const struct proto_req *req,
    const struct proto_hit *h)
{
	char num[8];

	switch (req->cmd) {
	case PROTO_CMD_MS:
		drop_ref(o, h);
		if (!req->noreply)
			put_response(o, req, ST_OK, NULL, 0, NULL, 0, NULL, 0,
			    h->cas);
		return;
	case PROTO_CMD_MA:
		put64(num, decimal(h->value, h->nbytes));
		drop_ref(o, h);
		if (!req->noreply)
			put_response(o, req, ST_OK, NULL, 0, NULL, 0, num, 8,
			    h->cas);
		return;
	default:
		get_hit(o, req, h);
		return;
	}
}

/* A key not found: "Not found", or for the K opcodes the key itself;
 * nothing for quiet gets. */
static void
bin_miss(struct proto_out *o, const struct proto_req *req)
{
	if (req->noreply)
		return;
	if (echoes_key(req->bin.opcode))
		put_response(o, req, ST_ENOENT, NULL, 0, req->key, req->nkey,
		    NULL, 0, 0);
	else
		put_error(o, req, ST_ENOENT);
}

/* incr/decr's new value as 8 bytes (the ma path uses bin_hit). */
static void
bin_number(struct proto_out *o, const struct proto_req *req, uint64_t v)
{
	char num[8];

	if (req->noreply)
		return;
	put64(num, v);
	put_response(o, req, ST_OK, NULL, 0, NULL, 0, num, 8, 0);
}

/* One statistic: a response with the name as key, the value as body. */
static void
bin_stat(struct proto_out *o, const struct proto_req *req,
    const char *name, const char *value, size_t nvalue)
{
	size_t nname = strlen(name);

	if (nname > UINT16_MAX)
		nname = UINT16_MAX;
	put_response(o, req, ST_OK, NULL, 0, name, nname, value, nvalue, 0);
}

/* The end of stats: an empty response.  A get has no end marker. */
static void
bin_end(struct proto_out *o, const struct proto_req *req)
{
	if (req->cmd == PROTO_CMD_STATS)
		put_response(o, req, ST_OK, NULL, 0, NULL, 0, NULL, 0, 0);
}

/* The version string as the body. */
static void
bin_version(struct proto_out *o, const struct proto_req *req,
    const char *version)
{
	put_response(o, req, ST_OK, NULL, 0, NULL, 0, version,
	    strlen(version), 0);
}

const struct proto_codec proto_bin = {
	.name = "binary",
	.parse = bin_parse,
	.status = bin_status,
	.hit = bin_hit,
	.number = bin_number,
	.stat = bin_stat,
	.end = bin_end,
	.version = bin_version,
	.miss = bin_miss,
};
