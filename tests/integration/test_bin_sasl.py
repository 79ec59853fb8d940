"""SASL PLAIN in the binary protocol (issue 12), differentially: the
requests of bin_cases.SASL_CASES to memcached 1.6.18 started with
-S -B binary (its users in a Cyrus sasldb, see bin_clients.py) and to
cached -S -B binary -Y <user:password file>, each on a new connection,
replies compared after bin_cases.normalise; deliberate differences in
bin_cases.SASL_DIFFERENCES.  The auth_cmds and auth_errors counters move
alike, but for the differences.

Skips loudly (exit 77) without memcached or saslpasswd2 (sasl2-bin).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import TIME_SCALE, Server  # noqa: E402
import binproto  # noqa: E402
from bin_cases import (SASL_CASES, SASL_DIFFERENCES, SASL_PASSWORD,  # noqa
                       SASL_USER, normalise)
import bin_clients  # noqa: E402
import serverctl  # noqa: E402

MEMCACHED = os.environ.get("MEMCACHED", shutil.which("memcached"))


def exchange(port, request):
    c = binproto.BinClient(port, timeout=5 * TIME_SCALE)
    try:
        return normalise(c.call_raw(request, 2 * TIME_SCALE))
    finally:
        c.close()


def auth_counters(port):
    c = binproto.BinClient(port)
    try:
        c.call(binproto.frame("SASL_AUTH", b"PLAIN", value=b"\0" +
                              SASL_USER + b"\0" + SASL_PASSWORD))
        st = c.stats()
        return int(st["auth_cmds"]), int(st["auth_errors"])
    finally:
        c.close()


@unittest.skipIf(MEMCACHED is None, "memcached (the oracle) not installed")
@unittest.skipIf(shutil.which("saslpasswd2") is None,
                 "saslpasswd2 (sasl2-bin) not installed")
class SaslDifferentialTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="cached-sasl-")
        bin_clients.USER = SASL_USER.decode()
        bin_clients.PASSWORD = SASL_PASSWORD.decode()
        conf, authfile = bin_clients.sasl_setup(cls.tmp.name)
        saved = dict(os.environ)
        os.environ["SASL_CONF_PATH"] = conf
        try:
            cls.memcached = serverctl.ServerProcess(
                MEMCACHED, ["-S", "-B", "binary"], kind="memcached",
                stderr=subprocess.DEVNULL).start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        try:
            cls.cached = Server("-S", "-B", "binary", "-Y", authfile)
        except RuntimeError as e:
            cls.memcached.stop()
            raise unittest.SkipTest("cached does not start with -S -Y "
                                    "(SASL not served): %s" % e)

    @classmethod
    def tearDownClass(cls):
        cls.memcached.stop()
        status = cls.cached.stop()
        cls.tmp.cleanup()
        if status != 0:
            raise AssertionError("cached exited with %d" % status)

    def test_cases(self):
        print("SASL corpus: %d cases" % len(SASL_CASES))
        for request in SASL_CASES:
            with self.subTest(request=request[:60]):
                theirs = exchange(self.memcached.port, request)
                ours = exchange(self.cached.port, request)
                if request in SASL_DIFFERENCES:
                    want_theirs, want_ours, why = SASL_DIFFERENCES[request]
                    self.assertEqual((theirs, ours), (want_theirs, want_ours),
                                     why)
                else:
                    self.assertEqual(ours, theirs, "request %r" % request)

    def test_counters(self):
        for request in SASL_CASES:
            if request in SASL_DIFFERENCES:
                continue
            with self.subTest(request=request[:60]):
                moved = []
                for port in (self.memcached.port, self.cached.port):
                    before = auth_counters(port)
                    exchange(port, request)
                    after = auth_counters(port)
                    moved.append((after[0] - before[0],
                                  after[1] - before[1]))
                self.assertEqual(moved[1], moved[0],
                                 "auth_cmds, auth_errors moved by cached "
                                 "(left), memcached (right)")


if __name__ == "__main__":
    if MEMCACHED is None or shutil.which("saslpasswd2") is None:
        print("SKIP: memcached or saslpasswd2 (sasl2-bin) not installed",
              file=sys.stderr)
        sys.exit(77)
    result = unittest.main(verbosity=2, exit=False).result
    if result.skipped and result.testsRun <= len(result.skipped):
        print("SKIP: %s" % result.skipped[0][1], file=sys.stderr)
        sys.exit(77)
    sys.exit(0 if result.wasSuccessful() else 1)
