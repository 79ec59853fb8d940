/*
 * options.c -- command-line parsing: defaults, memcached-compatible flags,
 * validation and the --help text.  Errors are printed here and turned into
 * EXIT_USAGE by the caller; nothing else in the server reads argv.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define MB (1024UL * 1024UL)

static const char usage_text[] =
"Usage: cached [options]\n"
"A memcached-compatible caching server.\n"
"\n"
"  -p, --port=NUM          TCP port to listen on (default 11211; 0 picks one)\n"
"  -l, --listen=ADDR[,..]  addresses to listen on (default 127.0.0.1)\n"
"  -U, --udp-port=NUM      UDP port; only 0 (off) is supported\n"
"  -s, --unix-socket=PATH  listen on a unix socket instead of TCP\n"
"  -a, --unix-mask=MASK    permissions of the unix socket, octal (default 0700)\n"
"  -c, --conn-limit=NUM    most simultaneous connections (default 1024)\n"
"  -m, --memory-limit=MB   item memory in megabytes (default 64); k/m/g suffix ok\n"
"  -M, --disable-evictions return an error instead of evicting when memory is full\n"
"  -I, --max-item-size=SZ  largest value, bytes or k/m suffix (default 1m)\n"
"  -t, --threads=NUM       worker threads (default 4)\n"
"  -b, --listen-backlog=N  listen backlog (default 1024)\n"
"  -A, --enable-shutdown   allow the shutdown command\n"
"  -X, --disable-dumping   refuse key dumps (lru_crawler metadump, stats cachedump)\n"
"  -d, --daemon            run in the background\n"
"  -P, --pidfile=FILE      write the process id to FILE (removed at exit)\n"
"  -u, --user=USER         drop root privileges to USER after binding\n"
"  -v, --verbose           log errors and connections; -vv also commands\n"
"  -o, --extended=OPT      idle_timeout=SECONDS  close connections idle that long\n"
"                          write_timeout=SECONDS close connections whose replies\n"
"                                                wait unread that long (default 60)\n"
"                          port_file=PATH        write the bound TCP port to PATH\n"
"                          snapshot=PATH         the same as -e PATH\n"
"                          snapshot_interval=S   also write the snapshot every S\n"
"                                                seconds (default 0: only at stop)\n"
"  -e, --memory-file=PATH  warm restarts: load PATH at start, write it at a clean\n"
"                          stop (TERM, INT, USR1, USR2, ALRM, shutdown)\n"
"  -h, --help              print this help and exit\n"
"  -V, --version           print the version and exit\n";

static const struct option long_opts[] = {
	{ "port",		required_argument, NULL, 'p' },
	{ "listen",		required_argument, NULL, 'l' },
	{ "udp-port",		required_argument, NULL, 'U' },
	{ "unix-socket",	required_argument, NULL, 's' },
	{ "unix-mask",		required_argument, NULL, 'a' },
	{ "conn-limit",		required_argument, NULL, 'c' },
	{ "memory-limit",	required_argument, NULL, 'm' },
	{ "disable-evictions",	no_argument,	   NULL, 'M' },
	{ "max-item-size",	required_argument, NULL, 'I' },
	{ "threads",		required_argument, NULL, 't' },
	{ "listen-backlog",	required_argument, NULL, 'b' },
	{ "enable-shutdown",	no_argument,	   NULL, 'A' },
	{ "disable-dumping",	no_argument,	   NULL, 'X' },
	{ "daemon",		no_argument,	   NULL, 'd' },
	{ "pidfile",		required_argument, NULL, 'P' },
	{ "user",		required_argument, NULL, 'u' },
	{ "verbose",		no_argument,	   NULL, 'v' },
	{ "extended",		required_argument, NULL, 'o' },
	{ "memory-file",	required_argument, NULL, 'e' },	/* issue 15 */
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* Prints an error about the command line and the hint to use -h. */
static enum options_result
usage_error(const char *fmt, const char *arg)
{
	fputs("cached: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'cached -h' for more information.\n", stderr);
	return OPTIONS_EXIT_USAGE;
}

/* Parses a whole decimal number in [min, max]; false if anything is off. */
static bool
parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char		*end;
	unsigned long	 v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Parses a size: a number times unit, or with a k/m/g suffix. */
static bool
parse_size(const char *s, size_t unit, size_t *out)
{
	char		*end;
	unsigned long	 v;
	size_t		 mult = unit;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0)
		return false;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1024;
		break;
	case 'm': case 'M':
		mult = MB;
		break;
	case 'g': case 'G':
		mult = 1024 * MB;
		break;
	default:
		return false;
	}
	if (*end != '\0' && end[1] != '\0')
		return false;
	if (v > SIZE_MAX / mult)
		return false;
	*out = v * mult;
	return true;
}

