"""Run the ``facepro`` command line: as a real subprocess, or in this process through edge.cli."""
from __future__ import annotations

import subprocess
from pathlib import Path

from edge.cli import main
from tests.conftest import FACEPRO, REPO, subprocess_env


def run_cli(settings: Path | str | None, *args: str, timeout: float = 60, log_level: str | None = None,
            env: dict[str, str] | None = None, input: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """``facepro [--config SETTINGS] [--log-level LEVEL] ARGS`` as a subprocess, its output captured as text.

    ``env`` defaults to this environment without FACEPRO_* variables (``subprocess_env()``).
    """
    argv = [*FACEPRO]
    if settings is not None:
        argv += ["--config", str(settings)]
    if log_level is not None:
        argv += ["--log-level", log_level]
    return subprocess.run([*argv, *args], cwd=REPO, env=subprocess_env() if env is None else env, input=input,
                          capture_output=True, text=True, timeout=timeout, check=check)


def call_main(settings: Path, *args: str, log_level: str = "warning") -> int:
    """``facepro --config SETTINGS ARGS`` in this process; its output goes to pytest's capsys."""
    return main(["--config", str(settings), "--log-level", log_level, *args])
