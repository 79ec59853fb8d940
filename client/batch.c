/*
 * batch.c -- cc_store_many: many set/add/replace commands pipelined, with
 * every item's own reply (added for cached-warm, the pre-warmer).
 *
 * libmemcached either waits for each reply (one round trip per item) or,
 * with MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, drops the replies unread, so
 * it cannot say which item of a buffered batch was stored.  This file
 * routes each key with the client's own ketama continuum
 * (memcached_server_by_key on a pooled handle, so keys land where every
 * other call looks for them), then talks to each server directly: the
 * whole share of commands is written as the socket accepts it while the
 * replies, which come back in order, are read as they arrive.  A batch
 * costs about one round trip per server instead of one per item.
 *
 * Data structure: one struct bserver per distinct server: its items in
 * send order, the iovecs still to be written (header, value, "\r\n" per
 * item) and a reply buffer.  The servers are driven together by one
 * poll(2) loop.  Replies are parsed by proto_resp (protocol/).  A reply
 * that makes the stream doubtful (ERROR, CLIENT_ERROR, anything that is
 * not a storage reply, a closed connection, a timeout) fails every item
 * still unanswered on that server rather than guess.  A server that refuses the
 * connection gets its items one by one through libmemcached instead, so
 * it is ejected and its keys rehashed exactly as for cc_set.
 *
 * Locking: the pool's, only while routing; the sockets belong to the
 * call.  Connections are made per call: callers batch hundreds of items.
 */
#include "client_internal.h"
#include "proto_resp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HDR_MAX		320	/* "replace" key flags ttl len\r\n */
#define IOV_CHUNK	512	/* iovecs per sendmsg */
#define RBUF_SIZE	4096	/* reply lines are short */
#define NAME_MAX_LEN	256

struct bserver {
	const memcached_instance_st *inst;
	char		 name[NAME_MAX_LEN];	/* host, or socket path */
	in_port_t	 port;
	bool		 local;		/* a unix socket */
	int		 fd;
	size_t		*order;		/* item indexes, in send order */
	size_t		 n, answered;
	char		*hdr;		/* HDR_MAX bytes per item */
	struct iovec	*iov;
	size_t		 niov, sent;	/* iovecs, iovecs fully written */
	char		 rbuf[RBUF_SIZE];
	size_t		 rlen;
	bool		 done;
	bool		 fallback;	/* no connection: store one by one */
};

struct batch {
	cc_client	*c;
	cc_store_mode	 mode;
	struct cc_item	*items;
	size_t		 n;
	struct bserver	*srv;
	size_t		 nsrv, maxsrv;
	size_t		*route;		/* server of each item, or SIZE_MAX */
};

/* Returns the command name of a mode. */
static const char *
mode_name(cc_store_mode mode)
{
	switch (mode) {
	case CC_STORE_ADD:
		return "add";
	case CC_STORE_REPLACE:
		return "replace";
	case CC_STORE_SET:
	default:
		return "set";
	}
}

/* Returns the index of inst among the batch's servers, adding it. */
static size_t
server_index(struct batch *b, const memcached_instance_st *inst)
{
	struct bserver	*s;
	const char	*type, *name;
	size_t		 i;

	for (i = 0; i < b->nsrv; i++)
		if (b->srv[i].inst == inst)
			return i;
	if (b->nsrv == b->maxsrv)
		return SIZE_MAX;
	s = &b->srv[b->nsrv];
	memset(s, 0, sizeof *s);
	s->inst = inst;
	s->fd = -1;
	name = memcached_server_name(inst);
	snprintf(s->name, sizeof s->name, "%s", name != NULL ? name : "");
	s->port = memcached_server_port(inst);
	type = memcached_server_type(inst);
	s->local = type != NULL && strcmp(type, "SOCKET") == 0;
	return b->nsrv++;
}

