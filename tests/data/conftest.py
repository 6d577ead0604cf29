"""Fixtures of the data tests: see ``data_server.py``."""

from data_server import originals, server  # noqa: F401
