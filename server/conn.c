/*
 * conn.c -- a client connection's life: read what the socket has, run
 * every complete request through the codec and dispatch, send all replies
 * with as few writev calls as possible, and keep memory bounded when the
 * client stops reading.
 *
 * Flow per readiness event (conn_drive):
 *   write queued output -> read until a read comes back short ->
 *   run requests until the input runs out or the output queue passes its
 *   soft limit -> write.  While the output queue is over the limit the
 *   connection stops reading (TCP pushes back on the client) and resumes
 *   once the client has drained it.  A client that half-closes (FIN) still
 *   gets every reply to what it sent: the connection runs the rest of its
 *   input, sends what is queued, then closes.
 *
 * Values: a storage command's value streams from the input buffer (and
 * then the socket) into its reserved item.  One that is buffered whole
 * with its command line is fed and committed in the same step
 * (dispatch's value_here): a set's item is then carved in a shared
 * segment, which no wait for output room may hold.
 *
 * Protocol: the first byte a client sends picks the connection's codec
 * for good (conn_pick_codec): 0x80 memcached's binary protocol, anything
 * else the text protocol with its meta commands, as -B allows.  Binary
 * values stream into their items like text ones, with no "\r\n" after
 * them (inbuf_start_bare_value).
 *
 * Progress, for both timeouts, is what the client takes off the socket
 * (bytes written less what the kernel still holds, SIOCOUTQ), not our own
 * writes: with a full send buffer a steady slow reader frees room a little
 * at a time, and the socket may not turn writable for minutes.  Over TLS
 * the bytes written are the session's records (tls_wire_written), which
 * is what SIOCOUTQ counts too.
 *
 * Transport: every read and write goes through c->io (tls.h), a plain
 * socket or a TLS session.  A TLS connection first runs its handshake
 * from the same events (conn_handshake), under the idle timeout; after
 * it, input the session holds decrypted (more than the socket shows)
 * makes the read event fire again, so reads never stall on it.
 *
 * Idle timeout (-o idle_timeout=T): `last_cmd` is refreshed when a request
 * completes or the client takes replies; a connection with no such
 * progress for T seconds is closed, whether silent, half-way through a
 * line or a value, or not reading its replies.
 *
 * Watchers ("watch", watch.h): the connection sends the log lines its
 * rings hold, woken by nev when lines arrive, at most watcher_logbuf_size
 * queued; its input is dropped, and neither timeout applies to it.
 *
 * Write timeout (-o write_timeout=W, default 60): while replies wait on a
 * socket, `last_write` holds when the client last took any; after W
 * seconds without, the connection is closed.  Queued large values pin
 * their items (and the memory -m counts for them) even after eviction, so
 * a few dozen clients that never read could otherwise hold most of the
 * cache's memory for good.  Values stored in segments are always copied
 * into the reply: a reference to one would hold its whole segment
 * (store.h: item_in_segment).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <event2/event.h>

#include "auth.h"
#include "conn.h"
#include "conn_log.h"
#include "log.h"
#include "server.h"
#include "watch.h"
#include "worker.h"

#define INBUF_MAX	(PROTO_GET_LINE_MAX + 4096)
#define READS_PER_EVENT	8	/* fairness: full-buffer reads per event */
/* A binary store whose value exceeds the item size limit by more than
 * this is answered "Too large." and the connection closed rather than
 * its body skipped (memcached would read and discard up to 4 GB). */
#define BIN_VALUE_SLACK	(1024 * 1024)
/* Fairness: steps of a resumable request (a key dump) per event; then the
 * connection waits for its turn. */
#define STEPS_PER_EVENT	1
/* Values up to this size are copied into the reply, larger ones are sent
 * from item memory unless they live in a segment. */
#define COPY_VALUE_MAX	1024

static void	conn_event(evutil_socket_t fd, short what, void *arg);
static void	conn_timer(evutil_socket_t fd, short what, void *arg);
static void	conn_stall_timer(evutil_socket_t fd, short what, void *arg);
static void	conn_resume(evutil_socket_t fd, short what, void *arg);
static void	conn_watch_lines(evutil_socket_t fd, short what, void *arg);

static const char *const state_names[] = {
	[CONN_READ_CMD] = "conn_parse_cmd",
	[CONN_NREAD] = "conn_nread",
	[CONN_SWALLOW] = "conn_swallow",
	[CONN_STEP] = "conn_mwrite",
	[CONN_CLOSING] = "conn_closing",
	[CONN_WATCH] = "conn_watch",
};

