/*
 * dispatch.c -- runs protocol-neutral requests against the store and
 * reports their results through a reply sink (dispatch.h).
 *
 * A table maps each operation to its handler, retrievals included: a
 * multi-key get is a resumable handler that answers keys until the sink's
 * output is full and returns AGAIN, keeping its place in state->cursor.
 * Store statuses map one to one onto neutral results through
 * status_reply[]; the protocol's composer turns those into bytes.
 *
 * Storage commands run in two steps: the request reserves an item and
 * returns VALUE; the caller streams the value into the item and calls
 * dispatch_value, which checks the terminator and commits.  A set whose
 * value the caller says is buffered whole (state->value_here) reserves
 * with store_reserve_direct: its item is carved in place, so the value
 * is copied once, and the caller feeds and commits it at once.
 *
 * The meta commands (mg ms md ma mn me) are rows of the same table, on
 * the store's meta operations (store.h); their counters follow how
 * memcached 1.6.18 counts them, which test_differential.py compares.
 *
 * The binary protocol (proto_bin.c) maps its opcodes onto these same rows
 * (get/gat with one key, ms, md, ma, mn ...); SASL authentication adds
 * rows of its own, and with -S every request but SASL and version waits
 * for it (dispatch_request's gate, as memcached's authenticated()).
 * The text protocol's login (-Y) passes the same gate: a "set" reserves
 * a scratch item for its value like any set, and dispatch_value checks
 * the value through env->login and releases the item unlinked.
 *
 * "watch" (watch.h): each key operation offers its line to the fetchers,
 * mutations or deletions stream, after one relaxed load says a watcher
 * wants it; "watch" itself is checked here and handed to the connection
 * (DISPATCH_WATCH).
 *
 * No locks of its own: the store locks itself, counters belong to the
 * calling thread.
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "auth.h"
#include "dispatch.h"
#include "dump.h"
#include "log.h"
#include "stats_detail.h"
#include "version.h"
#include "watch.h"

/* One step of one request, as handlers see it. */
struct op {
	const struct dispatch_env	*env;
	const struct proto_req		*req;
	struct dispatch_state		*state;
	const struct reply_sink		*sink;
};

typedef enum dispatch_next (*op_fn)(const struct op *);

/* The neutral result for each store status. */
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

/* Reports a neutral result. */
static void
reply(const struct op *op, enum proto_reply r)
{
	op->sink->codec->status(op->sink->out, op->req, r);
}

/* The CAS a client sent, to compare with an item's.  With -C memcached
 * keeps no CAS values, and a compare never matches (cas answers EXISTS),
 * which a value no item's 56-bit CAS can reach gives here. */
static uint64_t
client_cas(const struct dispatch_env *env, uint64_t cas)
{
	return env->no_cas ? UINT64_MAX : cas;
}

/* Reports the result of a store status. */
static void
reply_status(const struct op *op, store_status_t st)
{
	reply(op, status_reply[st]);
}

/* The neutral view of an item found, without a reference. */
static struct proto_hit
hit_of(const struct op *op, const item_t *it)
{
	struct item_view v;

	item_view(it, &v);
	return (struct proto_hit){
		.key = v.key,
		.nkey = v.nkey,
		.flags = v.flags,
		.cas = op->env->no_cas ? 0 : v.cas,
		.value = v.value,
		.nbytes = v.nbytes,
	};
}

/* Reports a hit; the sink takes over the item's reference. */
static void
reply_hit(const struct op *op, item_t *it)
{
	struct proto_hit h = hit_of(op, it);

	h.ref = it;
	op->sink->codec->hit(op->sink->out, op->req, &h);
}

/* Counts a key operation for "stats detail", when it is on. */
static void
detail(const struct op *op, enum stats_detail_op d, const char *key,
    size_t nkey, bool hit)
{
	const struct dispatch_env *env = op->env;

	if (env->detail != NULL && env->detail_on != NULL &&
	    __atomic_load_n(env->detail_on, __ATOMIC_RELAXED))
		env->detail(env->ctx, (int)d, key, nkey, hit);
}

/* ---- "watch" lines (watch.h); each checks first that one is wanted --- */

/* fetchers: a lookup's key, found or not, and the size found. */
static void
watch_fetch(const struct op *op, const char *key, size_t nkey,
    const item_t *it)
{
	if (watch_wants(WATCH_FETCHERS))
		watch_item_get(key, nkey, it != NULL ? WATCH_GET_FOUND :
		    WATCH_GET_NOT_FOUND, it != NULL ?
		    (uint32_t)item_nbytes(it) : 0, op->env->cfd);
}

/* Looks key up without touching it (no access, no fetched bit, no
 * recache token): *it is a reference to release, or NULL. */
static void
watch_peek(const struct op *op, const char *key, size_t nkey, item_t **it,
    struct store_meta_info *info)
{
	struct store_mget_opts o = { .no_bump = true, .peek = true };

	if (store_mget(op->env->store, key, nkey, &o, it, info) != STORE_OK)
		*it = NULL;
}

/* fetchers: memcached logs the lookup every key command makes before it
 * acts (stores, touch, delete, incr included).  The store's own lookup
 * is not seen from here, so the key is looked up once more, untouched,
 * only while fetchers are watched. */
static void
watch_lookup(const struct op *op, const char *key, size_t nkey)
{
	struct store_meta_info	 info;
	item_t			*it;

	if (!watch_wants(WATCH_FETCHERS))
		return;
	watch_peek(op, key, nkey, &it, &info);
	watch_fetch(op, key, nkey, it);
	if (it != NULL)
		store_release(op->env->store, it);
}

