"""One sweep at a time per output folder: a lock file holding the owner's pid and host.

The lock is a file created with O_EXCL (atomic on local disks and NFS), so of two drivers starting at once
exactly one gets it. A lock whose pid no longer runs on this host is stale (its driver was killed) and is
taken over with a notice; a lock from another host is never taken over, since its pid cannot be checked.
The lock is removed when the ``with`` block ends, by success, error or Ctrl-C.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Iterator

from zs_core.errors import InputError

LOCK_FILE = "sweep.lock"


def writable_folder(path: Path) -> list[Path]:
    """Create ``path`` (and its parents) if needed; -> the folders created, deepest first. Bad input when it
    cannot be written."""
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise InputError(f"{path}: the output folder is not writable ({err.strerror or type(err).__name__}); "
                         f"expected a folder this user can write, e.g. --output runs") from None
    return created


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read(lock: Path) -> dict | None:
    """The lock's owner, or None when the file is gone or unreadable (a lock being written counts as held)."""
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": -1, "host": "?", "since": "?"}
    return owner if isinstance(owner, dict) else {"pid": -1, "host": "?", "since": "?"}


def _create(lock: Path, owner: dict) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(owner, f)
    return True


def acquire(folder: Path, name: str) -> dict:
    """Take FOLDER/sweep.lock for this process; -> the owner record written. Bad input when it is held."""
    lock = folder / LOCK_FILE
    host = socket.gethostname()
    owner = {"pid": os.getpid(), "host": host,
             "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    for _ in range(3):  # a lock that vanishes between our checks is simply tried again
        if _create(lock, owner):
            return owner
        other = _read(lock)
        if other is None:
            continue
        pid = other.get("pid")
        if other.get("host") == host and isinstance(pid, int) and pid > 0 and not _alive(pid):
            if _read(lock) == other:  # still the same stale owner: take it over
                lock.unlink(missing_ok=True)
                print(f"notice: {lock}: taking over a stale lock (pid {pid} on {host} is not running)", flush=True)
            continue
        raise InputError(f"{folder}: sweep {name!r} is running (pid {pid} on {other.get('host')} since "
                         f"{other.get('since')}); wait for it, or delete {lock} if that process is gone")
    raise InputError(f"{lock}: could not take the lock (another sweep keeps taking it)")


def release(folder: Path, owner: dict) -> None:
    """Remove the lock if it is still ours (never another driver's)."""
    lock = folder / LOCK_FILE
    if _read(lock) == owner:
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def sweep_lock(folder: Path, name: str) -> Iterator[None]:
    """Hold FOLDER/sweep.lock for the block; folders created only for the lock are removed again if empty
    (bad input stopped the sweep before it wrote anything)."""
    created = writable_folder(folder)
    owner = acquire(folder, name)
    try:
        yield
    finally:
        release(folder, owner)
        with contextlib.suppress(OSError):
            for path in created:
                path.rmdir()  # only an empty one; the first that is not ends it
