/*
 * warm_input.c -- reads a manifest line by line with bounded memory: the
 * buffer grows to the longest line seen, never past max_line, whatever
 * the size of the input.
 *
 * Data structure: one buffer; bytes [start, end) are read but not yet
 * handed out, and [start, scanned) are known to hold no newline.  A line
 * longer than max_line is dropped up to its newline and reported once.
 * A last line without a newline is handed out as WI_NO_NEWLINE, since a
 * generator that died mid-write leaves exactly that.  One spare byte past
 * the data lets the caller write a terminator after the line.  Used by
 * one thread; no locking.
 */
#include "config.h"

#include "warm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK	65536

struct wi_reader {
	int		 fd;
	char		*buf;
	size_t		 cap;
	size_t		 start, scanned, end;
	size_t		 max_line;
	unsigned long	 lineno;
	uint64_t	 offset;	/* bytes read from fd */
	bool		 eof;
	bool		 dropping;	/* inside a line that is too long */
};

/* Creates a reader. */
struct wi_reader *
warm_input_open(int fd, size_t max_line)
{
	struct wi_reader *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->fd = fd;
	r->max_line = max_line;
	r->cap = CHUNK;
	if ((r->buf = malloc(r->cap)) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

/* Frees the reader. */
void
warm_input_close(struct wi_reader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

/* Returns the number of bytes read so far. */
uint64_t
warm_input_offset(const struct wi_reader *r)
{
	return r->offset;
}

/* Moves pending bytes to the front and grows the buffer if it is full. */
static int
make_room(struct wi_reader *r)
{
	size_t	 limit = r->max_line + 2, ncap;
	char	*nbuf;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->scanned -= r->start;
		r->start = 0;
	}
	if (r->end + 1 < r->cap || r->cap >= limit)
		return 0;
	ncap = r->cap * 2 < limit ? r->cap * 2 : limit;
	if ((nbuf = realloc(r->buf, ncap)) == NULL)
		return -1;
	r->buf = nbuf;
	r->cap = ncap;
	return 0;
}

/* Reads more input; sets eof at the end. */
static int
fill(struct wi_reader *r)
{
	ssize_t n;

	if (make_room(r) < 0)
		return -1;
	do
		n = read(r->fd, r->buf + r->end, r->cap - r->end - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0)
		r->eof = true;
	r->end += (size_t)n;
	r->offset += (uint64_t)n;
	return 0;
}

/* Hands out the line ending at nl (or at the end of the data). */
static enum wi_status
take(struct wi_reader *r, char *nl, char **line, size_t *len,
    unsigned long *lineno, enum wi_status st)
{
	*line = r->buf + r->start;
	*len = (size_t)(nl - *line);
	*lineno = ++r->lineno;
	r->start = (size_t)(nl - r->buf) + (st == WI_NO_NEWLINE ? 0 : 1);
	r->scanned = r->start;
	if (r->dropping || *len > r->max_line) {
		r->dropping = false;
		*len = 0;
		return WI_TOO_LONG;
	}
	return st;
}

/* Reads the next line. */
enum wi_status
warm_input_next(struct wi_reader *r, char **line, size_t *len,
    unsigned long *lineno)
{
	char *nl;

	for (;;) {
		nl = memchr(r->buf + r->scanned, '\n', r->end - r->scanned);
		if (nl != NULL)
			return take(r, nl, line, len, lineno, WI_LINE);
		r->scanned = r->end;
		if (r->end - r->start > r->max_line) {
			r->dropping = true;
			r->start = r->scanned = r->end;
		}
		if (r->eof) {
			if (r->start == r->end && !r->dropping)
				return WI_EOF;
			return take(r, r->buf + r->end, line, len, lineno,
			    WI_NO_NEWLINE);
		}
		if (fill(r) < 0)
			return WI_IO_ERROR;
	}
}