/* The item_store status of a store status. */
static enum watch_store_status
watch_status(store_status_t st)
{
	switch (st) {
	case STORE_STORED:
		return WATCH_STORED;
	case STORE_EXISTS:
		return WATCH_EXISTS;
	case STORE_NOT_FOUND:
		return WATCH_NOT_FOUND;
	case STORE_TOO_LARGE:
		return WATCH_TOO_LARGE;
	case STORE_NO_MEMORY:
		return WATCH_NO_MEMORY;
	default:
		return WATCH_NOT_STORED;
	}
}

/* The item_store cmd of a storage command (ms: of its mode). */
static enum watch_store_cmd
watch_cmd(const struct proto_req *req)
{
	switch (req->cmd == PROTO_CMD_MS ? (req->meta.mode == 'E' ?
	    PROTO_CMD_ADD : req->meta.mode == 'R' ? PROTO_CMD_REPLACE :
	    req->meta.mode == 'A' ? PROTO_CMD_APPEND :
	    req->meta.mode == 'P' ? PROTO_CMD_PREPEND : PROTO_CMD_SET) :
	    req->cmd) {
	case PROTO_CMD_ADD:
		return WATCH_CMD_ADD;
	case PROTO_CMD_REPLACE:
		return WATCH_CMD_REPLACE;
	case PROTO_CMD_APPEND:
		return WATCH_CMD_APPEND;
	case PROTO_CMD_PREPEND:
		return WATCH_CMD_PREPEND;
	case PROTO_CMD_CAS:
		return WATCH_CMD_CAS;
	default:
		return WATCH_CMD_SET;
	}
}

/* What a mutation line tells of an item before it goes to the store
 * (which consumes it; the request's key may be gone by then). */
struct watch_mut {
	char		key[STORE_KEY_MAX];
	size_t		nkey;
	uint32_t	size;
	uint32_t	ttl;
};

/* Notes item it's key, size and TTL (exptime as sent) when mutations
 * are watched; false when they are not. */
static bool
watch_mut_note(const struct op *op, const item_t *it, int64_t exptime,
    struct watch_mut *m)
{
	int64_t ttl;

	if (!watch_wants(WATCH_MUTATIONS))
		return false;
	m->nkey = item_nkey(it);
	memcpy(m->key, item_key(it), m->nkey);
	m->size = (uint32_t)item_nbytes(it);
	/* memcached prints exptime - now as unsigned, 0 for none */
	ttl = exptime == 0 ? 0 : store_ttl_of(op->env->store, exptime);
	m->ttl = ttl < 0 && exptime == 0 ? 0 : (uint32_t)ttl;
	return true;
}

/* mutations: a store's outcome; a joined value (append, prepend) is
 * shown as memcached shows it, with its whole size and the TTL it kept. */
static void
watch_mut_done(const struct op *op, const struct watch_mut *m,
    store_status_t st)
{
	enum watch_store_cmd	 cmd = watch_cmd(op->req);
	uint32_t		 size = m->size, ttl = m->ttl;
	struct store_meta_info	 info;
	item_t			*it;

	if (st == STORE_STORED && (cmd == WATCH_CMD_APPEND ||
	    cmd == WATCH_CMD_PREPEND)) {
		watch_peek(op, m->key, m->nkey, &it, &info);
		if (it != NULL) {
			size = (uint32_t)item_nbytes(it);
			ttl = info.ttl < 0 ? 0 : (uint32_t)info.ttl;
			store_release(op->env->store, it);
		}
	}
	watch_item_store(m->key, m->nkey, watch_status(st), cmd, ttl, size,
	    op->env->cfd);
}

/* mutations: a store refused before its value was read. */
static void
watch_mut_refused(const struct op *op, store_status_t st)
{
	if (watch_wants(WATCH_MUTATIONS))
		watch_item_store(op->req->key, op->req->nkey, watch_status(st),
		    watch_cmd(op->req), 0, 0, op->env->cfd);
}

/* A get's hit, shown by store_get_with under the item's shard lock or as
 * a private copy: the reply is composed there, so a value in a segment is
 * copied out without a reference; a loose one (large, never a copy) is
 * queued by a reference taken here. */
static void
visit_get(void *ctx, item_t *it)
{
	const struct op *op = ctx;
	struct proto_hit h = hit_of(op, it);

	watch_fetch(op, h.key, h.nkey, it);
	if (!item_in_segment(it)) {
		store_ref(it);
		h.ref = it;
	}
	op->sink->codec->hit(op->sink->out, op->req, &h);
}

/*
 * The keys of a multi-key get, read a few ahead of the one looked up:
 * each key's bucket is asked for when it joins the window and its first
 * item when it is next, so the lookups (a fifth of a 10-key get's CPU
 * went to waiting for them) find both in the CPU's cache.
 */
#define AHEAD	3

struct ahead {
	struct ahead_key {
		const char	*key;
		size_t		 nkey;
		uint64_t	 hv;
		size_t		 cursor;	/* after this key */
	}		 k[AHEAD];
	unsigned	 head, n;
	size_t		 cursor;		/* after the last read */
};

/* Fills the window; false when no key is left.  *k is the next key. */
static bool
ahead_next(const struct op *op, struct ahead *a, struct ahead_key *k)
{
	struct ahead_key *t;

	while (a->n < AHEAD) {
		t = &a->k[(a->head + a->n) % AHEAD];
		if (!proto_next_key(op->req, &a->cursor, &t->key, &t->nkey))
			break;
		t->cursor = a->cursor;
		t->hv = store_key_hash(op->env->store, t->key, t->nkey);
		if (a->n > 0)		/* not for the first: no time */
			store_prefetch(op->env->store, t->hv, false);
		a->n++;
	}
	if (a->n == 0)
		return false;
	*k = a->k[a->head];
	a->head = (a->head + 1) % AHEAD;
	if (--a->n > 0)
		store_prefetch(op->env->store, a->k[a->head].hv, true);
	return true;
}

