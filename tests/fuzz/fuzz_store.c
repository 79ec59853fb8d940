/*
 * fuzz_store.c -- libFuzzer target: the text parser and the server's
 * real dispatch (server/dispatch.c) driving a real store, with a tiny
 * memory limit and the expiry thread running.
 *
 * The input is one client's byte stream.  Each request is parsed with
 * proto_text.parse and run through dispatch_request / dispatch_value as
 * server/conn.c runs it (a value is streamed into the reserved item from
 * the input, a refused one swallowed, a multi-key get resumed while the
 * output says it is full, which here it does after every hit).  Results
 * come back through a capture codec: its status/hit/number/end composers
 * record the neutral results dispatch reported instead of writing bytes,
 * and each is checked against a shadow model of what the store must hold.
 * Meta commands (mg ms md ma mn me) run through the same dispatch, their
 * values streamed the same way, but the model does not restate their
 * flags: a key a meta command names becomes unknown, and its results go
 * unchecked until a set, add, replace, cas, delete or immediate flush
 * makes it known again.  Pins, the counters and the final drain are
 * checked for them as for every other command.
 * Two pseudo-commands are taken before dispatch: "verbosity N" advances
 * the fake clock by N seconds and runs an expiry pass; "stats" checks the
 * counters.  The store is created per input, so state lives exactly one
 * input long.
 *
 * What is checked:
 *   - a hit returns exactly the value, flags and CAS the model last wrote
 *     (a new CAS after every store), and never an item the model knows is
 *     deleted, flushed or expired; hits come in key order, END once;
 *   - add/replace/cas/append/prepend/incr/delete/touch answer what the
 *     model says; while nothing was evicted a miss is also a bug;
 *   - `bytes` never passes the memory held, which never passes the limit, curr_items never exceeds what the
 *     model may still hold, and after a final flush it all drains to 0;
 *   - items handed out by get stay intact while held (up to PINS of them
 *     are kept across later commands, as the server's output queue does),
 *     however the key is replaced, evicted or expired meanwhile.
 *
 * Data structure: the model is a growable array of entries, one per key
 * ever named, searched linearly (inputs are a few KB).  `rec` is what the
 * capture codec recorded for the current request: statuses, the number,
 * ENDs, and the hits, whose item references it holds until the request is
 * checked and they become pins.  `present` means
 * linked as far as our own commands know; visible = present, unexpired.
 * Eviction may drop a present item at any time, so a miss is only a bug
 * while the store's eviction counter is still 0.
 *
 * Locking: the fake clock is an atomic read by the expiry thread; the
 * model is touched by the fuzzing thread only.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "fuzz.h"
#include "proto.h"
#include "store.h"

#define START_TIME	1000000000u	/* 2001: absolute times below */
#define MEM_LIMIT	(96 * 1024)
#define ITEM_MAX	(8 * 1024)
#define PINS		8
#define DRAIN_ROUNDS	1000

struct entry {
	char		 key[PROTO_KEY_MAX];
	size_t		 nkey;
	bool		 present;
	bool		 unknown;	/* a meta command changed it: unchecked
					 * until a command makes it known */
	char		*val;
	size_t		 nval;
	uint32_t	 flags;
	uint32_t	 exptime;	/* absolute, as the store has it */
	uint32_t	 born;		/* clock when the item was made */
	uint64_t	 cas;		/* 0: unknown (after a store) */
	uint64_t	 old_cas;	/* the last known one before that */
};

struct pin {
	item_t		*it;
	char		*copy;		/* value + "\r\n" when got */
	size_t		 n;
};

/* What dispatch reported for one request through the capture codec. */
/* A hit as the codec saw it: a reference held until checked, or (a get,
 * composed under the store lock without a reference) a copy. */
struct hit {
	item_t		*it;		/* NULL: copied */
	char		*key, *val;
	size_t		 nkey, nval;
	uint32_t	 flags;
	uint64_t	 cas;
};

struct rec {
	unsigned	 nstatus;
	enum proto_reply status;	/* the last one */
	unsigned	 nnumber;
	uint64_t	 number;
	unsigned	 nend;
	struct hit	*hit;		/* hits, until checked */
	size_t		 nhit;
	size_t		 caphit;
	unsigned	 step_hits;	/* hits in this dispatch step */
};

struct fuzz {
	store_t		*st;
	struct thread_stats ts;
	struct dispatch_env env;
	struct proto_out out;
	struct reply_sink sink;
	struct rec	 rec;
	struct entry	*e;
	size_t		 ne;
	size_t		 cap;
	bool		 flush_pending;
	uint32_t	 flush_due;
	struct pin	 pins[PINS];
	unsigned	 npin;
	const char	*in;		/* the input stream */
	size_t		 len;
	size_t		 pos;
};

