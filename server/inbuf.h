/*
 * inbuf.h -- a connection's input: the read buffer command lines are
 * parsed from in place, and the streaming of a value being stored into
 * its item's memory.
 *
 * Data structure: buf[pos .. len) holds bytes not yet consumed, in a
 * buffer of `size` bytes that grows for long lines (up to INBUF_MAX) and
 * shrinks back once empty.  While a value is due, `dst`/`left` say where
 * its remaining bytes go (item memory) and end[0 .. end_got) collects the
 * 2 bytes that follow it, which the protocol says must be "\r\n"; the
 * value itself never passes through buf once buf is empty: reads go
 * straight into the item.  `swallow` counts bytes of a refused value
 * still to be discarded.
 *
 * Belongs to one connection and so to one thread; no locking.
 */
#ifndef CACHED_INBUF_H
#define CACHED_INBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define INBUF_INITIAL	(16 * 1024)

struct inbuf {
	char	*buf;
	size_t	 size;
	size_t	 pos;
	size_t	 len;
	size_t	 max;		/* the most buf may grow to */

	char	*dst;		/* value bytes still due go here */
	size_t	 left;
	char	 end[2];	/* then the 2 bytes after the value */
	size_t	 end_got;
	size_t	 end_want;	/* 2, or 0 for a bare (binary) value */
	size_t	 swallow;	/* bytes of a refused value to discard */
};

/* Sets up an empty buffer that may grow to max bytes; false when memory
 * ran out. */
bool	inbuf_init(struct inbuf *in, size_t max);
/* Frees the buffer. */
void	inbuf_free(struct inbuf *in);
/* Bytes buffered and not yet consumed. */
size_t	inbuf_avail(const struct inbuf *in);

/* Starts streaming a value of n bytes into dst, then its 2-byte end. */
void	inbuf_start_value(struct inbuf *in, char *dst, size_t n);
/* As inbuf_start_value for a value with nothing after it (binary). */
void	inbuf_start_bare_value(struct inbuf *in, char *dst, size_t n);
/* Moves buffered bytes into the value being streamed; false when none
 * were buffered. */
bool	inbuf_feed_value(struct inbuf *in);
/* True once the value and the 2 bytes after it have all arrived. */
bool	inbuf_value_done(const struct inbuf *in);

/* Starts discarding n bytes of input. */
void	inbuf_start_swallow(struct inbuf *in, size_t n);
/* Discards buffered bytes of a refused value; false when none were
 * buffered. */
bool	inbuf_feed_swallow(struct inbuf *in);

/*
 * Reads once from fd: into item memory while a value is due and nothing
 * is buffered, else into the buffer (making room first).  Returns the
 * bytes read, 0 at end of file, -1 when it would block, -2 on an error or
 * a buffer full of a line that may not grow.  *drained is set when the
 * read did not fill the space offered, so the socket is most likely empty.
 */
ssize_t	inbuf_read(struct inbuf *in, int fd, bool *drained);
/* Shrinks a buffer that grew for a long line once it is empty. */
void	inbuf_shrink(struct inbuf *in);

#endif
