/*
 * dispatch.c -- runs parsed requests against the store and queues their
 * replies.  A table maps each protocol command to its handler; store
 * statuses map one to one onto wire replies through status_reply[].
 *
 * Storage commands run in two steps: the command line reserves an item and
 * the connection streams the value into it (conn_start_nread) and the
 * 2 bytes after it into c->nread_end, then dispatch_value() checks that
 * terminator and commits the item.
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "server.h"
#include "version.h"
#include "worker.h"

typedef void (*cmd_fn)(struct conn *, const struct proto_req *);

/* The wire reply for each store status. */
static const enum proto_reply status_reply[] = {
	[STORE_OK] = PROTO_R_OK,
	[STORE_STORED] = PROTO_R_STORED,
	[STORE_NOT_STORED] = PROTO_R_NOT_STORED,
	[STORE_EXISTS] = PROTO_R_EXISTS,
	[STORE_NOT_FOUND] = PROTO_R_NOT_FOUND,
	[STORE_DELETED] = PROTO_R_DELETED,
	[STORE_TOUCHED] = PROTO_R_TOUCHED,
	[STORE_NON_NUMERIC] = PROTO_R_NON_NUMERIC,
	[STORE_TOO_LARGE] = PROTO_R_TOO_LARGE,
	[STORE_NO_MEMORY] = PROTO_R_NO_MEMORY,
};

/* Queues the reply for a store status; errors are sent even for noreply. */
static void
reply_status(struct conn *c, store_status_t st)
{
	if (st == STORE_NON_NUMERIC || st == STORE_TOO_LARGE ||
	    st == STORE_NO_MEMORY)
		conn_error(c, status_reply[st]);
	else
		conn_reply(c, status_reply[st]);
}

/* Queues "VALUE ..." and the value of a hit. */
static void
out_hit(struct conn *c, item_t *it, bool with_cas)
{
	char	*p;
	size_t	 n;

	if ((p = conn_out_space(c, PROTO_VALUE_LINE_MAX)) == NULL) {
		store_release(c->srv->store, it);
		conn_set_closing(c);
		return;
	}
	n = proto_value_line(p, item_key(it), item_nkey(it), item_flags(it),
	    item_nbytes(it), with_cas, item_cas(it));
	conn_out_commit(c, n);
	conn_out_value(c, it);
}

/* get, gets, gat, gats: one VALUE block per hit, then END; resumable. */
bool
dispatch_retrieve(struct conn *c, const struct proto_req *req, size_t *cursor)
{
	struct thread_stats	*ts = &c->w->stats;
	bool			 touch = req->cmd == PROTO_CMD_GAT ||
				     req->cmd == PROTO_CMD_GATS;
	bool			 with_cas = req->cmd == PROTO_CMD_GETS ||
				     req->cmd == PROTO_CMD_GATS;
	size_t			 nkey;
	const char		*key;
	item_t			*it;
	store_status_t		 st;

	while (!conn_out_full(c)) {
		if (!proto_next_key(req, cursor, &key, &nkey)) {
			conn_error(c, PROTO_R_END);
			return true;
		}
		STAT_INC(ts, cmd_get);
		if (touch) {
			STAT_INC(ts, cmd_touch);
			st = store_gat(c->srv->store, key, nkey, req->exptime,
			    &it);
		} else
			st = store_get(c->srv->store, key, nkey, &it);
		if (st == STORE_OK) {
			STAT_INC(ts, get_hits);
			if (touch)
				STAT_INC(ts, touch_hits);
			out_hit(c, it, with_cas);
		} else {
			STAT_INC(ts, get_misses);
			if (touch)
				STAT_INC(ts, touch_misses);
		}
	}
	return false;
}

/* Refuses a value that cannot be stored and skips its bytes.  A failed
 * set also removes the old value so no stale data outlives it. */
static void
refuse_value(struct conn *c, const struct proto_req *req, store_status_t st)
{
	if (st == STORE_TOO_LARGE)
		STAT_INC(&c->w->stats, store_too_large);
	else
		STAT_INC(&c->w->stats, store_no_memory);
	conn_error(c, status_reply[st]);
	conn_start_swallow(c, (size_t)req->nbytes + 2);
	if (req->cmd == PROTO_CMD_SET)
		store_delete(c->srv->store, req->key, req->nkey);
}

/* set, add, replace, append, prepend, cas: reserve and read the value. */
static void
cmd_store(struct conn *c, const struct proto_req *req)
{
	item_t		*it;
	store_status_t	 st;

	STAT_INC(&c->w->stats, cmd_set);
	st = store_reserve(c->srv->store, req->key, req->nkey, req->flags,
	    req->exptime, req->nbytes, &it);
	if (st != STORE_OK) {
		refuse_value(c, req, st);
		return;
	}
	conn_start_nread(c, it, req->cmd, req->cas, req->noreply);
}

/* Maps a storage command to the store's commit mode. */
static store_mode_t
store_mode_of(enum proto_cmd cmd)
{
	switch (cmd) {
	case PROTO_CMD_ADD:
		return STORE_ADD;
	case PROTO_CMD_REPLACE:
		return STORE_REPLACE;
	case PROTO_CMD_APPEND:
		return STORE_APPEND;
	case PROTO_CMD_PREPEND:
		return STORE_PREPEND;
	case PROTO_CMD_CAS:
		return STORE_CAS;
	default:
		return STORE_SET;
	}
}

