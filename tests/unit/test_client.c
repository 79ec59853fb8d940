/*
 * test_client.c -- unit tests of libcachedclient's pure parts: SHA-256
 * (FIPS 180-4 vectors), memo key derivation (format, length bound, no
 * collisions across argument boundaries), the value envelope, the TTL and
 * jitter arithmetic and the namespace version cache, whose clock is passed
 * in so no test sleeps.  No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_internal.h"
#include "sha256.h"

#define COLLISION_NUMS	1000	/* 4,890 argument sets */

/* Returns the hex SHA-256 of buf into hex (65 bytes). */
static void
sha_hex(const void *buf, size_t len, size_t chunk, char *hex)
{
	struct sha256_ctx	ctx;
	uint8_t			d[SHA256_DIGEST_LEN];
	const uint8_t		*p = buf;
	size_t			off, n;
	int			i;

	client_sha256_init(&ctx);
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		client_sha256_update(&ctx, p + off, n);
	}
	client_sha256_final(&ctx, d);
	for (i = 0; i < SHA256_DIGEST_LEN; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
}

/* FIPS 180-4 example vectors, one-shot and fed a byte at a time. */
static void
test_sha256_fips_vectors(void **state)
{
	static const struct { const char *msg, *hex; } v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
		    "7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff"
		    "61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd4"
		    "19db06c1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac4503"
		    "7afee9d1" },
	};
	char	hex[65];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		sha_hex(v[i].msg, strlen(v[i].msg), 1 << 20, hex);
		assert_string_equal(hex, v[i].hex);
		sha_hex(v[i].msg, strlen(v[i].msg), 1, hex);
		assert_string_equal(hex, v[i].hex);
	}
}

/* One million 'a's (FIPS 180-4), in uneven chunks. */
static void
test_sha256_million_a(void **state)
{
	char	*buf = malloc(1000000), hex[65];

	(void)state;
	assert_non_null(buf);
	memset(buf, 'a', 1000000);
	sha_hex(buf, 1000000, 1000, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a4"
	    "97200e046d39ccc7112cd0");
	sha_hex(buf, 1000000, 77, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a4"
	    "97200e046d39ccc7112cd0");
	free(buf);
}

/* Lengths around the padding boundaries (reference: Python hashlib). */
static void
test_sha256_block_boundaries(void **state)
{
	static const struct { size_t len; const char *hex; } v[] = {
		{ 1, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a306"
		    "17afa01d" },
		{ 55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae5"
		    "9b598b59" },
		{ 56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a6"
		    "0895f562" },
		{ 57, "2fe741af801cc238602ac0ec6a7b0c3a8a87c7fc7d7f02a3fe03d1c1"
		    "2eac4d8f" },
		{ 63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69"
		    "cdb9e488" },
		{ 64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1"
		    "d9151108" },
		{ 65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2f"
		    "abb31781" },
		{ 119, "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d3"
		    "9d18f7ec6" },
		{ 120, "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c07"
		    "5420bbb7c" },
		{ 127, "92ca0fa6651ee2f97b884b7246a562fa71250fedefe5ebf270d31c5"
		    "46bfea976" },
		{ 128, "471fb943aa23c511f6f72f8d1652d9c880cfa392ad80503120547703"
		    "e56a2be5" },
		{ 1000, "4e4c294b331f7a2099a379bec34b9f9fc03dc46ab465d998f4d683d"
		    "a53487e6d" },
	};
	uint8_t	buf[1000];
	char	hex[65];
	size_t	i, chunk;

	(void)state;
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i % 251);
	for (i = 0; i < sizeof v / sizeof v[0]; i++)
		for (chunk = 1; chunk <= 130; chunk += 43) {
			sha_hex(buf, v[i].len, chunk, hex);
			assert_string_equal(hex, v[i].hex);
		}
}

/* Returns the memo key of the given arguments (asserting success). */
static void
memo_key(const char *ns, uint64_t ver, const char *fn, const cc_arg *args,
    size_t nargs, char *out)
{
	assert_int_equal(cc_memo_key(ns, ver, fn, args, nargs, out), CC_OK);
}

