"""TLS (-Z) against the real cached binary, and the same script against
Debian's memcached -Z where both should agree.

Certificates are made at test time with the openssl command: a CA, two
server certificates (serials 0x1001 and 0x2002, for the reloads), a client
certificate, an expired client certificate and one from another CA.

  - a TLS listener and a notls: one side by side; plain text to the TLS
    port is a failed handshake, TLS to the plain port fails;
  - TLS 1.2 and 1.3, ssl_min_version=3 refusing 1.2;
  - every protocol runs unchanged: text and meta commands, pipelined
    gets, 1 MB values both ways; pymemcache with tls_context; an openssl
    s_client session; cached-bench --tls;
  - mutual TLS: ssl_verify_mode=2 refuses a client without a certificate,
    with an expired one or one of another CA, and takes a good one;
  - a client that half-closes (with or without close_notify) gets every
    reply, as on a plain socket; ssl_session_cache resumes sessions;
  - reloads (refresh_certs and SIGHUP): a handshake after shows the new
    serial, open connections go on, a failed reload keeps the old
    certificate and says why;
  - start-up errors: a bad path or a mismatched key exits 78, -Z without
    a certificate 64;
  - hostile clients: garbage instead of a ClientHello, a handshake cut in
    the middle or trickled and then left, 1,000 silent TLS connections
    while a client is served, client-initiated renegotiation refused, a
    client that never reads its replies dropped by write_timeout.

openssl, pymemcache or memcached missing makes the test skip loudly (exit
77, SKIP in the log), never pass.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CACHED, CLOSED, INSTRUMENTED, TIME_SCALE,  # noqa: E402
                    Client, Server, raise_nofile, read_log, rss_kib,
                    wait_for)
import serverctl  # noqa: E402

OPENSSL = shutil.which("openssl")
MEMCACHED = os.environ.get("MEMCACHED", shutil.which("memcached"))
try:
    import pymemcache.client.base as pymc
except ImportError:
    # Debian's python3-pymemcache when python3 is another interpreter
    # (pyenv): the package is pure Python.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import pymemcache.client.base as pymc
    except ImportError:
        pymc = None

SERIAL1, SERIAL2 = 0x1001, 0x2002
NOTLS_PORTS = range(22700, 22800)   # notls: listeners, out of the
                                    # ephemeral range


def run(*argv, **kw):
    """Runs a command; fails the test with its output if it fails."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60, **kw)
    if p.returncode != 0:
        raise AssertionError("%r failed: %s" % (argv, p.stdout.decode()))
    return p.stdout


