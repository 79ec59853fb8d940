/*
 * proto.h -- the request path's protocol layer: a protocol-neutral request
 * and result, the output interface replies are composed into, and the
 * memcached text protocol as a pure parser and composer.
 *
 * One request path serves every protocol:
 *
 *   bytes -> codec->parse -> struct proto_req (neutral) -> server dispatch
 *         -> store -> results reported through a struct proto_sink
 *         -> codec's composer -> struct proto_out (the server's queue)
 *
 * A protocol is a struct proto_codec: a parser from bytes to proto_req and
 * composers from neutral results (a status, a hit, a number, a stat line)
 * to bytes.  Adding a protocol adds a codec here and, for new operations,
 * rows in dispatch's table; nothing else in the server changes.  The
 * composer, not dispatch, decides what a quiet request (noreply) leaves
 * out.  No I/O, no store, no libevent, no allocation.  A parsed request
 * borrows pointers into the caller's buffer, valid until the caller moves
 * or overwrites it.
 *
 * Parsing yields one of four results:
 *   PROTO_NEED_MORE  no complete line yet (or: keep reading a long get line)
 *   PROTO_OK         a request; for storage commands req->nbytes data bytes
 *                    plus "\r\n" (none with req->bare_value: binary)
 *                    follow the line and are the caller's to read
 *   PROTO_BAD        the line is bad but framing is intact: send req->error,
 *                    skip req->swallow further bytes (a data block), go on
 *   PROTO_CLOSE      framing is lost: send req->error if not NULL, close
 * In every case but NEED_MORE, *consumed is the length of the line
 * including its "\n" (binary: of the header, extras and key).  req->error
 * is nerror bytes long, or a C string when nerror is 0.
 *
 * Commands are found through a table of names and per-command argument
 * parsers (proto_parse.c), so new families such as the meta commands slot in
 * as more rows.
 */
#ifndef CACHED_PROTO_H
#define CACHED_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_KEY_MAX		250
/* Longest command line without "\n" before the connection is closed. */
#define PROTO_LINE_MAX		2048
/* get/gets/gat/gats lines may be longer (many keys), up to this. */
#define PROTO_GET_LINE_MAX	(1024 * 1024)
/* Longest value length a storage line may declare (INT32_MAX - 2). */
#define PROTO_NBYTES_MAX	2147483645u
/* Enough for any line proto_value_line composes. */
#define PROTO_VALUE_LINE_MAX	(6 + PROTO_KEY_MAX + 3 * 21 + 4)

enum proto_cmd {
	PROTO_CMD_GET,
	PROTO_CMD_GETS,
	PROTO_CMD_GAT,
	PROTO_CMD_GATS,
	PROTO_CMD_SET,
	PROTO_CMD_ADD,
	PROTO_CMD_REPLACE,
	PROTO_CMD_APPEND,
	PROTO_CMD_PREPEND,
	PROTO_CMD_CAS,
	PROTO_CMD_DELETE,
	PROTO_CMD_INCR,
	PROTO_CMD_DECR,
	PROTO_CMD_TOUCH,
	PROTO_CMD_FLUSH_ALL,
	PROTO_CMD_VERSION,
	PROTO_CMD_VERBOSITY,
	PROTO_CMD_QUIT,
	PROTO_CMD_SHUTDOWN,
	PROTO_CMD_STATS,
	PROTO_CMD_REFRESH_CERTS,	/* reload TLS certificates */
	/* the meta commands (proto_meta.c) */
	PROTO_CMD_MG,
	PROTO_CMD_MS,
	PROTO_CMD_MD,
	PROTO_CMD_MA,
	PROTO_CMD_MN,
	PROTO_CMD_ME,
	/* SASL authentication (binary protocol, proto_bin.c) */
	PROTO_CMD_SASL_LIST,
	PROTO_CMD_SASL_AUTH,
	PROTO_CMD_SASL_STEP,
	/* lru_crawler <sub> [arg]: req->arg is the rest of the line, trimmed
	 * (key dumps, proto_dump.h) */
	PROTO_CMD_LRU_CRAWLER,
	/* memcached's run-time tuning commands (proto_parse.c) */
	PROTO_CMD_CACHE_MEMLIMIT,
	PROTO_CMD_SLABS,
	PROTO_CMD_LRU,
	/* watch [streams]: req->arg is the rest of the line, trimmed (the
	 * server parses the stream names) */
	PROTO_CMD_WATCH,
	PROTO_CMD_COUNT
};

