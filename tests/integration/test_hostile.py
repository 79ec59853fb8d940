"""Hostile and faulty clients against the real cached binary, over
loopback, each bounded in count and time:

  - every malformed or boundary request of hostile_cases.py, sent whole
    and one byte per send(), gets exactly the protocol's reply (or a
    close); afterwards `version` answers on a fresh connection and the
    values stored before are intact;
  - the connection limit admits exactly -c clients, turns away the next
    with "ERROR Too many open connections" and admits again once some
    close;
  - with idle_timeout, silent, half-line and half-value clients are closed
    within T+2 s, and while 1,000 of them trickle bytes a normal client is
    still served;
  - a client that pipelines thousands of gets of a 1 MB value and never
    reads is dropped (write_timeout, and idle_timeout) with memory bounded;
  - 200 clients killed half-way through sending 1 MB values: connections
    and reserved memory are reclaimed, no partial value is ever visible;
  - SIGTERM with 1,000 open connections exits 0 within 1 s.

Measured figures are printed (they end up in the test's log).
"""
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CLOSED, INSTRUMENTED, SENTINEL, TIME_SCALE,  # noqa: E402
                    Server, SharedServerTest, raise_nofile, rss_kib,
                    wait_for)
import binproto  # noqa: E402
import hostile_cases  # noqa: E402
from hostile_cases import CLOSED as END_CLOSED, STALL, VERSION  # noqa: E402

TOO_MANY = b"ERROR Too many open connections\r\n"

# Stored before the malformed requests and checked after each one.
CANARIES = [(b"canary:small", 0, b"hello"),
            (b"canary:binary", 7, bytes(range(256)) + b"\r\nEND\r\n"),
            (b"canary:" + b"k" * 243, 4294967295, b"v" * 20000),
            (b"canary:number", 1, b"42")]


def canary_sets():
    return b"".join(b"set %s %d 0 %d\r\n%s\r\n" % (k, f, len(v), v)
                    for k, f, v in CANARIES)


def canary_get():
    return b"get %s\r\n" % b" ".join(k for k, _, _ in CANARIES)


def canary_reply():
    return b"".join(b"VALUE %s %d %d\r\n%s\r\n" % (k, f, len(v), v)
                    for k, f, v in CANARIES) + b"END\r\n"


class MalformedTest(SharedServerTest):
    def run_case(self, case, split):
        """Sends one case on a new connection; returns the reply as the
        table writes it, or raises."""
        c = self.server.connect()
        data = case.request
        if case.ending != STALL:
            data += SENTINEL
        if split:
            c.send_bytes(data)
        else:
            c.send_bytes(data, len(data))
        try:
            if case.ending == END_CLOSED:
                got = c.read_until_closed()
                want = case.reply + CLOSED
            elif case.ending == STALL:
                got = c.read_exactly(len(case.reply))
                want = case.reply
            else:
                got = c.read_until_version()
                want = case.reply
        finally:
            c.close()
        return got, want

    def check_after(self):
        """version on a fresh connection, and the canaries intact."""
        c = self.server.connect()
        try:
            return c.call(canary_get()) == canary_reply()
        finally:
            c.close()

    def test_malformed_requests(self):
        cases = hostile_cases.all_cases()
        c = self.server.connect()
        self.assertEqual(c.call(canary_sets()), b"STORED\r\n" * len(CANARIES))
        c.close()
        baseline = self.server.connect()
        failures = []
        sent = 0
        start = time.monotonic()
        # The split pass is a second generation of the table, so that its
        # storage commands again find their keys absent.
        runs = [(case, False) for case in cases] + [
            (case, True) for case in hostile_cases.all_cases() if case.split]
        for case, split in runs:
            sent += 1
            got, want = self.run_case(case, split)
            if got != want:
                failures.append("%r%s: got %r, want %r" % (
                    case.name[:60], " (split)" if split else "",
                    got[:120], want[:120]))
            if not self.check_after():
                failures.append("%r%s: canaries or version broken" % (
                    case.name[:60], " (split)" if split else ""))
        elapsed = time.monotonic() - start
        print("malformed: %d cases, %d sends (whole and split at every "
              "byte) in %.1f s, %d failures" % (len(cases), sent, elapsed,
                                                len(failures)))
        self.assertGreaterEqual(len(cases), 500)
        self.assertEqual(failures, [], "\n".join(failures[:30]))
        # Every connection above is gone, and so is every value a closed
        # connection had half-read: after a flush, memory drains to 0.
        self.assertIsNotNone(wait_for(
            lambda: baseline.stats()["curr_connections"] == "1", 5),
            baseline.stats()["curr_connections"])
        self.assertEqual(baseline.call(b"flush_all\r\n"), b"OK\r\n")
        self.assertIsNotNone(wait_for(
            lambda: baseline.stats()["bytes"] == "0", 5),
            "bytes left after flush_all: %s" % baseline.stats()["bytes"])
        baseline.close()


