/*
 * stats_detail.h -- "stats detail on|off|dump": memcached's per-prefix
 * counters.  A key's prefix is what comes before its first ':' (memcached's
 * default -D delimiter); keys without one are not counted, as in memcached.
 */
#ifndef CACHED_STATS_DETAIL_H
#define CACHED_STATS_DETAIL_H

#include <stdbool.h>
#include <stddef.h>

enum stats_detail_op {
	STATS_DETAIL_GET,	/* a get of one key (hit says whether found) */
	STATS_DETAIL_SET,	/* a storage command */
	STATS_DETAIL_DEL,	/* a delete */
};

struct stats_detail;

/* Creates an empty table whose key prefixes end at delim (-D); NULL when
 * out of memory. */
struct stats_detail *stats_detail_new(char delim);
/* Frees the table (NULL is fine). */
void	stats_detail_free(struct stats_detail *d);
/* Drops every record ("stats reset"). */
void	stats_detail_clear(struct stats_detail *d);
/* Counts one operation on key's prefix; safe from any thread. */
void	stats_detail_record(struct stats_detail *d, enum stats_detail_op op,
	    const char *key, size_t nkey, bool hit);
/* Calls fn with each "PREFIX <p> get N hit N set N del N\r\n" line, under
 * the table's lock (fn must not call back in). */
void	stats_detail_dump(struct stats_detail *d,
	    void (*fn)(void *ctx, const char *line, size_t n), void *ctx);

#endif
