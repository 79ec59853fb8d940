#!/bin/sh
# test_corpus.sh -- `make check` part of the fuzzing: replays every seed and
# regression input of tests/fuzz/corpus/ through the fuzz targets built
# without libFuzzer (replay.c), so a finding once fixed stays fixed in the
# normal and the sanitizer builds alike.
set -u
src=${TOP_SRCDIR:-.}
bld=${TOP_BUILDDIR:-.}
for t in proto resp store bin snap; do
	"$bld/tests/fuzz/replay_$t" "$src/tests/fuzz/corpus/$t" || {
		echo "replay of the $t corpus failed"
		exit 1
	}
done
