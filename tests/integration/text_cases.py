"""The classic text protocol corpus of the differential test (issue 13):
over a thousand requests -- valid, malformed, boundary values, noreply,
pipelined -- for set/add/replace/append/prepend/cas, get/gets/gat/gats,
delete, incr/decr, touch, flush_all, verbosity, version, quit and
shutdown, with the replies memcached 1.6.18 gives them.

TEXT is the list of requests; test_differential.py sends each to cached
and to memcached on a new connection to a freshly flushed server (whole,
split at every byte when short, and all of them pipelined) and compares
the replies after its normalise() (CAS values blanked).

TEXT_DIFFERENCES lists the requests whose replies differ on purpose, as
test_differential.DIFFERENCES does: memcached's reply, cached's and why.
The rule is to do what memcached does unless that loses or exposes data;
each entry below is such a case, built by the generator that made the
request (so the list cannot fall out of step with the corpus):

  VALUE_RUN  a storage line memcached refuses before it knows the value is
             coming (a bad flag, exptime, cas or key, a wrong field count)
             but whose length field is readable: memcached runs the data
             block as a command line (its ERROR, or worse, whatever the
             value says); cached skips the declared bytes.
  LOST       the length field is unreadable, or the data block does not
             end where it said: memcached reads on and runs the rest as
             commands; cached answers and closes, since the framing is
             lost.
  FLAGS32    flags over 32 bits: memcached cuts them to 32 bits, so the
             client gets back other flags than it stored; cached refuses.
  EXPTIME64  an exptime past 32 bits: memcached cuts it to 32 bits (2^31,
             a 2038 date, becomes a time long past and the item is gone on
             arrival; -2^31-1 becomes a 2038 date); cached keeps the
             64-bit value.
  NUL        a NUL byte in a line: memcached reads the line only up to it
             (so "get a<NUL>b" answers for the key "a": another key's
             data); cached refuses keys and numbers holding NUL.

Left out of the corpus: incr on a value of blanks only, where memcached's
strtoull runs past the value into whatever memory follows (its reply
changes from run to run); cached answers that the value is not a number.
"""
import itertools

ERR = b"ERROR\r\n"
FMT = b"CLIENT_ERROR bad command line format\r\n"
CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
EXPT = b"CLIENT_ERROR invalid exptime argument\r\n"
NONNUM = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
STORED, NOT_STORED = b"STORED\r\n", b"NOT_STORED\r\n"
NOT_FOUND, END = b"NOT_FOUND\r\n", b"END\r\n"
CLOSED = b"<CLOSED>"

VALUE_RUN = ("memcached refuses the line, then runs the value bytes as a "
             "command line; cached skips the declared value, so value "
             "bytes are never run as commands")
LOST = ("the value's length is unusable or the data block does not end "
        "where it said, so the framing is lost: memcached reads on and "
        "runs what follows as commands; cached replies and closes")
FLAGS32 = ("memcached cuts flags to 32 bits, handing back other flags than "
           "the client stored; cached refuses the line")
EXPTIME64 = ("memcached cuts the exptime to 32 bits (2^31, a 2038 date, "
             "turns into a time long past and the item is lost on "
             "arrival); cached reads the 64-bit value as the time it says")
NUL = ("memcached reads a line only up to a NUL byte (\"get a<NUL>b\" "
       "answers for key \"a\"); cached refuses a NUL in a key or number")
U32_MAX = 2 ** 32 - 1
U64_MAX = 2 ** 64 - 1
BLANKS = b" \t\n\v\f\r"

TEXT = []
TEXT_DIFFERENCES = {}


def add(request):
    """Adds a request the two servers must answer alike."""
    if request not in TEXT:
        TEXT.append(request)


def differ(request, theirs, ours, why):
    """Adds a request answered differently on purpose."""
    add(request)
    TEXT_DIFFERENCES[request] = (theirs, ours, why)


def c_number(tok):
    """(negative, magnitude) of tok as strtol/strtoull read it (blanks, a
    sign, digits, then the end or a blank), or None; NUL ends the token
    early in memcached, so a NUL is reported as "nul"."""
    if b"\0" in tok:
        return "nul"
    i, n = 0, len(tok)
    while i < n and tok[i] in BLANKS:
        i += 1
    neg = i < n and tok[i] == ord("-")
    if i < n and tok[i] in b"+-":
        i += 1
    j = i
    while j < n and 0x30 <= tok[j] <= 0x39:
        j += 1
    if j == i or (j < n and tok[j] not in BLANKS):
        return None
    return neg, int(tok[i:j])


