"""serverctl.py -- the one server launcher of the Python tests
(tests/integration/common.py) and the benchmarks (bench/benchlib.py,
bench/compare).

ServerProcess starts cached or memcached on 127.0.0.1 and finds its port
without guessing: cached is given -p 0 and a port file, which it writes once
it listens, and the port is read back from it; memcached has no port file,
so it gets a port the kernel just chose and released, is ready once a
connection succeeds, and a start that loses that port to a race is
retried.  Readiness is polled, never assumed after a fixed sleep; a server that exits
during start-up is reported at once.  stop() sends SIGTERM, waits a bounded
time, then SIGKILLs.

Data structure: one process, its temporary directory (the port file) and
its port.  Every wait is bounded and scaled by time_scale (wrappers such as
valgrind are slow).  Standard library only.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

POLL = 0.01     # seconds between readiness polls


def free_port(host="127.0.0.1"):
    """A port the kernel just chose on host and released."""
    s = socket.socket()
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def accepts(host, port, timeout=1.0):
    """True when a TCP connection to host:port succeeds."""
    try:
        socket.create_connection((host, port), timeout).close()
        return True
    except OSError:
        return False


class ServerProcess:
    """A cached or memcached process listening on host.

    kind      "cached" or "memcached"
    binary    the server binary
    args      further server arguments
    prefix    a command the server runs under (taskset, valgrind...): it
              must exec the server, so the pid is the server's
    port_file cached only: False starts it without -p/-l/port file (unix
              socket tests); port is then None and start() does not wait
    """

    def __init__(self, binary, args=(), kind="cached", prefix=(),
                 host="127.0.0.1", port_file=True, time_scale=1.0,
                 stdout=None, stderr=None, tries=5):
        if kind not in ("cached", "memcached"):
            raise ValueError("unknown server kind %r" % kind)
        self.binary = binary
        self.args = list(args)
        self.kind = kind
        self.prefix = list(prefix)
        self.host = host
        self.use_port_file = port_file
        self.time_scale = time_scale
        self.stdout = stdout
        self.stderr = stderr
        self.tries = tries if kind == "memcached" else 1
        self.proc = None
        self.port = None
        self.tmp = None
        self.port_path = None
        self.argv = None
        self.killed = False

    def _argv(self, port):
        """The command line of one start attempt."""
        argv = self.prefix + [self.binary]
        if self.kind == "cached":
            argv += ["-U", "0"]
            if self.use_port_file:
                argv += ["-p", "0", "-l", self.host, "-o",
                         "port_file=" + self.port_path]
        else:
            argv += ["-U", "0", "-p", str(port), "-l", self.host]
            if os.geteuid() == 0:
                argv += ["-u", "nobody"]
        return argv + self.args

    def _read_port_file(self):
        """The port cached wrote, or None while it has not yet."""
        try:
            with open(self.port_path) as f:
                text = f.read().strip()
            return int(text) if text else None
        except (FileNotFoundError, ValueError):
            return None

    def _wait_ready(self, port, timeout):
        """Polls until the server accepts connections; returns its port,
        or None if it exited first.  Raises when the time is up."""
        deadline = time.monotonic() + timeout * self.time_scale
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return None
            if self.kind == "cached":
                # cached writes the file after listen(): the port takes
                # connections from then on.  Not connecting keeps the
                # server's connection counts the test's own.
                port = self._read_port_file()
                if port is not None:
                    return port
            elif accepts(self.host, port):
                return port
            time.sleep(POLL)
        self.stop(timeout=2)
        raise RuntimeError("%s did not become ready within %.0f s: %r"
                           % (self.kind, timeout * self.time_scale,
                              self.argv))

    def start(self, timeout=10.0):
        """Starts the server and waits until it accepts connections."""
        for _ in range(self.tries):
            self.tmp = tempfile.TemporaryDirectory(prefix="cached-srv-")
            self.port_path = os.path.join(self.tmp.name, "port")
            port = free_port(self.host) if self.kind == "memcached" else 0
            self.argv = self._argv(port)
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=self.stdout,
                                         stderr=self.stderr)
            if self.kind == "cached" and not self.use_port_file:
                return self
            self.port = self._wait_ready(port, timeout)
            if self.port is not None:
                return self
            status = self.proc.returncode
            self._cleanup()
        raise RuntimeError("%s exited with %s at start-up: %r"
                           % (self.kind, status, self.argv))

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _cleanup(self):
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the server, waits up to timeout for it to exit, then
        SIGKILLs it (self.killed tells); returns its exit status."""
        self.killed = False
        try:
            if self.proc is None:
                return None
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout * self.time_scale)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                return self.proc.wait()
        finally:
            self._cleanup()

    def __enter__(self):
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc):
        if self.running():
            self.stop()
        else:
            self._cleanup()
