"""The malformed and boundary requests of test_hostile.py, each with the
exact reply the protocol gives it and how the connection ends.

Cases are generated from templates: every numeric field of every command
takes each value of NUMBERS (-1, 0, 2^31, 2^32, 2^64 and their neighbours,
non-digits); keys of 250, 251 and 65,536 bytes and keys with control bytes
and NUL go through every keyed command; data blocks come shorter and longer
than declared and with bare LF or CR endings; lines end in CRLF, LF and
stray CRs; lines of 64 KiB of spaces, HTTP/1, HTTP/2, TLS, RESP and binary
protocol openings are thrown in.  The expected replies follow
memcached-protocol.txt and memcached 1.6.18 (numbers read as strtol
reads them, control bytes allowed in keys but NUL, noreply silencing
errors too), with the differences README.md states (flags over 32 bits
and NUL in keys refused, a bad length closes, a refused value skipped).

A case is (name, request, reply, ending, split):
  ending  VERSION: a "version" sent after the request still answers;
          CLOSED: the server closes after the reply;
          STALL: the server waits for more (it swallows a declared value
          that will never come), so only the reply is read.
  split   whether test_hostile also sends it one byte per send() (false
          only for the 1 MiB requests).
Every storage case uses a key of its own, so results do not depend on the
order the cases run in.
"""
import collections
import itertools
import time

VERSION, CLOSED, STALL = "version", "closed", "stall"
Case = collections.namedtuple("Case", "name request reply ending split")

ERR = b"ERROR\r\n"
FMT = b"CLIENT_ERROR bad command line format\r\n"
CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
EXPT = b"CLIENT_ERROR invalid exptime argument\r\n"
DELUSE = (b"CLIENT_ERROR bad command line format.  "
          b"Usage: delete <key> [noreply]\r\n")
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
STORED, NOT_STORED = b"STORED\r\n", b"NOT_STORED\r\n"
NOT_FOUND, END = b"NOT_FOUND\r\n", b"END\r\n"

U32_MAX = 2 ** 32 - 1
U64_MAX = 2 ** 64 - 1
NBYTES_MAX = 2147483645          # PROTO_NBYTES_MAX
ITEM_MAX = 1 << 20               # the server's default -I
MAXDELTA = 60 * 60 * 24 * 30     # relative times end at 30 days

NUMBERS = [b"-1", b"0", b"1", b"2147483647", b"2147483648", b"-2147483648",
           b"-2147483649", b"4294967295", b"4294967296",
           b"18446744073709551615", b"18446744073709551616",
           b"99999999999999999999999", b"00000000000000000000001", b"-0",
           b"+1", b"1a", b"abc", b"0x10", b"1.5", b"\t1", b"1\x00", b"\xff"]

# Extra values for the <bytes> field: just past -I, the largest length the
# parser takes (PROTO_NBYTES_MAX) and one past it.
NBYTES_EXTRA = [b"1048577", b"2147483645", b"2147483646"]

# Result of a well-formed storage command on a key that does not exist.
FRESH_RESULT = {b"set": STORED, b"add": STORED, b"replace": NOT_STORED,
                b"append": NOT_STORED, b"prepend": NOT_STORED,
                b"cas": NOT_FOUND}
STORAGE = list(FRESH_RESULT)

_ids = itertools.count()


def fresh_key(base=b"k", length=None):
    """A key no other case uses, optionally padded to length bytes."""
    key = b"h%d-%s" % (next(_ids), base)
    return key if length is None else (key * length)[:length]


def digits(tok):
    return len(tok) > 0 and all(0x30 <= b <= 0x39 for b in tok)


BLANKS = b" \t\n\v\f\r"


def c_number(tok):
    """(negative, magnitude) of tok read as memcached's strtol/strtoull
    read it: blanks, a sign, digits, then the end or a blank; None when
    there is no number or it passes 64 bits."""
    i, n = 0, len(tok)
    while i < n and tok[i] in BLANKS:
        i += 1
    neg = i < n and tok[i] == ord("-")
    if i < n and tok[i] in b"+-":
        i += 1
    j = i
    while j < n and 0x30 <= tok[j] <= 0x39:
        j += 1
    if j == i or (j < n and tok[j] not in BLANKS) or int(tok[i:j]) > U64_MAX:
        return None
    return neg, int(tok[i:j])


