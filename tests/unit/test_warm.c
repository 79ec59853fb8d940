/*
 * test_warm.c -- cmocka unit tests of cached-warm's parts that need no
 * server: the manifest parser (every line form, every escape, every
 * malformed form with its column), the line reader (line numbers, a line
 * too long, a last line cut short, lines across read boundaries), the
 * options, the command template and runner (quoting, exit statuses,
 * timeout and process-group kill, output cap, stop), the job queue and
 * the summary and progress texts.  No sockets; commands are /bin/sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "warm.h"

/* ---- manifest parser ---- */

/* A parse with its own copy of the line (the parser writes into it). */
struct parsed {
	char		 buf[4096];
	struct wm_entry	 e;
	char		 err[WARM_ERR_MAX];
	int		 rc;
};

/* Parses text (len bytes) into p. */
static struct parsed *
parse_n(const char *text, size_t len)
{
	static struct parsed p;

	assert_true(len < sizeof p.buf);
	memcpy(p.buf, text, len);
	p.buf[len] = '\n';
	p.rc = warm_manifest_parse(p.buf, len, &p.e, p.err, sizeof p.err);
	return &p;
}

/* Parses a NUL-terminated line. */
static struct parsed *
parse(const char *text)
{
	return parse_n(text, strlen(text));
}

/* Asserts that text parses. */
static struct wm_entry *
ok(const char *text)
{
	struct parsed *p = parse(text);

	if (p->rc != 0)
		fail_msg("\"%s\" failed: %s", text, p->err);
	return &p->e;
}

/* Asserts that text fails with a message containing want. */
static void
bad(const char *text, const char *want)
{
	struct parsed *p = parse(text);

	if (p->rc == 0)
		fail_msg("\"%s\" parsed, expected \"%s\"", text, want);
	if (strstr(p->err, want) == NULL)
		fail_msg("\"%s\": \"%s\" lacks \"%s\"", text, p->err, want);
}

/* Asserts the value of e is the len bytes at want. */
static void
value_is(const struct wm_entry *e, const void *want, size_t len)
{
	assert_false(e->computed);
	assert_int_equal(e->value_len, len);
	assert_memory_equal(e->value, want, len);
}

/* Blank lines, blanks only and comments are nothing. */
static void
test_manifest_blank_and_comments(void **state)
{
	const char *lines[] = { "", "   ", "\t \t", "# comment",
	    "   # indented comment", "\t#", "#key 1 2 3", "\r" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof lines / sizeof lines[0]; i++)
		assert_int_equal(ok(lines[i])->kind, WM_BLANK);
}

/* KEY TTL FLAGS VALUE, separated by any run of spaces and tabs. */
static void
test_manifest_plain_literal(void **state)
{
	struct wm_entry *e;

	(void)state;
	e = ok("user:42 3600 7 hello");
	assert_int_equal(e->kind, WM_PLAIN);
	assert_string_equal(e->key, "user:42");
	assert_true(e->has_ttl);
	assert_int_equal(e->ttl, 3600);
	assert_true(e->has_flags);
	assert_int_equal(e->flags, 7);
	value_is(e, "hello", 5);

	e = ok("  \tk \t 0\t\t4294967295   v  ");
	assert_string_equal(e->key, "k");
	assert_int_equal(e->ttl, 0);
	assert_int_equal(e->flags, 4294967295u);
	value_is(e, "v", 1);
}

/* One word, or three: no value, so --exec computes it. */
static void
test_manifest_plain_computed(void **state)
{
	struct wm_entry *e;

	(void)state;
	e = ok("article:7");
	assert_int_equal(e->kind, WM_PLAIN);
	assert_string_equal(e->key, "article:7");
	assert_true(e->computed);
	assert_false(e->has_ttl);
	assert_false(e->has_flags);

	e = ok("article:8 60 2");
	assert_true(e->computed);
	assert_int_equal(e->ttl, 60);
	assert_int_equal(e->flags, 2);

	e = ok("article:9 60 2 -");
	assert_true(e->computed);
}

/* A bare "-" is the default; a quoted one is the byte. */
static void
test_manifest_dash(void **state)
{
	struct wm_entry *e;

	(void)state;
	e = ok("k - - v");
	assert_false(e->has_ttl);
	assert_false(e->has_flags);
	value_is(e, "v", 1);
	e = ok("k 1 2 \"-\"");
	value_is(e, "-", 1);
	e = ok("- 1 2 v");		/* as a key, "-" is just a key */
	assert_string_equal(e->key, "-");
	bad("k \"-\" 2 v", "TTL must be a number");
}

