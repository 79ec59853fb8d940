#!/bin/sh
# icount.sh -- instructions each server executes for the same load, counted
# by valgrind's callgrind: a comparison that other work on the machine does
# not disturb (wall-clock cells do).  cached and memcached each run -t 1
# -m 1024 under callgrind; cached-bench drives a fixed, seeded load in
# phases (-c 1024 under "ulimit -n 1036": see measure()), and
# callgrind_control dumps (and zeroes) the counts after each,
# so every phase gets its own count.
#
#   sh bench/icount.sh [binary|text|meta]     (default binary)
#
# Phases: preload of 20,000 keys of 100 B; 2,000 multi-gets of 50 keys
# (-c 4 -P 1 -k 50); 20,000 pipelined single gets and sets (-c 4 -P 8 -r
# 1:1); for binary also 2,000 batches of 10 quiet SETQs and a NOOP (-c 4
# -P 8 -r 0:1 --set-batch 10).  Prints a Markdown table: instructions per
# phase and server, and the ratio cached / memcached.  Needs valgrind,
# memcached and a build in build/.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
proto=${1:-binary}
bench=$top/build/bench/cached-bench
cached=${CACHED:-$top/build/cached}
memcached=${MEMCACHED:-$(command -v memcached)}
work=$(mktemp -d /tmp/icount.XXXXXX)
chmod 777 "$work"
trap 'rm -rf "$work"' EXIT

# Picks a free port (kernel-chosen, then released).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs the phases against server $1 (cached|memcached); prints
# "phase instructions" lines.
measure() {
	kind=$1
	port=$(free_port)
	if [ "$kind" = cached ]; then
		set -- "$cached" -U 0 -l 127.0.0.1 -p "$port" -t 1 -m 1024 -c 1024
	else
		set -- "$memcached" -U 0 -l 127.0.0.1 -p "$port" -t 1 -m 1024 -c 1024
		# as root memcached needs -u; as nobody, callgrind_control's
		# commands (written by us) would not reach it
		[ "$(id -u)" -eq 0 ] && set -- "$@" -u root
	fi
	# memcached sets its descriptor limit to -c, soft and hard, which
	# valgrind allows only for its own hard limit: 12 under the shell's
	(ulimit -n 1036 && exec valgrind --tool=callgrind \
	    --callgrind-out-file="$work/$kind.%p" "$@" >/dev/null \
	    2>"$work/$kind.log") &
	pid=$!
	i=0
	until "$bench" -p "$port" -c 1 -n 1 -r 1:0 -q >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || { echo "icount: $kind did not start" >&2;
		    kill "$pid"; exit 1; }
		sleep 0.1
	done
	timeout 60 callgrind_control -z "$pid" >/dev/null
	b() { "$bench" -p "$port" -M "$proto" -q -S 1 "$@" >/dev/null; }
	phase() {
		name=$1
		shift
		b "$@"
		timeout 60 callgrind_control -d "$name" "$pid" >/dev/null
	}
	phase preload --preload -n 0 -K 20000 -c 4
	phase multiget -K 20000 -c 4 -P 1 -k 50 -r 1:0 -n 2000
	phase getset -K 20000 -c 4 -P 8 -k 1 -r 1:1 -n 20000
	if [ "$proto" = binary ]; then
		phase setq -K 20000 -c 4 -P 8 -r 0:1 --set-batch 10 -n 2000
	fi
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	for f in "$work/$kind".*.*; do
		n=$(sed -n 's/^desc: Trigger: dump //p' "$f")
		t=$(sed -n 's/^summary: //p' "$f")
		echo "$n $t"
	done
}

measure cached >"$work/c.txt"
measure memcached >"$work/m.txt"
echo "| phase ($proto) | cached instructions | memcached instructions | ratio |"
echo "|---|---|---|---|"
for p in preload multiget getset setq; do
	c=$(awk -v p="$p" '$1 == p { print $2 }' "$work/c.txt")
	m=$(awk -v p="$p" '$1 == p { print $2 }' "$work/m.txt")
	[ -n "$c" ] && [ -n "$m" ] || continue
	awk -v p="$p" -v c="$c" -v m="$m" 'BEGIN {
	    printf "| %s | %.1f M | %.1f M | %.2f |\n", p, c / 1e6, m / 1e6,
	    c / m }'
done