class ConnectionLimitTest(unittest.TestCase):
    def test_exact_limit(self):
        n = 64
        with Server("-c", str(n), "-t", "2") as srv:
            clients = [srv.connect() for _ in range(n)]
            for c in clients:
                self.assertEqual(c.call(b""), b"")
            for _ in range(3):
                extra = srv.connect()
                self.assertEqual(extra.read_until_closed(), TOO_MANY + CLOSED)
                extra.close()
            for i, c in enumerate(clients):
                self.assertEqual(
                    c.call(b"set c%d 0 0 1\r\nx\r\nget c%d\r\n" % (i, i)),
                    b"STORED\r\nVALUE c%d 0 1\r\nx\r\nEND\r\n" % i)
            watcher = clients[-1]
            self.assertEqual(watcher.stats()["rejected_connections"], "3")
            for c in clients[:10]:
                c.close()
            self.assertIsNotNone(wait_for(
                lambda: watcher.stats()["curr_connections"] == str(n - 10),
                5))
            again = [srv.connect() for _ in range(10)]
            for c in again:
                self.assertEqual(c.call(b"get c0\r\n"),
                                 b"VALUE c0 0 1\r\nx\r\nEND\r\n")
            extra = srv.connect()
            self.assertEqual(extra.read_until_closed(), TOO_MANY + CLOSED)
            self.assertEqual(watcher.stats()["rejected_connections"], "4")
            print("connection limit: %d admitted, 4 turned away, 10 "
                  "admitted again after 10 closed" % (n + 10))


class SlowClientTest(unittest.TestCase):
    T = 2

    def test_idle_kinds_closed(self):
        """Silent, half-line and half-value: all closed within T+2 s."""
        with Server("-o", "idle_timeout=%d" % self.T, "-t", "2") as srv:
            kinds = {"silent": b"", "half line": b"set k 0 0 5",
                     "half value": b"set k 0 0 5\r\nhel"}
            socks = {}
            for name, data in kinds.items():
                c = srv.connect()
                c.send(data)
                socks[name] = (c, time.monotonic())
            for name, (c, t0) in socks.items():
                c.sock.settimeout(self.T + 5)
                self.assertEqual(c.sock.recv(100), b"")
                took = time.monotonic() - t0
                print("idle_timeout=%d: %s client closed after %.2f s"
                      % (self.T, name, took))
                self.assertLess(took, (self.T + 2) * TIME_SCALE)

    def test_thousand_tricklers(self):
        """1,000 clients trickling bytes of unfinished requests are closed
        within T+2 s while a normal client goes on being served."""
        n = 1000
        raise_nofile(n + 200)
        with Server("-o", "idle_timeout=%d" % self.T, "-c", str(n + 50),
                    "-t", "2") as srv:
            normal = srv.connect()
            stop = threading.Event()
            served = {"n": 0, "max": 0.0, "bad": 0}
            t = threading.Thread(target=self.serve_normal,
                                 args=(normal, stop, served))
            t.start()
            try:
                closed_after = self.trickle(srv, n)
            finally:
                stop.set()
                t.join()
            worst = max(closed_after)
            print("idle_timeout=%d: %d trickling clients closed after "
                  "%.2f-%.2f s; normal client served %d requests meanwhile, "
                  "slowest %.3f s" % (self.T, n, min(closed_after), worst,
                                      served["n"], served["max"]))
            self.assertEqual(len(closed_after), n)
            self.assertLess(worst, (self.T + 2) * TIME_SCALE)
            self.assertEqual(served["bad"], 0)
            self.assertGreater(served["n"], 100)
            # Not starved: a round trip well under the trickling's length
            # (a worker stuck on the tricklers would stall it throughout).
            # The bound is loose because this client shares the GIL with
            # the thread trickling on 1,000 sockets (1.04 s seen at load
            # average 14).
            self.assertLess(served["max"], self.T * TIME_SCALE)
            self.assertGreaterEqual(int(normal.stats()["idle_kicks"]), n)

    @staticmethod
    def serve_normal(c, stop, served):
        i = 0
        while not stop.is_set():
            i += 1
            t0 = time.monotonic()
            r = c.call(b"set n%d 0 0 4\r\nabcd\r\nget n%d\r\n" % (i, i))
            served["max"] = max(served["max"], time.monotonic() - t0)
            served["n"] += 1
            if r != b"STORED\r\nVALUE n%d 0 4\r\nabcd\r\nEND\r\n" % i:
                served["bad"] += 1

    def trickle(self, srv, n):
        """Connects n clients that each send one byte of an unfinished
        request every 100 ms (a third send nothing); returns how long
        after connecting each was closed."""
        scripts = [b"", b"get " + b"k" * 200,
                   b"set k 0 0 1000\r\n" + b"v" * 990]
        sel = selectors.DefaultSelector()
        conns = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), 10)
            s.setblocking(False)
            conns.append({"sock": s, "t0": time.monotonic(),
                          "script": scripts[i % 3], "pos": 0})
            sel.register(s, selectors.EVENT_READ, conns[-1])
        closed_after = []
        deadline = time.monotonic() + (self.T + 8) * TIME_SCALE
        next_tick = time.monotonic()
        while len(closed_after) < n and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.02):
                st = key.data
                try:
                    data = st["sock"].recv(100)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if data == b"":
                    closed_after.append(time.monotonic() - st["t0"])
                    sel.unregister(st["sock"])
                    st["sock"].close()
                    st["done"] = True
            if time.monotonic() >= next_tick:
                next_tick += 0.1
                for st in conns:
                    if st.get("done") or st["pos"] >= len(st["script"]):
                        continue
                    try:
                        st["sock"].send(st["script"][st["pos"]:
                                                     st["pos"] + 1])
                        st["pos"] += 1
                    except OSError:
                        pass
        sel.close()
        for st in conns:
            if not st.get("done"):
                st["sock"].close()
        return closed_after


