"""The binary protocol corpus of the differential test (issue 12):
requests for every opcode memcached 1.6.18 serves, quiet pipelines, CAS
races, lying lengths, bad magic and unknown opcodes.

BIN is a list of cases; test_bin_differential.py sends each to cached and
to memcached on a new binary connection to a freshly flushed server
(whole, split at every byte when short, and the safe ones pipelined) and
compares the replies after normalise() below.  A case is either bytes or
a tuple of parts: bytes, and Cas(i, delta) placeholders that stand for
the 8-byte CAS field of the next frame, filled with the i-th non-zero CAS
the server sent on this connection so far (plus delta), so a case can
replay a CAS it was given (a race: read, someone else writes, write with
the stale CAS).  Before a placeholder the harness waits for the replies
so far.

Normalisation, applied to both servers' replies (binproto.render):
  - non-zero CAS values become <cas>: two servers with different
    histories count differently, and cached's CAS values are unique per
    key, not across keys (memcached's one counter gives every item a new
    value; clients compare a key's CAS only with that key's).  What a CAS
    means is tested by the cases that send one back (Cas placeholders):
    their statuses are compared exactly;
  - STAT replies with a key (one statistic each) are left out: values
    and the set of names are the servers' own, and memcached keeps
    flushed items (so "items" and "slabs" groups) until it crawls them;
    the terminating empty STAT reply and errors stay exact
    (test_bin_differential.test_stat_names checks the names);
  - VERSION's body becomes <version> (test_bin_differential checks it
    separately: memcached's release, then "-cached-").
Every other byte (status, opaque, extras, key, value, error text, datatype,
the connection closing) is compared exactly.

BIN_DIFFERENCES lists the requests whose replies differ on purpose, with
memcached's normalised reply, cached's and why.
"""
import collections
import re
import struct

from binproto import (OPNAME, arith, flush, frame, render, store,
                      touch)

Cas = collections.namedtuple("Cas", "index delta")
Cas.__new__.__defaults__ = (-1, 0)

# Requests no longer than this are also sent one byte per send().
BIN_SPLIT_MAX = 400


def hdr(op, **kw):
    """A request header alone (no body), for cases that lie about it."""
    return frame(op, **kw)[:24]


def with_cas(op, *parts, **kw):
    """A request whose CAS field is a placeholder: returns the tuple
    (header up to the CAS, Cas, body)."""
    cas = kw.pop("cas", Cas())
    data = op(*parts, **kw) if callable(op) else frame(op, *parts, **kw)
    return (data[:16], cas, data[24:])


