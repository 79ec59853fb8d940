/*
 * stats.c -- the "stats" family of replies, with memcached's field names so
 * that dashboards and exporters built for memcached read them unchanged.
 *
 * Counters come from three places: each worker's thread_stats (summed
 * here with relaxed atomic loads), the store (store_get_stats, which locks
 * each shard briefly) and the server's connection atomics.  "stats reset"
 * stores the current sums as a baseline under srv->stats_lock.
 *
 * Every family prints the fields memcached 1.6.18 prints, in its order
 * (tests/integration/test_stats.py compares the names); man/cached.1
 * (STATISTICS) says what each one reports here.  The store has no slab
 * classes: "stats items" and "stats slabs" show one pseudo class 1 whose
 * pages are the store's segments.  Also here: the memcached tunables that
 * "slabs automove" and "lru" set (srv->tun, under stats_lock), and
 * "stats detail" (stats_detail.c), whose table is made on first "on" and
 * lives as long as the server.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "dispatch.h"
#include "server.h"
#include "snapshot.h"
#include "stats.h"
#include "watch.h"
#include "tls.h"
#include "stats_detail.h"
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

struct store_stats;
static void stats_general_store(const struct stats_ctx *c,
	    const struct store_stats *ss);
static void stats_settings_ext(const struct stats_ctx *c);

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

/* ---- TLS (-Z; tls.h): memcached's lines, in its order ---------------- */

/* Queues the TLS counters of plain "stats", when TLS is on. */
static void
stats_tls(const struct stats_ctx *c)
{
	struct tls_server *t = c->srv->tls;

	if (t == NULL)
		return;
	if (c->srv->opts->ssl_session_cache)
		emit_u64(c, "ssl_new_sessions", tls_new_sessions(t));
	emit_u64(c, "ssl_handshake_errors", tls_handshake_errors(t));
	emit_u64(c, "time_since_server_cert_refresh", tls_since_refresh(t));
}

/* Queues the TLS part of "stats settings"; ssl_verify_mode shows the
 * OpenSSL flags the mode stands for, as memcached does. */
static void
stats_tls_settings(const struct stats_ctx *c)
{
	static const char *const versions[] = { "tlsv1.0", "tlsv1.1",
	    "tlsv1.2", "tlsv1.3" };
	static const unsigned verify_flags[] = { 0, 1, 3, 7 };
	const struct options *o = c->srv->opts;

	emit_str(c, "ssl_enabled", o->ssl_enabled ? "yes" : "no");
	emit_str(c, "ssl_chain_cert", o->ssl_chain_cert);
	emit_str(c, "ssl_key", o->ssl_key);
	emit_u64(c, "ssl_verify_mode", verify_flags[o->ssl_verify_mode & 3]);
	emit_u64(c, "ssl_keyformat", (uint64_t)o->ssl_keyformat);
	emit_str(c, "ssl_ciphers", o->ssl_ciphers != NULL ? o->ssl_ciphers :
	    "NULL");
	emit_str(c, "ssl_ca_cert", o->ssl_ca_cert != NULL ? o->ssl_ca_cert :
	    "NULL");
	emit_u64(c, "ssl_wbuf_size", o->ssl_wbuf_size);
	emit_str(c, "ssl_session_cache", o->ssl_session_cache ? "yes" : "no");
	emit_str(c, "ssl_kernel_tls", "no");
	emit_str(c, "ssl_min_version", versions[o->ssl_min_version & 3]);
}

/* Queues plain "stats": memcached 1.6.18's fields in its order, with
 * what each means for cached in man/cached.1 (STATISTICS). */
