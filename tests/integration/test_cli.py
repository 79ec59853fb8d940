"""Command-line and process behaviour of the real cached binary: --help,
--version, usage errors (exit 64), signals, daemon mode with a pidfile,
unix sockets, the connection limit, the shutdown command and the idle
timeout.
"""
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHED, Client, Server, wait_for  # noqa: E402


def run(*args):
    return subprocess.run([CACHED] + list(args), capture_output=True,
                          timeout=10, stdin=subprocess.DEVNULL)


class CliTest(unittest.TestCase):
    def test_help_and_version(self):
        r = run("-h")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"Usage: cached", r.stdout)
        for flag in (b"-p", b"-l", b"-U", b"-s", b"-a", b"-c", b"-m", b"-M",
                     b"-I", b"-t", b"-A", b"-d", b"-P", b"-u", b"-v", b"-o",
                     b"idle_timeout"):
            self.assertIn(flag, r.stdout)
        r = run("-V")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, rb"^cached \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_64(self):
        for args in (["-x"], ["--bogus"], ["-p", "abc"], ["-p", "70000"],
                     ["-U", "11211"], ["-m", "0"], ["-m", "-5"],
                     ["-I", "512"], ["-I", "40m"], ["-t", "0"],
                     ["-c", "x"], ["-o", "nosuch=1"], ["-o", "idle_timeout"],
                     ["-p"], ["extra-arg"], ["-a", "999"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertIn(b"cached: ", r.stderr)
                self.assertIn(b"cached -h", r.stderr)

    def test_bind_failure_is_reported(self):
        with Server() as srv:
            r = run("-p", str(srv.port), "-l", "127.0.0.1")
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"cannot listen", r.stderr)

    def test_sigterm_and_sigint_exit_zero(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            srv = Server()
            clients = [srv.connect() for _ in range(50)]
            self.assertEqual(clients[0].call(b""), b"")
            start = time.monotonic()
            self.assertEqual(srv.stop(sig), 0)
            self.assertLess(time.monotonic() - start, 2.0)

    def test_daemon_with_pidfile(self):
        with tempfile.TemporaryDirectory() as tmp:
            pidfile = os.path.join(tmp, "cached.pid")
            portfile = os.path.join(tmp, "port")
            r = run("-d", "-P", pidfile, "-p", "0", "-U", "0",
                    "-o", "port_file=" + portfile)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIsNotNone(wait_for(lambda: os.path.exists(pidfile), 5))
            time.sleep(0.05)
            with open(pidfile) as f:
                pid = int(f.read())
            with open(portfile) as f:
                port = int(f.read())
            c = Client(socket.create_connection(("127.0.0.1", port), 5))
            self.assertEqual(c.call(b"set k 0 0 1\r\na\r\n"), b"STORED\r\n")
            os.kill(pid, signal.SIGTERM)
            self.assertIsNotNone(
                wait_for(lambda: not os.path.exists(pidfile), 5),
                "pidfile not removed at exit")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch user")
    def test_user_drops_root(self):
        with Server("-u", "nobody") as srv:
            c = srv.connect()
            self.assertEqual(c.call(b"set k 0 0 1\r\na\r\n"), b"STORED\r\n")
            with open("/proc/%d/status" % srv.proc.pid) as f:
                uids = [line.split()[1:] for line in f
                        if line.startswith("Uid:")][0]
            self.assertEqual(set(uids), {"65534"})
        r = run("-u", "no-such-user-here", "-p", "0")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"unknown user", r.stderr)

    def test_unix_socket_with_mask(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "cached.sock")
            srv = Server("-s", path, "-a", "0660", port_file=False)
            try:
                self.assertIsNotNone(wait_for(lambda: os.path.exists(path), 5))
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o660)
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                c = Client(s)
                self.assertEqual(c.call(b"set k 0 0 1\r\na\r\nget k\r\n"),
                                 b"STORED\r\nVALUE k 0 1\r\na\r\nEND\r\n")
                c.close()
            finally:
                self.assertEqual(srv.stop(), 0)
            self.assertFalse(os.path.exists(path))

    def test_connection_limit(self):
        with Server("-c", "5") as srv:
            clients = [srv.connect() for _ in range(5)]
            for c in clients:
                self.assertEqual(c.call(b""), b"")
            extra = srv.connect()
            self.assertEqual(extra.call(b""),
                             b"ERROR Too many open connections\r\n<CLOSED>")
            self.assertEqual(clients[0].call(b"set k 0 0 1\r\na\r\n"),
                             b"STORED\r\n")
            self.assertEqual(clients[0].stats()["rejected_connections"], "1")
            clients.pop().close()

            def accepted():
                c = srv.connect()
                ok = c.call(b"") == b""
                c.close()
                return ok
            self.assertIsNotNone(wait_for(accepted, 5))

    def test_shutdown_command(self):
        srv = Server()
        c = srv.connect()
        self.assertEqual(c.call(b"shutdown\r\n"),
                         b"ERROR: shutdown not enabled\r\n")
        srv.stop()
        srv = Server("-A")
        c = srv.connect()
        c.send(b"shutdown\r\n")
        self.assertEqual(srv.proc.wait(5), 0)
        srv.tmp.cleanup()

    def test_idle_timeout_closes_silent_and_half_sent(self):
        with Server("-o", "idle_timeout=1") as srv:
            silent = srv.connect()
            half_line = srv.connect()
            half_line.send(b"set k 0 0 5")
            half_value = srv.connect()
            half_value.send(b"set k 0 0 5\r\nhel")
            start = time.monotonic()
            for c in (silent, half_line, half_value):
                c.sock.settimeout(5)
                self.assertEqual(c.sock.recv(100), b"")
            self.assertLess(time.monotonic() - start, 3.5)
            busy = srv.connect()
            self.assertEqual(busy.call(b"get k\r\n"), b"END\r\n")

    def test_verbose_logs_connections(self):
        with tempfile.TemporaryFile() as err:
            srv = Server("-vv", stderr=err)
            c = srv.connect()
            c.call(b"get k\r\n")
            c.close()
            self.assertEqual(srv.stop(), 0)
            err.seek(0)
            log = err.read()
            self.assertIn(b"new connection", log)
            self.assertIn(b"listening on", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
