"""Camera sources: open a camera from its ``cameras[]`` settings and decode into a frame ring.

Source kinds (from the ``source`` value):

* ``usb``        an integer device index, a string of digits or a ``/dev/...`` path (V4L2);
* ``url``        ``rtsp://``, ``rtsp(s)``, ``http(s)://`` ... (MJPEG, H.264) through OpenCV's FFmpeg backend;
* ``gstreamer``  a pipeline string (contains ``!``), ending in ``appsink``; needs an OpenCV built
                 with GStreamer (Jetson images), otherwise a clear error;
* ``file``       a video file, optionally looped, paced at its native rate or read as fast as possible.

A :class:`CameraSource` runs one capture thread. A source that fails to open, ends (a live
stream) or stalls for ``stall_timeout_s`` is reopened with exponential backoff capped at
``reconnect_max_s``; its state (online, reconnects, last frame time) is readable through
:meth:`CameraSource.status` and published on the bus topic ``camera`` on every change.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import FaceproError
from edge.pipeline.ring import FrameRing, RateMeter, RingClosed

log = logging.getLogger(__name__)

KINDS = ("usb", "url", "gstreamer", "file")
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
BACKOFF_INITIAL_S = 0.5
DEFAULT_RECONNECT_MAX_S = 30.0


class SourceError(FaceproError):
    """A camera cannot be opened or read; the message names the camera and its source."""


def source_kind(source: str | int) -> str:
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        return "usb"
    text = source.strip()
    if "!" in text:
        return "gstreamer"
    if text.lower().startswith(URL_SCHEMES):
        return "url"
    if text.startswith("/dev/"):
        return "usb"
    return "file"


def has_gstreamer() -> bool:
    try:
        return bool(cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER))
    except Exception:  # very old OpenCV without the registry
        return "GStreamer:                   YES" in cv2.getBuildInformation()


def iso_utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def describe(camera: dict[str, Any]) -> str:
    return f"camera {camera.get('name', '?')!r} (source {camera.get('source')!r})"


def open_capture(camera: dict[str, Any], timeout_s: float | None = None) -> cv2.VideoCapture:
    """An opened ``VideoCapture`` for ``camera``; raises SourceError naming the camera and source."""
    source = camera["source"]
    kind = source_kind(source)
    backend_setting = camera.get("backend", "auto")
    stall = float(timeout_s if timeout_s is not None else camera.get("stall_timeout_s", 10.0))
    timeout_ms = int(max(stall, 0.1) * 1000)
    params: list[int] = []
    what = describe(camera)

    if kind == "gstreamer" or backend_setting == "gstreamer":
        if not has_gstreamer():
            raise SourceError(f"{what}: a GStreamer pipeline needs OpenCV built with GStreamer, "
                              "and this OpenCV has no GStreamer support (use an RTSP/HTTP URL or a device instead)")
        cap = cv2.VideoCapture(str(source), cv2.CAP_GSTREAMER)
    elif kind == "usb":
        target: int | str = int(source) if isinstance(source, int) or str(source).isdigit() else str(source)
        if isinstance(target, str) and not os.path.exists(target):
            raise SourceError(f"{what}: device {target} does not exist")
        api = cv2.CAP_FFMPEG if backend_setting == "ffmpeg" else cv2.CAP_V4L2
        cap = cv2.VideoCapture(target, api)
    elif kind == "url":
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        cap = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG, params)
    else:
        path = Path(str(source))
        if not path.exists():
            raise SourceError(f"{what}: video file {path} not found")
        if not path.is_file():
            raise SourceError(f"{what}: {path} is not a file")
        if not os.access(path, os.R_OK):
            raise SourceError(f"{what}: video file {path} is not readable (permission denied)")
        api = cv2.CAP_FFMPEG if backend_setting in ("auto", "ffmpeg") else cv2.CAP_ANY
        cap = cv2.VideoCapture(str(path), api)

    if not cap.isOpened():
        cap.release()
        if kind == "file":
            raise SourceError(f"{what}: cannot decode video file {source} (not a video OpenCV can read)")
        raise SourceError(f"{what}: cannot open {kind} source {source}")
    if kind == "usb":
        if camera.get("width"):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(camera["width"]))
        if camera.get("height"):
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(camera["height"]))
    return cap


def probe_source(camera: dict[str, Any], timeout_s: float = 10) -> dict[str, Any]:
    """Open the camera and decode one frame within ``timeout_s``: {ok, fps, width, height, error}.

    Never raises for a failed check; a capture that hangs is left to its own thread.
    """
    result: dict[str, Any] = {"ok": False, "fps": None, "width": None, "height": None, "error": None}

    def attempt() -> None:
        try:
            cap = open_capture(camera, timeout_s=timeout_s)
        except SourceError as exc:
            result["error"] = str(exc)
            return
        except Exception as exc:  # cv2 raises cv2.error for some malformed inputs
            result["error"] = f"{describe(camera)}: {exc}"
            return
        try:
            ok, frame = cap.read()
            if not ok or frame is None:
                result["error"] = f"{describe(camera)}: opened but no frame could be decoded"
                return
            fps = cap.get(cv2.CAP_PROP_FPS)
            result.update(ok=True, fps=round(float(fps), 3) if fps and fps > 0 else None,
                          width=int(frame.shape[1]), height=int(frame.shape[0]))
        finally:
            cap.release()

    worker = threading.Thread(target=attempt, name=f"probe-{camera.get('name')}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        result["error"] = f"{describe(camera)}: no frame within {timeout_s:g} s"
    return result


class CameraSource:
    """One camera's capture thread, decoding into ``ring`` and reopening on failure.

    ``lossless`` (for ``facepro process``): the reader waits for a free slot instead of
    overwriting, and a file that ends finishes the source instead of reopening it.
    """

    def __init__(self, camera: dict[str, Any], ring: FrameRing, *, bus: Any = None, metrics: Any = None,
                 lossless: bool = False, backoff_initial_s: float = BACKOFF_INITIAL_S,
                 reconnect_max_s: float | None = None, gate: Any = None) -> None:
        self.camera = camera
        self.name: str = camera["name"]
        self.kind = source_kind(camera["source"])
        self.ring = ring
        self.bus = bus
        self.metrics = metrics
        self.lossless = lossless
        self.loop_file = bool(camera.get("loop")) and not lossless
        self.rate = "max" if lossless else camera.get("rate", "native")
        self.stall_timeout_s = float(camera.get("stall_timeout_s", 10.0))
        self.backoff_initial_s = backoff_initial_s
        self.reconnect_max_s = float(reconnect_max_s if reconnect_max_s is not None
                                     else camera.get("reconnect_max_s", DEFAULT_RECONNECT_MAX_S))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.online = False
        self.reconnects = 0
        self.opened_once = False
        self.last_frame_at: float | None = None      # wall clock
        self._last_frame_mono: float | None = None
        self.frames_captured = 0
        self.error: str | None = None
        self.finished = False                        # a non-looping file reached its end
        self.fps_native: float | None = None
        self._dropped_reported = 0
        self._media_frames = 0                       # frames read from a file, across loops
        self.capture_rate = RateMeter()
        self.gate = gate  # edge.pipeline.gate.DetectGate: which frames are converted, which detected

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> CameraSource:
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.ring.close()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("camera %s: capture thread did not stop within %.0f s", self.name, timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- state -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "name": self.name,
                "online": self.online,
                "reconnects": self.reconnects,
                "last_frame_at": iso_utc(self.last_frame_at),
                "frames_captured": self.frames_captured,
                "frames_dropped": self.ring.dropped,
                "source_kind": self.kind,
                "error": self.error,
                "finished": self.finished,
            }

    def check_stall(self, now_mono: float | None = None) -> bool:
        """Mark the camera offline when no frame arrived for ``stall_timeout_s``. True if stalled.

        Called by the pipeline's housekeeping: it covers a read that blocks inside the driver.
        """
        now_mono = time.monotonic() if now_mono is None else now_mono
        with self._lock:
            stalled = (self.online and self._last_frame_mono is not None
                       and now_mono - self._last_frame_mono > self.stall_timeout_s)
        if stalled:
            self._set_state(False, f"no frame for {self.stall_timeout_s:g} s (stalled)")
        return stalled

    def _set_state(self, online: bool, error: str | None = None) -> None:
        with self._lock:
            changed = online != self.online
            self.online = online
            if error is not None or online:
                self.error = error
            payload = {"name": self.name, "online": online, "reconnects": self.reconnects,
                       "last_frame_at": iso_utc(self.last_frame_at)}
        if not changed:
            return
        if online:
            log.info("camera %s online (%s source, reconnects %d)", self.name, self.kind, self.reconnects)
        elif self.finished:
            log.info("camera %s: end of file after %d frame(s)", self.name, self.frames_captured)
        elif self._stop.is_set():
            log.info("camera %s stopped", self.name)
        else:
            log.warning("camera %s offline: %s", self.name, error or "stopped")
        if self.bus is not None:
            self.bus.publish("camera", payload)

    # -- capture thread --------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            try:
                cap = open_capture(self.camera)
            except Exception as exc:  # SourceError, or cv2.error for a malformed source string
                message = str(exc)
                if message != self.error:  # once per distinct failure, not once per retry
                    log.warning("%s (retrying with backoff up to %g s)", message, self.reconnect_max_s)
                self._set_state(False, message)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.reconnect_max_s)
                continue
            if self.opened_once and not self._reopening_file:
                with self._lock:
                    self.reconnects += 1
                if self.metrics is not None:
                    self.metrics.incr("reconnects", 1, self.name)
            self.opened_once = True
            self._reopening_file = False
            try:
                reason, got_frames = self._read_frames(cap)
            except RingClosed:
                reason, got_frames = "stop", True
            finally:
                cap.release()
            if got_frames:
                backoff = self.backoff_initial_s
            if reason == "stop" or self._stop.is_set():
                break
            if reason == "eof" and self.kind == "file":
                if self.loop_file and got_frames:
                    self._reopening_file = True
                    continue
                with self._lock:
                    self.finished = True
                self._set_state(False, "end of file")
                break
            self._set_state(False, "stream ended" if reason == "eof" else f"read failed ({reason})")
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.reconnect_max_s)
        if self.lossless:
            self.ring.close()  # tells the consumer that no more frames will come
        if self.online:
            self._set_state(False, "stopped")

    _reopening_file = False

    def _read_frames(self, cap: cv2.VideoCapture) -> tuple[str, bool]:
        """Decode into ring slots until the stream ends/fails or stop is requested."""
        ring = self.ring
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps_native = float(fps) if fps and 0 < fps < 1000 else None
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if width > 0 and height > 0:
            ring.ensure_shape((height, width, 3))
        interval = 1.0 / self.fps_native if self.kind == "file" and self.rate == "native" and self.fps_native else 0.0
        pace = interval > 0
        next_due = time.monotonic()
        got_frames = False
        while not self._stop.is_set():
            if pace:
                delay = next_due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return "stop", got_frames
                next_due = max(next_due + interval, time.monotonic() - interval)
            slot = None
            while slot is None:
                slot = ring.acquire_write(timeout=0.5)
                if self._stop.is_set():
                    if slot is not None:
                        ring.abandon(slot)
                    return "stop", got_frames
            # grab() waits for the next frame (on a live camera, for the camera itself);
            # retrieve() converts it into the slot's buffer in place. "decode" is the work
            # done here, so a live camera's waiting time does not count as decoding.
            t0 = time.perf_counter()
            ok = cap.grab()
            t1 = time.perf_counter()
            if ok and self.gate is not None and not self.gate.sample_due(time.monotonic()):
                ring.abandon(slot)  # decoded by grab(), never converted: the gate skips it
                got_frames = self._note_frame(time.time(), time.monotonic(), t1 - t0)
                continue
            out = cap.retrieve(slot.array)[1] if ok else None
            t2 = time.perf_counter()
            decode_s = (t2 - t0) if self.kind == "file" else (t2 - t1)
            if not ok or out is None:
                ring.abandon(slot)
                return "eof", got_frames
            if out is not slot.array:
                # The stream's frame shape differs from the buffers: reallocate once, copy this frame.
                ring.abandon(slot)
                ring.ensure_shape(out.shape)
                slot = ring.acquire_write(timeout=None)
                if slot is None:
                    return "stop", got_frames
                np.copyto(slot.array, out)
            now = time.time()
            mono = time.monotonic()
            media_time = self._media_frames / self.fps_native if self.kind == "file" and self.fps_native else mono
            if self.gate is not None and not self.gate.admit(slot, mono):
                ring.abandon(slot)  # converted for the motion check, not for the detector
            else:
                ring.commit(slot, now, media_time, decode_s)
            got_frames = self._note_frame(now, mono, decode_s)
        return "stop", got_frames

    def _note_frame(self, now: float, mono: float, decode_s: float) -> bool:
        """A frame came from the camera (converted and committed or not). Returns True."""
        self._media_frames += 1
        with self._lock:
            self.frames_captured += 1
            self.last_frame_at = now
            self._last_frame_mono = mono
            was_online = self.online
        self.capture_rate.tick(mono)
        if not was_online:
            self._set_state(True)
        if self.metrics is not None:
            self.metrics.incr("frames_captured", 1, self.name)
            self.metrics.observe("decode", decode_s, self.name)
            dropped = self.ring.dropped
            if dropped != self._dropped_reported:
                self.metrics.incr("frames_dropped", dropped - self._dropped_reported, self.name)
                self._dropped_reported = dropped
        return True
