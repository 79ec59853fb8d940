/*
 * test_auth.c -- unit tests of server/auth.c: the "user:password" file
 * format (memcached's authfile), the check against it and SASL PLAIN
 * messages (RFC 4616).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

/* Parses a C string; NULL and the reason in err on a bad list. */
static struct auth_db *
parse(const char *text, char *err)
{
	return auth_parse(text, strlen(text), err, 128);
}

/* True when user/pass (C strings) are in db. */
static bool
ok(const struct auth_db *db, const char *user, const char *pass)
{
	return auth_check(db, user, strlen(user), pass, strlen(pass));
}

/* Lines: LF and CRLF ends, empty lines skipped, the password is all after
 * the first ':', a last line without an end. */
static void
test_parse(void **state)
{
	struct auth_db	*db;
	char		 err[128];

	(void)state;
	db = parse("app:s3cret\r\n\nops:pa:ss\nlast:x", err);
	assert_non_null(db);
	assert_int_equal(auth_count(db), 3);
	assert_true(ok(db, "app", "s3cret"));
	assert_true(ok(db, "ops", "pa:ss"));
	assert_true(ok(db, "last", "x"));
	assert_false(ok(db, "app", "s3cret\r"));
	assert_false(ok(db, "app", "s3cre"));
	assert_false(ok(db, "app", "s3cretX"));
	assert_false(ok(db, "ap", "s3cret"));
	assert_false(ok(db, "ops", "pa"));
	assert_false(ok(db, "", ""));
	assert_false(ok(db, "app", ""));
	auth_free(db);
	/* an empty password is a password */
	db = parse("u:\n", err);
	assert_non_null(db);
	assert_true(ok(db, "u", ""));
	assert_false(ok(db, "u", "x"));
	auth_free(db);
}

/* Malformed lists are refused with the line named. */
static void
test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "\n\n", "nocolon\n", "ok:1\n:nouser\n", "ok:1\nbad\n",
	};
	char	err[128], big[600];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_null(parse(bad[i], err));
		assert_true(err[0] != '\0');
	}
	assert_null(parse("ok:1\nbad\n", err));
	assert_string_equal(err, "line 2 is not user:password");
	/* a NUL inside a line */
	assert_null(auth_parse("a:b\0c\n", 6, err, sizeof err));
	/* fields over 255 bytes */
	memset(big, 'x', sizeof big);
	memcpy(big + 256, ":p", 3);
	assert_null(parse(big, err));
}

/* SASL PLAIN: "[authzid]\0user\0pass"; an authzid must be the user. */
static void
test_sasl_plain(void **state)
{
	struct auth_db	*db;
	char		 err[128];

	(void)state;
	db = parse("app:s3cret\n", err);
	assert_non_null(db);
	assert_true(auth_sasl_plain(db, "\0app\0s3cret", 11));
	assert_true(auth_sasl_plain(db, "app\0app\0s3cret", 14));
	assert_false(auth_sasl_plain(db, "bob\0app\0s3cret", 14));
	assert_false(auth_sasl_plain(db, "\0app\0s3cre", 10));
	assert_false(auth_sasl_plain(db, "\0app\0s3cret\0", 12));
	assert_false(auth_sasl_plain(db, "\0app", 4));
	assert_false(auth_sasl_plain(db, "app\0s3cret", 10));
	assert_false(auth_sasl_plain(db, "", 0));
	assert_false(auth_sasl_plain(db, NULL, 0));
	assert_false(auth_sasl_plain(NULL, "\0app\0s3cret", 11));
	auth_free(db);
}

/* Text login (-Y): "user password", split on spaces as memcached. */
static void
test_text_login(void **state)
{
	struct auth_db	*db;
	char		 err[128];

	(void)state;
	db = parse("app:s3cret\nbob:pw\n", err);
	assert_non_null(db);
#define LOGIN(s)	auth_text_login(db, s, sizeof s - 1)
	assert_int_equal(LOGIN("app s3cret"), AUTH_LOGIN_OK);
	assert_int_equal(LOGIN("bob pw"), AUTH_LOGIN_OK);
	assert_int_equal(LOGIN("  app   s3cret  "), AUTH_LOGIN_OK);
	assert_int_equal(LOGIN("app s3cret more words"), AUTH_LOGIN_OK);
	assert_int_equal(LOGIN("app s3cret\0junk"), AUTH_LOGIN_OK);
	assert_int_equal(LOGIN("app s3cre"), AUTH_LOGIN_FAIL);
	assert_int_equal(LOGIN("app s3crett"), AUTH_LOGIN_FAIL);
	assert_int_equal(LOGIN("bob s3cret"), AUTH_LOGIN_FAIL);
	assert_int_equal(LOGIN("app:s3cret x"), AUTH_LOGIN_FAIL);
	assert_int_equal(LOGIN("apps3cret"), AUTH_LOGIN_FORMAT);
	assert_int_equal(LOGIN("app\ts3cret"), AUTH_LOGIN_FORMAT);
	assert_int_equal(LOGIN("app\0 s3cret"), AUTH_LOGIN_FORMAT);
	assert_int_equal(LOGIN("   "), AUTH_LOGIN_FORMAT);
	assert_int_equal(LOGIN(""), AUTH_LOGIN_FORMAT);
#undef LOGIN
	assert_int_equal(auth_text_login(NULL, "app s3cret", 10),
	    AUTH_LOGIN_FAIL);
	auth_free(db);
}

/* auth_load reads a file; a missing one names the path. */
static void
test_load(void **state)
{
	char		 path[] = "/tmp/test_auth.XXXXXX", err[256];
	int		 fd = mkstemp(path);
	struct auth_db	*db;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a:b\n", 4), 4);
	close(fd);
	db = auth_load(path, err, sizeof err);
	assert_non_null(db);
	assert_true(ok(db, "a", "b"));
	auth_free(db);
	unlink(path);
	assert_null(auth_load(path, err, sizeof err));
	assert_non_null(strstr(err, path));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_sasl_plain),
		cmocka_unit_test(test_text_login),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
