/*
 * watch.c -- memcached's "watch" log streams (watch.h).
 *
 * An event is formatted once, in the thread where it happens, into
 * memcached 1.6.18's line ("ts=SEC.USEC gid=N type=... key=..." with the
 * key URI-encoded, as memcached does, so a key can neither break a line
 * nor run past KEY_MAX * 3 bytes), then offered to every watcher of its
 * stream.  Each watcher has one ring (watch_ring.h) per worker thread and
 * one shared by the other threads (the expiry thread may evict), so a
 * worker writes to its own ring without a lock, and a full ring drops the
 * line (counted; the watcher reads "skipped=N" before the next one):
 * nothing a watcher does slows a worker.  The watcher's own connection
 * drains its rings from its worker (conn.c), woken through notify when
 * lines arrive after it had emptied them.
 *
 * Ordering: lines of one producer arrive in order; across producers they
 * may interleave out of order, and gid, one global counter, puts them
 * back in order, as with memcached's per-worker buffers.
 *
 * Locking: `lock`, a writer-preferring rwlock, guards the watcher table:
 * producers hold it shared while they offer a line (so a watcher cannot
 * be freed under them), watch_add and watch_remove hold it exclusively
 * (no I/O under it).  `other` serializes the producers that are not
 * workers on their shared ring.  Order: store's locks -> lock -> other.
 * The counters are atomics.  The registry is process-wide, like log.c's
 * level: producers deep in the store's eviction have no context to
 * carry it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>

#include "store.h"
#include "watch.h"
#include "watch_ring.h"

/* Longest line: the key URI-encoded (3 bytes each) and the fields. */
#define KEY_MAX		250
#define LINE_MAX	(KEY_MAX * 3 + 256)

struct watcher {
	unsigned		 streams;
	void			(*notify)(void *);
	void			*arg;
	atomic_int		 notified;	/* notify called, not drained */
	unsigned		 nrings;
	struct watch_ring	 rings[];	/* per worker, then others' */
};

_Atomic unsigned watch_streams_on;

static struct {
	pthread_rwlock_t	 lock;
	pthread_mutex_t		 other;
	bool			 ready;
	unsigned		 nrings;	/* workers + 1 */
	size_t			 ring_size;
	struct watcher		*w[WATCH_MAX];
	unsigned		 count;
} reg = { .lock = PTHREAD_RWLOCK_INITIALIZER,
	  .other = PTHREAD_MUTEX_INITIALIZER };

static _Atomic uint64_t gid, n_written, n_sent, n_skipped;
static _Atomic unsigned n_watchers;
static _Thread_local int my_slot = -1;

/* Sets up the registry; the lock prefers writers, so a watcher can come
 * and go while workers log without pause. */
bool
watch_init(unsigned nworkers, size_t ring_size)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_destroy(&reg.lock);
	pthread_rwlock_init(&reg.lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	reg.nrings = nworkers + 1;
	reg.ring_size = ring_size;
	reg.ready = true;
	return true;
}

/* Frees the registry. */
void
watch_fini(void)
{
	reg.ready = false;
}

/* The calling thread is worker id. */
void
watch_thread_slot(unsigned id)
{
	my_slot = (int)id;
}

static const struct {
	const char	*name;
	unsigned	 flag;
} stream_names[] = {
	{ "fetchers", WATCH_FETCHERS },
	{ "mutations", WATCH_MUTATIONS },
	{ "evictions", WATCH_EVICTIONS },
	{ "connevents", WATCH_CONNEVENTS },
	{ "deletions", WATCH_DELETIONS },
	{ "sysevents", WATCH_SYSEVENTS },
	{ "rawcmds", WATCH_RAWCMDS },
	{ "proxyreqs", WATCH_PROXYREQS },
	{ "proxyevents", WATCH_PROXYEVENTS },
	{ "proxyuser", WATCH_PROXYUSER },
};

