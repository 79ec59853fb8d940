/*
 * warm.h -- what the files of cached-warm share: the manifest parser, the
 * line reader, options, the job queue and its workers, the command
 * runner, storing, and the report (counters, progress bar, summary).
 *
 * Data flow: the main thread reads manifest lines (warm_input.c), parses
 * them in place (warm_manifest.c) and turns them into jobs (warm_run.c):
 * literal entries are packed into batches that are stored pipelined,
 * memoize entries and computed entries travel alone.  A bounded queue
 * (warm_queue.c) feeds -j worker threads that run commands (warm_exec.c)
 * and store (warm_store.c); they count outcomes in the report
 * (warm_report.c).  The queue bounds memory: the manifest is streamed.
 *
 * Locking: the queue has one mutex and two condition variables; the
 * report's counters are atomics and its terminal output one mutex.  The
 * client (libcachedclient) is thread-safe by itself.  Nothing else is
 * shared: a job belongs to the thread that holds it.
 */
#ifndef WARM_H
#define WARM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cachedclient.h"

/* Exit statuses, from sysexits(3) where one fits. */
#define WARM_EXIT_OK		0	/* every entry stored or skipped */
#define WARM_EXIT_FAILED	1	/* some entry failed or was invalid */
#define WARM_EXIT_USAGE		64	/* EX_USAGE: bad command line */
#define WARM_EXIT_DATAERR	65	/* EX_DATAERR: --strict, bad line */
#define WARM_EXIT_NOINPUT	66	/* EX_NOINPUT: a manifest won't open */
#define WARM_EXIT_UNAVAILABLE	69	/* EX_UNAVAILABLE: no server answers */
#define WARM_EXIT_SOFTWARE	70	/* EX_SOFTWARE: out of memory, threads */
#define WARM_EXIT_TEMPFAIL	75	/* EX_TEMPFAIL: another run has the lock */

#define WARM_ERR_MAX		256	/* room for one error message */

/* ---- warm_manifest.c: one manifest line, parsed in place (pure) ---- */

#define WM_ARGS_MAX	64	/* arguments of one memo line */

enum wm_kind {
	WM_BLANK,	/* empty or a comment: nothing to do */
	WM_PLAIN,	/* key [ttl flags [value]] */
	WM_MEMO		/* memo ns fn ttl value [arg ...] */
};

/* A parsed line.  Every pointer points into the line that was parsed. */
struct wm_entry {
	enum wm_kind	 kind;
	const char	*key;		/* WM_PLAIN, NUL-terminated */
	const char	*ns;		/* WM_MEMO, NUL-terminated */
	const char	*fn;		/* WM_MEMO, NUL-terminated */
	cc_arg		 args[WM_ARGS_MAX];
	size_t		 nargs;
	bool		 has_ttl;	/* false: "-" or left out */
	uint32_t	 ttl;
	bool		 has_flags;	/* false: "-" or left out */
	uint32_t	 flags;
	bool		 computed;	/* no value: --exec computes it */
	const char	*value;		/* binary, value_len bytes */
	size_t		 value_len;
};

/*
 * Parses line[0..len-1] (no newline; line[len] must be writable) into e,
 * decoding words in place.  Returns 0, or -1 with a message in err.
 */
int	warm_manifest_parse(char *line, size_t len, struct wm_entry *e, char *err,
	    size_t errlen);

/* ---- warm_input.c: lines from a file descriptor, bounded memory ---- */

struct wi_reader;

enum wi_status {
	WI_LINE,	/* *line holds a line, its newline removed */
	WI_EOF,		/* no more input */
	WI_TOO_LONG,	/* the line passed the limit and was skipped */
	WI_NO_NEWLINE,	/* *line is a last line cut short (no newline) */
	WI_IO_ERROR	/* read failed; errno says why */
};

/* Creates a reader of fd for lines of at most max_line bytes. */
struct wi_reader	*warm_input_open(int fd, size_t max_line);
/* Frees the reader (the descriptor stays open). */
void			 warm_input_close(struct wi_reader *r);
/*
 * Reads the next line.  *line stays valid until the next call and has a
 * writable byte after its end; *lineno is its 1-based number.
 */
enum wi_status		 warm_input_next(struct wi_reader *r, char **line,
			    size_t *len, unsigned long *lineno);
/* Returns the number of bytes consumed so far. */
uint64_t		 warm_input_offset(const struct wi_reader *r);

/* ---- warm_opts.c: the command line ---- */

