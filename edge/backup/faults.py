"""Fault-injection points for the SIGKILL tests (tests/test_backup_kill.py).

With ``FACEPRO_TEST_PAUSE_AT=<stage>`` the process writes the stage name to
``FACEPRO_TEST_PAUSE_FILE`` when it reaches that stage and waits there to be killed, so a
test can kill it at an exact point instead of racing it. Unset, this costs one dict lookup.
"""
from __future__ import annotations

import os
import time
from pathlib import Path


def pause_point(stage: str) -> None:
    if os.environ.get("FACEPRO_TEST_PAUSE_AT") == stage:
        marker = os.environ.get("FACEPRO_TEST_PAUSE_FILE")
        if marker:
            Path(marker).write_text(stage)
        time.sleep(120)