/* get, gets, gat, gats: a hit per key found, then the end; resumable. */
static enum dispatch_next
op_retrieve(const struct op *op)
{
	const struct proto_req	*req = op->req;
	struct thread_stats	*ts = op->env->stats;
	struct proto_out	*out = op->sink->out;
	bool			 touch = req->cmd == PROTO_CMD_GAT ||
				     req->cmd == PROTO_CMD_GATS;
	struct ahead		 a = { .cursor = op->state->cursor };
	struct ahead_key	 k;
	size_t			 nkey;
	const char		*key;
	item_t			*it;
	store_status_t		 st;

	while (!out->full(out)) {
		if (!ahead_next(op, &a, &k)) {
			op->sink->codec->end(out, req);
			return DISPATCH_DONE;
		}
		op->state->cursor = k.cursor;
		key = k.key;
		nkey = k.nkey;
		/* As memcached counts them: a gat key is a touch, not a get. */
		if (touch) {
			STAT_INC(ts, cmd_touch);
			st = store_gat(op->env->store, key, nkey, req->exptime,
			    &it);
		} else {
			STAT_INC(ts, cmd_get);
			st = store_get_with(op->env->store, key, nkey, k.hv,
			    visit_get, (void *)op);
		}
		detail(op, STATS_DETAIL_GET, key, nkey, st == STORE_OK);
		if (touch)
			watch_fetch(op, key, nkey, st == STORE_OK ? it : NULL);
		else if (st != STORE_OK)
			watch_fetch(op, key, nkey, NULL);
		if (st == STORE_OK) {
			if (touch) {
				STAT_INC(ts, touch_hits);
				reply_hit(op, it);
			} else {
				STAT_INC(ts, get_hits);
			}
		} else {
			if (touch)
				STAT_INC(ts, touch_misses);
			else
				STAT_INC(ts, get_misses);
			if (op->sink->codec->miss != NULL)
				op->sink->codec->miss(out, req);
		}
	}
	return DISPATCH_AGAIN;
}

/* The bytes a storage command's value takes on the wire: the value and,
 * except in the binary protocol, its "\r\n". */
static size_t
value_wire_len(const struct proto_req *req)
{
	return (size_t)req->nbytes + (req->bare_value ? 0 : 2);
}

/* True if a store's value is buffered whole, so its item may be carved
 * in place and filled before anything else runs; for sets only: any
 * other mode may be refused, which would leave the carved bytes dead.
 * (Before a -Y login a set reaches op_login instead.) */
static bool
direct_ok(const struct op *op)
{
	return op->state->value_here;
}

/* set, add, replace, append, prepend, cas: reserve, then read the value.
 * A refused set also removes the old value, so no stale data outlives a
 * store the client was told failed. */