static _Atomic uint32_t fake_now;

/* The store's clock. */
static uint32_t
fake_clock(void *ctx)
{
	(void)ctx;
	return atomic_load_explicit(&fake_now, memory_order_relaxed);
}

/* The model's view of the clock. */
static uint32_t
now(void)
{
	return fake_clock(NULL);
}

/* ---- the model -------------------------------------------------------- */

/* Returns the model entry of a key, creating an absent one. */
static struct entry *
model_get(struct fuzz *f, const char *key, size_t nkey)
{
	struct entry *e;

	for (size_t i = 0; i < f->ne; i++)
		if (f->e[i].nkey == nkey && memcmp(f->e[i].key, key, nkey) == 0)
			return &f->e[i];
	if (f->ne == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->e = realloc(f->e, f->cap * sizeof *f->e);
		FUZZ_CHECK(f->e != NULL);
	}
	e = &f->e[f->ne++];
	memset(e, 0, sizeof *e);
	memcpy(e->key, key, nkey);
	e->nkey = nkey;
	return e;
}

/* The store's reading of a wire exptime, restated. */
static uint32_t
model_exptime(int64_t exptime)
{
	uint64_t abs;

	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return 1;
	abs = exptime <= STORE_REALTIME_MAXDELTA ?
	    (uint64_t)now() + (uint64_t)exptime : (uint64_t)exptime;
	return abs > UINT32_MAX ? UINT32_MAX : (uint32_t)abs;
}

/* True when an absolute exptime has passed. */
static bool
expired(uint32_t exptime)
{
	return exptime != 0 && exptime <= now();
}

/* True when the model says a get must (absent eviction) find the key. */
static bool
visible(const struct entry *e)
{
	return e->present && !expired(e->exptime);
}

/* Records that the key is not linked any more. */
static void
model_drop(struct entry *e)
{
	e->present = false;
	free(e->val);
	e->val = NULL;
	e->nval = 0;
}

/* Records that the key is known to be absent. */
static void
model_absent(struct entry *e)
{
	model_drop(e);
	e->unknown = false;
}

/* Records a freshly linked item's value; born-expired items are never
 * linked.  Its CAS is new, learnt at the next hit (dispatch does not
 * report it). */
static void
model_put(struct entry *e, const char *val, size_t n, uint32_t flags,
    uint32_t exptime)
{
	char *copy = malloc(n > 0 ? n : 1);

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, val, n);
	model_drop(e);
	if (expired(exptime)) {
		free(copy);
		return;
	}
	e->present = true;
	e->val = copy;
	e->nval = n;
	e->flags = flags;
	e->exptime = exptime;
	e->born = now();
	if (e->cas != 0)
		e->old_cas = e->cas;
	e->cas = 0;
}

/* Applies a delayed flush that came due: items born before it die. */
static void
model_flush_sync(struct fuzz *f)
{
	if (!f->flush_pending || f->flush_due > now())
		return;
	for (size_t i = 0; i < f->ne; i++)
		if (f->e[i].born < f->flush_due)
			model_drop(&f->e[i]);
	f->flush_pending = false;
}

/* True while the store has evicted nothing, so misses are bugs. */
static bool
no_evictions(struct fuzz *f)
{
	struct store_stats s;

	store_get_stats(f->st, &s);
	return s.evictions == 0;
}

/* ---- pinned items ----------------------------------------------------- */

/* Checks a pinned item still holds what it held when got, releases it. */
static void
pin_release(struct fuzz *f, struct pin *p)
{
	FUZZ_CHECK(item_nbytes(p->it) == p->n);
	FUZZ_CHECK(memcmp(item_value(p->it), p->copy, p->n) == 0);
	store_release(f->st, p->it);
	free(p->copy);
	p->it = NULL;
}

/* Keeps a reference to a hit for a while, as a slow reply would. */
static void
pin(struct fuzz *f, item_t *it)
{
	struct pin *p = &f->pins[f->npin++ % PINS];

	if (p->it != NULL)
		pin_release(f, p);
	p->n = item_nbytes(it);
	p->copy = malloc(p->n);
	FUZZ_CHECK(p->copy != NULL);
	memcpy(p->copy, item_value(it), p->n);
	p->it = it;
}

/* ---- the capture codec ----------------------------------------------- */

/* The fuzz state that embeds output o. */
static struct fuzz *
fuzz_of(const struct proto_out *o)
{
	return (struct fuzz *)(void *)((char *)o - offsetof(struct fuzz, out));
}

/* codec: records a fixed outcome. */
static void
cap_status(struct proto_out *o, const struct proto_req *req,
    enum proto_reply r)
{
	struct rec *rc = &fuzz_of(o)->rec;

	(void)req;
	rc->nstatus++;
	rc->status = r;
}

