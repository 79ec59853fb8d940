/*
 * bench_opts.c -- command line of cached-bench: getopt_long into a
 * struct bench_cfg, with every number checked (range, no trailing junk)
 * and the combinations that make no sense refused with a message.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const char usage_text[] =
"usage: cached-bench [options]\n"
"Drives a memcached-protocol server over TCP and reports throughput, hit\n"
"ratio and latency percentiles.\n"
"\n"
"Target and load shape:\n"
"  -s, --server HOST        server address or unix socket path (127.0.0.1)\n"
"  -p, --port PORT          TCP port (11211)\n"
"  -c, --connections N      connections (8)\n"
"  -T, --threads N          threads sharing the connections (1)\n"
"  -P, --pipeline N         requests in flight per connection (1)\n"
"  -k, --keys-per-get N     keys in each get, a multi-get if > 1 (1)\n"
"  -r, --ratio GET:SET      mix of gets and sets (9:1)\n"
"  -R, --rate N             open loop: N requests/s in all, latency taken\n"
"                           from each request's intended send time (0 =\n"
"                           closed loop)\n"
"  -M, --protocol P         text (get/set), meta (mg/ms, multi-gets as\n"
"                           quiet mg's ended by mn) or binary (GET/SET,\n"
"                           multi-gets as GETKQs ended by a NOOP) (text)\n"
"  -Z, --tls                TLS (the server's certificate is not checked)\n"
"  -B, --set-batch N        binary: each set is N quiet SETQs ended by a\n"
"                           NOOP, counted as N sets (1: plain SET)\n"
"  -y, --busy-poll          poll without sleeping: keeps the generator's\n"
"                           own wake-ups out of the latencies (costs a\n"
"                           CPU per thread)\n"
"Keys and values:\n"
"  -K, --key-space N        keys 0 .. N-1 (100000)\n"
"  -D, --distribution D     uniform, zipf or sequential (uniform)\n"
"  -z, --skew S             Zipf skew, > 0; implies -D zipf (0.99)\n"
"  -x, --prefix STR         key prefix (key:)\n"
"  -v, --value-size N|A-B   value bytes, fixed or uniform in A..B (100)\n"
"  -e, --ttl TTL[:W],...    TTL mix: seconds with relative weights (0)\n"
"  -m, --miss-set           follow each get miss with a set of that key\n"
"Phases:\n"
"  -l, --preload            first set every key once (not measured)\n"
"  -d, --duration SECONDS   measured run length (10)\n"
"  -n, --requests N         measure N requests instead of a duration;\n"
"                           -n 0 with --preload only preloads\n"
"  -w, --warmup SECONDS     run this long before measuring (0)\n"
"  -W, --warmup-requests N  or this many requests before measuring\n"
"  -S, --seed N             random seed; equal seeds, equal streams (1)\n"
"Output:\n"
"  -j, --json               one JSON object instead of text\n"
"  -q, --quiet              no progress lines on stderr\n"
"  -h, --help               this text\n"
"  -V, --version            version\n";

static const struct option long_opts[] = {
	{ "server",		required_argument, NULL, 's' },
	{ "port",		required_argument, NULL, 'p' },
	{ "connections",	required_argument, NULL, 'c' },
	{ "threads",		required_argument, NULL, 'T' },
	{ "pipeline",		required_argument, NULL, 'P' },
	{ "keys-per-get",	required_argument, NULL, 'k' },
	{ "ratio",		required_argument, NULL, 'r' },
	{ "rate",		required_argument, NULL, 'R' },
	{ "key-space",		required_argument, NULL, 'K' },
	{ "distribution",	required_argument, NULL, 'D' },
	{ "skew",		required_argument, NULL, 'z' },
	{ "prefix",		required_argument, NULL, 'x' },
	{ "value-size",		required_argument, NULL, 'v' },
	{ "ttl",		required_argument, NULL, 'e' },
	{ "miss-set",		no_argument,	   NULL, 'm' },
	{ "preload",		no_argument,	   NULL, 'l' },
	{ "duration",		required_argument, NULL, 'd' },
	{ "requests",		required_argument, NULL, 'n' },
	{ "warmup",		required_argument, NULL, 'w' },
	{ "warmup-requests",	required_argument, NULL, 'W' },
	{ "seed",		required_argument, NULL, 'S' },
	{ "protocol",		required_argument, NULL, 'M' },
	{ "set-batch",		required_argument, NULL, 'B' },
	{ "busy-poll",		no_argument,	   NULL, 'y' },
	{ "tls",		no_argument,	   NULL, 'Z' },
	{ "json",		no_argument,	   NULL, 'j' },
	{ "quiet",		no_argument,	   NULL, 'q' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* The name of the protocol cfg speaks, as --protocol takes it. */
