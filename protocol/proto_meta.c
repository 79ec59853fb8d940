/*
 * proto_meta.c -- memcached's meta commands (mg ms md ma mn me): their
 * argument parser and their reply composers, pure functions over bytes
 * like the rest of protocol/.
 *
 * Parsing: proto_parse() finds the line and the command name and hands
 * the rest here.  A meta line is "<cm> <key> [<datalen>] <flag>*"; each
 * flag is a token whose first byte names it, some followed by an argument
 * ("T30", "Oabc").  The flags are checked in one pass in the order sent,
 * as memcached 1.6.18's _meta_flag_preparse() does, so the error line for
 * a bad line is the one memcached gives (its exact texts and their order
 * were observed on memcached 1.6.18 and are listed in the unit tests).
 * The flag text is kept (req->meta.ret) so the composers echo the return
 * flags in the order asked.  With the b flag the key is base64, decoded
 * strictly into req->meta.key.
 *
 * Where we differ from memcached 1.6.18, on purpose:
 *  - flags newer than 1.6.18 that the spec lists are accepted: E (all
 *    commands), x (md), and ms echoes s;
 *  - numbers are plain digits in range (no '+', no silent truncation of
 *    T/N/R beyond int32 or F beyond uint32), as in proto_parse.c;
 *  - keys may not hold control bytes (unless base64), as in proto_parse.c;
 *  - base64 is strict: a length that is a multiple of 4, padding only at
 *    the end, zero pad bits (memcached accepts "Zm9=" and data after "==");
 *  - an ms whose line is bad but whose datalen is known always skips its
 *    data block (memcached runs it as commands after "key too long" and
 *    "options flags too long"); an unknown datalen closes the connection;
 *  - the opaque length check runs at parse time for every command.
 *
 * Composing: the reply codes HD VA EN NS EX NF MN with the return flags
 * echoed in request order, each command echoing the set memcached echoes
 * for that code (see echo_set()).  q drops what memcached 1.6.18 drops:
 * EN for mg; HD for ms and md; HD and VA for ma.  Errors always go out.
 *
 * Data structure: b64_value[], the decoding table (-1 for bytes outside
 * the alphabet).  No locks, no allocation, no state between calls.
 */
#include <stddef.h>
#include <string.h>

#include "proto.h"
#include "proto_meta.h"

/* Most tokens after the command name (key, datalen, flags): memcached
 * refuses a line of more than 20 tokens counting the command and its
 * tokenizer's empty last token. */
#define META_TOKENS_MAX	18

/* Longest line the composers build: "VA <n>", every return flag once
 * (k with a 250-byte key base64-encoded and " b"), " Z X W", "\r\n". */
#define B64_LEN(n)	(((n) + 2) / 3 * 4)
#define META_LINE_MAX	(3 + 20 + (2 + B64_LEN(PROTO_KEY_MAX) + 2) + \
			    (2 + PROTO_OPAQUE_MAX) + 5 * (2 + 21) + 3 + \
			    6 + 2)
/* Longest me line: "ME <key> exp=.. la=.. cas=.. fetch=yes cls=1 size=..". */
#define ME_LINE_MAX	(3 + B64_LEN(PROTO_KEY_MAX) + 5 + 21 + 4 + 10 + \
			    5 + 20 + 10 + 6 + 6 + 20 + 2)

static const char err_format[] = "CLIENT_ERROR bad command line format\r\n";
static const char err_decode[] = "CLIENT_ERROR error decoding key\r\n";
static const char err_token[] =
    "CLIENT_ERROR bad token in command line format\r\n";
static const char err_dup[] = "CLIENT_ERROR duplicate flag\r\n";
static const char err_invalid[] = "CLIENT_ERROR invalid flag\r\n";
static const char err_mlen[] = "CLIENT_ERROR incorrect length for M token\r\n";
static const char err_initial[] =
    "CLIENT_ERROR invalid numeric initial value\r\n";
