/*
 * auth.c -- the user/password list (auth.h): a flat array of entries
 * parsed from memcached's "user:password" authfile format, and a
 * constant-time check against it.
 *
 * Timing: auth_check walks every entry and compares every byte the
 * client sent against each, accumulating differences without branching
 * on them, so how long it takes depends only on the list's size and on
 * what the client sent, never on which entry (if any) matched or how
 * many leading bytes were right.
 *
 * Data structure: one allocation holding the entry array followed by a
 * copy of the file's text the entries point into.  Immutable once built.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

struct auth_entry {
	const char	*user;
	size_t		 nuser;
	const char	*pass;
	size_t		 npass;
};

struct auth_db {
	size_t			 n;
	struct auth_entry	*e;
};

/* Counts the lines of text[0 .. n), a last one without "\n" included. */
static size_t
count_lines(const char *text, size_t n)
{
	size_t lines = 0;

	for (size_t i = 0; i < n; i++)
		if (text[i] == '\n')
			lines++;
	return lines + 1;
}

/* Parses one line into e; false when it is malformed. */
static bool
parse_line(const char *p, size_t n, struct auth_entry *e)
{
	const char *colon = memchr(p, ':', n);

	if (colon == NULL || colon == p)
		return false;
	e->user = p;
	e->nuser = (size_t)(colon - p);
	e->pass = colon + 1;
	e->npass = n - e->nuser - 1;
	return e->nuser <= AUTH_FIELD_MAX && e->npass <= AUTH_FIELD_MAX &&
	    memchr(p, '\0', n) == NULL;
}

/* Parses a list from text[0 .. n). */
struct auth_db *
auth_parse(const char *text, size_t n, char *err, size_t errlen)
{
	struct auth_db	*db;
	char		*copy;
	size_t		 lines = count_lines(text, n), line = 0, i = 0;

	db = malloc(sizeof *db + lines * sizeof *db->e + n + 1);
	if (db == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	db->e = (struct auth_entry *)(db + 1);
	db->n = 0;
	copy = (char *)(db->e + lines);
	memcpy(copy, text, n);
	copy[n] = '\0';
	while (i < n) {
		const char	*p = copy + i;
		const char	*nl = memchr(p, '\n', n - i);
		size_t		 len = nl != NULL ? (size_t)(nl - p) : n - i;

		i += len + 1;
		line++;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			continue;
		if (!parse_line(p, len, &db->e[db->n])) {
			snprintf(err, errlen, "line %zu is not user:password",
			    line);
			free(db);
			return NULL;
		}
		db->n++;
	}
	if (db->n == 0) {
		snprintf(err, errlen, "no user:password entries");
		free(db);
		return NULL;
	}
	return db;
}

/* Reads and parses the file at path. */
struct auth_db *
auth_load(const char *path, char *err, size_t errlen)
{
	struct auth_db	*db;
	FILE		*f;
	char		*buf;
	size_t		 n;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(AUTH_FILE_MAX + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, AUTH_FILE_MAX + 1, f);
	if (ferror(f) || n > AUTH_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ?
		    "read error" : "file too large");
		db = NULL;
	} else
		db = auth_parse(buf, n, err, errlen);
	fclose(f);
	free(buf);
	return db;
}

/* Frees a list. */
void
auth_free(struct auth_db *db)
{
	free(db);
}

/* Number of entries. */
size_t
auth_count(const struct auth_db *db)
{
	return db->n;
}

/* Nonzero unless secret[0 .. ns) equals given[0 .. ng); its time depends
 * on ng only. */
static unsigned
ct_differ(const char *secret, size_t ns, const char *given, size_t ng)
{
	unsigned d = ns != ng;

	for (size_t i = 0; i < ng; i++) {
		/* past the secret's end compare with a byte that cannot
		 * make the result equal: d is already set then */
		unsigned char s = (unsigned char)secret[i < ns ? i : 0];

		d |= (unsigned char)(s ^ (unsigned char)given[i]);
	}
	return d;
}

/* True when user/password match an entry; constant time per entry. */
bool
auth_check(const struct auth_db *db, const char *user, size_t nuser,
    const char *pass, size_t npass)
{
	unsigned found = 0;

	if (db == NULL)
		return false;
	for (size_t i = 0; i < db->n; i++) {
		const struct auth_entry *e = &db->e[i];
		unsigned d = ct_differ(e->user, e->nuser, user, nuser) |
		    ct_differ(e->pass, e->npass, pass, npass);

		found |= (unsigned)(d == 0);
	}
	return found != 0;
}

/* Checks a SASL PLAIN message "[authzid]\0authcid\0passwd". */
bool
auth_sasl_plain(const struct auth_db *db, const char *msg, size_t n)
{
	const char	*z1, *z2, *user, *pass;
	size_t		 nzid, nuser;

	if (msg == NULL || (z1 = memchr(msg, '\0', n)) == NULL)
		return false;
	user = z1 + 1;
	if ((z2 = memchr(user, '\0', n - (size_t)(user - msg))) == NULL)
		return false;
	nzid = (size_t)(z1 - msg);
	nuser = (size_t)(z2 - user);
	pass = z2 + 1;
	if (nzid > 0 && (nzid != nuser || memcmp(msg, user, nuser) != 0))
		return false;
	return auth_check(db, user, nuser, pass, n - (size_t)(pass - msg));
}

/* Finds the next space-separated word of p[*i .. n); false when none. */
static bool
next_word(const char *p, size_t n, size_t *i, const char **w, size_t *nw)
{
	size_t start;

	while (*i < n && p[*i] == ' ')
		(*i)++;
	if (*i == n)
		return false;
	start = *i;
	while (*i < n && p[*i] != ' ')
		(*i)++;
	*w = p + start;
	*nw = *i - start;
	return true;
}

/* Checks a text-protocol login value "user password". */
enum auth_login
auth_text_login(const struct auth_db *db, const char *data, size_t n)
{
	const char	*user, *pass;
	size_t		 nuser, npass, i = 0;
	const char	*nul = memchr(data, '\0', n);

	if (nul != NULL)
		n = (size_t)(nul - data);
	if (!next_word(data, n, &i, &user, &nuser) ||
	    !next_word(data, n, &i, &pass, &npass))
		return AUTH_LOGIN_FORMAT;
	return auth_check(db, user, nuser, pass, npass) ? AUTH_LOGIN_OK :
	    AUTH_LOGIN_FAIL;
}
