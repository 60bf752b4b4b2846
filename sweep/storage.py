"""Where a sweep's Ray Tune tree lives (its output folder, or tune.storage_path: a shared folder or a URI), and the
questions asked of it: does it exist, does it hold a saved experiment state, remove it."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zs_core.errors import InputError, error_line

if TYPE_CHECKING:
    from sweep.space import Sweep


def tune_location(sweep: Sweep, out: Path) -> tuple[str, str]:
    """(storage_path, experiment name) of Tune's result tree."""
    if not sweep.tune.storage_path:
        return str(out.resolve()), "tune"
    path = sweep.tune.storage_path
    return (path if "://" in path else str(Path(path).expanduser().resolve())), sweep.name


def filesystem(uri: str):
    """(pyarrow filesystem, path) for a local folder or a storage URI (s3://, gs://, file://, ...)."""
    from pyarrow import ArrowException
    from pyarrow.fs import FileSystem

    try:
        return FileSystem.from_uri(uri)
    except (ArrowException, ValueError, OSError) as err:
        reason = error_line(err)
        raise InputError(f"tune.storage_path: cannot open {uri!r} ({reason}); expected a folder or a URI "
                         f"pyarrow can open, e.g. s3://bucket/sweeps") from None


def exists(uri: str) -> bool:
    from pyarrow.fs import FileType

    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != FileType.NotFound


def remove(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.delete_dir(path)


def has_tune_state(uri: str) -> bool:
    """Does Tune's experiment folder ``uri`` (a local path or a storage URI) hold a saved experiment state?"""
    from pyarrow import ArrowException
    from pyarrow.fs import FileSelector, FileSystem

    try:
        fs, path = FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
        infos = fs.get_file_info(FileSelector(path, allow_not_found=True))
    except (ArrowException, ValueError, OSError):
        return False
    return any(i.base_name.startswith("experiment_state") for i in infos)
