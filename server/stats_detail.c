/*
 * stats_detail.c -- per-prefix counters for "stats detail", after
 * memcached's stats_prefix.c: a fixed array of buckets of singly linked
 * prefix records, each with get/hit/set/delete counts.  Records are only
 * added, until "stats reset" clears them all (as memcached's does).
 *
 * Locking: one mutex guards the whole table.  It is taken only while
 * "stats detail on" is in force, once per counted key, as memcached's
 * stats_lock is.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats_detail.h"

#define DETAIL_BUCKETS	256

struct prefix {
	struct prefix	*next;
	uint64_t	 get, hit, set, del;
	size_t		 n;
	char		 name[];
};

struct stats_detail {
	pthread_mutex_t	 lock;
	char		 delim;		/* -D, ':' by default */
	struct prefix	*b[DETAIL_BUCKETS];
};

/* Creates an empty table whose prefixes end at delim. */
struct stats_detail *
stats_detail_new(char delim)
{
	struct stats_detail *d = calloc(1, sizeof *d);

	if (d != NULL) {
		pthread_mutex_init(&d->lock, NULL);
		d->delim = delim;
	}
	return d;
}

/* Frees the table. */
void
stats_detail_free(struct stats_detail *d)
{
	struct prefix *p, *next;

	if (d == NULL)
		return;
	for (size_t i = 0; i < DETAIL_BUCKETS; i++)
		for (p = d->b[i]; p != NULL; p = next) {
			next = p->next;
			free(p);
		}
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* Drops every record. */
void
stats_detail_clear(struct stats_detail *d)
{
	struct prefix *p, *next;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < DETAIL_BUCKETS; i++) {
		for (p = d->b[i]; p != NULL; p = next) {
			next = p->next;
			free(p);
		}
		d->b[i] = NULL;
	}
	pthread_mutex_unlock(&d->lock);
}

/* FNV-1a over the prefix: a bucket index. */
static size_t
bucket_of(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h % DETAIL_BUCKETS;
}

/* Finds or adds the record of a prefix; lock held; NULL out of memory. */
static struct prefix *
find(struct stats_detail *d, const char *s, size_t n)
{
	size_t		 i = bucket_of(s, n);
	struct prefix	*p;

	for (p = d->b[i]; p != NULL; p = p->next)
		if (p->n == n && memcmp(p->name, s, n) == 0)
			return p;
	if ((p = calloc(1, sizeof *p + n + 1)) == NULL)
		return NULL;
	memcpy(p->name, s, n);
	p->n = n;
	p->next = d->b[i];
	d->b[i] = p;
	return p;
}

/* Counts one operation on key's prefix. */
void
stats_detail_record(struct stats_detail *d, enum stats_detail_op op,
    const char *key, size_t nkey, bool hit)
{
	const char	*delim = memchr(key, d->delim, nkey);
	struct prefix	*p;

	if (delim == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	if ((p = find(d, key, (size_t)(delim - key))) != NULL) {
		switch (op) {
		case STATS_DETAIL_GET:
			p->get++;
			p->hit += hit;
			break;
		case STATS_DETAIL_SET:
			p->set++;
			break;
		case STATS_DETAIL_DEL:
			p->del++;
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/* Reports every prefix as memcached's "stats detail dump" line. */
void
stats_detail_dump(struct stats_detail *d,
    void (*fn)(void *ctx, const char *line, size_t n), void *ctx)
{
	char		 line[300];
	struct prefix	*p;
	int		 n;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < DETAIL_BUCKETS; i++)
		for (p = d->b[i]; p != NULL; p = p->next) {
			n = snprintf(line, sizeof line, "PREFIX %.*s get %llu "
			    "hit %llu set %llu del %llu\r\n", (int)p->n,
			    p->name, (unsigned long long)p->get,
			    (unsigned long long)p->hit,
			    (unsigned long long)p->set,
			    (unsigned long long)p->del);
			if (n > 0 && (size_t)n < sizeof line)
				fn(ctx, line, (size_t)n);
		}
	pthread_mutex_unlock(&d->lock);
}
