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
#include <strings.h>

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
"  -v, --verbose           log errors and warnings; -vv also every command and\n"
"                          reply, -vvv also connection state changes\n"
"  -r, --enable-coredumps  raise the core file size limit to its maximum\n"
"  -k, --lock-memory       lock all memory in RAM (mlockall)\n"
"  -R, --max-reqs-per-event=N  requests a connection runs before others get a\n"
"                          turn (default 20)\n"
"  -C, --disable-cas       no CAS values: gets shows 0, cas answers EXISTS\n"
"  -F, --disable-flush-all refuse flush_all\n"
"  -W, --disable-watch     refuse the watch command (log streams)\n"
"  -D CHAR                 key prefix delimiter for per-prefix stats (default :),\n"
"                          which it turns on (stats detail dump)\n"
"  -L, --enable-largepages item memory in transparent huge pages (2 MiB),\n"
"                          put in place as it is first needed\n"
"  -f, --slab-growth-factor=F, -n, --slab-min-size=BYTES, -N, --napi-ids=N\n"
"                          accepted with a warning: cached has no slab classes\n"
"                          and no NAPI steering\n"
"  -e, --memory-file=PATH  warm restarts: load PATH at start, write it at a clean\n"
"                          stop (TERM, INT, USR1, USR2, ALRM, shutdown)\n"
"  -B, --protocol=NAME     protocols served: auto (default; the first byte picks\n"
"                          binary or text), ascii (text and meta) or binary\n"
"  -S, --enable-sasl       require SASL PLAIN authentication (binary protocol only)\n"
"  -Y, --auth-file=FILE    user:password lines, reread on SIGHUP; alone: text\n"
"                          clients log in with a set of data \"user password\";\n"
"                          with -S: the SASL users (default $MEMCACHED_SASL_PWDB)\n"
"  -o, --extended=OPT,...  comma-separated list of:\n"
"        idle_timeout=SECONDS  close connections idle that long (default never)\n"
"        write_timeout=SECONDS close connections whose replies wait unread that\n"
"                              long (default 60)\n"
"        port_file=PATH        write the bound TCP port to PATH\n"
"        snapshot=PATH         the same as -e PATH\n"
"        snapshot_interval=S   also write the snapshot every S seconds\n"
"                              (default 0: only at a clean stop)\n"
"        watcher_logbuf_size=KB  output a watch connection queues before it\n"
"                              loses lines (default 256)\n"
"        worker_logbuf_size=KB lines each worker holds for a watcher (64)\n"
"        maxconns_fast         refuse connections over -c at once (the default;\n"
"                              no_maxconns_fast is accepted with a warning)\n"
"        hashpower=N           accepted (12-32), with a warning: the hash\n"
"                              table sizes itself\n"
"        modern, no_modern     accepted (no_modern with a warning)\n"
"        memcached's slab, LRU, crawler, hash, log buffer and ext_* options\n"
"                              accepted with a warning each\n"
"  -Z, --enable-ssl        TLS on every TCP listener but -l notls:ADDR:PORT ones;\n"
"                          -o ssl_chain_cert=FILE  certificate chain, PEM (required)\n"
"                          -o ssl_key=FILE         private key (default: in the chain)\n"
"                          -o ssl_keyformat=PEM|DER (default PEM)\n"
"                          -o ssl_verify_mode=N    client certificates: 0 not asked\n"
"                                                  (default), 1 asked, 2 required,\n"
"                                                  3 required once\n"
"                          -o ssl_ca_cert=FILE     CAs that sign client certificates\n"
"                          -o ssl_ciphers=LIST     OpenSSL cipher list (TLS <= 1.2)\n"
"                          -o ssl_min_version=N    0 TLS 1.0, 1 TLS 1.1, 2 TLS 1.2\n"
"                                                  (default), 3 TLS 1.3\n"
"                          -o ssl_session_cache    server-side session resumption\n"
"  -i, --license           print licence information and exit\n"
"  -h, --help              print this help and exit\n"
"  -V, --version           print the version and exit\n";

