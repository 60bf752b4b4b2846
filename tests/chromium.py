"""Debian's headless Chromium for the HTML report tests: found at /usr/bin/chromium, else installed with
``apt-get update && apt-get install -y chromium``; the caller skips when that install fails (no root, no
network, no apt). Helpers run it on a file with the flags the tests need and read its console log."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# No network, no first-run UI, no background services: a page is rendered, then Chromium exits.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0")
INSTALL_TIMEOUT_S = 900


class Unavailable(Exception):
    """Chromium is not installed and could not be installed; the message says why."""


def find_or_install() -> str:
    """The Chromium binary's path, installing Debian's package when it is missing; Unavailable if that fails."""
    found = str(CHROMIUM) if CHROMIUM.is_file() else shutil.which("chromium")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise Unavailable(f"chromium is missing and `{' '.join(command)}` could not run: {err}") from None
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ["(no output)"]
            raise Unavailable(f"chromium is missing and `{' '.join(command)}` failed "
                              f"(exit {proc.returncode}): {lines[-1]}")
    if not CHROMIUM.is_file():
        raise Unavailable(f"apt-get installed chromium, but {CHROMIUM} is not there")
    return str(CHROMIUM)


def run(binary: str, url: str, profile: Path, *extra: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """Chromium on ``url`` with a fresh profile folder; stdout (e.g. --dump-dom) and stderr (its log) as text."""
    command = [binary, *FLAGS, f"--user-data-dir={profile}", *extra, url]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def console_messages(log: str) -> list[str]:
    """The page's console output in Chromium's stderr log (``...:CONSOLE:N] "message", source: ...``).

    Chromium logs every console message, console.error and uncaught exceptions included, at INFO level,
    so a page that should log nothing is checked by asking for none at all.
    """
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
