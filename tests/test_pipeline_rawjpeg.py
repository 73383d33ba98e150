"""MJPEG cameras read as raw packets (edge.pipeline.rawjpeg): a skipped picture is never decoded,
a sampled one is judged by a reduced grey decode, the detector's gets the full decode; a packet
whose JPEG header disagrees with the stream's size is never decoded."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from edge.pipeline import rawjpeg
from edge.pipeline.gate import DetectGate
from edge.pipeline.motion import MotionDetector
from edge.pipeline.ring import FrameRing, FrameSlot
from edge.pipeline.sources import CameraSource
from tests.support.mjpeg import MjpegCamera
from tests.support.scenes import camera_frame, clip_frames, still_background
from tests.support.waiting import wait_until

SIZE = (640, 360)


def jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def packet(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint8).reshape(1, -1)  # the shape OpenCV's raw mode hands over


@pytest.mark.parametrize("width, flag", [(1920, cv2.IMREAD_REDUCED_GRAYSCALE_8), (1280, cv2.IMREAD_REDUCED_GRAYSCALE_8),
                                         (640, cv2.IMREAD_REDUCED_GRAYSCALE_4), (320, cv2.IMREAD_REDUCED_GRAYSCALE_2),
                                         (200, cv2.IMREAD_GRAYSCALE)])
def test_the_smallest_decode_the_motion_check_can_use(width: int, flag: int) -> None:
    assert rawjpeg.reduction(width, 160) == flag


def test_a_packet_is_decoded_only_when_its_header_matches_the_stream() -> None:
    frame = still_background(SIZE)
    good = rawjpeg.checked(packet(jpeg(frame)), SIZE)
    assert good is not None
    grey = cv2.imdecode(good, rawjpeg.reduction(SIZE[0], 160))
    assert grey is not None and grey.shape == (90, 160)
    colour = cv2.imdecode(good, cv2.IMREAD_COLOR)
    assert colour is not None and colour.shape == (360, 640, 3)
    bigger = packet(jpeg(cv2.resize(frame, (1280, 720))))  # a picture larger than the stream says
    assert rawjpeg.checked(bigger, SIZE) is None
    for junk in (b"\xff\xd8\xff\xe0garbage", b"not a jpeg at all", b"\x89PNG\r\n\x1a\n" + bytes(40)):
        assert rawjpeg.checked(packet(junk), SIZE) is None


def test_motion_from_the_reduced_grey_decode_agrees_with_the_full_frame() -> None:
    rng = np.random.default_rng(3)
    scene = still_background(SIZE)
    frames = [camera_frame(scene, rng) for _ in range(40)] + [camera_frame(f, rng) for f in clip_frames(3, SIZE, 30)]
    full, reduced = (DetectGate("door", detect_fps=0, motion=MotionDetector()) for _ in range(2))
    verdicts = []
    moving = []
    for i, frame in enumerate(frames):
        data = rawjpeg.checked(packet(jpeg(frame)), SIZE)
        assert data is not None
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert decoded is not None
        grey = cv2.imdecode(data, rawjpeg.reduction(SIZE[0], 160))
        assert grey is not None
        a = full.admit(FrameSlot(0, decoded), i / 15)
        b, _ = reduced.admit_grey(grey, decoded.shape, i / 15)
        verdicts.append((a, b))
        moving.append(reduced.in_motion)
    assert sum(a != b for a, b in verdicts) <= 2, verdicts
    assert not any(moving[12:40])  # the still scene: no motion after the warm-up (a keep-alive look)
    assert all(moving[41:]) and all(b for _, b in verdicts[41:])  # people: motion, every frame admitted


def test_a_live_mjpeg_camera_decodes_only_what_the_gate_samples() -> None:
    rng = np.random.default_rng(5)
    still = [jpeg(camera_frame(still_background(SIZE), rng)) for _ in range(8)]
    hostile = jpeg(cv2.resize(still_background(SIZE), (1920, 1080)))  # not the stream's size
    people = [jpeg(camera_frame(f, rng)) for f in clip_frames(2, SIZE, 40)]
    quiet = MjpegCamera(still + [hostile], fps=15).start()
    busy = MjpegCamera(people, fps=15).start()
    sources = []
    try:
        for name, server in (("quiet", quiet), ("busy", busy)):
            gate = DetectGate(name, detect_fps=5, motion=MotionDetector())
            sources.append(CameraSource({"name": name, "source": server.url, "stall_timeout_s": 3},
                                        FrameRing(3, policy="latest"), gate=gate).start())
        wait_until(lambda: all(s.status()["frames_captured"] >= 45 for s in sources), 20, "three seconds of frames")
        t0 = time.monotonic()
        before = [(s.status()["frames_captured"], s.gate.frames_sampled) for s in sources]
        # 20 more pictures from each (the servers send 15 fps, fewer on a loaded machine), then the
        # gate's samples over the time that took
        wait_until(lambda: all(s.status()["frames_captured"] - c0 >= 20 for (c0, _), s in zip(before, sources)),
                   20, "20 more pictures from each camera")
        after = [(s.status()["frames_captured"], s.gate.frames_sampled) for s in sources]
        elapsed = time.monotonic() - t0
        quiet_src, busy_src = sources
        for (captured0, sampled0), (captured1, sampled1), source in zip(before, after, sources):
            assert source.raw_packets is True
            captured, sampled = captured1 - captured0, sampled1 - sampled0
            assert sampled <= 5 * elapsed + 2, (source.name, captured, sampled, elapsed)
        assert quiet_src.status()["decode_errors"] >= 1 and quiet_src.status()["online"]
        assert quiet_src.gate.in_motion is False
        assert busy_src.gate.frames_admitted > 10 and busy_src.status()["decode_errors"] == 0
        lease = busy_src.ring.lease(timeout=2.0)
        assert lease is not None and lease.array.shape == (360, 640, 3) and lease.array.std() > 10
        busy_src.ring.release(lease)
    finally:
        for source in sources:
            source.stop()
        quiet.stop()
        busy.stop()
