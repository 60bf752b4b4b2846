"""Where a command line's ``key=value`` override goes: dots reach nested keys (data.limit.train=16); its value is
read by sweep.yamlfile (1e-4 a number)."""
from __future__ import annotations

from typing import Any


def set_nested(doc: dict, path: list[str], value: Any) -> None:
    """doc[path[0]][path[1]]... = value, making (copies of) the mappings on the way."""
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        node[key] = dict(child) if isinstance(child, dict) else {}
        node = node[key]
    node[path[-1]] = value
