/*
 * fuzz_proto.c -- libFuzzer target: the request parser alone.
 *
 * The input is treated as everything one client sent on a connection.  It
 * is parsed the way the server walks its read buffer: a line, then the
 * data block a storage command declares (or the bytes a refused one must
 * swallow), then the next line, until the parser wants more or closes.
 * Every result is checked against what proto.h promises:
 *   - consumed is 0 for NEED_MORE, else within the buffer, ending in "\n"
 *     unless the connection is closed for an over-long line;
 *   - every key handed out lies inside the line, is 1..250 bytes and holds
 *     no control byte, space or DEL (a meta base64 key instead lies in
 *     req->meta.key and may hold any byte); multi-key walks terminate;
 *   - a meta request's flag text and opaque lie inside the line, its flag
 *     bits name only flags its command takes, q is noreply, the modes are
 *     normalised; an ms that is refused swallows its data block;
 *   - numbers are within the ranges the fields document;
 *   - parsing is a pure function of the line: the line alone gives the
 *     same result, and any prefix of it gives NEED_MORE (split at every
 *     byte is the same as whole);
 *   - the composers stay inside the buffer sizes proto.h documents, and
 *     the meta composers inside the space() they asked for (each space()
 *     is its own exact-size heap block) and end every line in "\r\n".
 * The input is copied into a buffer of exactly its size, so AddressSanitizer
 * catches a read past the end.
 *
 * Data structure: none beyond the copy; no state survives a call.
 */
#include <string.h>

#include "fuzz.h"
#include "proto.h"
#include "proto_dump.h"

/* Most prefixes of one line checked for NEED_MORE (all for short lines). */
#define PREFIX_ALL_MAX	64

/* True for a byte a key may hold (the parser's rule, restated). */
static bool
key_byte_ok(unsigned char c)
{
	return c != ' ' && c != '\0';
}

/* True for the commands followed by a data block. */
static bool
is_storage(enum proto_cmd cmd)
{
	return cmd == PROTO_CMD_SET || cmd == PROTO_CMD_ADD ||
	    cmd == PROTO_CMD_REPLACE || cmd == PROTO_CMD_APPEND ||
	    cmd == PROTO_CMD_PREPEND || cmd == PROTO_CMD_CAS ||
	    cmd == PROTO_CMD_MS;
}

/* Checks that [key, key + nkey) is a valid key inside [lo, hi). */
static void
check_key(const char *key, size_t nkey, const char *lo, const char *hi)
{
	FUZZ_CHECK(key != NULL);
	FUZZ_CHECK(nkey >= 1 && nkey <= PROTO_KEY_MAX);
	FUZZ_CHECK(key >= lo && key + nkey <= hi);
	for (size_t i = 0; i < nkey; i++)
		FUZZ_CHECK(key_byte_ok((unsigned char)key[i]));
}

/* Composes the lines a hit would produce, into exact-size heap buffers. */
static void
check_composers(const char *key, size_t nkey, const struct proto_req *req)
{
	char	*line = malloc(PROTO_VALUE_LINE_MAX);
	char	*num = malloc(23);
	size_t	 n;

	FUZZ_CHECK(line != NULL && num != NULL);
	n = proto_value_line(line, key, nkey, req->flags, req->nbytes, true,
	    req->cas);
	FUZZ_CHECK(n > 0 && n <= PROTO_VALUE_LINE_MAX);
	FUZZ_CHECK(memcmp(line, "VALUE ", 6) == 0 && line[n - 1] == '\n');
	n = proto_u64_line(num, req->delta);
	FUZZ_CHECK(n >= 3 && n <= 22 && num[n - 2] == '\r');
	n = proto_stat_u64(line, 16, "x", req->delta);
	FUZZ_CHECK(n <= 16);
	free(line);
	free(num);
}

/* A proto_out whose every space() is a fresh heap block of exactly the
 * size asked, so a composer writing past it trips AddressSanitizer. */
struct exact_out {
	struct proto_out	 out;	/* first: found from it by a cast */
	char			*block;
	size_t			 nblock;
	size_t			 total;
	bool			 line_open;
};

/* proto_out: a fresh block of n bytes. */
static char *
exact_space(struct proto_out *o, size_t n)
{
	struct exact_out *e = (struct exact_out *)(void *)o;

	free(e->block);
	e->block = malloc(n > 0 ? n : 1);
	FUZZ_CHECK(e->block != NULL);
	e->nblock = n;
	return e->block;
}

