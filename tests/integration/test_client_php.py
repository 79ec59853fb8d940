"""php-memcached (libmemcached) with Memcached::OPT_BINARY_PROTOCOL against
memcached and cached, with and without SASL: clients/php_memcached.php run
by bin_clients.py with php-cli.  Skips loudly (exit 77) without php or the
extension."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bin_clients  # noqa: E402


def available():
    if not shutil.which("php"):
        return "php not installed (package php-cli)"
    if not bin_clients.probe(["php", "-r", "exit(class_exists('Memcached')"
                              " ? 0 : 1);"]):
        return "the Memcached extension is not loaded (package " \
            "php-memcached)"
    return None


bin_clients.main("php-memcached", ["php",
                                   bin_clients.script("php_memcached.php")],
                 available)
