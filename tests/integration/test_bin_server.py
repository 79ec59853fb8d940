"""The binary protocol on the real server (issue 12): protocol choice by
the first byte and -B, value bytes never run as commands, framing errors
and hostile lengths, the counters binary traffic moves, and SASL PLAIN
with -S.  memccapable's binary half (test_memccapable.sh) covers each
opcode's basic replies; the byte-for-byte comparison with memcached lives
in the binary differential corpus.

Replies are read by their header's length, never by waiting for time to
pass; a connection the server closes is seen as end of file.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CLOSED, INSTRUMENTED, TIME_SCALE, Server, rss_kib  # noqa: E402

OPAQUE = 0x11223344    # no "\n" byte: -B ascii reads it as one line
GET, SET, ADD, DELETE, INCR, QUIT, FLUSH, GETQ, NOOP, VERSION = \
    0x00, 0x01, 0x02, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0a, 0x0b
GETK, GETKQ, APPEND, STAT, SETQ = 0x0c, 0x0d, 0x0e, 0x10, 0x11
TOUCH, GAT, SASL_LIST, SASL_AUTH = 0x1c, 0x1d, 0x20, 0x21


def req(op, key=b"", ext=b"", val=b"", cas=0, bodylen=None, keylen=None,
        magic=0x80):
    """One binary request."""
    body = len(ext) + len(key) + len(val) if bodylen is None else bodylen
    nkey = len(key) if keylen is None else keylen
    return struct.pack(">BBHBBHIIQ", magic, op, nkey, len(ext), 0, 0, body,
                       OPAQUE, cas) + ext + key + val


def set_ext(flags=0, exptime=0):
    return struct.pack(">II", flags, exptime)


def arith_ext(delta, initial=0, exptime=0):
    return struct.pack(">QQI", delta, initial, exptime)


class Resp:
    """One binary response, decoded."""

    def __init__(self, head, body):
        (magic, self.op, nkey, next_, _, self.status, blen, self.opaque,
         self.cas) = struct.unpack(">BBHBBHIIQ", head)
        assert magic == 0x81, head
        assert blen == len(body)
        self.ext = body[:next_]
        self.key = body[next_:next_ + nkey]
        self.value = body[next_ + nkey:]

    def __repr__(self):
        return "Resp(op=%#x status=%#x key=%r value=%r)" % (
            self.op, self.status, self.key, self.value[:60])


class BinConn:
    """A raw connection reading binary responses by their lengths."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             10 * TIME_SCALE)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _exactly(self, n):
        """n bytes, or None when the server closed first."""
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def resp(self):
        """The next response; fails if the server closed instead."""
        head = self._exactly(24)
        assert head is not None, "closed; had %r" % self.buf
        blen = struct.unpack(">I", head[8:12])[0]
        body = self._exactly(blen)
        assert body is not None, "closed mid-response"
        return Resp(head, body)

    def until_noop(self):
        """Responses up to and without the next NOOP's."""
        out = []
        while True:
            r = self.resp()
            if r.op == NOOP:
                return out
            out.append(r)

    def closed(self):
        """True once the server closed with nothing more sent."""
        return self._exactly(1) is None

    def call(self, data):
        """Sends data and a NOOP; returns the responses before NOOP's."""
        self.send(data + req(NOOP))
        return self.until_noop()

    def stats(self, group=b""):
        self.send(req(STAT, key=group))
        out = {}
        while True:
            r = self.resp()
            assert r.status == 0, r
            if not r.key:
                return out
            out[r.key.decode()] = r.value.decode()


