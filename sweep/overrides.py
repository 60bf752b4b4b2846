"""A command line's ``key=value`` override: its value (YAML, with 1e-4 a number) and where it goes (nested keys)."""
from __future__ import annotations

import re
from typing import Any

import yaml

SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def override_value(text: str) -> Any:
    """An override's value, read as YAML, except that a number in scientific notation without a dot (``1e-4``,
    which YAML 1.1 reads as text) is a number, in lists and mappings too."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text

    def numbers(v: Any) -> Any:
        if isinstance(v, str) and SCIENTIFIC.fullmatch(v.strip()):
            return float(v)
        if isinstance(v, list):
            return [numbers(x) for x in v]
        if isinstance(v, dict):
            return {k: numbers(x) for k, x in v.items()}
        return v

    return numbers(value)


def set_nested(doc: dict, path: list[str], value: Any) -> None:
    """doc[path[0]][path[1]]... = value, making (copies of) the mappings on the way."""
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        node[key] = dict(child) if isinstance(child, dict) else {}
        node = node[key]
    node[path[-1]] = value
