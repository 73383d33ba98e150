"""Which of a camera's frames reach the detector: a rate cap, motion gating and a keep-alive.

The capture thread asks two questions per frame. :meth:`DetectGate.sample_due` (after
``grab()``, before ``retrieve()``): is this frame wanted at all? Frames between samples are
decoded by the codec (a compressed stream must be) but never converted into a frame buffer.
Samples come at most ``detect_fps`` per second (0: every frame). :meth:`DetectGate.admit`
(after ``retrieve()``): does the detector see this sampled frame?

Without motion gating every sample is admitted. With it, a sample is admitted while there is
motion (and for ``hold_s`` after it stopped; with ``region_side`` a small moving area is
searched alone, in a square of that side, with the whole frame at least every ``keepalive_s``),
during the motion detector's warm-up, once on a
whole-frame change (lights, IR mode: one look, not a burst), and otherwise as a keep-alive:
once every ``keepalive_s`` while the detector found a face in the last frame it saw (a person
standing still is still recognised), once every ``idle_check_s`` when that frame was empty and
nothing moved since (the detector would find the same nothing; this is where a camera at rest
saves its CPU).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edge.pipeline.motion import MotionConfig, MotionDetector, MotionResult
from edge.pipeline.ring import FrameSlot, RateMeter

EMPTY_AFTER = 3


class DetectGate:
    def __init__(self, name: str, *, detect_fps: float = 0.0, motion: MotionDetector | None = None,
                 keepalive_s: float = 2.0, idle_check_s: float = 30.0, hold_s: float = 1.0,
                 region_side: int = 0, bus: Any = None) -> None:
        self.name = name
        self.detect_fps = max(float(detect_fps), 0.0)
        self.interval = 1.0 / self.detect_fps if self.detect_fps > 0 else 0.0
        self._slack = 0.25 * self.interval
        self.motion = motion
        self.keepalive_s = float(keepalive_s)
        self.idle_check_s = max(float(idle_check_s), self.keepalive_s)
        self._misses = 0  # detections in a row without a face (none yet: as if one was there)
        self.hold_s = float(hold_s)
        self.bus = bus
        self._next_sample = float("-inf")
        self._last_admit = float("-inf")
        self._motion_until = float("-inf")
        self._last_full = float("-inf")
        self.region_side = int(region_side)
        self.in_motion: bool | None = None if motion is None else False
        self.last: MotionResult | None = None
        self.frames_sampled = 0
        self.frames_admitted = 0
        self.admitted = {"motion": 0, "global": 0, "keepalive": 0}  # admitted frames by reason
        self.sampled_rate = RateMeter()

    @property
    def gating(self) -> bool:
        return self.motion is not None

    def sample_due(self, now: float) -> bool:
        """True when the frame grabbed at ``now`` (monotonic seconds) should be converted."""
        # A little slack so that a 15 fps camera capped at 5 fps gives every third frame,
        # not every fourth when a frame arrives a millisecond early.
        return now >= self._next_sample - self._slack

    def admit(self, slot: FrameSlot, now: float) -> bool:
        """Whether the detector sees the sampled frame in ``slot`` (call once per sampled frame).
        Sets ``slot.region`` when only the moving part is to be searched."""
        admitted, slot.region = self.judge(now, slot.array.shape, lambda m: m.update(slot.array))
        return admitted

    def admit_grey(self, grey: np.ndarray, frame_shape: tuple[int, ...], now: float
                   ) -> tuple[bool, tuple[int, int, int, int] | None]:
        """:meth:`admit` for a sampled frame not yet decoded in full, judged by a reduced grey copy
        of it; returns (admitted, region). The caller decodes the frame only when admitted."""
        size = (int(frame_shape[1]), int(frame_shape[0]))
        return self.judge(now, frame_shape, lambda m: m.update_grey(grey, size))

    def judge(self, now: float, frame_shape: tuple[int, ...],
              look: Callable[[MotionDetector], MotionResult]) -> tuple[bool, tuple[int, int, int, int] | None]:
        """One sampled frame: (admitted, region); ``look`` runs the motion detector on it (if any)."""
        region = None
        if self.interval:
            # Each sample moves the schedule on by one interval (so the long-run rate is never
            # above detect_fps); after a pause it restarts from now instead of catching up.
            following = self._next_sample + self.interval
            self._next_sample = following if following >= now else now + self.interval
        self.frames_sampled += 1
        self.sampled_rate.tick(now)
        motion = self.motion
        if motion is None:
            self.frames_admitted += 1
            return True, None
        result = look(motion)
        self.last = result
        reason = None
        if result.motion:
            self._motion_until = now + self.hold_s
            reason = "motion"
        elif result.warming or now < self._motion_until:
            reason = "motion"
        elif result.global_change:
            reason = "global"
        elif now - self._last_admit >= (self.keepalive_s if self.faces_present else self.idle_check_s) - self._slack:
            reason = "keepalive"
        self._set_motion(result.motion or now < self._motion_until, result.fraction)
        if reason is None:
            return False, None
        self._last_admit = now
        self.frames_admitted += 1
        self.admitted[reason] += 1
        if (reason == "motion" and self.region_side and result.box is not None
                and now - self._last_full < self.keepalive_s):
            region = motion_region(result.box, frame_shape, self.region_side)
        if region is None:
            self._last_full = now
        return True, region

    def faces_seen(self, count: int) -> None:
        """The detector's result for the last admitted frame (called by the inference worker)."""
        self._misses = 0 if count > 0 else self._misses + 1

    @property
    def faces_present(self) -> bool:
        """A face was in one of the last EMPTY_AFTER frames the detector saw (one miss, a face
        turned away or blurred for a moment, does not make the scene empty)."""
        return self._misses < EMPTY_AFTER

    def _set_motion(self, moving: bool, fraction: float) -> None:
        if moving == self.in_motion:
            return
        self.in_motion = moving
        if self.bus is not None:
            self.bus.publish("motion", {"name": self.name, "motion": moving, "fraction": fraction})

    def figures(self, now: float | None = None) -> dict[str, Any]:
        """The gate's part of a camera's status."""
        last = self.last
        return {
            "detect_fps": self.detect_fps or None,
            "motion_gating": self.gating,
            "motion": self.in_motion,
            "motion_fraction": None if last is None or self.motion is None else last.fraction,
            "motion_box": None if last is None or last.box is None else list(last.box),
            "frames_decoded": self.frames_sampled,
            "fps_decoded": round(self.sampled_rate.rate(now), 2),
            "global_changes": self.motion.global_changes if self.motion is not None else 0,
            "admitted_keepalive": self.admitted["keepalive"],
        }