/* The streams named by space-separated words; none: fetchers. */
unsigned
watch_parse_streams(const char *arg, size_t n)
{
	unsigned	flags = 0;
	size_t		i = 0;

	while (i < n) {
		size_t start, len;
		bool found = false;

		while (i < n && arg[i] == ' ')
			i++;
		start = i;
		while (i < n && arg[i] != ' ')
			i++;
		if ((len = i - start) == 0)
			break;
		for (size_t k = 0; k < sizeof stream_names /
		    sizeof stream_names[0]; k++)
			if (strlen(stream_names[k].name) == len &&
			    memcmp(stream_names[k].name, arg + start,
			    len) == 0) {
				flags |= stream_names[k].flag;
				found = true;
			}
		if (!found)
			return 0;
	}
	return flags != 0 ? flags : WATCH_FETCHERS;
}

/* Recomputes the streams some watcher wants; lock held exclusively. */
static void
streams_update(void)
{
	unsigned on = 0;

	for (unsigned i = 0; i < WATCH_MAX; i++)
		if (reg.w[i] != NULL)
			on |= reg.w[i]->streams;
	atomic_store_explicit(&watch_streams_on, on, memory_order_relaxed);
	atomic_store_explicit(&n_watchers, reg.count, memory_order_relaxed);
}

/* Frees a watcher's memory. */
static void
watcher_free(struct watcher *w)
{
	for (unsigned i = 0; i < w->nrings; i++)
		watch_ring_free(&w->rings[i]);
	free(w);
}

/* Adds a watcher of streams. */
struct watcher *
watch_add(unsigned streams, void (*notify)(void *), void *arg,
    enum watch_add_error *err)
{
	struct watcher	*w;
	unsigned	 i, slot;

	if (!reg.ready) {
		*err = WATCH_ADD_FAILED;
		return NULL;
	}
	w = calloc(1, sizeof *w + reg.nrings * sizeof w->rings[0]);
	if (w == NULL) {
		*err = WATCH_ADD_FAILED;
		return NULL;
	}
	w->streams = streams;
	w->notify = notify;
	w->arg = arg;
	atomic_init(&w->notified, 0);
	for (i = 0; i < reg.nrings; i++) {
		if (!watch_ring_init(&w->rings[i], reg.ring_size)) {
			w->nrings = i;
			watcher_free(w);
			*err = WATCH_ADD_FAILED;
			return NULL;
		}
	}
	w->nrings = reg.nrings;
	pthread_rwlock_wrlock(&reg.lock);
	for (slot = 0; slot < WATCH_MAX && reg.w[slot] != NULL; slot++)
		continue;
	if (slot == WATCH_MAX) {
		pthread_rwlock_unlock(&reg.lock);
		watcher_free(w);
		*err = WATCH_ADD_TOO_MANY;
		return NULL;
	}
	reg.w[slot] = w;
	reg.count++;
	/* memcached's watcher takes a gid too (its min_gid): the first
	 * line it sees is one past it */
	atomic_fetch_add(&gid, 1);
	streams_update();
	pthread_rwlock_unlock(&reg.lock);
	return w;
}

/* Removes a watcher: after the exclusive lock no producer holds it. */
void
watch_remove(struct watcher *w)
{
	pthread_rwlock_wrlock(&reg.lock);
	for (unsigned i = 0; i < WATCH_MAX; i++)
		if (reg.w[i] == w) {
			reg.w[i] = NULL;
			reg.count--;
		}
	streams_update();
	pthread_rwlock_unlock(&reg.lock);
	watcher_free(w);
}

/* Consumer: moves what the rings hold to put; true once they are empty.  The notified flag is
 * cleared first, so a line pushed after this look notifies again; when
 * put is full it is set, so producers stop notifying until the output
 * drained (the connection then comes back here by itself). */
bool
watch_drain(struct watcher *w, bool (*put)(void *, const char *, size_t),
    void *ctx)
{
	atomic_store(&w->notified, 0);
	for (unsigned i = 0; i < w->nrings; i++) {
		const char	*p;
		size_t		 n;

		while ((n = watch_ring_peek(&w->rings[i], &p)) > 0) {
			if (!put(ctx, p, n)) {
				atomic_store(&w->notified, 1);
				return false;
			}
			watch_ring_consume(&w->rings[i], n);
		}
	}
	return true;
}

