"""pylibmc_check.py -- the binary client check of test_client_pylibmc.py:
python3-pylibmc (libmemcached) with binary=True against the server at
argv[1] (host:port).  Prints one line per check and exits 1 if any answer
was wrong.
"""
import os
import sys

import pylibmc

failed = False


def check(name, got, want):
    global failed
    if got == want:
        print("ok   %s" % name)
    else:
        print("FAIL %s: got %r, want %r" % (name, got if not isinstance(
            got, bytes) else got[:200], want if not isinstance(
            want, bytes) else want[:200]))
        failed = True


def outcome(fn, *args):
    """fn's result, or the name of the pylibmc error it raised."""
    try:
        return fn(*args)
    except pylibmc.Error as e:
        return type(e).__name__


kw = {}
if os.environ.get("CLIENT_USER"):
    kw = dict(username=os.environ["CLIENT_USER"],
              password=os.environ["CLIENT_PASSWORD"])
mc = pylibmc.Client([sys.argv[1]], binary=True,
                    behaviors={"cas": True, "receive_timeout": 5000000,
                               "send_timeout": 5000000}, **kw)

check("flush", outcome(mc.flush_all, ), True)
check("set", outcome(mc.set, "k1", b"v1"), True)
check("get", outcome(mc.get, "k1"), b"v1")
check("get miss", outcome(mc.get, "nokey"), None)
mc.set_multi({"k2": b"v2", "k3": b"v3"})
check("get_multi", mc.get_multi(["k1", "k2", "k3", "nokey"]),
      {"k1": b"v1", "k2": b"v2", "k3": b"v3"})
check("add existing", outcome(mc.add, "k1", b"x"), False)
check("add new", outcome(mc.add, "k4", b"v4"), True)
check("replace missing", outcome(mc.replace, "k5", b"x"), "NotFound")
check("replace existing", outcome(mc.replace, "k4", b"v4b"), True)
check("get replaced", outcome(mc.get, "k4"), b"v4b")
check("delete", outcome(mc.delete, "k4"), True)
check("delete miss", outcome(mc.delete, "k4"), False)
check("get deleted", outcome(mc.get, "k4"), None)
mc.set("n", b"10")
check("incr", outcome(mc.incr, "n", 5), 15)
check("decr", outcome(mc.decr, "n", 20), 0)
check("incr miss", outcome(mc.incr, "nonum", 1), "NotFound")
mc.set("s", b"abc")
check("append", outcome(mc.append, "s", b"def"), True)
check("prepend", outcome(mc.prepend, "s", b"xyz"), True)
check("get appended", outcome(mc.get, "s"), b"xyzabcdef")
check("append miss", outcome(mc.append, "nos", b"def"), False)
value, cas = mc.gets("s")
check("gets", value, b"xyzabcdef")
check("cas", outcome(mc.cas, "s", b"new", cas), True)
check("cas stale", outcome(mc.cas, "s", b"newer", cas), False)
check("get after cas", outcome(mc.get, "s"), b"new")
check("touch", outcome(mc.touch, "s", 100), True)
check("touch miss", outcome(mc.touch, "nos", 100), False)
stats = mc.get_stats()[0][1]
check("stats pid", "pid" in stats, True)
check("stats curr_items", int(stats["curr_items"]) >= 1, True)
big = bytes(i * 7 % 251 for i in range(500 * 1024))
check("set 500 KB", outcome(mc.set, "big", big), True)
check("get 500 KB", mc.get("big") == big, True)
nasty = b"x\r\nflush_all\r\n\x80\x08\x00\x00 END\r\n"
check("set binary-safe", outcome(mc.set, "nasty", nasty), True)
check("get binary-safe", mc.get("nasty"), nasty)
check("others survive", mc.get_multi(["k1", "k2", "k3"]),
      {"k1": b"v1", "k2": b"v2", "k3": b"v3"})
check("delete_multi", outcome(mc.delete_multi, ["k2", "k3"]), True)
check("get_multi after delete_multi", mc.get_multi(["k1", "k2", "k3"]),
      {"k1": b"v1"})
check("flush all", outcome(mc.flush_all, ), True)
check("get after flush", outcome(mc.get, "k1"), None)
sys.exit(1 if failed else 0)