/* Adds a hit to the record; counts it for out_full. */
static struct hit *
hit_add(struct rec *rc)
{
	if (rc->nhit == rc->caphit) {
		rc->caphit = rc->caphit ? rc->caphit * 2 : 16;
		rc->hit = realloc(rc->hit, rc->caphit * sizeof *rc->hit);
		FUZZ_CHECK(rc->hit != NULL);
	}
	rc->step_hits++;
	return &rc->hit[rc->nhit++];
}

/* Pins a held hit; frees a copied one. */
static void
hit_done(struct fuzz *f, struct hit *h)
{
	if (h->it != NULL) {
		pin(f, h->it);
		return;
	}
	free(h->key);
	free(h->val);
}

/* codec: holds a hit's reference until the request is checked. */
static void
cap_hit(struct proto_out *o, const struct proto_req *req,
    const struct proto_hit *h)
{
	struct rec	*rc = &fuzz_of(o)->rec;
	item_t		*it = h->ref;
	struct hit	*hr;

	/* An ms reply tells of the item it stored without holding it; a
	 * get's hit is composed under the store lock and copied. */
	if (it == NULL && (req->cmd == PROTO_CMD_GET ||
	    req->cmd == PROTO_CMD_GETS)) {
		hr = hit_add(rc);
		hr->it = NULL;
		hr->nkey = h->nkey;
		hr->nval = h->nbytes;
		hr->key = malloc(h->nkey + 1);
		hr->val = malloc(h->nbytes + 1);
		FUZZ_CHECK(hr->key != NULL && hr->val != NULL);
		memcpy(hr->key, h->key, h->nkey);
		memcpy(hr->val, h->value, h->nbytes);
		hr->flags = h->flags;
		hr->cas = h->cas;
		return;
	}
	if (it == NULL) {
		FUZZ_CHECK(req->cmd == PROTO_CMD_MS && !h->with_value);
		return;
	}
	/* The neutral hit is the item's own view. */
	FUZZ_CHECK(h->key == item_key(it) && h->nkey == item_nkey(it));
	FUZZ_CHECK(h->value == item_value(it));
	/* ma shows the digits of a counter that decr left padded with
	 * spaces (as memcached does); every other hit is the whole value. */
	if (req->cmd == PROTO_CMD_MA) {
		FUZZ_CHECK(h->nbytes <= item_nbytes(it));
		for (size_t i = h->nbytes; i < item_nbytes(it); i++)
			FUZZ_CHECK(item_value(it)[i] == ' ');
	} else
		FUZZ_CHECK(h->nbytes == item_nbytes(it));
	FUZZ_CHECK(h->flags == item_flags(it) && h->cas == item_cas(it));
	hr = hit_add(rc);
	hr->it = it;
	hr->key = (char *)item_key(it);
	hr->nkey = item_nkey(it);
	hr->val = (char *)item_value(it);
	hr->nval = item_nbytes(it);
	hr->flags = item_flags(it);
	hr->cas = item_cas(it);
}

/* codec: records the value of incr/decr. */
static void
cap_number(struct proto_out *o, const struct proto_req *req, uint64_t v)
{
	struct rec *rc = &fuzz_of(o)->rec;

	(void)req;
	rc->nnumber++;
	rc->number = v;
}

/* codec: stats lines never come (stats is taken before dispatch). */
static void
cap_stat(struct proto_out *o, const struct proto_req *req, const char *name,
    const char *value, size_t nvalue)
{
	(void)o, (void)req, (void)name, (void)value, (void)nvalue;
	FUZZ_CHECK(!"stat from dispatch");
}

/* codec: counts the ends of retrievals. */
static void
cap_end(struct proto_out *o, const struct proto_req *req)
{
	(void)req;
	fuzz_of(o)->rec.nend++;
}

/* codec: the version line, not checked. */
static void
cap_version(struct proto_out *o, const struct proto_req *req,
    const char *version)
{
	(void)o, (void)req;
	FUZZ_CHECK(version != NULL);
}

static const struct proto_codec capture_codec = {
	.name = "capture",
	.parse = proto_parse,
	.status = cap_status,
	.hit = cap_hit,
	.number = cap_number,
	.stat = cap_stat,
	.end = cap_end,
	.version = cap_version,
};

/* proto_out: the capture codec writes no bytes. */
static char *
out_space(struct proto_out *o, size_t n)
{
	(void)o, (void)n;
	return NULL;
}

/* proto_out: nothing to commit. */
static void
out_commit(struct proto_out *o, size_t used)
{
	(void)o, (void)used;
}

/* proto_out: never called; hits keep their references. */
static void
out_value(struct proto_out *o, const char *data, size_t n, void *ref)
{
	(void)data, (void)n;
	store_release(fuzz_of(o)->st, ref);
}