/* Quoted words keep their spaces; escapes work in both kinds of word. */
static void
test_manifest_quotes_and_escapes(void **state)
{
	struct wm_entry *e;
	const char all[] = "\\\"'?\a\b\f\n\r\t\vAA\0\377\1";

	(void)state;
	e = ok("k 1 0 \"hello  world\"");
	value_is(e, "hello  world", 12);
	e = ok("k 1 0 \"\"");
	value_is(e, "", 0);
	e = ok("k 1 0 "
	    "\\\\\\\"\\'\\?\\a\\b\\f\\n\\r\\t\\v\\x41\\101\\0\\377\\1");
	value_is(e, all, sizeof all - 1);
	e = ok("k 1 0 \"a\\x20b\\tc\\\"d\"");
	value_is(e, "a b\tc\"d", 7);
	e = ok("k 1 0 don't");		/* a single quote is an ordinary byte */
	value_is(e, "don't", 5);
	e = ok("k 1 0 \\x00\\x00");	/* NUL bytes are values too */
	value_is(e, "\0\0", 2);
	e = ok("k 1 0 caf\xc3\xa9");	/* UTF-8 passes raw */
	value_is(e, "caf\xc3\xa9", 5);
	e = ok("k 1 0 \\1234");		/* octal takes three digits at most */
	value_is(e, "S4", 2);
	e = ok("k\\x3a1 1 0 v");	/* escapes in keys */
	assert_string_equal(e->key, "k:1");
}

/* "b64:" on a bare value or argument is base64; quoted it is text. */
static void
test_manifest_base64(void **state)
{
	struct wm_entry *e;
	const unsigned char bin[] = { 0x00, 0xff, 0x10, 0x80 };

	(void)state;
	value_is(ok("k 1 0 b64:aGVsbG8="), "hello", 5);
	value_is(ok("k 1 0 b64:aGVsbA=="), "hell", 4);
	value_is(ok("k 1 0 b64:aGVs"), "hel", 3);
	value_is(ok("k 1 0 b64:"), "", 0);
	value_is(ok("k 1 0 b64:AP8QgA=="), bin, sizeof bin);
	value_is(ok("k 1 0 b64:+/+/"), "\xfb\xff\xbf", 3);
	value_is(ok("k 1 0 \"b64:aGVsbG8=\""), "b64:aGVsbG8=", 12);
	e = ok("b64:key 1 0 v");	/* never in a key */
	assert_string_equal(e->key, "b64:key");
	e = ok("memo ns fn 60 v b64:AA== x");
	assert_int_equal(e->nargs, 2);
	assert_int_equal(e->args[0].len, 1);
	assert_memory_equal(e->args[0].data, "\0", 1);
}

/* memo NS FN TTL VALUE [ARG ...] */
static void
test_manifest_memo(void **state)
{
	struct wm_entry *e;

	(void)state;
	e = ok("memo articles render 43200 \"<p>hi</p>\" 42 \"en US\"");
	assert_int_equal(e->kind, WM_MEMO);
	assert_string_equal(e->ns, "articles");
	assert_string_equal(e->fn, "render");
	assert_int_equal(e->ttl, 43200);
	value_is(e, "<p>hi</p>", 9);
	assert_int_equal(e->nargs, 2);
	assert_int_equal(e->args[0].len, 2);
	assert_memory_equal(e->args[0].data, "42", 2);
	assert_int_equal(e->args[1].len, 5);
	assert_memory_equal(e->args[1].data, "en US", 5);

	e = ok("memo ns fn - - a");
	assert_true(e->computed);
	assert_false(e->has_ttl);
	assert_int_equal(e->nargs, 1);

	e = ok("memo ns fn 1 \"\"");		/* no arguments at all */
	assert_int_equal(e->nargs, 0);
	value_is(e, "", 0);

	e = ok("memo ns fn 60 v - \"\"");	/* "-" and "" as arguments */
	assert_int_equal(e->nargs, 2);
	assert_int_equal(e->args[0].len, 1);
	assert_int_equal(e->args[1].len, 0);

	e = ok("\"memo\" 60 0 v");		/* a key named memo */
	assert_int_equal(e->kind, WM_PLAIN);
	assert_string_equal(e->key, "memo");
	e = ok("\"memo\"");
	assert_int_equal(e->kind, WM_PLAIN);
	assert_true(e->computed);
}

/* A memo line with WM_ARGS_MAX arguments parses; one more does not. */
static void
test_manifest_memo_arg_limit(void **state)
{
	char	line[1024];
	size_t	i, n;

	(void)state;
	n = (size_t)snprintf(line, sizeof line, "memo ns fn 60 v");
	for (i = 0; i < WM_ARGS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, " a%zu", i);
	assert_int_equal(ok(line)->nargs, WM_ARGS_MAX);
	snprintf(line + n, sizeof line - n, " one-too-many");
	bad(line, "more than");
}

/* Keys: 1 to 250 bytes, no space or control byte after decoding. */
static void
test_manifest_keys(void **state)
{
	char line[400];

	(void)state;
	memset(line, 'k', 250);
	strcpy(line + 250, " 1 0 v");
	assert_int_equal(strlen(ok(line)->key), 250);
	memset(line, 'k', 251);
	strcpy(line + 251, " 1 0 v");
	bad(line, "key must be 1 to 250 bytes");
	bad("\"\" 1 0 v", "key must be 1 to 250 bytes");
	bad("\"a b\" 1 0 v", "key holds a space");
	bad("a\\x20b 1 0 v", "key holds a space");
	bad("a\\nb 1 0 v", "key holds a space or control byte (0x0a)");
	bad("a\\x7f 1 0 v", "control byte (0x7f)");
}

