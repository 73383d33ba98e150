"""Scenes for motion and camera-load tests, made from the shared media (never copied into the repo).

* :func:`clip_frames`: the shared clip's frames (people on a stage), every ``step``-th one,
  optionally resized: a passage of people.
* :func:`still_background`: the clip's first frame blurred until no face is left in it: the
  empty scene in front of a door.
* :func:`camera_frame`: what a camera makes of a scene: sensor noise, a lighting gain and
  JPEG compression.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CLIP = SHARED / "media" / "short_hamilton_clip.mp4"
LIN_PHOTO = SHARED / "media" / "lin-manuel-miranda.png"
MODELS = SHARED / "models" / "face"


def clip_frames(step: int = 1, size: tuple[int, int] | None = None, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    frames: list[np.ndarray] = []
    index = 0
    try:
        while limit is None or len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size else frame)
            index += 1
    finally:
        cap.release()
    if not frames:
        raise RuntimeError(f"no frame decoded from {CLIP}")
    return frames


def still_background(size: tuple[int, int] | None = None) -> np.ndarray:
    """The clip's first frame blurred (the same blur relative to the picture at any size) until
    the detector finds no face in it."""
    first = clip_frames(limit=1, size=size)[0]
    return cv2.GaussianBlur(first, (0, 0), 12 * first.shape[1] / 640)


def camera_frame(scene: np.ndarray, rng: np.random.Generator, *, noise: float = 3.0, gain: float = 1.0,
                 quality: int = 80) -> np.ndarray:
    """``scene`` through a camera: Gaussian sensor noise (sigma in grey levels), a gain, JPEG."""
    frame = scene.astype(np.float32) * gain
    if noise:
        frame += rng.normal(0.0, noise, size=scene.shape).astype(np.float32)
    out = np.clip(frame, 0, 255).astype(np.uint8)
    if quality:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return out