/* proto_out: full after every hit, so multi-key gets resume a hit at a
 * time. */
static bool
out_full(const struct proto_out *o)
{
	return fuzz_of(o)->rec.step_hits > 0;
}

/* Runs a request through dispatch until it is not AGAIN. */
static enum dispatch_next
dispatch(struct fuzz *f, const struct proto_req *req,
    struct dispatch_state *ds)
{
	enum dispatch_next next;

	memset(&f->rec, 0, offsetof(struct rec, hit));
	f->rec.nhit = 0;
	memset(ds, 0, sizeof *ds);
	do {
		f->rec.step_hits = 0;
		next = dispatch_request(&f->env, req, ds, &f->sink);
		FUZZ_CHECK(next != DISPATCH_AGAIN || f->rec.step_hits == 1);
	} while (next == DISPATCH_AGAIN);
	return next;
}

/* The store status a neutral result stands for. */
static store_status_t
status_of(enum proto_reply r)
{
	switch (r) {
	case PROTO_R_STORED:
		return STORE_STORED;
	case PROTO_R_NOT_STORED:
		return STORE_NOT_STORED;
	case PROTO_R_EXISTS:
		return STORE_EXISTS;
	case PROTO_R_NOT_FOUND:
		return STORE_NOT_FOUND;
	case PROTO_R_DELETED:
		return STORE_DELETED;
	case PROTO_R_TOUCHED:
		return STORE_TOUCHED;
	case PROTO_R_NON_NUMERIC:
		return STORE_NON_NUMERIC;
	case PROTO_R_TOO_LARGE:
		return STORE_TOO_LARGE;
	case PROTO_R_NO_MEMORY:
		return STORE_NO_MEMORY;
	case PROTO_R_OK:
		return STORE_OK;
	default:
		FUZZ_CHECK(!"unexpected reply");
		return STORE_OK;
	}
}

/* The one status a request reported, as a store status. */
static store_status_t
one_status(struct fuzz *f)
{
	FUZZ_CHECK(f->rec.nstatus == 1 && f->rec.nnumber == 0 &&
	    f->rec.nend == 0 && f->rec.nhit == 0);
	return status_of(f->rec.status);
}

/* ---- commands --------------------------------------------------------- */

/* Checks a hit against the model and keeps it pinned. */
static void
check_hit(struct fuzz *f, struct entry *e, struct hit *h)
{
	FUZZ_CHECK(visible(e));
	FUZZ_CHECK(h->nkey == e->nkey && memcmp(h->key, e->key, e->nkey) == 0);
	FUZZ_CHECK(h->nval == e->nval);
	FUZZ_CHECK(memcmp(h->val, e->val, e->nval) == 0);
	FUZZ_CHECK(h->flags == e->flags);
	if (e->cas != 0)
		FUZZ_CHECK(h->cas == e->cas);
	else {
		/* Every store gives the item a CAS of its own. */
		FUZZ_CHECK(h->cas != 0 && h->cas != e->old_cas);
		e->cas = h->cas;
	}
	hit_done(f, h);
}

/* True when hit h is the hit for key. */
static bool
hit_is(const struct hit *h, const char *key, size_t nkey)
{
	return h->nkey == nkey && memcmp(h->key, key, nkey) == 0;
}

/* get, gets, gat, gats: a hit per key found, in key order, then END. */
static void
cmd_retrieve(struct fuzz *f, const struct proto_req *req)
{
	bool			 touch = req->cmd == PROTO_CMD_GAT ||
				     req->cmd == PROTO_CMD_GATS;
	uint32_t		 exp = model_exptime(req->exptime);
	size_t			 cursor = 0, nkey, k = 0;
	const char		*key;
	struct dispatch_state	 ds;

	FUZZ_CHECK(dispatch(f, req, &ds) == DISPATCH_DONE);
	FUZZ_CHECK(f->rec.nend == 1 && f->rec.nstatus == 0 &&
	    f->rec.nnumber == 0);
	while (proto_next_key(req, &cursor, &key, &nkey)) {
		struct entry *e = model_get(f, key, nkey);

		if (e->unknown) {
			if (k < f->rec.nhit && hit_is(&f->rec.hit[k], key,
			    nkey))
				hit_done(f, &f->rec.hit[k++]);
			continue;
		}
		if (k == f->rec.nhit || !hit_is(&f->rec.hit[k], key, nkey)) {
			FUZZ_CHECK(!visible(e) || !no_evictions(f));
			model_drop(e);
			continue;
		}
		check_hit(f, e, &f->rec.hit[k++]);
		if (touch) {
			e->exptime = exp;
			if (expired(exp))
				model_drop(e);
		}
	}
	FUZZ_CHECK(k == f->rec.nhit);
	f->rec.nhit = 0;
}