static enum dispatch_next
op_store(const struct op *op)
{
	const struct proto_req	*req = op->req;
	store_status_t		 st;

	detail(op, STATS_DETAIL_SET, req->key, req->nkey, false);
	st = (direct_ok(op) && req->cmd == PROTO_CMD_SET ?
	    store_reserve_direct : store_reserve)(op->env->store, req->key,
	    req->nkey, req->flags, req->exptime, req->nbytes, &op->state->it);
	if (st == STORE_OK) {
		/* memcached counts a set once its value is in, not a refusal */
		STAT_INC(op->env->stats, cmd_set);
		return DISPATCH_VALUE;
	}
	if (st == STORE_TOO_LARGE)
		STAT_INC(op->env->stats, store_too_large);
	else
		STAT_INC(op->env->stats, store_no_memory);
	watch_mut_refused(op, st);
	reply_status(op, st);
	if (req->cmd == PROTO_CMD_SET) {
		watch_lookup(op, req->key, req->nkey);
		store_delete(op->env->store, req->key, req->nkey);
	}
	op->state->swallow = value_wire_len(req);
	return DISPATCH_SWALLOW;
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

static enum dispatch_next meta_set_value(const struct op *op, item_t *it);
static enum dispatch_next login_value(const struct op *op, item_t *it,
	    const char *end2);

/* True while a connection must log in with the text protocol (-Y). */
static bool
login_pending(const struct dispatch_env *env)
{
	return env->login != NULL && env->authenticated != NULL &&
	    !*env->authenticated;
}

/* Completes a storage command once its value is in the item. */
enum dispatch_next
dispatch_value(const struct dispatch_env *env, const struct proto_req *req,
    struct dispatch_state *state, const char *end2,
    const struct reply_sink *sink)
{
	struct op		 op = { env, req, state, sink };
	struct thread_stats	*ts = env->stats;
	item_t			*it = state->it;
	struct watch_mut	 wm;
	bool			 watched;
	store_status_t		 st;

	state->it = NULL;
	if (login_pending(env))
		return login_value(&op, it, end2);
	if (!proto_data_end_ok(end2)) {
		/* The client's framing disagrees with ours: stop here. */
		store_release(env->store, it);
		reply(&op, PROTO_R_BAD_CHUNK);
		return DISPATCH_CLOSE;
	}
	if (req->cmd == PROTO_CMD_MS)
		return meta_set_value(&op, it);
	watch_lookup(&op, item_key(it), item_nkey(it));
	watched = watch_mut_note(&op, it, req->exptime, &wm);
	st = store_commit(env->store, it, store_mode_of(req->cmd),
	    client_cas(env, req->cas), NULL);
	if (watched)
		watch_mut_done(&op, &wm, st);
	if (req->cmd == PROTO_CMD_CAS) {
		if (st == STORE_STORED)
			STAT_INC(ts, cas_hits);
		else if (st == STORE_EXISTS)
			STAT_INC(ts, cas_badval);
		else if (st == STORE_NOT_FOUND)
			STAT_INC(ts, cas_misses);
	}
	if (st == STORE_NO_MEMORY || st == STORE_TOO_LARGE)
		STAT_INC(ts, store_no_memory);
	reply_status(&op, st);
	return DISPATCH_DONE;
}

/* delete <key>. */
static enum dispatch_next
op_delete(const struct op *op)
{
	store_status_t st;

	detail(op, STATS_DETAIL_DEL, op->req->key, op->req->nkey, false);
	watch_lookup(op, op->req->key, op->req->nkey);
	st = store_delete(op->env->store, op->req->key, op->req->nkey);

	if (st == STORE_DELETED && watch_wants(WATCH_DELETIONS))
		watch_deleted(op->req->key, op->req->nkey, false, 0);
	if (st == STORE_DELETED)
		STAT_INC(op->env->stats, delete_hits);
	else
		STAT_INC(op->env->stats, delete_misses);
	reply_status(op, st);
	return DISPATCH_DONE;
}

/* incr/decr <key> <delta>: the new value, or an error. */
static enum dispatch_next
op_arith(const struct op *op)
{
	const struct proto_req	*req = op->req;
	struct thread_stats	*ts = op->env->stats;
	bool			 incr = req->cmd == PROTO_CMD_INCR;
	uint64_t		 result;
	store_status_t		 st;

	watch_lookup(op, req->key, req->nkey);
	st = store_incr(op->env->store, req->key, req->nkey, incr, req->delta,
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
		op->sink->codec->number(op->sink->out, req, result);
		return DISPATCH_DONE;
	}
	reply_status(op, st);
	return DISPATCH_DONE;
}

/* touch <key> <exptime>. */
static enum dispatch_next
op_touch(const struct op *op)
{
	store_status_t st;

	STAT_INC(op->env->stats, cmd_touch);
	watch_lookup(op, op->req->key, op->req->nkey);
	st = store_touch(op->env->store, op->req->key, op->req->nkey,
	    op->req->exptime);
	if (st == STORE_TOUCHED)
		STAT_INC(op->env->stats, touch_hits);
	else
		STAT_INC(op->env->stats, touch_misses);
	reply_status(op, st);
	return DISPATCH_DONE;
}

/* flush_all [delay]. */
static enum dispatch_next
op_flush_all(const struct op *op)
{
	if (op->env->no_flush) {
		reply(op, PROTO_R_FLUSH_OFF);
		return DISPATCH_DONE;
	}
	STAT_INC(op->env->stats, cmd_flush);
	store_flush(op->env->store, op->req->delay);
	reply(op, PROTO_R_OK);
	return DISPATCH_DONE;
}

/* version. */
static enum dispatch_next
op_version(const struct op *op)
{
	op->sink->codec->version(op->sink->out, op->req, CACHED_WIRE_VERSION);
	return DISPATCH_DONE;
}

/* verbosity <level>: sets the log level. */
static enum dispatch_next
op_verbosity(const struct op *op)
{
	log_set_level(op->req->level > 2 ? 2 : (int)op->req->level);
	reply(op, PROTO_R_OK);
	return DISPATCH_DONE;
}

/* quit: close without a reply. */
static enum dispatch_next
op_quit(const struct op *op)
{
	(void)op;
	return DISPATCH_CLOSE;
}

/* shutdown: stop the server when -A allows it. */
static enum dispatch_next
op_shutdown(const struct op *op)
{
	const struct proto_req *req = op->req;
	bool mode_ok = req->narg == 0 ||
	    (req->narg == 8 && memcmp(req->arg, "graceful", 8) == 0);

	/* memcached checks -A first, then the mode */
	if (op->env->shutdown == NULL || !op->env->shutdown_enabled) {
		reply(op, PROTO_R_SHUTDOWN_OFF);
		return DISPATCH_DONE;
	}
	if (!mode_ok) {
		reply(op, PROTO_R_SHUTDOWN_MODE);
		return DISPATCH_DONE;
	}
	if (!op->env->shutdown(op->env->ctx)) {
		reply(op, PROTO_R_SHUTDOWN_OFF);
		return DISPATCH_DONE;
	}
	/* "graceful" is memcached's SIGUSR1 stop, which differs from the
	 * plain one only in saving a warm-restart file: cached has none. */
	log_msg(LOG_INFO, "%sshutdown requested by a client",
	    op->req->narg != 0 ? "graceful " : "");
	return DISPATCH_CLOSE;
}

/* refresh_certs: reloads the TLS certificates; memcached answers OK or
 * its error line, even to noreply. */
static enum dispatch_next
op_refresh_certs(const struct op *op)
{
	static const char off[] = "Error TLS not enabled\r\n";
	char err[768];

	if (op->env->refresh_certs == NULL)
		proto_out_copy(op->sink->out, off, sizeof off - 1);
	else if (op->env->refresh_certs(op->env->ctx, err, sizeof err)) {
		log_msg(LOG_INFO, "TLS certificates reloaded by a client");
		reply(op, PROTO_R_OK);
	} else {
		log_msg(LOG_ERR, "refresh_certs failed, old certificates kept: "
		    "%.*s", (int)strcspn(err, "\r"), err);
		proto_out_copy(op->sink->out, err, strlen(err));
	}
	return DISPATCH_DONE;
}

/* stats [sub]. */
static enum dispatch_next
op_stats(const struct op *op)
{
	/* A key dump, resumable (dump.c). */
	if (dump_is_cachedump(op->req))
		return dump_cachedump(op->env, op->req, op->state, op->sink);
	if (op->env->stats_reply == NULL ||
	    !op->env->stats_reply(op->env->ctx, op->req, op->sink))
		reply(op, PROTO_R_ERROR);
	return DISPATCH_DONE;
}

/* lru_crawler <sub> [arg]: key dumps and the crawler's switches. */
static enum dispatch_next
op_lru_crawler(const struct op *op)
{
	return dump_lru_crawler(op->env, op->req, op->state, op->sink);
}

/* watch [streams]: checked here, -W first as memcached does; the
 * connection becomes a watcher (DISPATCH_WATCH). */
static enum dispatch_next
op_watch(const struct op *op)
{
	static const char off[] = "CLIENT_ERROR watch commands not allowed\r\n";

	if (op->env->no_watch) {
		proto_out_copy(op->sink->out, off, sizeof off - 1);
		return DISPATCH_DONE;
	}
	op->state->watch_streams = watch_parse_streams(op->req->arg,
	    op->req->narg);
	if (op->state->watch_streams == 0) {
		reply(op, PROTO_R_ERROR);
		return DISPATCH_DONE;
	}
	return DISPATCH_WATCH;
}

/* ---- run-time tuning ---------------------------------------------- */

/* The pseudo slab classes "slabs reassign" knows: memcached's 0 (its
 * global page pool) and 1, the one class cached shows (stats.c). */
#define SLAB_CLASS_MAX	1

/* cache_memlimit <MB>: a new memory limit; shrinking evicts down to it. */
static enum dispatch_next
op_memlimit(const struct op *op)
{
	size_t mb = (size_t)op->req->admin.n1;

	reply(op, store_set_limit(op->env->store, mb * 1024 * 1024) ?
	    PROTO_R_OK : PROTO_R_MEMLIMIT_FAILED);
	return DISPATCH_DONE;
}

/* slabs automove|reassign: no classes to move pages between; automove
 * settings are kept for "stats settings", reassign answers as memcached
 * does for a class with no spare page. */
static enum dispatch_next
op_slabs(const struct op *op)
{
	const struct proto_admin *a = &op->req->admin;

	if (a->sub == PROTO_ADMIN_REASSIGN) {
		if (a->n1 == a->n2)
			reply(op, PROTO_R_SLABS_SAME);
		else if (a->n1 < 0 || a->n1 > SLAB_CLASS_MAX || a->n2 < 0 ||
		    a->n2 > SLAB_CLASS_MAX)
			reply(op, PROTO_R_SLABS_BADCLASS);
		else
			reply(op, PROTO_R_SLABS_NOSPARE);
		return DISPATCH_DONE;
	}
	if (op->env->tune != NULL)
		op->env->tune(op->env->ctx, a);
	reply(op, PROTO_R_OK);
	return DISPATCH_DONE;
}

/* lru tune|mode|temp_ttl: kept for "stats settings"; the store has one
 * FIFO, nothing to tune. */
static enum dispatch_next
op_lru(const struct op *op)
{
	if (op->env->tune != NULL)
		op->env->tune(op->env->ctx, &op->req->admin);
	reply(op, PROTO_R_OK);
	return DISPATCH_DONE;
}

/* ---- the meta commands -------------------------------------------- */

/* True when meta flag ch was given. */
static bool
has(const struct proto_req *req, char ch)
{
	return (req->meta.flags & PROTO_MF(ch)) != 0;
}

/* The position among the request's flag tokens of the one flag ch
 * starts (the tokens' own bytes may hold any letter). */
static size_t
flag_index(const struct proto_req *req, char ch)
{
	const char	*p = req->meta.ret, *end = p + req->meta.nret;
	size_t		 i = 0;

	for (; p < end; i++) {
		while (p < end && *p == ' ')
			p++;
		if (p < end && *p == ch)
			return i;
		while (p < end && *p != ' ')
			p++;
	}
	return i;
}

/* False for an E token the store cannot keep: 0, or wider than its
 * CAS (store.h: STORE_CAS_MAX); the request is refused as malformed. */
static bool
meta_new_cas_ok(const struct proto_req *req)
{
	return !has(req, 'E') || (req->meta.new_cas != 0 &&
	    req->meta.new_cas <= STORE_CAS_MAX);
}

/* Reports item it (the caller's reference goes to the sink) with the meta
 * state in info; with_value says whether its data block is sent. */
static void
reply_meta_hit(const struct op *op, item_t *it,
    const struct store_meta_info *info, bool with_value)
{
	struct proto_hit h = {
		.key = item_key(it),
		.nkey = item_nkey(it),
		.flags = item_flags(it),
		.cas = op->env->no_cas ? 0 : item_cas(it),
		.value = item_value(it),
		.nbytes = item_nbytes(it),
		.ref = it,
		.with_value = with_value,
	};

	if (info != NULL) {
		h.ttl = info->ttl;
		h.idle = info->idle;
		h.fetched = info->fetched;
		h.won = info->won;
		h.stale = info->stale;
		h.won_before = info->won_before;
		h.total = info->total;
	}
	/* ma answers with the number, not the item: a result shorter than
	 * the old value is stored padded with spaces (as memcached leaves
	 * it), but memcached's reply shows only the digits. */
	if (op->req->cmd == PROTO_CMD_MA)
		while (h.nbytes > 0 && h.value[h.nbytes - 1] == ' ')
			h.nbytes--;
	op->sink->codec->hit(op->sink->out, op->req, &h);
}

/* mg <key> <flags>: get, gets, gat, touch and recache tokens in one.
 * Counted as memcached counts it: a hit with T is a touch, anything else
 * a get (a vivified miss counts as a hit, the item it made was found). */
static enum dispatch_next
op_mg(const struct op *op)
{
	const struct proto_req	*req = op->req;
	const struct proto_meta	*m = &req->meta;
	struct thread_stats	*ts = op->env->stats;
	struct store_mget_opts	 o = {
		.touch = has(req, 'T'), .ttl = m->ttl,
		.vivify = has(req, 'N'), .vivify_ttl = m->vivify_ttl,
		.recache = has(req, 'R'), .recache_ttl = m->recache_ttl,
		.no_bump = has(req, 'u'),
		.has_new_cas = has(req, 'E'), .new_cas = m->new_cas,
	};
	struct store_meta_info	 info;
	item_t			*it;
	store_status_t		 st;

	if (!meta_new_cas_ok(req)) {
		reply(op, PROTO_R_BAD_FORMAT);
		return DISPATCH_DONE;
	}
	st = store_mget(op->env->store, req->key, req->nkey, &o, &it, &info);
	watch_fetch(op, req->key, req->nkey, st == STORE_OK ? it : NULL);
	if (st != STORE_OK) {
		STAT_INC(ts, cmd_get);
		STAT_INC(ts, get_misses);
		reply(op, st == STORE_NOT_FOUND ? PROTO_R_MISS :
		    status_reply[st]);
		return DISPATCH_DONE;
	}
	if (o.touch) {
		STAT_INC(ts, cmd_touch);
		STAT_INC(ts, touch_hits);
	} else {
		STAT_INC(ts, cmd_get);
		STAT_INC(ts, get_hits);
	}
	/* memcached applies flags in order: a T before t shows the new TTL. */
	if (o.touch && has(req, 't') && flag_index(req, 'T') <
	    flag_index(req, 't'))
		info.ttl = store_ttl_of(op->env->store, m->ttl);
	/* C: the value only goes out when the client's CAS is out of date. */
	reply_meta_hit(op, it, &info, has(req, 'v') &&
	    !(has(req, 'C') && client_cas(op->env, m->cas) == item_cas(it)));
	return DISPATCH_DONE;
}

/* Maps ms's M token to the store's mode. */
static store_mode_t
meta_set_mode(char mode)
{
	switch (mode) {
	case 'E':
		return STORE_ADD;
	case 'R':
		return STORE_REPLACE;
	case 'A':
		return STORE_APPEND;
	case 'P':
		return STORE_PREPEND;
	default:
		return STORE_SET;
	}
}

/* ms <key> <datalen> <flags>: reserve, then read the data block. */
static enum dispatch_next
op_ms(const struct op *op)
{
	const struct proto_req	*req = op->req;
	store_status_t		 st;

	if (!meta_new_cas_ok(req)) {
		reply(op, PROTO_R_BAD_FORMAT);
		op->state->swallow = value_wire_len(req);
		return DISPATCH_SWALLOW;
	}
	st = (direct_ok(op) && meta_set_mode(req->meta.mode) == STORE_SET &&
	    !has(req, 'C') ? store_reserve_direct : store_reserve)(
	    op->env->store, req->key, req->nkey, req->meta.client_flags,
	    has(req, 'T') ? req->meta.ttl : 0, req->nbytes, &op->state->it);
	if (st == STORE_OK)
		return DISPATCH_VALUE;
	if (st == STORE_TOO_LARGE)
		STAT_INC(op->env->stats, store_too_large);
	else
		STAT_INC(op->env->stats, store_no_memory);
	watch_mut_refused(op, st);
	reply_status(op, st);
	if (meta_set_mode(req->meta.mode) == STORE_SET)
		store_delete(op->env->store, req->key, req->nkey);
	op->state->swallow = value_wire_len(req);
	return DISPATCH_SWALLOW;
}

/* Completes an ms once its data block is in item it. */
static enum dispatch_next
meta_set_value(const struct op *op, item_t *it)
{
	const struct proto_req	*req = op->req;
	const struct proto_meta	*m = &req->meta;
	struct thread_stats	*ts = op->env->stats;
	struct store_mset_opts	 o = {
		.has_cas = has(req, 'C'), .cas = client_cas(op->env, m->cas),
		.invalidate = has(req, 'I'),
		.has_new_cas = has(req, 'E'), .new_cas = m->new_cas,
		.vivify = has(req, 'N'), .vivify_ttl = m->vivify_ttl,
	};
	struct proto_hit	 h = { .ttl = -1 };
	char			 key[STORE_KEY_MAX];
	uint64_t		 cas = 0;
	struct watch_mut	 wm;
	bool			 watched;
	store_status_t		 st;

	/* The item goes to the store; what the reply tells of it is kept. */
	h.nkey = item_nkey(it);
	memcpy(key, item_key(it), h.nkey);
	h.key = key;
	h.flags = item_flags(it);
	h.nbytes = item_nbytes(it);
	STAT_INC(ts, cmd_set);
	watch_lookup(op, item_key(it), item_nkey(it));
	watched = watch_mut_note(op, it, has(req, 'T') ? m->ttl : 0, &wm);
	st = store_commit_meta(op->env->store, it, meta_set_mode(m->mode), &o,
	    &cas);
	if (watched)
		watch_mut_done(op, &wm, st);
	/* As memcached 1.6.18 counts: no cas_badval in append modes. */
	if (o.has_cas) {
		if (st == STORE_STORED)
			STAT_INC(ts, cas_hits);
		else if (st == STORE_EXISTS && m->mode != 'A' && m->mode != 'P')
			STAT_INC(ts, cas_badval);
		else if (st == STORE_NOT_FOUND)
			STAT_INC(ts, cas_misses);
	}
	if (st == STORE_NO_MEMORY || st == STORE_TOO_LARGE)
		STAT_INC(ts, store_no_memory);
	if (st != STORE_STORED) {
		reply_status(op, st);
		return DISPATCH_DONE;
	}
	h.cas = op->env->no_cas ? 0 : cas;
	op->sink->codec->hit(op->sink->out, req, &h);
	return DISPATCH_DONE;
}

/* md <key> <flags>: delete, or mark stale (I), or empty the value (x). */
static enum dispatch_next
op_md(const struct op *op)
{
	const struct proto_req	*req = op->req;
	const struct proto_meta	*m = &req->meta;
	struct store_mdelete_opts o = {
		.has_cas = has(req, 'C'), .cas = client_cas(op->env, m->cas),
		.invalidate = has(req, 'I'),
		.touch = has(req, 'T'), .ttl = m->ttl,
		.has_new_cas = has(req, 'E'), .new_cas = m->new_cas,
		.remove_value = has(req, 'x'),
	};
	store_status_t st;

	if (!meta_new_cas_ok(req)) {
		reply(op, PROTO_R_BAD_FORMAT);
		return DISPATCH_DONE;
	}
	watch_lookup(op, req->key, req->nkey);
	st = store_mdelete(op->env->store, req->key, req->nkey, &o);
	/* As memcached 1.6.18 counts: marking stale is no delete, a CAS
	 * mismatch is a miss. */
	if (st == STORE_DELETED && !o.invalidate &&
	    watch_wants(WATCH_DELETIONS))
		watch_deleted(req->key, req->nkey, true, 0);
	if (st == STORE_DELETED && !o.invalidate)
		STAT_INC(op->env->stats, delete_hits);
	else if (st == STORE_NOT_FOUND || st == STORE_EXISTS)
		STAT_INC(op->env->stats, delete_misses);
	reply_status(op, st);
	return DISPATCH_DONE;
}

/* ma <key> <flags>: incr/decr with CAS, TTL and autovivify. */
static enum dispatch_next
op_ma(const struct op *op)
{
	const struct proto_req	*req = op->req;
	const struct proto_meta	*m = &req->meta;
	struct thread_stats	*ts = op->env->stats;
	bool			 incr = m->mode != 'D';
	struct store_marith_opts o = {
		.incr = incr, .delta = m->delta,
		.has_cas = has(req, 'C'), .cas = client_cas(op->env, m->cas),
		.has_new_cas = has(req, 'E'), .new_cas = m->new_cas,
		.vivify = has(req, 'N'), .vivify_ttl = m->vivify_ttl,
		.initial = m->initial,
		.touch = has(req, 'T'), .ttl = m->ttl,
	};
	struct store_meta_info	 info;
	uint64_t		 result;
	item_t			*it;
	store_status_t		 st;

	if (!meta_new_cas_ok(req)) {
		reply(op, PROTO_R_BAD_FORMAT);
		return DISPATCH_DONE;
	}
	watch_lookup(op, req->key, req->nkey);
	st = store_marith(op->env->store, req->key, req->nkey, &o, &result,
	    &it, &info);
	if (st == STORE_NOT_FOUND) {
		if (incr)
			STAT_INC(ts, incr_misses);
		else
			STAT_INC(ts, decr_misses);
	}
	if (st != STORE_OK) {
		reply_status(op, st);
		return DISPATCH_DONE;
	}
	/* A vivified item was not an increment: memcached counts no hit. */
	if (!info.won) {
		if (incr)
			STAT_INC(ts, incr_hits);
		else
			STAT_INC(ts, decr_hits);
	}
	reply_meta_hit(op, it, &info, has(req, 'v'));
	return DISPATCH_DONE;
}

/* mn: a no-op whose reply marks the end of a quiet pipeline. */
static enum dispatch_next
op_mn(const struct op *op)
{
	reply(op, PROTO_R_NOOP);
	return DISPATCH_DONE;
}

/* me <key>: the item's metadata, without touching it. */
static enum dispatch_next
op_me(const struct op *op)
{
	const struct proto_req	*req = op->req;
	struct store_mget_opts	 o = { .no_bump = true, .peek = true };
	struct store_meta_info	 info;
	item_t			*it;

	STAT_INC(op->env->stats, cmd_meta);
	if (store_mget(op->env->store, req->key, req->nkey, &o, &it,
	    &info) != STORE_OK) {
		reply(op, PROTO_R_MISS);
		return DISPATCH_DONE;
	}
	reply_meta_hit(op, it, &info, false);
	return DISPATCH_DONE;
}

/* ---- SASL (binary protocol, -S) -------------------------------- */

/* SASL_LIST_MECHS: PLAIN, the one mechanism served. */
static enum dispatch_next
op_sasl_list(const struct op *op)
{
	reply(op, op->env->sasl_plain == NULL ? PROTO_R_ERROR :
	    PROTO_R_AUTH_MECHS);
	return DISPATCH_DONE;
}

/* SASL_AUTH with PLAIN: one step.  SASL_STEP has nothing to continue
 * (memcached fails a step without a pending exchange too).  Counted in
 * auth_cmds and auth_errors as memcached counts them. */
static enum dispatch_next
op_sasl_auth(const struct op *op)
{
	const struct dispatch_env	*env = op->env;
	const struct proto_req		*req = op->req;
	bool				 ok;

	if (env->sasl_plain == NULL) {
		reply(op, PROTO_R_ERROR);
		return DISPATCH_DONE;
	}
	ok = req->cmd == PROTO_CMD_SASL_AUTH && req->nkey == 5 &&
	    memcmp(req->key, "PLAIN", 5) == 0 &&
	    env->sasl_plain(env->ctx, req->arg, req->narg);
	STAT_INC(env->stats, auth_cmds);
	if (!ok) {
		/* a failed attempt ends an earlier authentication, as in
		 * memcached: the connection is no longer who it said */
		if (env->authenticated != NULL)
			*env->authenticated = false;
		STAT_INC(env->stats, auth_errors);
		reply(op, PROTO_R_AUTH_ERROR);
		return DISPATCH_DONE;
	}
	if (env->authenticated != NULL)
		*env->authenticated = true;
	reply(op, PROTO_R_AUTH_OK);
	return DISPATCH_DONE;
}

/* ---- text-protocol login (-Y) ---------------------------------- */

/* Replies r to a request before login: memcached answers these lines
 * even when the request asked for noreply. */
static void
reply_loud(const struct op *op, enum proto_reply r)
{
	struct proto_req req = *op->req;

	req.noreply = false;
	op->sink->codec->status(op->sink->out, &req, r);
}

/* "set" before login: reserves a scratch item the value is read into. */
static enum dispatch_next
op_login(const struct op *op)
{
	const struct proto_req	*req = op->req;
	store_status_t		 st;

	st = store_reserve(op->env->store, req->key, req->nkey, 0, 0,
	    req->nbytes, &op->state->it);
	if (st == STORE_OK)
		return DISPATCH_VALUE;
	/* no room even for a login: nothing to check it against */
	STAT_INC(op->env->stats, auth_cmds);
	STAT_INC(op->env->stats, auth_errors);
	reply_loud(op, PROTO_R_AUTH_ERROR);
	op->state->swallow = value_wire_len(req);
	return DISPATCH_SWALLOW;
}

/* Checks a login's value; the item is released, never linked.  Counted
 * as memcached counts them: a malformed value in neither counter.  A
 * value not followed by "\r\n" is refused, and the connection goes on
 * (memcached's login reads the value and its 2 bytes as a block). */
static enum dispatch_next
login_value(const struct op *op, item_t *it, const char *end2)
{
	const struct dispatch_env	*env = op->env;
	int				 r;

	if (!proto_data_end_ok(end2)) {
		store_release(env->store, it);
		reply_loud(op, PROTO_R_AUTH_BADTERM);
		return DISPATCH_DONE;
	}
	r = env->login(env->ctx, item_value(it), item_nbytes(it));
	store_release(env->store, it);
	if (r == AUTH_LOGIN_FORMAT) {
		reply_loud(op, PROTO_R_AUTH_FORMAT);
		return DISPATCH_DONE;
	}
	STAT_INC(env->stats, auth_cmds);
	if (r != AUTH_LOGIN_OK) {
		STAT_INC(env->stats, auth_errors);
		reply_loud(op, PROTO_R_AUTH_ERROR);
		return DISPATCH_DONE;
	}
	*env->authenticated = true;
	reply_loud(op, PROTO_R_AUTH_OK);
	return DISPATCH_DONE;
}

/* True for what a connection may run before it authenticated. */
static bool
auth_exempt(enum proto_cmd cmd)
{
	return cmd == PROTO_CMD_SASL_LIST || cmd == PROTO_CMD_SASL_AUTH ||
	    cmd == PROTO_CMD_SASL_STEP || cmd == PROTO_CMD_VERSION;
}

static const op_fn handlers[PROTO_CMD_COUNT] = {
	[PROTO_CMD_GET] = op_retrieve,
	[PROTO_CMD_GETS] = op_retrieve,
	[PROTO_CMD_GAT] = op_retrieve,
	[PROTO_CMD_GATS] = op_retrieve,
	[PROTO_CMD_SET] = op_store,
	[PROTO_CMD_ADD] = op_store,
	[PROTO_CMD_REPLACE] = op_store,
	[PROTO_CMD_APPEND] = op_store,
	[PROTO_CMD_PREPEND] = op_store,
	[PROTO_CMD_CAS] = op_store,
	[PROTO_CMD_DELETE] = op_delete,
	[PROTO_CMD_INCR] = op_arith,
	[PROTO_CMD_DECR] = op_arith,
	[PROTO_CMD_TOUCH] = op_touch,
	[PROTO_CMD_FLUSH_ALL] = op_flush_all,
	[PROTO_CMD_VERSION] = op_version,
	[PROTO_CMD_VERBOSITY] = op_verbosity,
	[PROTO_CMD_QUIT] = op_quit,
	[PROTO_CMD_SHUTDOWN] = op_shutdown,
	[PROTO_CMD_STATS] = op_stats,
	[PROTO_CMD_REFRESH_CERTS] = op_refresh_certs,
	[PROTO_CMD_MG] = op_mg,
	[PROTO_CMD_MS] = op_ms,
	[PROTO_CMD_MD] = op_md,
	[PROTO_CMD_MA] = op_ma,
	[PROTO_CMD_MN] = op_mn,
	[PROTO_CMD_ME] = op_me,
	[PROTO_CMD_SASL_LIST] = op_sasl_list,
	[PROTO_CMD_SASL_AUTH] = op_sasl_auth,
	[PROTO_CMD_SASL_STEP] = op_sasl_auth,
	[PROTO_CMD_LRU_CRAWLER] = op_lru_crawler,
	[PROTO_CMD_CACHE_MEMLIMIT] = op_memlimit,
	[PROTO_CMD_SLABS] = op_slabs,
	[PROTO_CMD_LRU] = op_lru,
	[PROTO_CMD_WATCH] = op_watch,
};

/* Starts or resumes a request. */
enum dispatch_next
dispatch_request(const struct dispatch_env *env, const struct proto_req *req,
    struct dispatch_state *state, const struct reply_sink *sink)
{
	struct op op = { env, req, state, sink };

	assert((unsigned)req->cmd < PROTO_CMD_COUNT &&
	    handlers[req->cmd] != NULL);
	if (login_pending(env)) {
		if (req->cmd == PROTO_CMD_SET)
			return op_login(&op);
		reply_loud(&op, PROTO_R_UNAUTHENTICATED);
		return DISPATCH_DONE;
	}
	if (env->authenticated != NULL && !*env->authenticated &&
	    !auth_exempt(req->cmd)) {
		reply(&op, PROTO_R_AUTH_ERROR);
		return DISPATCH_CLOSE;
	}
	return handlers[req->cmd](&op);
}