/* Numbers: decimal, no sign, within range. */
static void
test_manifest_numbers(void **state)
{
	(void)state;
	assert_int_equal(ok("k 0004294967295 0 v")->ttl, 4294967295u);
	bad("k 4294967296 0 v", "column 3: TTL must be a number from 0 to "
	    "4294967295");
	bad("k 99999999999999999999999 0 v", "TTL must be a number");
	bad("k -1 0 v", "TTL must be a number");
	bad("k +1 0 v", "TTL must be a number");
	bad("k 1.5 0 v", "TTL must be a number");
	bad("k 1 x v", "column 5: FLAGS must be a number");
	bad("k 1 4294967296 v", "FLAGS must be a number");
	bad("memo ns fn 0 v", "column 12: memo TTL must be 1 to 2592000");
	bad("memo ns fn 2592001 v", "memo TTL must be a number from 0 to "
	    "2592000");
	assert_int_equal(ok("memo ns fn 2592000 v")->ttl, 2592000);
}

/* The word count of each line form. */
static void
test_manifest_word_counts(void **state)
{
	(void)state;
	bad("k 60", "expected KEY [TTL FLAGS [VALUE]], found 2 words");
	bad("k 60 0 v extra", "found 5 words");
	bad("k 60 0 \"a\" \"b\"", "found 5 words");
	bad("memo ns fn 60", "expected memo NS FN TTL VALUE [ARG ...], "
	    "found 4 words");
	bad("memo", "found 1 words");
}

/* Namespace and function names follow cc_memoize's rules. */
static void
test_manifest_memo_names(void **state)
{
	char line[200];

	(void)state;
	bad("memo a:b fn 60 v", "column 6: namespace must be printable ASCII "
	    "without space or ':'");
	bad("memo ns f:n 60 v", "function name must be printable");
	bad("memo \"n s\" fn 60 v", "namespace must be printable");
	bad("memo \"\" fn 60 v", "namespace must be 1 to 64 bytes");
	bad("memo ns caf\xc3\xa9 60 v", "function name must be printable");
	snprintf(line, sizeof line, "memo %064d fn 60 v", 0);
	assert_int_equal(strlen(ok(line)->ns), 64);
	snprintf(line, sizeof line, "memo ns %065d 60 v", 0);
	bad(line, "function name must be 1 to 64 bytes");
}

/* Every malformed word, with the column where it goes wrong. */
static void
test_manifest_malformed_words(void **state)
{
	(void)state;
	bad("k 1 0 \\q", "column 7: unknown escape \\q");
	bad("k 1 0 ab\\", "column 9: backslash at the end of a word");
	bad("k 1 0 \\x4", "column 7: \\x needs two hex digits");
	bad("k 1 0 \\xg0", "\\x needs two hex digits");
	bad("k 1 0 \\400", "column 7: octal escape over \\377");
	bad("k 1 0 \"abc", "column 7: quote not closed");
	bad("k 1 0 \"abc\\\"", "quote not closed");
	bad("k 1 0 \"abc\"def", "column 12: text right after a closing "
	    "quote");
	bad("k 1 0 ab\"c\"", "column 9: quote inside a word");
	bad("k 1 0 a\001b", "column 8: control byte 0x01");
	bad("k 1 0 \"a\001b\"", "column 9: control byte 0x01");
	bad("k 1 0 a\177", "control byte 0x7f");
	bad("k 1 0 a\\ b", "column 8: backslash before a blank");
	bad("k 1 0 a\\\tb", "column 8: backslash before a blank");
	bad("k 1 0 a\rb", "control byte 0x0d");
}

/* Base64 that is not. */
static void
test_manifest_malformed_base64(void **state)
{
	(void)state;
	bad("k 1 0 b64:abc", "column 11: base64 length 3 is not a multiple "
	    "of 4");
	bad("k 1 0 b64:ab!d", "column 13: '!' is not base64");
	bad("k 1 0 b64:a=bc", "'=' is not base64");
	bad("k 1 0 b64:aGVsbG8=aGVs", "not base64");
	bad("k 1 0 b64:QR==", "base64 with stray bits");
	bad("k 1 0 b64:QUJ=", "base64 with stray bits");
	bad("k 1 0 b64:====", "not base64");
	bad("k 1 0 b64:aGVs\\x41", "not base64");
	bad("memo ns fn 60 v b64:%%%%", "not base64");
}

/* A NUL byte inside the line is a raw control byte. */
static void
test_manifest_raw_nul(void **state)
{
	struct parsed *p = parse_n("k 1 0 a\0b", 9);

	(void)state;
	assert_int_equal(p->rc, -1);
	assert_non_null(strstr(p->err, "column 8: control byte 0x00"));
}

/* A CR before the newline is dropped (CRLF files); elsewhere it is bad. */
static void
test_manifest_crlf(void **state)
{
	(void)state;
	value_is(ok("k 1 0 v\r"), "v", 1);
	value_is(ok("k 1 0 \"v \"\r"), "v ", 2);
	assert_int_equal(ok("# comment\r")->kind, WM_BLANK);
	bad("k 1 0 v\r\r", "control byte 0x0d");
}

