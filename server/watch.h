/*
 * watch.h -- memcached's "watch" log streams (watch.c): connections that
 * asked for them receive a line per event, in memcached 1.6.18's formats.
 *
 * Producers (workers in dispatch and conn, and any thread that evicts)
 * call the watch_* event functions; each first checks watch_wants(), one
 * relaxed load, so with no watcher an event costs nothing more.  A line
 * goes to every watcher of its stream through a bounded ring per
 * (watcher, producer thread); a full ring loses the line and counts it,
 * so a watcher that does not read never holds a worker up.
 */
#ifndef CACHED_WATCH_H
#define CACHED_WATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The streams, as "watch" names them (memcached's LOG_* flags). */
enum watch_stream {
	WATCH_FETCHERS		= 1 << 0,
	WATCH_MUTATIONS		= 1 << 1,
	WATCH_EVICTIONS		= 1 << 2,
	WATCH_CONNEVENTS	= 1 << 3,
	WATCH_DELETIONS		= 1 << 4,
	/* accepted as memcached accepts them; nothing logs to them here */
	WATCH_SYSEVENTS		= 1 << 5,
	WATCH_RAWCMDS		= 1 << 6,
	WATCH_PROXYREQS		= 1 << 7,
	WATCH_PROXYEVENTS	= 1 << 8,
	WATCH_PROXYUSER		= 1 << 9
};

/* item_get's status= (memcached's was_found). */
enum watch_get_status {
	WATCH_GET_NOT_FOUND, WATCH_GET_FOUND, WATCH_GET_FLUSHED,
	WATCH_GET_EXPIRED
};
/* item_store's status= and cmd=, memcached's store_item_type and
 * NREAD_* numbering. */
enum watch_store_status {
	WATCH_NOT_STORED, WATCH_STORED, WATCH_EXISTS, WATCH_NOT_FOUND,
	WATCH_TOO_LARGE, WATCH_NO_MEMORY
};
enum watch_store_cmd {
	WATCH_CMD_ADD = 1, WATCH_CMD_SET, WATCH_CMD_REPLACE, WATCH_CMD_APPEND,
	WATCH_CMD_PREPEND, WATCH_CMD_CAS
};
/* conn_close's reason=. */
enum watch_close_reason {
	WATCH_CLOSE_ERROR, WATCH_CLOSE_NORMAL, WATCH_CLOSE_IDLE,
	WATCH_CLOSE_SHUTDOWN
};

/* What "watch" replies when it cannot add a watcher. */
enum watch_add_error { WATCH_ADD_TOO_MANY = 1, WATCH_ADD_FAILED };

/* Most watchers at once, as memcached's WATCHER_LIMIT. */
#define WATCH_MAX	20

struct watcher;

/* Streams some watcher wants (atomic); read through watch_wants. */
extern _Atomic unsigned watch_streams_on;

/* True when a watcher wants stream s. */
static inline bool
watch_wants(unsigned s)
{
	return (atomic_load_explicit(&watch_streams_on,
	    memory_order_relaxed) & s) != 0;
}

/* Sets up the registry for nworkers worker threads, with rings of
 * ring_size bytes (-o worker_logbuf_size); false when out of memory.
 * Until it ran, watch_add fails. */
bool	watch_init(unsigned nworkers, size_t ring_size);
/* Tells watch that the calling thread is worker id: it gets rings of
 * its own.  Other threads share one ring per watcher under a lock. */
void	watch_thread_slot(unsigned id);

/* The streams named in "watch"'s argument [arg, arg + n) (none:
 * fetchers, memcached's default); 0 when a name is unknown. */
unsigned watch_parse_streams(const char *arg, size_t n);
/* Adds a watcher of streams; notify(arg) is called, from any thread,
 * when lines wait for it after it drained.  NULL with *err set. */
struct watcher *watch_add(unsigned streams, void (*notify)(void *),
	    void *arg, enum watch_add_error *err);
/* Removes a watcher; once it returns no thread touches it. */
void	watch_remove(struct watcher *w);
/* Consumer: hands what the watcher's rings hold to put(ctx, p, n) until
 * they are empty (true) or put returns false (its output is full: false;
 * no notify until the next drain). */
bool	watch_drain(struct watcher *w,
	    bool (*put)(void *ctx, const char *p, size_t n), void *ctx);

/* Events; each is a line for the watchers of its stream. */
void	watch_item_get(const char *key, size_t nkey,
	    enum watch_get_status status, uint32_t size, int cfd);
void	watch_item_store(const char *key, size_t nkey,
	    enum watch_store_status status, enum watch_store_cmd cmd,
	    uint32_t ttl, uint32_t size, int cfd);
void	watch_eviction(const char *key, size_t nkey, bool fetched,
	    long long ttl, uint32_t la, uint32_t size);
/* store_config.evicted: an eviction line when one is watched. */
struct store_evicted;
void	watch_evicted(void *ctx, const struct store_evicted *e);
void	watch_deleted(const char *key, size_t nkey, bool meta,
	    uint32_t size);
void	watch_conn_event(bool open, const struct sockaddr *sa,
	    socklen_t salen, int cfd, enum watch_close_reason reason);

/* The logger's "stats" counters. */
struct watch_stats {
	uint64_t	written;	/* events formatted for watchers */
	uint64_t	sent;		/* lines a watcher's ring took */
	uint64_t	skipped;	/* lines lost to a full ring */
	uint64_t	watchers;	/* watchers now */
};
void	watch_get_stats(struct watch_stats *s);

#endif
