"""The GStreamer source through PyGObject (edge.pipeline.gst): pipeline choice per platform, a
whole pipeline given by the user, RTSP H.264/H.265 and MJPEG decoded in software from real
servers on loopback, the faults a camera has, and recognition end to end on an RTSP stream."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.pipeline import gst, gst_platform
from edge.pipeline.capture import SourceError, open_capture
from tests.conftest import CLIP, MEDIA_DIR, MODELS_DIR, REPO, subprocess_env
from tests.support.camera_run import WatchedCamera
from tests.support.cli import run_cli
from tests.support.mjpeg import MjpegCamera
from tests.support.rtsp import RtspCamera, encode_clip, rtsp_available
from tests.support.service import start_service, stop_process, wait_for_line
from tests.support.waiting import wait_until

needs_gst = pytest.mark.skipif(not gst.available(), reason=gst.unavailable_reason())
needs_rtsp = pytest.mark.skipif(bool(rtsp_available()) or not gst.available(),
                                reason=str(rtsp_available() or gst.unavailable_reason()))
STALL_S = 2.0
LOAD_MARGIN_S = 1.5  # the suite shares two cores
PASSWORD = "gst-Secret-42"

JETSON = {"nvv4l2decoder", "nvvidconv", "nvjpegdec", "vah264dec"}
NUC_VA = {"vah264dec", "vah265dec", "vajpegdec", "avdec_h264", "avdec_h265", "jpegdec"}
NUC_VAAPI = {"vaapih264dec", "vaapih265dec", "avdec_h264"}
PLAIN = {"avdec_h264", "avdec_h265", "jpegdec"}


@pytest.mark.parametrize("elements, render_node, platform", [
    (JETSON, False, "nvidia"),
    (NUC_VA, True, "vaapi"),
    (NUC_VAAPI, True, "vaapi"),
    (NUC_VA, False, "software"),      # the decoders are installed, the GPU is not reachable
    (PLAIN, True, "software"),
    (set(), False, "software"),
])
def test_platform_is_chosen_from_what_the_device_has(elements: set[str], render_node: bool, platform: str) -> None:
    chosen, why = gst_platform.choose_platform("auto", present=elements.__contains__, render_node=lambda: render_node)
    assert chosen == platform and why


def test_a_camera_can_force_the_platform() -> None:
    assert gst_platform.choose_platform("software", JETSON.__contains__)[0] == "software"
    assert gst_platform.choose_platform("vaapi", PLAIN.__contains__)[0] == "vaapi"


def test_decode_chains_per_platform_and_codec() -> None:
    jetson = gst_platform.decode_chain("nvidia", "h265", present=JETSON.__contains__)
    assert jetson == "rtph265depay ! h265parse ! nvv4l2decoder ! nvvidconv ! video/x-raw,format=NV12"
    assert gst_platform.decode_chain("vaapi", "h264", present=NUC_VAAPI.__contains__) == "rtph264depay ! h264parse ! vaapih264dec"
    assert gst_platform.decode_chain("vaapi", "h264", present=NUC_VA.__contains__).endswith("! vah264dec")  # va first
    assert gst_platform.decode_chain("software", "h264", present=PLAIN.__contains__).endswith("! avdec_h264")
    assert "nvv4l2decoder mjpeg=1" in gst_platform.mjpeg_chain("nvidia", present=JETSON.__contains__)
    with pytest.raises(gst_platform.GstSourceError, match="no vaapi decoder for H265 is installed.*vah265dec"):
        gst_platform.decode_chain("vaapi", "h265", present=PLAIN.__contains__)


def test_credentials_are_split_from_the_url() -> None:
    assert gst_platform.split_credentials("rtsp://ad%40min:p%3Ass@10.0.0.5:554/s?x=1") == (
        "rtsp://10.0.0.5:554/s?x=1", "ad@min", "p:ss")
    assert gst_platform.split_credentials("rtsp://10.0.0.5/s") == ("rtsp://10.0.0.5/s", None, None)


@needs_gst
def test_a_users_pipeline_decodes_into_the_ring_slot() -> None:
    camera = {"name": "csi", "source": "videotestsrc is-live=true pattern=ball ! "
              "video/x-raw,format=BGR,width=641,height=361,framerate=15/1 ! appsink"}
    cap = open_capture(camera, timeout_s=5)
    try:
        assert isinstance(cap, gst.GstCapture)
        assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (641, 361)
        assert cap.get(cv2.CAP_PROP_FPS) == 15
        slot = np.zeros((361, 641, 3), np.uint8)  # odd width: rows padded to 4 bytes in the buffer
        clocks = []
        for _ in range(4):
            assert cap.grab()
            ok, out = cap.retrieve(slot)
            assert ok and out is slot  # copied once, into the slot itself
            clocks.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        assert clocks == sorted(clocks) and clocks[-1] - clocks[0] > 150
        assert slot.any()
        ok, fresh = cap.read()  # a slot of another shape gets a new array
        assert ok and fresh is not None and fresh.shape == (361, 641, 3)
    finally:
        cap.release()
    assert not cap.isOpened() and not cap.grab()


@needs_gst
@pytest.mark.parametrize("source, message", [
    ("videotestsrc ! nosuchelement ! appsink", "does not build.*nosuchelement"),
    ("videotestsrc num-buffers=1 ! fakesink", "no appsink"),
    ("videotestsrc num-buffers=0 ! video/x-raw,format=BGR ! appsink", "end of stream|no frame"),
])
def test_a_broken_pipeline_is_named(source: str, message: str) -> None:
    with pytest.raises(SourceError, match=f"camera 'csi'.*({message})"):
        open_capture({"name": "csi", "source": source}, timeout_s=3)


@needs_gst
def test_cxx_exceptions_still_raise_once_gstreamer_is_loaded(tmp_path: Path) -> None:
    """libgstreamer brings libunwind into the global symbols; without the service's guard a corrupt
    model (ONNX Runtime throwing inside C++) aborted the whole process instead of raising."""
    bad = tmp_path / "pack"
    bad.mkdir()
    (bad / "scrfd_2.5g_bnkps.onnx").write_bytes((MODELS_DIR / "scrfd_2.5g_bnkps.onnx").read_bytes()[:50_000])
    (bad / "mobilefacenet.onnx").symlink_to(MODELS_DIR / "mobilefacenet.onnx")
    # the order that aborted: OpenCV, then GStreamer, then ONNX Runtime loaded and throwing
    code = ("import sys, cv2\n"
            "from edge.pipeline import gst\n"
            "assert gst.available()\n"
            "gst.GstCapture(launch='videotestsrc num-buffers=5 ! video/x-raw,format=BGR ! appsink').release()\n"
            "from edge.pipeline.pack import ModelPackError, load_model_pack\n"
            "try:\n"
            "    load_model_pack(sys.argv[1])\n"
            "except ModelPackError as exc:\n"
            "    print('raised:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=subprocess_env())
    assert proc.returncode == 0 and "raised:" in proc.stdout and "cannot load" in proc.stdout, proc.stderr[-2000:]


def test_gstreamer_backend_without_pygobject_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gst, "_gst", None)
    monkeypatch.setattr(gst, "_gst_error", "GStreamer through PyGObject is not available (No module named 'gi')")
    with pytest.raises(SourceError, match="camera 'door'.*backend 'gstreamer'.*No module named 'gi'"):
        open_capture({"name": "door", "source": "rtsp://127.0.0.1:9/x", "backend": "gstreamer"}, timeout_s=1)
    with pytest.raises(SourceError, match="backend 'gstreamer' takes an rtsp"):
        open_capture({"name": "door", "source": str(CLIP), "backend": "gstreamer"}, timeout_s=1)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if rtsp_available():
        pytest.skip(str(rtsp_available()))
    base = tmp_path_factory.mktemp("gst")
    return {codec: encode_clip(CLIP, base / f"clip-{codec}.mp4", codec, loops=3) for codec in ("h264", "h265")}


@needs_rtsp
@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_rtsp_decoded_in_software_with_credentials_kept_out_of_the_pipeline(
        clips: dict[str, Path], codec: str, caplog: pytest.LogCaptureFixture) -> None:
    server = RtspCamera(clips[codec], codec, credentials=("admin", PASSWORD)).start()
    try:
        camera = {"name": "door", "source": server.url(), "username": "admin", "password": PASSWORD,
                  "backend": "gstreamer", "decoder": "software", "stall_timeout_s": 5}
        caplog.set_level("INFO")
        cap = open_capture(camera)
        try:
            assert f"avdec_{codec}" in cap.description and f"rtp{codec}depay" in cap.description
            assert cap.pixel_format == "I420" and "format=BGR" not in cap.description
            assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 360)
            slot = np.zeros((360, 640, 3), np.uint8)
            for _ in range(10):
                assert cap.grab() and cap.retrieve(slot)[1] is slot
        finally:
            cap.release()
        assert "software decoding" in caplog.text and PASSWORD not in caplog.text
        with pytest.raises(SourceError) as wrong:
            open_capture({**camera, "password": "not-it"})
        assert wrong.value.cause is not None and wrong.value.cause.code == "unauthorized"
        with pytest.raises(SourceError) as missing:
            open_capture({**camera, "source": server.url(path="/nope")})
        assert missing.value.cause is not None and missing.value.cause.code == "not_found"
    finally:
        server.stop()


@needs_gst
def test_mjpeg_over_http_through_gstreamer() -> None:
    colours = [(30 * i, 200 - 25 * i, 90 + 10 * i) for i in range(6)]  # BGR
    frames = [cv2.imencode(".jpg", np.full((240, 320, 3), colour, np.uint8))[1].tobytes() for colour in colours]
    server = MjpegCamera(frames, fps=10).start()
    try:
        cap = open_capture({"name": "porch", "source": server.url, "backend": "gstreamer"}, timeout_s=5)
        try:
            assert "jpegdec" in cap.description
            assert cap.pixel_format == "I420"  # the decoder's own YUV: converted only on retrieve
            clocks = []
            for _ in range(4):
                ok, frame = cap.read()
                assert ok and frame is not None and frame.shape == (240, 320, 3)
                seen = frame.reshape(-1, 3).mean(axis=0)  # a swapped or shifted chroma plane would tint it
                assert min(np.abs(seen - colour).max() for colour in colours) < 5, seen
                clocks.append(cap.get(cv2.CAP_PROP_POS_MSEC))
            assert clocks == sorted(clocks) and len(set(clocks)) == 4
        finally:
            cap.release()
    finally:
        server.stop()


@needs_rtsp
def test_stall_and_reboot_with_the_gstreamer_source(clips: dict[str, Path]) -> None:
    server = RtspCamera(clips["h264"]).start()
    try:
        camera = {"name": "gate", "source": server.url(), "backend": "gstreamer", "stall_timeout_s": STALL_S}
        with WatchedCamera(camera) as cam:
            wait_until(lambda: cam.status["online"] and cam.status["frames_captured"] > 10, 20, "frames flowing")
            t0 = time.monotonic()
            server.pause()
            stalled = cam.first_change(False, t0, STALL_S + 10)
            assert stalled is not None and stalled <= STALL_S + 1.0 + LOAD_MARGIN_S, (stalled, cam.changes)
            frozen = cam.status["frames_captured"]
            time.sleep(STALL_S + 0.5)
            assert cam.status["frames_captured"] == frozen and cam.states_since(t0) == [False]
            server.resume()
            assert cam.first_change(True, time.monotonic(), 20) is not None, cam.changes
            t1 = time.monotonic()
            server.stop()
            assert cam.first_change(False, t1, STALL_S + 10) is not None, cam.changes
            time.sleep(3)
            server.start()
            t2 = time.monotonic()
            back = cam.first_change(True, t2, 20)
            assert back is not None and back <= 3.0 + LOAD_MARGIN_S, (back, cam.changes)
            assert cam.states_since(t0) == [False, True, False, True], cam.changes
        assert not cam.source.running  # a release never hangs the capture thread
    finally:
        server.stop()


@needs_rtsp
def test_recognition_on_an_rtsp_stream_through_gstreamer(clips: dict[str, Path], write_settings,
                                                         data_dir: Path) -> None:
    server = RtspCamera(clips["h264"]).start()
    config = write_settings({
        "cameras": [{"name": "stage", "source": server.url(), "backend": "gstreamer", "decoder": "auto"}],
        "web": {"enabled": False}, "mqtt": {"enabled": False}, "backup": {"schedule": None},
        "recognition": {"cooldown_s": 2.0}})
    enrolled = run_cli(config, "enroll", "Lin-Manuel Miranda", str(MEDIA_DIR / "lin-manuel-miranda.png"))
    assert enrolled.returncode == 0, enrolled.stderr
    proc = start_service(config)
    seen: list[str] = []
    try:
        seen += wait_for_line(proc, "GStreamer, software decoding", timeout=60)
        seen += wait_for_line(proc, "recognized Lin-Manuel Miranda on camera stage", timeout=90)
    finally:
        log = "".join(seen) + stop_process(proc)
        server.stop()
    conn = sqlite3.connect(data_dir / "facepro.db")
    try:
        labels = {row[0] for row in conn.execute("SELECT object_label FROM events WHERE camera_name = 'stage'")}
    finally:
        conn.close()
    assert "Lin-Manuel Miranda" in labels, log
