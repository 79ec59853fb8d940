/*
 * fuzz_snap.c -- the snapshot reader (store/store_snap.c,
 * store_snap_load_mem) on arbitrary files, loading into a real store
 * (4 MB limit, 64 KB items, 4 shards, fake clock).
 *
 * The first input byte is a mode, the rest the file.  Mode bit 0 set:
 * the header's and every block's CRC32C are made right before the load
 * (where the lengths allow), so the fuzzer gets past the checksums into
 * the record parsing; clear: the file is read as is, which checks that
 * the checksums are what stands in the way.
 *
 * Checked: a refused file leaves the store empty; a loaded one loads no
 * more items than the file has records, every value loaded lies within
 * the input, and a store after it works.
 */
#include <string.h>

#include "fuzz.h"
#include "store.h"
#include "store_snap.h"

#define T0	1700000000u

/* The fake clock: fixed, so exptimes in the seeds are stable. */
static uint32_t
fixed_now(void *ctx)
{
	(void)ctx;
	return T0;
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Makes the header's and the blocks' checksums right. */
static void
fix_crcs(uint8_t *b, size_t len)
{
	size_t off = 64, plen;

	if (len < 64)
		return;
	wr32(b + 60, store_crc32c(0, b, 60));
	while (len - off >= 16) {
		plen = rd32(b + off + 4);
		if (plen > len - off - 16)
			return;
		wr32(b + off + 12, store_crc32c(store_crc32c(0, b + off, 12),
		    b + off + 16, plen));
		off += 16 + plen;
	}
}

/* Items linked in st. */
static uint64_t
items(store_t *st)
{
	struct store_stats ss;

	store_get_stats(st, &ss);
	return ss.curr_items;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_config cfg = {
		.mem_limit = 4u << 20,
		.item_size_max = 64u << 10,
		.shards_log2 = 2,
		.clock = fixed_now,
	};
	struct snap_result r;
	store_t *st;
	uint8_t *buf;
	char msg[256];
	enum snap_load_status s;
	struct store_iter cur;
	struct store_iter_entry e;
	item_t *ref;
	item_t *it;

	if (size < 1)
		return 0;
	/* An exact-size copy: reading past it is an ASan error. */
	buf = malloc(size - 1 > 0 ? size - 1 : 1);
	FUZZ_CHECK(buf != NULL);
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1)
		fix_crcs(buf, size - 1);
	st = store_create(&cfg);
	FUZZ_CHECK(st != NULL);
	s = store_snap_load_mem(st, buf, size - 1, &r, msg, sizeof msg);
	if (s != SNAP_LOADED) {
		FUZZ_CHECK(s == SNAP_BAD);
		FUZZ_CHECK(items(st) == 0);
		FUZZ_CHECK(memchr(msg, '\0', sizeof msg) != NULL && msg[0]);
	} else {
		FUZZ_CHECK(r.items * 25 <= size);
		FUZZ_CHECK(items(st) <= r.items);
		store_iter_init(&cur);
		while (!cur.done)
			if (store_iter_next_refs(st, &cur, &e, &ref, 1) == 1) {
				FUZZ_CHECK(e.nkey >= 1 && e.nkey <= STORE_KEY_MAX);
				FUZZ_CHECK(e.nbytes <= size);
				FUZZ_CHECK(e.cas >= 1 && e.cas <= STORE_CAS_MAX);
				store_release(st, ref);
			}
	}
	/* The store still works, and a new CAS is above the file's. */
	if (store_reserve(st, "z", 1, 0, 0, 1, &it) == STORE_OK) {
		uint64_t cas = 0;

		item_value_mut(it)[0] = 'z';
		FUZZ_CHECK(store_commit(st, it, STORE_SET, 0, &cas) ==
		    STORE_STORED);
		FUZZ_CHECK(s != SNAP_LOADED || cas > r.max_cas ||
		    r.max_cas >= STORE_CAS_MAX);
	}
	store_destroy(st);
	free(buf);
	return 0;
}