/* cache_memlimit, slabs and lru, parsed (struct proto_req.admin). */
enum proto_admin_sub {
	PROTO_ADMIN_MEMLIMIT,		/* cache_memlimit <n1 MB, 8..1e9> */
	PROTO_ADMIN_AUTOMOVE,		/* slabs automove <n1: 0, 1, 2> */
	PROTO_ADMIN_AUTOMOVE_RATIO,	/* slabs automove ratio <f1> */
	PROTO_ADMIN_REASSIGN,		/* slabs reassign <n1 src> <n2 dst> */
	PROTO_ADMIN_LRU_TUNE,		/* lru tune <n1> <n2> <f1> <f2> */
	PROTO_ADMIN_LRU_MODE,		/* lru mode: n1 1 segmented, 0 flat */
	PROTO_ADMIN_LRU_TEMP_TTL,	/* lru temp_ttl <n1>, < 0: off */
};

struct proto_admin {
	enum proto_admin_sub	 sub;
	int64_t			 n1, n2;
	double			 f1, f2;
};

/* True for the meta commands. */
#define PROTO_CMD_IS_META(cmd)	((cmd) >= PROTO_CMD_MG && (cmd) <= PROTO_CMD_ME)

/* A meta flag's bit in proto_meta.flags: PROTO_MF('v'), PROTO_MF('N'). */
#define PROTO_MF(ch)	(UINT64_C(1) << ((ch) >= 'a' ? (ch) - 'a' + 26 : \
			    (ch) - 'A'))

/* Longest opaque (O) token, counting its 'O' as memcached does: the
 * opaque value itself is at most PROTO_OPAQUE_MAX - 1 bytes. */
#define PROTO_OPAQUE_MAX	32

/*
 * A meta command's flags, parsed.  `flags` has a bit for every flag
 * letter present; the tokens of those that take one are decoded into the
 * fields below (a field is meaningful only when its flag is present,
 * except delta, which defaults to 1, and mode, which defaults to 'S' for
 * ms and 'I' for ma).  `ret`/`nret` is the flag text as sent, which the
 * composer walks to echo the return flags in the order asked.  With the
 * b flag the key is base64: req->key then points at `key`, its decoded
 * bytes (so a proto_req must not be copied while in use).
 */
struct proto_meta {
	uint64_t	 flags;
	const char	*ret;
	size_t		 nret;
	const char	*opaque;	/* O, up to PROTO_OPAQUE_MAX - 1 bytes */
	size_t		 nopaque;
	uint64_t	 cas;		/* C: compare with the item's CAS */
	uint64_t	 new_cas;	/* E: the CAS to give a changed item */
	int64_t		 ttl;		/* T: exptime as the wire says it */
	int64_t		 vivify_ttl;	/* N */
	int64_t		 recache_ttl;	/* R */
	uint64_t	 delta;		/* D (ma) */
	uint64_t	 initial;	/* J (ma) */
	uint32_t	 client_flags;	/* F (ms) */
	char		 mode;		/* M: ms E A P R S, ma I D ('+' '-'
					 * are read as I D) */
	char		 key[PROTO_KEY_MAX];	/* b: the decoded key */
};

/* The binary protocol's 24-byte header, and room for a response the
 * parser composes itself (an error, or quit's reply): header plus text. */
#define PROTO_BIN_HDR		24
#define PROTO_BIN_RESP_MAX	(PROTO_BIN_HDR + 64)

