/*
 * proto_resp.h -- the client side of the memcached text protocol: a pure
 * parser of server replies over bytes, for the load generator and the
 * client library.
 *
 * One call parses one reply element from the front of a buffer: a status
 * line (STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, TOUCHED, OK, END,
 * RESET), an incr/decr number, a STAT line, a VERSION line, an error line
 * (ERROR, CLIENT_ERROR, SERVER_ERROR), or a VALUE header with its data
 * block.  A retrieval's reply is a run of VALUE elements ended by END; the
 * caller, which knows what it asked, groups elements into replies.
 *
 * Meta replies: the status lines HD, NS, EX, NF (each with optional return
 * flags), EN and MN alone, and "VA <size> <flags>*" with its data block.
 * The return flags, single-space separated tokens of a letter and non-space
 * bytes, are left whole in text; three are also decoded: f (client flags),
 * c (cas) and k (the key as written: base64 when b is among the flags).
 *
 * Results:
 *   PROTO_RESP_NEED_MORE  the element is not complete yet; *consumed is 0
 *   PROTO_RESP_OK         *r is filled; *consumed bytes make the element
 *   PROTO_RESP_BAD        not a reply this parser knows, or a line over
 *                         PROTO_RESP_LINE_MAX: the stream cannot be trusted
 *                         any more, close it.  *consumed is the bad line's
 *                         length with its "\n", the whole element's for a
 *                         VALUE or VA whose data is not ended by "\r\n", or 0
 *                         when no "\n" was seen.
 *
 * Data structure: none.  No I/O, no allocation, no state between calls;
 * every pointer in *r borrows from the caller's buffer and is valid until
 * the caller moves or overwrites it.  Text fields are not NUL-terminated.
 */
#ifndef CACHED_PROTO_RESP_H
#define CACHED_PROTO_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest reply line, without "\r\n", before the stream is declared bad. */
#define PROTO_RESP_LINE_MAX	4096
/* Longest key a VALUE line may carry (as for requests). */
#define PROTO_RESP_KEY_MAX	250
/* Largest data block a VALUE line may declare (INT32_MAX - 2). */
#define PROTO_RESP_NBYTES_MAX	2147483645u

enum proto_resp_result {
	PROTO_RESP_NEED_MORE = 0,
	PROTO_RESP_OK,
	PROTO_RESP_BAD
};

enum proto_resp_kind {
	PROTO_RESP_STORED,
	PROTO_RESP_NOT_STORED,
	PROTO_RESP_EXISTS,
	PROTO_RESP_NOT_FOUND,
	PROTO_RESP_DELETED,
	PROTO_RESP_TOUCHED,
	PROTO_RESP_OK_LINE,	/* "OK" (flush_all, verbosity) */
	PROTO_RESP_END,
	PROTO_RESP_RESET,	/* "RESET" (stats reset) */
	PROTO_RESP_VALUE,	/* key, flags, nbytes, cas; data if whole */
	PROTO_RESP_NUMBER,	/* incr/decr: number */
	PROTO_RESP_STAT,	/* name, text (the value) */
	PROTO_RESP_VERSION,	/* text */
	PROTO_RESP_HD,		/* meta: stored, deleted...; text: flags */
	PROTO_RESP_VA,		/* meta value: nbytes, data, flags as VALUE */
	PROTO_RESP_EN,		/* meta: miss */
	PROTO_RESP_MN,		/* meta: the end of a pipeline (mn) */
	PROTO_RESP_NS,		/* meta: not stored; text: flags */
	PROTO_RESP_EX,		/* meta: exists (cas mismatch); text: flags */
	PROTO_RESP_NF,		/* meta: not found; text: flags */
	PROTO_RESP_ERROR,	/* text: what follows "ERROR" and ": " */
	PROTO_RESP_CLIENT_ERROR,/* text */
	PROTO_RESP_SERVER_ERROR,/* text */
	PROTO_RESP_KIND_COUNT
};

struct proto_resp {
	enum proto_resp_kind	 kind;
	/* VALUE: the key; STAT: the name; meta: the k flag's key, if any */
	const char		*key;
	size_t			 nkey;
	/* VALUE, and meta replies with the f and c return flags */
	uint32_t		 flags;
	uint32_t		 nbytes;	/* data length without CRLF */
	bool			 has_cas;
	uint64_t		 cas;
	const char		*data;		/* proto_resp_parse only */
	/* NUMBER */
	uint64_t		 number;
	/* STAT value, VERSION, the errors' message, a meta reply's return
	 * flags (may be empty) */
	const char		*text;
	size_t			 ntext;
};

/* Parses one whole reply element from buf[0 .. len): for VALUE and VA, the
 * header line, the nbytes data bytes and their "\r\n". */
enum proto_resp_result proto_resp_parse(const char *buf, size_t len,
	    struct proto_resp *r, size_t *consumed);

/* As proto_resp_parse, but a VALUE or VA element ends with its header line:
 * r->data is NULL and r->nbytes data bytes plus "\r\n" follow *consumed,
 * for a caller that streams values instead of buffering them. */
enum proto_resp_result proto_resp_parse_head(const char *buf, size_t len,
	    struct proto_resp *r, size_t *consumed);

/*
 * Binary protocol replies (proto_resp_bin.c): a 24-byte header (magic
 * 0x81, opcode, key length, extras length, data type, status, total body
 * length, opaque, CAS; big-endian), then extras, key and value.  One call
 * parses the header with its extras and key; the value's nvalue bytes
 * follow *consumed, for the caller to take or skip.  NEED_MORE until the
 * header, extras and key are all in buf; BAD when the magic is not 0x81
 * or extras and key do not fit in the body (the framing is lost).
 */
#define PROTO_RESP_BIN_HEADER	24
#define PROTO_RESP_BIN_MAGIC	0x81

struct proto_resp_bin {
	uint8_t		 opcode;
	uint8_t		 datatype;
	uint16_t	 status;	/* 0 success, 1 not found, 2 exists... */
	uint32_t	 opaque;
	uint64_t	 cas;
	const char	*extras;	/* extlen bytes */
	uint8_t		 extlen;
	const char	*key;		/* keylen bytes (GETK/GETKQ, STAT) */
	uint16_t	 keylen;
	uint32_t	 nvalue;	/* value bytes after the key */
	bool		 has_flags;	/* extras are 4 bytes of client flags */
	uint32_t	 flags;
};

enum proto_resp_result proto_resp_parse_bin_head(const char *buf,
	    size_t len, struct proto_resp_bin *r, size_t *consumed);

/* The keyword of a kind ("STORED", "VALUE", "number" for NUMBER...). */
const char *proto_resp_kind_name(enum proto_resp_kind kind);

/* True for ERROR, CLIENT_ERROR and SERVER_ERROR. */
bool	proto_resp_is_error(enum proto_resp_kind kind);

#endif