/* Routes every valid item to its server (as the client's calls do). */
static cc_status
route(struct batch *b)
{
	memcached_st		*m;
	memcached_return_t	 rc;
	const memcached_instance_st *inst;
	cc_status		 st;
	size_t			 i;

	if ((m = client_conn(b->c, &st)) == NULL)
		return st;
	b->maxsrv = memcached_server_count(m);
	if ((b->srv = calloc(b->maxsrv + 1, sizeof *b->srv)) == NULL) {
		client_release(b->c, m);
		return client_err_set(CC_NO_MEMORY,
		    "store many: out of memory");
	}
	for (i = 0; i < b->n; i++) {
		if (b->route[i] != 0)
			continue;	/* bad argument, already failed */
		inst = memcached_server_by_key(m, b->items[i].key,
		    strlen(b->items[i].key), &rc);
		if (inst == NULL) {
			b->items[i].status = client_err_memc(m, rc,
			    "store many");
			b->route[i] = SIZE_MAX;
			continue;
		}
		if ((b->route[i] = server_index(b, inst)) == SIZE_MAX)
			b->items[i].status = client_err_set(CC_ERROR,
			    "store many: "
			    "server list changed during the call");
	}
	client_release(b->c, m);
	return CC_OK;
}

/* Fails every unanswered item of s with st. */
static void
server_fail(struct batch *b, struct bserver *s, cc_status st)
{
	size_t i;

	for (i = s->answered; i < s->n; i++)
		b->items[s->order[i]].status = st;
	s->answered = s->n;
	s->done = true;
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

/* Builds the iovecs of every item of s. */
static cc_status
server_prepare(struct batch *b, struct bserver *s)
{
	const char	*cmd = mode_name(b->mode);
	size_t		 i;

	if ((s->hdr = malloc(s->n * HDR_MAX)) == NULL ||
	    (s->iov = malloc(s->n * 3 * sizeof *s->iov)) == NULL)
		return client_err_set(CC_NO_MEMORY,
		    "store many: out of memory");
	for (i = 0; i < s->n; i++) {
		struct cc_item	*it = &b->items[s->order[i]];
		char		*h = s->hdr + i * HDR_MAX;
		int		 len;

		len = snprintf(h, HDR_MAX, "%s %s %lu %lu %zu\r\n", cmd,
		    it->key, (unsigned long)it->flags,
		    (unsigned long)it->ttl, it->len);
		s->iov[s->niov++] = (struct iovec){ h, (size_t)len };
		if (it->len > 0)
			s->iov[s->niov++] = (struct iovec){
			    (void *)(uintptr_t)it->value, it->len };
		s->iov[s->niov++] = (struct iovec){ (void *)"\r\n", 2 };
	}
	return CC_OK;
}

/* Waits up to ms for a non-blocking connect on fd to finish. */
static int
connect_wait(int fd, unsigned ms)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLOUT };
	socklen_t	len = sizeof(int);
	int		err = 0, rc;

	while ((rc = poll(&pfd, 1, (int)ms)) < 0 && errno == EINTR)
		;
	if (rc == 0)
		errno = ETIMEDOUT;
	if (rc <= 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -1;
	errno = err;
	return err == 0 ? 0 : -1;
}

/* Connects a new non-blocking socket to addr. */
static int
connect_addr(const struct sockaddr *addr, socklen_t alen, int family,
    unsigned ms)
{
	int fd, one = 1, saved;

	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0)
		return -1;
	if (family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof one);
	if (connect(fd, addr, alen) == 0 ||
	    ((errno == EINPROGRESS || errno == EAGAIN) &&
	    connect_wait(fd, ms) == 0))
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Connects to a unix socket server. */
static int
connect_local(const char *path, unsigned ms)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	return connect_addr((const struct sockaddr *)&sun, sizeof sun,
	    AF_UNIX, ms);
}