/* The entry borrows the line: decoded bytes live inside it. */
static void
test_manifest_in_place(void **state)
{
	struct parsed *p = parse("key 1 0 \"a\\tb\"");

	(void)state;
	assert_int_equal(p->rc, 0);
	assert_ptr_equal(p->e.key, p->buf);
	assert_true((const char *)p->e.value >= p->buf &&
	    (const char *)p->e.value < p->buf + sizeof p->buf);
}

/* ---- line reader ---- */

/* Returns a descriptor reading the len bytes of data (a temporary file). */
static int
data_fd(const void *data, size_t len)
{
	FILE	*f = tmpfile();
	int	 fd;

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fflush(f);
	fd = dup(fileno(f));
	fclose(f);
	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Reads the next line and checks its status, number and text. */
static void
next_is(struct wi_reader *r, enum wi_status want, unsigned long lineno,
    const char *text)
{
	char		*line;
	size_t		 len;
	unsigned long	 n = 0;

	assert_int_equal(warm_input_next(r, &line, &len, &n), want);
	if (want == WI_EOF)
		return;
	assert_int_equal(n, lineno);
	if (text != NULL) {
		assert_int_equal(len, strlen(text));
		assert_memory_equal(line, text, len);
		line[len] = '\0';	/* the spare byte is writable */
	}
}

/* Lines come with their numbers, empty ones included. */
static void
test_input_lines(void **state)
{
	const char		 text[] = "one\n\ntwo\r\nthree\n";
	int			 fd = data_fd(text, sizeof text - 1);
	struct wi_reader	*r = warm_input_open(fd, 100);

	(void)state;
	next_is(r, WI_LINE, 1, "one");
	next_is(r, WI_LINE, 2, "");
	next_is(r, WI_LINE, 3, "two\r");
	next_is(r, WI_LINE, 4, "three");
	next_is(r, WI_EOF, 0, NULL);
	next_is(r, WI_EOF, 0, NULL);
	assert_int_equal(warm_input_offset(r), sizeof text - 1);
	warm_input_close(r);
	close(fd);
}

/* No input, no line. */
static void
test_input_empty(void **state)
{
	int			 fd = data_fd("", 0);
	struct wi_reader	*r = warm_input_open(fd, 100);

	(void)state;
	next_is(r, WI_EOF, 0, NULL);
	warm_input_close(r);
	close(fd);
}

/* A last line without its newline is reported as cut short. */
static void
test_input_no_newline(void **state)
{
	const char		 text[] = "a 1 0 x\nb 1 0 trunc";
	int			 fd = data_fd(text, sizeof text - 1);
	struct wi_reader	*r = warm_input_open(fd, 100);

	(void)state;
	next_is(r, WI_LINE, 1, "a 1 0 x");
	next_is(r, WI_NO_NEWLINE, 2, "b 1 0 trunc");
	next_is(r, WI_EOF, 0, NULL);
	warm_input_close(r);
	close(fd);
}

/* A line over the limit is skipped whole; numbering goes on. */
static void
test_input_too_long(void **state)
{
	char			 text[256];
	int			 fd;
	struct wi_reader	*r;

	(void)state;
	memset(text, 0, sizeof text);
	strcpy(text, "short\n");
	memset(text + 6, 'x', 11);	/* 11 bytes: over a limit of 10 */
	strcpy(text + 17, "\n0123456789\nlast\nxxxxxxxxxxxx");
	fd = data_fd(text, strlen(text));
	r = warm_input_open(fd, 10);
	next_is(r, WI_LINE, 1, "short");
	next_is(r, WI_TOO_LONG, 2, NULL);
	next_is(r, WI_LINE, 3, "0123456789");	/* exactly the limit */
	next_is(r, WI_LINE, 4, "last");
	next_is(r, WI_TOO_LONG, 5, NULL);	/* too long and cut short */
	next_is(r, WI_EOF, 0, NULL);
	warm_input_close(r);
	close(fd);
}

/* Many lines across many reads, one very long line among them. */
static void
test_input_across_reads(void **state)
{
	size_t			 n = 50000, i, len = 0, cap = 2 << 20;
	char			*text = malloc(cap), *line, want[32];
	int			 fd;
	struct wi_reader	*r;
	size_t			 got;
	unsigned long		 no;

	(void)state;
	assert_non_null(text);
	for (i = 1; i <= n; i++) {
		if (i == 30000) {
			memset(text + len, 'L', 300000);
			len += 300000;
			text[len++] = '\n';
			continue;
		}
		len += (size_t)snprintf(text + len, cap - len, "key:%zu\n", i);
	}
	fd = data_fd(text, len);
	r = warm_input_open(fd, 400000);
	for (i = 1; i <= n; i++) {
		assert_int_equal(warm_input_next(r, &line, &got, &no), WI_LINE);
		assert_int_equal(no, i);
		if (i == 30000) {
			assert_int_equal(got, 300000);
			continue;
		}
		snprintf(want, sizeof want, "key:%zu", i);
		assert_int_equal(got, strlen(want));
		assert_memory_equal(line, want, got);
	}
	next_is(r, WI_EOF, 0, NULL);
	warm_input_close(r);
	close(fd);
	free(text);
}

/* ---- options ---- */

/* Parses a NULL-terminated argument list into o. */
static enum warm_opts_result
opts(struct warm_opts *o, char *err, const char *first, ...)
{
	char		*argv[32];
	int		 argc = 0;
	va_list		 ap;
	const char	*a;

	argv[argc++] = "cached-warm";
	va_start(ap, first);
	for (a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return warm_opts_parse(o, argc, argv, err, WARM_ERR_MAX);
}

/* The default lock is per user: a root run's lock never blocks another
 * user's cron job (issue 17). */
static void
test_default_lock(void **state)
{
	char	buf[256], dir[] = "/tmp/test_warm_xdg.XXXXXX";
	char	want[300];
	uid_t	me = geteuid();

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(want, sizeof want, "%s/cached-warm.lock", dir);
	/* $XDG_RUNTIME_DIR when it is ours. */
	assert_string_equal(warm_default_lock(buf, sizeof buf, dir, me,
	    "/tmp"), want);
	/* Not ours (a root shell keeping a user's variable), relative, or
	 * missing: ignored. */
	snprintf(want, sizeof want, "/tmp/cached-warm-%lu.lock",
	    (unsigned long)me + 1);
	assert_string_equal(warm_default_lock(buf, sizeof buf, dir, me + 1,
	    NULL), want);
	assert_string_equal(warm_default_lock(buf, sizeof buf, "run/user",
	    me + 1, NULL), want);
	assert_string_equal(warm_default_lock(buf, sizeof buf, "/nonexistent",
	    me + 1, NULL), want);
	/* root: the run-lock directory when it can be written. */
	assert_string_equal(warm_default_lock(buf, sizeof buf, NULL, 0,
	    "/tmp"), "/tmp/cached-warm.lock");
	assert_string_equal(warm_default_lock(buf, sizeof buf, NULL, 0,
	    "/nonexistent"), "/tmp/cached-warm-0.lock");
	/* Anyone else: in /tmp, named by uid. */
	assert_string_equal(warm_default_lock(buf, sizeof buf, NULL, 33,
	    "/tmp"), "/tmp/cached-warm-33.lock");
	rmdir(dir);
}

/* No options: the documented defaults, stdin as input. */
static void
test_opts_defaults(void **state)
{
	struct warm_opts	o;
	char			err[WARM_ERR_MAX];

	(void)state;
	assert_int_equal(opts(&o, err, NULL), WARM_OPTS_RUN);
	assert_string_equal(o.servers, "127.0.0.1:11211");
	assert_int_equal(o.jobs, 4);
	assert_int_equal(o.ttl, 43200);
	assert_int_equal(o.jitter, 0);
	assert_int_equal(o.mode, WARM_SET);
	assert_null(o.exec);
	assert_int_equal(o.timeout_ms, 60000);
	assert_int_equal(o.item_max, 1024 * 1024);
	assert_int_equal(o.batch, 1024);
	{
		char want[256];

		assert_string_equal(o.lock_path, warm_default_lock(want,
		    sizeof want, getenv("XDG_RUNTIME_DIR"), geteuid(),
		    "/run/lock"));
		assert_ptr_equal(o.lock_path, o.lock_buf);
	}
	assert_int_equal(o.progress, -1);
	assert_int_equal(o.ninputs, 0);
	assert_false(o.strict || o.dry_run || o.quiet);
}

/* Every option, long and short. */
static void
test_opts_all(void **state)
{
	struct warm_opts	o;
	char			err[WARM_ERR_MAX];

	(void)state;
	assert_int_equal(opts(&o, err, "-s", "a:1,b:2", "-e", "gen {}",
	    "-j", "8", "-t", "0.25", "--ttl", "600", "--jitter", "10%",
	    "--flags", "3", "-m", "add", "--item-max", "512k", "--batch",
	    "1000", "--no-lock", "--strict", "-n", "-q", "--no-progress",
	    "m1", "-", NULL), WARM_OPTS_RUN);
	assert_string_equal(o.servers, "a:1,b:2");
	assert_string_equal(o.exec, "gen {}");
	assert_int_equal(o.jobs, 8);
	assert_int_equal(o.timeout_ms, 250);
	assert_int_equal(o.ttl, 600);
	assert_int_equal(o.jitter, 10);
	assert_true(o.jitter_pct);
	assert_int_equal(o.flags, 3);
	assert_int_equal(o.mode, WARM_ADD);
	assert_int_equal(o.item_max, 512 * 1024);
	assert_int_equal(o.batch, 1000);
	assert_null(o.lock_path);
	assert_true(o.strict && o.dry_run && o.quiet);
	assert_int_equal(o.progress, 0);
	assert_int_equal(o.ninputs, 2);
	assert_string_equal(o.inputs[0], "m1");
	assert_string_equal(o.inputs[1], "-");

	assert_int_equal(opts(&o, err, "--mode", "replace", "--jitter", "900",
	    "--lock", "/run/x.lock", "--item-max", "2m", "--timeout", "3",
	    "--progress", NULL), WARM_OPTS_RUN);
	assert_int_equal(o.mode, WARM_REPLACE);
	assert_int_equal(o.jitter, 900);
	assert_false(o.jitter_pct);
	assert_string_equal(o.lock_path, "/run/x.lock");
	assert_int_equal(o.item_max, 2 * 1024 * 1024);
	assert_int_equal(o.timeout_ms, 3000);
	assert_int_equal(o.progress, 1);
}

/* Bad values are refused with a message naming the option. */
static void
test_opts_errors(void **state)
{
	static const struct {
		const char *opt, *arg, *want;
	} cases[] = {
		{ "-j", "0", "--jobs" }, { "-j", "257", "--jobs" },
		{ "-j", "4x", "--jobs" }, { "-t", "0", "--timeout" },
		{ "-t", "abc", "--timeout" }, { "-t", "1.5s", "--timeout" },
		{ "--ttl", "-1", "--ttl" }, { "--ttl", "4294967296", "--ttl" },
		{ "--jitter", "101%", "--jitter" }, { "--jitter", "5s", "--jitter" },
		{ "--flags", "x", "--flags" }, { "-m", "append", "--mode" },
		{ "--item-max", "0", "--item-max" },
		{ "--item-max", "2g", "--item-max" },
		{ "--item-max", "1025m", "--item-max" },
		{ "--batch", "0", "--batch" }, { "-s", "", "--servers" },
		{ "-e", "", "--exec" }, { "--lock", "", "--lock" },
	};
	struct warm_opts	o;
	char			err[WARM_ERR_MAX];
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(opts(&o, err, cases[i].opt, cases[i].arg,
		    NULL), WARM_OPTS_ERROR);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s %s: \"%s\"", cases[i].opt, cases[i].arg,
			    err);
	}
	assert_int_equal(opts(&o, err, "--bogus", NULL), WARM_OPTS_ERROR);
	assert_int_equal(opts(&o, err, "-j", NULL), WARM_OPTS_ERROR);
	assert_int_equal(opts(&o, err, "-h", NULL), WARM_OPTS_HELP);
	assert_int_equal(opts(&o, err, "--version", NULL), WARM_OPTS_VERSION);
	assert_non_null(strstr(warm_usage(), "--exec"));
}

