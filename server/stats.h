/*
 * stats.h -- server counters and the "stats" family of replies.
 *
 * Each worker owns a struct thread_stats and is its only writer; it bumps
 * fields with relaxed atomic stores (plain add-and-store on x86, no lock
 * prefix), so "stats" can sum all workers from another thread without a
 * lock and without data races.  "stats reset" records the sums as a
 * baseline (guarded by server.stats_lock) that later reports subtract.
 */
#ifndef CACHED_STATS_H
#define CACHED_STATS_H

#include <stdbool.h>
#include <stdint.h>

/* Per-thread counters, named as memcached names them on the wire. */
#define THREAD_STATS_FIELDS(X)						\
	X(cmd_get) X(cmd_set) X(cmd_flush) X(cmd_touch) X(cmd_meta)		\
	X(get_hits) X(get_misses)					\
	X(delete_hits) X(delete_misses)					\
	X(incr_hits) X(incr_misses) X(decr_hits) X(decr_misses)		\
	X(cas_hits) X(cas_misses) X(cas_badval)				\
	X(touch_hits) X(touch_misses)					\
	X(store_too_large) X(store_no_memory)				\
	X(bytes_read) X(bytes_written) X(conn_yields)			\
	X(idle_kicks) X(output_kicks)					\
	X(auth_cmds) X(auth_errors)

struct thread_stats {
#define X(name) uint64_t name;
	THREAD_STATS_FIELDS(X)
#undef X
};

/* Adds n to a counter the calling thread owns. */
#define STAT_ADD(ts, field, n)						\
	__atomic_store_n(&(ts)->field, (ts)->field + (uint64_t)(n),	\
	    __ATOMIC_RELAXED)
#define STAT_INC(ts, field) STAT_ADD(ts, field, 1)

struct server;
struct proto_req;
struct reply_sink;

/* Answers "stats [sub]" on server srv through sink; false for an
 * unknown sub-command. */
bool	stats_reply(struct server *srv, const struct proto_req *req,
	    const struct reply_sink *sink);

#endif