def as_ulong(tok):
    """tok through memcached's safe_strtoull (64 bits), or None."""
    r = c_number(tok)
    if r is None or r == "nul" or r[1] > U64_MAX:
        return None
    v = (-r[1]) % 2 ** 64 if r[0] else r[1]
    return None if r[0] and v >= 2 ** 63 else v


def as_long(tok):
    """tok through memcached's safe_strtol (a 64-bit long), or None."""
    r = c_number(tok)
    if r is None or r == "nul":
        return None
    v = -r[1] if r[0] else r[1]
    return v if -2 ** 63 <= v < 2 ** 63 else None


# Numbers every numeric field is tried with.
NUMBERS = [b"0", b"1", b"-1", b"-0", b"+1", b"+0", b"00", b"007",
           b"2147483647", b"2147483648", b"-2147483648", b"-2147483649",
           b"4294967295", b"4294967296", b"4294967297",
           b"9223372036854775807", b"9223372036854775808",
           b"-9223372036854775808", b"18446744073709551615",
           b"18446744073709551616", b"99999999999999999999999",
           b"00000000000000000000001", b"1a", b"a1", b"abc", b"0x10",
           b"1.5", b"1e3", b"-", b"+", b"--1", b"\t1", b"1\t", b"\x0b2",
           b"\xff", b"\xd9\xa1"]

FRESH = {b"set": STORED, b"add": STORED, b"replace": NOT_STORED,
         b"append": NOT_STORED, b"prepend": NOT_STORED, b"cas": NOT_FOUND}


# --- storage commands: every number at every numeric field -------------

def storage(cmd, fields, noreply):
    """<cmd> k <fields> [noreply] with a data block of the declared
    length (or "hello" when the length is unusable), and what each server
    answers."""
    line = b"%s k %s%s\r\n" % (cmd, b" ".join(fields),
                               b" noreply" if noreply else b"")
    nbytes = as_long(fields[2])
    usable = nbytes is not None and 0 <= nbytes <= 2147483645
    data = b"v" * nbytes if usable and nbytes <= 64 else b"hello"
    request = line + data + b"\r\n"
    quiet = noreply
    if not usable:
        # memcached keeps the length in 32 bits: 2^32 reads as 0, a
        # value that then does not end where it should
        v32 = None if nbytes is None else \
            (nbytes + 2 ** 31) % 2 ** 32 - 2 ** 31
        err = CHUNK if v32 is not None and 0 <= v32 <= 5 else FMT
        differ(request, (b"" if quiet else err) + ERR,
               (b"" if quiet else FMT) + CLOSED, LOST)
        return
    if nbytes > 64:
        return
    flags = as_ulong(fields[0])
    exptime = as_long(fields[1])
    if flags is None or exptime is None or \
            (cmd == b"cas" and as_ulong(fields[3]) is None):
        differ(request, (b"" if quiet else FMT) + ERR,
               b"" if quiet else FMT, VALUE_RUN)
        return
    if flags > U32_MAX:
        differ(request, b"" if quiet else FRESH[cmd],
               b"" if quiet else FMT, FLAGS32)
        return
    add(request)
    if cmd == b"set" and not noreply:
        # the item read back: its flags, and whether its exptime let it
        # live (memcached: the low 32 bits, negative is gone)
        get = request + b"get k\r\n"
        e32 = (exptime + 2 ** 31) % 2 ** 32 - 2 ** 31
        if e32 != exptime:
            hit = b"VALUE k %d %d\r\n%s\r\nEND\r\n" % (flags, nbytes, data)
            differ(get, STORED + (hit if e32 >= 0 else END),
                   STORED + (hit if exptime >= 0 else END), EXPTIME64)
        else:
            add(get)


for cmd in (b"set", b"add", b"replace", b"append", b"prepend", b"cas"):
    base = [b"0", b"0", b"5"] + ([b"1"] if cmd == b"cas" else [])
    for i, v in itertools.product(range(len(base)), NUMBERS):
        fields = list(base)
        fields[i] = v
        storage(cmd, fields, False)
        if cmd in (b"set", b"cas"):
            storage(cmd, fields, True)
