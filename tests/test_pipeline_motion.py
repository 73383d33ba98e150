"""Motion gating on real frames of the shared media, on a simulated 15 fps clock.

Scenes (tests/support/scenes.py): the clip's first frame blurred until no face is left (the
empty scene at a door) or a still frame of the clip (a person standing still), through a
camera (sensor noise, JPEG); passages are the clip's own frames. The detector is the real one
and tells the gate what it found, as the inference worker does.
"""
from __future__ import annotations

import numpy as np
import pytest

from edge.bus import EventBus
from edge.config import ConfigError, load_settings
from edge.pipeline.gate import DetectGate, build_gate, motion_region
from edge.pipeline.motion import MotionConfig, MotionDetector
from edge.pipeline.region import detect as detect_in
from edge.pipeline.ring import FrameSlot
from tests.support.scenes import camera_frame, clip_frames, still_background

FPS = 15.0


@pytest.fixture(scope="module")
def background() -> np.ndarray:
    return still_background()


@pytest.fixture(scope="module")
def passage() -> list[np.ndarray]:
    return clip_frames(step=2, limit=45)  # 3 s of people at 15 fps


def feed(gate: DetectGate, frames, start_s: float = 0.0, detector=None) -> list[tuple[float, int]]:
    """Offer ``frames`` at 15 fps from ``start_s``; (time, faces or -1) of every admitted frame."""
    admitted = []
    for i, frame in enumerate(frames):
        now = start_s + i / FPS
        if not gate.sample_due(now):
            continue
        slot = FrameSlot(0, frame)
        if gate.admit(slot, now):
            faces = -1
            if detector is not None:
                faces = len(detect_in(detector, frame, slot.region, None, {}, None))
                gate.faces_seen(faces)
            admitted.append((now, faces))
    return admitted


def noisy(scene: np.ndarray, count: int, seed: int = 0, gain: float = 1.0) -> list[np.ndarray]:
    """``count`` frames of ``scene`` through a camera (8 noise patterns in turn: the fixture
    stays fast, and the background never sees one pattern often enough to learn it)."""
    rng = np.random.default_rng(seed)
    variants = [camera_frame(scene, rng, gain=gain) for _ in range(8)]
    return [variants[i % 8] for i in range(count)]


def gated(**kw) -> DetectGate:
    return DetectGate("door", detect_fps=kw.pop("detect_fps", 5), motion=MotionDetector(kw.pop("config", None),
                      kw.pop("masks", None)), **kw)


def test_still_noisy_scene_is_not_motion_and_the_detector_rests(background, pack) -> None:
    gate = gated()
    admitted = feed(gate, noisy(background, int(20 * FPS)), detector=pack.detector)
    warmup = MotionConfig().warmup_frames
    # 20 s: the warm-up samples, then nothing (the detector found no face; idle check every 30 s)
    assert len(admitted) == warmup and all(faces == 0 for _, faces in admitted)
    assert gate.in_motion is False and gate.last is not None and gate.last.fraction < 0.005
    assert gate.frames_sampled == 100  # 5 fps of 15: the others were never converted
    ungated = DetectGate("door", detect_fps=5)
    assert len(feed(ungated, noisy(background, int(20 * FPS)))) == 100


