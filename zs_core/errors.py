"""The one exception type for bad user input (command lines turn it into one line and exit code 2), and the
one way an error becomes a line of text."""
from __future__ import annotations


class InputError(Exception):
    """Bad input named by file, line or key, e.g. ``dev.tsv:1043: expected word<TAB>label, got 1 column``."""


MOST_SHOWN = 60  # characters of a value an error message shows


def shown(value) -> str:
    """``repr(value)`` for an error message, cut to MOST_SHOWN characters (a value can be huge)."""
    text = repr(value)
    return text if len(text) <= MOST_SHOWN else text[:MOST_SHOWN] + f"... ({len(text)} characters)"


def error_line(error: BaseException, with_type: bool = False, most: int = 500) -> str:
    """An error as one line: the root cause (following ``__cause__`` and Ray's ``cause``), its message's
    first line, or its last when the message holds a traceback (a wrapped remote error); with ``with_type``
    prefixed by the cause's type name."""
    cause = error
    while getattr(cause, "cause", None) is not None or getattr(cause, "__cause__", None) is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    text = str(cause).strip()
    lines = [t.strip() for t in text.splitlines() if t.strip()]
    line = (lines[-1] if "Traceback" in text else lines[0]) if lines else type(cause).__name__
    return (f"{type(cause).__name__}: {line}" if with_type else line)[:most]
