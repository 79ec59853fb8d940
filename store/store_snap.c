/*
 * store_snap.c -- snapshot files for warm restarts: the writer, the
 * reader and CRC32C (store_snap.h says what a snapshot guarantees).
 *
 * File format, version 1 (all integers little-endian; man/cached.1 has
 * the same table):
 *
 *   header, 64 bytes
 *     0  8  magic "CACHEDSN"
 *     8  4  format version (1)
 *    12  4  header length (64)
 *    16  8  unix time the snapshot was started
 *    24  4  unix time a pending flush_all takes effect, 0 for none
 *    28 32  zero
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
 * Items come in the store's hash order.  Blocks hold whole items, about
 * SNAP_BLOCK bytes of them; a larger item has a block of its own, written
 * straight from the item's memory.
 *
 * Reading: the file is mapped and checked whole first (every checksum,
 * every record's bounds, the end block's totals, nothing after it), and
 * only then loaded: a file that fails any check loads nothing.  Blocks
 * are loaded by up to SNAP_LOAD_THREADS threads (one per CPU), each
 * taking whole blocks in turn.  When the
 * items to load need more than ~85% of the store's limit (a smaller -m),
 * their (access time, offset) pairs are sorted and only the most recently
 * accessed ones that fit are loaded, oldest first, so the FIFO order of
 * the new store matches their age.
 *
 * Locking: none of its own.  The writer takes shard locks only inside
 * store_iter_next_refs, and holds at most SNAP_BATCH item references (no
 * lock) while it copies values and writes.
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

#if defined(__x86_64__)
/* CRC32C with SSE 4.2's crc32 instruction. */
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;
	uint64_t v;

	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
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
header_write(struct writer *w, uint64_t created, uint32_t flush_due)
{
	uint8_t h[SNAP_HDR] = { 0 };
	struct iovec iov;

	memcpy(h, SNAP_MAGIC, 8);
	put32(h + 8, SNAP_VERSION);
	put32(h + 12, SNAP_HDR);
	put64(h + 16, created);
	put32(h + 24, flush_due);
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
	ok = header_write(&w, store_now(st), store_flush_pending(st)) &&
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

/* Decodes the record at p, of at most avail bytes; its length, or 0 if
 * it is malformed. */
static size_t
rec_decode(const uint8_t *p, size_t avail, struct rec *r)
{
	size_t len;

	if (avail < SNAP_REC)
		return 0;
	r->exptime = get32(p);
	r->atime = get32(p + 4);
	r->flags = get32(p + 8);
	r->nbytes = get32(p + 12);
	r->cas = get64(p + 16);
	r->nkey = p[24];
	len = SNAP_REC + (size_t)r->nkey + r->nbytes;
	if (r->nkey == 0 || r->nkey > STORE_KEY_MAX || r->cas == 0 ||
	    r->cas > STORE_CAS_MAX || len > avail)
		return 0;
	r->key = (const char *)p + SNAP_REC;
	r->value = r->key + r->nkey;
	for (unsigned i = 0; i < r->nkey; i++)
		if ((unsigned char)r->key[i] <= ' ' || r->key[i] == 0x7f)
			return 0;
	return len;
}

struct ages;

/* The reader's state over one mapped file. */
struct reader {
	store_t		*st;
	const uint8_t	*buf;
	size_t		 len;
	uint32_t	 flush_due;
	uint32_t	 now;
	size_t		 small_max;
	uint64_t	 items;		/* records in the file */
	uint64_t	 want;		/* records that would load */
	uint64_t	 want_cost;	/* memory those would take */
	uint64_t	 max_cas;
	struct ages	*ages;		/* load_newest's list */
	size_t		*blocks;	/* offsets of the items blocks */
	size_t		 nblocks;
	size_t		 blocks_cap;
	_Atomic size_t	*next_block;	/* parallel load: next to take */
	struct snap_result *r;
	char		*msg;
	size_t		 msglen;
};

/* True if a record is to be loaded now; counts why not. */
static bool
rec_wanted(struct reader *rd, const struct rec *c, bool count)
{
	if (time_passed(c->exptime, rd->now)) {
		if (count)
			rd->r->skipped_expired++;
		return false;
	}
	if (c->nbytes > store_item_size_max(rd->st)) {
		if (count)
			rd->r->skipped_large++;
		return false;
	}
	return true;
}

/* Memory a record's item will take (roughly as the store charges). */
static uint64_t
rec_cost(const struct reader *rd, const struct rec *c)
{
	size_t sz = ITEM_SIZE(c->nkey, c->nbytes);

	if (sz <= rd->small_max)
		return sz;
	return (sz + SEG_HDR + 16 + 4095) & ~(size_t)4095;
}

/* Checks the whole file; true if it is sound (rd->msg set if not). */
static bool
verify(struct reader *rd)
{
	const uint8_t	*b = rd->buf;
	size_t		 off = SNAP_HDR, plen, used;
	uint32_t	 type, nrec, n;
	uint64_t	 blocks = 0, vbytes = 0;
	struct rec	 c;

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
	if (get32(b + 8) != SNAP_VERSION || get32(b + 12) != SNAP_HDR) {
		setmsg(rd->msg, rd->msglen, "format version %u, this cached "
		    "reads version %u", get32(b + 8), SNAP_VERSION);
		return false;
	}
	rd->flush_due = get32(b + 24);
	for (;;) {
		if (rd->len - off < SNAP_BHDR) {
			setmsg(rd->msg, rd->msglen, "truncated at byte %zu "
			    "(no end block)", rd->len);
			return false;
		}
		type = get32(b + off);
		plen = get32(b + off + 4);
		nrec = get32(b + off + 8);
		if ((type != SNAP_T_ITEMS && type != SNAP_T_END) ||
		    plen > rd->len - off - SNAP_BHDR) {
			setmsg(rd->msg, rd->msglen, "%s block at byte %zu",
			    plen > rd->len - off - SNAP_BHDR ? "truncated" :
			    "bad", off);
			return false;
		}
		if (store_crc32c(store_crc32c(0, b + off, 12),
		    b + off + SNAP_BHDR, plen) != get32(b + off + 12)) {
			setmsg(rd->msg, rd->msglen, "bad checksum in the block "
			    "at byte %zu", off);
			return false;
		}
		off += SNAP_BHDR;
		if (type == SNAP_T_END)
			break;
		for (used = 0, n = 0; used < plen; n++) {
			size_t l = rec_decode(b + off + used, plen - used, &c);

			if (l == 0 || n == nrec)
				break;
			used += l;
			vbytes += c.nkey + c.nbytes;
			if (c.cas > rd->max_cas)
				rd->max_cas = c.cas;
			if (rec_wanted(rd, &c, false)) {
				rd->want++;
				rd->want_cost += rec_cost(rd, &c);
			}
		}
		if (used != plen || n != nrec || nrec == 0) {
			setmsg(rd->msg, rd->msglen, "bad record in the block at "
			    "byte %zu", off - SNAP_BHDR);
			return false;
		}
		rd->items += nrec;
		blocks++;
		if (rd->nblocks == rd->blocks_cap) {
			size_t cap = rd->blocks_cap ? 2 * rd->blocks_cap : 256;
			size_t *nb = realloc(rd->blocks, cap * sizeof *nb);

			if (nb == NULL) {
				setmsg(rd->msg, rd->msglen, "out of memory");
				return false;
			}
			rd->blocks = nb;
			rd->blocks_cap = cap;
		}
		rd->blocks[rd->nblocks++] = off - SNAP_BHDR;
		off += plen;
	}
	if (plen != SNAP_END_LEN || nrec != 0 || off + plen != rd->len ||
	    get64(b + off) != rd->items || get64(b + off + 8) != blocks ||
	    get64(b + off + 16) != vbytes || get64(b + off + 24) != rd->max_cas) {
		setmsg(rd->msg, rd->msglen, "end block at byte %zu does not "
		    "match the file", off - SNAP_BHDR);
		return false;
	}
	return true;
}

/* Stores one record. */
static void
rec_load(struct reader *rd, const struct rec *c)
{
	struct store_mset_opts	 o = { .has_new_cas = true, .new_cas = c->cas };
	store_status_t		 s;
	item_t			*it;
	int64_t			 exp = 0;

	if (!rec_wanted(rd, c, true))
		return;
	if (c->exptime != 0) {
		/* A relative time when it can be one, so a store whose clock
		 * is near 0 (tests) reads it right. */
		exp = (int64_t)c->exptime - rd->now;
		if (exp > STORE_REALTIME_MAXDELTA)
			exp = c->exptime;
	}
	s = store_reserve(rd->st, c->key, c->nkey, c->flags, exp, c->nbytes,
	    &it);
	if (s == STORE_TOO_LARGE) {
		rd->r->skipped_large++;
		return;
	}
	if (s != STORE_OK) {
		rd->r->skipped_room++;
		return;
	}
	memcpy(item_value_mut(it), c->value, c->nbytes);
	if (store_commit_meta(rd->st, it, STORE_SET, &o, NULL) ==
	    STORE_STORED) {
		rd->r->items++;
		rd->r->value_bytes += c->nkey + c->nbytes;
	} else
		rd->r->skipped_room++;
}

/* Calls fn for every record, in file order (the file is verified). */
static void
each_record(struct reader *rd, void (*fn)(struct reader *, const struct rec *,
    size_t))
{
	size_t		off = SNAP_HDR, plen, used, l;
	struct rec	c;

	for (;;) {
		if (get32(rd->buf + off) == SNAP_T_END)
			return;
		plen = get32(rd->buf + off + 4);
		off += SNAP_BHDR;
		for (used = 0; used < plen; used += l) {
			l = rec_decode(rd->buf + off + used, plen - used, &c);
			fn(rd, &c, off + used);
		}
		off += plen;
	}
}

/* A loading thread: takes whole blocks until none is left. */
static void *
load_blocks(void *arg)
{
	struct reader	*rd = arg;
	size_t		 i, off, plen, used, l;
	struct rec	 c;

	while ((i = atomic_fetch_add(rd->next_block, 1)) < rd->nblocks) {
		off = rd->blocks[i];
		plen = get32(rd->buf + off + 4);
		off += SNAP_BHDR;
		rd->now = store_now(rd->st);
		for (used = 0; used < plen; used += l) {
			l = rec_decode(rd->buf + off + used, plen - used, &c);
			rec_load(rd, &c);
		}
	}
	return NULL;
}

/* Threads a load uses: the CPUs, at most SNAP_LOAD_THREADS. */
static unsigned
load_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > SNAP_LOAD_THREADS ? SNAP_LOAD_THREADS :
	    (unsigned)n;
}

