"""Wire-level tests of the real cached binary: exact reply bytes for every
classic text command, malformed input, pipelining, big values, memory
limit, -M, expiry by the background thread and the stats counters.

Expected replies are memcached 1.6's, except where cached is deliberately
stricter (see the comments on those rows).
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, SharedServerTest, rss_kib, wait_for  # noqa: E402

BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
CLOSED = b"<CLOSED>"

# (request, exact reply) on a freshly flushed server and a new connection.
CASES = [
    (b"set k 0 0 5\r\nhello\r\n", b"STORED\r\n"),
    (b"set k 0 0 5\r\nhello\r\nget k\r\n",
     b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n"),
    (b"set k 4294967295 0 1\r\nx\r\nget k\r\n",
     b"STORED\r\nVALUE k 4294967295 1\r\nx\r\nEND\r\n"),
    (b"set k 0 0 0\r\n\r\nget k\r\n", b"STORED\r\nVALUE k 0 0\r\n\r\nEND\r\n"),
    (b"set k 0 0 5\nhello\r\nget k\n",
     b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n"),          # bare LF lines
    (b"set k 0 0 5 noreply\r\nhello\r\nget k\r\n",
     b"VALUE k 0 5\r\nhello\r\nEND\r\n"),
    (b"get nokey\r\n", b"END\r\n"),
    (b"get a b c\r\n", b"END\r\n"),
    (b"set a 1 0 1\r\nA\r\nset c 3 0 1\r\nC\r\nget a b c a\r\n",
     b"STORED\r\nSTORED\r\nVALUE a 1 1\r\nA\r\nVALUE c 3 1\r\nC\r\n"
     b"VALUE a 1 1\r\nA\r\nEND\r\n"),
    (b"get   a    b  \r\n", b"END\r\n"),
    (b"add k 0 0 1\r\na\r\nadd k 0 0 1\r\nb\r\nget k\r\n",
     b"STORED\r\nNOT_STORED\r\nVALUE k 0 1\r\na\r\nEND\r\n"),
    (b"replace k 0 0 1\r\na\r\nset k 0 0 1\r\na\r\nreplace k 5 0 1\r\nb\r\n"
     b"get k\r\n",
     b"NOT_STORED\r\nSTORED\r\nSTORED\r\nVALUE k 5 1\r\nb\r\nEND\r\n"),
    (b"append k 0 0 1\r\na\r\nprepend k 0 0 1\r\na\r\n",
     b"NOT_STORED\r\nNOT_STORED\r\n"),
    (b"set k 7 0 2\r\nbb\r\nappend k 0 0 2\r\ncc\r\nprepend k 0 0 2\r\naa\r\n"
     b"get k\r\n",
     b"STORED\r\nSTORED\r\nSTORED\r\nVALUE k 7 6\r\naabbcc\r\nEND\r\n"),
    (b"cas k 0 0 1 1\r\na\r\n", b"NOT_FOUND\r\n"),
    (b"delete k\r\n", b"NOT_FOUND\r\n"),
    (b"set k 0 0 1\r\na\r\ndelete k\r\ndelete k\r\nget k\r\n",
     b"STORED\r\nDELETED\r\nNOT_FOUND\r\nEND\r\n"),
    (b"set k 0 0 1\r\na\r\ndelete k noreply\r\nget k\r\n", b"STORED\r\nEND\r\n"),
    (b"delete k 0\r\n", b"NOT_FOUND\r\n"),
    (b"delete k 5\r\n", b"CLIENT_ERROR bad command line format.  "
     b"Usage: delete <key> [noreply]\r\n"),
    (b"incr nokey 1\r\n", b"NOT_FOUND\r\n"),
    # a shorter result keeps the old length, padded (as memcached)
    (b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 3\r\ndecr n 100\r\nget n\r\n",
     b"STORED\r\n15\r\n12\r\n0\r\nVALUE n 0 2\r\n0 \r\nEND\r\n"),
    (b"set n 0 0 20\r\n18446744073709551615\r\nincr n 2\r\n",
     b"STORED\r\n1\r\n"),                                     # wraps at 2^64
    (b"set n 0 0 2\r\n99\r\nincr n 1\r\nget n\r\n",
     b"STORED\r\n100\r\nVALUE n 0 3\r\n100\r\nEND\r\n"),
    (b"set n 0 0 3\r\n12a\r\nincr n 1\r\n",
     b"STORED\r\nCLIENT_ERROR cannot increment or decrement "
     b"non-numeric value\r\n"),
    (b"set n 0 0 1\r\n1\r\nincr n abc\r\nincr n -1\r\n",
     b"STORED\r\nCLIENT_ERROR invalid numeric delta argument\r\n"
     b"CLIENT_ERROR invalid numeric delta argument\r\n"),
    (b"set n 0 0 1\r\n1\r\nincr n 18446744073709551616\r\n",
     b"STORED\r\nCLIENT_ERROR invalid numeric delta argument\r\n"),
    (b"set n 0 0 1\r\n5\r\nincr n 1 noreply\r\nget n\r\n",
     b"STORED\r\nVALUE n 0 1\r\n6\r\nEND\r\n"),
    (b"touch k 10\r\n", b"NOT_FOUND\r\n"),
    (b"set k 0 0 1\r\na\r\ntouch k 10\r\n", b"STORED\r\nTOUCHED\r\n"),
    (b"touch k abc\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    (b"set k 3 0 1\r\na\r\ngat 100 k nokey\r\n",
     b"STORED\r\nVALUE k 3 1\r\na\r\nEND\r\n"),
    (b"gat abc k\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    # Negative and past absolute exptimes store nothing visible.
    (b"set k 0 -1 1\r\na\r\nget k\r\n", b"STORED\r\nEND\r\n"),
    (b"set k 0 0 1\r\na\r\nset k 0 1000000000 1\r\nb\r\nget k\r\n",
     b"STORED\r\nSTORED\r\nEND\r\n"),
    (b"set k 0 0 1\r\na\r\ntouch k -1\r\nget k\r\n",
     b"STORED\r\nTOUCHED\r\nEND\r\n"),
    (b"set k 0 0 1\r\na\r\nflush_all\r\nget k\r\n", b"STORED\r\nOK\r\nEND\r\n"),
    (b"set k 0 0 1\r\na\r\nflush_all noreply\r\nget k\r\n", b"STORED\r\nEND\r\n"),
    (b"flush_all abc\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    (b"verbosity 1\r\n", b"OK\r\n"),
    (b"verbosity 0 noreply\r\n", b""),
    (b"verbosity\r\n", b"ERROR\r\n"),
    (b"verbosity abc\r\n", BAD_FORMAT),
    (b"stats foo\r\n", b"ERROR\r\n"),
    (b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n"),
    (b"GET k\r\n", b"ERROR\r\n"),
    (b"get\r\n", b"ERROR\r\n"),
    (b"\r\n", b"ERROR\r\n"),
    (b"bogus command\r\n", b"ERROR\r\n"),
    (b"set k 0 0\r\n", b"ERROR\r\n"),
    # A storage line with a field missing or too many, but a readable
    # length: ERROR, and the value is swallowed (memcached runs it).
    (b"cas k 0 0 5\r\nhello\r\n", b"ERROR\r\n"),
    (b"set k 0 0 5 noreply x\r\nhello\r\n", b"ERROR\r\n"),
    # Bad fields with a valid length: the value is swallowed, not run as
    # commands (memcached would also answer ERROR for the value line).
    (b"set k -1 0 5\r\nhello\r\n", BAD_FORMAT),
    (b"set k 4294967296 0 5\r\nhello\r\n", BAD_FORMAT),
    # an exptime past 32 bits is the absolute time it says (memcached
    # cuts it to 32 bits: this one would be long past)
    (b"set k 0 2147483648 5\r\nhello\r\nget k\r\n",
     b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n"),
    (b"set k 0 abc 5\r\nhello\r\n", BAD_FORMAT),
    (b"cas k 0 0 5 abc\r\nhello\r\n", BAD_FORMAT),
    (b"set " + b"a" * 251 + b" 0 0 5\r\nhello\r\n", BAD_FORMAT),
    # keys take any byte but space and NUL, as in memcached
    (b"set k\x01\t\x7f 0 0 1\r\na\r\nget k\x01\t\x7f\r\n",
     b"STORED\r\nVALUE k\x01\t\x7f 0 1\r\na\r\nEND\r\n"),
    (b"set k\x00 0 0 1\r\na\r\n", BAD_FORMAT),
    (b"get " + b"a" * 251 + b"\r\n", BAD_FORMAT),
    (b"get a " + b"b" * 251 + b"\r\n", BAD_FORMAT),
    # The replies queued before a get with a bad key all go out (memcached
    # 1.6.18 drops them).
    (b"set k 0 0 1\r\na\r\ncas k 0 0\r\nget " + b"a" * 251 + b"\r\n",
     b"STORED\r\nERROR\r\n" + BAD_FORMAT),
    # A bad length loses the framing: reply and close.
    (b"set k 0 0 -1\r\nhello\r\n", BAD_FORMAT + CLOSED),
    (b"set k 0 0 abc\r\nhello\r\n", BAD_FORMAT + CLOSED),
    (b"set k 0 0 4294967296\r\nhello\r\n", BAD_FORMAT + CLOSED),
    (b"set k 0 0 5\r\nhelloXY\r\n",
     b"CLIENT_ERROR bad data chunk\r\n" + CLOSED),
    (b"a" * 3000, CLOSED),
    (b" " * 65536, CLOSED),
    (b"quit\r\n", CLOSED),
    # An HTTP request line closes without a reply, as in memcached: no
    # header of a page's request is ever run as a command.
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", CLOSED),
    (b"foo bar HTTP/1.1\r\n", CLOSED),
    (b"get k HTTP/1.1\r\n", b"END\r\n"),
    (b"foo bar http/1.1\r\n", b"ERROR\r\n"),
    (b"HTTP/1.1\r\n", CLOSED),
]


class WireTest(SharedServerTest):
    def fresh(self):
        c = self.server.connect()
        self.assertEqual(c.call(b"flush_all\r\n"), b"OK\r\n")
        return c

    def test_table(self):
        for request, expected in CASES:
            with self.subTest(request=request[:60]):
                c = self.fresh()
                self.assertEqual(c.call(request), expected)
                c.close()

    def test_every_case_split_at_every_byte(self):
        """Requests arriving a byte at a time give the same replies."""
        for request, expected in CASES[:30]:
            c = self.fresh()
            for i in range(len(request)):
                c.send(request[i:i + 1])
            self.assertEqual(c.call(b""), expected, request)
            c.close()

    def test_gets_cas_roundtrip(self):
        c = self.fresh()
        reply = c.call(b"set k 0 0 1\r\na\r\ngets k\r\n")
        m = re.match(rb"STORED\r\nVALUE k 0 1 (\d+)\r\na\r\nEND\r\n$", reply)
        self.assertIsNotNone(m, reply)
        cas = m.group(1)
        self.assertEqual(c.call(b"cas k 0 0 1 " + cas + b"1\r\nb\r\n"),
                         b"EXISTS\r\n")
        self.assertEqual(c.call(b"cas k 9 0 1 " + cas + b"\r\nb\r\n"),
                         b"STORED\r\n")
        self.assertEqual(c.call(b"cas k 0 0 1 " + cas + b"\r\nc\r\n"),
                         b"EXISTS\r\n")
        reply = c.call(b"gats 0 k\r\n")
        m2 = re.match(rb"VALUE k 9 1 (\d+)\r\nb\r\nEND\r\n$", reply)
        self.assertIsNotNone(m2, reply)
        self.assertNotEqual(m2.group(1), cas)

    def test_pipelined_replies_in_order(self):
        c = self.fresh()
        req = b"".join(b"set k%d 0 0 %d\r\n%d\r\n" % (i, len(b"%d" % i), i)
                       for i in range(500))
        req += b"".join(b"get k%d\r\n" % i for i in range(500))
        expected = b"STORED\r\n" * 500 + b"".join(
            b"VALUE k%d 0 %d\r\n%d\r\nEND\r\n" % (i, len(b"%d" % i), i)
            for i in range(500))
        self.assertEqual(c.call(req), expected)

    def test_big_value_and_too_large(self):
        c = self.fresh()
        value = bytes(range(256)) * 4096          # 1 MiB, every byte value
        self.assertEqual(c.call(b"set big 1 0 %d\r\n%s\r\n"
                                % (len(value), value)), b"STORED\r\n")
        self.assertEqual(c.call(b"get big\r\n"),
                         b"VALUE big 1 %d\r\n%s\r\nEND\r\n"
                         % (len(value), value))
        big = b"x" * (2 << 20)
        self.assertEqual(c.call(b"set big 0 0 %d\r\n%s\r\nget big\r\n"
                                % (len(big), big)),
                         b"SERVER_ERROR object too large for cache\r\nEND\r\n")
        self.assertEqual(c.call(b"set k 0 0 1\r\na\r\n"), b"STORED\r\n")

    def test_multiget_of_large_values(self):
        c = self.fresh()
        value = b"v" * 300000
        c.call(b"set a 0 0 %d\r\n%s\r\n" % (len(value), value))
        reply = c.call(b"get a a a a a a a a a a\r\n")
        self.assertEqual(reply, b"VALUE a 0 300000\r\n" + value + b"\r\n"
                         + (b"VALUE a 0 300000\r\n" + value + b"\r\n") * 9
                         + b"END\r\n")

    def test_unread_huge_multiget_stays_bounded(self):
        """A 100k-key get whose ~100 MB reply the client does not read
        must not make the server buffer that reply."""
        c = self.fresh()
        c.call(b"set v 0 0 1000\r\n" + b"x" * 1000 + b"\r\n")
        rss_before = rss_kib(self.server.proc.pid)
        n = 100000
        c.send(b"get" + b" v" * n + b"\r\n")
        watcher = self.server.connect()

        def stalled_or_grown():
            conns = watcher.stats(b"conns")
            return ("conn_mwrite" in conns.values() or
                    rss_kib(self.server.proc.pid) - rss_before > 16 * 1024)
        self.assertIsNotNone(wait_for(stalled_or_grown, 10))
        grown = rss_kib(self.server.proc.pid) - rss_before
        self.assertLess(grown, 16 * 1024, "server buffered %d KiB" % grown)
        header = b"VALUE v 0 1000\r\n" + b"x" * 1000 + b"\r\n"
        want = len(header) * n + len(b"END\r\n")
        got = 0
        c.sock.settimeout(30)
        while got < want:
            chunk = c.sock.recv(1 << 20)
            self.assertTrue(chunk)
            got += len(chunk)
        self.assertEqual(got, want)
        self.assertEqual(c.call(b"get v\r\n"), header + b"END\r\n")

    def test_stats_counters(self):
        c = self.fresh()
        c.call(b"stats reset\r\n")
        c.call(b"set a 0 0 1\r\n1\r\nget a\r\nget b\r\ndelete b\r\n"
               b"incr a 1\r\ndecr zz 1\r\ntouch a 0\r\ncas a 0 0 1 1\r\nx\r\n")
        s = c.stats()
        expect = {"cmd_get": "2", "get_hits": "1", "get_misses": "1",
                  "cmd_set": "2", "delete_misses": "1", "incr_hits": "1",
                  "decr_misses": "1", "touch_hits": "1", "cmd_touch": "1",
                  "cas_badval": "1", "threads": "2",
                  "limit_maxbytes": str(64 << 20)}
        for name, value in expect.items():
            self.assertEqual(s[name], value, name)
        for name in ("pid", "uptime", "time", "version", "curr_connections",
                     "total_connections", "rejected_connections",
                     "bytes_read", "bytes_written", "bytes", "total_items",
                     "evictions", "expired_unfetched", "evicted_unfetched",
                     "reclaimed", "get_expired", "rusage_user"):
            self.assertIn(name, s)
        self.assertEqual(s["pid"], str(self.server.proc.pid))
        # Items flushed before this test are reclaimed in the background.
        self.assertIsNotNone(wait_for(lambda: c.stats()["curr_items"] == "1",
                                      5))
        self.assertGreater(int(s["bytes"]), 0)
        settings = c.stats(b"settings")
        self.assertEqual(settings["maxbytes"], str(64 << 20))
        self.assertEqual(settings["num_threads"], "2")
        self.assertEqual(settings["item_size_max"], str(1 << 20))
        self.assertIn("items:1:number", c.stats(b"items"))
        self.assertIn("total_malloced", c.stats(b"slabs"))
        conns = c.stats(b"conns")
        self.assertTrue(any(k.endswith(":addr") for k in conns), conns)
        self.assertEqual(c.call(b"stats reset\r\n"), b"RESET\r\n")
        self.assertEqual(c.stats()["cmd_get"], "0")

    def test_value_survives_other_clients_garbage(self):
        good = self.fresh()
        good.call(b"set keep 0 0 4\r\nsafe\r\n")
        for request, _ in CASES:
            if b"flush_all" in request:
                continue
            bad = self.server.connect()
            bad.call(request)
            bad.close()
        self.assertEqual(good.call(b"get keep\r\n"),
                         b"VALUE keep 0 4\r\nsafe\r\nEND\r\n")


class LimitTest(unittest.TestCase):
    def test_memory_limit_evicts_lru(self):
        with Server("-m", "4", "-I", "64k") as srv:
            c = srv.connect()
            c.call(b"set hot 0 0 3\r\nhot\r\n")
            value = b"x" * 100
            for batch in range(100):
                req = b"".join(b"set k%d 0 0 100\r\n%s\r\n" % (batch * 500 + i,
                               value) for i in range(500))
                self.assertEqual(c.call(req + b"get hot\r\n"),
                                 b"STORED\r\n" * 500 +
                                 b"VALUE hot 0 3\r\nhot\r\nEND\r\n")
            s = c.stats()
            self.assertLessEqual(int(s["bytes"]), 4 << 20)
            self.assertGreater(int(s["evictions"]), 0)
            self.assertEqual(c.call(b"get k0\r\n"), b"END\r\n")
            self.assertEqual(c.call(b"get k49999\r\n"),
                             b"VALUE k49999 0 100\r\n" + value + b"\r\nEND\r\n")

    def test_no_evict_refuses(self):
        with Server("-m", "2", "-M", "-I", "64k") as srv:
            c = srv.connect()
            c.call(b"set first 0 0 5\r\nfirst\r\n")
            value = b"y" * 1000
            refused = False
            for i in range(5000):
                r = c.call(b"set k%d 0 0 1000\r\n%s\r\n" % (i, value))
                if r == b"SERVER_ERROR out of memory storing object\r\n":
                    refused = True
                    break
                self.assertEqual(r, b"STORED\r\n")
            self.assertTrue(refused)
            s = c.stats()
            self.assertEqual(s["evictions"], "0")
            self.assertLessEqual(int(s["bytes"]), 2 << 20)
            self.assertEqual(c.call(b"get first\r\n"),
                             b"VALUE first 0 5\r\nfirst\r\nEND\r\n")

    def test_expiry_thread_reclaims_without_reads(self):
        with Server() as srv:
            c = srv.connect()
            req = b"".join(b"set t%d 0 2 10\r\n0123456789\r\n" % i
                           for i in range(2000))
            req += b"".join(b"set p%d 0 0 10\r\n0123456789\r\n" % i
                            for i in range(100))
            start = time.monotonic()
            self.assertEqual(c.call(req), b"STORED\r\n" * 2100)
            before = c.stats()
            self.assertEqual(before["curr_items"], "2100")
            took = wait_for(lambda: c.stats()["curr_items"] == "100", 6)
            self.assertIsNotNone(took, "items with a 2 s TTL not reclaimed")
            elapsed = time.monotonic() - start
            after = c.stats()
            self.assertLess(int(after["bytes"]), int(before["bytes"]) / 10)
            self.assertEqual(after["get_expired"], "0")
            print("2 s TTL items reclaimed %.2f s after the sets" % elapsed)
            self.assertEqual(c.call(b"get p5\r\n"),
                             b"VALUE p5 0 10\r\n0123456789\r\nEND\r\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
