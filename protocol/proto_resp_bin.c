/*
 * proto_resp_bin.c -- parses memcached binary-protocol reply headers
 * (proto_resp.h): the client side of protocol-binary.txt, for the load
 * generator.  The header is read field by field in network byte order;
 * extras and key are borrowed from the caller's buffer, the value is left
 * to the caller (it may be large and is usually skipped unbuffered).
 *
 * Data structure: none; no state, no allocation.
 */
#include "proto_resp.h"

/* Reads a big-endian unsigned integer of n bytes at p. */
static uint64_t
be(const char *p, unsigned n)
{
	uint64_t	v = 0;
	unsigned	i;

	for (i = 0; i < n; i++)
		v = v << 8 | (uint8_t)p[i];
	return v;
}

/* Parses the header, extras and key of one reply at the front of buf. */
enum proto_resp_result
proto_resp_parse_bin_head(const char *buf, size_t len,
    struct proto_resp_bin *r, size_t *consumed)
{
	uint32_t	bodylen;
	size_t		head;

	*consumed = 0;
	if (len >= 1 && (uint8_t)buf[0] != PROTO_RESP_BIN_MAGIC)
		return PROTO_RESP_BAD;
	if (len < PROTO_RESP_BIN_HEADER)
		return PROTO_RESP_NEED_MORE;
	r->opcode = (uint8_t)buf[1];
	r->keylen = (uint16_t)be(buf + 2, 2);
	r->extlen = (uint8_t)buf[4];
	r->datatype = (uint8_t)buf[5];
	r->status = (uint16_t)be(buf + 6, 2);
	bodylen = (uint32_t)be(buf + 8, 4);
	r->opaque = (uint32_t)be(buf + 12, 4);
	r->cas = be(buf + 16, 8);
	if ((uint32_t)r->extlen + r->keylen > bodylen)
		return PROTO_RESP_BAD;
	head = PROTO_RESP_BIN_HEADER + (size_t)r->extlen + r->keylen;
	if (len < head)
		return PROTO_RESP_NEED_MORE;
	r->extras = buf + PROTO_RESP_BIN_HEADER;
	r->key = r->extras + r->extlen;
	r->nvalue = bodylen - r->extlen - r->keylen;
	r->has_flags = r->extlen == 4;
	r->flags = r->has_flags ? (uint32_t)be(r->extras, 4) : 0;
	*consumed = head;
	return PROTO_RESP_OK;
}