# NUL inside numbers: memcached reads the line only up to the NUL
differ(b"set k 0 0 1\x00\r\nhello\r\n", CHUNK + ERR, FMT + CLOSED, NUL)
differ(b"set k 1\x00 0 5\r\nhello\r\n", ERR + ERR, FMT, NUL)
differ(b"incr k 1\x00\r\n", NOT_FOUND, DELTA, NUL)

# --- storage: field counts, data blocks, lines -------------------------

for line in (b"set k 0 0", b"set k 0", b"set k", b"set", b"add k 0 0",
             b"cas k 0 0", b"append", b"prepend k"):
    add(line + b"\r\n")
for line in (b"set k 0 0 5 noreply extra", b"set k 0 0 5 1 2",
             b"cas k 0 0 5", b"cas k 0 0 5 1 noreply x",
             b"add k 0 0 5 x y z", b"replace k 0 0 5 a b",
             b"append k 0 0 5 1 2", b"prepend k 0 0 5 noreply 7"):
    differ(line + b"\r\nhello\r\n", ERR + ERR, ERR, VALUE_RUN)
differ(b"set k 0 0 3 noreply extra\r\nget\r\n", ERR + ERR, ERR, VALUE_RUN)
for cmd in (b"set", b"add", b"replace", b"append", b"prepend"):
    for data, tag in ((b"", b"empty"), (b"a", b"one"),
                      (b"hel\r\nlo", b"crlf inside"),
                      (b"\x00\x01\xff", b"binary"), (b" ", b"space"),
                      (b"get k", b"a command"), (b"x" * 64, b"64")):
        add(b"%s k 7 0 %d\r\n%s\r\nget k\r\n" % (cmd, len(data), data))
        add(b"set k 1 0 2\r\nab\r\n%s k 7 0 %d\r\n%s\r\nget k\r\n"
            % (cmd, len(data), data))
    add(b"%s k 0 0 5\nhello\r\n" % cmd)
    add(b"%s k 0 0 5 noreply\r\nhello\r\nget k\r\n" % cmd)
    add(b"  %s   k  3  0  1  \r\nx\r\ngets k\r\n" % cmd)
differ(b"set k 0 0 5\r\nhelloXY\r\n", CHUNK + ERR, CHUNK + CLOSED, LOST)
differ(b"set k 0 0 3\r\nhello\r\n", CHUNK + ERR, CHUNK + CLOSED, LOST)
differ(b"set k 0 0 5 noreply\r\nhelloXY\r\n", ERR, CLOSED, LOST)
differ(b"set k 0 0 1\nx\nget k\n", CHUNK + ERR, CHUNK + CLOSED, LOST)
add(b"set k 0 0 1000000\r\n" + b"x" * 1000000 + b"\r\nget k\r\n")
add(b"set k 0 0 1048577\r\n" + b"x" * 1048577 + b"\r\nget k\r\n")
add(b"set k 0 0 1048577 noreply\r\n" + b"x" * 1048577 + b"\r\nget k\r\n")
add(b"set k 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\n")

# --- cas ----------------------------------------------------------------

for pre in (b"", b"set k 0 0 1\r\na\r\n"):
    for c in (b"0", b"1", b"18446744073709551615", b"+2"):
        add(pre + b"cas k 0 0 1 %s\r\nb\r\nget k\r\n" % c)
        add(pre + b"cas k 0 0 1 %s noreply\r\nb\r\nget k\r\n" % c)
add(b"set k 0 0 1\r\na\r\ngets k\r\ncas k 0 0 1 999999\r\nb\r\ngets k\r\n")
add(b"set k 0 0 1\r\na\r\ncas k 0 0 1 0\r\nb\r\ncas k 1 1 1 1\r\nc\r\n")

# --- keys ---------------------------------------------------------------

KEYS = [b"k", b"a" * 250, b"a\x01b", b"a\x10b", b"a\tb", b"a\rb",
        b"\x1b[31m", b"\x7f", b"\xff\xfe", "\u00e9t\u00e9".encode(),
        b"k\t", b"\tk", b"x\x0bz", b"x\x0cz", b"\x01"]