static const char err_delta[] = "CLIENT_ERROR invalid numeric delta value\r\n";
static const char err_opaque[] = "CLIENT_ERROR opaque token too long\r\n";
static const char err_mg_long[] =
    "CLIENT_ERROR options flags are too long\r\n";
static const char err_long[] = "CLIENT_ERROR options flags too long\r\n";
static const char err_inv_dup[] =
    "CLIENT_ERROR invalid or duplicate flag\r\n";
static const char err_ms_mode[] =
    "CLIENT_ERROR invalid mode for ms M token\r\n";
static const char err_ma_mode[] =
    "CLIENT_ERROR invalid mode for ma M token\r\n";
static const char err_unknown[] = "ERROR\r\n";

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Maps a byte to its base64 value, -1 outside the alphabet. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes n bytes of strict base64 (RFC 4648: groups of 4, '=' padding
 * only in the last group, zero pad bits) into out; returns the decoded
 * length, 0 when the input is invalid or empty.  out has room for
 * n / 4 * 3 bytes. */
static size_t
b64_decode(const char *in, size_t n, char *out)
{
	size_t o = 0;

	if (n == 0 || n % 4 != 0)
		return 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;
		uint32_t w;

		for (size_t j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)in[i + j];

			if (c == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[j] = b64_value(c)) < 0)
				return 0;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		/* Bits a padded group does not carry must be zero. */
		if ((pad == 1 && (w & 0xff) != 0) ||
		    (pad == 2 && (w & 0xffff) != 0))
			return 0;
		out[o++] = (char)(w >> 16);
		if (pad < 2)
			out[o++] = (char)(w >> 8);
		if (pad < 1)
			out[o++] = (char)w;
	}
	return o;
}

/* Encodes n bytes as padded base64 into out (B64_LEN(n) bytes); returns
 * the encoded length. */
static size_t
b64_encode(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)(unsigned char)in[i] << 16;

		if (i + 1 < n)
			w |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			w |= (uint32_t)(unsigned char)in[i + 2];
		out[o++] = b64_chars[w >> 18 & 63];
		out[o++] = b64_chars[w >> 12 & 63];
		out[o++] = i + 1 < n ? b64_chars[w >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64_chars[w & 63] : '=';
	}
	return o;
}

/* ---- parsing ---------------------------------------------------------- */

/* A token of the line: a run of non-space bytes. */
struct mtok {
	const char	*p;
	size_t		 n;
};

/* Splits [p, end) at spaces into at most max tokens; returns the count,
 * or max + 1 when there are more. */
static size_t
split(const char *p, const char *end, struct mtok *t, size_t max)
{
	size_t n = 0;

	for (;;) {
		const char *e;

		while (p < end && *p == ' ')
			p++;
		if (p == end)
			return n;
		if (n == max)
			return max + 1;
		/* Tokens are a few bytes (flags) to a key: a loop beats a
		 * memchr call per token. */
		for (e = p; e < end && *e != ' '; e++)
			;
		t[n].p = p;
		t[n].n = (size_t)(e - p);
		n++;
		p = e;
	}
}

/* Ends a parse with PROTO_BAD: reply error, then skip swallow bytes. */
static enum proto_result
meta_bad(struct proto_req *req, const char *error, size_t swallow)
{
	req->error = error;
	req->swallow = swallow;
	return PROTO_BAD;
}

/* Parses a flag's int32 argument (T N R), as memcached's safe_strtol. */
static bool
arg_time(const struct mtok *t, int64_t *out)
{
	return proto_digits_i64(t->p + 1, t->n - 1, INT32_MIN, INT32_MAX, out);
}

/* Parses a flag's uint64 argument (C E D J), as safe_strtoull. */
static bool
arg_u64(const struct mtok *t, uint64_t *out)
{
	return proto_digits_u64(t->p + 1, t->n - 1, UINT64_MAX, out);
}

