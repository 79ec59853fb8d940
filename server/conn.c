/*
 * conn.c -- a client connection's life: read what the socket has, run
 * every complete request, send all replies with as few writev calls as
 * possible, and keep memory bounded when the client stops reading.
 *
 * Flow per readiness event (conn_drive):
 *   write queued output -> read until a read comes back short ->
 *   run requests until the input runs out or the output queue passes
 *   OUT_SOFT_LIMIT -> write.  While the output queue is over the limit the
 *   connection stops reading (TCP pushes back on the client) and resumes
 *   once the client has drained it.
 *
 * Idle timeout (-o idle_timeout=T): `last_cmd` is refreshed when a request
 * completes or output is actually written; a connection with no such
 * progress for T seconds is closed, whether silent, half-way through a
 * line or a value, or not reading its replies.
 *
 * Write timeout (-o write_timeout=W, default 60): while replies wait on a
 * socket the client does not drain, `last_write` holds when bytes last
 * moved; after W seconds without any the connection is closed.  Queued
 * large values pin their items (and the memory -m counts for them) even
 * after eviction, so a few dozen clients that never read could otherwise
 * hold most of the cache's memory for good.  Values stored in segments
 * are always copied into the reply: a reference to one would hold its
 * whole segment (store.h: item_in_segment).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "server.h"
#include "worker.h"

#define RBUF_INITIAL	(16 * 1024)
#define RBUF_MAX	(PROTO_GET_LINE_MAX + 4096)
#define CHUNK_SIZE	(16 * 1024)
#define OUT_SOFT_LIMIT	(512 * 1024)
#define IOV_BATCH	1024	/* iovecs per writev (IOV_MAX on Linux) */
#define READS_PER_EVENT	8	/* fairness: full-buffer reads per event */
/* Values up to this size are copied into the reply, larger ones are sent
 * from item memory unless they live in a segment. */
#define COPY_VALUE_MAX	1024

static void	conn_event(evutil_socket_t fd, short what, void *arg);
static void	conn_timer(evutil_socket_t fd, short what, void *arg);
static void	conn_stall_timer(evutil_socket_t fd, short what, void *arg);

static const char *const state_names[] = {
	[CONN_READ_CMD] = "conn_parse_cmd",
	[CONN_NREAD] = "conn_nread",
	[CONN_SWALLOW] = "conn_swallow",
	[CONN_MGET] = "conn_mwrite",
	[CONN_CLOSING] = "conn_closing",
};

/* Name of the state for "stats conns". */
const char *
conn_state_name(int state)
{
	if (state < 0 || state > CONN_CLOSING)
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

/* Creates a connection on worker w for an accepted socket. */
struct conn *
conn_new(struct worker *w, int fd, const char *listen_addr)
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
	c->rsize = RBUF_INITIAL;
	c->rbuf = malloc(c->rsize);
	c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_event, c);
	c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, conn_event, c);
	if (idle > 0)
		c->tev = evtimer_new(w->base, conn_timer, c);
	if (stall)
		c->sev = evtimer_new(w->base, conn_stall_timer, c);
	if (c->rbuf == NULL || c->rev == NULL || c->wev == NULL ||
	    (idle > 0 && c->tev == NULL) || (stall && c->sev == NULL) ||
	    event_add(c->rev, NULL) != 0) {
		if (c->rev != NULL)
			event_free(c->rev);
		if (c->wev != NULL)
			event_free(c->wev);
		if (c->tev != NULL)
			event_free(c->tev);
		if (c->sev != NULL)
			event_free(c->sev);
		free(c->rbuf);
		free(c);
		return NULL;
	}
	c->reading = true;
	conn_set_state(c, CONN_READ_CMD);
	conn_touch(c);
	conn_arm_timer(c, idle);
	return c;
}

