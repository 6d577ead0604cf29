"""Named experiments that reproduce the paper's results."""
