"""The report's sortable tables: each cell's sort key and text (numbers as sweep.text shows them: a column of
learning rates in scientific notation), and which columns lead (what a reader compares across rows: the method,
the configuration keys that vary, the selection metric, test token F1 and MAP, the seed) while the others wait
behind the table's "all columns" toggle, so a table fits 1400 px without wrapped headers or a scroll bar."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from sweep.leaderboard import model_label
from sweep.text import column_formatter
from zs_core.config import KEYS
from zs_core.protocol import TOK_F1, TOK_MAP, on_test

if TYPE_CHECKING:
    import pandas as pd

MODEL_COLUMNS = ("model", "model_name")  # shown by model_label, the whole path in the title
TEST_COLUMNS = (on_test(TOK_F1), on_test(TOK_MAP))


def varying_keys(frame: pd.DataFrame, search: Sequence[str] = ()) -> list[str]:
    """The searched keys and every other config column whose value differs between the trials (not the seed)."""
    trials = frame[frame["trial_id"] != "random"] if "trial_id" in frame else frame
    differ = [c for c in frame.columns if c in KEYS and c != "seed" and trials[c].nunique(dropna=False) > 1]
    return list(dict.fromkeys([*[k for k in search if k in frame.columns], *differ]))


def leaderboard_columns(board: pd.DataFrame, search: Sequence[str], metric: str,
                        metrics: Sequence[str]) -> tuple[list[str], list[str]]:
    """(leading columns, the rest) of a sweep's leaderboard."""
    status = ["status"] if "status" in board and set(board["status"].dropna()) - {"TERMINATED"} else []
    lead = ["trial_id", "method", *status, *varying_keys(board, search), "seed", metric, *TEST_COLUMNS]
    lead = [c for c in dict.fromkeys(lead) if c in board.columns]
    error = ["error"] if "error" in board and board["error"].notna().any() else []
    rest = ["status", "best_epoch", "kept", *metrics, *error]
    return lead, [c for c in dict.fromkeys(rest) if c in board.columns and c not in lead]


def cell(value, formatter: Callable[[float], str] | None = None) -> tuple[str, str]:
    """(sort key, shown text) of one table cell; missing values have an empty key and sort last."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "", ""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value)), str(bool(value)).lower()
    if isinstance(value, float):
        return repr(value), (formatter or column_formatter([value]))(value)
    return str(value), str(value)


def table(frame: pd.DataFrame, columns: list[str], table_id: str, row_class=None, lead: int | None = None,
          spread: dict[str, str] | None = None) -> dict:
    """A sortable table for the template; ``row_class(row) -> str`` marks rows (the random baseline, kept
    trials); the first ``lead`` columns are shown, the others behind the toggle (None: all shown); ``spread``
    maps a column to the column of its std over seeds, shown as ``mean ± std``. Models show their
    ``model_label``, long text its end; the whole value is in the cell's title."""
    import pandas as pd

    columns = [c for c in columns if c in frame.columns]
    spread = {c: s for c, s in (spread or {}).items() if s in frame.columns}
    formats = {c: column_formatter(frame[c]) for c in [*columns, *spread.values()]
               if pd.api.types.is_float_dtype(frame[c])}
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for column in columns:
            key, text = cell(row[column], formats.get(column))
            if column in MODEL_COLUMNS:  # sorted by the label shown
                key = model_label(text) if text else ""
            if column in spread and text:
                text += f" ± {cell(row[spread[column]], formats.get(spread[column]))[1] or '–'}"
            cells.append({"key": key, "text": key if column in MODEL_COLUMNS else _short(text), "title": text,
                          "number": column not in MODEL_COLUMNS and _number(key)})
        rows.append({"cls": row_class(row) if row_class else "", "cells": cells})
    lead = len(columns) if lead is None else min(lead, len(columns))
    return {"id": table_id, "columns": columns, "rows": rows, "lead": lead, "more": len(columns) - lead}


def _number(key: str) -> bool:
    try:
        return key == "" or float(key) == float(key)
    except ValueError:
        return False


def _short(text: str, most: int = 48) -> str:
    return text if len(text) <= most else "…" + text[-(most - 1):]