/* Connects to a TCP server, trying each of its addresses. */
static int
connect_tcp(const char *host, in_port_t port, unsigned ms)
{
	struct addrinfo	 hints, *res, *ai;
	char		 serv[8];
	int		 fd = -1, rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(serv, sizeof serv, "%u", (unsigned)port);
	if ((rc = getaddrinfo(host, serv, &hints, &res)) != 0) {
		errno = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = connect_addr(ai->ai_addr, ai->ai_addrlen, ai->ai_family,
		    ms);
	freeaddrinfo(res);
	return fd;
}

/* Opens the connection of s; on failure its items take the slow path. */
static void
server_open(struct batch *b, struct bserver *s)
{
	unsigned ms = b->c->cfg.connect_timeout_ms;

	s->fd = s->local ? connect_local(s->name, ms) :
	    connect_tcp(s->name, s->port, ms);
	if (s->fd < 0) {
		s->fallback = true;
		s->done = true;
	}
}

/* Stores one item through libmemcached, which routes, fails and ejects. */
static cc_status
store_one(memcached_st *m, cc_store_mode mode, const struct cc_item *it)
{
	memcached_return_t	rc;
	size_t			klen = strlen(it->key);

	switch (mode) {
	case CC_STORE_ADD:
		rc = memcached_add(m, it->key, klen, it->value, it->len,
		    (time_t)it->ttl, it->flags);
		break;
	case CC_STORE_REPLACE:
		rc = memcached_replace(m, it->key, klen, it->value, it->len,
		    (time_t)it->ttl, it->flags);
		break;
	case CC_STORE_SET:
	default:
		rc = memcached_set(m, it->key, klen, it->value, it->len,
		    (time_t)it->ttl, it->flags);
		break;
	}
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED)
		return CC_OK;
	return client_err_memc(m, rc, "store many");
}

/*
 * Stores the items of every server that refused the connection one by
 * one on a single connection set: after failure_limit failures it ejects
 * the server and the rest go where every other call now sends them.
 */
static void
fallback(struct batch *b)
{
	memcached_st	*m = NULL;
	cc_status	 st = CC_OK;
	size_t		 i, k;

	for (i = 0; i < b->nsrv; i++) {
		struct bserver *s = &b->srv[i];

		if (!s->fallback)
			continue;
		if (m == NULL && (m = client_conn(b->c, &st)) == NULL) {
			server_fail(b, s, st);
			continue;
		}
		for (k = 0; k < s->n; k++)
			b->items[s->order[k]].status = store_one(m, b->mode,
			    &b->items[s->order[k]]);
	}
	if (m != NULL)
		client_release(b->c, m);
}

/* Writes as much of s's pending commands as the socket takes. */
static void
server_write(struct batch *b, struct bserver *s)
{
	struct msghdr	 msg;
	ssize_t		 n;
	size_t		 left;

	memset(&msg, 0, sizeof msg);
	msg.msg_iov = s->iov + s->sent;
	left = s->niov - s->sent;
	msg.msg_iovlen = left < IOV_CHUNK ? left : IOV_CHUNK;
	n = sendmsg(s->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		client_err_set(CC_UNREACHABLE, "store many: send to %s: %s",
		    s->name,
		    strerror(errno));
		server_fail(b, s, CC_UNREACHABLE);
		return;
	}
	while (n > 0 && s->sent < s->niov) {
		struct iovec *v = &s->iov[s->sent];

		if ((size_t)n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
			break;
		}
		n -= (ssize_t)v->iov_len;
		s->sent++;
	}
}

/* Maps one parsed reply; *doubt is set when the stream cannot be trusted
 * (a reply no storage command gets, ERROR, CLIENT_ERROR). */