for key in KEYS:
    add(b"set %s 0 0 5\r\nhello\r\nget %s\r\n" % (key, key))
    add(b"set %s 0 0 5\r\nhello\r\ngets %s k %s\r\n" % (key, key, key))
    add(b"set %s 1 0 1\r\nx\r\ngat 0 %s\r\ngats 100 %s\r\n"
        % (key, key, key))
    add(b"add %s 0 0 1\r\nx\r\nappend %s 0 0 1\r\ny\r\n"
        b"prepend %s 0 0 1\r\nw\r\nget %s\r\n" % (key, key, key, key))
    add(b"set %s 0 0 1\r\n5\r\nincr %s 10\r\ndecr %s 3\r\nget %s\r\n"
        % (key, key, key, key))
    add(b"set %s 0 0 1\r\nx\r\ntouch %s 0\r\ndelete %s\r\ndelete %s\r\n"
        % (key, key, key, key))
    add(b"set %s 0 0 1 noreply\r\nx\r\ndelete %s noreply\r\nget %s\r\n"
        % (key, key, key))
    add(b"delete %s 0\r\n" % key)
    add(b"touch %s 10\r\n" % key)
    add(b"incr %s 1\r\n" % key)
K251 = b"a" * 251
for req in (b"set %s 0 0 5\r\nhello\r\n" % K251,
            b"add %s 0 0 5\r\nhello\r\n" % K251,
            b"cas %s 0 0 5 1\r\nhello\r\n" % K251):
    differ(req, FMT + ERR, FMT, VALUE_RUN)
differ(b"set %s 0 0 5 noreply\r\nhello\r\n" % K251, ERR, b"", VALUE_RUN)
for req in (b"get %s\r\n" % K251, b"gets k %s\r\n" % K251,
            b"delete %s\r\n" % K251, b"incr %s 1\r\n" % K251,
            b"touch %s 1\r\n" % K251, b"gat 1 %s\r\n" % K251,
            b"delete %s noreply\r\n" % K251,
            b"incr %s 1 noreply\r\n" % K251):
    add(req)
# NUL in keys
differ(b"set a\x00b 0 0 1\r\nx\r\n", ERR + ERR, FMT, NUL)
differ(b"set ab 0 0 1\r\nx\r\nget a\x00b ab\r\n", STORED + END,
       STORED + FMT, NUL)
differ(b"set a 0 0 1\r\nx\r\nget a\x00b\r\n",
       STORED + b"VALUE a 0 1\r\nx\r\nEND\r\n", STORED + FMT, NUL)
differ(b"delete a\x00\r\n", NOT_FOUND, FMT, NUL)

# --- retrieval ----------------------------------------------------------

for cmd in (b"get", b"gets"):
    for keys in (b"k", b"k k", b"nokey", b"k nokey k", b"  k  ", b"a b c",
                 b" ".join(b"k%d" % i for i in range(100))):
        add(b"set k 5 0 3\r\nabc\r\n%s %s\r\n" % (cmd, keys))
        add(b"%s %s\r\n" % (cmd, keys))
for cmd in (b"gat", b"gats"):
    for t in NUMBERS:
        add(b"set k 5 0 3\r\nabc\r\n%s %s k\r\n" % (cmd, t))
    for rest in (b"", b" ", b"100", b"100 ", b"100  ", b"0 a b c",
                 b"100 k k", b"-1 k", b"abc", b"abc k"):
        add(b"set k 5 0 3\r\nabc\r\n%s %s\r\nget k\r\n" % (cmd, rest))
add(b"set k 0 0 1\r\na\r\ngat -1 k\r\nget k\r\n")
add(b"set k 0 0 1\r\na\r\ngat 0 k\r\nget k\r\n")
add(b"get\r\n")
add(b"get \r\n")
add(b"gets\r\n")
add(b"gets  \r\n")

# --- incr / decr --------------------------------------------------------

for v in (b"0", b"1", b"9", b"10", b"99", b"100", b" 12", b"1 2", b"+5",
          b"-0", b"1\t", b"\t1", b"-1", b"12a", b"",
          b"18446744073709551615", b"18446744073709551616",
          b"00000000000000000000000000001", b"\x0b7", b"1\x00"):
    for op in (b"incr k 1", b"decr k 1", b"incr k 18446744073709551615",
               b"decr k 100"):
        add(b"set k 0 0 %d\r\n%s\r\n%s\r\nget k\r\n" % (len(v), v, op))
