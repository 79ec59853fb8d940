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
python3 clang valgrind ruby ruby-dalli python3-pylibmc php-cli php-memcached
python3-pymemcache sasl2-bin nodejs"

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

# Installs npm's memjs (a binary-protocol client the tests run) into $1/npm,
# never globally; without it test_client_memjs.py skips and says why.
install_memjs() {
	[ -d "$1/npm/node_modules/memjs" ] && return 0
	# Debian's nodejs comes without npm (NodeSource's has it built in)
	if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm ||
		    true
	fi
	npm install --prefix "$1/npm" --no-audit --no-fund memjs >/dev/null 2>&1 ||
	    echo "quickstart: npm install memjs failed; its test will skip" >&2
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
	install_memjs build
	make -C build -j"$(nproc)" check
	;;
sanitize)
	install_packages
	build build-sanitize --enable-sanitizers=address,undefined
	install_memjs build-sanitize
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    make -C build-sanitize -j"$(nproc)" check
	;;
*)
	echo "usage: sh quickstart.sh serve|test|sanitize" >&2
	exit 64
	;;
esac