/* Offers a formatted line to every watcher of stream. */
static void
offer(unsigned stream, const char *line, size_t n)
{
	bool other = my_slot < 0 || (unsigned)my_slot + 1 >= reg.nrings;
	unsigned ring;

	pthread_rwlock_rdlock(&reg.lock);
	ring = other ? reg.nrings - 1 : (unsigned)my_slot;
	if (other)
		pthread_mutex_lock(&reg.other);
	for (unsigned i = 0; i < WATCH_MAX; i++) {
		struct watcher *w = reg.w[i];

		if (w == NULL || (w->streams & stream) == 0)
			continue;
		if (!watch_ring_push(&w->rings[ring], line, n)) {
			atomic_fetch_add_explicit(&n_skipped, 1,
			    memory_order_relaxed);
			continue;
		}
		atomic_fetch_add_explicit(&n_sent, 1, memory_order_relaxed);
		if (atomic_exchange(&w->notified, 1) == 0)
			w->notify(w->arg);
	}
	if (other)
		pthread_mutex_unlock(&reg.other);
	pthread_rwlock_unlock(&reg.lock);
}

/* Starts a line: "ts=SEC.USEC gid=N " as memcached prints it (the
 * microseconds not zero-padded); returns its length. */
static int
line_start(char *buf)
{
	struct timeval tv;
	uint64_t g = atomic_fetch_add(&gid, 1) + 1;

	atomic_fetch_add_explicit(&n_written, 1, memory_order_relaxed);
	gettimeofday(&tv, NULL);
	return snprintf(buf, LINE_MAX, "ts=%lld.%d gid=%llu ",
	    (long long)tv.tv_sec, (int)tv.tv_usec, (unsigned long long)g);
}

/* URI-encodes a key as memcached's uriencode: all but letters, digits
 * and "-._~" as %XX; the key is cut at KEY_MAX bytes. */
static const char *
uriencode(char *out, const char *key, size_t nkey)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	if (nkey > KEY_MAX)
		nkey = KEY_MAX;
	for (size_t i = 0; i < nkey; i++) {
		unsigned char c = (unsigned char)key[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			out[j++] = (char)c;
		else {
			out[j++] = '%';
			out[j++] = hex[c >> 4];
			out[j++] = hex[c & 15];
		}
	}
	out[j] = '\0';
	return out;
}

/* Finishes a line begun by line_start and offers it. */
static void
finish(unsigned stream, char *line, int used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
finish(unsigned stream, char *line, int used, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line + used, LINE_MAX - (size_t)used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)(used + n) >= LINE_MAX)
		return;
	offer(stream, line, (size_t)(used + n));
}

/* fetchers: "type=item_get key=K status=S clsid=C cfd=F size=N". */
void
watch_item_get(const char *key, size_t nkey, enum watch_get_status status,
    uint32_t size, int cfd)
{
	static const char *const names[] = { "not_found", "found",
	    "flushed", "expired" };
	char line[LINE_MAX], k[KEY_MAX * 3 + 1];
	int used;

	if (!watch_wants(WATCH_FETCHERS))
		return;
	used = line_start(line);
	finish(WATCH_FETCHERS, line, used,
	    "type=item_get key=%s status=%s clsid=%u cfd=%d size=%u\n",
	    uriencode(k, key, nkey), names[status],
	    status == WATCH_GET_FOUND ? 1u : 0u, cfd,
	    status == WATCH_GET_FOUND ? size : 0);
}

/* mutations: "type=item_store key=K status=S cmd=C ttl=T clsid=1 cfd=F
 * size=N". */