/* Decodes the base64 key into req->meta.key; false when invalid. */
static bool
decode_key(struct proto_req *req, const struct mtok *key)
{
	char	buf[PROTO_KEY_MAX / 4 * 3];
	size_t	n;

	/* key->n <= PROTO_KEY_MAX was checked, so buf is big enough. */
	n = b64_decode(key->p, key->n, buf);
	if (n == 0)
		return false;
	memcpy(req->meta.key, buf, n);
	req->key = req->meta.key;
	req->nkey = n;
	return true;
}

/*
 * Checks and decodes the flag tokens t[0 .. n) into req->meta, in the
 * order sent, the way memcached 1.6.18's _meta_flag_preparse() does: a
 * repeated flag (or a first byte >= 127) and an unknown flag stop at once;
 * a bad argument notes its error and goes on, so a later bad argument's
 * error replaces it.  Returns NULL or the error line.
 */
static const char *
take_flags(struct proto_req *req, const struct mtok *key,
    const struct mtok *t, size_t n)
{
	struct proto_meta	*m = &req->meta;
	const char		*err = NULL;
	bool			 failed = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i].p[0];
		uint64_t bit, u;

		if (c >= 127)
			return err_dup;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
			return err_invalid;
		bit = PROTO_MF(c);
		if (m->flags & bit)
			return err_dup;
		m->flags |= bit;
		switch (c) {
		case 'b':
			if (!decode_key(req, key)) {
				err = err_decode;
				failed = true;
			}
			break;
		case 'N':
		case 'T':
		case 'R':
			if (!arg_time(&t[i], c == 'N' ? &m->vivify_ttl :
			    c == 'T' ? &m->ttl : &m->recache_ttl)) {
				err = err_token;
				failed = true;
			}
			break;
		case 'C':
		case 'E':	/* E: newer than memcached 1.6.18 */
			if (!arg_u64(&t[i], c == 'C' ? &m->cas :
			    &m->new_cas)) {
				err = err_token;
				failed = true;
			}
			break;
		case 'F':
			/* No error text of its own: the line's default. */
			if (!proto_digits_u64(t[i].p + 1, t[i].n - 1,
			    UINT32_MAX, &u))
				failed = true;
			else
				m->client_flags = (uint32_t)u;
			break;
		case 'M':
			if (t[i].n != 2) {
				err = err_mlen;
				failed = true;
			} else
				m->mode = t[i].p[1];
			break;
		case 'J':
			if (!arg_u64(&t[i], &m->initial)) {
				err = err_initial;
				failed = true;
			}
			break;
		case 'D':
			if (!arg_u64(&t[i], &m->delta)) {
				err = err_delta;
				failed = true;
			}
			break;
		case 'O':
			m->opaque = t[i].p + 1;
			m->nopaque = t[i].n - 1;
			break;
		case 'c': case 'f': case 'h': case 'k': case 'l': case 'q':
		case 's': case 't': case 'u': case 'v': case 'I': case 'L':
		case 'P':
			break;
		case 'x':	/* md only; newer than memcached 1.6.18 */
			if (req->cmd != PROTO_CMD_MD) {
				m->flags &= ~bit;
				return err_invalid;
			}
			break;
		default:
			m->flags &= ~bit;
			return err_invalid;
		}
	}
	return failed ? (err != NULL ? err : err_format) : NULL;
}

/* Normalises and checks the M token of ms and ma; false when invalid. */
static bool
take_mode(struct proto_req *req)
{
	char	m = req->meta.mode;

	if (req->cmd == PROTO_CMD_MS) {
		if (!(req->meta.flags & PROTO_MF('M')))
			m = 'S';
		req->meta.mode = m;
		return m == 'E' || m == 'A' || m == 'P' || m == 'R' ||
		    m == 'S';
	}
	if (!(req->meta.flags & PROTO_MF('M')) || m == '+')
		m = 'I';
	else if (m == '-')
		m = 'D';
	req->meta.mode = m;
	return m == 'I' || m == 'D';
}

