/*
 * fuzz_bin.c -- libFuzzer target: the binary protocol's parser and
 * composers (protocol/proto_bin.c) alone.
 *
 * The input is treated as everything one binary client sent on a
 * connection and walked the way the server walks its read buffer: a
 * request (header, extras, key), then the value a store declares (or the
 * body a refused request must skip), then the next request, until the
 * parser wants more or closes.  Every result is checked against what
 * proto.h and proto_bin.c promise:
 *   - consumed is left alone for NEED_MORE, else within the buffer, and
 *     never more than header + extras + key (+ SASL data): a value or a
 *     skipped body is never buffered;
 *   - the header's lengths agree with what the request says: a key lies
 *     inside the request and is 1..250 bytes, a store's value length is
 *     bodylen - keylen - extlen, a refused body is bodylen;
 *   - an error response (req->error, req->nerror) is a well-formed binary
 *     response echoing the opcode and opaque;
 *   - parsing is a pure function of the request: any proper prefix of it
 *     gives NEED_MORE, the request alone gives the same result;
 *   - every composer, for every outcome, writes well-formed responses
 *     inside the space() it asked for (each space() is its own exact-size
 *     heap block) and gives back every reference it was handed.
 * The input is copied into a buffer of exactly its size, so
 * AddressSanitizer catches a read past the end.
 *
 * Data structure: none beyond the copy; no state survives a call.
 */
#include <string.h>

#include "fuzz.h"
#include "proto.h"

/* Most prefixes of one request checked for NEED_MORE. */
#define PREFIX_MAX	48

static uint32_t
rd32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Checks a response of n bytes: magic, opcode and opaque of the request,
 * body length matching. */
static void
check_response(const char *p, size_t n, const struct proto_req *req)
{
	const unsigned char *h = (const unsigned char *)p;

	FUZZ_CHECK(n >= PROTO_BIN_HDR);
	FUZZ_CHECK(h[0] == 0x81 && h[1] == req->bin.opcode);
	FUZZ_CHECK(memcmp(h + 12, &req->bin.opaque, 4) == 0);
	FUZZ_CHECK((size_t)rd32(h + 8) == n - PROTO_BIN_HDR);
	FUZZ_CHECK((size_t)(h[2] << 8 | h[3]) + h[4] <= n - PROTO_BIN_HDR);
}

/* A proto_out whose every space() is an exact-size heap block: what is
 * committed is checked to be whole responses (the composers put a
 * response's header and its small parts in one space()). */
struct xout {
	struct proto_out	 out;
	const struct proto_req	*req;
	char			*blk;
	size_t			 nblk;
	int			 refs;
	size_t			 pending;	/* value bytes still due */
};

static char *
x_space(struct proto_out *o, size_t n)
{
	struct xout *x = (struct xout *)(void *)o;

	free(x->blk);
	x->blk = malloc(n > 0 ? n : 1);
	FUZZ_CHECK(x->blk != NULL);
	x->nblk = n;
	return x->blk;
}

static void
x_commit(struct proto_out *o, size_t used)
{
	struct xout		*x = (struct xout *)(void *)o;
	const unsigned char	*h = (const unsigned char *)x->blk;
	size_t			 body;

	FUZZ_CHECK(used <= x->nblk);
	FUZZ_CHECK(x->pending == 0);
	FUZZ_CHECK(used >= PROTO_BIN_HDR);
	body = rd32(h + 8);
	if (used == PROTO_BIN_HDR + body)
		check_response(x->blk, used, x->req);
	else {
		/* a header with its extras and key; the value follows */
		FUZZ_CHECK(used < PROTO_BIN_HDR + body);
		x->pending = PROTO_BIN_HDR + body - used;
	}
}

static void
x_value(struct proto_out *o, const char *data, size_t n, void *ref)
{
	struct xout *x = (struct xout *)(void *)o;

	FUZZ_CHECK(ref != NULL);
	FUZZ_CHECK(n <= x->pending);
	if (n > 0)
		FUZZ_CHECK(data != NULL);
	x->pending -= n;
	x->refs++;
}

static void
x_release(struct proto_out *o, void *ref)
{
	FUZZ_CHECK(ref != NULL);
	((struct xout *)(void *)o)->refs++;
}

static bool
x_full(const struct proto_out *o)
{
	(void)o;
	return false;
}

static int ref_token;

/* Runs every composer for request req, copying values (copy_max) or
 * handing them over by reference. */
static void
check_composers(const struct proto_req *req, size_t copy_max)
{
	struct xout x = { .out = { .space = x_space, .commit = x_commit,
	    .value = x_value, .full = x_full, .copy_max = copy_max,
	    .release = copy_max > 0 ? x_release : NULL }, .req = req };
	const char *key = req->key != NULL ? req->key : "k";
	size_t nkey = req->key != NULL ? req->nkey : 1;
	struct proto_hit h = { .key = key, .nkey = nkey, .flags = 7,
	    .cas = 9, .value = "123456789", .nbytes = 9, .ref = &ref_token };
	int hits = 0;

	for (int r = 0; r < PROTO_R_COUNT; r++)
		proto_bin.status(&x.out, req, (enum proto_reply)r);
	proto_bin.hit(&x.out, req, &h);
	hits++;
	h.nbytes = 0;
	proto_bin.hit(&x.out, req, &h);
	hits++;
	if (req->key != NULL)
		proto_bin.miss(&x.out, req);
	proto_bin.number(&x.out, req, UINT64_MAX);
	proto_bin.stat(&x.out, req, "name", "value", 5);
	proto_bin.end(&x.out, req);
	proto_bin.version(&x.out, req, "1.6.18");
	FUZZ_CHECK(x.pending == 0);
	FUZZ_CHECK(x.refs == hits);
	free(x.blk);
}

