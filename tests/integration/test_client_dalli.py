"""Ruby's Dalli 3 (ruby-dalli; binary protocol only) against memcached and
cached, with and without SASL: clients/dalli.rb run by bin_clients.py.
Skips loudly (exit 77) without ruby or Dalli."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bin_clients  # noqa: E402


def available():
    if not shutil.which("ruby"):
        return "ruby not installed (packages ruby, ruby-dalli)"
    if not bin_clients.probe(["ruby", "-e", "require 'dalli'"]):
        return "Dalli not installed (package ruby-dalli)"
    return None


bin_clients.main("dalli", ["ruby", bin_clients.script("dalli.rb")],
                 available)
