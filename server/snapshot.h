/*
 * snapshot.h -- warm restarts for the server (issue 15): load the
 * snapshot file at start-up, write one on a clean stop, and with
 * -o snapshot_interval=S one every S seconds from a background thread.
 * The file format and its guarantees are the store's (store_snap.h).
 */
#ifndef CACHED_SNAPSHOT_H
#define CACHED_SNAPSHOT_H

#include <stdint.h>

#include "store.h"

struct snapshotter;

/* What "stats" reports; times are unix seconds, 0 for never. */
struct snapshot_stats {
	uint64_t	written;	/* snapshots written */
	uint64_t	errors;		/* writes that failed */
	uint64_t	in_progress;	/* 1 while one is being written */
	uint64_t	last_time;	/* when the last good one finished */
	uint64_t	last_usec;	/* how long it took */
	uint64_t	last_bytes;
	uint64_t	last_items;
	uint64_t	loaded_items;	/* at start-up */
	uint64_t	load_usec;
	uint64_t	load_skipped;	/* expired, too large, no room */
	uint64_t	load_errors;	/* 1 if the file was refused */
};

/* Sets up snapshots to path for st; NULL on allocation failure. */
struct snapshotter *snapshot_create(store_t *st, const char *path,
	    unsigned interval);
/* Loads the file into the (empty) store, blocking; logs what it did.  A
 * missing file is a first start; a bad one is logged and skipped. */
void	snapshot_load(struct snapshotter *sn);
/* Starts the periodic thread if an interval was given; 0 or errno. */
int	snapshot_start(struct snapshotter *sn);
/* Stops the periodic thread (a write under way is abandoned) and writes
 * the final snapshot; the store must have no writers left.  0 or -1. */
int	snapshot_stop_and_save(struct snapshotter *sn);
/* Frees it; the thread must be stopped. */
void	snapshot_free(struct snapshotter *sn);
/* Copies the counters. */
void	snapshot_get_stats(struct snapshotter *sn, struct snapshot_stats *out);

#endif