/* Checks a set/add/replace/cas result and updates the model. */
static void
commit_plain(struct fuzz *f, struct entry *e, const struct proto_req *req,
    const char *val, store_status_t st)
{
	bool was = visible(e), strict = no_evictions(f);

	if (e->unknown) {
		if (st == STORE_STORED) {
			e->unknown = false;
			model_put(e, val, req->nbytes, req->flags,
			    model_exptime(req->exptime));
		}
		return;
	}
	switch (req->cmd) {
	case PROTO_CMD_SET:
		FUZZ_CHECK(st == STORE_STORED);
		break;
	case PROTO_CMD_ADD:
		FUZZ_CHECK(st == STORE_STORED || st == STORE_NOT_STORED);
		FUZZ_CHECK(st == STORE_STORED ? !was || !strict : was);
		break;
	case PROTO_CMD_REPLACE:
		FUZZ_CHECK(st == STORE_STORED || st == STORE_NOT_STORED);
		FUZZ_CHECK(st == STORE_STORED ? was : !was || !strict);
		break;
	default:	/* cas */
		FUZZ_CHECK(st == STORE_STORED || st == STORE_EXISTS ||
		    st == STORE_NOT_FOUND);
		if (st == STORE_NOT_FOUND)
			FUZZ_CHECK(!was || !strict);
		else
			FUZZ_CHECK(was && (e->cas == 0 ||
			    (e->cas == req->cas) == (st == STORE_STORED)));
		break;
	}
	if (st == STORE_STORED)
		model_put(e, val, req->nbytes, req->flags,
		    model_exptime(req->exptime));
	else if (st != STORE_EXISTS && req->cmd != PROTO_CMD_ADD)
		model_drop(e);
}

/* Checks an append/prepend result and updates the model. */
static void
commit_concat(struct fuzz *f, struct entry *e, const struct proto_req *req,
    const char *val, store_status_t st)
{
	bool	 prepend = req->cmd == PROTO_CMD_PREPEND;
	size_t	 n;
	char	*cat;

	if (e->unknown)
		return;
	if (st == STORE_NOT_STORED) {
		FUZZ_CHECK(!visible(e) || !no_evictions(f));
		model_drop(e);
		return;
	}
	if (st != STORE_STORED) {
		FUZZ_CHECK(st == STORE_TOO_LARGE || st == STORE_NO_MEMORY);
		return;
	}
	FUZZ_CHECK(visible(e));
	n = e->nval + req->nbytes;
	FUZZ_CHECK(n <= ITEM_MAX);
	cat = malloc(n > 0 ? n : 1);
	FUZZ_CHECK(cat != NULL);
	memcpy(cat, prepend ? val : e->val, prepend ? req->nbytes : e->nval);
	memcpy(cat + (prepend ? req->nbytes : e->nval), prepend ? e->val : val,
	    prepend ? e->nval : req->nbytes);
	model_put(e, cat, n, e->flags, e->exptime);
	free(cat);
}

/* set, add, replace, append, prepend, cas: dispatch reserves, the value
 * streams in from the input, dispatch_value commits.  Returns false when
 * the connection would close. */
static bool
cmd_store(struct fuzz *f, const struct proto_req *req)
{
	struct entry		*e = model_get(f, req->key, req->nkey);
	size_t			 need = (size_t)req->nbytes + 2;
	const char		*val = f->in + f->pos;
	uint64_t		 too_large = f->ts.store_too_large;
	struct dispatch_state	 ds;
	enum dispatch_next	 next;
	store_status_t		 st;

	next = dispatch(f, req, &ds);
	if (next == DISPATCH_SWALLOW) {
		st = one_status(f);
		FUZZ_CHECK(st == (req->nbytes > ITEM_MAX ? STORE_TOO_LARGE :
		    STORE_NO_MEMORY));
		FUZZ_CHECK(ds.swallow == need && ds.it == NULL);
		FUZZ_CHECK(f->ts.store_too_large ==
		    too_large + (st == STORE_TOO_LARGE));
		/* dispatch: a failed set leaves no stale value behind. */
		if (req->cmd == PROTO_CMD_SET)
			model_absent(e);
		f->pos += f->len - f->pos < need ? f->len - f->pos : need;
		return true;
	}
	FUZZ_CHECK(next == DISPATCH_VALUE && ds.it != NULL &&
	    f->rec.nstatus == 0);
	FUZZ_CHECK(item_nbytes(ds.it) == req->nbytes);
	if (f->len - f->pos < need) {
		/* The input ends inside the value: the connection goes. */
		store_release(f->st, ds.it);
		return false;
	}
	memcpy(item_value_mut(ds.it), val, req->nbytes);
	f->pos += need;
	next = dispatch_value(&f->env, req, &ds, val + req->nbytes, &f->sink);
	FUZZ_CHECK(ds.it == NULL);
	if (!proto_data_end_ok(val + req->nbytes)) {
		FUZZ_CHECK(next == DISPATCH_CLOSE && f->rec.nstatus == 1 &&
		    f->rec.status == PROTO_R_BAD_CHUNK);
		return false;
	}
	FUZZ_CHECK(next == DISPATCH_DONE);
	st = one_status(f);
	if (req->cmd == PROTO_CMD_APPEND || req->cmd == PROTO_CMD_PREPEND)
		commit_concat(f, e, req, val, st);
	else
		commit_plain(f, e, req, val, st);
	return true;
}