/* True when every byte of [p, p + n) may be in a key. */
static bool
key_bytes_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!proto_key_byte_ok((unsigned char)p[i]))
			return false;
	return true;
}

/* me <key> [b]: memcached reads only a second token that is exactly "b"
 * and ignores any others; its errors are all the format error. */
static enum proto_result
args_me(const struct mtok *t, size_t n, struct proto_req *req)
{
	if (n == 0 || t[0].n > PROTO_KEY_MAX)
		return meta_bad(req, err_format, 0);
	req->key = t[0].p;
	req->nkey = t[0].n;
	if (n >= 2 && t[1].n == 1 && t[1].p[0] == 'b') {
		req->meta.flags = PROTO_MF('b');
		if (!decode_key(req, &t[0]))
			return meta_bad(req, err_format, 0);
	} else if (!key_bytes_ok(t[0].p, t[0].n))
		return meta_bad(req, err_format, 0);
	return PROTO_OK;
}

/* Parses the arguments [p, end) of the meta command req->cmd into req. */
enum proto_result
proto_meta_args(const char *p, const char *end, struct proto_req *req)
{
	struct mtok	 t[META_TOKENS_MAX + 1];
	size_t		 n, first, swallow = 0;
	bool		 is_ms = req->cmd == PROTO_CMD_MS;
	bool		 mg = req->cmd == PROTO_CMD_MG;
	const char	*err = NULL;
	uint64_t	 datalen = 0;
	bool		 sized = false;

	/* All of it but the key buffer, which only the b flag fills. */
	memset(&req->meta, 0, offsetof(struct proto_meta, key));
	req->meta.delta = 1;
	if (req->cmd == PROTO_CMD_MN)
		return PROTO_OK;	/* memcached ignores mn's arguments */
	n = split(p, end, t, META_TOKENS_MAX);
	if (req->cmd == PROTO_CMD_ME)
		return args_me(t, n, req);
	/* "mg" with no key is an unknown command to memcached. */
	if (n == 0)
		return meta_bad(req, err_unknown, 0);
	req->key = t[0].p;
	req->nkey = t[0].n;
	first = is_ms ? 2 : 1;
	if (is_ms && n >= 2) {
		sized = proto_digits_u64(t[1].p, t[1].n, PROTO_NBYTES_MAX,
		    &datalen);
		if (sized) {
			req->nbytes = (uint32_t)datalen;
			swallow = (size_t)datalen + 2;
		}
	}
	/* memcached's order: key length, datalen present, token count,
	 * datalen valid. */
	if (t[0].n > PROTO_KEY_MAX || (is_ms && n == 1))
		err = err_format;
	else if (n > META_TOKENS_MAX)
		err = mg ? err_mg_long : err_long;
	else if (is_ms && !sized)
		err = err_format;
	if (err != NULL) {
		/* Without a datalen an ms has no data block we know of. */
		if (is_ms && n >= 2 && !sized) {
			req->error = err;
			return PROTO_CLOSE;
		}
		return meta_bad(req, err, swallow);
	}
	req->meta.ret = first < n ? t[first].p : NULL;
	req->meta.nret = first < n ? (size_t)(t[n - 1].p + t[n - 1].n -
	    t[first].p) : 0;
	err = take_flags(req, &t[0], t + first, n - first);
	if (err != NULL && (req->cmd == PROTO_CMD_MD ||
	    req->cmd == PROTO_CMD_MA))
		err = err_inv_dup;
	if (err == NULL && (is_ms || req->cmd == PROTO_CMD_MA) &&
	    !take_mode(req))
		err = is_ms ? err_ms_mode : err_ma_mode;
	/* memcached counts the 'O' in the token's length. */
	if (err == NULL && (req->meta.flags & PROTO_MF('O')) &&
	    req->meta.nopaque + 1 > PROTO_OPAQUE_MAX)
		err = err_opaque;
	if (err == NULL && !(req->meta.flags & PROTO_MF('b')) &&
	    !key_bytes_ok(t[0].p, t[0].n))
		err = err_format;
	if (err != NULL)
		return meta_bad(req, err, swallow);
	req->noreply = (req->meta.flags & PROTO_MF('q')) != 0;
	return PROTO_OK;
}

