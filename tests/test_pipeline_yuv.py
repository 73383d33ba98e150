"""edge.pipeline.yuv: GStreamer's I420/NV12 layout and the conversion to BGR, checked against
GStreamer's own VideoInfo and videoconvert, for camera sizes and for odd ones."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.pipeline import gst, yuv
from tests.conftest import MEDIA_DIR

needs_gst = pytest.mark.skipif(not gst.available(), reason=gst.unavailable_reason())
SIZES = [(640, 360), (1920, 1080), (1280, 720), (642, 361), (643, 360), (644, 362), (7, 5)]


def _gst_video() -> Any:
    import gi

    gi.require_version("GstVideo", "1.0")
    from gi.repository import GstVideo

    return GstVideo


def _picture(fmt: str, width: int, height: int, pattern: str = "pinwheel") -> np.ndarray:
    """One picture from videotestsrc (BT.601, 16-235), in ``fmt`` as GStreamer lays it out."""
    return _decoded(f"videotestsrc pattern={pattern} num-buffers=1 ! video/x-raw,format=I420,colorimetry=bt601,"
                    f"width={width},height={height}", fmt, width, height)


def _decoded(source: str, fmt: str, width: int, height: int) -> np.ndarray:
    """The first picture of GStreamer's ``source`` in ``fmt`` (BGR: a (height, width, 3) array
    with the rows' padding dropped; YUV: the buffer's bytes)."""
    Gst = gst.gst()
    pipeline = Gst.parse_launch(f"{source} ! videoconvert ! video/x-raw,format={fmt} ! appsink name=sink")
    pipeline.set_state(Gst.State.PLAYING)
    try:
        sample = pipeline.get_by_name("sink").emit("try-pull-sample", 5 * Gst.SECOND)
        buffer = sample.get_buffer()
        data = np.frombuffer(buffer.extract_dup(0, buffer.get_size()), np.uint8)
    finally:
        pipeline.set_state(Gst.State.NULL)
    if fmt == "BGR":
        stride = (width * 3 + 3) // 4 * 4
        return data.reshape(height, stride)[:, : width * 3].reshape(height, width, 3)
    assert yuv.full_range(sample.get_caps().get_structure(0).get_string("colorimetry")) == ("jpegdec" in source)
    return data


@needs_gst
@pytest.mark.parametrize("fmt", yuv.FORMATS)
@pytest.mark.parametrize("width, height", SIZES)
def test_layout_is_gstreamers(fmt: str, width: int, height: int) -> None:
    GstVideo = _gst_video()
    info = GstVideo.VideoInfo.new_from_caps(gst.gst().Caps.from_string(
        f"video/x-raw,format={fmt},width={width},height={height},framerate=15/1"))
    planes = yuv.planes(fmt, width, height)
    assert [p[0] for p in planes] == list(info.offset[: len(planes)])
    assert [p[1] for p in planes] == list(info.stride[: len(planes)])
    assert yuv.frame_size(fmt, width, height) == info.size


@needs_gst
@pytest.mark.parametrize("fmt", yuv.FORMATS)
@pytest.mark.parametrize("width, height", SIZES)
def test_conversion_agrees_with_videoconvert(fmt: str, width: int, height: int) -> None:
    for pattern in ("pinwheel", "smpte"):
        reference = _picture("BGR", width, height, pattern).astype(int)
        converted = yuv.to_bgr(_picture(fmt, width, height, pattern), fmt, width, height)
        diff = np.abs(converted.astype(int) - reference)
        # rounding and chroma interpolation differ by a few levels, never a shifted or swapped plane
        assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 6, (pattern, diff.mean())


@needs_gst
@pytest.mark.parametrize("fmt", yuv.FORMATS)
@pytest.mark.parametrize("size", [(640, 360), None])
def test_full_range_pictures_keep_their_contrast(fmt: str, size: tuple[int, int] | None, tmp_path: Path) -> None:
    """A JPEG (an MJPEG camera's picture, and many IP cameras' H.264) uses 0-255: jpegdec says so
    as colorimetry 1:4:0:0. A real photo, as a camera's 640x360 and at its own size (970x2204)."""
    assert yuv.full_range("1:4:0:0") and not yuv.full_range("2:4:5:4") and not yuv.full_range("bt709")
    assert not yuv.full_range(None)
    photo = cv2.imread(str(MEDIA_DIR / "biden.jpg"))
    if size is not None:
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    path = tmp_path / "frame.jpg"
    path.write_bytes(cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
    height, width = photo.shape[:2]
    source = f"filesrc location={path} ! jpegdec"
    reference = _decoded(source, "BGR", width, height).astype(int)
    picture = _decoded(source, fmt, width, height)
    diff = np.abs(yuv.to_bgr(picture, fmt, width, height, full=True).astype(int) - reference)
    assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 6, diff.mean()
    stretched = yuv.to_bgr(picture, fmt, width, height)
    assert np.abs(stretched.astype(int) - reference).mean() > 5  # read as 16-235 it is not the picture


def test_converts_into_the_slot_it_is_given() -> None:
    bgr = np.random.default_rng(1).integers(0, 256, (360, 640, 3), np.uint8)
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    slot = np.zeros_like(bgr)
    assert yuv.to_bgr(i420, "I420", 640, 360, slot) is slot
    assert np.array_equal(slot, cv2.cvtColor(i420.reshape(540, 640), cv2.COLOR_YUV2BGR_I420))
    other = yuv.to_bgr(i420, "I420", 640, 360, np.zeros((10, 10, 3), np.uint8))
    assert other.shape == (360, 640, 3) and np.array_equal(other, slot)


def test_a_short_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match=r"I420 640x360: 1000 bytes, 345600 expected"):
        yuv.to_bgr(np.zeros(1000, np.uint8), "I420", 640, 360)
    with pytest.raises(ValueError, match="YUY2: not one of I420, NV12"):
        yuv.frame_size("YUY2", 640, 360)
