/*
 * dump.c -- key dumps ("lru_crawler metadump", "stats cachedump") and
 * the rest of the lru_crawler command family, with memcached 1.6.18's
 * replies (dump.h).
 *
 * A dump request is resumable: its first step checks the arguments and
 * answers errors; from then on every step lists batches of DUMP_BATCH
 * items (store_iter_next, one shard lock hold each, items copied out)
 * until the output queue passes its soft limit or DUMP_STEP_LINES lines
 * are out, and returns AGAIN with the cursor in state->iter; the
 * connection resumes it once the client has drained some, or after its
 * worker's other connections had a turn.  The store guarantees that a key present for the
 * whole dump and never changed is listed exactly once (store.h).
 *
 * Every item is in class 1 (proto_dump.h: PROTO_DUMP_CLASS), as the
 * stats families show it: a class list naming 1 (or "all", or "hash")
 * lists every item, one without it lists none.
 *
 * Deliberate differences from memcached 1.6.18: a dump may follow other
 * pipelined commands (memcached refuses: "ERROR cannot pipeline other
 * commands before metadump") and commands pipelined after it are
 * answered after its END (memcached drops them); dumps run on the
 * connection's own worker, any number at once (memcached: one crawler,
 * BUSY for a second); stats cachedump lists every item, not only the
 * hot LRU of the class, with no 2 MB cap; class ids and numbers are
 * read strictly (no "+", no 32-bit wrap); lru_crawler sleep and tocrawl
 * are checked and acknowledged but change nothing (there is no crawler
 * thread to pace), and crawl asks the expiry thread for a pass now.
 *
 * Locking: none of its own; the crawler's on/off switch is an atomic in
 * the server (env->crawler_on).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "dump.h"
#include "proto_dump.h"

/* Items copied out per store step. */
#define DUMP_BATCH	32
/* Lines a step sends at most before it returns AGAIN, so the connection
 * lets its worker's other connections in (about 250 us of work). */
#define DUMP_STEP_LINES	256

/* The tokens of a request's argument: at most 4 are looked at. */
struct words {
	const char	*p[4];
	size_t		 n[4];
	size_t		 count;		/* all of them, even past 4 */
};

/* Splits [s, s + n) at runs of spaces. */
static void
split(const char *s, size_t n, struct words *w)
{
	const char *end = s + n;

	w->count = 0;
	while (s < end) {
		const char *e;

		while (s < end && *s == ' ')
			s++;
		if (s == end)
			break;
		for (e = s; e < end && *e != ' '; e++)
			;
		if (w->count < 4) {
			w->p[w->count] = s;
			w->n[w->count] = (size_t)(e - s);
		}
		w->count++;
		s = e;
	}
}

/* True when word i is the literal lit. */
static bool
word_is(const struct words *w, size_t i, const char *lit)
{
	return i < w->count && i < 4 && w->n[i] == strlen(lit) &&
	    memcmp(w->p[i], lit, w->n[i]) == 0;
}

/* Parses a decimal of digits only that fits in 64 bits. */
static bool
parse_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

/* Queues a fixed reply. */
static enum dispatch_next
say(const struct reply_sink *sink, const char *s)
{
	proto_out_copy(sink->out, s, strlen(s));
	return DISPATCH_DONE;
}

/* True while the crawler is enabled (lru_crawler enable/disable). */
static bool
crawler_on(const struct dispatch_env *env)
{
	return env->crawler_on == NULL ||
	    __atomic_load_n(env->crawler_on, __ATOMIC_RELAXED);
}

/*
 * Lists the store from state->iter on, as metadump lines (meta) or
 * cachedump lines, until the output is full (AGAIN) or the walk, or
 * state->dump_left, is done (END, DONE).
 */
static enum dispatch_next
dump_stream(const struct dispatch_env *env, struct dispatch_state *state,
    const struct reply_sink *sink, bool meta)
{
	struct proto_out	*out = sink->out;
	struct store_iter_entry	 e[DUMP_BATCH];
	struct proto_dump_item	 d;
	size_t			 n, want, lines = 0;
	char			*p;

	while (!out->full(out) && lines < DUMP_STEP_LINES) {
		if (state->iter.done || state->dump_left == 0)
			return say(sink, PROTO_DUMP_R_END);
		want = state->dump_left < DUMP_BATCH ?
		    (size_t)state->dump_left : DUMP_BATCH;
		n = store_iter_next(env->store, &state->iter, e, want);
		for (size_t i = 0; i < n; i++) {
			d = (struct proto_dump_item){ .key = e[i].key,
			    .nkey = e[i].nkey, .exptime = e[i].exptime,
			    .atime = e[i].atime, .cas = e[i].cas,
			    .fetched = e[i].fetched, .nbytes = e[i].nbytes,
			    .size = e[i].size };
			/* NULL: memory ran out, the connection is failing. */
			if ((p = out->space(out, PROTO_DUMP_LINE_MAX)) == NULL)
				return DISPATCH_DONE;
			out->commit(out, meta ? proto_metadump_line(p, &d) :
			    proto_cachedump_line(p, &d));
		}
		state->dump_left -= n;
		lines += n;
	}
	return DISPATCH_AGAIN;
}

/* lru_crawler metadump <classes>: checks as memcached does, in its
 * order, then starts the dump. */
static enum dispatch_next
metadump_start(const struct dispatch_env *env, const struct words *w,
    struct dispatch_state *state, const struct reply_sink *sink)
{
	bool ours;

