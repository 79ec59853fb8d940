/*
 * bench_conn.c -- one load-generator connection: requests are composed
 * into a write buffer and remembered in a ring (oldest at head), replies
 * are parsed element by element with proto_resp_parse_head (protocol/)
 * and matched in order against the ring, and each completed reply is
 * counted and its latency recorded.
 *
 * Reply grammar, per request kind, text protocol:
 *   get:  ("VALUE key flags bytes [cas]" CRLF data CRLF)* "END" CRLF
 *   set:  "STORED" | "NOT_STORED" | "EXISTS" | "NOT_FOUND" CRLF
 *   any:  "ERROR" | "CLIENT_ERROR ..." | "SERVER_ERROR ..." CRLF
 * and meta protocol (--protocol meta):
 *   "mg key v f":  "VA bytes f<flags>" CRLF data CRLF | "EN" CRLF
 *   k keys, each "mg key v f k q", then "mn":
 *                  ("VA bytes f<flags> k<key>" CRLF data CRLF)* "MN" CRLF
 *                  (q keeps misses silent; an error line for one mg does
 *                  not end the batch, MN does)
 *   "ms key bytes T<ttl>":  "HD" | "NS" | "EX" | "NF" CRLF
 * Sets are sent without q, so that every set has its own reply and its
 * own latency, as in text mode.
 * Binary protocol (--protocol binary), 24-byte headers parsed with
 * proto_resp_parse_bin_head, values skipped by length:
 *   GET key:       one GET reply (status 0 a hit, 1 a miss)
 *   k keys:        GETKQ for each, then NOOP: a GETKQ reply per hit (its
 *                  key names it), the NOOP's reply ends the batch
 *   SET:           one SET reply (0 stored, 1/2/5 not stored)
 *   --set-batch N: N SETQ then NOOP, one ring entry counted as N sets;
 *                  SETQ replies are errors only, the NOOP's ends it
 * A line is parsed only once it is whole; value bytes are skipped as they
 * arrive and never buffered (their closing CRLF is checked), so the read
 * buffer holds at most one partial line (PROTO_RESP_LINE_MAX).  Anything
 * else means the framing is lost and the run stops.
 *
 * Timestamps: a closed-loop request is stamped when it is written; a paced
 * one carries its intended send time, so a server that falls behind is
 * charged for the wait (no coordinated omission).
 *
 * TLS (--tls): the handshake runs once, blocking, after connecting; then
 * reads and writes go through the session.  The server's certificate is
 * not checked: the bench measures the server it was pointed at.  A read
 * drains what the session holds decrypted before going back to epoll,
 * which only sees the socket.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench.h"
#include "proto.h"
#include "proto_resp.h"

#define RBUF_SIZE	(256 * 1024)

static SSL_CTX	*tls_ctx;	/* set by bench_tls_init, then read-only */
/* Binary protocol opcodes (protocol-binary.txt) the generator sends. */
#define BIN_GET		0x00
#define BIN_SET		0x01
#define BIN_NOOP	0x0a
#define BIN_SETQ	0x11
#define BIN_GETKQ	0x0d

/* Returns CLOCK_MONOTONIC in nanoseconds. */
uint64_t
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Allocates n zeroed elements of size sz or aborts: a benchmark without
 * memory has nothing useful left to do. */
static void *
xcalloc(size_t n, size_t sz)
{
	void	*p = calloc(n ? n : 1, sz);

	if (p == NULL) {
		fputs("cached-bench: out of memory\n", stderr);
		exit(2);
	}
	return p;
}

/* Sets up c for a connected non-blocking fd, `cap` requests in flight at
 * most, counting into st. */
int
bench_conn_init(struct bench_conn *c, const struct bench_cfg *cfg,
    struct bench_stats *st, unsigned cap, uint64_t seed)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->cfg = cfg;
	c->st = st;
	bench_rng_seed(&c->rng, seed);
	c->wcap = 64 * 1024;
	c->wbuf = xcalloc(c->wcap, 1);
	c->rbuf = xcalloc(RBUF_SIZE, 1);
	c->cap = cap;
	c->depth = cap;
	c->ring = xcalloc(cap, sizeof *c->ring);
	if (cfg->miss_set) {
		c->ring_keys = xcalloc((size_t)cap * cfg->keys_per_get,
		    sizeof *c->ring_keys);
		c->found = xcalloc(cfg->keys_per_get, 1);
		c->mq_cap = cap * cfg->keys_per_get;
		c->missq = xcalloc(c->mq_cap, sizeof *c->missq);
	}
	return 0;
}

