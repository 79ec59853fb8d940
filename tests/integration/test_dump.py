"""Key dumps (issue 13): "lru_crawler metadump", "stats cachedump", the
rest of the lru_crawler family and -X, on a real cached; the same data
dumped by memcached 1.6.18 (the oracle) and by the clients that read
dumps, memcdump (libmemcached-tools) and memcached-tool's dump and keys,
with the key sets compared.

Tests that need memcached, memcdump or perl with memcached-tool skip
loudly when those are missing; the file exits 77 (SKIP) only when none of
its tests could run.  Deliberate differences from memcached are the ones
server/dump.c lists; the replies compared here are the ones that agree.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import TIME_SCALE, Client, Server  # noqa: E402
import serverctl  # noqa: E402

MEMCACHED = os.environ.get("MEMCACHED", shutil.which("memcached"))
MEMCDUMP = shutil.which("memcdump")
PERL = shutil.which("perl")
TOOL = "/usr/share/memcached/scripts/memcached-tool"
HAVE_TOOL = PERL is not None and os.path.exists(TOOL)

META_RE = re.compile(rb"key=(\S+) exp=(-1|\d+) la=(\d+) cas=(\d+) "
                     rb"fetch=(yes|no) cls=(\d+) size=(\d+)$")
ITEM_RE = re.compile(rb"ITEM (\S+) \[(\d+) b; (\d+) s\]$")

# Keys the comparisons store: plain, URL-special and 8-bit ones (memcached
# and cached both refuse control characters in a set line).
KEYS = ([b"plain%d" % i for i in range(300)] +
        [b"a/b:c?d=e&f", b"100%", b"sp+ce", b"~tilde-._", b"k\xe9y",
         b"#hash", b"x" * 250])


def metadump(c, args=b"all"):
    """Sends lru_crawler metadump and returns its item lines (parsed) and
    the raw reply."""
    raw = c.call(b"lru_crawler metadump " + args + b"\r\n", timeout=60)
    assert raw.endswith(b"END\r\n"), raw[-200:]
    lines = raw[:-5].split(b"\n")
    assert lines[-1] == b"", raw[-200:]
    items = []
    for line in lines[:-1]:
        m = META_RE.match(line)
        assert m and m.group(6) == b"1", line
        items.append(m)
    return items, raw


def cachedump(c, cls=b"1", limit=b"0"):
    """Sends stats cachedump and returns its parsed ITEM lines."""
    raw = c.call(b"stats cachedump " + cls + b" " + limit + b"\r\n",
                 timeout=60)
    assert raw.endswith(b"END\r\n"), raw[-200:]
    out = []
    for line in raw[:-5].split(b"\r\n")[:-1]:
        m = ITEM_RE.match(line)
        assert m, line
        out.append(m)
    return out


def ask(c, req, timeout=60.0):
    """Sends one request alone and reads its whole reply: memcached drops
    what is pipelined after a metadump, so the sentinel of Client.call
    cannot be used with it.  The reply is complete at a line that is not
    an item line (key=..., ITEM ...)."""
    c.send(req)
    data = b""
    c.sock.settimeout(timeout * TIME_SCALE)
    while True:
        chunk = c.sock.recv(1 << 20)
        assert chunk, "closed after %r" % data[-200:]
        data += chunk
        if data.endswith(b"\r\n"):
            last = data[data.rfind(b"\n", 0, len(data) - 1) + 1:]
            if not last.startswith((b"key=", b"ITEM ")):
                return data


def metadump_set(c):
    """(key, exp, fetch) of every item a metadump lists, sorted."""
    raw = ask(c, b"lru_crawler metadump all\r\n")
    assert raw.endswith(b"END\r\n"), raw[-200:]
    out = []
    for line in raw[:-5].split(b"\n")[:-1]:
        m = META_RE.match(line)
        assert m, line
        out.append((m.group(1), m.group(2), m.group(5)))
    return sorted(out)


def cachedump_set(c, classes):
    """(key, bytes, exptime) of every item stats cachedump lists for the
    classes, sorted."""
    out = []
    for cls in classes:
        raw = ask(c, b"stats cachedump %d 0\r\n" % cls)
        assert raw.endswith(b"END\r\n"), raw[-200:]
        for line in raw[:-5].split(b"\r\n")[:-1]:
            m = ITEM_RE.match(line)
            assert m, line
            out.append(m.groups())
    return sorted(out)


def fill(c, keys, exptime=0, flags=0):
    """Stores value b"v-<key>" under every key, pipelined."""
    req = b"".join(b"set %s %d %d %d noreply\r\nv-%s\r\n"
                   % (k, flags, exptime, len(k) + 2, k) for k in keys)
    assert c.call(req) == b""


class Oracle(serverctl.ServerProcess):
    """memcached 1.6.18 on a port the kernel chose."""

    def __init__(self, *args):
        super().__init__(MEMCACHED, args, kind="memcached",
                         time_scale=TIME_SCALE)
        self.start()

    def connect(self):
        import socket
        s = socket.create_connection(("127.0.0.1", self.port),
                                     5 * TIME_SCALE)
        return Client(s)


class DumpTest(unittest.TestCase):
    """cached on its own."""

    def setUp(self):
        self.srv = Server("-t", "2")
        self.c = self.srv.connect()

    def tearDown(self):
        self.c.close()
        self.assertEqual(self.srv.stop(), 0)

    def test_metadump_lines(self):
        """Every field as memcached prints it: the key URL-encoded, exp
        the absolute expiry time or -1, la the last access as a unix time,
        fetch yes once read, cls 1, lines ending in a bare newline."""
        c = self.c
        fill(c, [b"a/b", b"100%", b"k\xe9y"])
        self.assertEqual(c.call(b"set ttl 3 1999999999 2\r\nhi\r\n"),
                         b"STORED\r\n")
        self.assertEqual(c.call(b"get 100%\r\n")[:11], b"VALUE 100% ")
        items, raw = metadump(c)
        by_key = {urllib.parse.unquote_to_bytes(m.group(1)): m
                  for m in items}
        self.assertEqual(sorted(by_key), sorted([b"a/b", b"100%",
                                                 b"k\xe9y", b"ttl"]))
        self.assertEqual(by_key[b"100%"].group(1), b"100%25")
        self.assertEqual(by_key[b"k\xe9y"].group(1), b"k%E9y")
        self.assertEqual(by_key[b"a/b"].group(1), b"a%2Fb")
        self.assertEqual(by_key[b"ttl"].group(2), b"1999999999")
        self.assertEqual(by_key[b"a/b"].group(2), b"-1")
        self.assertEqual(by_key[b"100%"].group(5), b"yes")
        self.assertEqual(by_key[b"a/b"].group(5), b"no")
        now = int(c.stats()["time"])
        for m in items:
            self.assertLessEqual(abs(int(m.group(3)) - now), 5)
            self.assertEqual(m.group(6), b"1")
            self.assertGreater(int(m.group(7)), 0)
        self.assertNotIn(b"\r\nkey=", raw)

    def test_class_lists(self):
        """Every item is in class 1: lists naming it dump everything, the
        others nothing; bad ids get BADCLASS, an empty list NOTSTARTED."""
        c = self.c
        fill(c, KEYS[:20])
        full = sorted(m.group(1) for m in metadump(c)[0])
        self.assertEqual(len(full), 20)
        for arg in (b"all", b"hash", b"1", b"1,2", b"2,1", b"1,", b",1",
                    b"01"):
            self.assertEqual(sorted(m.group(1)
                                    for m in metadump(c, arg)[0]), full)
        for arg in (b"2", b"63", b"2,3"):
            self.assertEqual(c.call(b"lru_crawler metadump " + arg +
                                    b"\r\n"), b"END\r\n")
        for arg in (b"0", b"64", b"200", b"foo", b"ALL", b"1,2,x", b"-1",
                    b"1x", b"+1", b"4294967297"):
            self.assertEqual(c.call(b"lru_crawler metadump " + arg +
                                    b"\r\n"),
                             b"BADCLASS invalid class id\r\n", arg)
        self.assertEqual(c.call(b"lru_crawler metadump ,\r\n"),
                         b"NOTSTARTED no items to crawl\r\n")

    def test_crawler_commands(self):
        """crawl, enable, disable, sleep, tocrawl and bad lines."""
        c = self.c
        for req, want in [
                (b"lru_crawler crawl all", b"OK"),
                (b"lru_crawler crawl 1,5", b"OK"),
                (b"lru_crawler crawl hash",
                 b"ERROR an unknown error happened"),
                (b"lru_crawler crawl 0", b"BADCLASS invalid class id"),
                (b"lru_crawler crawl ,", b"NOTSTARTED no items to crawl"),
                (b"lru_crawler crawl", b"ERROR"),
                (b"lru_crawler crawl all noreply", b"ERROR"),
                (b"lru_crawler enable",
                 b"ERROR failed to start lru crawler thread"),
                (b"lru_crawler disable", b"OK"),
                (b"lru_crawler disable", b"OK"),
                (b"lru_crawler crawl all",
                 b"CLIENT_ERROR lru crawler disabled"),
                (b"lru_crawler metadump all",
                 b"CLIENT_ERROR lru crawler disabled"),
                (b"lru_crawler enable", b"OK"),
                (b"lru_crawler sleep 10", b"OK"),
                (b"lru_crawler sleep 1000000", b"OK"),
                (b"lru_crawler sleep 1000001",
                 b"CLIENT_ERROR sleep must be one second or less"),
                (b"lru_crawler sleep -1",
                 b"CLIENT_ERROR bad command line format"),
                (b"lru_crawler tocrawl 5", b"OK"),
                (b"lru_crawler tocrawl 99999999999999999999",
                 b"CLIENT_ERROR bad command line format"),
                (b"lru_crawler", b"ERROR"),
                (b"lru_crawler foo", b"ERROR"),
                (b"lru_crawler mgdump all", b"ERROR"),
                (b"lru_crawler metadump", b"ERROR"),
                (b"lru_crawler metadump all extra", b"ERROR")]:
            self.assertEqual(c.call(req + b"\r\n"), want + b"\r\n", req)

    def test_cachedump(self):
        """ITEM <key> [<bytes> b; <exptime> s], a limit, bad lines."""
        c = self.c
        fill(c, [b"k%d" % i for i in range(50)])
        self.assertEqual(c.call(b"set t 0 1999999999 3\r\nabc\r\n"),
                         b"STORED\r\n")
        items = cachedump(c)
        self.assertEqual(len(items), 51)
        got = {m.group(1): (m.group(2), m.group(3)) for m in items}
        self.assertEqual(got[b"t"], (b"3", b"1999999999"))
        self.assertEqual(got[b"k7"], (b"4", b"0"))
        self.assertEqual(len(cachedump(c, limit=b"7")), 7)
        self.assertEqual(len(cachedump(c, b"1", b"1")), 1)
        for req, want in [
                (b"stats cachedump 2 0", b"END"),
                (b"stats cachedump 0 0", b"END"),
                (b"stats cachedump 63 0", b"END"),
                (b"stats cachedump 64 0", b"CLIENT_ERROR Illegal slab id"),
                (b"stats cachedump 1", b"CLIENT_ERROR bad command line"),
                (b"stats cachedump", b"CLIENT_ERROR bad command line"),
                (b"stats cachedump x 1",
                 b"CLIENT_ERROR bad command line format"),
                (b"stats cachedump 1 -1",
                 b"CLIENT_ERROR bad command line format")]:
            self.assertEqual(c.call(req + b"\r\n"), want + b"\r\n", req)

    def test_dead_items_left_out(self):
        """Deleted, expired and flushed items are not listed."""
        c = self.c
        fill(c, [b"a", b"b", b"c"])
        self.assertEqual(c.call(b"delete b\r\n"), b"DELETED\r\n")
        self.assertEqual(c.call(b"set gone 0 -1 1\r\nx\r\n"),
                         b"STORED\r\n")
        self.assertEqual(sorted(m.group(1) for m in metadump(c)[0]),
                         [b"a", b"c"])
        self.assertEqual(c.call(b"flush_all\r\n"), b"OK\r\n")
        self.assertEqual(metadump(c)[0], [])
        self.assertEqual(cachedump(c), [])

    def test_pipelined(self):
        """A dump between other commands: every reply, in order (memcached
        refuses the dump after others and drops the ones after it)."""
        c = self.c
        out = c.call(b"set a 0 0 1\r\n1\r\nlru_crawler metadump all\r\n"
                     b"get a\r\nstats cachedump 1 0\r\nget a\r\n")
        self.assertRegex(out, re.compile(
            rb"\ASTORED\r\n"
            rb"key=a exp=-1 la=\d+ cas=\d+ fetch=no cls=1 size=\d+\n"
            rb"END\r\n"
            rb"VALUE a 0 1\r\n1\r\nEND\r\n"
            rb"ITEM a \[1 b; 0 s\]\r\nEND\r\n"
            rb"VALUE a 0 1\r\n1\r\nEND\r\n\Z"))


class SlowReaderTest(unittest.TestCase):
    """A dump whose client does not read stalls only that client."""

    def test_slow_reader(self):
        srv = Server("-t", "1", "-m", "256")
        try:
            n = 100000
            c = srv.connect()
            fill(c, [b"key:%d" % i for i in range(n)])
            d = srv.connect()
            d.send(b"lru_crawler metadump all\r\n")
            # Same worker (-t 1): others go on while the dump waits.
            for i in range(200):
                self.assertEqual(c.call(b"set other:%d 0 0 1\r\nx\r\n" % i),
                                 b"STORED\r\n")
                self.assertEqual(c.call(b"get key:%d\r\n" % i),
                                 b"VALUE key:%d 0 %d\r\nv-key:%d\r\nEND\r\n"
                                 % (i, len(b"key:%d" % i) + 2, i))
            data = b""
            d.sock.settimeout(30 * TIME_SCALE)
            while not data.endswith(b"END\r\n"):
                chunk = d.sock.recv(1 << 20)
                self.assertTrue(chunk, "connection closed mid-dump")
                data += chunk
            keys = [line.split(b" ", 1)[0]
                    for line in data[:-5].split(b"\n")[:-1]]
            dumped = [k for k in keys if k.startswith(b"key=key")]
            self.assertEqual(len(dumped), n)
            self.assertEqual(len(set(dumped)), n)
            c.close()
            d.close()
        finally:
            self.assertEqual(srv.stop(), 0)


class NoDumpTest(unittest.TestCase):
    """-X refuses dumps with memcached's replies."""

    def test_no_dump(self):
        srv = Server("-X")
        try:
            c = srv.connect()
            fill(c, [b"a"])
            for req, want in [
                    (b"lru_crawler metadump all",
                     b"ERROR metadump not allowed"),
                    (b"lru_crawler metadump 0",
                     b"ERROR metadump not allowed"),
                    (b"lru_crawler metadump", b"ERROR"),
                    (b"stats cachedump 1 0",
                     b"CLIENT_ERROR stats cachedump not allowed"),
                    (b"stats cachedump 99 0",
                     b"CLIENT_ERROR stats cachedump not allowed"),
                    (b"lru_crawler crawl all", b"OK"),
                    (b"lru_crawler disable", b"OK"),
                    (b"lru_crawler metadump all",
                     b"CLIENT_ERROR lru crawler disabled")]:
                self.assertEqual(c.call(req + b"\r\n"), want + b"\r\n", req)
            c.close()
        finally:
            self.assertEqual(srv.stop(), 0)