def as_uint(tok, maxv):
    """The value of an unsigned field as safe_strtoull reads it (a '-'
    only when the wrapped value stays below 2^63), or None if invalid."""
    r = c_number(tok)
    if r is None:
        return None
    v = (-r[1]) % 2 ** 64 if r[0] else r[1]
    if r[0] and v >= 2 ** 63:
        return None
    return v if v <= maxv else None


def as_time(tok):
    """The value of an exptime-like field (a 64-bit long), or None."""
    r = c_number(tok)
    if r is None:
        return None
    v = -r[1] if r[0] else r[1]
    return v if -2 ** 63 <= v < 2 ** 63 else None


def storage_case(cmd, fields, noreply=False):
    """cmd <key> <flags> <exptime> <bytes> [<cas>] [noreply] and a value."""
    key = fresh_key()
    line = b"%s %s %s%s\r\n" % (cmd, key, b" ".join(fields),
                                b" noreply" if noreply else b"")
    name = b"%s %s" % (cmd, b" ".join(fields))
    nbytes = as_uint(fields[2], NBYTES_MAX)
    # noreply leaves out errors too, as memcached does
    if nbytes is None:
        return Case(name, line + b"hello\r\n", b"" if noreply else FMT,
                    CLOSED, True)
    ok = (as_uint(fields[0], U32_MAX) is not None and
          as_time(fields[1]) is not None and
          (cmd != b"cas" or as_uint(fields[3], U64_MAX) is not None))
    if nbytes > ITEM_MAX:
        # Refused or malformed, the value is swallowed: it never ends.
        return Case(name, line, b"" if noreply else TOO_LARGE if ok else FMT,
                    STALL, True)
    reply = FRESH_RESULT[cmd] if ok else FMT
    if noreply:
        reply = b""
    return Case(name, line + b"v" * nbytes + b"\r\n", reply, VERSION, True)


def numeric_storage_cases():
    for cmd in STORAGE:
        base = [b"0", b"0", b"5"] + ([b"1"] if cmd == b"cas" else [])
        for i in range(len(base)):
            for v in NUMBERS + (NBYTES_EXTRA if i == 2 else []):
                fields = list(base)
                fields[i] = v
                yield storage_case(cmd, fields)
                if cmd == b"set":
                    yield storage_case(cmd, fields, noreply=True)


def arith_cases():
    for cmd, v in itertools.product((b"incr", b"decr"), NUMBERS):
        key = fresh_key(b"n")
        req = b"set %s 0 0 2\r\n10\r\n%s %s %s\r\n" % (key, cmd, key, v)
        d = as_uint(v, U64_MAX)
        if d is None:
            reply = DELTA
        elif cmd == b"incr":
            reply = b"%d\r\n" % ((10 + d) % 2 ** 64)
        else:
            reply = b"%d\r\n" % max(10 - d, 0)
        yield Case(b"%s %s" % (cmd, v), req, STORED + reply, VERSION, True)


def time_cases():
    for v in NUMBERS:
        ok = as_time(v) is not None
        key = fresh_key()
        yield Case(b"touch " + v, b"set %s 0 0 1\r\nv\r\ntouch %s %s\r\n"
                   % (key, key, v),
                   STORED + (b"TOUCHED\r\n" if ok else EXPT), VERSION, True)
        key = fresh_key()
        yield Case(b"gat " + v, b"set %s 3 0 1\r\nv\r\ngat %s %s\r\n"
                   % (key, v, key), STORED + (b"VALUE %s 3 1\r\nv\r\nEND\r\n"
                                              % key if ok else EXPT),
                   VERSION, True)
        yield Case(b"gats " + v, b"gats %s %s\r\n" % (v, fresh_key()),
                   END if ok else EXPT, VERSION, True)
        yield flush_case(v)