/* Applies one -o key=value pair. */
static enum options_result
parse_extended(struct options *o, char *arg)
{
	unsigned long	 v;
	char		*val = strchr(arg, '=');

	if (val == NULL)
		return usage_error("-o needs key=value, got '%s'", arg);
	*val++ = '\0';
	if (strcmp(arg, "idle_timeout") == 0) {
		if (!parse_ulong(val, 0, 86400 * 365, &v))
			return usage_error("bad idle_timeout '%s'", val);
		o->idle_timeout = (unsigned)v;
	} else if (strcmp(arg, "write_timeout") == 0) {
		if (!parse_ulong(val, 0, 86400 * 365, &v))
			return usage_error("bad write_timeout '%s'", val);
		o->write_timeout = (unsigned)v;
	} else if (strcmp(arg, "port_file") == 0) {
		o->port_file = val;
	} else if (strcmp(arg, "snapshot") == 0) {	/* issue 15 */
		if (*val == '\0')
			return usage_error("%s", "snapshot needs a path");
		o->snapshot_path = val;
	} else if (strcmp(arg, "snapshot_interval") == 0) {
		if (!parse_ulong(val, 0, 86400 * 365, &v))
			return usage_error("bad snapshot_interval '%s'", val);
		o->snapshot_interval = (unsigned)v;
	} else
		return usage_error("unknown -o option '%s'", arg);
	return OPTIONS_RUN;
}

/* Checks the combination of options once all are read. */
static enum options_result
validate(const struct options *o)
{
	if (o->udp_port != 0)
		return usage_error("%s", "UDP is not supported; use -U 0");
	if (o->item_size_max < 1024)
		return usage_error("%s", "item size limit (-I) must be at least 1k");
	if (o->item_size_max > 1024 * MB)
		return usage_error("%s", "item size limit (-I) must be at most 1g");
	if (o->item_size_max > o->mem_limit / 2)
		return usage_error("%s", "item size limit (-I) cannot be higher "
		    "than half the memory limit (-m)");
	if (o->snapshot_interval != 0 && o->snapshot_path == NULL)
		return usage_error("%s", "snapshot_interval needs -e PATH or "
		    "-o snapshot=PATH");
	return OPTIONS_RUN;
}

/* Applies one option character; returns OPTIONS_RUN to go on. */
static enum options_result
apply(struct options *o, int ch, char *arg)
{
	unsigned long v;

	switch (ch) {
	case 'p':
		if (!parse_ulong(arg, 0, 65535, &v))
			return usage_error("bad port '%s'", arg);
		o->port = (int)v;
		break;
	case 'U':
		if (!parse_ulong(arg, 0, 65535, &v))
			return usage_error("bad UDP port '%s'", arg);
		o->udp_port = (int)v;
		break;
	case 'l':
		o->listen = arg;
		break;
	case 's':
		o->unix_path = arg;
		break;
	case 'a': {
		char *end;

		v = strtoul(arg, &end, 8);
		if (*arg < '0' || *arg > '7' || *end != '\0' || v > 0777)
			return usage_error("bad unix socket mask '%s'", arg);
		o->unix_mask = (unsigned)v;
		break;
	}
	case 'c':
		if (!parse_ulong(arg, 1, 1000000, &v))
			return usage_error("bad connection limit '%s'", arg);
		o->maxconns = (unsigned)v;
		break;
	case 'm':
		if (!parse_size(arg, MB, &o->mem_limit) || o->mem_limit == 0)
			return usage_error("bad memory limit '%s'", arg);
		break;
	case 'M':
		o->no_evict = true;
		break;
	case 'I':
		if (!parse_size(arg, 1, &o->item_size_max))
			return usage_error("bad item size limit '%s'", arg);
		break;
	case 't':
		if (!parse_ulong(arg, 1, 256, &v))
			return usage_error("bad thread count '%s' (1-256)", arg);
		o->threads = (unsigned)v;
		break;
	case 'b':
		if (!parse_ulong(arg, 1, INT_MAX, &v))
			return usage_error("bad backlog '%s'", arg);
		o->backlog = (int)v;
		break;
	case 'A':
		o->allow_shutdown = true;
		break;
	case 'X':
		o->no_dump = true;
		break;
	case 'd':
		o->daemonize = true;
		break;
	case 'P':
		o->pidfile = arg;
		break;
	case 'u':
		o->user = arg;
		break;
	case 'v':
		o->verbose++;
		break;
	case 'o':
		return parse_extended(o, arg);
	case 'e':	/* issue 15: warm restarts */
		if (*arg == '\0')
			return usage_error("%s", "-e needs a path");
		o->snapshot_path = arg;
		break;
	default:
		return OPTIONS_EXIT_USAGE;
	}
	return OPTIONS_RUN;
}

/* Fills opts with defaults, then applies argv. */
enum options_result
options_parse(struct options *o, int argc, char **argv)
{
	enum options_result	r;
	int			ch;

	memset(o, 0, sizeof *o);
	o->port = 11211;
	o->listen = "127.0.0.1";
	o->unix_mask = 0700;
	o->maxconns = 1024;
	o->mem_limit = 64 * MB;
	o->item_size_max = MB;
	o->threads = 4;
	o->backlog = 1024;
	o->write_timeout = 60;

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":p:l:U:s:a:c:m:MI:t:b:AdP:u:vo:hVXe:",
	    long_opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			fputs(usage_text, stdout);
			return OPTIONS_EXIT_OK;
		case 'V':
			puts(PACKAGE_NAME " " PACKAGE_VERSION);
			return OPTIONS_EXIT_OK;
		case ':':
			return usage_error("option '%s' needs an argument",
			    argv[optind - 1]);
		case '?':
			if (optopt != 0) {
				char opt[3] = { '-', (char)optopt, '\0' };

				return usage_error("unknown option '%s'", opt);
			}
			return usage_error("unknown option '%s'",
			    argv[optind - 1]);
		}
		if ((r = apply(o, ch, optarg)) != OPTIONS_RUN)
			return r;
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return validate(o);
}