class NeverReadingTest(unittest.TestCase):
    def stall(self, *opts):
        """A client pipelines 10,000 gets of a 1 MB value and never reads;
        returns (seconds until dropped, RSS growth in KiB)."""
        with Server("-t", "2", *opts) as srv:
            c = srv.connect()
            value = b"x" * (1 << 20)
            self.assertEqual(c.call(b"set big 0 0 %d\r\n%s\r\n"
                                    % (len(value), value)), b"STORED\r\n")
            rss0 = rss_kib(srv.proc.pid)
            s = socket.create_connection(("127.0.0.1", srv.port), 5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            self.assertIsNotNone(wait_for(
                lambda: c.stats()["curr_connections"] == "2", 5))
            pending = b"get big\r\n" * 10000
            last_sent = time.monotonic()
            # Push requests until the server stops taking them.
            while pending and time.monotonic() - last_sent < 1.0:
                try:
                    n = s.send(pending)
                    pending = pending[n:]
                    last_sent = time.monotonic()
                except BlockingIOError:
                    select.select([], [s], [], 0.05)
            peak = 0

            def dropped():
                nonlocal peak
                peak = max(peak, rss_kib(srv.proc.pid) - rss0)
                return c.stats()["curr_connections"] == "1"
            took = wait_for(dropped, 15)
            if took is not None:
                took = time.monotonic() - last_sent
            s.close()
            stats = c.stats()
            self.assertEqual(c.call(b"get big\r\n")[:20],
                             b"VALUE big 0 1048576\r")
            return took, peak, stats, len(pending)

    def test_dropped_by_write_timeout(self):
        took, peak, stats, unsent = self.stall("-o", "write_timeout=2")
        print("never-reading client: %d of 10000 gets unsent, dropped by "
              "write_timeout=2 %.2f s after its last send, RSS grew %d KiB"
              % (unsent // 9, took or -1, peak))
        self.assertIsNotNone(took, "never-reading client was not dropped")
        self.assertLess(took, 4 * TIME_SCALE)
        self.assertEqual(stats["output_kicks"], "1")
        if not INSTRUMENTED:
            self.assertLess(peak, 16 * 1024)

    def test_dropped_by_idle_timeout(self):
        took, peak, stats, _ = self.stall("-o", "write_timeout=0",
                                          "-o", "idle_timeout=2")
        print("never-reading client: dropped by idle_timeout=2 %.2f s "
              "after its last send, RSS grew %d KiB" % (took or -1, peak))
        self.assertIsNotNone(took, "never-reading client was not dropped")
        self.assertLess(took, 4 * TIME_SCALE)
        self.assertEqual(stats["idle_kicks"], "1")
        if not INSTRUMENTED:
            self.assertLess(peak, 16 * 1024)


    def test_unread_replies_do_not_hold_the_cache(self):
        """Clients that pipeline gets of many 2 KB values and never read
        the replies must not keep the memory of the values they asked
        for: items live in shared segments, and a queued reference would
        hold a whole segment, so a handful of such clients could leave no
        memory for anyone's sets."""
        n, size = 900, 2000
        value = b"v" * size
        with Server("-t", "2", "-m", "2") as srv:
            c = srv.connect()
            for i in range(0, n, 100):
                c.sock.sendall(b"".join(
                    b"set old%d 0 0 %d noreply\r\n%s\r\n" % (j, size, value)
                    for j in range(i, i + 100)))
            self.assertEqual(c.call(b""), b"")
            gets0 = int(c.stats()["cmd_get"])
            stuck = []
            for k in range(4):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", srv.port))
                s.setblocking(False)
                stuck.append(s)
                # More than the kernel's socket buffers take, so replies
                # queue in the server.
                reqs = b"".join(b"get old%d\r\n" % ((j * 7 + k) % n)
                                for j in range(8 * n))
                deadline = time.monotonic() + 5
                while reqs and time.monotonic() < deadline:
                    try:
                        reqs = reqs[s.send(reqs):]
                    except BlockingIOError:
                        select.select([], [s], [], 0.05)
            # Wait until the server has taken what it will take.
            seen = [gets0]

            def settled():
                now = int(c.stats()["cmd_get"])
                done = now == seen[0] and now > gets0
                seen[0] = now
                return done
            self.assertIsNotNone(wait_for(settled, 10))
            failed = 0
            for i in range(0, 2 * n, 100):
                replies = c.call(b"".join(
                    b"set new%d 0 0 %d\r\n%s\r\n" % (j, size, value)
                    for j in range(i, i + 100)))
                failed += 100 - replies.count(b"STORED\r\n")
            stats = c.stats()
            print("4 clients never reading %d gets of 2 KB values: %d of "
                  "%d later sets failed, %s items kept of the %d that fit"
                  % (int(stats["cmd_get"]) - gets0, failed, 2 * n,
                     stats["curr_items"], n))
            self.assertEqual(failed, 0)
            # Pinned segments would leave only the rest for new items,
            # which then evict each other (12 kept, before the fix).
            self.assertGreater(int(stats["curr_items"]), n * 3 // 4)
            for s in stuck:
                s.close()


class KilledClientsTest(unittest.TestCase):
    def test_killed_half_way_through_values(self):
        n = 200
        size = 1 << 20
        raise_nofile(n + 100)
        with Server("-m", "1024", "-t", "2", "-c", str(n + 20)) as srv:
            c = srv.connect()
            old = b"".join(b"set k%d 0 0 5\r\nold%02d\r\n" % (i, i % 100)
                           for i in range(0, n, 2))
            self.assertEqual(c.call(old), b"STORED\r\n" * (n // 2))
            bytes0 = c.stats()["bytes"]
            read0 = int(c.stats()["bytes_read"])
            pids, ready = self.spawn(srv.port, n, size)
            try:
                # Every child has sent half its value and the server has
                # read it; a reader meanwhile sees only old values.
                self.assertIsNotNone(wait_for(
                    lambda: int(c.stats()["bytes_read"]) - read0 >=
                    n * (size // 2), 20), "children did not send")
                self.assertEqual(c.stats()["curr_connections"], str(n + 1))
                seen = self.check_values(srv, n)
            finally:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                for pid in pids:
                    os.waitpid(pid, 0)
                os.close(ready)
            t0 = time.monotonic()

            def reclaimed():
                # Keep reading while the server tears the connections down.
                nonlocal seen
                seen += self.check_values(srv, n)
                return c.stats()["curr_connections"] == "1"
            took = wait_for(reclaimed, 10, interval=0)
            self.assertIsNotNone(took, "connections of killed clients "
                                 "not reclaimed")
            self.assertIsNotNone(wait_for(lambda: c.stats()["bytes"] ==
                                          bytes0, 10),
                                 "reserved values not freed")
            seen += self.check_values(srv, n)
            print("200 clients killed half-way through 1 MB values: "
                  "connections reclaimed %.2f s after the kill, bytes back "
                  "to %s, %d reads saw only old values"
                  % (time.monotonic() - t0, bytes0, seen))

    @staticmethod
    def spawn(port, n, size):
        """Forks n children that each send half of a 1 MB set and wait to
        be killed; returns their pids once all have sent."""
        r, w = os.pipe()
        pids = []
        for i in range(n):
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(r)
                    s = socket.create_connection(("127.0.0.1", port), 10)
                    s.sendall(b"set k%d 0 0 %d\r\n" % (i, size) +
                              b"n" * (size // 2))
                    os.write(w, b"x")
                    signal.pause()
                finally:
                    os._exit(0)
            pids.append(pid)
        os.close(w)
        got = 0
        deadline = time.monotonic() + 30
        while got < n and time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], 1)
            if ready:
                got += len(os.read(r, n))
        if got < n:
            raise AssertionError("only %d of %d children connected" % (got, n))
        return pids, r

    def check_values(self, srv, n):
        """Reads every key: the old value or nothing, never the new one;
        returns the number of keys read."""
        c = srv.connect()
        want = b"".join(b"VALUE k%d 0 5\r\nold%02d\r\n" % (i, i % 100)
                        for i in range(0, n, 2)) + b"END\r\n"
        keys = b" ".join(b"k%d" % i for i in range(n))
        self.assertEqual(c.call(b"get %s\r\n" % keys), want)
        c.close()
        return n


class ShutdownTest(unittest.TestCase):
    def test_sigterm_with_1000_connections(self):
        n = 1000
        raise_nofile(n + 100)
        srv = Server("-c", str(n + 10), "-t", "4")
        clients = [srv.connect() for _ in range(n)]
        # Some are half-way through a line, a value, or an unread reply.
        for i, c in enumerate(clients[:300]):
            c.send([b"get k", b"set k 0 0 100\r\nabc",
                    b"set v%d 0 0 100000\r\n%s\r\nget v%d v%d v%d\r\n"
                    % (i, b"x" * 100000, i, i, i)][i % 3])
        self.assertIsNotNone(wait_for(
            lambda: clients[-1].stats()["curr_connections"] == str(n), 10))
        start = time.monotonic()
        status = srv.stop(signal.SIGTERM)
        took = time.monotonic() - start
        print("SIGTERM with %d open connections: exit %d after %.3f s"
              % (n, status, took))
        self.assertEqual(status, 0)
        # Exit does not wait on clients (stop() would SIGKILL at 10 s);
        # loose enough for a loaded machine.
        self.assertLess(took, (3 if not INSTRUMENTED else 10) * TIME_SCALE)
        for c in clients:
            c.close()


class BinaryMalformedTest(SharedServerTest):
    """hostile_cases.binary_cases(), whole and a byte per send(): each
    gets its reply (or closes), and afterwards the canaries stored by text
    clients are intact and a fresh connection is served."""

    def run_case(self, case, split):
        c = self.server.connect()
        data = case.request
        if case.ending == VERSION:
            data += binproto.sentinel()
        c.send_bytes(data, 1 if split else len(data))
        try:
            if case.ending == END_CLOSED:
                got = c.read_until_closed()
            else:
                got = binproto.read_reply(c.sock, 5 * TIME_SCALE)
        finally:
            c.close()
        if callable(case.reply):
            return got, case.reply(got), case.reply.__doc__
        want = case.reply + (CLOSED if case.ending == END_CLOSED else b"")
        return got, got == want, want

    def canaries_intact(self):
        c = self.server.connect()
        try:
            return c.call(canary_get()) == canary_reply()
        finally:
            c.close()

    def test_binary_requests(self):
        c = self.server.connect()
        self.assertEqual(c.call(canary_sets()), b"STORED\r\n" * len(CANARIES))
        c.close()
        baseline = self.server.connect()
        cases = list(hostile_cases.binary_cases())
        failures = []
        start = time.monotonic()
        runs = [(case, False) for case in cases] + [
            (case, True) for case in cases if case.split]
        for case, split in runs:
            got, ok, want = self.run_case(case, split)
            if not ok:
                failures.append("%r%s: got %r, want %r" % (
                    case.name[:60], " (split)" if split else "", got[:120],
                    want if isinstance(want, str) else want[:120]))
            if not self.canaries_intact():
                failures.append("%r%s: canaries or service broken" % (
                    case.name[:60], " (split)" if split else ""))
        print("binary malformed: %d cases, %d sends in %.1f s, %d failures"
              % (len(cases), len(runs), time.monotonic() - start,
                 len(failures)))
        self.assertGreaterEqual(len(cases), 300)
        self.assertEqual(failures, [], "\n".join(failures[:30]))
        self.assertIsNotNone(wait_for(
            lambda: baseline.stats()["curr_connections"] == "1", 5),
            baseline.stats()["curr_connections"])
        self.assertEqual(baseline.call(b"flush_all\r\n"), b"OK\r\n")
        self.assertIsNotNone(wait_for(
            lambda: baseline.stats()["bytes"] == "0", 5),
            "bytes left after flush_all: %s" % baseline.stats()["bytes"])
        baseline.close()


class BinaryFloodTest(unittest.TestCase):
    """Binary clients that promise huge bodies, trickle headers or flood
    quiet requests: the server goes on serving others, within its memory
    limit."""

    @staticmethod
    def served(srv, i):
        """One binary set and get by a well-behaved client; True if both
        were answered right."""
        c = binproto.BinClient(srv.port, timeout=5 * TIME_SCALE)
        try:
            key = b"good%d" % i
            got = c.call(binproto.store("SET", key, b"v%d" % i) +
                         binproto.frame("GET", key))
            return (len(got) == 2 and got[0]["status"] == 0 and
                    got[1]["value"] == b"v%d" % i)
        finally:
            c.close()

    def test_two_gib_body(self):
        """A SET whose header promises a 2 GiB body, then 64 MiB of it
        as fast as the server takes it: refused (or swallowed), memory
        flat, others served meanwhile."""
        with Server("-m", "64", "-t", "2") as srv:
            watch = srv.connect()
            rss0 = rss_kib(srv.proc.pid)
            s = socket.create_connection(("127.0.0.1", srv.port), 5)
            s.sendall(binproto.frame("SET", b"huge", b"\0" * 8,
                                     bodylen=2 ** 31 - 1))
            chunk = b"\x80" * (1 << 20)
            sent, peak, good = 0, 0, 0
            s.settimeout(5 * TIME_SCALE)
            try:
                for i in range(64):
                    s.sendall(chunk)
                    sent += 1
                    good += self.served(srv, i)
                    peak = max(peak, rss_kib(srv.proc.pid) - rss0)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass
            try:
                s.settimeout(2 * TIME_SCALE)
                reply = s.recv(1 << 16)
            except (ConnectionResetError, socket.timeout):
                reply = b"<reset>"
            s.close()
            print("2 GiB promised: %d MiB sent before the server stopped "
                  "taking them; reply %r; RSS grew %d KiB; %d of %d other "
                  "clients served" % (sent, reply[:40], peak, good, sent))
            self.assertEqual(good, sent)
            self.assertTrue(self.served(srv, 1000))
            if reply not in (b"", b"<reset>"):
                self.assertEqual(reply[:2], b"\x81\x01")
                self.assertIn(reply[6:8], (b"\x00\x03", b"\x00\x04"))
            if not INSTRUMENTED:
                self.assertLess(peak, 16 * 1024)
            self.assertIsNotNone(wait_for(
                lambda: watch.stats()["curr_connections"] == "1", 5))
            watch.close()

    def test_trickled_headers(self):
        """200 binary clients send a GETK a byte at a time (a normal
        client's set and get between two bytes); each gets its value, and
        the normal client is served meanwhile."""
        n = 200
        raise_nofile(n + 100)
        with Server("-t", "2", "-c", str(n + 50)) as srv:
            c = binproto.BinClient(srv.port)
            c.call(b"".join(binproto.store("SETQ", b"t%d" % i, b"val%d" % i)
                            for i in range(n)))
            socks = []
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", srv.port), 10)
                socks.append(s)
            reqs = [binproto.frame("GETK", b"t%d" % i, opaque=i)
                    for i in range(n)]
            slowest = 0.0
            for pos in range(len(reqs[-1])):
                for s, r in zip(socks, reqs):
                    if pos < len(r):
                        s.sendall(r[pos:pos + 1])
                t0 = time.monotonic()
                ok = self.served(srv, pos)
                slowest = max(slowest, time.monotonic() - t0)
                self.assertTrue(ok)
            right = 0
            for i, s in enumerate(socks):
                s.settimeout(5 * TIME_SCALE)
                want = len(reqs[i]) + 4 + 3 + len(b"%d" % i)
                data = b""
                while len(data) < want:
                    chunk = s.recv(want - len(data))
                    if not chunk:
                        break
                    data += chunk
                frames, rest = binproto.split_frames(data)
                right += (len(frames) == 1 and not rest and
                          frames[0]["key"] == b"t%d" % i and
                          frames[0]["value"] == b"val%d" % i and
                          frames[0]["opaque"] == i)
                s.close()
            print("%d trickled binary headers: %d answered right; a normal "
                  "client was served meanwhile, slowest %.3f s"
                  % (n, right, slowest))
            self.assertEqual(right, n)
            if not INSTRUMENTED:
                self.assertLess(slowest, 1.0)
            c.close()

    def test_quiet_flood(self):
        """A client floods 60,000 SETQ of 1 KB into -m 8 without a NOOP
        and without reading: the sets are silent, memory stays within the
        limit, others are served; its NOOP then answers alone."""
        with Server("-m", "8", "-t", "2") as srv:
            rss0 = rss_kib(srv.proc.pid)
            s = socket.create_connection(("127.0.0.1", srv.port), 10)
            value = b"q" * 1024
            peak, good, batches = 0, 0, 0
            for b in range(60):
                s.sendall(b"".join(binproto.store("SETQ", b"f%d" % i, value)
                                   for i in range(b * 1000, b * 1000 + 1000)))
                batches += 1
                good += self.served(srv, b)
                peak = max(peak, rss_kib(srv.proc.pid) - rss0)
            s.sendall(binproto.sentinel())
            reply = binproto.read_reply(s, 30 * TIME_SCALE)
            s.close()
            watch = srv.connect()
            stats = watch.stats()
            watch.close()
            print("quiet flood: 60,000 SETQ of 1 KB into -m 8: reply before "
                  "NOOP %d bytes; RSS grew %d KiB; %s items kept; %d of %d "
                  "other clients served" % (len(reply), peak,
                                            stats["curr_items"], good,
                                            batches))
            self.assertEqual(reply, b"")
            self.assertEqual(good, batches)
            self.assertLessEqual(int(stats["bytes"]), 8 << 20)
            if not INSTRUMENTED:
                self.assertLess(peak, int(1.15 * 8 * 1024) + 16 * 1024)

    def test_quiet_hits_never_read(self):
        """GETKQ hits of a 1 MB value pipelined 10,000 times by a client
        that never reads: dropped by write_timeout, memory bounded."""
        with Server("-t", "2", "-o", "write_timeout=2") as srv:
            c = binproto.BinClient(srv.port)
            value = b"x" * 1000000
            self.assertEqual(c.call(binproto.store("SET", b"big", value))[0]
                             ["status"], 0)
            rss0 = rss_kib(srv.proc.pid)
            s = socket.create_connection(("127.0.0.1", srv.port), 5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            pending = binproto.frame("GETKQ", b"big") * 10000
            last_sent = time.monotonic()
            while pending and time.monotonic() - last_sent < 1.0:
                try:
                    pending = pending[s.send(pending):]
                    last_sent = time.monotonic()
                except BlockingIOError:
                    select.select([], [s], [], 0.05)
                except (BrokenPipeError, ConnectionResetError):
                    break
            peak = 0
            watch = srv.connect()

            def dropped():
                nonlocal peak
                peak = max(peak, rss_kib(srv.proc.pid) - rss0)
                return watch.stats()["curr_connections"] == "2"
            took = wait_for(dropped, 15)
            s.close()
            print("never-reading GETKQ client: dropped %.2f s after its "
                  "last send, RSS grew %d KiB" % (took or -1, peak))
            self.assertIsNotNone(took, "never-reading client not dropped")
            self.assertEqual(watch.stats()["output_kicks"], "1")
            self.assertEqual(c.call(binproto.frame("GET", b"big"))[0]
                             ["value"], value)
            if not INSTRUMENTED:
                self.assertLess(peak, 16 * 1024)
            c.close()
            watch.close()



if __name__ == "__main__":
    unittest.main(verbosity=2)
