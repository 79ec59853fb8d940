"""benchlib.py -- the pieces bench/compare is built from: start cached or
memcached pinned to a CPU on a free loopback port (tests/serverctl.py,
the launcher the tests use too), read a process's CPU
time and RSS from /proc, ask a server for its stats, fill it with raw
pipelined sets, and run cached-bench pinned to another CPU.

Both servers get the same flags where they mean the same thing (-t, -m,
-l 127.0.0.1, -U 0, TCP); serverctl.py chooses the port (cached: -p 0
and a port file; memcached: a port the kernel just handed out and
released) and adds memcached's -u nobody, which it needs as root.  Every
wait is bounded; standard library only.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
import serverctl  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU seconds of process pid, all threads (/proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def sched_seconds(pid):
    """(seconds on a CPU, seconds runnable but waiting for a CPU) summed
    over pid's threads (/proc/PID/task/*/schedstat); the wait shows how
    much other work on the same CPU got in the way."""
    run = wait = 0
    base = "/proc/%d/task" % pid
    for tid in os.listdir(base):
        try:
            with open(os.path.join(base, tid, "schedstat")) as f:
                fields = f.read().split()
            run += int(fields[0])
            wait += int(fields[1])
        except (OSError, IndexError, ValueError):
            pass
    return run / 1e9, wait / 1e9


def rss_mib(pid):
    """Resident set size of pid in MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def version_of(argv0):
    """The first line of `argv0 -V`, or '?'."""
    try:
        out = subprocess.run([argv0, "-V"], capture_output=True, text=True,
                             timeout=10, stdin=subprocess.DEVNULL)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


class Conn:
    """A raw protocol connection for stats and fills."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        self.sock.close()

    def _read_until(self, end, timeout):
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(end):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no reply within %.0f s" % timeout)
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("server closed the connection")
            buf += chunk
        return buf

    def stats(self):
        """`stats` as a dict of strings."""
        self.sock.sendall(b"stats\r\n")
        reply = self._read_until(b"END\r\n", 10)
        out = {}
        for line in reply.split(b"\r\n"):
            if line.startswith(b"STAT "):
                _, name, value = line.split(b" ", 2)
                out[name.decode()] = value.decode()
        return out

    def set_many(self, prefix, first, count, size, ttl=0, batch=2000):
        """Sets keys prefix+first .. prefix+first+count-1, pipelined with
        noreply; a trailing `version` proves they were all processed."""
        value = b"v" * size
        for start in range(first, first + count, batch):
            n = min(batch, first + count - start)
            req = b"".join(b"set %s%d 0 %d %d noreply\r\n%s\r\n"
                           % (prefix, i, ttl, size, value)
                           for i in range(start, start + n))
            self.sock.sendall(req + b"version\r\n")
            self._read_until(b"\r\n", 60)


class Server(serverctl.ServerProcess):
    """A cached or memcached process pinned to one CPU on 127.0.0.1,
    started and stopped by tests/serverctl.py (the tests' launcher)."""

    def __init__(self, kind, binary, cpu, threads, mem, extra=()):
        super().__init__(binary, ["-t", str(threads), "-m", str(mem)] +
                         list(extra),
                         kind=kind, prefix=["taskset", "-c", str(cpu)],
                         stdout=subprocess.DEVNULL)
        self.cpu = cpu
        self.threads = threads
        self.mem = mem

    # taskset execs the server: self.pid is the server's.

    def cpu_seconds(self):
        return cpu_seconds(self.pid)

    def rss_mib(self):
        return rss_mib(self.pid)

    def stats(self):
        c = Conn(self.port)
        try:
            return c.stats()
        finally:
            c.close()


def find_bench(top):
    """The cached-bench binary: $CACHED_BENCH, build/, or $PATH."""
    for cand in (os.environ.get("CACHED_BENCH"),
                 os.path.join(top, "build", "bench", "cached-bench"),
                 shutil.which("cached-bench")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def run_bench(bench, server, cpu, args, timeout):
    """Runs cached-bench against server, pinned to cpu (None: unpinned);
    returns its JSON report plus the server's CPU seconds during the run,
    CPU seconds per million keys, and how busy the server was (CPU s /
    wall s)."""
    argv = (["taskset", "-c", str(cpu)] if cpu is not None else []) + [
        bench, "-p", str(server.port), "-j", "-q"] + [str(a) for a in args]
    cpu0 = server.cpu_seconds()
    _, wait0 = sched_seconds(server.pid)
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    cpu = server.cpu_seconds() - cpu0
    wait = sched_seconds(server.pid)[1] - wait0
    if out.returncode != 0:
        raise RuntimeError("cached-bench failed (%d): %s"
                           % (out.returncode, out.stderr.strip()))
    r = json.loads(out.stdout)
    r["server_cpu_s"] = cpu
    r["server_busy"] = cpu / wall if wall > 0 else 0.0
    r["server_wait"] = wait / wall if wall > 0 else 0.0
    r["client_wait"] = (r.get("client_wait_s", 0) / r["seconds"]
                        if r["seconds"] else 0.0)
    r["cpu_s_per_mkeys"] = (cpu / (r["keys"] / 1e6) if r["keys"]
                            else float("nan"))
    return r
