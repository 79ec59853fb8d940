/*
 * fuzz.h -- what the libFuzzer targets in tests/fuzz/ share: the entry
 * point libFuzzer calls and a check that aborts with a message.
 *
 * The targets are built two ways: with clang -fsanitize=fuzzer (run.sh)
 * for fuzzing, and with replay.c's main() by `make check`, which runs every
 * file of the seed and regression corpus through them once.  FUZZ_CHECK
 * does not depend on NDEBUG, so a broken invariant fails both builds.
 */
#ifndef CACHED_FUZZ_H
#define CACHED_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input; libFuzzer and replay.c call it. */
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the failed condition when cond is false. */
#define FUZZ_CHECK(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: check failed: %s\n",	\
			    __FILE__, __LINE__, #cond);			\
			abort();					\
		}							\
	} while (0)

#endif
