"""Command-line and process behaviour of the real cached binary: --help,
--version, usage errors (exit 64), signals, daemon mode with a pidfile,
unix sockets, the connection limit, the shutdown command and the idle
timeout.
"""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CACHED, Client, Server, read_log,  # noqa: E402
                    wait_for)
import serverctl  # noqa: E402  (common put tests/ on the path)


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

    def test_bad_flags_exit_64(self):
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
            # Open clients must not hold the exit up: stop() SIGKILLs
            # (status -9) a server still running after its timeout.
            self.assertEqual(srv.stop(sig), 0)

    def test_daemon_with_pidfile(self):
        with tempfile.TemporaryDirectory() as tmp:
            pidfile = os.path.join(tmp, "cached.pid")
            portfile = os.path.join(tmp, "port")
            r = run("-d", "-P", pidfile, "-p", "0", "-U", "0",
                    "-o", "port_file=" + portfile)
            self.assertEqual(r.returncode, 0, r.stderr)
            # The start command returns only once the pidfile holds the
            # daemon's pid (an init script reads it right away).
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
                # The file appears at bind(), a moment before listen():
                # wait until a connect is taken, not for the file.
                socks = []

                def connected():
                    s = socket.socket(socket.AF_UNIX)
                    try:
                        s.connect(path)
                    except OSError:
                        s.close()
                        return False
                    socks.append(s)
                    return True
                self.assertIsNotNone(wait_for(connected, 5))
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o660)
                c = Client(socks[0])
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
            # Closed by the timeout (a recv that times out raises).
            for c in (silent, half_line, half_value):
                c.sock.settimeout(10)
                self.assertEqual(c.sock.recv(100), b"")
            busy = srv.connect()
            self.assertEqual(busy.call(b"get k\r\n"), b"END\r\n")
    def test_help_lists_memcached_flags(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for flag in (b"-r,", b"-k,", b"-R,", b"-C,", b"-F,", b"-W,", b"-D ",
                     b"-L,", b"-f,", b"-n,", b"-N,", b"-e,", b"-Z,", b"-i,",
                     b"--max-reqs-per-event", b"--disable-cas", b"hashpower",
                     b"modern", b"ssl_", b"ext_"):
            self.assertIn(flag, r.stdout)
        r = run("-i")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"licence", r.stdout)

    def test_memcached_flags_accepted(self):
        """memcached's flags start the server; those that tune what
        cached does not have say so in one warning line each."""
        quiet = [["-r"], ["-k"], ["-R", "5"], ["--max-reqs-per-event=5"],
                 ["-C"], ["-F"], ["-W"], ["-D", "#"], ["-o", "modern"],
                 ["-o", "maxconns_fast"], ["-o", "no_drop_privileges"],
                 ["-o", "modern,idle_timeout=60"],
                 ["-o", "worker_logbuf_size=64,watcher_logbuf_size=128"]]
        warned = [(["-f", "1.5"], 1), (["-n", "64"], 1),
                  (["-N", "2"], 1), (["--slab-growth-factor=2"], 1),
                  (["-o", "hashpower=16"], 1),
                  (["-o", "slab_reassign,slab_automove=1"], 2),
                  (["-o", "lru_crawler,lru_maintainer,modern"], 2),
                  (["-o", "hot_lru_pct=20", "-o", "warm_lru_pct=40"], 2),
                  (["-o", "no_lru_crawler"], 1), (["-o", "no_modern"], 1),
                  (["-o", "hash_algorithm=murmur3"], 1),
                  (["-o", "ext_path=/tmp/x:1G"], 1),
                  (["-o", "track_sizes"], 1),
                  (["-o", "slab_chunk_max=16"], 1)]
        for args, nwarn in [(a, 0) for a in quiet] + warned:
            with self.subTest(args=args), tempfile.TemporaryFile() as err:
                srv = Server(*args, stderr=err)
                c = srv.connect()
                self.assertEqual(c.call(b"set k 0 0 1\r\na\r\n"),
                                 b"STORED\r\n")
                c.close()
                self.assertEqual(srv.stop(), 0)
                # (-k may warn that mlockall failed: a limit, not ours)
                lines = [ln for ln in read_log(err).split(b"\n")
                         if b"warning" in ln and b"mlockall" not in ln]
                self.assertEqual(len(lines), nwarn, lines)
                self.assertTrue(all(ln.endswith(b"; ignored")
                                    for ln in lines), lines)

    def test_large_pages(self):
        """-L maps item memory in transparent huge pages, with no
        warning; where the system has them off ("never", or no THP in
        the kernel) it is an error, as in memcached."""
        try:
            with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
                mode = f.read()
        except OSError:
            mode = "[never]"
        if "[never]" in mode:
            r = run("-L")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"-L: ", r.stderr)
            return
        with tempfile.TemporaryFile() as err:
            srv = Server("-L", "-m", "16", stderr=err)
            c = srv.connect()
            value = b"v" * 1000
            for i in range(0, 40000, 500):
                c.sock.sendall(b"".join(
                    b"set k%d 0 0 1000 noreply\r\n%s\r\n" % (j, value)
                    for j in range(i, i + 500)))
            self.assertEqual(c.call(b"get k39999\r\n"),
                             b"VALUE k39999 0 1000\r\n" + value +
                             b"\r\nEND\r\n")
            stats = dict(ln.split(b" ")[1:3] for ln in
                         c.call(b"stats\r\n").split(b"\r\n")
                         if ln.startswith(b"STAT "))
            self.assertGreater(int(stats[b"evictions"]), 0)
            with open("/proc/%d/smaps_rollup" % srv.proc.pid) as f:
                huge = [ln for ln in f if ln.startswith("AnonHugePages")]
            # Informative only: the kernel may have no huge page free.
            print("cached -L -m 16: %s" % (huge[0].strip() if huge
                                          else "no AnonHugePages line"))
            c.close()
            self.assertEqual(srv.stop(), 0)
            self.assertNotIn(b"cached:", read_log(err))

    def test_usage_errors_exit_64(self):
        for args in (["-e", ""], ["-o", "snapshot_interval=5"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 64, r.stderr)
        for args in (["-Z"], ["--enable-ssl"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertIn(b"ssl_chain_cert", r.stderr)
        for args in (["-q"], ["-o", "bogus"], ["-o", "modern,bogus"],
                     ["-o", "hashpower=5"], ["-o", "hashpower=70"],
                     ["-o", "hot_lru_pct"], ["-o", "modern=1"], ["-f", "1"],
                     ["-f", "x"], ["-R", "0"], ["-n", "0"], ["-D", ""],
                     ["-o", ""], ["-o", "idle_timeout"]):
            with self.subTest(args=args):
                r = run(*args)
                self.assertEqual(r.returncode, 64, r.stderr)

    def test_disable_cas(self):
        with Server("-C") as srv:
            c = srv.connect()
            self.assertEqual(c.stats(b"settings")["cas_enabled"], "no")
            self.assertEqual(c.call(b"set k 0 0 1\r\na\r\ngets k\r\n"),
                             b"STORED\r\nVALUE k 0 1 0\r\na\r\nEND\r\n")
            # as memcached -C: no CAS compares equal, 0 included
            self.assertEqual(c.call(b"cas k 0 0 1 0\r\nb\r\n"
                                    b"cas nokey 0 0 1 0\r\nb\r\n"
                                    b"mg k c v\r\nms k 1 C0\r\nc\r\n"),
                             b"EXISTS\r\nNOT_FOUND\r\nVA 1 c0\r\na\r\n"
                             b"EX\r\n")

    def test_prefix_delimiter(self):
        # -D: per-prefix stats on from the start, split at its character
        with Server("-D", "#") as srv:
            c = srv.connect()
            self.assertEqual(c.stats(b"settings")["stat_key_prefix"], "#")
            self.assertEqual(c.call(b"set a#1 0 0 1\r\nx\r\nget a#1\r\n"
                                    b"get a:2\r\nstats detail dump\r\n"),
                             b"STORED\r\nVALUE a#1 0 1\r\nx\r\nEND\r\n"
                             b"END\r\nPREFIX a get 1 hit 1 set 1 del 0\r\n"
                             b"END\r\n")

    def test_disable_flush_all(self):
        with Server("-F") as srv:
            c = srv.connect()
            self.assertEqual(c.call(b"set k 0 0 1\r\na\r\nflush_all\r\n"
                                    b"flush_all noreply\r\nflush_all 0\r\n"
                                    b"get k\r\n"),
                             b"STORED\r\n" +
                             b"CLIENT_ERROR flush_all not allowed\r\n" * 2 +
                             b"VALUE k 0 1\r\na\r\nEND\r\n")
            self.assertEqual(c.stats()["cmd_flush"], "0")

    def test_reqs_per_event_yields(self):
        """-R 2: a pipeline of 50 requests is answered whole, the
        connection yielding to others every 2 requests (conn_yields)."""
        with Server("-R", "2") as srv:
            c = srv.connect()
            reqs = b"".join(b"set k%d 0 0 1\r\nx\r\n" % i for i in range(50))
            self.assertEqual(c.call(reqs), b"STORED\r\n" * 50)
            self.assertGreaterEqual(int(c.stats()["conn_yields"]), 10)
        with Server() as srv:
            c = srv.connect()
            reqs = b"".join(b"set k%d 0 0 1\r\nx\r\n" % i
                            for i in range(15))
            self.assertEqual(c.call(reqs), b"STORED\r\n" * 15)
            self.assertEqual(c.stats()["conn_yields"], "0")


# What a client sends, one request at a time, for the -vv log tests, and
# the lines memcached 1.6.18 -vv logs for them (fd numbers as <N>/>N, the
# version sentinel's lines left out).
VERBOSE_REQUESTS = [
    b"set k 0 0 1\r\nx\r\n", b"get k nokey\r\n", b"gets k\r\n",
    b"set k 0 0 1 noreply\r\ny\r\n", b"delete k noreply\r\n",
    b"delete k\r\n", b"set n 0 0 1\r\n5\r\n", b"incr n 2\r\n",
    b"decr n 1 noreply\r\n", b"touch n 10\r\n", b"flush_all\r\n",
    b"bogus cmd\r\n", b"set k abc 0 1\r\nx\r\n", b"incr k x\r\n",
    b"mn\r\n", b"mg nokey v\r\n", b"stats\r\n",
]
VERBOSE_LOG = [
    b"<N new auto-negotiating client connection",
    b"N: Client using the ascii protocol",
    b"<N set k 0 0 1", b">N STORED",
    b"<N get k nokey", b">N sending key k", b">N END",
    b"<N gets k", b">N sending key k", b">N END",
    b"<N set k 0 0 1 noreply", b">N NOREPLY STORED",
    b"<N delete k noreply", b">N NOREPLY DELETED",
    b"<N delete k", b">N NOT_FOUND",
    b"<N set n 0 0 1", b">N STORED",
    b"<N incr n 2", b">N 7",
    b"<N decr n 1 noreply", b">N NOREPLY 6",
    b"<N touch n 10", b">N TOUCHED",
    b"<N flush_all", b">N OK",
    b"<N bogus cmd", b">N ERROR",
    b"<N set k abc 0 1", b">N CLIENT_ERROR bad command line format",
]
VERBOSE_LOG_TAIL = [
    b"<N incr k x", b">N CLIENT_ERROR invalid numeric delta argument",
    b"<N mn", b">N MN",
    b"<N mg nokey v",
    b"<N stats",
    b"<N connection closed.",
]


def connection_lines(log, fd=None):
    """The lines of connection fd (bytes; by default the last one) of a -vv
    log (other connections, such as a launcher's readiness probes, may log
    in between), fd numbers as N, without the version sentinel's."""
    fds = [fd] if fd is not None else \
        re.findall(rb"(?m)^<(\d+) new auto-negotiating", log)
    out = []
    for line in log.split(b"\n"):
        fd = re.match(rb"^[<>]?(\d+)", line)
        if fds and fd and fd.group(1) != fds[-1]:
            continue
        line = re.sub(rb"^([<>]?)\d+", rb"\1N", line)
        if re.match(rb"^([<>]N |N: )", line) and \
                line not in (b"<N version",) and \
                not line.startswith(b">N VERSION") and \
                not line.startswith(b"<N server listening"):
            out.append(line)
    return out


def run_verbose(port, requests):
    """Sends each request (waiting for its reply) on one connection, then
    closes it."""
    c = Client(socket.create_connection(("127.0.0.1", port), 5))
    for r in requests:
        c.call(r)
    c.close()


class VerboseTest(unittest.TestCase):
    """-v/-vv/-vvv log as memcached does (tests read the server's stderr)."""

    def log_of(self, *args, requests=VERBOSE_REQUESTS, wait_close=None):
        """The server's stderr after requests; with -vv, once the close
        of the connection is logged (lines from the worker thread)."""
        if wait_close is None:
            wait_close = "-vv" in args or "-vvv" in args
        with tempfile.TemporaryFile() as err:
            srv = Server(*args, stderr=err)
            run_verbose(srv.port, requests)

            def closed():
                return b"connection closed." in read_log(err) or None
            if wait_close:
                self.assertIsNotNone(wait_for(closed, 5))
            self.assertEqual(srv.stop(), 0)
            return read_log(err)

    def test_vv_logs_commands_and_replies(self):
        log = self.log_of("-vv")
        self.assertIn(b"server listening (auto-negotiate)", log)
        # the "set k abc" value line is skipped, not run (memcached
        # would log "<N x" and ">N ERROR" here)
        self.assertEqual(connection_lines(log),
                         VERBOSE_LOG + VERBOSE_LOG_TAIL, log)
        self.assertNotIn(b"going from", log)

    @unittest.skipIf(shutil.which("memcached") is None,
                     "memcached (the oracle) not installed")
    def test_vv_lines_match_memcached(self):
        """The same requests to memcached -vv give the same lines, but for
        the value memcached runs as a command line."""
        with tempfile.TemporaryFile() as err:
            mc = serverctl.ServerProcess(shutil.which("memcached"),
                                         ["-vv", "-t", "1"],
                                         kind="memcached", stderr=err)
            mc.start()
            try:
                run_verbose(mc.port, VERBOSE_REQUESTS)

                def closed():
                    # our connection's close (the launcher's probes may
                    # connect and log after it)
                    log = read_log(err)
                    m = re.search(rb"(?m)^<(\d+) set k 0 0 1$", log)
                    return m is not None and re.search(
                        rb"(?m)^<" + m.group(1) + rb" connection closed\.$",
                        log) is not None or None
                self.assertIsNotNone(wait_for(closed, 5))
            finally:
                mc.stop()
            log = read_log(err)
            ours = re.search(rb"(?m)^<(\d+) set k 0 0 1$", log).group(1)
            theirs = connection_lines(log, ours)
        # the launcher's readiness probes connected first
        start = len(theirs) - 1 - theirs[::-1].index(VERBOSE_LOG[0])
        self.assertEqual(theirs[start:start + len(VERBOSE_LOG) + 2 +
                                len(VERBOSE_LOG_TAIL)], VERBOSE_LOG + [b"<N x", b">N ERROR"] +
                         VERBOSE_LOG_TAIL)

    def test_vvv_logs_state_changes(self):
        log = self.log_of("-vvv", requests=[b"set k 0 0 1\r\nx\r\n"])
        self.assertIn(b": going from conn_parse_cmd to conn_nread", log)
        self.assertIn(b"<", log)

    def test_control_bytes_escaped(self):
        log = self.log_of("-vv", requests=[b"set a\x01\x1b[2J\rb 0 0 1\r\n"
                                           b"x\r\nget a\x01\x1b[2J\rb\r\n"])
        self.assertIn(b"set a\\x01\\x1b[2J\\x0db 0 0 1\n", log)
        self.assertIn(b"sending key a\\x01\\x1b[2J\\x0db\n", log)
        self.assertNotIn(b"\x1b", log)

    def test_v_and_quiet(self):
        """-v logs no commands; without -v nothing is logged at all."""
        log = self.log_of("-v")
        self.assertEqual(connection_lines(log), [], log)
        self.assertIn(b"listening on", log)
        self.assertEqual(self.log_of(), b"")

    def test_verbosity_command_quiets(self):
        """"verbosity 0" stops the lines of an open connection at once."""
        log = self.log_of("-vv", requests=[b"get a\r\n", b"verbosity 0\r\n",
                                           b"get b\r\n"], wait_close=False)
        self.assertIn(b"<", log)
        lines = connection_lines(log)
        self.assertIn(b"<N get a", lines)
        self.assertIn(b"<N verbosity 0", lines)
        self.assertNotIn(b"<N get b", lines)


if __name__ == "__main__":
    unittest.main(verbosity=2)
