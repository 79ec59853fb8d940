#!/bin/sh
# run.sh -- ThreadSanitizer over the threaded parts: builds cached, the
# store's unit tests and the store hammer with clang in build-tsan/
# (configure CC=clang --enable-sanitizers=thread) and runs
#   - store_hammer: 16 threads, mixed operations, eviction, expiry thread;
#   - tests/unit/test_store (its own 4-thread hammer among them) and
#     tests/unit/test_store_meta (32 threads racing for one recache win),
#     tests/unit/test_store_iter (a dump walking while a writer thread
#     grows and shrinks the tables), tests/unit/test_store_snap (a
#     snapshot written while a thread writes, loads spread over threads);
#   - tests/unit/test_watch_ring: watch's lock-free ring, one thread
#     pushing a million lines while another drains it;
#   - cached -t 4 -m 2 under server_load.py: 16 clients, timers firing,
#     watchers of every stream coming and going (some never reading);
#   - cached -Z under test_tls.py's TLS, reload and start-up classes:
#     handshakes on every worker while refresh_certs and SIGHUP swap the
#     certificates (skipped, and said so, without the openssl command).
# Any ThreadSanitizer report, or any failure, makes the exit status 1.
#
#   sh tests/tsan/run.sh [hammer-seconds [load-seconds]]   (default 10 20)
set -u
cd "$(dirname "$0")/../.."
top=$(pwd)
out=$top/build-tsan
hammer_secs=${1:-10}
load_secs=${2:-20}

if [ ! -x configure ] || [ configure.ac -nt configure ] ||
    [ Makefile.am -nt configure ]; then
	autoreconf -fi || exit 1
fi
mkdir -p "$out"
if [ ! -f "$out/Makefile" ] || [ configure -nt "$out/Makefile" ]; then
	(cd "$out" && "$top/configure" --enable-werror CC=clang \
	    --enable-sanitizers=thread >configure.log 2>&1) || {
		tail -n 30 "$out/configure.log"
		exit 1
	}
fi
progs="cached tests/tsan/store_hammer"
grep -q '^tests/unit/test_store' "$out/Makefile" 2>/dev/null &&
    progs="$progs tests/unit/test_store tests/unit/test_store_meta \
    tests/unit/test_store_iter tests/unit/test_store_snap \
    tests/unit/test_watch_ring"
# shellcheck disable=SC2086
make -C "$out" -j"$(nproc)" $progs >"$out/build.log" 2>&1 || {
	tail -n 30 "$out/build.log"
	exit 1
}

rm -f "$out"/tsan.*
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 log_path=$out/tsan"
status=0
step() {
	name=$1
	shift
	if "$@"; then
		echo "tsan $name: ok"
	else
		echo "tsan $name: FAILED (exit $?)"
		status=1
		# the end of its log, if it wrote one, says why
		[ -f "$out/$name.log" ] && tail -n 25 "$out/$name.log"
	fi
}
step store_hammer "$out/tests/tsan/store_hammer" 16 "$hammer_secs"
[ -x "$out/tests/unit/test_store" ] &&
    step test_store sh -c "'$out/tests/unit/test_store' >'$out/test_store.log' 2>&1"
[ -x "$out/tests/unit/test_store_meta" ] &&
    step test_store_meta sh -c "'$out/tests/unit/test_store_meta' >'$out/test_store_meta.log' 2>&1"
[ -x "$out/tests/unit/test_store_iter" ] &&
    step test_store_iter sh -c "'$out/tests/unit/test_store_iter' >'$out/test_store_iter.log' 2>&1"
# issue 15: a snapshot written while a thread writes; the parallel load.
[ -x "$out/tests/unit/test_store_snap" ] &&
    step test_store_snap sh -c "'$out/tests/unit/test_store_snap' >'$out/test_store_snap.log' 2>&1"
# watch's ring of log lines: a producer and a consumer thread.
[ -x "$out/tests/unit/test_watch_ring" ] &&
    step test_watch_ring sh -c "'$out/tests/unit/test_watch_ring' >'$out/test_watch_ring.log' 2>&1"
step server_load env CACHED="$out/cached" PYTHONDONTWRITEBYTECODE=1 \
    python3 tests/tsan/server_load.py "$load_secs"
if command -v openssl >/dev/null; then
	step tls sh -c "cd tests/integration && CACHED='$out/cached' \
	    PYTHONDONTWRITEBYTECODE=1 python3 -m unittest test_tls.CachedTLSTest \
	    test_tls.CachedReloadTest test_tls.CachedAgreedTest \
	    test_tls.CachedHostileTest >'$out/tls.log' 2>&1"
else
	echo "tsan tls: SKIPPED (no openssl command)"
fi

reports=$(cat "$out"/tsan.* 2>/dev/null | grep -c 'WARNING: ThreadSanitizer')
if [ "$reports" -ne 0 ]; then
	cat "$out"/tsan.* | head -n 200
	status=1
fi
echo "tsan: $reports reports"
exit $status
