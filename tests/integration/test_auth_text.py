"""Text-protocol authentication (-Y authfile without -S, issue 14), as
memcached 1.6.18 does it: a connection logs in with a "set" whose data
is "user password" (answered STORED, never stored); before that every
other line, meta commands and garbage included, gets "CLIENT_ERROR
unauthenticated" and the connection stays open.

The scripted exchanges (EXCHANGES) run against cached and, when it is
installed, memcached -Y with the same file; one reply is awaited before
the next request goes, because memcached 1.6.18 loses all but the last
reply of unauthenticated lines that arrive in one read (cached answers
each of them; see test_pipelined).  Without memcached that half is
skipped loudly (SKIP printed), the cached half still runs.

Also: the login split across packets, auth_cmds/auth_errors, "stats
settings" auth_enabled_ascii, SIGHUP rereading the file (a new password
works for new logins, the old one fails, a broken file keeps the old
list and says why, a connection logged in before stays in), and the
options that cannot go with -Y.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (TIME_SCALE, Client, Server, read_log,  # noqa: E402
                    wait_for)
import serverctl  # noqa: E402

MEMCACHED = os.environ.get("MEMCACHED", shutil.which("memcached"))

UNAUTH = b"CLIENT_ERROR unauthenticated\r\n"
FAILURE = b"CLIENT_ERROR authentication failure\r\n"
FORMAT = b"CLIENT_ERROR bad authentication token format\r\n"
LOGIN = b"set auth 0 0 11\r\nuser secret\r\n"

# (name, [(bytes sent, reply awaited), ...]); each on a new connection.
EXCHANGES = [
    ("login", [(LOGIN, b"STORED\r\n"),
               (b"set k1 0 0 1\r\nx\r\n", b"STORED\r\n"),
               (b"get k1\r\n", b"VALUE k1 0 1\r\nx\r\nEND\r\n")]),
    ("login value not stored", [
        (b"set authkey 0 0 11\r\nuser secret\r\n", b"STORED\r\n"),
        (b"get authkey\r\n", b"END\r\n"),
        (b"mg authkey v\r\n", b"EN\r\n")]),
    ("second user, flags and exptime ignored", [
        (b"set x 5 100 7\r\nbob pw2\r\n", b"STORED\r\n"),
        (b"get x\r\n", b"END\r\n")]),
    ("wrong password", [(b"set auth 0 0 11\r\nuser wrong!\r\n", FAILURE),
                        (b"get k1\r\n", UNAUTH),
                        (LOGIN, b"STORED\r\n")]),
    ("unknown user", [(b"set auth 0 0 11\r\nnone secret\r\n", FAILURE)]),
    ("password prefix", [(b"set auth 0 0 10\r\nuser secre\r\n", FAILURE)]),
    ("no login", [(b"get k1\r\n", UNAUTH), (b"version\r\n", UNAUTH),
                  (b"stats\r\n", UNAUTH), (b"quit\r\n", UNAUTH),
                  (b"delete k1 noreply\r\n", UNAUTH),
                  (LOGIN, b"STORED\r\n")]),
    ("meta before login", [(b"mn\r\n", UNAUTH), (b"mg k1 v\r\n", UNAUTH),
                           (b"ms k1 1\r\n", UNAUTH), (b"x\r\n", UNAUTH)]),
    ("other storage commands do not log in", [
        (b"add auth 0 0 11\r\n", UNAUTH), (b"user secret\r\n", UNAUTH)]),
    ("garbage and bad set lines", [(b"foo\r\n", UNAUTH),
                                   (b"set a 0 0\r\n", UNAUTH),
                                   (b"set a 0 0 zz\r\n", UNAUTH)]),
    ("noreply is ignored", [
        (b"set auth 0 0 11 noreply\r\nuser wrong!\r\n", FAILURE),
        (b"set auth 0 0 11 noreply\r\nuser secret\r\n", b"STORED\r\n")]),
    ("spaces", [(b"set auth 0 0 14\r\n  user  secret\r\n", b"STORED\r\n")]),
    ("words after the password", [
        (b"set auth 0 0 13\r\nuser secret x\r\n", b"STORED\r\n")]),
    ("no password", [(b"set auth 0 0 10\r\nusersecret\r\n", FORMAT),
                     (b"set auth 0 0 0\r\n\r\n", FORMAT),
                     (b"set auth 0 0 11\r\nuser\tsecret\r\n", FORMAT)]),
    ("bad terminator", [
        (b"set auth 0 0 4\r\nuserXY",
         b"CLIENT_ERROR bad command line termination\r\n"),
        (LOGIN, b"STORED\r\n")]),
    ("a failed login after one does not log out", [
        (LOGIN, b"STORED\r\n"),
        (b"set auth 0 0 11\r\nuser wrong!\r\n", b"STORED\r\n"),
        (b"get auth\r\n", b"VALUE auth 0 11\r\nuser wrong!\r\nEND\r\n"),
        (b"delete auth\r\n", b"DELETED\r\n")]),
]

# auth_cmds, auth_errors moved by EXCHANGES (memcached counts alike)
LOGINS_OK = 10
LOGINS_FAILED = 4


def run_exchange(port, steps):
    """Runs steps on a new connection; returns the replies."""
    c = connect_port(port)
    got = []
    try:
        for send, want in steps:
            c.send(send)
            got.append(c.read_exactly(len(want)))
    finally:
        c.close()
    return got


def connect_port(port):
    s = socket.create_connection(("127.0.0.1", port), 5 * TIME_SCALE)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Client(s)


def login(port, data):
    """One login on a new connection; its reply."""
    c = connect_port(port)
    try:
        c.send(b"set auth 0 0 %d\r\n%s\r\n" % (len(data), data))
        return c.read_exactly(len(b"STORED\r\n"))
    finally:
        c.close()


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


class AuthTextTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cached-auth-")
        os.chmod(self.tmp.name, 0o755)
        self.authfile = os.path.join(self.tmp.name, "authfile")
        write_file(self.authfile, "user:secret\nbob:pw2\n")
        self.log = open(os.path.join(self.tmp.name, "stderr"), "w+")
        self.srv = Server("-v", "-Y", self.authfile, stderr=self.log)

    def tearDown(self):
        status = self.srv.stop()
        self.log.close()
        self.tmp.cleanup()
        self.assertEqual(status, 0)

    def logged(self, text):
        def has():
            return text.encode() in read_log(self.log)
        return wait_for(has, 10) is not None

    def test_exchanges(self):
        c = self.srv.connect()
        c.send(LOGIN)
        self.assertEqual(c.read_exactly(8), b"STORED\r\n")
        before = c.stats()
        for name, steps in EXCHANGES:
            with self.subTest(name):
                self.assertEqual(run_exchange(self.srv.port, steps),
                                 [want for _, want in steps])
        after = c.stats()
        self.assertEqual(int(after["auth_cmds"]) - int(before["auth_cmds"]),
                         LOGINS_OK + LOGINS_FAILED)
        self.assertEqual(int(after["auth_errors"]) -
                         int(before["auth_errors"]), LOGINS_FAILED)
        st = c.stats(b"settings")
        self.assertEqual(st["auth_enabled_ascii"], self.authfile)
        self.assertEqual(st["auth_enabled_sasl"], "no")
        self.assertEqual(st["binding_protocol"], "ascii")
        c.close()

    def test_split_login(self):
        c = self.srv.connect()
        self.assertTrue(c.send_bytes(LOGIN, step=1))
        self.assertEqual(c.read_exactly(8), b"STORED\r\n")
        self.assertEqual(c.call(b"get auth\r\n"), b"END\r\n")
        c.close()

    def test_pipelined(self):
        c = self.srv.connect()
        c.send(b"get a\r\nmn\r\n" + LOGIN + b"get auth\r\n")
        self.assertEqual(c.read_exactly(2 * len(UNAUTH) + 8 + 5),
                         UNAUTH * 2 + b"STORED\r\nEND\r\n")
        c.close()

    def test_binary_is_text(self):
        # -Y serves text only, as memcached -Y: a binary NOOP header
        # holds a "\n" (opcode 0x0a) and is one refused line
        c = self.srv.connect()
        c.send(bytes([0x80, 0x0a]) + bytes(22))
        self.assertEqual(c.read_exactly(len(UNAUTH)), UNAUTH)
        c.close()

    def test_sighup(self):
        c = self.srv.connect()
        c.send(LOGIN)
        self.assertEqual(c.read_exactly(8), b"STORED\r\n")
        write_file(self.authfile, "user:newpass\n")
        os.kill(self.srv.pid, signal.SIGHUP)
        self.assertTrue(self.logged("auth file reloaded"))
        self.assertEqual(login(self.srv.port, b"user newpass"),
                         b"STORED\r\n")
        self.assertEqual(login(self.srv.port, b"user secret")[:8],
                         FAILURE[:8])
        self.assertEqual(login(self.srv.port, b"bob pw2")[:8], FAILURE[:8])
        # logged in before the reload: still in
        self.assertEqual(c.call(b"get nothing\r\n"), b"END\r\n")
        # a broken file keeps the list in force
        write_file(self.authfile, "no colon here\n")
        os.kill(self.srv.pid, signal.SIGHUP)
        self.assertTrue(self.logged("auth file not reloaded, old list "
                                    "kept: line 1 is not user:password"))
        self.assertEqual(login(self.srv.port, b"user newpass"),
                         b"STORED\r\n")
        os.unlink(self.authfile)
        os.kill(self.srv.pid, signal.SIGHUP)
        self.assertTrue(self.logged("No such file or directory"))
        self.assertEqual(login(self.srv.port, b"user newpass"),
                         b"STORED\r\n")
        self.assertEqual(c.call(b"get nothing\r\n"), b"END\r\n")
        c.close()


class OptionsTest(unittest.TestCase):
    def test_refused(self):
        tmp = tempfile.TemporaryDirectory(prefix="cached-auth-")
        path = os.path.join(tmp.name, "authfile")
        write_file(path, "user:secret\n")
        for args, status in ((["-Y", path, "-B", "binary"], 64),
                             (["-Y", path + ".none"], 1)):
            p = subprocess.run([os.environ.get("CACHED", "./cached"),
                                "-p", "0"] + args,
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE,
                               timeout=10 * TIME_SCALE)
            self.assertEqual(p.returncode, status, (args, p.stderr))
        tmp.cleanup()


@unittest.skipIf(MEMCACHED is None, "memcached (the oracle) not installed")
class MemcachedTest(unittest.TestCase):
    """The same exchanges against memcached -Y."""
    maxDiff = None

    def test_exchanges(self):
        tmp = tempfile.TemporaryDirectory(prefix="cached-auth-")
        os.chmod(tmp.name, 0o755)
        path = os.path.join(tmp.name, "authfile")
        write_file(path, "user:secret\nbob:pw2\n")
        mc = serverctl.ServerProcess(MEMCACHED, ["-Y", path],
                                     kind="memcached",
                                     stderr=subprocess.DEVNULL).start()
        try:
            for name, steps in EXCHANGES:
                with self.subTest(name):
                    self.assertEqual(run_exchange(mc.port, steps),
                                     [want for _, want in steps])
            c = connect_port(mc.port)
            c.send(LOGIN)
            self.assertEqual(c.read_exactly(8), b"STORED\r\n")
            st = c.stats()
            self.assertEqual(int(st["auth_cmds"]),
                             LOGINS_OK + LOGINS_FAILED + 1)
            self.assertEqual(int(st["auth_errors"]), LOGINS_FAILED)
            self.assertEqual(c.stats(b"settings")["auth_enabled_ascii"],
                             path)
            c.close()
        finally:
            mc.stop()
            tmp.cleanup()


if __name__ == "__main__":
    if MEMCACHED is None:
        print("SKIP: memcached (the oracle) not installed: the memcached "
              "half of test_auth_text is skipped", file=sys.stderr)
    result = unittest.main(verbosity=2, exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