static void
stats_general(const struct stats_ctx *c)
{
	struct server		*srv = c->srv;
	struct thread_stats	 ts;
	struct store_stats	 ss;

	sum_thread_stats(srv, &ts);
	store_get_stats(srv->store, &ss);
	stats_process(c);
	/* memcached's response objects and read buffers: cached composes
	 * replies into each connection's own queue and input buffer, so no
	 * pool of either exists to count. */
	emit_u64(c, "response_obj_oom", 0);
	emit_u64(c, "response_obj_count", 0);
	emit_u64(c, "response_obj_bytes", 0);
	emit_u64(c, "read_buf_count", 0);
	emit_u64(c, "read_buf_bytes", 0);
	emit_u64(c, "read_buf_bytes_free", 0);
	emit_u64(c, "read_buf_oom", 0);
	emit_u64(c, "reserved_fds", 0);
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
	emit_u64(c, "auth_cmds", ts.auth_cmds);
	emit_u64(c, "auth_errors", ts.auth_errors);
	/* memcached prints idle_kicks only with an idle timeout; cached
	 * always, and output_kicks (-o write_timeout) is its own. */
	emit_u64(c, "idle_kicks", ts.idle_kicks);
	emit_u64(c, "output_kicks", ts.output_kicks);
	emit_u64(c, "bytes_read", ts.bytes_read);
	emit_u64(c, "bytes_written", ts.bytes_written);
	emit_u64(c, "limit_maxbytes", ss.limit_maxbytes);
	emit_u64(c, "accepting_conns", 1);
	emit_u64(c, "listen_disabled_num", load(&srv->listen_disabled));
	emit_u64(c, "time_in_listen_disabled_us", 0);
	emit_u64(c, "threads", srv->nworkers);
	emit_u64(c, "conn_yields", ts.conn_yields);
	emit_u64(c, "hash_power_level", ss.hash_power_level);
	emit_u64(c, "hash_bytes", ss.hash_bytes);
	emit_u64(c, "hash_is_expanding", ss.hash_is_expanding);
	stats_general_store(c, &ss);
	stats_tls(c);
	stats_snapshot(c);
}

/* The store part of plain "stats", from slab_reassign_rescues on. */
static void
stats_general_store(const struct stats_ctx *c, const struct store_stats *ss)
{
	struct watch_stats ws;

	/* No slab classes, so no pages move between them. */
	emit_u64(c, "slab_reassign_rescues", 0);
	emit_u64(c, "slab_reassign_chunk_rescues", 0);
	emit_u64(c, "slab_reassign_evictions_nomem", 0);
	emit_u64(c, "slab_reassign_inline_reclaim", 0);
	emit_u64(c, "slab_reassign_busy_items", 0);
	emit_u64(c, "slab_reassign_busy_deletes", 0);
	emit_u64(c, "slab_reassign_running", 0);
	emit_u64(c, "slabs_moved", 0);
	/* The expiry thread is cached's LRU crawler: one pass a start. */
	emit_u64(c, "lru_crawler_running", 0);
	emit_u64(c, "lru_crawler_starts", ss->expiry_runs);
	emit_u64(c, "lru_maintainer_juggles", 0);
	emit_u64(c, "malloc_fails", 0);
	/* "watch" (watch.h): no shared per-worker buffer can drop an
	 * event; a line is either taken by a watcher's ring or skipped. */
	watch_get_stats(&ws);
	emit_u64(c, "log_worker_dropped", 0);
	emit_u64(c, "log_worker_written", ws.written);
	emit_u64(c, "log_watcher_skipped", ws.skipped);
	emit_u64(c, "log_watcher_sent", ws.sent);
	emit_u64(c, "log_watchers", ws.watchers);
	emit_u64(c, "unexpected_napi_ids", 0);
	emit_u64(c, "round_robin_fallback", 0);
	emit_u64(c, "bytes", ss->bytes);
	emit_u64(c, "curr_items", ss->curr_items);
	emit_u64(c, "total_items", ss->total_items);
	emit_u64(c, "slab_global_page_pool", ss->segs_free);
	emit_u64(c, "expired_unfetched", ss->expired_unfetched);
	emit_u64(c, "evicted_unfetched", ss->evicted_unfetched);
	emit_u64(c, "evicted_active", 0);
	emit_u64(c, "evictions", ss->evictions);
	emit_u64(c, "reclaimed", ss->reclaimed);
	emit_u64(c, "crawler_reclaimed", ss->crawler_reclaimed);
	emit_u64(c, "crawler_items_checked", ss->crawler_items_checked);
	emit_u64(c, "lrutail_reflocked", 0);
	emit_u64(c, "moves_to_cold", 0);
	emit_u64(c, "moves_to_warm", 0);
	emit_u64(c, "moves_within_lru", ss->moved);
	emit_u64(c, "direct_reclaims", ss->direct_reclaims);
	emit_u64(c, "lru_bumps_dropped", 0);
}

/* Queues a yes/no setting. */
static void
emit_bool(const struct stats_ctx *c, const char *name, bool v)
{
	emit_str(c, name, v ? "yes" : "no");
}

