"""Where a command line's ``key=value`` override goes: dots reach nested keys (data.limit.train=16); its value is
read by sweep.yamlfile (1e-4 a number); and which override an error of the resulting sweep is blamed on."""
from __future__ import annotations

from typing import Any, Callable

from sweep.yamlfile import load_yaml
from zs_core.config import KEYS
from zs_core.errors import InputError, shown


def set_nested(doc: dict, path: list[str], value: Any) -> None:
    """doc[path[0]][path[1]]... = value, making (copies of) the mappings on the way."""
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        node[key] = dict(child) if isinstance(child, dict) else {}
        node = node[key]
    node[path[-1]] = value


def apply_overrides(doc: dict, overrides: list[str], source: str) -> dict:
    """A copy of a sweep document with ``overrides`` applied in order."""
    doc = {**doc, "fixed": dict(doc["fixed"]), "search": dict(doc["search"])}
    for item in overrides:
        _override(doc, item, source)
    return doc


def blame(err: InputError, doc: dict, overrides: list[str], build: Callable[[dict], Any], source: str) -> InputError:
    """The error is the file's when the file alone has it, else the first override's after which it appears: its
    line names that override (``override learning_rate=abc: ...``), not the file."""
    for n in range(len(overrides) + 1):
        try:
            build(apply_overrides(doc, overrides[:n], source))
        except InputError as first:
            if str(first) != str(err):
                continue  # another fault, mended or hidden by a later override
            if n == 0:
                return err
            message = str(err).removeprefix(f"{source}: ").removeprefix("fixed: ")
            return InputError(f"override {shown(overrides[n - 1])}: {message}")
    return err


def _override(doc: dict, item: str, source: str) -> None:
    key, sep, text = item.partition("=")
    path = key.split(".")
    try:
        value = load_yaml(text, f"override {shown(item)}")  # 1e-4 is a number (sweep.yamlfile)
    except InputError:
        value = text
    allowed = ("a config key (e.g. learning_rate=3e-5), tune.KEY=..., data.KEY=... (nested keys too: "
               "data.limit.train=16) or name=...")
    if not sep or not key or not all(path):
        raise InputError(f"override {shown(item)}: expected key=value with {allowed}")
    if len(path) > 1 and path[0] in ("tune", "data"):
        set_nested(doc, path, value)
        # naming the data replaces the other way of naming it (a named dataset has its own labels)
        replaced = {"dir": ("dataset", "seed_dataset", "root"),
                    "dataset": ("dir", "positive_labels", "seed_dataset", "root"),
                    "seed_dataset": ("dataset", "dir", "positive_labels")}
        for other in replaced.get(path[1], ()) if path[0] == "data" and len(path) == 2 else ():
            doc["data"].pop(other, None)
    elif len(path) == 1 and key == "name":
        doc["name"] = text  # a folder name, as typed
    elif len(path) == 1 and key in KEYS:
        doc["fixed"][key] = value
        doc["search"].pop(key, None)  # fixing a searched key takes it out of the search
    else:
        raise InputError(f"override {shown(item)}: {shown(key)} is not a key of {source}; expected {allowed}")