/* Keys match the documented format exactly (reference: Python). */
static void
test_key_known_values(void **state)
{
	cc_arg	args[] = { { "sku-42", 6 }, { "EUR", 3 } };
	cc_arg	empty = { NULL, 0 };
	char	key[CC_MEMO_KEY_SIZE];

	(void)state;
	memo_key("shop", 1732570000000ULL, "price", args, 2, key);
	assert_string_equal(key, "memo1:shop:1732570000000:price:"
	    "9227a359bfaf3eb2f108d87b3f52986dec3e28172d72382a1da92684fac1c484");
	memo_key("n", 0, "f", NULL, 0, key);
	assert_string_equal(key, "memo1:n:0:f:"
	    "af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc");
	memo_key("n", 7, "f", &empty, 1, key);
	assert_string_equal(key, "memo1:n:7:f:"
	    "783825822a6f9e62da2190e828e4c9d2576e5977e3a0b3620b092dfb9e9996fa");
}

/* Asserts key is a valid protocol key: printable, no space, <= 250. */
static void
assert_protocol_key(const char *key)
{
	size_t len = 0, i;

	assert_true(client_key_ok(key, &len));
	assert_true(len <= CC_KEY_MAX);
	for (i = 0; i < len; i++)
		assert_true(key[i] > 0x20 && key[i] < 0x7f);
}

/* The longest possible key, and its lock key, stay within 250 bytes. */
static void
test_key_length_bound(void **state)
{
	char	ns[CC_NAME_MAX + 1], fn[CC_NAME_MAX + 1];
	char	key[CC_MEMO_KEY_SIZE], lock[CC_KEY_MAX + 64];
	uint8_t	*big = calloc(1, 100000);
	cc_arg	arg = { big, 100000 };

	(void)state;
	assert_non_null(big);
	memset(ns, '~', CC_NAME_MAX);
	ns[CC_NAME_MAX] = '\0';
	memset(fn, '!', CC_NAME_MAX);
	fn[CC_NAME_MAX] = '\0';
	memo_key(ns, UINT64_MAX, fn, &arg, 1, key);
	assert_int_equal(strlen(key), MEMO_KEY_MAX);
	assert_protocol_key(key);
	snprintf(lock, sizeof lock, "%s%s", key, MEMO_LOCK_SUFFIX);
	assert_protocol_key(lock);
	assert_true(MEMO_KEY_MAX + MEMO_LOCK_SUFFIX_LEN <= CC_KEY_MAX);
	free(big);
}

/* Argument boundaries are part of the key: no two splits collide. */
static void
test_key_argument_boundaries(void **state)
{
	static const struct { size_t n; const char *a[3]; } sets[] = {
		{ 0, { NULL } },
		{ 1, { "" } },
		{ 2, { "", "" } },
		{ 1, { "abc" } },
		{ 2, { "ab", "c" } },
		{ 2, { "a", "bc" } },
		{ 2, { "abc", "" } },
		{ 2, { "", "abc" } },
		{ 3, { "a", "b", "c" } },
		{ 1, { "a\0bc" } },	/* same bytes, spelled through lengths */
	};
	char	keys[sizeof sets / sizeof sets[0]][CC_MEMO_KEY_SIZE];
	size_t	i, j, k;

	(void)state;
	for (i = 0; i < sizeof sets / sizeof sets[0]; i++) {
		cc_arg args[3];

		for (k = 0; k < sets[i].n; k++) {
			args[k].data = sets[i].a[k];
			args[k].len = strlen(sets[i].a[k]);
		}
		memo_key("ns", 1, "fn", args, sets[i].n, keys[i]);
		assert_protocol_key(keys[i]);
		for (j = 0; j < i; j++)
			assert_string_not_equal(keys[i], keys[j]);
	}
}

/* Binary arguments (NUL, high bytes) that differ give different keys. */
static void
test_key_binary_arguments(void **state)
{
	uint8_t	a[4] = { 0, 0xff, 0x80, 0 }, b[4] = { 0, 0xff, 0x80, 1 };
	cc_arg	x = { a, 4 }, y = { b, 4 }, z = { a, 3 };
	char	k1[CC_MEMO_KEY_SIZE], k2[CC_MEMO_KEY_SIZE], k3[CC_MEMO_KEY_SIZE];

	(void)state;
	memo_key("ns", 1, "fn", &x, 1, k1);
	memo_key("ns", 1, "fn", &y, 1, k2);
	memo_key("ns", 1, "fn", &z, 1, k3);
	assert_string_not_equal(k1, k2);
	assert_string_not_equal(k1, k3);
	assert_string_not_equal(k2, k3);
}