/* Checks one parse of buf[0 .. len) that gave r and *consumed. */
static void
check_result(const char *buf, size_t len, enum proto_result r,
    const struct proto_req *req, size_t consumed)
{
	const unsigned char	*h = (const unsigned char *)buf;
	size_t			 nkey, next, nbody;

	FUZZ_CHECK(consumed >= 1 && consumed <= len);
	if (h[0] != 0x80) {
		FUZZ_CHECK(r == PROTO_CLOSE && req->error == NULL);
		return;
	}
	FUZZ_CHECK(len >= PROTO_BIN_HDR);
	nkey = (size_t)(h[2] << 8 | h[3]);
	next = h[4];
	nbody = rd32(h + 8);
	FUZZ_CHECK(req->bin.opcode == h[1]);
	if (req->error != NULL) {
		FUZZ_CHECK(req->nerror >= PROTO_BIN_HDR &&
		    req->nerror <= PROTO_BIN_RESP_MAX);
		check_response(req->error, req->nerror, req);
	}
	switch (r) {
	case PROTO_OK:
		FUZZ_CHECK(nkey + next <= nbody && nkey <= PROTO_KEY_MAX);
		FUZZ_CHECK(consumed == PROTO_BIN_HDR + next + nkey ||
		    (req->cmd >= PROTO_CMD_SASL_AUTH &&
		    consumed == PROTO_BIN_HDR + nbody));
		if (req->key != NULL) {
			FUZZ_CHECK(req->nkey >= 1 && req->nkey == nkey);
			FUZZ_CHECK(req->key >= buf &&
			    req->key + req->nkey <= buf + consumed);
		}
		if (req->arg != NULL && req->narg > 0)
			FUZZ_CHECK(req->arg >= buf &&
			    req->arg + req->narg <= buf + consumed);
		if (req->bare_value)
			FUZZ_CHECK(req->nbytes == nbody - nkey - next);
		break;
	case PROTO_BAD:
		FUZZ_CHECK(consumed == PROTO_BIN_HDR);
		FUZZ_CHECK(req->error != NULL && req->swallow == nbody);
		break;
	case PROTO_CLOSE:
		FUZZ_CHECK(consumed <= PROTO_BIN_HDR + next + nkey ||
		    consumed == PROTO_BIN_HDR + nbody);
		break;
	case PROTO_NEED_MORE:
		FUZZ_CHECK(0);
	}
}

/* The request's bytes alone, and each prefix of them, parse the same. */
static void
check_pure(const char *buf, size_t consumed, enum proto_result r)
{
	char			*copy = malloc(consumed);
	struct proto_req	 req;
	size_t			 c2 = 0, step;

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, buf, consumed);
	FUZZ_CHECK(proto_bin.parse(copy, consumed, &req, &c2) == r);
	FUZZ_CHECK(c2 == consumed);
	/* a bad first byte closes at once: it has no prefixes to check */
	step = consumed > PREFIX_MAX ? consumed / PREFIX_MAX : 1;
	for (size_t k = 0; k < consumed && (unsigned char)buf[0] == 0x80;
	    k += step) {
		size_t c3 = 777;

		if (r == PROTO_CLOSE && k >= PROTO_BIN_HDR)
			break;	/* decided from the header alone */
		FUZZ_CHECK(proto_bin.parse(copy, k, &req, &c3) ==
		    PROTO_NEED_MORE);
		FUZZ_CHECK(c3 == 777);
	}
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*buf = malloc(size > 0 ? size : 1);
	size_t	 pos = 0;
	int	 requests = 0;

	FUZZ_CHECK(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);
	while (pos < size && requests++ < 256) {
		struct proto_req	req;
		size_t			consumed = 4242;
		enum proto_result	r;

		r = proto_bin.parse(buf + pos, size - pos, &req, &consumed);
		if (r == PROTO_NEED_MORE) {
			FUZZ_CHECK(consumed == 4242);
			break;
		}
		check_result(buf + pos, size - pos, r, &req, consumed);
		check_pure(buf + pos, consumed, r);
		if (r != PROTO_CLOSE || req.error != NULL)
			check_composers(&req, requests % 2 ? 64 : 0);
		pos += consumed;
		if (r == PROTO_CLOSE)
			break;
		/* the value or refused body, which is never parsed */
		if (r == PROTO_OK && req.bare_value)
			pos += size - pos < req.nbytes ? size - pos :
			    req.nbytes;
		else if (r == PROTO_BAD)
			pos += size - pos < req.swallow ? size - pos :
			    req.swallow;
	}
	free(buf);
	return 0;
}
