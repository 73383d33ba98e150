"""MJPEG cameras read without decoding every picture.

Every picture of an MJPEG stream is a JPEG of its own, so a picture the detect gate skips need
not be decoded at all. In OpenCV's FFmpeg reader's raw mode (``CAP_PROP_FORMAT = -1``) ``grab()``
only reads the packet; a sampled picture is decoded at 1/2, 1/4 or 1/8 scale straight to grey
for the motion check (libjpeg scales while decoding), and in full only when the detector is to
see it. A camera at rest then decodes a few small grey pictures a second instead of every
colour picture.

A packet is the camera's data: its JPEG header must agree with the stream's size before it is
decoded, so a hostile or broken camera cannot make the service decode a larger picture.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edge.images import image_size

MJPEG_FOURCCS = ("MJPG", "MJPA", "MJPB", "JPEG", "AVRN")
# libjpeg's scaled decodes, largest reduction first
_REDUCED = ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
            (2, cv2.IMREAD_REDUCED_GRAYSCALE_2), (1, cv2.IMREAD_GRAYSCALE))


def fourcc(cap: Any) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return "".join(chr((code >> 8 * i) & 0xFF) for i in range(4))


def use_raw_packets(cap: Any) -> bool:
    """Switch an opened FFmpeg capture of an MJPEG stream to raw packets; False (and nothing
    changed) for any other stream or backend."""
    if not isinstance(cap, cv2.VideoCapture) or fourcc(cap).upper() not in MJPEG_FOURCCS:
        return False
    return bool(cap.set(cv2.CAP_PROP_FORMAT, -1))


def reduction(frame_width: int, min_width: int) -> int:
    """The imread flag decoding a ``frame_width`` picture to grey, as small as the motion
    check's ``min_width`` allows."""
    for factor, flag in _REDUCED:
        if frame_width // factor >= min_width:
            return int(flag)
    return int(cv2.IMREAD_GRAYSCALE)


def checked(packet: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """The packet's bytes (1-D) when its header says it is a JPEG of ``size`` (w, h), else None:
    only then may it be decoded."""
    data = packet.reshape(-1)
    found = image_size(data[:65536].tobytes())
    if found is None or found[0] != "JPEG" or (found[1], found[2]) != size:
        return None
    return data


def take(packet: np.ndarray, size: tuple[int, int], flag: int, gate: Any, slot: Any, now: float) -> str:
    """A sampled packet through ``gate`` (a DetectGate): "detect" when the gate admits it (decoded
    in full into ``slot``, with its region), "rest" when it does not, "damaged" when it is not a
    JPEG of ``size``."""
    data = checked(packet, size)  # once for both decodes
    grey = None if data is None else cv2.imdecode(data, flag)
    if data is None or grey is None:
        return "damaged"
    admitted, region = gate.admit_grey(grey, (size[1], size[0], 3), now)
    if not admitted:
        return "rest"
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if frame is None or frame.shape != slot.array.shape:
        return "damaged"
    np.copyto(slot.array, frame)
    slot.region = region
    return "detect"
