"""cached as a service (issue 17): the -P pidfile under -u (written as the
unprivileged user, removed at exit), readiness sent to systemd's
$NOTIFY_SOCKET (Type=notify, without libsystemd), and the wrapper the
systemd units start (contrib/systemd-cached-wrapper), which turns
/etc/cached.conf into options the way Debian's memcached package reads
/etc/memcached.conf.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHED, Client, WRAPPER, wait_for  # noqa: E402

TOP_SRCDIR = os.environ.get(
    "TOP_SRCDIR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNIT_WRAPPER = os.path.join(TOP_SRCDIR, "contrib", "systemd-cached-wrapper")


def read_port(path):
    """The port cached wrote to its port file, or None until it has."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    return int(text) if text.endswith("\n") else None


def pidfile_text(path):
    """The pidfile's text, or "" until it exists."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def uids(pid):
    """The real, effective, saved and fs uids of a process."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return set(int(u) for u in line.split()[1:])
    raise AssertionError("no Uid line for %d" % pid)


class NotifySocket:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path if path[0] != "@" else "\0" + path[1:])
        self.name = path

    def recv(self, timeout=10.0):
        """The next message, or None when none came within timeout (a
        bound against hanging, not a measurement)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096)
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


@unittest.skipIf(WRAPPER, "the server runs under a wrapper: pids differ")
class ServiceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cached-service.")
        os.chmod(self.tmp, 0o755)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp)

    def start(self, argv, env=None):
        full = dict(os.environ)
        full.update(env or {})
        p = subprocess.Popen(argv, env=full, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        return p.returncode, err

    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch to nobody")
    def test_pidfile_written_as_user_and_removed(self):
        nobody = pwd.getpwnam("nobody")
        run = os.path.join(self.tmp, "run")
        os.mkdir(run)
        os.chown(run, nobody.pw_uid, nobody.pw_gid)
        pidfile = os.path.join(run, "cached.pid")
        portfile = os.path.join(self.tmp, "port")
        r = subprocess.run([CACHED, "-d", "-u", "nobody", "-P", pidfile,
                            "-p", "0", "-U", "0", "-o",
                            "port_file=" + portfile],
                           capture_output=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        # daemon() returned in the parent: the pidfile is written by the
        # child, once it has forked.
        self.assertIsNotNone(wait_for(
            lambda: pidfile_text(pidfile).endswith("\n"), 5))
        st = os.stat(pidfile)
        self.assertEqual(st.st_uid, nobody.pw_uid, "pidfile owned by root")
        with open(pidfile) as f:
            pid = int(f.read())
        self.assertEqual(uids(pid), {nobody.pw_uid})
        port = read_port(portfile)
        c = Client(socket.create_connection(("127.0.0.1", port), 5))
        self.assertEqual(c.call(b"set k 0 0 1\r\na\r\n"), b"STORED\r\n")
        c.close()
        os.kill(pid, signal.SIGTERM)
        self.assertIsNotNone(
            wait_for(lambda: not os.path.exists(pidfile), 5),
            "pidfile left behind at exit")
        self.assertIsNotNone(
            wait_for(lambda: not os.path.exists("/proc/%d" % pid), 5))

    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch to nobody")
    def test_pidfile_the_user_cannot_write(self):
        # A root-owned directory: nobody cannot create the pidfile there.
        pidfile = os.path.join(self.tmp, "cached.pid")
        r = subprocess.run([CACHED, "-d", "-u", "nobody", "-P", pidfile,
                            "-p", "0", "-U", "0"], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1)
        self.assertIn(("cannot write %s: Permission denied" % pidfile)
                      .encode(), r.stderr)
        self.assertIn(b"user 'nobody'", r.stderr)
        self.assertFalse(os.path.exists(pidfile))

    def test_pidfile_in_foreground(self):
        pidfile = os.path.join(self.tmp, "cached.pid")
        portfile = os.path.join(self.tmp, "port")
        p = self.start([CACHED, "-P", pidfile, "-p", "0", "-U", "0",
                        "-o", "port_file=" + portfile])
        self.assertIsNotNone(wait_for(
            lambda: pidfile_text(pidfile).endswith("\n"), 5))
        with open(pidfile) as f:
            self.assertEqual(int(f.read()), p.pid)
        rc, err = self.stop(p)
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(pidfile), "pidfile left behind")

    def check_notify(self, name):
        ns = NotifySocket(name)
        try:
            portfile = os.path.join(self.tmp, "port")
            p = self.start([CACHED, "-p", "0", "-U", "0",
                            "-o", "port_file=" + portfile],
                           env={"NOTIFY_SOCKET": name})
            self.assertEqual(ns.recv(), b"READY=1")
            # Ready means listening and serving, not just bound.
            port = read_port(portfile)
            self.assertIsNotNone(port)
            c = Client(socket.create_connection(("127.0.0.1", port), 5))
            self.assertRegex(c.call(b"version\r\n"), rb"^VERSION ")
            c.close()
            rc, err = self.stop(p)
            self.assertEqual(rc, 0, err)
            self.assertEqual(ns.recv(), b"STOPPING=1")
        finally:
            ns.close()

    def test_notify_socket_path(self):
        self.check_notify(os.path.join(self.tmp, "notify"))

    def test_notify_socket_abstract(self):
        self.check_notify("@cached-test-notify-%d" % os.getpid())

    def test_notify_socket_absent_is_fine(self):
        # A NOTIFY_SOCKET nobody listens on: a logged error, still serves.
        portfile = os.path.join(self.tmp, "port")
        p = self.start([CACHED, "-p", "0", "-U", "0",
                        "-o", "port_file=" + portfile],
                       env={"NOTIFY_SOCKET": os.path.join(self.tmp, "none")})
        self.assertIsNotNone(wait_for(lambda: read_port(portfile), 5))
        c = Client(socket.create_connection(
            ("127.0.0.1", read_port(portfile)), 5))
        self.assertRegex(c.call(b"version\r\n"), rb"^VERSION ")
        c.close()
        rc, err = self.stop(p)
        self.assertEqual(rc, 0, err)
        self.assertIn(b"cannot notify systemd", err)


@unittest.skipIf(WRAPPER, "the server runs under a wrapper: pids differ")
class UnitWrapperTest(unittest.TestCase):
    """contrib/systemd-cached-wrapper, as the units run it."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cached-wrapper.")
        # A stand-in for cached that prints its arguments, one a line.
        self.echo = os.path.join(self.tmp, "echo-args")
        with open(self.echo, "w") as f:
            f.write('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; '
                    'done\n')
        os.chmod(self.echo, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def wrap(self, conf_text, binary=None):
        conf = os.path.join(self.tmp, "cached.conf")
        with open(conf, "w") as f:
            f.write(conf_text)
        env = dict(os.environ, CACHED_BIN=binary or self.echo)
        return subprocess.run(["sh", UNIT_WRAPPER, conf], env=env,
                              capture_output=True, timeout=10,
                              stdin=subprocess.DEVNULL)

    def test_options_comments_and_blank_lines(self):
        r = self.wrap("# a comment\n\n-m 128\n  -p 11311   # the port\n"
                      "\t-l 127.0.0.1,::1\n-o idle_timeout=600\n#-v\n-vv")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split("\n"),
                         ["-m", "128", "-p", "11311", "-l", "127.0.0.1,::1",
                          "-o", "idle_timeout=600", "-vv", ""])
        self.assertEqual(r.stderr, b"")

    def test_no_globbing(self):
        r = self.wrap("-s /run/*\n")
        self.assertEqual(r.stdout, b"-s\n/run/*\n")

    def test_daemon_pidfile_user_dropped_with_a_note(self):
        r = self.wrap("-d\n-P /run/memcached.pid\n-u memcache\n-m 64\n"
                      "--daemon\n-P/x.pid\n--user=memcache\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"-m\n64\n")
        for word in (b"'-d'", b"'-P /run/memcached.pid'", b"'-u memcache'",
                     b"'--daemon'", b"'-P/x.pid'", b"'--user=memcache'"):
            self.assertIn(word + b" ignored", r.stderr)

    def test_missing_config_and_dangling_option(self):
        r = subprocess.run(["sh", UNIT_WRAPPER,
                            os.path.join(self.tmp, "cached_nosuch.conf")],
                           capture_output=True, timeout=10,
                           env=dict(os.environ, CACHED_BIN=self.echo))
        self.assertEqual(r.returncode, 78)
        self.assertIn(b"cannot read", r.stderr)
        self.assertIn(b"cached_nosuch.conf", r.stderr)
        r = self.wrap("-m 64\n-P\n")
        self.assertEqual(r.returncode, 78)
        self.assertIn(b"-P needs a value", r.stderr)

    def test_execs_cached_which_notifies(self):
        # As cached.service runs it: the wrapper becomes cached (same pid,
        # so systemd accepts READY=1 from the main process).
        portfile = os.path.join(self.tmp, "port")
        conf = os.path.join(self.tmp, "cached.conf")
        with open(conf, "w") as f:
            f.write("-d\n-p 0\n-U 0\n-o port_file=%s\n" % portfile)
        ns = NotifySocket(os.path.join(self.tmp, "notify"))
        env = dict(os.environ, CACHED_BIN=CACHED, NOTIFY_SOCKET=ns.name)
        p = subprocess.Popen(["sh", UNIT_WRAPPER, conf], env=env,
                             stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            self.assertEqual(ns.recv(), b"READY=1")
            self.assertEqual(os.path.realpath("/proc/%d/exe" % p.pid),
                             os.path.realpath(CACHED))
            c = Client(socket.create_connection(
                ("127.0.0.1", read_port(portfile)), 5))
            self.assertRegex(c.call(b"version\r\n"), rb"^VERSION ")
            c.close()
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn(b"'-d' ignored", err)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            ns.close()

    def test_shipped_config_parses(self):
        # The default /etc/cached.conf gives options cached accepts.
        with open(os.path.join(TOP_SRCDIR, "contrib", "cached.conf")) as f:
            text = f.read()
        r = self.wrap(text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        args = r.stdout.decode().split()
        self.assertIn("11211", args)
        # cached itself accepts them (-h after them: parse, print, exit 0).
        r = subprocess.run([CACHED] + args + ["-V"], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