enum warm_mode { WARM_SET, WARM_ADD, WARM_REPLACE };

struct warm_opts {
	const char	*servers;	/* -s: "host:port,..." */
	unsigned	 jobs;		/* -j: worker threads */
	uint32_t	 ttl;		/* --ttl: entries that give none */
	uint32_t	 jitter;	/* --jitter: seconds or percent */
	bool		 jitter_pct;	/* jitter is a percentage */
	uint32_t	 flags;		/* --flags: entries that give none */
	enum warm_mode	 mode;		/* --mode */
	const char	*exec;		/* --exec: command template */
	unsigned	 timeout_ms;	/* --timeout: per command */
	size_t		 item_max;	/* --item-max: largest value */
	size_t		 batch;		/* --batch: entries per pipeline */
	const char	*lock_path;	/* --lock; NULL with --no-lock */
	char		 lock_buf[256];	/* the default lock_path */
	bool		 strict;	/* --strict: a bad line aborts */
	bool		 dry_run;	/* --dry-run: never touch a server */
	bool		 quiet;		/* -q: no summary if all went well */
	int		 progress;	/* -1 auto (a tty), 0 never, 1 always */
	char *const	*inputs;	/* manifests; none: stdin */
	size_t		 ninputs;
};

enum warm_opts_result {
	WARM_OPTS_RUN,		/* o is filled: go */
	WARM_OPTS_HELP,		/* -h: print the usage, exit 0 */
	WARM_OPTS_VERSION,	/* -V: print the version, exit 0 */
	WARM_OPTS_ERROR		/* err says what is wrong: exit 64 */
};

/* Parses argv into o (getopt_long; resets optind first). */
enum warm_opts_result	warm_opts_parse(struct warm_opts *o, int argc,
			    char **argv, char *err, size_t errlen);
/* Returns the usage text. */
const char		*warm_usage(void);
/* The default lock path for a user (see warm_opts.c), written into buf. */
const char		*warm_default_lock(char *buf, size_t len,
			    const char *xdg, uid_t euid,
			    const char *runlock_dir);

/* ---- warm_queue.c: a bounded job queue drained by worker threads ---- */

struct wq;

/* Creates a queue holding at most cap jobs. */
struct wq	*warm_queue_create(size_t cap);
/* Frees an empty queue whose workers have been joined. */
void		 warm_queue_destroy(struct wq *q);
/* Queues job, waiting while the queue is full. */
void		 warm_queue_push(struct wq *q, void *job);
/* Takes the oldest job, waiting while empty; NULL once closed and empty. */
void		*warm_queue_pop(struct wq *q);
/* Says no job will follow: workers finish the queue, then stop. */
void		 warm_queue_close(struct wq *q);
/* Starts n workers running fn(arg); returns how many started. */
unsigned	 warm_queue_start(struct wq *q, unsigned n, void *(*fn)(void *),
		    void *arg);
/* Waits for every worker to return. */
void		 warm_queue_join(struct wq *q);

/* ---- warm_exec.c: a command per key, its stdout captured ---- */

enum we_result {
	WE_OK,		/* exited 0; out holds its stdout */
	WE_EXIT,	/* exited with status out->status != 0 */
	WE_SIGNAL,	/* killed by signal out->status */
	WE_TIMEOUT,	/* still running at the deadline: killed */
	WE_TOO_LARGE,	/* wrote more than the limit: killed */
	WE_STOPPED,	/* the run was stopped: killed */
	WE_ERROR	/* could not start it (errno in out->status) */
};

struct we_output {
	char	*data;		/* malloc'd stdout (WE_OK), else NULL */
	size_t	 len;
	int	 status;	/* exit status, signal or errno */
};

/*
 * Returns the command: tmpl with every "{}" replaced by the words, each
 * quoted for /bin/sh and separated by spaces (malloc'd; NULL if out of
 * memory or a word holds a NUL byte).
 */
char		*warm_exec_expand(const char *tmpl, const cc_arg *words, size_t n);
/*
 * Runs cmd with /bin/sh -c in a process group of its own, environment
 * envp, stdin from /dev/null and stderr inherited.  Kills the group when
 * timeout_ms pass, when stdout exceeds max_out bytes or when stop_fd
 * becomes readable.
 */
enum we_result	 warm_exec_run(const char *cmd, char *const envp[],
		    unsigned timeout_ms, size_t max_out, int stop_fd,
		    struct we_output *out);