static const char license_text[] =
"cached " PACKAGE_VERSION ", a memcached-compatible caching server.\n"
"It implements the protocols memcached documents in protocol.txt\n"
"(Copyright (c) 2003, Danga Interactive, Inc., BSD licence) and links\n"
"libevent (3-clause BSD licence).\n";

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
	{ "protocol",		required_argument, NULL, 'B' },
	{ "enable-sasl",	no_argument,	   NULL, 'S' },
	{ "auth-file",		required_argument, NULL, 'Y' },
	{ "enable-coredumps",	no_argument,	   NULL, 'r' },
	{ "lock-memory",	no_argument,	   NULL, 'k' },
	{ "max-reqs-per-event",	required_argument, NULL, 'R' },
	{ "disable-cas",	no_argument,	   NULL, 'C' },
	{ "disable-flush-all",	no_argument,	   NULL, 'F' },
	{ "disable-watch",	no_argument,	   NULL, 'W' },
	{ "enable-largepages",	no_argument,	   NULL, 'L' },
	{ "slab-growth-factor",	required_argument, NULL, 'f' },
	{ "slab-min-size",	required_argument, NULL, 'n' },
	{ "napi-ids",		required_argument, NULL, 'N' },
	{ "memory-file",	required_argument, NULL, 'e' },
	{ "enable-ssl",		no_argument,	   NULL, 'Z' },
	{ "license",		no_argument,	   NULL, 'i' },
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

/* ---- TLS options: -Z and -o ssl_* (server/tls.h) ---------------------- */

/* Applies -o ssl_<key>[=val]; *mine tells whether key was a TLS one. */
static enum options_result
parse_tls_option(struct options *o, const char *key, const char *val,
    bool *mine)
{
	unsigned long v;

	*mine = true;
	if (strcmp(key, "ssl_session_cache") == 0 && val == NULL)
		o->ssl_session_cache = true;
	else if (strcmp(key, "ssl_kernel_tls") == 0 && val == NULL)
		o->ssl_kernel_tls = true;
	else if (strncmp(key, "ssl_", 4) != 0) {
		*mine = false;
		return OPTIONS_RUN;
	} else if (val == NULL)
		return usage_error("-o %s needs a value", key);
	else if (strcmp(key, "ssl_chain_cert") == 0)
		o->ssl_chain_cert = val;
	else if (strcmp(key, "ssl_key") == 0)
		o->ssl_key = val;
	else if (strcmp(key, "ssl_ca_cert") == 0)
		o->ssl_ca_cert = val;
	else if (strcmp(key, "ssl_ciphers") == 0)
		o->ssl_ciphers = val;
	else if (strcmp(key, "ssl_keyformat") == 0) {
		if (strcasecmp(val, "PEM") == 0)
			o->ssl_keyformat = 1;
		else if (strcasecmp(val, "DER") == 0)
			o->ssl_keyformat = 2;
		else
			return usage_error("bad ssl_keyformat '%s' (PEM or DER)",
			    val);
	} else if (strcmp(key, "ssl_verify_mode") == 0) {
		if (!parse_ulong(val, 0, 3, &v))
			return usage_error("bad ssl_verify_mode '%s' (0-3)", val);
		o->ssl_verify_mode = (int)v;
	} else if (strcmp(key, "ssl_min_version") == 0) {
		if (!parse_ulong(val, 0, 3, &v))
			return usage_error("bad ssl_min_version '%s' (0-3)", val);
		o->ssl_min_version = (int)v;
	} else if (strcmp(key, "ssl_wbuf_size") == 0) {
		if (!parse_ulong(val, 1, 1024, &v))
			return usage_error("bad ssl_wbuf_size '%s'", val);
		o->ssl_wbuf_size = (unsigned)v * 1024;
	} else
		return usage_error("unknown -o option '%s'", key);
	return OPTIONS_RUN;
}

