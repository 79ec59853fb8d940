"""A mixed load on one cached for tests/tsan/run.sh: 16 client threads
(and 4 more speaking the binary protocol), each on its own connection
(reconnecting now and then), send pipelined
batches of get/gets/gat, set/add/replace/append/prepend/cas, delete,
incr/decr, touch and the odd flush_all, stats and stats conns, on a shared
key set with short TTLs, while -m 2 keeps the store evicting, the expiry
thread reclaims, and idle_timeout and write_timeout close the silent and
the never-reading connections opened alongside, and "watch"
connections of every stream come and go (some never reading).

    CACHED=build-tsan/cached python3 tests/tsan/server_load.py [seconds]

Exit status 0 when every batch was answered and the server exited 0 on
SIGTERM (ThreadSanitizer makes it exit 66 after a report).
"""
import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from common import Client, Server  # noqa: E402

KEYS = [b"key:%d" % i for i in range(300)]


def command(r):
    """One random request."""
    k = r.choice(KEYS)
    ttl = r.choice((0, 0, 0, 1, 2, 3))
    op = r.randrange(100)
    if op < 25:
        return b"get %s %s %s\r\n" % (k, r.choice(KEYS), r.choice(KEYS))
    if op < 30:
        return b"gets %s\r\n" % k
    if op < 34:
        return b"gat %d %s\r\n" % (ttl, k)
    if op < 55:
        n = r.choice((1, 10, 100, 1000, 5000, 20000, 100000))
        verb = r.choice((b"set", b"set", b"set", b"add", b"replace",
                         b"append", b"prepend"))
        return b"%s %s 0 %d %d\r\n%s\r\n" % (verb, k, ttl, n, b"v" * n)
    if op < 58:
        return b"cas %s 0 0 1 %d\r\nc\r\n" % (k, r.randrange(100000))
    if op < 68:
        return b"delete %s\r\n" % k
    if op < 74:
        return b"set %s 0 0 1\r\n7\r\n" % k
    if op < 84:
        return b"%s %s %d\r\n" % (r.choice((b"incr", b"decr")), k,
                                  r.randrange(1000))
    if op < 94:
        return b"touch %s %d\r\n" % (k, ttl)
    if op < 97:
        return b"stats\r\n"
    if op < 99:
        return b"stats conns\r\n"
    if r.randrange(20) == 0:
        return b"flush_all\r\n"
    # the stats families and run-time tuning (issue 13; cache_memlimit
    # is store_hammer's: its 8 MB minimum would end the eviction here)
    return r.choice((b"stats items\r\n", b"stats slabs\r\n",
                     b"stats settings\r\n", b"stats detail on\r\n",
                     b"stats detail dump\r\n", b"stats detail off\r\n",
                     b"lru tune 10 25 0.1 2\r\n", b"slabs automove 2\r\n"))


def client(port, seed, deadline, result):
    r = random.Random(seed)
    c = None
    while time.monotonic() < deadline:
        if c is None or r.randrange(50) == 0:
            if c is not None:
                c.close()
            c = Client(socket.create_connection(("127.0.0.1", port), 30))
        batch = b"".join(command(r) for _ in range(r.randint(1, 20)))
        reply = c.call(batch, timeout=60)
        if reply.endswith(b"<CLOSED>"):
            result["closed"] += 1
            c = None
            continue
        result["batches"] += 1
    if c is not None:
        c.close()


def bin_req(op, key=b"", ext=b"", val=b""):
    """One binary request (opaque 0, no CAS)."""
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(ext), 0, 0,
                       len(ext) + len(key) + len(val), 0, 0) + ext + key + val


def bin_command(r):
    """One random binary request: gets, stores, incr, delete, touch, stat."""
    k = r.choice(KEYS)
    ttl = r.choice((0, 0, 1, 2))
    op = r.randrange(100)
    if op < 35:
        return bin_req(r.choice((0x00, 0x09, 0x0c, 0x0d)), k)
    if op < 55:
        n = r.choice((1, 100, 5000, 100000))
        return bin_req(r.choice((0x01, 0x11, 0x02, 0x03)), k,
                       struct.pack(">II", 0, ttl), b"b" * n)
    if op < 60:
        return bin_req(r.choice((0x0e, 0x0f, 0x19)), k, b"", b"a")
    if op < 75:
        return bin_req(r.choice((0x05, 0x06, 0x15)), k,
                       struct.pack(">QQI", r.randrange(100), 5, ttl))
    if op < 85:
        return bin_req(r.choice((0x04, 0x14)), k)
    if op < 95:
        return bin_req(r.choice((0x1c, 0x1d, 0x1e)), k,
                       struct.pack(">I", ttl))
    return bin_req(0x10)