/* Completes a storage command once its value is in the item. */
void
dispatch_value(struct conn *c, item_t *it, enum proto_cmd cmd, uint64_t cas)
{
	struct thread_stats	*ts = &c->w->stats;
	store_status_t		 st;

	if (c->nread_end_got != 2 || !proto_data_end_ok(c->nread_end)) {
		/* The client's framing disagrees with ours: stop here. */
		store_release(c->srv->store, it);
		conn_error(c, PROTO_R_BAD_CHUNK);
		conn_set_closing(c);
		return;
	}
	st = store_commit(c->srv->store, it, store_mode_of(cmd), cas, NULL);
	if (cmd == PROTO_CMD_CAS) {
		if (st == STORE_STORED)
			STAT_INC(ts, cas_hits);
		else if (st == STORE_EXISTS)
			STAT_INC(ts, cas_badval);
		else if (st == STORE_NOT_FOUND)
			STAT_INC(ts, cas_misses);
	}
	reply_status(c, st);
}

/* delete <key>. */
static void
cmd_delete(struct conn *c, const struct proto_req *req)
{
	store_status_t st = store_delete(c->srv->store, req->key, req->nkey);

	if (st == STORE_DELETED)
		STAT_INC(&c->w->stats, delete_hits);
	else
		STAT_INC(&c->w->stats, delete_misses);
	reply_status(c, st);
}

/* incr/decr <key> <delta>: the new value, or an error. */
static void
cmd_arith(struct conn *c, const struct proto_req *req)
{
	struct thread_stats	*ts = &c->w->stats;
	bool			 incr = req->cmd == PROTO_CMD_INCR;
	uint64_t		 result;
	store_status_t		 st;
	char			*p;

	st = store_incr(c->srv->store, req->key, req->nkey, incr, req->delta,
	    &result);
	if (st == STORE_NOT_FOUND) {
		if (incr)
			STAT_INC(ts, incr_misses);
		else
			STAT_INC(ts, decr_misses);
	} else if (st == STORE_OK) {
		if (incr)
			STAT_INC(ts, incr_hits);
		else
			STAT_INC(ts, decr_hits);
		if (c->noreply)
			return;
		if ((p = conn_out_space(c, 24)) == NULL) {
			conn_set_closing(c);
			return;
		}
		conn_out_commit(c, proto_u64_line(p, result));
		return;
	}
	reply_status(c, st);
}

/* touch <key> <exptime>. */
static void
cmd_touch(struct conn *c, const struct proto_req *req)
{
	store_status_t st;

	STAT_INC(&c->w->stats, cmd_touch);
	st = store_touch(c->srv->store, req->key, req->nkey, req->exptime);
	if (st == STORE_TOUCHED)
		STAT_INC(&c->w->stats, touch_hits);
	else
		STAT_INC(&c->w->stats, touch_misses);
	reply_status(c, st);
}

/* flush_all [delay]. */
static void
cmd_flush_all(struct conn *c, const struct proto_req *req)
{
	STAT_INC(&c->w->stats, cmd_flush);
	store_flush(c->srv->store, req->delay);
	conn_reply(c, PROTO_R_OK);
}

/* version. */
static void
cmd_version(struct conn *c, const struct proto_req *req)
{
	static const char v[] = "VERSION " CACHED_WIRE_VERSION "\r\n";

	(void)req;
	conn_out(c, v, sizeof v - 1);
}

/* verbosity <level>: sets the log level. */
static void
cmd_verbosity(struct conn *c, const struct proto_req *req)
{
	log_set_level(req->level > 2 ? 2 : (int)req->level);
	conn_reply(c, PROTO_R_OK);
}

/* quit: close without a reply. */
static void
cmd_quit(struct conn *c, const struct proto_req *req)
{
	(void)req;
	conn_set_closing(c);
}

/* shutdown: stop the server when -A allows it. */
static void
cmd_shutdown(struct conn *c, const struct proto_req *req)
{
	(void)req;
	if (!c->srv->opts->allow_shutdown) {
		conn_error(c, PROTO_R_SHUTDOWN_OFF);
		return;
	}
	log_msg(LOG_INFO, "shutdown requested by a client");
	server_request_shutdown(c->srv);
	conn_set_closing(c);
}

/* stats [sub]. */
static void
cmd_stats(struct conn *c, const struct proto_req *req)
{
	if (stats_reply(c, req->arg, req->narg) != 0)
		conn_error(c, PROTO_R_ERROR);
}

static const cmd_fn handlers[PROTO_CMD_COUNT] = {
	[PROTO_CMD_SET] = cmd_store,
	[PROTO_CMD_ADD] = cmd_store,
	[PROTO_CMD_REPLACE] = cmd_store,
	[PROTO_CMD_APPEND] = cmd_store,
	[PROTO_CMD_PREPEND] = cmd_store,
	[PROTO_CMD_CAS] = cmd_store,
	[PROTO_CMD_DELETE] = cmd_delete,
	[PROTO_CMD_INCR] = cmd_arith,
	[PROTO_CMD_DECR] = cmd_arith,
	[PROTO_CMD_TOUCH] = cmd_touch,
	[PROTO_CMD_FLUSH_ALL] = cmd_flush_all,
	[PROTO_CMD_VERSION] = cmd_version,
	[PROTO_CMD_VERBOSITY] = cmd_verbosity,
	[PROTO_CMD_QUIT] = cmd_quit,
	[PROTO_CMD_SHUTDOWN] = cmd_shutdown,
	[PROTO_CMD_STATS] = cmd_stats,
};

/* Runs one parsed request on connection c (multi-key gets go through
 * dispatch_retrieve instead). */
void
dispatch_request(struct conn *c, const struct proto_req *req)
{
	assert(handlers[req->cmd] != NULL);
	if (log_enabled(LOG_DEBUG))
		log_msg(LOG_DEBUG, "<%d command %d", c->fd, (int)req->cmd);
	handlers[req->cmd](c, req);
}
