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
# Each step prints one line; what the tools print goes to quickstart.log in
# the build directory (shown when a step fails).  "test" and "sanitize" end
# with make check's own lines and, when a test fails, its log.
set -eu
cd "$(dirname "$0")"
top=$(pwd)
log=/dev/null

# Prints one progress line.
step() {
	echo "quickstart: $*"
}

# Runs a command with its output going to $log; shows the log's end and
# stops when the command fails.
quiet() {
	if ! "$@" >>"$log" 2>&1; then
		echo "quickstart: failed: $*" >&2
		echo "quickstart: the last lines of $log:" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
}

# Starts the log of a build directory.
start_log() {
	mkdir -p "$1"
	log=$top/$1/quickstart.log
	: >"$log"
}

PACKAGES="build-essential autoconf automake libtool pkg-config libevent-dev
libcmocka-dev libmemcached-dev libmemcached-tools memcached nutcracker
python3 clang valgrind libssl-dev openssl ruby ruby-dalli python3-pylibmc
php-cli php-memcached python3-pymemcache sasl2-bin nodejs"
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
	step "installing packages:$missing"
	quiet apt-get update -q
	quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
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
		step "autoreconf -fi"
		quiet autoreconf -fi
	fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/Makefile" ]; then
		step "configure --enable-werror $flags (in $dir/)"
		quiet sh -c "cd '$dir' && $top/configure --enable-werror $flags"
	fi
	step "make -j$(nproc) (in $dir/)"
	quiet make -C "$dir" -j"$(nproc)"
}

# Builds the tests quietly, then runs them with make check's own output;
# when some fail, shows their logs.
check() {
	dir=$1
	step "building the tests (in $dir/)"
	quiet make -C "$dir" -j"$(nproc)" check TESTS=
	step "make check (in $dir/; each test's log is $dir/tests/.../NAME.log)"
	if make -s -C "$dir" -j"$(nproc)" check; then
		return 0
	fi
	echo "quickstart: failing tests' logs (all in $dir/test-suite.log):"
	for f in $(sed -n 's/^\(FAIL\|ERROR\|XPASS\): \([^ ]*\).*/\2/p' \
	    "$dir/test-suite.log" 2>/dev/null | sort -u); do
		echo "==== $dir/$f.log"
		tail -n 100 "$dir/$f.log" 2>/dev/null || :
	done
	return 1
}

case "${1:-}" in
serve)
	start_log build
	install_packages
	build build ""
	rm -f build/serve.port
	build/cached -p 11311 -o port_file=build/serve.port &
	pid=$!
	trap 'kill -TERM $pid 2>/dev/null || :' INT TERM
	while [ ! -s build/serve.port ]; do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" || exit $?; exit 1; }
		sleep 0.1
	done
	step "cached (pid $pid) listens on 127.0.0.1:11311; stop it with" \
	    "Ctrl-C (or kill $pid)"
	status=0
	wait "$pid" || status=$?
	if kill -0 "$pid" 2>/dev/null; then	# wait was cut by our trap
		status=0
		wait "$pid" || status=$?
	fi
	exit "$status"
	;;
test)
	start_log build
	install_packages
	build build ""
	install_memjs build
	check build
	;;
sanitize)
	start_log build-sanitize
	install_packages
	build build-sanitize --enable-sanitizers=address,undefined
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	install_memjs build-sanitize
	check build-sanitize
	;;
*)
	echo "usage: sh quickstart.sh serve|test|sanitize" >&2
	exit 64
	;;
esac
