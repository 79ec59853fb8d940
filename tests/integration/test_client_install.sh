#!/bin/sh
# test_client_install.sh -- the installed libcachedclient works the way a
# user meets it: "make install" (into a temporary DESTDIR, with the
# build's real install rules) puts the shared and static libraries, the
# header and libcachedclient.pc in place; examples/memoize.c builds with
# nothing but "pkg-config --cflags --libs libcachedclient" pointing at that
# copy, linked shared and static, and runs against a real cached: first
# computed, then from the cache.  Also checks that the library exports only
# cc_* symbols and that the header shows no libmemcached types.
set -eu

: "${TOP_BUILDDIR:?run from make check}" "${TOP_SRCDIR:?}" "${CACHED:?}"
tmp=$(mktemp -d /tmp/cc-install.XXXXXX)
pid=""

cleanup() {
	if [ -n "$pid" ]; then
		kill -KILL "$pid" 2>/dev/null || :
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# CLIENT_INSTALLED=1 (tests/package/test_deb.sh): test the copy installed
# on this system (the libcachedclient-dev package) instead, found by the
# system's pkg-config and linker with no help.
if [ "${CLIENT_INSTALLED:-0}" = 1 ]; then
	pkg-config --exists libcachedclient ||
		fail "pkg-config does not know libcachedclient"
	incdir=$(pkg-config --variable=includedir libcachedclient)
	libdir=$(pkg-config --variable=libdir libcachedclient)
	header=$incdir/cachedclient.h
	so=$(ls "$libdir"/libcachedclient.so.0.* 2>/dev/null | head -n 1)
	[ -f "$header" ] || fail "$header not installed"
	[ -n "$so" ] || fail "no libcachedclient.so.0 in $libdir"
	[ -f "$libdir/libcachedclient.a" ] || fail "static library not installed"
	CC=${CC:-cc}
	$CC -std=c99 -Wall -Wextra -Werror -o "$tmp/memoize" \
		"$TOP_SRCDIR/examples/memoize.c" \
		$(pkg-config --cflags --libs libcachedclient) ||
		fail "example does not build against the installed copy (shared)"
	$CC -std=c99 -Wall -Wextra -Werror -static-libgcc -o \
		"$tmp/memoize-static" "$TOP_SRCDIR/examples/memoize.c" \
		$(pkg-config --cflags libcachedclient) "$libdir/libcachedclient.a" \
		$(pkg-config --static --libs libcachedclient |
		sed 's/-lcachedclient//') ||
		fail "example does not build against the static library"
	ldd "$tmp/memoize" | grep -q 'libcachedclient\.so\.0 => /' ||
		fail "shared example does not find the installed library: $(ldd "$tmp/memoize")"
	libdir=/nonexistent
	skip_build=1
else
	skip_build=0
fi

# Install with the build's own rules (only the library's parts).
if [ "$skip_build" = 0 ]; then
make -s -C "$TOP_BUILDDIR" DESTDIR="$tmp/root" install-libLTLIBRARIES \
	install-includeHEADERS install-pkgconfigDATA >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "make install"; }
pc=$(find "$tmp/root" -name libcachedclient.pc)
[ -n "$pc" ] || fail "libcachedclient.pc not installed"
header=$(find "$tmp/root" -name cachedclient.h)
[ -n "$header" ] || fail "cachedclient.h not installed"
so=$(find "$tmp/root" -name 'libcachedclient.so.0*' -type f)
[ -n "$so" ] || fail "shared library not installed"
libdir=$(dirname "$so")
[ -f "$libdir/libcachedclient.a" ] || fail "static library not installed"
echo "installed: $(cd "$tmp/root" && find . -name '*cachedclient*' | sort | tr '\n' ' ')"

# The public surface: cc_* symbols only, no libmemcached in the header.
if nm -D --defined-only "$so" | awk '{ print $3 }' | grep -v '^cc_' |
    grep -q .; then
	nm -D --defined-only "$so" | grep -v ' cc_' >&2
	fail "library exports symbols other than cc_*"
fi
! grep -q '#include <libmemcached' "$header" ||
	fail "public header includes libmemcached"
! grep -q 'memcached_st' "$header" || fail "public header names memcached_st"

# The compiler and flags the library was built with (a sanitizer build's
# library needs its runtime in the program too).
mk() {
	sed -n "s/^$1 = //p" "$TOP_BUILDDIR/Makefile" | head -n 1
}
CC=$(mk CC)
CFLAGS=$(mk CFLAGS)
LDFLAGS=$(mk LDFLAGS)

export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cflags=$(pkg-config --cflags libcachedclient)
libs=$(pkg-config --libs libcachedclient)
slibs=$(pkg-config --static --libs libcachedclient | sed 's/-lcachedclient//')
case "$cflags $libs" in
*"$tmp/root"*) ;;
*) fail "pkg-config does not point at the installed copy: $cflags $libs" ;;
esac
$CC $CFLAGS -std=c99 -Wall -Wextra -Werror $LDFLAGS -o "$tmp/memoize" \
	"$TOP_SRCDIR/examples/memoize.c" $cflags $libs ||
	fail "example does not build against the installed copy (shared)"
$CC $CFLAGS -std=c99 -Wall -Wextra -Werror $LDFLAGS -o "$tmp/memoize-static" \
	"$TOP_SRCDIR/examples/memoize.c" $cflags "$libdir/libcachedclient.a" \
	$slibs || fail "example does not build against the static library"
LD_LIBRARY_PATH="$libdir" ldd "$tmp/memoize" | grep -q "$libdir" ||
	fail "shared example does not use the installed library"
fi
! ldd "$tmp/memoize-static" | grep -q libcachedclient ||
	fail "static example still needs libcachedclient.so"

# A real server on a kernel-chosen port.
"$CACHED" -U 0 -l 127.0.0.1 -p 0 -o port_file="$tmp/port" &
pid=$!
i=0
port=""
while :; do
	port=$(cat "$tmp/port" 2>/dev/null || :)
	case "$port" in
	'' | *[!0-9]*) ;;
	*) break ;;
	esac
	i=$((i + 1))
	[ $i -le 200 ] || fail "cached did not start"
	kill -0 "$pid" 2>/dev/null || fail "cached exited at start-up"
	sleep 0.05
done
server="127.0.0.1:$port"

out1=$(LD_LIBRARY_PATH="$libdir" "$tmp/memoize" "$server" 100000)
out2=$(LD_LIBRARY_PATH="$libdir" "$tmp/memoize" "$server" 100000)
out3=$("$tmp/memoize-static" "$server" 100000)
echo "$out1"; echo "$out2"; echo "$out3"
echo "$out1" | grep -q '^primes below 100000: 9592 (computed)$' ||
	fail "first run: $out1"
echo "$out2" | grep -q '^primes below 100000: 9592 (from cache)$' ||
	fail "second run: $out2"
echo "$out3" | grep -q '^primes below 100000: 9592 (from cache)$' ||
	fail "static run: $out3"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "cached exited with status $status"
echo "PASS: installed library, header and pkg-config file work"
