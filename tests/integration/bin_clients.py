"""The driver of the binary-protocol client tests (test_client_dalli.py,
test_client_pylibmc.py, test_client_php.py, test_client_memjs.py): one
client script of tests/integration/clients/ runs against memcached 1.6.18
(the oracle: proves the script right) and then against cached, each
started with "-B binary" so that a client that fell back to the text
protocol would fail, then again with SASL PLAIN on both (right password:
the script passes; wrong password: it fails).

SASL on Debian's memcached: it is built with Cyrus SASL and without
memcached's own password file (MEMCACHED_SASL_PWDB), so -S takes its users
from Cyrus: SASL_CONF_PATH names a directory whose memcached.conf says
"mech_list: plain" and "sasldb_path: <file>", and the file is made by
saslpasswd2 (package sasl2-bin) with -a memcached; the user's realm is the
host name, which Cyrus adds on both sides.  -S needs -B binary (memcached
refuses the ASCII protocol with SASL).  cached takes -S with -Y <file> of
"user:password" lines.

A client or interpreter that is missing makes the test skip loudly (exit
77 and SKIP with the reason), as does a cached that does not serve the
binary protocol or SASL; a script failing against memcached fails the
test.  Each script run is bounded by SCRIPT_TIMEOUT seconds.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import serverctl  # noqa: E402
from common import CACHED, TIME_SCALE, WRAPPER  # noqa: E402

CLIENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "clients")
MEMCACHED = os.environ.get("MEMCACHED", shutil.which("memcached"))
SCRIPT_TIMEOUT = 120
USER, PASSWORD = "cacheduser", "s3cret pass"


class Skip(Exception):
    """A part that cannot run here; its message says why."""


def script(name):
    return os.path.join(CLIENTS, name)


def probe(argv, env=None):
    """True when argv runs and exits 0 (a client-is-installed check)."""
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_script(argv, addr, env, creds):
    """Runs a client script against addr; returns (exit status, output)."""
    env = dict(env or os.environ)
    env.pop("CLIENT_USER", None)
    env.pop("CLIENT_PASSWORD", None)
    if creds:
        env["CLIENT_USER"], env["CLIENT_PASSWORD"] = creds
    try:
        p = subprocess.run(argv + [addr], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=SCRIPT_TIMEOUT * TIME_SCALE)
    except subprocess.TimeoutExpired as e:
        return -1, (e.output or b"").decode(errors="replace") + \
            "\n(timed out)"
    return p.returncode, p.stdout.decode(errors="replace")


def sasl_setup(tmp):
    """Writes the Cyrus configuration and sasldb memcached -S reads and
    the -Y file cached reads; returns (conf dir, authfile).  Raises Skip
    without saslpasswd2."""
    if not shutil.which("saslpasswd2"):
        raise Skip("saslpasswd2 (sasl2-bin) not installed: memcached's SASL "
                   "users cannot be created")
    # memcached runs as nobody when started by root: it must read these
    os.chmod(tmp, 0o755)
    db = os.path.join(tmp, "sasldb2")
    with open(os.path.join(tmp, "memcached.conf"), "w") as f:
        f.write("mech_list: plain\nsasldb_path: %s\n" % db)
    subprocess.run(["saslpasswd2", "-p", "-a", "memcached", "-c", "-f", db,
                    USER], input=PASSWORD.encode(), check=True, timeout=30)
    os.chmod(db, 0o644)
    authfile = os.path.join(tmp, "auth")
    with open(authfile, "w") as f:
        f.write("%s:%s\n" % (USER, PASSWORD))
    return tmp, authfile


def start(kind, args, env_extra=None):
    """Starts a server; raises Skip when cached refuses the arguments."""
    saved = dict(os.environ)
    os.environ.update(env_extra or {})
    try:
        if kind == "memcached":
            srv = serverctl.ServerProcess(MEMCACHED, args, kind="memcached")
        else:
            srv = serverctl.ServerProcess(CACHED, args, kind="cached",
                                          prefix=WRAPPER,
                                          time_scale=TIME_SCALE,
                                          stderr=subprocess.DEVNULL)
        try:
            return srv.start()
        except RuntimeError as e:
            if kind == "cached":
                raise Skip("cached does not start with %s (%s)"
                           % (" ".join(args), e))
            raise
    finally:
        os.environ.clear()
        os.environ.update(saved)


def serves_binary(srv):
    """True when the server answers a binary NOOP in binary."""
    from binproto import BinClient
    try:
        c = BinClient(srv.port, timeout=2 * TIME_SCALE)
    except OSError:
        return False
    try:
        return c.call_raw(b"", 2 * TIME_SCALE) == b""
    finally:
        c.close()


def main(name, argv, available, env=None):
    """Runs the client script argv (host:port appended) as the module's
    opening says.  available() returns None or the reason to skip."""
    if MEMCACHED is None:
        print("SKIP: memcached (the oracle) is not installed")
        sys.exit(77)
    why = available()
    if why:
        print("SKIP: %s: %s" % (name, why))
        sys.exit(77)
    failures, skips = [], []
    with tempfile.TemporaryDirectory(prefix="cached-clients-") as tmp:
        try:
            conf, authfile = sasl_setup(tmp)
        except Skip as e:
            conf = authfile = None
            skips.append(str(e))
        runs = [("memcached", ["-B", "binary"], None, None),
                ("cached", ["-B", "binary"], None, None)]
        if conf:
            runs += [("memcached", ["-B", "binary", "-S"],
                      {"SASL_CONF_PATH": conf}, True),
                     ("cached", ["-B", "binary", "-S", "-Y", authfile],
                      None, True)]
        for kind, args, env_extra, sasl in runs:
            label = "%s %s" % (kind, " ".join(args[:3]))
            try:
                srv = start(kind, args, env_extra)
            except Skip as e:
                skips.append(str(e))
                continue
            try:
                if kind == "cached" and not sasl and not serves_binary(srv):
                    skips.append("binary protocol not served by cached")
                    continue
                addr = "127.0.0.1:%d" % srv.port
                creds = (USER, PASSWORD) if sasl else None
                status, out = run_script(argv, addr, env, creds)
                print("--- %s against %s: exit %d\n%s"
                      % (name, label, status, out.rstrip()))
                if status != 0:
                    failures.append("%s against %s" % (name, label))
                if sasl:
                    status, out = run_script(argv, addr, env,
                                             (USER, PASSWORD + "x"))
                    print("--- %s against %s, wrong password: exit %d "
                          "(must fail)\n%s" % (name, label, status,
                                               out.rstrip()[-400:]))
                    if status == 0:
                        failures.append("%s against %s with a wrong "
                                        "password passed" % (name, label))
            finally:
                status = srv.stop()
                if kind == "cached" and status != 0:
                    failures.append("cached %s exited with %s"
                                    % (" ".join(args), status))
    if failures:
        print("FAIL: " + "; ".join(failures))
        sys.exit(1)
    if skips:
        for s in skips:
            print("SKIP: %s: %s" % (name, s))
        sys.exit(77)
    print("PASS: %s against memcached and cached, with and without SASL"
          % name)
    sys.exit(0)
