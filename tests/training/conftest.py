"""Triton's CPU interpreter for the tests that train with the persistent kernel.

``TRITON_INTERPRET=1`` only takes effect when it is set before Triton is first
imported, so it is set here, before any test module of the training is collected.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
