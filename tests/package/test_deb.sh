#!/bin/sh
# tests/package/test_deb.sh -- the Debian packages, the way an admin meets
# them (issue 17), on a Debian 12 machine as root:
#
#  1. builds them from a clean copy of the tree (the files git knows,
#     with their working-tree contents) with dpkg-buildpackage -us -uc -b,
#     DEB_BUILD_OPTIONS="nocheck parallel=2" (make check runs elsewhere);
#  2. runs lintian on them: no error and no warning that is not overridden
#     in debian/*.lintian-overrides;
#  3. installs them with apt-get install ./*.deb and checks what landed:
#     the _cached user, the units (systemd-analyze verify), /etc/cached.conf,
#     a man page for every exported function, the library found by
#     cached-warm without any ldconfig by hand;
#  4. runs the service: under systemd when it is running (systemctl
#     restart cached, cached@pkgtest); without it (a container, this
#     sandbox), says so and starts the unit's ExecStart by hand as its
#     User=, with a $NOTIFY_SOCKET that must get READY=1, as systemd would;
#     the port comes from the installed config, set to one in 22600-22699;
#  5. runs memccapable against it, tests/integration/test_memccapable.sh
#     and tests/integration/test_client_install.sh against the installed
#     files, and cached-warm;
#  6. dpkg -r leaves no file behind but the config; dpkg -P removes that.
#
# Exit 0 passed, 1 failed, 77 skipped (not root, not Debian, no git tree).
# Logs go to $PKG_LOGDIR (default a temporary directory, kept on failure).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
PKGS="cached libcachedclient0 libcachedclient-dev cached-tools"
TOOLS="build-essential debhelper dpkg-dev fakeroot lintian libevent-dev
libmemcached-dev pkgconf libmemcached-tools python3"

skip() {
	echo "SKIP: test_deb.sh: $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root to install packages"
command -v dpkg >/dev/null && command -v apt-get >/dev/null ||
	skip "not a Debian system (no dpkg, apt-get)"
[ -d "$top/.git" ] || [ -f "$top/.git" ] || skip "$top is not a git work tree"

tmp=$(mktemp -d /tmp/cached-deb.XXXXXX)
chmod 755 "$tmp"
logdir=${PKG_LOGDIR:-$tmp/logs}
mkdir -p "$logdir"
pids=""
ok=0

cleanup() {
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null || :
	done
	rm -f /etc/cached_pkgtest.conf
	if [ "$ok" -eq 1 ]; then
		rm -rf "$tmp"
	else
		echo "test_deb.sh: logs kept in $logdir"
	fi
}
trap cleanup EXIT

step() {
	echo "test_deb.sh: $*"
}
fail() {
	echo "FAIL: test_deb.sh: $*" >&2
	exit 1
}
# Runs a command with its output to $logdir/$1.log, shown if it fails.
logged() {
	log=$logdir/$1.log
	shift
	if ! "$@" >"$log" 2>&1; then
		tail -n 60 "$log" >&2
		fail "$* (log: $log)"
	fi
}
installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null |
	    grep -q "install ok installed"
}
purge_all() {
	for p in $PKGS; do
		if dpkg-query -W "$p" >/dev/null 2>&1; then
			dpkg -P "$p" >/dev/null 2>&1 || :
		fi
	done
}
apt_get() {
	DEBIAN_FRONTEND=noninteractive apt-get -y -q \
	    -o DPkg::Lock::Timeout=300 "$@"
}

# ---- the packaging tools ----
missing=""
for p in $TOOLS; do
	installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	step "installing$missing"
	apt_get install --no-install-recommends $missing >"$logdir/apt.log" 2>&1 ||
	    { apt_get update >>"$logdir/apt.log" 2>&1 &&
	    apt_get install --no-install-recommends $missing \
		>>"$logdir/apt.log" 2>&1; } ||
	    { tail -n 30 "$logdir/apt.log"; fail "cannot install$missing"; }
fi

# A port in 22600-22699 that nothing listens on.
free_port() {
	python3 - "$@" <<'EOF'
import socket, sys
taken = set(int(a) for a in sys.argv[1:])
for port in range(22600, 22700):
    if port in taken:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    sys.exit("no free port in 22600-22699")
EOF
}

# ---- 1. build from a clean copy ----
version=$(sed -n '1s/^cached (\([^)]*\)).*/\1/p' "$top/debian/changelog")
src=$tmp/build/cached-$version
mkdir -p "$src"
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf -) | tar -xf - -C "$src"
step "building the packages (log: $logdir/build.log)"
start=$(date +%s)
(cd "$src" && export DEB_BUILD_OPTIONS="nocheck parallel=2" &&
    logged build dpkg-buildpackage -us -uc -b)
