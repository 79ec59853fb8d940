"""memcached's binary protocol for the Python tests: request framing,
a reply reader that stops at a sentinel, and a lossless rendering of
reply frames (one line per frame) that the differential test compares.

Spec: ../shared/reference/memcached-protocol-binary.txt.  A frame is a
24-byte header (magic, opcode, key length, extras length, data type,
status or vbucket, total body length, opaque, CAS; big-endian) and a
body of extras, key and value.  Standard library only.
"""
import socket
import struct
import time

REQ, RES = 0x80, 0x81
HEADER = struct.Struct(">BBHBBHIIQ")

OP = dict(
    GET=0x00, SET=0x01, ADD=0x02, REPLACE=0x03, DELETE=0x04, INCR=0x05,
    DECR=0x06, QUIT=0x07, FLUSH=0x08, GETQ=0x09, NOOP=0x0a, VERSION=0x0b,
    GETK=0x0c, GETKQ=0x0d, APPEND=0x0e, PREPEND=0x0f, STAT=0x10, SETQ=0x11,
    ADDQ=0x12, REPLACEQ=0x13, DELETEQ=0x14, INCRQ=0x15, DECRQ=0x16,
    QUITQ=0x17, FLUSHQ=0x18, APPENDQ=0x19, PREPENDQ=0x1a, VERBOSITY=0x1b,
    TOUCH=0x1c, GAT=0x1d, GATQ=0x1e, SASL_LIST_MECHS=0x20, SASL_AUTH=0x21,
    SASL_STEP=0x22, GATK=0x23, GATKQ=0x24)
OPNAME = {v: k for k, v in OP.items()}

# The sentinel: a NOOP with an opaque no case uses; its reply ends a read.
SENTINEL_OPAQUE = 0x5e471e1
CLOSED = b"<CLOSED>"
TIMEOUT = b"<TIMEOUT>"


def frame(op, key=b"", extras=b"", value=b"", opaque=0, cas=0, magic=REQ,
          keylen=None, extlen=None, bodylen=None, datatype=0, vbucket=0):
    """One request; keylen, extlen and bodylen may be forced to lie."""
    if isinstance(op, str):
        op = OP[op]
    body = extras + key + value
    return HEADER.pack(
        magic, op, len(key) if keylen is None else keylen,
        len(extras) if extlen is None else extlen, datatype, vbucket,
        len(body) if bodylen is None else bodylen, opaque, cas) + body


def store(op, key, value, flags=0, exptime=0, cas=0, opaque=0):
    """SET/ADD/REPLACE(Q): extras are flags and expiration."""
    return frame(op, key, struct.pack(">II", flags, exptime), value,
                 opaque=opaque, cas=cas)


def arith(op, key, delta=1, initial=0, exptime=0, opaque=0, cas=0):
    """INCR/DECR(Q): delta, initial value, expiration (0xffffffff: do not
    create the item when it is missing)."""
    return frame(op, key, struct.pack(">QQI", delta, initial, exptime),
                 opaque=opaque, cas=cas)


def touch(op, key, exptime, opaque=0):
    """TOUCH/GAT(Q)(K): extras are the new expiration."""
    return frame(op, key, struct.pack(">I", exptime), opaque=opaque)


def flush(op="FLUSH", delay=None, opaque=0):
    return frame(op, extras=b"" if delay is None else
                 struct.pack(">I", delay), opaque=opaque)


def sentinel():
    return frame("NOOP", opaque=SENTINEL_OPAQUE)


def split_frames(data):
    """Parses reply frames; returns (frames, leftover bytes).  A frame is
    a dict of header fields plus extras, key and value."""
    frames = []
    pos = 0
    while len(data) - pos >= 24:
        (magic, op, keylen, extlen, dtype, status, bodylen, opaque,
         cas) = HEADER.unpack_from(data, pos)
        if len(data) - pos - 24 < bodylen:
            break
        body = data[pos + 24:pos + 24 + bodylen]
        frames.append(dict(magic=magic, op=op, keylen=keylen, extlen=extlen,
                           datatype=dtype, status=status, bodylen=bodylen,
                           opaque=opaque, cas=cas, extras=body[:extlen],
                           key=body[extlen:extlen + keylen],
                           value=body[extlen + keylen:]))
        pos += 24 + bodylen
    return frames, data[pos:]


def read_reply(sock, timeout=2.0):
    """Reads reply frames until the sentinel's NOOP reply (left out),
    the server closing (CLOSED appended) or timeout seconds (TIMEOUT
    appended: the server took the sentinel as part of a request).
    Returns the raw bytes."""
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        frames, rest = split_frames(out)
        if frames and frames[-1]["opaque"] == SENTINEL_OPAQUE and \
                frames[-1]["op"] == OP["NOOP"] and not rest:
            # an error answering the sentinel (SASL's "Auth failure.")
            # is kept: the reply ends there all the same
            return out[:-24] if frames[-1]["status"] == 0 else out
        left = deadline - time.monotonic()
        if left <= 0:
            return out + TIMEOUT
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        except socket.timeout:
            continue
        if not chunk:
            return out + CLOSED
        out += chunk


def render(data, cas_map=None):
    """A lossless text form of reply bytes, one line per frame, with
    non-zero CAS values replaced by their order of first appearance
    (<cas1>, <cas2>...: two replies carrying the same CAS still show it)
    and trailing bytes, CLOSED and TIMEOUT kept."""
    if cas_map is None:
        cas_map = {}
    tail = b""
    for marker in (CLOSED, TIMEOUT):
        if data.endswith(marker):
            data, tail = data[:-len(marker)], marker
    frames, rest = split_frames(data)
    lines = []
    for f in frames:
        cas = f["cas"]
        if cas:
            cas = "<cas%d>" % cas_map.setdefault(cas, len(cas_map) + 1)
        lines.append(
            "%02x %s st=%04x dt=%02x op=%08x cas=%s x=%s k=%r v=%r" % (
                f["magic"], OPNAME.get(f["op"], "%02x" % f["op"]),
                f["status"], f["datatype"], f["opaque"], cas,
                f["extras"].hex(), f["key"], f["value"]))
    if rest:
        lines.append("partial %r" % rest)
    if tail:
        lines.append(tail.decode())
    return "\n".join(lines)


class BinClient:
    """A binary-protocol connection for tests: call() sends requests and
    the sentinel and returns the reply frames before the sentinel's."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout

    def close(self):
        self.sock.close()

    def call_raw(self, data, timeout=None):
        self.sock.sendall(data + sentinel())
        return read_reply(self.sock, timeout or self.timeout)

    def call(self, data, timeout=None):
        raw = self.call_raw(data, timeout)
        frames, rest = split_frames(raw)
        assert not rest, "trailing bytes or close: %r" % rest[:100]
        return frames

    def stats(self, group=b""):
        frames = self.call(frame("STAT", group))
        return {f["key"].decode(): f["value"].decode()
                for f in frames if f["key"]}