for cmd in (b"incr", b"decr"):
    for d in NUMBERS:
        add(b"set n 0 0 2\r\n10\r\n%s n %s\r\n" % (cmd, d))
        add(b"set n 0 0 2\r\n10\r\n%s n %s noreply\r\nget n\r\n" % (cmd, d))
    add(b"%s nokey 1\r\n" % cmd)
    add(b"%s nokey 1 noreply\r\n" % cmd)
    add(b"%s nokey abc\r\n" % cmd)
    add(b"%s nokey abc noreply\r\n" % cmd)
    add(b"set n 0 0 1\r\nx\r\n%s n 1 noreply\r\n%s n 1\r\n" % (cmd, cmd))
    add(b"%s\r\n" % cmd)
    add(b"%s n\r\n" % cmd)
    add(b"%s n 1 2 3\r\n" % cmd)
    add(b"set n 0 0 1\r\n5\r\n%s n 1 extra\r\nget n\r\n" % cmd)

# --- delete -------------------------------------------------------------

for pre in (b"", b"set k 0 0 1\r\nx\r\n"):
    for rest in (b"", b" 0", b" 0 noreply", b" noreply", b" 1", b" 00",
                 b" x", b" 0 x", b" 1 noreply", b" noreply noreply",
                 b" 0 0", b" 0 0 noreply", b" -0", b" +0"):
        add(pre + b"delete k%s\r\nget k\r\n" % rest)
add(b"delete\r\n")
add(b"delete \r\n")

# --- touch --------------------------------------------------------------

for pre in (b"", b"set k 0 0 1\r\nx\r\n"):
    for t in NUMBERS:
        add(pre + b"touch k %s\r\n" % t)
    for rest in (b" 0 noreply", b" abc noreply", b"", b" 1 2 3", b" 1 x"):
        add(pre + b"touch k%s\r\nget k\r\n" % rest)

# --- flush_all, verbosity, version, quit, shutdown, stats ---------------

for t in NUMBERS:
    delay = as_long(t)
    # delays that would flush during the test are not sent alone
    if delay is not None and 0 < delay < 3600:
        continue
    req = b"set k 0 0 1\r\nx\r\nflush_all %s\r\nget k\r\n" % t
    if delay is not None and (delay + 2 ** 31) % 2 ** 32 - 2 ** 31 != delay:
        # memcached cuts the delay to 32 bits: 2^32 flushes now
        d32 = (delay + 2 ** 31) % 2 ** 32 - 2 ** 31
        hit = STORED + b"OK\r\nVALUE k 0 1\r\nx\r\nEND\r\n"
        gone = STORED + b"OK\r\nEND\r\n"
        differ(req, gone if d32 <= 0 or d32 < 3600 else hit,
               gone if delay <= 0 else hit, EXPTIME64)
    else:
        add(req)
for rest in (b"noreply", b"0 noreply", b"abc noreply", b"noreply noreply",
             b"0 0", b"-1 x", b"1 2 3", b"  ", b"0  "):
    add(b"set k 0 0 1\r\nx\r\nflush_all %s\r\nget k\r\n" % rest)
for lvl in NUMBERS + [b"", b"1 noreply", b"noreply", b"1 2", b"1 2 3",
                      b"abc noreply"]:
    add(b"verbosity %s\r\nverbosity 0 noreply\r\n" % lvl)
for rest in (b"", b" x", b" 1 2 3", b"  "):
    add(b"quit%s\r\nget k\r\n" % rest)
    add(b"shutdown%s\r\n" % rest)
add(b"shutdown graceful\r\n")
add(b"shutdown graceful x\r\n")
add(b"stats nonsense\r\n")
add(b"stats nonsense x\r\n")

# --- framing: line ends, blanks, unknown commands, HTTP -----------------

