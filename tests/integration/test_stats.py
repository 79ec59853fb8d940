"""The stats families, the run-time tuning commands and the tools that read
them (issue 13): cached and memcached 1.6.18 (the oracle, Debian's
/usr/bin/memcached) get the same requests; field NAMES must match (every
field memcached prints, in its order), values only where they mean the
same thing.  The tools: memcached-tool and memcstat (test_exporter.py has
Prometheus' memcached_exporter).

A missing memcached makes the file skip loudly (exit 77, SKIP on stderr);
a missing memcached-tool, perl or memcstat skips its test, loudly.
Deliberate differences from memcached are listed in DIFFERENCES.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

from common import CLOSED, Server, wait_for
import serverctl

MEMCACHED = os.environ.get("MEMCACHED", shutil.which("memcached"))
TOOL = "/usr/share/memcached/scripts/memcached-tool"
MEMCSTAT = shutil.which("memcstat")

# The admin commands, as memcached 1.6.18 answers them (probed); a
# request listed in DIFFERENCES is answered otherwise on purpose.
ADMIN = [
    b"cache_memlimit 100\r\n", b"cache_memlimit\r\n", b"cache_memlimit 0\r\n",
    b"cache_memlimit 7\r\n", b"cache_memlimit -5\r\n",
    b"cache_memlimit abc\r\n", b"cache_memlimit 64 noreply\r\n",
    b"cache_memlimit 100 200\r\n", b"cache_memlimit 1000000001\r\n",
    b"slabs automove 0\r\n", b"slabs automove 1\r\n",
    b"slabs automove 2\r\n", b"slabs automove 3\r\n", b"slabs automove\r\n",
    b"slabs automove x\r\n", b"slabs automove 1 noreply\r\n",
    b"slabs automove ratio 0.5\r\n", b"slabs automove ratio\r\n",
    b"slabs reassign 1 1\r\n", b"slabs reassign -1 2\r\n",
    b"slabs reassign 99 2\r\n", b"slabs reassign\r\n",
    b"slabs reassign a b\r\n", b"slabs reassign 1 2 noreply\r\n",
    b"slabs reassign 1 0\r\n", b"slabs foo\r\n", b"slabs\r\n",
    b"lru_maintainer\r\n", b"lru\r\n", b"lru tune 10 25 0.1 2.0\r\n",
    b"lru tune 10 25\r\n", b"lru tune 50 40 0.1 2\r\n",
    b"lru tune 10 25 0 2\r\n", b"lru tune 10 25 x 2\r\n",
    b"lru tune 10 25 0.1 2 noreply\r\n", b"lru mode flat\r\n",
    b"lru mode segmented\r\n", b"lru mode x\r\n", b"lru mode\r\n",
    b"lru temp_ttl 60\r\n", b"lru temp_ttl -1\r\n", b"lru temp_ttl\r\n",
    b"lru temp_ttl x\r\n", b"lru foo\r\n", b"verbosity\r\n",
    b"verbosity 1\r\n", b"verbosity 0\r\n", b"verbosity x\r\n",
    b"stats detail\r\n", b"stats detail foo\r\n", b"stats detail on\r\n",
    b"stats detail off\r\n", b"stats sizes\r\n", b"stats nonsense\r\n",
]
DIFFERENCES = {
    b"slabs reassign 99 2\r\n": (
        b"BADCLASS invalid src or dst class id\r\n",
        "both refuse: memcached's classes run to 39 with its defaults, "
        "cached has class 1 only"),
}
# memcached classes 2..39 exist for it (no spare pages), not for us.
NOSPARE_OR_BADCLASS = b"slabs reassign 1 2\r\n"


def talk(port, data, timeout=5.0):
    """Sends data then "version" and returns what came before VERSION."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(data + b"version\r\n")
        buf = b""
        deadline = time.monotonic() + timeout
        while not re.search(rb"VERSION [^\r\n]*\r\n$", buf):
            if time.monotonic() > deadline:
                raise AssertionError("no reply to %r: %r" % (data, buf))
            chunk = s.recv(65536)
            if not chunk:
                return buf + CLOSED
            buf += chunk
        return buf[:buf.rindex(b"VERSION ")]
    finally:
        s.close()


