"""Shared helpers for the integration tests: run the real cached binary on a
kernel-chosen loopback port and talk the text protocol to it over sockets.

The binary comes from $CACHED (set by `make check`). Every wait is bounded:
a server that does not come up, a reply that never arrives or a process
that does not exit fails the test instead of hanging it.

$CACHED_WRAPPER, when set, is a command the server runs under (valgrind in
tests/valgrind.sh); every timeout then stretches by $CACHED_TIME_SCALE
(default 20).  INSTRUMENTED tells tests whose bounds on memory or time mean
nothing under a wrapper or a sanitizer build to skip those checks.
"""
import os
import re
import resource
import shlex
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import serverctl  # noqa: E402

CACHED = os.environ.get("CACHED", os.path.join(os.getcwd(), "cached"))
WRAPPER = shlex.split(os.environ.get("CACHED_WRAPPER", ""))
TIME_SCALE = float(os.environ.get("CACHED_TIME_SCALE",
                                  "20" if WRAPPER else "1"))
SENTINEL = b"version\r\n"
VERSION_RE = re.compile(rb"VERSION [^\r\n]*\r\n$")
CLOSED = b"<CLOSED>"


def _sanitized(path):
    """True when the binary at path was built with ASan, TSan or MSan."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return any(s in data for s in (b"__asan_init", b"__tsan_init",
                                   b"__msan_init"))


INSTRUMENTED = bool(WRAPPER) or _sanitized(CACHED)


def rss_kib(pid):
    """Resident set size of a process, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def raise_nofile(want):
    """Raises this process's descriptor limit to at least want if it can;
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


class Server(serverctl.ServerProcess):
    """A cached process on 127.0.0.1 with a kernel-chosen port, started
    by tests/serverctl.py (the launcher the benchmarks share)."""

    def __init__(self, *args, port_file=True, stderr=None):
        super().__init__(CACHED, args, kind="cached", prefix=WRAPPER,
                         port_file=port_file, time_scale=TIME_SCALE,
                         stderr=stderr)
        self.start()

    def connect(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port),
                                     timeout * TIME_SCALE)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Client(s)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signals the server and returns its exit status; fails the test
        when it had to be killed."""
        status = super().stop(sig, timeout)
        if self.killed:
            raise AssertionError("cached did not exit within %.0f s"
                                 % (timeout * TIME_SCALE))
        return status


class Client:
    """A raw protocol connection."""

    def __init__(self, sock):
        self.sock = sock

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def call(self, data, timeout=5.0):
        """Sends data followed by a "version" sentinel and returns every
        byte the server sent before the sentinel's reply; b"<CLOSED>" is
        appended when the server closed the connection instead."""
        self.sock.sendall(data + SENTINEL)
        return self.read_until_version(timeout)

    def read_until_version(self, timeout=5.0):
        out = b""
        deadline = time.monotonic() + timeout * TIME_SCALE
        while True:
            m = VERSION_RE.search(out)
            if m:
                return out[:m.start()]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no reply within %.0f s; got %r"
                                     % (timeout, out[:200]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return out + CLOSED
            out += chunk

    def read_until_closed(self, timeout=5.0, limit=1 << 20):
        """Returns what the server sends until it closes the connection,
        followed by b"<CLOSED>"; fails after timeout or past limit bytes."""
        out = b""
        deadline = time.monotonic() + timeout * TIME_SCALE
        while len(out) <= limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                break
            if not chunk:
                return out + CLOSED
            out += chunk
        raise AssertionError("connection not closed within %.0f s; got %r"
                             % (timeout, out[:200]))

    def read_exactly(self, n, timeout=5.0):
        """Returns the next n bytes, or fewer followed by b"<CLOSED>" if
        the server closes first."""
        out = b""
        deadline = time.monotonic() + timeout * TIME_SCALE
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%d of %d bytes within %.0f s: %r"
                                     % (len(out), n, timeout, out[:200]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(n - len(out))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return out + CLOSED
            out += chunk
        return out

    def send_bytes(self, data, step=1):
        """Sends data step bytes per send() call; returns False if the
        server closed the connection before all of it was sent."""
        try:
            for i in range(0, len(data), step):
                self.sock.sendall(data[i:i + step])
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def stats(self, sub=b""):
        """Returns a dict of "stats [sub]"."""
        cmd = b"stats" + (b" " + sub if sub else b"") + b"\r\n"
        reply = self.call(cmd)
        assert reply.endswith(b"END\r\n"), reply
        result = {}
        for line in reply.split(b"\r\n"):
            if line.startswith(b"STAT "):
                _, name, value = line.split(b" ", 2)
                result[name.decode()] = value.decode()
        return result


class SharedServerTest(unittest.TestCase):
    """A test case whose tests share one cached started with SERVER_ARGS;
    the class fails if the server does not exit 0 when stopped."""
    SERVER_ARGS = ("-m", "64", "-t", "2")

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.SERVER_ARGS)

    @classmethod
    def tearDownClass(cls):
        status = cls.server.stop()
        if status != 0:
            raise AssertionError("cached exited with %d" % status)


def read_log(f):
    """All bytes of file f, which a server (running or not) has as its
    stderr. Read with pread: the server shares f's open file description,
    so f.seek(0) would move the offset it writes at, and a line it wrote
    between that seek and the read would land on the start of the log."""
    fd = f.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


def wait_for(predicate, timeout, interval=0.05):
    """Polls predicate until it is true or timeout seconds passed; returns
    the elapsed time, or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout * TIME_SCALE:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None
