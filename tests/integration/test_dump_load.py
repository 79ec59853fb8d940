"""A big key dump under write load (issue 13): cached holds KEYS keys; one
client dumps them with "lru_crawler metadump all" while 8 clients write
(set, overwrite and delete) keys of their own, which grows the hash
tables and moves items while the dump walks them.  Every key present at
the start and never deleted must be listed exactly once; the writers'
keys at most once each.

KEYS is 2,000,000 in a normal build and 200,000 under a sanitizer or a
wrapper such as valgrind (common.INSTRUMENTED), where 2M would take
minutes; $DUMP_LOAD_KEYS overrides both.  The preload is pipelined
(noreply sets, then one sentinel), so the test takes a few seconds.
Nothing waits for time to pass: writers run until the dump is read, and
the dump starts once every writer has finished a first batch.  A writer
sends a batch for each piece of the dump the reader took since its last
one (Progress), so the writes spread over the whole dump and their volume
follows the dump's, not the CPU left over: `make -j2 check` runs other
tests beside this one.
"""
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import INSTRUMENTED, TIME_SCALE, Server  # noqa: E402

KEYS = int(os.environ.get("DUMP_LOAD_KEYS",
                          "200000" if INSTRUMENTED else "2000000"))
WRITERS = 8
BATCH = 100          # requests a writer pipelines before its sentinel
PRELOAD_CHUNK = 100000


class Progress:
    """How many pieces of the dump the reader has taken; writers wait for
    the next one."""

    def __init__(self):
        self.cond = threading.Condition()
        self.pieces = 0
        self.done = False

    def advance(self, done=False):
        with self.cond:
            self.pieces += 1
            self.done = self.done or done
            self.cond.notify_all()

    def wait_past(self, seen):
        """Waits until more than `seen` pieces were read (or the dump is
        over); returns the count."""
        with self.cond:
            self.cond.wait_for(lambda: self.pieces > seen or self.done,
                               120 * TIME_SCALE)
            return self.pieces


class Writer(threading.Thread):
    """Sets, overwrites and deletes keys "w<id>:<n>", a batch per piece of
    the dump read, until stopped."""

    def __init__(self, srv, ident, stop, progress):
        super().__init__(daemon=True)
        self.c = srv.connect(timeout=60)
        self.wid = ident
        self.stop = stop
        self.progress = progress
        self.batches = 0
        self.first = threading.Event()
        self.error = None

    def run(self):
        n = 0
        seen = 0
        try:
            while not self.stop.is_set():
                if self.batches > 0:
                    seen = self.progress.wait_past(seen)
                    if self.stop.is_set():
                        break
                reqs = []
                for _ in range(BATCH):
                    key = b"w%d:%d" % (self.wid, n % 20000)
                    if (n // 20000) % 3 == 2:
                        reqs.append(b"delete %s noreply\r\n" % key)
                    else:
                        reqs.append(b"set %s 0 0 2 noreply\r\n%02d\r\n"
                                    % (key, n % 100))
                    n += 1
                out = self.c.call(b"".join(reqs), timeout=60)
                if out != b"":
                    raise AssertionError("writer got %r" % out[:200])
                self.batches += 1
                self.first.set()
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.error = e
            self.first.set()
        finally:
            self.c.close()


class DumpLoadTest(unittest.TestCase):

    def test_dump_under_writes(self):
        srv = Server("-m", "2048", "-t", "4")
        try:
            self.run_dump(srv)
        finally:
            self.assertEqual(srv.stop(), 0)

    def run_dump(self, srv):
        c = srv.connect(timeout=120)
        for lo in range(0, KEYS, PRELOAD_CHUNK):
            hi = min(lo + PRELOAD_CHUNK, KEYS)
            c.send(b"".join(b"set k%d 0 0 1 noreply\r\nx\r\n" % i
                            for i in range(lo, hi)))
        self.assertEqual(c.call(b"", timeout=120), b"")
        self.assertEqual(int(c.stats()["curr_items"]), KEYS)

        stop = threading.Event()
        progress = Progress()
        writers = [Writer(srv, i, stop, progress) for i in range(WRITERS)]
        for w in writers:
            w.start()
        for w in writers:
            self.assertTrue(w.first.wait(60 * TIME_SCALE))
            self.assertIsNone(w.error)
        before = sum(w.batches for w in writers)

        d = srv.connect(timeout=120)
        d.send(b"lru_crawler metadump all\r\n")
        chunks = []
        tail = b""
        d.sock.settimeout(120 * TIME_SCALE)
        while not tail.endswith(b"END\r\n"):
            chunk = d.sock.recv(1 << 20)
            self.assertTrue(chunk, "connection closed mid-dump")
            chunks.append(chunk)
            tail = (tail + chunk)[-5:]
            progress.advance()
        during = sum(w.batches for w in writers) - before
        stop.set()
        progress.advance(done=True)
        for w in writers:
            w.join(60 * TIME_SCALE)
            self.assertFalse(w.is_alive())
            self.assertIsNone(w.error)
        d.close()
        c.close()

        data = b"".join(chunks)
        self.assertTrue(data.endswith(b"\nEND\r\n"))
        seen = bytearray(KEYS)
        wseen = set()
        lines = data[:-5].split(b"\n")
        self.assertEqual(lines[-1], b"")
        for line in lines[:-1]:
            key = line[4:line.index(b" ")]
            if key[:1] == b"k":
                i = int(key[1:])
                if seen[i]:
                    self.fail("k%d listed twice" % i)
                seen[i] = 1
            else:
                self.assertEqual(key[:1], b"w", line)
                self.assertNotIn(key, wseen, "listed twice")
                wseen.add(key)
        missing = seen.count(0)
        self.assertEqual(missing, 0, "%d of %d keys not listed, e.g. k%d"
                         % (missing, KEYS, seen.find(0)))
        print("%d keys dumped exactly once; %d writer keys listed; %d "
              "writer batches of %d ran during the dump"
              % (KEYS, len(wseen), during, BATCH), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
