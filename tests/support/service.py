"""Start ``facepro run`` as a subprocess, read its log until a line appears, stop it."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from tests.conftest import FACEPRO, REPO, subprocess_env

Output = int | IO[str] | IO[bytes] | None


def start_service(settings: Path, *extra: str, env: dict[str, str] | None = None,
                  stdout: Output = subprocess.PIPE, stderr: Output = subprocess.PIPE) -> subprocess.Popen[str]:
    """``facepro --config SETTINGS EXTRA run``; text pipes by default (``stderr=subprocess.STDOUT`` merges them).

    Pass ``subprocess.DEVNULL`` or a file for a service whose output nobody reads: a full pipe
    would block it.
    """
    return subprocess.Popen([*FACEPRO, "--config", str(settings), *extra, "run"], cwd=REPO,
                            env=subprocess_env() if env is None else env, stdout=stdout, stderr=stderr,
                            text=True, errors="replace")


def stop_process(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> str:
    """Send ``sig`` (if it still runs), wait up to 20 s (then kill) and return what it printed."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return (out or "") + (err or "")


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 90) -> list[str]:
    """Read stderr until a line containing ``needle``; returns the lines read so far."""
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not logged; got:\n{''.join(seen)}")