/* Orders strings for qsort. */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Thousands of similar argument sets never share a key: every split of the
 * decimal strings 0..COLLISION_NUMS-1 into two arguments, plus each string
 * as a single argument, so equal concatenations abound.
 */
static void
test_key_no_collisions(void **state)
{
	char	**keys = calloc(COLLISION_NUMS * 6, sizeof *keys);
	char	  s[16];
	size_t	  nkeys = 0, i;
	int	  k, n, cut;

	(void)state;
	assert_non_null(keys);
	for (k = 0; k < COLLISION_NUMS; k++) {
		n = snprintf(s, sizeof s, "%d", k);
		for (cut = -1; cut <= n; cut++) {
			cc_arg args[2] = { { s, (size_t)(cut < 0 ? n : cut) },
			    { s + (cut < 0 ? 0 : cut),
			    (size_t)(cut < 0 ? 0 : n - cut) } };

			keys[nkeys] = malloc(CC_MEMO_KEY_SIZE);
			assert_non_null(keys[nkeys]);
			memo_key("ns", 3, "fn", args, cut < 0 ? 1 : 2,
			    keys[nkeys++]);
		}
	}
	qsort(keys, nkeys, sizeof *keys, cmp_str);
	for (i = 1; i < nkeys; i++)
		assert_string_not_equal(keys[i - 1], keys[i]);
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
}

/* Namespace, version and function each change the key. */
static void
test_key_parts_distinct(void **state)
{
	cc_arg	arg = { "x", 1 };
	char	k[4][CC_MEMO_KEY_SIZE];

	(void)state;
	memo_key("ns", 1, "fn", &arg, 1, k[0]);
	memo_key("ns", 2, "fn", &arg, 1, k[1]);
	memo_key("ns2", 1, "fn", &arg, 1, k[2]);
	memo_key("ns", 1, "fn2", &arg, 1, k[3]);
	assert_string_not_equal(k[0], k[1]);
	assert_string_not_equal(k[0], k[2]);
	assert_string_not_equal(k[0], k[3]);
	assert_string_not_equal(k[2], k[3]);
}

/* Bad names and arguments are refused, never truncated or escaped. */
static void
test_key_rejects_bad_input(void **state)
{
	char	long_name[CC_NAME_MAX + 2], key[CC_MEMO_KEY_SIZE];
	cc_arg	bad = { NULL, 3 };

	(void)state;
	memset(long_name, 'a', CC_NAME_MAX + 1);
	long_name[CC_NAME_MAX + 1] = '\0';
	assert_int_equal(cc_memo_key(long_name, 1, "f", NULL, 0, key),
	    CC_BAD_ARGUMENT);
	long_name[CC_NAME_MAX] = '\0';	/* exactly CC_NAME_MAX is fine */
	assert_int_equal(cc_memo_key(long_name, 1, "f", NULL, 0, key), CC_OK);
	assert_int_equal(cc_memo_key("", 1, "f", NULL, 0, key),
	    CC_BAD_ARGUMENT);
	assert_int_equal(cc_memo_key(NULL, 1, "f", NULL, 0, key),
	    CC_BAD_ARGUMENT);
	assert_int_equal(cc_memo_key("a b", 1, "f", NULL, 0, key),
	    CC_BAD_ARGUMENT);
	assert_int_equal(cc_memo_key("a:b", 1, "f", NULL, 0, key),
	    CC_BAD_ARGUMENT);
	assert_int_equal(cc_memo_key("ns", 1, "f\n", NULL, 0, key),
	    CC_BAD_ARGUMENT);
	assert_int_equal(cc_memo_key("ns", 1, "f\x7f", NULL, 0, key),
	    CC_BAD_ARGUMENT);
	assert_int_equal(cc_memo_key("ns", 1, "f", &bad, 1, key),
	    CC_BAD_ARGUMENT);
	assert_int_equal(cc_memo_key("ns", 1, "f", NULL, 2, key),
	    CC_BAD_ARGUMENT);
	assert_int_equal(cc_memo_key("ns", 1, "f", NULL, 0, NULL),
	    CC_BAD_ARGUMENT);
	assert_string_not_equal(cc_errmsg(), "no error");
}