/* The binary protocol's opcodes (memcached-protocol-binary.txt). */
enum proto_bin_op {
	BIN_GET = 0x00, BIN_SET = 0x01, BIN_ADD = 0x02, BIN_REPLACE = 0x03,
	BIN_DELETE = 0x04, BIN_INCR = 0x05, BIN_DECR = 0x06, BIN_QUIT = 0x07,
	BIN_FLUSH = 0x08, BIN_GETQ = 0x09, BIN_NOOP = 0x0a, BIN_VERSION = 0x0b,
	BIN_GETK = 0x0c, BIN_GETKQ = 0x0d, BIN_APPEND = 0x0e, BIN_PREPEND = 0x0f,
	BIN_STAT = 0x10, BIN_SETQ = 0x11, BIN_ADDQ = 0x12, BIN_REPLACEQ = 0x13,
	BIN_DELETEQ = 0x14, BIN_INCRQ = 0x15, BIN_DECRQ = 0x16, BIN_QUITQ = 0x17,
	BIN_FLUSHQ = 0x18, BIN_APPENDQ = 0x19, BIN_PREPENDQ = 0x1a,
	BIN_VERBOSITY = 0x1b, BIN_TOUCH = 0x1c, BIN_GAT = 0x1d, BIN_GATQ = 0x1e,
	BIN_SASL_LIST = 0x20, BIN_SASL_AUTH = 0x21, BIN_SASL_STEP = 0x22,
	BIN_GATK = 0x23, BIN_GATKQ = 0x24
};

/*
 * A binary request's header fields its replies echo (proto_bin.c).  The
 * neutral command says what dispatch runs; the opcode says how the reply
 * looks (key echoed, value or not, quiet).  `resp` holds a response the
 * parser built itself, which req->error points at.
 */
struct proto_bin {
	uint8_t		 opcode;
	uint32_t	 opaque;	/* as on the wire, echoed unchanged */
	char		 resp[PROTO_BIN_RESP_MAX];
};

enum proto_result {
	PROTO_NEED_MORE = 0,
	PROTO_OK,
	PROTO_BAD,
	PROTO_CLOSE
};

struct proto_req {
	enum proto_cmd	 cmd;
	/* single-key commands: the key */
	const char	*key;
	size_t		 nkey;
	/* get/gets/gat/gats: the validated key list, walked with
	 * proto_next_key(); at least one key */
	const char	*keys;
	size_t		 nkeys_bytes;
	uint32_t	 flags;		/* storage */
	int64_t		 exptime;	/* storage, touch, gat/gats */
	uint32_t	 nbytes;	/* storage: data length without CRLF */
	uint64_t	 cas;		/* cas */
	uint64_t	 delta;		/* incr/decr */
	int64_t		 delay;		/* flush_all (0 when absent) */
	uint32_t	 level;		/* verbosity */
	bool		 noreply;
	/* stats: the sub-command ("" for plain stats) and its argument */
	const char	*arg;
	size_t		 narg;
	/* cache_memlimit, slabs, lru */
	struct proto_admin admin;
	/* PROTO_BAD / PROTO_CLOSE: the reply line with "\r\n", or NULL */
	const char	*error;
	size_t		 swallow;	/* PROTO_BAD: data bytes to discard */
	size_t		 nerror;	/* error's length; 0: a C string */
	/* storage: the value is not followed by "\r\n" (binary) */
	bool		 bare_value;
	/* meta commands: flags and tokens; ms: nbytes is the data length,
	 * noreply is the q flag */
	struct proto_meta meta;
	/* binary protocol: header fields echoed (not zeroed by text) */
	struct proto_bin bin;
};

/* Parses one command line from buf[0 .. len). */
enum proto_result proto_parse(const char *buf, size_t len,
	    struct proto_req *req, size_t *consumed);

/* True for the commands that take a list of keys (get, gets, gat, gats). */
bool	proto_is_multikey(enum proto_cmd cmd);

/* Walks a multi-key request's keys: *cursor starts at 0; returns false
 * after the last key.  A request with no list but a key (a binary get,
 * whose key may hold spaces) yields that one key as it is. */
