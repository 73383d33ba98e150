"""Cheap motion detection on a small grey copy of a camera's frames.

Per sampled frame: an area-averaging resize to ``width`` pixels wide (which also averages
sensor noise away), grey, a light blur, the absolute difference to a running-average
background, a threshold, the camera's masks, a dilation and the external contours; there is
motion when one contour covers at least ``min_area`` of the unmasked picture.

Whole-frame changes are not motion: when the mean brightness moved by 8 % or more (or a large
share changed), the frame is compared with the background scaled by that brightness change
(lights switched on or off); if that explains most of the change, or the change covers nearly
everything (the camera's IR mode, a camera moved), the background is reset to the frame and
:attr:`MotionResult.global_change` is set instead of ``motion``. The first ``warmup_frames`` frames only build the background.

Masks are polygons in fractions of the frame (``[[x, y], ...]`` with 0 <= x, y <= 1, the
origin at the top left); what lies inside a polygon is ignored (a tree, a road, a TV).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

Polygon = list[list[float]]

GAIN_TOLERANCE = 0.08   # a change of mean brightness below 8 % is never taken for a lighting change
EXPLAINED_SHARE = 0.4   # a gain explains a change when it leaves less than 40 % of the changed pixels


@dataclass(frozen=True)
class MotionConfig:
    width: int = 160              # the grey copy's width in pixels (height keeps the aspect)
    threshold: int = 25           # grey levels (0-255) a pixel must differ from the background by
    min_area: float = 0.002       # the smallest moving blob, as a fraction of the unmasked picture
    alpha: float = 0.05           # background update weight per sampled frame
    warmup_frames: int = 10       # sampled frames that only build the background
    global_fraction: float = 0.4  # changed share above which a whole-frame change is looked for at any gain
    max_fraction: float = 0.85    # changed share treated as a camera change (IR mode) whatever the gain

    @classmethod
    def from_settings(cls, motion: dict[str, Any]) -> MotionConfig:
        return cls(width=int(motion.get("width", cls.width)), threshold=int(motion.get("threshold", cls.threshold)),
                   min_area=float(motion.get("min_area", cls.min_area)), alpha=float(motion.get("alpha", cls.alpha)),
                   warmup_frames=int(motion.get("warmup_frames", cls.warmup_frames)),
                   global_fraction=float(motion.get("global_fraction", cls.global_fraction)))


@dataclass
class MotionResult:
    motion: bool = False
    fraction: float = 0.0                          # share of the unmasked picture that changed
    box: tuple[int, int, int, int] | None = None   # x1, y1, x2, y2 of the moving blobs, frame pixels
    global_change: bool = False                    # background reset (lights, IR mode), not motion
    warming: bool = False


class MotionDetector:
    """One camera's motion state. Not thread-safe: one capture thread calls :meth:`update`."""

    def __init__(self, config: MotionConfig | None = None, masks: list[Polygon] | None = None) -> None:
        self.config = config or MotionConfig()
        self.masks = [list(map(list, polygon)) for polygon in masks or []]
        self._shape: tuple[int, int] | None = None
        self._background: np.ndarray | None = None
        self._seen = 0
        self.global_changes = 0
        self.last = MotionResult(warming=True)
        self._kernel = np.ones((3, 3), dtype=np.uint8)

    def reset(self) -> None:
        self._background = None
        self._seen = 0

    def _allocate(self, frame_w: int, frame_h: int) -> None:
        width = max(16, min(self.config.width, frame_w))
        height = max(9, round(width * frame_h / frame_w))
        self._shape = (frame_w, frame_h)
        self._size = (width, height)
        self._small = np.zeros((height, width, 3), dtype=np.uint8)
        self._grey = np.zeros((height, width), dtype=np.uint8)
        self._bg_u8 = np.zeros((height, width), dtype=np.uint8)
        self._diff = np.zeros((height, width), dtype=np.uint8)
        self._keep = mask_image(self.masks, width, height)
        self._active = max(int(cv2.countNonZero(self._keep)), 1)
        self._all_masked = not cv2.countNonZero(self._keep)
        self._min_area_px = max(1.0, self.config.min_area * self._active)
        self._background = None
        self._seen = 0

    def update(self, frame_bgr: np.ndarray) -> MotionResult:
        """The motion in ``frame_bgr`` (an HxWx3 uint8 frame) against the background so far."""
        frame_h, frame_w = frame_bgr.shape[:2]
        if self._shape != (frame_w, frame_h):
            self._allocate(frame_w, frame_h)
        cv2.resize(frame_bgr, self._size, dst=self._small, interpolation=cv2.INTER_AREA)
        cv2.cvtColor(self._small, cv2.COLOR_BGR2GRAY, dst=self._grey)
        return self._judge(frame_w, frame_h)

    def update_grey(self, grey: np.ndarray, frame_size: tuple[int, int]) -> MotionResult:
        """The same for a frame of ``frame_size`` (width, height) given as a reduced grey copy
        (a JPEG decoded at 1/2, 1/4 or 1/8 scale): the full-size picture is never made."""
        frame_w, frame_h = frame_size
        if self._shape != (frame_w, frame_h):
            self._allocate(frame_w, frame_h)
        if grey.shape[:2] == self._grey.shape:
            np.copyto(self._grey, grey)
        else:
            cv2.resize(grey, self._size, dst=self._grey, interpolation=cv2.INTER_AREA)
        return self._judge(frame_w, frame_h)

    def _judge(self, frame_w: int, frame_h: int) -> MotionResult:
        cfg = self.config
        cv2.GaussianBlur(self._grey, (3, 3), 0, dst=self._grey)
        grey = self._grey
        self._seen += 1
        if self._background is None:
            self._background = grey.astype(np.float32)
            self.last = MotionResult(warming=True)
            return self.last
        background = self._background
        cv2.convertScaleAbs(background, dst=self._bg_u8)
        fraction = self._changed(grey, self._bg_u8)
        if fraction > 0 and not self._all_masked and self._whole_frame_change(grey, background, fraction):
            background[...] = grey
            self.global_changes += 1
            self.last = MotionResult(fraction=round(fraction, 4), global_change=True)
            return self.last
        cv2.accumulateWeighted(grey, background, cfg.alpha)
        if self._seen <= cfg.warmup_frames:
            self.last = MotionResult(fraction=round(fraction, 4), warming=True)
            return self.last
        motion, box = self._blobs(frame_w, frame_h)
        self.last = MotionResult(motion=motion, fraction=round(fraction, 4), box=box)
        return self.last

    def _whole_frame_change(self, grey: np.ndarray, background: np.ndarray, fraction: float) -> bool:
        """True when the change is the whole picture's, not something moving in it: the
        brightness moved and scaling the background by it explains most of the change, or
        nearly everything changed. Leaves ``self._diff`` as the unscaled difference."""
        cfg = self.config
        if fraction >= cfg.max_fraction:
            return True
        gain = float(cv2.mean(grey, self._keep)[0]) / max(float(cv2.mean(self._bg_u8, self._keep)[0]), 1.0)
        if abs(gain - 1.0) < GAIN_TOLERANCE and fraction < cfg.global_fraction:
            return False
        cv2.convertScaleAbs(background, dst=self._bg_u8, alpha=gain)
        explained = self._changed(grey, self._bg_u8) < min(cfg.global_fraction, EXPLAINED_SHARE * fraction)
        if not explained:
            cv2.convertScaleAbs(background, dst=self._bg_u8)
            self._changed(grey, self._bg_u8)
        return explained

    def _changed(self, grey: np.ndarray, background: np.ndarray) -> float:
        """Threshold |grey - background| into ``self._diff`` (masked); the changed share."""
        cv2.absdiff(grey, background, dst=self._diff)
        cv2.threshold(self._diff, self.config.threshold, 255, cv2.THRESH_BINARY, dst=self._diff)
        cv2.bitwise_and(self._diff, self._keep, dst=self._diff)
        return float(cv2.countNonZero(self._diff)) / self._active

    def _blobs(self, frame_w: int, frame_h: int) -> tuple[bool, tuple[int, int, int, int] | None]:
        if not cv2.countNonZero(self._diff):
            return False, None
        cv2.dilate(self._diff, self._kernel, dst=self._diff, iterations=2)
        contours, _ = cv2.findContours(self._diff, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= self._min_area_px]
        if not boxes:
            return False, None
        sx, sy = frame_w / self._size[0], frame_h / self._size[1]
        x1 = min(b[0] for b in boxes)
        y1 = min(b[1] for b in boxes)
        x2 = max(b[0] + b[2] for b in boxes)
        y2 = max(b[1] + b[3] for b in boxes)
        return True, (int(x1 * sx), int(y1 * sy), min(int(round(x2 * sx)), frame_w), min(int(round(y2 * sy)), frame_h))


def mask_image(masks: list[Polygon], width: int, height: int) -> np.ndarray:
    """255 where motion counts, 0 inside any mask polygon (fractions of the frame)."""
    keep = np.full((height, width), 255, dtype=np.uint8)
    if masks:
        scale = np.array([width, height], dtype=np.float64)
        polygons = [np.round(np.asarray(p, dtype=np.float64) * scale).astype(np.int32) for p in masks]
        cv2.fillPoly(keep, polygons, 0)
    return keep
