/*
 * warm_opts.c -- the command line of cached-warm: getopt_long into a
 * struct warm_opts, every number checked (range, no trailing junk).  It
 * prints nothing and never exits: the caller gets a result and a message.
 * No state beyond getopt's own.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "warm.h"

#define DEFAULT_SERVERS		"127.0.0.1:11211"
#define DEFAULT_JOBS		4
#define MAX_JOBS		256
#define DEFAULT_TTL		43200
#define DEFAULT_TIMEOUT_MS	60000
#define DEFAULT_ITEM_MAX	(1024 * 1024)
#define MAX_ITEM_MAX		(1024 * 1024 * 1024)
#define DEFAULT_BATCH		1024
#define MAX_BATCH		65536
#define LOCK_NAME		"cached-warm.lock"
#define ROOT_LOCK_DIR		"/run/lock"

static const char usage_text[] =
"usage: cached-warm [options] [manifest ...]\n"
"Stores the entries of the manifests (or stdin) in cached or any\n"
"memcached-compatible servers; values are literal or made by --exec.\n"
"\n"
"  -s, --servers LIST     host:port,[v6]:port,/socket,... (" DEFAULT_SERVERS ")\n"
"  -e, --exec CMD         compute values: run /bin/sh -c CMD per entry\n"
"                         without a value, {} replaced by the key\n"
"  -j, --jobs N           worker threads running commands and stores (4)\n"
"  -t, --timeout SECONDS  kill a command running longer (60)\n"
"      --ttl SECONDS      TTL of entries that give none (43200)\n"
"      --jitter S|P%      take a random 0..S seconds (or P% of the TTL)\n"
"                         off each TTL (0)\n"
"      --flags N          flags of entries that give none (0)\n"
"  -m, --mode MODE        set, add (keep existing values) or replace (set)\n"
"      --item-max SIZE    largest value; larger ones are reported, not\n"
"                         sent (1m; k and m suffixes)\n"
"      --batch N          literal entries per pipelined batch (1024)\n"
"      --lock PATH        lock file against overlapping runs (per user:\n"
"                         $XDG_RUNTIME_DIR/" LOCK_NAME ", else\n"
"                         " ROOT_LOCK_DIR "/" LOCK_NAME " for root,\n"
"                         /tmp/cached-warm-UID.lock for others)\n"
"      --no-lock          take no lock\n"
"      --strict           a bad line aborts the run (exit 65)\n"
"  -n, --dry-run          check everything, touch no server, run nothing\n"
"  -q, --quiet            no summary line when every entry was stored\n"
"      --progress         progress bar even if stderr is no terminal\n"
"      --no-progress      no progress bar\n"
"  -h, --help             this text\n"
"  -V, --version          version\n"
"\n"
"Exit: 0 all stored, 1 some failed, 64 usage, 65 bad line with --strict,\n"
"66 unreadable manifest, 69 no server reachable, 70 internal error (out of\n"
"memory, threads), 73 lock file cannot be created, 75 lock held.\n";

enum {
	OPT_TTL = 256, OPT_JITTER, OPT_FLAGS, OPT_ITEM_MAX, OPT_BATCH,
	OPT_LOCK, OPT_NO_LOCK, OPT_STRICT, OPT_PROGRESS, OPT_NO_PROGRESS
};

static const struct option long_opts[] = {
	{ "servers",	 required_argument, NULL, 's' },
	{ "exec",	 required_argument, NULL, 'e' },
	{ "jobs",	 required_argument, NULL, 'j' },
	{ "timeout",	 required_argument, NULL, 't' },
	{ "ttl",	 required_argument, NULL, OPT_TTL },
	{ "jitter",	 required_argument, NULL, OPT_JITTER },
	{ "flags",	 required_argument, NULL, OPT_FLAGS },
	{ "mode",	 required_argument, NULL, 'm' },
	{ "item-max",	 required_argument, NULL, OPT_ITEM_MAX },
	{ "batch",	 required_argument, NULL, OPT_BATCH },
	{ "lock",	 required_argument, NULL, OPT_LOCK },
	{ "no-lock",	 no_argument,	    NULL, OPT_NO_LOCK },
	{ "strict",	 no_argument,	    NULL, OPT_STRICT },
	{ "dry-run",	 no_argument,	    NULL, 'n' },
	{ "quiet",	 no_argument,	    NULL, 'q' },
	{ "progress",	 no_argument,	    NULL, OPT_PROGRESS },
	{ "no-progress", no_argument,	    NULL, OPT_NO_PROGRESS },
	{ "help",	 no_argument,	    NULL, 'h' },
	{ "version",	 no_argument,	    NULL, 'V' },
	{ NULL,		 0,		    NULL, 0 }
};

/* Returns the usage text. */
const char *
warm_usage(void)
{
	return usage_text;
}

