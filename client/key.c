/*
 * key.c -- key validation and the memo key format, shared by cc_memoize
 * and by any tool (the pre-warmer) that must find the same entries.
 *
 *   memo key  = "memo1:" ns ":" version ":" fn ":" hex(SHA-256(enc))
 *   enc       = be64(nargs) || be64(len_1) || arg_1 || ... || arg_n
 *   ns key    = "memo1:" ns            (holds the namespace version)
 *   lock key  = memo key ":lock"
 *
 * Every argument is length-prefixed, so ("ab","c") and ("a","bc") encode
 * differently; the key is never truncated: names are limited to
 * CC_NAME_MAX bytes so the longest key (MEMO_KEY_MAX, 221 bytes, 226 with
 * the lock suffix) fits the protocol's 250.  version is decimal without
 * leading zeros, the hash lowercase hex.  Pure functions, no locking.
 */
#include "client_internal.h"
#include "proto.h"
#include "sha256.h"

#include <string.h>

/* True if byte b may appear in a namespace or function name. */
static bool
name_byte_ok(unsigned char b)
{
	return b > 0x20 && b < 0x7f && b != ':';
}

/* True if name is 1..CC_NAME_MAX printable bytes, no space and no ':'. */
bool
client_key_name_ok(const char *name)
{
	size_t i;

	if (name == NULL)
		return false;
	for (i = 0; name[i] != '\0'; i++)
		if (i >= CC_NAME_MAX || !name_byte_ok((unsigned char)name[i]))
			return false;
	return i > 0;
}

/* True if key is 1..CC_KEY_MAX bytes with no space or control byte. */
bool
client_key_ok(const char *key, size_t *len)
{
	size_t i;

	if (key == NULL)
		return false;
	for (i = 0; key[i] != '\0'; i++) {
		unsigned char b = (unsigned char)key[i];

		if (i >= CC_KEY_MAX || b <= 0x20 || b == 0x7f)
			return false;
	}
	*len = i;
	return i > 0;
}

/* True if every argument with a length has data. */
bool
client_key_args_ok(const cc_arg *args, size_t nargs)
{
	size_t i;

	if (nargs > 0 && args == NULL)
		return false;
	for (i = 0; i < nargs; i++)
		if (args[i].len > 0 && args[i].data == NULL)
			return false;
	return true;
}

/* Hashes a big-endian 64-bit number. */
static void
update_be64(struct sha256_ctx *ctx, uint64_t v)
{
	uint8_t	b[8];
	int	i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	client_sha256_update(ctx, b, sizeof b);
}

/* Hashes the canonical, length-prefixed encoding of args. */
void
client_key_args_digest(const cc_arg *args, size_t nargs, uint8_t out[32])
{
	struct sha256_ctx	ctx;
	size_t			i;

	client_sha256_init(&ctx);
	update_be64(&ctx, nargs);
	for (i = 0; i < nargs; i++) {
		update_be64(&ctx, args[i].len);
		if (args[i].len > 0)
			client_sha256_update(&ctx, args[i].data, args[i].len);
	}
	client_sha256_final(&ctx, out);
}

/* Appends the string s at p; returns the new end. */
static char *
put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

/* Appends v in decimal at p; returns the new end. */
static char *
put_u64(char *p, uint64_t v)
{
	return p + proto_fmt_u64(p, v);
}

/* Writes the memo key of validated inputs; returns its length. */
size_t
client_key_memo(const char *ns, uint64_t version, const char *fn,
    const cc_arg *args, size_t nargs, char *out)
{
	static const char	 hex[] = "0123456789abcdef";
	uint8_t			 digest[SHA256_DIGEST_LEN];
	char			*p = out;
	int			 i;

	client_key_args_digest(args, nargs, digest);
	p = put_str(p, MEMO_PREFIX);
	p = put_str(p, ns);
	*p++ = ':';
	p = put_u64(p, version);
	*p++ = ':';
	p = put_str(p, fn);
	*p++ = ':';
	for (i = 0; i < SHA256_DIGEST_LEN; i++) {
		*p++ = hex[digest[i] >> 4];
		*p++ = hex[digest[i] & 15];
	}
	*p = '\0';
	return (size_t)(p - out);
}

/* Writes "memo1:<ns>"; returns its length. */
size_t
client_key_ns(const char *ns, char *out)
{
	char *p = put_str(out, MEMO_PREFIX);

	p = put_str(p, ns);
	*p = '\0';
	return (size_t)(p - out);
}

/* Public: validates the inputs and writes the memo key. */
cc_status
cc_memo_key(const char *ns, uint64_t version, const char *fn,
    const cc_arg *args, size_t nargs, char *out)
{
	if (out == NULL)
		return client_err_set(CC_BAD_ARGUMENT,
		    "memo key: no output buffer");
	if (!client_key_name_ok(ns) || !client_key_name_ok(fn))
		return client_err_set(CC_BAD_ARGUMENT,
		    "memo key: namespace and "
		    "function names must be 1-%d printable bytes without "
		    "space or ':'", CC_NAME_MAX);
	if (!client_key_args_ok(args, nargs))
		return client_err_set(CC_BAD_ARGUMENT,
		    "memo key: argument with a length but no data");
	client_key_memo(ns, version, fn, args, nargs, out);
	return CC_OK;
}
