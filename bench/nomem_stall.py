#!/usr/bin/env python3
"""nomem_stall.py -- what a full `-M` cache does to the other clients of
its workers (issue 18, item 1), and whether a refused overwrite leaves the
old value readable (item 2); cached and memcached from the same run.

For each server: start it with `-M -m 16` (benchlib.Server, pinned to one
CPU, plus -M), fill it with pipelined sets of new keys until whole batches
are refused, then for --seconds run --writers client processes that send
pipelined sets of new keys (all refused) while one more client times `get`
round trips of a stored key; print the worst and the median round trip.
Then overwrite stored keys with values of the same size and count how many
were stored and how many refused ones still return the old value.

A report, not a timed assertion: it is not part of `make check`.

  bench/nomem_stall.py [--cached build/cached] [--memcached PATH]
                       [--writers 4] [--pipeline 10] [--seconds 5]

Data structure: none to speak of; each writer is a process of its own so
the timing client does not wait for a Python lock.  Standard library only.
"""
import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # leave no __pycache__ in the tree
import benchlib  # noqa: E402

MEM_MB = 16
VALUE = 1000            # bytes per value
FILL_BATCH = 500
FILL_BULK = 0.6         # share of the limit filled in batches
FILL_MAX = 4 * MEM_MB * 1024 * 1024 // VALUE    # give up filling after
REPLY_WAIT = 30         # seconds a reply may take before we give up
OVERWRITES = 100        # a refused one took cached up to 2 s once


class NoEvictServer(benchlib.Server):
    """benchlib's server with -M."""

    def _argv(self, port):
        return super()._argv(port) + ["-M"]


def connect(port):
    """A TCP_NODELAY connection with a bounded timeout."""
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(60)
    return s


