"""cached-warm against the real cached: literal entries (10,000, with their
flags and TTLs), add and replace modes, --exec with a worker pool (failing
and hanging commands, the timeout, concurrency), memoize-derived keys found
by a real cc_memoize caller, malformed lines with their line numbers,
--strict, every documented exit status, the lock file, signals, several
servers, jitter and the progress bar.

A small recording proxy sits between cached-warm and cached where a test
must see what was sent (the TTL of each store cannot be read back from a
memcached-protocol server).  Binaries come from $TOP_BUILDDIR; every wait
is bounded; loopback only.
"""
import base64
import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, wait_for  # noqa: E402

BUILD = os.environ.get("TOP_BUILDDIR", os.getcwd())
WARM = os.path.join(BUILD, "tools", "cached-warm")
MEMO = os.path.join(BUILD, "tests", "integration", "test_warm_memo")
SUMMARY_RE = re.compile(
    rb"cached-warm: (dry run: )?read (\d+), (?:stored|valid) (\d+), "
    rb"skipped (\d+), failed (\d+), bytes (\d+), elapsed [0-9.]+ s, "
    rb"rate \d+/s\n")


def read_text(path):
    with open(path) as f:
        return f.read()


def dead(pid):
    """True once process pid is gone or a zombie."""
    try:
        return read_text("/proc/%s/stat" % pid).split()[2] == "Z"
    except OSError:
        return True


def curr_items(server):
    c = server.connect()
    try:
        return int(c.stats()["curr_items"])
    finally:
        c.close()


def summary(out):
    """Returns (read, stored, skipped, failed, bytes) of a summary line."""
    m = SUMMARY_RE.search(out)
    assert m, out
    return tuple(int(g) for g in m.groups()[1:])


class Recorder:
    """A TCP proxy to a server that records every storage command sent
    through it as (command, key, flags, exptime, value)."""

    STORE_RE = re.compile(rb"^(set|add|replace) (\S+) (\d+) (\d+) (\d+)$")

    def __init__(self, port):
        self.target = port
        self.stores = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._up, args=(client, server),
                             daemon=True).start()
            threading.Thread(target=self._down, args=(server, client),
                             daemon=True).start()

    def _down(self, server, client):
        try:
            while True:
                data = server.recv(1 << 16)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        client.close()

    def _up(self, client, server):
        buf = b""
        try:
            while True:
                data = client.recv(1 << 16)
                if not data:
                    break
                # Record before relaying: once the server has a command it
                # may answer, and the tool exit, before a later parse.
                buf = self._parse(buf + data)
                server.sendall(data)
        except OSError:
            pass
        server.close()

    def _parse(self, buf):
        while True:
            nl = buf.find(b"\r\n")
            if nl < 0:
                return buf
            m = self.STORE_RE.match(buf[:nl])
            if not m:
                buf = buf[nl + 2:]
                continue
            size = int(m.group(5))
            if len(buf) < nl + 2 + size + 2:
                return buf
            value = buf[nl + 2:nl + 2 + size]
            with self.lock:
                self.stores.append((m.group(1).decode(), m.group(2).decode(),
                                    int(m.group(3)), int(m.group(4)), value))
            buf = buf[nl + 2 + size + 2:]

    def close(self):
        self.listener.close()


class WarmTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="warm-test-")
        self.lock = os.path.join(self.tmp.name, "warm.lock")
        self.srv = Server()
        self.servers = "127.0.0.1:%d" % self.srv.port

    def tearDown(self):
        self.srv.stop()
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def manifest(self, text, name="manifest"):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        return p

    def warm(self, *args, stdin=b"", servers=None, timeout=60):
        argv = [WARM, "-s", servers or self.servers, "--lock", self.lock]
        return subprocess.run(argv + list(args), input=stdin,
                              capture_output=True, timeout=timeout)

    def get(self, *keys):
        """Returns {key: (flags, value)} of the keys found."""
        c = self.srv.connect()
        out = {}
        for i in range(0, len(keys), 100):
            chunk = keys[i:i + 100]
            reply = c.call(b"get " + b" ".join(k.encode() for k in chunk) +
                           b"\r\n")
            pos = 0
            while not reply.startswith(b"END\r\n", pos):
                eol = reply.index(b"\r\n", pos)
                _, key, flags, size = reply[pos:eol].split(b" ")
                start = eol + 2
                out[key.decode()] = (int(flags),
                                     reply[start:start + int(size)])
                pos = start + int(size) + 2
        c.close()
        return out

    def raw(self, data):
        c = self.srv.connect()
        try:
            return c.call(data)
        finally:
            c.close()

    # ---- literal entries ----

    def test_10000_literal_entries_flags_and_ttl(self):
        rec = Recorder(self.srv.port)
        lines, want = [], {}
        for i in range(10000):
            key = "item:%d" % i
            flags = i % 7 * 1000
            ttl = 3600 + i % 100
            value = ("value %d " % i).encode() + bytes([i % 256]) + b"\n"
            word = '"%s"' % "".join(
                "\\x%02x" % b if b < 0x20 or b in b'"\\' or b > 0x7e
                else chr(b) for b in value)
            if i % 3 == 0:
                word = "b64:" + base64.b64encode(value).decode()
            lines.append("%s %d %d %s" % (key, ttl, flags, word))
            want[key] = (flags, ttl, value)
        path = self.manifest("# ten thousand entries\n" +
                             "\n".join(lines) + "\n")
        r = self.warm(path, servers="127.0.0.1:%d" % rec.port)
        rec.close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        self.assertEqual(summary(r.stdout),
                         (10000, 10000, 0, 0,
                          sum(len(v[2]) for v in want.values())))
        sent = {key: (cmd, flags, ttl, value)
                for cmd, key, flags, ttl, value in rec.stores}
        self.assertEqual(len(rec.stores), 10000)
        for key, (flags, ttl, value) in want.items():
            self.assertEqual(sent[key], ("set", flags, ttl, value), key)
        got = self.get(*want)
        self.assertEqual(len(got), 10000)
        for key, (flags, _, value) in want.items():
            self.assertEqual(got[key], (flags, value), key)

    def test_defaults_ttl_flags_and_jitter(self):
        rec = Recorder(self.srv.port)
        text = "".join("j:%d - - v\n" % i for i in range(1000))
        r = self.warm("--ttl", "3600", "--jitter", "600", "--flags", "9",
                      stdin=text.encode(),
                      servers="127.0.0.1:%d" % rec.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        ttls = [s[3] for s in rec.stores]
        self.assertEqual(len(ttls), 1000)
        self.assertTrue(all(3000 <= t <= 3600 for t in ttls), ttls[:20])
        self.assertGreater(len(set(ttls)), 100)
        self.assertEqual({s[2] for s in rec.stores}, {9})
        rec.stores.clear()
        r = self.warm("--jitter", "10%", stdin=b"p:1 1000 0 v\n" * 200,
                      servers="127.0.0.1:%d" % rec.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        ttls = [s[3] for s in rec.stores]
        self.assertTrue(all(900 <= t <= 1000 for t in ttls), ttls)
        self.assertGreater(len(set(ttls)), 10)
        rec.stores.clear()
        r = self.warm(stdin=b"d:1 - - v\nd:2 0 0 v\n",
                      servers="127.0.0.1:%d" % rec.port)
        self.assertEqual(sorted(s[3] for s in rec.stores), [0, 43200])
        rec.close()

    def test_add_mode_skips_existing_keys(self):
        self.raw(b"set a:1 1 0 3\r\nold\r\nset a:3 1 0 3\r\nold\r\n")
        text = "".join("a:%d 60 2 new\n" % i for i in range(1, 6))
        r = self.warm("--mode", "add", stdin=text.encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(summary(r.stdout), (5, 3, 2, 0, 9))
        got = self.get("a:1", "a:2", "a:3", "a:4", "a:5")
        self.assertEqual(got["a:1"], (1, b"old"))
        self.assertEqual(got["a:3"], (1, b"old"))
        self.assertEqual(got["a:2"], (2, b"new"))
        self.assertEqual(got["a:5"], (2, b"new"))

    def test_replace_mode_skips_missing_keys(self):
        self.raw(b"set r:1 1 0 3\r\nold\r\n")
        r = self.warm("-m", "replace", stdin=b"r:1 60 0 new\nr:2 60 0 new\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(summary(r.stdout), (2, 1, 1, 0, 3))
        self.assertEqual(self.get("r:1", "r:2"), {"r:1": (0, b"new")})

    def test_stdin_files_and_quiet(self):
        a = self.manifest("f:a 60 0 A\n", "a.txt")
        b = self.manifest("f:b 60 0 B\n", "b.txt")
        r = self.warm("-q", a, "-", b, stdin=b"f:s 60 0 S\n")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""))
        self.assertEqual(len(self.get("f:a", "f:b", "f:s")), 3)

    def test_value_over_item_limit_is_reported_not_sent(self):
        rec = Recorder(self.srv.port)
        text = b"big 60 0 " + b"x" * 2000 + b"\nsmall 60 0 y\n"
        r = self.warm("--item-max", "1k", stdin=text,
                      servers="127.0.0.1:%d" % rec.port)
        rec.close()
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"-:1: value of 2000 bytes is over the item limit "
                      b"of 1024; not sent", r.stderr)
        self.assertEqual([s[1] for s in rec.stores], ["small"])
        self.assertEqual(summary(r.stdout), (2, 1, 0, 1, 1))

    def test_server_rejects_too_large_value(self):
        # cached -I 1024: the value passes our --item-max but not the
        # server's limit; the batch reports that item, stores the rest.
        with Server("-I", "1k") as small:
            text = b"s:1 60 0 ok\ns:2 60 0 " + b"z" * 1500 + b"\ns:3 60 0 ok\n"
            r = self.warm(stdin=text, servers="127.0.0.1:%d" % small.port)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"-:2: s:2: not stored", r.stderr)
            self.assertEqual(summary(r.stdout), (3, 2, 0, 1, 4))
            c = small.connect()
            self.assertEqual(c.call(b"get s:3\r\n"),
                             b"VALUE s:3 0 2\r\nok\r\nEND\r\n")
            c.close()

    def peak_rss_kb(self, entries):
        """Streams entries of 100 bytes through stdin; returns the peak
        resident size of cached-warm in KiB."""
        script = ("import resource, subprocess, sys\n"
                  "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE,"
                  " stdout=subprocess.DEVNULL)\n"
                  "v = b'v' * 100\n"
                  "for i in range(int(sys.argv[1])):\n"
                  "    p.stdin.write(b'm:%d 60 0 %s\\n' % (i % 5000, v))\n"
                  "p.stdin.close()\n"
                  "assert p.wait() == 0\n"
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN)"
                  ".ru_maxrss)\n")
        env = dict(os.environ)
        # Under AddressSanitizer freed memory waits in a quarantine that
        # grows with the work done; keep it out of the measurement.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=0").lstrip(":")
        r = subprocess.run([sys.executable, "-c", script, str(entries), WARM,
                            "-s", self.servers, "--lock", self.lock],
                           capture_output=True, timeout=120, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout)

    def test_memory_does_not_grow_with_the_manifest(self):
        # 20 MB more manifest; buffering it would cost at least that.
        # (Measured: flat in a plain build, +3 MB under ASan.)
        small = self.peak_rss_kb(20000)      # 2.2 MB of manifest
        large = self.peak_rss_kb(200000)     # 22 MB
        self.assertLess(large, small + 8192, (small, large))

    # ---- malformed input ----

    def test_malformed_lines_report_line_numbers(self):
        path = self.manifest(
            "good:1 60 0 one\n"          # 1
            "# comment\n"                # 2
            "\n"                         # 3
            "bad:2 sixty 0 v\n"          # 4 TTL not a number
            "good:5 60 0 \"five\"\n"     # 5
            "bad:6 60 0 \"open\n"        # 6 quote not closed
            "bad:7 60\n"                 # 7 two words
            "bad:8 60 0 \\q\n"           # 8 unknown escape
            "memo ns f:n 60 v\n"         # 9 bad function name
            "bad:10 60 0 b64:abc\n"      # 10 bad base64
            "computed:11\n"              # 11 no --exec
            "good:12 60 0 twelve\n"      # 12
            "cut:13 60 0 short")         # 13 no newline
        r = self.warm(path)
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        for n, text in ((4, "TTL must be a number"), (6, "quote not closed"),
                        (7, "found 2 words"), (8, "unknown escape"),
                        (9, "function name"), (10, "base64"),
                        (11, "no --exec"), (13, "no newline")):
            self.assertRegex(err, r"%s:%d: .*%s" % (re.escape(path), n,
                                                      re.escape(text)))
        self.assertEqual(err.count("\n"), 8)
        self.assertEqual(summary(r.stdout), (11, 3, 0, 8, 13))
        self.assertEqual(sorted(self.get("good:1", "good:5", "good:12",
                                         "cut:13", "bad:2")),
                         ["good:1", "good:12", "good:5"])

    def test_strict_file_stores_nothing_if_any_line_is_bad(self):
        path = self.manifest("s:1 60 0 v\ns:2 x 0 v\ns:3 60 0 v\n"
                             "s:4 60 0 \\z\n")
        r = self.warm("--strict", path)
        self.assertEqual(r.returncode, 65)
        self.assertIn(b":2: column 5: TTL", r.stderr)
        self.assertIn(b":4: column 10: unknown escape", r.stderr)
        self.assertEqual(self.get("s:1", "s:3"), {})

    def test_strict_pipe_stops_at_first_bad_line(self):
        r = self.warm("--strict", stdin=b"p:1 60 0 v\np:2 x 0 v\np:3 60 0 v\n")
        self.assertEqual(r.returncode, 65)
        self.assertIn(b"-:2:", r.stderr)
        self.assertEqual(sorted(self.get("p:1", "p:3")), ["p:1"])

    def test_dry_run_touches_no_server(self):
        text = b"d:1 60 0 v\nd:2\nmemo ns fn 60 v a\nd:4 x 0 v\n"
        r = self.warm("--dry-run", "-e", "true", stdin=text,
                      servers="127.0.0.1:1")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"-:4:", r.stderr)
        self.assertEqual(summary(r.stdout), (4, 3, 0, 1, 2))
        self.assertIn(b"dry run", r.stdout)
        r = self.warm("-n", stdin=b"d:1 60 0 v\n", servers="127.0.0.1:1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.lock))

    # ---- computed entries ----

    GEN = ("case {} in fail:*) echo failing >&2; exit 3;; "
           "hang:*) sleep 30;; esac; printf 'value-of-%s' {}")

    def test_exec_pool_failures_and_timeout(self):
        keys = ["k:%d" % i for i in range(20)]
        text = "\n".join(keys + ["fail:1", "hang:1", "k:last 60 5"]) + "\n"
        # hang:1 would sleep 30 s; the timeout message shows it was killed.
        r = self.warm("-e", self.GEN, "-j", "4", "-t", "0.5",
                      stdin=text.encode())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(summary(r.stdout)[:4], (23, 21, 0, 2))
        self.assertIn(b"-:21: command exited with status 3", r.stderr)
        self.assertIn(b"-:22: command timed out (killed)", r.stderr)
        self.assertIn(b"failing", r.stderr)     # the command's own stderr
        got = self.get(*(keys + ["fail:1", "hang:1", "k:last"]))
        self.assertEqual(len(got), 21)
        for k in keys:
            self.assertEqual(got[k], (0, b"value-of-" + k.encode()))
        self.assertEqual(got["k:last"], (5, b"value-of-k:last"))

    def test_exec_runs_in_parallel(self):
        # A barrier: each command waits until all eight have started, so
        # the run succeeds only if eight run at once (run one by one, the
        # first would wait until -t killed it).
        barrier = self.path("barrier")
        os.mkdir(barrier)
        text = "".join("par:%d\n" % i for i in range(8)).encode()
        cmd = ("touch %s/{}; until [ $(ls %s | wc -l) -ge 8 ]; "
               "do sleep 0.01; done; echo {}" % (barrier, barrier))
        r = self.warm("-e", cmd, "-j", "8", "-t", "30", stdin=text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.get("par:3")["par:3"], (0, b"par:3\n"))

    def test_exec_key_quoting_and_environment(self):
        r = self.warm("-e", "printf '%s|%s' {} \"$CACHED_WARM_KEY\"",
                      stdin=b"q:it's$(x)`y` - -\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.get("q:it's$(x)`y`")
        self.assertEqual(got["q:it's$(x)`y`"][1],
                         b"q:it's$(x)`y`|q:it's$(x)`y`")

    def test_exec_output_over_limit(self):
        r = self.warm("-e", "head -c 5000 /dev/zero", "--item-max", "4k",
                      stdin=b"big:1\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"item limit", r.stderr)
        self.assertEqual(self.get("big:1"), {})

    # ---- memoize interop ----

    def memo_call(self, ns, fn, ttl, *args):
        r = subprocess.run([MEMO, "memo", self.servers, ns, fn, str(ttl)] +
                           list(args), capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        status, _, value = r.stdout.partition(b"\n")
        return status.decode(), value

    def test_memo_entries_hit_by_memoize(self):
        text = (b"memo articles render 600 \"<p>seven</p>\" 7 en\n"
                b"memo articles render 600 b64:AAEC b64:AP8= \"\"\n"
                b"memo articles summary 600 - 7\n")
        r = self.warm("-e", "printf 'summary of %s' {}", stdin=text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(summary(r.stdout)[:4], (3, 3, 0, 0))
        self.assertEqual(self.memo_call("articles", "render", 600, "7", "en"),
                         ("hit", b"<p>seven</p>"))
        self.assertEqual(self.memo_call("articles", "render", 600,
                                        "hex:00ff", ""),
                         ("hit", b"\x00\x01\x02"))
        self.assertEqual(self.memo_call("articles", "summary", 600, "7"),
                         ("hit", b"summary of 7"))
        # Different arguments are a different key: computed, not warmed.
        self.assertEqual(self.memo_call("articles", "render", 600, "8",
                                        "en"), ("miss", b"COMPUTED"))

    def test_memo_add_mode_keeps_cached_result(self):
        self.assertEqual(self.memo_call("ns", "fn", 600, "x"),
                         ("miss", b"COMPUTED"))
        r = self.warm("-m", "add", stdin=b"memo ns fn 600 warm x\n"
                      b"memo ns fn 600 warm y\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(summary(r.stdout)[:4], (2, 1, 1, 0))
        self.assertEqual(self.memo_call("ns", "fn", 600, "x"),
                         ("hit", b"COMPUTED"))
        self.assertEqual(self.memo_call("ns", "fn", 600, "y"),
                         ("hit", b"warm"))

    # ---- several servers ----

    def test_keys_spread_over_servers_as_the_library_routes(self):
        with Server() as second:
            servers = "%s,127.0.0.1:%d" % (self.servers, second.port)
            keys = ["spread:%d" % i for i in range(2000)]
            text = "".join("%s 60 %d v%d\n" % (k, i, i)
                           for i, k in enumerate(keys))
            r = self.warm(stdin=text.encode(), servers=servers)
            self.assertEqual(r.returncode, 0, r.stderr)
            counts = [curr_items(s) for s in (self.srv, second)]
            self.assertEqual(sum(counts), 2000)
            self.assertGreater(min(counts), 500)
            r = subprocess.run([MEMO, "get", servers],
                               input="\n".join(keys).encode() + b"\n",
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.decode().splitlines()
            self.assertEqual(len(lines), 2000)
            for i, line in enumerate(lines):
                self.assertEqual(line, "spread:%d %d %d" %
                                 (i, i, len("v%d" % i)))

    def test_dead_server_in_the_list(self):
        # Keys routed to a server that refuses connections take the
        # library's one-by-one path: counted failed until libmemcached
        # ejects the server, then stored on the live one.  Every entry is
        # accounted for and what is counted stored is on the live server.
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
        free.close()
        text = "".join("dead:%d 60 0 v\n" % i for i in range(2000))
        r = self.warm(stdin=text.encode(),
                      servers="%s,127.0.0.1:%d" % (self.servers, dead))
        read, stored, skipped, failed, _ = summary(r.stdout)
        self.assertEqual((read, skipped, stored + failed), (2000, 0, 2000))
        self.assertGreater(stored, 0)
        self.assertEqual(r.returncode, 1 if failed else 0)
        self.assertEqual(r.stderr.count(b"server unreachable"), failed)
        self.assertEqual(curr_items(self.srv), stored)

    # ---- exit statuses, lock, signals, progress ----

    def test_exit_statuses(self):
        for args in (["--bogus"], ["-j", "0"], ["--mode", "x"],
                     ["--ttl", "-5"], ["-s", "host:99999"]):
            with self.subTest(args=args):
                r = self.warm(*args)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertIn(b"cached-warm: ", r.stderr)
        r = self.warm(self.path("missing"))
        self.assertEqual(r.returncode, 66)
        self.assertIn(b"No such file", r.stderr)
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        r = self.warm(stdin=b"k 60 0 v\n", servers="127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 69)
        self.assertIn(b"no server reachable", r.stderr)
        r = self.warm(stdin=b"k 60 0 v\n")
        self.assertEqual(r.returncode, 0)
        r = self.warm(stdin=b"k 60 0 v\nk2 60\n")
        self.assertEqual(r.returncode, 1)
        r = self.warm("-h")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: cached-warm", r.stdout)

    def test_lock_held_exits_75(self):
        with open(self.lock, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            r = self.warm(stdin=b"k 60 0 v\n")
            self.assertEqual(r.returncode, 75)
            self.assertIn(b"holds " + self.lock.encode(), r.stderr)
        self.assertEqual(self.get("k"), {})
        r = self.warm(stdin=b"k 60 0 v\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_lock_stops_a_second_concurrent_run(self):
        # The first run holds the lock until the test lets its command
        # finish (it waits for a release file), so the second run meets a
        # held lock however slowly either process is scheduled.  A second
        # run that waited for the lock instead of exiting 75 would never
        # return and hit the subprocess timeout.
        started, release = self.path("started"), self.path("release")
        first = subprocess.Popen(
            [WARM, "-s", self.servers, "--lock", self.lock, "-e",
             "touch %s; until [ -e %s ]; do sleep 0.01; done; echo {}"
             % (started, release), self.manifest("slow:1\n")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            # The lock is taken before any command runs.
            self.assertIsNotNone(wait_for(
                lambda: os.path.exists(started) or first.poll() is not None,
                30))
            self.assertIsNone(first.poll())
            r = self.warm(stdin=b"k 60 0 v\n", timeout=30)
            self.assertEqual(r.returncode, 75, r.stderr)
            self.assertIn(b"(pid %d)" % first.pid, r.stderr)
            self.assertEqual(self.get("k"), {})
        finally:
            open(release, "w").close()
            out, err = first.communicate(timeout=30)
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(self.get("slow:1")["slow:1"], (0, b"slow:1\n"))
        r = self.warm(stdin=b"k 60 0 v\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_sigterm_kills_commands_and_reports(self):
        marker = self.path("started")
        p = subprocess.Popen(
            [WARM, "-s", self.servers, "--lock", self.lock, "-j", "2", "-e",
             "echo $$ >> %s; sleep 30" % marker,
             self.manifest("h:1\nh:2\nh:3\nh:4\n")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.assertIsNotNone(wait_for(
            lambda: os.path.exists(marker) and
            read_text(marker).count("\n") == 2, 30))
        # The commands sleep 30 s: a run that waited for them instead of
        # killing them would miss the communicate timeout.
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"caught signal 15", err)
        self.assertEqual(summary(out)[:4], (4, 0, 0, 4))
        for pid in read_text(marker).split():
            self.assertIsNotNone(wait_for(lambda: dead(pid), 15), pid)

    def test_progress_only_when_asked_or_on_a_terminal(self):
        text = b"".join(b"pg:%d 60 0 v\n" % i for i in range(500))
        r = self.warm(stdin=text)
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        r = self.warm("--progress", "-j", "1", "-e", "sleep 0.3; echo {}",
                      stdin=b"pg:x\npg:y\n")
        self.assertIn(b"\r", r.stderr)
        self.assertIn(b"entries", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
