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
	unsigned		 next_ring;	/* consumer: where to start */
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

/* Consumer: moves what the rings hold to put; true once they are
 * empty.  The notified flag is cleared first, so a line pushed after this
 * look notifies again; when put is full it is set, so producers stop
 * notifying until the output drained (the connection then comes back
 * here by itself).  Each drain starts at the next ring, so one busy
 * worker cannot keep the others' lines waiting. */
bool
watch_drain(struct watcher *w, bool (*put)(void *, const char *, size_t),
    void *ctx)
{
	unsigned first = w->next_ring;

	w->next_ring = (first + 1) % w->nrings;
	atomic_store(&w->notified, 0);
	for (unsigned k = 0; k < w->nrings; k++) {
		struct watch_ring	*r = &w->rings[(first + k) % w->nrings];
		const char		*p;
		size_t			 n;

		while ((n = watch_ring_peek(r, &p)) > 0) {
			if (!put(ctx, p, n)) {
				atomic_store(&w->notified, 1);
				return false;
			}
			watch_ring_consume(r, n);
		}
	}
	return true;
}

/* No line is shorter: a ring with less room cannot take one. */
#define LINE_MIN	64

/* Releases what offer_begin took. */
static void
offer_unlock(bool other)
{
	if (other)
		pthread_mutex_unlock(&reg.other);
	pthread_rwlock_unlock(&reg.lock);
}

/* Takes the table (and the others' ring, off a worker) for an event of
 * stream, the ring of the calling thread in *ring.  False (all released)
 * when no watcher's ring has room for any line: the event is then counted
 * skipped for each, and costs no formatting. */
static bool
offer_begin(unsigned stream, unsigned *ring)
{
	bool other = my_slot < 0 || (unsigned)my_slot + 1 >= reg.nrings;

	pthread_rwlock_rdlock(&reg.lock);
	*ring = other ? reg.nrings - 1 : (unsigned)my_slot;
	if (other)
		pthread_mutex_lock(&reg.other);
	for (unsigned i = 0; i < WATCH_MAX; i++) {
		struct watcher *w = reg.w[i];

		if (w != NULL && (w->streams & stream) != 0 &&
		    watch_ring_room(&w->rings[*ring]) >= LINE_MIN)
			return true;
	}
	atomic_fetch_add(&gid, 1);
	atomic_fetch_add_explicit(&n_written, 1, memory_order_relaxed);
	for (unsigned i = 0; i < WATCH_MAX; i++) {
		struct watcher *w = reg.w[i];

		if (w != NULL && (w->streams & stream) != 0) {
			watch_ring_skip(&w->rings[*ring]);
			atomic_fetch_add_explicit(&n_skipped, 1,
			    memory_order_relaxed);
		}
	}
	offer_unlock(other);
	return false;
}

/* Offers a formatted line to every watcher of stream, then releases
 * what offer_begin took. */
static void
offer_end(unsigned stream, unsigned ring, const char *line, size_t n)
{
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
	offer_unlock(ring + 1 == reg.nrings);
}

/* A line being built: formatted by hand, not by printf, which cost
 * the workers a fifth of their time while a watcher listened. */
struct line {
	char	buf[LINE_MAX];
	size_t	n;
};

/* Appends [p, p + k), cut where the line is full (by its size, never:
 * LINE_MAX holds the longest key encoded and every field). */
static void
l_mem(struct line *l, const char *p, size_t k)
{
	if (k > LINE_MAX - l->n)
		k = LINE_MAX - l->n;
	memcpy(l->buf + l->n, p, k);
	l->n += k;
}

static void
l_str(struct line *l, const char *s)
{
	l_mem(l, s, strlen(s));
}