class Certs:
    """The certificates of a test run, in a temporary directory anyone can
    read (memcached drops to nobody)."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cached-tls-")
        self.dir = self.tmp.name
        os.chmod(self.dir, 0o755)
        self.ca("ca")
        self.ca("otherca")
        self.leaf("server", "ca", SERIAL1,
                  "subjectAltName=DNS:localhost,IP:127.0.0.1")
        self.leaf("server2", "ca", SERIAL2,
                  "subjectAltName=DNS:localhost,IP:127.0.0.1")
        self.leaf("client", "ca", 0x3003, "extendedKeyUsage=clientAuth")
        self.leaf("wrongca", "otherca", 0x4004, "extendedKeyUsage=clientAuth")
        self.expired("expired", 0x5005)
        for f in os.listdir(self.dir):
            os.chmod(self.path(f), 0o644)

    def path(self, name):
        return os.path.join(self.dir, name)

    def key(self, name):
        run(OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-out", self.path(name + ".key"))

    def ca(self, name):
        self.key(name)
        run(OPENSSL, "req", "-x509", "-new", "-key", self.path(name + ".key"),
            "-subj", "/CN=cached test " + name, "-days", "3",
            "-out", self.path(name + ".pem"))

    def csr(self, name, cn):
        self.key(name)
        run(OPENSSL, "req", "-new", "-key", self.path(name + ".key"),
            "-subj", "/CN=" + cn, "-out", self.path(name + ".csr"))

    def leaf(self, name, ca, serial, ext):
        self.csr(name, "localhost" if "server" in name else name)
        with open(self.path(name + ".ext"), "w") as f:
            f.write(ext + "\n")
        run(OPENSSL, "x509", "-req", "-in", self.path(name + ".csr"),
            "-CA", self.path(ca + ".pem"), "-CAkey", self.path(ca + ".key"),
            "-set_serial", str(serial), "-days", "3",
            "-extfile", self.path(name + ".ext"),
            "-out", self.path(name + ".pem"))

    def expired(self, name, serial):
        """A client certificate of the CA valid only in January 2020
        (openssl ca sets the dates; x509 -req cannot)."""
        self.csr(name, name)
        d = self.path("ca.db")
        os.mkdir(d)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("%x\n" % serial)
        cnf = self.path("ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca=c\n[c]\ndir=%s\n"
                    "database=$dir/index.txt\n"
                    "new_certs_dir=$dir\nserial=$dir/serial\n"
                    "default_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n"
                    % d)
        run(OPENSSL, "ca", "-batch", "-config", cnf, "-notext",
            "-cert", self.path("ca.pem"), "-keyfile", self.path("ca.key"),
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
            "-in", self.path(name + ".csr"), "-out", self.path(name + ".pem"))

    def server_args(self, cert="server", extra=()):
        """-Z options for a server using cert.pem / cert.key."""
        opts = ["ssl_chain_cert=" + self.path(cert + ".pem"),
                "ssl_key=" + self.path(cert + ".key")] + list(extra)
        return ["-Z", "-o", ",".join(opts)]

    def client_ctx(self, version=None, cert=None):
        """A client context trusting the test CA, optionally pinned to one
        TLS version and presenting cert."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.path("ca.pem"))
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        if cert is not None:
            ctx.load_cert_chain(self.path(cert + ".pem"),
                                self.path(cert + ".key"))
        return ctx


CERTS = None


def setUpModule():
    global CERTS
    CERTS = Certs()


def tearDownModule():
    CERTS.tmp.cleanup()


def tls_connect(port, ctx=None, timeout=5.0):
    """A TLS connection to 127.0.0.1:port as a common.Client."""
    ctx = ctx or CERTS.client_ctx()
    raw = socket.create_connection(("127.0.0.1", port), timeout * TIME_SCALE)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise
    return Client(s)


def plain_connect(port):
    s = socket.create_connection(("127.0.0.1", port), 5 * TIME_SCALE)
    return Client(s)


def peer_serial(port, ctx=None):
    """The serial number of the certificate a new handshake shows."""
    c = tls_connect(port, ctx)
    try:
        return int(c.sock.getpeercert()["serialNumber"], 16)
    finally:
        c.close()


def refused(port, ctx):
    """True when the server refuses a TLS client: the handshake fails or,
    in TLS 1.3 where the client's handshake ends before the server has
    checked its certificate, the first request finds the connection
    closed."""
    try:
        c = tls_connect(port, ctx)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    try:
        return c.call(b"").endswith(CLOSED)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    finally:
        c.close()


def free_notls_port():
    """A free port of NOTLS_PORTS, starting at a pid-dependent one."""
    n = len(NOTLS_PORTS)
    for i in range(n):
        port = NOTLS_PORTS[(os.getpid() + i * 7) % n]
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in %r" % NOTLS_PORTS)


class CachedTLS:
    """cached with TLS; .port is TLS, .notls_port (if asked) plain."""

    def __init__(self, args, notls=False, stderr=None):
        self.notls_port = None
        for _ in range(5):
            extra = []
            if notls:
                self.notls_port = free_notls_port()
                extra = ["-l", "127.0.0.1,notls:127.0.0.1:%d"
                         % self.notls_port]
            try:
                self.srv = Server(*(list(args) + extra), stderr=stderr)
                break
            except RuntimeError:
                if not notls:
                    raise
        else:
            raise RuntimeError("cached -Z did not start")
        self.port = self.srv.port

    @property
    def pid(self):
        return self.srv.pid

    def stop(self):
        return self.srv.stop()


class MemcachedTLS:
    """Debian's memcached -Z (the oracle)."""

    def __init__(self, args):
        self.srv = serverctl.ServerProcess(MEMCACHED, args, kind="memcached",
                                           time_scale=TIME_SCALE,
                                           stderr=subprocess.DEVNULL)
        self.srv.start()
        self.port = self.srv.port

    @property
    def pid(self):
        return self.srv.pid

    def stop(self):
        return self.srv.stop()


