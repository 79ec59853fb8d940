/*
 * outq.c -- a connection's output queue (outq.h): copied reply text in
 * owned chunks, large values by reference, sent with writev.
 *
 * Data structure: iov[pos .. n) is what is still to be sent, ref[i] the
 * reference (or NULL) behind iov[i].  Chunks form a list; cur is the one
 * being filled.  Once everything is written the queue resets and keeps
 * its first chunk for the next replies, so a connection that answers
 * small requests allocates nothing per request.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"

#define CHUNK_SIZE	(16 * 1024)
#define IOV_BATCH	1024	/* iovecs per writev (IOV_MAX on Linux) */

struct outq_chunk {
	struct outq_chunk	*next;
	size_t			 used;
	size_t			 size;
	char			 data[];
};

/* Sets up an empty queue that hands references back through release. */
void
outq_init(struct outq *q, outq_release_fn release, void *ctx)
{
	memset(q, 0, sizeof *q);
	q->release = release;
	q->release_ctx = ctx;
}

/* Releases the references still queued and empties the queue, keeping
 * its first chunk. */
static void
outq_reset(struct outq *q)
{
	struct outq_chunk *ch, *next;

	for (size_t i = q->pos; i < q->n; i++)
		if (q->ref[i] != NULL)
			q->release(q->release_ctx, q->ref[i]);
	q->n = q->pos = 0;
	q->pending = 0;
	if (q->head != NULL) {
		for (ch = q->head->next; ch != NULL; ch = next) {
			next = ch->next;
			free(ch);
		}
		q->head->next = NULL;
		q->head->used = 0;
		q->cur = q->head;
	}
}

/* Releases every reference still queued and frees all memory. */
void
outq_free(struct outq *q)
{
	outq_reset(q);
	free(q->head);
	free(q->iov);
	free(q->ref);
	q->head = q->cur = NULL;
	q->iov = NULL;
	q->ref = NULL;
	q->cap = 0;
}

/* Makes room for `more` iovecs; false (and failed) when memory ran out. */
static bool
outq_grow(struct outq *q, size_t more)
{
	struct iovec	 *iov;
	void		**ref;
	size_t		  cap;

	if (q->cap - q->n >= more)
		return true;
	cap = q->cap == 0 ? 64 : q->cap * 2;
	while (cap - q->n < more)
		cap *= 2;
	if ((iov = realloc(q->iov, cap * sizeof *iov)) == NULL)
		goto fail;
	q->iov = iov;
	if ((ref = realloc(q->ref, cap * sizeof *ref)) == NULL)
		goto fail;
	q->ref = ref;
	q->cap = cap;
	return true;
fail:
	q->failed = true;
	return false;
}

/* Returns room for n bytes of reply text in the current chunk. */
char *
outq_space(struct outq *q, size_t n)
{
	struct outq_chunk	*ch = q->cur;
	size_t			 size;

	if (q->failed)
		return NULL;
	if (ch != NULL && ch->size - ch->used >= n)
		return ch->data + ch->used;
	if (ch != NULL && ch->next != NULL && ch->next->size >= n) {
		q->cur = ch->next;
		q->cur->used = 0;
		return q->cur->data;
	}
	size = n > CHUNK_SIZE ? n : CHUNK_SIZE;
	if ((ch = malloc(sizeof *ch + size)) == NULL) {
		q->failed = true;
		return NULL;
	}
	ch->next = NULL;
	ch->used = 0;
	ch->size = size;
	if (q->cur == NULL)
		q->head = ch;
	else {
		ch->next = q->cur->next;
		q->cur->next = ch;
	}
	q->cur = ch;
	return ch->data;
}

/* Queues the first `used` bytes of the space outq_space returned. */
void
outq_commit(struct outq *q, size_t used)
{
	struct outq_chunk	*ch = q->cur;
	char			*p;
	struct iovec		*last;

	if (q->failed || used == 0)
		return;
	p = ch->data + ch->used;
	ch->used += used;
	q->pending += used;
	/* Text that directly follows the previous copy extends its iovec. */
	if (q->n > q->pos) {
		last = &q->iov[q->n - 1];
		if (q->ref[q->n - 1] == NULL &&
		    (char *)last->iov_base + last->iov_len == p) {
			last->iov_len += used;
			return;
		}
	}
	if (!outq_grow(q, 1))
		return;
	q->iov[q->n].iov_base = p;
	q->iov[q->n].iov_len = used;
	q->ref[q->n] = NULL;
	q->n++;
}

/* Queues a copy of n bytes; false once failed. */
bool
outq_copy(struct outq *q, const char *s, size_t n)
{
	char *p;

	if ((p = outq_space(q, n)) == NULL)
		return false;
	memcpy(p, s, n);
	outq_commit(q, n);
	return true;
}

/* Queues n bytes at data by reference; ref is released once written. */
void
outq_ref(struct outq *q, const char *data, size_t n, void *ref)
{
	if (n == 0 || q->failed || !outq_grow(q, 1)) {
		q->release(q->release_ctx, ref);
		return;
	}
	q->iov[q->n].iov_base = (void *)data;
	q->iov[q->n].iov_len = n;
	q->ref[q->n] = ref;
	q->n++;
	q->pending += n;
}

/* Retires the iovecs that n written bytes covered, trimming a partly
 * written one and releasing the references of the finished ones. */
static void
outq_advance(struct outq *q, size_t n)
{
	q->pending -= n;
	q->written += n;
	while (q->pos < q->n) {
		struct iovec *v = &q->iov[q->pos];

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		if (q->ref[q->pos] != NULL) {
			q->release(q->release_ctx, q->ref[q->pos]);
			q->ref[q->pos] = NULL;
		}
		q->pos++;
	}
}

/* Writes what is queued until it is all sent or the writer would block. */
bool
outq_flush(struct outq *q, outq_write_fn write, void *ctx)
{
	ssize_t	n;
	size_t	cnt;

	while (q->pos < q->n) {
		cnt = q->n - q->pos;
		if (cnt > IOV_BATCH)
			cnt = IOV_BATCH;
		n = write(ctx, q->iov + q->pos, (int)cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		if (n == 0)
			break;
		outq_advance(q, (size_t)n);
	}
	if (q->pos == q->n)
		outq_reset(q);
	return true;
}

/* True when everything queued has been written. */
bool
outq_empty(const struct outq *q)
{
	return q->pos == q->n;
}

/* True when producers should stop: over the soft limit. */
bool
outq_full(const struct outq *q)
{
	return q->pending >= OUTQ_SOFT_LIMIT;
}
