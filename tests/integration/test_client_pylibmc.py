"""python3-pylibmc (libmemcached) with binary=True against memcached and
cached, with and without SASL: clients/pylibmc_check.py run by
bin_clients.py under the Python that has pylibmc (Debian's /usr/bin/python3
when the PATH's python3 is another).  Skips loudly (exit 77) without it."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bin_clients  # noqa: E402

PYTHON = next((p for p in (sys.executable, "/usr/bin/python3")
               if bin_clients.probe([p, "-c", "import pylibmc"])), None)


def available():
    if PYTHON is None:
        return "pylibmc not installed (package python3-pylibmc)"
    return None


bin_clients.main("pylibmc", [PYTHON or "python3",
                             bin_clients.script("pylibmc_check.py")],
                 available)