class Lines:
    """Reads \\r\\n-terminated reply lines off a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def get_value(self):
        """Reads a get reply: the value, or None on a miss."""
        line = self.line()
        if line == b"END":
            return None
        value = self.line()
        if self.line() != b"END":
            raise RuntimeError("bad get reply")
        return value


def set_batch(sock, lines, keys, value):
    """Pipelined sets of keys; returns the keys STORED."""
    req = b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value)
                   for k in keys)
    sock.sendall(req)
    return [k for k in keys if lines.line() == b"STORED"]


def fill(port):
    """Sets new keys until one is refused; returns the keys stored.  Up to
    FILL_BULK of the limit in `bytes` in pipelined batches, then one at a
    time, so the fill itself meets a single refusal (which may stall)."""
    conn = benchlib.Conn(port)
    sock = connect(port)
    lines = Lines(sock)
    value = b"f" * VALUE
    stored = []
    n = 0
    while n < FILL_MAX:
        st = conn.stats()
        room = int(int(st["limit_maxbytes"]) * FILL_BULK) - int(st["bytes"])
        batch = max(1, min(FILL_BATCH, room // (VALUE + 64)))
        keys = [b"fill:%d" % i for i in range(n, n + batch)]
        n += batch
        ok = set_batch(sock, lines, keys, value)
        stored.extend(ok)
        if len(ok) < len(keys):
            break
    sock.close()
    conn.close()
    return stored


def writer(port, wid, pipeline, stop_at, counts):
    """Sends pipelined sets of new keys until stop_at; counts replies."""
    sock = connect(port)
    lines = Lines(sock)
    value = b"w" * VALUE
    sent = ok = 0
    sock.settimeout(20)
    try:
        while time.monotonic() < stop_at:
            keys = [b"new:%d:%d" % (wid, sent + i) for i in range(pipeline)]
            counts[wid] = (sent + pipeline, ok)     # sent, maybe unanswered
            ok += len(set_batch(sock, lines, keys, value))
            sent += pipeline
            counts[wid] = (sent, ok)
    except (TimeoutError, socket.timeout):
        pass                # a batch unanswered for 20 s: stalled
    sock.close()


def time_gets(port, key, stop_at):
    """Round trips of `get key` until stop_at, in milliseconds."""
    sock = connect(port)
    lines = Lines(sock)
    req = b"get %s\r\n" % key
    rtts = []
    sock.settimeout(REPLY_WAIT)
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        sock.sendall(req)
        try:
            lines.get_value()
        except (TimeoutError, socket.timeout):
            rtts.append(REPLY_WAIT * 1000.0)    # at least that
            break
        rtts.append((time.perf_counter() - t0) * 1000.0)
        time.sleep(0.001)   # a steady reader, not a second hog
    sock.close()
    return rtts


def overwrites(port, keys):
    """Same-size overwrites of stored keys: (tried, stored, stale), stale
    being refused ones whose old value a get still returns."""
    sock = connect(port)
    lines = Lines(sock)
    value = b"o" * VALUE
    tried = stored = stale = 0
    sock.settimeout(REPLY_WAIT)
    for k in keys:
        sock.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (k, VALUE, value))
        try:
            reply = lines.line()
        except (TimeoutError, socket.timeout):
            break           # the reply stalled: report what we have
        tried += 1
        if reply == b"STORED":
            stored += 1
            continue
        sock.sendall(b"get %s\r\n" % k)
        if lines.get_value() is not None:
            stale += 1
    sock.close()
    return tried, stored, stale


def live_key(port, keys):
    """A filled key a get finds."""
    sock = connect(port)
    lines = Lines(sock)
    try:
        for k in keys:
            sock.sendall(b"get %s\r\n" % k)
            if lines.get_value() is not None:
                return k
    finally:
        sock.close()
    raise RuntimeError("no filled key is readable")


def run(kind, binary, args):
    """One server: fill, stall measurement, overwrites; prints a line."""
    srv = NoEvictServer(kind, binary, args.server_cpu, args.threads,
                        MEM_MB).start()
    try:
        keys = fill(srv.port)
        probe = live_key(srv.port, keys)
        stop_at = time.monotonic() + args.seconds
        counts = multiprocessing.Manager().dict()
        procs = [multiprocessing.Process(
            target=writer, args=(srv.port, w, args.pipeline, stop_at, counts))
            for w in range(args.writers)]
        for p in procs:
            p.start()
        rtts = time_gets(srv.port, probe, stop_at)
        for p in procs:
            # A batch that stalls may run past stop_at; do not wait long.
            p.join(30)
            if p.is_alive():
                p.terminate()
                p.join()
        sent = sum(c[0] for c in counts.values())
        ok = sum(c[1] for c in counts.values())
        print("%-9s filled %6d keys; %d writers x %d pipelined sets: "
              "%d sent, %d stored in %.0f s" % (
                  kind, len(keys), args.writers, args.pipeline, sent, ok,
                  args.seconds))
        print("%-9s get round trips of another client: %d, median %.2f ms, "
              "worst %.1f ms" % (kind, len(rtts), statistics.median(rtts),
                                 max(rtts)), flush=True)
        tried, stored, stale = overwrites(
            srv.port, [k for k in keys if k != probe][:OVERWRITES])
        print("%-9s same-size overwrites: %d of %d stored, %d refused "
              "with the old value still readable%s" % (
                  kind, stored, tried, stale,
                  "" if tried == OVERWRITES else
                  " (then a reply took over %d s)" % REPLY_WAIT), flush=True)
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cached", default=os.path.join(TOP, "build", "cached"))
    ap.add_argument("--memcached", default=shutil.which("memcached") or
                    "/usr/bin/memcached")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--pipeline", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2,
                    help="server worker threads (-t)")
    ap.add_argument("--server-cpu", type=int, default=0)
    args = ap.parse_args()
    print("-M -m %d, %d-byte values, -t %d" % (MEM_MB, VALUE, args.threads))
    run("cached", args.cached, args)
    if os.access(args.memcached, os.X_OK):
        run("memcached", args.memcached, args)
    else:
        print("memcached: %s not installed, skipped" % args.memcached)


if __name__ == "__main__":
    main()
