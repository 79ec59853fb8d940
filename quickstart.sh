#!/bin/sh
# quickstart.sh -- set up a Debian 12 machine, build cached and run it or
# its tests.  Every step is safe to repeat: packages are only installed when
# missing, and the build is incremental.
#
#   sh quickstart.sh serve      build, then run "cached -p 11311" in the foreground
#   sh quickstart.sh test       build, then run the whole test suite (make check)
#   sh quickstart.sh sanitize   the test suite built with ASan + UBSan
#                               (configure --enable-sanitizers=address,undefined)
#
# Builds live in build/ (and build-sanitize/); the source tree stays clean.
set -eu
cd "$(dirname "$0")"
top=$(pwd)

PACKAGES="build-essential autoconf automake libtool pkg-config libevent-dev
libcmocka-dev libmemcached-dev libmemcached-tools memcached nutcracker
python3 clang valgrind libssl-dev openssl python3-pymemcache"
# Go and the Go libraries tests/vendor/memcached_exporter builds against
# (its build.sh lists them; it would install them itself, mid-test).
PACKAGES="$PACKAGES golang-go golang-github-alecthomas-units-dev
golang-github-beorn7-perks-dev golang-github-cespare-xxhash-dev
golang-github-go-kit-log-dev golang-github-go-logfmt-logfmt-dev
golang-github-golang-protobuf-1-3-dev golang-github-prometheus-client-golang-dev
golang-github-prometheus-client-model-dev golang-github-prometheus-common-dev
golang-github-prometheus-procfs-dev golang-golang-x-sys-dev
golang-google-protobuf-dev golang-gopkg-alecthomas-kingpin.v2-dev
golang-protobuf-extensions-dev"

# Installs the Debian packages the build and the tests need.
install_packages() {
	missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "quickstart: missing packages:$missing (run as root or install them)" >&2
		exit 1
	fi
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
}

# Generates configure, configures in $1 with extra flags $2, builds.
build() {
	dir=$1
	flags=$2
	if [ ! -x configure ] || [ configure.ac -nt configure ] ||
	    [ Makefile.am -nt configure ]; then
		autoreconf -fi
	fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/Makefile" ]; then
		(cd "$dir" && eval "$top/configure --enable-werror $flags")
	fi
	make -C "$dir" -j"$(nproc)"
}

case "${1:-}" in
serve)
	install_packages
	build build ""
	exec build/cached -p 11311
	;;
test)
	install_packages
	build build ""
	make -C build -j"$(nproc)" check
	;;
sanitize)
	install_packages
	build build-sanitize --enable-sanitizers=address,undefined
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    make -C build-sanitize -j"$(nproc)" check
	;;
*)
	echo "usage: sh quickstart.sh serve|test|sanitize" >&2
	exit 64
	;;
esac