/* Releases the items the output queue still references and resets it. */
static void
conn_out_reset(struct conn *c)
{
	struct out_chunk *ch, *next;

	for (size_t i = c->iov_pos; i < c->iov_n; i++)
		if (c->iov_item[i] != NULL)
			store_release(c->srv->store, c->iov_item[i]);
	c->iov_n = c->iov_pos = 0;
	c->out_pending = 0;
	/* Keep one chunk for the next replies, free the rest. */
	if (c->chunk_head != NULL) {
		for (ch = c->chunk_head->next; ch != NULL; ch = next) {
			next = ch->next;
			free(ch);
		}
		c->chunk_head->next = NULL;
		c->chunk_head->used = 0;
		c->chunk_cur = c->chunk_head;
	}
}

/* Closes the socket and frees everything the connection holds. */
void
conn_free(struct conn *c)
{
	struct out_chunk *ch, *next;

	conn_out_reset(c);
	for (ch = c->chunk_head; ch != NULL; ch = next) {
		next = ch->next;
		free(ch);
	}
	if (c->nread_it != NULL)
		store_release(c->srv->store, c->nread_it);
	event_free(c->rev);
	event_free(c->wev);
	if (c->tev != NULL)
		event_free(c->tev);
	if (c->sev != NULL)
		event_free(c->sev);
	close(c->fd);
	free(c->rbuf);
	free(c->iov);
	free(c->iov_item);
	__atomic_fetch_sub(&c->srv->curr_conns, 1, __ATOMIC_RELAXED);
	free(c);
}

