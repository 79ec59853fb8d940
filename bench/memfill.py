#!/usr/bin/env python3
"""memfill.py -- memory and expiry check, cached beside memcached.

For each server (cached and, when installed, memcached 1.6) at the same -m:
  fill:   set N items of a fixed value size with pipelined sets, then report
          stats bytes, curr_items, evictions and the process RSS;
  expiry: on a fresh server, set M items with a short TTL and, without
          reading them, time how long until curr_items is 0 (the
          background reclaim).

Usage: bench/memfill.py [--cached build/cached] [--items 2000000]
                        [--size 100] [--mem 64] [--ttl-items 100000]
                        [--ttl 2]
Loopback only; every wait is bounded.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
from common import Client, wait_for  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(argv):
    port = free_port()
    proc = subprocess.Popen(argv + ["-p", str(port), "-l", "127.0.0.1",
                                    "-U", "0"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            c = Client(socket.create_connection(("127.0.0.1", port), 5))
            return proc, c
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start: %r" % argv)


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def fill(c, n, size, ttl=0, prefix=b"key:"):
    value = b"v" * size
    batch = 2000
    for start_i in range(0, n, batch):
        count = min(batch, n - start_i)
        req = b"".join(b"set %s%d 0 %d %d noreply\r\n%s\r\n"
                       % (prefix, i, ttl, size, value)
                       for i in range(start_i, start_i + count))
        c.call(req, timeout=60)


def run_fill(argv, args):
    proc, c = start(argv)
    try:
        t0 = time.monotonic()
        fill(c, args.items, args.size)
        fill_s = time.monotonic() - t0
        s = c.stats()
        return {"curr_items": int(s["curr_items"]),
                "bytes_MiB": int(s["bytes"]) / 1048576.0,
                "evictions": int(s["evictions"]),
                "rss_MiB": rss_mib(proc.pid), "fill_s": fill_s}
    finally:
        proc.terminate()
        proc.wait(10)


def run_expiry(argv, args):
    """Seconds from the last set until curr_items is back to 0, or None."""
    proc, c = start(argv)
    try:
        fill(c, args.ttl_items, 10, ttl=args.ttl, prefix=b"ttl:")
        t_set = time.monotonic()
        if wait_for(lambda: c.stats()["curr_items"] == "0", args.ttl + 90,
                    interval=0.1) is None:
            return None
        return time.monotonic() - t_set
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cached", default="build/cached")
    ap.add_argument("--memcached", default=shutil.which("memcached"))
    ap.add_argument("--items", type=int, default=2000000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--mem", type=int, default=64)
    ap.add_argument("--ttl-items", type=int, default=100000)
    ap.add_argument("--ttl", type=int, default=2)
    args = ap.parse_args()
    servers = [("cached", [args.cached, "-m", str(args.mem), "-t", "4"])]
    if args.memcached:
        servers.append(("memcached", [args.memcached, "-m", str(args.mem),
                                      "-t", "4", "-u", "nobody"]))
    for name, argv in servers:
        r = run_fill(argv, args)
        print("%-9s -m %d: %d x %d B set -> curr_items %d, bytes %.1f MiB, "
              "evictions %d, RSS %.1f MiB, fill %.1f s"
              % (name, args.mem, args.items, args.size, r["curr_items"],
                 r["bytes_MiB"], r["evictions"], r["rss_MiB"], r["fill_s"]),
              flush=True)
        ttl = run_expiry(argv, args)
        print("%-9s %d items with TTL %d s, never read: curr_items 0 %s "
              "after the last set" % (name, args.ttl_items, args.ttl,
                                      "not within the wait" if ttl is None
                                      else "%.1f s" % ttl), flush=True)


if __name__ == "__main__":
    main()