/* Name of the state for "stats conns". */
const char *
conn_state_name(int state)
{
	if (state < 0 || state > CONN_WATCH)
		return "unknown";
	return state_names[state];
}

/* Current time in seconds, cheap enough for every request. */
static uint32_t
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/* Records progress for the idle timeout and "stats conns". */
static void
conn_touch(struct conn *c)
{
	__atomic_store_n(&c->last_cmd, now_sec(), __ATOMIC_RELAXED);
}

/* Changes state, keeping the copy "stats conns" reads in step. */
static void
conn_set_state(struct conn *c, enum conn_state s)
{
	if (c->verbose && s != c->state && log_enabled(LOG_TRACE))
		log_msg(LOG_TRACE, "%d: going from %s to %s", c->fd,
		    state_names[c->state], state_names[s]);
	c->state = s;
	__atomic_store_n(&c->pub_state, (int)s, __ATOMIC_RELAXED);
}

/* Arms the idle timer for the rest of the timeout. */
static void
conn_arm_timer(struct conn *c, unsigned secs)
{
	struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };

	if (c->tev != NULL)
		evtimer_add(c->tev, &tv);
}

/* The connection that embeds output interface o. */
static struct conn *
conn_of_out(const struct proto_out *o)
{
	return (struct conn *)(void *)((char *)o - offsetof(struct conn, out));
}

/* proto_out: room for reply text in the output queue. */
static char *
out_space(struct proto_out *o, size_t n)
{
	return outq_space(&conn_of_out(o)->outq, n);
}

/* proto_out: queues reply text. */
static void
out_commit(struct proto_out *o, size_t used)
{
	outq_commit(&conn_of_out(o)->outq, used);
}

/* proto_out: queues a value, copied when small or when it lives in a
 * segment (a reference would keep the whole segment from reuse while the
 * client dawdles), else by reference to the item; copied when there is no
 * reference (a value borrowed under a store lock). */
static void
out_value(struct proto_out *o, const char *data, size_t n, void *ref)
{
	struct conn	*c = conn_of_out(o);
	item_t		*it = ref;

	if (it == NULL || (n <= COPY_VALUE_MAX && !outq_full(&c->outq)) ||
	    item_in_segment(it)) {
		outq_copy(&c->outq, data, n);
		store_release(c->srv->store, it);
		return;
	}
	outq_ref(&c->outq, data, n, it);
}

/* proto_out of a -vv binary connection: the same, and each response's
 * header dumped as memcached does (conn_log.c), from where space() put
 * it. */
static char *
out_space_logged(struct proto_out *o, size_t n)
{
	struct conn *c = conn_of_out(o);

	return c->blog_space = out_space(o, n);
}

static void
out_commit_logged(struct proto_out *o, size_t used)
{
	struct conn *c = conn_of_out(o);

	if (c->blog_space != NULL && log_enabled(LOG_DEBUG))
		conn_log_bin_out(c->fd, c->blog_space, used, &c->blog_left);
	out_commit(o, used);
}

static void
out_value_logged(struct proto_out *o, const char *data, size_t n,
    void *ref)
{
	conn_log_bin_value(n, &conn_of_out(o)->blog_left);
	out_value(o, data, n, ref);
}

/* proto_out: gives back the reference of a value the composer copied. */
static void
out_release(struct proto_out *o, void *ref)
{
	store_release(conn_of_out(o)->srv->store, ref);
}

/* proto_out: over the soft limit, producers stop. */
static bool
out_full(const struct proto_out *o)
{
	return outq_full(&conn_of_out(o)->outq);
}

/* outq: gives back an item reference once its bytes are written. */
static void
release_item(void *ctx, void *ref)
{
	store_release(ctx, ref);
}

/* dispatch: "stats" on this server. */
static bool
srv_stats(void *ctx, const struct proto_req *req,
    const struct reply_sink *sink)
{
	return stats_reply(ctx, req, sink);
}

/* dispatch: "slabs automove", "lru ...": kept for "stats settings". */
static void
srv_tune(void *ctx, const struct proto_admin *a)
{
	stats_tune(ctx, a);
}

/* dispatch: a key operation for "stats detail". */
static void
srv_detail(void *ctx, int op, const char *key, size_t nkey, bool hit)
{
	stats_detail_note(ctx, op, key, nkey, hit);
}

/* dispatch: "shutdown", when -A allows it. */
static bool
srv_shutdown(void *ctx)
{
	struct server *srv = ctx;

	if (!srv->opts->allow_shutdown)
		return false;
	server_request_shutdown(srv);
	return true;
}