/* ---- command template and runner ---- */

/* Expands tmpl with NUL-terminated words. */
static char *
expand(const char *tmpl, const char *w1, const char *w2)
{
	cc_arg	words[2] = { { NULL, 0 }, { NULL, 0 } };
	size_t	n = 0;

	if (w1 != NULL)
		words[n++] = (cc_arg){ w1, strlen(w1) };
	if (w2 != NULL)
		words[n++] = (cc_arg){ w2, strlen(w2) };
	return warm_exec_expand(tmpl, words, n);
}

/* Each {} becomes the words, single-quoted for the shell. */
static void
test_exec_expand(void **state)
{
	cc_arg	nul = { "a\0b", 3 };
	char	*s;

	(void)state;
	s = expand("render {}", "article:7", NULL);
	assert_string_equal(s, "render 'article:7'");
	free(s);
	s = expand("a {} b {}", "x", NULL);
	assert_string_equal(s, "a 'x' b 'x'");
	free(s);
	s = expand("f {}", "it's", "$(rm -rf /) `x` \"y\"");
	assert_string_equal(s, "f 'it'\\''s' '$(rm -rf /) `x` \"y\"'");
	free(s);
	s = expand("no holes", "k", NULL);
	assert_string_equal(s, "no holes");
	free(s);
	s = expand("f {} {", "", NULL);
	assert_string_equal(s, "f '' {");
	free(s);
	s = expand("f {}", NULL, NULL);
	assert_string_equal(s, "f ");
	free(s);
	assert_null(warm_exec_expand("f {}", &nul, 1));
}