class Agreed:
    """Tests both servers must pass; self.start(args) starts one."""

    def server(self, extra=(), cert="server"):
        srv = self.start(CERTS.server_args(cert, extra) + ["-I", "2m"])
        self.addCleanup(srv.stop)
        return srv

    def test_versions(self):
        """TLS 1.2 and 1.3 both work and run commands."""
        srv = self.server()
        for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                        (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            c = tls_connect(srv.port, CERTS.client_ctx(v))
            self.assertEqual(c.sock.version(), name)
            self.assertEqual(c.call(b"set k 0 0 2\r\nhi\r\nget k\r\n"),
                             b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n")
            c.close()

    def test_min_version_13(self):
        """ssl_min_version=3 refuses TLS 1.2."""
        srv = self.server(["ssl_min_version=3"])
        self.assertTrue(refused(srv.port, CERTS.client_ctx(
            ssl.TLSVersion.TLSv1_2)))
        self.assertEqual(peer_serial(srv.port), SERIAL1)

    def test_pymemcache(self):
        """pymemcache with tls_context: the usual operations, large
        values."""
        srv = self.server()
        mc = pymc.Client(("127.0.0.1", srv.port),
                         tls_context=CERTS.client_ctx(),
                         connect_timeout=5 * TIME_SCALE,
                         timeout=10 * TIME_SCALE)
        try:
            self.assertTrue(mc.set("a", b"1"))
            self.assertEqual(mc.get("a"), b"1")
            big = bytes(range(256)) * 4000      # ~1 MB
            self.assertTrue(mc.set("big", big))
            for k in range(20):
                mc.set("m%d" % k, b"v%d" % k)
            got = mc.get_many(["a", "big"] + ["m%d" % k for k in range(20)]
                              + ["missing"])
            self.assertEqual(got["big"], big)
            self.assertEqual(len(got), 22)
            self.assertEqual(mc.incr("a", 41), 42)
            self.assertEqual(mc.decr("a", 2), 40)
            self.assertTrue(mc.delete("a", noreply=False))
            self.assertIsNone(mc.get("a"))
            self.assertTrue(mc.add("a", b"x", noreply=False))
            self.assertFalse(mc.add("a", b"y", noreply=False))
            self.assertEqual(mc.gets("a")[0], b"x")
        finally:
            mc.close()

    def test_mutual_tls(self):
        """ssl_verify_mode=2: a good client certificate is taken; none,
        an expired one or one of another CA is refused."""
        srv = self.server(["ssl_verify_mode=2",
                           "ssl_ca_cert=" + CERTS.path("ca.pem")])
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=v):
                c = tls_connect(srv.port, CERTS.client_ctx(v, "client"))
                self.assertEqual(c.call(b"mn\r\n"), b"MN\r\n")
                c.close()
                for bad in (None, "expired", "wrongca"):
                    self.assertTrue(refused(srv.port,
                                            CERTS.client_ctx(v, bad)), bad)

    def test_s_client(self):
        """An openssl s_client session, verifying the server."""
        srv = self.server()
        p = subprocess.run(
            [OPENSSL, "s_client", "-quiet", "-connect",
             "127.0.0.1:%d" % srv.port, "-CAfile", CERTS.path("ca.pem"),
             "-verify_return_error"],
            input=b"set sc 0 0 3\r\nabc\r\nget sc\r\nquit\r\n",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=20 * TIME_SCALE)
        self.assertEqual(p.stdout,
                         b"STORED\r\nVALUE sc 0 3\r\nabc\r\nEND\r\n",
                         p.stderr)

    def test_session_cache(self):
        """ssl_session_cache: a client resumes its session (TLS 1.2 and
        1.3)."""
        srv = self.server(["ssl_session_cache"])
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=v):
                ctx = CERTS.client_ctx(v)
                c = tls_connect(srv.port, ctx)
                self.assertEqual(c.call(b"mn\r\n"), b"MN\r\n")  # tickets
                session = c.sock.session
                c.close()
                raw = socket.create_connection(("127.0.0.1", srv.port),
                                               5 * TIME_SCALE)
                s = ctx.wrap_socket(raw, server_hostname="localhost",
                                    session=session)
                self.assertTrue(s.session_reused)
                s.close()
        c = tls_connect(srv.port)
        st = c.stats()
        c.close()
        self.assertGreaterEqual(int(st["ssl_new_sessions"]), 1)

    def test_refresh_certs(self):
        """refresh_certs: OK, a new handshake shows the new certificate,
        a connection opened before goes on."""
        work = tempfile.mkdtemp(dir=CERTS.dir)
        os.chmod(work, 0o755)
        for ext in (".pem", ".key"):
            shutil.copy(CERTS.path("server" + ext),
                        os.path.join(work, "cur" + ext))
        srv = self.start(["-Z", "-o", "ssl_chain_cert=%s/cur.pem,"
                          "ssl_key=%s/cur.key" % (work, work)])
        self.addCleanup(srv.stop)
        old = tls_connect(srv.port)
        self.assertEqual(peer_serial(srv.port), SERIAL1)
        for ext in (".pem", ".key"):
            shutil.copy(CERTS.path("server2" + ext),
                        os.path.join(work, "cur" + ext))
        self.assertEqual(old.call(b"refresh_certs\r\n"), b"OK\r\n")
        self.assertEqual(peer_serial(srv.port), SERIAL2)
        self.assertEqual(old.call(b"refresh_certs noreply\r\nmn\r\n"),
                         b"MN\r\n")
        self.assertEqual(old.call(b"set k 0 0 1\r\nx\r\n"), b"STORED\r\n")
        old.close()


