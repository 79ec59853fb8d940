/*
 * dump.h -- key dumps and the LRU crawler's commands, as memcached 1.6.18
 * answers them: "lru_crawler metadump|crawl|enable|disable|sleep|tocrawl"
 * and "stats cachedump".  Dispatch hands these requests here; a dump is
 * a resumable request (DISPATCH_AGAIN) that lists the store a batch at a
 * time through the store's iteration API (store.h: store_iter_next),
 * keeping its place in the request's dispatch_state, so a dump of
 * millions of keys holds neither a lock nor more than the output queue's
 * soft limit of memory.
 */
#ifndef CACHED_DUMP_H
#define CACHED_DUMP_H

#include <stdbool.h>

#include "dispatch.h"

/* lru_crawler <sub> [arg]; resumable. */
enum dispatch_next dump_lru_crawler(const struct dispatch_env *env,
	    const struct proto_req *req, struct dispatch_state *state,
	    const struct reply_sink *sink);
/* True for "stats cachedump ..." (a stats request dump_cachedump runs). */
bool	dump_is_cachedump(const struct proto_req *req);
/* stats cachedump <class> <limit>; resumable. */
enum dispatch_next dump_cachedump(const struct dispatch_env *env,
	    const struct proto_req *req, struct dispatch_state *state,
	    const struct reply_sink *sink);

#endif