def case(*parts):
    """Joins parts into one case: bytes when there are no placeholders."""
    flat = []
    for p in parts:
        flat.extend(p if isinstance(p, tuple) else (p,))
    if all(isinstance(p, bytes) for p in flat):
        return b"".join(flat)
    merged = []
    for p in flat:
        if isinstance(p, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += p
        else:
            merged.append(p)
    return tuple(merged)


K = b"k"
SETK = store("SET", K, b"hello", flags=5)
SETN = store("SET", b"n", b"10")
NOOP = frame("NOOP")
GETS = ("GET", "GETQ", "GETK", "GETKQ")
STORES = ("SET", "ADD", "REPLACE", "SETQ", "ADDQ", "REPLACEQ")
GATS = ("GAT", "GATQ", "GATK", "GATKQ")
U32 = 0xffffffff
U64 = 0xffffffffffffffff

BIN = []

# --- retrieval: every get on a miss and on a hit, with an opaque ---
for op in GETS:
    BIN.append(frame(op, K, opaque=0x1234) + NOOP)
    BIN.append(SETK + frame(op, K, opaque=0xabcdef01) + NOOP)
    BIN.append(store("SET", K, b"", flags=U32) + frame(op, K) + NOOP)
BIN += [
    frame("GET", b"a" * 250),
    store("SET", b"a" * 250, b"v") + frame("GETK", b"a" * 250),
    # a value holding protocol bytes (text and binary) is only data
    store("SET", K, b"x\r\nflush_all\r\n" + frame("FLUSH")) +
    store("SET", b"other", b"o") + frame("GET", K) + frame("GET", b"other"),
    store("SET", K, bytes(range(256)) * 4) + frame("GETK", K),
    store("SET", K, b"v" * 100000) + frame("GET", K),
]

# --- storage: each command on a miss and a hit, with exptimes ---
for op in STORES:
    BIN.append(store(op, K, b"new", flags=7, opaque=9) + frame("GETK", K) +
               NOOP)
    BIN.append(SETK + store(op, K, b"new", flags=7, opaque=9) +
               frame("GETK", K) + NOOP)
for exp in (0, 100, 2592000, 2592001, U32, 0x7fffffff, 0x80000000):
    BIN.append(store("SET", K, b"v", exptime=exp) + frame("GET", K))
BIN += [
    store("SET", K, b"", flags=0) + frame("GET", K),
    store("SET", K, b"v", flags=0x80000000) + frame("GETK", K),
    store("SETQ", K, b"a") + store("SETQ", K, b"b") + frame("GET", K),
    store("ADD", K, b"a") + store("ADD", K, b"b") + frame("GET", K),
    store("ADDQ", K, b"a") + store("ADDQ", K, b"b") + NOOP + frame("GET", K),
    store("REPLACEQ", K, b"a") + NOOP,
    # over the item size limit: "Too large.", the value swallowed
    store("SET", K, b"v" * (2 << 20)) + frame("GET", K),
    store("SETQ", K, b"v" * (2 << 20)) + NOOP,
    store("SET", K, b"v" * (2 << 20)) + store("SET", K, b"ok") +
    frame("GET", K),
    # a stored value is replaced by a too-large one: the old one is gone
    SETK + store("SET", K, b"v" * (2 << 20)) + frame("GET", K),
]

# --- CAS: stores and deletes with the right, a stale and a random CAS ---
for op in ("SET", "REPLACE", "SETQ", "REPLACEQ", "APPEND", "PREPEND",
           "DELETE", "DELETEQ"):
    mk = (lambda o: (lambda *a, **kw: frame(o, K, **kw))) \
        if op.startswith("DELETE") else \
        (lambda o: (lambda *a, **kw: frame(o, K, b"", b"+", **kw))) \
        if op in ("APPEND", "PREPEND") else \
        (lambda o: (lambda *a, **kw: store(o, K, b"c", **kw)))
    build = mk(op)
    BIN.append(case(SETK, with_cas(build), frame("GETK", K), NOOP))
    BIN.append(case(SETK, with_cas(build, cas=Cas(-1, 1)), frame("GETK", K),
                    NOOP))
    BIN.append(build(cas=0x1234567) + frame("GETK", K) + NOOP)
    # the race: read a CAS, the item changes, write with the stale CAS
    BIN.append(case(SETK, frame("GET", K), store("SET", K, b"other"),
                    with_cas(build, cas=Cas(0, 0)), frame("GETK", K), NOOP))
BIN += [
    case(SETK, with_cas("GET", K), NOOP),
    store("ADD", K, b"v", cas=1),
    case(SETK, with_cas(lambda **kw: store("ADD", K, b"v", **kw))),
    # a CAS write then a write with the CAS it returned
    case(SETK, with_cas(lambda **kw: store("SET", K, b"a", **kw)),
         with_cas(lambda **kw: store("SET", K, b"b", **kw)),
         frame("GET", K)),
    # a touch changes the item's CAS in memcached? (it does not)
    case(SETK, touch("TOUCH", K, 100), with_cas(
        lambda **kw: store("SET", K, b"a", **kw), cas=Cas(0, 0))),
    # incr returns a CAS; a write with it succeeds, with the old one not
    case(SETN, arith("INCR", b"n", 1),
         with_cas(lambda **kw: store("SET", b"n", b"x", **kw), cas=Cas(0))),
    case(SETN, arith("INCR", b"n", 1),
         with_cas(lambda **kw: arith("INCR", b"n", 1, **kw))),
    case(SETN, with_cas(lambda **kw: arith("DECR", b"n", 1, **kw),
                        cas=Cas(-1, 5))),
]

# --- delete ---
BIN += [
    frame("DELETE", K), frame("DELETEQ", K) + NOOP,
    SETK + frame("DELETE", K) + frame("GET", K),
    SETK + frame("DELETEQ", K) + frame("GET", K),
    SETK + frame("DELETE", K, extras=b"\0\0\0\0"),
    frame("DELETE", K, value=b"junk"),
]

# --- incr / decr with initial, no-create, wrap, non-numeric ---
for op in ("INCR", "DECR", "INCRQ", "DECRQ"):
    BIN += [
        arith(op, b"n", 5, 42) + frame("GET", b"n") + NOOP,
        arith(op, b"n", 5, 42, exptime=U32) + frame("GET", b"n") + NOOP,
        SETN + arith(op, b"n", 3, 42) + frame("GET", b"n") + NOOP,
        arith(op, b"n", 1, U64) + arith(op, b"n", 1, 0) + NOOP,
        store("SET", b"n", b"abc") + arith(op, b"n", 1) + NOOP,
        store("SET", b"n", b"18446744073709551615") + arith(op, b"n", 1) +
        frame("GET", b"n") + NOOP,
    ]
BIN += [
    arith("INCR", b"n", 0, 7, exptime=100) + arith("INCR", b"n", U64),
    store("SET", b"n", b"0") + arith("DECR", b"n", 1),
    store("SET", b"n", b"100") + arith("DECR", b"n", 1) + frame("GET", b"n"),
    store("SET", b"n", b"9") + arith("INCR", b"n", 1) + frame("GET", b"n"),
    store("SET", b"n", b" 12") + arith("INCR", b"n", 1),
    store("SET", b"n", b"12 ") + arith("INCR", b"n", 1),
    store("SET", b"n", b"") + arith("INCR", b"n", 1),
    store("SET", b"n", b"-1") + arith("INCR", b"n", 1),
    store("SET", b"n", b"1" * 21) + arith("INCR", b"n", 1),
    store("SET", b"n", b"5", flags=3) + arith("INCR", b"n", 1) +
    frame("GETK", b"n"),
    arith("INCR", b"n", 1, 5, exptime=U32 - 1) + frame("GET", b"n"),
    # wrong extras length: invalid arguments
    frame("INCR", b"n", extras=b"\0" * 8),
    frame("INCR", b"n"),
    frame("DECR", b"n", extras=b"\0" * 20, value=b"x"),
]

# --- append / prepend ---
for op in ("APPEND", "PREPEND", "APPENDQ", "PREPENDQ"):
    BIN += [
        frame(op, K, value=b"+") + frame("GET", K) + NOOP,
        SETK + frame(op, K, value=b"+") + frame("GETK", K) + NOOP,
        SETK + frame(op, K, value=b"") + frame("GET", K) + NOOP,
        SETK + frame(op, K, extras=b"\0" * 8, value=b"+") + NOOP,
    ]
BIN += [
    SETK + frame("APPEND", K, value=b"\r\nEND\r\n") +
    frame("PREPEND", K, value=b"\x80\x00") + frame("GET", K),
    SETK + frame("APPEND", K, value=b"v" * (2 << 20)) + frame("GET", K),
]

# --- touch and get-and-touch ---
for op in ("TOUCH",) + GATS:
    BIN += [
        touch(op, K, 100) + NOOP,
        SETK + touch(op, K, 100, opaque=77) + frame("GETK", K) + NOOP,
        SETK + touch(op, K, U32) + frame("GET", K) + NOOP,
        SETK + frame(op, K) + NOOP,
        SETK + frame(op, K, extras=b"\0" * 8) + NOOP,
    ]
BIN += [
    store("SET", K, b"v", exptime=100) + touch("GAT", K, 0) +
    frame("GET", K),
]

# --- flush with and without delay, quiet ---
BIN += [
    SETK + flush() + frame("GET", K),
    SETK + flush("FLUSHQ") + frame("GET", K),
    SETK + flush("FLUSHQ") + NOOP,
    SETK + flush("FLUSH", 0) + frame("GET", K),
    SETK + flush("FLUSH", 100) + frame("GET", K),
    SETK + flush("FLUSHQ", 100) + frame("GET", K),
    SETK + flush("FLUSH", U32) + frame("GET", K),
    flush("FLUSH", 100) + SETK + frame("GET", K),
    SETK + frame("FLUSH", extras=b"\0\0") + frame("GET", K),
    SETK + frame("FLUSH", K) + frame("GET", K),
]

# --- noop, version, verbosity, quit ---
BIN += [
    NOOP, NOOP * 3, frame("NOOP", opaque=U32),
    frame("VERSION", opaque=5),
    frame("NOOP", K),
    frame("VERSION", value=b"x"),
    frame("QUIT"), frame("QUITQ"),
    frame("QUIT", opaque=3) + frame("GET", K),
    SETK + frame("QUITQ") + frame("GET", K),
    frame("QUIT", K),
]

# --- stat groups ---
for group in (b"", b"settings", b"items", b"slabs", b"conns", b"sizes",
              b"nonsense", b"detail dump", b"reset"):
    BIN.append(frame("STAT", group, opaque=21))

# --- quiet pipelines ended by a NOOP ---
keys = [b"q%d" % i for i in range(20)]
BIN += [
    b"".join(store("SETQ", k, k * 3, flags=i) for i, k in
             enumerate(keys)) + b"".join(frame("GETKQ", k) for k in
                                         keys + [b"miss"]) + NOOP,
    b"".join(store("SETQ", k, k) for k in keys[:5]) +
    b"".join(frame("GETQ", k, opaque=i) for i, k in enumerate(keys)) +
    frame("NOOP", opaque=99),
    b"".join(store("ADDQ", k, k) for k in keys[:3] * 2) + NOOP,
    b"".join(frame("DELETEQ", k) for k in keys[:3]) + NOOP,
    b"".join(store("SETQ", k, b"1") for k in keys[:3]) +
    b"".join(arith("INCRQ", k, 2) for k in keys[:4]) +
    b"".join(frame("GETKQ", k) for k in keys[:4]) + NOOP,
    b"".join(frame("GETKQ", b"m%d" % i) for i in range(100)) + NOOP,
    store("SETQ", K, b"v") + frame("GETQ", K) + frame("GETQ", b"x") +
    frame("GETK", b"x") + NOOP,
]

# --- lying lengths ---
BIN += [
    # key longer than the body
    hdr("GET", keylen=10, bodylen=5) + b"kkkkk",
    hdr("SET", keylen=10, extlen=8, bodylen=12) + b"\0" * 12,
    # extras longer than the body
    hdr("SET", keylen=0, extlen=8, bodylen=4) + b"\0" * 4,
    # extras plus key longer than the body
    hdr("SET", keylen=5, extlen=8, bodylen=10) + b"\0" * 10,
    # a set without extras, or with the wrong extras
    frame("SET", K, value=b"v"),
    frame("SET", K, extras=b"\0" * 4, value=b"v"),
    frame("ADD", K, extras=b"\0" * 12, value=b"v"),
    # no key where one is needed
    store("SET", b"", b"v"),
    frame("GET"), frame("DELETE"), arith("INCR", b""),
    frame("APPEND", value=b"x"), touch("TOUCH", b"", 10),
    # keys of 250 and 251 bytes
    store("SET", b"a" * 250, b"v") + frame("GET", b"a" * 250),
    store("SET", b"a" * 251, b"v") + frame("GET", b"a" * 250),
    frame("GET", b"a" * 251),
    frame("GETQ", b"a" * 251) + NOOP,
    # a get with extras or a value
    frame("GET", K, extras=b"\0\0\0\0"),
    frame("GET", K, value=b"v"),
    # control bytes, spaces and NULs in a binary key are fine in memcached
    store("SET", b"a b\r\n\0", b"v") + frame("GETK", b"a b\r\n\0"),
    # a non-zero data type and vbucket
    frame("GET", K, datatype=1),
    frame("GET", K, vbucket=7) + SETK + frame("GET", K, vbucket=0xffff),
    # a header and nothing more: the server waits, the sentinel completes
    # part of the body
    hdr("SET", keylen=1, extlen=8, bodylen=40),
]

# --- unknown opcodes (empty body or value only) ---
for op in (0x19 + 7, 0x1f, 0x25, 0x30, 0x3d, 0x50, 0x83, 0xfe, 0xff):
    BIN.append(frame(op, opaque=op) + NOOP)
    BIN.append(frame(op, value=b"vvvv") + NOOP)
# SASL on a server without -S: memcached answers "Unknown command"
BIN += [
    frame("SASL_LIST_MECHS") + NOOP,
    frame("SASL_AUTH", b"PLAIN", value=b"\0u\0p") + NOOP,
    frame("SASL_STEP", b"PLAIN", value=b"\0u\0p") + NOOP,
]

# --- bad magic: the connection closes (the first byte of a connection
# picks the protocol, so these follow a good binary request) ---
BIN += [
    NOOP + b"\x81" + frame("GET", K)[1:],
    frame("NOOP", opaque=1) + b"\x00" * 24,
    store("SETQ", K, b"v") + b"\x81" + frame("GET", K)[1:],
    store("SETQ", K, b"v") + b"get k\r\n",
    frame("GETQ", K) + b"\xff" * 24,
]

def line(op, status=0, opaque=0, cas=False, extras=b"", key=b"",
         value=b""):
    """One reply frame as normalise() writes it."""
    return "81 %s st=%04x dt=00 op=%08x cas=%s x=%s k=%r v=%r" % (
        op, status, opaque, "<cas>" if cas else "0", extras.hex(), key,
        value)


# Unknown opcodes with a key or extras: memcached 1.6.18 reads the key and
# extras, then swallows the whole body length again, eating the next
# request's first bytes (here the sentinel: its reply never comes).
# cached swallows exactly the body and goes on.
OVER_SWALLOW = ("memcached reads an unknown command's extras and key, then "
                "swallows its whole body again, eating keylen+extlen bytes "
                "of the next request (framing lost); cached skips exactly "
                "the body and answers what follows")
UNKNOWN = "81 %s st=0081 dt=00 op=00000000 cas=0 x= k=b'' v=b'Unknown command'"
BIN_DIFFERENCES = {}
for op in (0x25, 0x55, 0xfe):
    for kw in (dict(key=b"k"), dict(extras=b"abcd"),
               dict(extras=b"abcd", key=b"kk", value=b"vvvvv")):
        req = frame(op, **kw)
        BIN.append(req)
        name = "%02x" % op
        BIN_DIFFERENCES[req] = (UNKNOWN % name + "\n<TIMEOUT>",
                                UNKNOWN % name, OVER_SWALLOW)
# An unknown opcode with a value and an opaque: answered with the opaque.
for op in (0x25, 0x7e):
    BIN.append(frame(op, value=b"vvvv", opaque=0x77) + NOOP)
# VERBOSITY is "Unknown command" in memcached 1.6.18 (its binary handler
# was dropped); cached serves it as the binary spec describes.
VERBOSE = ("memcached 1.6.18 no longer serves VERBOSITY in binary (it "
           "answers Unknown command, and with the extras then loses the "
           "framing as for any unknown command); cached serves it as "
           "protocol-binary.txt specifies")
for v in (0, 1):
    req = frame("VERBOSITY", extras=struct.pack(">I", v))
    BIN.append(req)
    BIN_DIFFERENCES[req] = (
        UNKNOWN % "VERBOSITY" + "\n<TIMEOUT>",
        "81 VERBOSITY st=0000 dt=00 op=00000000 cas=0 x= k=b'' v=b''",
        VERBOSE)



# A counter that shrinks is rewritten in place, padded with spaces to its
# old length, by memcached and cached alike (text_cases.py too): the
# INCR/DECR rows above compare byte for byte.

# -I bounds the value in cached, the whole item (value, key and item
# header) in memcached: a value of exactly 1 MiB is stored by cached only.
req = store("SET", K, b"v" * (1 << 20)) + frame("DELETE", K)
BIN.append(req)
BIN_DIFFERENCES[req] = (
    line("SET", 3, value=b"Too large.") + "\n" +
    line("DELETE", 1, value=b"Not found"),
    line("SET", cas=True) + "\n" + line("DELETE"),
    "cached's -I (1 MiB) limits the value; memcached's limits the item "
    "with its header and key, so memcached refuses a 1 MiB value (text "
    "and binary alike)")

# Statistics groups.  memcached 1.6.18's binary STAT does not route
# "conns" (Not found) though its text "stats conns" works; cached serves
# it in both.
STATS_END = line("STAT", opaque=21)
NOT_FOUND = line("STAT", 1, opaque=21, value=b"Not found")
for group, theirs, ours, why in (
        (b"conns", NOT_FOUND, STATS_END,
         "memcached's binary STAT has no conns group; cached serves it as "
         "text does"),):
    req = frame("STAT", group, opaque=21)
    assert req in BIN
    BIN_DIFFERENCES[req] = (theirs, ours, why)


STAT_RE = re.compile(r"^81 STAT st=0000 dt=00 op=[0-9a-f]+ cas=0 x= "
                     r"k=b(?!'').*$\n?", re.M)
VERSION_RE = re.compile(r"^(81 VERSION st=0000 .* v=)b'[^']*'$", re.M)


def normalise(raw, cas_map=None):
    """The text form of a reply with CAS values, statistics and the
    version normalised as the module's opening says."""
    text = re.sub(r"cas=<cas\d+>", "cas=<cas>", render(raw, cas_map))
    text = STAT_RE.sub("", text)
    return VERSION_RE.sub(r"\1<version>", text)


# Counter differences (test_bin_differential.test_counters skips these
# requests; their replies are still compared):
#  - memcached's binary path never counts store_too_large (its text path
#    does); cached counts a refused too-large value in every protocol;
#  - a CAS-checked APPEND/PREPEND is a cas hit (or badval) in cached, as
#    its meta "ms MA C<cas>" is; memcached counts neither (it counts only
#    plain CAS stores) -- not binary-specific: the store's counting;
#  - a DELETE whose CAS does not match counts a delete miss in cached, as
#    memcached's own meta "md k C<cas>" does; memcached's binary DELETE
#    counts nothing;
#  - STAT "reset" zeroes the counters being compared.
COUNTER_REASONS = {
    "too_large": "store_too_large counted in binary too",
    "cas_append": "CAS-checked append/prepend counted as a CAS request",
    "cas_delete": "DELETE with a wrong CAS counted as a delete miss",
    "reset": "stats reset",
}


def counter_difference(request):
    """The COUNTER_REASONS key a request falls under, or None."""
    parts = request if isinstance(request, tuple) else (request,)
    data = b"".join(p if isinstance(p, bytes) else b"\1" * 8 for p in parts)
    pos = 0
    while len(data) - pos >= 24:
        f = dict(zip(("magic", "op", "keylen", "extlen", "dt", "vb",
                      "bodylen", "opaque", "cas"),
                     struct.unpack_from(">BBHBBHIIQ", data, pos)))
        body = data[pos + 24:pos + 24 + f["bodylen"]]
        key = body[f["extlen"]:f["extlen"] + f["keylen"]]
        value_len = f["bodylen"] - f["extlen"] - f["keylen"]
        name = OPNAME.get(f["op"], "")
        if name == "STAT" and key == b"reset":
            return "reset"
        if name.rstrip("Q") in ("SET", "ADD", "REPLACE", "APPEND",
                                "PREPEND") and value_len > 1 << 20:
            return "too_large"
        if name.rstrip("Q") in ("APPEND", "PREPEND") and f["cas"]:
            return "cas_append"
        if name.rstrip("Q") == "DELETE" and f["cas"]:
            return "cas_delete"
        pos += 24 + f["bodylen"]
    return None


# --- SASL (test_bin_sasl.py): memcached -S -B binary with a Cyrus sasldb
# and cached -S -Y, the same user and password (SASL_USER, SASL_PASSWORD);
# each case on a new, unauthenticated connection. ---
SASL_USER, SASL_PASSWORD = b"cacheduser", b"s3cret pass"
PLAIN = b"\0" + SASL_USER + b"\0" + SASL_PASSWORD
WRONG = b"\0" + SASL_USER + b"\0" + SASL_PASSWORD + b"x"


def sasl_auth(data, mech=b"PLAIN", opaque=0):
    return frame("SASL_AUTH", mech, value=data, opaque=opaque)


SASL_CASES = [
    frame("SASL_LIST_MECHS", opaque=3),
    frame("VERSION"),
    frame("NOOP"),
    frame("GET", K),
    store("SET", K, b"v"),
    frame("STAT"),
    sasl_auth(PLAIN, opaque=9) + store("SET", K, b"v") + frame("GET", K),
    sasl_auth(WRONG) + frame("GET", K),
    sasl_auth(WRONG) + sasl_auth(PLAIN) + frame("GET", K),
    # a failed attempt ends an earlier authentication
    sasl_auth(PLAIN) + sasl_auth(WRONG) + frame("GET", K),
    sasl_auth(b"\0" + SASL_USER + b"x\0" + SASL_PASSWORD),
    sasl_auth(b"\0\0"),
    sasl_auth(b"garbage"),
    sasl_auth(b"authz" + PLAIN) + frame("GET", K),
    sasl_auth(PLAIN, mech=b"CRAM-MD5"),
    sasl_auth(PLAIN, mech=b""),
    frame("SASL_STEP", b"PLAIN", value=PLAIN),
    sasl_auth(PLAIN) + frame("SASL_STEP", b"PLAIN", value=PLAIN),
    sasl_auth(PLAIN) + b"".join(store("SETQ", b"s%d" % i, b"v")
                                for i in range(10)) + frame("GETK", b"s9"),
]

# the sentinel NOOP's reply on a connection not authenticated
SENTINEL_REFUSED = line("NOOP", 0x20, opaque=0x5e471e1,
                        value=b"Auth failure.")

SASL_DIFFERENCES = {
    # memcached (Cyrus SASL) answers PLAIN without an initial response
    # with "continue" (0x21) and an empty challenge, expecting the
    # credentials in a SASL_STEP; cached has no steps and fails it.  No
    # client known to us sends PLAIN that way (Dalli, libmemcached, memjs
    # send the initial response).
    sasl_auth(b""): (
        line("SASL_AUTH", 0x21) + "\n" + SENTINEL_REFUSED,
        line("SASL_AUTH", 0x20, value=b"Auth failure.") + "\n" +
        SENTINEL_REFUSED,
        "PLAIN without an initial response: memcached asks to continue "
        "in a SASL_STEP, cached fails it"),
    # memcached's SASL_LIST_MECHS after authenticating restarts its Cyrus
    # exchange and so loses the authentication (the next command gets
    # Auth failure.); cached keeps it.
    sasl_auth(PLAIN) + frame("SASL_LIST_MECHS") + frame("GET", b"none"): (
        "\n".join([line("SASL_AUTH", value=b"Authenticated"),
                   line("SASL_LIST_MECHS", value=b"PLAIN"),
                   line("GET", 0x20, value=b"Auth failure."),
                   "<CLOSED>"]),
        "\n".join([line("SASL_AUTH", value=b"Authenticated"),
                   line("SASL_LIST_MECHS", value=b"PLAIN"),
                   line("GET", 1, value=b"Not found")]),
        "listing the mechanisms does not undo an authentication in "
        "cached"),
    # memcached fails a second exchange on a connection (Cyrus: "server
    # step after doneflag") and so drops the authentication; cached
    # authenticates again.
    sasl_auth(PLAIN) + sasl_auth(PLAIN) + frame("GET", b"none"): (
        "\n".join([line("SASL_AUTH", value=b"Authenticated"),
                   line("SASL_AUTH", 0x20, value=b"Auth failure."),
                   line("GET", 0x20, value=b"Auth failure."),
                   "<CLOSED>"]),
        "\n".join([line("SASL_AUTH", value=b"Authenticated"),
                   line("SASL_AUTH", value=b"Authenticated"),
                   line("GET", 1, value=b"Not found")]),
        "a second successful SASL_AUTH keeps the connection "
        "authenticated in cached"),
    # mechanism names are upper case (RFC 4422 3.1); Cyrus also takes
    # "plain", cached only "PLAIN"
    sasl_auth(PLAIN, mech=b"plain"): (
        line("SASL_AUTH", value=b"Authenticated"),
        line("SASL_AUTH", 0x20, value=b"Auth failure.") + "\n" +
        SENTINEL_REFUSED,
        "the mechanism name is compared exactly (PLAIN)"),
    # QUIT before authenticating: memcached refuses it (Auth failure.),
    # cached answers it; both close.
    frame("QUIT"): (
        line("QUIT", 0x20, value=b"Auth failure.") + "\n<CLOSED>",
        line("QUIT") + "\n<CLOSED>",
        "QUIT is answered before authentication; the connection closes "
        "either way"),
}
SASL_CASES += list(SASL_DIFFERENCES)
