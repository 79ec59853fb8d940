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

#endif
