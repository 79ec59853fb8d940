/*
 * test_options.c -- options_parse(): defaults, memcached 1.6.18's flags
 * (each lands in its field or is accepted as memcached's command lines
 * need), -o lists, and the usage errors that exit 64.  Messages go to
 * stderr, which the tests leave alone.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "options.h"

#define MB (1024UL * 1024UL)

/* Writable copies of the words (options_parse() may cut -o values in
 * place, as it can in a real argv); string fields of the options point
 * into it until the next parse. */
static char words[32][512];

/* Parses the NULL-terminated words after "cached" into *o. */
static enum options_result
parse(struct options *o, ...)
{
	char *argv[32], *w;
	int argc = 0;
	va_list ap;

	argv[argc++] = strcpy(words[0], "cached");
	va_start(ap, o);
	while ((w = va_arg(ap, char *)) != NULL && argc < 31) {
		snprintf(words[argc], sizeof words[argc], "%s", w);
		argv[argc] = words[argc];
		argc++;
	}
	va_end(ap);
	argv[argc] = NULL;
	return options_parse(o, argc, argv);
}

/* Without flags: memcached's defaults where it has them. */
static void
test_defaults(void **state)
{
	struct options o;

	(void)state;
	assert_int_equal(parse(&o, NULL), OPTIONS_RUN);
	assert_int_equal(o.port, 11211);
	assert_int_equal(o.reqs_per_event, 20);
	assert_true(o.cas_enabled);
	assert_true(o.flush_enabled);
	assert_true(o.watch_enabled);
	assert_int_equal(o.watcher_logbuf_size, 256 * 1024);
	assert_int_equal(o.worker_logbuf_size, 64 * 1024);
	assert_int_equal(o.prefix_delimiter, ':');
	assert_false(o.detail_enabled);
	assert_true(o.growth_factor > 1.24 && o.growth_factor < 1.26);
	assert_int_equal(o.chunk_size, 48);
	assert_int_equal(o.hashpower_init, 0);
	assert_true(o.maxconns_fast);
	assert_false(o.lock_memory);
	assert_false(o.enable_coredumps);
}

/* Each memcached flag with a meaning here sets its field. */
static void
test_memcached_flags(void **state)
{
	struct options o;

	(void)state;
	assert_int_equal(parse(&o, "-r", "-k", "-R", "7", "-C", "-F", "-W",
	    "-D", "#x", "-L", "-f", "2.5", "-n", "64", "-N", "3", NULL),
	    OPTIONS_RUN);
	assert_true(o.enable_coredumps);
	assert_true(o.lock_memory);
	assert_int_equal(o.reqs_per_event, 7);
	assert_false(o.cas_enabled);
	assert_false(o.flush_enabled);
	assert_false(o.watch_enabled);
	assert_int_equal(o.prefix_delimiter, '#');
	assert_true(o.detail_enabled);
	assert_true(o.large_pages);
	assert_true(o.growth_factor > 2.49 && o.growth_factor < 2.51);
	assert_int_equal(o.chunk_size, 64);
	assert_int_equal(o.napi_ids, 3);

	assert_int_equal(parse(&o, "--enable-coredumps", "--lock-memory",
	    "--max-reqs-per-event=9", "--disable-cas", "--disable-flush-all",
	    "--disable-watch", "--enable-largepages",
	    "--slab-growth-factor=1.5", "--slab-min-size=100",
	    "--napi-ids=1", NULL), OPTIONS_RUN);
	assert_int_equal(o.reqs_per_event, 9);
	assert_false(o.cas_enabled);
	assert_int_equal(o.chunk_size, 100);
}

/* -o takes comma-separated lists, repeated -o add up, and memcached's
 * own suboptions are accepted. */
static void
test_extended_lists(void **state)
{
	struct options o;

	(void)state;
	assert_int_equal(parse(&o, "-o", "modern,idle_timeout=5,hashpower=20",
	    "-o", "write_timeout=7,no_maxconns_fast", NULL), OPTIONS_RUN);
	assert_int_equal(o.idle_timeout, 5);
	assert_int_equal(o.write_timeout, 7);
	assert_int_equal(o.hashpower_init, 20);
	assert_int_equal(parse(&o, "-o", "maxconns_fast,,lru_crawler,"
	    "lru_crawler_sleep=100,slab_automove=2,slab_automove,"
	    "hot_lru_pct=20,ext_path=/x:1G,no_inline_ascii_resp,track_sizes",
	    NULL), OPTIONS_RUN);
	assert_true(o.maxconns_fast);
	assert_int_equal(parse(&o, "-o", "port_file=/tmp/p", NULL),
	    OPTIONS_RUN);
	assert_string_equal(o.port_file, "/tmp/p");
	/* watch's buffers, in KB as memcached takes them */
	assert_int_equal(parse(&o, "-o", "watcher_logbuf_size=1024,"
	    "worker_logbuf_size=8", NULL), OPTIONS_RUN);
	assert_int_equal(o.watcher_logbuf_size, 1024 * 1024);
	assert_int_equal(o.worker_logbuf_size, 8 * 1024);
}

/* Unknown flags, bad values, -Z without a certificate and a snapshot
 * interval without a path exit 64. */
static void
test_usage_errors(void **state)
{
	static const char *const bad[][4] = {
		{ "-q" }, { "-o", "bogus" }, { "-o", "modern,bogus" },
		{ "-o", "" }, { "-o", "hashpower=11" }, { "-o", "hashpower=33" },
		{ "-o", "hashpower" }, { "-o", "hot_lru_pct" },
		{ "-o", "modern=1" }, { "-o", "lru_crawler_sleep=" },
		{ "-R", "0" }, { "-R", "x" }, { "-f", "1" }, { "-f", "0.5" },
		{ "-f", "x" }, { "-n", "0" }, { "-N", "0" }, { "-D", "" },
		{ "-e", "" }, { "-o", "snapshot_interval=5" },	/* no path */
		{ "-Z" }, { "--enable-ssl" },	/* without ssl_chain_cert */
		{ "-o", "ssl_verify_mode=4" }, { "-o", "ssl_bogus=1" },
		{ "-o", "idle_timeout" }, { "-o", "worker_logbuf_size=0" },
		{ "-o", "watcher_logbuf_size=x" }, { "-o", "worker_logbuf_size" },
	};
	struct options o;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum options_result r = parse(&o, bad[i][0], bad[i][1],
		    bad[i][2], NULL);

		if (r != OPTIONS_EXIT_USAGE)
			fail_msg("%s %s: %d", bad[i][0],
			    bad[i][1] ? bad[i][1] : "", r);
	}
}

/* Writes text to a new file under /tmp; returns its path (free it). */
static char *
tmp_file(const char *text)
{
	char *path = strdup("/tmp/test_options.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* -L: the transparent huge page mode in force is the bracketed one; with
 * "never", or no file (no THP in the kernel), it cannot be used. */
static void
test_thp_usable(void **state)
{
	static const struct { const char *text; bool ok; } cases[] = {
		{ "always [madvise] never\n", true },
		{ "[always] madvise never\n", true },
		{ "always madvise [never]\n", false },
		{ "", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *path = tmp_file(cases[i].text);

		assert_int_equal(options_thp_usable(path), cases[i].ok);
		unlink(path);
		free(path);
	}
	assert_false(options_thp_usable("/nonexistent/thp/enabled"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_memcached_flags),
		cmocka_unit_test(test_thp_usable),
		cmocka_unit_test(test_extended_lists),
		cmocka_unit_test(test_usage_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
