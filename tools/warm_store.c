/*
 * warm_store.c -- puts entries on the servers through libcachedclient and
 * counts what happened to each: stored, skipped (add: the key exists;
 * replace: it does not) or failed, with a message naming the line.
 *
 * Literal plain entries go in batches through cc_store_many (pipelined,
 * one answer per item); a computed value goes alone with cc_set, cc_add
 * or cc_replace; memoize entries go through cc_memo_store, so they carry
 * the envelope and hard TTL cc_memoize expects.  cc_memo_store always
 * sets, so add and replace look first (cc_ns_version, cc_memo_key,
 * cc_get): not atomic, which a nightly warm can live with.
 *
 * Called from the worker threads; no state of its own.
 */
#include "config.h"

#include "warm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Returns the library's mode for ours. */
static cc_store_mode
lib_mode(enum warm_mode m)
{
	switch (m) {
	case WARM_ADD:
		return CC_STORE_ADD;
	case WARM_REPLACE:
		return CC_STORE_REPLACE;
	case WARM_SET:
	default:
		return CC_STORE_SET;
	}
}

/* Counts an entry that was not stored and says why. */
void
warm_store_fail(struct warm_run *run, const struct warm_src *src,
    const char *fmt, ...)
{
	char	msg[WARM_ERR_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	warm_report_log(run->report, "%s:%lu: %s", src->file, src->line, msg);
	warm_report_outcome(run->report, WARM_FAILED, 0);
}

/* Counts the outcome of one store. */
static void
tally(struct warm_run *run, const struct warm_src *src, const char *what,
    cc_status st, size_t len)
{
	if (st == CC_OK)
		warm_report_outcome(run->report, WARM_STORED, len);
	else if (st == CC_NOT_STORED)
		warm_report_outcome(run->report, WARM_SKIPPED, 0);
	else
		warm_store_fail(run, src, "%s: not stored: %s", what,
		    cc_strerror(st));
}

/* Stores a batch and counts every item. */
void
warm_store_batch(struct warm_run *run, struct warm_batch *b)
{
	size_t i;

	(void)cc_store_many(run->client, lib_mode(run->opts->mode), b->items,
	    b->n);
	for (i = 0; i < b->n; i++)
		tally(run, &b->srcs[i], b->items[i].key, b->items[i].status,
		    b->items[i].len);
}

/* Tells whether the memo entry e is cached now (CC_OK or CC_NOT_FOUND). */
static cc_status
memo_exists(struct warm_run *run, const struct warm_entry *e)
{
	char		 key[CC_MEMO_KEY_SIZE];
	uint64_t	 version;
	void		*v = NULL;
	size_t		 len;
	cc_status	 st;

	if ((st = cc_ns_version(run->client, e->ns, &version)) != CC_OK ||
	    (st = cc_memo_key(e->ns, version, e->fn, e->args, e->nargs,
	    key)) != CC_OK)
		return st;
	st = cc_get(run->client, key, &v, &len, NULL);
	free(v);
	return st;
}

/* Stores a memo entry in the run's mode. */
static cc_status
memo_store(struct warm_run *run, const struct warm_entry *e,
    const void *value, size_t len)
{
	cc_status st;

	if (run->opts->mode != WARM_SET) {
		st = memo_exists(run, e);
		if (st != CC_OK && st != CC_NOT_FOUND)
			return st;
		if ((st == CC_OK) == (run->opts->mode == WARM_ADD))
			return CC_NOT_STORED;
	}
	return cc_memo_store(run->client, e->ns, e->fn, e->args, e->nargs,
	    value, len, e->ttl);
}

/* Stores one entry with the given value. */
void
warm_store_entry(struct warm_run *run, const struct warm_entry *e,
    const void *value, size_t len)
{
	char		what[CC_KEY_MAX + 2 * CC_NAME_MAX + 16];
	cc_status	st;

	if (e->memo) {
		snprintf(what, sizeof what, "memo %s %s", e->ns, e->fn);
		st = memo_store(run, e, value, len);
	} else {
		snprintf(what, sizeof what, "%s", e->key);
		switch (run->opts->mode) {
		case WARM_ADD:
			st = cc_add(run->client, e->key, value, len, e->flags,
			    e->ttl);
			break;
		case WARM_REPLACE:
			st = cc_replace(run->client, e->key, value, len,
			    e->flags, e->ttl);
			break;
		case WARM_SET:
		default:
			st = cc_set(run->client, e->key, value, len, e->flags,
			    e->ttl);
			break;
		}
	}
	tally(run, &e->src, what, st, len);
}