/* dispatch: checks a SASL PLAIN message against the -S user list. */
static bool
srv_sasl_plain(void *ctx, const char *msg, size_t n)
{
	struct server *srv = ctx;

	return auth_sasl_plain(server_auth(srv), msg, n);
}

/* dispatch: checks a text-protocol login (-Y) against the user list. */
static int
srv_login(void *ctx, const char *data, size_t n)
{
	struct server *srv = ctx;

	return (int)auth_text_login(server_auth(srv), data, n);
}

/* dispatch: "refresh_certs", when -Z is on. */
static bool
srv_refresh_certs(void *ctx, char *err, size_t cap)
{
	return tls_server_reload(((struct server *)ctx)->tls, err, cap);
}

/* Frees what conn_new allocated; c itself too. */
static void
conn_destroy(struct conn *c)
{
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->tev != NULL)
		event_free(c->tev);
	if (c->sev != NULL)
		event_free(c->sev);
	tls_conn_free(c->io.tls);
	if (c->yev != NULL)
		event_free(c->yev);
	/* No producer can make nev active once the watcher is gone. */
	if (c->watcher != NULL)
		watch_remove(c->watcher);
	if (c->nev != NULL)
		event_free(c->nev);
	outq_free(&c->outq);
	inbuf_free(&c->in);
	free(c->line);
	free(c);
}

/* Creates a connection on worker w for an accepted socket. */
struct conn *
conn_new(struct worker *w, int fd, const char *listen_addr,
    struct tls_server *tls)
{
	struct conn	*c;
	unsigned	 idle = w->srv->opts->idle_timeout;
	bool		 stall = w->srv->opts->write_timeout > 0;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	c->fd = fd;
	c->w = w;
	c->srv = w->srv;
	c->listen_addr = listen_addr;
	/* the codec is picked by the first byte the client sends */
	c->codec = NULL;
	c->out = (struct proto_out){ .space = out_space,
	    .commit = out_commit, .value = out_value, .full = out_full,
	    .copy_max = COPY_VALUE_MAX, .release = out_release };
	c->verbose = log_enabled(LOG_DEBUG);
	c->sink = (struct reply_sink){ conn_log_codec(c->codec), &c->out };
	c->env = (struct dispatch_env){ .store = c->srv->store,
	    .stats = &w->stats, .stats_reply = srv_stats,
	    .shutdown = srv_shutdown, .ctx = c->srv,
	    .no_flush = !c->srv->opts->flush_enabled,
	    .shutdown_enabled = c->srv->opts->allow_shutdown,
	    .no_cas = !c->srv->opts->cas_enabled,
	    .refresh_certs = c->srv->tls != NULL ? srv_refresh_certs : NULL,
	    .no_dump = c->srv->opts->no_dump,
	    .crawler_on = &c->srv->crawler_on, .tune = srv_tune,
	    .detail = srv_detail, .detail_on = &c->srv->detail_on,
	    .no_watch = !c->srv->opts->watch_enabled, .cfd = fd };
	if (c->srv->opts->auth_file != NULL) {
		/* -S: SASL (binary); -Y alone: memcached's text login */
		if (c->srv->opts->sasl)
			c->env.sasl_plain = srv_sasl_plain;
		else
			c->env.login = srv_login;
		c->env.authenticated = &c->authenticated;
	}
	outq_init(&c->outq, release_item, c->srv->store);
	conn_io_plain(&c->io, &c->fd);
	if ((tls != NULL && !tls_conn_start(tls, fd, &c->io)) ||
	    !inbuf_init(&c->in, INBUF_MAX) ||
	    (c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST,
	    conn_event, c)) == NULL ||
	    (c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST,
	    conn_event, c)) == NULL ||
	    (idle > 0 && (c->tev = evtimer_new(w->base, conn_timer,
	    c)) == NULL) ||
	    (stall && (c->sev = evtimer_new(w->base, conn_stall_timer,
	    c)) == NULL) ||
	    (c->yev = evtimer_new(w->base, conn_resume, c)) == NULL ||
	    event_priority_set(c->yev, WORKER_PRIO_IDLE) != 0 ||
	    event_add(c->rev, NULL) != 0) {
		conn_destroy(c);
		return NULL;
	}
	c->reading = true;
	c->close_reason = WATCH_CLOSE_NORMAL;
	conn_set_state(c, CONN_READ_CMD);
	conn_touch(c);
	conn_arm_timer(c, idle);
	return c;
}

