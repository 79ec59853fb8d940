/*
 * options.h -- the server's configuration: a plain record filled from argv
 * by options_parse() and handed to the parts that need it.  Nothing reads
 * it through a global.
 */
#ifndef CACHED_OPTIONS_H
#define CACHED_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

/* Exit status for usage errors (sysexits' EX_USAGE). */
#define EXIT_USAGE 64

/* -B: the protocols a connection may speak. */
enum options_protocol {
	OPTIONS_PROTO_AUTO,	/* the first byte picks: 0x80 binary, else text */
	OPTIONS_PROTO_ASCII,	/* text and meta only */
	OPTIONS_PROTO_BINARY	/* binary only */
};

struct options {
	int		 port;		/* -p, TCP port; 0 picks one */
	const char	*listen;	/* -l, comma-separated addresses */
	int		 udp_port;	/* -U, only 0 is supported */
	const char	*unix_path;	/* -s */
	unsigned	 unix_mask;	/* -a, octal permissions */
	unsigned	 maxconns;	/* -c */
	size_t		 mem_limit;	/* -m, bytes */
	bool		 no_evict;	/* -M */
	size_t		 item_size_max;	/* -I, bytes */
	unsigned	 threads;	/* -t */
	bool		 allow_shutdown; /* -A */
	bool		 daemonize;	/* -d */
	const char	*pidfile;	/* -P */
	const char	*user;		/* -u */
	int		 verbose;	/* -v, -vv */
	int		 backlog;	/* -b */
	unsigned	 idle_timeout;	/* -o idle_timeout=S, 0 = never */
	unsigned	 write_timeout;	/* -o write_timeout=S, 0 = never */
	const char	*port_file;	/* -o port_file=PATH */
	enum options_protocol protocol;	/* -B */
	bool		 protocol_set;	/* -B was given */
	bool		 sasl;		/* -S: binary SASL authentication */
	const char	*auth_file;	/* -Y, or $MEMCACHED_SASL_PWDB */
	/* memcached's other flags; the comment gives the name "stats
	 * settings" shows each under in memcached */
	bool		 enable_coredumps; /* -r: raise the core size limit */
	bool		 lock_memory;	/* -k: mlockall() */
	bool		 large_pages;	/* -L: item memory in huge pages */
	unsigned	 reqs_per_event; /* -R, "reqs_per_event" (20) */
	bool		 cas_enabled;	/* -C clears, "cas_enabled" */
	bool		 flush_enabled;	/* -F clears, "flush_enabled" */
	bool		 watch_enabled;	/* -W clears (no "stats settings"
					 * line in memcached 1.6.18) */
	/* -o watcher_logbuf_size / worker_logbuf_size, in bytes (memcached
	 * takes KB): the most a watcher's connection queues, and each
	 * (watcher, worker) ring of lines (watch.h) */
	size_t		 watcher_logbuf_size;
	size_t		 worker_logbuf_size;
	char		 prefix_delimiter; /* -D, "stat_key_prefix" (':') */
	bool		 detail_enabled; /* -D sets, "detail_enabled" */
	double		 growth_factor;	/* -f, "growth_factor" (1.25), unused */
	unsigned	 chunk_size;	/* -n, "chunk_size" (48), unused */
	unsigned	 napi_ids;	/* -N, "num_napi_ids" (0), unused */
	unsigned	 hashpower_init; /* -o hashpower, "hashpower_init" (0),
					 * unused: each shard's table sizes
					 * itself */
	bool		 maxconns_fast;	/* -o [no_]maxconns_fast,
					 * "maxconns_fast" (yes) */

	/* TLS (-Z, -o ssl_*; server/tls.h), memcached's names and defaults */
	bool		 ssl_enabled;		/* -Z: every TCP listener but
						 * -l notls:... ones */
	const char	*ssl_chain_cert;	/* PEM certificate chain */
	const char	*ssl_key;		/* NULL: in ssl_chain_cert */
	int		 ssl_keyformat;		/* 1 PEM, 2 DER (OpenSSL's) */
	int		 ssl_verify_mode;	/* 0 none .. 3 once */
	const char	*ssl_ca_cert;		/* CAs of client certificates */
	const char	*ssl_ciphers;		/* TLS <= 1.2 cipher list */
	int		 ssl_min_version;	/* 0-3: TLS 1.0 .. 1.3 */
	bool		 ssl_session_cache;
	unsigned	 ssl_wbuf_size;		/* accepted, reported, unused */
	bool		 ssl_kernel_tls;	/* accepted, not supported */
	bool		 no_dump;	/* -X: refuse key dumps */
	/* issue 15: warm restarts */
	const char	*snapshot_path;	/* -e, -o snapshot=PATH */
	unsigned	 snapshot_interval; /* -o snapshot_interval=S, 0 off */
};

enum options_result {
	OPTIONS_RUN,		/* start the server */
	OPTIONS_EXIT_OK,	/* -h or -V handled */
	OPTIONS_EXIT_USAGE	/* error already printed */
};

/* Fills opts with defaults, then applies argv; prints errors to stderr. */
enum options_result options_parse(struct options *opts, int argc,
	    char **argv);

/* Where Linux tells whether transparent huge pages may be used. */
#define OPTIONS_THP_PATH "/sys/kernel/mm/transparent_hugepage/enabled"

/* -L: true if the transparent huge page mode in the file at path (as
 * OPTIONS_THP_PATH's "always [madvise] never") is "always" or
 * "madvise"; else says why on stderr and returns false (memcached then
 * refuses to start). */
bool	 options_thp_usable(const char *path);

#endif