/*
 * Queues "stats settings": memcached 1.6.18's list in its order.  Lines
 * marked "memcached's default" are settings cached has no option for
 * (yet): they show the value memcached runs with by default, and switch
 * to the option once struct options has it.
 */
static void
stats_settings(const struct stats_ctx *c)
{
	const struct options	*o = c->srv->opts;
	struct server_tunables	 t;
	struct store_stats	 ss;

	pthread_mutex_lock(&c->srv->stats_lock);
	t = c->srv->tun;
	pthread_mutex_unlock(&c->srv->stats_lock);
	store_get_stats(c->srv->store, &ss);
	emit_u64(c, "maxbytes", ss.limit_maxbytes);	/* cache_memlimit */
	emit_u64(c, "maxconns", o->maxconns);
	emit_u64(c, "tcpport", o->unix_path != NULL ? 0 :
	    (uint64_t)c->srv->tcp_port);
	emit_u64(c, "udpport", (uint64_t)o->udp_port);
	emit_str(c, "inter", o->unix_path != NULL ? "NULL" : o->listen);
	emit_u64(c, "verbosity", (uint64_t)log_get_level());
	emit_u64(c, "oldest", 0);
	emit_str(c, "evictions", o->no_evict ? "off" : "on");
	emit_str(c, "domain_socket", o->unix_path != NULL ? o->unix_path :
	    "NULL");
	emit_fmt(c, "umask", "%o", o->unix_mask);
	emit_bool(c, "shutdown_command", o->allow_shutdown);
	emit_fmt(c, "growth_factor", "%.2f", o->growth_factor);
	emit_u64(c, "chunk_size", o->chunk_size);
	emit_u64(c, "num_threads", o->threads);
	emit_u64(c, "num_threads_per_udp", o->threads);
	emit_fmt(c, "stat_key_prefix", "%c", o->prefix_delimiter);
	emit_bool(c, "detail_enabled", o->detail_enabled ||
	    __atomic_load_n(&c->srv->detail_on, __ATOMIC_RELAXED) != 0);
	emit_u64(c, "reqs_per_event", o->reqs_per_event);
	emit_bool(c, "cas_enabled", o->cas_enabled);
	emit_u64(c, "tcp_backlog", (uint64_t)o->backlog);
	emit_str(c, "binding_protocol",
	    o->protocol == OPTIONS_PROTO_ASCII ? "ascii" :
	    o->protocol == OPTIONS_PROTO_BINARY ? "binary" : "auto-negotiate");
	emit_bool(c, "auth_enabled_sasl", o->sasl);
	/* memcached shows its -Y file here */
	emit_str(c, "auth_enabled_ascii",
	    o->auth_file != NULL ? o->auth_file : "no");
	emit_u64(c, "item_size_max", o->item_size_max);
	emit_str(c, "maxconns_fast", "yes");
	emit_u64(c, "hashpower_init", 0);	/* memcached's default */
	emit_str(c, "slab_reassign", "yes");
	emit_u64(c, "slab_automove", t.slab_automove);
	emit_fmt(c, "slab_automove_ratio", "%.2f", t.slab_automove_ratio);
	emit_u64(c, "slab_automove_window", 30);	/* memcached's default */
	emit_u64(c, "slab_chunk_max", o->item_size_max / 2);
	emit_bool(c, "lru_crawler",
	    __atomic_load_n(&c->srv->crawler_on, __ATOMIC_RELAXED));
	emit_u64(c, "lru_crawler_sleep", 100);	/* memcached's default */
	emit_u64(c, "lru_crawler_tocrawl", 0);	/* memcached's default */
	emit_u64(c, "tail_repair_time", 0);
	emit_bool(c, "flush_enabled", o->flush_enabled);
	emit_bool(c, "dump_enabled", !o->no_dump);
	emit_str(c, "hash_algorithm", "wyhash");
	emit_str(c, "lru_maintainer_thread", "yes");
	emit_bool(c, "lru_segmented", t.lru_segmented);
	emit_u64(c, "hot_lru_pct", (uint64_t)t.hot_lru_pct);
	emit_u64(c, "warm_lru_pct", (uint64_t)t.warm_lru_pct);
	emit_fmt(c, "hot_max_factor", "%.2f", t.hot_max_factor);
	emit_fmt(c, "warm_max_factor", "%.2f", t.warm_max_factor);
	emit_bool(c, "temp_lru", t.temp_lru);
	emit_u64(c, "temporary_ttl", (uint64_t)t.temporary_ttl);
	emit_u64(c, "idle_timeout", o->idle_timeout);
	emit_u64(c, "watcher_logbuf_size", o->watcher_logbuf_size);
	emit_u64(c, "worker_logbuf_size", o->worker_logbuf_size);
	emit_u64(c, "read_buf_mem_limit", 0);	/* memcached's default */
	emit_str(c, "track_sizes", "no");
	emit_str(c, "inline_ascii_response", "no");
	stats_settings_ext(c);
	emit_str(c, "num_napi_ids", NULL);
	emit_str(c, "memory_file", o->snapshot_path);	/* -e */
	/* cached's own, after memcached's list */
	emit_u64(c, "write_timeout", o->write_timeout);
	/* issue 15: the snapshot interval (memory_file is -e). */
	emit_u64(c, "snapshot_interval", o->snapshot_interval);
}

