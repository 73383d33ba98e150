"""One camera source run the way the pipeline runs it (capture thread + the 0.5 s stall check),
with every state change recorded with its time: what the fault tests and the fault benchmark
measure detection and recovery times on."""
from __future__ import annotations

import threading
import time
from typing import Any

from edge.bus import EventBus
from edge.pipeline.ring import FrameRing
from edge.pipeline.sources import CameraSource

HOUSEKEEPING_TICK_S = 0.5  # as edge.pipeline.service


class WatchedCamera:
    def __init__(self, camera: dict[str, Any]) -> None:
        self.bus = EventBus()
        self.changes: list[tuple[float, dict[str, Any]]] = []
        self.bus.subscribe("camera", lambda payload: self.changes.append((time.monotonic(), dict(payload))))
        self.source = CameraSource(camera, FrameRing(3, policy="latest"), bus=self.bus)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._housekeeping, daemon=True)

    def __enter__(self) -> WatchedCamera:
        self.source.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.source.stop()
        self._thread.join(2)

    def _housekeeping(self) -> None:
        while not self._stop.wait(HOUSEKEEPING_TICK_S):
            self.source.check_stall()

    @property
    def status(self) -> dict[str, Any]:
        return self.source.status()

    def states_since(self, t0: float) -> list[bool]:
        return [bool(p["online"]) for t, p in self.changes if t >= t0]

    def first_change(self, online: bool, after: float, timeout: float) -> float | None:
        """Seconds from ``after`` until the camera went ``online``/offline, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, payload in list(self.changes):
                if t >= after and bool(payload["online"]) is online:
                    return t - after
            time.sleep(0.02)
        return None
