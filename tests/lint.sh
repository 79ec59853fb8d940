#!/bin/sh
# lint.sh -- pyflakes over every Python file of the tests and benchmarks:
# an unused import or variable, a name used before it is defined, and a
# test method defined twice in one class (the second hides the first, which
# then never runs) all fail it.  Installs pyflakes3 (Debian) when missing.
#
#   sh tests/lint.sh
set -u
cd "$(dirname "$0")/.."
install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q pyflakes3 \
	    >/dev/null 2>&1
}
if ! command -v pyflakes3 >/dev/null; then
	install || { apt-get update -q >/dev/null 2>&1 && install; } ||
	    { echo "lint.sh: cannot install pyflakes3"; exit 1; }
fi
# Python files, and the scripts that are Python without the suffix.
files=$(find tests bench tools contrib -name '*.py' -type f 2>/dev/null)
for f in $(find bench tools contrib -type f ! -name '*.*' 2>/dev/null); do
	head -1 "$f" | grep -q python && files="$files $f"
done
pyflakes3 $files && echo "lint.sh: $(echo $files | wc -w) files clean"
