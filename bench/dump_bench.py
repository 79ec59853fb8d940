#!/usr/bin/env python3
"""dump_bench.py -- what a key dump costs the writers (issue 13).

cached is filled with --keys keys; cached-bench then writes other keys
(sets only, open loop at --rate requests/s over --connections
connections, so latency is measured from when each request was due) for
--seconds, alternately alone and while a client dumps the whole cache
with "lru_crawler metadump all" over and over, reading as fast as it
can.  Reported per run: the writers' p50/p99/p99.9 latency and, with a
dump, how many dump lines per second went out.  The aim: the writers'
p99 with a dump running at most twice their p99 without.

Not a test: numbers depend on the machine.  Usage:

    python3 bench/dump_bench.py [--keys 2000000] [--seconds 10]
        [--rate 20000] [--connections 8] [--threads 4] [--rounds 2]
        [--server-cpus 0] [--bench-cpus 1] [--dumper-cpus 0]

By default the server runs pinned to CPU 0 and cached-bench to CPU 1
(benchlib.py); the dumping client shares CPU 0 with the server, so its
reading takes nothing from the generator (--server-cpus, --bench-cpus,
--dumper-cpus change that).  $CACHED names the server binary
(default build/cached), $CACHED_BENCH the generator.
"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


class Dumper(threading.Thread):
    """Dumps the whole cache again and again until stopped."""

    def __init__(self, port, cpus):
        super().__init__(daemon=True)
        self.port = port
        self.cpus = cpus
        self.stop = threading.Event()
        self.lines = 0
        self.dumps = 0
        self.seconds = 0.0

    def run(self):
        os.sched_setaffinity(0, self.cpus)
        c = benchlib.Conn(self.port)
        c.sock.settimeout(120)
        t0 = time.monotonic()
        try:
            while not self.stop.is_set():
                c.sock.sendall(b"lru_crawler metadump all\r\n")
                tail = b""
                while not tail.endswith(b"END\r\n"):
                    chunk = c.sock.recv(1 << 20)
                    if not chunk:
                        raise RuntimeError("server closed the dump")
                    self.lines += chunk.count(b"\n")
                    tail = (tail + chunk)[-5:]
                self.lines -= 1          # the END line
                self.dumps += 1
        finally:
            self.seconds = time.monotonic() - t0
            c.close()


def writers(bench, srv, args):
    """One cached-bench run of sets on keys w:0 .. w:99999."""
    return benchlib.run_bench(bench, srv, args.bench_cpus, [
        "-r", "0:1", "-x", "w:", "-K", "100000", "-v", "32",
        "-R", args.rate, "-c", args.connections, "-T", "2",
        "-d", args.seconds], timeout=args.seconds * 4 + 60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=2000000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--server-cpus", default="0",
                    help="taskset list for cached (0)")
    ap.add_argument("--bench-cpus", default="1",
                    help="taskset list for cached-bench (1)")
    ap.add_argument("--dumper-cpus", default="0",
                    help="CPUs of the dumping client (0: the server's, so "
                    "its reading takes nothing from the generator's)")
    args = ap.parse_args()

    cached = os.environ.get("CACHED", os.path.join(TOP, "build", "cached"))
    bench = benchlib.find_bench(TOP)
    if bench is None:
        sys.exit("cached-bench not found (build it, or set CACHED_BENCH)")
    srv = benchlib.Server("cached", cached, args.server_cpus, args.threads,
                          4096)
    srv.start()
    try:
        c = benchlib.Conn(srv.port)
        t0 = time.monotonic()
        c.set_many(b"d:", 0, args.keys, 10)
        c.close()
        print("preloaded %d keys in %.1f s; writers: sets at %d/s over %d "
              "connections, %d s a run; server -t %d"
              % (args.keys, time.monotonic() - t0, args.rate,
                 args.connections, args.seconds, args.threads))
        print("%-12s %9s %9s %9s %9s %12s" % ("run", "p50 us", "p99 us",
                                              "p99.9 us", "sets/s",
                                              "dump lines/s"))
        ratios = []
        for rnd in range(args.rounds):
            base = writers(bench, srv, args)
            d = Dumper(srv.port, {int(x) for x in
                                  args.dumper_cpus.split(",")})
            d.start()
            loaded = writers(bench, srv, args)
            d.stop.set()
            d.join(300)
            for name, r, rate in (("no dump", base, ""),
                                  ("with dump", loaded, "%.0f" % (
                                      d.lines / d.seconds))):
                lat = r["latency_us"]
                print("%-12s %9.1f %9.1f %9.1f %9.0f %12s"
                      % (name, lat["p50"], lat["p99"], lat["p99_9"],
                         r["ops_per_s"], rate))
            ratios.append(loaded["latency_us"]["p99"] /
                          base["latency_us"]["p99"])
            print("round %d: p99 with a dump / without = %.2f (%d full "
                  "dumps)" % (rnd + 1, ratios[-1], d.dumps))
        print("worst p99 ratio %.2f (aim: <= 2)" % max(ratios))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