/* The extstore and TLS part of "stats settings": Debian's memcached is
 * built with both.  cached has no extstore: memcached's defaults. */
static void
stats_settings_ext(const struct stats_ctx *c)
{
	emit_u64(c, "ext_item_size", 512);
	emit_u64(c, "ext_item_age", UINT32_MAX);
	emit_u64(c, "ext_low_ttl", 0);
	emit_u64(c, "ext_recache_rate", 2000);
	emit_u64(c, "ext_wbuf_size", 4194304);
	emit_u64(c, "ext_compact_under", 0);
	emit_u64(c, "ext_drop_under", 0);
	emit_u64(c, "ext_max_sleep", 1000000);
	emit_str(c, "ext_max_frag", "0.80");
	emit_str(c, "slab_automove_freeratio", "0.010");
	emit_str(c, "ext_drop_unread", "no");
	stats_tls_settings(c);
}

/*
 * The store has no slab classes: items of every size are carved from
 * segments (or, when large, allocated on their own).  "stats items" and
 * "stats slabs" show it as ONE pseudo class, number 1, holding every item;
 * its pages are the segments (man/cached.1 says why and what each field
 * holds).
 */
#define PSEUDO_CLASS "1"

/* Queues "items:1:<name> v". */
static void
emit_class(const struct stats_ctx *c, const char *prefix, const char *name,
    uint64_t v)
{
	char key[64];

	snprintf(key, sizeof key, "%s%s:%s", prefix, PSEUDO_CLASS, name);
	emit_u64(c, key, v);
}

/* Queues "stats items": class 1's LRU counters, when it holds items. */
static void
stats_items(const struct stats_ctx *c)
{
	struct thread_stats	ts;
	struct store_stats	ss;
	const char		*p = "items:";

	sum_thread_stats(c->srv, &ts);
	store_get_stats(c->srv->store, &ss);
	if (ss.curr_items == 0)
		return;
	emit_class(c, p, "number", ss.curr_items);
	/* One FIFO, no hot/warm/cold segments: every item is where eviction
	 * works, which memcached calls COLD. */
	emit_class(c, p, "number_hot", 0);
	emit_class(c, p, "number_warm", 0);
	emit_class(c, p, "number_cold", ss.curr_items);
	emit_class(c, p, "age_hot", 0);
	emit_class(c, p, "age_warm", 0);
	emit_class(c, p, "age", ss.oldest_age);
	emit_class(c, p, "mem_requested", ss.bytes);
	emit_class(c, p, "evicted", ss.evictions);
	emit_class(c, p, "evicted_nonzero", ss.evicted_nonzero);
	emit_class(c, p, "evicted_time", ss.evicted_time);
	emit_class(c, p, "outofmemory", ts.store_no_memory);
	emit_class(c, p, "tailrepairs", 0);
	emit_class(c, p, "reclaimed", ss.reclaimed);
	emit_class(c, p, "expired_unfetched", ss.expired_unfetched);
	emit_class(c, p, "evicted_unfetched", ss.evicted_unfetched);
	emit_class(c, p, "evicted_active", 0);
	emit_class(c, p, "crawler_reclaimed", ss.crawler_reclaimed);
	emit_class(c, p, "crawler_items_checked", ss.crawler_items_checked);
	emit_class(c, p, "lrutail_reflocked", 0);
	emit_class(c, p, "moves_to_cold", 0);
	emit_class(c, p, "moves_to_warm", 0);
	emit_class(c, p, "moves_within_lru", ss.moved);
	emit_class(c, p, "direct_reclaims", ss.direct_reclaims);
	emit_class(c, p, "hits_to_hot", 0);
	emit_class(c, p, "hits_to_warm", 0);
	emit_class(c, p, "hits_to_cold", ts.get_hits + ts.touch_hits);
	emit_class(c, p, "hits_to_temp", 0);
}