def flush_case(v):
    """flush_all <v>.  A valid delay that would flush the canaries within
    the test is cancelled at once by a far-future one (a later flush_all
    replaces a pending one); those that flush now, or so soon that the
    next command might come too late, are sent as the far-future form
    only, since they would wipe the canaries."""
    t = as_time(v)
    far = b"flush_all 2147483647\r\n"
    if t is None:
        return Case(b"flush_all " + v, b"flush_all %s\r\n" % v, EXPT,
                    VERSION, True)
    if t < 60 or (MAXDELTA < t < time.time() + 3600):
        return Case(b"flush_all far (for %s)" % v, far, b"OK\r\n", VERSION,
                    True)
    return Case(b"flush_all " + v, b"flush_all %s\r\n" % v + far,
                b"OK\r\nOK\r\n", VERSION, True)


def misc_number_cases():
    for v in NUMBERS:
        ok = as_uint(v, U64_MAX) is not None
        yield Case(b"verbosity " + v, b"verbosity %s\r\nverbosity 0\r\n" % v,
                   (b"OK\r\n" if ok else FMT) + b"OK\r\n", VERSION, True)
        yield Case(b"delete k " + v, b"delete %s %s\r\n" % (fresh_key(), v),
                   NOT_FOUND if v == b"0" else DELUSE, VERSION, True)


