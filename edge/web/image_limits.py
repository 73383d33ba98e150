"""The pixel size of an uploaded JPEG or PNG, read from its header before anything decodes it.

A 74 KB PNG can declare 25000x25000 pixels, and decoding it would take gigabytes: uploads
are measured here first and refused above :data:`MAX_PIXELS`.
"""
from __future__ import annotations

import struct

MAX_PIXELS = 40_000_000  # 8000 x 5000: well above any camera or phone photo
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not C4/C8/CC.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG or PNG header; None when the header does not say."""
    if data[:8] == _PNG_SIGNATURE:
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            return None
        if marker in _SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None


def pixel_problem(label: str, data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[str, str] | None:
    """None when the image may be decoded; else (why, a line naming ``label``): ``too_large``
    above ``max_pixels``, ``unreadable`` when the header gives no size (a JPEG or PNG that
    says nothing about its size cannot be decoded either)."""
    size = image_size(data)
    if size is None:
        return "unreadable", f"{label}: not a JPEG or PNG image whose header gives its size"
    width, height = size
    if width <= 0 or height <= 0:
        return "unreadable", f"{label}: the header says {width}x{height} pixels"
    if width * height > max_pixels:
        return "too_large", (f"{label}: {width}x{height} pixels is more than the limit of "
                             f"{max_pixels / 1e6:g} megapixels; scale the photo down")
    return None