/* Closes the socket and frees everything the connection holds. */
void
conn_free(struct conn *c)
{
	int fd = c->fd;

	if (c->ds.it != NULL)
		store_release(c->srv->store, c->ds.it);
	__atomic_fetch_sub(&c->srv->curr_conns, 1, __ATOMIC_RELAXED);
	/* Events go before the descriptor: once closed, its number may be
	 * reused by a connection the listener accepts meanwhile, whose
	 * registration an event_del on that number would remove. */
	conn_destroy(c);
	close(fd);
}

/* Unlinks c from its worker and frees it. */
static void
conn_close(struct conn *c)
{
	struct worker *w = c->w;

	log_msg(LOG_DEBUG, "<%d connection closed.", c->fd);
	if (watch_wants(WATCH_CONNEVENTS))
		watch_conn_event(false, (struct sockaddr *)&c->peer,
		    c->peer_len, c->fd, c->close_reason);
	pthread_mutex_lock(&w->lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&w->lock);
	conn_free(c);
}

/* The current request is done: consume its line, take the next. */
static void
conn_request_done(struct conn *c)
{
	c->in.pos += c->req_len;
	c->req_len = 0;
	conn_set_state(c, CONN_READ_CMD);
	conn_touch(c);
}

/* Keeps the current request's line past its value: a meta set's reply
 * echoes tokens of its line (opaque, key, flags), but reading the data
 * block may move or overwrite the input buffer.  The line is copied
 * aside and parsed again there, so every pointer of the request stays
 * valid until the value is stored.  False when memory ran out. */
static bool
conn_keep_line(struct conn *c)
{
	size_t	consumed;
	char	*p;

	if (c->line_cap < c->req_len) {
		if ((p = realloc(c->line, c->req_len)) == NULL)
			return false;
		c->line = p;
		c->line_cap = c->req_len;
	}
	memcpy(c->line, c->in.buf + c->in.pos, c->req_len);
	return c->codec->parse(c->line, c->req_len, &c->req, &consumed) ==
	    PROTO_OK;
}

static void conn_finish_value(struct conn *c);
/* watch: wakes the watcher's connection from a producer's thread. */
static void
watch_notify(void *arg)
{
	event_active(((struct conn *)arg)->nev, EV_READ, 0);
}

/* Makes the connection a watcher of what "watch" asked for and replies
 * OK, or replies why not, as memcached does. */
static void
conn_start_watch(struct conn *c)
{
	static const char ok[] = "OK\r\n";
	static const char many[] =
	    "WATCHER_TOO_MANY log watcher limit reached\r\n";
	static const char failed[] =
	    "WATCHER_FAILED failed to add log watcher\r\n";
	enum watch_add_error err = WATCH_ADD_FAILED;

	if ((c->nev = event_new(c->w->base, -1, 0, conn_watch_lines,
	    c)) == NULL || (c->watcher = watch_add(c->ds.watch_streams,
	    watch_notify, c, &err)) == NULL) {
		if (err == WATCH_ADD_TOO_MANY)
			outq_copy(&c->outq, many, sizeof many - 1);
		else
			outq_copy(&c->outq, failed, sizeof failed - 1);
		conn_set_state(c, CONN_READ_CMD);
		conn_touch(c);
		return;
	}
	outq_copy(&c->outq, ok, sizeof ok - 1);
	conn_set_state(c, CONN_WATCH);
	conn_touch(c);
}

/* True when a watcher's output holds all it may (-o
 * watcher_logbuf_size, or the soft limit): its lines wait in the rings,
 * which lose what does not fit. */
static bool
watch_backed_up(const struct conn *c)
{
	return outq_full(&c->outq) ||
	    c->outq.pending >= c->srv->opts->watcher_logbuf_size;
}

/* watch_drain's sink: queues lines until the output is backed up. */
static bool
watch_put(void *ctx, const char *p, size_t n)
{
	struct conn *c = ctx;

	if (watch_backed_up(c))
		return false;
	return outq_copy(&c->outq, p, n);
}

/* Runs one step of the current request and follows what dispatch says
 * comes next. */
