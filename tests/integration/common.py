"""Shared helpers for the integration tests: run the real cached binary on a
kernel-chosen loopback port and talk the text protocol to it over sockets.

The binary comes from $CACHED (set by `make check`). Every wait is bounded:
a server that does not come up, a reply that never arrives or a process
that does not exit fails the test instead of hanging it.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

CACHED = os.environ.get("CACHED", os.path.join(os.getcwd(), "cached"))
SENTINEL = b"version\r\n"
VERSION_RE = re.compile(rb"VERSION [^\r\n]*\r\n$")


class Server:
    """A cached process on 127.0.0.1 with a kernel-chosen port."""

    def __init__(self, *args, port_file=True):
        self.tmp = tempfile.TemporaryDirectory(prefix="cached-test-")
        self.port_path = os.path.join(self.tmp.name, "port")
        argv = [CACHED, "-U", "0"]
        if port_file:
            argv += ["-p", "0", "-l", "127.0.0.1", "-o",
                     "port_file=" + self.port_path]
        argv += list(args)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        self.port = self._wait_port() if port_file else None

    def _wait_port(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("cached exited with %d at start-up"
                                   % self.proc.returncode)
            try:
                with open(self.port_path) as f:
                    text = f.read().strip()
                if text:
                    return int(text)
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        raise RuntimeError("cached did not start within %.0f s" % timeout)

    def connect(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Client(s)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signals the server and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("cached did not exit within %.0f s"
                                 % timeout)
        finally:
            self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()
        else:
            self.tmp.cleanup()


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
        deadline = time.monotonic() + timeout
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
                return out + b"<CLOSED>"
            out += chunk

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


def wait_for(predicate, timeout, interval=0.05):
    """Polls predicate until it is true or timeout seconds passed; returns
    the elapsed time, or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None