step "built in $(( $(date +%s) - start )) s: $(cd "$tmp/build" && ls *.deb | tr '\n' ' ')"
debs=""
for p in $PKGS; do
	deb=$(ls "$tmp/build/${p}_${version}_"*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || fail "no $p package built"
	debs="$debs $deb"
done

# ---- 2. lintian ----
changes=$(ls "$tmp/build/"*.changes)
lintian --fail-on error,warning --display-info "$changes" \
    >"$logdir/lintian-raw.log" 2>&1 && lint=0 || lint=$?
grep -v "running with root privileges is not recommended" \
    "$logdir/lintian-raw.log" >"$logdir/lintian.log" || :
sed 's/^/lintian: /' "$logdir/lintian.log"
[ "$lint" -eq 0 ] || fail "lintian reports errors or warnings (above)"
step "lintian: $(grep -c '^[EW]:' "$logdir/lintian.log" || :) errors and warnings, $(grep -c '^I:' "$logdir/lintian.log" || :) notes"

# ---- 3. install ----
purge_all
step "apt-get install$(for d in $debs; do printf ' ./%s' "${d##*/}"; done)"
(cd "$tmp/build" && logged install apt_get install $(for d in $debs; do
	printf './%s ' "${d##*/}"; done))
for p in $PKGS; do
	installed "$p" || fail "$p not installed"
	dpkg -L "$p" >"$tmp/files-$p"
done
getent passwd _cached >/dev/null || fail "no _cached user"
[ "$(getent passwd _cached | cut -d: -f7)" != /bin/sh ] ||
	fail "_cached has a login shell"
ex=/usr/share/doc/cached-tools/examples
for f in /usr/bin/cached /usr/bin/cached-warm /usr/bin/cached-bench \
    /etc/cached.conf /usr/share/cached/systemd-cached-wrapper \
    /usr/include/cachedclient.h $ex/cached-warm.crontab \
    $ex/cached-warm.service $ex/cached-warm.timer; do
	[ -e "$f" ] || fail "$f not installed"
done
grep -q '/usr/bin/cached-warm' "$ex/cached-warm.crontab" &&
    ! grep -q /usr/local/bin/cached-warm "$ex/cached-warm.crontab" \
	"$ex/cached-warm.service" ||
	fail "the cached-warm examples do not name /usr/bin/cached-warm"
unit=$(dpkg -L cached | grep '/systemd/system/cached\.service$') ||
	fail "cached.service not installed"
tunit=$(dpkg -L cached | grep '/systemd/system/cached@\.service$') ||
	fail "cached@.service not installed"
if command -v systemd-analyze >/dev/null 2>&1; then
	systemd-analyze verify "$unit" "$tunit" >"$logdir/verify.log" 2>&1 ||
	    { cat "$logdir/verify.log"; fail "systemd-analyze verify"; }
	step "systemd-analyze verify: units are valid"
else
	step "systemd-analyze missing: units not verified"
fi
# The library is found without running ldconfig by hand.
if ldd /usr/bin/cached-warm | grep 'not found'; then
	fail "cached-warm does not find its libraries"
fi
cached-warm --version >/dev/null || fail "cached-warm --version"
# A manual page for every function the library exports.
so=$(dpkg -L libcachedclient0 | grep '/libcachedclient\.so\.0\.' | head -n 1)
nman=0
for sym in $(nm -D --defined-only "$so" | awk '$3 ~ /^cc_/ { print $3 }'); do
	ls /usr/share/man/man3/"$sym".3* >/dev/null 2>&1 ||
		fail "no manual page for $sym (man 3 $sym)"
	nman=$((nman + 1))
done
if command -v man >/dev/null 2>&1; then
	man -w cc_memoize >/dev/null || fail "man cc_memoize finds nothing"
fi
[ "$nman" -gt 10 ] || fail "only $nman exported functions found in $so"
step "installed: user _cached, units, config, $nman function man pages"

# ---- 4. the service ----
port=$(free_port)
port2=$(free_port "$port")
sed -i "s/^-p 11211$/-p $port/" /etc/cached.conf
grep -q "^-p $port$" /etc/cached.conf || fail "no -p line in /etc/cached.conf"
printf -- '-p %s\n-m 16\n' "$port2" >/etc/cached_pkgtest.conf
state=$(systemctl is-system-running 2>/dev/null || :)
case $state in
running | degraded)
	step "systemd is $state: systemctl restart cached, start cached@pkgtest"
	systemctl daemon-reload
	systemctl restart cached.service || {
		journalctl -u cached --no-pager | tail -n 30
		fail "systemctl restart cached"
	}
	systemctl start cached@pkgtest.service ||
		fail "systemctl start cached@pkgtest"
	systemctl is-active --quiet cached.service || fail "cached not active"
	[ "$(systemctl show -p User --value cached.service)" = _cached ] ||
		fail "cached.service does not run as _cached"
	pid=$(systemctl show -p MainPID --value cached.service)
	[ "$(stat -c %U "/proc/$pid")" = _cached ] ||
		fail "cached runs as $(stat -c %U "/proc/$pid")"
	systemctl is-enabled --quiet cached.service ||
		fail "cached.service not enabled"
	;;
*)
	step "SKIP systemd part: systemd is not running here" \
	    "(systemctl is-system-running: ${state:-no answer});" \
	    "running the units' ExecStart by hand as their User=, as systemd would"
	run_unit() {	# unit-file instance log
		cmd=$(sed -n 's/^ExecStart=//p' "$1" | sed "s/%i/$2/g")
		user=$(sed -n 's/^User=//p' "$1")
		sock=$tmp/notify-$2
		python3 - "$sock" "$logdir/$3" setpriv --reuid="$user" \
		    --regid="$user" --clear-groups --no-new-privs \
		    $cmd <<'EOF'
import os, socket, subprocess, sys
path, log, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
s.settimeout(30)  # a bound against hanging, not a measurement
env = dict(os.environ, NOTIFY_SOCKET=path)
with open(log, "w") as out:
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                         stdout=out, stderr=out, start_new_session=True)
try:
    msg = s.recv(4096)