/* Checks the TLS options once all are read. */
static enum options_result
validate_tls(const struct options *o)
{
	if (o->ssl_enabled && o->ssl_chain_cert == NULL)
		return usage_error("%s", "-Z needs -o ssl_chain_cert=FILE");
	return OPTIONS_RUN;
}

/* TLS defaults, memcached's. */
static void
defaults_tls(struct options *o)
{
	o->ssl_keyformat = 1;
	o->ssl_min_version = 2;
	o->ssl_wbuf_size = 16 * 1024;
}

/* Prints the one warning line for an option that is accepted but has no
 * effect here. */
static void
warn_ignored(const char *opt, const char *why)
{
	fprintf(stderr, "cached: warning: %s: %s; ignored\n", opt, why);
}

/* What -o does with a memcached option cached has no use for. */
enum ext_kind {
	EXT_SILENT,	/* what cached does anyway: accepted quietly */
	EXT_WARN	/* tunes memcached internals: accepted, one warning */
};

/* Whether an option takes a value: never, always, or either. */
enum ext_value { V_NONE, V_NEED, V_MAY };

static const struct ext_row {
	const char	*name;
	enum ext_kind	 kind;
	enum ext_value	 value;
	const char	*why;		/* EXT_WARN's reason */
} ext_table[] = {
#define SLABS	"cached stores items in log segments, not slab classes"
#define LRU	"cached evicts whole segments (FIFO with a second chance), " \
		"it has no LRU lists"
#define CRAWL	"expired items are reclaimed by the expiry thread"
#define EXT	"cached has no external storage; items stay in memory"
	{ "modern",		 EXT_SILENT, V_NONE, NULL },
	{ "no_modern",		 EXT_WARN, V_NONE, "nothing to turn back" },
	{ "no_maxconns_fast",	 EXT_WARN, V_NONE,
	    "connections over -c are always refused at once" },
	{ "no_hashexpand",	 EXT_WARN, V_NONE,
	    "each shard's hash table sizes itself" },
	{ "hash_algorithm",	 EXT_WARN, V_NEED, "the hash is fixed" },
	{ "tail_repair_time",	 EXT_WARN, V_NEED, LRU },
	{ "slab_reassign",	 EXT_WARN, V_NONE, SLABS },
	{ "no_slab_reassign",	 EXT_WARN, V_NONE, SLABS },
	{ "slab_automove",	 EXT_WARN, V_MAY, SLABS },
	{ "no_slab_automove",	 EXT_WARN, V_NONE, SLABS },
	{ "slab_automove_ratio", EXT_WARN, V_NEED, SLABS },
	{ "slab_automove_window", EXT_WARN, V_NEED, SLABS },
	{ "slab_automove_freeratio", EXT_WARN, V_NEED, SLABS },
	{ "slab_sizes",		 EXT_WARN, V_NEED, SLABS },
	{ "slab_chunk_max",	 EXT_WARN, V_NEED, SLABS },
	{ "no_chunked_items",	 EXT_WARN, V_NONE, SLABS },
	{ "track_sizes",	 EXT_WARN, V_NONE, SLABS },
	{ "lru_crawler",	 EXT_WARN, V_NONE, CRAWL },
	{ "no_lru_crawler",	 EXT_WARN, V_NONE, CRAWL },
	{ "lru_crawler_sleep",	 EXT_WARN, V_NEED, CRAWL },
	{ "lru_crawler_tocrawl", EXT_WARN, V_NEED, CRAWL },
	{ "lru_maintainer",	 EXT_WARN, V_NONE, LRU },
	{ "no_lru_maintainer",	 EXT_WARN, V_NONE, LRU },
	{ "lru_segmented",	 EXT_WARN, V_NONE, LRU },
	{ "no_lru_segmented",	 EXT_WARN, V_NONE, LRU },
	{ "hot_lru_pct",	 EXT_WARN, V_NEED, LRU },
	{ "warm_lru_pct",	 EXT_WARN, V_NEED, LRU },
	{ "hot_max_factor",	 EXT_WARN, V_NEED, LRU },
	{ "warm_max_factor",	 EXT_WARN, V_NEED, LRU },
	{ "temporary_ttl",	 EXT_WARN, V_NEED, LRU },
	{ "read_buf_mem_limit",	 EXT_WARN, V_NEED,
	    "read buffers are per connection, bounded by the line limits" },
	{ "resp_obj_mem_limit",	 EXT_WARN, V_NEED,
	    "replies are bounded per connection" },
	{ "inline_ascii_resp",	 EXT_WARN, V_NONE, "no such layout here" },
	{ "no_inline_ascii_resp", EXT_SILENT, V_NONE, NULL },
	{ "drop_privileges",	 EXT_WARN, V_NONE, "no seccomp sandbox" },
	{ "no_drop_privileges",	 EXT_SILENT, V_NONE, NULL },
	{ "sock_cookie_id",	 EXT_WARN, V_NEED, "no socket cookies" },
	{ "ext_path",		 EXT_WARN, V_NEED, EXT },
	{ "ext_page_size",	 EXT_WARN, V_NEED, EXT },
	{ "ext_wbuf_size",	 EXT_WARN, V_NEED, EXT },
	{ "ext_threads",	 EXT_WARN, V_NEED, EXT },
	{ "ext_io_depth",	 EXT_WARN, V_NEED, EXT },
	{ "ext_item_size",	 EXT_WARN, V_NEED, EXT },
	{ "ext_item_age",	 EXT_WARN, V_NEED, EXT },
	{ "ext_low_ttl",	 EXT_WARN, V_NEED, EXT },
	{ "ext_recache_rate",	 EXT_WARN, V_NEED, EXT },
	{ "ext_compact_under",	 EXT_WARN, V_NEED, EXT },
	{ "ext_drop_under",	 EXT_WARN, V_NEED, EXT },
	{ "ext_max_sleep",	 EXT_WARN, V_NEED, EXT },
	{ "ext_max_frag",	 EXT_WARN, V_NEED, EXT },
	{ "ext_drop_unread",	 EXT_WARN, V_NONE, EXT },
#undef SLABS
#undef LRU
#undef CRAWL
#undef EXT
};

