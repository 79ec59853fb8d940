"""cached-warm as cron meets it (issue 17): the default lock file is per
user (a run as root leaves nothing that blocks www-data's cron job), the
exit statuses -h lists are all there, and an unreachable server is named
with the reason in plain words ("127.0.0.1:PORT: connection refused"), not
libmemcached's internals.  Binaries come from $TOP_BUILDDIR; loopback only.
"""
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server  # noqa: E402

BUILD = os.environ.get("TOP_BUILDDIR", os.getcwd())
WARM = os.path.join(BUILD, "tools", "cached-warm")


def closed_port():
    """A loopback port nothing listens on: bound, never listened."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


class WarmErrorsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="warm-errors.")
        os.chmod(self.tmp, 0o755)
        self.manifest = os.path.join(self.tmp, "manifest")
        with open(self.manifest, "w") as f:
            f.write("greeting 600 0 hello\n")
        os.chmod(self.manifest, 0o644)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def warm(self, *args, env=None, prefix=()):
        full = {k: v for k, v in os.environ.items()
                if k != "XDG_RUNTIME_DIR"}
        full.update(env or {})
        return subprocess.run(list(prefix) + [WARM] + list(args), env=full,
                              capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def test_help_lists_every_exit_status(self):
        r = self.warm("-h")
        self.assertEqual(r.returncode, 0)
        text = r.stdout.decode()
        for status in ("0 all stored", "1 some failed", "64 usage",
                       "65 bad line", "66 unreadable manifest",
                       "69 no server reachable", "70 internal error",
                       "73 lock file cannot be created", "75 lock held"):
            self.assertIn(status, " ".join(text.split()))
        self.assertIn("$XDG_RUNTIME_DIR/cached-warm.lock", text)

    def test_connection_refused_in_plain_words(self):
        s, port = closed_port()
        try:
            r = self.warm("--no-lock", "-s", "127.0.0.1:%d" % port,
                          self.manifest)
        finally:
            s.close()
        self.assertEqual(r.returncode, 69, r.stderr)
        err = r.stderr.decode()
        self.assertIn("cached-warm: 127.0.0.1:%d: connection refused\n"
                      % port, err)
        self.assertIn("cached-warm: no server reachable (127.0.0.1:%d)\n"
                      % port, err)
        for internal in ("SERVER HAS FAILED", ".cc:", "TIMED RETRY",
                         "libmemcached"):
            self.assertNotIn(internal, err)

    def test_each_server_named(self):
        s, port = closed_port()
        sock = os.path.join(self.tmp, "no.sock")
        try:
            r = self.warm("--no-lock", "-s",
                          "127.0.0.1:%d,%s" % (port, sock), self.manifest)
        finally:
            s.close()
        self.assertEqual(r.returncode, 69, r.stderr)
        err = r.stderr.decode()
        self.assertIn("127.0.0.1:%d: connection refused\n" % port, err)
        self.assertIn("%s: no such file or directory\n" % sock, err)

    def test_default_lock_in_xdg_runtime_dir(self):
        with Server() as srv:
            xdg = os.path.join(self.tmp, "xdg")
            os.mkdir(xdg, 0o700)
            r = self.warm("-q", "-s", "127.0.0.1:%d" % srv.port,
                          self.manifest, env={"XDG_RUNTIME_DIR": xdg})
            self.assertEqual(r.returncode, 0, r.stderr)
            lock = os.path.join(xdg, "cached-warm.lock")
            self.assertTrue(os.path.exists(lock), os.listdir(xdg))

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root and setpriv to run as nobody")
    def test_root_run_does_not_block_another_user(self):
        # The README's cron line as another user, after a run as root:
        # before issue 17 both used /tmp/cached-warm.lock, root's copy
        # could not be opened by the other user and the cron job exited 73.
        nobody = pwd.getpwnam("nobody")
        with Server() as srv:
            server = "127.0.0.1:%d" % srv.port
            root_xdg = os.path.join(self.tmp, "root")
            os.mkdir(root_xdg, 0o700)
            r = self.warm("-q", "-s", server, self.manifest,
                          env={"XDG_RUNTIME_DIR": root_xdg})
            self.assertEqual(r.returncode, 0, r.stderr)
            user_xdg = os.path.join(self.tmp, "user")
            os.mkdir(user_xdg, 0o700)
            os.chown(user_xdg, nobody.pw_uid, nobody.pw_gid)
            r = self.warm("-q", "-s", server, self.manifest,
                          env={"XDG_RUNTIME_DIR": user_xdg},
                          prefix=("setpriv", "--reuid=nobody",
                                  "--regid=nogroup", "--clear-groups"))
            self.assertEqual(r.returncode, 0, r.stderr)
            lock = os.path.join(user_xdg, "cached-warm.lock")
            self.assertEqual(os.stat(lock).st_uid, nobody.pw_uid)
            # A root-owned lock the user cannot open: exit 73, named.
            theirs = os.path.join(self.tmp, "root-owned.lock")
            with open(theirs, "w"):
                pass
            os.chmod(theirs, 0o600)
            r = self.warm("-q", "--lock", theirs, "-s", server,
                          self.manifest,
                          prefix=("setpriv", "--reuid=nobody",
                                  "--regid=nogroup", "--clear-groups"))
            self.assertEqual(r.returncode, 73, r.stderr)
            self.assertIn(("lock file %s: Permission denied" % theirs)
                          .encode(), r.stderr)


if __name__ == "__main__":
    unittest.main()
