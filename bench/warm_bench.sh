#!/bin/sh
# warm_bench.sh -- how fast cached-warm fills a cache, on this machine:
#
#  1. literal load: 100,000 entries of 100 bytes from a manifest file,
#     pipelined (cc_store_many batches), into a fresh cached; entries/s
#     from cached-warm's own summary line, best and median of RUNS runs;
#  2. the worker pool: --exec 'sleep 0.2; echo {}' over 40 keys at -j 1
#     and at -j 8 (wall time; ideally 8 s and 1 s).
#
# Usage: sh bench/warm_bench.sh [BUILD_DIR]   (default: build/)
# Everything runs on 127.0.0.1 with a kernel-chosen port.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
cached=${CACHED:-$build/cached}
warm=$build/tools/cached-warm
runs=${RUNS:-5}
for b in "$cached" "$warm"; do
	[ -x "$b" ] || { echo "warm_bench: $b not built" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/warm-bench.XXXXXX)
pid=""
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || :
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# Starts cached (256 MB, room for every entry) and waits for its port.
"$cached" -U 0 -l 127.0.0.1 -p 0 -m 256 -o "port_file=$tmp/port" &
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
	i=$((i + 1))
	[ "$i" -lt 200 ] || { echo "warm_bench: cached did not start" >&2; exit 1; }
	sleep 0.05
done
servers=127.0.0.1:$(cat "$tmp/port")

# Returns the current time in seconds, with decimals.
now() {
	date +%s.%N
}

echo "cached-warm benchmark: $(nproc) CPUs, $(uname -sr), server $servers"

awk 'BEGIN {
	v = sprintf("%100s", ""); gsub(/ /, "x", v)
	for (i = 0; i < 100000; i++)
		printf "bench:%d 3600 0 %s\n", i, v
}' >"$tmp/manifest"
rates=""
for r in $(seq "$runs"); do
	line=$("$warm" -s "$servers" --no-lock "$tmp/manifest")
	case "$line" in
	*"stored 100000, skipped 0, failed 0"*) ;;
	*) echo "warm_bench: unexpected summary: $line" >&2; exit 1 ;;
	esac
	rate=$(echo "$line" | sed 's/.*rate \([0-9]*\)\/s.*/\1/')
	rates="$rates $rate"
done
sorted=$(echo $rates | tr ' ' '\n' | sort -n)
best=$(echo "$sorted" | tail -n 1)
median=$(echo "$sorted" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "literal load, 100000 x 100 B, pipelined: best $best/s, median $median/s (runs:$rates)"

seq 40 | sed 's/^/exec:/' >"$tmp/keys"
for j in 1 8; do
	start=$(now)
	line=$("$warm" -s "$servers" --no-lock -j "$j" \
	    -e 'sleep 0.2; echo {}' "$tmp/keys")
	end=$(now)
	case "$line" in
	*"stored 40, skipped 0, failed 0"*) ;;
	*) echo "warm_bench: unexpected summary: $line" >&2; exit 1 ;;
	esac
	printf "%s %.2f s wall\n" "--exec 'sleep 0.2; echo {}' x 40 keys, -j $j:" "$(echo "$start $end" | awk '{ print $2 - $1 }')"
done