static cc_status
reply_status(const struct proto_resp *r, bool *doubt)
{
	static const char too_large[] = "object too large";

	*doubt = false;
	switch (r->kind) {
	case PROTO_RESP_STORED:
		return CC_OK;
	case PROTO_RESP_NOT_STORED:
	case PROTO_RESP_EXISTS:
	case PROTO_RESP_NOT_FOUND:
		return CC_NOT_STORED;
	case PROTO_RESP_SERVER_ERROR:
		if (r->ntext >= sizeof too_large - 1 &&
		    memcmp(r->text, too_large, sizeof too_large - 1) == 0)
			return CC_TOO_LARGE;
		return CC_SERVER_ERROR;
	default:
		*doubt = true;
		return CC_PROTOCOL_ERROR;
	}
}

/* Assigns every complete reply in s's buffer (parsed by proto_resp) to its
 * item. */
static void
server_replies(struct batch *b, struct bserver *s)
{
	struct proto_resp	 r;
	enum proto_resp_result	 res = PROTO_RESP_NEED_MORE;
	size_t			 pos = 0, used, len;
	bool			 doubt;
	cc_status		 st;

	while (s->answered < s->n && (res = proto_resp_parse_head(s->rbuf + pos,
	    s->rlen - pos, &r, &used)) == PROTO_RESP_OK) {
		st = reply_status(&r, &doubt);
		len = used >= 2 ? used - 2 : 0;
		if (st != CC_OK && st != CC_NOT_STORED)
			client_err_set(st, "store many: %s: %.*s",
			    b->items[s->order[s->answered]].key,
			    (int)(len > 200 ? 200 : len), s->rbuf + pos);
		b->items[s->order[s->answered++]].status = st;
		pos += used;
		if (doubt) {
			server_fail(b, s, CC_PROTOCOL_ERROR);
			return;
		}
	}
	if (res == PROTO_RESP_BAD) {
		client_err_set(CC_PROTOCOL_ERROR,
		    "store many: %s sent a reply that "
		    "is not memcached's", s->name);
		server_fail(b, s, CC_PROTOCOL_ERROR);
		return;
	}
	s->rlen -= pos;
	memmove(s->rbuf, s->rbuf + pos, s->rlen);
	if (s->answered == s->n) {
		s->done = true;
		close(s->fd);
		s->fd = -1;
	} else if (s->rlen == sizeof s->rbuf) {
		client_err_set(CC_PROTOCOL_ERROR,
		    "store many: %s sent an overlong "
		    "reply", s->name);
		server_fail(b, s, CC_PROTOCOL_ERROR);
	}
}

/* Reads what s has answered. */
static void
server_read(struct batch *b, struct bserver *s)
{
	ssize_t n;

	n = recv(s->fd, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen,
	    MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_err_set(CC_UNREACHABLE,
		    "store many: %s closed the connection",
		    s->name);
		server_fail(b, s, CC_UNREACHABLE);
		return;
	}
	s->rlen += (size_t)n;
	server_replies(b, s);
}