/* Runs cmd with a timeout of ms and an output cap of max. */
static enum we_result
run_cmd(const char *cmd, unsigned ms, size_t max, int stop_fd,
    struct we_output *out)
{
	extern char **environ;

	return warm_exec_run(cmd, environ, ms, max, stop_fd, out);
}

/* Returns the monotonic clock in seconds. */
static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A word passed through {} reaches the command intact. */
static void
test_exec_quoting_roundtrip(void **state)
{
	const char		*word = "a'b \"c\" $HOME `id` \\ *";
	struct we_output	 out;
	char			*cmd = expand("printf %s {}", word, NULL);

	(void)state;
	assert_int_equal(run_cmd(cmd, 5000, 1000, -1, &out), WE_OK);
	assert_int_equal(out.len, strlen(word));
	assert_memory_equal(out.data, word, out.len);
	free(out.data);
	free(cmd);
}

/* Stdout is captured byte for byte; stdin is /dev/null. */
static void
test_exec_output(void **state)
{
	struct we_output out;

	(void)state;
	assert_int_equal(run_cmd("printf 'a\\000b\\n'", 5000, 100, -1, &out),
	    WE_OK);
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.data, "a\0b\n", 4);
	free(out.data);
	assert_int_equal(run_cmd("true", 5000, 100, -1, &out), WE_OK);
	assert_int_equal(out.len, 0);
	assert_non_null(out.data);
	free(out.data);
	assert_int_equal(run_cmd("cat", 5000, 100, -1, &out), WE_OK);
	assert_int_equal(out.len, 0);
	free(out.data);
	assert_int_equal(run_cmd("head -c 100000 /dev/zero", 5000, 100000, -1,
	    &out), WE_OK);
	assert_int_equal(out.len, 100000);
	free(out.data);
}