/* delete <key>. */
static void
cmd_delete(struct fuzz *f, const struct proto_req *req)
{
	struct entry		*e = model_get(f, req->key, req->nkey);
	struct dispatch_state	 ds;
	store_status_t		 st;

	FUZZ_CHECK(dispatch(f, req, &ds) == DISPATCH_DONE);
	st = one_status(f);
	if (e->unknown)
		FUZZ_CHECK(st == STORE_DELETED || st == STORE_NOT_FOUND);
	else if (st == STORE_DELETED)
		FUZZ_CHECK(visible(e));
	else
		FUZZ_CHECK(st == STORE_NOT_FOUND &&
		    (!visible(e) || !no_evictions(f)));
	model_absent(e);
}

/* Parses a value the way incr must (as memcached reads it). */
static bool
model_number(const struct entry *e, uint64_t *out)
{
	const char	*p = e->val, *end = e->val + e->nval;
	uint64_t	 v = 0;
	bool		 neg = false, any = false;

	/* memcached's safe_strtoull: spaces, a sign, digits, then the end,
	 * a NUL or a space; a minus only if the wrapped result is >= 0. */
	while (p < end && strchr(" \t\n\v\f\r", *p) != NULL && *p != '\0')
		p++;
	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	for (; p < end && *p >= '0' && *p <= '9'; p++, any = true) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (!any || (p < end && *p != '\0' &&
	    strchr(" \t\n\v\f\r", *p) == NULL))
		return false;
	if (neg && (int64_t)(v = -v) < 0)
		return false;
	*out = v;
	return true;
}

/* incr/decr <key> <delta>: the new value (a number) or a status. */
static void
cmd_arith(struct fuzz *f, const struct proto_req *req)
{
	struct entry		*e = model_get(f, req->key, req->nkey);
	bool			 incr = req->cmd == PROTO_CMD_INCR;
	uint64_t		 result, v = 0, want;
	struct dispatch_state	 ds;
	store_status_t		 st;
	char			 buf[24], *padded;
	size_t			 len, n;

	FUZZ_CHECK(dispatch(f, req, &ds) == DISPATCH_DONE);
	if (f->rec.nnumber == 1) {
		FUZZ_CHECK(f->rec.nstatus == 0 && f->rec.nend == 0);
		st = STORE_OK;
	} else
		st = one_status(f);
	result = f->rec.number;
	if (e->unknown) {
		if (st == STORE_NOT_FOUND)
			model_absent(e);
		return;
	}
	if (st == STORE_NOT_FOUND) {
		FUZZ_CHECK(!visible(e) || !no_evictions(f));
		model_drop(e);
		return;
	}
	FUZZ_CHECK(visible(e));
	if (st == STORE_NON_NUMERIC) {
		FUZZ_CHECK(!model_number(e, &v));
		return;
	}
	if (st == STORE_NO_MEMORY)
		return;
	FUZZ_CHECK(st == STORE_OK && model_number(e, &v));
	want = incr ? v + req->delta : v > req->delta ? v - req->delta : 0;
	FUZZ_CHECK(result == want);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)result);
	/* A new item: new CAS, same flags and exptime; a shorter result is
	 * padded with spaces to the old length, as memcached leaves it. */
	len = strlen(buf);
	n = len < e->nval ? e->nval : len;
	FUZZ_CHECK((padded = malloc(n)) != NULL);
	memcpy(padded, buf, len);
	memset(padded + len, ' ', n - len);
	model_put(e, padded, n, e->flags, e->exptime);
	free(padded);
}

/* touch <key> <exptime>. */
static void
cmd_touch(struct fuzz *f, const struct proto_req *req)
{
	struct entry		*e = model_get(f, req->key, req->nkey);
	uint32_t		 exp = model_exptime(req->exptime);
	struct dispatch_state	 ds;
	store_status_t		 st;

	FUZZ_CHECK(dispatch(f, req, &ds) == DISPATCH_DONE);
	st = one_status(f);
	if (e->unknown) {
		FUZZ_CHECK(st == STORE_TOUCHED || st == STORE_NOT_FOUND);
		if (st == STORE_NOT_FOUND)
			model_absent(e);
		return;
	}
	if (st == STORE_NOT_FOUND) {
		FUZZ_CHECK(!visible(e) || !no_evictions(f));
		model_drop(e);
		return;
	}
	FUZZ_CHECK(st == STORE_TOUCHED && visible(e));
	e->exptime = exp;
	if (expired(exp))
		model_drop(e);
}

