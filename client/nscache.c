/*
 * nscache.c -- the client's copy of namespace versions, so that a memoize
 * hit costs one round trip instead of two.
 *
 * A namespace's version lives on the servers under "memo1:<ns>"; every memo
 * key embeds it, so bumping it (cc_ns_invalidate) orphans the namespace's
 * entries at once.  Reading it on every call would double the cost of a
 * hit, so each client keeps the versions it has seen for refresh_ms: a bump
 * made by another client is seen within refresh_ms (the documented
 * staleness bound); one made by this client is seen at once.  When an entry
 * is due, exactly one caller refreshes it while the others go on using the
 * old version.  Versions only move forward: a server that comes back with
 * an older value does not roll a client back.
 *
 * Data structure: a fixed array of hash buckets (FNV-1a of the name) with
 * chained entries, one per namespace ever used; entries live as long as
 * the cache.  Locking: one mutex guards the whole table; it is never held
 * across I/O.
 */
#include "client_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 64

struct ns_entry {
	struct ns_entry	*next;
	uint64_t	 version;
	uint64_t	 checked_ms;	/* when the version was last confirmed */
	bool		 refreshing;	/* a caller is fetching it now */
	char		 name[CC_NAME_MAX + 1];
};

struct nscache {
	pthread_mutex_t	 lock;
	unsigned	 refresh_ms;
	struct ns_entry	*buckets[NBUCKETS];
};

/* Returns the bucket of a name (FNV-1a). */
static unsigned
bucket_of(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h % NBUCKETS;
}

/* Finds the entry of name; the lock is held. */
static struct ns_entry *
find(struct nscache *nc, const char *name)
{
	struct ns_entry *e;

	for (e = nc->buckets[bucket_of(name)]; e != NULL; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* Creates an empty cache. */
struct nscache *
client_nscache_create(unsigned refresh_ms)
{
	struct nscache *nc = calloc(1, sizeof *nc);

	if (nc == NULL)
		return NULL;
	if (pthread_mutex_init(&nc->lock, NULL) != 0) {
		free(nc);
		return NULL;
	}
	nc->refresh_ms = refresh_ms;
	return nc;
}

/* Frees the cache and its entries. */
void
client_nscache_destroy(struct nscache *nc)
{
	struct ns_entry	*e, *next;
	int		 i;

	if (nc == NULL)
		return;
	for (i = 0; i < NBUCKETS; i++)
		for (e = nc->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	pthread_mutex_destroy(&nc->lock);
	free(nc);
}

/* Looks ns up; hands the refresh to the first caller that finds it due. */
enum ns_lookup
client_nscache_lookup(struct nscache *nc, const char *ns, uint64_t now_ms,
    uint64_t *version)
{
	struct ns_entry	*e;
	enum ns_lookup	 r = NS_UNKNOWN;

	pthread_mutex_lock(&nc->lock);
	e = find(nc, ns);
	if (e != NULL) {
		*version = e->version;
		r = NS_HIT;
		/* A clock that went back also makes the entry due. */
		if (!e->refreshing && (now_ms < e->checked_ms ||
		    now_ms - e->checked_ms >= nc->refresh_ms)) {
			e->refreshing = true;
			r = NS_REFRESH;
		}
	}
	pthread_mutex_unlock(&nc->lock);
	return r;
}

/* Records a version seen at now_ms; returns the version now in force. */
uint64_t
client_nscache_store(struct nscache *nc, const char *ns, uint64_t version,
    uint64_t now_ms)
{
	struct ns_entry	*e;
	unsigned	 b;

	pthread_mutex_lock(&nc->lock);
	e = find(nc, ns);
	if (e == NULL && (e = calloc(1, sizeof *e)) != NULL) {
		b = bucket_of(ns);
		memcpy(e->name, ns, strnlen(ns, CC_NAME_MAX));
		e->next = nc->buckets[b];
		nc->buckets[b] = e;
	}
	if (e != NULL) {
		if (version > e->version)
			e->version = version;
		version = e->version;
		e->checked_ms = now_ms;
		e->refreshing = false;
	}
	pthread_mutex_unlock(&nc->lock);
	return version;
}

/* Copies the version known for ns, if any, without side effects. */
bool
client_nscache_peek(struct nscache *nc, const char *ns, uint64_t *version)
{
	struct ns_entry	*e;

	pthread_mutex_lock(&nc->lock);
	if ((e = find(nc, ns)) != NULL)
		*version = e->version;
	pthread_mutex_unlock(&nc->lock);
	return e != NULL;
}

/* Records a failed refresh: keep the old version, retry a period later. */
void
client_nscache_failed(struct nscache *nc, const char *ns, uint64_t now_ms)
{
	struct ns_entry *e;

	pthread_mutex_lock(&nc->lock);
	e = find(nc, ns);
	if (e != NULL) {
		e->checked_ms = now_ms;
		e->refreshing = false;
	}
	pthread_mutex_unlock(&nc->lock);
}