/* Sets up TLS for every connection (--tls); 0 or -1. */
int
bench_tls_init(void)
{
	if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return -1;
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return 0;
}

/* Runs the TLS handshake on c's connected socket, blocking; 0 or -1 with
 * *why set. */
int
bench_conn_tls(struct bench_conn *c, const char **why)
{
	int fl = fcntl(c->fd, F_GETFL);

	if ((c->ssl = SSL_new(tls_ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1) {
		*why = "cannot create a TLS session";
		return -1;
	}
	fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	if (SSL_connect(c->ssl) != 1) {
		*why = "TLS handshake failed";
		ERR_clear_error();
		return -1;
	}
	fcntl(c->fd, F_SETFL, fl);
	return 0;
}

/* Releases c's memory and socket. */
void
bench_conn_free(struct bench_conn *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	free(c->wbuf);
	free(c->rbuf);
	free(c->ring);
	free(c->ring_keys);
	free(c->found);
	free(c->missq);
	c->fd = -1;
}

/* Makes room for n more bytes of output. */
static char *
wreserve(struct bench_conn *c, size_t n)
{
	if (c->woff > 0 && c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if (c->wlen + n > c->wcap) {
		if (c->woff > 0) {
			memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
			c->wlen -= c->woff;
			c->woff = 0;
		}
		while (c->wlen + n > c->wcap)
			c->wcap *= 2;
		if ((c->wbuf = realloc(c->wbuf, c->wcap)) == NULL) {
			fputs("cached-bench: out of memory\n", stderr);
			exit(2);
		}
	}
	return c->wbuf + c->wlen;
}

/* Writes v in decimal at p; returns the end. */
static char *
put_u64(char *p, uint64_t v)
{
	return p + proto_fmt_u64(p, v);
}

/* Writes the key with index k at p; returns the end. */
static char *
put_key(const struct bench_cfg *cfg, char *p, uint64_t k)
{
	size_t	n = strlen(cfg->prefix);

	memcpy(p, cfg->prefix, n);
	return put_u64(p + n, k);
}

/* Appends a ring entry for a request just composed. */
static struct bench_req *
ring_push(struct bench_conn *c, enum bench_req_kind kind, unsigned nkeys,
    uint64_t t_sent)
{
	struct bench_req *r = &c->ring[(c->head + c->count) % c->cap];

	r->kind = (uint8_t)kind;
	r->nkeys = (uint16_t)nkeys;
	r->t_sent = t_sent;
	c->count++;
	c->unsent++;
	if (t_sent == 0)
		c->unstamped++;
	return r;
}

/* Writes the meta get of n keys at p: one "mg", or quiet ones and "mn". */
static char *
put_mg(const struct bench_cfg *cfg, char *p, const uint64_t *keys,
    unsigned n)
{
	static const char one[] = " v f\r\n", quiet[] = " v f k q\r\n";
	unsigned i;

	for (i = 0; i < n; i++) {
		memcpy(p, "mg ", 3);
		p = put_key(cfg, p + 3, keys[i]);
		if (n == 1) {
			memcpy(p, one, sizeof one - 1);
			return p + sizeof one - 1;
		}
		memcpy(p, quiet, sizeof quiet - 1);
		p += sizeof quiet - 1;
	}
	memcpy(p, "mn\r\n", 4);
	return p + 4;
}

/* Writes a binary request header at p for a body of extlen + keylen +
 * vlen bytes; returns the end. */
static char *
put_bin_header(char *p, uint8_t opcode, size_t keylen, uint8_t extlen,
    size_t vlen)
{
	uint32_t body = (uint32_t)(extlen + keylen + vlen);

	memset(p, 0, 24);
	p[0] = (char)0x80;
	p[1] = (char)opcode;
	p[2] = (char)(keylen >> 8);
	p[3] = (char)keylen;
	p[4] = (char)extlen;
	p[8] = (char)(body >> 24);
	p[9] = (char)(body >> 16);
	p[10] = (char)(body >> 8);
	p[11] = (char)body;
	return p + 24;
}

/* Writes a binary request with a key and no extras at p: the key is
 * written after the header, then the header filled in. */
static char *
put_bin_keyed(const struct bench_cfg *cfg, char *p, uint8_t opcode,
    uint64_t key)
{
	char	*end = put_key(cfg, p + 24, key);

	put_bin_header(p, opcode, (size_t)(end - p - 24), 0, 0);
	return end;
}

/* Writes the binary get of n keys at p: one GET, or GETKQs and a NOOP. */
static char *
put_bin_get(const struct bench_cfg *cfg, char *p, const uint64_t *keys,
    unsigned n)
{
	unsigned i;

	if (n == 1)
		return put_bin_keyed(cfg, p, BIN_GET, keys[0]);
	for (i = 0; i < n; i++)
		p = put_bin_keyed(cfg, p, BIN_GETKQ, keys[i]);
	return put_bin_header(p, BIN_NOOP, 0, 0, 0);
}

/* Writes one binary SET (or SETQ) of key with len value bytes at p. */
static char *
put_bin_set(const struct bench_cfg *cfg, char *p, uint8_t opcode,
    uint64_t key, uint32_t ttl, uint32_t len)
{
	char	*k = p + 24 + 8, *end = put_key(cfg, k, key);
	size_t	 klen = (size_t)(end - k);

	put_bin_header(p, opcode, klen, 8, len);
	memset(p + 24, 0, 4);			/* flags */
	p[28] = (char)(ttl >> 24);
	p[29] = (char)(ttl >> 16);
	p[30] = (char)(ttl >> 8);
	p[31] = (char)ttl;
	memcpy(end, cfg->value, len);
	return end + len;
}

/* Queues "get k1 k2 ..." or its meta or binary form: t_sent 0 means stamp
 * it when written. */
void
bench_conn_put_get(struct bench_conn *c, const uint64_t *keys, unsigned n,
    uint64_t t_sent)
{
	size_t		 klen = strlen(c->cfg->prefix) + 21;
	char		*p, *start;
	unsigned	 i, slot = (c->head + c->count) % c->cap;

	start = p = wreserve(c, 32 + (size_t)n * (klen + 24));
	if (c->cfg->binary)
		p = put_bin_get(c->cfg, p, keys, n);
	else if (c->cfg->meta)
		p = put_mg(c->cfg, p, keys, n);
	else {
		memcpy(p, "get", 3);
		p += 3;
		for (i = 0; i < n; i++) {
			*p++ = ' ';
			p = put_key(c->cfg, p, keys[i]);
		}
		*p++ = '\r';
		*p++ = '\n';
	}
	c->wlen += (size_t)(p - start);
	if (c->ring_keys != NULL)
		memcpy(c->ring_keys + (size_t)slot * c->cfg->keys_per_get, keys,
		    n * sizeof *keys);
	ring_push(c, REQ_GET, n, t_sent);
}

/* Picks a TTL from the configured mix. */
static uint32_t
pick_ttl(struct bench_conn *c)
{
	const struct bench_cfg	*cfg = c->cfg;
	double			 x;
	unsigned		 i;

	if (cfg->nttls == 1)
		return cfg->ttls[0].ttl;
	x = bench_rng_double(&c->rng) * cfg->ttl_total;
	for (i = 0; i + 1 < cfg->nttls; i++) {
		if (x < cfg->ttls[i].weight)
			break;
		x -= cfg->ttls[i].weight;
	}
	return cfg->ttls[i].ttl;
}

/* Queues "set key 0 ttl n" or "ms key n Tttl" with a value of the
 * configured size. */
void
bench_conn_put_set(struct bench_conn *c, uint64_t key, enum bench_req_kind kind,
    uint64_t t_sent)
{
	const struct bench_cfg	*cfg = c->cfg;
	uint32_t		 len = cfg->vmin;
	char			*p, *start;
	unsigned		 i, batch = kind == REQ_SET ? cfg->set_batch : 1;

	if (cfg->vmax > cfg->vmin)
		len += (uint32_t)bench_rng_below(&c->rng, cfg->vmax - cfg->vmin + 1);
	start = p = wreserve(c, (strlen(cfg->prefix) + 64 + len) * batch + 24);
	if (cfg->binary && batch > 1) {
		/* the batch's other keys follow the first one */
		for (i = 0; i < batch; i++)
			p = put_bin_set(cfg, p, BIN_SETQ,
			    (key + i) % cfg->key_space, pick_ttl(c), len);
		p = put_bin_header(p, BIN_NOOP, 0, 0, 0);
		c->wlen += (size_t)(p - start);
		ring_push(c, kind, batch, t_sent);
		return;
	}
	if (cfg->binary) {
		p = put_bin_set(cfg, p, BIN_SET, key, pick_ttl(c), len);
		c->wlen += (size_t)(p - start);
		ring_push(c, kind, 1, t_sent);
		return;
	}
	if (cfg->meta) {
		memcpy(p, "ms ", 3);
		p = put_key(cfg, p + 3, key);
		*p++ = ' ';
		p = put_u64(p, len);
		memcpy(p, " T", 2);
		p = put_u64(p + 2, pick_ttl(c));
	} else {
		memcpy(p, "set ", 4);
		p = put_key(cfg, p + 4, key);
		memcpy(p, " 0 ", 3);
		p = put_u64(p + 3, pick_ttl(c));
		*p++ = ' ';
		p = put_u64(p, len);
	}
	*p++ = '\r';
	*p++ = '\n';
	memcpy(p, cfg->value, len);
	p += len;
	*p++ = '\r';
	*p++ = '\n';
	c->wlen += (size_t)(p - start);
	ring_push(c, kind, 1, t_sent);
}

/* Takes the oldest key waiting for a set after a miss; 0 if there is one. */
int
bench_conn_pop_miss(struct bench_conn *c, uint64_t *key)
{
	if (c->mq_count == 0)
		return -1;
	*key = c->missq[c->mq_head];
	c->mq_head = (c->mq_head + 1) % c->mq_cap;
	c->mq_count--;
	return 0;
}

/* Remembers a key that missed, unless the queue is full. */
static void
push_miss(struct bench_conn *c, uint64_t key)
{
	if (c->mq_count == c->mq_cap)
		return;
	c->missq[(c->mq_head + c->mq_count) % c->mq_cap] = key;
	c->mq_count++;
}

/* Stamps closed-loop requests about to be written with now, and records
 * how late paced ones are. */
static void
stamp(struct bench_conn *c)
{
	uint64_t	now = bench_now();
	unsigned	i;

	for (i = c->count - c->unsent; i < c->count; i++) {
		struct bench_req *r = &c->ring[(c->head + i) % c->cap];

		if (i >= c->count - c->unstamped)
			r->t_sent = now;
		else
			bench_hist_record(&c->st->lag, now > r->t_sent ?
			    now - r->t_sent : 0);
	}
	c->unsent = c->unstamped = 0;
}

/* Maps a failed TLS read or write to -1 with errno (EAGAIN to wait), or 0
 * at the server's close. */
static ssize_t
tls_failed(struct bench_conn *c)
{
	switch (SSL_get_error(c->ssl, 0)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

/* send(2), or SSL_write with --tls. */
static ssize_t
conn_send(struct bench_conn *c, const char *p, size_t n)
{
	size_t done;

	if (c->ssl == NULL)
		return send(c->fd, p, n, MSG_NOSIGNAL);
	ERR_clear_error();
	if (SSL_write_ex(c->ssl, p, n, &done) == 1)
		return (ssize_t)done;
	return tls_failed(c) == 0 ? (errno = EPIPE, -1) : -1;
}

/* read(2), or SSL_read with --tls. */
static ssize_t
conn_recv(struct bench_conn *c, char *p, size_t n)
{
	size_t done;

	if (c->ssl == NULL)
		return read(c->fd, p, n);
	ERR_clear_error();
	if (SSL_read_ex(c->ssl, p, n, &done) == 1)
		return (ssize_t)done;
	return tls_failed(c);
}

/* Writes pending output, stamping new requests first; 0 or -1. */
int
bench_conn_flush(struct bench_conn *c)
{
	ssize_t	n;

	if (c->unsent > 0)
		stamp(c);
	while (c->woff < c->wlen) {
		n = conn_send(c, c->wbuf + c->woff, c->wlen - c->woff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->want_out = 1;
			return 0;
		}
		if (n < 0) {
			snprintf(c->err, sizeof c->err, "send: %s",
			    strerror(errno));
			return -1;
		}
		c->woff += (size_t)n;
	}
	c->woff = c->wlen = 0;
	c->want_out = 0;
	return 0;
}

/* Retires the oldest request, recording its latency. */
static void
complete(struct bench_conn *c, uint64_t now)
{
	struct bench_req	*r = &c->ring[c->head];
	struct bench_stats	*st = c->st;
	uint64_t		 lat = now > r->t_sent ? now - r->t_sent : 0;

	switch (r->kind) {
	case REQ_GET:
		st->gets++;
		st->get_keys += r->nkeys;
		st->hits += c->hits;
		bench_hist_record(&st->lat_get, lat);
		break;
	case REQ_SET:
		st->sets += r->nkeys;
		bench_hist_record(&st->lat_set, lat);
		break;
	case REQ_MISS_SET:
		st->miss_sets++;
		bench_hist_record(&st->lat_set, lat);
		break;
	default:
		st->preloads++;
		break;
	}
	c->hits = 0;
	c->batch_errs = 0;
	c->head = (c->head + 1) % c->cap;
	c->count--;
}

/* Parses the key index out of a VALUE line's key; -1 if not ours. */
static int
key_index(const struct bench_cfg *cfg, const char *k, size_t len,
    uint64_t *out)
{
	size_t		n = strlen(cfg->prefix), i;
	uint64_t	v = 0;

	if (len <= n || memcmp(k, cfg->prefix, n) != 0)
		return -1;
	for (i = n; i < len; i++) {
		if (k[i] < '0' || k[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(k[i] - '0');
	}
	*out = v;
	return 0;
}

/* Marks the requested key named in a VALUE line as found. */
static void
mark_found(struct bench_conn *c, const char *key, size_t klen)
{
	const struct bench_req	*r = &c->ring[c->head];
	const uint64_t		*keys;
	uint64_t		 k;
	unsigned		 i;

	if (key_index(c->cfg, key, klen, &k) != 0)
		return;
	keys = c->ring_keys + (size_t)c->head * c->cfg->keys_per_get;
	for (i = 0; i < r->nkeys; i++)
		if (!c->found[i] && keys[i] == k) {
			c->found[i] = 1;
			return;
		}
}

/* Queues a set for every key of the finished get that was not found. */
static void
queue_misses(struct bench_conn *c)
{
	const struct bench_req	*r = &c->ring[c->head];
	const uint64_t		*keys;
	unsigned		 i;

	keys = c->ring_keys + (size_t)c->head * c->cfg->keys_per_get;
	for (i = 0; i < r->nkeys; i++) {
		if (!c->found[i])
			push_miss(c, keys[i]);
		c->found[i] = 0;
	}
}

/* Starts skipping the value of a VALUE element for the oldest request. */
static void
on_value(struct bench_conn *c, const struct proto_resp *r)
{
	c->hits++;
	if (c->found != NULL)
		mark_found(c, r->key, r->nkey);
	c->in_data = 1;
	c->data_left = (uint64_t)r->nbytes + 2;
}

/* Says that reply r was not expected for the oldest request q. */
static int
unexpected(struct bench_conn *c, const struct bench_req *q,
    const struct proto_resp *r)
{
	snprintf(c->err, sizeof c->err, "unexpected reply to a%s %s: %s",
	    c->cfg->meta ? " meta" : "", q->kind == REQ_GET ? "get" : "set",
	    proto_resp_kind_name(r->kind));
	return -1;
}

/* Handles one meta reply element for the oldest request q (not an error
 * line); -1 when it does not answer q. */
static int
on_meta(struct bench_conn *c, const struct bench_req *q,
    const struct proto_resp *r, uint64_t now)
{
	int batch = q->kind == REQ_GET && q->nkeys > 1;

	if (q->kind != REQ_GET) {
		if (r->kind == PROTO_RESP_NS || r->kind == PROTO_RESP_EX ||
		    r->kind == PROTO_RESP_NF)
			c->st->not_stored++;
		else if (r->kind != PROTO_RESP_HD)
			return unexpected(c, q, r);
		complete(c, now);
		return 0;
	}
	if (r->kind == PROTO_RESP_VA && (!batch || r->key != NULL)) {
		c->hits++;
		if (c->found != NULL && batch)
			mark_found(c, r->key, r->nkey);
		else if (c->found != NULL)
			c->found[0] = 1;
		c->in_data = 1;
		c->data_left = (uint64_t)r->nbytes + 2;
		c->done_after_data = !batch;
		return 0;
	}
	if ((batch && r->kind == PROTO_RESP_MN) ||
	    (!batch && r->kind == PROTO_RESP_EN)) {
		if (c->found != NULL)
			queue_misses(c);
		complete(c, now);
		return 0;
	}
	return unexpected(c, q, r);
}

/* Handles one reply element for the oldest request; -1 when it does not
 * answer that request. */
static int
on_element(struct bench_conn *c, const struct proto_resp *r, uint64_t now)
{
	const struct bench_req	*q = &c->ring[c->head];

	if (c->count == 0) {
		snprintf(c->err, sizeof c->err, "reply with no request: %s",
		    proto_resp_kind_name(r->kind));
		return -1;
	}
	if (proto_resp_is_error(r->kind) && c->cfg->meta &&
	    q->kind == REQ_GET && q->nkeys > 1 && ++c->batch_errs <= q->nkeys) {
		c->st->errors++;	/* one mg of the batch; MN still ends it */
		return 0;
	}
	if (proto_resp_is_error(r->kind)) {
		c->st->errors++;
		if (q->kind == REQ_GET && c->found != NULL)
			memset(c->found, 0, c->cfg->keys_per_get);
		complete(c, now);
		return 0;
	}
	if (c->cfg->meta)
		return on_meta(c, q, r, now);
	if (q->kind == REQ_GET && r->kind == PROTO_RESP_VALUE) {
		on_value(c, r);
		return 0;
	}
	if (q->kind == REQ_GET && r->kind == PROTO_RESP_END) {
		if (c->found != NULL)
			queue_misses(c);
		complete(c, now);
		return 0;
	}
	if (q->kind != REQ_GET && r->kind == PROTO_RESP_STORED) {
		complete(c, now);
		return 0;
	}
	if (q->kind != REQ_GET && (r->kind == PROTO_RESP_NOT_STORED ||
	    r->kind == PROTO_RESP_EXISTS || r->kind == PROTO_RESP_NOT_FOUND)) {
		c->st->not_stored++;
		complete(c, now);
		return 0;
	}
	return unexpected(c, q, r);
}

/* Skips value bytes at rbuf[*pos, rlen); the last two must be "\r\n" and
 * are only taken together, and end a single mg's reply.  0, or -1 when
 * they are something else. */
static int
skip_data(struct bench_conn *c, size_t *pos, uint64_t now)
{
	size_t	avail = c->rlen - *pos, skip;

	if (c->data_left > 2) {
		skip = avail < c->data_left - 2 ? avail :
		    (size_t)(c->data_left - 2);
		*pos += skip;
		c->data_left -= skip;
		return 0;
	}
	if (avail < 2)
		return 0;
	if (memcmp(c->rbuf + *pos, "\r\n", 2) != 0) {
		snprintf(c->err, sizeof c->err, "value not ended by CRLF");
		return -1;
	}
	*pos += 2;
	c->data_left = 0;
	c->in_data = 0;
	if (c->done_after_data) {
		c->done_after_data = 0;
		if (c->found != NULL)
			queue_misses(c);
		complete(c, now);
	}
	return 0;
}

/* Says what the bad reply line at p (avail bytes) was. */
static void
bad_reply(struct bench_conn *c, const char *p, size_t avail)
{
	size_t n = 0;

	while (n < avail && n < 60 && p[n] != '\r' && p[n] != '\n')
		n++;
	snprintf(c->err, sizeof c->err, "unexpected reply: %.*s", (int)n, p);
}

/* Handles one binary reply head for the oldest request; -1 when it does
 * not answer that request. */
static int
on_bin(struct bench_conn *c, const struct proto_resp_bin *r, uint64_t now)
{
	const struct bench_req	*q = &c->ring[c->head];
	int			 batch;

	if (c->count == 0) {
		snprintf(c->err, sizeof c->err, "binary reply (opcode %#x) with "
		    "no request", r->opcode);
		return -1;
	}
	batch = q->nkeys > 1 || (q->kind == REQ_SET && c->cfg->set_batch > 1);
	if (batch && r->opcode == BIN_NOOP) {
		if (q->kind == REQ_GET && c->found != NULL)
			queue_misses(c);
		complete(c, now);
		return 0;
	}
	if (batch && q->kind == REQ_GET && r->opcode == BIN_GETKQ &&
	    r->status == 0) {
		c->hits++;
		if (c->found != NULL)
			mark_found(c, r->key, r->keylen);
		return 0;
	}
	if (batch) {
		c->st->errors++;	/* one GETKQ/SETQ failed; NOOP ends it */
		return 0;
	}
	if (q->kind == REQ_GET && r->opcode == BIN_GET &&
	    (r->status == 0 || r->status == 1)) {
		if (r->status == 0) {
			c->hits++;
			if (c->found != NULL)
				c->found[0] = 1;
		}
		if (c->found != NULL)
			queue_misses(c);
		complete(c, now);
		return 0;
	}
	if (q->kind != REQ_GET && r->opcode == BIN_SET) {
		if (r->status == 1 || r->status == 2 || r->status == 5)
			c->st->not_stored++;
		else if (r->status != 0)
			c->st->errors++;
		complete(c, now);
		return 0;
	}
	if (r->status != 0) {
		c->st->errors++;
		if (q->kind == REQ_GET && c->found != NULL)
			memset(c->found, 0, c->cfg->keys_per_get);
		complete(c, now);
		return 0;
	}
	snprintf(c->err, sizeof c->err, "unexpected binary reply (opcode "
	    "%#x) to a %s", r->opcode, q->kind == REQ_GET ? "get" : "set");
	return -1;
}

/* Consumes rbuf[0, rlen) in the binary protocol: reply heads, then their
 * values skipped unbuffered; -1 on bad framing. */
static int
parse_bin(struct bench_conn *c, uint64_t now)
{
	struct proto_resp_bin	r;
	size_t			pos = 0, used, skip;

	while (pos < c->rlen) {
		if (c->data_left > 0) {
			skip = c->rlen - pos < c->data_left ? c->rlen - pos :
			    (size_t)c->data_left;
			pos += skip;
			c->data_left -= skip;
			continue;
		}
		switch (proto_resp_parse_bin_head(c->rbuf + pos, c->rlen - pos,
		    &r, &used)) {
		case PROTO_RESP_NEED_MORE:
			goto out;
		case PROTO_RESP_BAD:
			snprintf(c->err, sizeof c->err, "bad binary reply "
			    "header (magic %#x)", (uint8_t)c->rbuf[pos]);
			return -1;
		case PROTO_RESP_OK:
			if (on_bin(c, &r, now) != 0)
				return -1;
			pos += used;
			c->data_left = r.nvalue;
			break;
		}
	}
out:
	memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
	c->rlen -= pos;
	return 0;
}

/* Consumes rbuf[0, rlen): reply elements through proto_resp_parse_head and
 * value bytes, which are skipped unbuffered; -1 on bad framing. */
static int
parse(struct bench_conn *c, uint64_t now)
{
	struct proto_resp	r;
	size_t			pos = 0, used, before;

	if (c->cfg->binary)
		return parse_bin(c, now);

	while (pos < c->rlen) {
		before = pos;
		if (c->in_data) {
			if (skip_data(c, &pos, now) != 0)
				return -1;
		} else {
			switch (proto_resp_parse_head(c->rbuf + pos,
			    c->rlen - pos, &r, &used)) {
			case PROTO_RESP_NEED_MORE:
				break;
			case PROTO_RESP_BAD:
				bad_reply(c, c->rbuf + pos, c->rlen - pos);
				return -1;
			case PROTO_RESP_OK:
				if (on_element(c, &r, now) != 0)
					return -1;
				pos += used;
				break;
			}
		}
		if (pos == before)
			break;	/* need more bytes */
	}
	memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
	c->rlen -= pos;
	return 0;
}

/*
 * Reads once (the socket was readable) and handles every complete reply,
 * timing them all at the moment the read returned.  Returns the number of
 * requests completed, or -1 when the server closed the connection or broke
 * the framing.
 */
int
bench_conn_read(struct bench_conn *c)
{
	unsigned	before = c->count;
	ssize_t		n;

	do {
		do
			n = conn_recv(c, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			snprintf(c->err, sizeof c->err, "%s", n == 0 ?
			    "server closed the connection" : strerror(errno));
			return -1;
		}
		c->rlen += (size_t)n;
		if (parse(c, bench_now()) != 0)
			return -1;
	} while (c->ssl != NULL && SSL_pending(c->ssl) > 0);
	return (int)(before - c->count);
}
