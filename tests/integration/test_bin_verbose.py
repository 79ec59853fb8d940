#!/usr/bin/env python3
"""-vv for binary connections: the same binary requests to cached -vv and
to memcached 1.6.18 -vv (the oracle) log the same lines: each request's
header dump ("<fd Read binary protocol data:" and six rows of bytes), the
command's own line ("<fd GET k", "<fd SET k Value len is 3", "Deleting
k", "incr k 1, 0, 0", "<fd STATS "...), ">fd Writing an error: Not found"
and each response's header dump.  Compared with fd numbers normalised and
the CAS rows of response dumps masked: cached dumps the CAS it sends,
memcached's dump of a get hit shows 0 (it fills the CAS in after
dumping), and the two count CAS values apart.  memcached missing makes the
comparison skip.
"""
import os
import re
import shutil
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import TIME_SCALE, read_log, wait_for  # noqa: E402
import binproto as bp  # noqa: E402
import serverctl  # noqa: E402

MEMCACHED = os.environ.get("MEMCACHED", shutil.which("memcached"))

REQUESTS = [
    bp.store("SET", b"k", b"abc", flags=5),
    bp.frame("GET", b"k"), bp.frame("GET", b"nope"),
    bp.frame("GETK", b"k"), bp.frame("GETK", b"nope"),
    bp.frame("GETQ", b"nope"), bp.frame("GETKQ", b"k"),
    bp.store("ADD", b"k", b"x"), bp.store("REPLACE", b"nope", b"x"),
    bp.store("SETQ", b"q", b"quiet"), bp.store("ADDQ", b"q", b"x"),
    bp.frame("APPEND", b"k", value=b"de"),
    bp.frame("PREPEND", b"k", value=b"_"),
    bp.frame("APPEND", b"nope", value=b"x"),
    bp.frame("DELETE", b"q"), bp.frame("DELETE", b"q"),
    bp.frame("DELETEQ", b"nope"),
    bp.arith("INCR", b"n", 5, 10), bp.arith("INCR", b"n", 5, 10),
    bp.arith("DECR", b"n", 3), bp.arith("INCR", b"k", 1),
    bp.arith("INCR", b"none", 1, exptime=0xffffffff),
    bp.touch("TOUCH", b"k", 100), bp.touch("TOUCH", b"nope", 100),
    bp.touch("GAT", b"k", 100), bp.touch("GATK", b"k", 100),
    bp.touch("GATQ", b"nope", 100),
    bp.store("SET", b"a\x01b", b"ctl"), bp.frame("GET", b"a\x01b"),
    bp.frame("STAT", b"nosuchgroup"),
    bp.flush(), bp.frame("NOOP"),
    bp.frame(0x50),                     # unknown opcode, no body
    bp.frame("QUIT"),
]


def conversation(port):
    """Sends each request on one connection, waiting for its replies (a
    NOOP after each quiet one), until QUIT closes it."""
    s = socket.create_connection(("127.0.0.1", port), 5 * TIME_SCALE)
    s.settimeout(5 * TIME_SCALE)
    try:
        for r in REQUESTS:
            if r[1] == 0x07:
                s.sendall(r)
                while s.recv(65536):
                    pass
                break
            s.sendall(r + bp.sentinel())
            bp.read_reply(s, 5 * TIME_SCALE)
    finally:
        s.close()
    return True


def lines_of(log):
    """The lines of the binary connection in a -vv log, fds as N, the
    sentinels' (NOOP) dumps left out, response CAS rows masked."""
    m = re.search(rb"(?m)^(\d+): Client using the binary protocol$", log)
    assert m, log
    fd = m.group(1)
    lines = log.split(b"\n")
    # the fd may have served a launcher's probe before: start at the
    # connection that went binary
    at = lines.index(m.group(0))
    start = max(i for i in range(at) if lines[i] == b"<" + fd +
                b" new auto-negotiating client connection")
    out = []
    for line in lines[start:]:
        if re.match(rb"^[<>]?\d", line) and \
                not re.match(rb"^([<>]?)" + fd + rb"\b", line):
            continue
        out.append(re.sub(rb"^([<>]?)\d+", rb"\1N", line))
        if line == b"<" + fd + b" connection closed.":
            break
    # drop each sentinel's request and response dumps (7 lines each)
    noop_req = [b"<N Read binary protocol data:",
                b"<N    0x80 0x0a 0x00 0x00"]
    noop_resp = [b">N Writing bin response:", b">N   0x81 0x0a 0x00 0x00"]
    res = []
    i = 0
    while i < len(out):
        if out[i:i + 2] in (noop_req, noop_resp) and \
                out[i + 4].endswith(b"0x%02x 0x%02x 0x%02x 0x%02x" %
                                    tuple(bp.SENTINEL_OPAQUE.to_bytes(
                                        4, "big"))):
            i += 7
            continue
        res.append(out[i])
        i += 1
    # mask the CAS rows (the 5th and 6th) of response dumps
    for i, line in enumerate(res):
        if line == b">N Writing bin response:":
            res[i + 5] = res[i + 6] = b">N   <cas>"
    return res


def run(server_args, binary, kind):
    with tempfile.TemporaryFile() as err:
        srv = serverctl.ServerProcess(binary, ["-vv", "-t", "1"] +
                                      server_args, kind=kind, stderr=err,
                                      time_scale=TIME_SCALE)
        srv.start()
        try:
            conversation(srv.port)

            def closed():
                return re.search(rb"Client using the binary protocol"
                                 rb"(.|\n)*connection closed\.",
                                 read_log(err)) is not None or None
            assert wait_for(closed, 5 * TIME_SCALE)
        finally:
            srv.stop()
        return lines_of(read_log(err))


class BinaryVerboseTest(unittest.TestCase):
    def test_lines_as_cached_logs_them(self):
        ours = run([], os.environ.get("CACHED", "./cached"), "cached")
        self.assertIn(b"<N SET k Value len is 3", ours)
        self.assertIn(b">N Writing an error: Not found", ours)
        self.assertIn(b"Deleting q", ours)
        self.assertIn(b"incr n 5, 10, 0", ours)
        # control bytes of a key are escaped, as in the text log
        self.assertIn(b"<N GET a\\x01b", ours)

    @unittest.skipIf(MEMCACHED is None, "memcached (the oracle) not "
                     "installed")
    def test_lines_match_memcached(self):
        ours = run([], os.environ.get("CACHED", "./cached"), "cached")
        theirs = run([], MEMCACHED, "memcached")
        # memcached writes a key's bytes raw
        theirs = [ln.replace(b"a\x01b", b"a\\x01b") for ln in theirs]
        self.assertEqual(ours, theirs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