@unittest.skipIf(MEMCACHED is None, "memcached not installed")
class MemcachedAgreedTest(Agreed, unittest.TestCase):
    """The oracle passes the same script."""

    def start(self, args):
        return MemcachedTLS(args)


class CachedAgreedTest(Agreed, unittest.TestCase):
    def start(self, args):
        return CachedTLS(args)


class CachedTLSTest(unittest.TestCase):
    """What only cached is checked for."""

    @classmethod
    def setUpClass(cls):
        cls.srv = CachedTLS(CERTS.server_args() + ["-I", "2m", "-t", "2"],
                            notls=True)

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        if status != 0:
            raise AssertionError("cached exited with %d" % status)

    def stats(self):
        c = tls_connect(self.srv.port)
        try:
            return c.stats()
        finally:
            c.close()

    def test_plain_and_tls_listeners(self):
        """The TLS port speaks only TLS, the notls: port only plain text;
        plain text to the TLS port is a failed handshake."""
        before = int(self.stats()["ssl_handshake_errors"])
        p = plain_connect(self.srv.notls_port)
        self.assertEqual(p.call(b"set p 0 0 1\r\np\r\nget p\r\n"),
                         b"STORED\r\nVALUE p 0 1\r\np\r\nEND\r\n")
        p.close()
        p = plain_connect(self.srv.port)
        p.send(b"get p\r\n")
        got = p.read_until_closed()
        self.assertFalse(got.startswith(b"VALUE"), got)
        p.close()
        self.assertTrue(refused(self.srv.notls_port, CERTS.client_ctx()))
        c = tls_connect(self.srv.port)
        self.assertEqual(c.call(b"get p\r\n"),
                         b"VALUE p 0 1\r\np\r\nEND\r\n")
        st = c.stats()
        c.close()
        self.assertEqual(int(st["ssl_handshake_errors"]), before + 1)
        self.assertIn("time_since_server_cert_refresh", st)
        self.assertNotIn("ssl_new_sessions", st)    # no session cache

    def test_stats_settings(self):
        c = tls_connect(self.srv.port)
        st = c.stats(b"settings")
        c.close()
        self.assertEqual(st["ssl_enabled"], "yes")
        self.assertEqual(st["ssl_chain_cert"], CERTS.path("server.pem"))
        self.assertEqual(st["ssl_key"], CERTS.path("server.key"))
        self.assertEqual(st["ssl_verify_mode"], "0")
        self.assertEqual(st["ssl_keyformat"], "1")
        self.assertEqual(st["ssl_ciphers"], "NULL")
        self.assertEqual(st["ssl_ca_cert"], "NULL")
        self.assertEqual(st["ssl_session_cache"], "no")
        self.assertEqual(st["ssl_min_version"], "tlsv1.2")

    def test_protocols_and_large_values(self):
        """Text and meta commands, a pipeline of 2,000 gets, and 1 MB
        values written and read in one piece and a byte at a time."""
        c = tls_connect(self.srv.port)
        big = os.urandom(1 << 20)
        self.assertEqual(c.call(b"set big 5 0 %d\r\n%s\r\n" % (len(big), big)),
                         b"STORED\r\n")
        want = b"VALUE big 5 %d\r\n%s\r\nEND\r\n" % (len(big), big)
        self.assertEqual(c.call(b"get big\r\n"), want)
        # 8 MB arrive in 16 KB records: read them without common.py's
        # search of the whole reply after every chunk
        c.send(b"get big\r\n" * 8)
        got = bytearray()
        c.sock.settimeout(20 * TIME_SCALE)
        while len(got) < 8 * len(want):
            chunk = c.sock.recv(1 << 20)
            self.assertTrue(chunk, "closed after %d bytes" % len(got))
            got += chunk
        self.assertEqual(bytes(got), want * 8)
        self.assertEqual(c.call(b"ms m 2 T0\r\nhi\r\nmg m v f\r\n"),
                         b"HD\r\nVA 2 f0\r\nhi\r\n")
        self.assertEqual(c.call(b"set n 0 0 1\r\n1\r\n" +
                                b"incr n 1\r\n" * 2000),
                         b"STORED\r\n" + b"".join(b"%d\r\n" % i
                                                  for i in range(2, 2002)))
        self.assertTrue(c.send_bytes(b"set s 0 0 5\r\nhello\r\nget s\r\n"))
        self.assertEqual(c.call(b""), b"STORED\r\nVALUE s 0 5\r\nhello\r\n"
                         b"END\r\n")
        c.close()

    def test_cached_bench(self):
        """cached-bench --tls: 4 connections pipelining gets of 3 keys and
        sets, every reply as expected."""
        bench = os.path.join(os.environ.get("TOP_BUILDDIR", os.path.join(
            os.path.dirname(CACHED))), "bench", "cached-bench")
        if not os.access(bench, os.X_OK):
            self.skipTest("no cached-bench at %s" % bench)
        p = subprocess.run(
            [bench, "-p", str(self.srv.port), "--tls", "-c", "4", "-P", "8",
             "-k", "3", "-K", "500", "--preload", "-n", "20000", "-j", "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=60 * TIME_SCALE)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["errors"], 0, r)
        self.assertEqual(r["hit_ratio"], 1.0, r)


def half_closed_exchange(port, request, close_notify):
    """Sends request over TLS, then ends the client's side (close_notify
    and FIN, or FIN alone) and returns every decrypted byte the server
    sends until it closes.  A memory-BIO session over a plain socket, so
    the socket can be half-closed under it."""
    ctx = CERTS.client_ctx()
    raw = socket.create_connection(("127.0.0.1", port), 5 * TIME_SCALE)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")

    def pump():
        """Sends what the session wrote; false at the server's EOF."""
        if out.pending:
            raw.sendall(out.read())
        data = raw.recv(65536)
        if not data:
            inc.write_eof()
            return False
        inc.write(data)
        return True
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not pump():
                    raise AssertionError("closed during the handshake")
        obj.write(request)
        if close_notify:
            try:
                obj.unwrap()
            except ssl.SSLWantReadError:
                pass
        raw.sendall(out.read())
        raw.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            try:
                chunk = obj.read(65536)
            except ssl.SSLWantReadError:
                if not pump():
                    break
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if not chunk:
                break
            got += chunk
        return got
    finally:
        raw.close()


class CachedHalfCloseTest(unittest.TestCase):
    """A TLS client that ends its side after its requests gets every
    reply, as on a plain socket."""

    def test_half_close(self):
        srv = CachedTLS(CERTS.server_args())
        self.addCleanup(srv.stop)
        # replies far past the output queue's limit: the server reads
        # the end of input while most of them still wait
        v = os.urandom(200000)
        req = b"set a 0 0 %d\r\n%s\r\n" % (len(v), v) + b"get a\r\n" * 30
        want = b"STORED\r\n" + b"VALUE a 0 %d\r\n%s\r\nEND\r\n" % (
            len(v), v) * 30
        for close_notify in (True, False):
            with self.subTest(close_notify=close_notify):
                self.assertEqual(half_closed_exchange(srv.port, req,
                                                      close_notify), want)


class CachedReloadTest(unittest.TestCase):
    """Reloads that fail keep the old certificate; SIGHUP reloads."""

    def setUp(self):
        self.work = tempfile.mkdtemp(dir=CERTS.dir)
        self.install("server")
        self.log = open(os.path.join(self.work, "stderr"), "w+")
        self.srv = CachedTLS(["-v", "-Z", "-o", "ssl_chain_cert=%s/cur.pem,"
                              "ssl_key=%s/cur.key" % (self.work, self.work)],
                             stderr=self.log)

    def tearDown(self):
        status = self.srv.stop()
        self.log.close()
        self.assertEqual(status, 0)

    def install(self, cert, key=None):
        shutil.copy(CERTS.path(cert + ".pem"),
                    os.path.join(self.work, "cur.pem"))
        shutil.copy(CERTS.path((key or cert) + ".key"),
                    os.path.join(self.work, "cur.key"))

    def logged(self, text):
        """Waits until the server's stderr has text; true if it did."""
        def has():
            return text.encode() in read_log(self.log)
        return wait_for(has, 10) is not None

    def test_failed_refresh_keeps_old(self):
        c = tls_connect(self.srv.port)
        with open(os.path.join(self.work, "cur.pem"), "w") as f:
            f.write("garbage\n")
        got = c.call(b"refresh_certs\r\n")
        self.assertTrue(got.startswith(b"Error loading the certificate "
                                       b"chain: " + self.work.encode()), got)
        self.assertEqual(peer_serial(self.srv.port), SERIAL1)
        self.install("server2", "server")          # mismatched key
        got = c.call(b"refresh_certs noreply\r\n")
        self.assertTrue(got.startswith(b"Error loading the key: "), got)
        self.assertTrue(got.endswith(b"\r\n") and got.count(b"\r\n") == 1)
        self.assertEqual(peer_serial(self.srv.port), SERIAL1)
        self.assertEqual(c.call(b"mn\r\n"), b"MN\r\n")
        c.close()

    def test_sighup(self):
        c = tls_connect(self.srv.port)
        self.install("server2")
        os.kill(self.srv.pid, signal.SIGHUP)
        self.assertTrue(self.logged("TLS certificates reloaded"))
        self.assertEqual(peer_serial(self.srv.port), SERIAL2)
        with open(os.path.join(self.work, "cur.key"), "w") as f:
            f.write("garbage\n")
        os.kill(self.srv.pid, signal.SIGHUP)
        self.assertTrue(self.logged("TLS certificates not reloaded, old "
                                    "ones kept: Error loading the key"))
        self.assertEqual(peer_serial(self.srv.port), SERIAL2)
        self.assertEqual(c.call(b"mn\r\n"), b"MN\r\n")    # opened before
        c.close()


class CachedStartTest(unittest.TestCase):
    """Certificates that cannot be used stop cached at start."""

    def start(self, *args):
        p = subprocess.run([CACHED, "-U", "0", "-p", "0"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20 * TIME_SCALE)
        return p.returncode, p.stderr.decode()

    def test_errors(self):
        cases = [
            (["-Z"], 64, "-Z needs -o ssl_chain_cert"),
            (["-Z", "-o", "ssl_chain_cert=/nonexistent.pem"], 78,
             "Error loading the certificate chain: /nonexistent.pem"),
            (CERTS.server_args() + ["-o", "ssl_key=" +
                                    CERTS.path("server2.key")], 78,
             "Error loading the key"),
            (CERTS.server_args(extra=["ssl_ca_cert=/nonexistent"]), 78,
             "Error loading the CA certificate"),
            (CERTS.server_args(extra=["ssl_ciphers=NOPE"]), 78,
             "Error setting the provided cipher(s): NOPE"),
            (CERTS.server_args(extra=["ssl_verify_mode=4"]), 64,
             "bad ssl_verify_mode"),
            (CERTS.server_args(extra=["ssl_keyformat=ENGINE"]), 64,
             "bad ssl_keyformat"),
        ]
        for args, status, text in cases:
            with self.subTest(args=args):
                got, err = self.start(*args)
                self.assertEqual(got, status, err)
                self.assertIn(text, err)

    def test_der_key(self):
        der = os.path.join(CERTS.dir, "server.der")
        if not os.path.exists(der):
            run(OPENSSL, "pkey", "-in", CERTS.path("server.key"),
                "-outform", "DER", "-out", der)
        srv = CachedTLS(["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s,"
                         "ssl_keyformat=DER" % (CERTS.path("server.pem"),
                                                der)])
        try:
            self.assertEqual(peer_serial(srv.port), SERIAL1)
        finally:
            self.assertEqual(srv.stop(), 0)


def client_hello():
    """The bytes of a TLS ClientHello, made by the ssl module."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class CachedHostileTest(unittest.TestCase):
    """Clients that break the handshake cost one connection slot each,
    are closed by idle_timeout, and never stop others being served."""
    T = 2   # idle_timeout

    def served(self, srv):
        c = tls_connect(srv.port)
        try:
            return c.call(b"set h 0 0 2\r\nok\r\nget h\r\n") == \
                b"STORED\r\nVALUE h 0 2\r\nok\r\nEND\r\n"
        finally:
            c.close()

    def test_garbage_and_cut_handshakes(self):
        srv = CachedTLS(CERTS.server_args() + ["-o", "idle_timeout=%d"
                                               % self.T])
        self.addCleanup(srv.stop)
        hello = client_hello()
        self.assertGreater(len(hello), 100)
        # garbage: a failed handshake, the connection closed
        for junk in (b"\x00" * 1000, b"GET / HTTP/1.1\r\n\r\n",
                     b"\x16\x03\x01\xff\xff" + os.urandom(2000),
                     hello[:5] + os.urandom(len(hello) - 5)):
            p = plain_connect(srv.port)
            p.send_bytes(junk, len(junk))
            self.assertTrue(p.read_until_closed(limit=65536).endswith(CLOSED))
            p.close()
        # a ClientHello cut in the middle, then the client goes
        p = plain_connect(srv.port)
        p.send(hello[:len(hello) // 2])
        p.close()
        self.assertTrue(self.served(srv))
        # cut and left, trickled and left, silent: closed by idle_timeout
        socks = []
        for data in (hello[:len(hello) // 2], hello[:7], b""):
            p = plain_connect(srv.port)
            p.send_bytes(data, 3)
            socks.append((p, time.monotonic()))
        for p, t0 in socks:
            self.assertTrue(p.read_until_closed(self.T + 4).endswith(CLOSED))
            took = time.monotonic() - t0
            self.assertLess(took, (self.T + 3) * TIME_SCALE)
            p.close()
        c = tls_connect(srv.port)
        st = c.stats()
        c.close()
        self.assertEqual(int(st["ssl_handshake_errors"]), 5, st)
        self.assertGreaterEqual(int(st["idle_kicks"]), 3)
        self.assertTrue(self.served(srv))

    def test_thousand_idle_tls_connections(self):
        """1,000 silent connections and 100 with half a ClientHello on a
        TLS port: a TLS client is served meanwhile, memory stays bounded,
        and they all go when closed."""
        n, half = 1000, 100
        limit = raise_nofile(n + half + 200)
        if limit < n + half + 100:
            self.skipTest("descriptor limit %d" % limit)
        srv = CachedTLS(CERTS.server_args() + ["-c", str(n + half + 50),
                                               "-t", "2"])
        self.addCleanup(srv.stop)
        self.assertTrue(self.served(srv))
        rss0 = rss_kib(srv.pid)
        hello = client_hello()
        socks = []
        try:
            for i in range(n + half):
                s = socket.create_connection(("127.0.0.1", srv.port),
                                             5 * TIME_SCALE)
                if i >= n:
                    s.sendall(hello[:len(hello) // 2])
                socks.append(s)
            c = tls_connect(srv.port)
            ok = 0
            for i in range(200):
                if c.call(b"set k%d 0 0 1\r\nx\r\nget k%d\r\n" % (i, i)) == \
                        b"STORED\r\nVALUE k%d 0 1\r\nx\r\nEND\r\n" % i:
                    ok += 1
            st = c.stats()
            c.close()
            self.assertEqual(ok, 200)
            self.assertGreaterEqual(int(st["curr_connections"]), n + half + 1)
            grew = rss_kib(srv.pid) - rss0
            print("%d idle + %d half-handshake TLS connections: RSS grew "
                  "%d KiB (%.1f KiB each)" % (n, half, grew,
                                              grew / (n + half)))
            if not INSTRUMENTED:
                self.assertLess(grew, 64 * (n + half))
        finally:
            for s in socks:
                s.close()

        def drained():
            c = tls_connect(srv.port)
            try:
                return int(c.stats()["curr_connections"]) == 1
            finally:
                c.close()
        self.assertIsNotNone(wait_for(drained, 10))
        self.assertTrue(self.served(srv))

    def test_never_reading_client_dropped(self):
        """write_timeout over TLS: a client that asks for 200 MB and reads
        nothing is dropped (progress is measured in TLS records against
        SIOCOUTQ), with the server's memory bounded meanwhile."""
        srv = CachedTLS(CERTS.server_args() + ["-o", "write_timeout=2",
                                               "-I", "2m", "-t", "2"])
        self.addCleanup(srv.stop)
        c = tls_connect(srv.port)
        big = b"x" * (1 << 20)
        self.assertEqual(c.call(b"set big 0 0 %d\r\n%s\r\n"
                                % (len(big), big)), b"STORED\r\n")
        rss0 = rss_kib(srv.pid)
        c.sock.settimeout(0.5)
        sent = 0
        try:
            for _ in range(200):
                c.sock.sendall(b"get big\r\n")
                sent += 1
        except (socket.timeout, ssl.SSLError, OSError):
            pass

        def kicked():
            o = tls_connect(srv.port)
            try:
                return int(o.stats()["output_kicks"]) >= 1
            finally:
                o.close()
        took = wait_for(kicked, 15)
        grew = rss_kib(srv.pid) - rss0
        c.close()
        print("never-reading TLS client (%d gets of 1 MB sent): dropped "
              "after %.1f s, RSS grew %d KiB" % (sent, took or -1, grew))
        self.assertIsNotNone(took, "never-reading TLS client not dropped")
        if not INSTRUMENTED:
            self.assertLess(grew, 32 * 1024)
        self.assertTrue(self.served(srv))

    def test_renegotiation_refused(self):
        """A TLS 1.2 client asking to renegotiate (s_client's R) is
        refused; the server goes on serving."""
        srv = CachedTLS(CERTS.server_args())
        self.addCleanup(srv.stop)
        p = subprocess.Popen(
            [OPENSSL, "s_client", "-tls1_2", "-connect",
             "127.0.0.1:%d" % srv.port, "-CAfile", CERTS.path("ca.pem")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        out = []
        seen = threading.Event()

        def read():
            for chunk in iter(lambda: p.stdout.read1(4096), b""):
                out.append(chunk)
                if b"VERSION" in b"".join(out):
                    seen.set()
            seen.set()
        reader = threading.Thread(target=read)
        reader.start()
        try:
            p.stdin.write(b"version\n")
            p.stdin.flush()
            # s_client takes a read that starts with R as "renegotiate":
            # sent once the reply to version is in, it is a read of its own
            self.assertTrue(seen.wait(20 * TIME_SCALE))
            p.stdin.write(b"R\n")
            p.stdin.flush()
            p.wait(20 * TIME_SCALE)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            p.kill()
            p.wait()
        finally:
            reader.join(10 * TIME_SCALE)
            p.stdin.close()
            p.stdout.close()
        text = b"".join(out)
        self.assertIn(b"RENEGOTIATING", text)
        self.assertIn(b"no renegotiation", text)
        self.assertTrue(self.served(srv))


if __name__ == "__main__":
    missing = [name for name, ok in (("openssl", OPENSSL),
                                     ("pymemcache", pymc),
                                     ("memcached", MEMCACHED)) if not ok]
    if missing:
        print("SKIP: %s not installed" % ", ".join(missing), file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
