#!/usr/bin/env python3
"""test_cached_bench.py -- cached-bench end to end: against the real cached
(preload, pipelined multi-gets, value ranges and TTL mixes, cache-aside
replay, pacing, equal seeds giving equal results, in the text, meta and
binary protocols) and against fakes (text and binary)
server that sends its replies one byte at a time or breaks the framing,
which the reply parser must survive or report.

Run by `make check` (it needs $CACHED and $TOP_BUILDDIR); every wait is
bounded.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import unittest

TOP_SRCDIR = os.environ.get(
    "TOP_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               ".."))
sys.path.insert(0, os.path.join(TOP_SRCDIR, "tests", "integration"))
from common import Server  # noqa: E402

BENCH = os.path.join(os.environ.get("TOP_BUILDDIR", os.getcwd()), "bench",
                     "cached-bench")


def bench(port, *args, check=True):
    """Runs cached-bench -j against port; returns (exit status, report)."""
    out = subprocess.run([BENCH, "-p", str(port), "-j", "-q"] +
                         [str(a) for a in args], capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    if check and out.returncode != 0:
        raise AssertionError("cached-bench exited %d: %s"
                             % (out.returncode, out.stderr))
    report = json.loads(out.stdout) if out.stdout.strip() else None
    return out.returncode, report, out.stderr


class FakeServer:
    """Answers every get line of one connection with `reply`, sent one
    byte at a time, and every other line with STORED (a storage command
    once its value line has come); `answers` maps other line prefixes
    (b"mg ", b"mn", b"ms ") to their replies instead."""

    def __init__(self, reply, answers=None):
        self.reply = reply
        self.answers = answers or {}
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(30)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(30)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        data_line, out_after_data = False, b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    if data_line:
                        data_line, out = False, out_after_data
                    else:
                        out = (self.reply if line.startswith(b"get ")
                               else b"STORED\r\n")
                        for prefix, answer in self.answers.items():
                            if line.startswith(prefix):
                                out = answer
                        if line.startswith((b"set ", b"ms ")):
                            # the reply waits for the value's line
                            data_line, out_after_data, out = True, out, b""
                    for i in range(len(out)):
                        conn.sendall(out[i:i + 1])
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.sock.close()
        self.thread.join(5)


class TestAgainstCached(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = Server("-t", "1", "-m", "64")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_preload_then_pipelined_multiget_all_hit(self):
        _, r, _ = bench(self.server.port, "--preload", "-K", 2000, "-x",
                        "pre:", "-c", 4, "-P", 4, "-k", 5, "-d", 0.3)
        self.assertEqual(r["preload_sets"], 2000)
        self.assertEqual(r["errors"], 0)
        self.assertGreater(r["gets"], 0)
        self.assertEqual(r["get_keys"], 5 * r["gets"])
        self.assertEqual(r["hit_ratio"], 1.0)
        self.assertEqual(r["keys"], r["get_keys"] + r["sets"])
        lat = r["latency_us"]
        self.assertEqual(lat["count"], r["ops"])
        self.assertTrue(0 < lat["p50"] <= lat["p99"] <= lat["p99_9"]
                        <= lat["max"])

    def test_value_range_and_ttl_mix(self):
        _, r, _ = bench(self.server.port, "--preload", "-K", 500, "-x",
                        "mix:", "-v", "0-3000", "-e", "0:1,600:1", "-r",
                        "1:1", "-c", 2, "-d", 0.3)
        self.assertEqual(r["errors"] + r["not_stored"], 0)
        self.assertEqual(r["hit_ratio"], 1.0)
        self.assertGreater(r["sets"], 0)

    def test_miss_set_replay_is_deterministic(self):
        runs = []
        for prefix in ("zA:", "zB:"):
            _, r, _ = bench(self.server.port, "-x", prefix, "-z", 1.0,
                            "-K", 5000, "-r", "1:0", "-m", "-c", 1, "-P", 1,
                            "-n", 3000, "-S", 7)
            runs.append(r)
        a, b = runs
        self.assertEqual(a["gets"], 3000)
        self.assertGreater(a["hits"], 0)
        self.assertGreater(a["misses"], 0)
        self.assertEqual(a["miss_sets"], a["misses"])
        self.assertEqual((a["hits"], a["misses"]), (b["hits"], b["misses"]))

    def test_paced_rate(self):
        _, r, _ = bench(self.server.port, "--preload", "-K", 1000, "-x",
                        "pace:", "-c", 2, "-R", 2000, "-d", 0.5)
        # Pacing is an upper bound; a loaded machine may fall short of it,
        # so only "never faster than asked" is checked, not a time.
        self.assertGreater(r["ops"], 0)
        self.assertLessEqual(r["ops_per_s"], 2000 * 1.1)
        # Requests written near the end may be answered after it.
        self.assertAlmostEqual(r["send_lag_us"]["count"], r["ops"], delta=4)

    def test_meta_preload_get_and_multiget(self):
        for k in (1, 5):
            _, r, _ = bench(self.server.port, "--protocol", "meta",
                            "--preload", "-K", 1000, "-x", "meta%d:" % k,
                            "-c", 2, "-P", 4, "-k", k, "-n", 4000)
            self.assertEqual(r["protocol"], "meta")
            self.assertEqual(r["preload_sets"], 1000)
            self.assertEqual(r["errors"] + r["not_stored"], 0)
            self.assertGreater(r["gets"], 0)
            self.assertGreater(r["sets"], 0)
            self.assertEqual(r["get_keys"], k * r["gets"])
            self.assertEqual(r["hit_ratio"], 1.0)

    def test_meta_counts_as_text(self):
        # The same seeded cache-aside replay, single and multi-key, gives
        # the same hits and misses in both protocols.
        for k in (1, 4):
            runs = []
            for proto in ("text", "meta"):
                _, r, _ = bench(self.server.port, "--protocol", proto,
                                "-x", "cmp%d%s:" % (k, proto), "-z", 1.0,
                                "-K", 5000, "-r", "1:0", "-m", "-k", k,
                                "-c", 1, "-n", 1500, "-S", 3)
                runs.append(r)
            a, b = runs
            self.assertEqual(b["errors"], 0)
            self.assertGreater(b["hits"], 0)
            self.assertGreater(b["misses"], 0)
            self.assertEqual(b["miss_sets"], b["misses"])
            self.assertEqual((a["hits"], a["misses"]),
                             (b["hits"], b["misses"]))

    def test_binary_preload_get_and_multiget(self):
        for k in (1, 5):
            _, r, _ = bench(self.server.port, "--protocol", "binary",
                            "--preload", "-K", 1000, "-x", "bin%d:" % k,
                            "-c", 2, "-P", 4, "-k", k, "-n", 4000)
            self.assertEqual(r["protocol"], "binary")
            self.assertEqual(r["preload_sets"], 1000)
            self.assertEqual(r["errors"] + r["not_stored"], 0)
            self.assertGreater(r["gets"], 0)
            self.assertGreater(r["sets"], 0)
            self.assertEqual(r["get_keys"], k * r["gets"])
            self.assertEqual(r["hit_ratio"], 1.0)

    def test_binary_counts_as_text(self):
        # the seeded cache-aside replay of test_meta_counts_as_text
        for k in (1, 4):
            runs = []
            for proto in ("text", "binary"):
                _, r, _ = bench(self.server.port, "--protocol", proto,
                                "-x", "bcmp%d%s:" % (k, proto), "-z", 1.0,
                                "-K", 5000, "-r", "1:0", "-m", "-k", k,
                                "-c", 1, "-n", 1500, "-S", 3)
                runs.append(r)
            a, b = runs
            self.assertEqual(b["errors"], 0)
            self.assertGreater(b["misses"], 0)
            self.assertEqual(b["miss_sets"], b["misses"])
            self.assertEqual((a["hits"], a["misses"]),
                             (b["hits"], b["misses"]))

    def test_binary_set_batch(self):
        c = self.server.connect()
        before = int(c.stats()["cmd_set"])
        _, r, _ = bench(self.server.port, "--protocol", "binary", "-B", 10,
                        "-r", "0:1", "-x", "batch:", "-c", 1, "-P", 2,
                        "-n", 50)
        after = int(c.stats()["cmd_set"])
        c.close()
        self.assertEqual(r["errors"] + r["not_stored"], 0)
        self.assertEqual(r["sets"] % 10, 0)
        self.assertGreaterEqual(r["sets"], 500)
        self.assertEqual(after - before, r["sets"])

    def test_preload_only(self):
        _, r, _ = bench(self.server.port, "--preload", "-n", 0, "-K", 300,
                        "-x", "only:")
        self.assertEqual(r["preload_sets"], 300)
        self.assertEqual(r["ops"], 0)


class BinFakeServer:
    """A binary-protocol server for one connection that sends every reply
    one byte at a time: GET hits with "hello", GETKQ hits for keys ending
    in an even digit (misses are silent), NOOP, SET stored; magic sets the
    replies' first byte (0x81 is right)."""

    def __init__(self, magic=0x81):
        self.magic = magic
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def reply(self, op, opaque, key=b"", extras=b"", value=b""):
        return struct.pack(">BBHBBHIIQ", self.magic, op, len(key),
                           len(extras), 0, 0,
                           len(extras) + len(key) + len(value), opaque,
                           7) + extras + key + value

    def _serve(self):
        self.sock.settimeout(30)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(30)
        buf = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 24:
                    (_, op, keylen, extlen, _, _, bodylen, opaque,
                     _) = struct.unpack_from(">BBHBBHIIQ", buf)
                    if len(buf) < 24 + bodylen:
                        break
                    key = buf[24 + extlen:24 + extlen + keylen]
                    buf = buf[24 + bodylen:]
                    out = b""
                    if op == 0x00:
                        out = self.reply(op, opaque, extras=b"\0" * 4,
                                         value=b"hello")
                    elif op == 0x0d and key[-1:] in b"02468":
                        out = self.reply(op, opaque, key, b"\0" * 4, b"hi")
                    elif op in (0x0a, 0x01):
                        out = self.reply(op, opaque)
                    for i in range(len(out)):
                        conn.sendall(out[i:i + 1])
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.sock.close()