const char *
bench_protocol_name(const struct bench_cfg *cfg)
{
	return cfg->binary ? "binary" : cfg->meta ? "meta" : "text";
}

/* Prints the usage text to f. */
void
bench_usage(FILE *f)
{
	fputs(usage_text, f);
}

/* Parses a whole decimal in [lo, hi] from s; -1 on anything else. */
static int
parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char			*end;
	unsigned long long	 v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Parses an unsigned in [lo, hi]. */
static int
parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	uint64_t	v;

	if (parse_u64(s, lo, hi, &v) != 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Parses a finite double >= lo; -1 on anything else. */
static int
parse_double(const char *s, double lo, double *out)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo)
		return -1;
	*out = v;
	return 0;
}

/* Parses "GET:SET" weights, not both 0. */
static int
parse_ratio(struct bench_cfg *cfg, const char *s)
{
	char		 buf[64], *colon;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	if ((colon = strchr(buf, ':')) == NULL)
		return -1;
	*colon = '\0';
	if (parse_uint(buf, 0, 1000000, &cfg->get_weight) != 0 ||
	    parse_uint(colon + 1, 0, 1000000, &cfg->set_weight) != 0)
		return -1;
	return cfg->get_weight + cfg->set_weight > 0 ? 0 : -1;
}

/* Parses "N" or "MIN-MAX" value sizes (0 .. 64 MiB). */
static int
parse_sizes(struct bench_cfg *cfg, const char *s)
{
	char		 buf[64], *dash;
	uint64_t	 a, b;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	if ((dash = strchr(buf, '-')) != NULL)
		*dash = '\0';
	if (parse_u64(buf, 0, 64u << 20, &a) != 0)
		return -1;
	b = a;
	if (dash != NULL && parse_u64(dash + 1, a, 64u << 20, &b) != 0)
		return -1;
	cfg->vmin = (uint32_t)a;
	cfg->vmax = (uint32_t)b;
	return 0;
}

