"""Warm restarts of the real cached binary (issue 15, -e PATH):

  - restart: SNAP_ITEMS items (1,000,000 in the normal build, 30,000
    under a wrapper or a sanitizer build; $CACHED_SNAP_ITEMS overrides)
    of mixed sizes (a few hundred KB ones among them), flags and TTLs,
    some expired with touch and some flushed by flush_all before the
    stop; SIGTERM, restart: every live item comes back byte for byte with
    its flags and its very CAS (so their order too), the remaining TTL of
    a sample is the old one less the time between (within 2 s), expired
    and flushed items do not, and a new store gets a CAS above every
    loaded one;
  - SIGKILL during a periodic snapshot (-o snapshot_interval=1), at a
    random point after its temporary file appeared, SNAP_KILLS times (20;
    5 under a wrapper or a sanitizer) while a client rewrites values that
    embed their own checksum: every restart loads a complete snapshot (all
    keys, each value's checksum right) with no load error;
  - corrupt files (truncated at random offsets, single bits flipped,
    another format version, another magic, zero length, a directory, a
    path through a regular file, no permission when not root): one log
    line naming the file, a cold start, a server that serves, and on a
    clean stop a good snapshot in place of the bad file (where it can be
    written);
  - a hand-made file (the format of man/cached.1, written here in Python,
    version 1, which is still read) with expired items: they are skipped;
  - a smaller -m and -I on restart: what fits is loaded, values over the
    new -I are not, and what is loaded is byte for byte right;
  - SIGUSR1 and the shutdown command save too.

Every wait is bounded and polled; the only sleeps pick a random kill point.
"""
import array
import os
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CACHED, INSTRUMENTED, TIME_SCALE, WRAPPER,  # noqa: E402
                    wait_for)
import serverctl  # noqa: E402

SNAP_ITEMS = int(os.environ.get("CACHED_SNAP_ITEMS",
                                "30000" if INSTRUMENTED else "1000000"))
SNAP_KILLS = int(os.environ.get("CACHED_SNAP_KILLS",
                                "5" if INSTRUMENTED else "20"))
KILL_ITEMS = 5000 if INSTRUMENTED else 50000
PATTERN = random.Random(15).randbytes(1 << 20)


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC32C (Castagnoli), slowly: for small hand-made files only."""
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ CRC_TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def snap_file(records, flush_due=0, created=None):
    """A version 1 snapshot file of records (key, flags, exptime, atime,
    cas, value), in one items block, as man/cached.1 describes it."""
    hdr = bytearray(64)
    hdr[0:8] = b"CACHEDSN"
    struct.pack_into("<IIQI", hdr, 8, 1, 64,
                     created or int(time.time()), flush_due)
    struct.pack_into("<I", hdr, 60, crc32c(bytes(hdr[:60])))
    payload = b"".join(struct.pack("<IIIIQB", exp, atime, flags, len(v),
                                   cas, len(k)) + k + v
                       for k, flags, exp, atime, cas, v in records)

    def block(btype, nrec, body):
        h = struct.pack("<III", btype, len(body), nrec)
        return h + struct.pack("<I", crc32c(body, crc32c(h))) + body
    out = bytes(hdr) + block(1, len(records), payload)
    end = struct.pack("<QQQQ", len(records), 1,
                      sum(len(r[0]) + len(r[5]) for r in records),
                      max(r[4] for r in records))
    return out + block(2, 0, end)


def value_of(i):
    """Item i's value: mostly small, one in 20,000 a few hundred KB."""
    if i % 20000 == 7:
        n = 100000 + (i * 7919) % 300000
    elif i % 50 == 3:
        n = 1000 + (i * 31) % 4000
    else:
        n = (i * 13) % 120
    off = (i * 7919) % (len(PATTERN) - n)
    return PATTERN[off:off + n]


def ttl_of(i):
    """Item i's TTL: never, relative, or an absolute unix time."""
    return (0, 3600, 86400 * 3, int(time.time()) + 7200)[i % 4]