/* flush_all [delay]: now, or items born before the due time die then. */
static void
cmd_flush(struct fuzz *f, const struct proto_req *req)
{
	struct dispatch_state	ds;
	uint64_t		due;

	FUZZ_CHECK(dispatch(f, req, &ds) == DISPATCH_DONE);
	FUZZ_CHECK(one_status(f) == STORE_OK);
	if (req->delay <= 0)
		due = now();
	else if (req->delay > STORE_REALTIME_MAXDELTA)
		due = (uint64_t)req->delay;
	else
		due = (uint64_t)now() + (uint64_t)req->delay;
	f->flush_pending = false;
	if (due <= now()) {
		for (size_t i = 0; i < f->ne; i++)
			model_absent(&f->e[i]);
		return;
	}
	f->flush_pending = true;
	f->flush_due = due > UINT32_MAX ? UINT32_MAX : (uint32_t)due;
}

/* mg ms md ma mn me: run as conn.c runs them (an ms value streamed in
 * or swallowed), hits pinned, the key marked unknown.  Returns false
 * when the connection would close. */
static bool
cmd_meta(struct fuzz *f, const struct proto_req *req)
{
	struct dispatch_state	 ds;
	enum dispatch_next	 next = dispatch(f, req, &ds);
	size_t			 left = f->len - f->pos, need;
	const char		*val = f->in + f->pos;

	if (req->nkey > 0)
		model_get(f, req->key, req->nkey)->unknown = true;
	if (next == DISPATCH_SWALLOW) {
		FUZZ_CHECK(ds.it == NULL && f->rec.nhit == 0);
		f->pos += left < ds.swallow ? left : ds.swallow;
	} else if (next == DISPATCH_VALUE) {
		FUZZ_CHECK(req->cmd == PROTO_CMD_MS && ds.it != NULL &&
		    f->rec.nhit == 0);
		need = (size_t)req->nbytes + 2;
		if (left < need) {
			store_release(f->st, ds.it);
			return false;
		}
		memcpy(item_value_mut(ds.it), val, req->nbytes);
		f->pos += need;
		next = dispatch_value(&f->env, req, &ds, val + req->nbytes,
		    &f->sink);
		FUZZ_CHECK(ds.it == NULL);
		FUZZ_CHECK((next == DISPATCH_CLOSE) ==
		    !proto_data_end_ok(val + req->nbytes));
	}
	for (size_t i = 0; i < f->rec.nhit; i++)
		hit_done(f, &f->rec.hit[i]);
	f->rec.nhit = 0;
	return next != DISPATCH_CLOSE;
}

/* version, shutdown (refused: no hook), quit, watch: what dispatch says
 * next. */
static bool
cmd_other(struct fuzz *f, const struct proto_req *req)
{
	struct dispatch_state	ds;
	enum dispatch_next	next = dispatch(f, req, &ds);

	switch (req->cmd) {
	case PROTO_CMD_QUIT:
		FUZZ_CHECK(next == DISPATCH_CLOSE && f->rec.nstatus == 0);
		return false;
	case PROTO_CMD_SHUTDOWN:
		FUZZ_CHECK(next == DISPATCH_DONE && f->rec.nstatus == 1 &&
		    f->rec.status == PROTO_R_SHUTDOWN_OFF);
		return true;
	case PROTO_CMD_WATCH:
		/* Unknown streams: ERROR.  Else the connection becomes a
		 * watcher, which reads no more requests. */
		if (next == DISPATCH_DONE) {
			FUZZ_CHECK(f->rec.nstatus == 1 &&
			    f->rec.status == PROTO_R_ERROR);
			return true;
		}
		FUZZ_CHECK(next == DISPATCH_WATCH && f->rec.nstatus == 0);
		return false;
	default:
		FUZZ_CHECK(next == DISPATCH_DONE);
		return true;
	}
}

/* verbosity N (pseudo): advances the clock N seconds, runs expiry. */
static void
cmd_tick(struct fuzz *f, const struct proto_req *req)
{
	uint64_t t = (uint64_t)now() + req->level;

	atomic_store(&fake_now, t > UINT32_MAX - 1 ? UINT32_MAX - 1 :
	    (uint32_t)t);
	store_expire_run(f->st, 1 + req->level % 1000);
}

