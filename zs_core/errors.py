"""The one exception type for bad user input; command lines turn it into one line and exit code 2."""


class InputError(Exception):
    """Bad input named by file, line or key, e.g. ``dev.tsv:1043: expected word<TAB>label, got 1 column``."""
