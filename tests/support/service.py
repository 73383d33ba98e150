"""Start ``facepro run`` as a subprocess and read its log until a line appears."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.conftest import FACEPRO, REPO, subprocess_env


def start_service(settings: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*FACEPRO, "--config", str(settings), *extra, "run"], cwd=REPO,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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
