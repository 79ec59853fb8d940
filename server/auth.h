/*
 * auth.h -- the user/password list for authentication: loaded from a
 * file of "user:password" lines (memcached's -Y authfile format, which
 * its SASL password database MEMCACHED_SASL_PWDB shares), checked with a
 * compare whose time does not depend on the stored secrets.  SASL PLAIN
 * (binary protocol, -S) uses it today; text-protocol login and TLS may
 * reuse it.
 *
 * A list is immutable once parsed, so any thread may check against it
 * without a lock; SIGHUP swaps in a new list (server/main.c) and keeps
 * the old ones until exit.
 */
#ifndef CACHED_AUTH_H
#define CACHED_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct auth_db;

/* Longest user name, password, and file accepted. */
#define AUTH_FIELD_MAX	255
#define AUTH_FILE_MAX	(1024 * 1024)

/* Parses a list from text[0 .. n): one "user:password" per line ("\n" or
 * "\r\n"), empty lines ignored; the password is everything after the
 * first ':'.  NULL on a malformed line or no memory, with the reason in
 * err (errlen bytes). */
struct auth_db	*auth_parse(const char *text, size_t n, char *err,
		    size_t errlen);
/* Reads and parses the file at path; as auth_parse. */
struct auth_db	*auth_load(const char *path, char *err, size_t errlen);
/* Frees a list. */
void		 auth_free(struct auth_db *db);
/* Number of entries. */
size_t		 auth_count(const struct auth_db *db);

/* True when user/password match an entry.  Every entry is compared in
 * full, whatever matches, so the time taken tells nothing of the list. */
bool	auth_check(const struct auth_db *db, const char *user, size_t nuser,
	    const char *pass, size_t npass);
/* Checks a SASL PLAIN message, "[authzid]\0authcid\0passwd" (RFC 4616);
 * an authzid other than empty or the user itself is refused. */
bool	auth_sasl_plain(const struct auth_db *db, const char *msg, size_t n);

/* What a text-protocol login (-Y) gives. */
enum auth_login {
	AUTH_LOGIN_OK,
	AUTH_LOGIN_FAIL,	/* no such user/password */
	AUTH_LOGIN_FORMAT	/* the value is not "user password" */
};

/* Checks the value of memcached's text-protocol login, a set whose data
 * is "user password": split on spaces as memcached 1.6.18 tokenizes it
 * (runs of spaces are one separator, leading ones skipped, words after
 * the second ignored, a NUL ends the data). */
enum auth_login	auth_text_login(const struct auth_db *db, const char *data,
		    size_t n);

#endif