/* Drives every open server until all are answered or one stalls. */
static cc_status
pump(struct batch *b)
{
	struct pollfd	*pfd;
	size_t		 i, k, *which;
	int		 rc;

	pfd = calloc(b->nsrv, sizeof *pfd);
	which = calloc(b->nsrv, sizeof *which);
	if (pfd == NULL || which == NULL) {
		free(pfd);
		free(which);
		return client_err_set(CC_NO_MEMORY,
		    "store many: out of memory");
	}
	for (;;) {
		for (i = k = 0; i < b->nsrv; i++) {
			struct bserver *s = &b->srv[i];

			if (s->done)
				continue;
			pfd[k] = (struct pollfd){ .fd = s->fd,
			    .events = (short)(POLLIN |
			    (s->sent < s->niov ? POLLOUT : 0)) };
			which[k++] = i;
		}
		if (k == 0)
			break;
		rc = poll(pfd, (nfds_t)k, (int)b->c->cfg.io_timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		for (i = 0; i < k; i++) {
			struct bserver *s = &b->srv[which[i]];

			if (rc <= 0) {
				client_err_set(CC_TIMEOUT,
				    "store many: %s did not "
				    "answer in %u ms", s->name,
				    b->c->cfg.io_timeout_ms);
				server_fail(b, s, CC_TIMEOUT);
				continue;
			}
			if (pfd[i].revents & POLLOUT)
				server_write(b, s);
			if (!s->done && (pfd[i].revents & (POLLIN | POLLERR |
			    POLLHUP)))
				server_read(b, s);
		}
	}
	free(pfd);
	free(which);
	return CC_OK;
}

/* Checks each item; a bad one gets CC_BAD_ARGUMENT and no route. */
static void
check_items(struct batch *b)
{
	size_t i, klen;

	for (i = 0; i < b->n; i++) {
		struct cc_item *it = &b->items[i];

		it->status = CC_ERROR;
		b->route[i] = 0;
		if (!client_key_ok(it->key, &klen) ||
		    (it->value == NULL && it->len > 0)) {
			it->status = client_err_set(CC_BAD_ARGUMENT,
			    "store many: "
			    "bad key or NULL value at item %zu", i);
			b->route[i] = SIZE_MAX;
		}
	}
}

/* Sorts the routed items into their servers, keeping their order. */
static cc_status
distribute(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->route[i] != SIZE_MAX)
			b->srv[b->route[i]].n++;
	for (i = 0; i < b->nsrv; i++) {
		b->srv[i].order = malloc(b->srv[i].n * sizeof(size_t));
		if (b->srv[i].order == NULL)
			return client_err_set(CC_NO_MEMORY,
			    "store many: out of "
			    "memory");
		b->srv[i].n = 0;
	}
	for (i = 0; i < b->n; i++)
		if (b->route[i] != SIZE_MAX) {
			struct bserver *s = &b->srv[b->route[i]];

			s->order[s->n++] = i;
		}
	return CC_OK;
}

/* Runs a routed batch: prepare, connect, pump. */
static cc_status
run(struct batch *b)
{
	cc_status	st;
	size_t		i;

	if ((st = distribute(b)) != CC_OK)
		return st;
	for (i = 0; i < b->nsrv; i++)
		if ((st = server_prepare(b, &b->srv[i])) != CC_OK)
			return st;
	for (i = 0; i < b->nsrv; i++)
		server_open(b, &b->srv[i]);
	if ((st = pump(b)) != CC_OK)
		return st;
	fallback(b);
	return CC_OK;
}

/* Frees the servers of b, closing what is still open. */
static void
batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; b->srv != NULL && i < b->nsrv; i++) {
		if (b->srv[i].fd >= 0)
			close(b->srv[i].fd);
		free(b->srv[i].order);
		free(b->srv[i].hdr);
		free(b->srv[i].iov);
	}
	free(b->srv);
	free(b->route);
}

/* Stores items[0..n-1] pipelined. */
cc_status
cc_store_many(cc_client *c, cc_store_mode mode, struct cc_item *items,
    size_t n)
{
	struct batch	b = { .c = c, .mode = mode, .items = items, .n = n };
	cc_status	st;
	size_t		i;

	if (c == NULL || (items == NULL && n > 0) || mode < CC_STORE_SET ||
	    mode > CC_STORE_REPLACE)
		return client_err_set(CC_BAD_ARGUMENT,
		    "store many: bad argument");
	if (n == 0)
		return CC_OK;
	if ((b.route = malloc(n * sizeof *b.route)) == NULL)
		st = client_err_set(CC_NO_MEMORY, "store many: out of memory");
	else {
		check_items(&b);
		if ((st = route(&b)) == CC_OK)
			st = run(&b);
	}
	for (i = 0; i < n; i++)
		if (st != CC_OK && items[i].status == CC_ERROR)
			items[i].status = st;
	batch_free(&b);
	for (i = 0; i < n; i++)
		if (items[i].status != CC_OK)
			return items[i].status;
	return CC_OK;
}