/* proto_out: checks the committed part; a line ends in "\r\n". */
static void
exact_commit(struct proto_out *o, size_t used)
{
	struct exact_out *e = (struct exact_out *)(void *)o;

	FUZZ_CHECK(e->block != NULL && used <= e->nblock);
	if (used >= 2 && e->block[used - 2] == '\r' &&
	    e->block[used - 1] == '\n')
		e->line_open = false;
	else if (used > 0)
		e->line_open = true;
	e->total += used;
}

/* proto_out: a value, read to the end. */
static void
exact_value(struct proto_out *o, const char *data, size_t n, void *ref)
{
	struct exact_out *e = (struct exact_out *)(void *)o;
	volatile char sink = 0;

	FUZZ_CHECK(ref != NULL);
	for (size_t i = 0; i < n; i++)
		sink ^= data[i];
	(void)sink;
	e->total += n;
	if (n > 0)
		e->line_open = true;
}

/* proto_out: never full. */
static bool
exact_full(const struct proto_out *o)
{
	(void)o;
	return false;
}

/* Runs every meta composer on req with a hit made from it. */
static void
check_meta_composers(const struct proto_req *req)
{
	static int ref;
	struct exact_out e = { .out = { .space = exact_space,
	    .commit = exact_commit, .value = exact_value,
	    .full = exact_full } };
	struct proto_hit h = { .key = req->key, .nkey = req->nkey,
	    .flags = req->meta.client_flags, .cas = req->meta.cas,
	    .value = req->key, .nbytes = req->nkey, .ref = &ref,
	    .with_value = (req->meta.flags & PROTO_MF('v')) != 0,
	    .ttl = req->meta.ttl, .idle = (uint32_t)req->meta.delta,
	    .fetched = req->meta.initial & 1, .won = req->meta.delta & 1,
	    .stale = req->meta.delta & 2, .won_before = req->meta.delta & 4,
	    .total = req->nbytes };

	if (h.key == NULL) {
		h.key = h.value = "";
		h.nkey = h.nbytes = 0;
	}
	for (int r = 0; r < PROTO_R_COUNT; r++) {
		proto_text.status(&e.out, req, (enum proto_reply)r);
		FUZZ_CHECK(!e.line_open);
	}
	proto_text.hit(&e.out, req, &h);
	FUZZ_CHECK(!e.line_open || e.block == NULL);
	h.ref = NULL;
	proto_text.hit(&e.out, req, &h);
	proto_text.number(&e.out, req, req->meta.delta);
	proto_text.end(&e.out, req);
	free(e.block);
}

/* Checks a meta request's fields (PROTO_OK) parsed from [lo, hi). */
static void
check_meta(const struct proto_req *req, const char *lo, const char *hi)
{
	const struct proto_meta	*m = &req->meta;
	static const char	 known[] = "bcfhklqstuvxCDEFIJLMNOPRT";
	uint64_t		 allowed = 0;

	for (const char *k = known; *k != '\0'; k++)
		allowed |= PROTO_MF(*k);
	FUZZ_CHECK((m->flags & ~allowed) == 0);
	FUZZ_CHECK(req->noreply == ((m->flags & PROTO_MF('q')) != 0));
	if (req->cmd == PROTO_CMD_MN) {
		FUZZ_CHECK(req->key == NULL && m->flags == 0);
		check_meta_composers(req);
		return;
	}
	if (m->flags & PROTO_MF('b')) {
		FUZZ_CHECK(req->key == m->key);
		FUZZ_CHECK(req->nkey >= 1 && req->nkey <= PROTO_KEY_MAX / 4 * 3);
	} else
		check_key(req->key, req->nkey, lo, hi);
	if (m->nret > 0)
		FUZZ_CHECK(m->ret >= lo && m->ret + m->nret <= hi);
	if (m->flags & PROTO_MF('O')) {
		FUZZ_CHECK(m->nopaque < PROTO_OPAQUE_MAX);
		FUZZ_CHECK(m->opaque >= lo && m->opaque + m->nopaque <= hi);
	}
	FUZZ_CHECK(m->ttl >= INT32_MIN && m->ttl <= INT32_MAX);
	FUZZ_CHECK(m->vivify_ttl >= INT32_MIN && m->vivify_ttl <= INT32_MAX);
	FUZZ_CHECK(m->recache_ttl >= INT32_MIN &&
	    m->recache_ttl <= INT32_MAX);
	if (!(m->flags & PROTO_MF('D')))
		FUZZ_CHECK(m->delta == 1);
	if (req->cmd == PROTO_CMD_MS)
		FUZZ_CHECK(memchr("EAPRS", m->mode, 5) != NULL &&
		    m->mode != '\0');
	if (req->cmd == PROTO_CMD_MA)
		FUZZ_CHECK(m->mode == 'I' || m->mode == 'D');
	if (req->cmd != PROTO_CMD_MS)
		FUZZ_CHECK(req->nbytes == 0);
	check_meta_composers(req);
}