/* Protocol key checks used by the thin operations. */
static void
test_key_ok(void **state)
{
	char	big[CC_KEY_MAX + 2];
	size_t	len;

	(void)state;
	assert_true(client_key_ok("a", &len));
	assert_int_equal(len, 1);
	assert_true(client_key_ok("\xc3\xa9t\xc3\xa9",
	    &len));	/* UTF-8 is fine */
	assert_false(client_key_ok("", &len));
	assert_false(client_key_ok(NULL, &len));
	assert_false(client_key_ok("a b", &len));
	assert_false(client_key_ok("a\tb", &len));
	assert_false(client_key_ok("a\x7f", &len));
	memset(big, 'k', CC_KEY_MAX);
	big[CC_KEY_MAX] = '\0';
	assert_true(client_key_ok(big, &len));
	assert_int_equal(len, CC_KEY_MAX);
	big[CC_KEY_MAX] = 'k';
	big[CC_KEY_MAX + 1] = '\0';
	assert_false(client_key_ok(big, &len));
	assert_int_equal(client_key_ns("shop", big),
	    strlen(MEMO_PREFIX "shop"));
	assert_string_equal(big, MEMO_PREFIX "shop");
}

/* The envelope trailer has the documented byte layout and round-trips. */
static void
test_envelope_layout(void **state)
{
	static const uint8_t want[ENVELOPE_LEN] = {
		0x00, 0x00, 0x01, 0x93, 0x64, 0xd8, 0x2f, 0x00,
		0, 0, 0, 0, 'C', 'C', 'm', 1
	};
	uint8_t		buf[5 + ENVELOPE_LEN];
	struct envelope	env;

	(void)state;
	memcpy(buf, "hello", 5);
	client_envelope_trailer(buf + 5, 0x19364d82f00ULL, 0);
	assert_memory_equal(buf + 5, want, ENVELOPE_LEN);
	assert_true(client_envelope_decode(buf, sizeof buf, &env));
	assert_int_equal(env.soft_expiry_ms, 0x19364d82f00ULL);
	assert_int_equal(env.flags, 0);
	assert_int_equal(env.payload_len, 5);
	assert_true(client_envelope_decode(buf + 5, ENVELOPE_LEN, &env));
	assert_int_equal(env.payload_len, 0);

	client_envelope_trailer(buf, UINT64_MAX, ENVELOPE_NEGATIVE);
	assert_int_equal(buf[8], ENVELOPE_NEGATIVE);
	assert_true(client_envelope_decode(buf, ENVELOPE_LEN, &env));
	assert_int_equal(env.flags, ENVELOPE_NEGATIVE);
	assert_int_equal(env.soft_expiry_ms, UINT64_MAX);
}

/* Anything that does not end in exactly a valid trailer is refused. */
static void
test_envelope_rejects(void **state)
{
	uint8_t		good[3 + ENVELOPE_LEN], bad[sizeof good];
	struct envelope	env;
	size_t		i;

	(void)state;
	memcpy(good, "abc", 3);
	client_envelope_trailer(good + 3, 12345, 0);
	assert_true(client_envelope_decode(good, sizeof good, &env));
	assert_false(client_envelope_decode(NULL, 0, &env));
	for (i = 0; i < ENVELOPE_LEN; i++)	/* too short for a trailer */
		assert_false(client_envelope_decode(good + 3 + ENVELOPE_LEN - i,
		    i,
		    &env));
	for (i = 8; i < ENVELOPE_LEN; i++) {	/* flags, zeros, magic, version */
		memcpy(bad, good, sizeof good);
		bad[3 + i] ^= (uint8_t)(i == 8 ? 0x02 : 0x40);
		assert_false(client_envelope_decode(bad, sizeof bad, &env));
	}
	/* A "not found" entry carries no payload. */
	memcpy(bad, good, sizeof good);
	client_envelope_trailer(bad + 3, 12345, ENVELOPE_NEGATIVE);
	assert_false(client_envelope_decode(bad, sizeof bad, &env));
	assert_false(client_envelope_decode("plain value from someone else", 29,
	    &env));
}

