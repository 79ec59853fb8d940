/*
 * store_snap.c -- snapshot files for warm restarts: the writer, the
 * reader and CRC32C (store_snap.h says what a snapshot guarantees).
 *
 * File format, version 2 (all integers little-endian; man/cached.1 has
 * the same table):
 *
 *   header, 64 bytes
 *     0  8  magic "CACHEDSN"
 *     8  4  format version (2)
 *    12  4  header length (64)
 *    16  8  unix time the snapshot was started
 *    24  4  unix time a pending flush_all takes effect, 0 for none
 *    28  8  the writing store's hash seed (version 1: zero)
 *    36 24  zero
 *    60  4  CRC32C of bytes 0..59
 *   blocks, one after the other, each a 16-byte header and a payload:
 *     0  4  type: 1 items, 2 end
 *     4  4  payload length
 *     8  4  records in the payload (end block: 0)
 *    12  4  CRC32C of bytes 0..11 of this header, then of the payload
 *   an items payload is records back to back, each
 *     0  4  exptime, absolute unix time, 0 for never
 *     4  4  last access, unix time
 *     8  4  client flags
 *    12  4  value length
 *    16  8  CAS (1 .. 2^55-1)
 *    24  1  key length (1 .. 250)
 *    25     key, then value
 *   the end block's payload is 32 bytes: items, item blocks, key+value
 *   bytes and the highest CAS, 8 bytes each; it ends the file.
 *
 * Version 1 is version 2 without the seed; both are read.
 *
 * Items come in the store's hash order (store_iter.c: shard by shard,
 * bucket by bucket).  Blocks hold whole items, about SNAP_BLOCK bytes of
 * them; a larger item has a block of its own, written straight from the
 * item's memory.
 *
 * Reading: the file is mapped and checked whole first (every checksum,
 * every record's bounds, the end block's totals, nothing after it), and
 * only then loaded: a file that fails any check loads nothing.  The
 * check walks the block headers, then up to SNAP_LOAD_THREADS threads
 * (one per CPU) check the blocks; the same threads then load them, each
 * from a contiguous range of its own first.  A load into an empty store
 * takes the writer's hash seed, so the records arrive in the new store's
 * own table order, and sizes the tables for them up front; items are
 * carved straight from the file into segments and linked in runs of one
 * shard per lock hold (store_ready, stage_flush).  When the items to load
 * need more than ~85% of the store's limit (a smaller -m), their (access
 * time, offset) pairs are sorted and only the most recently accessed
 * ones that fit are loaded, oldest first in chunks the threads take in
 * turn, so the FIFO order of the new store follows their age.
 *
 * Locking: none of its own.  The writer takes shard locks only inside
 * store_iter_next_refs, and holds at most SNAP_BATCH item references (no
 * lock) while it copies values and writes.  The loaders take a shard
 * lock per run of items of that shard, and the arena and pool locks
 * inside item_new.
 */
#include "store_internal.h"
#include "store_snap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define SNAP_MAGIC	"CACHEDSN"
#define SNAP_HDR	64
#define SNAP_BHDR	16
#define SNAP_REC	25
#define SNAP_END_LEN	32
#define SNAP_T_ITEMS	1
#define SNAP_T_END	2
/* Item bytes per block (a larger item gets a block of its own). */
#define SNAP_BLOCK	(1024 * 1024)
/* Items copied per iteration step. */
#define SNAP_BATCH	64
/* Threads a load spreads the blocks over, at most. */
#define SNAP_LOAD_THREADS	8
/* Share of the memory limit, in percent, a load fills at most before it
 * picks the most recently accessed items. */
#define SNAP_FILL_PCT	85

/* ---- CRC32C ------------------------------------------------------------ */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* Fills the slice-by-8 tables of the reflected Castagnoli polynomial. */
static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
			    crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* CRC32C, eight bytes at a time through the tables. */
uint32_t
store_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	pthread_once(&crc_once, crc_init);
	while (len >= 8) {
		uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);

		c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		    crc_table[1][p[6]] ^ crc_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
	return ~c;
}

/*
 * Combining CRCs of pieces (after zlib's crc32_combine): the CRC register
 * is linear, so the register after A then B is the register after A
 * moved over len(B) zero bytes, XOR B's register started from 0.  Moving
 * over n zero bytes multiplies by x^(8n) modulo the polynomial.
 */
#define CRC_POLY	0x82f63b78u

/* a * b modulo the polynomial (reflected: bit 31 is x^0). */
static uint32_t
crc_multmodp(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	for (;;) {
		if (a & m) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = b & 1 ? (b >> 1) ^ CRC_POLY : b >> 1;
	}
	return p;
}

/* x^(8n) modulo the polynomial: what moving over n zero bytes
 * multiplies the register by. */
static uint32_t
crc_zeros_op(size_t n)
{
	uint32_t p = 1u << 31, sq = 1u << 30;	/* 1 and x */

	for (n *= 8; n != 0; n >>= 1) {
		if (n & 1)
			p = crc_multmodp(sq, p);
		sq = crc_multmodp(sq, sq);
	}
	return p;
}

#if defined(__x86_64__)
/*
 * CRC32C with SSE 4.2's crc32 instruction.  One crc32 depends on the one
 * before (3 cycles each), so long buffers run three independent lanes of
 * CRC_LANE bytes at once and combine them (above) with two constant
 * multiplications per 3 lanes: about three times the speed of one lane.
 */
#define CRC_LANE	(16 * 1024)

static uint32_t crc_lane_op[2];		/* x^(8 * CRC_LANE), x^(16 * ...) */
static pthread_once_t crc_lane_once = PTHREAD_ONCE_INIT;

