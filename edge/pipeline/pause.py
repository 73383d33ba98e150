"""Which cameras have recognition paused (the Home Assistant "Recognition" switch).

Kept in ``<data_dir>/recognition_paused.json`` (written atomically) so a pause survives a
restart. A paused camera keeps capturing (its status and fps stay visible) but the
inference worker takes its frames without detecting, embedding or recording anything.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from edge.files import write_atomic

log = logging.getLogger(__name__)

FILE_NAME = "recognition_paused.json"
MAX_BYTES = 64 * 1024


class PauseSwitches:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._lock = threading.Lock()
        self._paused: set[str] = self._read()

    def _read(self) -> set[str]:
        try:
            if self.path.stat().st_size > MAX_BYTES:
                raise ValueError(f"larger than {MAX_BYTES} bytes")
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            log.warning("%s unreadable (%s): recognition runs on every camera", self.path, exc)
            return set()
        names = data.get("paused") if isinstance(data, dict) else None
        return {str(n) for n in names} if isinstance(names, list) else set()

    def paused(self, camera: str) -> bool:
        with self._lock:
            return camera in self._paused

    def set(self, camera: str, enabled: bool) -> bool:
        """Resume (``enabled``) or pause recognition on ``camera``; returns whether it changed."""
        with self._lock:
            before = camera in self._paused
            (self._paused.discard if enabled else self._paused.add)(camera)
            if before == (camera in self._paused):
                return False
            text = json.dumps({"paused": sorted(self._paused)}, indent=2) + "\n"
            write_atomic(self.path, text.encode())
        log.info("recognition %s on camera %s", "resumed" if enabled else "paused", camera)
        return True
