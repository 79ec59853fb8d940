"""Differential test: the same requests to cached and to memcached (the
oracle, Debian's /usr/bin/memcached), replies compared byte for byte.

The corpus is every case of test_wire.py plus the rows below, plus the
classic text corpus of text_cases.py (issue 13) and the meta protocol
corpus of meta_cases.py (issue 11); each runs on
a new connection to a freshly flushed server, whole, then split at every
byte for the shorter ones.  Replies that memcached makes non-deterministic
(CAS values) are normalised in both before comparing; deliberate
differences are listed in DIFFERENCES with their reason and must still
hold, so a row cannot silently drift into agreement or further apart.

memcached missing makes the test skip loudly (exit 77, SKIP in the log),
never pass.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CLOSED, SENTINEL, TIME_SCALE, VERSION_RE,  # noqa: E402
                    Client, Server)
from test_wire import CASES  # noqa: E402
from meta_cases import (META, META_DIFFERENCES,  # noqa: E402
                        META_SPLIT_MAX, normalise_meta)
from text_cases import (TEXT, TEXT_COUNTER_DIFFERENCES,  # noqa: E402
                        TEXT_DIFFERENCES, TEXT_PIPELINE_UNSAFE)

MEMCACHED = os.environ.get("MEMCACHED", shutil.which("memcached"))

EXTRA = [
    b"set k 0 0 5\r\nhello\r\ngets k\r\n",
    b"set a 1 0 1\r\nA\r\nset b 2 0 2\r\nBB\r\ngets a b nokey\r\n",
    b"set k 0 0 1\r\na\r\ngats 100 k\r\n",
    b"set k 0 0 1\r\na\r\ngat 0 k\r\nget k\r\n",
    b"add k 0 0 1 noreply\r\na\r\nadd k 0 0 1 noreply\r\nb\r\nget k\r\n",
    b"replace k 0 0 1 noreply\r\na\r\nget k\r\n",
    b"append k 0 0 1 noreply\r\na\r\nget k\r\n",
    b"set k 0 0 1\r\na\r\ncas k 0 0 1 1 noreply\r\nb\r\nget k\r\n",
    b"set n 0 0 1\r\n9\r\ndecr n 1 noreply\r\nget n\r\n",
    b"set n 0 0 2\r\n 1\r\nincr n 1\r\n",
    b"set n 0 0 3\r\n007\r\nincr n 1\r\nget n\r\n",
    b"decr nokey 1 noreply\r\n",
] + [
    # incr reads values as memcached's safe_strtoull does
    b"set n 0 0 %d\r\n%s\r\nincr n 1\r\n" % (len(v), v)
    for v in (b" 12", b"1 2", b"000000000000000000001", b"+5", b"-0",
              b"1\t", b"\t1", b"1\x00x", b"-18446744073709551615", b"-1",
              b"   ", b"12a", b"18446744073709551616", b"\x0b7", b"7\x0c",
              b"+", b"-", b"")
] + [
    b"touch nokey 10 noreply\r\n",
    b"set k 0 0 1\r\na\r\ntouch k 0 noreply\r\nget k\r\n",
    b"flush_all 0\r\n",
    b"flush_all -1\r\n",
    b"set k 0 0 1 noreply\r\na\r\nget k k k\r\n",
    b"get " + b" ".join(b"k%d" % i for i in range(200)) + b"\r\n",
    b"set k 0 0 3\r\nabc\r\nget k\r\nset k 0 0 1\r\nd\r\nget k\r\n",
    b"incr\r\n",
    b"incr k\r\n",
    b"decr k 1 2\r\n",
    b"touch k\r\n",
    b"delete\r\n",
    b"delete k noreply extra\r\n",
    b"set k 0 0 1 noreply extra\r\na\r\n",
    b"get k\r\n\r\nget k\r\n",
    b"set k 0 0 10\r\n0123456789\r\nappend k 0 0 0\r\n\r\nget k\r\n",
    b"cas k 0 0 1 0\r\na\r\n",
    b"set " + b"a" * 250 + b" 0 0 1\r\na\r\nget " + b"a" * 250 + b"\r\n",
    b"verbosity 1 2\r\n",
    # TLS is off here: memcached (built with TLS) answers this even to
    # noreply
    b"refresh_certs\r\n",
    b"refresh_certs noreply\r\nrefresh_certs a b c\r\n",
]

BAD = b"CLIENT_ERROR bad command line format\r\n"
VALUE_RUN = ("memcached runs the refused command's value bytes as a command "
             "line (the ERROR); cached skips the declared value, so value "
             "bytes are never run as commands")
LOST = ("the value's length is unusable, so the framing is lost: memcached "
        "reads on and runs the value bytes as a command; cached replies and "
        "closes, as the protocol's own advice for lost framing says")
# Deliberate differences: request -> (memcached's reply, ours, why).
DIFFERENCES = {
    b"set k -1 0 5\r\nhello\r\n": (BAD + b"ERROR\r\n", BAD, VALUE_RUN),
    b"set k 0 abc 5\r\nhello\r\n": (BAD + b"ERROR\r\n", BAD, VALUE_RUN),
    b"cas k 0 0 5 abc\r\nhello\r\n": (BAD + b"ERROR\r\n", BAD, VALUE_RUN),
    b"cas k 0 0 5\r\nhello\r\n": (b"ERROR\r\nERROR\r\n", b"ERROR\r\n",
                                   VALUE_RUN),
    b"set k 0 0 1 noreply extra\r\na\r\n": (b"ERROR\r\nERROR\r\n",
                                             b"ERROR\r\n", VALUE_RUN),
    b"set k 0 0 5 noreply x\r\nhello\r\n": (b"ERROR\r\nERROR\r\n",
                                             b"ERROR\r\n", VALUE_RUN),
    b"set " + b"a" * 251 + b" 0 0 5\r\nhello\r\n":
        (BAD + b"ERROR\r\n", BAD, VALUE_RUN),
    b"set k 0 0 1\r\na\r\ncas k 0 0\r\nget " + b"a" * 251 + b"\r\n": (
        BAD, b"STORED\r\nERROR\r\n" + BAD, "memcached drops the replies "
        "queued before a get with a bad key (see PIPELINE_UNSAFE)"),
    b"set k 4294967296 0 5\r\nhello\r\n": (
        b"STORED\r\n", BAD, "memcached stores the item with its flags "
        "silently cut to 32 bits (0 here): the client's data would come "
        "back different, so cached refuses the line"),
    b"set k\x00 0 0 1\r\na\r\n": (
        b"ERROR\r\nERROR\r\n", BAD, "memcached reads a line only up to "
        "a NUL (here \"set k\", then runs the value); cached refuses a "
        "key holding NUL"),
    b"set k 0 2147483648 5\r\nhello\r\nget k\r\n": (
        b"STORED\r\nEND\r\n",
        b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n", "memcached cuts "
        "the exptime to 32 bits, so this 2038 date becomes a time long "
        "past and the item is lost on arrival; cached keeps the time"),
    b"set k 0 0 -1\r\nhello\r\n": (BAD + b"ERROR\r\n", BAD + CLOSED, LOST),
    b"set k 0 0 abc\r\nhello\r\n": (BAD + b"ERROR\r\n", BAD + CLOSED, LOST),
    b"set k 0 0 4294967296\r\nhello\r\n": (
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n", BAD + CLOSED, LOST),
    b"set k 0 0 5\r\nhelloXY\r\n": (
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        b"CLIENT_ERROR bad data chunk\r\n" + CLOSED, LOST),
    b"a" * 3000: (
        b"ERROR\r\n<TIMEOUT>", CLOSED, "a command line over 2048 bytes "
        "(only gets may be longer) closes the connection in cached; "
        "memcached closes only if the newline has not arrived by its "
        "next read, and here took the sentinel into the line"),
}
DIFFERENCES.update(META_DIFFERENCES)
DIFFERENCES.update(TEXT_DIFFERENCES)

# The counters test_counters compares ("stats" names).  Left out:
# curr_items (memcached drops flushed items lazily, so its count lags),
# total_items (memcached counts the new item an incr may allocate) and
# get_expired/get_flushed (memcached's flush works in whole seconds, so
# which of the two a lookup counts depends on the clock).
COUNTERS = ("cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "get_hits",
            "get_misses", "delete_misses", "delete_hits", "incr_misses",
            "incr_hits", "decr_misses", "decr_hits", "cas_misses",
            "cas_hits", "cas_badval", "touch_hits", "touch_misses",
            "store_too_large", "store_no_memory")

# Requests whose counters differ on purpose: cached rejects the whole
# line before running any of it; memcached counts the parts it ran before
# finding the bad argument (a flush, the keys before a bad one).
COUNTER_DIFFERENCES = {
    b"flush_all abc\r\n",
    b"get a " + b"b" * 251 + b"\r\n",
} | {
    # a meta line with an over-long opaque: memcached counts the get or
    # incr it had begun
    cmd + b" k O" + o + b"\r\n"
    for cmd in (b"mg", b"ma")
    for o in (b"o" * 32, b"o" * 33, b"o" * 200)
} | TEXT_COUNTER_DIFFERENCES

# A get with a bad key makes memcached 1.6.18 drop the replies it had
# queued for the requests before it in the same read (a memcached bug:
# those requests ran, their answers are lost).  cached answers them all;
# test_wire.py checks such a get after other requests.
PIPELINE_UNSAFE = {
    b"get " + b"a" * 251 + b"\r\n",
    b"get a " + b"b" * 251 + b"\r\n",
    # ma's T on an item an earlier request read: memcached 1.6.18 then
    # updates the number in place and may leave the TTL (whether it does
    # depends on timing); cached applies T as protocol.txt says
    b"ma n T30\r\nmg n v t\r\n",
    # after the pipeline's earlier "set foo", memcached's item for Zm9v
    # is no longer a base64 one (meta_cases.BINKEY)
    b"ms Zm9v 1 b T0\r\n1\r\nma Zm9v b k v\r\nme Zm9v b\r\n",
    b"me Zm9v b\r\nme Zm9 b\r\n",
} | {
    # memcached runs an ma before it checks the opaque's length, so on an
    # item an earlier request left the reply is the operation's error;
    # cached refuses the line first (alone, both say "opaque token too
    # long")
    b"ma k O" + o + b"\r\n" for o in (b"o" * 32, b"o" * 33, b"o" * 200)
} | TEXT_PIPELINE_UNSAFE

# (keys may hold any byte but space, NUL and LF: tabs and CRs too)
# A request line of incr, decr or ma.
ARITH_RE = re.compile(rb"(^|\n) *(incr|decr|ma) ")
CAS_RE = re.compile(rb"^(VALUE [^ \n]+ \d+ \d+) \d+\r\n", re.M)


def normalise(reply):
    """Blanks the CAS field of VALUE lines (counters differ between
    servers that saw different histories), and in meta reply lines the
    CAS values, clock readings and layout numbers (see meta_cases.py)."""
    return normalise_meta(CAS_RE.sub(rb"\1 <cas>\r\n", reply))


def free_port():
    """A free loopback TCP port outside the ephemeral range."""
    for port in range(21000 + os.getpid() % 3000, 32000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


class Memcached:
    """The oracle: memcached on 127.0.0.1 with the same memory limit."""

    def __init__(self):
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [MEMCACHED, "-U", "0", "-l", "127.0.0.1", "-p",
                 str(self.port), "-m", "64", "-t", "2", "-u", "nobody"],
                stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port),
                                             1).close()
                    return
                except OSError:
                    time.sleep(0.02)
            self.stop()
        raise RuntimeError("memcached did not start")

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port),
                                     5 * TIME_SCALE)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Client(s)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def read_reply(c, timeout=2.0):
    """Reads until the sentinel's VERSION line (left out of the result),
    the server closing (b"<CLOSED>") or timeout seconds (b"<TIMEOUT>": a
    server that took the sentinel as part of a request)."""
    out = b""
    deadline = time.monotonic() + timeout * TIME_SCALE
    while True:
        m = VERSION_RE.search(out)
        if m:
            return out[:m.start()]
        left = deadline - time.monotonic()
        if left <= 0:
            return out + b"<TIMEOUT>"
        c.sock.settimeout(left)
        try:
            chunk = c.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        except socket.timeout:
            continue
        if not chunk:
            return out + CLOSED
        out += chunk


def exchange(server, request, step=None):
    """Sends request and the sentinel on a new connection to a flushed
    server (all at once, or step bytes per send) and returns the
    normalised reply."""
    c = server.connect()
    try:
        assert c.call(b"flush_all\r\n") == b"OK\r\n"
        if not c.send_bytes(request + SENTINEL, step or len(request) + 9):
            return normalise(c.read_until_closed())
        return normalise(read_reply(c))
    finally:
        c.close()


@unittest.skipIf(MEMCACHED is None, "memcached (the oracle) not installed")
class DifferentialTest(unittest.TestCase):
    maxDiff = None
    @classmethod
    def setUpClass(cls):
        cls.cached = Server("-m", "64", "-t", "2")
        cls.memcached = Memcached()

    @classmethod
    def tearDownClass(cls):
        cls.memcached.stop()
        status = cls.cached.stop()
        if status != 0:
            raise AssertionError("cached exited with %d" % status)

    def corpus(self):
        return [req for req, _ in CASES] + EXTRA + TEXT + META

    def compare(self, request, step=None):
        theirs = exchange(self.memcached, request, step)
        ours = exchange(self.cached, request, step)
        if request in DIFFERENCES:
            want_theirs, want_ours, why = DIFFERENCES[request]
            self.assertEqual((theirs, ours), (want_theirs, want_ours), why)
        elif ours != theirs:
            at = next((i for i, (a, b) in enumerate(zip(ours, theirs))
                       if a != b), min(len(ours), len(theirs)))
            self.fail("replies part at byte %d:\n memcached %r\n cached    %r"
                      % (at, theirs[max(0, at - 80):at + 80],
                         ours[max(0, at - 80):at + 80]))

    def test_whole(self):
        """Every request sent in one piece."""
        for request in self.corpus():
            with self.subTest(request=request[:60]):
                self.compare(request)

    def test_split_at_every_byte(self):
        """Short requests sent a byte at a time: the same replies."""
        for request in self.corpus():
            if len(request) > META_SPLIT_MAX or request.endswith(CLOSED):
                continue
            with self.subTest(request=request[:60]):
                self.compare(request, step=1)

    def test_counters(self):
        """Each request moves memcached's counters as it moves ours, so
        dashboards and exporters read the same traffic the same way."""
        for request in self.corpus():
            if request in DIFFERENCES or request in COUNTER_DIFFERENCES:
                continue
            with self.subTest(request=request[:60]):
                moved = []
                for server in (self.memcached, self.cached):
                    c = server.connect()
                    before = c.stats()
                    exchange(server, request)
                    after = c.stats()
                    c.close()
                    moved.append({k: int(after[k]) - int(before[k])
                                  for k in COUNTERS})
                self.assertEqual(
                    {k: v for k, v in moved[1].items() if v != moved[0][k]},
                    {k: v for k, v in moved[0].items() if v != moved[1][k]},
                    "counters cached moved (left) and memcached (right)")

    def test_version(self):
        """Deliberately different: cached reports the memcached release it
        is compatible with, then its own name and version, so clients
        that sniff the version treat it as that memcached."""
        def version(server):
            c = server.connect()
            c.send(b"version\r\n")
            line = c.read_exactly(8)
            while not line.endswith(b"\r\n"):
                line += c.read_exactly(1)
            c.close()
            return line
        theirs, ours = version(self.memcached), version(self.cached)
        self.assertTrue(ours.startswith(theirs[:-2] + b"-cached-"),
                        (theirs, ours))

    def test_pipelined(self):
        """The whole corpus on one connection, but for the requests that
        close it (as memcached answers them alone), that differ on
        purpose, or that memcached cannot take in a pipeline.  Among
        those: incr/decr/ma, whose shrinking results memcached pads in
        place only while no queued reply holds the item (in a pipeline
        that depends on timing; alone it pads, as cached does)."""
        stream = b"".join(
            r for r in self.corpus()
            if r not in DIFFERENCES and r not in PIPELINE_UNSAFE
            and not ARITH_RE.search(r)
            and not exchange(self.memcached, r).endswith(CLOSED))
        self.compare(stream)


if __name__ == "__main__":
    if MEMCACHED is None:
        print("SKIP: memcached (the oracle) is not installed",
              file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
