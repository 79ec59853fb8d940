/*
 * dispatch.h -- runs protocol-neutral requests against the store and
 * reports their results to a reply sink: a protocol's composer plus the
 * output it writes into.  Dispatch never sees a connection, so unit tests
 * and fuzz targets call it as the server does.
 *
 * A request may take more than one step; dispatch says what the caller
 * must do next (enum dispatch_next):
 *   DONE     answered; go on with the next request
 *   AGAIN    the output is full; call dispatch_request again with the same
 *            request and state once the client drained some (multi-key
 *            gets, a slice of keys at a time)
 *   VALUE    a storage command reserved state->it: read its
 *            item_nbytes(it) value bytes into item_value_mut(it), and the
 *            2 bytes after them (none when req->bare_value: pass "\r\n"),
 *            then call dispatch_value
 *   SWALLOW  a refused storage command: discard state->swallow bytes
 *   WATCH    "watch": the caller makes the connection a watcher of
 *            state->watch_streams (watch.h) and replies OK, or the
 *            error of watch_add
 *   CLOSE    close once what is queued has been sent (also: a request
 *            refused because the connection has not authenticated)
 *
 * The environment holds what dispatch may touch besides the store and
 * the sink: the calling thread's counters and the server-wide operations
 * (stats, shutdown) behind function pointers.
 */
#ifndef CACHED_DISPATCH_H
#define CACHED_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "stats.h"
#include "store.h"

/* Where results go: a protocol's composers and the output they fill. */
struct reply_sink {
	const struct proto_codec	*codec;
	struct proto_out		*out;
};

struct dispatch_env {
	store_t			*store;
	struct thread_stats	*stats;		/* the calling thread's own */
	/* "stats [sub]": reports lines through the sink; false for an
	 * unknown sub-command.  NULL: stats are refused. */
	bool	(*stats_reply)(void *ctx, const struct proto_req *req,
		    const struct reply_sink *sink);
	/* "shutdown": false when not allowed (-A not given). */
	bool	(*shutdown)(void *ctx);
	/* "refresh_certs": reloads the TLS certificates; false with the
	 * reply line (memcached's words, "\r\n" included) in err.  NULL:
	 * TLS is not enabled. */
	bool	(*refresh_certs)(void *ctx, char *err, size_t cap);
	void	*ctx;
	/* SASL (-S): checks a PLAIN message ("authzid\0user\0password");
	 * NULL when authentication is off.  `authenticated` is the
	 * connection's flag: until it is set only the SASL commands and
	 * version run, anything else is refused and the connection closed
	 * (as memcached does). */
	bool	(*sasl_plain)(void *ctx, const char *msg, size_t n);
	/* Text-protocol login (-Y without -S), as memcached's: until
	 * *authenticated is set a "set" is a login whose value ("user
	 * password") goes here and is never stored; every other request
	 * is answered "CLIENT_ERROR unauthenticated" and the connection
	 * stays open.  Returns an enum auth_login.  NULL: no text login. */
	int	(*login)(void *ctx, const char *data, size_t n);
	bool	*authenticated;
	bool	 no_flush;	/* -F: flush_all is refused */
	bool	 shutdown_enabled; /* -A: shutdown may be asked for */
	bool	 no_cas;	/* -C: hits show CAS 0, no CAS compares equal */
	/* Key dumps (dump.h): -X refuses them; crawler_on (atomic, shared
	 * by every connection; NULL: always on) is lru_crawler's switch. */
	bool	 no_dump;
	bool	*crawler_on;
	/* "slabs automove", "lru ...": records a memcached tunable the
	 * server shows in "stats settings".  NULL: accepted, not kept. */
	void	(*tune)(void *ctx, const struct proto_admin *a);
	/* "stats detail on": counts a key operation by prefix (op is an
	 * enum stats_detail_op); NULL or *detail_on 0: nothing counted. */
	void	(*detail)(void *ctx, int op, const char *key, size_t nkey,
		    bool hit);
	const int *detail_on;
	/* "watch": -W refuses it; cfd is the connection's descriptor, which
	 * the watch lines show (watch.h). */
	bool	 no_watch;
	int	 cfd;
};

enum dispatch_next {
	DISPATCH_DONE,
	DISPATCH_AGAIN,
	DISPATCH_VALUE,
	DISPATCH_SWALLOW,
	DISPATCH_CLOSE,
	DISPATCH_WATCH
};

/* What a request carries from one step to the next. */
struct dispatch_state {
	size_t		 cursor;	/* AGAIN: where a key list resumes */
	item_t		*it;		/* VALUE: the reserved item */
	size_t		 swallow;	/* SWALLOW: bytes to discard */
	struct store_iter iter;		/* AGAIN: a key dump's place */
	uint64_t	 dump_left;	/* items a key dump may still list */
	bool		 value_here;	/* set by the caller: the value and
					 * its end are buffered whole, so a
					 * set may carve its item directly
					 * (store_reserve_direct); the caller
					 * then feeds it at once */
	unsigned	 watch_streams;	/* WATCH: what "watch" asked for */
};

/* Starts (state zeroed) or resumes (after AGAIN) a request. */
enum dispatch_next dispatch_request(const struct dispatch_env *env,
	    const struct proto_req *req, struct dispatch_state *state,
	    const struct reply_sink *sink);
/* Completes a storage command after VALUE: end2 are the 2 bytes that
 * followed the value on the wire.  Only req's scalar fields are read (its
 * key may be gone from the input buffer by now).  Consumes state->it.
 * Returns DONE, or CLOSE when the framing was wrong. */
enum dispatch_next dispatch_value(const struct dispatch_env *env,
	    const struct proto_req *req, struct dispatch_state *state,
	    const char *end2, const struct reply_sink *sink);

#endif