except socket.timeout:
    sys.exit("no READY=1 from %s within 30 s" % argv)
print(p.pid)
sys.exit(0 if msg == b"READY=1" else "got %r, not READY=1" % msg)
EOF
	}
	pid=$(run_unit "$unit" "" service.log) ||
		{ cat "$logdir/service.log"; fail "cached.service's ExecStart"; }
	pids="$pids $pid"
	pid2=$(run_unit "$tunit" pkgtest service-pkgtest.log) ||
		{ cat "$logdir/service-pkgtest.log"; fail "cached@pkgtest's ExecStart"; }
	pids="$pids $pid2"
	[ "$(stat -c %U "/proc/$pid")" = _cached ] ||
		fail "cached runs as $(stat -c %U "/proc/$pid")"
	[ "$(readlink "/proc/$pid/exe")" = /usr/bin/cached ] ||
		fail "the unit's main process is $(readlink "/proc/$pid/exe"), not cached"
	step "READY=1 from cached (pid $pid, user _cached, port $port)" \
	    "and cached@pkgtest (pid $pid2, port $port2)"
	;;
esac

# ---- 5. use it ----
timeout 120 memccapable -a -h 127.0.0.1 -p "$port" >"$logdir/memccapable.log" 2>&1 ||
	{ cat "$logdir/memccapable.log"; fail "memccapable against the service"; }
step "memccapable -a against the service: $(grep -c '\[pass\]' "$logdir/memccapable.log") passed"
timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"version\r\n")
sys.exit(0 if s.recv(100).startswith(b"VERSION") else 1)' "$port2" ||
	fail "cached@pkgtest does not answer on $port2"
printf 'greeting 3600 0 hello\n' >"$tmp/manifest"
# The README's cron line, as another user after a run as root: the default
# locks differ, so neither blocks the other.
cached-warm -q -s "127.0.0.1:$port" "$tmp/manifest" ||
	fail "cached-warm as root against the service"
su -s /bin/sh nobody -c "cached-warm -q -s 127.0.0.1:$port $tmp/manifest" ||
	fail "cached-warm as nobody after a run as root"
step "cached-warm as root, then as nobody (default locks): stored"
logged memccapable-test env CACHED=/usr/bin/cached \
    sh "$top/tests/integration/test_memccapable.sh"
step "tests/integration/test_memccapable.sh with /usr/bin/cached: passed"
logged client-install env CACHED=/usr/bin/cached CLIENT_INSTALLED=1 \
    TOP_SRCDIR="$top" TOP_BUILDDIR=/nonexistent \
    sh "$top/tests/integration/test_client_install.sh"
step "tests/integration/test_client_install.sh on the installed library: passed"

case $state in
running | degraded)
	systemctl stop cached@pkgtest.service cached.service ;;
*)
	for p in $pids; do
		kill -TERM "$p"
	done
	for p in $pids; do
		i=0
		while [ -d "/proc/$p" ] && [ "$(cut -d' ' -f3 "/proc/$p/stat")" != Z ]; do
			i=$((i + 1))
			[ $i -le 200 ] || fail "cached (pid $p) ignored SIGTERM"
			sleep 0.05
		done
	done
	pids="" ;;
esac
rm -f /etc/cached_pkgtest.conf

# ---- 6. remove, purge ----
logged remove dpkg -r $PKGS
left=""
for p in $PKGS; do
	while IFS= read -r f; do
		[ -d "$f" ] && continue
		[ -e "$f" ] || [ -L "$f" ] || continue
		[ "$f" = /etc/cached.conf ] || left="$left $f"
	done <"$tmp/files-$p"
done
[ -z "$left" ] || fail "dpkg -r left files behind:$left"
[ -f /etc/cached.conf ] || fail "dpkg -r removed the config file"
grep -q "^-p $port$" /etc/cached.conf || fail "dpkg -r lost the edited config"
logged purge dpkg -P $PKGS
[ ! -e /etc/cached.conf ] || fail "dpkg -P left /etc/cached.conf"
for p in $PKGS; do
	! dpkg-query -W "$p" >/dev/null 2>&1 || fail "$p still known to dpkg"
done
step "dpkg -r kept only /etc/cached.conf; dpkg -P removed it"
ok=1
echo "PASS: test_deb.sh"
