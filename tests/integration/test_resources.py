"""Resource ceilings of the real cached binary under load, over loopback:

  - memory: with -m 64, mixed-size sets (70% <= 1 KB, 25% <= 64 KB,
    5% <= 512 KB) from three connections: "stats bytes" never above the
    limit, and resident memory never above 1.15 x the limit + 8 MB;
  - the same with 100-byte values over millions of distinct keys;
  - 10,000 idle connections are accepted, a sample of them is answered,
    and the resident memory they cost is reported.

CI runs the short forms (20 s of mixed sets, 3 million keys); with
RELIABILITY_LONG=1 they run the long forms (60 s, 20 million keys).
Resident-memory bounds are skipped under sanitizers and valgrind, whose
own memory use they would measure; the workload still runs.
"""
import os
import random
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (INSTRUMENTED, WRAPPER, Server, raise_nofile,  # noqa: E402
                    rss_kib, wait_for)

LONG = os.environ.get("RELIABILITY_LONG") == "1"
LIMIT = 64 << 20
# "stats bytes" sums the shards one after another, without a store-wide
# lock: an item evicted from one shard to make room for one stored in
# another may be counted in both.  At most one such item per worker thread
# (4, the default) is in flight, values here are at most 512 KiB.  The
# memory held ("stats slabs" total_malloced, one counter) is exact.
BYTES_SLACK = 4 * ((512 << 10) + 4096)
RSS_BOUND_KIB = int((1.15 * LIMIT + (8 << 20)) / 1024)


class Sampler:
    """Polls a server's "stats bytes" and resident memory in a thread and
    keeps the peaks.  Loaders also call sample() every so many batches,
    so how many samples a load gets does not depend on how fast the
    machine runs it."""

    def __init__(self, srv, interval=0.05):
        self.srv = srv
        self.conn = srv.connect()
        self.interval = interval
        self.max_bytes = 0
        self.max_malloced = 0
        self.max_rss = 0
        self.samples = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def sample(self):
        with self.lock:
            self.max_bytes = max(self.max_bytes,
                                 int(self.conn.stats()["bytes"]))
            self.max_malloced = max(
                self.max_malloced,
                int(self.conn.stats(b"slabs")["total_malloced"]))
            self.max_rss = max(self.max_rss, rss_kib(self.srv.proc.pid))
            self.samples += 1

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def value_size(r):
    """A value size: 70% up to 1 KB, 25% up to 64 KB, 5% up to 512 KB."""
    x = r.random()
    if x < 0.70:
        return r.randint(1, 1024)
    if x < 0.95:
        return r.randint(1025, 64 << 10)
    return r.randint((64 << 10) + 1, 512 << 10)


