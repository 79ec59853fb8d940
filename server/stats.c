/*
 * stats.c -- the "stats" family of replies, with memcached's field names so
 * that dashboards and exporters built for memcached read them unchanged.
 *
 * Counters come from three places: each worker's thread_stats (summed
 * here with relaxed atomic loads), the store (store_get_stats, which locks
 * each shard briefly) and the server's connection atomics.  "stats reset"
 * stores the current sums as a baseline under srv->stats_lock.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "dispatch.h"
#include "server.h"
#include "snapshot.h"
#include "stats.h"
#include "version.h"
#include "worker.h"

/* One stats reply in the making: the server it reports on and where its
 * lines go. */
struct stats_ctx {
	struct server			*srv;
	const struct proto_req		*req;
	const struct reply_sink		*sink;
};

typedef void (*stats_fn)(const struct stats_ctx *);

/* Reports one statistic with a string value ("(null)" for NULL, as
 * memcached's printf shows unset settings). */
static void
emit_str(const struct stats_ctx *c, const char *name, const char *v)
{
	if (v == NULL)
		v = "(null)";
	c->sink->codec->stat(c->sink->out, c->req, name, v, strlen(v));
}

/* Reports one statistic with a number value. */
static void
emit_u64(const struct stats_ctx *c, const char *name, uint64_t v)
{
	char num[21];

	c->sink->codec->stat(c->sink->out, c->req, name, num,
	    proto_fmt_u64(num, v));
}

