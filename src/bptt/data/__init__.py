"""The benchmark data: the embedded table of files, checking a directory, fetching.

* :mod:`bptt.data.registry`: every supported file with its SHA-256, size, data
  set and original public location;
* :mod:`bptt.data.verify`: finding a data directory and checking its files;
* :mod:`bptt.data.download` (with :mod:`bptt.data.fetch`): ``bptt data download``;
* :mod:`bptt.data.ptb_chars`: the character-level Penn Treebank rule.

Nothing downloads on its own: only :func:`bptt.data.download.download` (the
``bptt data download`` command) touches the network.
"""
