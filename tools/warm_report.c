/*
 * warm_report.c -- what cached-warm tells its operator: a message line per
 * entry that failed, a progress bar while stderr is a terminal (or with
 * --progress), and the one-line summary at the end.
 *
 * Data structure: atomic counters any worker bumps, plus the input
 * position the reader publishes.  The bar is redrawn from them by the
 * monitor thread; the summary and bar texts are built by pure functions.
 *
 * Locking: the counters are atomics (relaxed: they are only read for
 * display and after the workers are joined); one mutex serialises writes
 * to stderr so a message never lands in the middle of the bar.
 */
#include "config.h"

#include "warm.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BAR_WIDTH	24

struct warm_report {
	_Atomic uint64_t read, stored, skipped, failed, bytes;
	_Atomic uint64_t in_total, in_done;
	bool		 progress;
	bool		 bar_shown;	/* guarded by out */
	pthread_mutex_t	 out;
	struct timespec	 start;
};

/* Returns seconds since ts. */
static double
since(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - ts->tv_sec) +
	    (double)(now.tv_nsec - ts->tv_nsec) / 1e9;
}

/* Creates a report and starts its clock. */
struct warm_report *
warm_report_create(bool progress)
{
	struct warm_report *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->progress = progress;
	pthread_mutex_init(&r->out, NULL);
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	return r;
}

/* Frees the report. */
void
warm_report_destroy(struct warm_report *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->out);
	free(r);
}

/* Adds v to a counter. */
static void
add(_Atomic uint64_t *counter, uint64_t v)
{
	atomic_fetch_add_explicit(counter, v, memory_order_relaxed);
}

/* Reads a counter. */
static uint64_t
get(_Atomic uint64_t *counter)
{
	return atomic_load_explicit(counter, memory_order_relaxed);
}

/* Counts one entry read. */
void
warm_report_read(struct warm_report *r)
{
	add(&r->read, 1);
}

/* Counts one entry's outcome. */
void
warm_report_outcome(struct warm_report *r, enum warm_outcome o, size_t bytes)
{
	switch (o) {
	case WARM_STORED:
		add(&r->stored, 1);
		add(&r->bytes, bytes);
		break;
	case WARM_SKIPPED:
		add(&r->skipped, 1);
		break;
	case WARM_FAILED:
	default:
		add(&r->failed, 1);
		break;
	}
}

/* Publishes the input position. */
void
warm_report_input(struct warm_report *r, uint64_t total, uint64_t done)
{
	atomic_store_explicit(&r->in_total, total, memory_order_relaxed);
	atomic_store_explicit(&r->in_done, done, memory_order_relaxed);
}

/* Erases the bar; the caller holds r->out. */
static void
clear_bar(struct warm_report *r)
{
	if (r->bar_shown) {
		fputs("\r\033[K", stderr);
		r->bar_shown = false;
	}
}

/* Prints one message line on stderr. */
void
warm_report_log(struct warm_report *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->out);
	clear_bar(r);
	fputs("cached-warm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&r->out);
}

/* Formats h:mm:ss (or m:ss) of t seconds. */
static void
clock_text(char *buf, size_t len, double t)
{
	unsigned long s = t > 0 && t < 1e9 ? (unsigned long)(t + 0.5) : 0;

	if (s >= 3600)
		snprintf(buf, len, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60,
		    s % 60);
	else
		snprintf(buf, len, "%lu:%02lu", s / 60, s % 60);
}

/* Formats a progress bar line. */
void
warm_report_bar(char *buf, size_t len, uint64_t done, uint64_t in_done,
    uint64_t in_total, double elapsed)
{
	char	bar[BAR_WIDTH + 1], eta[32], el[32];
	double	rate = elapsed > 0 ? (double)done / elapsed : 0, frac;
	int	i, fill;

	clock_text(el, sizeof el, elapsed);
	if (in_total == 0) {
		snprintf(buf, len, "%llu entries  %.0f/s  %s",
		    (unsigned long long)done, rate, el);
		return;
	}
	frac = in_done >= in_total ? 1.0 : (double)in_done / (double)in_total;
	fill = (int)(frac * BAR_WIDTH);
	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[BAR_WIDTH] = '\0';
	if (frac > 0)
		clock_text(eta, sizeof eta, elapsed * (1 - frac) / frac);
	else
		snprintf(eta, sizeof eta, "?");
	snprintf(buf, len, "[%s] %3.0f%%  %llu entries  %.0f/s  ETA %s", bar,
	    frac * 100, (unsigned long long)done, rate, eta);
}

/* Redraws the bar. */
void
warm_report_tick(struct warm_report *r)
{
	char		line[160];
	uint64_t	done;

	if (!r->progress)
		return;
	done = get(&r->stored) + get(&r->skipped) + get(&r->failed);
	warm_report_bar(line, sizeof line, done, get(&r->in_done),
	    get(&r->in_total), since(&r->start));
	pthread_mutex_lock(&r->out);
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	r->bar_shown = true;
	pthread_mutex_unlock(&r->out);
}

/* Removes the bar and copies the totals. */
double
warm_report_finish(struct warm_report *r, struct warm_totals *t)
{
	pthread_mutex_lock(&r->out);
	clear_bar(r);
	fflush(stderr);
	pthread_mutex_unlock(&r->out);
	t->read = get(&r->read);
	t->stored = get(&r->stored);
	t->skipped = get(&r->skipped);
	t->failed = get(&r->failed);
	t->bytes = get(&r->bytes);
	return since(&r->start);
}

/* Formats the summary line. */
void
warm_report_summary(char *buf, size_t len, const struct warm_totals *t,
    double elapsed, bool dry_run)
{
	uint64_t	done = t->stored + t->skipped + t->failed;
	double		secs = elapsed > 0.001 ? elapsed : 0.001;

	snprintf(buf, len, "cached-warm: %sread %llu, %s %llu, skipped %llu, "
	    "failed %llu, bytes %llu, elapsed %.3f s, rate %.0f/s",
	    dry_run ? "dry run: " : "", (unsigned long long)t->read,
	    dry_run ? "valid" : "stored", (unsigned long long)t->stored,
	    (unsigned long long)t->skipped, (unsigned long long)t->failed,
	    (unsigned long long)t->bytes, elapsed, (double)done / secs);
}