def arity_cases():
    rows = [
        (b"set k 0 0\r\n", ERR), (b"set k 0\r\n", ERR), (b"set\r\n", ERR),
        # a readable length: the value is skipped, not run
        (b"set k 0 0 5 noreply extra\r\nhello\r\n", ERR),
        (b"cas k 0 0 5\r\nhello\r\n", ERR),
        (b"cas k 0 0 5 1 noreply x\r\nhello\r\n", ERR),
        (b"add\r\n", ERR), (b"append k\r\n", ERR),
        (b"incr k\r\n", ERR), (b"incr\r\n", ERR), (b"decr k 1 2 3\r\n", ERR),
        (b"touch k\r\n", ERR), (b"touch k 1 2 3\r\n", ERR),
        (b"delete\r\n", ERR), (b"delete k 0 noreply x\r\n", ERR),
        (b"verbosity\r\n", ERR), (b"verbosity 1 2 3\r\n", ERR),
        (b"flush_all 1 2 3\r\n", ERR), (b"get\r\n", ERR),
        (b"get    \r\n", ERR), (b"gat\r\n", ERR), (b"gat 10\r\n", END),
        (b"gats 10   \r\n", END),
        (b"shutdown foo\r\n", b"ERROR: shutdown not enabled\r\n"),
        (b"shutdown graceful\r\n", b"ERROR: shutdown not enabled\r\n"),
        (b"stats nonsense\r\n", ERR), (b"stats settings extra\r\n", ERR),
        (b"stats detail dump\r\n", b"END\r\n"),
        (b"stats detail\r\n",
         b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
        (b"slabs\r\n", ERR), (b"lru tune 1 2\r\n", ERR),
        (b"cache_memlimit 1 2 3\r\n", ERR),
        (b"verbosity noreply\r\nverbosity 0\r\n", b"OK\r\n"),
        (b"quit extra args\r\n", b"<CLOSED>"),
    ]
    for req, reply in rows:
        ending = VERSION
        if reply == b"<CLOSED>":
            reply, ending = b"", CLOSED
        yield Case(req.split(b"\r\n")[0], req, reply, ending, True)


# (name, key, kind): kind "ok" for a valid key, "bad" for one the parser
# refuses with CLIENT_ERROR, "huge" for one that makes the line too long.
KEYS = [
    (b"250 bytes", 250, "ok"), (b"251 bytes", b"k" * 251, "bad"),
    (b"65536 bytes", b"k" * 65536, "huge"), (b"NUL", b"a\x00b", "bad"),
    (b"SOH", b"a\x01b", "ctl"), (b"DEL", b"a\x7fb", "ctl"),
    (b"TAB", b"a\tb", "ctl"), (b"CR", b"a\rb", "ctl"),
    (b"ESC", b"\x1b[31m", "ctl"), (b"high bytes", 250, "high"),
    (b"251 high bytes", b"\xff" * 251, "bad"),
    (b"UTF-8", "\u00e9t\u00e9".encode(), "utf8"),
    (b"leading NUL", b"\x00k", "bad"),
]


def key_for(spec):
    """The key of a KEYS row; valid keys are made unique per case."""
    _, key, kind = spec
    if kind == "ok":
        return fresh_key(b"k", key)
    if kind == "high":
        return fresh_key(b"\xff\xfe\x80", key)
    if kind in ("utf8", "ctl"):
        return fresh_key(key)
    return key


def key_cases():
    for spec in KEYS:
        kind = spec[2]
        valid = kind not in ("bad", "huge")
        k = key_for
        rows = [
            # (request, reply if valid, whether a huge key is in a get line)
            (lambda K: b"set %s 0 0 5\r\nhello\r\n" % K, STORED, False),
            (lambda K: b"set %s 0 0 5\r\nhello\r\nget %s\r\n" % (K, K),
             None, False),
            (lambda K: b"get %s\r\n" % K, END, True),
            (lambda K: b"gets a %s b\r\n" % K, END, True),
            (lambda K: b"gat 0 %s\r\n" % K, END, True),
            (lambda K: b"delete %s\r\n" % K, NOT_FOUND, False),
            (lambda K: b"delete %s noreply\r\n" % K, b"", False),
            (lambda K: b"incr %s 1\r\n" % K, NOT_FOUND, False),
            (lambda K: b"touch %s 0\r\n" % K, NOT_FOUND, False),
            (lambda K: b"add %s 0 0 1\r\nx\r\n" % K, STORED, False),
            (lambda K: b"cas %s 0 0 1 1\r\nx\r\n" % K, NOT_FOUND, False),
            (lambda K: b"append %s 0 0 1\r\nx\r\n" % K, NOT_STORED, False),
        ]
        for make, ok_reply, in_get in rows:
            key = k(spec)
            req = make(key)
            name = b"key %s: %s" % (spec[0], make(b"K").split(b"\r\n")[0])
            if kind == "huge" and not in_get:
                # Over 2048 bytes without a newline: closed, no reply.
                yield Case(name, req, b"", CLOSED, True)
                continue
            if not valid:
                n = req.count(b"\r\n") - (1 if b" 0 0 " in req else 0)
                if b"noreply" in req:
                    n = 0
                yield Case(name, req, FMT * n, VERSION, True)
                continue
            if ok_reply is None:
                ok_reply = STORED + b"VALUE %s 0 5\r\nhello\r\nEND\r\n" % key
            yield Case(name, req, ok_reply, VERSION, True)


def data_block_cases():
    for cmd in STORAGE:
        cas = b" 1" if cmd == b"cas" else b""
        res = FRESH_RESULT[cmd]

        def line(n, key=None, end=b"\r\n"):
            return b"%s %s 0 0 %d%s%s" % (cmd, key or fresh_key(), n, cas,
                                          end)
        rows = [
            (b"shorter", line(10) + b"hello\r\n", CHUNK, CLOSED),
            (b"longer", line(3) + b"hello\r\n", CHUNK, CLOSED),
            (b"LF end", line(5) + b"hello\n", CHUNK, CLOSED),
            (b"CR end", line(5) + b"hello\r", CHUNK, CLOSED),
            (b"no end", line(5) + b"hellohello\r\n", CHUNK, CLOSED),
            (b"zero, data", line(0) + b"hello\r\n", CHUNK, CLOSED),
            (b"CRLF inside", line(7) + b"hel\r\nlo\r\n", res, VERSION),
            (b"LF line", line(5, end=b"\n") + b"hello\r\n", res, VERSION),
            (b"empty", line(0) + b"\r\n", res, VERSION),
        ]
        for name, req, reply, ending in rows:
            yield Case(b"%s data %s" % (cmd, name), req, reply, ending, True)
    big = b"b" * ITEM_MAX
    yield Case(b"set 1 MiB", b"set %s 0 0 %d\r\n%s\r\n" % (
        fresh_key(), len(big), big), STORED, VERSION, False)
    yield Case(b"set 1 MiB + 1", b"set %s 0 0 %d\r\n%sx\r\n" % (
        fresh_key(), len(big) + 1, big), TOO_LARGE, VERSION, False)


def framing_cases():
    k = fresh_key()
    rows = [
        (b"CRLF only", b"\r\n", ERR, VERSION),
        (b"LF only", b"\n", ERR, VERSION),
        (b"CR CR LF", b"\r\r\n", ERR, VERSION),
        (b"get k CR CR LF", b"get k\r\r\n", END, VERSION),
        (b"get k LF CRLF", b"get k\n\r\n", END + ERR, VERSION),
        (b"LF data end", b"set %s 0 0 1\nx\nget k\n" % fresh_key(), CHUNK,
         CLOSED),
        (b"LF lines", b"set %s 0 0 1\nx\r\nget %s\n" % (k, k),
         STORED + b"VALUE %s 0 1\r\nx\r\nEND\r\n" % k, VERSION),
        (b"leading space", b"   get k   \r\n", END, VERSION),
        (b"tab separator", b"get\tk\r\n", ERR, VERSION),
        (b"mixed case", b"GeT k\r\n", ERR, VERSION),
        (b"NUL after key", b"get k\x00\r\n", FMT, VERSION),
        (b"NUL line", b"\x00\r\n", ERR, VERSION),
        (b"NULs", b"\x00" * 100 + b"\r\n", ERR, VERSION),
        (b"64 KiB spaces", b" " * 65536, b"", CLOSED),
        (b"64 KiB spaces CRLF", b" " * 65536 + b"\r\n", b"", CLOSED),
        (b"2046 spaces CRLF", b" " * 2046 + b"\r\n", ERR, VERSION),
        (b"2047+CRLF", b"x" * 2047 + b"\r\n", ERR, VERSION),
        (b"2048+CRLF", b"x" * 2048 + b"\r\n", b"", CLOSED),
        (b"set padded to 2048", b"set %s 0 0 1" % fresh_key() +
         b" " * 2020 + b"\r\nx\r\n", STORED, VERSION),
        (b"get 64 KiB spaces", b"get" + b" " * 65536 + b"k\r\n", END,
         VERSION),
        # HTTP request lines close without a reply, as in memcached.
        (b"GET / HTTP/1.1", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"",
         CLOSED),
        (b"POST", b"POST /set HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
         b"hello\r\n", b"", CLOSED),
        (b"HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"",
         CLOSED),
        (b"get / HTTP/1.1", b"get / HTTP/1.1\r\n", END, VERSION),
        (b"CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", b"",
         CLOSED),
        (b"TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"
         + bytes(range(32, 96)) + b"\r\n", ERR, VERSION),
        # a binary header (issue 12: the binary protocol is served)
        # whose key is longer than its body: "Unknown command" and
        # closed, as memcached 1.6.18 does
        (b"binary protocol get", b"\x80\x00\x00\x01" + b"\x00" * 20 +
         b"k\r\n", b"\x81\x00\x00\x00\x00\x00\x00\x81\x00\x00\x00\x0f" +
         b"\x00" * 12 + b"Unknown command", CLOSED),
        (b"RESP PING", b"*1\r\n$4\r\nPING\r\n", ERR * 3, VERSION),
    ]
    for name, req, reply, ending in rows:
        yield Case(name, req, reply, ending, True)
    get_max = b"get" + b" k" * 500000 + b"\r\n"            # under 1 MiB
    yield Case(b"get line of 1,000,005 bytes", get_max, END, VERSION, False)
    yield Case(b"get line over 1 MiB", b"get" + b" k" * 524288 + b"\r\n", b"",
               CLOSED, False)


def all_cases():
    """Every case, in a fixed order."""
    return list(itertools.chain(
        numeric_storage_cases(), arith_cases(), time_cases(),
        misc_number_cases(), arity_cases(), key_cases(), data_block_cases(),
        framing_cases()))


# --- The binary protocol (issue 12) ---------------------------------------
# binary_cases() are the malformed binary requests of test_hostile's
# BinaryMalformedTest.  Their ending VERSION means that a binary NOOP sent
# after the request (binproto.sentinel) is still answered; reply is the
# exact bytes before it, or a function that judges them (for framing
# errors, where the protocol leaves the status open: one error reply --
# too large, invalid arguments or unknown command -- then the connection
# closes; memcached 1.6.18 swallows a 2 GiB value instead).

def binary_cases():
    """Every binary case, in a fixed order."""
    import struct as _struct
    from binproto import OP, frame
    ops = sorted(OP.values())

    def err(op, status, text, opaque=0):
        return _struct.pack(
            ">BBHBBHIIQ", 0x81, op, 0, 0, 0, status, len(text), opaque,
            0) + text

    def one_error_then_close(op):
        def judge(got):
            if not got.endswith(b"<CLOSED>") or len(got) < 24 + 8:
                return False
            (magic, rop, _, _, _, status, bodylen, _,
             _) = _struct.unpack_from(">BBHBBHIIQ", got)
            return (magic == 0x81 and rop == op and status in (3, 4, 0x81)
                    and len(got) == 24 + bodylen + 8)
        judge.__doc__ = "one error reply to opcode %#x, then closed" % op
        return judge

    noop = frame("NOOP")
    noop_reply = _struct.pack(">BBHBBHIIQ", 0x81, 0x0a, 0, 0, 0, 0, 0, 0, 0)
    for op in ops:
        if op in (OP["QUIT"], OP["QUITQ"], OP["NOOP"], OP["VERSION"]):
            continue
        name = b"bin %02x" % op
        # lengths that contradict each other: the framing is lost
        yield Case(name + b" key longer than body",
                   frame(op, keylen=10, bodylen=5) + b"k" * 5,
                   one_error_then_close(op), CLOSED, True)
        yield Case(name + b" extras longer than body",
                   frame(op, extlen=20, bodylen=8) + b"x" * 8,
                   one_error_then_close(op), CLOSED, True)
        yield Case(name + b" extras+key longer than body",
                   frame(op, extlen=8, keylen=8, bodylen=12) + b"x" * 12,
                   one_error_then_close(op), CLOSED, True)
        # a 2 GiB body: refused at once (too large, or invalid), closed
        yield Case(name + b" 2 GiB body", frame(op, b"k", bodylen=2 ** 31),
                   one_error_then_close(op), CLOSED, True)
        # a key over 250 bytes
        if op not in (OP["STAT"], OP["FLUSH"], OP["FLUSHQ"],
                      OP["VERBOSITY"], OP["SASL_LIST_MECHS"],
                      OP["SASL_AUTH"], OP["SASL_STEP"]):
            yield Case(name + b" 251-byte key", frame(op, b"k" * 251),
                       one_error_then_close(op), CLOSED, True)
    # opcodes nobody defined: "Unknown command", the body skipped exactly
    for op in range(256):
        if op in ops:
            continue
        yield Case(b"bin unknown %02x" % op, frame(op, opaque=op),
                   err(op, 0x81, b"Unknown command", op), VERSION, True)
        if op % 16 == 5:
            yield Case(b"bin unknown %02x with a value" % op,
                       frame(op, value=b"\x80\x0a" + b"\0" * 22, opaque=op),
                       err(op, 0x81, b"Unknown command", op), VERSION, True)
    # a bad magic after a good request: the good one is answered, then
    # the connection closes (framing lost)
    for magic in (0x00, 0x01, 0x7f, 0x81, 0xff, ord("g"), ord("s"), 0x16):
        yield Case(b"bin bad magic %02x" % magic,
                   noop + bytes([magic]) + frame("GET", b"k")[1:],
                   noop_reply, CLOSED, True)
    yield Case(b"bin text after binary", noop + b"get k\r\n", noop_reply,
               CLOSED, True)
    # quiet requests: nothing but the NOOP's reply (and the errors)
    yield Case(b"bin quiet misses", b"".join(
        frame("GETQ", b"miss%d" % i) for i in range(1000)) + noop,
        noop_reply, VERSION, False)