class BinaryServer(unittest.TestCase):
    """One cached, default options."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("-I", "64k", "-m", "16")

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0

    def conn(self):
        c = BinConn(self.srv.port)
        self.addCleanup(c.close)
        return c

    def test_value_bytes_never_commands(self):
        c = self.conn()
        rs = c.call(req(SET, b"bv:keep", set_ext(), b"safe") +
                    req(SET, b"bv:evil", set_ext(3),
                        b"x\r\nflush_all\r\ndelete bv:keep\r\n") +
                    req(GET, b"bv:keep") + req(GET, b"bv:evil"))
        self.assertEqual([r.status for r in rs], [0, 0, 0, 0])
        self.assertEqual(rs[2].value, b"safe")
        self.assertEqual(rs[3].value, b"x\r\nflush_all\r\ndelete bv:keep\r\n")
        self.assertEqual(rs[3].ext, struct.pack(">I", 3))
        # a text client sees the same item
        t = self.srv.connect()
        self.addCleanup(t.close)
        self.assertEqual(t.call(b"get bv:keep\r\n"),
                         b"VALUE bv:keep 0 4\r\nsafe\r\nEND\r\n")

    def test_split_at_every_byte(self):
        stream = (req(SET, b"sp:k", set_ext(9), b"value") +
                  req(GETK, b"sp:k") + req(INCR, b"sp:n", arith_ext(2, 40)) +
                  req(GETKQ, b"sp:none") + req(APPEND, b"sp:k", val=b"!") +
                  req(GET, b"sp:k") + req(NOOP))
        c = self.conn()
        for i in range(len(stream)):
            c.send(stream[i:i + 1])
        rs = c.until_noop()
        self.assertEqual([(r.op, r.status) for r in rs],
                         [(SET, 0), (GETK, 0), (INCR, 0), (APPEND, 0),
                          (GET, 0)])
        self.assertEqual(rs[1].key, b"sp:k")
        self.assertEqual(rs[1].value, b"value")
        self.assertEqual(rs[2].value, struct.pack(">Q", 40))
        self.assertEqual(rs[4].value, b"value!")
        for r in rs:
            self.assertEqual(r.opaque, OPAQUE)

    def test_cas_in_every_store_reply(self):
        c = self.conn()
        rs = c.call(req(SET, b"cs:k", set_ext(), b"1"))
        cas = rs[0].cas
        self.assertNotEqual(cas, 0)
        rs = c.call(req(GET, b"cs:k") +
                    req(SET, b"cs:k", set_ext(), b"2", cas=cas + 1000) +
                    req(SET, b"cs:k", set_ext(), b"3", cas=cas) +
                    req(DELETE, b"cs:k", cas=1))
        self.assertEqual(rs[0].cas, cas)
        self.assertEqual((rs[1].status, rs[1].value),
                         (2, b"Data exists for key."))
        self.assertEqual(rs[2].status, 0)
        self.assertNotIn(rs[2].cas, (0, cas))
        self.assertEqual(rs[3].status, 2)

    def test_quiet(self):
        c = self.conn()
        rs = c.call(req(SETQ, b"q:a", set_ext(), b"A") +
                    req(GETQ, b"q:missing") + req(GETKQ, b"q:a") +
                    req(ADD, b"q:a", set_ext(), b"B") +
                    req(0x14, b"q:missing"))
        self.assertEqual([(r.op, r.status) for r in rs],
                         [(GETKQ, 0), (ADD, 2), (0x14, 1)])
        self.assertEqual(rs[0].key, b"q:a")

    def test_large_value(self):
        c = self.conn()
        big = bytes(range(256)) * 200
        rs = c.call(req(SET, b"lv:k", set_ext(), big) + req(GET, b"lv:k"))
        self.assertEqual(rs[0].status, 0)
        self.assertEqual(rs[1].value, big)

    def test_too_large_is_skipped(self):
        c = self.conn()
        rs = c.call(req(SET, b"tl:k", set_ext(), b"old"))
        rs = c.call(req(SET, b"tl:k", set_ext(), b"x" * (65 * 1024)) +
                    req(GET, b"tl:k"))
        self.assertEqual((rs[0].status, rs[0].value), (3, b"Too large."))
        # as memcached: a refused set leaves no stale value
        self.assertEqual((rs[1].status, rs[1].value), (1, b"Not found"))

    def test_unknown_opcode_keeps_connection(self):
        c = self.conn()
        rs = c.call(req(0x50, b"ab", val=b"xyz") + req(0x1f) +
                    req(VERSION))
        self.assertEqual([(r.op, r.status) for r in rs],
                         [(0x50, 0x81), (0x1f, 0x81), (VERSION, 0)])
        self.assertEqual(rs[0].value, b"Unknown command")
        self.assertTrue(rs[2].value.startswith(b"1.6.18"))

    def test_framing_errors_close(self):
        cases = [
            (req(GET, b"abc", bodylen=2), 0x81, b"Unknown command"),
            (req(GET, keylen=251, bodylen=251), 0x04, b"Invalid arguments"),
            (req(GET, b"k", ext=b"\0\0\0\0"), 0x04, b"Invalid arguments"),
            (req(SET, b"k", ext=b"\0" * 4, val=b"v"), 0x04,
             b"Invalid arguments"),
        ]
        for data, status, text in cases:
            c = self.conn()
            c.send(data + req(NOOP))
            r = c.resp()
            self.assertEqual((r.status, r.value), (status, text))
            self.assertTrue(c.closed(), data)
        # a bad magic byte on a binary connection: closed, no reply
        c = self.conn()
        c.send(req(NOOP) + req(NOOP, magic=0x81) + req(NOOP))
        self.assertEqual(c.resp().op, NOOP)
        self.assertTrue(c.closed())

    def test_huge_lengths_close_without_buffering(self):
        before = rss_kib(self.srv.pid)
        c = self.conn()
        c.send(req(SET, b"k", set_ext(), bodylen=0x7fffffff))
        r = c.resp()
        self.assertEqual((r.status, r.value), (3, b"Too large."))
        self.assertTrue(c.closed())
        c = self.conn()
        c.send(req(0x60, bodylen=0xffffffff) + b"\0" * 65536)
        r = c.resp()
        self.assertEqual(r.status, 0x81)
        self.assertTrue(c.closed())
        if not INSTRUMENTED:
            self.assertLess(rss_kib(self.srv.pid) - before, 16 * 1024)

    def test_quit(self):
        c = self.conn()
        c.send(req(QUIT) + req(NOOP))
        self.assertEqual(c.resp().op, QUIT)
        self.assertTrue(c.closed())
        c = self.conn()
        c.send(req(0x17) + req(NOOP))
        self.assertTrue(c.closed())

    def test_text_and_binary_side_by_side(self):
        t = self.srv.connect()
        self.addCleanup(t.close)
        self.assertEqual(t.call(b"set tb:k 1 0 1\r\nA\r\n"), b"STORED\r\n")
        c = self.conn()
        rs = c.call(req(GET, b"tb:k"))
        self.assertEqual((rs[0].value, rs[0].ext), (b"A", b"\0\0\0\1"))
        # a text connection stays text: 0x80 later is just a bad line
        self.assertEqual(t.call(req(VERSION) + b"\r\n"), b"ERROR\r\n")

    def test_detail_dump_is_one_stat(self):
        # The text protocol's raw PREFIX lines would break binary framing:
        # binary STAT "detail dump" sends them as one stat, "detail".
        t = self.srv.connect()
        self.addCleanup(t.close)
        self.assertEqual(t.call(b"stats detail on\r\n"), b"OK\r\n")
        self.addCleanup(t.call, b"stats detail off\r\n")
        self.assertEqual(t.call(b"set dd:k 0 0 1\r\nA\r\nget dd:k\r\n"),
                         b"STORED\r\nVALUE dd:k 0 1\r\nA\r\nEND\r\n")
        c = self.conn()
        out = c.stats(b"detail dump")
        self.assertEqual(list(out), ["detail"])
        self.assertIn("PREFIX dd get 1 hit 1 set 1 del 0\r\n", out["detail"])
        self.assertEqual(len(c.call(req(VERSION))), 1)

    def test_stats_count_binary_traffic(self):
        c = self.conn()
        before = c.stats()
        c.call(req(SET, b"st:k", set_ext(), b"5") + req(GET, b"st:k") +
               req(GET, b"st:none") + req(TOUCH, b"st:k", b"\0\0\0\0") +
               req(GAT, b"st:none", b"\0\0\0\0") +
               req(INCR, b"st:k", arith_ext(1)) +
               req(INCR, b"st:none", arith_ext(1, 0, 0xffffffff)) +
               req(DELETE, b"st:k") + req(DELETE, b"st:k") + req(FLUSH))
        after = c.stats()
        delta = {k: int(after[k]) - int(before[k]) for k in (
            "cmd_get", "get_hits", "get_misses", "cmd_set", "cmd_touch",
            "touch_hits", "touch_misses", "incr_hits", "incr_misses",
            "delete_hits", "delete_misses", "cmd_flush")}
        self.assertEqual(delta, {
            "cmd_get": 2, "get_hits": 1, "get_misses": 1, "cmd_set": 1,
            "cmd_touch": 2, "touch_hits": 1, "touch_misses": 1,
            "incr_hits": 1, "incr_misses": 1, "delete_hits": 1,
            "delete_misses": 1, "cmd_flush": 1})
        self.assertEqual(c.stats(b"settings")["binding_protocol"],
                         "auto-negotiate")
        r = c.call(req(STAT, b"nosuch"))[0]
        self.assertEqual((r.status, r.value), (1, b"Not found"))

    def test_sasl_off(self):
        c = self.conn()
        rs = c.call(req(SASL_LIST) +
                    req(SASL_AUTH, b"PLAIN", val=b"\0u\0p"))
        self.assertEqual([r.status for r in rs], [0x81, 0x81])


class ProtocolFlag(unittest.TestCase):
    """-B ascii and -B binary."""

    def test_ascii_only(self):
        with Server("-B", "ascii") as srv:
            c = BinConn(srv.port)
            # read as a text line: no binary reply, an ERROR at the newline
            c.send(req(VERSION) + b"\r\nversion\r\n")
            self.assertEqual(c._exactly(7), b"ERROR\r\n")
            self.assertTrue(c._exactly(8).startswith(b"VERSION "))
            c.close()

    def test_binary_only(self):
        with Server("-B", "binary") as srv:
            c = BinConn(srv.port)
            c.send(b"version\r\n")
            self.assertTrue(c.closed())
            c.close()
            c = BinConn(srv.port)
            self.assertEqual(c.call(req(VERSION))[0].status, 0)
            self.assertEqual(c.stats(b"settings")["binding_protocol"],
                             "binary")
            c.close()


class Sasl(unittest.TestCase):
    """-S with a -Y password file, and MEMCACHED_SASL_PWDB."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.pwfile = os.path.join(cls.tmp.name, "users")
        with open(cls.pwfile, "w") as f:
            f.write("app:s3cret\r\n\nops:pa:ss\n")
        cls.srv = Server("-S", "-Y", cls.pwfile)

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0
        cls.tmp.cleanup()

    def conn(self):
        c = BinConn(self.srv.port)
        self.addCleanup(c.close)
        return c

    def auth(self, c, msg, mech=b"PLAIN"):
        c.send(req(SASL_AUTH, mech, val=msg))
        return c.resp()

    def test_unauthenticated(self):
        c = self.conn()
        # memcached: NOOP is not allowed before authentication either
        c.send(req(NOOP) + req(VERSION))
        r = c.resp()
        self.assertEqual((r.op, r.status, r.value),
                         (NOOP, 0x20, b"Auth failure."))
        self.assertTrue(c.closed())
        c = self.conn()
        c.send(req(VERSION) + req(SASL_LIST) + req(GET, b"k"))
        self.assertEqual(c.resp().status, 0)
        r = c.resp()
        self.assertEqual((r.status, r.value), (0, b"PLAIN"))
        r = c.resp()
        self.assertEqual((r.status, r.value), (0x20, b"Auth failure."))
        self.assertTrue(c.closed())
        # a huge store before login: refused for the login, not the size
        c = self.conn()
        c.send(req(SET, b"k", set_ext(), bodylen=0x7fffffff))
        r = c.resp()
        self.assertEqual((r.status, r.value), (0x20, b"Auth failure."))
        self.assertTrue(c.closed())

    def test_text_refused(self):
        t = self.srv.connect()
        self.addCleanup(t.close)
        self.assertEqual(t.call(b"get k\r\n"), CLOSED)

    def test_login(self):
        c = self.conn()
        r = self.auth(c, b"\0app\0wrong")
        self.assertEqual((r.status, r.value), (0x20, b"Auth failure."))
        r = self.auth(c, b"\0app\0s3cre")
        self.assertEqual(r.status, 0x20)
        r = self.auth(c, b"\0app\0s3cret", mech=b"CRAM-MD5")
        self.assertEqual(r.status, 0x20)
        r = self.auth(c, b"other\0app\0s3cret")
        self.assertEqual(r.status, 0x20)
        r = self.auth(c, b"\0app\0s3cret")
        self.assertEqual((r.status, r.value), (0, b"Authenticated"))
        rs = c.call(req(SET, b"s:k", set_ext(), b"v") + req(GET, b"s:k"))
        self.assertEqual([r.status for r in rs], [0, 0])
        st = c.stats()
        self.assertGreaterEqual(int(st["auth_cmds"]), 5)
        self.assertGreaterEqual(int(st["auth_errors"]), 4)
        self.assertEqual(c.stats(b"settings")["auth_enabled_sasl"], "yes")
        # a password holding ':' and an authzid naming the user
        c2 = self.conn()
        r = self.auth(c2, b"ops\0ops\0pa:ss")
        self.assertEqual(r.status, 0)
        self.assertEqual(c2.call(req(GET, b"s:k"))[0].value, b"v")

    def test_env_password_file_and_bad_options(self):
        old = os.environ.get("MEMCACHED_SASL_PWDB")
        os.environ["MEMCACHED_SASL_PWDB"] = self.pwfile
        try:
            with Server("-S") as srv:
                c = BinConn(srv.port)
                c.send(req(SASL_AUTH, b"PLAIN", val=b"\0app\0s3cret"))
                self.assertEqual(c.resp().status, 0)
                c.close()
        finally:
            if old is None:
                del os.environ["MEMCACHED_SASL_PWDB"]
            else:
                os.environ["MEMCACHED_SASL_PWDB"] = old
        for args, status in ((["-S", "-B", "ascii", "-Y", self.pwfile], 64),
                             (["-Y", self.pwfile, "-B", "binary"], 64),
                             (["-S", "-Y", self.pwfile + ".none"], 1)):
            env = dict(os.environ)
            env.pop("MEMCACHED_SASL_PWDB", None)
            p = subprocess.run([self.srv.binary, "-p", "0"] + args,
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=env,
                               timeout=10 * TIME_SCALE)
            self.assertEqual(p.returncode, status, (args, p.stderr))


if __name__ == "__main__":
    unittest.main()
