/*
 * proto_text.c -- the classic text protocol as a codec: proto_parse()
 * (proto_parse.c) for requests, and composers that turn neutral results
 * into memcached's reply lines through a struct proto_out.
 *
 * noreply: a quiet request gets no reply for its outcome, except errors
 * (CLIENT_ERROR, SERVER_ERROR, ERROR), which memcached sends regardless so
 * a client out of step learns of it.
 *
 * The meta commands share this codec (any line may be either protocol):
 * each composer hands a meta request to its proto_meta.c counterpart.
 *
 * Data structure: none; the fixed texts live in proto_reply.c.
 */
#include <string.h>

#include "proto.h"
#include "proto_meta.h"

/* Queues a copy of n bytes through o; false when memory ran out. */
bool
proto_out_copy(struct proto_out *o, const char *s, size_t n)
{
	char *p;

	if ((p = o->space(o, n)) == NULL)
		return false;
	memcpy(p, s, n);
	o->commit(o, n);
	return true;
}

/* True for the outcomes sent even to a noreply request. */
static bool
is_error(enum proto_reply r)
{
	switch (r) {
	case PROTO_R_ERROR:
	case PROTO_R_NON_NUMERIC:
	case PROTO_R_BAD_FORMAT:
	case PROTO_R_BAD_CHUNK:
	case PROTO_R_TOO_LARGE:
	case PROTO_R_NO_MEMORY:
	case PROTO_R_TOO_MANY_CONNS:
	case PROTO_R_SHUTDOWN_OFF:
	case PROTO_R_AUTH_ERROR:
		return true;
	default:
		return false;
	}
}

/* A fixed reply line, left out for noreply unless it is an error. */
static void
text_status(struct proto_out *o, const struct proto_req *req,
    enum proto_reply r)
{
	const char	*s;
	size_t		 n;

	if (PROTO_CMD_IS_META(req->cmd)) {
		proto_meta_status(o, req, r);
		return;
	}
	if (req->noreply && !is_error(r))
		return;
	s = proto_reply(r, &n);
	proto_out_copy(o, s, n);
}

/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n", the value, "\r\n".  Once
 * space() failed the output is failed as a whole and value() only
 * releases the reference, so nothing goes out half-framed. */
static void
text_hit(struct proto_out *o, const struct proto_req *req,
    const struct proto_hit *h)
{
	bool	 with_cas = req->cmd == PROTO_CMD_GETS ||
		    req->cmd == PROTO_CMD_GATS;
	char	*p;

	if (PROTO_CMD_IS_META(req->cmd)) {
		proto_meta_hit(o, req, h);
		return;
	}
	size_t	 n;

	if (o->release != NULL && h->nbytes <= o->copy_max) {
		/* Small: line, value and "\r\n" in one piece of space. */
		if ((p = o->space(o, PROTO_VALUE_LINE_MAX + h->nbytes + 2)) !=
		    NULL) {
			n = proto_value_line(p, h->key, h->nkey, h->flags,
			    h->nbytes, with_cas, h->cas);
			memcpy(p + n, h->value, h->nbytes);
			memcpy(p + n + h->nbytes, "\r\n", 2);
			o->commit(o, n + h->nbytes + 2);
		}
		if (h->ref != NULL)
			o->release(o, h->ref);
		return;
	}
	if ((p = o->space(o, PROTO_VALUE_LINE_MAX)) != NULL)
		o->commit(o, proto_value_line(p, h->key, h->nkey, h->flags,
		    h->nbytes, with_cas, h->cas));
	o->value(o, h->value, h->nbytes, h->ref);
	proto_out_copy(o, "\r\n", 2);
}

/* "<number>\r\n" for incr/decr, left out for noreply. */
static void
text_number(struct proto_out *o, const struct proto_req *req, uint64_t v)
{
	char *p;

	if (PROTO_CMD_IS_META(req->cmd)) {
		proto_meta_number(o, req, v);
		return;
	}
	if (req->noreply || (p = o->space(o, 24)) == NULL)
		return;
	o->commit(o, proto_u64_line(p, v));
}

/* "STAT <name> <value>\r\n". */
static void
text_stat(struct proto_out *o, const struct proto_req *req,
    const char *name, const char *value, size_t nvalue)
{
	size_t	 cap = strlen(name) + nvalue + 8;
	char	*p;

	(void)req;
	if ((p = o->space(o, cap)) == NULL)
		return;
	o->commit(o, proto_stat_line(p, cap, name, value, nvalue));
}

/* "END\r\n" after a retrieval or stats.  Sent even for noreply:
 * memcached has no quiet get. */
static void
text_end(struct proto_out *o, const struct proto_req *req)
{
	const char	*s;
	size_t		 n;

	if (PROTO_CMD_IS_META(req->cmd)) {
		proto_meta_end(o, req);
		return;
	}
	s = proto_reply(PROTO_R_END, &n);
	proto_out_copy(o, s, n);
}

/* "VERSION <version>\r\n". */
static void
text_version(struct proto_out *o, const struct proto_req *req,
    const char *version)
{
	size_t	 nv = strlen(version);
	char	*p;

	(void)req;
	if ((p = o->space(o, nv + 10)) == NULL)
		return;
	memcpy(p, "VERSION ", 8);
	memcpy(p + 8, version, nv);
	memcpy(p + 8 + nv, "\r\n", 2);
	o->commit(o, nv + 10);
}

const struct proto_codec proto_text = {
	.name = "ascii",
	.parse = proto_parse,
	.status = text_status,
	.hit = text_hit,
	.number = text_number,
	.stat = text_stat,
	.end = text_end,
	.version = text_version,
};
