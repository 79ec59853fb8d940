/*
 * proto_meta.h -- protocol/-internal hooks between the text codec and the
 * meta commands (mg ms md ma mn me): proto_parse.c hands a meta line's
 * arguments to proto_meta_args(), proto_text.c's composers hand a meta
 * request's results to the proto_meta_* composers.  Not for the server:
 * it sees only proto.h.
 *
 * Data structure: none.  No locks: everything here is a pure function.
 */
#ifndef CACHED_PROTO_META_H
#define CACHED_PROTO_META_H

#include "proto.h"

/* Parses the arguments [p, end) (leading spaces skipped, no "\r\n") of the
 * meta command req->cmd into req. */
enum proto_result proto_meta_args(const char *p, const char *end,
	    struct proto_req *req);

/* The meta composers, one per struct proto_codec slot. */
void	proto_meta_status(struct proto_out *o, const struct proto_req *req,
	    enum proto_reply r);
void	proto_meta_hit(struct proto_out *o, const struct proto_req *req,
	    const struct proto_hit *h);
void	proto_meta_number(struct proto_out *o, const struct proto_req *req,
	    uint64_t v);
void	proto_meta_end(struct proto_out *o, const struct proto_req *req);

/* Shared with proto_parse.c: ASCII digits no greater than max (no sign,
 * no blanks); the same with an optional '-' within [min, max] (min < 0);
 * and the bytes a (non-base64) key may hold (inline: it runs per byte of
 * every key).  protocol.txt forbids control characters and whitespace in
 * keys, but memcached's tokenizer splits on spaces only and takes every
 * other byte, and clients rely on it (memcaslap's keys hold 0x10), so we
 * do too -- but for NUL: memcached reads a line only up to a NUL, so
 * "get a\0b" there answers for the key "a", another key's data. */
bool	proto_digits_u64(const char *p, size_t n, uint64_t max,
	    uint64_t *out);
bool	proto_digits_i64(const char *p, size_t n, int64_t min, int64_t max,
	    int64_t *out);
static inline bool
proto_key_byte_ok(unsigned char c)
{
	return c != ' ' && c != '\0';
}

#endif
