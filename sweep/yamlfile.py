"""The one way YAML from a user is read: yaml.safe_load's types, made strict where a typo would pass silently.

* a key given twice in one mapping is an error (safe_load keeps the last);
* ``1_0`` is text, not 10 (YAML 1.1 reads digits with underscores as numbers), and ``1e-4`` is a number
  (YAML 1.1 reads it as text);
* anchors and aliases may not expand past MAX_NODES nodes (a few hundred bytes could otherwise build gigabytes);
* an error names the file and line and never holds more than a short prefix of a value.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from zs_core.errors import InputError, shown

MAX_NODES = 100_000  # scalars, sequences and mappings after expanding aliases


class StrictLoader(yaml.SafeLoader):
    """safe_load's loader without duplicate keys and without underscores in numbers."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:  # the keys given here (a merge key's mapping may be overridden)
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, f"a key must be text or a number, got "
                                                        f"{shown(key)}", key_node.start_mark) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {shown(key)} given twice",
                                                        key_node.start_mark)
            seen.add(key)
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # merge keys (<<: *anchor), as safe_load reads them
        return super().construct_mapping(node, deep)


# YAML 1.1's implicit int and float, without the underscore digits
StrictLoader.yaml_implicit_resolvers = {k: [r for r in v if r[0] not in ("tag:yaml.org,2002:int",
                                                                          "tag:yaml.org,2002:float")]
                                        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(
    r"^(?:[-+]?0b[01]+|[-+]?0[0-7]+|[-+]?(?:0|[1-9][0-9]*)|[-+]?0x[0-9a-fA-F]+)$"), list("-+0123456789"))
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(  # 1e-4 is a number too
    r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def _size(node, memo: dict) -> int:
    """Nodes in ``node`` once every alias is expanded (computed without expanding them)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = MAX_NODES + 1  # a node inside itself expands forever
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_size(k, memo) + _size(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[id(node)] = min(total, MAX_NODES + 1)
    return memo[id(node)]


def load_yaml(text: str, source: str) -> Any:
    """One YAML document from ``text``; a syntax error, a duplicate key or an expansion past MAX_NODES is an
    InputError naming ``source`` and the line."""
    try:
        loader = StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _size(node, {}) > MAX_NODES:
                raise InputError(f"{source}: expands to more than {MAX_NODES} values (anchors and aliases?)")
            return loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "parse error"
        raise InputError(f"{source}{line}: not valid YAML ({problem})") from None


def read_yaml(path: str | Path) -> Any:
    """``load_yaml`` of a file; a missing, unreadable or non-UTF-8 file is one InputError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror or err})") from None
    return load_yaml(text, str(path))