/* Walks a multi-key request's keys; checks each and that the walk ends. */
static void
check_keys(const struct proto_req *req, const char *lo, const char *hi)
{
	size_t		 cursor = 0, prev = 0, count = 0;
	const char	*key;
	size_t		 nkey;

	FUZZ_CHECK(req->keys >= lo && req->keys + req->nkeys_bytes <= hi);
	while (proto_next_key(req, &cursor, &key, &nkey)) {
		check_key(key, nkey, req->keys, req->keys + req->nkeys_bytes);
		FUZZ_CHECK(cursor > prev && cursor <= req->nkeys_bytes);
		prev = cursor;
		if (count++ == 0)
			check_composers(key, nkey, req);
	}
	/* gat/gats may name no key (memcached answers END) */
	FUZZ_CHECK(count >= 1 || req->cmd == PROTO_CMD_GAT ||
	    req->cmd == PROTO_CMD_GATS);
	/* A finished walk stays finished. */
	FUZZ_CHECK(!proto_next_key(req, &cursor, &key, &nkey));
}

/* lru_crawler: its argument as a class list, and as a key in the dump
 * lines (within their bound, a metadump line ending in one LF). */
static void
check_dump(const struct proto_req *req)
{
	struct proto_dump_item	d = { .key = req->arg, .nkey = req->narg,
				    .exptime = 1, .cas = UINT64_MAX };
	char			line[PROTO_DUMP_LINE_MAX];
	size_t			n, nkey;
	bool			ours;

	(void)proto_dump_classes(req->arg, req->narg, &ours);
	n = proto_metadump_line(line, &d);
	FUZZ_CHECK(n <= sizeof(line) && line[n - 1] == '\n');
	/* The encoded key: only unreserved bytes and %XX. */
	nkey = req->narg > PROTO_KEY_MAX ? PROTO_KEY_MAX : req->narg;
	n = proto_uriencode(line, req->arg, nkey);
	FUZZ_CHECK(n >= nkey && n <= 3 * nkey);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(line[i] > ' ' && line[i] < 0x7f);
	n = proto_cachedump_line(line, &d);
	FUZZ_CHECK(n <= sizeof(line));
}

/* Checks the fields of a PROTO_OK request parsed from [lo, hi). */
static void
check_ok(const struct proto_req *req, const char *lo, const char *hi)
{
	FUZZ_CHECK(req->cmd >= 0 && req->cmd < PROTO_CMD_COUNT);
	FUZZ_CHECK(req->error == NULL && req->swallow == 0);
	/* exptime and delay are 64-bit, as memcached's strtol reads them */
	FUZZ_CHECK(req->nbytes <= PROTO_NBYTES_MAX);
	FUZZ_CHECK(req->arg != NULL);
	if (req->narg > 0)
		FUZZ_CHECK(req->arg >= lo && req->arg + req->narg <= hi);
	if (proto_is_multikey(req->cmd)) {
		check_keys(req, lo, hi);
		return;
	}
	if (PROTO_CMD_IS_META(req->cmd)) {
		check_meta(req, lo, hi);
		return;
	}
	switch (req->cmd) {
	case PROTO_CMD_SET: case PROTO_CMD_ADD: case PROTO_CMD_REPLACE:
	case PROTO_CMD_APPEND: case PROTO_CMD_PREPEND: case PROTO_CMD_CAS:
	case PROTO_CMD_DELETE: case PROTO_CMD_INCR: case PROTO_CMD_DECR:
	case PROTO_CMD_TOUCH:
		check_key(req->key, req->nkey, lo, hi);
		check_composers(req->key, req->nkey, req);
		break;
	case PROTO_CMD_LRU_CRAWLER:
		check_dump(req);
		break;
	default:
		break;
	}
}