	if (!crawler_on(env))
		return say(sink, PROTO_DUMP_R_DISABLED);
	if (env->no_dump)
		return say(sink, PROTO_DUMP_R_NOT_ALLOWED);
	switch (proto_dump_classes(w->p[1], w->n[1], &ours)) {
	case PROTO_CLASSES_BAD:
		return say(sink, PROTO_DUMP_R_BADCLASS);
	case PROTO_CLASSES_NONE:
		return say(sink, PROTO_DUMP_R_NOTSTARTED);
	case PROTO_CLASSES_HASH:
		ours = true;
		break;
	case PROTO_CLASSES_SOME:
		break;
	}
	if (!ours)
		return say(sink, PROTO_DUMP_R_END);
	store_iter_init(&state->iter);
	state->dump_left = UINT64_MAX;
	state->cursor = 1;
	return dump_stream(env, state, sink, true);
}

/* lru_crawler crawl <classes>: an expiry pass now. */
static enum dispatch_next
crawl(const struct dispatch_env *env, const struct words *w,
    const struct reply_sink *sink)
{
	bool ours;

	if (!crawler_on(env))
		return say(sink, PROTO_DUMP_R_DISABLED);
	switch (proto_dump_classes(w->p[1], w->n[1], &ours)) {
	case PROTO_CLASSES_BAD:
		return say(sink, PROTO_DUMP_R_BADCLASS);
	case PROTO_CLASSES_NONE:
		return say(sink, PROTO_DUMP_R_NOTSTARTED);
	case PROTO_CLASSES_HASH:
		/* memcached 1.6.18 crawls no hash for expiry. */
		return say(sink, PROTO_DUMP_R_UNKNOWN);
	case PROTO_CLASSES_SOME:
		break;
	}
	store_expiry_kick(env->store);
	return say(sink, PROTO_DUMP_R_OK);
}

/* lru_crawler enable|disable. */
static enum dispatch_next
switch_crawler(const struct dispatch_env *env, bool on,
    const struct reply_sink *sink)
{
	bool was;

	if (env->crawler_on == NULL)
		return say(sink, on ? PROTO_DUMP_R_NO_START : PROTO_DUMP_R_OK);
	was = __atomic_exchange_n(env->crawler_on, on, __ATOMIC_RELAXED);
	/* memcached: enabling a running crawler fails to start a thread. */
	return say(sink, on && was ? PROTO_DUMP_R_NO_START : PROTO_DUMP_R_OK);
}

/* lru_crawler <sub> [arg]. */
enum dispatch_next
dump_lru_crawler(const struct dispatch_env *env, const struct proto_req *req,
    struct dispatch_state *state, const struct reply_sink *sink)
{
	struct words	w;
	uint64_t	v;

	if (state->cursor != 0)
		return dump_stream(env, state, sink, true);
	split(req->arg, req->narg, &w);
	if (w.count == 2 && word_is(&w, 0, "metadump"))
		return metadump_start(env, &w, state, sink);
	if (w.count == 2 && word_is(&w, 0, "crawl"))
		return crawl(env, &w, sink);
	if (w.count == 2 && word_is(&w, 0, "tocrawl"))
		return say(sink, parse_u64(w.p[1], w.n[1], &v) ?
		    PROTO_DUMP_R_OK : PROTO_DUMP_R_FORMAT);
	if (w.count == 2 && word_is(&w, 0, "sleep")) {
		if (!parse_u64(w.p[1], w.n[1], &v))
			return say(sink, PROTO_DUMP_R_FORMAT);
		return say(sink, v > 1000000 ? PROTO_DUMP_R_SLEEP :
		    PROTO_DUMP_R_OK);
	}
	if (w.count == 1 && word_is(&w, 0, "enable"))
		return switch_crawler(env, true, sink);
	if (w.count == 1 && word_is(&w, 0, "disable"))
		return switch_crawler(env, false, sink);
	return say(sink, PROTO_DUMP_R_ERROR);
}

/* True for "stats cachedump ...". */
bool
dump_is_cachedump(const struct proto_req *req)
{
	struct words w;

	split(req->arg, req->narg, &w);
	return word_is(&w, 0, "cachedump");
}

/* stats cachedump <class> <limit> [anything]: limit 0 lists all. */
enum dispatch_next
dump_cachedump(const struct dispatch_env *env, const struct proto_req *req,
    struct dispatch_state *state, const struct reply_sink *sink)
{
	struct words	w;
	uint64_t	id, limit;

	if (state->cursor != 0)
		return dump_stream(env, state, sink, false);
	if (env->no_dump)
		return say(sink, PROTO_DUMP_R_CD_NOT_ALLOWED);
	split(req->arg, req->narg, &w);
	if (w.count < 3)
		return say(sink, PROTO_DUMP_R_CD_LINE);
	/* memcached reads both into 32 bits. */
	if (!parse_u64(w.p[1], w.n[1], &id) ||
	    !parse_u64(w.p[2], w.n[2], &limit) || id > UINT32_MAX ||
	    limit > UINT32_MAX)
		return say(sink, PROTO_DUMP_R_FORMAT);
	if (id >= PROTO_DUMP_CLASSES)
		return say(sink, PROTO_DUMP_R_CD_SLAB);
	if (id != PROTO_DUMP_CLASS)
		return say(sink, PROTO_DUMP_R_END);
	store_iter_init(&state->iter);
	state->dump_left = limit == 0 ? UINT64_MAX : limit;
	state->cursor = 1;
	return dump_stream(env, state, sink, false);
}