def test_a_passing_face_is_motion_and_reaches_the_detector(background, passage, pack) -> None:
    bus = EventBus()
    changes: list[dict] = []
    bus.subscribe("motion", changes.append)
    gate = gated(bus=bus)
    feed(gate, noisy(background, int(4 * FPS)), detector=pack.detector)
    assert gate.in_motion is False
    frames = [camera_frame(f, np.random.default_rng(i)) for i, f in enumerate(passage)]
    admitted = feed(gate, frames, start_s=4.0, detector=pack.detector)
    # every sample of the passage goes to the detector, from its first frame on, and finds faces
    assert len(admitted) == 15 and admitted[0][0] == pytest.approx(4.0)
    assert sum(1 for _, faces in admitted if faces > 0) >= 13
    assert gate.last is not None and gate.last.motion and gate.last.box is not None
    x1, y1, x2, y2 = gate.last.box
    faces = pack.detector.detect(frames[-1])
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    assert all(x1 <= cx <= x2 and y1 <= cy <= y2 for cx, cy in centres)
    assert changes[-1] == {"name": "door", "motion": True, "fraction": changes[-1]["fraction"]}
    # back to the empty scene: motion ends after hold_s, and the detector rests again
    after = feed(gate, noisy(background, int(4 * FPS), seed=5), start_s=7.0, detector=pack.detector)
    assert gate.in_motion is False and changes[-1]["motion"] is False
    # the cut back and the ghost the people leave in the background (about 1 s), then hold_s
    assert after and max(t for t, _ in after) < 7.0 + 2.8, after


def composite(background: np.ndarray, people: np.ndarray, left: bool) -> np.ndarray:
    """People from the clip in one half of the empty scene."""
    out = background.copy()
    half = out.shape[1] // 2
    if left:
        out[:, :half] = people[:, :half]
    else:
        out[:, half:] = people[:, half:]
    return out


@pytest.mark.parametrize("masked, expect_motion", [("left", False), ("right", True), ("none", True)])
def test_masks_are_honoured(background, passage, masked: str, expect_motion: bool) -> None:
    masks = {"left": [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]],
             "right": [[[0.5, 0], [1, 0], [1, 1], [0.5, 1]]], "none": []}[masked]
    detector = MotionDetector(masks=masks)
    rng = np.random.default_rng(3)
    for _ in range(15):
        detector.update(camera_frame(background, rng))
    seen = [detector.update(camera_frame(composite(background, f, left=True), rng)) for f in passage[::3]]
    assert any(r.motion for r in seen) is expect_motion
    if expect_motion:
        box = next(r.box for r in seen if r.motion)
        assert box is not None and box[2] <= background.shape[1] // 2 + 8  # motion only in the left half


def test_masks_are_validated_naming_the_key(write_settings) -> None:
    ok = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]]
    load_settings(write_settings({"cameras": [{"name": "door", "source": "0", "motion_masks": [ok]}]}), env={})
    for masks, needle in (([[[0.1, 0.1], [0.2, 0.2]]], "cameras[0].motion_masks[0]: a polygon needs 3"),
                          ([[[0.1, 0.1], [0.2, 1.5], [0.3, 0.3]]], "cameras[0].motion_masks[0][1]"),
                          ([[[0.1, 0.1, 0.2], [0.2, 0.2], [0.3, 0.3]]], "a point is [x, y]"),
                          ([ok] * 17, "17 polygons, at most 16"),
                          ([[["a", 0], [0, 0], [1, 1]]], "expected a number")):
        with pytest.raises(ConfigError) as caught:
            load_settings(write_settings({"cameras": [{"name": "door", "source": "0", "motion_masks": masks}]}),
                          env={})
        assert needle in str(caught.value) and "settings.json" in str(caught.value)
    with pytest.raises(ConfigError, match=r"pipeline.motion.threshold: 300 is above the maximum 255"):
        load_settings(write_settings({"pipeline": {"motion": {"threshold": 300}}}), env={})


def test_keepalive_catches_a_person_standing_still(passage, pack) -> None:
    still_person = passage[5]  # two faces the detector finds through any noise pattern
    gate = gated(keepalive_s=2.0)
    admitted = feed(gate, noisy(still_person, int(12 * FPS)), detector=pack.detector)
    warmup = MotionConfig().warmup_frames
    keepalive = admitted[warmup:]
    # no motion after the warm-up, yet the detector looks every 2 s and finds the face each time
    assert gate.in_motion is False and len(keepalive) == 5, admitted
    gaps = np.diff([t for t, _ in admitted[warmup - 1:]])
    assert np.allclose(gaps, 2.0, atol=0.21)
    assert all(faces >= 1 for _, faces in keepalive)
    assert gate.figures()["admitted_keepalive"] == len(keepalive)