def stat_names(port, sub=b""):
    """The field names of "stats [sub]", in order, class numbers as N."""
    reply = talk(port, b"stats" + (b" " + sub if sub else b"") + b"\r\n")
    assert reply.endswith(b"END\r\n"), reply
    names = []
    for line in reply.split(b"\r\n"):
        if line.startswith(b"STAT "):
            name = line.split(b" ")[1].decode()
            names.append(re.sub(r"^(items:)?\d+:", r"\1N:", name))
    return names


def stats(port, sub=b""):
    """A dict of "stats [sub]"."""
    reply = talk(port, b"stats" + (b" " + sub if sub else b"") + b"\r\n")
    out = {}
    for line in reply.split(b"\r\n"):
        if line.startswith(b"STAT "):
            _, k, v = line.split(b" ", 2)
            out[k.decode()] = v.decode()
    return out


def dedup(names):
    """names without repeats, first occurrence kept (one per class)."""
    seen = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def in_order(sub, full):
    """True if every name of sub appears in full, in the same order."""
    it = iter(full)
    return all(any(n == m for m in it) for n in sub)


def fill(port, n=20, size=100):
    """Stores n small items (all in memcached's class of that size)."""
    data = b"".join(b"set k:%d 0 0 %d\r\n%s\r\n" % (i, size, b"v" * size)
                    for i in range(n))
    reply = talk(port, data + b"get k:0 k:1 nokey\r\n")
    assert reply.count(b"STORED\r\n") == n, reply


