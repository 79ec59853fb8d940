"""Prometheus' memcached_exporter v0.10 against cached and memcached 1.6.18
(issue 13): cached must give memcached_up 1 and the same metric families
as memcached gives after the same traffic.

The exporter is vendored under tests/vendor/memcached_exporter (README
there) and built offline from Debian's Go packages into the build dir,
with its Go build cache beside it, so only the first run pays for the
build.  No Go toolchain or packages (build.sh installs them when it can),
or no memcached: the file skips loudly (exit 77, SKIP and why on stderr).
"""
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.request

from common import Server
import serverctl
from test_stats import MEMCACHED, fill, talk

TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", os.getcwd())
TOP_SRCDIR = os.environ.get(
    "TOP_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "..", ".."))
# $EXPORTER_SRC overrides where the vendored sources are.
EXPORTER_SRC = os.environ.get(
    "EXPORTER_SRC", os.path.join(TOP_SRCDIR, "tests", "vendor",
                                 "memcached_exporter"))
EXPORTER_DIR = os.path.join(TOP_BUILDDIR, "exporter")
EXPORTER = os.path.join(EXPORTER_DIR, "memcached_exporter")


def build_exporter():
    """The exporter binary (built once into the build dir, with its Go
    build cache there too), or None with the reason why not."""
    if os.access(EXPORTER, os.X_OK):
        return EXPORTER, None
    script = os.path.join(EXPORTER_SRC, "build.sh")
    if not os.path.exists(script):
        return None, "vendored exporter not found at %s" % EXPORTER_SRC
    os.makedirs(EXPORTER_DIR, exist_ok=True)
    env = dict(os.environ, GOCACHE=os.path.join(EXPORTER_DIR, "gocache"))
    r = subprocess.run(["sh", script, EXPORTER_DIR], env=env,
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return None, "exporter build failed: " + r.stderr.strip()[-300:]
    return EXPORTER, None


def scrape(exporter, port):
    """Runs the exporter against 127.0.0.1:port; returns /metrics."""
    for _ in range(10):
        # a port outside the ephemeral range, retried if taken
        web = 20000 + int.from_bytes(os.urandom(2), "big") % 12000
        proc = subprocess.Popen(
            [exporter, "--memcached.address=127.0.0.1:%d" % port,
             "--web.listen-address=127.0.0.1:%d" % web],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(
                            "http://127.0.0.1:%d/metrics" % web,
                            timeout=5) as r:
                        return r.read().decode()
                except OSError:
                    time.sleep(0.05)
        finally:
            proc.kill()
            err = proc.communicate()[1]
        if b"address already in use" not in err:
            raise AssertionError("exporter failed: %r" % err[-500:])
    raise AssertionError("no free port for the exporter")


def families(metrics):
    """The metric names of an exposition, without labels."""
    return {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            for line in metrics.splitlines()
            if line and not line.startswith("#")}


class Exporter(unittest.TestCase):
    """One scrape of each server after the same traffic."""

    @classmethod
    def setUpClass(cls):
        cls.cached = Server("-m", "64", "-t", "2")
        cls.mc = serverctl.ServerProcess(MEMCACHED, ["-m", "64", "-t", "2"],
                                         kind="memcached")
        cls.mc.start()
        for port in (cls.cached.port, cls.mc.port):
            fill(port)
            talk(port, b"delete k:3\r\nincr nokey 1\r\ntouch k:4 0\r\n")

    @classmethod
    def tearDownClass(cls):
        cls.mc.stop()
        status = cls.cached.stop()
        if status != 0:
            raise AssertionError("cached exited with %d" % status)

    def test_exporter(self):
        exporter = EXPORTER
        ours = scrape(exporter, self.cached.port)
        theirs = scrape(exporter, self.mc.port)
        self.assertIn("\nmemcached_up 1\n", theirs)
        self.assertIn("\nmemcached_up 1\n", ours)
        self.assertEqual(
            {f for f in families(ours) if f.startswith("memcached_")},
            {f for f in families(theirs) if f.startswith("memcached_")})
        self.assertIn('memcached_slab_current_items{slab="1"} 19', ours)
        self.assertIn('memcached_commands_total{command="get",status="hit"}'
                      ' 2', ours)



if __name__ == "__main__":
    if MEMCACHED is None:
        print("SKIP: memcached (the oracle) is not installed",
              file=sys.stderr)
        sys.exit(77)
    built, why = build_exporter()
    if built is None:
        print("SKIP: " + why, file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