/* Applies one -o option (name or name=value); "ssl_*" are TLS's. */
static enum options_result
parse_one_extended(struct options *o, char *arg)
{
	unsigned long		 v;
	char			*val = strchr(arg, '=');
	bool			 tls;
	enum options_result	 r;

	if (val != NULL)
		*val++ = '\0';
	r = parse_tls_option(o, arg, val, &tls);
	if (tls)
		return r;
	if (strcmp(arg, "maxconns_fast") == 0 && val == NULL) {
		o->maxconns_fast = true;
		return OPTIONS_RUN;
	}
	if (strcmp(arg, "hashpower") == 0) {
		/* memcached's bounds: below 12 is too low, above 32 too
		 * high */
		if (val == NULL || !parse_ulong(val, 12, 32, &v))
			return usage_error("bad hashpower '%s' (12-32)",
			    val != NULL ? val : "");
		o->hashpower_init = (unsigned)v;
		warn_ignored("-o hashpower", "each shard's hash table sizes "
		    "itself with the item count");
		return OPTIONS_RUN;
	}
	for (size_t i = 0; i < sizeof ext_table / sizeof ext_table[0]; i++) {
		const struct ext_row *row = &ext_table[i];
		char opt[64];

		if (strcmp(arg, row->name) != 0)
			continue;
		if ((row->value == V_NEED && (val == NULL || *val == '\0')) ||
		    (row->value == V_NONE && val != NULL))
			return usage_error(row->value == V_NEED ?
			    "-o %s needs a value" : "-o %s takes no value",
			    arg);
		snprintf(opt, sizeof opt, "-o %s", arg);
		if (row->kind == EXT_WARN)
			warn_ignored(opt, row->why);
		return OPTIONS_RUN;
	}
	if (val == NULL) {
		if (strcmp(arg, "idle_timeout") == 0 ||
		    strcmp(arg, "write_timeout") == 0 ||
		    strcmp(arg, "port_file") == 0)
			return usage_error("-o %s needs a value", arg);
		return usage_error("unknown -o option '%s'", arg);
	}
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
	} else if (strcmp(arg, "watcher_logbuf_size") == 0 ||
	    strcmp(arg, "worker_logbuf_size") == 0) {
		/* KB, as memcached; its bound on the value is 1 GB */
		if (!parse_ulong(val, 1, 1024 * 1024, &v))
			return usage_error("bad log buffer size '%s' (KB, "
			    "1-1048576)", val);
		if (arg[1] == 'a')
			o->watcher_logbuf_size = (size_t)v * 1024;
		else
			o->worker_logbuf_size = (size_t)v * 1024;
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

/* Applies -o's comma-separated list, as memcached's getsubopt() loop
 * does (a port_file path therefore cannot hold a comma). */
static enum options_result
parse_extended(struct options *o, char *arg)
{
	enum options_result	 r;
	char			*next;

	if (*arg == '\0')
		return usage_error("%s", "-o needs an option");
	for (; arg != NULL; arg = next) {
		if ((next = strchr(arg, ',')) != NULL)
			*next++ = '\0';
		if (*arg == '\0')
			continue;
		if ((r = parse_one_extended(o, arg)) != OPTIONS_RUN)
			return r;
	}
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
	if (o->sasl && o->protocol_set &&
	    o->protocol != OPTIONS_PROTO_BINARY)
		return usage_error("%s", "you cannot allow the ASCII protocol "
		    "while using SASL (-S needs -B binary)");
	if (o->auth_file != NULL && !o->sasl && o->protocol_set &&
	    o->protocol == OPTIONS_PROTO_BINARY)
		return usage_error("%s", "-Y without -S is a text-protocol "
		    "login: it cannot be used with -B binary");
	if (o->sasl && o->auth_file == NULL)
		return usage_error("%s", "-S needs a password file: -Y FILE "
		    "or MEMCACHED_SASL_PWDB");
	if (o->item_size_max > o->mem_limit / 2)
		return usage_error("%s", "item size limit (-I) cannot be higher "
		    "than half the memory limit (-m)");
	if (o->snapshot_interval != 0 && o->snapshot_path == NULL)
		return usage_error("%s", "snapshot_interval needs -e PATH or "
		    "-o snapshot=PATH");
	return validate_tls(o);
}

static enum options_result apply_memcached(struct options *, int, char *);

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
	case 'B':
		if (strcmp(arg, "auto") == 0)
			o->protocol = OPTIONS_PROTO_AUTO;
		else if (strcmp(arg, "ascii") == 0)
			o->protocol = OPTIONS_PROTO_ASCII;
		else if (strcmp(arg, "binary") == 0)
			o->protocol = OPTIONS_PROTO_BINARY;
		else
			return usage_error("bad protocol '%s' (auto, ascii or "
			    "binary)", arg);
		o->protocol_set = true;
		break;
	case 'S':
		o->sasl = true;
		break;
	case 'Y':
		o->auth_file = arg;
		break;
	default:
		return apply_memcached(o, ch, arg);
	}
	return OPTIONS_RUN;
}

