"""The size an image declares, read from its header before anything decodes it.

A 74 KB PNG can declare 25000 x 25000 pixels: decoding it takes gigabytes. Uploads and
enrolment photos are measured here first (PNG IHDR, JPEG SOF marker, BMP info header,
WebP VP8/VP8L/VP8X chunk) and refused above ``MAX_PIXELS``; a file whose header cannot be
read is refused too, so only images whose size is known are ever decoded.
"""
from __future__ import annotations

import struct

from edge.errors import BadInput

MAX_PIXELS = 50_000_000  # a 50-megapixel photo: about 150 MB decoded, as much as a device should take
MAX_SIDE = 30_000
FORMATS = "PNG, JPEG, BMP or WebP"

# JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4, C8 and CC are not frames.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: markers without a length


class ImageRefused(BadInput, ValueError):
    """An image that is not decoded: unknown format, unreadable header, or too many pixels.

    The message is ``"<label>: <reason>"``; ``too_large`` tells the last case apart."""

    def __init__(self, label: str, reason: str, too_large: bool = False) -> None:
        super().__init__(f"{label}: {reason}")
        self.reason = reason
        self.too_large = too_large


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            return None
        if marker in _SOF:
            if pos + 9 > end:
                return None
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def image_kind(data: bytes) -> str | None:
    """The format the first bytes announce (one of :data:`FORMATS`), or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from the header of ``data``; None when it is none of
    :data:`FORMATS` or its header is cut short or malformed."""
    size: tuple[int, int] | None = None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        kind = "PNG"
        if len(data) >= 24 and data[12:16] == b"IHDR":
            size = struct.unpack(">II", data[16:24])
    elif data[:3] == b"\xff\xd8\xff":
        kind = "JPEG"
        size = _jpeg_size(data)
    elif data[:2] == b"BM" and len(data) >= 26:
        kind = "BMP"
        header_size = int.from_bytes(data[14:18], "little")
        if header_size == 12:
            size = struct.unpack("<HH", data[18:22])
        elif header_size >= 40:
            width, height = struct.unpack("<ii", data[18:26])
            size = (abs(width), abs(height))
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WebP"
        size = _webp_size(data)
    else:
        return None
    if size is None:
        return None
    return kind, int(size[0]), int(size[1])


def check_image_header(data: bytes, label: str, max_pixels: int = MAX_PIXELS) -> tuple[str, int, int]:
    """``image_size(data)``, or :class:`ImageRefused` naming ``label`` (the file) and why."""
    found = image_size(data)
    if found is None:
        kind = image_kind(data)
        if kind is None:
            raise ImageRefused(label, f"not a {FORMATS} image")
        raise ImageRefused(label, f"the {kind} file is damaged (its header gives no image size)")
    kind, width, height = found
    if width <= 0 or height <= 0:
        raise ImageRefused(label, f"the {kind} header declares {width}x{height} pixels")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > max_pixels:
        raise ImageRefused(label, f"the {kind} image declares {width}x{height} pixels, more than the "
                           f"{max_pixels / 1e6:g} megapixels a photo may have here; scale it down first",
                           too_large=True)
    return found
