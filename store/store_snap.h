/*
 * store_snap.h -- snapshots of the store for warm restarts (issue 15):
 * write every live item to a file, load such a file into a new store.
 *
 * The file (format version 2, documented in man/cached.1 and at the top
 * of store_snap.c; version 1 is read too) is a 64-byte header, then
 * blocks of whole items, each with its own CRC32C, then an end block
 * with the totals.  A file is taken only whole: a missing end block, a
 * bad checksum, a foreign magic or a version not read makes the loader
 * refuse the file before it stores one item, so a warm start is either
 * everything the snapshot held or a cold start, never part of a value.
 *
 * Writing walks the store with store_iter_next_refs a bounded step at a
 * time, copies the items into a block buffer, drops the references and
 * only then writes: no store lock is held across I/O, and writers go on.
 * The file is written as PATH.tmp in the same directory, fsynced,
 * renamed over PATH, and the directory fsynced.
 *
 * Libraries never print: both calls return a status and fill a message.
 */
#ifndef CACHED_STORE_SNAP_H
#define CACHED_STORE_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The version written, and the oldest one read. */
#define SNAP_VERSION		2
#define SNAP_VERSION_MIN	1

/* What a write or a load did. */
struct snap_result {
	uint64_t	items;		/* written, or loaded */
	uint64_t	bytes;		/* file bytes written or read */
	uint64_t	value_bytes;	/* key + value bytes of those items */
	uint64_t	skipped_expired; /* load: expired or flushed by now */
	uint64_t	skipped_large;	/* load: over the new -I */
	uint64_t	skipped_room;	/* load: older than what fits -m */
	uint64_t	max_cas;	/* highest CAS in the file */
	uint64_t	usec;		/* how long it took */
};

/* Outcome of a load. */
enum snap_load_status {
	SNAP_LOADED,		/* the file was loaded (maybe 0 items) */
	SNAP_NO_FILE,		/* there is no file: a first start */
	SNAP_BAD,		/* refused (msg says why): start cold */
};

/* Called between the steps of a write; true aborts it (a stop). */
typedef bool (*snap_abort_fn)(void *ctx);

/*
 * Writes a snapshot of every live item of st to path (through path.tmp,
 * fsynced and renamed).  abort, if not NULL, is asked between steps.
 * Returns 0, or -1 with msg set (the old file at path is kept).
 */
int	store_snap_write(store_t *st, const char *path, snap_abort_fn abort,
	    void *abort_ctx, struct snap_result *res, char *msg, size_t msglen);

/*
 * Loads the snapshot at path into st (a new, empty store, which nothing
 * else uses until the call returns): skips items expired or flushed by
 * now and those over the store's item_size_max; when the items need
 * more memory than st's limit, loads the most recently accessed ones
 * that fit.  Re-arms a flush_all still pending at the snapshot's time,
 * and raises every shard's CAS counter above the file's highest CAS.
 * An empty st takes the hash seed of the store that wrote the file.
 */
enum snap_load_status store_snap_load(store_t *st, const char *path,
	    struct snap_result *res, char *msg, size_t msglen);

/* The same from a buffer holding a whole file (fuzzing, tests). */
enum snap_load_status store_snap_load_mem(store_t *st, const uint8_t *buf,
	    size_t len, struct snap_result *res, char *msg, size_t msglen);

/* Threads a load uses at most: 0 (the default) for one per CPU; at
 * most 8.  Tests set it to run the threaded paths on any machine. */
void	store_snap_load_threads(unsigned n);

/* CRC32C (Castagnoli) of buf, continuing from crc (0 to start). */
uint32_t store_crc32c(uint32_t crc, const void *buf, size_t len);
/* The portable table-driven version (tests compare the two). */
uint32_t store_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Snapshot support in the store proper (store.c). */
/* Raises every shard's CAS counter to at least cas. */
void	 store_cas_floor(store_t *st, uint64_t cas);
/* The unix time a pending (delayed, not yet due) flush_all takes effect,
 * or 0 if none is pending. */
uint32_t store_flush_pending(store_t *st);
/* The store's clock, its memory limit and largest value. */
uint32_t store_clock_now(store_t *st);
size_t	 store_mem_limit(const store_t *st);
size_t	 store_item_size_max(const store_t *st);

/*
 * Iteration that also hands out references (store_iter.c): as
 * store_iter_next, and refs[i] gets a reference to the item out[i]
 * describes, which the caller copies the value from and releases with
 * store_release soon (it pins the item's segment).
 */
size_t	 store_iter_next_refs(store_t *st, struct store_iter *cur,
	    struct store_iter_entry *out, item_t **refs, size_t max);

#endif