@unittest.skipIf(MEMCACHED is None, "memcached (the oracle) not installed")
class StatsVsMemcached(unittest.TestCase):
    """Field names and command replies against memcached."""

    @classmethod
    def setUpClass(cls):
        cls.cached = Server("-m", "64", "-t", "2")
        cls.mc = serverctl.ServerProcess(MEMCACHED, ["-m", "64", "-t", "2"],
                                         kind="memcached")
        cls.mc.start()
        fill(cls.cached.port)
        fill(cls.mc.port)

    @classmethod
    def tearDownClass(cls):
        cls.mc.stop()
        status = cls.cached.stop()
        if status != 0:
            raise AssertionError("cached exited with %d" % status)

    def assert_names(self, sub):
        theirs = dedup(stat_names(self.mc.port, sub))
        ours = dedup(stat_names(self.cached.port, sub))
        missing = [n for n in theirs if n not in ours]
        self.assertEqual(missing, [], "stats %s lacks memcached's fields"
                         % sub.decode())
        self.assertTrue(in_order(theirs, ours),
                        "stats %s: not in memcached's order:\n%s\n%s"
                        % (sub.decode(), theirs, ours))

    def test_stats_names(self):
        self.assert_names(b"")

    def test_settings_names(self):
        self.assert_names(b"settings")

    def test_items_names(self):
        self.assert_names(b"items")

    def test_slabs_names(self):
        self.assert_names(b"slabs")

    def test_conns_names(self):
        """Per connection: the same fields (memcached also lists its
        listening sockets, with addr and state only)."""
        ours = set(stat_names(self.cached.port, b"conns"))
        theirs = set(stat_names(self.mc.port, b"conns"))
        self.assertEqual(ours, theirs)

    def test_values_that_match(self):
        """Counters both keep the same way agree after the same traffic."""
        ours, theirs = stats(self.cached.port), stats(self.mc.port)
        for k in ("cmd_get", "get_hits", "get_misses", "curr_items",
                  "total_items", "limit_maxbytes", "auth_cmds",
                  "slab_reassign_running", "lru_crawler_running"):
            self.assertEqual(ours[k], theirs[k], k)
        ours_i = stats(self.cached.port, b"items")
        self.assertEqual(ours_i["items:1:number"], "20")
        self.assertEqual(ours_i["items:1:number_cold"], "20")
        # header + key + value, rounded to 8: 24 + 3..4 + 100 (flags and
        # exptime are 0: no field for either)
        self.assertEqual(int(ours_i["items:1:mem_requested"]),
                         10 * (24 + 3 + 100 + 1) + 10 * (24 + 4 + 100 + 0))
        ours_s = stats(self.cached.port, b"slabs")
        self.assertEqual(ours_s["1:cmd_set"], ours["cmd_set"])
        self.assertEqual(int(ours_s["1:total_pages"]) *
                         int(ours_s["1:chunk_size"]),
                         int(ours_s["total_malloced"]))

    def test_admin_commands(self):
        """Each admin command alone, on a fresh connection, as memcached
        answers it; then stats settings shows what the tuning set."""
        for req in ADMIN:
            theirs = talk(self.mc.port, req)
            ours = talk(self.cached.port, req)
            if req in DIFFERENCES:
                self.assertEqual(ours, DIFFERENCES[req][0], req)
                continue
            self.assertEqual(ours, theirs, req)
        self.assertEqual(talk(self.mc.port, NOSPARE_OR_BADCLASS),
                         b"NOSPARE source class has no spare pages\r\n")
        self.assertEqual(talk(self.cached.port, NOSPARE_OR_BADCLASS),
                         b"BADCLASS invalid src or dst class id\r\n")
        tune = (b"lru tune 5 30 0.5 3\r\nlru mode flat\r\nlru temp_ttl 99\r\n"
                b"slabs automove 2\r\nslabs automove ratio 0.25\r\n"
                b"cache_memlimit 77\r\n")
        self.assertEqual(talk(self.mc.port, tune), talk(self.cached.port,
                                                        tune))
        theirs = stats(self.mc.port, b"settings")
        ours = stats(self.cached.port, b"settings")
        for k in ("maxbytes", "hot_lru_pct", "warm_lru_pct",
                  "hot_max_factor", "warm_max_factor", "lru_segmented",
                  "temp_lru", "temporary_ttl", "slab_automove",
                  "slab_automove_ratio", "verbosity"):
            self.assertEqual(ours[k], theirs[k], k)
        restore = (b"cache_memlimit 64\r\nlru mode segmented\r\n"
                   b"lru temp_ttl -1\r\nlru tune 20 40 0.2 2\r\n"
                   b"slabs automove 1\r\nslabs automove ratio 0.8\r\n")
        talk(self.mc.port, restore)
        talk(self.cached.port, restore)

    def test_detail(self):
        """stats detail on|off|dump: the same per-prefix counts (memcached
        lists prefixes in its hash order: compared sorted)."""
        cmds = (b"stats detail on\r\nset a:1 0 0 1\r\nx\r\nget a:1 b:2\r\n"
                b"delete a:1\r\ndelete c:3\r\nget plain\r\n"
                b"stats detail off\r\nget a:1\r\n")
        for port in (self.mc.port, self.cached.port):
            talk(port, b"stats reset\r\n")
        self.assertEqual(talk(self.cached.port, cmds),
                         talk(self.mc.port, cmds))
        theirs = talk(self.mc.port, b"stats detail dump\r\n")
        ours = talk(self.cached.port, b"stats detail dump\r\n")
        self.assertEqual(sorted(ours.split(b"\r\n")),
                         sorted(theirs.split(b"\r\n")))
        self.assertIn(b"PREFIX a get 1 hit 1 set 1 del 1\r\n", ours)


class Memlimit(unittest.TestCase):
    """cache_memlimit shrinks a full cache down to the new limit."""

    def test_shrink_evicts(self):
        srv = Server("-m", "64", "-t", "2")
        try:
            value = b"v" * 1000
            batch = b"".join(b"set m:%d 0 0 1000 noreply\r\n%s\r\n"
                             % (i, value) for i in range(40000))
            talk(srv.port, batch, timeout=30)
            before = stats(srv.port)
            self.assertGreater(int(before["bytes"]), 30 << 20)
            self.assertEqual(talk(srv.port, b"cache_memlimit 8\r\n"),
                             b"OK\r\n")
            after = stats(srv.port)
            slabs = stats(srv.port, b"slabs")
            self.assertEqual(after["limit_maxbytes"], str(8 << 20))
            self.assertEqual(stats(srv.port, b"settings")["maxbytes"],
                             str(8 << 20))
            self.assertLessEqual(int(slabs["total_malloced"]), 8 << 20)
            self.assertGreater(int(after["evictions"]),
                               int(before["evictions"]))
            self.assertLess(int(after["curr_items"]),
                            int(before["curr_items"]))
            # still a working cache, within the new limit
            self.assertEqual(talk(srv.port, b"set new 0 0 1\r\nx\r\n"
                                  b"get new\r\n"),
                             b"STORED\r\nVALUE new 0 1\r\nx\r\nEND\r\n")
            self.assertEqual(talk(srv.port, b"cache_memlimit 64\r\n"),
                             b"OK\r\n")
            self.assertEqual(stats(srv.port)["limit_maxbytes"],
                             str(64 << 20))
        finally:
            self.assertEqual(srv.stop(), 0)


