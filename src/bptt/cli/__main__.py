"""``python -m bptt.cli``: the same as the ``bptt`` command."""

from bptt.cli import main

main()
