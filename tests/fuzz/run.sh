#!/bin/sh
# run.sh -- builds the libFuzzer targets of tests/fuzz/ with clang into
# build-fuzz/ (configure CC=clang --enable-sanitizers=address,undefined
# --enable-fuzzing; make fuzz) and runs each for a bounded number of
# executions with the dictionary and the seed corpus.
#
#   sh tests/fuzz/run.sh                 CI: 30,000 executions (at most 90 s)
#                                        per target
#   sh tests/fuzz/run.sh -t 3600 -r -1   long run: an hour per target, no
#                                        execution bound
#   sh tests/fuzz/run.sh -j 2 ... store  only some targets; -j N: N jobs
#
# New inputs go to build-fuzz/corpus-<target>/, never into the repository;
# a crash leaves build-fuzz/artifacts/<target>-crash-* and a non-zero exit.
# tests/fuzz/README says how findings become regression inputs.
set -u
cd "$(dirname "$0")/../.."
top=$(pwd)
out=$top/build-fuzz
runs=30000
secs=90
jobs=1
CC=${CC_FUZZ:-clang}

while getopts r:t:j: opt; do
	case $opt in
	r) runs=$OPTARG ;;
	t) secs=$OPTARG ;;
	j) jobs=$OPTARG ;;
	*) echo "usage: sh tests/fuzz/run.sh [-r runs] [-t seconds] [-j jobs] [target...]" >&2
	   exit 64 ;;
	esac
done
shift $((OPTIND - 1))
targets=${*:-proto resp store bin snap}

command -v "$CC" >/dev/null || { echo "run.sh: $CC not found" >&2; exit 1; }
if [ ! -x configure ] || [ configure.ac -nt configure ] ||
    [ Makefile.am -nt configure ]; then
	autoreconf -fi || exit 1
fi
mkdir -p "$out/artifacts"
if [ ! -f "$out/Makefile" ] || [ configure -nt "$out/Makefile" ]; then
	(cd "$out" && "$top/configure" --enable-werror CC="$CC" \
	    --enable-sanitizers=address,undefined --enable-fuzzing \
	    >configure.log 2>&1) || {
		tail -n 30 "$out/configure.log"
		exit 1
	}
fi
jobflags=""
[ "$jobs" -gt 1 ] && jobflags="-jobs=$jobs -workers=$jobs"

status=0
for t in $targets; do
	make -C "$out" -j"$(nproc)" "tests/fuzz/fuzz_$t" \
	    >"$out/build-$t.log" 2>&1 || {
		tail -n 30 "$out/build-$t.log"
		echo "fuzz $t: build failed"
		status=1
		continue
	}
	# build-fuzz/fuzz_<t>, the name tests/fuzz/README uses.
	ln -sf "tests/fuzz/fuzz_$t" "$out/fuzz_$t"
	mkdir -p "$out/corpus-$t" "$out/jobs-$t"
	rm -f "$out/jobs-$t"/fuzz-*.log
	# a target's own dictionary (bin.dict) if it has one
	dict=$top/tests/fuzz/memcached.dict
	[ -f "$top/tests/fuzz/$t.dict" ] && dict=$top/tests/fuzz/$t.dict
	start=$(date +%s)
	# With -jobs, libFuzzer writes each job's log to fuzz-N.log in the
	# current directory.
	(cd "$out/jobs-$t" &&
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	"$out/fuzz_$t" -runs="$runs" -max_total_time="$secs" \
	    -max_len=16384 -timeout=10 -rss_limit_mb=4096 $jobflags \
	    -print_final_stats=1 \
	    -dict="$dict" \
	    -artifact_prefix="$out/artifacts/$t-" \
	    "$out/corpus-$t" "$top/tests/fuzz/corpus/$t") \
	    >"$out/fuzz_$t.log" 2>&1
	rc=$?
	logs=$out/fuzz_$t.log
	[ "$jobs" -gt 1 ] && logs=$(ls "$out/jobs-$t"/fuzz-*.log 2>/dev/null)
	# shellcheck disable=SC2086
	execs=$(cat $logs 2>/dev/null |
	    awk '/stat::number_of_executed_units:/ { n += $2 }
	    END { print n + 0 }')
	echo "fuzz $t: exit $rc, $execs executions in $(( $(date +%s) - start )) s," \
	    "$(ls "$out/corpus-$t" | wc -l) new inputs; log $out/fuzz_$t.log"
	if [ "$rc" -ne 0 ]; then
		tail -n 60 "$out/fuzz_$t.log"
		status=1
	fi
done
exit $status