class Shutdown(unittest.TestCase):
    """shutdown graceful: as memcached 1.6.18 (its SIGUSR1 stop)."""

    def test_graceful_with_A(self):
        srv = Server("-A")
        try:
            self.assertEqual(talk(srv.port, b"shutdown graceful\r\n"),
                             CLOSED)
            self.assertIsNotNone(wait_for(lambda: not srv.running(), 10))
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_graceful_without_A(self):
        srv = Server()
        try:
            self.assertEqual(talk(srv.port, b"shutdown graceful\r\n"),
                             b"ERROR: shutdown not enabled\r\n")
        finally:
            self.assertEqual(srv.stop(), 0)


@unittest.skipIf(MEMCACHED is None, "memcached (the oracle) not installed")
class Tools(unittest.TestCase):
    """memcached-tool and memcstat on both servers."""

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

    def tool(self, port, mode):
        if not os.path.exists(TOOL) or shutil.which("perl") is None:
            print("SKIP: memcached-tool or perl not installed",
                  file=sys.stderr)
            self.skipTest("memcached-tool not installed")
        r = subprocess.run(["perl", TOOL, "127.0.0.1:%d" % port, mode],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def tool_fields(self, port, mode):
        lines = self.tool(port, mode).splitlines()
        return lines[0].split()[1:], [ln.split()[0] for ln in lines[1:]]

    def test_tool_display(self):
        """display: the header and one line per class, same columns."""
        row = re.compile(r"^\s*\d+\s+\S+\s+\d+s\s+\d+\s+\d+\s+(yes| no)"
                         r"\s+\d+\s+\d+\s+\d+$")
        for port in (self.mc.port, self.cached.port):
            out = self.tool(port, "display").splitlines()
            self.assertTrue(out[0].startswith("  #  Item_Size  Max_age"),
                            out)
            self.assertGreaterEqual(len(out), 2, out)
            for line in out[1:]:
                self.assertRegex(line, row)
        ours = self.tool(self.cached.port, "display").splitlines()[1]
        self.assertEqual(ours.split()[4], "19")   # Count: 20 stored, 1 deleted

    def test_tool_stats_settings(self):
        for mode in ("stats", "settings"):
            head_o, ours = self.tool_fields(self.cached.port, mode)
            head_t, theirs = self.tool_fields(self.mc.port, mode)
            self.assertEqual(head_o, head_t)
            self.assertEqual([f for f in theirs if f not in ours], [],
                             mode)

    def test_tool_sizes(self):
        ours = self.tool(self.cached.port, "sizes").splitlines()[1:]
        theirs = self.tool(self.mc.port, "sizes").splitlines()[1:]
        self.assertEqual(ours, theirs)

    def test_memcstat(self):
        if MEMCSTAT is None:
            print("SKIP test_memcstat: memcstat not installed",
                  file=sys.stderr)
            self.skipTest("memcstat not installed")

        def fields(port):
            r = subprocess.run([MEMCSTAT, "--servers=127.0.0.1:%d" % port],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            return [ln.split(":")[0].strip() for ln in r.stdout.splitlines()
                    if ":" in ln and not ln.startswith("Server")]
        ours, theirs = fields(self.cached.port), fields(self.mc.port)
        self.assertGreater(len(theirs), 20)
        self.assertEqual([f for f in theirs if f not in ours], [])


if __name__ == "__main__":
    if MEMCACHED is None:
        print("SKIP: memcached (the oracle) is not installed",
              file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