/* Loads every block in file order, blocks spread over threads (the
 * order of items across blocks does not matter when all fit). */
static void
load_all(struct reader *rd)
{
	struct reader	 sub[SNAP_LOAD_THREADS];
	struct snap_result res[SNAP_LOAD_THREADS];
	pthread_t	 thr[SNAP_LOAD_THREADS];
	bool		 started[SNAP_LOAD_THREADS] = { false };
	_Atomic size_t	 next = 0;
	unsigned	 n = load_threads();

	for (unsigned t = 0; t < n; t++) {
		sub[t] = *rd;
		res[t] = (struct snap_result){ 0 };
		sub[t].r = &res[t];
		sub[t].next_block = &next;
		if (t > 0)
			started[t] = pthread_create(&thr[t], NULL, load_blocks,
			    &sub[t]) == 0;
	}
	load_blocks(&sub[0]);
	for (unsigned t = 0; t < n; t++) {
		if (t > 0 && started[t])
			pthread_join(thr[t], NULL);
		if (t > 0 && !started[t] && next < rd->nblocks)
			load_blocks(&sub[t]);
		rd->r->items += res[t].items;
		rd->r->value_bytes += res[t].value_bytes;
		rd->r->skipped_expired += res[t].skipped_expired;
		rd->r->skipped_large += res[t].skipped_large;
		rd->r->skipped_room += res[t].skipped_room;
	}
}