/* Without jitter: soft expiry = now + TTL, hard = TTL + grace + 1. */
static void
test_ttl_plain(void **state)
{
	struct client_ttl_plan p;

	(void)state;
	client_ttl_plan(&p, 60, 0, 30, 12345, 1000000);
	assert_int_equal(p.soft_expiry_ms, 1000000 + 60000);
	assert_int_equal(p.hard_ttl_s, 60 + 30 + 1);
	client_ttl_plan(&p, 1, 0, 0, 0, 5);
	assert_int_equal(p.soft_expiry_ms, 1005);
	assert_int_equal(p.hard_ttl_s, 2);
}

/* Jitter only shortens, within pct%, and the hard TTL rounds up. */
static void
test_ttl_jitter_bounds(void **state)
{
	struct client_ttl_plan	p;
	uint64_t	rnd, lo = UINT64_MAX, hi = 0, now = 1700000000000ULL;

	(void)state;
	client_ttl_plan(&p, 100, 10, 5, 0,
	    now);		/* rnd 0: full TTL */
	assert_int_equal(p.soft_expiry_ms, now + 100000);
	client_ttl_plan(&p, 100, 10, 5, 10000,
	    now);		/* rnd = span: -10 % */
	assert_int_equal(p.soft_expiry_ms, now + 90000);
	assert_int_equal(p.hard_ttl_s, 90 + 5 + 1);
	client_ttl_plan(&p, 100, 10, 5, 10001, now);		/* wraps to 0 */
	assert_int_equal(p.soft_expiry_ms, now + 100000);
	client_ttl_plan(&p, 10, 50, 0, 2500,
	    now);		/* 7.5 s rounds to 8 */
	assert_int_equal(p.soft_expiry_ms, now + 7500);
	assert_int_equal(p.hard_ttl_s, 8 + 0 + 1);
	for (rnd = 0; rnd < 100000; rnd += 7) {
		uint64_t mix = rnd * 0x9e3779b97f4a7c15ULL;
		uint64_t soft;

		client_ttl_plan(&p, 3600, 20, 60, mix, now);
		soft = p.soft_expiry_ms - now;
		assert_true(soft >= 3600000 * 8 / 10 && soft <= 3600000);
		assert_true(p.hard_ttl_s >= (soft + 999) / 1000 + 61);
		lo = soft < lo ? soft : lo;
		hi = soft > hi ? soft : hi;
	}
	/* The spread really is used: entries written together part ways. */
	assert_true(hi - lo > 3600000 / 10);
}

/* TTLs beyond 30 days are clamped: the server would read them as dates. */
static void
test_ttl_clamped(void **state)
{
	struct client_ttl_plan p;

	(void)state;
	client_ttl_plan(&p, UINT32_MAX, 0, 60, 0, 0);
	assert_int_equal(p.soft_expiry_ms, (uint64_t)CC_TTL_MAX * 1000);
	assert_int_equal(p.hard_ttl_s, CC_TTL_MAX);
	client_ttl_plan(&p, CC_TTL_MAX - 10, 0, 3600, 0, 0);
	assert_int_equal(p.hard_ttl_s, CC_TTL_MAX);
}