for req in (b"\r\n", b"\n", b"\r\r\n", b" \r\n", b"   \r\n", b"\t\r\n",
            b"get k\n", b"get k\r\r\n", b"get k \r\n", b"  get   k  \r\n",
            b"get\tk\r\n", b"GET k\r\n", b"Get k\r\n", b"SET k 0 0 1\r\n",
            b"gett k\r\n", b"ge k\r\n", b"bogus\r\n", b"bogus a b c\r\n",
            b"\x00\r\n", b"\x00" * 10 + b"\r\n", b"\xff\xfe\r\n",
            b"set k 0 0 1\r\nx\r\n\r\nget k\r\n",
            b"GET / HTTP/1.0\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /x HTTP/1.1\r\n", b"get / HTTP/1.0\r\n",
            b"x HTTP/1.0\r\n", b"HTTP/1.0\r\n", b"GET /\r\n",
            b"xx HTTP/1.0\r\n", b"ab HTTP/1.0\r\n", b"gx HTTP/1.0\r\n",
            b"mz HTTP/1.0\r\n", b"mzz HTTP/1.0\r\n", b"pzz HTTP/1.0\r\n",
            b"xy a HTTP/1.0\r\n", b"1 HTTP/1.1\r\n", b"tz HTTP/1.1\r\n",
            b"PRI * HTTP/2.0\r\n", b"get k HTTP/1.0\r\n",
            b"set k 0 0 1 HTTP/1.0\r\nx\r\n", b"GET / HTTP/1.0 x\r\n",
            b"bogus HTTP/\r\n", b"bogus http/1.0\r\n",
            b"x" * 2047 + b"\r\n", b"get " + b"k " * 1000 + b"\r\n"):
    add(req)

# --- noreply ------------------------------------------------------------

for req in (b"set k 0 0 1 noreply\r\na\r\n", b"add k 0 0 1 noreply\r\na\r\n",
            b"replace k 0 0 1 noreply\r\na\r\n",
            b"append k 0 0 1 noreply\r\na\r\n",
            b"prepend k 0 0 1 noreply\r\na\r\n",
            b"cas k 0 0 1 1 noreply\r\na\r\n", b"delete k noreply\r\n",
            b"incr k 1 noreply\r\n", b"decr k 1 noreply\r\n",
            b"touch k 1 noreply\r\n", b"flush_all noreply\r\n",
            b"verbosity 0 noreply\r\n", b"get k noreply\r\n",
            b"gets k noreply\r\n",
            b"set k 0 0 1 NOREPLY\r\na\r\n", b"set k 0 0 1 noreply \r\na\r\n",
            b"set k 0 0 1 norepl\r\na\r\n"):
    add(req + b"get k\r\n")
    add(b"set k 0 0 1\r\n7\r\n" + req + b"get k\r\n")

# --- pipelines ----------------------------------------------------------

STEPS = [b"set a 1 0 1\r\nA\r\n", b"get a\r\n", b"incr n 1\r\n",
         b"set n 0 0 1\r\n9\r\n", b"delete a\r\n", b"bogus\r\n",
         b"gets a n\r\n", b"append a 0 0 1\r\nB\r\n", b"touch n 0\r\n",
         b"decr n 5 noreply\r\n", b"gat 0 a n\r\n"]
for combo in itertools.permutations(STEPS[:6], 3):
    add(b"".join(combo))
for i in range(len(STEPS)):
    add(b"".join(STEPS[i:] + STEPS[:i]))

# Requests whose counters differ on purpose (test_differential's
# COUNTER_DIFFERENCES): cached refuses the whole line before running any
# of it, where memcached has counted what it began -- the flush of a
# flush_all with a bad delay, the keys before a bad one in a get.
TEXT_COUNTER_DIFFERENCES = {b"gets k %s\r\n" % K251}
for _req in TEXT:
    for _line in _req.split(b"\r\n"):
        _t = _line.split()
        if _t[:1] != [b"flush_all"] or len(_t) < 2:
            continue
        if (len(_t) == 2 and _t[1] == b"noreply") or len(_t) > 3:
            continue
        if as_long(_t[1]) is None:
            TEXT_COUNTER_DIFFERENCES.add(_req)

# Requests memcached cannot take in a pipeline (test_differential's
# PIPELINE_UNSAFE): a retrieval with a bad key makes memcached 1.6.18 drop
# the replies it had queued before it.
TEXT_PIPELINE_UNSAFE = {r for r in TEXT
                        if r.split(b" ")[0] in (b"get", b"gets", b"gat",
                                                b"gats") and K251 in r}