def parse_tool_dump(text):
    """memcached-tool dump's output: a set of (key, flags, exp, value)."""
    out = set()
    pos = 0
    head = re.compile(rb"add (\S+) (\d+) (-?\d+) (\d+)\r\n")
    while pos < len(text):
        m = head.match(text, pos)
        assert m, text[pos:pos + 100]
        n = int(m.group(4))
        val = text[m.end():m.end() + n]
        assert text[m.end() + n:m.end() + n + 2] == b"\r\n"
        out.add((m.group(1), m.group(2), m.group(3), val))
        pos = m.end() + n + 2
    return out


@unittest.skipIf(MEMCACHED is None, "memcached (the oracle) not installed")
class OracleTest(unittest.TestCase):
    """The same data in cached and memcached; the dumps compared.

    memcached runs with -o no_modern,lru_crawler: its stats cachedump (and
    so memcdump) lists one LRU per class, and with the segmented LRU of
    its default settings that is the hot LRU only, which holds some of the
    items; without it, every item of the class.  Its metadump lists every
    item either way."""

    ORACLE_ARGS = ("-t", "2", "-o", "no_modern,lru_crawler")

    def setUp(self):
        # Fresh servers for every test: memcached's crawler serves one
        # request at a time, and a worker that started a crawl can stall
        # its connections until the crawl is over, so no test of it
        # follows another's crawl.
        self.cached = Server("-t", "2")
        self.memcached = Oracle(*self.ORACLE_ARGS)
        for srv in (self.cached, self.memcached):
            c = srv.connect()
            fill(c, KEYS, flags=3)
            assert c.call(b"set ttl 0 1999999999 1\r\nx\r\n") == \
                b"STORED\r\n"
            c.close()

    def tearDown(self):
        self.memcached.stop(signal.SIGKILL)    # its SIGTERM takes a second
        self.assertEqual(self.cached.stop(), 0)

    def on(self, srv, fn):
        """fn(connection) on a new connection to srv."""
        c = srv.connect()
        try:
            return fn(c)
        finally:
            c.close()

    def test_metadump_same_items(self):
        """Same keys, encoded alike, same exp and fetch."""
        theirs = self.on(self.memcached, metadump_set)
        ours = self.on(self.cached, metadump_set)
        self.assertEqual(ours, theirs)
        self.assertEqual(len(ours), len(KEYS) + 1)

    def test_cachedump_same_items(self):
        """Same keys, value lengths and expiry times: memcached's over all
        its classes, ours in class 1."""
        theirs = self.on(self.memcached,
                         lambda c: cachedump_set(c, range(1, 64)))
        ours = self.on(self.cached, lambda c: cachedump_set(c, [1]))
        self.assertEqual(ours, theirs)
        self.assertEqual(len(ours), len(KEYS) + 1)

    def test_same_replies(self):
        """Replies that carry no item data agree byte for byte."""
        reqs = [b"lru_crawler metadump 2", b"lru_crawler metadump 0",
                b"lru_crawler metadump 64", b"lru_crawler metadump foo",
                b"lru_crawler metadump ,", b"lru_crawler metadump",
                b"lru_crawler metadump all x", b"lru_crawler mgdump all",
                b"lru_crawler crawl all", b"lru_crawler crawl 1,5",
                b"lru_crawler crawl hash", b"lru_crawler crawl 0",
                b"lru_crawler crawl x", b"lru_crawler crawl",
                b"lru_crawler sleep 10", b"lru_crawler sleep 1000001",
                b"lru_crawler sleep x", b"lru_crawler tocrawl 5",
                b"lru_crawler tocrawl -5", b"lru_crawler", b"lru_crawler x",
                b"stats cachedump 64 0", b"stats cachedump 1",
                b"stats cachedump", b"stats cachedump x 1",
                b"stats cachedump 1 x"]
        # Those that start a crawl each get a fresh memcached (see setUp).
        crawls = {b"lru_crawler metadump 2", b"lru_crawler crawl all",
                  b"lru_crawler crawl 1,5"}
        for req in reqs:
            oracle = self.memcached
            if req in crawls:
                oracle = Oracle(*self.ORACLE_ARGS)
            try:
                theirs = self.on(oracle, lambda c: ask(c, req + b"\r\n"))
            finally:
                if oracle is not self.memcached:
                    oracle.stop(signal.SIGKILL)
            ours = self.on(self.cached, lambda c: ask(c, req + b"\r\n"))
            self.assertEqual(ours, theirs, req)

    @unittest.skipIf(MEMCDUMP is None, "memcdump (libmemcached-tools) "
                     "not installed")
    def test_memcdump(self):
        """memcdump lists the same keys from both."""
        def run(srv):
            p = subprocess.run([MEMCDUMP, "--servers=127.0.0.1:%d"
                                % srv.port], stdout=subprocess.PIPE,
                               timeout=60 * TIME_SCALE, check=True)
            return sorted(p.stdout.split(b"\n")[:-1])
        theirs, ours = run(self.memcached), run(self.cached)
        self.assertEqual(ours, theirs)
        self.assertEqual(len(ours), len(KEYS) + 1)

    def tool(self, srv, mode):
        """memcached-tool's output for one mode."""
        p = subprocess.run([PERL, TOOL, "127.0.0.1:%d" % srv.port, mode],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=60 * TIME_SCALE, check=True)
        return p.stdout

    @unittest.skipIf(not HAVE_TOOL, "perl or memcached-tool not installed")
    def test_memcached_tool_keys(self):
        """memcached-tool keys: the same keys and expiry times."""
        def run(srv):
            return sorted(line.split(b" la=")[0] for line in
                          self.tool(srv, "keys").split(b"\n")[:-1])
        theirs, ours = run(self.memcached), run(self.cached)
        self.assertEqual(ours, theirs)
        self.assertEqual(len(ours), len(KEYS) + 1)

    @unittest.skipIf(not HAVE_TOOL, "perl or memcached-tool not installed")
    def test_memcached_tool_dump(self):
        """memcached-tool dump: the same add commands (keys, flags,
        expiry times, values)."""
        theirs = parse_tool_dump(self.tool(self.memcached, "dump"))
        ours = parse_tool_dump(self.tool(self.cached, "dump"))
        self.assertEqual(ours, theirs)
        self.assertEqual(len(ours), len(KEYS) + 1)


if __name__ == "__main__":
    for name, missing in (("memcached (the oracle)", MEMCACHED is None),
                          ("memcdump (libmemcached-tools)", MEMCDUMP is None),
                          ("perl + memcached-tool", not HAVE_TOOL)):
        if missing:
            print("SKIP: %s not installed: its comparisons are skipped"
                  % name, file=sys.stderr)
    unittest.main(verbosity=2)