def recv_some(s):
    """What the socket has, b"" once the server closed or reset it."""
    try:
        return s.recv(1 << 20)
    except ConnectionResetError:
        return b""


def bin_client(port, seed, deadline, result):
    """Sends batches of binary requests ended by a NOOP and reads every
    response up to the NOOP's."""
    r = random.Random(seed)
    s = None
    while time.monotonic() < deadline:
        if s is None or r.randrange(50) == 0:
            if s is not None:
                s.close()
            s = socket.create_connection(("127.0.0.1", port), 60)
            buf = b""
        batch = b"".join(bin_command(r) for _ in range(r.randint(1, 20)))
        s.sendall(batch + bin_req(0x0a))
        while True:
            while len(buf) < 24:
                chunk = recv_some(s)
                if not chunk:
                    break
                buf += chunk
            if len(buf) < 24:
                result["closed"] += 1
                s = None
                break
            need = 24 + struct.unpack(">I", buf[8:12])[0]
            while len(buf) < need:
                chunk = recv_some(s)
                if not chunk:
                    break
                buf += chunk
            if len(buf) < need:
                result["closed"] += 1
                s = None
                break
            op, buf = buf[1], buf[need:]
            if op == 0x0a:
                result["batches"] += 1
                break
    if s is not None:
        s.close()


def nuisances(port, deadline):
    """Connections for the timers: silent ones, half-sent ones, and ones
    that ask for a lot and never read."""
    socks = []
    while time.monotonic() < deadline:
        s = socket.create_connection(("127.0.0.1", port), 30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        kind = len(socks) % 3
        if kind == 1:
            s.sendall(b"set half 0 0 100\r\nabc")
        elif kind == 2:
            s.setblocking(False)
            try:
                s.send((b"get " + b" ".join(KEYS) + b"\r\n") * 20)
            except BlockingIOError:
                pass
        socks.append(s)
        time.sleep(0.2)
    for s in socks:
        s.close()


def watchers(port, deadline):
    """watch connections coming and going under the load: of each three,
    two read what they get, one never reads (its lines are skipped)."""
    r = random.Random(7)
    while time.monotonic() < deadline:
        socks = []
        for streams in (b"", b"fetchers mutations",
                        b"evictions connevents deletions mutations "
                        b"fetchers"):
            s = socket.create_connection(("127.0.0.1", port), 30)
            s.sendall(b"watch " + streams + b"\r\n")
            socks.append(s)
        end = time.monotonic() + r.uniform(0.2, 1.0)
        while time.monotonic() < end:
            for s in socks[:2]:
                s.settimeout(0.05)
                try:
                    s.recv(65536)
                except socket.timeout:
                    pass
        for s in socks:
            s.close()


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 20
    with Server("-t", "4", "-m", "2", "-c", "200",
                "-o", "idle_timeout=2", "-o", "write_timeout=1") as srv:
        deadline = time.monotonic() + secs
        result = {"batches": 0, "closed": 0}
        threads = [threading.Thread(target=client,
                                    args=(srv.port, i, deadline, result))
                   for i in range(16)]
        threads += [threading.Thread(target=bin_client,
                                     args=(srv.port, 100 + i, deadline,
                                           result))
                    for i in range(4)]
        threads.append(threading.Thread(target=nuisances,
                                        args=(srv.port, deadline)))
        threads.append(threading.Thread(target=watchers,
                                        args=(srv.port, deadline)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = srv.connect().stats()
        status = srv.stop()
    print("server_load: %.0f s, %d batches answered, %d connections closed "
          "by the server (idle/write timeouts), %s evictions, %s reclaimed, "
          "%s idle kicks, %s output kicks; cached exited %d"
          % (secs, result["batches"], result["closed"], stats["evictions"],
             stats["reclaimed"], stats["idle_kicks"], stats["output_kicks"],
             status))
    return 0 if status == 0 and result["batches"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