/* Describes a result for a message ("exited with status 3"). */
void		 warm_exec_describe(enum we_result r, const struct we_output *out,
		    char *buf, size_t len);

/* ---- warm_report.c: counters, progress bar and summary ---- */

struct warm_report;

/* What a run did; every entry read ends stored, skipped or failed. */
struct warm_totals {
	uint64_t	 read;
	uint64_t	 stored;
	uint64_t	 skipped;
	uint64_t	 failed;
	uint64_t	 bytes;		/* value bytes stored */
};

enum warm_outcome { WARM_STORED, WARM_SKIPPED, WARM_FAILED };

/* Creates a report; progress draws a bar on stderr. */
struct warm_report	*warm_report_create(bool progress);
/* Frees the report. */
void			 warm_report_destroy(struct warm_report *r);
/* Counts one entry read. */
void			 warm_report_read(struct warm_report *r);
/* Counts one entry's outcome (bytes: its value, if stored). */
void			 warm_report_outcome(struct warm_report *r,
			    enum warm_outcome o, size_t bytes);
/* Sets how many input bytes there are (0: unknown) and how many are read. */
void			 warm_report_input(struct warm_report *r, uint64_t total,
			    uint64_t done);
/* Prints a message line on stderr, clearing the progress bar first. */
void			 warm_report_log(struct warm_report *r, const char *fmt, ...)
			    __attribute__((format(printf, 2, 3)));
/* Redraws the progress bar (if any). */
void			 warm_report_tick(struct warm_report *r);
/* Removes the progress bar and copies the totals; returns seconds run. */
double			 warm_report_finish(struct warm_report *r,
			    struct warm_totals *t);
/* Formats the one-line summary (no newline) into buf. */
void			 warm_report_summary(char *buf, size_t len,
			    const struct warm_totals *t, double elapsed,
			    bool dry_run);
/* Formats a progress bar line (no "\r") for the counts so far into buf. */
void			 warm_report_bar(char *buf, size_t len, uint64_t done,
			    uint64_t in_done, uint64_t in_total,
			    double elapsed);

/* ---- warm_run.c and warm_store.c: a run ---- */

/* Where an entry came from, for messages. */
struct warm_src {
	const char	*file;		/* "-" for stdin */
	unsigned long	 line;
};

/* One entry that owns its bytes: a memo entry or a computed one. */
struct warm_entry {
	struct warm_src	 src;
	bool		 memo;
	bool		 computed;
	char		 key[CC_KEY_MAX + 1];	/* plain entries */
	char		 ns[CC_NAME_MAX + 1];	/* memo entries */
	char		 fn[CC_NAME_MAX + 1];
	cc_arg		*args;
	size_t		 nargs;
	const void	*value;		/* literal value */
	size_t		 len;
	uint32_t	 ttl;		/* jitter already applied */
	uint32_t	 flags;
};

/* Literal plain entries stored together, pipelined. */
struct warm_batch {
	size_t		 n;
	size_t		 bytes;		/* value bytes held */
	struct cc_item	*items;
	struct warm_src	*srcs;
};

/* The state the workers share; only `stopping` changes once they run. */
struct warm_run {
	const struct warm_opts	*opts;
	cc_client		*client;	/* NULL on a dry run */
	struct warm_report	*report;
	int			 stop_fd;	/* readable once stopping */
	atomic_bool		 stopping;	/* a signal asked to stop */
};

/* An opened manifest. */
struct warm_input {
	const char	*name;		/* "-" for stdin */
	int		 fd;
	bool		 regular;	/* a regular file: size known, seekable */
	uint64_t	 size;
};

/*
 * What cc_memo_store adds to a value (the 16-byte envelope documented in
 * libcachedclient(3)): a memo value must fit the item limit with it.
 */
#define WARM_MEMO_OVERHEAD	16

/* Stores a batch and reports every item's outcome. */
void	warm_store_batch(struct warm_run *run, struct warm_batch *b);
/* Stores one entry with the value given and reports its outcome. */
void	warm_store_entry(struct warm_run *run, const struct warm_entry *e,
	    const void *value, size_t len);
/* Counts an entry that was not stored and says why. */
void	warm_store_fail(struct warm_run *run, const struct warm_src *src,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Reads the inputs and stores their entries with the workers; returns the
 * exit status.  run->opts, run->client and run->report must be set.
 */
int	warm_run(struct warm_run *run, const struct warm_input *in,
	    size_t nin);

#endif
