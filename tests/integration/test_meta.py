"""Meta protocol tests that a byte-for-byte corpus cannot make (issue 11):
the stale-while-revalidate races between many clients, the traffic of a
meta-only client (Dalli 5), and the CAS values the E flag (newer than
memcached 1.6.18) sets.

CACHED_TEST_AGAINST=memcached runs the same tests against the oracle,
Debian's memcached ($MEMCACHED, else the one on $PATH); the default is
cached ($CACHED).  CACHED_META_RACE_ROUNDS (default 3) is how many times
each race runs, each on a new key.
"""
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import TIME_SCALE, Server  # noqa: E402
from test_differential import MEMCACHED, Memcached  # noqa: E402

AGAINST = os.environ.get("CACHED_TEST_AGAINST", "cached")
ROUNDS = int(os.environ.get("CACHED_META_RACE_ROUNDS", "3"))
CLIENTS = 32


class Conn:
    """A raw connection that reads meta replies one at a time."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             10 * TIME_SCALE)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError("server closed; had %r" % self.buf[:200])
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reply(self):
        """One meta reply: (its line's tokens, the data block or None)."""
        toks = self.line().split(b" ")
        if toks[0] == b"VA":
            data = self.exactly(int(toks[1]) + 2)
            assert data.endswith(b"\r\n"), data
            return toks, data[:-2]
        return toks, None

    def call(self, data):
        self.send(data)
        return self.reply()


def flags_of(toks):
    """The single-letter reply flags (W X Z) of a reply line."""
    return {t for t in toks[1:] if t in (b"W", b"X", b"Z")}


class MetaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if AGAINST == "memcached":
            if MEMCACHED is None:
                raise unittest.SkipTest("memcached not installed")
            cls.server = Memcached()
        elif AGAINST == "cached":
            cls.server = Server("-m", "64", "-t", "2")
        else:
            raise ValueError("CACHED_TEST_AGAINST: cached or memcached")

    @classmethod
    def tearDownClass(cls):
        status = cls.server.stop()
        if AGAINST == "cached" and status != 0:
            raise AssertionError("cached exited with %d" % status)

    def conn(self):
        c = Conn(self.server.port)
        self.addCleanup(c.close)
        return c

    def race(self, request):
        """Sends request on CLIENTS connections at once (a barrier, no
        sleeps) and returns every client's reply."""
        conns = [Conn(self.server.port) for _ in range(CLIENTS)]
        try:
            return self._race(conns, request)
        finally:
            for c in conns:     # rounds must not pile up connections
                c.close()

    def _race(self, conns, request):
        barrier = threading.Barrier(CLIENTS, timeout=30 * TIME_SCALE)
        replies = [None] * CLIENTS
        errors = []

        def client(i):
            try:
                barrier.wait()
                replies[i] = conns[i].call(request)
            except Exception as e:      # reported by the main thread
                errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(i,))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * TIME_SCALE)
        self.assertFalse([t for t in threads if t.is_alive()], "hung")
        self.assertEqual(errors, [])
        return replies

    def test_win_race(self):
        """32 clients mg a missing key with N30: exactly one wins (W),
        the others see Z; after md I, exactly one of 32 mg wins the
        recache (X W), the others get the stale value with X Z."""
        counts = {"vivify_W": 0, "vivify_Z": 0, "stale_W": 0, "stale_Z": 0}
        for r in range(ROUNDS):
            key = b"race%d_%d" % (os.getpid(), r)
            won = self.vivify_race(key)
            counts["vivify_W"] += won
            counts["vivify_Z"] += CLIENTS - won
            c = Conn(self.server.port)
            try:
                won = self.stale_race(c, key)
            finally:
                c.close()
            counts["stale_W"] += won
            counts["stale_Z"] += CLIENTS - won
        sys.stderr.write("%s: %d rounds of %d clients: %r\n"
                         % (AGAINST, ROUNDS, CLIENTS, counts))

    def vivify_race(self, key):
        """mg N30 on a missing key from every client; returns the W count
        (after asserting it is 1)."""
        replies = self.race(b"mg " + key + b" v c N30\r\n")
        cas = set()
        won = 0
        for toks, data in replies:
            self.assertEqual(toks[:2], [b"VA", b"0"], toks)
            self.assertEqual(data, b"")
            self.assertNotIn(b"X", toks)
            f = flags_of(toks)
            self.assertIn(f, ({b"W"}, {b"Z"}), toks)
            won += f == {b"W"}
            cas.add(next(t for t in toks if t.startswith(b"c")))
        self.assertEqual(won, 1, replies)
        self.assertEqual(len(cas), 1, "one placeholder, one CAS")
        return won

    def stale_race(self, c, key):
        """Stores key, marks it stale with md I, then mg from every
        client; returns the W count (after asserting it is 1)."""
        self.assertEqual(c.call(b"ms " + key + b" 5 T0\r\nfresh\r\n")[0],
                         [b"HD"])
        self.assertEqual(c.call(b"md " + key + b" I\r\n")[0], [b"HD"])
        replies = self.race(b"mg " + key + b" v c\r\n")
        won = 0
        for toks, data in replies:
            self.assertEqual(toks[:2], [b"VA", b"5"], toks)
            self.assertEqual(data, b"fresh")
            f = flags_of(toks)
            self.assertIn(f, ({b"X", b"W"}, {b"X", b"Z"}), toks)
            won += b"W" in f
        self.assertEqual(won, 1, replies)
        # the winner's recache clears the stale state
        self.assertEqual(c.call(b"ms " + key + b" 3 T0\r\nnew\r\n")[0],
                         [b"HD"])
        self.assertEqual(c.call(b"mg " + key + b" v\r\n"),
                         ([b"VA", b"3"], b"new"))
        return won

    def test_dalli_traffic(self):
        """Dalli 5's requests on one connection: ms with c T0 F5 (its
        set), mg v f c (its get), md q then mn (its quiet delete)."""
        c = self.conn()
        for n in range(300):
            key = b"dalli:%d" % n
            value = (b"v%d\r\n" % n) * (n % 7) + bytes(range(n % 256))
            c.send(b"ms %s %d c T0 F5\r\n%s\r\n" % (key, len(value), value))
            toks, _ = c.reply()
            self.assertEqual(toks[0], b"HD", toks)
            self.assertEqual(len(toks), 2, toks)
            self.assertTrue(toks[1].startswith(b"c") and toks[1][1:].isdigit())
            cas = toks[1]
            toks, data = c.call(b"mg %s v f c\r\n" % key)
            self.assertEqual(toks, [b"VA", b"%d" % len(value), b"f5", cas])
            self.assertEqual(data, value)
            c.send(b"md %s q\r\nmn\r\n" % key)
            self.assertEqual(c.reply(), ([b"MN"], None))
            self.assertEqual(c.call(b"mg %s v f c\r\n" % key),
                             ([b"EN"], None))
        # a quiet pipeline of gets ended by mn: only the hits answer
        c.send(b"ms dalli:a 1 c T0 F5\r\nA\r\n")
        self.assertEqual(c.reply()[0][0], b"HD")
        c.send(b"mg dalli:a v f c q k\r\nmg dalli:b v f c q k\r\nmn\r\n")
        toks, data = c.reply()
        self.assertEqual((toks[:4], data),
                         ([b"VA", b"1", b"f5", toks[3]], b"A"))
        self.assertEqual(toks[4], b"kdalli:a")
        self.assertEqual(c.reply(), ([b"MN"], None))
        # Dalli sends keys that are not plain ASCII base64 encoded (b)
        c.send(b"ms w6lj 2 c T0 F5 b\r\nhi\r\n")
        self.assertEqual(c.reply()[0][0], b"HD")
        toks, data = c.call(b"mg w6lj v f c b k\r\n")
        self.assertEqual((toks[:3], data), ([b"VA", b"2", b"f5"], b"hi"))
        self.assertIn(b"kw6lj", toks)
        self.assertIn(b"b", toks)
        c.send(b"md w6lj q b\r\nmn\r\n")
        self.assertEqual(c.reply(), ([b"MN"], None))

    @unittest.skipIf(AGAINST == "memcached",
                     "E is newer than memcached 1.6.18, which refuses it")
    def test_explicit_cas(self):
        """E<n> sets the CAS value an item gets when modified
        (protocol.txt; see NEWER_CASES in meta_cases.py)."""
        c = self.conn()
        self.assertEqual(c.call(b"ms e 1 c E12345 T0\r\na\r\n"),
                         ([b"HD", b"c12345"], None))
        self.assertEqual(c.call(b"mg e c v\r\n"),
                         ([b"VA", b"1", b"c12345"], b"a"))
        self.assertEqual(c.call(b"ms e 1 C12345 E777 c\r\nb\r\n"),
                         ([b"HD", b"c777"], None))
        self.assertEqual(c.call(b"md e I E778\r\n"), ([b"HD"], None))
        self.assertEqual(c.call(b"mg e c\r\n"),
                         ([b"HD", b"c778", b"X", b"W"], None))
        self.assertEqual(c.call(b"ma n N0 J5 E42 c v\r\n"),
                         ([b"VA", b"1", b"c42"], b"5"))
        self.assertEqual(c.call(b"ma n E43 c v\r\n"),
                         ([b"VA", b"1", b"c43"], b"6"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
