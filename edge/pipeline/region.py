"""Detection inside a motion region: the detector runs on a crop of the frame (a view, not
a copy) and the boxes and keypoints are moved back into frame coordinates, so embedding,
matching and snapshots see whole-frame positions as usual."""
from __future__ import annotations

from typing import Any

import numpy as np


def detect(detector: Any, frame: np.ndarray, region: tuple[int, int, int, int] | None,
           threshold: float | None, timings: dict[str, float], max_side: int | None) -> Any:
    """``detector.detect`` on ``frame``, or on ``region`` (x, y, w, h) of it at full resolution."""
    if region is None:
        return detector.detect(frame, threshold, timings, max_side)
    x, y, w, h = region
    detections = detector.detect(frame[y:y + h, x:x + w], threshold, timings, max(w, h))
    if len(detections):
        detections.boxes[:, 0::2] += x
        detections.boxes[:, 1::2] += y
        detections.kps[:, :, 0] += x
        detections.kps[:, :, 1] += y
    return detections
