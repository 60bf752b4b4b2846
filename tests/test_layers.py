"""The tree's layering: zs_core is a pure library (no Ray, no sweep), metric names are spelled in one place, and every
import arrow inside it goes down."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_zs_core_imports_neither_ray_nor_sweep():
    modules = sorted(p.stem for p in (ROOT / "zs_core").glob("*.py") if p.stem != "__init__")
    code = (f"import sys; import {', '.join('zs_core.' + m for m in modules)}; "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'sweep'}); "
            "print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _edges(package: str) -> dict[str, set[str]]:
    edges = {}
    for path in (ROOT / package).glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        edges[path.stem] = {m.split(".")[1] for m in names if m.startswith(f"{package}.")}
    return edges


def test_zs_core_has_no_import_cycle():
    edges, done, path = _edges("zs_core"), set(), []

    def visit(node):
        assert node not in path, f"import cycle: {' -> '.join(path + [node])}"
        if node in done:
            return
        path.append(node)
        for nxt in edges.get(node, ()):
            visit(nxt)
        path.pop()
        done.add(node)

    for node in edges:
        visit(node)
    assert "train" not in edges["checkpoint"]  # storage does not depend on the training loop


def test_metric_names_are_spelled_in_the_protocol_only():
    """No metric column is written as a string literal outside zs_core/protocol.py (and the tests)."""
    import re

    pattern = re.compile(r"""["'](?:dev|test)/(?:sent|tok|words_sent|loss)""")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for folder in ("zs_core", "sweep", "bench") for p in (ROOT / folder).glob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if p.name != "protocol.py" and pattern.search(line)]
    assert not offenders, offenders