bool	proto_next_key(const struct proto_req *req, size_t *cursor,
	    const char **key, size_t *nkey);

/* True when the two bytes ending a data block are "\r\n". */
bool	proto_data_end_ok(const char *end2);

/* Fixed replies; proto_reply() gives each with its "\r\n". */
enum proto_reply {
	PROTO_R_STORED,
	PROTO_R_NOT_STORED,
	PROTO_R_EXISTS,
	PROTO_R_NOT_FOUND,
	PROTO_R_DELETED,
	PROTO_R_TOUCHED,
	PROTO_R_OK,
	PROTO_R_END,
	PROTO_R_RESET,
	PROTO_R_ERROR,
	PROTO_R_NON_NUMERIC,	/* CLIENT_ERROR cannot increment or decrement non-numeric value */
	PROTO_R_BAD_FORMAT,	/* CLIENT_ERROR bad command line format */
	PROTO_R_BAD_CHUNK,	/* CLIENT_ERROR bad data chunk */
	PROTO_R_TOO_LARGE,	/* SERVER_ERROR object too large for cache */
	PROTO_R_NO_MEMORY,	/* SERVER_ERROR out of memory storing object */
	PROTO_R_TOO_MANY_CONNS,	/* ERROR Too many open connections */
	PROTO_R_SHUTDOWN_OFF,	/* ERROR: shutdown not enabled */
	PROTO_R_MISS,		/* a retrieval found nothing: meta EN; the
				 * text protocol sends nothing per key */
	PROTO_R_NOOP,		/* mn: MN */
	PROTO_R_AUTH_OK,	/* SASL: authenticated */
	PROTO_R_AUTH_ERROR,	/* authentication failed or required */
	PROTO_R_AUTH_MECHS,	/* SASL: the mechanisms offered */
	PROTO_R_FLUSH_OFF,	/* CLIENT_ERROR flush_all not allowed (-F) */
	PROTO_R_SHUTDOWN_MODE,	/* CLIENT_ERROR invalid shutdown mode */
	PROTO_R_MEMLIMIT_FAILED, /* MEMLIMIT_ADJUST_FAILED out of bounds or
				 * unable to adjust */
	PROTO_R_SLABS_SAME,	/* SAME src and dst class are identical */
	PROTO_R_SLABS_BADCLASS,	/* BADCLASS invalid src or dst class id */
	PROTO_R_SLABS_NOSPARE,	/* NOSPARE source class has no spare pages */
	PROTO_R_UNAUTHENTICATED, /* CLIENT_ERROR unauthenticated (-Y) */
	PROTO_R_AUTH_FORMAT,	/* CLIENT_ERROR bad authentication token
				 * format (-Y: a login value not "user pass") */
	PROTO_R_AUTH_BADTERM,	/* CLIENT_ERROR bad command line termination
				 * (-Y: a login value not ending "\r\n") */
	PROTO_R_COUNT
};

/* The reply text including "\r\n"; *len (if not NULL) gets its length. */
const char *proto_reply(enum proto_reply r, size_t *len);

/* Composes "VALUE <key> <flags> <bytes>[ <cas>]\r\n" into out (at least
 * PROTO_VALUE_LINE_MAX bytes); returns its length. */
size_t	proto_value_line(char *out, const char *key, size_t nkey,
	    uint32_t flags, size_t nbytes, bool with_cas, uint64_t cas);
/* Composes "<value>\r\n" for incr/decr into out (>= 23 bytes). */
size_t	proto_u64_line(char *out, uint64_t value);
/* Composes "STAT <name> <value>\r\n" into out (cap bytes); returns the
 * length, or 0 when it does not fit. */
size_t	proto_stat_u64(char *out, size_t cap, const char *name,
	    uint64_t value);
size_t	proto_stat_str(char *out, size_t cap, const char *name,
	    const char *value);
/* As proto_stat_u64 for a value of nvalue bytes. */
size_t	proto_stat_line(char *out, size_t cap, const char *name,
	    const char *value, size_t nvalue);