/* Where a record is and when it was last used, to pick the newest. */
struct age {
	uint32_t	atime;
	uint32_t	cost;
	uint64_t	off;
};

struct ages {
	struct age	*v;
	size_t		 n;
	size_t		 cap;
};

/* Orders by access time, then file position. */
static int
age_cmp(const void *a, const void *b)
{
	const struct age *x = a, *y = b;

	if (x->atime != y->atime)
		return x->atime < y->atime ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* each_record callback: notes a record that would load. */
static void
age_note(struct reader *rd, const struct rec *c, size_t off)
{
	struct ages *a = rd->ages;
	uint64_t cost;

	if (a->n == a->cap || !rec_wanted(rd, c, true))
		return;
	cost = rec_cost(rd, c);
	a->v[a->n++] = (struct age){ c->atime,
	    cost > UINT32_MAX ? UINT32_MAX : (uint32_t)cost, off };
}

/* Loads the most recently accessed records that fit in budget bytes,
 * oldest first; false if out of memory (the caller loads in file order
 * and lets eviction choose). */
static bool
load_newest(struct reader *rd, uint64_t budget)
{
	struct ages	a = { 0 };
	uint64_t	sum = 0;
	size_t		from;
	struct rec	c;

	if (rd->want > SIZE_MAX / sizeof *a.v ||
	    (a.v = malloc(sizeof *a.v * (size_t)(rd->want + 1))) == NULL)
		return false;
	a.cap = (size_t)rd->want + 1;
	rd->ages = &a;
	each_record(rd, age_note);
	rd->ages = NULL;
	qsort(a.v, a.n, sizeof *a.v, age_cmp);
	for (from = a.n; from > 0 && sum + a.v[from - 1].cost <= budget; from--)
		sum += a.v[from - 1].cost;
	rd->r->skipped_room += from;
	for (size_t i = from; i < a.n; i++) {
		if ((i & 1023) == 0)
			rd->now = store_now(rd->st);
		rec_decode(rd->buf + a.v[i].off, rd->len - a.v[i].off, &c);
		rec_load(rd, &c);
	}
	free(a.v);
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
				    .small_max = st->pool.small_max };
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
	if (rd.want_cost <= budget || !load_newest(&rd, budget)) {
		r = (struct snap_result){ 0 };
		load_all(&rd);
	}
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
