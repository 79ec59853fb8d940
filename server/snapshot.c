/*
 * snapshot.c -- warm restarts: loads the snapshot file at start-up
 * (blocking: the listeners are bound but nothing is accepted until the
 * load ends), writes one on a clean stop, and with an interval writes
 * one every so many seconds from a thread of its own while the workers
 * go on (the store's iteration holds a shard lock one bounded step at a
 * time, never across I/O).
 *
 * Data structure: one struct snapshotter per server; its counters are
 * atomics that "stats" reads from any worker.
 *
 * Locking: lock guards stop and the thread's timed sleep (cond); the
 * writer asks `stop` (atomic) between iteration steps so a stop does not
 * wait for a long write to finish.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "snapshot.h"
#include "store_snap.h"

struct snapshotter {
	store_t			*st;
	char			*path;
	unsigned		 interval;
	pthread_t		 thr;
	bool			 running;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;	/* stop set (with lock) */
	int			 stop;	/* atomic; written with lock held */
	struct snapshot_stats	 stats;	/* atomics */
};

#define SET(sn, f, v) __atomic_store_n(&(sn)->stats.f, (uint64_t)(v), \
	    __ATOMIC_RELAXED)
#define GET(sn, f) __atomic_load_n(&(sn)->stats.f, __ATOMIC_RELAXED)

/* Sets up snapshots to path. */
struct snapshotter *
snapshot_create(store_t *st, const char *path, unsigned interval)
{
	struct snapshotter *sn = calloc(1, sizeof *sn);
	pthread_condattr_t ca;

	if (sn == NULL || (sn->path = strdup(path)) == NULL) {
		free(sn);
		return NULL;
	}
	sn->st = st;
	sn->interval = interval;
	pthread_mutex_init(&sn->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sn->cond, &ca);
	pthread_condattr_destroy(&ca);
	return sn;
}

/* Loads the snapshot file, if any, and logs the outcome. */
void
snapshot_load(struct snapshotter *sn)
{
	struct snap_result	r;
	char			msg[256];

	log_msg(LOG_ERR, "snapshot %s: loading", sn->path);
	switch (store_snap_load(sn->st, sn->path, &r, msg, sizeof msg)) {
	case SNAP_NO_FILE:
		log_msg(LOG_ERR, "snapshot %s: no file, starting empty",
		    sn->path);
		break;
	case SNAP_BAD:
		SET(sn, load_errors, 1);
		log_msg(LOG_ERR, "snapshot %s: %s; ignored, starting empty",
		    sn->path, msg);
		break;
	case SNAP_LOADED:
		SET(sn, loaded_items, r.items);
		SET(sn, load_usec, r.usec);
		SET(sn, load_skipped, r.skipped_expired + r.skipped_large +
		    r.skipped_room);
		log_msg(LOG_ERR, "snapshot %s: loaded %llu items (%llu bytes "
		    "of keys and values) in %llu ms; skipped %llu expired or "
		    "flushed, %llu over -I, %llu older than what fits -m",
		    sn->path, (unsigned long long)r.items,
		    (unsigned long long)r.value_bytes,
		    (unsigned long long)(r.usec / 1000),
		    (unsigned long long)r.skipped_expired,
		    (unsigned long long)r.skipped_large,
		    (unsigned long long)r.skipped_room);
		break;
	}
}

/* store_snap_write's abort callback: a stop was asked for. */
static bool
asked_to_stop(void *ctx)
{
	struct snapshotter *sn = ctx;

	return __atomic_load_n(&sn->stop, __ATOMIC_RELAXED) != 0;
}

/* Writes one snapshot and counts it; periodic ones may be stopped. */
static int
write_one(struct snapshotter *sn, bool periodic)
{
	struct snap_result	r;
	char			msg[256];
	int			rc;

	SET(sn, in_progress, 1);
	rc = store_snap_write(sn->st, sn->path, periodic ? asked_to_stop :
	    NULL, sn, &r, msg, sizeof msg);
	SET(sn, in_progress, 0);
	if (rc != 0) {
		if (!(periodic && asked_to_stop(sn))) {
			SET(sn, errors, GET(sn, errors) + 1);
			log_msg(LOG_ERR, "snapshot %s: %s", sn->path, msg);
		}
		return -1;
	}
	SET(sn, written, GET(sn, written) + 1);
	SET(sn, last_time, time(NULL));
	SET(sn, last_usec, r.usec);
	SET(sn, last_bytes, r.bytes);
	SET(sn, last_items, r.items);
	log_msg(periodic ? LOG_INFO : LOG_ERR, "snapshot %s: wrote %llu items, "
	    "%llu bytes in %llu ms", sn->path, (unsigned long long)r.items,
	    (unsigned long long)r.bytes, (unsigned long long)(r.usec / 1000));
	return 0;
}

/* The periodic thread: a snapshot every interval until stopped. */
static void *
periodic_main(void *arg)
{
	struct snapshotter	*sn = arg;
	struct timespec		 due;

	pthread_mutex_lock(&sn->lock);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &due);
		due.tv_sec += sn->interval;
		while (!sn->stop && pthread_cond_timedwait(&sn->cond,
		    &sn->lock, &due) != ETIMEDOUT)
			;
		if (sn->stop)
			break;
		pthread_mutex_unlock(&sn->lock);
		write_one(sn, true);
		pthread_mutex_lock(&sn->lock);
	}
	pthread_mutex_unlock(&sn->lock);
	return NULL;
}

/* Starts the periodic thread if an interval was given. */
int
snapshot_start(struct snapshotter *sn)
{
	int rc;

	if (sn->interval == 0)
		return 0;
	if ((rc = pthread_create(&sn->thr, NULL, periodic_main, sn)) != 0)
		return rc;
	sn->running = true;
	return 0;
}

/* Stops the periodic thread and writes the final snapshot. */
int
snapshot_stop_and_save(struct snapshotter *sn)
{
	if (sn->running) {
		pthread_mutex_lock(&sn->lock);
		__atomic_store_n(&sn->stop, 1, __ATOMIC_RELAXED);
		pthread_cond_signal(&sn->cond);
		pthread_mutex_unlock(&sn->lock);
		pthread_join(sn->thr, NULL);
		sn->running = false;
	}
	return write_one(sn, false);
}

/* Frees it. */
void
snapshot_free(struct snapshotter *sn)
{
	if (sn == NULL)
		return;
	pthread_cond_destroy(&sn->cond);
	pthread_mutex_destroy(&sn->lock);
	free(sn->path);
	free(sn);
}

/* Copies the counters. */
void
snapshot_get_stats(struct snapshotter *sn, struct snapshot_stats *out)
{
	out->written = GET(sn, written);
	out->errors = GET(sn, errors);
	out->in_progress = GET(sn, in_progress);
	out->last_time = GET(sn, last_time);
	out->last_usec = GET(sn, last_usec);
	out->last_bytes = GET(sn, last_bytes);
	out->last_items = GET(sn, last_items);
	out->loaded_items = GET(sn, loaded_items);
	out->load_usec = GET(sn, load_usec);
	out->load_skipped = GET(sn, load_skipped);
	out->load_errors = GET(sn, load_errors);
}