/* Parses "TTL[:WEIGHT],..." into cfg->ttls. */
static int
parse_ttls(struct bench_cfg *cfg, const char *s)
{
	char		 buf[512], *item, *save = NULL, *colon;
	uint64_t	 ttl;
	double		 w;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	cfg->nttls = 0;
	cfg->ttl_total = 0;
	for (item = strtok_r(buf, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		if (cfg->nttls == BENCH_MAX_TTLS)
			return -1;
		w = 1;
		if ((colon = strchr(item, ':')) != NULL) {
			*colon = '\0';
			if (parse_double(colon + 1, 0, &w) != 0)
				return -1;
		}
		if (parse_u64(item, 0, UINT32_MAX, &ttl) != 0)
			return -1;
		cfg->ttls[cfg->nttls].ttl = (uint32_t)ttl;
		cfg->ttls[cfg->nttls].weight = w;
		cfg->ttl_total += w;
		cfg->nttls++;
	}
	return cfg->nttls > 0 && cfg->ttl_total > 0 ? 0 : -1;
}

/* Parses a distribution name. */
static int
parse_dist(struct bench_cfg *cfg, const char *s)
{
	if (strcmp(s, "uniform") == 0)
		cfg->dist = DIST_UNIFORM;
	else if (strcmp(s, "zipf") == 0)
		cfg->dist = DIST_ZIPF;
	else if (strcmp(s, "sequential") == 0)
		cfg->dist = DIST_SEQUENTIAL;
	else
		return -1;
	return 0;
}

/* Fills cfg with the defaults. */
static void
set_defaults(struct bench_cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->host = "127.0.0.1";
	cfg->port = "11211";
	cfg->prefix = "key:";
	cfg->conns = 8;
	cfg->threads = 1;
	cfg->pipeline = 1;
	cfg->keys_per_get = 1;
	cfg->get_weight = 9;
	cfg->set_weight = 1;
	cfg->key_space = 100000;
	cfg->dist = DIST_UNIFORM;
	cfg->skew = 0.99;
	cfg->vmin = cfg->vmax = 100;
	cfg->nttls = 1;
	cfg->ttls[0].weight = cfg->ttl_total = 1;
	cfg->duration = 10;
	cfg->seed = 1;
	cfg->set_batch = 1;
}

/* Parses --protocol: text, meta or binary. */
static int
parse_protocol(struct bench_cfg *cfg, const char *s)
{
	cfg->meta = cfg->binary = 0;
	if (strcmp(s, "meta") == 0)
		cfg->meta = 1;
	else if (strcmp(s, "binary") == 0)
		cfg->binary = 1;
	else if (strcmp(s, "text") != 0)
		return -1;
	return 0;
}

/* Applies one option; -1 when its argument is bad. */
static int
apply(struct bench_cfg *cfg, int ch, const char *arg, int *dist_set)
{
	switch (ch) {
	case 's': cfg->host = arg; return 0;
	case 'p': cfg->port = arg; return 0;
	case 'x': cfg->prefix = arg; return strlen(arg) < 200 ? 0 : -1;
	case 'c': return parse_uint(arg, 1, 65536, &cfg->conns);
	case 'T': return parse_uint(arg, 1, 256, &cfg->threads);
	case 'P': return parse_uint(arg, 1, 65536, &cfg->pipeline);
	case 'k': return parse_uint(arg, 1, BENCH_MAX_KPG, &cfg->keys_per_get);
	case 'r': return parse_ratio(cfg, arg);
	case 'R': return parse_double(arg, 0, &cfg->rate);
	case 'K': return parse_u64(arg, 1, UINT64_C(1) << 48, &cfg->key_space);
	case 'D': *dist_set = 1; return parse_dist(cfg, arg);
	case 'z':
		if (!*dist_set)
			cfg->dist = DIST_ZIPF;
		return parse_double(arg, 0, &cfg->skew) == 0 && cfg->skew > 0 ?
		    0 : -1;
	case 'v': return parse_sizes(cfg, arg);
	case 'e': return parse_ttls(cfg, arg);
	case 'm': cfg->miss_set = 1; return 0;
	case 'l': cfg->preload = 1; return 0;
	case 'd': return parse_double(arg, 0.001, &cfg->duration);
	case 'n':
		cfg->has_requests = 1;
		return parse_u64(arg, 0, UINT64_MAX / 4, &cfg->requests);
	case 'w': return parse_double(arg, 0, &cfg->warmup);
	case 'W': return parse_u64(arg, 0, UINT64_MAX / 4, &cfg->warmup_requests);
	case 'S': return parse_u64(arg, 0, UINT64_MAX, &cfg->seed);
	case 'M': return parse_protocol(cfg, arg);
	case 'B': return parse_uint(arg, 1, BENCH_MAX_KPG, &cfg->set_batch);
	case 'y': cfg->busy_poll = 1; return 0;
	case 'Z': cfg->tls = 1; return 0;
	case 'j': cfg->json = 1; return 0;
	case 'q': cfg->quiet = 1; return 0;
	}
	return -1;
}

/* Refuses combinations that cannot run; returns a message or NULL. */
static const char *
check(const struct bench_cfg *cfg)
{
	if (cfg->threads > cfg->conns)
		return "more threads than connections";
	if (cfg->keys_per_get > 1 && cfg->get_weight == 0)
		return "--keys-per-get without gets";
	if (cfg->has_requests && cfg->requests == 0 && !cfg->preload)
		return "-n 0 only makes sense with --preload";
	if (cfg->warmup_requests > 0 && !cfg->has_requests)
		return "--warmup-requests needs --requests";
	if (cfg->miss_set && cfg->get_weight == 0)
		return "--miss-set without gets";
	if (cfg->set_batch > 1 && !cfg->binary)
		return "--set-batch needs --protocol binary";
	return NULL;
}

/*
 * Parses argv into cfg.  Returns 0 to run, 1 when --help or --version was
 * answered, -1 after printing why the command line is bad.
 */
int
bench_opts_parse(struct bench_cfg *cfg, int argc, char **argv)
{
	int		 ch, dist_set = 0;
	const char	*why;

	set_defaults(cfg);
	while ((ch = getopt_long(argc, argv,
	    "s:p:c:T:P:k:r:R:K:D:z:x:v:e:mld:n:w:W:S:M:B:yZjqhV", long_opts,
	    NULL)) != -1) {
		if (ch == 'h') {
			bench_usage(stdout);
			return 1;
		}
		if (ch == 'V') {
			printf("cached-bench %s\n", PACKAGE_VERSION);
			return 1;
		}
		if (ch == '?' || apply(cfg, ch, optarg, &dist_set) != 0) {
			if (ch != '?')
				fprintf(stderr, "cached-bench: bad value for "
				    "-%c: %s\n", ch, optarg ? optarg : "");
			bench_usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "cached-bench: unexpected argument %s\n",
		    argv[optind]);
		return -1;
	}
	if ((why = check(cfg)) != NULL) {
		fprintf(stderr, "cached-bench: %s\n", why);
		return -1;
	}
	return 0;
}