static void
conn_step(struct conn *c)
{
	switch (dispatch_request(&c->env, &c->req, &c->ds, &c->sink)) {
	case DISPATCH_DONE:
		conn_request_done(c);
		break;
	case DISPATCH_AGAIN:
		/* The line stays in the input buffer until every part is
		 * answered, so the request's pointers stay valid. */
		conn_set_state(c, CONN_STEP);
		break;
	case DISPATCH_VALUE:
		if (PROTO_CMD_IS_META(c->req.cmd) && !conn_keep_line(c)) {
			conn_set_state(c, CONN_CLOSING);
			break;
		}
		c->in.pos += c->req_len;
		if (c->req.bare_value)
			inbuf_start_bare_value(&c->in,
			    item_value_mut(c->ds.it), item_nbytes(c->ds.it));
		else
			inbuf_start_value(&c->in, item_value_mut(c->ds.it),
			    item_nbytes(c->ds.it));
		conn_set_state(c, CONN_NREAD);
		/* A value buffered whole goes in now, in one copy: its item
		 * may be carved in a shared segment (store_reserve_direct),
		 * which must not wait for the client to read replies. */
		if (c->ds.value_here && inbuf_feed_value(&c->in) &&
		    inbuf_value_done(&c->in))
			conn_finish_value(c);
		break;
	case DISPATCH_SWALLOW:
		c->in.pos += c->req_len;
		inbuf_start_swallow(&c->in, c->ds.swallow);
		conn_set_state(c, c->ds.swallow > 0 ? CONN_SWALLOW :
		    CONN_READ_CMD);
		break;
	case DISPATCH_CLOSE:
		c->in.pos += c->req_len;
		conn_set_state(c, CONN_CLOSING);
		break;
	case DISPATCH_WATCH:
		c->in.pos += c->req_len;
		c->req_len = 0;
		conn_start_watch(c);
		break;
	}
}

/* Picks the connection's codec from its first byte, as memcached's -B
 * does: 0x80 is binary, anything else text (with meta); -B ascii or
 * binary (and -S, binary only) allow one.  A client of the wrong kind
 * meets that protocol's parser: text waits for a line, binary closes. */
static void
conn_pick_codec(struct conn *c, unsigned char first)
{
	switch (c->srv->opts->protocol) {
	case OPTIONS_PROTO_ASCII:
		c->codec = &proto_text;
		break;
	case OPTIONS_PROTO_BINARY:
		c->codec = &proto_bin;
		break;
	case OPTIONS_PROTO_AUTO:
	default:
		c->codec = first == 0x80 ? &proto_bin : &proto_text;
		break;
	}
	c->sink.codec = c->verbose ? conn_log_codec(c->codec) : c->codec;
	if (c->verbose && c->codec == &proto_bin) {
		c->out.space = out_space_logged;
		c->out.commit = out_commit_logged;
		c->out.value = out_value_logged;
	}
}

/* True (and the connection closing, "Too large." queued) for a binary
 * store whose value is far beyond what could be stored: skipping it
 * would mean reading gigabytes for nothing. */
static bool
conn_value_absurd(struct conn *c)
{
	if (!c->req.bare_value || c->req.nbytes <=
	    c->srv->opts->item_size_max + BIN_VALUE_SLACK)
		return false;
	/* before -S authentication dispatch refuses it, and closes */
	if (c->env.authenticated != NULL && !c->authenticated)
		return false;
	STAT_INC(&c->w->stats, store_too_large);
	c->codec->status(&c->out, &c->req, PROTO_R_TOO_LARGE);
	conn_set_state(c, CONN_CLOSING);
	return true;
}

/* -vv: logs the protocol once, then the command line (a line too long to
 * have ended is not logged, as in memcached). */
static void
conn_log_request(struct conn *c, const char *line, size_t n)
{
	if (!c->said_proto) {
		c->said_proto = true;
		log_msg(LOG_DEBUG, "%d: Client using the %s protocol", c->fd,
		    c->codec->name);
	}
	if (c->codec == &proto_text && n > 0 && line[n - 1] == '\n')
		conn_log_line(c->fd, line, n);
	else if (c->codec == &proto_bin)
		conn_log_bin_request(c->fd, line, n,
		    c->env.sasl_plain == NULL ? -1 : c->authenticated);
}

/* Queues the error of a refused request, unless it is a classic text line
 * that asked for no reply (memcached leaves its errors out too); binary
 * errors go out even for quiet requests. */
static void
conn_send_error(struct conn *c)
{
	bool quiet = c->req.noreply && c->codec == &proto_text &&
	    !PROTO_CMD_IS_META(c->req.cmd);

	if (c->req.error != NULL && c->verbose && log_enabled(LOG_DEBUG)) {
		if (c->codec == &proto_bin)
			conn_log_bin_out(c->fd, c->req.error, c->req.nerror != 0 ?
			    c->req.nerror : strlen(c->req.error), &c->blog_left);
		else
			conn_log_error(c->fd, c->req.error, quiet);
	}
	if (c->req.error == NULL || quiet)
		return;
	outq_copy(&c->outq, c->req.error, c->req.nerror != 0 ?
	    c->req.nerror : strlen(c->req.error));
}

