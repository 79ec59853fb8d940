#!/usr/bin/env python3
"""watch_bench.py -- what "watch" costs the server: CPU seconds per
million requests of one cached (one worker thread) with no watcher, with
a fetchers+mutations watcher that reads everything, and with one that
never reads (its lines are skipped), interleaved repeats, medians; the
same for memcached when --memcached is given (or found), for the ratios
side by side.  Also how many lines the never-reading watcher lost
(stats log_watcher_skipped).

A report, not a timed assertion: it is not part of `make check`.

  bench/watch_bench.py [--cached build/cached] [--memcached PATH]
                       [--requests 400000] [--repeats 3]

Data structure: none; the reading watcher is a thread of this script.
Standard library only.
"""
import argparse
import os
import shutil
import socket
import statistics
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import benchlib  # noqa: E402


class Watcher:
    """A watch connection; reading=True drains it from a thread."""

    def __init__(self, port, reading):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        if not reading:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.sendall(b"watch fetchers mutations\r\n")
        assert self.sock.recv(4) == b"OK\r\n"
        self.lines = 0
        self.thread = None
        if reading:
            self.thread = threading.Thread(target=self.drain, daemon=True)
            self.thread.start()

    def drain(self):
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    return
                self.lines += data.count(b"\n")
        except OSError:
            return

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        if self.thread:
            self.thread.join(10)


def measure(kind, binary, bench, requests, repeats):
    """Prints the CPU cost per million requests of each mode."""
    srv = benchlib.Server(kind, binary, 0, 1, 64)
    srv.start()
    results = {"none": [], "reading": [], "never reading": []}
    skipped = 0
    try:
        args = ["-c", "4", "-P", "16", "-K", "10000", "-n", requests]
        benchlib.run_bench(bench, srv, 1, args + ["-l", "-n", "0"], 300)
        for _ in range(repeats):
            for mode in results:
                w = None
                if mode != "none":
                    w = Watcher(srv.port, mode == "reading")
                s0 = int(srv.stats()["log_watcher_skipped"])
                r = benchlib.run_bench(bench, srv, 1, args, 300)
                skipped += int(srv.stats()["log_watcher_skipped"]) - s0
                if w:
                    w.close()
                results[mode].append(r["cpu_s_per_mkeys"])
    finally:
        srv.stop()
    base = statistics.median(results["none"])
    for mode, v in results.items():
        m = statistics.median(v)
        print("%-9s %-14s %.3f CPU s per million requests (x%.2f)"
              % (kind, mode, m, m / base))
    print("%-9s lines skipped for the never-reading watcher: %d"
          % (kind, skipped))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cached", default=os.path.join(TOP, "build", "cached"))
    ap.add_argument("--memcached", default=shutil.which("memcached"))
    ap.add_argument("--requests", type=int, default=400000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    bench = benchlib.find_bench(TOP)
    if bench is None:
        sys.exit("watch_bench: cached-bench not found")
    measure("cached", a.cached, bench, a.requests, a.repeats)
    if a.memcached:
        measure("memcached", a.memcached, bench, a.requests, a.repeats)


if __name__ == "__main__":
    main()
