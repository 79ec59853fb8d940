/*
 * fuzz_resp.c -- libFuzzer target: the reply parser (proto_resp.h) alone.
 *
 * The input is treated as everything one server sent on a connection and
 * is parsed element by element, in whole mode and, on a second copy, in
 * head mode with the data blocks skipped as a streaming client would.
 * Every result is checked against what proto_resp.h promises:
 *   - consumed is 0 for NEED_MORE, within the buffer for OK, and for BAD
 *     0, the end of a line, or the end of a VALUE or VA whose data is not
 *     ended by "\r\n";
 *   - every borrowed pointer lies inside the element; keys are 1..250
 *     bytes of non-space, non-control bytes; a VALUE's or VA's data is nbytes
 *     long and followed by "\r\n";
 *   - the two modes agree: an element's head in head mode is the same
 *     line as in whole mode;
 *   - parsing is a pure function of the element: the element alone gives
 *     the same result and every prefix of it gives NEED_MORE.
 * The input is copied into a buffer of exactly its size, so AddressSanitizer
 * catches a read past the end.
 *
 * Data structure: none beyond the copies; no state survives a call.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "proto_resp.h"

/* Most prefixes of one element checked for NEED_MORE (all when short). */
#define PREFIX_ALL_MAX	64

/* True for the kinds followed by a data block (VALUE, meta VA). */
static bool
has_data(enum proto_resp_kind kind)
{
	return kind == PROTO_RESP_VALUE || kind == PROTO_RESP_VA;
}

/* Checks that [p, p + n) lies inside [lo, hi). */
static void
check_inside(const char *p, size_t n, const char *lo, const char *hi)
{
	FUZZ_CHECK(p != NULL);
	FUZZ_CHECK(p >= lo && p + n <= hi);
}

/* Checks a meta reply's return flags and the k key if it had one. */
static void
check_meta(const struct proto_resp *r, const char *lo, const char *hi)
{
	if (r->key != NULL) {
		check_inside(r->key, r->nkey, lo, hi);
		FUZZ_CHECK(r->nkey >= 1 && r->nkey <= PROTO_RESP_KEY_MAX);
	}
	check_inside(r->text, r->ntext, lo, hi);
	FUZZ_CHECK(r->has_cas || r->cas == 0);
}

/* Checks the fields of an OK element parsed from [lo, hi). */
static void
check_ok(const struct proto_resp *r, const char *lo, const char *hi,
    bool whole)
{
	FUZZ_CHECK((unsigned)r->kind < PROTO_RESP_KIND_COUNT);
	FUZZ_CHECK(hi - lo >= 2 && hi[-2] == '\r' && hi[-1] == '\n');
	switch (r->kind) {
	case PROTO_RESP_VALUE:
		check_inside(r->key, r->nkey, lo, hi);
		FUZZ_CHECK(r->nkey >= 1 && r->nkey <= PROTO_RESP_KEY_MAX);
		for (size_t i = 0; i < r->nkey; i++)
			FUZZ_CHECK((unsigned char)r->key[i] > 0x20 &&
			    r->key[i] != 0x7f);
		FUZZ_CHECK(r->nbytes <= PROTO_RESP_NBYTES_MAX);
		FUZZ_CHECK(r->has_cas || r->cas == 0);
		if (whole) {
			check_inside(r->data, (size_t)r->nbytes + 2, lo, hi);
			FUZZ_CHECK(r->data + r->nbytes + 2 == hi);
		} else
			FUZZ_CHECK(r->data == NULL);
		break;
	case PROTO_RESP_STAT:
		check_inside(r->key, r->nkey, lo, hi);
		FUZZ_CHECK(r->nkey >= 1);
		FUZZ_CHECK(memchr(r->key, ' ', r->nkey) == NULL);
		check_inside(r->text, r->ntext, lo, hi);
		break;
	case PROTO_RESP_VA:
		FUZZ_CHECK(r->nbytes <= PROTO_RESP_NBYTES_MAX);
		if (whole) {
			check_inside(r->data, (size_t)r->nbytes + 2, lo, hi);
			FUZZ_CHECK(r->data + r->nbytes + 2 == hi);
		} else
			FUZZ_CHECK(r->data == NULL);
		check_meta(r, lo, hi);
		break;
	case PROTO_RESP_HD: case PROTO_RESP_NS: case PROTO_RESP_EX:
	case PROTO_RESP_NF:
		check_meta(r, lo, hi);
		break;
	case PROTO_RESP_VERSION: case PROTO_RESP_ERROR:
	case PROTO_RESP_CLIENT_ERROR: case PROTO_RESP_SERVER_ERROR:
		check_inside(r->text, r->ntext, lo, hi);
		FUZZ_CHECK(r->text + r->ntext + 2 == hi);
		break;
	default:
		FUZZ_CHECK(r->key == NULL && r->data == NULL);
		break;
	}
	FUZZ_CHECK(proto_resp_is_error(r->kind) ==
	    (r->kind >= PROTO_RESP_ERROR));
	FUZZ_CHECK(strcmp(proto_resp_kind_name(r->kind), "?") != 0);
}

