"""npm's memjs (binary protocol only) against memcached and cached, with
and without SASL: clients/memjs_check.js run by bin_clients.py with node.
memjs is not a Debian package: quickstart.sh installs it with
"npm install --prefix BUILDDIR/npm memjs", and the test finds it in
$TOP_BUILDDIR/npm/node_modules (or $MEMJS_NODE_PATH).  Skips loudly (exit
77) without node or memjs."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bin_clients  # noqa: E402

NODE_PATH = os.environ.get("MEMJS_NODE_PATH") or os.path.join(
    os.environ.get("TOP_BUILDDIR", os.getcwd()), "npm", "node_modules")
ENV = dict(os.environ, NODE_PATH=NODE_PATH)


def available():
    if not shutil.which("node"):
        return "node not installed (package nodejs)"
    if not bin_clients.probe(["node", "-e", "require('memjs')"], env=ENV):
        return "memjs not found in %s (npm install --prefix BUILDDIR/npm " \
            "memjs failed or did not run)" % NODE_PATH
    return None


bin_clients.main("memjs", ["node", bin_clients.script("memjs_check.js")],
                 available, env=ENV)