/* Parses a decimal number with an optional fraction, like "1.25". */
static bool
parse_double(const char *s, double *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && *end == '\0';
}

/* Applies one of memcached's flags beyond the basic ones. */
static enum options_result
apply_memcached(struct options *o, int ch, char *arg)
{
	unsigned long	v;
	double		d;

	switch (ch) {
	case 'r':
		o->enable_coredumps = true;
		break;
	case 'k':
		o->lock_memory = true;
		break;
	case 'R':
		if (!parse_ulong(arg, 1, INT_MAX, &v))
			return usage_error("bad requests per event '%s' "
			    "(must be greater than 0)", arg);
		o->reqs_per_event = (unsigned)v;
		break;
	case 'C':
		o->cas_enabled = false;
		break;
	case 'F':
		o->flush_enabled = false;
		break;
	case 'W':
		o->watch_enabled = false;
		break;
	case 'D':
		/* memcached takes the first character */
		if (*arg == '\0')
			return usage_error("%s", "-D needs a delimiter");
		o->prefix_delimiter = arg[0];
		o->detail_enabled = true;
		break;
	case 'L':
		o->large_pages = true;
		break;
	case 'f':
		if (!parse_double(arg, &d) || d <= 1.0)
			return usage_error("bad growth factor '%s' (must be "
			    "greater than 1)", arg);
		o->growth_factor = d;
		warn_ignored("-f", "cached has no slab classes");
		break;
	case 'n':
		if (!parse_ulong(arg, 1, INT_MAX, &v))
			return usage_error("bad chunk size '%s' (must be "
			    "greater than 0)", arg);
		o->chunk_size = (unsigned)v;
		warn_ignored("-n", "cached has no slab classes");
		break;
	case 'N':
		if (!parse_ulong(arg, 1, INT_MAX, &v))
			return usage_error("bad number of NAPI ids '%s'", arg);
		o->napi_ids = (unsigned)v;
		warn_ignored("-N", "connections are not steered by NAPI id");
		break;
	case 'e':	/* issue 15: warm restarts */
		if (*arg == '\0')
			return usage_error("%s", "-e needs a path");
		o->snapshot_path = arg;
		break;
	case 'Z':
		o->ssl_enabled = true;
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
	o->reqs_per_event = 20;
	o->cas_enabled = true;
	o->flush_enabled = true;
	o->watch_enabled = true;
	o->watcher_logbuf_size = 256 * 1024;	/* memcached's defaults */
	o->worker_logbuf_size = 64 * 1024;
	o->prefix_delimiter = ':';
	o->growth_factor = 1.25;
	o->chunk_size = 48;
	o->maxconns_fast = true;
	defaults_tls(o);

	opterr = 0;
	optind = 0;	/* 0, not 1: glibc then resets all its state */
	while ((ch = getopt_long(argc, argv, ":p:l:U:s:a:c:m:MI:t:b:AdP:u:vo:B:SY:hVrkR:CFWD:Lf:n:N:e:ZiX",
	    long_opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			fputs(usage_text, stdout);
			return OPTIONS_EXIT_OK;
		case 'V':
			puts(PACKAGE_NAME " " PACKAGE_VERSION);
			return OPTIONS_EXIT_OK;
		case 'i':
			fputs(license_text, stdout);
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
	/* memcached's SASL password database, when -Y did not name one */
	if (o->sasl && o->auth_file == NULL)
		o->auth_file = getenv("MEMCACHED_SASL_PWDB");
	if ((r = validate(o)) == OPTIONS_RUN && o->sasl)
		o->protocol = OPTIONS_PROTO_BINARY;	/* as memcached -S */
	else if (r == OPTIONS_RUN && o->auth_file != NULL)
		o->protocol = OPTIONS_PROTO_ASCII;	/* as memcached -Y */
	return r;
}

bool
options_thp_usable(const char *path)
{
	char buf[128];
	size_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "cached: -L: cannot read %s: %s (no "
		    "transparent huge pages on this system?)\n", path,
		    strerror(errno));
		return false;
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The mode in force is the bracketed one. */
	if (strstr(buf, "[always]") != NULL || strstr(buf, "[madvise]") != NULL)
		return true;
	buf[strcspn(buf, "\n")] = '\0';
	fprintf(stderr, "cached: -L: transparent huge pages are disabled on "
	    "this system (%s: %s)\n", path, buf);
	return false;
}
