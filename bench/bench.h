/*
 * bench.h -- the load generator's shared records: its configuration (filled
 * once by bench_opts_parse, then read-only and shared by every thread),
 * per-thread counters, and one connection with its request ring and reply
 * parser (bench_conn.c).
 *
 * Threading: a connection and the stats it counts into belong to one
 * thread; nothing here is shared between threads except the configuration
 * and the value bytes, which are never written after start-up.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench_hist.h"
#include "bench_rand.h"

#define BENCH_MAX_TTLS	16
#define BENCH_MAX_KPG	1000	/* keys in one multi-get */
#define BENCH_PRELOAD_DEPTH 32	/* pipeline depth of the preload phase */

enum bench_dist {
	DIST_UNIFORM,
	DIST_ZIPF,
	DIST_SEQUENTIAL
};

struct bench_ttl {
	uint32_t	ttl;		/* seconds, as sent */
	double		weight;
};

struct bench_cfg {
	const char	*host;		/* name, address, or unix socket path */
	const char	*port;
	const char	*prefix;	/* keys are prefix + decimal index */
	unsigned	 conns;
	unsigned	 threads;
	unsigned	 pipeline;	/* requests in flight per connection */
	unsigned	 keys_per_get;
	unsigned	 get_weight;	/* get:set ratio */
	unsigned	 set_weight;
	uint64_t	 key_space;
	enum bench_dist	 dist;
	double		 skew;
	uint32_t	 vmin;		/* value size range, bytes */
	uint32_t	 vmax;
	struct bench_ttl ttls[BENCH_MAX_TTLS];
	unsigned	 nttls;
	double		 ttl_total;	/* sum of the weights */
	int		 meta;	/* --protocol meta: mg/ms/mn, not get/set */
	int		 binary; /* --protocol binary: GET/GETKQ+NOOP/SET */
	unsigned	 set_batch; /* binary: N SETQ + NOOP per set request */
	int		 preload;
	int		 miss_set;	/* a get miss is followed by a set */
	int		 json;
	int		 quiet;
	int		 busy_poll;	/* spin instead of sleeping in epoll */
	int		 tls;		/* --tls: TLS, certificate not checked */
	double		 duration;	/* seconds, unless has_requests */
	double		 warmup;	/* seconds not measured */
	double		 rate;		/* requests/s over all conns; 0 = closed loop */
	int		 has_requests;
	uint64_t	 requests;	/* measured requests, with has_requests */
	uint64_t	 warmup_requests;
	uint64_t	 seed;
	char		*value;		/* vmax bytes of value, set by main */
};

struct bench_stats {
	uint64_t	gets;		/* get requests answered */
	uint64_t	get_keys;	/* keys asked for in them */
	uint64_t	hits;		/* VALUE replies */
	uint64_t	sets;		/* sets from the get:set ratio */
	uint64_t	miss_sets;	/* sets that followed a miss */
	uint64_t	preloads;	/* sets of the preload phase */
	uint64_t	not_stored;	/* NOT_STORED / EXISTS / NOT_FOUND */
	uint64_t	errors;		/* ERROR, CLIENT_ERROR, SERVER_ERROR */
	struct hist	lat_get;	/* nanoseconds */
	struct hist	lat_set;
	struct hist	lag;		/* paced: written minus intended time */
};

enum bench_req_kind {
	REQ_GET = 1,
	REQ_SET,
	REQ_MISS_SET,
	REQ_PRELOAD
};

struct bench_req {
	uint8_t		kind;
	uint16_t	nkeys;
	uint64_t	t_sent;		/* ns, CLOCK_MONOTONIC; intended when paced */
};

struct ssl_st;

struct bench_conn {
	int			 fd;
	struct ssl_st		*ssl;		/* --tls: the session, else NULL */
	const struct bench_cfg	*cfg;
	struct bench_stats	*st;
	struct rng		 rng;
	char			 err[160];	/* why bench_conn_read/flush failed */

	/* Output not yet written: wbuf[woff, wlen). */
	char			*wbuf;
	size_t			 wlen, woff, wcap;
	int			 want_out;	/* the socket is full */

	/* Input not yet parsed: rbuf[0, rlen). */
	char			*rbuf;
	size_t			 rlen;
	int			 in_data;	/* skipping a value's bytes */
	uint64_t		 data_left;	/* of them, with the CRLF */
	int			 done_after_data; /* a single mg's VA ends it */
	unsigned		 hits;		/* VALUEs in the current reply */
	unsigned		 batch_errs;	/* error lines in a meta batch */

	/* Requests in flight, oldest at head; the last `unsent` not yet
	 * written, and of those the last `unstamped` still waiting for their
	 * send time (closed loop). */
	struct bench_req	*ring;
	uint64_t		*ring_keys;	/* cap * keys_per_get, with miss_set */
	uint8_t			*found;		/* keys_per_get flags, with miss_set */
	unsigned		 head, count, cap, depth, unsent, unstamped;

	/* Keys that missed, to set next (miss_set). */
	uint64_t		*missq;
	unsigned		 mq_head, mq_count, mq_cap;

	/* Pacing: the next request's intended send time. */
	uint64_t		 next_due;
	uint64_t		 interval;
};

int	 bench_opts_parse(struct bench_cfg *, int, char **);
void	 bench_usage(FILE *);
const char *bench_protocol_name(const struct bench_cfg *);

int	 bench_conn_init(struct bench_conn *, const struct bench_cfg *,
	    struct bench_stats *, unsigned, uint64_t);
void	 bench_conn_free(struct bench_conn *);
int	 bench_tls_init(void);
int	 bench_conn_tls(struct bench_conn *, const char **);
void	 bench_conn_put_get(struct bench_conn *, const uint64_t *, unsigned,
	    uint64_t);
void	 bench_conn_put_set(struct bench_conn *, uint64_t, enum bench_req_kind,
	    uint64_t);
int	 bench_conn_pop_miss(struct bench_conn *, uint64_t *);
int	 bench_conn_flush(struct bench_conn *);
int	 bench_conn_read(struct bench_conn *);
uint64_t bench_now(void);

#endif