/* Checks a PROTO_BAD or PROTO_CLOSE reply line. */
static void
check_error(const struct proto_req *req, enum proto_result r)
{
	size_t n;

	if (r == PROTO_BAD)
		FUZZ_CHECK(req->error != NULL);
	if (req->error == NULL)
		return;
	n = strlen(req->error);
	FUZZ_CHECK(n >= 7 && req->error[n - 2] == '\r' &&
	    req->error[n - 1] == '\n');
	FUZZ_CHECK(req->swallow <= (size_t)PROTO_NBYTES_MAX + 2);
	/* A refused ms skips its data block whenever its length is known,
	 * and a meta error goes out even with q. */
	if (r == PROTO_BAD && req->cmd == PROTO_CMD_MS)
		FUZZ_CHECK(req->swallow == 0 ||
		    req->swallow == (size_t)req->nbytes + 2);
	if (PROTO_CMD_IS_META(req->cmd))
		FUZZ_CHECK(!req->noreply);
}

/* Parses n bytes at p from a fresh exact-size copy. */
static enum proto_result
parse_copy(const char *p, size_t n, struct proto_req *req, size_t *consumed)
{
	char			*copy = malloc(n > 0 ? n : 1);
	enum proto_result	 r;

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, p, n);
	r = proto_parse(copy, n, req, consumed);
	free(copy);
	return r;
}

/* Checks that the line [p, p + line) alone parses as it did in context,
 * and that its prefixes all want more. */
static void
check_pure(const char *p, size_t line, enum proto_result r,
    const struct proto_req *req)
{
	struct proto_req	again;
	size_t			consumed, step;

	FUZZ_CHECK(proto_parse(p, line, &again, &consumed) == r);
	FUZZ_CHECK(consumed == line);
	FUZZ_CHECK(again.cmd == req->cmd && again.nkey == req->nkey &&
	    again.nbytes == req->nbytes && again.swallow == req->swallow &&
	    again.exptime == req->exptime && again.error == req->error);
	/* The meta fields mean something for meta commands only. */
	FUZZ_CHECK(again.meta.flags == req->meta.flags &&
	    again.noreply == req->noreply);
	if (PROTO_CMD_IS_META(req->cmd))
		FUZZ_CHECK(again.meta.nret == req->meta.nret &&
		    again.meta.cas == req->meta.cas &&
		    again.meta.mode == req->meta.mode);
	if (req->key != NULL && r == PROTO_OK)
		FUZZ_CHECK(memcmp(again.key, req->key, req->nkey) == 0);
	step = line <= PREFIX_ALL_MAX ? 1 : line / 7 + 1;
	for (size_t k = 0; k < line; k += step) {
		FUZZ_CHECK(parse_copy(p, k, &again, &consumed) ==
		    PROTO_NEED_MORE);
		FUZZ_CHECK(consumed == 0);
	}
	FUZZ_CHECK(parse_copy(p, line - 1, &again, &consumed) ==
	    PROTO_NEED_MORE);
}

/* Parses the input as one connection's byte stream. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*buf = malloc(size > 0 ? size : 1);
	size_t	 pos = 0;

	FUZZ_CHECK(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);
	while (pos < size) {
		struct proto_req	req;
		size_t			left = size - pos;
		size_t			consumed = 99, skip;
		enum proto_result	r;

		r = proto_parse(buf + pos, left, &req, &consumed);
		if (r == PROTO_NEED_MORE) {
			FUZZ_CHECK(consumed == 0);
			break;
		}
		FUZZ_CHECK(consumed >= 1 && consumed <= left);
		if (r == PROTO_CLOSE && consumed == left &&
		    memchr(buf + pos, '\n', left < PROTO_LINE_MAX + 1 ? left :
		    PROTO_LINE_MAX + 1) == NULL) {
			/* An over-long line: nothing else to check. */
			FUZZ_CHECK(left > PROTO_LINE_MAX);
			break;
		}
		FUZZ_CHECK(buf[pos + consumed - 1] == '\n');
		if (r == PROTO_OK)
			check_ok(&req, buf + pos, buf + pos + consumed);
		else
			check_error(&req, r);
		check_pure(buf + pos, consumed, r, &req);
		if (r == PROTO_CLOSE)
			break;
		pos += consumed;
		skip = r == PROTO_BAD ? req.swallow : is_storage(req.cmd) ?
		    (size_t)req.nbytes + 2 : 0;
		/* Skip the data block a storage line declared or refused. */
		pos += size - pos < skip ? size - pos : skip;
	}
	free(buf);
	return 0;
}