/* Unlinks c from its worker and frees it. */
static void
conn_close(struct conn *c)
{
	struct worker *w = c->w;

	log_msg(LOG_INFO, "<%d connection closed", c->fd);
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

/* Makes room for `more` (at most 64) more iovecs; false when memory ran
 * out. */
static bool
conn_iov_grow(struct conn *c, size_t more)
{
	struct iovec	 *iov;
	item_t		**items;
	size_t		  cap;

	if (c->iov_cap - c->iov_n >= more)
		return true;
	cap = c->iov_cap == 0 ? 64 : c->iov_cap * 2;
	if ((iov = realloc(c->iov, cap * sizeof *iov)) == NULL)
		return false;
	c->iov = iov;
	if ((items = realloc(c->iov_item, cap * sizeof *items)) == NULL)
		return false;
	c->iov_item = items;
	c->iov_cap = cap;
	return true;
}

/* Returns space for up to n bytes of reply text in the current chunk. */
char *
conn_out_space(struct conn *c, size_t n)
{
	struct out_chunk	*ch = c->chunk_cur;
	size_t			 size;

	if (ch != NULL && ch->size - ch->used >= n)
		return ch->data + ch->used;
	if (ch != NULL && ch->next != NULL && ch->next->size >= n) {
		c->chunk_cur = ch->next;
		c->chunk_cur->used = 0;
		return c->chunk_cur->data;
	}
	size = n > CHUNK_SIZE ? n : CHUNK_SIZE;
	if ((ch = malloc(sizeof *ch + size)) == NULL)
		return NULL;
	ch->next = NULL;
	ch->used = 0;
	ch->size = size;
	if (c->chunk_cur == NULL)
		c->chunk_head = ch;
	else {
		ch->next = c->chunk_cur->next;
		c->chunk_cur->next = ch;
	}
	c->chunk_cur = ch;
	return ch->data;
}

/* Queues the first `used` bytes of the space conn_out_space returned. */
void
conn_out_commit(struct conn *c, size_t used)
{
	struct out_chunk	*ch = c->chunk_cur;
	char			*p = ch->data + ch->used;
	struct iovec		*last;

	ch->used += used;
	c->out_pending += used;
	/* Text that directly follows the previous copy extends its iovec. */
	if (c->iov_n > c->iov_pos) {
		last = &c->iov[c->iov_n - 1];
		if (c->iov_item[c->iov_n - 1] == NULL &&
		    (char *)last->iov_base + last->iov_len == p) {
			last->iov_len += used;
			return;
		}
	}
	if (!conn_iov_grow(c, 1)) {
		conn_set_closing(c);
		return;
	}
	c->iov[c->iov_n].iov_base = p;
	c->iov[c->iov_n].iov_len = used;
	c->iov_item[c->iov_n] = NULL;
	c->iov_n++;
}

/* Queues a copy of n bytes of reply text. */
void
conn_out(struct conn *c, const char *s, size_t n)
{
	char *p;

	if ((p = conn_out_space(c, n)) == NULL) {
		conn_set_closing(c);
		return;
	}
	memcpy(p, s, n);
	conn_out_commit(c, n);
}

/* Queues a fixed reply unless the request said noreply. */
void
conn_reply(struct conn *c, enum proto_reply r)
{
	const char	*s;
	size_t		 n;

	if (c->noreply)
		return;
	s = proto_reply(r, &n);
	conn_out(c, s, n);
}

/* Queues a fixed error reply, sent even for noreply requests. */
void
conn_error(struct conn *c, enum proto_reply r)
{
	const char	*s;
	size_t		 n;

	s = proto_reply(r, &n);
	conn_out(c, s, n);
}

/* Queues an item's value and "\r\n"; takes over the caller's reference.
 * Only the item_nbytes bytes of the value are read from the item: the
 * "\r\n" after them is not stored there. */
void
conn_out_value(struct conn *c, item_t *it)
{
	static const char	 crlf[2] = { '\r', '\n' };
	size_t			 n = item_nbytes(it);
	char			*p;

	/* A value in a segment is copied whatever its size: a reference
	 * would keep the whole segment from reuse while the client dawdles. */
	if ((n + 2 <= COPY_VALUE_MAX && !conn_out_full(c)) ||
	    item_in_segment(it)) {
		if ((p = conn_out_space(c, n + 2)) == NULL) {
			store_release(c->srv->store, it);
			conn_set_closing(c);
			return;
		}
		memcpy(p, item_value(it), n);
		memcpy(p + n, crlf, 2);
		conn_out_commit(c, n + 2);
		store_release(c->srv->store, it);
		return;
	}
	/* Value from item memory (the iovec holds the reference), then the
	 * terminator from static memory (no reference).  Room for both first,
	 * so a value never goes out without its "\r\n". */
	if (!conn_iov_grow(c, 2)) {
		store_release(c->srv->store, it);
		conn_set_closing(c);
		return;
	}
	c->iov[c->iov_n].iov_base = (void *)item_value(it);
	c->iov[c->iov_n].iov_len = n;
	c->iov_item[c->iov_n] = it;
	c->iov_n++;
	c->iov[c->iov_n].iov_base = (void *)crlf;
	c->iov[c->iov_n].iov_len = 2;
	c->iov_item[c->iov_n] = NULL;
	c->iov_n++;
	c->out_pending += n + 2;
}

/* Starts reading a value into reserved item it. */
void
conn_start_nread(struct conn *c, item_t *it, enum proto_cmd cmd,
    uint64_t cas, bool noreply)
{
	c->nread_it = it;
	c->nread_dst = item_value_mut(it);
	c->nread_left = item_nbytes(it);
	c->nread_end_got = 0;
	c->nread_cmd = cmd;
	c->nread_cas = cas;
	c->nread_noreply = noreply;
	conn_set_state(c, CONN_NREAD);
}

/* Starts discarding n bytes of input. */
void
conn_start_swallow(struct conn *c, size_t n)
{
	if (n == 0)
		return;
	c->swallow_left = n;
	conn_set_state(c, CONN_SWALLOW);
}

/* Marks the connection to close once queued output has been sent. */
void
conn_set_closing(struct conn *c)
{
	conn_set_state(c, CONN_CLOSING);
}

/* True when the output queue is over its soft limit: stop producing. */
bool
conn_out_full(const struct conn *c)
{
	return c->out_pending >= OUT_SOFT_LIMIT;
}

/* Hands a finished value to dispatch and returns to reading commands. */
static void
conn_finish_nread(struct conn *c)
{
	item_t *it = c->nread_it;

	c->nread_it = NULL;
	conn_set_state(c, CONN_READ_CMD);
	c->noreply = c->nread_noreply;
	dispatch_value(c, it, c->nread_cmd, c->nread_cas);
	c->noreply = false;
	conn_touch(c);
}

/* Parses and runs one command line; false when more input is needed. */
static bool
conn_run_line(struct conn *c)
{
	struct proto_req	req;
	size_t			consumed = 0;
	enum proto_result	r;

	r = proto_parse(c->rbuf + c->rpos, c->rlen - c->rpos, &req, &consumed);
	switch (r) {
	case PROTO_NEED_MORE:
		return false;
	case PROTO_OK:
		if (proto_is_multikey(req.cmd)) {
			/* Leave the line in rbuf until every key is answered. */
			c->mget = req;
			c->mget_cursor = 0;
			c->mget_len = consumed;
			conn_set_state(c, CONN_MGET);
			break;
		}
		c->rpos += consumed;
		c->noreply = req.noreply;
		dispatch_request(c, &req);
		c->noreply = false;
		if (c->state == CONN_READ_CMD)
			conn_touch(c);
		break;
	case PROTO_BAD:
		c->rpos += consumed;
		if (req.error != NULL)
			conn_out(c, req.error, strlen(req.error));
		conn_start_swallow(c, req.swallow);
		break;
	case PROTO_CLOSE:
		c->rpos += consumed;
		if (req.error != NULL)
			conn_out(c, req.error, strlen(req.error));
		conn_set_closing(c);
		break;
	}
	return true;
}

/* Accounts for n bytes that have landed at nread_dst (value bytes first)
 * and then at nread_end; finishes the value once both are complete. */
static void
conn_nread_advance(struct conn *c, size_t n)
{
	size_t v = n < c->nread_left ? n : c->nread_left;

	c->nread_dst += v;
	c->nread_left -= v;
	c->nread_end_got += n - v;
	if (c->nread_left == 0 && c->nread_end_got == sizeof c->nread_end)
		conn_finish_nread(c);
}

/* Moves buffered bytes into the item being read, then its terminator. */
static bool
conn_run_nread(struct conn *c)
{
	size_t	 n = c->rlen - c->rpos;
	size_t	 want = c->nread_left + sizeof c->nread_end - c->nread_end_got;
	size_t	 v;
	char	*src = c->rbuf + c->rpos;

	if (n == 0)
		return false;
	if (n > want)
		n = want;
	v = n < c->nread_left ? n : c->nread_left;
	if (v > 0)
		memcpy(c->nread_dst, src, v);
	if (n > v)
		memcpy(c->nread_end + c->nread_end_got, src + v, n - v);
	c->rpos += n;
	conn_nread_advance(c, n);
	return true;
}

/* Skips buffered bytes of a refused value. */
static bool
conn_run_swallow(struct conn *c)
{
	size_t n = c->rlen - c->rpos;

	if (n == 0)
		return false;
	if (n > c->swallow_left)
		n = c->swallow_left;
	c->rpos += n;
	c->swallow_left -= n;
	if (c->swallow_left == 0)
		conn_set_state(c, CONN_READ_CMD);
	return true;
}

/* Answers the next slice of a multi-key get; done once END is queued. */
static bool
conn_run_mget(struct conn *c)
{
	if (!dispatch_retrieve(c, &c->mget, &c->mget_cursor))
		return true;
	c->rpos += c->mget_len;
	conn_set_state(c, CONN_READ_CMD);
	conn_touch(c);
	return true;
}

/* Runs buffered requests until the input runs out, the output queue is
 * over its soft limit, or the connection is closing; returns true only in
 * the first case, when reading more is what it takes to go on. */
static bool
conn_run(struct conn *c)
{
	bool progress = true;

	while (progress) {
		if (c->out_pending >= OUT_SOFT_LIMIT)
			return false;
		switch (c->state) {
		case CONN_READ_CMD:
			progress = conn_run_line(c);
			break;
		case CONN_NREAD:
			progress = conn_run_nread(c);
			break;
		case CONN_SWALLOW:
			progress = conn_run_swallow(c);
			break;
		case CONN_MGET:
			progress = conn_run_mget(c);
			break;
		case CONN_CLOSING:
			return false;
		}
	}
	if (c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	return true;
}

/* Writes queued output; returns false when the socket failed. */
static bool
conn_write(struct conn *c)
{
	ssize_t	 n;
	size_t	 cnt;

	while (c->iov_pos < c->iov_n) {
		cnt = c->iov_n - c->iov_pos;
		if (cnt > IOV_BATCH)
			cnt = IOV_BATCH;
		n = writev(c->fd, c->iov + c->iov_pos, (int)cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		STAT_ADD(&c->w->stats, bytes_written, n);
		c->out_pending -= (size_t)n;
		conn_touch(c);
		c->last_write = c->last_cmd;
		/* Retire fully written iovecs, trim a partly written one. */
		while (n > 0 && c->iov_pos < c->iov_n) {
			struct iovec *v = &c->iov[c->iov_pos];

			if ((size_t)n < v->iov_len) {
				v->iov_base = (char *)v->iov_base + n;
				v->iov_len -= (size_t)n;
				break;
			}
			n -= (ssize_t)v->iov_len;
			if (c->iov_item[c->iov_pos] != NULL) {
				store_release(c->srv->store,
				    c->iov_item[c->iov_pos]);
				c->iov_item[c->iov_pos] = NULL;
			}
			c->iov_pos++;
		}
	}
	if (c->iov_pos == c->iov_n)
		conn_out_reset(c);
	return true;
}

/* Gives the read buffer room for more input; false if the buffer is full
 * and may not grow (the parser closes over-long lines first). */
static bool
conn_rbuf_room(struct conn *c)
{
	char	*p;
	size_t	 size;

	if (c->rpos > 0 && (c->rlen == c->rsize || c->rpos >= c->rsize / 2)) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	if (c->rlen < c->rsize)
		return true;
	if (c->rsize >= RBUF_MAX)
		return false;
	size = c->rsize * 2 > RBUF_MAX ? RBUF_MAX : c->rsize * 2;
	if ((p = realloc(c->rbuf, size)) == NULL)
		return false;
	c->rbuf = p;
	c->rsize = size;
	return true;
}

/* Shrinks a read buffer that grew for a long line once it is empty. */
static void
conn_rbuf_shrink(struct conn *c)
{
	char *p;

	if (c->rsize > RBUF_INITIAL && c->rlen == 0 &&
	    (p = realloc(c->rbuf, RBUF_INITIAL)) != NULL) {
		c->rbuf = p;
		c->rsize = RBUF_INITIAL;
	}
}

/* Reads once; > 0 bytes read, 0 end of file, -1 would block, -2 error.
 * *drained is set when the read did not fill the space offered: the socket
 * then most likely holds nothing more, and trying again would only cost an
 * EAGAIN system call (level-triggered readiness tells us if it does). */
static ssize_t
conn_read_once(struct conn *c, bool *drained)
{
	ssize_t		n;
	struct iovec	v[2];
	size_t		cap;
	bool		direct;

	/* While value bytes are due and rbuf is empty, stream them straight
	 * into item memory, and the terminator into nread_end with them.
	 * Once only (part of) the terminator is due, read into rbuf: a
	 * 1- or 2-byte read would cost a system call for the next request. */
	direct = c->state == CONN_NREAD && c->rpos == c->rlen &&
	    c->nread_left > 0;
	if (direct) {
		v[0].iov_base = c->nread_dst;
		v[0].iov_len = c->nread_left;
		v[1].iov_base = c->nread_end + c->nread_end_got;
		v[1].iov_len = sizeof c->nread_end - c->nread_end_got;
	} else {
		if (!conn_rbuf_room(c))
			return -2;
		v[0].iov_base = c->rbuf + c->rlen;
		v[0].iov_len = c->rsize - c->rlen;
	}
	cap = v[0].iov_len + (direct ? v[1].iov_len : 0);
	do
		n = direct ? readv(c->fd, v, 2) : read(c->fd, v[0].iov_base,
		    v[0].iov_len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : -2;
	if (n == 0)
		return 0;
	*drained = (size_t)n < cap;
	STAT_ADD(&c->w->stats, bytes_read, n);
	if (direct)
		conn_nread_advance(c, (size_t)n);
	else
		c->rlen += (size_t)n;
	return n;
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

/* Starts the write-stall clock when replies begin to wait on a socket the
 * client does not drain, and stops it once they are all sent. */
static void
conn_watch_stall(struct conn *c)
{
	struct timeval tv = { .tv_sec = c->srv->opts->write_timeout };

	if (c->sev == NULL || c->stall_armed == c->writing)
		return;
	if (c->writing) {
		c->last_write = now_sec();
		evtimer_add(c->sev, &tv);
	} else
		evtimer_del(c->sev);
	c->stall_armed = c->writing;
}

/* Runs buffered input, writes, reads more, until the socket is drained,
 * the client must drain its replies first, or the read budget is spent;
 * the heart of the connection.  `readable` says the socket has input. */
static void
conn_drive(struct conn *c, bool readable)
{
	ssize_t	n;
	int	reads = 0;
	bool	drained = !readable;

	for (;;) {
		bool need_input = conn_run(c);

		if (!conn_write(c))
			goto close;
		if (c->state == CONN_CLOSING)
			break;
		if (!need_input) {
			/* Stopped at the soft limit: go on once it drained. */
			if (c->out_pending >= OUT_SOFT_LIMIT)
				break;
			continue;
		}
		if (drained)
			break;
		if (reads++ >= READS_PER_EVENT) {
			/* Let other connections run; level-triggered readiness
			 * brings us back for the rest. */
			STAT_INC(&c->w->stats, conn_yields);
			break;
		}
		n = conn_read_once(c, &drained);
		if (n == -2 || n == 0)
			goto close;
		if (n == -1)
			break;
	}
	if (c->state == CONN_CLOSING && c->iov_pos == c->iov_n)
		goto close;
	if (c->out_pending == 0)
		conn_rbuf_shrink(c);
	conn_want(c->wev, &c->writing, c->iov_pos < c->iov_n);
	conn_watch_stall(c);
	/* Over the soft limit, stop reading: TCP pushes back on a client
	 * that sends without reading, so its memory stays bounded. */
	conn_want(c->rev, &c->reading, c->state != CONN_CLOSING &&
	    c->out_pending < OUT_SOFT_LIMIT);
	return;
close:
	conn_close(c);
}

/* libevent callback for read and write readiness. */
static void
conn_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	conn_drive(arg, (what & EV_READ) != 0);
}

/* Idle timer: closes a connection that made no progress for the timeout,
 * otherwise re-arms for the rest of it. */
static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	unsigned	 idle = c->srv->opts->idle_timeout;
	uint32_t	 since = now_sec() - c->last_cmd;

	(void)fd;
	(void)what;
	if (since >= idle) {
		log_msg(LOG_INFO, "<%d idle for %u s, closing", c->fd, since);
		STAT_INC(&c->w->stats, idle_kicks);
		conn_close(c);
		return;
	}
	conn_arm_timer(c, idle - since);
}

/* Write-stall timer: closes a connection whose waiting replies did not
 * move for write_timeout seconds, otherwise re-arms for the rest. */
static void
conn_stall_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	unsigned	 wt = c->srv->opts->write_timeout;
	uint32_t	 since = now_sec() - c->last_write;
	struct timeval	 tv = { .tv_sec = since < wt ? wt - since : 0 };

	(void)fd;
	(void)what;
	if (since >= wt) {
		log_msg(LOG_INFO, "<%d replies unread for %u s, closing",
		    c->fd, since);
		STAT_INC(&c->w->stats, output_kicks);
		conn_close(c);
		return;
	}
	evtimer_add(c->sev, &tv);
}