/* Queues "stats slabs": class 1, its pages the segments. */
static void
stats_slabs(const struct stats_ctx *c)
{
	struct thread_stats	ts;
	struct store_stats	ss;
	const char		*p = "";

	sum_thread_stats(c->srv, &ts);
	store_get_stats(c->srv->store, &ss);
	if (ss.segs_held > 0 || ss.curr_items > 0) {
		emit_class(c, p, "chunk_size", ss.seg_size);
		emit_class(c, p, "chunks_per_page", 1);
		emit_class(c, p, "total_pages", ss.segs_held);
		emit_class(c, p, "total_chunks", ss.segs_held);
		emit_class(c, p, "used_chunks", ss.segs_held - ss.segs_free);
		emit_class(c, p, "free_chunks", ss.segs_free);
		emit_class(c, p, "free_chunks_end", 0);
		emit_class(c, p, "get_hits", ts.get_hits);
		emit_class(c, p, "cmd_set", ts.cmd_set);
		emit_class(c, p, "delete_hits", ts.delete_hits);
		emit_class(c, p, "incr_hits", ts.incr_hits);
		emit_class(c, p, "decr_hits", ts.decr_hits);
		emit_class(c, p, "cas_hits", ts.cas_hits);
		emit_class(c, p, "cas_badval", ts.cas_badval);
		emit_class(c, p, "touch_hits", ts.touch_hits);
	}
	emit_u64(c, "active_slabs", ss.segs_held > 0 || ss.curr_items > 0);
	emit_u64(c, "total_malloced", ss.mem_bytes);
}

/* Queues "stats sizes": cached keeps no size histogram; memcached's
 * reply when it keeps none (its default, -o track_sizes off). */
static void
stats_sizes(const struct stats_ctx *c)
{
	emit_str(c, "sizes_status", "disabled");
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
	struct stats_detail	*d;

	sum_raw(srv, &raw);
	pthread_mutex_lock(&srv->stats_lock);
	srv->stats_base = raw;
	srv->total_conns_base = load(&srv->total_conns);
	srv->rejected_conns_base = load(&srv->rejected_conns);
	pthread_mutex_unlock(&srv->stats_lock);
	store_reset_stats(srv->store);
	if ((d = __atomic_load_n(&srv->detail, __ATOMIC_ACQUIRE)) != NULL)
		stats_detail_clear(d);
}

/* Copies one "stats detail dump" line to the client. */
static void
detail_line(void *ctx, const char *line, size_t n)
{
	const struct stats_ctx *c = ctx;

	proto_out_copy(c->sink->out, line, n);
}

/* The lines of a dump gathered for one binary stat value. */
struct detail_buf {
	char	*p;
	size_t	 n;
	size_t	 cap;
	bool	 failed;
};

/* Appends one "stats detail dump" line to a detail_buf. */
static void
detail_gather(void *ctx, const char *line, size_t n)
{
	struct detail_buf *b = ctx;

	if (b->failed)
		return;
	if (b->n + n > b->cap) {
		size_t	 cap = (b->n + n) * 2;
		char	*p = realloc(b->p, cap);

		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, line, n);
	b->n += n;
}

/* Sends the dump: raw lines on text connections, as memcached does; on
 * binary ones (whose framing raw lines would break) one stat, "detail",
 * whose value is the lines, as memcached's binary STAT does. */
static void
detail_send(const struct stats_ctx *c, struct stats_detail *d)
{
	struct detail_buf b = { 0 };

	if (c->sink->codec != &proto_bin) {
		stats_detail_dump(d, detail_line, (void *)c);
		return;
	}
	stats_detail_dump(d, detail_gather, &b);
	if (!b.failed && b.n > 0)
		c->sink->codec->stat(c->sink->out, c->req, "detail", b.p, b.n);
	free(b.p);
}