def motion_region(box: tuple[int, int, int, int], shape: tuple[int, ...], side: int
                  ) -> tuple[int, int, int, int] | None:
    """A ``side`` x ``side`` square (x, y, w, h) around a motion ``box`` that fits in it with a
    margin, inside the frame; None when the motion is too large or the frame too small."""
    frame_h, frame_w = int(shape[0]), int(shape[1])
    x1, y1, x2, y2 = box
    if side > frame_w or side > frame_h or max(x2 - x1, y2 - y1) > 0.8 * side:
        return None
    x = min(max((x1 + x2) // 2 - side // 2, 0), frame_w - side)
    y = min(max((y1 + y2) // 2 - side // 2, 0), frame_h - side)
    return (x, y, side, side)


def camera_gate_settings(camera: dict[str, Any], pipeline: dict[str, Any]) -> dict[str, Any]:
    """A camera's effective rate and motion settings: its own keys, else ``pipeline``'s."""
    motion = dict(pipeline.get("motion") or {})
    detect_fps = camera.get("detect_fps")
    enabled = camera.get("motion")
    return {
        "detect_fps": float(pipeline.get("detect_fps", 0.0) if detect_fps is None else detect_fps),
        "motion": bool(motion.get("enabled", True) if enabled is None else enabled),
        "keepalive_s": float(motion.get("keepalive_s", 2.0)),
        "idle_check_s": float(motion.get("idle_check_s", 30.0)),
        "hold_s": float(motion.get("hold_s", 1.0)),
        "region_side": int(motion.get("region_side", 0)),
        "config": MotionConfig.from_settings(motion),
        "masks": list(camera.get("motion_masks") or []),
    }


def build_gate(camera: dict[str, Any], pipeline: dict[str, Any], bus: Any = None) -> DetectGate | None:
    """The gate of a live camera; None when it neither caps the rate nor gates on motion."""
    cfg = camera_gate_settings(camera, pipeline)
    if not cfg["motion"] and cfg["detect_fps"] <= 0:
        return None
    detector = MotionDetector(cfg["config"], cfg["masks"]) if cfg["motion"] else None
    return DetectGate(camera["name"], detect_fps=cfg["detect_fps"], motion=detector,
                      keepalive_s=cfg["keepalive_s"], idle_check_s=cfg["idle_check_s"], hold_s=cfg["hold_s"],
                      region_side=cfg["region_side"], bus=bus)


def detect_figures(source: Any, feed: Any, now: float) -> dict[str, Any]:
    """Capture, decode and detect figures of one camera for its status (``source`` a
    CameraSource, ``feed`` its loop Feed or None): fps_decoded counts the frames converted
    into a frame buffer, fps_detected those the detector ran on, detect_share the share of
    captured frames that reached the detector."""
    gate: DetectGate | None = source.gate
    captured = int(source.frames_captured)
    detected = int(feed.frames_processed) if feed is not None else 0
    figures: dict[str, Any] = {
        "detect_fps": None, "motion_gating": False, "motion": None, "motion_fraction": None, "motion_box": None,
        "frames_decoded": captured, "fps_decoded": round(source.capture_rate.rate(now), 2),
        "global_changes": 0, "admitted_keepalive": 0,
    }
    if gate is not None:
        figures.update(gate.figures(now))
    figures["frames_detected"] = detected
    figures["fps_detected"] = round(feed.processed_rate.rate(now), 2) if feed is not None else 0.0
    figures["detect_share"] = round(detected / captured, 4) if captured else None
    return figures