/* ---- composing -------------------------------------------------------- */

/* What a reply line echoes: the return flags of req->meta.ret that this
 * command echoes with this reply, and the values they echo. */
struct echo {
	uint64_t		 set;	/* PROTO_MF bits of the letters echoed */
	const struct proto_hit	*h;	/* NULL: c echoes 0 */
	bool			 zxw;	/* mg hit: append Z X W */
};

/* The sets of echoed flags. */
#define ECHO_KO		(PROTO_MF('k') | PROTO_MF('O'))
#define ECHO_CKO	(ECHO_KO | PROTO_MF('c'))
#define ECHO_MG_HIT	(ECHO_CKO | PROTO_MF('f') | PROTO_MF('h') | \
			    PROTO_MF('l') | PROTO_MF('s') | PROTO_MF('t'))

/* Whether c is a letter, the only flags PROTO_MF takes. */
static inline bool
is_flag_letter(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Appends " <ch>" and a decimal at p; returns the new end. */
static char *
put_num(char *p, char ch, uint64_t v, bool neg)
{
	*p++ = ' ';
	*p++ = ch;
	if (neg)
		*p++ = '-';
	return p + proto_fmt_u64(p, v);
}

/* Appends " k<key>" (base64 and " b" for a binary key) at p. */
static char *
put_key(char *p, const struct proto_req *req, const char *key, size_t nkey)
{
	if (nkey > PROTO_KEY_MAX)
		nkey = PROTO_KEY_MAX;
	*p++ = ' ';
	*p++ = 'k';
	if (!(req->meta.flags & PROTO_MF('b'))) {
		memcpy(p, key, nkey);
		return p + nkey;
	}
	p += b64_encode(key, nkey, p);
	memcpy(p, " b", 2);
	return p + 2;
}

/* Appends the echoed return flags at p in request order, each at most
 * once; returns the new end. */
static char *
put_flags(char *p, const struct proto_req *req, const struct echo *e)
{
	const struct proto_hit	*h = e->h;
	const char		*r = req->meta.ret;
	const char		*end = r != NULL ? r + req->meta.nret : NULL;
	uint64_t		 done = 0;

	while (r != NULL && r < end) {
		unsigned char c = (unsigned char)*r;

		while (r < end && *r != ' ')
			r++;
		while (r < end && *r == ' ')
			r++;
		/* A mask, not strchr: this runs for every flag of every
		 * reply line.  take_flags let only letters through. */
		if (!is_flag_letter(c) || !(e->set & PROTO_MF(c)) ||
		    (done & PROTO_MF(c)))
			continue;
		done |= PROTO_MF(c);
		switch (c) {
		case 'k':
			p = put_key(p, req, h != NULL ? h->key : req->key,
			    h != NULL ? h->nkey : req->nkey);
			break;
		case 'O': {
			size_t no = req->meta.opaque != NULL ?
			    req->meta.nopaque : 0;

			if (no > PROTO_OPAQUE_MAX)
				no = PROTO_OPAQUE_MAX;
			*p++ = ' ';
			*p++ = 'O';
			if (no > 0)
				memcpy(p, req->meta.opaque, no);
			p += no;
			break;
		}
		case 'c':
			p = put_num(p, 'c', h != NULL ? h->cas : 0, false);
			break;
		case 'f':
			p = put_num(p, 'f', h->flags, false);
			break;
		case 'h':
			p = put_num(p, 'h', h->fetched, false);
			break;
		case 'l':
			p = put_num(p, 'l', h->idle, false);
			break;
		case 's':
			p = put_num(p, 's', h->nbytes, false);
			break;
		case 't':
			p = put_num(p, 't', h->ttl < 0 ? (uint64_t)-(h->ttl +
			    1) + 1 : (uint64_t)h->ttl, h->ttl < 0);
			break;
		default:
			break;
		}
	}
	if (e->zxw) {
		if (h->won_before)
			p = (memcpy(p, " Z", 2), p + 2);
		if (h->stale)
			p = (memcpy(p, " X", 2), p + 2);
		if (h->won)
			p = (memcpy(p, " W", 2), p + 2);
	}
	return p;
}

/* Queues "<code>[ <n>]<flags>\r\n"; with_n puts the data length in. */
static void
put_line(struct proto_out *o, const struct proto_req *req, const char *code,
    bool with_n, size_t n, const struct echo *e)
{
	char *p, *s;

	if ((s = p = o->space(o, META_LINE_MAX)) == NULL)
		return;
	memcpy(p, code, 2);
	p += 2;
	if (with_n) {
		*p++ = ' ';
		p += proto_fmt_u64(p, n);
	}
	p = put_flags(p, req, e);
	memcpy(p, "\r\n", 2);
	o->commit(o, (size_t)(p + 2 - s));
}

/* The return flags a command echoes on a status reply (no hit). */
static uint64_t
status_set(const struct proto_req *req, enum proto_reply r)
{
	/* ms reports c0 when it did not store (memcached 1.6.18). */
	if (req->cmd == PROTO_CMD_MS && (r == PROTO_R_NOT_STORED ||
	    r == PROTO_R_EXISTS || r == PROTO_R_NOT_FOUND))
		return ECHO_CKO;
	return ECHO_KO;
}

/* A fixed outcome of a meta command. */
void
proto_meta_status(struct proto_out *o, const struct proto_req *req,
    enum proto_reply r)
{
	struct echo	 e = { status_set(req, r), NULL, false };
	const char	*code, *s;
	size_t		 n;

	switch (r) {
	case PROTO_R_STORED:
	case PROTO_R_DELETED:
	case PROTO_R_TOUCHED:
	case PROTO_R_OK:
		code = "HD";
		break;
	case PROTO_R_NOT_STORED:
		code = "NS";
		break;
	case PROTO_R_EXISTS:
		code = "EX";
		break;
	case PROTO_R_NOT_FOUND:
		code = "NF";
		break;
	case PROTO_R_MISS:
		code = "EN";
		break;
	case PROTO_R_END:
		return;		/* a meta reply has no END */
	case PROTO_R_NOOP:
	default:
		/* MN and the error lines, sent as they are, even for q. */
		s = proto_reply(r, &n);
		proto_out_copy(o, s, n);
		return;
	}
	/* q hides EN of mg and HD of ms md ma; the others always go. */
	if (req->noreply && ((code[0] == 'E' && code[1] == 'N') ||
	    (code[0] == 'H' && req->cmd != PROTO_CMD_MG)))
		return;
	if (req->cmd == PROTO_CMD_ME || req->cmd == PROTO_CMD_MN)
		e.set = 0;
	put_line(o, req, code, false, 0, &e);
}

/* Releases a hit's reference without sending its value. */
static void
drop_ref(struct proto_out *o, const struct proto_hit *h)
{
	if (h->ref != NULL)
		o->value(o, h->value, 0, h->ref);
}

/* Queues a hit's value and its "\r\n", taking over h->ref. */
static void
put_value(struct proto_out *o, const struct proto_hit *h)
{
	if (h->ref != NULL)
		o->value(o, h->value, h->nbytes, h->ref);
	else
		proto_out_copy(o, h->value, h->nbytes);
	proto_out_copy(o, "\r\n", 2);
}

/* "ME <key> exp=<ttl> la=<idle> cas=<cas> fetch=<yes|no> cls=1
 * size=<total>\r\n"; we have no slab classes and say 1. */
static void
me_line(struct proto_out *o, const struct proto_req *req,
    const struct proto_hit *h)
{
	const char	*key = h->key != NULL ? h->key : req->key;
	size_t		 nkey = h->key != NULL ? h->nkey : req->nkey;
	char		*p, *s;

	if (nkey > PROTO_KEY_MAX)
		nkey = PROTO_KEY_MAX;
	if ((s = p = o->space(o, ME_LINE_MAX)) == NULL)
		return;
	memcpy(p, "ME ", 3);
	p += 3;
	if (req->meta.flags & PROTO_MF('b'))
		p += b64_encode(key, nkey, p);
	else
		p = (memcpy(p, key, nkey), p + nkey);
	memcpy(p, " exp=", 5);
	p += 5;
	/* As memcached 1.6.18 prints it: now minus the expiry time, so the
	 * seconds left come negated, and -1 for never. */
	if (h->ttl < 0)
		p = (memcpy(p, "-1", 2), p + 2);
	else {
		if (h->ttl > 0)
			*p++ = '-';
		p += proto_fmt_u64(p, (uint64_t)h->ttl);
	}
	memcpy(p, " la=", 4);
	p += 4 + proto_fmt_u64(p + 4, h->idle);
	memcpy(p, " cas=", 5);
	p += 5 + proto_fmt_u64(p + 5, h->cas);
	if (h->fetched)
		p = (memcpy(p, " fetch=yes", 10), p + 10);
	else
		p = (memcpy(p, " fetch=no", 9), p + 9);
	memcpy(p, " cls=1 size=", 12);
	p += 12 + proto_fmt_u64(p + 12, h->total);
	memcpy(p, "\r\n", 2);
	o->commit(o, (size_t)(p + 2 - s));
}

/* A hit of mg, the stored item of ms, the new value of ma (with v its
 * digits are the data block), or the item me describes; takes over
 * h->ref. */
void
proto_meta_hit(struct proto_out *o, const struct proto_req *req,
    const struct proto_hit *h)
{
	struct echo e = { ECHO_KO, h, false };

	switch (req->cmd) {
	case PROTO_CMD_ME:
		me_line(o, req, h);
		drop_ref(o, h);
		return;
	case PROTO_CMD_MG:
		e.set = ECHO_MG_HIT;
		e.zxw = true;
		break;
	case PROTO_CMD_MS:
		/* memcached 1.6.18 takes s on ms but never echoes it */
		e.set = ECHO_CKO;
		break;
	case PROTO_CMD_MA:
		e.set = ECHO_CKO | PROTO_MF('t');
		break;
	default:
		break;
	}
	/* q: only mg's hits are still sent, and, as memcached 1.6.18 does,
	 * ma's when it created the item. */
	if (req->noreply && req->cmd != PROTO_CMD_MG &&
	    !(req->cmd == PROTO_CMD_MA && h->won)) {
		drop_ref(o, h);
		return;
	}
	if (h->with_value) {
		put_line(o, req, "VA", true, h->nbytes, &e);
		put_value(o, h);
		return;
	}
	put_line(o, req, "HD", false, 0, &e);
	drop_ref(o, h);
}

/* ma's new value when the caller has no hit to give: "HD" or, with v,
 * "VA <n>" and the digits; k and O are echoed, t and c cannot be. */
void
proto_meta_number(struct proto_out *o, const struct proto_req *req,
    uint64_t v)
{
	struct echo	e = { ECHO_KO, NULL, false };
	char		num[21];
	size_t		n = proto_fmt_u64(num, v);

	if (req->noreply)
		return;
	if (!(req->meta.flags & PROTO_MF('v'))) {
		put_line(o, req, "HD", false, 0, &e);
		return;
	}
	put_line(o, req, "VA", true, n, &e);
	proto_out_copy(o, num, n);
	proto_out_copy(o, "\r\n", 2);
}

/* The end of a meta reply: nothing, but "MN" for mn. */
void
proto_meta_end(struct proto_out *o, const struct proto_req *req)
{
	if (req->cmd == PROTO_CMD_MN)
		proto_meta_status(o, req, PROTO_R_NOOP);
}