/* Before a -Y login every line that does not parse is refused like any
 * other, as memcached does (nothing tells which lines parse), and
 * nothing after it is skipped: true when that was done.  A line that
 * ended (the last consumed byte "\n") keeps the connection even where
 * the parser would close it; one too long to end still closes it. */
static bool
conn_refuse_unauthenticated(struct conn *c, size_t consumed, bool close)
{
	const char	*s;
	size_t		 n;

	if (c->env.login == NULL || c->authenticated)
		return false;
	s = proto_reply(PROTO_R_UNAUTHENTICATED, &n);
	outq_copy(&c->outq, s, n);
	if (close && (consumed == 0 ||
	    c->in.buf[c->in.pos - 1] != '\n'))
		conn_set_state(c, CONN_CLOSING);
	return true;
}

/* Parses and starts one request; false when more input is needed. */
static bool
conn_run_line(struct conn *c)
{
	size_t			consumed = 0;
	enum proto_result	r;
	struct inbuf		*in = &c->in;

	memset(&c->ds, 0, sizeof c->ds);
	if (c->codec == NULL) {
		if (inbuf_avail(in) == 0)
			return false;
		conn_pick_codec(c, (unsigned char)in->buf[in->pos]);
	}
	r = c->codec->parse(in->buf + in->pos, inbuf_avail(in), &c->req,
	    &consumed);
	if (r != PROTO_NEED_MORE && c->verbose && log_enabled(LOG_DEBUG))
		conn_log_request(c, in->buf + in->pos, consumed);
	switch (r) {
	case PROTO_NEED_MORE:
		return false;
	case PROTO_OK:
		c->req_len = consumed;
		if (conn_value_absurd(c))
			break;
		c->ds.value_here = inbuf_avail(in) - consumed >=
		    (size_t)c->req.nbytes + (c->req.bare_value ? 0 : 2);
		conn_step(c);
		break;
	case PROTO_BAD:
		in->pos += consumed;
		if (conn_refuse_unauthenticated(c, consumed, false))
			break;
		conn_send_error(c);
		inbuf_start_swallow(in, c->req.swallow);
		if (c->req.swallow > 0)
			conn_set_state(c, CONN_SWALLOW);
		break;
	case PROTO_CLOSE:
		in->pos += consumed;
		if (conn_refuse_unauthenticated(c, consumed, true))
			break;
		conn_send_error(c);
		conn_set_state(c, CONN_CLOSING);
		break;
	}
	return true;
}

/* Completes a value once it and its terminator are in. */
static void
conn_finish_value(struct conn *c)
{
	enum dispatch_next next;

	/* a binary value has no "\r\n" after it: nothing to check */
	next = dispatch_value(&c->env, &c->req, &c->ds,
	    c->req.bare_value ? "\r\n" : c->in.end, &c->sink);
	conn_set_state(c, next == DISPATCH_CLOSE ? CONN_CLOSING :
	    CONN_READ_CMD);
	conn_touch(c);
}

/* Runs buffered requests until the input runs out, the output queue is
 * over its soft limit, or the connection is closing; returns true only in
 * the first case, when reading more is what it takes to go on. */
static bool
conn_run(struct conn *c)
{
	bool progress = true;

	while (progress) {
		if (outq_full(&c->outq) || c->outq.failed)
			return false;
		switch (c->state) {
		case CONN_READ_CMD:
			/* -R: past the budget, others get a turn first */
			if (c->reqs_left == 0 && inbuf_avail(&c->in) > 0)
				return false;
			if ((progress = conn_run_line(c)))
				c->reqs_left--;
			break;
		case CONN_NREAD:
			progress = inbuf_value_done(&c->in) ||
			    inbuf_feed_value(&c->in);
			if (inbuf_value_done(&c->in))
				conn_finish_value(c);
			break;
		case CONN_SWALLOW:
			progress = inbuf_feed_swallow(&c->in);
			if (c->in.swallow == 0)
				conn_set_state(c, CONN_READ_CMD);
			break;
		case CONN_STEP:
			conn_step(c);
			/* Not done: let conn_drive write and count the step. */
			if (c->state == CONN_STEP)
				return false;
			break;
		case CONN_CLOSING:
			return false;
		case CONN_WATCH:
			/* A watcher's input means nothing (memcached stops
			 * reading it): dropped, read on only to see EOF. */
			c->in.pos = c->in.len;
			return watch_drain(c->watcher, watch_put, c);
		}
	}
	return true;
}

