/*
 * sha256.h -- SHA-256 (FIPS 180-4), self-contained, for deriving memo keys.
 *
 * Data structure: the usual streaming context (state words, a 64-byte
 * block buffer and a byte count).  No locking: a context belongs to one
 * caller.
 */
#ifndef CC_SHA256_H
#define CC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN	32
#define SHA256_BLOCK_LEN	64

struct sha256_ctx {
	uint32_t	 h[8];
	uint64_t	 total;		/* bytes hashed so far */
	size_t		 used;		/* bytes waiting in block */
	uint8_t		 block[SHA256_BLOCK_LEN];
};

/* Starts a new hash. */
void	client_sha256_init(struct sha256_ctx *ctx);
/* Hashes len more bytes. */
void	client_sha256_update(struct sha256_ctx *ctx, const void *data,
	    size_t len);
/* Finishes the hash into out; the context must be re-initialised. */
void	client_sha256_final(struct sha256_ctx *ctx,
	    uint8_t out[SHA256_DIGEST_LEN]);

#endif