/* stats (pseudo): checks the counters against the limit and the model. */
static void
cmd_stats(struct fuzz *f)
{
	struct store_stats	s;
	uint64_t		present = 0;

	for (size_t i = 0; i < f->ne; i++)
		present += f->e[i].present || f->e[i].unknown;
	store_get_stats(f->st, &s);
	FUZZ_CHECK(s.bytes <= s.mem_bytes && s.mem_bytes <= MEM_LIMIT);
	FUZZ_CHECK(s.curr_items <= present);
}

/* Runs one request; false when the connection would close. */
static bool
run_request(struct fuzz *f, const struct proto_req *req)
{
	model_flush_sync(f);
	switch (req->cmd) {
	case PROTO_CMD_GET: case PROTO_CMD_GETS:
	case PROTO_CMD_GAT: case PROTO_CMD_GATS:
		cmd_retrieve(f, req);
		break;
	case PROTO_CMD_SET: case PROTO_CMD_ADD: case PROTO_CMD_REPLACE:
	case PROTO_CMD_APPEND: case PROTO_CMD_PREPEND: case PROTO_CMD_CAS:
		return cmd_store(f, req);
	case PROTO_CMD_DELETE:
		cmd_delete(f, req);
		break;
	case PROTO_CMD_INCR: case PROTO_CMD_DECR:
		cmd_arith(f, req);
		break;
	case PROTO_CMD_TOUCH:
		cmd_touch(f, req);
		break;
	case PROTO_CMD_FLUSH_ALL:
		cmd_flush(f, req);
		break;
	case PROTO_CMD_VERBOSITY:
		cmd_tick(f, req);
		break;
	case PROTO_CMD_STATS:
		cmd_stats(f);
		break;
	default:
		if (!(PROTO_CMD_IS_META(req->cmd) ? cmd_meta(f, req) :
		    cmd_other(f, req)))
			return false;
		break;
	}
	cmd_stats(f);
	return true;
}

/* ---- one input -------------------------------------------------------- */

/* Runs expiry passes until no item bytes are left, DRAIN_ROUNDS at
 * most; true if none are. */
static bool
drained(struct fuzz *f, struct store_stats *s)
{
	for (int i = 0; i < DRAIN_ROUNDS; i++) {
		store_get_stats(f->st, s);
		if (s->bytes == 0)
			return true;
		store_expire_run(f->st, 100000);
	}
	store_get_stats(f->st, s);
	return s->bytes == 0;
}

/* Releases the pins, flushes, and checks everything drains to 0 bytes.
 * The passes race the expiry thread's, whose pass may hold a segment
 * (HEAP_SCAN, pinned) through all the rounds: on a busy machine this
 * loop's shard locks can starve it.  So, if some bytes are left, the
 * thread is stopped (its pass ends) and the passes run again; then
 * nothing may be left. */
static void
drain(struct fuzz *f)
{
	struct store_stats s;

	for (unsigned i = 0; i < PINS; i++)
		if (f->pins[i].it != NULL)
			pin_release(f, &f->pins[i]);
	store_flush(f->st, 0);
	if (!drained(f, &s)) {
		store_expiry_stop(f->st);
		(void)drained(f, &s);
	}
	FUZZ_CHECK(s.curr_items == 0 && s.bytes == 0);
}

/* Runs the input as one connection against a fresh store. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_config	cfg = {
		.mem_limit = MEM_LIMIT, .item_size_max = ITEM_MAX,
		.shards_log2 = 2, .clock = fake_clock,
	};
	struct fuzz		f = { .in = (const char *)data };

	f.len = size;
	atomic_store(&fake_now, START_TIME);
	f.st = store_create(&cfg);
	FUZZ_CHECK(f.st != NULL && store_expiry_start(f.st) == 0);
	/* No stats or shutdown hooks: dispatch refuses both. */
	f.env = (struct dispatch_env){ .store = f.st, .stats = &f.ts };
	f.out = (struct proto_out){ .space = out_space,
	    .commit = out_commit, .value = out_value, .full = out_full };
	f.sink = (struct reply_sink){ &capture_codec, &f.out };
	while (f.pos < f.len) {
		struct proto_req	req;
		size_t			consumed;
		enum proto_result	r;

		r = proto_text.parse(f.in + f.pos, f.len - f.pos, &req,
		    &consumed);
		if (r == PROTO_NEED_MORE || r == PROTO_CLOSE)
			break;
		f.pos += consumed;
		if (r == PROTO_BAD) {
			f.pos += f.len - f.pos < req.swallow ? f.len - f.pos :
			    req.swallow;
			continue;
		}
		if (!run_request(&f, &req))
			break;
	}
	drain(&f);
	store_destroy(f.st);
	for (size_t i = 0; i < f.ne; i++)
		free(f.e[i].val);
	free(f.e);
	free(f.rec.hit);
	return 0;
}
