/*
 * outq.h -- a connection's output queue: reply bytes waiting to be sent,
 * written with as few writev calls as possible.
 *
 * Data structure: an array of iovecs, each with an optional reference
 * (`ref`) to memory the queue does not own.  Small replies are copied into
 * chunks the queue owns (a copy that directly follows the previous one
 * extends its iovec); large values are queued by reference and the
 * reference is handed to the release callback once its bytes are written
 * or the queue is dropped.  Once memory runs out the queue is `failed`:
 * it drops what it is given (releasing references) and its owner closes
 * the connection.
 *
 * The queue knows nothing of sockets, libevent or the store: outq_flush
 * writes through a function it is given, so unit tests run it against a
 * fake writer.  A queue belongs to one thread; no locking.
 */
#ifndef CACHED_OUTQ_H
#define CACHED_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Past this many queued bytes, producers stop and the owner stops reading
 * until the client drained some. */
#define OUTQ_SOFT_LIMIT	(512 * 1024)

struct outq_chunk;

/* Writes iovecs like writev(2): bytes written, or -1 with errno set. */
typedef ssize_t (*outq_write_fn)(void *ctx, const struct iovec *iov,
	    int cnt);
/* Gives back a reference queued with outq_ref. */
typedef void (*outq_release_fn)(void *ctx, void *ref);

struct outq {
	struct iovec		*iov;
	void		       **ref;
	size_t			 n;		/* iovecs queued */
	size_t			 pos;		/* first one not fully written */
	size_t			 cap;
	struct outq_chunk	*head;
	struct outq_chunk	*cur;
	size_t			 pending;	/* bytes queued, not yet sent */
	uint64_t		 written;	/* bytes ever written */
	bool			 failed;	/* memory ran out */
	outq_release_fn		 release;
	void			*release_ctx;
};

/* Sets up an empty queue that hands references back through release. */
void	outq_init(struct outq *q, outq_release_fn release, void *ctx);
/* Releases every reference still queued and frees all memory. */
void	outq_free(struct outq *q);
/* Returns room for n bytes of reply text, NULL (and failed) when memory
 * ran out; outq_commit then queues the used part. */
char	*outq_space(struct outq *q, size_t n);
void	 outq_commit(struct outq *q, size_t used);
/* Queues a copy of n bytes; false once failed. */
bool	 outq_copy(struct outq *q, const char *s, size_t n);
/* Queues n bytes at data by reference; ref is released once written. */
void	 outq_ref(struct outq *q, const char *data, size_t n, void *ref);
/* Writes what is queued until it is all sent or the writer would block;
 * returns false when the writer failed (errno set). */
bool	 outq_flush(struct outq *q, outq_write_fn write, void *ctx);
/* True when everything queued has been written. */
bool	 outq_empty(const struct outq *q);
/* True when producers should stop: over the soft limit. */
bool	 outq_full(const struct outq *q);

#endif
