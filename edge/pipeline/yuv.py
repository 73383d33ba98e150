"""Planar YUV pictures (I420, NV12) as GStreamer lays them out, converted to BGR in one pass.

Decoders give YUV. Converting in the GStreamer pipeline (``videoconvert``) costs a full-frame
conversion for every decoded frame, also the ones the detect gate skips; asking the appsink for
the decoder's own format and converting here, straight into the ring slot, costs it only for the
frames that are retrieved.

OpenCV converts with BT.601's matrix, as OpenCV's FFmpeg reader does for every camera; the
range is honoured: MJPEG and many IP cameras' H.264 use the full 0-255 range (FFmpeg's yuvj420p),
and reading it as 16-235 would stretch the contrast. Full-range pictures are mapped to 16-235
through a lookup table first.

The layout is GStreamer's default for system memory (what an appsink that asks for no video meta
receives): each row of a plane padded to 4 bytes, the luma plane to an even number of rows,
chroma planes of ``ceil(h/2)`` rows.
"""
from __future__ import annotations

import cv2
import numpy as np

FORMATS = ("I420", "NV12")
_CODES = {"I420": cv2.COLOR_YUV2BGR_I420, "NV12": cv2.COLOR_YUV2BGR_NV12}
_LEVELS = np.arange(256, dtype=np.float64)
_FULL_TO_LIMITED_LUMA = np.round(16 + _LEVELS * 219 / 255).astype(np.uint8)
_FULL_TO_LIMITED_CHROMA = np.round(128 + (_LEVELS - 128) * 224 / 255).astype(np.uint8)
_LIMITED_NAMES = ("bt601", "bt709", "bt2020", "bt2020-10", "bt2100-pq", "bt2100-hlg", "smpte240m")


def full_range(colorimetry: str | None) -> bool:
    """Whether GStreamer's ``colorimetry`` caps field says 0-255 ("1:4:0:0", the range first);
    named colorimetries of video (bt601, bt709, ...) and a missing field mean 16-235."""
    if not colorimetry or colorimetry in _LIMITED_NAMES:
        return False
    return colorimetry.split(":", 1)[0] == "1"


def _round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def planes(fmt: str, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(offset, stride, rows, row_bytes) of each plane of a ``fmt`` picture in GStreamer's layout."""
    chroma_rows = (height + 1) // 2
    y = (0, _round_up(width, 4), height, width)
    chroma_offset = y[1] * _round_up(height, 2)  # the luma plane is padded to an even row count
    if fmt == "I420":
        chroma_width = (width + 1) // 2
        stride = _round_up(chroma_width, 4)
        return [y, (chroma_offset, stride, chroma_rows, chroma_width),
                (chroma_offset + stride * chroma_rows, stride, chroma_rows, chroma_width)]
    if fmt == "NV12":
        return [y, (chroma_offset, y[1], chroma_rows, 2 * ((width + 1) // 2))]
    raise ValueError(f"{fmt}: not one of {', '.join(FORMATS)}")


def frame_size(fmt: str, width: int, height: int) -> int:
    """Bytes of one ``fmt`` picture in GStreamer's layout."""
    offset, stride, rows, _ = planes(fmt, width, height)[-1]
    return offset + stride * rows


def to_bgr(data: np.ndarray, fmt: str, width: int, height: int, out: np.ndarray | None = None,
           full: bool = False) -> np.ndarray:
    """The BGR picture of ``data`` (the bytes of one ``fmt`` picture, 1-D uint8), written into
    ``out`` when it is a (height, width, 3) uint8 array, else into a new one. ``full``: the
    picture uses the 0-255 range (see :func:`full_range`)."""
    if data.size < frame_size(fmt, width, height):
        raise ValueError(f"{fmt} {width}x{height}: {data.size} bytes, {frame_size(fmt, width, height)} expected")
    if out is None or out.shape != (height, width, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        out = np.empty((height, width, 3), np.uint8)
    packed = width % 8 == 0 and height % 2 == 0  # every plane's rows unpadded: OpenCV reads the bytes as they are
    if packed:
        picture = data[: width * height * 3 // 2].reshape(height * 3 // 2, width)
        cv2.cvtColor(_limited(picture, height, copy=True) if full else picture, _CODES[fmt], dst=out)
        return out
    # Padded rows or an odd size: repack into an even-sized picture, convert, crop. Only the luma
    # plane can fall short of the even size (chroma planes already round up): repeat its last
    # row and column.
    even_w, even_h = _round_up(width, 2), _round_up(height, 2)
    repacked = np.empty((even_h * 3 // 2, even_w), np.uint8)
    flat = repacked.reshape(-1)
    target = 0
    for index, (offset, stride, rows, row_bytes) in enumerate(planes(fmt, width, height)):
        plane = data[offset: offset + stride * rows].reshape(rows, stride)[:, :row_bytes]
        dest_rows, dest_bytes = (even_h, even_w) if index == 0 else (rows, row_bytes)
        dest = flat[target: target + dest_rows * dest_bytes].reshape(dest_rows, dest_bytes)
        dest[:rows, :row_bytes] = plane
        dest[rows:, :row_bytes] = plane[-1:]
        dest[:, row_bytes:] = dest[:, row_bytes - 1: row_bytes]
        target += dest_rows * dest_bytes
    if full:
        _limited(repacked, even_h, copy=False)
    if (even_w, even_h) == (width, height):
        cv2.cvtColor(repacked, _CODES[fmt], dst=out)
    else:
        np.copyto(out, cv2.cvtColor(repacked, _CODES[fmt])[:height, :width])
    return out


def _limited(picture: np.ndarray, luma_rows: int, copy: bool) -> np.ndarray:
    """``picture`` (a packed 4:2:0 picture, 2-D) mapped from 0-255 to 16-235, in place unless ``copy``."""
    result = np.empty_like(picture) if copy else picture
    cv2.LUT(picture[:luma_rows], _FULL_TO_LIMITED_LUMA, dst=result[:luma_rows])
    cv2.LUT(picture[luma_rows:], _FULL_TO_LIMITED_CHROMA, dst=result[luma_rows:])
    return result