/* A non-zero exit or a signal is a failure, with its number. */
static void
test_exec_failures(void **state)
{
	struct we_output	out;
	char			buf[96];

	(void)state;
	assert_int_equal(run_cmd("echo partial; exit 3", 5000, 100, -1, &out),
	    WE_EXIT);
	assert_int_equal(out.status, 3);
	assert_null(out.data);
	warm_exec_describe(WE_EXIT, &out, buf, sizeof buf);
	assert_string_equal(buf, "exited with status 3");
	assert_int_equal(run_cmd("kill -9 $$", 5000, 100, -1, &out),
	    WE_SIGNAL);
	assert_int_equal(out.status, SIGKILL);
	warm_exec_describe(WE_SIGNAL, &out, buf, sizeof buf);
	assert_string_equal(buf, "killed by signal 9 (SIGKILL)");
	assert_int_equal(run_cmd("no-such-command-here 2>/dev/null", 5000,
	    100, -1, &out), WE_EXIT);
	assert_int_equal(out.status, 127);
}

/* Output over the cap kills the command. */
static void
test_exec_too_large(void **state)
{
	struct we_output out;

	(void)state;
	assert_int_equal(run_cmd("head -c 101 /dev/zero", 5000, 100, -1,
	    &out), WE_TOO_LARGE);
	assert_null(out.data);
	assert_int_equal(run_cmd("yes", 5000, 4096, -1, &out), WE_TOO_LARGE);
	assert_int_equal(run_cmd("head -c 100 /dev/zero", 5000, 100, -1,
	    &out), WE_OK);
	free(out.data);
}

/* True once pid is gone (polls for up to 3 s: init must reap it). */
static bool
gone(pid_t pid)
{
	int i;

	for (i = 0; i < 300; i++) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		usleep(10000);
	}
	return false;
}

/* At the timeout the whole process group dies, grandchildren too. */
static void
test_exec_timeout_kills_group(void **state)
{
	char			 path[] = "/tmp/test_warm_pid.XXXXXX", cmd[256];
	struct we_output	 out;
	double			 t0;
	FILE			*f;
	long			 pid = 0;
	int			 fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof cmd, "sleep 30 & echo $! > %s; wait", path);
	t0 = mono();
	assert_int_equal(run_cmd(cmd, 300, 100, -1, &out), WE_TIMEOUT);
	assert_true(mono() - t0 < 2.0);
	assert_true(mono() - t0 >= 0.29);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	unlink(path);
	assert_true(pid > 0);
	assert_true(gone((pid_t)pid));

	/* A command that closes stdout and lingers times out too. */
	t0 = mono();
	assert_int_equal(run_cmd("exec >&-; sleep 30", 300, 100, -1, &out),
	    WE_TIMEOUT);
	assert_true(mono() - t0 < 2.0);
}

/* The stop descriptor becoming readable kills the command at once. */
static void
test_exec_stop(void **state)
{
	struct we_output	out;
	int			p[2];
	double			t0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	t0 = mono();
	assert_int_equal(run_cmd("sleep 30", 20000, 100, p[0], &out),
	    WE_STOPPED);
	assert_true(mono() - t0 < 2.0);
	close(p[0]);
	close(p[1]);
}

/* A command that cannot start is an error, not a hang. */
static void
test_exec_describe(void **state)
{
	struct we_output	out = { NULL, 0, ENOENT };
	char			buf[96];

	(void)state;
	warm_exec_describe(WE_ERROR, &out, buf, sizeof buf);
	assert_non_null(strstr(buf, "could not run"));
	warm_exec_describe(WE_TIMEOUT, &out, buf, sizeof buf);
	assert_string_equal(buf, "timed out (killed)");
	warm_exec_describe(WE_TOO_LARGE, &out, buf, sizeof buf);
	assert_non_null(strstr(buf, "item limit"));
}

/* ---- queue ---- */

struct consumer {
	struct wq	*q;
	pthread_mutex_t	 lock;
	long		 sum, count;
};

/* Takes jobs (small integers) until the queue closes. */
static void *
consume(void *arg)
{
	struct consumer	*c = arg;
	void		*job;

	while ((job = warm_queue_pop(c->q)) != NULL) {
		pthread_mutex_lock(&c->lock);
		c->sum += (long)(intptr_t)job;
		c->count++;
		pthread_mutex_unlock(&c->lock);
	}
	return NULL;
}

/* Jobs come out in order; a closed queue drains, then gives NULL. */
static void
test_queue_fifo_and_close(void **state)
{
	struct wq	*q = warm_queue_create(4);
	intptr_t	 i;

	(void)state;
	for (i = 1; i <= 4; i++)
		warm_queue_push(q, (void *)i);
	warm_queue_close(q);
	for (i = 1; i <= 4; i++)
		assert_ptr_equal(warm_queue_pop(q), (void *)i);
	assert_null(warm_queue_pop(q));
	assert_null(warm_queue_pop(q));
	warm_queue_destroy(q);
}