@unittest.skipIf(WRAPPER, "resource ceilings under a wrapper mean nothing")
class MemoryCeilingTest(unittest.TestCase):
    def check_peaks(self, s, what):
        print("%s: max stats bytes %d, total_malloced %d (limit %d), max "
              "RSS %d KiB (bound %d KiB), %d samples" % (
                  what, s.max_bytes, s.max_malloced, LIMIT, s.max_rss,
                  RSS_BOUND_KIB, s.samples))
        self.assertGreater(s.samples, 10)
        self.assertLessEqual(s.max_malloced, LIMIT)
        self.assertLessEqual(s.max_bytes, LIMIT + BYTES_SLACK)
        if not INSTRUMENTED:
            self.assertLessEqual(s.max_rss, RSS_BOUND_KIB)

    @staticmethod
    def mixed_loader(port, seed, stop, counts, sampler):
        """Pipelines batches of 16 sets of random keys and sizes."""
        r = random.Random(seed)
        batches = 0
        pool = bytes(r.getrandbits(8) for _ in range(4096)) * 128
        s = socket.create_connection(("127.0.0.1", port), 30)
        while not stop.is_set():
            parts = []
            for _ in range(16):
                n = value_size(r)
                off = r.randrange(len(pool) - n + 1)
                parts += [b"set m%d 0 0 %d\r\n" % (r.randrange(200000), n),
                          pool[off:off + n], b"\r\n"]
            s.sendall(b"".join(parts))
            got = b""
            while len(got) < 16 * 8:
                chunk = s.recv(16 * 8 - len(got))
                if not chunk:
                    counts["bad"] += 1
                    return
                got += chunk
            counts["bad"] += got != b"STORED\r\n" * 16
            counts["sets"] += 16
            batches += 1
            if batches % 10 == 0:
                sampler.sample()
        s.close()

    def test_mixed_sizes(self):
        duration = 60 if LONG else 20
        with Server("-m", "64") as srv, Sampler(srv) as s:
            stop = threading.Event()
            counts = {"sets": 0, "bad": 0}
            loaders = [threading.Thread(target=self.mixed_loader,
                                        args=(srv.port, i, stop, counts,
                                              s))
                       for i in range(3)]
            for t in loaders:
                t.start()
            time.sleep(duration)
            stop.set()
            for t in loaders:
                t.join()
            # the sampler thread shares the connection: take its lock
            with s.lock:
                st = s.conn.stats()
        print("mixed sizes for %d s: %d sets, %.0f MB written, %s evictions"
              % (duration, counts["sets"], int(st["bytes_read"]) / 1e6,
                 st["evictions"]))
        self.assertEqual(counts["bad"], 0)
        self.assertGreater(int(st["evictions"]), 0)
        self.check_peaks(s, "mixed sizes")

    @staticmethod
    def key_loader(port, lo, hi, sampler):
        """Sets key:lo .. key:hi-1 to 100-byte values, 2,000 a batch."""
        s = socket.create_connection(("127.0.0.1", port), 30)
        for base in range(lo, hi, 2000):
            if (base - lo) % 20000 == 0:
                sampler.sample()
            end = min(base + 2000, hi)
            s.sendall(b"".join(b"set key:%d 0 0 100\r\n%s\r\n"
                               % (i, b"%-100d" % i) for i in range(base, end)))
            want, got = 8 * (end - base), 0
            while got < want:
                chunk = s.recv(want - got)
                assert chunk, "server closed"
                got += len(chunk)
        s.close()

    def test_small_values_many_keys(self):
        n = 20000000 if LONG else 1000000 if INSTRUMENTED else 3000000
        with Server("-m", "64") as srv, Sampler(srv, 0.2) as s:
            half = n // 2
            start = time.monotonic()
            loaders = [threading.Thread(target=self.key_loader,
                                        args=(srv.port, i * half,
                                              (i + 1) * half, s))
                       for i in range(2)]
            for t in loaders:
                t.start()
            for t in loaders:
                t.join()
            took = time.monotonic() - start
            # the sampler thread shares the connection: take its lock
            with s.lock:
                st = s.conn.stats()
                # The newest keys of each loader are there, intact.
                for top in (half - 1, n - 1):
                    self.assertEqual(
                        s.conn.call(b"get key:%d\r\n" % top),
                        b"VALUE key:%d 0 100\r\n%s\r\nEND\r\n"
                        % (top, b"%-100d" % top))
                self.assertEqual(s.conn.call(b"get key:0\r\n"),
                                 b"END\r\n")
        print("%d keys of 100-byte values in %.1f s (%.0f sets/s): %s items "
              "kept, %s evictions" % (n, took, n / took, st["curr_items"],
                                      st["evictions"]))
        self.assertEqual(int(st["total_items"]), n)
        self.check_peaks(s, "100-byte values")


@unittest.skipIf(WRAPPER, "10,000 connections under a wrapper take too long")
class IdleConnectionsTest(unittest.TestCase):
    def test_ten_thousand_idle_connections(self):
        n = 10000
        if raise_nofile(n + 300) < n + 300:
            self.skipTest("cannot raise the descriptor limit to %d" % n)
        with Server("-c", str(n + 10), "-b", "4096") as srv:
            watcher = srv.connect()
            rss0 = rss_kib(srv.proc.pid)
            start = time.monotonic()
            socks = []
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", srv.port), 30)
                socks.append(s)
            self.assertIsNotNone(wait_for(
                lambda: watcher.stats()["curr_connections"] == str(n + 1),
                30), watcher.stats()["curr_connections"])
            took = time.monotonic() - start
            rss = rss_kib(srv.proc.pid)
            sample = random.Random(1).sample(range(n), 200)
            for i in sample:
                s = socks[i]
                s.sendall(b"set idle%d 0 0 1\r\nx\r\nget idle%d\r\n" % (i, i))
                want = b"STORED\r\nVALUE idle%d 0 1\r\nx\r\nEND\r\n" % i
                got = b""
                s.settimeout(10)
                while len(got) < len(want):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk)
                    got += chunk
                self.assertEqual(got, want)
            for s in socks:
                s.close()
            print("%d idle connections accepted in %.1f s; 200 of them "
                  "answered; RSS %d KiB (%d KiB before, %.1f KiB per "
                  "connection)" % (n, took, rss, rss0, (rss - rss0) / n))
            if not INSTRUMENTED:
                self.assertLess(rss - rss0, n * 32)


if __name__ == "__main__":
    unittest.main(verbosity=2)