class TestParser(unittest.TestCase):

    def test_replies_split_at_every_byte(self):
        fake = FakeServer(b"VALUE key:1 0 5\r\nhello\r\nVALUE key:2 3 2 9"
                          b"\r\nhi\r\nEND\r\n")
        try:
            _, r, _ = bench(fake.port, "-c", 1, "-k", 2, "-r", "1:0",
                            "-n", 20, "-K", 10)
        finally:
            fake.close()
        self.assertEqual(r["gets"], 20)
        self.assertEqual(r["hits"], 40)
        self.assertEqual(r["errors"], 0)

    def test_misses_and_errors_counted(self):
        fake = FakeServer(b"SERVER_ERROR out of memory\r\n")
        try:
            _, r, _ = bench(fake.port, "-c", 1, "-r", "1:0", "-n", 5)
        finally:
            fake.close()
        self.assertEqual(r["errors"], 5)

    def test_meta_replies_split_at_every_byte(self):
        fake = FakeServer(b"", {b"mg ": b"VA 5 f0\r\nhello\r\n"})
        try:
            _, r, _ = bench(fake.port, "--protocol", "meta", "-c", 1,
                            "-r", "1:0", "-n", 20, "-K", 10)
        finally:
            fake.close()
        self.assertEqual((r["gets"], r["hits"], r["errors"]), (20, 20, 0))
        # a batch: quiet mg's answer nothing (or a hit), mn ends it
        fake = FakeServer(b"", {b"mg ": b"", b"mn": b"VA 2 f3 kkey:1 c9\r\n"
                                b"hi\r\nMN\r\n"})
        try:
            _, r, _ = bench(fake.port, "--protocol", "meta", "-c", 1,
                            "-k", 3, "-r", "1:0", "-n", 20, "-K", 10)
        finally:
            fake.close()
        self.assertEqual((r["gets"], r["hits"], r["misses"], r["errors"]),
                         (20, 20, 40, 0))

    def test_meta_errors_counted(self):
        fake = FakeServer(b"", {b"mg ": b"CLIENT_ERROR bad command line "
                                b"format\r\n", b"mn": b"MN\r\n",
                                b"ms ": b"NS\r\n"})
        try:
            _, r, _ = bench(fake.port, "--protocol", "meta", "-c", 1,
                            "-k", 3, "-r", "1:1", "-n", 10, "-S", 2)
        finally:
            fake.close()
        self.assertEqual(r["gets"] + r["sets"], 10)
        self.assertEqual(r["errors"], 3 * r["gets"])
        self.assertEqual(r["not_stored"], r["sets"])

    def test_meta_miss_in_quiet_batch_fails(self):
        # q asks the server to keep misses silent: an EN there is a
        # protocol error, which stops the run as in text mode
        fake = FakeServer(b"", {b"mg ": b"EN\r\n", b"mn": b"MN\r\n"})
        try:
            rc, _, err = bench(fake.port, "--protocol", "meta", "-c", 1,
                               "-k", 2, "-r", "1:0", "-n", 5, check=False)
        finally:
            fake.close()
        self.assertEqual(rc, 1)
        self.assertIn("unexpected reply", err)

    def test_binary_replies_split_at_every_byte(self):
        fake = BinFakeServer()
        try:
            _, r, _ = bench(fake.port, "--protocol", "binary", "-c", 1,
                            "-r", "1:1", "-n", 40, "-K", 10, "-S", 5)
        finally:
            fake.close()
        self.assertEqual(r["gets"] + r["sets"], 40)
        self.assertEqual((r["hits"], r["errors"]), (r["gets"], 0))
        fake = BinFakeServer()
        try:
            _, r, _ = bench(fake.port, "--protocol", "binary", "-c", 1,
                            "-k", 3, "-r", "1:0", "-n", 20, "-K", 10)
        finally:
            fake.close()
        # the fake answers GETKQ for even keys only
        self.assertEqual(r["gets"], 20)
        self.assertEqual(r["hits"] + r["misses"], 60)
        self.assertGreater(r["hits"], 0)
        self.assertGreater(r["misses"], 0)
        self.assertEqual(r["errors"], 0)

    def test_binary_bad_magic_fails(self):
        fake = BinFakeServer(magic=0x80)
        try:
            rc, _, err = bench(fake.port, "--protocol", "binary", "-c", 1,
                               "-r", "1:0", "-n", 5, check=False)
        finally:
            fake.close()
        self.assertEqual(rc, 1)
        self.assertIn("bad binary reply", err)

    def test_broken_framing_fails(self):
        fake = FakeServer(b"HELLO\r\n")
        try:
            rc, _, err = bench(fake.port, "-c", 1, "-r", "1:0", "-n", 5,
                               check=False)
        finally:
            fake.close()
        self.assertEqual(rc, 1)
        self.assertIn("unexpected reply", err)


class TestCommandLine(unittest.TestCase):

    def run_bench(self, *args):
        return subprocess.run([BENCH] + list(args), capture_output=True,
                              text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    def test_help_and_bad_options(self):
        out = self.run_bench("--help")
        self.assertEqual(out.returncode, 0)
        self.assertIn("--pipeline", out.stdout)
        for bad in (["-c", "0"], ["-r", "0:0"], ["-z", "0"],
                    ["-v", "10-5"], ["-e", "x"], ["-n", "0"],
                    ["--nonsense"], ["extra"], ["--protocol", "bogus"],
                    ["--set-batch", "2"], ["-M", "binary", "-B", "0"]):
            self.assertEqual(self.run_bench(*bad).returncode, 64, bad)

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        out = self.run_bench("-p", str(port), "-d", "0.1")
        self.assertEqual(out.returncode, 1)
        self.assertIn("connect", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
