/*
 * inbuf.c -- a connection's input buffer and value streaming (inbuf.h).
 *
 * Values stream into item memory: bytes already buffered are copied, and
 * once the buffer is empty the socket is read straight into the item with
 * the 2-byte terminator read alongside into `end`.  When only (part of)
 * the terminator is still due, reads go to the buffer instead: a 1- or
 * 2-byte read would cost a system call before the next request.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "inbuf.h"

/* Sets up an empty buffer that may grow to max bytes. */
bool
inbuf_init(struct inbuf *in, size_t max)
{
	memset(in, 0, sizeof *in);
	in->max = max < INBUF_INITIAL ? INBUF_INITIAL : max;
	in->size = INBUF_INITIAL;
	return (in->buf = malloc(in->size)) != NULL;
}

/* Frees the buffer. */
void
inbuf_free(struct inbuf *in)
{
	free(in->buf);
	in->buf = NULL;
}

/* Bytes buffered and not yet consumed. */
size_t
inbuf_avail(const struct inbuf *in)
{
	return in->len - in->pos;
}

/* Starts streaming a value of n bytes into dst, then its 2-byte end. */
void
inbuf_start_value(struct inbuf *in, char *dst, size_t n)
{
	in->dst = dst;
	in->left = n;
	in->end_got = 0;
	in->end_want = sizeof in->end;
}

/* Starts streaming a value of n bytes into dst with no end after it. */
void
inbuf_start_bare_value(struct inbuf *in, char *dst, size_t n)
{
	inbuf_start_value(in, dst, n);
	in->end_want = 0;
}

/* True once the value and the 2 bytes after it have all arrived. */
bool
inbuf_value_done(const struct inbuf *in)
{
	return in->left == 0 && in->end_got == in->end_want;
}

/* Accounts for n bytes that landed at dst (value bytes first) and then
 * in end. */
static void
inbuf_value_advance(struct inbuf *in, size_t n)
{
	size_t v = n < in->left ? n : in->left;

	in->dst += v;
	in->left -= v;
	in->end_got += n - v;
}

/* Moves buffered bytes into the value being streamed. */
bool
inbuf_feed_value(struct inbuf *in)
{
	size_t	 n = inbuf_avail(in);
	size_t	 want = in->left + in->end_want - in->end_got;
	size_t	 v;
	char	*src = in->buf + in->pos;

	if (n == 0)
		return false;
	if (n > want)
		n = want;
	v = n < in->left ? n : in->left;
	if (v > 0)
		memcpy(in->dst, src, v);
	if (n > v)
		memcpy(in->end + in->end_got, src + v, n - v);
	in->pos += n;
	inbuf_value_advance(in, n);
	return true;
}

/* Starts discarding n bytes of input. */
void
inbuf_start_swallow(struct inbuf *in, size_t n)
{
	in->swallow = n;
}

/* Discards buffered bytes of a refused value. */
bool
inbuf_feed_swallow(struct inbuf *in)
{
	size_t n = inbuf_avail(in);

	if (n == 0)
		return false;
	if (n > in->swallow)
		n = in->swallow;
	in->pos += n;
	in->swallow -= n;
	return true;
}

/* Gives the buffer room for more input; false if it is full and may not
 * grow (the parser closes over-long lines before that). */
static bool
inbuf_room(struct inbuf *in)
{
	char	*p;
	size_t	 size;

	if (in->pos == in->len)
		in->pos = in->len = 0;
	if (in->pos > 0 && (in->len == in->size || in->pos >= in->size / 2)) {
		memmove(in->buf, in->buf + in->pos, in->len - in->pos);
		in->len -= in->pos;
		in->pos = 0;
	}
	if (in->len < in->size)
		return true;
	if (in->size >= in->max)
		return false;
	size = in->size * 2 > in->max ? in->max : in->size * 2;
	if ((p = realloc(in->buf, size)) == NULL)
		return false;
	in->buf = p;
	in->size = size;
	return true;
}

/* Shrinks a buffer that grew for a long line once it is empty. */
void
inbuf_shrink(struct inbuf *in)
{
	char *p;

	if (in->size > INBUF_INITIAL && in->pos == in->len &&
	    (p = realloc(in->buf, INBUF_INITIAL)) != NULL) {
		in->buf = p;
		in->size = INBUF_INITIAL;
		in->pos = in->len = 0;
	}
}

/* Reads once from fd, into item memory or the buffer. */
ssize_t
inbuf_read(struct inbuf *in, int fd, bool *drained)
{
	struct iovec	v[2];
	ssize_t		n;
	size_t		cap;
	bool		direct = in->left > 0 && in->pos == in->len;

	if (direct) {
		v[0].iov_base = in->dst;
		v[0].iov_len = in->left;
		v[1].iov_base = in->end + in->end_got;
		v[1].iov_len = in->end_want - in->end_got;
		cap = v[0].iov_len + v[1].iov_len;
	} else {
		if (!inbuf_room(in))
			return -2;
		v[0].iov_base = in->buf + in->len;
		v[0].iov_len = in->size - in->len;
		cap = v[0].iov_len;
	}
	do
		n = direct ? readv(fd, v, 2) : read(fd, v[0].iov_base,
		    v[0].iov_len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : -2;
	if (n == 0)
		return 0;
	*drained = (size_t)n < cap;
	if (direct)
		inbuf_value_advance(in, (size_t)n);
	else
		in->len += (size_t)n;
	return n;
}
