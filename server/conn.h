/*
 * conn.h -- one client connection: input buffer, request loop, streaming
 * of values into items, and the output queue sent with writev.
 *
 * Input: rbuf[rpos .. rlen) holds bytes not yet consumed.  Command lines
 * are parsed in place; a value being stored is copied from rbuf into the
 * reserved item and, once rbuf is empty, read straight into item memory.
 * The item holds the value only: the "\r\n" after it lands in nread_end,
 * where dispatch_value() checks it.
 * Multi-key gets are answered a slice of keys at a time, so one request
 * line cannot make the output queue grow without bound.
 *
 * Output: a queue of iovecs.  Small replies are copied into chunk memory
 * owned by the connection (adjacent copies share one iovec); large values
 * are sent from item memory, and the item's reference is held in
 * iov_item[] until that iovec has been written.  All replies produced by
 * one pass over the input go out in as few writev calls as possible.
 *
 * A connection belongs to one worker thread; only that thread touches it,
 * except `pub_state` and `last_cmd`, which "stats conns" reads atomically.
 */
#ifndef CACHED_CONN_H
#define CACHED_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto.h"
#include "store.h"

struct event;
struct worker;
struct server;

enum conn_state {
	CONN_READ_CMD,		/* waiting for / parsing command lines */
	CONN_NREAD,		/* reading a value into nread_it */
	CONN_SWALLOW,		/* discarding a refused value */
	CONN_MGET,		/* answering a multi-key get, key by key */
	CONN_CLOSING		/* flush what is queued, then close */
};

struct out_chunk {
	struct out_chunk	*next;
	size_t			 used;
	size_t			 size;
	char			 data[];
};

struct conn {
	int			 fd;
	struct worker		*w;
	struct server		*srv;
	struct event		*rev;
	struct event		*wev;
	struct event		*tev;
	struct event		*sev;		/* write-stall timer */
	enum conn_state		 state;
	bool			 reading;	/* rev is armed */
	bool			 writing;	/* wev is armed */
	bool			 noreply;	/* current request said noreply */
	bool			 stall_armed;	/* sev is armed */

	char			*rbuf;
	size_t			 rsize;
	size_t			 rpos;
	size_t			 rlen;

	/* A value being read: nread_left bytes still go to nread_dst (item
	 * memory), then the 2 bytes that should be "\r\n" go to nread_end,
	 * nread_end_got of them so far; the item holds the value only. */
	item_t			*nread_it;
	char			*nread_dst;
	size_t			 nread_left;
	char			 nread_end[2];
	size_t			 nread_end_got;
	enum proto_cmd		 nread_cmd;
	uint64_t		 nread_cas;
	bool			 nread_noreply;
	size_t			 swallow_left;

	/* A get-family request answered a part at a time so its output never
	 * runs far past OUT_SOFT_LIMIT; its line stays in rbuf (rpos is only
	 * advanced past it once done), so mget's pointers stay valid. */
	struct proto_req	 mget;
	size_t			 mget_cursor;
	size_t			 mget_len;

	struct iovec		*iov;
	item_t		       **iov_item;
	size_t			 iov_n;
	size_t			 iov_pos;
	size_t			 iov_cap;
	struct out_chunk	*chunk_head;
	struct out_chunk	*chunk_cur;
	size_t			 out_pending;	/* bytes queued, not yet sent */

	uint32_t		 last_cmd;	/* atomic: time of last activity */
	uint32_t		 last_write;	/* time replies last moved */
	int			 pub_state;	/* atomic: state for stats conns */
	char			 addr[80];
	const char		*listen_addr;
	struct conn		*prev;
	struct conn		*next;
};

/* Creates a connection on worker w for an accepted socket; NULL on error
 * (the socket is then closed by the caller). */
struct conn	*conn_new(struct worker *w, int fd, const char *listen_addr);
/* Closes the socket and frees everything the connection holds. */
void		 conn_free(struct conn *c);

/* Queues a copy of n bytes of reply text. */
void	conn_out(struct conn *c, const char *s, size_t n);
/* Queues a fixed reply unless the request said noreply. */
void	conn_reply(struct conn *c, enum proto_reply r);
/* Queues a fixed error reply, sent even for noreply requests. */
void	conn_error(struct conn *c, enum proto_reply r);
/* Returns space for up to n bytes of reply text; conn_out_commit() then
 * queues the used part. */
char	*conn_out_space(struct conn *c, size_t n);
void	conn_out_commit(struct conn *c, size_t used);
/* Queues an item's value and "\r\n" (not read from the item: only
 * item_nbytes bytes of it are); takes over the caller's reference. */
void	conn_out_value(struct conn *c, item_t *it);
/* Starts reading a value of item_nbytes(it) bytes into reserved item it,
 * then its 2 terminating bytes into c->nread_end. */
void	conn_start_nread(struct conn *c, item_t *it, enum proto_cmd cmd,
	    uint64_t cas, bool noreply);
/* Starts discarding n bytes of input. */
void	conn_start_swallow(struct conn *c, size_t n);
/* Marks the connection to close once queued output has been sent. */
void	conn_set_closing(struct conn *c);
/* True when the output queue is over its soft limit: stop producing. */
bool	conn_out_full(const struct conn *c);
/* Name of the state for "stats conns". */
const char *conn_state_name(int state);

#endif