class Conn:
    """A pipelining text-protocol client: many commands per send."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          60 * TIME_SCALE)
        self.buf = b""

    def close(self):
        self.s.close()

    def _fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise AssertionError("connection closed")
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln
            self._fill()

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def pipeline(self, cmds, expect):
        """Sends cmds and reads one reply line per command."""
        self.s.sendall(b"".join(cmds))
        for _ in cmds:
            ln = self.line()
            if ln != expect:
                raise AssertionError("got %r, want %r" % (ln, expect))

    def gets(self, keys):
        """{key: (flags, cas, value)} of those found."""
        self.s.sendall(b"gets " + b" ".join(keys) + b"\r\n")
        out = {}
        while True:
            ln = self.line()
            if ln == b"END":
                return out
            _, key, flags, n, cas = ln.split(b" ")
            out[key] = (int(flags), int(cas), self.exactly(int(n) + 2)[:-2])

    def call(self, cmd):
        self.s.sendall(cmd)
        return self.line()

    def stats(self):
        self.s.sendall(b"stats\r\n")
        out = {}
        while True:
            ln = self.line()
            if ln == b"END":
                return out
            _, k, v = ln.split(b" ", 2)
            out[k.decode()] = v.decode()


class SnapServer(serverctl.ServerProcess):
    """cached with -e path, its stderr in a file the test reads."""

    def __init__(self, path, logpath, *args):
        self.logf = open(logpath, "wb")
        self.logpath = logpath
        super().__init__(CACHED, ("-e", path) + args, prefix=WRAPPER,
                         time_scale=TIME_SCALE, stderr=self.logf)
        # The load runs before the workers start: port file first, replies
        # once it is done.
        self.start(timeout=120)

    def conn(self):
        return Conn(self.port)

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=120.0):
        try:
            return super().stop(sig, timeout)
        finally:
            self.logf.close()


class SnapTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cached-snap-")
        self.path = os.path.join(self.dir, "cache.snap")
        self.nlog = 0

    def tearDown(self):
        os.chmod(self.dir, 0o700)
        shutil.rmtree(self.dir, ignore_errors=True)

    def server(self, *args):
        self.nlog += 1
        return SnapServer(self.path, os.path.join(self.dir, "log%d"
                                                  % self.nlog), *args)

    def stop_ok(self, srv, sig=signal.SIGTERM):
        status = srv.stop(sig)
        self.assertFalse(srv.killed, "cached did not stop")
        self.assertEqual(status, 0, srv.log())
        return srv.log()

    # ---------------------------------------------------------------- #

    def test_restart_every_item(self):
        n = SNAP_ITEMS
        srv = self.server("-m", "1024", "-t", "4")
        c = srv.conn()
        # Stored, then flushed before the stop: must not come back.
        c.pipeline([b"set pre%d 0 0 1\r\nx\r\n" % i for i in range(1000)],
                   b"STORED")
        self.assertEqual(c.call(b"flush_all\r\n"), b"OK")
        for lo in range(0, n, 2000):
            cmds = []
            for i in range(lo, min(n, lo + 2000)):
                v = value_of(i)
                cmds.append(b"set k%d %d %d %d\r\n%s\r\n"
                            % (i, (i * 2654435761) & 0xFFFFFFFF, ttl_of(i),
                               len(v), v))
            c.pipeline(cmds, b"STORED")
        # Expired by hand (touch into the past): gone before the stop.
        dead = range(5, n, 997)
        c.pipeline([b"touch k%d -1\r\n" % i for i in dead], b"TOUCHED")
        dead = set(dead)
        cas = array.array("Q", bytes(8 * n))
        for lo in range(0, n, 200):
            keys = [b"k%d" % i for i in range(lo, min(n, lo + 200))]
            got = c.gets(keys)
            for k, (_, cs, _) in got.items():
                cas[int(k[1:])] = cs
        sample = list(range(1, n, max(1, n // 500)))
        ttl_before = {}
        for i in sample:
            ln = c.call(b"mg k%d t\r\n" % i)
            if i not in dead:
                ttl_before[i] = (int(ln.split(b" t")[1]), time.monotonic())
        c.close()
        log = self.stop_ok(srv)
        self.assertIn("wrote %d items" % (n - len(dead)), log)

        srv = self.server("-m", "1024", "-t", "2")
        c = srv.conn()
        st = c.stats()
        self.assertEqual(int(st["snapshot_loaded_items"]), n - len(dead))
        self.assertEqual(int(st["curr_items"]), n - len(dead))
        self.assertIn("loaded %d items" % (n - len(dead)), srv.log())
        self.assertEqual(c.gets([b"pre%d" % i for i in range(0, 1000, 7)]),
                         {})
        maxcas = 0
        for lo in range(0, n, 200):
            idx = range(lo, min(n, lo + 200))
            got = c.gets([b"k%d" % i for i in idx])
            for i in idx:
                k = b"k%d" % i
                if i in dead:
                    self.assertNotIn(k, got)
                    continue
                self.assertIn(k, got)
                flags, cs, v = got[k]
                self.assertEqual(flags, (i * 2654435761) & 0xFFFFFFFF)
                self.assertEqual(cs, cas[i], k)
                if v != value_of(i):
                    self.fail("value of %r differs" % k)
                maxcas = max(maxcas, cs)
        for i, (before, t_before) in ttl_before.items():
            ln = c.call(b"mg k%d t\r\n" % i)
            elapsed = time.monotonic() - t_before
            after = int(ln.split(b" t")[1])
            if before == -1:
                self.assertEqual(after, -1)
            else:
                # Whole seconds on both sides: within 2 s.
                self.assertLessEqual(abs(after - (before - elapsed)), 2,
                                     (i, before, after, elapsed))
        self.assertEqual(c.call(b"set fresh 0 0 1\r\nz\r\n"), b"STORED")
        self.assertGreater(c.gets([b"fresh"])[b"fresh"][1], maxcas)
        c.close()
        self.stop_ok(srv)

    def test_sigkill_during_periodic_snapshot(self):
        n = KILL_ITEMS
        rng = random.Random(int(os.environ.get("CACHED_SNAP_SEED", "15")))

        def val(i, ver):
            body = b"k%d:%d:" % (i, ver) + PATTERN[:(i * 37 + ver) % 700]
            return body + b":%08x" % zlib.crc32(body)

        def check_all(c):
            for lo in range(0, n, 200):
                got = c.gets([b"k%d" % i for i in range(lo, min(n, lo +
                                                                200))])
                self.assertEqual(len(got), min(n, lo + 200) - lo)
                for k, (_, _, v) in got.items():
                    body, crc = v.rsplit(b":", 1)
                    self.assertEqual(b"%08x" % zlib.crc32(body), crc, k)
                    self.assertTrue(body.startswith(k + b":"), k)

        srv = self.server("-m", "256")
        c = srv.conn()
        for lo in range(0, n, 2000):
            cmds = []
            for i in range(lo, min(n, lo + 2000)):
                v = val(i, 0)
                cmds.append(b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(v), v))
            c.pipeline(cmds, b"STORED")
        c.close()
        self.stop_ok(srv)
        tmp = self.path + ".tmp"
        for rnd in range(SNAP_KILLS):
            srv = self.server("-m", "256", "-o", "snapshot_interval=1")
            c = srv.conn()
            st = c.stats()
            self.assertEqual(st["snapshot_load_errors"], "0", srv.log())
            self.assertEqual(int(st["snapshot_loaded_items"]), n, srv.log())
            check_all(c)
            stop = threading.Event()

            def churn(port=srv.port, seed=rnd):
                w = Conn(port)
                r = random.Random(seed)
                ver = 1
                try:
                    while not stop.is_set():
                        cmds = []
                        for _ in range(200):
                            i = r.randrange(n)
                            v = val(i, ver)
                            ver += 1
                            cmds.append(b"set k%d 0 0 %d\r\n%s\r\n"
                                        % (i, len(v), v))
                        w.pipeline(cmds, b"STORED")
                except (OSError, AssertionError):
                    pass
                w.close()
            t = threading.Thread(target=churn)
            t.start()
            if os.path.exists(tmp):
                os.unlink(tmp)
            self.assertIsNotNone(wait_for(lambda: os.path.exists(tmp), 30,
                                          0.001), "no periodic snapshot")
            time.sleep(rng.uniform(0, 0.03))
            srv.stop(signal.SIGKILL)
            stop.set()
            t.join()
            c.close()
        srv = self.server("-m", "256")
        c = srv.conn()
        self.assertEqual(int(c.stats()["snapshot_loaded_items"]), n)
        check_all(c)
        c.close()
        self.stop_ok(srv)

    def corrupt_case(self, name, make, saved=True):
        """Starts on a bad file made by make(): one log line, a cold
        start that serves, and (saved) a good file after the stop."""
        make()
        srv = self.server()
        c = srv.conn()
        st = c.stats()
        self.assertEqual(st["snapshot_load_errors"], "1", name)
        self.assertEqual(st["curr_items"], "0", name)
        self.assertEqual(c.call(b"set after 0 0 2\r\nok\r\n"), b"STORED")
        self.assertEqual(c.gets([b"after"])[b"after"][2], b"ok")
        log = srv.log()
        bad = [ln for ln in log.splitlines() if "ignored" in ln]
        self.assertEqual(len(bad), 1, (name, log))
        self.assertIn(self.path, bad[0])
        c.close()
        status = srv.stop()
        self.assertFalse(srv.killed)
        if not saved:
            self.assertEqual(status, 1, (name, srv.log()))
            return
        self.assertEqual(status, 0, (name, srv.log()))
        srv = self.server()
        c = srv.conn()
        self.assertEqual(c.gets([b"after"])[b"after"][2], b"ok", name)
        c.close()
        self.stop_ok(srv)

    def test_corrupt_files(self):
        srv = self.server()
        c = srv.conn()
        c.pipeline([b"set k%d %d 0 %d\r\n%s\r\n" % (i, i, len(value_of(i)),
                                                   value_of(i))
                    for i in range(300)], b"STORED")
        c.close()
        self.stop_ok(srv)
        with open(self.path, "rb") as f:
            good = f.read()
        rng = random.Random(1515)

        def writer(data):
            def make():
                if os.path.isdir(self.path):
                    os.rmdir(self.path)
                with open(self.path, "wb") as f:
                    f.write(data)
            return make
        cases = []
        for _ in range(4):
            cut = rng.randrange(len(good))
            cases.append(("truncated at %d" % cut, writer(good[:cut])))
        for _ in range(4):
            pos = rng.randrange(len(good))
            bad = bytearray(good)
            bad[pos] ^= 1 << rng.randrange(8)
            cases.append(("bit flipped at %d" % pos, writer(bytes(bad))))
        v3 = bytearray(good)
        struct.pack_into("<I", v3, 8, 3)
        struct.pack_into("<I", v3, 60, crc32c(bytes(v3[:60])))
        cases.append(("version 3", writer(bytes(v3))))
        cases.append(("foreign", writer(b"VALUE not a snapshot\r\n" * 10)))
        cases.append(("empty", writer(b"")))
        for name, make in cases:
            self.corrupt_case(name, make)

        def mkdir():
            os.unlink(self.path)
            os.mkdir(self.path)
        self.corrupt_case("a directory", mkdir, saved=False)
        os.rmdir(self.path)
        # A path through a regular file.
        blocker = os.path.join(self.dir, "file")
        with open(blocker, "w") as f:
            f.write("x")
        self.path = os.path.join(blocker, "cache.snap")
        self.corrupt_case("not a directory", lambda: None, saved=False)
        if os.geteuid() != 0:
            self.path = os.path.join(self.dir, "cache.snap")

            def noperm():
                writer(good)()
                os.chmod(self.path, 0)
            self.corrupt_case("no permission", noperm, saved=True)

    def test_handmade_file_expired_items(self):
        now = int(time.time())
        recs = [(b"past", 1, now - 10, now - 100, 5, b"old"),
                (b"future", 2, now + 3600, now - 50, 9, b"new"),
                (b"never", 3, 0, now - 20, 77, b"forever")]
        with open(self.path, "wb") as f:
            f.write(snap_file(recs))
        srv = self.server()
        c = srv.conn()
        got = c.gets([b"past", b"future", b"never"])
        self.assertEqual(got, {b"future": (2, 9, b"new"),
                               b"never": (3, 77, b"forever")})
        self.assertIn("skipped 1 expired", srv.log())
        ttl = int(c.call(b"mg future t\r\n").split(b" t")[1])
        self.assertLessEqual(abs(ttl - (now + 3600 - int(time.time()))), 2)
        self.assertEqual(c.call(b"set x 0 0 1\r\nx\r\n"), b"STORED")
        self.assertGreater(c.gets([b"x"])[b"x"][1], 77)
        c.close()
        self.stop_ok(srv)

    def test_smaller_limits(self):
        srv = self.server("-m", "256", "-I", "1m")
        c = srv.conn()
        n = 3000
        big = [b"big%d" % i for i in range(10)]

        def v(i):
            return PATTERN[i:i + 40000]
        for lo in range(0, n, 200):
            c.pipeline([b"set k%d 0 0 40000\r\n%s\r\n" % (i, v(i))
                        for i in range(lo, min(n, lo + 200))], b"STORED")
        c.pipeline([b"set %s 0 0 600000\r\n%s\r\n" % (k, PATTERN[:600000])
                    for k in big], b"STORED")
        c.close()
        self.stop_ok(srv)
        srv = self.server("-m", "32", "-I", "512k", "-t", "1")
        c = srv.conn()
        self.assertEqual(c.gets(big), {})
        st = c.stats()
        loaded = int(st["snapshot_loaded_items"])
        self.assertGreater(loaded, 300)
        self.assertLess(loaded, n)
        self.assertIn("10 over -I", srv.log())
        found = 0
        for lo in range(0, n, 100):
            got = c.gets([b"k%d" % i for i in range(lo, min(n, lo + 100))])
            for k, (_, _, val) in got.items():
                self.assertEqual(val, v(int(k[1:])))
            found += len(got)
        self.assertEqual(found, int(st["curr_items"]))
        c.close()
        self.stop_ok(srv)

    def test_usr1_and_shutdown_save(self):
        for how in ("usr1", "shutdown"):
            srv = self.server("-A")
            c = srv.conn()
            self.assertEqual(c.call(b"set %s 0 0 1\r\n1\r\n"
                                    % how.encode()), b"STORED")
            if how == "usr1":
                self.stop_ok(srv, signal.SIGUSR1)
            else:
                c.s.sendall(b"shutdown\r\n")
                self.assertEqual(srv.proc.wait(60 * TIME_SCALE), 0)
                srv.stop()
            c.close()
            srv = self.server()
            c = srv.conn()
            self.assertIn(how.encode(), c.gets([how.encode()]))
            c.close()
            self.stop_ok(srv)

    def test_usage_errors(self):
        import subprocess
        for args in (["-o", "snapshot_interval=5"], ["-e", ""],
                     ["-o", "snapshot="], ["-e", self.path, "-o",
                                           "snapshot_interval=x"]):
            p = subprocess.run([CACHED] + args, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 64, args)
            self.assertIn(b"cached:", p.stderr)


if __name__ == "__main__":
    unittest.main()