/* Formats a decimal uint64 into out (>= 21 bytes), returns the length. */
size_t	proto_fmt_u64(char *out, uint64_t v);

/*
 * The output interface a composer writes into; the server implements it
 * with its output queue, tests with a plain buffer.  space() returns room
 * for n bytes (NULL when memory ran out: the implementation then fails the
 * connection, and the composer just stops); commit() queues the first
 * `used` bytes of it.  value() queues n bytes of a stored value; `ref` is
 * the store's reference to the memory, which the implementation takes over
 * (it may copy the bytes and release it at once, or send them from there
 * and release it once written).
 */
struct proto_out {
	char	*(*space)(struct proto_out *o, size_t n);
	void	 (*commit)(struct proto_out *o, size_t used);
	void	 (*value)(struct proto_out *o, const char *data, size_t n,
		    void *ref);
	/* True when the queue is over its soft limit: a resumable request
	 * stops producing and goes on once the client drained it. */
	bool	 (*full)(const struct proto_out *o);
	/* A value of at most copy_max bytes the composer may copy into
	 * space() itself, with the text around it, and give its ref back
	 * with release(): one queue entry instead of three.  Without a
	 * release(), every value goes to value(). */
	size_t	 copy_max;
	void	 (*release)(struct proto_out *o, void *ref);
};

/* An item in a result, protocol-neutral: value is nbytes of data owned
 * by ref (handed to proto_out.value; NULL ref: nothing to release), no
 * terminator.  The fields after `ref` are for the meta commands: the
 * item's state as it was before the command ran (ttl, idle, fetched) and
 * the recache outcome (W X Z). */
struct proto_hit {
	const char	*key;
	size_t		 nkey;
	uint32_t	 flags;
	uint64_t	 cas;
	const char	*value;
	size_t		 nbytes;
	void		*ref;
	bool		 with_value;	/* meta: send the data block (VA) */
	int64_t		 ttl;		/* seconds left, -1 for never */
	uint32_t	 idle;		/* seconds since last access */
	bool		 fetched;	/* read before */
	bool		 won;		/* W: this client recaches */
	bool		 stale;		/* X: the item is stale */
	bool		 won_before;	/* Z: another client won already */
	size_t		 total;		/* me: bytes the item takes */
};

/*
 * A wire protocol: its parser and the composers of each kind of result.
 * Every composer gets the request it answers, so it can honour noreply,
 * echo opaque values or keys, and pick the reply's shape by command.
 */
struct proto_codec {
	const char	*name;
	enum proto_result (*parse)(const char *buf, size_t len,
		    struct proto_req *req, size_t *consumed);
	/* A fixed outcome: STORED, NOT_FOUND, an error, ... */
	void	(*status)(struct proto_out *o, const struct proto_req *req,
		    enum proto_reply r);
	/* One hit of a retrieval (takes over h->ref). */
	void	(*hit)(struct proto_out *o, const struct proto_req *req,
		    const struct proto_hit *h);
	/* The new value of incr/decr. */
	void	(*number)(struct proto_out *o, const struct proto_req *req,
		    uint64_t v);
	/* One statistic of a stats reply. */
	void	(*stat)(struct proto_out *o, const struct proto_req *req,
		    const char *name, const char *value, size_t nvalue);
	/* The end of a multi-part reply (retrievals, stats). */
	void	(*end)(struct proto_out *o, const struct proto_req *req);
	/* The server's version string. */
	void	(*version)(struct proto_out *o, const struct proto_req *req,
		    const char *version);
	/* One key of a retrieval not found; NULL for protocols that say
	 * nothing per missed key (text). */
	void	(*miss)(struct proto_out *o, const struct proto_req *req);
};

/* The classic text protocol. */
extern const struct proto_codec proto_text;

/* memcached's binary protocol (proto_bin.c). */
extern const struct proto_codec proto_bin;

/* Queues a copy of n bytes through o; false when memory ran out. */
bool	proto_out_copy(struct proto_out *o, const char *s, size_t n);

#endif