static void
l_u64(struct line *l, uint64_t v)
{
	char	t[20];
	size_t	i = sizeof t;

	do
		t[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	l_mem(l, t + i, sizeof t - i);
}

static void
l_i64(struct line *l, int64_t v)
{
	if (v < 0) {
		l_mem(l, "-", 1);
		l_u64(l, (uint64_t)0 - (uint64_t)v);
	} else
		l_u64(l, (uint64_t)v);
}

/* Appends a key URI-encoded as memcached's uriencode: all but letters,
 * digits and "-._~" as %XX; the key is cut at KEY_MAX bytes. */
static void
l_key(struct line *l, const char *key, size_t nkey)
{
	static const char hex[] = "0123456789ABCDEF";
	char	out[KEY_MAX * 3];
	size_t	j = 0;

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
	l_mem(l, out, j);
}

/* Starts a line: "ts=SEC.USEC gid=N " as memcached prints it (the
 * microseconds not zero-padded). */
static void
line_start(struct line *l)
{
	struct timeval tv;
	uint64_t g = atomic_fetch_add(&gid, 1) + 1;

	atomic_fetch_add_explicit(&n_written, 1, memory_order_relaxed);
	gettimeofday(&tv, NULL);
	l->n = 0;
	l_str(l, "ts=");
	l_i64(l, (int64_t)tv.tv_sec);
	l_str(l, ".");
	l_i64(l, (int64_t)tv.tv_usec);
	l_str(l, " gid=");
	l_u64(l, g);
	l_str(l, " ");
}

/* fetchers: "type=item_get key=K status=S clsid=C cfd=F size=N". */
void
watch_item_get(const char *key, size_t nkey, enum watch_get_status status,
    uint32_t size, int cfd)
{
	static const char *const names[] = { " status=not_found clsid=0",
	    " status=found clsid=1", " status=flushed clsid=0",
	    " status=expired clsid=0" };
	struct line l;
	unsigned ring;

	if (!watch_wants(WATCH_FETCHERS) || !offer_begin(WATCH_FETCHERS, &ring))
		return;
	line_start(&l);
	l_str(&l, "type=item_get key=");
	l_key(&l, key, nkey);
	l_str(&l, names[status]);
	l_str(&l, " cfd=");
	l_i64(&l, cfd);
	l_str(&l, " size=");
	l_u64(&l, status == WATCH_GET_FOUND ? size : 0);
	l_str(&l, "\n");
	offer_end(WATCH_FETCHERS, ring, l.buf, l.n);
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
	struct line l;
	unsigned ring;

	if (!watch_wants(WATCH_MUTATIONS) || !offer_begin(WATCH_MUTATIONS, &ring))
		return;
	line_start(&l);
	l_str(&l, "type=item_store key=");
	l_key(&l, key, nkey);
	l_str(&l, " status=");
	l_str(&l, st[status]);
	l_str(&l, " cmd=");
	l_str(&l, cmds[cmd]);
	l_str(&l, " ttl=");
	l_u64(&l, ttl);
	l_str(&l, status == WATCH_TOO_LARGE ? " clsid=0 cfd=" : " clsid=1 cfd=");
	l_i64(&l, cfd);
	l_str(&l, " size=");
	l_u64(&l, status == WATCH_TOO_LARGE ? 0 : size);
	l_str(&l, "\n");
	offer_end(WATCH_MUTATIONS, ring, l.buf, l.n);
}

/* evictions: "type=eviction key=K fetch=yes|no ttl=T la=L clsid=1
 * size=N". */
void
watch_eviction(const char *key, size_t nkey, bool fetched, long long ttl,
    uint32_t la, uint32_t size)
{
	struct line l;
	unsigned ring;

	if (!watch_wants(WATCH_EVICTIONS) || !offer_begin(WATCH_EVICTIONS, &ring))
		return;
	line_start(&l);
	l_str(&l, "type=eviction key=");
	l_key(&l, key, nkey);
	l_str(&l, fetched ? " fetch=yes ttl=" : " fetch=no ttl=");
	l_i64(&l, ttl);
	l_str(&l, " la=");
	l_u64(&l, la);
	l_str(&l, " clsid=1 size=");
	l_u64(&l, size);
	l_str(&l, "\n");
	offer_end(WATCH_EVICTIONS, ring, l.buf, l.n);
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
	struct line l;
	unsigned ring;

	if (!watch_wants(WATCH_DELETIONS) || !offer_begin(WATCH_DELETIONS, &ring))
		return;
	line_start(&l);
	l_str(&l, "type=deleted key=");
	l_key(&l, key, nkey);
	l_str(&l, meta ? " cmd=md clsid=1 size=" : " cmd=delete clsid=1 size=");
	l_u64(&l, size);
	l_str(&l, "\n");
	offer_end(WATCH_DELETIONS, ring, l.buf, l.n);
}

/* connevents: "type=conn_new rip=IP rport=P transport=T cfd=F" and
 * "type=conn_close ... reason=R cfd=F". */
void
watch_conn_event(bool open, const struct sockaddr *sa, socklen_t salen,
    int cfd, enum watch_close_reason reason)
{
	static const char *const reasons[] = { "error", "normal",
	    "idle_timeout", "shutdown" };
	struct line l;
	unsigned ring;
	char rip[64] = "";
	const char *transport = "local";
	unsigned short rport = 0;
	int n;

	if (!watch_wants(WATCH_CONNEVENTS) ||
	    !offer_begin(WATCH_CONNEVENTS, &ring))
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
	line_start(&l);
	if (open)
		n = snprintf(l.buf + l.n, LINE_MAX - l.n, "type=conn_new rip=%s "
		    "rport=%hu transport=%s cfd=%d\n", rip, rport, transport,
		    cfd);
	else
		n = snprintf(l.buf + l.n, LINE_MAX - l.n, "type=conn_close "
		    "rip=%s rport=%hu transport=%s reason=%s cfd=%d\n", rip,
		    rport, transport, reasons[reason], cfd);
	if (n < 0 || (size_t)n >= LINE_MAX - l.n)
		n = 0;
	offer_end(WATCH_CONNEVENTS, ring, l.buf, l.n + (size_t)n);
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