@pytest.mark.parametrize("change", ["lights dimmed", "lights on", "infrared mode"])
def test_a_lighting_change_is_one_look_not_a_burst(background, pack, change: str) -> None:
    import cv2

    night = cv2.cvtColor(cv2.cvtColor(background, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    night = cv2.convertScaleAbs(night, alpha=1.6, beta=20)
    scene = {"lights dimmed": (background, 0.55), "lights on": (background, 1.5), "infrared mode": (night, 1.0)}
    second, gain = scene[change]
    frames = noisy(background, 150, seed=7) + noisy(second, 150, seed=8, gain=gain)
    gate = gated()
    admitted = feed(gate, frames, detector=pack.detector)
    after = [t for t, _ in admitted if t >= 10.0]
    # one detection on the change itself, none of the motion that a changed picture would be
    assert len(after) == 1 and after[0] == pytest.approx(10.0), admitted
    assert gate.motion is not None and gate.motion.global_changes == 1
    assert gate.in_motion is False


@pytest.mark.parametrize("camera_fps, cap", [(15.0, 5.0), (30.0, 4.0), (25.0, 10.0)])
def test_the_rate_cap_holds(camera_fps: float, cap: float) -> None:
    gate = DetectGate("door", detect_fps=cap)
    rng = np.random.default_rng(1)
    frame = np.zeros((36, 64, 3), dtype=np.uint8)
    times = np.arange(0, 20, 1 / camera_fps) + rng.uniform(-0.004, 0.004, int(np.ceil(20 * camera_fps)))
    admitted = [t for t in times if gate.sample_due(t) and gate.admit(FrameSlot(0, frame), t)]
    assert cap * 20 - 2 <= len(admitted) <= cap * 20 + 1
    per_second = np.array([t - admitted[0] for t in admitted])
    for start in np.arange(0, 19, 0.25):  # any one-second window
        assert np.count_nonzero((per_second >= start) & (per_second < start + 1)) <= cap + 1


def test_motion_region_is_a_square_inside_the_frame() -> None:
    assert motion_region((10, 10, 60, 60), (360, 640, 3), 256) == (0, 0, 256, 256)
    assert motion_region((600, 300, 630, 350), (360, 640, 3), 256) == (384, 104, 256, 256)
    assert motion_region((0, 0, 400, 300), (360, 640, 3), 256) is None  # too large: the whole frame
    assert motion_region((0, 0, 10, 10), (200, 200, 3), 256) is None    # frame smaller than the square


def test_region_detection_finds_the_faces_at_frame_positions(passage, pack) -> None:
    frame = passage[5]
    whole = pack.detector.detect(frame)
    boxes = np.array(whole.boxes, copy=True)
    x1, y1, x2, y2 = boxes[0]
    region = motion_region((int(x1), int(y1), int(x2), int(y2)), frame.shape, 256)
    assert region is not None
    found = detect_in(pack.detector, frame, region, None, {}, None)
    near = np.abs(np.array(found.boxes) - boxes[0]).max(axis=1)
    assert near.min() < 12  # the same face, in whole-frame coordinates


def test_settings_choose_the_gate(write_settings) -> None:
    settings = load_settings(write_settings({"cameras": [
        {"name": "a", "source": "0"}, {"name": "b", "source": "1", "motion": False, "detect_fps": 0},
        {"name": "c", "source": "2", "motion": False, "detect_fps": 2.5}]}), env={})
    gates = {c["name"]: build_gate(c, settings["pipeline"]) for c in settings["cameras"]}
    a, b, c = gates["a"], gates["b"], gates["c"]
    assert a is not None and a.gating and a.detect_fps == 5 and a.keepalive_s == 2.0 and a.idle_check_s == 30.0
    assert b is None  # neither capped nor gated: every frame, as before
    assert c is not None and not c.gating and c.detect_fps == 2.5