/* Queues a "STAT name value" line for a printf-formatted value. */
static void
emit_fmt(const struct stats_ctx *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
emit_fmt(const struct stats_ctx *c, const char *name, const char *fmt, ...)
{
	char	buf[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	emit_str(c, name, buf);
}

/* Sums every worker's counters into out. */
static void
sum_raw(struct server *srv, struct thread_stats *out)
{
	memset(out, 0, sizeof *out);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct thread_stats *ts = &srv->workers[i].stats;
#define X(name) out->name += __atomic_load_n(&ts->name, __ATOMIC_RELAXED);
		THREAD_STATS_FIELDS(X)
#undef X
	}
}

/* Sums every worker's counters into out, less the reset baseline. */
static void
sum_thread_stats(struct server *srv, struct thread_stats *out)
{
	sum_raw(srv, out);
	pthread_mutex_lock(&srv->stats_lock);
#define X(name) out->name -= srv->stats_base.name;
	THREAD_STATS_FIELDS(X)
#undef X
	pthread_mutex_unlock(&srv->stats_lock);
}

/* Reads an atomic server counter. */
static uint64_t
load(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Queues the process and connection part of plain "stats". */
static void
stats_process(const struct stats_ctx *c)
{
	struct server	*srv = c->srv;
	struct rusage	 ru;
	time_t		 now = time(NULL);
	uint64_t	 total, rejected;

	getrusage(RUSAGE_SELF, &ru);
	pthread_mutex_lock(&srv->stats_lock);
	total = load(&srv->total_conns) - srv->total_conns_base;
	rejected = load(&srv->rejected_conns) - srv->rejected_conns_base;
	pthread_mutex_unlock(&srv->stats_lock);

	emit_u64(c, "pid", (uint64_t)getpid());
	emit_u64(c, "uptime", (uint64_t)(now - srv->started));
	emit_u64(c, "time", (uint64_t)now);
	emit_str(c, "version", CACHED_WIRE_VERSION);
	emit_str(c, "libevent", event_get_version());
	emit_u64(c, "pointer_size", 8 * sizeof(void *));
	emit_fmt(c, "rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec,
	    (long)ru.ru_utime.tv_usec);
	emit_fmt(c, "rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec,
	    (long)ru.ru_stime.tv_usec);
	emit_u64(c, "max_connections", srv->opts->maxconns);
	emit_u64(c, "curr_connections", load(&srv->curr_conns));
	emit_u64(c, "total_connections", total);
	emit_u64(c, "rejected_connections", rejected);
	emit_u64(c, "connection_structures", load(&srv->curr_conns));
}

/* issue 15: the snapshot_* lines of plain "stats", when -e is given. */
static void
stats_snapshot(const struct stats_ctx *c)
{
	struct snapshot_stats s;

	if (c->srv->snap == NULL)
		return;
	snapshot_get_stats(c->srv->snap, &s);
	emit_u64(c, "snapshot_count", s.written);
	emit_u64(c, "snapshot_errors", s.errors);
	emit_u64(c, "snapshot_in_progress", s.in_progress);
	emit_u64(c, "snapshot_last_duration_ms", s.last_usec / 1000);
	emit_u64(c, "snapshot_last_bytes", s.last_bytes);
	emit_u64(c, "snapshot_last_items", s.last_items);
	/* Seconds since the last good snapshot; -1 before the first. */
	if (s.last_time == 0)
		emit_str(c, "snapshot_age", "-1");
	else
		emit_u64(c, "snapshot_age", (uint64_t)time(NULL) - s.last_time);
	emit_u64(c, "snapshot_loaded_items", s.loaded_items);
	emit_u64(c, "snapshot_load_duration_ms", s.load_usec / 1000);
	emit_u64(c, "snapshot_load_skipped", s.load_skipped);
	emit_u64(c, "snapshot_load_errors", s.load_errors);
}

/* Queues plain "stats". */
static void
stats_general(const struct stats_ctx *c)
{
	struct server		*srv = c->srv;
	struct thread_stats	 ts;
	struct store_stats	 ss;

	sum_thread_stats(srv, &ts);
	store_get_stats(srv->store, &ss);
	stats_process(c);
	emit_u64(c, "cmd_get", ts.cmd_get);
	emit_u64(c, "cmd_set", ts.cmd_set);
	emit_u64(c, "cmd_flush", ts.cmd_flush);
	emit_u64(c, "cmd_touch", ts.cmd_touch);
	emit_u64(c, "cmd_meta", ts.cmd_meta);
	emit_u64(c, "get_hits", ts.get_hits);
	emit_u64(c, "get_misses", ts.get_misses);
	emit_u64(c, "get_expired", ss.get_expired);
	emit_u64(c, "get_flushed", ss.get_flushed);
	emit_u64(c, "delete_misses", ts.delete_misses);
	emit_u64(c, "delete_hits", ts.delete_hits);
	emit_u64(c, "incr_misses", ts.incr_misses);
	emit_u64(c, "incr_hits", ts.incr_hits);
	emit_u64(c, "decr_misses", ts.decr_misses);
	emit_u64(c, "decr_hits", ts.decr_hits);
	emit_u64(c, "cas_misses", ts.cas_misses);
	emit_u64(c, "cas_hits", ts.cas_hits);
	emit_u64(c, "cas_badval", ts.cas_badval);
	emit_u64(c, "touch_hits", ts.touch_hits);
	emit_u64(c, "touch_misses", ts.touch_misses);
	emit_u64(c, "store_too_large", ts.store_too_large);
	emit_u64(c, "store_no_memory", ts.store_no_memory);
	emit_u64(c, "auth_cmds", 0);
	emit_u64(c, "auth_errors", 0);
	emit_u64(c, "idle_kicks", ts.idle_kicks);
	emit_u64(c, "output_kicks", ts.output_kicks);
	emit_u64(c, "bytes_read", ts.bytes_read);
	emit_u64(c, "bytes_written", ts.bytes_written);
	emit_u64(c, "limit_maxbytes", ss.limit_maxbytes);
	emit_u64(c, "accepting_conns", 1);
	emit_u64(c, "listen_disabled_num", load(&srv->listen_disabled));
	emit_u64(c, "threads", srv->nworkers);
	emit_u64(c, "conn_yields", ts.conn_yields);
	emit_u64(c, "hash_power_level", ss.hash_power_level);
	emit_u64(c, "hash_bytes", ss.hash_bytes);
	emit_u64(c, "hash_is_expanding", ss.hash_is_expanding);
	emit_u64(c, "expired_unfetched", ss.expired_unfetched);
	emit_u64(c, "evicted_unfetched", ss.evicted_unfetched);
	emit_u64(c, "evictions", ss.evictions);
	emit_u64(c, "reclaimed", ss.reclaimed);
	emit_u64(c, "curr_items", ss.curr_items);
	emit_u64(c, "total_items", ss.total_items);
	emit_u64(c, "bytes", ss.bytes);
	stats_snapshot(c);
}

/* Queues "stats settings". */
static void
stats_settings(const struct stats_ctx *c)
{
	const struct options *o = c->srv->opts;

	emit_u64(c, "maxbytes", o->mem_limit);
	emit_u64(c, "maxconns", o->maxconns);
	emit_u64(c, "tcpport", o->unix_path != NULL ? 0 :
	    (uint64_t)c->srv->tcp_port);
	emit_u64(c, "udpport", (uint64_t)o->udp_port);
	emit_str(c, "inter", o->unix_path != NULL ? "NULL" : o->listen);
	emit_u64(c, "verbosity", (uint64_t)o->verbose);
	emit_u64(c, "num_threads", o->threads);
	emit_str(c, "evictions", o->no_evict ? "off" : "on");
	emit_str(c, "domain_socket", o->unix_path != NULL ? o->unix_path :
	    "NULL");
	emit_fmt(c, "umask", "%o", o->unix_mask);
	emit_str(c, "cas_enabled", "yes");
	emit_u64(c, "tcp_backlog", (uint64_t)o->backlog);
	emit_str(c, "binding_protocol", "ascii");
	emit_str(c, "auth_enabled_sasl", "no");
	emit_u64(c, "item_size_max", o->item_size_max);
	emit_str(c, "maxconns_fast", "yes");
	emit_u64(c, "idle_timeout", o->idle_timeout);
	emit_u64(c, "write_timeout", o->write_timeout);
	emit_str(c, "shutdown_enabled", o->allow_shutdown ? "yes" : "no");
	/* issue 15: memcached's -e setting, and the snapshot interval. */
	emit_str(c, "memory_file", o->snapshot_path);
	emit_u64(c, "snapshot_interval", o->snapshot_interval);
}

/* Queues "stats items": one pseudo slab class 1 holds every item. */
static void
stats_items(const struct stats_ctx *c)
{
	struct store_stats ss;

	store_get_stats(c->srv->store, &ss);
	if (ss.curr_items == 0)
		return;
	emit_u64(c, "items:1:number", ss.curr_items);
	emit_u64(c, "items:1:evicted", ss.evictions);
	emit_u64(c, "items:1:evicted_unfetched", ss.evicted_unfetched);
	emit_u64(c, "items:1:expired_unfetched", ss.expired_unfetched);
	emit_u64(c, "items:1:reclaimed", ss.reclaimed);
	emit_u64(c, "items:1:outofmemory", 0);
}

/* Queues "stats slabs": items are malloc'ed, reported as one class. */
static void
stats_slabs(const struct stats_ctx *c)
{
	struct store_stats ss;

	store_get_stats(c->srv->store, &ss);
	if (ss.curr_items > 0) {
		emit_u64(c, "1:used_chunks", ss.curr_items);
		emit_u64(c, "1:mem_requested", ss.bytes);
	}
	emit_u64(c, "active_slabs", ss.curr_items > 0 ? 1 : 0);
	emit_u64(c, "total_malloced", ss.mem_bytes);
}

/* Queues "stats conns": one group of lines per open connection. */
static void
stats_conns(const struct stats_ctx *c)
{
	struct server	*srv = c->srv;
	uint32_t	 now = (uint32_t)time(NULL);
	char		 name[64];

	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct worker *w = &srv->workers[i];

		pthread_mutex_lock(&w->lock);
		for (struct conn *o = w->conns; o != NULL; o = o->next) {
			snprintf(name, sizeof name, "%d:addr", o->fd);
			emit_str(c, name, o->addr);
			snprintf(name, sizeof name, "%d:listen_addr", o->fd);
			emit_str(c, name, o->listen_addr);
			snprintf(name, sizeof name, "%d:state", o->fd);
			emit_str(c, name, conn_state_name(
			    __atomic_load_n(&o->pub_state, __ATOMIC_RELAXED)));
			snprintf(name, sizeof name, "%d:secs_since_last_cmd",
			    o->fd);
			emit_u64(c, name, now - __atomic_load_n(&o->last_cmd,
			    __ATOMIC_RELAXED));
		}
		pthread_mutex_unlock(&w->lock);
	}
}

/* "stats reset": records the current sums as the new baseline. */
static void
stats_reset(const struct stats_ctx *c)
{
	struct server		*srv = c->srv;
	struct thread_stats	 raw;

	sum_raw(srv, &raw);
	pthread_mutex_lock(&srv->stats_lock);
	srv->stats_base = raw;
	srv->total_conns_base = load(&srv->total_conns);
	srv->rejected_conns_base = load(&srv->rejected_conns);
	pthread_mutex_unlock(&srv->stats_lock);
	store_reset_stats(srv->store);
}

static const struct {
	const char	*name;
	stats_fn	 fn;
} stats_table[] = {
	{ "", stats_general },
	{ "settings", stats_settings },
	{ "items", stats_items },
	{ "slabs", stats_slabs },
	{ "conns", stats_conns },
};

/* Answers "stats [sub]" on server srv; false for an unknown sub. */
bool
stats_reply(struct server *srv, const struct proto_req *req,
    const struct reply_sink *sink)
{
	struct stats_ctx	 c = { srv, req, sink };
	const char		*arg = req->arg;
	size_t			 narg = req->narg;

	if (narg == 5 && memcmp(arg, "reset", 5) == 0) {
		stats_reset(&c);
		sink->codec->status(sink->out, req, PROTO_R_RESET);
		return true;
	}
	for (size_t i = 0; i < sizeof stats_table / sizeof stats_table[0];
	    i++) {
		if (strlen(stats_table[i].name) == narg &&
		    memcmp(stats_table[i].name, arg, narg) == 0) {
			stats_table[i].fn(&c);
			sink->codec->end(sink->out, req);
			return true;
		}
	}
	return false;
}
