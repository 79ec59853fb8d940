/*
 * conn.h -- one client connection: its life cycle and state machine.
 *
 * A connection ties together a transport (the socket and its libevent
 * events), its input (inbuf.h), the codec of its protocol (proto.h), the
 * request in progress and its dispatch state (dispatch.h), and its output
 * queue (outq.h), which the codec writes into through `out`, a struct
 * proto_out that also decides whether a value is copied or sent from item
 * memory.
 *
 * States: READ_CMD parses the next request; STEP resumes a request that
 * filled the output queue (a multi-key get: its line stays in the input
 * buffer until it is done, so `req`'s pointers stay valid); NREAD streams
 * a value into its reserved item; SWALLOW discards a refused value;
 * CLOSING sends what is queued, then closes; WATCH is a "watch"
 * connection, which only sends the log lines its rings hold (watch.h).
 *
 * A connection belongs to one worker thread; only that thread touches it,
 * except `pub_state` and `last_cmd`, which "stats conns" reads atomically
 * under the worker's lock (which also guards prev/next).
 */
#ifndef CACHED_CONN_H
#define CACHED_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dispatch.h"
#include "inbuf.h"
#include "outq.h"
#include "proto.h"
#include "tls.h"

struct event;
struct worker;
struct server;
struct tls_server;

enum conn_state {
	CONN_READ_CMD,		/* waiting for / parsing a request */
	CONN_NREAD,		/* reading a value into its item */
	CONN_SWALLOW,		/* discarding a refused value */
	CONN_STEP,		/* resuming a request once output drained */
	CONN_CLOSING,		/* flush what is queued, then close */
	CONN_WATCH		/* a "watch" stream: sends log lines, its
				 * input is read and dropped */
};

struct conn {
	int				 fd;
	struct conn_io			 io;		/* plain or TLS (tls.h) */
	struct worker			*w;
	struct server			*srv;
	struct event			*rev;
	struct event			*wev;
	struct event			*tev;		/* idle timer */
	struct event			*sev;		/* write-stall timer */
	struct event			*yev;		/* resumes a yielded step */
	enum conn_state			 state;
	bool				 reading;	/* rev is armed */
	bool				 writing;	/* wev is armed */
	bool				 eof;		/* client sent FIN */
	bool				 authenticated;	/* -S: SASL done */
	unsigned			 reqs_left;	/* -R: requests this event
							 * may still start */
	bool				 verbose;	/* -vv when it opened:
							 * conn_log.c lines */
	bool				 said_proto;	/* logged its protocol */
	/* -vv, binary: where the last reply space went, and the bytes of
	 * the response in progress still to come (conn_log_bin_out). */
	char				*blog_space;
	size_t				 blog_left;

	struct inbuf			 in;

	/* The request in progress and what carries it between steps;
	 * req_len is its line's length, consumed once it is done.  The
	 * codec is NULL until the first byte picks text or binary. */
	const struct proto_codec	*codec;
	struct proto_req		 req;
	size_t				 req_len;
	struct dispatch_state		 ds;
	struct dispatch_env		 env;
	struct reply_sink		 sink;
	/* A copy of a meta set's line while its value is read (the reply
	 * echoes its tokens); see conn_keep_line. */
	char				*line;
	size_t				 line_cap;

	struct proto_out		 out;		/* writes into outq */
	struct outq			 outq;
	/* Bytes the client had taken off the socket (written less what
	 * the kernel still holds) when last looked at, for the timeouts. */
	uint64_t			 taken_mark;

	uint32_t			 last_cmd;	/* atomic: last activity */
	uint32_t			 last_write;	/* replies last moved */
	int				 pub_state;	/* atomic: for stats */
	char				 addr[80];
	struct sockaddr_storage		 peer;		/* for watch lines */
	socklen_t			 peer_len;
	/* A watcher (CONN_WATCH, watch.h) and nev, which its producers
	 * make active when lines wait; close_reason goes in the
	 * conn_close line (enum watch_close_reason). */
	struct watcher			*watcher;
	struct event			*nev;
	int				 close_reason;
	const char			*listen_addr;
	struct conn			*prev;
	struct conn			*next;
};

/* Creates a connection on worker w for an accepted socket, a TLS one when
 * tls is not NULL; NULL on error (the socket is then closed by the
 * caller). */
struct conn	*conn_new(struct worker *w, int fd, const char *listen_addr,
		    struct tls_server *tls);
/* Closes the socket and frees everything the connection holds. */
void		 conn_free(struct conn *c);
/* Name of the state for "stats conns". */
const char	*conn_state_name(int state);

#endif
