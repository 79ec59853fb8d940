#!/bin/sh
# test_memccapable.sh -- libmemcached's conformance check (memccapable,
# Debian's libmemcached-tools) against the real cached: its ASCII half (27
# checks) and its binary half (27 checks) must all pass.  Skips (exit 77)
# where memccapable is missing.
set -u
CACHED=${CACHED:-./cached}
command -v memccapable >/dev/null 2>&1 || { echo "memccapable not installed"; exit 77; }

tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
"$CACHED" -p 0 -l 127.0.0.1 -U 0 -o "port_file=$tmp/port" &
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
	i=$((i + 1))
	[ $i -gt 200 ] && { echo "cached did not start"; exit 99; }
	sleep 0.05
done
port=$(cat "$tmp/port")

timeout 120 memccapable -h 127.0.0.1 -p "$port" >"$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
ok=$(grep -c '\[pass\]' "$tmp/out")
ascii=$(grep -c '^ascii .*\[pass\]' "$tmp/out")
binary=$(grep -c '^binary .*\[pass\]' "$tmp/out")
failed=$(grep -c -i 'fail' "$tmp/out")
echo "memccapable: $ok passed ($ascii ascii, $binary binary), $failed failed, exit $rc"

kill -TERM "$pid"
wait "$pid"
srv_rc=$?
[ "$srv_rc" -eq 0 ] || { echo "cached exited with $srv_rc"; exit 1; }
[ "$rc" -eq 0 ] && [ "$ascii" -eq 27 ] && [ "$binary" -eq 27 ] &&
    [ "$failed" -eq 0 ]
