"""The ``bptt`` command: one module per command group.

``train`` (``bptt tasks``, ``bptt train``), ``runs`` (``bptt runs``, ``bptt sweeps``), ``demo``, ``plot``, ``reproduce``
(``bptt reproduce``, ``bptt report``) and ``table1`` (``bptt reproduce table1``); what
they share (the store, SIGTERM, common options, clean errors) is in :mod:`.common`.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="bptt")
def main() -> None:
    """Train recurrent networks across long time lags, and see why that is hard.

    The system of Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent
    neural networks" (ICML 2013): exact BPTT, gradient-norm clipping, the regularizer Ω,
    and the pathological long-term-dependency tasks.
    """


from bptt.cli.data import data  # noqa: E402
from bptt.cli.demo import demo  # noqa: E402
from bptt.cli.plot import plot  # noqa: E402
from bptt.cli.reproduce import report, reproduce  # noqa: E402
from bptt.cli.runs import runs, sweeps  # noqa: E402
from bptt.cli.table1 import table1_command  # noqa: E402
from bptt.cli.train import tasks_cmd, train  # noqa: E402

reproduce.add_command(table1_command, name="table1")
for _command in (tasks_cmd, train, runs, sweeps, demo, reproduce, report, plot, data):
    main.add_command(_command)

__all__ = ["main"]