/* Parses n bytes at p from a fresh exact-size copy. */
static enum proto_resp_result
parse_copy(const char *p, size_t n, bool whole, struct proto_resp *r,
    size_t *consumed)
{
	char			*copy = malloc(n > 0 ? n : 1);
	enum proto_resp_result	 res;

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, p, n);
	res = whole ? proto_resp_parse(copy, n, r, consumed) :
	    proto_resp_parse_head(copy, n, r, consumed);
	free(copy);
	return res;
}

/* Checks that the element [p, p + n) alone parses as it did in context and
 * that its prefixes all want more. */
static void
check_pure(const char *p, size_t n, bool whole, const struct proto_resp *r)
{
	struct proto_resp	again;
	size_t			consumed, step;

	FUZZ_CHECK(parse_copy(p, n, whole, &again, &consumed) ==
	    PROTO_RESP_OK);
	FUZZ_CHECK(consumed == n && again.kind == r->kind &&
	    again.nkey == r->nkey && again.nbytes == r->nbytes &&
	    again.cas == r->cas && again.number == r->number &&
	    again.ntext == r->ntext && again.flags == r->flags);
	step = n <= PREFIX_ALL_MAX ? 1 : n / 7 + 1;
	for (size_t k = 0; k < n; k += step) {
		FUZZ_CHECK(parse_copy(p, k, whole, &again, &consumed) ==
		    PROTO_RESP_NEED_MORE);
		FUZZ_CHECK(consumed == 0);
	}
	FUZZ_CHECK(parse_copy(p, n - 1, whole, &again, &consumed) ==
	    PROTO_RESP_NEED_MORE);
}

/* Walks buf[0 .. size) element by element in one mode. */
static void
walk(const char *buf, size_t size, bool whole)
{
	size_t pos = 0;

	while (pos < size) {
		struct proto_resp	r, h;
		size_t			left = size - pos, consumed = 99, hc;
		enum proto_resp_result	res;

		res = whole ? proto_resp_parse(buf + pos, left, &r, &consumed) :
		    proto_resp_parse_head(buf + pos, left, &r, &consumed);
		if (res == PROTO_RESP_NEED_MORE) {
			FUZZ_CHECK(consumed == 0);
			return;
		}
		if (res == PROTO_RESP_BAD) {
			FUZZ_CHECK(consumed <= left);
			if (consumed > 0 && buf[pos + consumed - 1] != '\n')
				/* a VALUE whose data lacks its "\r\n" */
				FUZZ_CHECK(whole && proto_resp_parse_head(
				    buf + pos, left, &h, &hc) == PROTO_RESP_OK
				    && has_data(h.kind) &&
				    hc + h.nbytes + 2 == consumed);
			if (consumed == 0)
				FUZZ_CHECK(left >= PROTO_RESP_LINE_MAX + 2);
			return;	/* framing lost: a client closes */
		}
		FUZZ_CHECK(res == PROTO_RESP_OK);
		FUZZ_CHECK(consumed >= 3 && consumed <= left);
		check_ok(&r, buf + pos, buf + pos + consumed, whole);
		check_pure(buf + pos, consumed, whole, &r);
		if (whole) {
			/* head mode sees the same first line */
			FUZZ_CHECK(proto_resp_parse_head(buf + pos, left, &h,
			    &hc) == PROTO_RESP_OK && h.kind == r.kind);
			FUZZ_CHECK(hc == consumed - (has_data(r.kind) ?
			    (size_t)r.nbytes + 2 : 0));
		}
		pos += consumed;
		if (!whole && has_data(r.kind)) {
			/* skip the data as a streaming client does */
			if (size - pos < (size_t)r.nbytes + 2)
				return;
			pos += (size_t)r.nbytes + 2;
		}
	}
}

/* Parses the input as one connection's replies, in both modes. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size > 0 ? size : 1);

	FUZZ_CHECK(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);
	walk(buf, size, true);
	walk(buf, size, false);
	free(buf);
	return 0;
}