/* Unknown, stored, fresh, due: one refresher at a time. */
static void
test_nscache_refresh(void **state)
{
	struct nscache	*nc = client_nscache_create(1000);
	uint64_t	 v = 0;

	(void)state;
	assert_non_null(nc);
	assert_int_equal(client_nscache_lookup(nc, "a", 0, &v), NS_UNKNOWN);
	assert_int_equal(client_nscache_store(nc, "a", 42, 10000), 42);
	assert_int_equal(client_nscache_lookup(nc, "a", 10999, &v), NS_HIT);
	assert_int_equal(v, 42);
	assert_int_equal(client_nscache_lookup(nc, "b", 10999, &v), NS_UNKNOWN);
	/* Due: the first caller refreshes, the others keep the old version. */
	assert_int_equal(client_nscache_lookup(nc, "a", 11000, &v), NS_REFRESH);
	assert_int_equal(v, 42);
	assert_int_equal(client_nscache_lookup(nc, "a", 11001, &v), NS_HIT);
	assert_int_equal(v, 42);
	assert_int_equal(client_nscache_store(nc, "a", 43, 11002), 43);
	assert_int_equal(client_nscache_lookup(nc, "a", 11500, &v), NS_HIT);
	assert_int_equal(v, 43);
	/* A failed refresh keeps the version and waits a period. */
	assert_int_equal(client_nscache_lookup(nc, "a", 12002, &v), NS_REFRESH);
	client_nscache_failed(nc, "a", 12002);
	assert_int_equal(client_nscache_lookup(nc, "a", 13001, &v), NS_HIT);
	assert_int_equal(v, 43);
	assert_int_equal(client_nscache_lookup(nc, "a", 13002, &v), NS_REFRESH);
	/* A clock that went back makes the entry due at once. */
	client_nscache_store(nc, "a", 43, 20000);
	assert_int_equal(client_nscache_lookup(nc, "a", 19000, &v), NS_REFRESH);
	client_nscache_destroy(nc);
}

/* Versions never move back, whatever a server says. */
static void
test_nscache_monotonic(void **state)
{
	struct nscache	*nc = client_nscache_create(0);
	uint64_t	 v = 0;
	char		 name[16];
	int		 i;

	(void)state;
	assert_non_null(nc);
	assert_int_equal(client_nscache_store(nc, "x", 100, 1), 100);
	assert_int_equal(client_nscache_store(nc, "x", 7, 2), 100);
	assert_int_equal(client_nscache_store(nc, "x", 101, 3), 101);
	/* refresh 0: every lookup refreshes unless one is under way. */
	assert_int_equal(client_nscache_lookup(nc, "x", 3, &v), NS_REFRESH);
	assert_int_equal(client_nscache_lookup(nc, "x", 3, &v), NS_HIT);
	assert_int_equal(v, 101);
	/* Many namespaces share buckets without mixing up. */
	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof name, "ns%d", i);
		client_nscache_store(nc, name, (uint64_t)i + 1000, 5);
	}
	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof name, "ns%d", i);
		client_nscache_lookup(nc, name, 5, &v);
		assert_int_equal(v, (uint64_t)i + 1000);
	}
	client_nscache_destroy(nc);
}

/* Every status has its own name. */
static void
test_strerror(void **state)
{
	int i, j;

	(void)state;
	for (i = CC_OK; i <= CC_ERROR; i++) {
		assert_non_null(cc_strerror((cc_status)i));
		for (j = CC_OK; j < i; j++)
			assert_string_not_equal(cc_strerror((cc_status)i),
			    cc_strerror((cc_status)j));
	}
	assert_string_equal(cc_strerror((cc_status)999), "unknown status");
	assert_int_equal(client_err_map(MEMCACHED_NOTFOUND), CC_NOT_FOUND);
	assert_int_equal(client_err_map(MEMCACHED_CONNECTION_FAILURE),
	    CC_UNREACHABLE);
	assert_int_equal(client_err_map(MEMCACHED_TIMEOUT), CC_TIMEOUT);
	assert_int_equal(client_err_map(MEMCACHED_E2BIG), CC_TOO_LARGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_fips_vectors),
		cmocka_unit_test(test_sha256_million_a),
		cmocka_unit_test(test_sha256_block_boundaries),
		cmocka_unit_test(test_key_known_values),
		cmocka_unit_test(test_key_length_bound),
		cmocka_unit_test(test_key_argument_boundaries),
		cmocka_unit_test(test_key_binary_arguments),
		cmocka_unit_test(test_key_no_collisions),
		cmocka_unit_test(test_key_parts_distinct),
		cmocka_unit_test(test_key_rejects_bad_input),
		cmocka_unit_test(test_key_ok),
		cmocka_unit_test(test_envelope_layout),
		cmocka_unit_test(test_envelope_rejects),
		cmocka_unit_test(test_ttl_plain),
		cmocka_unit_test(test_ttl_jitter_bounds),
		cmocka_unit_test(test_ttl_clamped),
		cmocka_unit_test(test_nscache_refresh),
		cmocka_unit_test(test_nscache_monotonic),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