/* Several workers behind a small queue see every job exactly once. */
static void
test_queue_workers(void **state)
{
	struct consumer	c = { .q = warm_queue_create(2) };
	long		i, n = 20000;

	(void)state;
	pthread_mutex_init(&c.lock, NULL);
	assert_int_equal(warm_queue_start(c.q, 4, consume, &c), 4);
	for (i = 1; i <= n; i++)
		warm_queue_push(c.q, (void *)(intptr_t)i);
	warm_queue_close(c.q);
	warm_queue_join(c.q);
	assert_int_equal(c.count, n);
	assert_int_equal(c.sum, n * (n + 1) / 2);
	warm_queue_destroy(c.q);
	pthread_mutex_destroy(&c.lock);
}

/* ---- report ---- */

/* The summary line has every documented field. */
static void
test_report_summary(void **state)
{
	struct warm_totals	t = { 10000, 9990, 5, 5, 1000000 };
	char			buf[256];

	(void)state;
	warm_report_summary(buf, sizeof buf, &t, 0.5, false);
	assert_string_equal(buf, "cached-warm: read 10000, stored 9990, "
	    "skipped 5, failed 5, bytes 1000000, elapsed 0.500 s, "
	    "rate 20000/s");
	warm_report_summary(buf, sizeof buf, &t, 0, true);
	assert_string_equal(buf, "cached-warm: dry run: read 10000, valid "
	    "9990, skipped 5, failed 5, bytes 1000000, elapsed 0.000 s, "
	    "rate 10000000/s");
}

/* The bar shows progress and ETA when the input size is known. */
static void
test_report_bar(void **state)
{
	char buf[160];

	(void)state;
	warm_report_bar(buf, sizeof buf, 500, 50, 100, 10);
	assert_string_equal(buf, "[############------------]  50%  500 "
	    "entries  50/s  ETA 0:10");
	warm_report_bar(buf, sizeof buf, 500, 0, 0, 3725);
	assert_string_equal(buf, "500 entries  0/s  1:02:05");
	warm_report_bar(buf, sizeof buf, 0, 0, 100, 0);
	assert_non_null(strstr(buf, "ETA ?"));
	warm_report_bar(buf, sizeof buf, 7, 100, 100, 2);
	assert_non_null(strstr(buf, "100%"));
}

/* Counters add up; the totals come back on finish. */
static void
test_report_counts(void **state)
{
	struct warm_report	*r = warm_report_create(false);
	struct warm_totals	 t;

	(void)state;
	if (r == NULL)
		abort();	/* noreturn: LTO sees r non-NULL below */
	warm_report_read(r);
	warm_report_read(r);
	warm_report_read(r);
	warm_report_outcome(r, WARM_STORED, 10);
	warm_report_outcome(r, WARM_SKIPPED, 99);
	warm_report_outcome(r, WARM_FAILED, 99);
	assert_true(warm_report_finish(r, &t) >= 0);
	assert_int_equal(t.read, 3);
	assert_int_equal(t.stored, 1);
	assert_int_equal(t.skipped, 1);
	assert_int_equal(t.failed, 1);
	assert_int_equal(t.bytes, 10);
	warm_report_destroy(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_blank_and_comments),
		cmocka_unit_test(test_manifest_plain_literal),
		cmocka_unit_test(test_manifest_plain_computed),
		cmocka_unit_test(test_manifest_dash),
		cmocka_unit_test(test_manifest_quotes_and_escapes),
		cmocka_unit_test(test_manifest_base64),
		cmocka_unit_test(test_manifest_memo),
		cmocka_unit_test(test_manifest_memo_arg_limit),
		cmocka_unit_test(test_manifest_keys),
		cmocka_unit_test(test_manifest_numbers),
		cmocka_unit_test(test_manifest_word_counts),
		cmocka_unit_test(test_manifest_memo_names),
		cmocka_unit_test(test_manifest_malformed_words),
		cmocka_unit_test(test_manifest_malformed_base64),
		cmocka_unit_test(test_manifest_raw_nul),
		cmocka_unit_test(test_manifest_crlf),
		cmocka_unit_test(test_manifest_in_place),
		cmocka_unit_test(test_input_lines),
		cmocka_unit_test(test_input_empty),
		cmocka_unit_test(test_input_no_newline),
		cmocka_unit_test(test_input_too_long),
		cmocka_unit_test(test_input_across_reads),
		cmocka_unit_test(test_opts_defaults),
		cmocka_unit_test(test_opts_all),
		cmocka_unit_test(test_opts_errors),
		cmocka_unit_test(test_exec_expand),
		cmocka_unit_test(test_exec_quoting_roundtrip),
		cmocka_unit_test(test_exec_output),
		cmocka_unit_test(test_exec_failures),
		cmocka_unit_test(test_exec_too_large),
		cmocka_unit_test(test_exec_timeout_kills_group),
		cmocka_unit_test(test_exec_stop),
		cmocka_unit_test(test_exec_describe),
		cmocka_unit_test(test_queue_fifo_and_close),
		cmocka_unit_test(test_queue_workers),
		cmocka_unit_test(test_default_lock),
		cmocka_unit_test(test_report_summary),
		cmocka_unit_test(test_report_bar),
		cmocka_unit_test(test_report_counts),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
