"""``facepro doctor``'s camera-load estimate: the detector timed here, the cameras probed for real."""
from __future__ import annotations

from edge.config import load_settings
from edge.doctor import PASS, WARN, check_camera_load
from edge.pipeline.capacity import CameraLoad, estimate
from edge.pipeline.sources import probe_source
from tests.conftest import CLIP


def probed(settings) -> dict:
    return {c["name"]: probe_source(c, timeout_s=10) for c in settings["cameras"]}


def test_gated_cameras_fit_and_ungated_ones_at_full_rate_do_not(write_settings) -> None:
    gated = load_settings(write_settings({"cameras": [
        {"name": f"door{i}", "source": str(CLIP)} for i in range(2)]}), env={})
    check = check_camera_load(gated, probed(gated))
    assert check.status == PASS, check
    assert "2 camera(s)" in check.detail and "640x360" in check.detail

    ungated = load_settings(write_settings({"cameras": [
        {"name": f"door{i}", "source": str(CLIP), "motion": False, "detect_fps": 0} for i in range(4)]},
        name="ungated.json"), env={})
    check = check_camera_load(ungated, probed(ungated))
    assert check.status == WARN, check
    assert "with every camera in motion the detector needs" in check.detail
    assert "detect_fps" in check.fix


def test_the_estimate_adds_up() -> None:
    one = CameraLoad("door", 640, 360, 15.0, 5.0, True, 30.0, det_ms=40.0)
    result = estimate([one] * 8, cores=2)
    # with motion: 8 x 5 fps x 40 ms = 1.6 s of detector per second: more than one worker
    assert result["worker_busy_motion"] == 1.6 and not result["carried"]
    assert "4 of 8 camera(s) in motion at once fit" in result["problems"][0]
    # at rest: decode 15 fps + 5 samples a second, and one detection per 30 s, per camera
    per_camera = 15 * 0.2304 * 4.0 / 1000 + 5 * 0.2304 * 3.5 / 1000 + 2 * 0.040 / 30
    assert abs(result["cpu_cores_rest"] - 8 * per_camera) < 1e-3
    assert estimate([one] * 3, cores=2)["carried"]
