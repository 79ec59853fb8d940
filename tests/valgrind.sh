#!/bin/sh
# valgrind.sh -- the Python integration tests (test_wire, test_cli,
# test_hostile, test_bin_server) with every cached they start run under
# valgrind memcheck (common.py's CACHED_WRAPPER; timeouts stretched by
# CACHED_TIME_SCALE).
# Passes when the tests pass and every server's valgrind log shows 0
# errors and 0 bytes definitely, indirectly or possibly lost.
#
#   sh tests/valgrind.sh        uses build/cached ($CACHED to override)
#
# Left out: the resource ceilings (test_resources.py), whose RSS bounds
# would measure valgrind and whose load would take an hour under it.
# Logs: build-valgrind/.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
out=$top/build-valgrind
export CACHED="${CACHED:-$top/build/cached}"
[ -x "$CACHED" ] || { echo "valgrind.sh: no $CACHED (build first)"; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind.sh: no valgrind"; exit 1; }
mkdir -p "$out"
rm -f "$out"/vg.*.log
export CACHED_WRAPPER="valgrind --tool=memcheck --error-exitcode=99
 --leak-check=full --show-leak-kinds=definite,indirect,possible
 --errors-for-leak-kinds=definite,indirect,possible --num-callers=30
 --log-file=$out/vg.%p.log"
export PYTHONDONTWRITEBYTECODE=1

start=$(date +%s)
(cd "$top/tests/integration" &&
    python3 -m unittest -v test_wire test_cli test_hostile \
    test_bin_server) \
    >"$out/tests.log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))

# Every server's log: a clean summary, and one there at all.
logs=0
bad=0
for f in "$out"/vg.*.log; do
	[ -e "$f" ] || continue
	logs=$((logs + 1))
	if ! grep -q "ERROR SUMMARY: 0 errors" "$f" ||
	    grep -Eq "(definitely|indirectly|possibly) lost: [1-9]" "$f"; then
		bad=$((bad + 1))
		echo "== $f"
		cat "$f"
	fi
done
grep -E "^(Ran|OK|FAILED)" "$out/tests.log"
[ "$rc" -eq 0 ] || tail -n 60 "$out/tests.log"
echo "valgrind: $logs servers run under memcheck in $secs s, $bad with" \
    "errors or leaks; tests exit $rc"
[ "$rc" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$logs" -gt 0 ]