static void
crc_lane_init(void)
{
	crc_lane_op[0] = crc_zeros_op(CRC_LANE);
	crc_lane_op[1] = crc_zeros_op(2 * CRC_LANE);
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;
	uint64_t v, v1, v2, c1, c2;

	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * CRC_LANE)
		pthread_once(&crc_lane_once, crc_lane_init);
	while (len >= 3 * CRC_LANE) {
		c1 = c2 = 0;
		for (size_t i = 0; i < CRC_LANE; i += 8) {
			memcpy(&v, p + i, 8);
			memcpy(&v1, p + CRC_LANE + i, 8);
			memcpy(&v2, p + 2 * CRC_LANE + i, 8);
			c = _mm_crc32_u64(c, v);
			c1 = _mm_crc32_u64(c1, v1);
			c2 = _mm_crc32_u64(c2, v2);
		}
		c = crc_multmodp(crc_lane_op[1], (uint32_t)c) ^
		    crc_multmodp(crc_lane_op[0], (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * CRC_LANE;
		len -= 3 * CRC_LANE;
	}
	while (len >= 8) {
		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

/* CRC32C of buf continuing from crc: the instruction if the CPU has it. */
uint32_t
store_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	static int hw = -1;

	if (__atomic_load_n(&hw, __ATOMIC_RELAXED) < 0)
		__atomic_store_n(&hw, __builtin_cpu_supports("sse4.2") ? 1 : 0,
		    __ATOMIC_RELAXED);
	if (hw)
		return crc_hw(crc, buf, len);
#endif
	return store_crc32c_sw(crc, buf, len);
}

/* ---- little-endian fields ---------------------------------------------- */

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Formats a message into the caller's buffer. */
static void
setmsg(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
setmsg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (msg == NULL || msglen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

/* Microseconds of the monotonic clock. */
static uint64_t
usec_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- store hooks ------------------------------------------------------- */

/* Raises every shard's CAS counter to at least cas. */
void
store_cas_floor(store_t *st, uint64_t cas)
{
	for (unsigned i = 0; i < st->nshards; i++) {
		struct shard *sh = &st->shards[i];

		shard_lock(sh);
		if (sh->cas_last < cas)
			sh->cas_last = cas;
		shard_unlock(sh);
	}
}

/* The time a delayed flush_all takes effect, 0 if none is pending. */
uint32_t
store_flush_pending(store_t *st)
{
	uint64_t w = atomic_load_explicit(&st->flush_word,
	    memory_order_acquire);
	uint32_t due = (uint32_t)w;

	return w != 0 && due > store_now(st) ? due : 0;
}

uint32_t
store_clock_now(store_t *st)
{
	return store_now(st);
}

size_t
store_mem_limit(const store_t *st)
{
	return st->mem_limit;
}

size_t
store_item_size_max(const store_t *st)
{
	return st->item_size_max;
}

/* ---- writer ------------------------------------------------------------ */

struct writer {
	int		 fd;
	uint8_t		*buf;		/* SNAP_BHDR + SNAP_BLOCK bytes */
	size_t		 len;		/* payload bytes in buf */
	uint32_t	 nrec;
	uint64_t	 off;		/* file bytes written */
	uint64_t	 blocks;
	int		 err;		/* errno of the first failure */
};

/* Writes iov fully; false (w->err set) on failure. */
static bool
write_all(struct writer *w, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t r = writev(w->fd, iov, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			w->err = errno;
			return false;
		}
		w->off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return true;
}

/* Fills a block header for a payload whose CRC (seeded by the header's
 * first 12 bytes) the caller passes through crc_payload. */
static void
block_header(uint8_t *h, uint32_t type, uint32_t len, uint32_t nrec,
    const struct iovec *payload, int n)
{
	uint32_t crc;

	put32(h, type);
	put32(h + 4, len);
	put32(h + 8, nrec);
	crc = store_crc32c(0, h, 12);
	for (int i = 0; i < n; i++)
		crc = store_crc32c(crc, payload[i].iov_base,
		    payload[i].iov_len);
	put32(h + 12, crc);
}

/* Writes the buffered block, if any. */
static bool
block_flush(struct writer *w)
{
	struct iovec iov[2];

	if (w->nrec == 0)
		return true;
	iov[1] = (struct iovec){ w->buf + SNAP_BHDR, w->len };
	block_header(w->buf, SNAP_T_ITEMS, (uint32_t)w->len, w->nrec,
	    &iov[1], 1);
	iov[0] = (struct iovec){ w->buf, SNAP_BHDR + w->len };
	w->len = 0;
	w->nrec = 0;
	w->blocks++;
	return write_all(w, iov, 1);
}

/* Encodes a record's fixed part and key. */
static void
record_head(uint8_t *p, const struct store_iter_entry *e)
{
	put32(p, e->exptime);
	put32(p + 4, e->atime);
	put32(p + 8, e->flags);
	put32(p + 12, e->nbytes);
	put64(p + 16, e->cas);
	p[24] = (uint8_t)e->nkey;
	memcpy(p + SNAP_REC, e->key, e->nkey);
}

/* Adds one item to the snapshot. */
static bool
record_add(struct writer *w, const struct store_iter_entry *e,
    const char *value)
{
	size_t need = SNAP_REC + e->nkey + e->nbytes;
	uint8_t head[SNAP_BHDR + SNAP_REC + STORE_KEY_MAX];
	struct iovec iov[3];

	if (need > SNAP_BLOCK / 2) {
		/* A big item: a block of its own, from the item's memory. */
		if (!block_flush(w))
			return false;
		record_head(head + SNAP_BHDR, e);
		iov[1] = (struct iovec){ head + SNAP_BHDR,
		    SNAP_REC + e->nkey };
		iov[2] = (struct iovec){ (void *)(uintptr_t)value, e->nbytes };
		block_header(head, SNAP_T_ITEMS, (uint32_t)need, 1, &iov[1], 2);
		iov[0] = (struct iovec){ head, SNAP_BHDR };
		w->blocks++;
		return write_all(w, iov, 3);
	}
	if (w->len + need > SNAP_BLOCK && !block_flush(w))
		return false;
	record_head(w->buf + SNAP_BHDR + w->len, e);
	memcpy(w->buf + SNAP_BHDR + w->len + SNAP_REC + e->nkey, value,
	    e->nbytes);
	w->len += need;
	w->nrec++;
	return true;
}

/* Writes the file header. */
static bool
header_write(struct writer *w, uint64_t created, uint32_t flush_due,
    uint64_t seed)
{
	uint8_t h[SNAP_HDR] = { 0 };
	struct iovec iov;

	memcpy(h, SNAP_MAGIC, 8);
	put32(h + 8, SNAP_VERSION);
	put32(h + 12, SNAP_HDR);
	put64(h + 16, created);
	put32(h + 24, flush_due);
	put64(h + 28, seed);
	put32(h + 60, store_crc32c(0, h, 60));
	iov = (struct iovec){ h, sizeof h };
	return write_all(w, &iov, 1);
}

/* Writes the end block with the totals. */
static bool
end_write(struct writer *w, const struct snap_result *r)
{
	uint8_t b[SNAP_BHDR + SNAP_END_LEN];
	struct iovec iov;

	put64(b + SNAP_BHDR, r->items);
	put64(b + SNAP_BHDR + 8, w->blocks);
	put64(b + SNAP_BHDR + 16, r->value_bytes);
	put64(b + SNAP_BHDR + 24, r->max_cas);
	iov = (struct iovec){ b + SNAP_BHDR, SNAP_END_LEN };
	block_header(b, SNAP_T_END, SNAP_END_LEN, 0, &iov, 1);
	iov = (struct iovec){ b, sizeof b };
	return write_all(w, &iov, 1);
}

/* Walks the store into the open file; false on failure or abort. */
static bool
write_items(store_t *st, struct writer *w, snap_abort_fn abort,
    void *abort_ctx, struct snap_result *r, bool *aborted)
{
	struct store_iter_entry	*ents;
	item_t			*refs[SNAP_BATCH];
	struct store_iter	 cur;
	size_t			 n, i;
	bool			 ok = true;

	if ((ents = malloc(sizeof *ents * SNAP_BATCH)) == NULL) {
		w->err = ENOMEM;
		return false;
	}
	store_iter_init(&cur);
	while (ok && !cur.done) {
		if (abort != NULL && abort(abort_ctx)) {
			*aborted = true;
			ok = false;
			break;
		}
		n = store_iter_next_refs(st, &cur, ents, refs, SNAP_BATCH);
		for (i = 0; i < n; i++) {
			if (ok)
				ok = record_add(w, &ents[i],
				    item_value(refs[i]));
			if (ok) {
				r->items++;
				r->value_bytes += ents[i].nkey + ents[i].nbytes;
				if (ents[i].cas > r->max_cas)
					r->max_cas = ents[i].cas;
			}
			store_release(st, refs[i]);
		}
	}
	free(ents);
	return ok && block_flush(w);
}

/* fsyncs the directory holding path, so a rename in it is durable. */
static int
dir_sync(const char *path)
{
	char	*dir = strdup(path), *slash;
	int	 fd, rc = -1;

	if (dir == NULL)
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = fsync(fd);
		/* Some filesystems cannot fsync a directory: not an error. */
		if (rc != 0 && (errno == EINVAL || errno == EBADF))
			rc = 0;
		close(fd);
	}
	free(dir);
	return rc;
}

/* Writes a snapshot of st to path through path.tmp. */
int
store_snap_write(store_t *st, const char *path, snap_abort_fn abort,
    void *abort_ctx, struct snap_result *res, char *msg, size_t msglen)
{
	struct snap_result	 r = { 0 };
	struct writer		 w = { .fd = -1 };
	char			*tmp;
	bool			 aborted = false, ok;
	uint64_t		 t0 = usec_now();
	size_t			 plen = strlen(path);

	if ((tmp = malloc(plen + 5)) == NULL ||
	    (w.buf = malloc(SNAP_BHDR + SNAP_BLOCK)) == NULL) {
		free(tmp);
		setmsg(msg, msglen, "out of memory");
		return -1;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w.fd < 0) {
		setmsg(msg, msglen, "cannot create %s: %s", tmp,
		    strerror(errno));
		free(tmp);
		free(w.buf);
		return -1;
	}
	ok = header_write(&w, store_now(st), store_flush_pending(st),
	    st->seed) &&
	    write_items(st, &w, abort, abort_ctx, &r, &aborted) &&
	    end_write(&w, &r);
	if (ok && fsync(w.fd) != 0) {
		w.err = errno;
		ok = false;
	}
	if (close(w.fd) != 0 && ok) {
		w.err = errno;
		ok = false;
	}
	if (ok && rename(tmp, path) != 0) {
		setmsg(msg, msglen, "cannot rename %s to %s: %s", tmp, path,
		    strerror(errno));
		unlink(tmp);
		free(tmp);
		free(w.buf);
		return -1;
	}
	if (!ok) {
		if (aborted)
			setmsg(msg, msglen, "stopped before the end");
		else
			setmsg(msg, msglen, "cannot write %s: %s", tmp,
			    strerror(w.err));
		unlink(tmp);
		free(tmp);
		free(w.buf);
		return -1;
	}
	free(tmp);
	free(w.buf);
	if (dir_sync(path) != 0) {
		setmsg(msg, msglen, "cannot sync the directory of %s: %s",
		    path, strerror(errno));
		return -1;
	}
	r.bytes = w.off;
	r.usec = usec_now() - t0;
	if (res != NULL)
		*res = r;
	return 0;
}

/* ---- reader ------------------------------------------------------------ */

/* One record as the reader sees it, pointing into the file. */
struct rec {
	uint32_t	 exptime;
	uint32_t	 atime;
	uint32_t	 flags;
	uint32_t	 nbytes;
	uint64_t	 cas;
	uint8_t		 nkey;
	const char	*key;
	const char	*value;
};

/* Decodes a record of a checked file (rec_decode found it sound); its
 * length. */
static size_t
rec_read(const uint8_t *p, struct rec *r)
{
	r->exptime = get32(p);
	r->atime = get32(p + 4);
	r->flags = get32(p + 8);
	r->nbytes = get32(p + 12);
	r->cas = get64(p + 16);
	r->nkey = p[24];
	r->key = (const char *)p + SNAP_REC;
	r->value = r->key + r->nkey;
	return SNAP_REC + (size_t)r->nkey + r->nbytes;
}

/* Decodes the record at p, of at most avail bytes; its length, or 0 if
 * it is malformed. */
static size_t
rec_decode(const uint8_t *p, size_t avail, struct rec *r)
{
	size_t len;

	if (avail < SNAP_REC)
		return 0;
	len = rec_read(p, r);
	if (r->nkey == 0 || r->nkey > STORE_KEY_MAX || r->cas == 0 ||
	    r->cas > STORE_CAS_MAX || len > avail)
		return 0;
	for (unsigned i = 0; i < r->nkey; i++)
		if ((unsigned char)r->key[i] <= ' ' || r->key[i] == 0x7f)
			return 0;
	return len;
}

/* An items block the walk found. */
struct blk {
	size_t		off;		/* of its header */
	uint32_t	plen;
	uint32_t	nrec;
};

/* Why a block fails its check. */
enum blk_bad {
	BLK_OK,
	BLK_CRC,
	BLK_RECORD,
};

/*
 * Blocks handed out to threads: each thread has a contiguous range of
 * its own (records come in hash order, shard by shard, so two threads in
 * different ranges seldom want the same shard lock), and one done with
 * its range helps with the others'.
 */
struct work {
	_Atomic size_t	 next[SNAP_LOAD_THREADS];
	size_t		 end[SNAP_LOAD_THREADS];
	unsigned	 n;
};

/* Where a record is and when it was last used, to pick the newest. */
struct age {
	uint32_t	atime;
	uint32_t	cost;
	uint64_t	off;
};

/* The reader's state over one mapped file. */
struct reader {
	store_t		*st;
	const uint8_t	*buf;
	size_t		 len;
	uint32_t	 version;
	uint32_t	 flush_due;
	uint64_t	 seed;		/* the writer's hash seed (version 2) */
	uint32_t	 now;
	size_t		 small_max;
	size_t		 item_max;
	struct blk	*blocks;	/* the items blocks, in file order */
	size_t		 nblocks;
	size_t		 blocks_cap;
	size_t		 end_off;	/* the end block's header */
	uint32_t	 max_nrec;	/* most records in one block */
	bool		 nomem;		/* the walk ran out of memory */
	unsigned	 nthreads;
	struct work	 work;
	_Atomic size_t	 bad;		/* lowest failing block, or SIZE_MAX */
	/* Totals of the check. */
	uint64_t	 items;		/* records in the file */
	uint64_t	 vbytes;	/* their key + value bytes */
	uint64_t	 want;		/* records that would load */
	uint64_t	 want_cost;	/* memory those would take */
	uint64_t	 max_cas;
	/* load_newest's list: ages[from..nages) load, in chunks in order. */
	struct age	*ages;
	size_t		 nages;
	size_t		 from;
	_Atomic size_t	 next_chunk;
	struct snap_result *r;
	char		*msg;
	size_t		 msglen;
};

/* An item carved, waiting for its value and to be linked. */
struct staged {
	item_t		*it;
	const char	*value;		/* in the file */
	uint64_t	 hv;
	uint64_t	 cas;
};

/* One thread's part of a check or a load; summed when all are done. */
struct worker {
	struct reader	*rd;
	unsigned	 t;
	/* check */
	size_t		 bad;		/* its lowest failing block */
	enum blk_bad	 why;
	uint64_t	 items, vbytes, want, want_cost, max_cas;
	/* load */
	struct staged	*stage;
	size_t		 nstage;
	size_t		 stage_cap;
	uint32_t	 now;
	struct snap_result r;
};

/* Threads a load may use, 0 for one per CPU (store_snap_load_threads). */
static _Atomic unsigned load_threads_max;

void
store_snap_load_threads(unsigned n)
{
	atomic_store(&load_threads_max, n > SNAP_LOAD_THREADS ?
	    SNAP_LOAD_THREADS : n);
}

/* Threads for units of work: the CPUs (or the set maximum), at most
 * SNAP_LOAD_THREADS and at most one per unit. */
static unsigned
load_threads(size_t units)
{
	unsigned max = atomic_load(&load_threads_max);
	long cpus;

	if (max == 0) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		max = cpus < 1 ? 1 : cpus > SNAP_LOAD_THREADS ?
		    SNAP_LOAD_THREADS : (unsigned)cpus;
	}
	return units < max ? (units < 1 ? 1 : (unsigned)units) : max;
}

/* Runs fn for every worker, on threads of their own but the first,
 * which runs on the caller's; a thread that cannot be started has its
 * worker run on the caller's afterwards. */
static void
run_workers(struct worker *w, unsigned n, void *(*fn)(void *))
{
	pthread_t	thr[SNAP_LOAD_THREADS];
	bool		started[SNAP_LOAD_THREADS] = { false };

	for (unsigned t = 1; t < n; t++)
		started[t] = pthread_create(&thr[t], NULL, fn, &w[t]) == 0;
	fn(&w[0]);
	for (unsigned t = 1; t < n; t++) {
		if (started[t])
			pthread_join(thr[t], NULL);
		else
			fn(&w[t]);
	}
}

/* Splits units 0..total-1 into n contiguous ranges. */
static void
work_init(struct work *w, size_t total, unsigned n)
{
	w->n = n;
	for (unsigned t = 0; t < n; t++) {
		atomic_init(&w->next[t], total * t / n);
		w->end[t] = total * (t + 1) / n;
	}
}

/* The next unit for thread t: from its own range, then the others'. */
static bool
work_take(struct work *w, unsigned t, size_t *out)
{
	for (unsigned k = 0; k < w->n; k++) {
		unsigned u = (t + k) % w->n;
		size_t i;

		if (atomic_load_explicit(&w->next[u], memory_order_relaxed) >=
		    w->end[u])
			continue;
		i = atomic_fetch_add_explicit(&w->next[u], 1,
		    memory_order_relaxed);
		if (i < w->end[u]) {
			*out = i;
			return true;
		}
	}
	return false;
}

/* True if a record is to be loaded at now; counts why not in r (if not
 * NULL). */
static bool
rec_wanted(const struct reader *rd, const struct rec *c, uint32_t now,
    struct snap_result *r)
{
	if (time_passed(c->exptime, now)) {
		if (r != NULL)
			r->skipped_expired++;
		return false;
	}
	if (c->nbytes > rd->item_max) {
		if (r != NULL)
			r->skipped_large++;
		return false;
	}
	return true;
}

/* Memory a record's item will take (roughly as the store charges). */
static uint64_t
rec_cost(const struct reader *rd, const struct rec *c)
{
	size_t sz = ITEM_SIZE_X(c->nkey, c->nbytes,
	    ITEM_EXT(c->flags, c->exptime));

	if (sz <= rd->small_max)
		return sz;
	return (sz + SEG_HDR + 16 + 4095) & ~(size_t)4095;
}

/* ---- reader: the check ------------------------------------------------- */

/* Checks the header; false (msg set) if the file is not one we read. */
static bool
header_check(struct reader *rd)
{
	const uint8_t *b = rd->buf;

	if (rd->len == 0) {
		setmsg(rd->msg, rd->msglen, "empty file");
		return false;
	}
	if (rd->len < 8 || memcmp(b, SNAP_MAGIC, 8) != 0) {
		setmsg(rd->msg, rd->msglen, "not a cached snapshot (bad magic)");
		return false;
	}
	if (rd->len < SNAP_HDR || get32(b + 60) != store_crc32c(0, b, 60)) {
		setmsg(rd->msg, rd->msglen, "bad header (truncated or corrupt)");
		return false;
	}
	rd->version = get32(b + 8);
	if (rd->version < SNAP_VERSION_MIN || rd->version > SNAP_VERSION ||
	    get32(b + 12) != SNAP_HDR) {
		setmsg(rd->msg, rd->msglen, "format version %u, this cached "
		    "reads versions %u to %u", rd->version, SNAP_VERSION_MIN,
		    SNAP_VERSION);
		return false;
	}
	rd->flush_due = get32(b + 24);
	rd->seed = rd->version >= 2 ? get64(b + 28) : 0;
	return true;
}

/* Finds the blocks from their headers alone (type and length), up to
 * the end block; false (msg set) at the first header that is wrong. */
static bool
walk(struct reader *rd)
{
	const uint8_t	*b = rd->buf;
	size_t		 off = SNAP_HDR, plen;
	uint32_t	 type;

	for (;;) {
		if (rd->len - off < SNAP_BHDR) {
			setmsg(rd->msg, rd->msglen, "truncated at byte %zu "
			    "(no end block)", rd->len);
			return false;
		}
		type = get32(b + off);
		plen = get32(b + off + 4);
		if ((type != SNAP_T_ITEMS && type != SNAP_T_END) ||
		    plen > rd->len - off - SNAP_BHDR) {
			setmsg(rd->msg, rd->msglen, "%s block at byte %zu",
			    plen > rd->len - off - SNAP_BHDR ? "truncated" :
			    "bad", off);
			return false;
		}
		if (type == SNAP_T_END) {
			rd->end_off = off;
			return true;
		}
		if (rd->nblocks == rd->blocks_cap) {
			size_t cap = rd->blocks_cap ? 2 * rd->blocks_cap : 256;
			struct blk *nb = realloc(rd->blocks, cap * sizeof *nb);

			if (nb == NULL) {
				setmsg(rd->msg, rd->msglen, "out of memory");
				rd->nomem = true;
				return false;
			}
			rd->blocks = nb;
			rd->blocks_cap = cap;
		}
		rd->blocks[rd->nblocks++] = (struct blk){ off, (uint32_t)plen,
		    get32(b + off + 8) };
		off += SNAP_BHDR + plen;
	}
}

/* Checks one items block, its checksum and every record, and adds what
 * it holds to w's totals. */
static enum blk_bad
block_check(struct worker *w, const struct blk *k)
{
	const struct reader *rd = w->rd;
	const uint8_t	*p = rd->buf + k->off;
	size_t		 used, l;
	uint32_t	 n;
	struct rec	 c;

	if (store_crc32c(store_crc32c(0, p, 12), p + SNAP_BHDR, k->plen) !=
	    get32(p + 12))
		return BLK_CRC;
	p += SNAP_BHDR;
	for (used = 0, n = 0; used < k->plen; n++) {
		l = rec_decode(p + used, k->plen - used, &c);
		if (l == 0 || n == k->nrec)
			break;
		used += l;
		w->vbytes += c.nkey + c.nbytes;
		if (c.cas > w->max_cas)
			w->max_cas = c.cas;
		if (rec_wanted(rd, &c, rd->now, NULL)) {
			w->want++;
			w->want_cost += rec_cost(rd, &c);
		}
	}
	if (used != k->plen || n != k->nrec || k->nrec == 0)
		return BLK_RECORD;
	w->items += k->nrec;
	return BLK_OK;
}

/* A checking thread: blocks until none is left below the lowest known
 * failure. */
static void *
check_main(void *arg)
{
	struct worker	*w = arg;
	struct reader	*rd = w->rd;
	enum blk_bad	 why;
	size_t		 i, cur;

	while (work_take(&rd->work, w->t, &i)) {
		if (i > atomic_load_explicit(&rd->bad, memory_order_relaxed))
			continue;
		if ((why = block_check(w, &rd->blocks[i])) == BLK_OK)
			continue;
		if (i < w->bad) {
			w->bad = i;
			w->why = why;
		}
		cur = atomic_load(&rd->bad);
		while (i < cur && !atomic_compare_exchange_weak(&rd->bad,
		    &cur, i))
			;
	}
	return NULL;
}

/*
 * Checks the whole file; true if it is sound (rd->msg set if not).  The
 * headers are walked first; the blocks, checksums and records, are then
 * checked by up to one thread per CPU.  The error reported is the first
 * in file order, as a check from the front would find it.
 */
static bool
verify(struct reader *rd)
{
	struct worker	 w[SNAP_LOAD_THREADS];
	const uint8_t	*b = rd->buf;
	bool		 walked;
	size_t		 off, bad = SIZE_MAX;
	enum blk_bad	 why = BLK_OK;
	unsigned	 n;

	if (!header_check(rd))
		return false;
	walked = walk(rd);
	if (!walked && rd->nomem)
		return false;
	n = load_threads(rd->nblocks);
	work_init(&rd->work, rd->nblocks, n);
	atomic_init(&rd->bad, SIZE_MAX);
	for (unsigned t = 0; t < n; t++)
		w[t] = (struct worker){ .rd = rd, .t = t, .bad = SIZE_MAX };
	run_workers(w, n, check_main);
	for (unsigned t = 0; t < n; t++) {
		if (w[t].bad < bad) {
			bad = w[t].bad;
			why = w[t].why;
		}
		rd->items += w[t].items;
		rd->vbytes += w[t].vbytes;
		rd->want += w[t].want;
		rd->want_cost += w[t].want_cost;
		if (w[t].max_cas > rd->max_cas)
			rd->max_cas = w[t].max_cas;
	}
	if (bad != SIZE_MAX) {
		setmsg(rd->msg, rd->msglen, "%s in the block at byte %zu",
		    why == BLK_CRC ? "bad checksum" : "bad record",
		    rd->blocks[bad].off);
		return false;
	}
	if (!walked)
		return false;	/* the walk's message */
	for (size_t i = 0; i < rd->nblocks; i++)
		if (rd->blocks[i].nrec > rd->max_nrec)
			rd->max_nrec = rd->blocks[i].nrec;
	off = rd->end_off;
	if (store_crc32c(store_crc32c(0, b + off, 12), b + off + SNAP_BHDR,
	    get32(b + off + 4)) != get32(b + off + 12)) {
		setmsg(rd->msg, rd->msglen, "bad checksum in the block at "
		    "byte %zu", off);
		return false;
	}
	if (get32(b + off + 4) != SNAP_END_LEN || get32(b + off + 8) != 0 ||
	    off + SNAP_BHDR + SNAP_END_LEN != rd->len) {
		setmsg(rd->msg, rd->msglen, "end block at byte %zu does not "
		    "match the file", off);
		return false;
	}
	off += SNAP_BHDR;
	if (get64(b + off) != rd->items || get64(b + off + 8) != rd->nblocks ||
	    get64(b + off + 16) != rd->vbytes ||
	    get64(b + off + 24) != rd->max_cas) {
		setmsg(rd->msg, rd->msglen, "end block at byte %zu does not "
		    "match the file", off - SNAP_BHDR);
		return false;
	}
	return true;
}

/* ---- reader: the load -------------------------------------------------- */

/*
 * Items go into the store by a path of their own, not through
 * store_reserve and store_commit: an item is carved straight from the
 * thread's arena (one copy of the value, from the mapped file), and the
 * items of a block are linked in runs that share a shard under one hold
 * of its lock.  Linking is a set with the record's CAS (as ms with E),
 * so a key the file holds twice ends with its later record, and a
 * record that finds no room without evicting goes the usual way
 * (rec_load_slow), which makes room.
 */

/* Stores one record through the store's commands, evicting if need be. */
static void
rec_load_slow(struct worker *w, const struct rec *c)
{
	struct store_mset_opts	 o = { .has_new_cas = true, .new_cas = c->cas };
	store_t			*st = w->rd->st;
	store_status_t		 s;
	item_t			*it;
	int64_t			 exp = 0;

	if (c->exptime != 0) {
		/* A relative time when it can be one, so a store whose clock
		 * is near 0 (tests) reads it right. */
		exp = (int64_t)c->exptime - w->now;
		if (exp > STORE_REALTIME_MAXDELTA)
			exp = c->exptime;
	}
	s = store_reserve(st, c->key, c->nkey, c->flags, exp, c->nbytes, &it);
	if (s == STORE_TOO_LARGE) {
		w->r.skipped_large++;
		return;
	}
	if (s != STORE_OK) {
		w->r.skipped_room++;
		return;
	}
	memcpy(item_value_mut(it), c->value, c->nbytes);
	if (store_commit_meta(st, it, STORE_SET, &o, NULL) == STORE_STORED) {
		w->r.items++;
		w->r.value_bytes += c->nkey + c->nbytes;
	} else
		w->r.skipped_room++;
}

/*
 * Fills the staged items' values, then links them in runs of one shard
 * per lock hold.  Carving, copying and linking each in a loop of its own
 * keeps a locked instruction (the arena's lock, the shard's) from
 * waiting on every value's stores to reach the cache.
 */
static void
stage_flush(struct worker *w)
{
	store_t		*st = w->rd->st;
	struct shard	*sh = NULL, *next;
	struct staged	*s;
	item_t		*old;
	uint32_t	 now = 0;
	bool		 expired;

	for (size_t i = 0; i < w->nstage; i++) {
		s = &w->stage[i];
		memcpy(item_value_mut(s->it), s->value, s->it->nbytes);
		s->hv = key_hash(st, item_key(s->it), item_nkey(s->it));
	}
	for (size_t i = 0; i < w->nstage; i++) {
		s = &w->stage[i];
		next = &st->shards[shard_index(st, s->hv)];
		if (next != sh) {
			if (sh != NULL)
				shard_unlock(sh);
			sh = next;
			shard_lock(sh);
			now = store_now(st);
			flush_sync(st, sh, now);
		}
		/* shard_enter's upkeep but for shrinking: a presized table
		 * is nearly empty at first, and needs none. */
		if (ht_rehashing(sh))
			ht_rehash_step(st, sh, 1, REHASH_EMPTY_VISITS);
		else
			ht_maybe_grow(sh);
		shard_admit_cas(st, sh, true, s->cas);
		old = lookup_live(st, sh, s->hv, item_key(s->it),
		    item_nkey(s->it), now);
		if (!new_cas_ok(sh, s->cas)) {
			store_release(st, s->it);
			w->r.skipped_room++;
			continue;
		}
		expired = time_passed(item_exptime(s->it), now);
		if (expired)
			w->r.skipped_expired++;
		else {
			w->r.items++;
			w->r.value_bytes += item_nkey(s->it) + s->it->nbytes;
		}
		/* Links it (or only drops old, if it expired meanwhile). */
		item_replace_cas(st, sh, old, s->it, s->hv, now, s->cas, NULL);
	}
	if (sh != NULL)
		shard_unlock(sh);
	w->nstage = 0;
}

/* Carves a record's item (header and key) and stages it. */
static void
stage_rec(struct worker *w, const struct rec *c)
{
	item_t	*it;

	if (!rec_wanted(w->rd, c, w->now, &w->r))
		return;
	it = item_new(w->rd->st, c->key, c->nkey, c->flags, c->exptime,
	    c->nbytes);
	if (it == NULL) {
		/* No room without evicting: what is staged goes first, so
		 * a later record of a key still wins. */
		stage_flush(w);
		rec_load_slow(w, c);
		return;
	}
	assert(w->nstage < w->stage_cap);
	w->stage[w->nstage++] = (struct staged){ .it = it, .value = c->value,
	    .cas = c->cas };
}

/* A loading thread: whole blocks, its range first. */
static void *
load_blocks_main(void *arg)
{
	struct worker	*w = arg;
	struct reader	*rd = w->rd;
	const uint8_t	*p;
	size_t		 i, used, l;
	struct rec	 c;

	while (work_take(&rd->work, w->t, &i)) {
		p = rd->buf + rd->blocks[i].off + SNAP_BHDR;
		w->now = store_now(rd->st);
		for (used = 0; used < rd->blocks[i].plen; used += l) {
			l = rec_read(p + used, &c);
			stage_rec(w, &c);
		}
		stage_flush(w);
	}
	return NULL;
}

/* Records per unit of the newest-first load, taken in age order, so the
 * store's FIFO follows the age. */
#define SNAP_AGE_CHUNK	1024

/* A loading thread of load_newest: chunks of the age list, in order. */
static void *
load_ages_main(void *arg)
{
	struct worker	*w = arg;
	struct reader	*rd = w->rd;
	size_t		 k, i, end;
	struct rec	 c;

	while ((k = atomic_fetch_add(&rd->next_chunk, 1)) <
	    (rd->nages - rd->from + SNAP_AGE_CHUNK - 1) / SNAP_AGE_CHUNK) {
		i = rd->from + k * SNAP_AGE_CHUNK;
		end = i + SNAP_AGE_CHUNK < rd->nages ? i + SNAP_AGE_CHUNK :
		    rd->nages;
		w->now = store_now(rd->st);
		for (; i < end; i++) {
			rec_read(rd->buf + rd->ages[i].off, &c);
			stage_rec(w, &c);
		}
		stage_flush(w);
	}
	return NULL;
}

/* Runs a load on n workers with staging room for cap records each and
 * adds up their counts; false if out of memory. */
static bool
load_run(struct reader *rd, unsigned n, size_t cap, void *(*fn)(void *))
{
	struct worker w[SNAP_LOAD_THREADS];
	bool ok = true;

	for (unsigned t = 0; t < n; t++) {
		w[t] = (struct worker){ .rd = rd, .t = t, .stage_cap = cap };
		w[t].stage = malloc(sizeof *w[t].stage * (cap ? cap : 1));
		if (w[t].stage == NULL)
			ok = false;
	}
	if (ok)
		run_workers(w, n, fn);
	for (unsigned t = 0; t < n; t++) {
		free(w[t].stage);
		rd->r->items += w[t].r.items;
		rd->r->value_bytes += w[t].r.value_bytes;
		rd->r->skipped_expired += w[t].r.skipped_expired;
		rd->r->skipped_large += w[t].r.skipped_large;
		rd->r->skipped_room += w[t].r.skipped_room;
	}
	return ok;
}

/*
 * Gets the store ready for items: takes the file's hash seed while the
 * store is empty, so the records, which come in the writer's hash order,
 * arrive shard by shard and bucket by bucket (a thread's shard table and
 * the chains it walks stay in its cache), and sizes every shard's table
 * for its share of them, as growing would have, so no insert rehashes.
 */
static void
store_ready(struct reader *rd, uint64_t items)
{
	store_t	*st = rd->st;
	bool	 empty = true;
	size_t	 per = (size_t)(items / st->nshards);

	for (unsigned i = 0; i < st->nshards; i++) {
		struct shard *sh = &st->shards[i];

		shard_lock(sh);
		if (sh->ht[0].used != 0 || ht_rehashing(sh))
			empty = false;
		shard_unlock(sh);
	}
	if (empty && rd->seed != 0)
		st->seed = rd->seed;
	/* An eighth over the mean: shards differ by a few per cent. */
	per += per / 8;
	for (unsigned i = 0; i < st->nshards && per > 0; i++) {
		shard_lock(&st->shards[i]);
		ht_presize(&st->shards[i], per);
		shard_unlock(&st->shards[i]);
	}
}

/* Loads every block, spread over threads (the order of items across
 * blocks does not matter when all fit). */
static void
load_all(struct reader *rd)
{
	unsigned n = load_threads(rd->nblocks);

	store_ready(rd, rd->want);
	work_init(&rd->work, rd->nblocks, n);
	if (!load_run(rd, n, rd->max_nrec, load_blocks_main) && n > 1) {
		work_init(&rd->work, rd->nblocks, 1);
		load_run(rd, 1, rd->max_nrec, load_blocks_main);
	}
}

/* Orders by access time, then file position. */
static int
age_cmp(const void *a, const void *b)
{
	const struct age *x = a, *y = b;

	if (x->atime != y->atime)
		return x->atime < y->atime ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Lists the records that would load, with their age and cost. */
static void
ages_list(struct reader *rd, size_t cap)
{
	size_t		off, used, l;
	struct rec	c;
	uint64_t	cost;

	for (size_t i = 0; i < rd->nblocks; i++) {
		off = rd->blocks[i].off + SNAP_BHDR;
		for (used = 0; used < rd->blocks[i].plen; used += l) {
			l = rec_read(rd->buf + off + used, &c);
			if (rd->nages == cap ||
			    !rec_wanted(rd, &c, rd->now, rd->r))
				continue;
			cost = rec_cost(rd, &c);
			rd->ages[rd->nages++] = (struct age){ c.atime,
			    cost > UINT32_MAX ? UINT32_MAX : (uint32_t)cost,
			    off + used };
		}
	}
}

/*
 * Loads the most recently accessed records that fit in budget bytes:
 * which ones is decided first, from the sorted list; one thread takes
 * the list oldest first, so the store's FIFO (what is evicted first if
 * the estimate falls short) follows the age.  False if out of memory
 * (the caller loads in file order and lets eviction choose).
 */
static bool
load_newest(struct reader *rd, uint64_t budget)
{
	uint64_t	sum = 0;
	size_t		from;
	unsigned	n;

	if (rd->want > SIZE_MAX / sizeof *rd->ages ||
	    (rd->ages = malloc(sizeof *rd->ages * (size_t)(rd->want + 1))) ==
	    NULL)
		return false;
	ages_list(rd, (size_t)rd->want + 1);
	qsort(rd->ages, rd->nages, sizeof *rd->ages, age_cmp);
	for (from = rd->nages; from > 0 &&
	    sum + rd->ages[from - 1].cost <= budget; from--)
		sum += rd->ages[from - 1].cost;
	rd->r->skipped_room += from;
	rd->from = from;
	atomic_init(&rd->next_chunk, 0);
	store_ready(rd, rd->nages - from);
	/* One thread: the estimate can fall short of what the items take
	 * (each thread's arena has open segments of its own), and then
	 * eviction takes the FIFO's oldest segments, which are the oldest
	 * items only if one thread filled them in age order (with four,
	 * items a second newer than some that stayed were evicted under
	 * ASan).  This path runs only on a restart with a smaller -m. */
	n = 1;
	load_run(rd, n, SNAP_AGE_CHUNK, load_ages_main);
	free(rd->ages);
	rd->ages = NULL;
	return true;
}

/* Loads a snapshot held in memory. */
enum snap_load_status
store_snap_load_mem(store_t *st, const uint8_t *buf, size_t len,
    struct snap_result *res, char *msg, size_t msglen)
{
	struct snap_result	r = { 0 };
	struct reader		rd = { .st = st, .buf = buf, .len = len,
				    .r = &r, .msg = msg, .msglen = msglen,
				    .small_max = st->pool.small_max,
				    .item_max = st->item_size_max };
	uint64_t		t0 = usec_now(), budget;
	uint32_t		due;

	rd.now = store_now(st);
	if (!verify(&rd)) {
		free(rd.blocks);
		if (res != NULL)
			*res = r;
		return SNAP_BAD;
	}
	budget = (uint64_t)st->mem_limit / 100 * SNAP_FILL_PCT;
	pool_prefault(&st->pool, true);
	if (rd.want_cost <= budget || !load_newest(&rd, budget)) {
		r = (struct snap_result){ 0 };
		load_all(&rd);
	}
	pool_prefault(&st->pool, false);
	free(rd.blocks);
	r.max_cas = rd.max_cas;
	store_cas_floor(st, rd.max_cas);
	rd.now = store_now(st);
	due = rd.flush_due;
	if (due > rd.now)
		store_flush(st, due - rd.now <= STORE_REALTIME_MAXDELTA ?
		    (int64_t)(due - rd.now) : (int64_t)due);
	r.bytes = len;
	r.usec = usec_now() - t0;
	if (res != NULL)
		*res = r;
	return SNAP_LOADED;
}

/* Maps the file at path and loads it. */
enum snap_load_status
store_snap_load(store_t *st, const char *path, struct snap_result *res,
    char *msg, size_t msglen)
{
	enum snap_load_status	 s;
	struct stat		 sb;
	void			*m;
	int			 fd;

	if (res != NULL)
		*res = (struct snap_result){ 0 };
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return SNAP_NO_FILE;
		setmsg(msg, msglen, "cannot open: %s", strerror(errno));
		return SNAP_BAD;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		setmsg(msg, msglen, "%s", fstat(fd, &sb) != 0 ?
		    strerror(errno) : S_ISDIR(sb.st_mode) ?
		    "is a directory" : "not a regular file");
		close(fd);
		return SNAP_BAD;
	}
	if (sb.st_size == 0) {
		close(fd);
		return store_snap_load_mem(st, (const uint8_t *)"", 0, res,
		    msg, msglen);
	}
	if ((uint64_t)sb.st_size > SIZE_MAX ||
	    (m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE |
	    MAP_POPULATE, fd, 0)) == MAP_FAILED) {
		setmsg(msg, msglen, "cannot map: %s", strerror(errno));
		close(fd);
		return SNAP_BAD;
	}
	close(fd);
	madvise(m, (size_t)sb.st_size, MADV_SEQUENTIAL);
	madvise(m, (size_t)sb.st_size, MADV_WILLNEED);
	s = store_snap_load_mem(st, m, (size_t)sb.st_size, res, msg, msglen);
	munmap(m, (size_t)sb.st_size);
	return s;
}