/* Writes queued output; false when the socket failed. */
static bool
conn_write(struct conn *c)
{
	uint64_t before = c->outq.written;

	if (!outq_flush(&c->outq, c->io.writev, c->io.ctx))
		return false;
	if (c->outq.written != before) {
		STAT_ADD(&c->w->stats, bytes_written,
		    c->outq.written - before);
		conn_touch(c);
		c->last_write = c->last_cmd;
	}
	return true;
}

/* True when the client took reply bytes off the socket since last asked;
 * refreshes both timeouts' clocks if so. */
static bool
conn_client_took(struct conn *c)
{
	int		unsent = 0;
	uint64_t	taken;

	if (ioctl(c->fd, SIOCOUTQ, &unsent) != 0 || unsent < 0)
		return false;
	taken = (c->io.tls != NULL ? tls_wire_written(c->io.tls) :
	    c->outq.written) - (uint64_t)unsent;
	if (taken <= c->taken_mark)
		return false;
	c->taken_mark = taken;
	conn_touch(c);
	c->last_write = c->last_cmd;
	return true;
}

/* Arms or disarms an event to match the wanted state. */
static void
conn_want(struct event *ev, bool *armed, bool want)
{
	if (want && !*armed)
		event_add(ev, NULL);
	else if (!want && *armed)
		event_del(ev);
	*armed = want;
}

/* Follows replies beginning or ceasing to wait on a socket the client
 * does not drain: takes the mark the client's progress is measured from
 * for both timeouts, and starts or stops the write-stall clock. */
static void
conn_watch_stall(struct conn *c, bool was_writing)
{
	struct timeval tv = { .tv_sec = c->srv->opts->write_timeout };

	if (c->writing == was_writing)
		return;
	if (c->writing)
		conn_client_took(c);
	if (c->sev == NULL)
		return;
	if (c->writing) {
		c->last_write = now_sec();
		evtimer_add(c->sev, &tv);
	} else
		evtimer_del(c->sev);
}

/* Advances a TLS handshake; true once the session is up, false while it
 * waits for the socket (events armed to match) or after it failed and
 * the connection was closed. */
static bool
conn_handshake(struct conn *c)
{
	switch (tls_handshake(c->io.tls)) {
	case TLS_HS_DONE:
		return true;
	case TLS_HS_WANT_READ:
		conn_want(c->wev, &c->writing, false);
		conn_want(c->rev, &c->reading, true);
		return false;
	case TLS_HS_WANT_WRITE:
		conn_want(c->rev, &c->reading, false);
		conn_want(c->wev, &c->writing, true);
		return false;
	case TLS_HS_FAILED:
		break;
	}
	c->close_reason = WATCH_CLOSE_ERROR;
	conn_close(c);
	return false;
}

/* Runs buffered input, writes, reads more, until the socket is drained,
 * the client must drain its replies first, or the read budget is spent;
 * the heart of the connection.  `readable` says the socket has input. */