/* Where a parse failure goes. */
struct errbuf {
	char	*s;
	size_t	 len;
};

/* Formats an error and returns -1. */
static int __attribute__((format(printf, 2, 3)))
bad(struct errbuf *e, const char *fmt, ...)
{
	va_list ap;

	if (e->len > 0) {
		va_start(ap, fmt);
		vsnprintf(e->s, e->len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Parses a decimal number in [min, max] with an optional suffix char. */
static int
parse_num(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    char *suffix)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -1;
	}
	if (suffix != NULL) {
		*suffix = *s;
		if (*s != '\0')
			s++;
	}
	if (*s != '\0' || v < min)
		return -1;
	*out = v;
	return 0;
}

/* Parses an unsigned option value in [min, max]. */
static int
opt_uint(struct errbuf *e, const char *name, const char *arg, uint64_t min,
    uint64_t max, uint64_t *out)
{
	if (parse_num(arg, min, max, out, NULL) < 0)
		return bad(e, "%s: '%s' is not a number from %llu to %llu",
		    name, arg, (unsigned long long)min,
		    (unsigned long long)max);
	return 0;
}

/* Parses seconds with up to three decimals ("0.25") into milliseconds. */
static int
opt_seconds(struct errbuf *e, const char *name, const char *arg,
    unsigned *ms)
{
	uint64_t	 whole = 0, frac = 0, scale = 100;
	const char	*s = arg;

	if (*s < '0' || *s > '9')
		return bad(e, "%s: '%s' is not a number of seconds", name, arg);
	for (; *s >= '0' && *s <= '9' && whole <= 86400; s++)
		whole = whole * 10 + (uint64_t)(*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9' && scale > 0; s++) {
			frac += (uint64_t)(*s - '0') * scale;
			scale /= 10;
		}
	if (*s != '\0' || whole > 86400 || whole * 1000 + frac == 0)
		return bad(e, "%s: '%s' is not a number of seconds from 0.001 "
		    "to 86400", name, arg);
	*ms = (unsigned)(whole * 1000 + frac);
	return 0;
}

/* Parses a size with an optional k or m suffix. */
static int
opt_size(struct errbuf *e, const char *name, const char *arg, size_t *out)
{
	uint64_t	v;
	char		suffix;

	if (parse_num(arg, 1, MAX_ITEM_MAX, &v, &suffix) < 0 ||
	    (suffix != '\0' && strchr("kKmM", suffix) == NULL))
		return bad(e, "%s: '%s' is not a size like 512k or 1m", name,
		    arg);
	if (suffix == 'k' || suffix == 'K')
		v *= 1024;
	else if (suffix == 'm' || suffix == 'M')
		v *= 1024 * 1024;
	if (v > MAX_ITEM_MAX)
		return bad(e, "%s: '%s' is over 1 GB", name, arg);
	*out = (size_t)v;
	return 0;
}

/* Parses --jitter: seconds, or a percentage of each TTL. */
static int
opt_jitter(struct errbuf *e, const char *arg, struct warm_opts *o)
{
	uint64_t	v;
	char		suffix;

	if (parse_num(arg, 0, UINT32_MAX, &v, &suffix) < 0 ||
	    (suffix != '\0' && suffix != '%') || (suffix == '%' && v > 100))
		return bad(e, "--jitter: '%s' is not seconds or a percentage "
		    "up to 100%%", arg);
	o->jitter = (uint32_t)v;
	o->jitter_pct = suffix == '%';
	return 0;
}

/* Parses --mode. */
static int
opt_mode(struct errbuf *e, const char *arg, enum warm_mode *mode)
{
	if (strcmp(arg, "set") == 0)
		*mode = WARM_SET;
	else if (strcmp(arg, "add") == 0)
		*mode = WARM_ADD;
	else if (strcmp(arg, "replace") == 0)
		*mode = WARM_REPLACE;
	else
		return bad(e, "--mode: '%s' is not set, add or replace", arg);
	return 0;
}

/* Fills o with the defaults. */
/*
 * The default lock file, one per user, so that a run as root never leaves
 * a lock that another user's cron job cannot open: in $XDG_RUNTIME_DIR
 * when it is set and ours, else in runlock_dir for root (when it is
 * writable), else /tmp/cached-warm-UID.lock.  Written into buf.
 */
const char *
warm_default_lock(char *buf, size_t len, const char *xdg, uid_t euid,
    const char *runlock_dir)
{
	struct stat sb;

	if (xdg != NULL && xdg[0] == '/' && stat(xdg, &sb) == 0 &&
	    S_ISDIR(sb.st_mode) && sb.st_uid == euid &&
	    (size_t)snprintf(buf, len, "%s/" LOCK_NAME, xdg) < len)
		return buf;
	if (euid == 0 && runlock_dir != NULL &&
	    access(runlock_dir, W_OK) == 0 &&
	    (size_t)snprintf(buf, len, "%s/" LOCK_NAME, runlock_dir) < len)
		return buf;
	snprintf(buf, len, "/tmp/cached-warm-%lu.lock", (unsigned long)euid);
	return buf;
}

static void
defaults(struct warm_opts *o)
{
	memset(o, 0, sizeof *o);
	o->servers = DEFAULT_SERVERS;
	o->jobs = DEFAULT_JOBS;
	o->ttl = DEFAULT_TTL;
	o->mode = WARM_SET;
	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	o->item_max = DEFAULT_ITEM_MAX;
	o->batch = DEFAULT_BATCH;
	o->lock_path = warm_default_lock(o->lock_buf, sizeof o->lock_buf,
	    getenv("XDG_RUNTIME_DIR"), geteuid(), ROOT_LOCK_DIR);
	o->progress = -1;
}

/* Applies option c with argument arg. */
static int
apply(struct errbuf *e, struct warm_opts *o, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case 's':
		if (*arg == '\0')
			return bad(e, "--servers: empty list");
		o->servers = arg;
		return 0;
	case 'e':
		if (*arg == '\0')
			return bad(e, "--exec: empty command");
		o->exec = arg;
		return 0;
	case 'j':
		if (opt_uint(e, "--jobs", arg, 1, MAX_JOBS, &v) < 0)
			return -1;
		o->jobs = (unsigned)v;
		return 0;
	case 't':
		return opt_seconds(e, "--timeout", arg, &o->timeout_ms);
	case OPT_TTL:
		if (opt_uint(e, "--ttl", arg, 0, UINT32_MAX, &v) < 0)
			return -1;
		o->ttl = (uint32_t)v;
		return 0;
	case OPT_JITTER:
		return opt_jitter(e, arg, o);
	case OPT_FLAGS:
		if (opt_uint(e, "--flags", arg, 0, UINT32_MAX, &v) < 0)
			return -1;
		o->flags = (uint32_t)v;
		return 0;
	case 'm':
		return opt_mode(e, arg, &o->mode);
	case OPT_ITEM_MAX:
		return opt_size(e, "--item-max", arg, &o->item_max);
	case OPT_BATCH:
		if (opt_uint(e, "--batch", arg, 1, MAX_BATCH, &v) < 0)
			return -1;
		o->batch = (size_t)v;
		return 0;
	case OPT_LOCK:
		if (*arg == '\0')
			return bad(e, "--lock: empty path");
		o->lock_path = arg;
		return 0;
	case OPT_NO_LOCK:
		o->lock_path = NULL;
		return 0;
	case OPT_STRICT:
		o->strict = true;
		return 0;
	case 'n':
		o->dry_run = true;
		return 0;
	case 'q':
		o->quiet = true;
		return 0;
	case OPT_PROGRESS:
		o->progress = 1;
		return 0;
	case OPT_NO_PROGRESS:
		o->progress = 0;
		return 0;
	default:
		return bad(e, "unknown option (see cached-warm -h)");
	}
}

/* Parses the command line into o. */
enum warm_opts_result
warm_opts_parse(struct warm_opts *o, int argc, char **argv, char *err,
    size_t errlen)
{
	struct errbuf	e = { err, errlen };
	int		c;

	defaults(o);
	if (errlen > 0)
		err[0] = '\0';
	optind = 0;	/* glibc: full re-initialisation */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:e:j:t:m:nqhV", long_opts,
	    NULL)) != -1) {
		if (c == 'h')
			return WARM_OPTS_HELP;
		if (c == 'V')
			return WARM_OPTS_VERSION;
		if (c == '?' || c == ':') {
			if (optopt != 0)
				bad(&e, "option -%c: unknown or missing its "
				    "value", optopt);
			else
				bad(&e, "unknown option or missing value: %s",
				    argv[optind - 1]);
			return WARM_OPTS_ERROR;
		}
		if (apply(&e, o, c, optarg) < 0)
			return WARM_OPTS_ERROR;
	}
	o->inputs = argv + optind;
	o->ninputs = (size_t)(argc - optind);
	return WARM_OPTS_RUN;
}