/* "stats detail on|off|dump"; false for anything else. */
static bool
stats_detail(const struct stats_ctx *c, const char *arg, size_t narg)
{
	struct server		*srv = c->srv;
	struct stats_detail	*d;

	if (narg == 4 && memcmp(arg, "dump", 4) == 0) {
		if ((d = __atomic_load_n(&srv->detail,
		    __ATOMIC_ACQUIRE)) != NULL)
			detail_send(c, d);
		c->sink->codec->end(c->sink->out, c->req);
		return true;
	}
	if (narg == 3 && memcmp(arg, "off", 3) == 0) {
		__atomic_store_n(&srv->detail_on, 0, __ATOMIC_RELAXED);
		c->sink->codec->status(c->sink->out, c->req, PROTO_R_OK);
		return true;
	}
	if (narg != 2 || memcmp(arg, "on", 2) != 0)
		return false;
	/* The table, made once, lives as long as the server. */
	pthread_mutex_lock(&srv->stats_lock);
	if (srv->detail == NULL)
		__atomic_store_n(&srv->detail, stats_detail_new(srv->opts->prefix_delimiter),
		    __ATOMIC_RELEASE);
	d = srv->detail;
	pthread_mutex_unlock(&srv->stats_lock);
	if (d == NULL) {
		c->sink->codec->status(c->sink->out, c->req,
		    PROTO_R_NO_MEMORY);
		return true;
	}
	__atomic_store_n(&srv->detail_on, 1, __ATOMIC_RELAXED);
	c->sink->codec->status(c->sink->out, c->req, PROTO_R_OK);
	return true;
}

static const char detail_usage[] =
    "CLIENT_ERROR usage: stats detail on|off|dump\r\n";

/* Counts a key operation by prefix while "stats detail on" holds. */
void
stats_detail_note(struct server *srv, int op, const char *key, size_t nkey,
    bool hit)
{
	struct stats_detail *d = __atomic_load_n(&srv->detail,
	    __ATOMIC_ACQUIRE);

	if (d != NULL)
		stats_detail_record(d, (enum stats_detail_op)op, key, nkey,
		    hit);
}

/* Keeps a memcached tunable a client set ("slabs automove", "lru"). */
void
stats_tune(struct server *srv, const struct proto_admin *a)
{
	struct server_tunables *t = &srv->tun;

	pthread_mutex_lock(&srv->stats_lock);
	switch (a->sub) {
	case PROTO_ADMIN_AUTOMOVE:
		t->slab_automove = (unsigned)a->n1;
		break;
	case PROTO_ADMIN_AUTOMOVE_RATIO:
		t->slab_automove_ratio = a->f1;
		break;
	case PROTO_ADMIN_LRU_TUNE:
		t->hot_lru_pct = (int)a->n1;
		t->warm_lru_pct = (int)a->n2;
		t->hot_max_factor = a->f1;
		t->warm_max_factor = a->f2;
		break;
	case PROTO_ADMIN_LRU_MODE:
		t->lru_segmented = (int)a->n1;
		break;
	case PROTO_ADMIN_LRU_TEMP_TTL:
		/* memcached: a negative TTL turns the temporary LRU off */
		t->temp_lru = a->n1 >= 0;
		if (a->n1 >= 0)
			t->temporary_ttl = (int)a->n1;
		break;
	case PROTO_ADMIN_MEMLIMIT:
	case PROTO_ADMIN_REASSIGN:
		break;
	}
	pthread_mutex_unlock(&srv->stats_lock);
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
	{ "sizes", stats_sizes },
};

/* Answers "stats [sub]" on server srv; false for an unknown sub. */
bool
stats_reply(struct server *srv, const struct proto_req *req,
    const struct reply_sink *sink)
{
	struct stats_ctx	 c = { srv, req, sink };
	const char		*arg = req->arg;
	size_t			 narg = req->narg;

	if (narg >= 6 && memcmp(arg, "detail", 6) == 0 &&
	    (narg == 6 || arg[6] == ' ')) {
		size_t skip = narg == 6 ? 6 : 7;

		while (skip < narg && arg[skip] == ' ')
			skip++;
		if (!stats_detail(&c, arg + skip, narg - skip))
			proto_out_copy(sink->out, detail_usage,
			    sizeof detail_usage - 1);
		return true;
	}
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