static void
conn_drive(struct conn *c, bool readable)
{
	ssize_t	n;
	int	reads = 0, steps = 0;
	bool	drained;
	bool	was_writing, yield = false;
	static const struct timeval zero = { 0, 0 };

	c->reqs_left = c->srv->opts->reqs_per_event;
	if (c->io.tls != NULL && tls_handshaking(c->io.tls)) {
		if (!conn_handshake(c))
			return;
		readable = true;	/* a request may follow the handshake */
	}
	drained = !readable || c->eof;
	for (;;) {
		bool need_input = conn_run(c);

		if (c->outq.failed || !conn_write(c)) {
			c->close_reason = WATCH_CLOSE_ERROR;
			goto close;
		}
		if (c->state == CONN_CLOSING)
			break;
		if (!need_input && c->reqs_left == 0 &&
		    !outq_full(&c->outq)) {
			/* -R spent with requests still buffered: come back
			 * through the event loop, after the others, as
			 * memcached does (no read needed to go on; yev
			 * resumes it, below). */
			STAT_INC(&c->w->stats, conn_yields);
			yield = true;
			break;
		}
		if (!need_input && c->state == CONN_WATCH) {
			/* Lines wait: go on while the socket takes them,
			 * else wev brings the watcher back. */
			if (watch_backed_up(c))
				break;
			continue;
		}
		if (!need_input) {
			/* Stopped at the soft limit: go on once it drained. */
			if (outq_full(&c->outq))
				break;
			/* A long request (a dump to a fast reader) lets the
			 * worker's other connections go first: yev, a timer
			 * of the lowest priority armed below, resumes it
			 * in the next loop when no other event is ready. */
			if (c->state == CONN_STEP &&
			    ++steps >= STEPS_PER_EVENT) {
				yield = true;
				break;
			}
			continue;
		}
		if (c->eof) {
			/* Nothing more will come: finish sending, then go. */
			conn_set_state(c, CONN_CLOSING);
			break;
		}
		if (drained)
			break;
		if (reads++ >= READS_PER_EVENT) {
			/* Let other connections run; level-triggered readiness
			 * brings us back for the rest. */
			STAT_INC(&c->w->stats, conn_yields);
			break;
		}
		n = inbuf_read(&c->in, c->io.readv, c->io.ctx, &drained);
		if (n == -2) {
			c->close_reason = WATCH_CLOSE_ERROR;
			goto close;
		}
		if (n == -1)
			break;
		if (n == 0) {
			c->eof = true;
			continue;
		}
		STAT_ADD(&c->w->stats, bytes_read, n);
	}
	if (c->state == CONN_CLOSING && outq_empty(&c->outq))
		goto close;
	if (c->outq.pending == 0)
		inbuf_shrink(&c->in);
	was_writing = c->writing;
	conn_want(c->wev, &c->writing, !outq_empty(&c->outq) ||
	    (c->io.tls != NULL && tls_want_write(c->io.tls)));
	/* A timer of zero, not event_active: an event made active from its
	 * own callback runs again in the same pass over the active queue,
	 * while timers are only looked at once per loop. */
	if (yield)
		evtimer_add(c->yev, &zero);
	conn_watch_stall(c, was_writing);
	/* Over the soft limit, stop reading: TCP pushes back on a client
	 * that sends without reading, so its memory stays bounded. */
	conn_want(c->rev, &c->reading, c->state != CONN_CLOSING && !c->eof &&
	    !outq_full(&c->outq));
	/* Decrypted input the socket no longer shows: come back for it. */
	if (c->reading && c->io.tls != NULL && tls_pending(c->io.tls))
		event_active(c->rev, EV_READ, 1);
	return;
close:
	conn_close(c);
}

/* Resumes a request that yielded (yev, lowest priority). */
static void
conn_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_drive(arg, false);
}

/* Lines wait for a watcher (nev, made active by a producer). */
static void
conn_watch_lines(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_drive(arg, false);
}

/* libevent callback for read and write readiness. */
static void
conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	/* A TLS read may have waited for the socket to take a write. */
	conn_drive(c, (what & EV_READ) != 0 ||
	    (c->io.tls != NULL && tls_want_write(c->io.tls)));
}

/* Idle timer: closes a connection that made no progress for the timeout,
 * otherwise re-arms for the rest of it. */
static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	unsigned	 idle = c->srv->opts->idle_timeout;
	uint32_t	 since;

	(void)fd;
	(void)what;
	/* A watcher is silent by nature, and its lines are dropped, not
	 * queued without bound, when it does not read: no timeout applies
	 * (memcached's idle timeout does not see watchers either). */
	if (c->state == CONN_WATCH) {
		conn_arm_timer(c, idle);
		return;
	}
	if (!outq_empty(&c->outq))
		conn_client_took(c);
	since = now_sec() - c->last_cmd;
	if (since >= idle) {
		log_msg(LOG_INFO, "<%d idle for %u s, closing", c->fd, since);
		STAT_INC(&c->w->stats, idle_kicks);
		c->close_reason = WATCH_CLOSE_IDLE;
		conn_close(c);
		return;
	}
	conn_arm_timer(c, idle - since);
}

/* Write-stall timer: closes a connection whose client took none of its
 * waiting replies for write_timeout seconds, otherwise re-arms for the
 * rest. */
static void
conn_stall_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	unsigned	 wt = c->srv->opts->write_timeout;
	uint32_t	 since;
	struct timeval	 tv;

	(void)fd;
	(void)what;
	conn_client_took(c);
	since = now_sec() - c->last_write;
	if (c->state == CONN_WATCH)
		since = 0;	/* see conn_timer */
	if (since >= wt) {
		log_msg(LOG_INFO, "<%d replies unread for %u s, closing",
		    c->fd, since);
		STAT_INC(&c->w->stats, output_kicks);
		conn_close(c);
		return;
	}
	tv = (struct timeval){ .tv_sec = wt - since };
	evtimer_add(c->sev, &tv);
}