void
watch_item_store(const char *key, size_t nkey,
    enum watch_store_status status, enum watch_store_cmd cmd, uint32_t ttl,
    uint32_t size, int cfd)
{
	static const char *const st[] = { "not_stored", "stored", "exists",
	    "not_found", "too_large", "no_memory" };
	static const char *const cmds[] = { "null", "add", "set", "replace",
	    "append", "prepend", "cas" };
	char line[LINE_MAX], k[KEY_MAX * 3 + 1];
	int used;

	if (!watch_wants(WATCH_MUTATIONS))
		return;
	used = line_start(line);
	finish(WATCH_MUTATIONS, line, used, "type=item_store key=%s "
	    "status=%s cmd=%s ttl=%u clsid=%u cfd=%d size=%u\n",
	    uriencode(k, key, nkey), st[status], cmds[cmd], ttl,
	    status == WATCH_TOO_LARGE ? 0u : 1u, cfd,
	    status == WATCH_TOO_LARGE ? 0 : size);
}

/* evictions: "type=eviction key=K fetch=yes|no ttl=T la=L clsid=1
 * size=N". */
void
watch_eviction(const char *key, size_t nkey, bool fetched, long long ttl,
    uint32_t la, uint32_t size)
{
	char line[LINE_MAX], k[KEY_MAX * 3 + 1];
	int used;

	if (!watch_wants(WATCH_EVICTIONS))
		return;
	used = line_start(line);
	finish(WATCH_EVICTIONS, line, used, "type=eviction key=%s fetch=%s "
	    "ttl=%lld la=%u clsid=1 size=%u\n", uriencode(k, key, nkey),
	    fetched ? "yes" : "no", ttl, la, size);
}

/* store_config.evicted. */
void
watch_evicted(void *ctx, const struct store_evicted *e)
{
	(void)ctx;
	if (watch_wants(WATCH_EVICTIONS))
		watch_eviction(e->key, e->nkey, e->fetched, (long long)e->ttl,
		    e->idle, (uint32_t)e->nbytes);
}

/* deletions (memcached 1.6.19's): "type=deleted key=K cmd=delete|md
 * clsid=1 size=N". */
void
watch_deleted(const char *key, size_t nkey, bool meta, uint32_t size)
{
	char line[LINE_MAX], k[KEY_MAX * 3 + 1];
	int used;

	if (!watch_wants(WATCH_DELETIONS))
		return;
	used = line_start(line);
	finish(WATCH_DELETIONS, line, used, "type=deleted key=%s cmd=%s "
	    "clsid=1 size=%u\n", uriencode(k, key, nkey),
	    meta ? "md" : "delete", size);
}

/* connevents: "type=conn_new rip=IP rport=P transport=T cfd=F" and
 * "type=conn_close ... reason=R cfd=F". */
void
watch_conn_event(bool open, const struct sockaddr *sa, socklen_t salen,
    int cfd, enum watch_close_reason reason)
{
	static const char *const reasons[] = { "error", "normal",
	    "idle_timeout", "shutdown" };
	char line[LINE_MAX], rip[64] = "";
	const char *transport = "local";
	unsigned short rport = 0;
	int used;

	if (!watch_wants(WATCH_CONNEVENTS))
		return;
	if (sa != NULL && salen >= sizeof(struct sockaddr_in) &&
	    sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, rip, sizeof rip);
		rport = ntohs(in->sin_port);
		transport = "tcp";
	} else if (sa != NULL && salen >= sizeof(struct sockaddr_in6) &&
	    sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, rip, sizeof rip);
		rport = ntohs(in6->sin6_port);
		transport = "tcp";
	} else
		strcpy(rip, "unix");
	used = line_start(line);
	if (open)
		finish(WATCH_CONNEVENTS, line, used, "type=conn_new rip=%s "
		    "rport=%hu transport=%s cfd=%d\n", rip, rport, transport,
		    cfd);
	else
		finish(WATCH_CONNEVENTS, line, used, "type=conn_close rip=%s "
		    "rport=%hu transport=%s reason=%s cfd=%d\n", rip, rport,
		    transport, reasons[reason], cfd);
}

/* The logger's counters for "stats". */
void
watch_get_stats(struct watch_stats *s)
{
	s->written = atomic_load_explicit(&n_written, memory_order_relaxed);
	s->sent = atomic_load_explicit(&n_sent, memory_order_relaxed);
	s->skipped = atomic_load_explicit(&n_skipped, memory_order_relaxed);
	s->watchers = atomic_load_explicit(&n_watchers, memory_order_relaxed);
}
